/*
 * espconn_tls: see espconn_tls.h. Compiled for the LX106 only (the host build drives the same
 * esptls engine over a std TcpStream instead).
 */
#include <string.h>

#include "c_types.h"
#include "ip_addr.h"
#include "espconn.h"
#include "user_interface.h"

#include "espconn_tls.h"

/*
 * Exported by the SDK's liblwip (third_party/lwip/app/espconn.c) but missing from the public
 * espconn.h: the manual-receive read, and the TCP window in MSS units.
 */
extern sint16 espconn_recv(struct espconn *espconn, void *mem, size_t len);
extern sint8 espconn_tcp_set_wnd(uint8 num);

/* The SDK heap's zeroing allocator (libmain; what os_zalloc in the SDK's mem.h expands to). */
extern void *pvPortZalloc(size_t sz, const char *file, unsigned line);

/* tls_stack.S: fn(arg) on another stack. */
void esptls_call_on_stack(void (*fn)(void *), void *arg, void *stack_top);

static void close_impl(struct espconn_tls *c);

/*
 * The session the SDK's callbacks belong to. Callbacks find it by comparing their `arg` with
 * this pointer, never by reading through `arg`: a DNS answer can arrive after the session was
 * closed and its memory freed (lwIP cannot cancel a lookup), and must then be ignored without
 * touching that memory. One connection at a time, as the device has.
 */
static struct espconn_tls *etls_current;

static struct espconn_tls *
of(void *arg)
{
	struct espconn_tls *c = etls_current;

	return c != NULL && arg == (void *)&c->conn ? c : NULL;
}

static void
fail(struct espconn_tls *c, sint8 err)
{
	if (c->phase != ETLS_FAILED) {
		c->error = err;
		c->phase = ETLS_FAILED;
	}
}

/* ---- SDK callbacks: record, never work ---- */

static void
on_connect(void *arg)
{
	struct espconn_tls *c = of(arg);

	if (c == NULL || c->phase != ETLS_TCP) {
		return;
	}
	espconn_set_opt(&c->conn, ESPCONN_NODELAY | ESPCONN_MANUALRECV);
	c->phase = ETLS_TLS;
}

static void
on_error(void *arg, sint8 err)
{
	struct espconn_tls *c = of(arg);

	(void)err;
	if (c == NULL || c->phase == ETLS_IDLE) {
		return;
	}
	c->tcp_closed = 1;
	if (c->phase == ETLS_TCP) {
		fail(c, ETLS_ERR_TCP);
	}
}

static void
on_disconnect(void *arg)
{
	struct espconn_tls *c = of(arg);

	if (c != NULL && c->phase != ETLS_IDLE) {
		c->tcp_closed = 1;
	}
}

static void
on_sent(void *arg)
{
	struct espconn_tls *c = of(arg);

	if (c != NULL && c->inflight != 0) {
		c->sent_done = 1;
	}
}

static void
on_dns(const char *name, ip_addr_t *ip, void *arg)
{
	struct espconn_tls *c = of(arg);

	/* A late answer to an earlier lookup (same memory, new session) is not ours. */
	if (c == NULL || c->phase != ETLS_DNS || name == NULL
		|| strcmp(name, c->tls.cc.eng.server_name) != 0)
	{
		return;
	}
	if (ip == NULL) {
		fail(c, ETLS_ERR_DNS);
		return;
	}
	c->ip = *ip;
	/* Connecting is not waiting: espconn_connect returns at once, on_connect follows. */
	memcpy(c->tcp.remote_ip, &c->ip.addr, 4);
	c->phase = ETLS_TCP;
	if (espconn_connect(&c->conn) != ESPCONN_OK) {
		fail(c, ETLS_ERR_TCP);
	}
}

/* ---- the engine pump, from poll calls only ---- */

static int
map_fault(struct espconn_tls *c)
{
	switch (esptls_fault(&c->tls)) {
	case ESPTLS_FAULT_SERVER_CERT:
		return ETLS_ERR_SERVER_CERT;
	case ESPTLS_FAULT_CLOSED:
		return ETLS_ERR_CLOSED;
	default:
		return ETLS_ERR_HANDSHAKE;
	}
}

/*
 * Moves records both ways until nothing progresses. Each engine step may run one public-key
 * operation (hundreds of ms at 80 MHz), so the soft watchdog is fed before each.
 */
static void
pump(struct espconn_tls *c)
{
	br_ssl_engine_context *eng = esptls_engine(&c->tls);

	if (c->phase != ETLS_TLS && c->phase != ETLS_UP) {
		return;
	}
	for (;;) {
		unsigned st;
		int progress = 0;

		system_soft_wdt_feed();
		if (c->sent_done) {
			c->sent_done = 0;
			br_ssl_engine_sendrec_ack(eng, c->inflight);
			c->inflight = 0;
			progress = 1;
		}
		st = esptls_state(&c->tls);
		if (st & BR_SSL_CLOSED) {
			return;
		}
		if ((st & BR_SSL_SENDREC) && c->inflight == 0 && !c->tcp_closed) {
			size_t len;
			unsigned char *buf = br_ssl_engine_sendrec_buf(eng, &len);
			sint8 rc;

			if (len > 0xFFFF) {
				len = 0xFFFF;
			}
			rc = espconn_send(&c->conn, buf, (uint16)len);
			if (rc == ESPCONN_OK) {
				/* The SDK reads `buf` until on_sent: acknowledge then. */
				c->inflight = (uint16)len;
			} else if (rc != ESPCONN_MEM && rc != ESPCONN_MAXNUM
				&& rc != ESPCONN_INPROGRESS)
			{
				esptls_fail_io(&c->tls);
				return;
			}
		}
		if (st & BR_SSL_RECVREC) {
			size_t len;
			unsigned char *buf = br_ssl_engine_recvrec_buf(eng, &len);
			sint16 n = espconn_recv(&c->conn, buf, len > 0x7FFF ? 0x7FFF : len);

			/* ESPCONN_MEM: no ring yet, i.e. nothing received so far. */
			if (n == ESPCONN_MEM) {
				n = 0;
			}
			if (n > 0) {
				br_ssl_engine_recvrec_ack(eng, (size_t)n);
				progress = 1;
			} else if (n < 0 || c->tcp_closed) {
				/* Nothing buffered and TCP is gone (or espconn lost the node). */
				esptls_fail_io(&c->tls);
				return;
			}
		}
		if (!progress) {
			return;
		}
	}
}

/* ---- the Transport calls ---- */

static int
espconn_tls_start_impl(struct espconn_tls *c, const char *host, uint16 port,
	const unsigned char *ca_der, size_t ca_len,
	const unsigned char *cert_der, size_t cert_len,
	const unsigned char *key_der, size_t key_len,
	const unsigned char *pin, uint64_t time_floor_unix,
	const unsigned char seed[32])
{
	int rc;
	err_t dns;

	close_impl(c);
	rc = esptls_start(&c->tls, host, ca_der, ca_len, cert_der, cert_len,
		key_der, key_len, pin, time_floor_unix, seed);
	switch (rc) {
	case ESPTLS_OK:
		break;
	case ESPTLS_ERR_CA:
		return ETLS_ERR_SERVER_CERT;
	case ESPTLS_ERR_HOST:
		return ETLS_ERR_DNS;
	case ESPTLS_ERR_TIME:
		return ETLS_ERR_SERVER_CERT;
	default:
		return ETLS_ERR_CLIENT_IDENTITY;
	}

	memset(&c->conn, 0, sizeof c->conn);
	memset(&c->tcp, 0, sizeof c->tcp);
	c->conn.type = ESPCONN_TCP;
	c->conn.state = ESPCONN_NONE;
	c->conn.proto.tcp = &c->tcp;
	c->conn.reverse = c;
	c->tcp.remote_port = port;
	c->tcp.local_port = espconn_port();
	etls_current = c;
	c->port = port;
	c->tcp_closed = 0;
	c->sent_done = 0;
	c->inflight = 0;
	c->error = 0;
	espconn_regist_connectcb(&c->conn, on_connect);
	espconn_regist_reconcb(&c->conn, on_error);
	espconn_regist_disconcb(&c->conn, on_disconnect);
	espconn_regist_sentcb(&c->conn, on_sent);
	/* The SDK's receive ring is TCP_WND bytes: one MSS (1460) bounds it. */
	espconn_tcp_set_wnd(1);

	c->phase = ETLS_DNS;
	dns = espconn_gethostbyname(&c->conn, host, &c->ip, on_dns);
	if (dns == ESPCONN_OK) {
		/* Cached, or a dotted address. */
		on_dns(host, &c->ip, &c->conn);
	} else if (dns != ESPCONN_INPROGRESS) {
		fail(c, ETLS_ERR_DNS);
	}
	if (c->phase == ETLS_FAILED) {
		rc = c->error;
		close_impl(c);
		return rc;
	}
	return ETLS_PENDING;
}

static int
espconn_tls_poll_connect_impl(struct espconn_tls *c,
	const unsigned char *cert_der, size_t cert_len)
{
	if (c->phase == ETLS_FAILED) {
		return c->error;
	}
	if (c->phase == ETLS_UP) {
		return ETLS_READY;
	}
	if (c->phase != ETLS_TLS) {
		return c->phase == ETLS_IDLE ? ETLS_ERR_TCP : ETLS_PENDING;
	}
	esptls_rebind(&c->tls, cert_der, cert_len);
	pump(c);
	if (esptls_state(&c->tls) & BR_SSL_CLOSED) {
		fail(c, (sint8)map_fault(c));
		return c->error;
	}
	if (esptls_established(&c->tls)) {
		c->phase = ETLS_UP;
		return ETLS_READY;
	}
	return ETLS_PENDING;
}

static int
espconn_tls_read_ready_impl(struct espconn_tls *c)
{
	if (c->phase != ETLS_UP) {
		return 1;
	}
	pump(c);
	return (esptls_state(&c->tls) & (BR_SSL_RECVAPP | BR_SSL_CLOSED)) != 0;
}

static int
espconn_tls_read_impl(struct espconn_tls *c, unsigned char *buf, size_t len)
{
	br_ssl_engine_context *eng = esptls_engine(&c->tls);
	unsigned st;

	if (c->phase != ETLS_UP) {
		return ETLS_ERR_CLOSED;
	}
	pump(c);
	st = esptls_state(&c->tls);
	if (st & BR_SSL_RECVAPP) {
		size_t avail;
		unsigned char *src = br_ssl_engine_recvapp_buf(eng, &avail);

		if (len > avail) {
			len = avail;
		}
		if (len > 0x7FFF) {
			len = 0x7FFF;
		}
		memcpy(buf, src, len);
		br_ssl_engine_recvapp_ack(eng, len);
		pump(c);
		return (int)len;
	}
	if (st & BR_SSL_CLOSED) {
		return 0;
	}
	return ETLS_WOULD_BLOCK;
}

static int
espconn_tls_write_ready_impl(struct espconn_tls *c)
{
	if (c->phase != ETLS_UP) {
		return 0;
	}
	pump(c);
	return (esptls_state(&c->tls) & BR_SSL_SENDAPP) != 0;
}

static int
espconn_tls_write_impl(struct espconn_tls *c, const unsigned char *buf, size_t len)
{
	br_ssl_engine_context *eng = esptls_engine(&c->tls);
	unsigned st;
	size_t room;
	unsigned char *dst;

	if (c->phase != ETLS_UP) {
		return ETLS_ERR_CLOSED;
	}
	pump(c);
	st = esptls_state(&c->tls);
	if (st & BR_SSL_CLOSED) {
		return ETLS_ERR_CLOSED;
	}
	if (!(st & BR_SSL_SENDAPP)) {
		return ETLS_WOULD_BLOCK;
	}
	dst = br_ssl_engine_sendapp_buf(eng, &room);
	if (len > room) {
		len = room;
	}
	if (len > 0x7FFF) {
		len = 0x7FFF;
	}
	memcpy(dst, buf, len);
	br_ssl_engine_sendapp_ack(eng, len);
	br_ssl_engine_flush(eng, 0);
	pump(c);
	return (int)len;
}

static void
close_impl(struct espconn_tls *c)
{
	uint8 phase = c->phase;

	c->phase = ETLS_IDLE;
	if (phase != ETLS_IDLE && c->conn.proto.tcp != NULL) {
		/*
		 * RST and free the SDK's node now (no close_notify: the Last Will is wanted).
		 * Returns ESPCONN_ARG, harmlessly, when there is no node (DNS failed, or the
		 * stack already dropped the connection).
		 */
		espconn_abort(&c->conn);
	}
	c->inflight = 0;
	c->sent_done = 0;
	c->tcp_closed = 0;
	esptls_wipe(&c->tls);
	if (etls_current == c) {
		etls_current = NULL;
	}
}

/* ---- the public calls: each runs its _impl on the engine's own stack ---- */

struct call {
	int op;
	int ret;
	struct espconn_tls *c;
	const char *host;
	uint16 port;
	const unsigned char *ca, *cert, *key, *pin, *seed;
	size_t ca_len, cert_len, key_len;
	uint64_t floor;
	unsigned char *buf;
	const unsigned char *cbuf;
	size_t len;
};

enum { OP_START, OP_POLL_CONNECT, OP_READ_READY, OP_READ, OP_WRITE_READY, OP_WRITE, OP_CLOSE };

static void
dispatch(void *arg)
{
	struct call *k = arg;

	switch (k->op) {
	case OP_START:
		k->ret = espconn_tls_start_impl(k->c, k->host, k->port, k->ca, k->ca_len,
			k->cert, k->cert_len, k->key, k->key_len, k->pin, k->floor, k->seed);
		break;
	case OP_POLL_CONNECT:
		k->ret = espconn_tls_poll_connect_impl(k->c, k->cert, k->cert_len);
		break;
	case OP_READ_READY:
		k->ret = espconn_tls_read_ready_impl(k->c);
		break;
	case OP_READ:
		k->ret = espconn_tls_read_impl(k->c, k->buf, k->len);
		break;
	case OP_WRITE_READY:
		k->ret = espconn_tls_write_ready_impl(k->c);
		break;
	case OP_WRITE:
		k->ret = espconn_tls_write_impl(k->c, k->cbuf, k->len);
		break;
	default:
		close_impl(k->c);
		k->ret = 0;
		break;
	}
}

#define STACK_FILL 0xA5A5A5A5u
#define CANARY_WORDS 4

static int
run(struct call *k)
{
	struct espconn_tls *c = k->c;
	size_t i;

	if (!c->painted) {
		/* Once per struct: later calls leave untouched what they did not reach. */
		for (i = 0; i < sizeof c->stack / sizeof c->stack[0]; i ++) {
			c->stack[i] = STACK_FILL;
		}
		c->painted = 1;
	}
	esptls_call_on_stack(dispatch, k, (unsigned char *)c->stack + sizeof c->stack);
	for (i = 0; i < CANARY_WORDS; i ++) {
		if (c->stack[i] != STACK_FILL) {
			/* Memory below the stack (the end of the session) may be damaged: drop it. */
			close_impl(c);
			c->error = ETLS_ERR_STACK;
			c->phase = ETLS_FAILED;
			return ETLS_ERR_STACK;
		}
	}
	return k->ret;
}

const size_t espconn_tls_stack_len = ESPTLS_STACK_LEN;

size_t
espconn_tls_stack_high_water(const struct espconn_tls *c)
{
	size_t i, n = sizeof c->stack / sizeof c->stack[0];

	if (!c->painted) {
		return 0;
	}
	for (i = 0; i < n && c->stack[i] == STACK_FILL; i ++) {
	}
	return (n - i) * sizeof c->stack[0];
}

struct espconn_tls *
espconn_tls_new(void)
{
	return (struct espconn_tls *)pvPortZalloc(sizeof(struct espconn_tls), "espconn_tls", __LINE__);
}

int
espconn_tls_start(struct espconn_tls *c, const char *host, uint16 port,
	const unsigned char *ca_der, size_t ca_len,
	const unsigned char *cert_der, size_t cert_len,
	const unsigned char *key_der, size_t key_len,
	const unsigned char *pin, uint64_t time_floor_unix,
	const unsigned char seed[32])
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_START;
	k.c = c;
	k.host = host;
	k.port = port;
	k.ca = ca_der;
	k.ca_len = ca_len;
	k.cert = cert_der;
	k.cert_len = cert_len;
	k.key = key_der;
	k.key_len = key_len;
	k.pin = pin;
	k.floor = time_floor_unix;
	k.seed = seed;
	return run(&k);
}

int
espconn_tls_poll_connect(struct espconn_tls *c,
	const unsigned char *cert_der, size_t cert_len)
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_POLL_CONNECT;
	k.c = c;
	k.cert = cert_der;
	k.cert_len = cert_len;
	return run(&k);
}

int
espconn_tls_read_ready(struct espconn_tls *c)
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_READ_READY;
	k.c = c;
	return run(&k);
}

int
espconn_tls_read(struct espconn_tls *c, unsigned char *buf, size_t len)
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_READ;
	k.c = c;
	k.buf = buf;
	k.len = len;
	return run(&k);
}

int
espconn_tls_write_ready(struct espconn_tls *c)
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_WRITE_READY;
	k.c = c;
	return run(&k);
}

int
espconn_tls_write(struct espconn_tls *c, const unsigned char *buf, size_t len)
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_WRITE;
	k.c = c;
	k.cbuf = buf;
	k.len = len;
	return run(&k);
}

void
espconn_tls_close(struct espconn_tls *c)
{
	struct call k;

	memset(&k, 0, sizeof k);
	k.op = OP_CLOSE;
	k.c = c;
	run(&k);
}
