/* The bare runtime for programs run on the LX106 in `qemu-system-xtensa -M sim -cpu lx106` (the
 * core's scenarios, the loader run, the TLS replay): entry, stack, .bss, semihosting output and
 * exit, and the integer helpers the ESP8266 has in its mask ROM (Debian's lx106 libgcc leaves
 * them out for that reason; QEMU has no ROM). Only for the emulator runs: the images use the
 * ROM's. The linker script provides _bss_start, _bss_end and _stack_top. */
#include <stdint.h>
#include <string.h>

extern char _bss_start[], _bss_end[], _stack_top[];
/* The program: lx106_sim_main (the core's scenarios), the loader run (qemu_loader.c) or the TLS
 * replay (replay.c). */
int qemu_main(void);

/* Xtensa semihosting (QEMU's `simcall`): a2 = call number, a3.. = arguments. */
static int simcall(int nr, int a, int b, int c)
{
    register int a2 __asm__("a2") = nr;
    register int a3 __asm__("a3") = a;
    register int a4 __asm__("a4") = b;
    register int a5 __asm__("a5") = c;
    __asm__ volatile("simcall" : "+r"(a2) : "r"(a3), "r"(a4), "r"(a5) : "memory");
    return a2;
}

void sim_write(const void *buf, unsigned len)
{
    while (len > 0) {
        int n = simcall(4 /* write */, 1 /* stdout */, (int)buf, (int)len);
        if (n <= 0)
            break;
        buf = (const char *)buf + n;
        len -= (unsigned)n;
    }
}

void __attribute__((noreturn)) sim_exit(int code)
{
    simcall(1 /* exit */, code, 0, 0);
    for (;;) {
    }
}

void __attribute__((noreturn)) abort(void)
{
    sim_write("abort\n", 6);
    sim_exit(134);
}

void __attribute__((noreturn)) qemu_start(void)
{
    memset(_bss_start, 0, (size_t)(_bss_end - _bss_start));
    sim_exit(qemu_main());
}

/* Entry: the stack pointer first (QEMU starts with a1 = 0), then C. */
__asm__(".section .text.entry,\"ax\"\n"
        ".literal_position\n"
        ".literal .Lstack, _stack_top\n"
        ".literal .Lstart, qemu_start\n"
        ".global _start\n"
        ".align 4\n"
        "_start:\n"
        "  l32r a1, .Lstack\n"
        "  l32r a0, .Lstart\n"
        "  callx0 a0\n");

/* Shift-and-subtract division: only shifts by one, compares and subtractions, so the compiler
 * does not call back into these functions. One 64-bit loop serves the 32-bit helpers too: these
 * run only in the emulator, where speed does not matter. */
static uint64_t udivmod64(uint64_t n, uint64_t d, uint64_t *rem)
{
    uint64_t q = 0, r = 0;
    if (d == 0) {
        abort();
    }
    for (int i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        q <<= 1;
        if (r >= d) {
            r -= d;
            q |= 1;
        }
    }
    *rem = r;
    return q;
}

static uint32_t abs32(int32_t v) { return v < 0 ? 0u - (uint32_t)v : (uint32_t)v; }
static uint64_t abs64(int64_t v) { return v < 0 ? 0u - (uint64_t)v : (uint64_t)v; }

uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t n, int64_t d);
uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t n, int32_t d);
int32_t __modsi3(int32_t n, int32_t d);
uint64_t __muldi3(uint64_t a, uint64_t b);

uint64_t __udivdi3(uint64_t n, uint64_t d) { uint64_t r; return udivmod64(n, d, &r); }
uint64_t __umoddi3(uint64_t n, uint64_t d) { uint64_t r; udivmod64(n, d, &r); return r; }
int64_t __divdi3(int64_t n, int64_t d)
{
    uint64_t r, q = udivmod64(abs64(n), abs64(d), &r);
    return ((n < 0) != (d < 0)) ? (int64_t)(0u - q) : (int64_t)q;
}
uint32_t __udivsi3(uint32_t n, uint32_t d) { return (uint32_t)__udivdi3(n, d); }
uint32_t __umodsi3(uint32_t n, uint32_t d) { return (uint32_t)__umoddi3(n, d); }
int32_t __divsi3(int32_t n, int32_t d)
{
    uint32_t q = __udivsi3(abs32(n), abs32(d));
    return ((n < 0) != (d < 0)) ? (int32_t)(0u - q) : (int32_t)q;
}
/* The remainder takes the dividend's sign (C99). */
int32_t __modsi3(int32_t n, int32_t d)
{
    uint32_t r = __umodsi3(abs32(n), abs32(d));
    return n < 0 ? (int32_t)(0u - r) : (int32_t)r;
}

/* 64-bit multiply from 32-bit halves (the LX106 has a 32-bit `mull`). */
uint64_t __muldi3(uint64_t a, uint64_t b)
{
    uint32_t al = (uint32_t)a, ah = (uint32_t)(a >> 32);
    uint32_t bl = (uint32_t)b, bh = (uint32_t)(b >> 32);
    /* al * bl in full, by 16-bit halves. */
    uint32_t a0 = al & 0xFFFF, a1 = al >> 16, b0 = bl & 0xFFFF, b1 = bl >> 16;
    uint32_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint32_t mid = (p00 >> 16) + (p01 & 0xFFFF) + (p10 & 0xFFFF);
    uint32_t lo = (p00 & 0xFFFF) | (mid << 16);
    uint32_t hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16);
    hi += al * bh + ah * bl;
    return ((uint64_t)hi << 32) | lo;
}
