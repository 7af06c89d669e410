/*
 * esptls: the device's TLS session on BearSSL, one configuration for the ESP8266 and for the
 * host build that tests it against a real Mosquitto.
 *
 * - TLS 1.2 only, one cipher suite: ECDHE-ECDSA-AES128-GCM-SHA256, curve P-256 only.
 * - The broker's chain is validated against one CA (P-256 key) at the caller's time floor
 *   (never the system clock), its name is checked against the host the caller connects to,
 *   and optionally the SHA-256 of its SubjectPublicKeyInfo must equal a pin.
 * - The client presents one P-256 certificate and signs with its PKCS#8 key.
 * - No allocation: everything lives in `struct esptls` (record buffers included), plus the
 *   stack of the calls below. docs/esp8266-tls.md gives the measured figures.
 *
 * I/O is the caller's: BearSSL's buffer API (esptls_engine) moves records between the engine
 * and the socket, so the same code runs over a std TcpStream and over the SDK's espconn.
 */
#ifndef ESPTLS_H
#define ESPTLS_H

#include <stddef.h>
#include <stdint.h>

#include "bearssl.h"

/*
 * Record buffers (docs/esp8266-tls.md, "Record buffers").
 * Output 512 + 85: BearSSL asks the broker for max_fragment_length 512 (the largest of
 * 512..4096 that fits both buffers with its overheads, 85 out and 325 in); Mosquitto on
 * OpenSSL >= 1.1.1 acknowledges it, and then no record in either direction carries more than
 * 512 bytes of plaintext. Input 2048 + 5 + 29: a broker that ignores the extension sends one
 * MQTT packet per record, and this buffer still takes a record of 2053 plaintext bytes (5-byte
 * header, 8-byte GCM nonce, 16-byte tag), more than the core's 2048-byte MQTT receive buffer
 * accepts anyway; the broker's max_packet_size bounds the rest.
 */
#define ESPTLS_OBUF_LEN (512 + 85)
#define ESPTLS_IBUF_LEN (2048 + 5 + 29)

/* Largest CA subject DN accepted (ours is a few dozen bytes). */
#define ESPTLS_MAX_DN 256

/* Errors of esptls_start (negative) and fault classes of esptls_fault (positive). */
#define ESPTLS_OK 0
#define ESPTLS_ERR_CA (-1)       /* the CA certificate is not a P-256 DER certificate */
#define ESPTLS_ERR_IDENTITY (-2) /* client certificate or PKCS#8 key unusable or mismatched */
#define ESPTLS_ERR_HOST (-3)     /* host name empty or longer than 255 bytes */
#define ESPTLS_ERR_TIME (-4)     /* time floor 0: no time, so no validity check possible */
#define ESPTLS_ERR_ENGINE (-5)   /* BearSSL refused the parameters (bug) */

#define ESPTLS_FAULT_NONE 0
#define ESPTLS_FAULT_SERVER_CERT 1 /* chain, CA, validity at the floor, name or pin */
#define ESPTLS_FAULT_HANDSHAKE 2   /* alert from the broker, protocol error, I/O */
#define ESPTLS_FAULT_CLOSED 3      /* closed after the handshake */

struct esptls {
	/* Must stay first: BearSSL calls the x509 hooks with a pointer to this field. */
	const br_x509_class *x509_vtable;
	br_x509_minimal_context x509;
	br_ssl_client_context cc;
	br_x509_trust_anchor ta;
	br_ec_private_key sk;
	br_x509_certificate chain;
	unsigned char ta_dn[ESPTLS_MAX_DN];
	unsigned char ta_q[65];
	unsigned char sk_x[32];
	unsigned char pin[32];
	unsigned char has_pin;
	unsigned char pin_failed;
	unsigned char established;
	/* The decoders run before the handshake only, while the record buffers are idle. */
	union {
		struct {
			unsigned char ibuf[ESPTLS_IBUF_LEN];
			unsigned char obuf[ESPTLS_OBUF_LEN];
		} io;
		br_x509_decoder_context xd;
		br_skey_decoder_context kd;
	} u;
};

/*
 * Starts a client handshake. `seed` is 32 bytes from a good RNG. The CA and private key are
 * decoded and copied (the key scalar only); the client certificate is referenced, so the
 * caller re-points it with esptls_rebind before each engine step if its memory may move.
 * `pin` is NULL or 32 bytes. Returns ESPTLS_OK or a negative ESPTLS_ERR_*.
 */
int esptls_start(struct esptls *t, const char *host,
	const unsigned char *ca_der, size_t ca_len,
	const unsigned char *cert_der, size_t cert_len,
	const unsigned char *key_der, size_t key_len,
	const unsigned char *pin, uint64_t time_floor_unix,
	const unsigned char seed[32]);

/* Points the engine at the client certificate again (no state change). */
void esptls_rebind(struct esptls *t, const unsigned char *cert_der, size_t cert_len);

/* The engine, for BearSSL's buffer API (br_ssl_engine_sendrec_buf and friends). */
br_ssl_engine_context *esptls_engine(struct esptls *t);

/*
 * BR_SSL_* state flags (BR_SSL_CLOSED, SENDREC, RECVREC, SENDAPP, RECVAPP); also records that
 * the handshake completed (first time SENDAPP shows).
 */
unsigned esptls_state(struct esptls *t);

/* The transport failed (socket error, or TCP closed under the engine): the engine closes with
 * BR_ERR_IO. */
void esptls_fail_io(struct esptls *t);

/* 1 once the handshake completed. */
int esptls_established(const struct esptls *t);

/* After BR_SSL_CLOSED: which fault (ESPTLS_FAULT_*), and BearSSL's own error code. */
int esptls_fault(const struct esptls *t);
int esptls_last_error(const struct esptls *t);

/* 1 if the chain validated but the broker's key did not match the pin. */
int esptls_pin_failed(const struct esptls *t);

/* After the handshake: protocol version (0x0303), cipher suite, 1 if the broker acknowledged
 * max_fragment_length. */
unsigned esptls_version(const struct esptls *t);
unsigned esptls_cipher_suite(const struct esptls *t);
int esptls_mfln_negotiated(const struct esptls *t);

/* sizeof(struct esptls), for callers that allocate it without the header (Rust FFI). */
size_t esptls_context_size(void);

/* Wipes the private key copy and the whole context. */
void esptls_wipe(struct esptls *t);

/* Error code BearSSL reports when the pin does not match (the engine sees "not trusted"). */
#define ESPTLS_BR_ERR_PIN BR_ERR_X509_NOT_TRUSTED

#endif
