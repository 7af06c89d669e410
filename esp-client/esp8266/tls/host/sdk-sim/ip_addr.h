/* Host stand-in for the NONOS SDK's ip_addr.h (see c_types.h). */
#ifndef SIM_IP_ADDR_H
#define SIM_IP_ADDR_H
#include "c_types.h"
struct ip_addr {
	uint32 addr;
};
typedef struct ip_addr ip_addr_t;
#endif
