/*
 * A simulation of the NONOS SDK's espconn, over a real non-blocking socket, to run the chip's
 * transport (../../espconn_tls.c, unchanged) on the host against a real Mosquitto. It follows
 * the SDK's semantics that the transport relies on (third_party/lwip/app/espconn*.c, 8e13865):
 *
 * - espconn_gethostbyname answers later, from the task loop (espconn_sim_run), like lwIP's DNS;
 * - espconn_connect returns at once; the connect (or error) callback comes from the task loop;
 * - manual receive (ESPCONN_MANUALRECV set in the connect callback): espconn_recv returns
 *   ESPCONN_MEM until the first data arrived (no ring yet), then what is there, 0 if nothing;
 * - espconn_send keeps the caller's pointer (the SDK's no-copy mode) and writes it out from the
 *   task loop in small chunks; the sent callback fires when all of it left, and a second send
 *   before that is refused with ESPCONN_MAXNUM. A transport that released the buffer early
 *   would put different bytes on the wire, and the broker would drop the handshake;
 * - a peer close calls the disconnect callback, after which espconn_recv fails.
 *
 * It is a model of the SDK, not the SDK: docs/esp8266-tls.md lists what only a board proves.
 * One connection at a time, as the device has.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include "espconn.h"
#include "espconn_tls.h"
#include "user_interface.h"

static struct {
	struct espconn *conn;
	int fd;
	int connecting, connected, closed, manual, any_data;
	int dns_pending;
	char dns_name[256];
	ip_addr_t *dns_addr;
	dns_found_callback dns_cb;
	void *dns_arg;
	const uint8 *send_ptr;
	size_t send_len, send_done;
	size_t chunk;
	unsigned long wdt_feeds;
	unsigned wnd;
} sim = { .fd = -1, .chunk = 100 };

void
system_soft_wdt_feed(void)
{
	sim.wdt_feeds ++;
}

void *pvPortZalloc(size_t sz, const char *file, unsigned line);

void *
pvPortZalloc(size_t sz, const char *file, unsigned line)
{
	(void)file;
	(void)line;
	return calloc(1, sz);
}

/*
 * The chip switches stacks in tls_stack.S (proven in the QEMU replay); here ucontext does the
 * same, so the transport runs on the struct's own stack on the host too (its canary and
 * high-water mark see real use). The stack is ESPTLS_STACK_LEN bytes below `stack_top`.
 */
void esptls_call_on_stack(void (*fn)(void *), void *arg, void *stack_top);

static void (*trampoline_fn)(void *);
static void *trampoline_arg;

static void
trampoline(void)
{
	trampoline_fn(trampoline_arg);
}

void
esptls_call_on_stack(void (*fn)(void *), void *arg, void *stack_top)
{
	static ucontext_t caller, callee;

	trampoline_fn = fn;
	trampoline_arg = arg;
	getcontext(&callee);
	callee.uc_stack.ss_sp = (unsigned char *)stack_top - ESPTLS_STACK_LEN;
	callee.uc_stack.ss_size = ESPTLS_STACK_LEN;
	callee.uc_link = &caller;
	makecontext(&callee, trampoline, 0);
	swapcontext(&caller, &callee);
}

/* Drops the connection. A DNS lookup in flight stays in flight: lwIP cannot cancel one, and
 * its answer still reaches the callback with the old argument. */
static void
reset(void)
{
	if (sim.fd >= 0) {
		close(sim.fd);
	}
	sim.fd = -1;
	sim.connecting = sim.connected = sim.closed = sim.manual = sim.any_data = 0;
	sim.send_ptr = NULL;
	sim.send_len = sim.send_done = 0;
}

sint8
espconn_regist_connectcb(struct espconn *c, espconn_connect_callback cb)
{
	c->proto.tcp->connect_callback = cb;
	return ESPCONN_OK;
}

sint8
espconn_regist_reconcb(struct espconn *c, espconn_reconnect_callback cb)
{
	c->proto.tcp->reconnect_callback = cb;
	return ESPCONN_OK;
}

sint8
espconn_regist_disconcb(struct espconn *c, espconn_connect_callback cb)
{
	c->proto.tcp->disconnect_callback = cb;
	return ESPCONN_OK;
}

sint8
espconn_regist_sentcb(struct espconn *c, espconn_sent_callback cb)
{
	c->sent_callback = cb;
	return ESPCONN_OK;
}

sint8
espconn_set_opt(struct espconn *c, uint8 opt)
{
	if (c != sim.conn || !sim.connected) {
		return ESPCONN_ARG;
	}
	if (opt & ESPCONN_MANUALRECV) {
		sim.manual = 1;
	}
	return ESPCONN_OK;
}

sint8 espconn_tcp_set_wnd(uint8 num);

sint8
espconn_tcp_set_wnd(uint8 num)
{
	if (num == 0) {
		return ESPCONN_ARG;
	}
	sim.wnd = num * 1460u;
	return ESPCONN_OK;
}

uint32
espconn_port(void)
{
	return 0;
}

err_t
espconn_gethostbyname(struct espconn *c, const char *name, ip_addr_t *addr,
	dns_found_callback found)
{
	reset();
	sim.conn = c;
	if (strlen(name) >= sizeof sim.dns_name) {
		return ESPCONN_ARG;
	}
	strcpy(sim.dns_name, name);
	sim.dns_addr = addr;
	sim.dns_cb = found;
	sim.dns_arg = c;
	sim.dns_pending = 1;
	return ESPCONN_INPROGRESS;
}

sint8
espconn_connect(struct espconn *c)
{
	struct sockaddr_in sa;
	int one = 1;

	if (sim.fd >= 0) {
		return ESPCONN_ARG;
	}
	sim.conn = c;
	sim.fd = socket(AF_INET, SOCK_STREAM, 0);
	fcntl(sim.fd, F_SETFL, O_NONBLOCK);
	setsockopt(sim.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)c->proto.tcp->remote_port);
	memcpy(&sa.sin_addr, c->proto.tcp->remote_ip, 4);
	if (connect(sim.fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
		sim.closed = 1;
	}
	sim.connecting = 1;
	return ESPCONN_OK;
}

sint16 espconn_recv(struct espconn *c, void *mem, size_t len);

sint16
espconn_recv(struct espconn *c, void *mem, size_t len)
{
	ssize_t n;

	if (c != sim.conn || sim.fd < 0 || !sim.connected || sim.closed) {
		return ESPCONN_ARG;
	}
	if (!sim.manual) {
		/* Without manual mode the SDK hands data to a receive callback instead. */
		return ESPCONN_ARG;
	}
	if (!sim.any_data) {
		return ESPCONN_MEM;
	}
	if (len > 0x7FFF) {
		len = 0x7FFF;
	}
	n = recv(sim.fd, mem, len, MSG_DONTWAIT);
	if (n > 0) {
		return (sint16)n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		return ESPCONN_OK;
	}
	return ESPCONN_ARG;
}

sint8
espconn_send(struct espconn *c, uint8 *data, uint16 len)
{
	if (c != sim.conn || !sim.connected || sim.closed) {
		return ESPCONN_CONN;
	}
	if (sim.send_ptr != NULL) {
		return ESPCONN_MAXNUM;
	}
	if (len == 0) {
		return ESPCONN_ARG;
	}
	sim.send_ptr = data;
	sim.send_len = len;
	sim.send_done = 0;
	return ESPCONN_OK;
}

sint8
espconn_abort(struct espconn *c)
{
	if (c != sim.conn || sim.fd < 0) {
		return ESPCONN_ARG;
	}
	reset();
	return ESPCONN_OK;
}

/* ---- the simulated SDK task loop ---- */

/* One pass of the SDK's task loop: DNS answers, connection events, pending sends, peer close.
 * Returns 1 if a callback ran. */
int espconn_sim_run(void);
/* How many times the transport fed the soft watchdog. */
unsigned long espconn_sim_wdt_feeds(void);
/* The window the transport asked for (bytes). */
unsigned espconn_sim_window(void);

int
espconn_sim_run(void)
{
	struct espconn *c = sim.conn;
	int ran = 0;

	if (sim.dns_pending) {
		ip_addr_t ip;
		struct in_addr a;
		const char *name = sim.dns_name;

		sim.dns_pending = 0;
		if (strcmp(name, "localhost") == 0) {
			name = "127.0.0.1";
		}
		if (inet_aton(name, &a)) {
			ip.addr = a.s_addr;
			sim.dns_cb(sim.dns_name, &ip, sim.dns_arg);
		} else {
			sim.dns_cb(sim.dns_name, NULL, sim.dns_arg);
		}
		return 1;
	}
	if (c == NULL || sim.fd < 0) {
		return 0;
	}
	if (sim.connecting) {
		struct pollfd p = { sim.fd, POLLOUT, 0 };
		int err = 0;
		socklen_t el = sizeof err;

		if (!sim.closed && poll(&p, 1, 0) == 0) {
			return 0;
		}
		sim.connecting = 0;
		getsockopt(sim.fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (sim.closed || err != 0) {
			sim.closed = 1;
			c->proto.tcp->reconnect_callback(c, ESPCONN_RST);
		} else {
			sim.connected = 1;
			c->proto.tcp->connect_callback(c);
		}
		return 1;
	}
	if (!sim.connected || sim.closed) {
		return 0;
	}
	if (sim.send_ptr != NULL) {
		size_t want = sim.send_len - sim.send_done;
		ssize_t n;

		if (want > sim.chunk) {
			want = sim.chunk;
		}
		n = send(sim.fd, sim.send_ptr + sim.send_done, want, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			sim.send_done += (size_t)n;
		}
		if (sim.send_done == sim.send_len) {
			sim.send_ptr = NULL;
			if (c->sent_callback != NULL) {
				c->sent_callback(c);
			}
			ran = 1;
		}
	}
	{
		unsigned char b;
		ssize_t n = recv(sim.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

		if (n > 0) {
			sim.any_data = 1;
		} else if (n == 0) {
			sim.closed = 1;
			c->proto.tcp->disconnect_callback(c);
			ran = 1;
		}
	}
	return ran;
}

unsigned long
espconn_sim_wdt_feeds(void)
{
	return sim.wdt_feeds;
}

unsigned
espconn_sim_window(void)
{
	return sim.wnd;
}
