/*
 * void esptls_call_on_stack(void (*fn)(void *), void *arg, void *stack_top)
 *
 * Runs fn(arg) on another stack (the TLS engine's own, allocated once from the heap), then
 * returns on the caller's. LX106, call0 ABI: a0 return address, a1 stack pointer, a2..a4 the
 * arguments; a12..a15 are callee-saved, so fn preserves them and we need not.
 */
	.text
	.literal_position
	.global esptls_call_on_stack
	.type esptls_call_on_stack, @function
	.align 4
esptls_call_on_stack:
	movi	a5, -16
	and	a4, a4, a5		/* 16-byte aligned top */
	addi	a4, a4, -16		/* a frame for what we save */
	s32i	a0, a4, 0		/* our return address */
	s32i	a1, a4, 4		/* the caller's stack pointer */
	mov	a1, a4			/* switch stacks */
	mov	a5, a2
	mov	a2, a3			/* fn(arg) */
	callx0	a5
	l32i	a0, a1, 0
	l32i	a1, a1, 4		/* back on the caller's stack */
	ret
	.size esptls_call_on_stack, . - esptls_call_on_stack
