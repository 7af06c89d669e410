/*
 * Peak heap of one TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 client session with mutual P-256
 * certificates on the NONOS SDK's mbedTLS 2.2.1, against a real Mosquitto: every
 * mbedtls_calloc/free is counted (MBEDTLS_PLATFORM_MEMORY). Also stack-paints the calls.
 *
 *   mbedtls_heap PORT HOST CA.der CERT.der KEY.der CONTENT_LEN
 *
 * Prints "peak_heap N", "stack N", "suite NAME". Exit 0 only if the handshake and an MQTT
 * CONNECT/CONNACK succeeded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/platform.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

unsigned int max_content_len = 2048;

static size_t cur, peak, count;

struct hdr { size_t n; size_t pad; };

static void *
counting_calloc(size_t n, size_t size)
{
	struct hdr *h = calloc(1, sizeof *h + n * size);

	if (h == NULL) {
		return NULL;
	}
	h->n = n * size;
	cur += h->n;
	count ++;
	if (cur > peak) {
		peak = cur;
	}
	return h + 1;
}

static void
counting_free(void *p)
{
	struct hdr *h;

	if (p == NULL) {
		return;
	}
	h = (struct hdr *)p - 1;
	cur -= h->n;
	free(h);
}

static int
entropy_source(void *data, unsigned char *out, size_t len, size_t *olen)
{
	FILE *f = fopen("/dev/urandom", "rb");

	(void)data;
	if (f == NULL || fread(out, 1, len, f) != len) {
		return -1;
	}
	fclose(f);
	*olen = len;
	return 0;
}

static int
net_send(void *ctx, const unsigned char *buf, size_t len)
{
	ssize_t n = send(*(int *)ctx, buf, len, 0);

	return n < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int)n;
}

static int
net_recv(void *ctx, unsigned char *buf, size_t len)
{
	ssize_t n = recv(*(int *)ctx, buf, len, 0);

	return n <= 0 ? MBEDTLS_ERR_SSL_CONN_EOF : (int)n;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = malloc(65536);

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	*len = fread(buf, 1, 65536, f);
	fclose(f);
	return buf;
}

#define PAINT_LEN (64 * 1024)

__attribute__((noinline)) static void
paint(void)
{
	volatile unsigned char *p = __builtin_alloca(PAINT_LEN);
	size_t i;

	for (i = 0; i < PAINT_LEN; i ++) {
		p[i] = 0xA5;
	}
}

__attribute__((noinline)) static size_t
used(void)
{
	volatile unsigned char *p = __builtin_alloca(PAINT_LEN);
	size_t i;

	for (i = 0; i < PAINT_LEN && p[i] == 0xA5; i ++) {
	}
	return PAINT_LEN - i;
}

int
main(int argc, char **argv)
{
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca, cert;
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	unsigned char *der;
	size_t der_len, stack = 0, s;
	struct sockaddr_in sa;
	int fd, ret;
	static const unsigned char connect_pkt[] = {
		0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x1e,
		0x00, 0x04, 'd', 'e', 'v', '1'
	};
	unsigned char connack[4];

	if (argc != 7) {
		fprintf(stderr, "usage: %s PORT HOST CA.der CERT.der KEY.der CONTENT_LEN\n", argv[0]);
		return 2;
	}
	max_content_len = (unsigned)atoi(argv[6]);
	mbedtls_platform_set_calloc_free(counting_calloc, counting_free);

	/* Everything the session allocates counts, from loading the material on. */
	paint();
	mbedtls_ssl_init(&ssl);
	mbedtls_ssl_config_init(&conf);
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&cert);
	mbedtls_pk_init(&key);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_entropy_add_source(&entropy, entropy_source, NULL, 32,
		MBEDTLS_ENTROPY_SOURCE_STRONG);
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0)) != 0) {
		fprintf(stderr, "drbg: -0x%x\n", -ret);
		return 3;
	}
	der = slurp(argv[3], &der_len);
	if ((ret = mbedtls_x509_crt_parse_der(&ca, der, der_len)) != 0) {
		fprintf(stderr, "CA: -0x%x\n", -ret);
		return 3;
	}
	free(der);
	der = slurp(argv[4], &der_len);
	if ((ret = mbedtls_x509_crt_parse_der(&cert, der, der_len)) != 0) {
		fprintf(stderr, "cert: -0x%x\n", -ret);
		return 3;
	}
	free(der);
	der = slurp(argv[5], &der_len);
	if ((ret = mbedtls_pk_parse_key(&key, der, der_len, NULL, 0)) != 0) {
		fprintf(stderr, "key: -0x%x\n", -ret);
		return 3;
	}
	free(der);
	mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
		MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_conf_min_version(&conf, 3, 3);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_own_cert(&conf, &cert, &key);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0
		|| (ret = mbedtls_ssl_set_hostname(&ssl, argv[2])) != 0)
	{
		fprintf(stderr, "setup: -0x%x\n", -ret);
		return 3;
	}
	s = used();
	stack = s > stack ? s : stack;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		return 4;
	}
	mbedtls_ssl_set_bio(&ssl, &fd, net_send, net_recv, NULL);

	paint();
	ret = mbedtls_ssl_handshake(&ssl);
	s = used();
	stack = s > stack ? s : stack;
	if (ret != 0) {
		fprintf(stderr, "handshake failed: -0x%x\n", -ret);
		return 5;
	}
	paint();
	if (mbedtls_ssl_write(&ssl, connect_pkt, sizeof connect_pkt) != (int)sizeof connect_pkt
		|| mbedtls_ssl_read(&ssl, connack, sizeof connack) != 4
		|| connack[0] != 0x20 || connack[3] != 0)
	{
		fprintf(stderr, "no CONNACK\n");
		return 6;
	}
	s = used();
	stack = s > stack ? s : stack;
	printf("suite %s\n", mbedtls_ssl_get_ciphersuite(&ssl));
	printf("content_len %u\n", max_content_len);
	printf("peak_heap %zu\n", peak);
	printf("allocations %zu\n", count);
	printf("stack %zu\n", stack);
	/* What the SDK's glue allocates with os_zalloc per connection (here on main's stack). */
	printf("contexts %zu\n", sizeof ssl + sizeof conf + sizeof ca + sizeof cert + sizeof key
		+ sizeof entropy + sizeof drbg);
	close(fd);
	return 0;
}
