/* The few things the application needs in C: they must run from IRAM before the flash cache
 * is on, or the SDK/libc expect them by name. */
#include <stdint.h>

/* Must equal esp8266_board::layout::BOOT_INFO_RTC / BOOT_INFO_MAGIC ("ESLB"). */
#define BOOT_INFO ((volatile uint32_t *)0x60001100)
#define BOOT_INFO_MAGIC 0x424c5345u

void Cache_Read_Enable(uint8_t odd_even, uint8_t mb_count, uint8_t no_idea);

/* The SDK's startup calls this to map flash before it runs anything from irom0; its own
 * version (weakened in our copy of libmain.a) always maps the first 1 MiB. Ours maps the
 * window of the slot the loader booted, so one build runs from either slot. No record (the
 * image was flashed without our loader): window 0. Lives in IRAM (plain .text, see app.ld). */
void Cache_Read_Enable_New(void)
{
    uint32_t window = 0;
    if (BOOT_INFO[0] == BOOT_INFO_MAGIC && BOOT_INFO[2] < 4)
        window = BOOT_INFO[2];
    Cache_Read_Enable((uint8_t)(window & 1), (uint8_t)(window >> 1), 1);
}

/* Rust's `abort` (a panic in a no-unwind path) and picolibc's: the watchdog resets the chip. */
void abort(void)
{
    for (;;) {
    }
}

/* The SDK's lwIP was built against newlib and classifies characters (isdigit, isxdigit, ...)
 * through newlib's table pointer, which picolibc does not have: newlib's ASCII table, entry 0
 * for EOF. Flags as in newlib's <ctype.h>. */
enum { U = 01, L = 02, N = 04, S = 010, P = 020, C = 040, X = 0100, B = 0200 };
static const char ctype_table[1 + 256] = {
    [1 + 0 ... 1 + 8] = C,
    [1 + 9 ... 1 + 13] = C | S,
    [1 + 14 ... 1 + 31] = C,
    [1 + ' '] = S | B,
    [1 + '!' ... 1 + '/'] = P,
    [1 + '0' ... 1 + '9'] = N,
    [1 + ':' ... 1 + '@'] = P,
    [1 + 'A' ... 1 + 'F'] = U | X,
    [1 + 'G' ... 1 + 'Z'] = U,
    [1 + '[' ... 1 + '`'] = P,
    [1 + 'a' ... 1 + 'f'] = L | X,
    [1 + 'g' ... 1 + 'z'] = L,
    [1 + '{' ... 1 + '~'] = P,
    [1 + 127] = C,
};
const char *__ctype_ptr__ = ctype_table;
