/*
 * The board-independent half of board.h: interrupt-driven serial receive, text output
 * helpers, the work counter's unit conversion, and the semihosting exit. The
 * register-level half lives in the uart_*.c / counter_*.c drivers chosen by the board's
 * TOML.
 */
#include "board.h"

#include "drivers.h"

#define DEMCR 0xE000EDFCu
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL 0xE0001000u
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT 0xE0001004u
#define SCB_VTOR 0xE000ED08u
#define NVIC_ISER 0xE000E100u
#define NVIC_ICER 0xE000E180u

/*
 * Received bytes wait here until the protocol loop takes them. The UART interrupt keeps
 * filling it while the model runs, so the next request streams in during an inference
 * instead of after it. When it is full the interrupt stops taking bytes: the UART holds
 * the next one, and the host (or QEMU) waits, so nothing is lost. Big enough by default
 * for a whole request of the largest frame (4 KB payload); a power of two.
 */
#ifndef BOARD_RX_BUFFER_BYTES
#define BOARD_RX_BUFFER_BYTES 4096u
#endif
_Static_assert((BOARD_RX_BUFFER_BYTES & (BOARD_RX_BUFFER_BYTES - 1u)) == 0,
               "BOARD_RX_BUFFER_BYTES must be a power of two");

static struct {
    uint8_t data[BOARD_RX_BUFFER_BYTES];
    volatile uint32_t head;  /* bytes in, counting on; moved with interrupts masked */
    volatile uint32_t tail;  /* bytes out */
    volatile bool paused;    /* the UART's lines are off because the buffer was full */
    bool enabled;            /* interrupt-driven receive is running (after board_init) */
} rx;

/* The vector table moves to RAM so the UART's lines can get a handler; startup.c's table
 * in flash sends every interrupt to the fault report. VTOR needs the table aligned to its
 * size rounded up to a power of two. */
#define VECTOR_COUNT (16 + BOARD_IRQ_COUNT)
#define VECTOR_ALIGN (VECTOR_COUNT <= 32 ? 128 : VECTOR_COUNT <= 64 ? 256 : VECTOR_COUNT <= 128 ? 512 : 1024)
_Static_assert(VECTOR_COUNT <= 256, "vector table larger than VECTOR_ALIGN allows");
static uint32_t ram_vectors[VECTOR_COUNT] __attribute__((aligned(VECTOR_ALIGN)));

/* Semihosting (Arm "Semihosting for AArch32 and AArch64"): SYS_EXIT_EXTENDED takes a
 * {reason, code} block; reason ADP_Stopped_ApplicationExit makes the host exit with code. */
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

#define SEMIHOSTING_SYS_OPEN 0x01u
#define SEMIHOSTING_SYS_CLOSE 0x02u
#define SEMIHOSTING_SYS_WRITE 0x05u
#define SEMIHOSTING_SYS_READ 0x06u
#define SEMIHOSTING_MODE_RB 1u /* fopen modes by number: "rb", "wb" */
#define SEMIHOSTING_MODE_WB 5u

static bool uart_ready;
static bool counting_cycles;

/* The semihosting link (board.h). Received bytes go into rx.data like the UART's, one
 * SYS_READ filling what it can; sent bytes wait in tx until a frame ends (board_flush)
 * or the board waits for input, so a response costs one SYS_WRITE. */
#ifndef BOARD_LINK_TX_BYTES
#define BOARD_LINK_TX_BYTES 256u
#endif
#define BOARD_LINK_PATH_MAX 200u
static struct {
    bool on;
    uint32_t in, out; /* host file handles */
    uint32_t tx_len;
    uint8_t tx[BOARD_LINK_TX_BYTES];
} link;

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

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

static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* Switch the UART's interrupt lines on or off in the NVIC. Pausing is done here rather
 * than in the UART: not every UART model lowers its line when its own enable bit is
 * cleared, and a line that stays high would re-enter the handler forever. */
static void uart_lines(bool on)
{
    for (unsigned i = 0; i < UART_IRQ_LINES_MAX; i++) {
        int line = uart_irq_lines[i];
        if (line >= 0 && line < BOARD_IRQ_COUNT) {
            REG32((on ? NVIC_ISER : NVIC_ICER) + 4u * ((unsigned)line / 32u)) =
                1u << ((unsigned)line % 32u);
        }
    }
    __asm__ volatile("dsb\n isb" ::: "memory");
}

/* Move what the UART holds into the buffer; with interrupts masked or from the handler. */
static void rx_drain(void)
{
    while (uart_rx_ready()) {
        if (rx.head - rx.tail == BOARD_RX_BUFFER_BYTES) {
            uart_lines(false); /* the byte stays in the UART until there is room */
            rx.paused = true;
            return;
        }
        rx.data[rx.head & (BOARD_RX_BUFFER_BYTES - 1u)] = uart_rx();
        rx.head++;
    }
}

static void uart_irq_handler(void)
{
    uart_rx_irq_ack(); /* first: a byte that arrives while draining raises it again */
    rx_drain();
}

static void rx_interrupts_start(void)
{
    volatile uint32_t *flash_vectors = (volatile uint32_t *)(uintptr_t)REG32(SCB_VTOR);
    for (unsigned i = 0; i < VECTOR_COUNT; i++) {
        ram_vectors[i] = flash_vectors[i];
    }
    for (unsigned i = 0; i < UART_IRQ_LINES_MAX; i++) {
        int line = uart_irq_lines[i];
        if (line >= 0 && line < BOARD_IRQ_COUNT) {
            ram_vectors[16 + line] = (uint32_t)(uintptr_t)uart_irq_handler;
        }
    }
    __asm__ volatile("dsb" ::: "memory");
    REG32(SCB_VTOR) = (uint32_t)(uintptr_t)ram_vectors;
    __asm__ volatile("dsb\n isb" ::: "memory");
    rx.enabled = true;
    uart_rx_irq(true);
    uart_lines(true);
    uint32_t primask = irq_save();
    rx_drain(); /* a byte that arrived before the interrupt was on raised none */
    irq_restore(primask);
}

void board_init(void)
{
    board_uart_init_once();
    counting_cycles = cycle_counter_runs();
    rx_interrupts_start();
    board_counter_start();
}

const char *board_name(void)
{
    return BOARD_NAME;
}

static void link_close(void);

void board_flush(void)
{
    if (!link.on || link.tx_len == 0) {
        return;
    }
    uint32_t block[3] = {link.out, (uint32_t)(uintptr_t)link.tx, link.tx_len};
    uint32_t left = semihost(SEMIHOSTING_SYS_WRITE, block);
    link.tx_len = 0;
    if (left != 0) {
        link_close(); /* nobody reads the pipe any more: the host has gone */
    }
}

static void put_byte(uint8_t byte)
{
    if (!link.on) {
        uart_tx(byte);
        return;
    }
    if (link.tx_len == BOARD_LINK_TX_BYTES) {
        board_flush();
    }
    link.tx[link.tx_len++] = byte;
}

void board_putc(uint8_t byte)
{
    put_byte(byte);
}

bool board_link_on(void)
{
    return link.on;
}

static uint32_t link_open_one(char *path, uint32_t n, const char *name, uint32_t mode)
{
    uint32_t k = 0;
    while (name[k]) {
        path[n + k] = name[k];
        k++;
    }
    path[n + k] = 0;
    uint32_t block[3] = {(uint32_t)(uintptr_t)path, mode, n + k};
    return semihost(SEMIHOSTING_SYS_OPEN, block);
}

int board_link_open(const char *dir, size_t len)
{
    char path[BOARD_LINK_PATH_MAX + 8];
    if (counting_cycles) {
        return -2;
    }
    if (link.on || len == 0 || len > BOARD_LINK_PATH_MAX) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        path[i] = dir[i];
        if (dir[i] == 0) {
            return -1;
        }
    }
    uint32_t in = link_open_one(path, (uint32_t)len, "/in", SEMIHOSTING_MODE_RB);
    if (in == UINT32_MAX) {
        return -1;
    }
    uint32_t out = link_open_one(path, (uint32_t)len, "/out", SEMIHOSTING_MODE_WB);
    if (out == UINT32_MAX) {
        semihost(SEMIHOSTING_SYS_CLOSE, &in);
        return -1;
    }
    /* Bytes the UART brought before the switch stay in rx.data and are read first. */
    uart_lines(false);
    link.in = in;
    link.out = out;
    link.tx_len = 0;
    link.on = true;
    return 0;
}

static void link_close(void)
{
    link.on = false;
    link.tx_len = 0;
    semihost(SEMIHOSTING_SYS_CLOSE, &link.in);
    semihost(SEMIHOSTING_SYS_CLOSE, &link.out);
    uint32_t primask = irq_save();
    rx.tail = rx.head; /* the rest of what the host sent went with it */
    rx.paused = false;
    uart_lines(true);
    rx_drain();
    irq_restore(primask);
}

/* Wait for the host's next bytes (rx.data is empty); false: the host closed the link. */
static bool link_fill(void)
{
    board_flush();
    if (!link.on) {
        return false;
    }
    uint32_t at = rx.head & (BOARD_RX_BUFFER_BYTES - 1u);
    uint32_t room = BOARD_RX_BUFFER_BYTES - at;
    uint32_t block[3] = {link.in, (uint32_t)(uintptr_t)&rx.data[at], room};
    uint32_t left = semihost(SEMIHOSTING_SYS_READ, block);
    if (left >= room) {
        link_close(); /* end of file: the host closed its end */
        return false;
    }
    rx.head += room - left;
    return true;
}

bool board_rx_ready(void)
{
    return rx.head != rx.tail || (!link.on && uart_rx_ready());
}

int board_try_getc(void)
{
    if (link.on) { /* what has arrived; a pipe cannot be asked without waiting */
        if (rx.head == rx.tail) {
            return -1;
        }
        return rx.data[rx.tail++ & (BOARD_RX_BUFFER_BYTES - 1u)];
    }
    if (!rx.enabled) { /* before board_init */
        return uart_rx_ready() ? uart_rx() : -1;
    }
    uint32_t primask = irq_save();
    if (rx.head == rx.tail) {
        rx_drain(); /* the interrupt was paused, or its line raced this call */
    }
    int byte = -1;
    if (rx.head != rx.tail) {
        byte = rx.data[rx.tail & (BOARD_RX_BUFFER_BYTES - 1u)];
        rx.tail++;
        if (rx.paused) {
            rx.paused = false;
            rx_drain();
            if (!rx.paused) {
                uart_lines(true);
            }
        }
    }
    irq_restore(primask);
    return byte;
}

int board_getc(void)
{
    for (;;) {
        int byte = board_try_getc();
        if (byte >= 0) {
            return byte;
        }
        if (link.on) {
            link_fill(); /* back on the UART when it returns false */
            continue;
        }
        /* Sleep until the next interrupt. Masked first, so a byte that arrives between
         * the check and the WFI still wakes it (a pending interrupt ends WFI). */
        uint32_t primask = irq_save();
        if (rx.enabled && rx.head == rx.tail && !uart_rx_ready()) {
            __asm__ volatile("wfi");
        }
        irq_restore(primask);
    }
}

void board_write(const void *buf, size_t len)
{
    const uint8_t *bytes = buf;
    for (size_t i = 0; i < len; i++) {
        put_byte(bytes[i]);
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
        put_byte((uint8_t)*text++);
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
        put_byte((uint8_t)digits[--n]);
    }
}

void board_put_hex32(uint32_t value)
{
    board_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        put_byte((uint8_t)"0123456789abcdef"[(value >> shift) & 0xFu]);
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

__attribute__((noinline)) void board_cycle_mark(uint32_t id)
{
    uintptr_t base = BOARD_FLASH_ORIGIN;
    __asm__ volatile("" : "+r"(base)); /* an address, not a null pointer to the compiler */
    (void)((const volatile uint8_t *)base)[id];
}

const char *board_counter_unit(void)
{
    return counting_cycles ? "cycles" : "instructions";
}

void board_exit(int code)
{
    board_flush();
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SEMIHOSTING_SYS_EXIT_EXTENDED, block);
    /* Only reached if a debugger ignored the request. */
    for (;;) {
        __asm__ volatile("cpsid i\n wfi");
    }
}
