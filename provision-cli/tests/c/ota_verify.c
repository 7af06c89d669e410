/*
 * A second OTA bundle v1 verifier, in C, that uses only what docs/ota-bundle.md states (layout,
 * check order, signed message), with OpenSSL's libcrypto for SHA-256 and Ed25519. The test
 * `an_independent_c_verifier_agrees` in provision-cli/tests/ota_cli.rs builds it with `cc ... -lcrypto` and checks that it
 * agrees with `provision ota verify` on good and damaged bundles: proof that the spec suffices.
 *
 * usage: ota_verify BUNDLE TARGET_ID FLOOR KEY_ID=PUBKEY_HEX [KEY_ID=PUBKEY_HEX...]
 * exit 0 and "valid" when the bundle verifies; exit 1 and "<check>: <reason>" otherwise.
 * Streams the image in 4 KiB chunks: constant memory, like a device.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN 72
#define SIG_LEN 64
#define MAX_KEYS 8

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fail(const char *check, const char *reason) {
    printf("%s: %s\n", check, reason);
    return 1;
}

static int unhex(const char *s, uint8_t *out, size_t n) {
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int sha256(const uint8_t *data, size_t len, uint8_t out[32]) {
    unsigned int n = 32;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s BUNDLE TARGET_ID FLOOR KEY_ID=PUBKEY_HEX...\n", argv[0]);
        return 2;
    }
    uint16_t target = (uint16_t)strtoul(argv[2], NULL, 10);
    uint32_t floor_ = (uint32_t)strtoul(argv[3], NULL, 10);
    uint32_t key_ids[MAX_KEYS];
    uint8_t keys[MAX_KEYS][32];
    int nkeys = 0;
    for (int i = 4; i < argc && nkeys < MAX_KEYS; i++, nkeys++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || unhex(eq + 1, keys[nkeys], 32)) return 2;
        key_ids[nkeys] = (uint32_t)strtoul(argv[i], NULL, 10);
    }

    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    uint8_t h[HEADER_LEN], sig[SIG_LEN];
    /* Steps 1-10: header structure and policy. */
    if (fread(h, 1, HEADER_LEN, f) != HEADER_LEN) return fail("length", "truncated header");
    if (memcmp(h, "SOTA", 4) != 0) return fail("magic", "bad magic");
    if (le16(h + 4) != 1) return fail("format-version", "unsupported format version");
    if (le16(h + 6) != HEADER_LEN) return fail("header-length", "bad header length");
    uint16_t t = le16(h + 8);
    if (t != 1 && t != 2) return fail("target", "unknown target");
    if (le16(h + 10) != 0) return fail("flags", "unsupported flags");
    uint32_t image_len = le32(h + 20);
    if (image_len == 0) return fail("image-length", "image length is zero");
    if (t != target) return fail("target", "wrong target");
    uint32_t key_id = le32(h + 12);
    int k = -1;
    for (int i = 0; i < nkeys; i++)
        if (key_ids[i] == key_id) { k = i; break; }
    if (k < 0) return fail("key-id", "unknown key id");

    /* Step 11: Ed25519 over M = SHA-256(header). */
    if (fread(sig, 1, SIG_LEN, f) != SIG_LEN) return fail("length", "truncated signature");
    uint8_t m[32];
    if (sha256(h, HEADER_LEN, m)) return 2;
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, keys[k], 32);
    if (!pk) return fail("key-id", "bad public key");
    EVP_MD_CTX *vctx = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(vctx, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(vctx, sig, SIG_LEN, m, sizeof m) == 1;
    EVP_MD_CTX_free(vctx);
    EVP_PKEY_free(pk);
    if (!ok) return fail("signature", "signature does not verify");

    /* Step 12: anti-rollback, on the now authenticated counter. */
    if (le32(h + 16) < floor_) return fail("security-counter", "below the floor");

    /* Steps 13-14: stream the image, exact length, hash. */
    EVP_MD_CTX *hctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(hctx, EVP_sha256(), NULL);
    uint8_t buf[4096];
    uint64_t got = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (got + n > image_len) return fail("length", "trailing data");
        EVP_DigestUpdate(hctx, buf, n);
        got += n;
    }
    fclose(f);
    if (got < image_len) return fail("length", "truncated image");
    uint8_t digest[32];
    EVP_DigestFinal_ex(hctx, digest, NULL);
    EVP_MD_CTX_free(hctx);
    if (memcmp(digest, h + 40, 32) != 0) return fail("image-hash", "image hash mismatch");
    printf("valid\n");
    return 0;
}
