/*
 * The device's TLS transport on the ESP8266: esptls (BearSSL) over the NONOS SDK's plain TCP
 * espconn, driven by polling so that the core's `Transport` (connect_start + poll_connect,
 * read/write that may report "would block") maps onto it one to one.
 *
 * - SDK callbacks (DNS, connect, sent, disconnect, error) only record what happened; all TLS
 *   work runs in the calls below, which the board makes from the core's poll (an os_timer
 *   callback). None of them waits for the network.
 * - Receive uses espconn's manual mode (ESPCONN_MANUALRECV): lwIP keeps unread data in the
 *   SDK's per-connection ring (TCP_WND bytes, set to one MSS here) and closes the TCP window
 *   until we read; bytes go straight from that ring into BearSSL's record buffer.
 * - Send hands BearSSL's record buffer to espconn_send and acknowledges it to BearSSL only
 *   when the SDK's sent callback says it left, so no second copy is needed.
 *
 * - The TLS engine runs on its own stack (ESPTLS_STACK_LEN bytes inside the struct), switched
 *   to by esptls_call_on_stack (tls_stack.S): the SDK's system stack, shared with the SDK's
 *   own callbacks and the core's poll, is too small for the ~5.9 KB the P-256 code needs.
 *
 * All memory is one `struct espconn_tls` (the session, its record buffers and that stack),
 * which espconn_tls_new takes from the SDK heap once; docs/esp8266-tls.md has the figures.
 */
#ifndef ESPCONN_TLS_H
#define ESPCONN_TLS_H

#include "c_types.h"
#include "ip_addr.h"
#include "espconn.h"

#include "esptls.h"

/* Results of the calls below (the core's ConnectError, plus I/O outcomes). */
#define ETLS_PENDING 0
#define ETLS_READY 1
#define ETLS_WOULD_BLOCK (-1)
#define ETLS_ERR_DNS (-10)
#define ETLS_ERR_TCP (-11)
#define ETLS_ERR_SERVER_CERT (-12)
#define ETLS_ERR_HANDSHAKE (-13)
#define ETLS_ERR_CLIENT_IDENTITY (-14)
#define ETLS_ERR_CLOSED (-15)
#define ETLS_ERR_STACK (-16)      /* the engine's stack overflowed: session dropped */

/* Connection phases (for logs). */
#define ETLS_IDLE 0
#define ETLS_DNS 1
#define ETLS_TCP 2
#define ETLS_TLS 3
#define ETLS_UP 4
#define ETLS_FAILED 5

/*
 * The engine's stack: the LX106 replay of a broker session measured 5,904 bytes (handshake,
 * CONNECT, CONNACK, key decoding included); the rest is headroom for paths the replay does
 * not take (alerts, refusals). The replay test fails if the measured figure comes within
 * 512 bytes of this.
 */
#define ESPTLS_STACK_LEN 6656
/* The same figure for code that cannot read this header (the board's Rust transport). */
extern const size_t espconn_tls_stack_len;

struct espconn_tls {
	struct espconn conn;
	esp_tcp tcp;
	ip_addr_t ip;
	/* Written by SDK callbacks, read by the poll calls. */
	volatile uint8 phase;
	volatile sint8 error;        /* ETLS_ERR_* once FAILED */
	volatile uint8 tcp_closed;   /* the broker or the stack closed TCP */
	volatile uint8 sent_done;    /* espconn's sent callback fired for `inflight` */
	uint16 inflight;             /* record bytes handed to espconn_send, not yet acked */
	uint16 port;
	uint8 painted;               /* the engine's stack carries the fill pattern */
	struct esptls tls;
	uint32 stack[ESPTLS_STACK_LEN / 4] __attribute__((aligned(16)));
};

/*
 * The deepest the engine's stack has been (bytes, over the struct's lifetime): for a log line on
 * a board, where interrupt handlers also run on it. The lowest 16 bytes are a canary: a call
 * that overwrote them ends the session with ETLS_ERR_STACK.
 */
size_t espconn_tls_stack_high_water(const struct espconn_tls *c);

/* One zeroed struct espconn_tls from the SDK heap (os_zalloc), or NULL. Keep it for good:
 * allocating once avoids fragmenting the small heap by reconnects. */
struct espconn_tls *espconn_tls_new(void);

/*
 * Begins DNS (or uses the cached address), TCP and the handshake. `seed` is 32 bytes from
 * the hardware RNG. Returns ETLS_PENDING, or at once ETLS_ERR_CLIENT_IDENTITY /
 * ETLS_ERR_SERVER_CERT (CA unusable) / ETLS_ERR_DNS (host unusable) / ETLS_ERR_TCP.
 */
int espconn_tls_start(struct espconn_tls *c, const char *host, uint16 port,
	const unsigned char *ca_der, size_t ca_len,
	const unsigned char *cert_der, size_t cert_len,
	const unsigned char *key_der, size_t key_len,
	const unsigned char *pin, uint64_t time_floor_unix,
	const unsigned char seed[32]);

/* Advances DNS/TCP/handshake: ETLS_PENDING, ETLS_READY or an ETLS_ERR_*. */
int espconn_tls_poll_connect(struct espconn_tls *c,
	const unsigned char *cert_der, size_t cert_len);

/* 1 if read would return data or end of stream. */
int espconn_tls_read_ready(struct espconn_tls *c);

/* Plaintext bytes read (> 0), 0 at end of stream, ETLS_WOULD_BLOCK, or ETLS_ERR_CLOSED. */
int espconn_tls_read(struct espconn_tls *c, unsigned char *buf, size_t len);

/* 1 if write would take at least one byte now. */
int espconn_tls_write_ready(struct espconn_tls *c);

/* Plaintext bytes taken (> 0), ETLS_WOULD_BLOCK, or ETLS_ERR_CLOSED. Flushes a record. */
int espconn_tls_write(struct espconn_tls *c, const unsigned char *buf, size_t len);

/* Drops TCP (no close_notify) and wipes the session (the key copy included). */
void espconn_tls_close(struct espconn_tls *c);

#endif
