/*
 * Stack painting for the host measurement: paint `n` bytes below the caller's frame, run the
 * TLS code, then find the deepest byte that changed. Both helpers must be called from the same
 * function (same stack depth); the result is an upper bound of what ran in between.
 */
#include <stddef.h>
#include <string.h>

#define PAINT 0xA5

__attribute__((noinline)) void
esptls_stack_paint(size_t n)
{
	volatile unsigned char *p = __builtin_alloca(n);
	size_t i;

	for (i = 0; i < n; i ++) {
		p[i] = PAINT;
	}
}

__attribute__((noinline)) size_t
esptls_stack_used(size_t n)
{
	volatile unsigned char *p = __builtin_alloca(n);
	size_t i;

	/* p[0] is the lowest address: the deepest the stack went is the first changed byte. */
	for (i = 0; i < n; i ++) {
		if (p[i] != PAINT) {
			return n - i;
		}
	}
	return 0;
}
