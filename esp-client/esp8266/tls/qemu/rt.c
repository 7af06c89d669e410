/*
 * The bare runtime for the TLS replay on the LX106 in `qemu-system-xtensa -M sim -cpu lx106`:
 * entry (stack pointer, .bss), semihosting output and exit, and the integer division helpers
 * the ESP8266 keeps in its mask ROM (Debian's lx106 libgcc leaves them out; QEMU has no ROM).
 */
#include <stdint.h>
#include <string.h>

extern char _bss_start[], _bss_end[];
int replay_main(void);

/* Xtensa semihosting (QEMU's `simcall`): a2 = call number, a3.. = arguments. */
static int
simcall(int nr, int a, int b, int c)
{
	register int a2 __asm__("a2") = nr;
	register int a3 __asm__("a3") = a;
	register int a4 __asm__("a4") = b;
	register int a5 __asm__("a5") = c;

	__asm__ volatile("simcall" : "+r"(a2) : "r"(a3), "r"(a4), "r"(a5) : "memory");
	return a2;
}

void
sim_write(const void *buf, unsigned len)
{
	while (len > 0) {
		int n = simcall(4 /* write */, 1 /* stdout */, (int)buf, (int)len);

		if (n <= 0) {
			break;
		}
		buf = (const char *)buf + n;
		len -= (unsigned)n;
	}
}

void __attribute__((noreturn))
sim_exit(int code)
{
	simcall(1 /* exit */, code, 0, 0);
	for (;;) {
	}
}

void __attribute__((noreturn))
abort(void)
{
	sim_write("abort\n", 6);
	sim_exit(134);
}

void __attribute__((noreturn))
replay_start(void)
{
	memset(_bss_start, 0, (size_t)(_bss_end - _bss_start));
	sim_exit(replay_main());
}

/* Entry: the stack pointer first (QEMU starts with a1 = 0), then C. */
__asm__(".section .text.entry,\"ax\"\n"
	".literal_position\n"
	".literal .Lstack, _stack_top\n"
	".literal .Lstart, replay_start\n"
	".global _start\n"
	".align 4\n"
	"_start:\n"
	"  l32r a1, .Lstack\n"
	"  l32r a0, .Lstart\n"
	"  callx0 a0\n");

/* Shift-and-subtract division (only shifts, compares and subtractions, so the compiler does
 * not call back into these). */
static uint64_t
udivmod64(uint64_t n, uint64_t d, uint64_t *rem)
{
	uint64_t q = 0, r = 0;
	int i;

	if (d == 0) {
		abort();
	}
	for (i = 63; i >= 0; i --) {
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

uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t n, int32_t d);
int32_t __modsi3(int32_t n, int32_t d);

uint64_t
__udivdi3(uint64_t n, uint64_t d)
{
	uint64_t r;

	return udivmod64(n, d, &r);
}

uint64_t
__umoddi3(uint64_t n, uint64_t d)
{
	uint64_t r;

	udivmod64(n, d, &r);
	return r;
}

uint32_t
__udivsi3(uint32_t n, uint32_t d)
{
	uint64_t r;

	return (uint32_t)udivmod64(n, d, &r);
}

uint32_t
__umodsi3(uint32_t n, uint32_t d)
{
	uint64_t r;

	udivmod64(n, d, &r);
	return (uint32_t)r;
}

int32_t
__divsi3(int32_t n, int32_t d)
{
	uint64_t r;
	uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
	uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
	uint32_t q = (uint32_t)udivmod64(un, ud, &r);

	return (n < 0) != (d < 0) ? (int32_t)(0u - q) : (int32_t)q;
}

int32_t
__modsi3(int32_t n, int32_t d)
{
	uint64_t r;
	uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
	uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;

	udivmod64(un, ud, &r);
	return n < 0 ? (int32_t)(0u - (uint32_t)r) : (int32_t)r;
}
