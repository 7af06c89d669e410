/* The loader's last step: call the application's entry (the SDK's call_user_start1), on the
 * stack the ROM gave the loader. Never returns. */
#include <stdint.h>

void __attribute__((noreturn)) loader_jump(uint32_t entry)
{
    ((void (*)(void))entry)();
    __builtin_unreachable();
}

void __attribute__((noreturn)) loader_halt(void)
{
    for (;;) {
    }
}
