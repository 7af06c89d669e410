/*
 * esptls: see esptls.h. Portable C99 over BearSSL, no allocation, no clock, no RNG of its own.
 */
#include <string.h>

#include "esptls.h"

/* The only cipher suite offered. */
static const uint16_t esptls_suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
};

/* DER of a P-256 SubjectPublicKeyInfo up to the 65-byte uncompressed point. */
static const unsigned char p256_spki_prefix[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00
};

/* Days from 0000-01-01 (BearSSL's origin) to 1970-01-01. */
#define DAYS_TO_UNIX_EPOCH 719528u

/* ---- x509 wrapper: BearSSL's minimal validator, then the optional SPKI pin ---- */

static struct esptls *
from_x509(const br_x509_class *const *ctx)
{
	return (struct esptls *)(void *)ctx;
}

static void
xw_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct esptls *t = from_x509(ctx);

	t->pin_failed = 0;
	t->x509.vtable->start_chain(&t->x509.vtable, server_name);
}

static void
xw_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct esptls *t = from_x509(ctx);

	t->x509.vtable->start_cert(&t->x509.vtable, length);
}

static void
xw_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct esptls *t = from_x509(ctx);

	t->x509.vtable->append(&t->x509.vtable, buf, len);
}

static void
xw_end_cert(const br_x509_class **ctx)
{
	struct esptls *t = from_x509(ctx);

	t->x509.vtable->end_cert(&t->x509.vtable);
}

static int
pin_matches(const struct esptls *t, const br_x509_pkey *pk)
{
	br_sha256_context h;
	unsigned char out[32];

	if (pk == NULL || pk->key_type != BR_KEYTYPE_EC
		|| pk->key.ec.curve != BR_EC_secp256r1 || pk->key.ec.qlen != 65)
	{
		return 0;
	}
	br_sha256_init(&h);
	br_sha256_update(&h, p256_spki_prefix, sizeof p256_spki_prefix);
	br_sha256_update(&h, pk->key.ec.q, pk->key.ec.qlen);
	br_sha256_out(&h, out);
	return memcmp(out, t->pin, sizeof out) == 0;
}

static unsigned
xw_end_chain(const br_x509_class **ctx)
{
	struct esptls *t = from_x509(ctx);
	unsigned err;

	err = t->x509.vtable->end_chain(&t->x509.vtable);
	if (err != BR_ERR_OK) {
		return err;
	}
	if (t->has_pin
		&& !pin_matches(t, t->x509.vtable->get_pkey(&t->x509.vtable, NULL)))
	{
		t->pin_failed = 1;
		return ESPTLS_BR_ERR_PIN;
	}
	return BR_ERR_OK;
}

static const br_x509_pkey *
xw_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	struct esptls *t = from_x509(ctx);

	return t->x509.vtable->get_pkey(&t->x509.vtable, usages);
}

static const br_x509_class esptls_x509_vtable = {
	sizeof(struct esptls),
	xw_start_chain,
	xw_start_cert,
	xw_append,
	xw_end_cert,
	xw_end_chain,
	xw_get_pkey
};

/* ---- decoding the material ---- */

struct dn_sink {
	unsigned char *buf;
	size_t len;
	int overflow;
};

static void
dn_append(void *ctx, const void *data, size_t len)
{
	struct dn_sink *s = ctx;

	if (s->overflow || len > ESPTLS_MAX_DN - s->len) {
		s->overflow = 1;
		return;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

/* The P-256 public point of a DER certificate, copied into q[65]; 0 if not one. */
static int
cert_p256_point(const unsigned char *der, size_t len,
	br_x509_decoder_context *xd, unsigned char q[65], struct dn_sink *dn)
{
	const br_x509_pkey *pk;

	br_x509_decoder_init(xd, dn != NULL ? dn_append : 0, dn, 0, 0);
	br_x509_decoder_push(xd, der, len);
	pk = br_x509_decoder_get_pkey(xd);
	if (br_x509_decoder_last_error(xd) != 0 || pk == NULL
		|| pk->key_type != BR_KEYTYPE_EC
		|| pk->key.ec.curve != BR_EC_secp256r1 || pk->key.ec.qlen != 65)
	{
		return 0;
	}
	memcpy(q, pk->key.ec.q, 65);
	return 1;
}

int
esptls_start(struct esptls *t, const char *host,
	const unsigned char *ca_der, size_t ca_len,
	const unsigned char *cert_der, size_t cert_len,
	const unsigned char *key_der, size_t key_len,
	const unsigned char *pin, uint64_t time_floor_unix,
	const unsigned char seed[32])
{
	br_ssl_engine_context *eng;
	struct dn_sink dn;
	const br_ec_private_key *sk;
	br_ec_public_key pub;
	unsigned char pub_buf[BR_EC_KBUF_PUB_MAX_SIZE];
	unsigned char cert_q[65];
	size_t host_len;
	uint64_t days;

	memset(t, 0, sizeof *t);
	host_len = host != NULL ? strlen(host) : 0;
	if (host_len == 0 || host_len > 255) {
		return ESPTLS_ERR_HOST;
	}
	if (time_floor_unix == 0) {
		return ESPTLS_ERR_TIME;
	}
	days = time_floor_unix / 86400u + DAYS_TO_UNIX_EPOCH;
	if (days > 0xFFFFFFFFu) {
		return ESPTLS_ERR_TIME;
	}

	/* CA: must be a CA certificate with a P-256 key; keep its DN and point. */
	dn.buf = t->ta_dn;
	dn.len = 0;
	dn.overflow = 0;
	if (!cert_p256_point(ca_der, ca_len, &t->u.xd, t->ta_q, &dn)
		|| dn.overflow || !br_x509_decoder_isCA(&t->u.xd))
	{
		esptls_wipe(t);
		return ESPTLS_ERR_CA;
	}
	t->ta.dn.data = t->ta_dn;
	t->ta.dn.len = dn.len;
	t->ta.flags = BR_X509_TA_CA;
	t->ta.pkey.key_type = BR_KEYTYPE_EC;
	t->ta.pkey.key.ec.curve = BR_EC_secp256r1;
	t->ta.pkey.key.ec.q = t->ta_q;
	t->ta.pkey.key.ec.qlen = sizeof t->ta_q;

	/* Key: PKCS#8 (or SEC1) P-256; keep the scalar only. */
	br_skey_decoder_init(&t->u.kd);
	br_skey_decoder_push(&t->u.kd, key_der, key_len);
	sk = br_skey_decoder_get_ec(&t->u.kd);
	if (br_skey_decoder_last_error(&t->u.kd) != 0 || sk == NULL
		|| sk->curve != BR_EC_secp256r1 || sk->xlen == 0
		|| sk->xlen > sizeof t->sk_x)
	{
		esptls_wipe(t);
		return ESPTLS_ERR_IDENTITY;
	}
	memcpy(t->sk_x, sk->x, sk->xlen);
	t->sk.curve = BR_EC_secp256r1;
	t->sk.x = t->sk_x;
	t->sk.xlen = sk->xlen;
	memset(&t->u, 0, sizeof t->u);

	/* Client certificate: a P-256 key, and the one that belongs to our private key. */
	if (!cert_p256_point(cert_der, cert_len, &t->u.xd, cert_q, NULL)
		|| br_ec_compute_pub(&br_ec_p256_m15, &pub, pub_buf, &t->sk) != 65
		|| memcmp(pub.q, cert_q, 65) != 0)
	{
		esptls_wipe(t);
		return ESPTLS_ERR_IDENTITY;
	}
	memset(&t->u, 0, sizeof t->u);

	if (pin != NULL) {
		memcpy(t->pin, pin, sizeof t->pin);
		t->has_pin = 1;
	}

	/* Validator: our one CA, SHA-256 signatures, ECDSA P-256, at the floor. */
	br_x509_minimal_init(&t->x509, &br_sha256_vtable, &t->ta, 1);
	br_x509_minimal_set_hash(&t->x509, br_sha256_ID, &br_sha256_vtable);
	br_x509_minimal_set_ecdsa(&t->x509, &br_ec_p256_m15, br_ecdsa_i15_vrfy_asn1);
	br_x509_minimal_set_time(&t->x509, (uint32_t)days,
		(uint32_t)(time_floor_unix % 86400u));
	t->x509_vtable = &esptls_x509_vtable;

	/* Engine: exactly the primitives the one suite needs. */
	br_ssl_client_zero(&t->cc);
	eng = &t->cc.eng;
	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(eng, esptls_suites,
		sizeof esptls_suites / sizeof esptls_suites[0]);
	br_ssl_engine_set_ec(eng, &br_ec_p256_m15);
	br_ssl_engine_set_ecdsa(eng, br_ecdsa_i15_vrfy_asn1);
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_prf_sha256(eng, br_tls12_sha256_prf);
	br_ssl_engine_set_gcm(eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
	br_ssl_engine_set_aes_ctr(eng, &br_aes_ct_ctr_vtable);
	br_ssl_engine_set_ghash(eng, br_ghash_ctmul32);
	br_ssl_engine_set_x509(eng, &t->x509_vtable);
	br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
	t->chain.data = (unsigned char *)cert_der;
	t->chain.data_len = cert_len;
	br_ssl_client_set_single_ec(&t->cc, &t->chain, 1, &t->sk,
		BR_KEYTYPE_SIGN, BR_KEYTYPE_EC, &br_ec_p256_m15, br_ecdsa_i15_sign_asn1);
	br_ssl_engine_set_buffers_bidi(eng, t->u.io.ibuf, sizeof t->u.io.ibuf,
		t->u.io.obuf, sizeof t->u.io.obuf);
	br_ssl_engine_inject_entropy(eng, seed, 32);
	if (!br_ssl_client_reset(&t->cc, host, 0)) {
		esptls_wipe(t);
		return ESPTLS_ERR_ENGINE;
	}
	return ESPTLS_OK;
}

void
esptls_rebind(struct esptls *t, const unsigned char *cert_der, size_t cert_len)
{
	t->chain.data = (unsigned char *)cert_der;
	t->chain.data_len = cert_len;
}

br_ssl_engine_context *
esptls_engine(struct esptls *t)
{
	return &t->cc.eng;
}

unsigned
esptls_state(struct esptls *t)
{
	unsigned st = br_ssl_engine_current_state(&t->cc.eng);

	if (st & BR_SSL_SENDAPP) {
		t->established = 1;
	}
	return st;
}

/* BearSSL's internal "fail the engine" (src/inner.h), the only way to report a dead transport. */
void br_ssl_engine_fail(br_ssl_engine_context *cc, int err);

void
esptls_fail_io(struct esptls *t)
{
	br_ssl_engine_fail(&t->cc.eng, BR_ERR_IO);
}

int
esptls_established(const struct esptls *t)
{
	return t->established;
}

int
esptls_last_error(const struct esptls *t)
{
	return br_ssl_engine_last_error(&t->cc.eng);
}

int
esptls_pin_failed(const struct esptls *t)
{
	return t->pin_failed;
}

int
esptls_fault(const struct esptls *t)
{
	int err = br_ssl_engine_last_error(&t->cc.eng);

	if (t->pin_failed || (err > BR_ERR_X509_OK && err < 64)) {
		return ESPTLS_FAULT_SERVER_CERT;
	}
	if (t->established) {
		return ESPTLS_FAULT_CLOSED;
	}
	return ESPTLS_FAULT_HANDSHAKE;
}

unsigned
esptls_version(const struct esptls *t)
{
	return t->cc.eng.session.version;
}

unsigned
esptls_cipher_suite(const struct esptls *t)
{
	return t->cc.eng.session.cipher_suite;
}

int
esptls_mfln_negotiated(const struct esptls *t)
{
	return t->cc.eng.max_frag_len_negotiated != 0;
}

size_t
esptls_context_size(void)
{
	return sizeof(struct esptls);
}

void
esptls_wipe(struct esptls *t)
{
	volatile unsigned char *p = (volatile unsigned char *)t;
	size_t n = sizeof *t;

	while (n -- > 0) {
		*p ++ = 0;
	}
}
