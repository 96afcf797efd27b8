/*
 * The board-independent half of board.h: text output helpers, the work counter's unit
 * conversion, and the semihosting exit. The register-level half lives in the
 * uart_*.c / counter_*.c drivers chosen by the board's TOML.
 */
#include "board.h"

#include "drivers.h"

#define DEMCR 0xE000EDFCu
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL 0xE0001000u
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT 0xE0001004u

/* Semihosting (Arm "Semihosting for AArch32 and AArch64"): SYS_EXIT_EXTENDED takes a
 * {reason, code} block; reason ADP_Stopped_ApplicationExit makes the host exit with code. */
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static bool uart_ready;
static bool counting_cycles;

__attribute__((weak)) void board_platform_init(void)
{
}

/* Also used by the fault handler, which may run before main() got to board_init(). */
void board_uart_init_once(void)
{
    if (!uart_ready) {
        board_platform_init();
        uart_init();
        uart_ready = true;
    }
}

/*
 * Real cores count cycles in the DWT; QEMU implements the registers but the count stays
 * at zero. A counter that moves means silicon, where cycles are the honest measure;
 * otherwise the board timer under -icount gives instructions.
 */
static bool cycle_counter_runs(void)
{
    REG32(DEMCR) |= DEMCR_TRCENA;
    if (REG32(DWT_CTRL) & DWT_CTRL_NOCYCCNT) {
        return false;
    }
    REG32(DWT_CYCCNT) = 0;
    REG32(DWT_CTRL) |= DWT_CTRL_CYCCNTENA;
    for (volatile int spin = 0; spin < 8; spin++) {
    }
    return REG32(DWT_CYCCNT) != 0;
}

void board_init(void)
{
    board_uart_init_once();
    counting_cycles = cycle_counter_runs();
    board_counter_start();
}

const char *board_name(void)
{
    return BOARD_NAME;
}

void board_putc(uint8_t byte)
{
    uart_tx(byte);
}

bool board_rx_ready(void)
{
    return uart_rx_ready();
}

int board_getc(void)
{
    while (!uart_rx_ready()) {
    }
    return uart_rx();
}

int board_try_getc(void)
{
    return uart_rx_ready() ? uart_rx() : -1;
}

void board_write(const void *buf, size_t len)
{
    const uint8_t *bytes = buf;
    for (size_t i = 0; i < len; i++) {
        uart_tx(bytes[i]);
    }
}

void board_read(void *buf, size_t len)
{
    uint8_t *bytes = buf;
    for (size_t i = 0; i < len; i++) {
        bytes[i] = (uint8_t)board_getc();
    }
}

void board_puts(const char *text)
{
    while (*text) {
        uart_tx((uint8_t)*text++);
    }
}

void board_put_dec(uint64_t value)
{
    char digits[20]; /* 2^64 - 1 has 20 decimal digits */
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n) {
        uart_tx((uint8_t)digits[--n]);
    }
}

void board_put_hex32(uint32_t value)
{
    board_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        uart_tx((uint8_t)"0123456789abcdef"[(value >> shift) & 0xFu]);
    }
}

void board_counter_start(void)
{
    if (counting_cycles) {
        REG32(DWT_CYCCNT) = 0;
    } else {
        counter_restart();
    }
}

uint64_t board_counter_read(void)
{
    if (counting_cycles) {
        return REG32(DWT_CYCCNT); /* 32 bits: valid up to 2^32 cycles */
    }
    /* Ticks to ns (= instructions under -icount shift=0); the ratio 1e9 / BOARD_COUNTER_HZ
     * is reduced at build time so the product stays far from 64-bit overflow. */
    return counter_ticks() * BOARD_COUNTER_NS_NUM / BOARD_COUNTER_NS_DEN;
}

const char *board_counter_unit(void)
{
    return counting_cycles ? "cycles" : "instructions";
}

void board_exit(int code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t op __asm__("r0") = SEMIHOSTING_SYS_EXIT_EXTENDED;
    register uint32_t *arg __asm__("r1") = block;
    __asm__ volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
    /* Only reached if a debugger ignored the request. */
    for (;;) {
        __asm__ volatile("cpsid i\n wfi");
    }
}
