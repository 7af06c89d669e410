/*
 * Replays, on the LX106 core in QEMU, a TLS session the host build of the same library had
 * with a real Mosquitto (transcript.h, written by the host test): same seed, same time floor,
 * same material. BearSSL is deterministic given those (the client random and ECDHE key come
 * from the seeded DRBG, ECDSA signatures are RFC 6979), so the LX106 build must send exactly
 * the bytes the host build sent, accept the broker's recorded answers (certificate chain,
 * ServerKeyExchange signature, Finished) and decrypt the CONNACK. It runs on its own stack
 * through esptls_call_on_stack, as on the chip, and reports how much of that stack it used.
 *
 * Output (semihosting): "replay ok stack_used N of M sizeof_esptls S kinsns_total T
 * kinsns_longest_call L" (instructions in thousands: the whole session, and the longest single
 * call into the engine, i.e. the longest the chip spends in one SDK callback) or
 * "replay FAILED <why> ...".
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "esptls.h"
#include "transcript.h"

void sim_write(const void *buf, unsigned len);
void esptls_call_on_stack(void (*fn)(void *), void *arg, void *stack_top);

#define TLS_STACK_LEN 12288
#define PAINT 0xA5

static struct esptls t;
static unsigned char tls_stack[TLS_STACK_LEN] __attribute__((aligned(16)));

struct run {
	const char *fail;
	int err;
	size_t in_pos, out_pos, app_in;
	uint32_t ticks_total, ticks_max;
};

/*
 * Instruction counts: QEMU run with `-icount shift=0` advances CCOUNT by a fixed number of
 * instructions per tick; calibrate() measures that number on a loop of known length, and
 * timed() counts the ticks of each call into the engine.
 */
static uint32_t
ccount(void)
{
	uint32_t v;

	__asm__ volatile("rsr %0, ccount" : "=r"(v));
	return v;
}

static uint32_t
calibrate(void)
{
	uint32_t a, b, n = 1000000;

	a = ccount();
	/* 2 instructions per turn. */
	__asm__ volatile("1: addi %0, %0, -1\n bnez %0, 1b" : "+r"(n));
	b = ccount();
	return b - a == 0 ? 0 : (2000000u + (b - a) / 2) / (b - a);
}

#define TIMED(r, call) do { \
		uint32_t t0_ = ccount(); \
		call; \
		t0_ = ccount() - t0_; \
		(r)->ticks_total += t0_; \
		if (t0_ > (r)->ticks_max) { \
			(r)->ticks_max = t0_; \
		} \
	} while (0)

static void
put(const char *s)
{
	sim_write(s, (unsigned)strlen(s));
}

static void
put_num(unsigned long v)
{
	char buf[24];
	int i = (int)sizeof buf;

	buf[-- i] = 0;
	do {
		buf[-- i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && i > 0);
	put(buf + i);
}

static void
session(void *arg)
{
	struct run *r = arg;
	br_ssl_engine_context *eng;
	int app_sent = 0;
	long guard;

	int rc;

	TIMED(r, rc = esptls_start(&t, T_HOST, T_CA, sizeof T_CA, T_CERT, sizeof T_CERT,
		T_KEY, sizeof T_KEY, NULL, T_FLOOR, T_SEED));
	if (rc != ESPTLS_OK) {
		r->fail = "esptls_start";
		return;
	}
	eng = esptls_engine(&t);
	for (guard = 0; guard < 1000000; guard ++) {
		unsigned st = esptls_state(&t);
		size_t len;
		unsigned char *buf;

		if (st & BR_SSL_CLOSED) {
			r->fail = "engine closed";
			r->err = esptls_last_error(&t);
			return;
		}
		if (st & BR_SSL_SENDREC) {
			buf = br_ssl_engine_sendrec_buf(eng, &len);
			if (r->out_pos + len > sizeof T_OUT
				|| memcmp(buf, T_OUT + r->out_pos, len) != 0)
			{
				r->fail = "sent bytes differ from the host build's";
				return;
			}
			r->out_pos += len;
			TIMED(r, br_ssl_engine_sendrec_ack(eng, len));
			continue;
		}
		if (!app_sent && (st & BR_SSL_SENDAPP)) {
			buf = br_ssl_engine_sendapp_buf(eng, &len);
			if (len < sizeof T_APP_OUT) {
				r->fail = "no room for the CONNECT";
				return;
			}
			memcpy(buf, T_APP_OUT, sizeof T_APP_OUT);
			TIMED(r, br_ssl_engine_sendapp_ack(eng, sizeof T_APP_OUT));
			TIMED(r, br_ssl_engine_flush(eng, 0));
			app_sent = 1;
			continue;
		}
		if (st & BR_SSL_RECVAPP) {
			buf = br_ssl_engine_recvapp_buf(eng, &len);
			if (r->app_in + len > sizeof T_APP_IN
				|| memcmp(buf, T_APP_IN + r->app_in, len) != 0)
			{
				r->fail = "decrypted data differs from the CONNACK";
				return;
			}
			r->app_in += len;
			TIMED(r, br_ssl_engine_recvapp_ack(eng, len));
			if (r->app_in == sizeof T_APP_IN) {
				if (r->out_pos != sizeof T_OUT) {
					r->fail = "sent less than the host build";
				}
				return;
			}
			continue;
		}
		if (st & BR_SSL_RECVREC) {
			size_t n = sizeof T_IN - r->in_pos;

			buf = br_ssl_engine_recvrec_buf(eng, &len);
			if (n == 0) {
				r->fail = "the engine wants more than the broker sent";
				return;
			}
			if (n > len) {
				n = len;
			}
			memcpy(buf, T_IN + r->in_pos, n);
			r->in_pos += n;
			TIMED(r, br_ssl_engine_recvrec_ack(eng, n));
			continue;
		}
		r->fail = "engine stalled";
		return;
	}
	r->fail = "no end";
}

int
qemu_main(void)
{
	struct run r;
	size_t i;
	uint32_t per_tick = calibrate();

	memset(&r, 0, sizeof r);
	memset(tls_stack, PAINT, sizeof tls_stack);
	esptls_call_on_stack(session, &r, tls_stack + sizeof tls_stack);
	for (i = 0; i < sizeof tls_stack && tls_stack[i] == PAINT; i ++) {
	}
	if (r.fail != NULL) {
		put("replay FAILED ");
		put(r.fail);
		put(" err ");
		put_num((unsigned long)r.err);
		put(" in ");
		put_num(r.in_pos);
		put(" out ");
		put_num(r.out_pos);
		put("\n");
		return 1;
	}
	put("replay ok stack_used ");
	put_num(sizeof tls_stack - i);
	put(" of ");
	put_num(sizeof tls_stack);
	put(" sizeof_esptls ");
	put_num(sizeof t);
	/* In thousands of instructions (fits 32 bits). */
	put(" kinsns_total ");
	put_num(r.ticks_total / 1000u * per_tick);
	put(" kinsns_longest_call ");
	put_num(r.ticks_max / 1000u * per_tick);
	put("\n");
	return 0;
}
