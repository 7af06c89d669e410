/*
 * PROGMEM for the NONOS SDK build of BearSSL (the fork includes <sys/pgmspace.h> when ESP8266
 * is defined; the Arduino core normally provides it). Constants marked PROGMEM go to flash
 * (.irom.text, which the SDK's linker script maps into irom0), and flash may only be read with
 * aligned 32-bit loads: every accessor below reads the containing word and shifts.
 */
#ifndef ESPTLS_SYS_PGMSPACE_H
#define ESPTLS_SYS_PGMSPACE_H

#include <stddef.h>
#include <stdint.h>

/*
 * One section per object (as the Arduino core does): a table of pointers is writable data to
 * the compiler, a table of bytes is not, and both in one section would conflict. The firmware's
 * linker script places `.irom.text.*` of this library in irom0.
 */
#define ESPTLS_STR2(x) #x
#define ESPTLS_STR(x) ESPTLS_STR2(x)
#define PROGMEM __attribute__((section("\".irom.text." __FILE__ "." \
	ESPTLS_STR(__LINE__) "." ESPTLS_STR(__COUNTER__) "\""), aligned(4)))
#define ICACHE_RODATA_ATTR PROGMEM
#define PGM_P const char *
#define PGM_VOID_P const void *
#define PSTR(s) (s)

static inline uint8_t
esptls_pgm_byte(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	uint32_t w = *(const volatile uint32_t *)(a & ~(uintptr_t)3);

	return (uint8_t)(w >> ((a & 3u) * 8u));
}

static inline uint16_t
esptls_pgm_word(const void *addr)
{
	const uint8_t *p = (const uint8_t *)addr;

	return (uint16_t)(esptls_pgm_byte(p) | ((uint16_t)esptls_pgm_byte(p + 1) << 8));
}

static inline uint32_t
esptls_pgm_dword(const void *addr)
{
	const uint8_t *p = (const uint8_t *)addr;

	return (uint32_t)esptls_pgm_word(p) | ((uint32_t)esptls_pgm_word(p + 2) << 16);
}

#define pgm_read_byte(addr) esptls_pgm_byte((const void *)(addr))
#define pgm_read_word(addr) esptls_pgm_word((const void *)(addr))
#define pgm_read_dword(addr) esptls_pgm_dword((const void *)(addr))
#define pgm_read_ptr(addr) ((void *)(uintptr_t)esptls_pgm_dword((const void *)(addr)))
#define pgm_read_byte_near(addr) pgm_read_byte(addr)
#define pgm_read_word_near(addr) pgm_read_word(addr)
#define pgm_read_dword_near(addr) pgm_read_dword(addr)
#define pgm_read_ptr_near(addr) pgm_read_ptr(addr)
#define pgm_read_byte_far(addr) pgm_read_byte(addr)
#define pgm_read_word_far(addr) pgm_read_word(addr)
#define pgm_read_dword_far(addr) pgm_read_dword(addr)
#define pgm_read_ptr_far(addr) pgm_read_ptr(addr)

static inline void *
memcpy_P(void *dst, const void *src, size_t n)
{
	uint8_t *d = (uint8_t *)dst;
	const uint8_t *s = (const uint8_t *)src;

	while (n -- > 0) {
		*d ++ = esptls_pgm_byte(s ++);
	}
	return dst;
}

/* Both sides are read word-wise: BearSSL passes flash pointers on either side. */
static inline int
memcmp_P(const void *a, const void *b, size_t n)
{
	const uint8_t *x = (const uint8_t *)a;
	const uint8_t *y = (const uint8_t *)b;

	while (n -- > 0) {
		uint8_t c = esptls_pgm_byte(x ++);
		uint8_t d = esptls_pgm_byte(y ++);

		if (c != d) {
			return c < d ? -1 : 1;
		}
	}
	return 0;
}

#endif
