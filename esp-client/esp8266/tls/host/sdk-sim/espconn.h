/*
 * Host stand-in for the NONOS SDK's espconn.h: the declarations espconn_tls.c uses, copied from
 * the SDK header (8e13865) with host types. espconn_sim.c implements them over real sockets.
 */
#ifndef SIM_ESPCONN_H
#define SIM_ESPCONN_H
#include "c_types.h"
#include "ip_addr.h"

typedef void (*espconn_connect_callback)(void *arg);
typedef void (*espconn_reconnect_callback)(void *arg, sint8 err);

#define ESPCONN_OK 0
#define ESPCONN_MEM -1
#define ESPCONN_TIMEOUT -3
#define ESPCONN_RTE -4
#define ESPCONN_INPROGRESS -5
#define ESPCONN_MAXNUM -7
#define ESPCONN_ABRT -8
#define ESPCONN_RST -9
#define ESPCONN_CLSD -10
#define ESPCONN_CONN -11
#define ESPCONN_ARG -12

enum espconn_type { ESPCONN_INVALID = 0, ESPCONN_TCP = 0x10, ESPCONN_UDP = 0x20 };
enum espconn_state {
	ESPCONN_NONE, ESPCONN_WAIT, ESPCONN_LISTEN, ESPCONN_CONNECT, ESPCONN_WRITE,
	ESPCONN_READ, ESPCONN_CLOSE
};

typedef struct _esp_tcp {
	int remote_port;
	int local_port;
	uint8 local_ip[4];
	uint8 remote_ip[4];
	espconn_connect_callback connect_callback;
	espconn_reconnect_callback reconnect_callback;
	espconn_connect_callback disconnect_callback;
	espconn_connect_callback write_finish_fn;
} esp_tcp;

typedef struct _esp_udp {
	int remote_port;
	int local_port;
	uint8 local_ip[4];
	uint8 remote_ip[4];
} esp_udp;

typedef void (*espconn_recv_callback)(void *arg, char *pdata, unsigned short len);
typedef void (*espconn_sent_callback)(void *arg);

struct espconn {
	enum espconn_type type;
	enum espconn_state state;
	union {
		esp_tcp *tcp;
		esp_udp *udp;
	} proto;
	espconn_recv_callback recv_callback;
	espconn_sent_callback sent_callback;
	uint8 link_cnt;
	void *reverse;
};

enum espconn_option {
	ESPCONN_START = 0x00, ESPCONN_REUSEADDR = 0x01, ESPCONN_NODELAY = 0x02,
	ESPCONN_COPY = 0x04, ESPCONN_KEEPALIVE = 0x08, ESPCONN_MANUALRECV = 0x10, ESPCONN_END
};

typedef void (*dns_found_callback)(const char *name, ip_addr_t *ipaddr, void *callback_arg);

sint8 espconn_connect(struct espconn *espconn);
sint8 espconn_send(struct espconn *espconn, uint8 *psent, uint16 length);
sint8 espconn_regist_connectcb(struct espconn *espconn, espconn_connect_callback connect_cb);
sint8 espconn_regist_reconcb(struct espconn *espconn, espconn_reconnect_callback recon_cb);
sint8 espconn_regist_disconcb(struct espconn *espconn, espconn_connect_callback discon_cb);
sint8 espconn_regist_sentcb(struct espconn *espconn, espconn_sent_callback sent_cb);
sint8 espconn_set_opt(struct espconn *espconn, uint8 opt);
uint32 espconn_port(void);
err_t espconn_gethostbyname(struct espconn *pespconn, const char *hostname, ip_addr_t *addr,
	dns_found_callback found);
sint8 espconn_abort(struct espconn *espconn);
#endif
