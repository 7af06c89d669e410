/* Host stand-in for the NONOS SDK's c_types.h (the SDK's own clashes with the host's libc
 * types): the same names, host types. Only for the espconn simulation (espconn_sim.c). */
#ifndef SIM_C_TYPES_H
#define SIM_C_TYPES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
typedef uint8_t uint8;
typedef int8_t sint8;
typedef uint16_t uint16;
typedef int16_t sint16;
typedef uint32_t uint32;
typedef int32_t sint32;
typedef int8_t err_t;
#endif
