/* The loader on the LX106 in QEMU: the same loader object as loader.bin, with the mask ROM
 * functions it calls played by this file over a flash image that QEMU puts at 0x50000000
 * (`-device loader,file=flash.bin,addr=0x50000000,force-raw=on`). At the jump it reports what
 * a test can check, then exits: the entry, the RTC boot record, both boot state copies, and a
 * CRC-32 of application IRAM and DRAM as loaded. */
#include <stdint.h>
#include <string.h>

#define FLASH ((uint8_t *)0x50000000)
#define FLASH_SIZE (2u << 20) /* the two windows the slots use */
#define SECTOR 4096u

void sim_write(const void *buf, unsigned len);
void __attribute__((noreturn)) sim_exit(int code);
void __attribute__((noreturn)) loader_main(void);

int qemu_main(void)
{
    loader_main();
}

void __attribute__((noreturn)) loader_halt(void)
{
    sim_exit(2);
}

static int in_flash(uint32_t addr, uint32_t len)
{
    return addr <= FLASH_SIZE && len <= FLASH_SIZE - addr;
}

uint32_t SPIRead(uint32_t addr, uint32_t *dst, uint32_t len)
{
    if (!in_flash(addr, len) || (addr & 3) || ((uintptr_t)dst & 3))
        return 1;
    /* Word copies: IRAM takes only 32-bit stores, as on the chip. */
    for (uint32_t i = 0; i < len / 4; i++) {
        uint32_t w;
        memcpy(&w, FLASH + addr + 4 * i, 4);
        dst[i] = w;
    }
    return 0;
}

uint32_t SPIWrite(uint32_t addr, const uint32_t *src, uint32_t len)
{
    if (!in_flash(addr, len) || (addr & 3) || (len & 3))
        return 1;
    /* NOR: a write only clears bits. */
    for (uint32_t i = 0; i < len; i++)
        FLASH[addr + i] &= ((const uint8_t *)src)[i];
    return 0;
}

uint32_t SPIEraseSector(uint32_t sector)
{
    if (!in_flash(sector * SECTOR, SECTOR))
        return 1;
    memset(FLASH + sector * SECTOR, 0xFF, SECTOR);
    return 0;
}

uint32_t uart_tx_one_char(uint8_t c)
{
    sim_write(&c, 1);
    return 0;
}

static uint32_t crc32(const volatile uint32_t *p, uint32_t words)
{
    uint32_t c = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < words; i++) {
        uint32_t w = p[i];
        for (int b = 0; b < 4; b++) {
            c ^= (w >> (8 * b)) & 0xFF;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
    }
    return ~c;
}

static void hex(const char *label, const uint8_t *p, unsigned n)
{
    static const char digits[] = "0123456789abcdef";
    char line[8 + 2 * 64 + 2];
    unsigned k = 0;
    while (*label)
        line[k++] = *label++;
    for (unsigned i = 0; i < n && i < 64; i++) {
        line[k++] = digits[p[i] >> 4];
        line[k++] = digits[p[i] & 15];
    }
    line[k++] = '\n';
    sim_write(line, k);
}

static void word(const char *label, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    hex(label, b, 4);
}

void __attribute__((noreturn)) loader_jump(uint32_t entry)
{
    const volatile uint32_t *rtc = (const volatile uint32_t *)0x60001100;
    word("jump ", entry);
    word("rtc_magic ", rtc[0]);
    word("rtc_slot ", rtc[1]);
    word("rtc_window ", rtc[2]);
    hex("state0 ", FLASH + 0x100000, 32);
    hex("state1 ", FLASH + 0x101000, 32);
    word("iram_crc ", crc32((const volatile uint32_t *)0x40100000, 0x8000 / 4));
    word("dram_crc ", crc32((const volatile uint32_t *)0x3FFE8000, 0x10000 / 4));
    sim_exit(0);
}
