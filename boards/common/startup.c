/*
 * Vector table, reset and fault handling shared by all boards.
 *
 * Reset: FPU access first (the compiler may use FP or MVE registers even in the memory
 * initialisation loops), then .data/.bss, C++ constructors, main().
 *
 * Faults: every fault ends the run. The handler prints one line the host can match,
 *   FAULT <name> exc=<n> pc=0x... lr=0x... xpsr=0x... cfsr=0x... hfsr=0x... [<causes>]
 * and exits with BOARD_EXIT_FAULT through semihosting, so a crash in QEMU shows up as a
 * failed run within milliseconds rather than as a hang that waits for a timeout.
 */
#include <stdint.h>

#include "board.h"
#include "drivers.h"

/* Linker script symbols (boards/common/sections.ld). */
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[], __stack_limit[];

extern int main(void);
extern void __libc_init_array(void);

#define SCB_ICSR 0xE000ED04u
#define SCB_VTOR 0xE000ED08u
#define SCB_CFSR 0xE000ED28u
#define SCB_HFSR 0xE000ED2Cu
#define SCB_MMFAR 0xE000ED34u
#define SCB_BFAR 0xE000ED38u
#define SCB_CPACR 0xE000ED88u

#define CPACR_CP10_CP11_FULL (0xFu << 20)
#define HFSR_DEBUGEVT (1u << 31)
#define CFSR_MMARVALID (1u << 7)
#define CFSR_BFARVALID (1u << 15)
/* The exception frame was not (fully) written, so reading it could fault again. */
#define CFSR_STACKING_ERRORS ((1u << 4) | (1u << 12) | (1u << 20))

#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define HAS_STACK_LIMIT 1
#else
#define HAS_STACK_LIMIT 0
#endif

enum fault_kind { FAULT_NMI, FAULT_HARD, FAULT_MEMMANAGE, FAULT_BUS, FAULT_USAGE, FAULT_SECURE,
                  FAULT_UNEXPECTED };

static const char *const fault_names[] = {
    [FAULT_NMI] = "NMI",
    [FAULT_HARD] = "HardFault",
    [FAULT_MEMMANAGE] = "MemManage",
    [FAULT_BUS] = "BusFault",
    [FAULT_USAGE] = "UsageFault",
    [FAULT_SECURE] = "SecureFault",
    [FAULT_UNEXPECTED] = "UnexpectedException",
};

/* CFSR bits worth naming in a crash report (ARMv7-M/ARMv8-M Architecture Reference
 * Manual, "Configurable Fault Status Register"). */
static const struct {
    uint8_t bit;
    char name[11];
} cfsr_causes[] = {
    {0, "IACCVIOL"},    {1, "DACCVIOL"},   {3, "MUNSTKERR"}, {4, "MSTKERR"},
    {5, "MLSPERR"},     {8, "IBUSERR"},    {9, "PRECISERR"}, {10, "IMPRECISERR"},
    {11, "UNSTKERR"},   {12, "STKERR"},    {13, "LSPERR"},   {16, "UNDEFINSTR"},
    {17, "INVSTATE"},   {18, "INVPC"},     {19, "NOCP"},     {20, "STKOF"},
    {24, "UNALIGNED"},  {25, "DIVBYZERO"},
};

/* The handler switches to its own stack: a fault caused by a stack overflow leaves the
 * main stack unusable, and the report is what matters then. */
__attribute__((used)) static uint64_t fault_stack[64];

__attribute__((noreturn, used)) void board_fault_report(const uint32_t *frame,
                                                        uint32_t exc_return, uint32_t kind);

/*
 * Each entry passes the exception frame (from MSP or PSP, per EXC_RETURN bit 2), the
 * EXC_RETURN value and which vector fired, then continues on the fault stack.
 */
#if HAS_STACK_LIMIT
#define DROP_STACK_LIMIT "movs r3, #0\n msr msplim, r3\n"
#else
#define DROP_STACK_LIMIT ""
#endif
#define FAULT_ENTRY(function, kind)                                                        \
    __attribute__((naked)) void function(void)                                             \
    {                                                                                      \
        __asm__ volatile("tst lr, #4\n"                                                    \
                         "ite eq\n"                                                        \
                         "mrseq r0, msp\n"                                                 \
                         "mrsne r0, psp\n"                                                 \
                         "mov r1, lr\n"                                                    \
                         "movs r2, #" #kind "\n" DROP_STACK_LIMIT                          \
                         "movw r3, #:lower16:fault_stack+512\n"                            \
                         "movt r3, #:upper16:fault_stack+512\n"                            \
                         "mov sp, r3\n"                                                    \
                         "b board_fault_report\n");                                        \
    }

FAULT_ENTRY(board_nmi_handler, 0)
FAULT_ENTRY(board_hardfault_handler, 1)
FAULT_ENTRY(board_memmanage_handler, 2)
FAULT_ENTRY(board_busfault_handler, 3)
FAULT_ENTRY(board_usagefault_handler, 4)
FAULT_ENTRY(board_securefault_handler, 5)
FAULT_ENTRY(board_default_handler, 6)

_Static_assert(sizeof fault_stack == 512, "fault entry assumes a 512-byte fault stack");
_Static_assert(FAULT_HARD == 1 && FAULT_UNEXPECTED == 6, "fault entry numbers");

/* A timer driver that needs the SysTick interrupt defines this; others leave it unused. */
void board_systick_handler(void) __attribute__((weak, alias("board_default_handler")));

static void put_field(const char *name, uint32_t value)
{
    board_putc(' ');
    board_puts(name);
    board_putc('=');
    board_put_hex32(value);
}

void board_fault_report(const uint32_t *frame, uint32_t exc_return, uint32_t kind)
{
    uint32_t cfsr = REG32(SCB_CFSR);
    uint32_t hfsr = REG32(SCB_HFSR);
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));

    /* Semihosting (board_exit) on real silicon without a debugger: the BKPT escalates to
     * HardFault with DEBUGEVT. Halting is exactly what board_exit promises there. */
    if (kind == FAULT_HARD && (hfsr & HFSR_DEBUGEVT)) {
        for (;;) {
            __asm__ volatile("cpsid i\n wfi");
        }
    }

    board_uart_init_once();
    board_puts("\nFAULT ");
    board_puts(kind < sizeof fault_names / sizeof fault_names[0] ? fault_names[kind] : "?");
    board_puts(" exc=");
    board_put_dec(ipsr & 0x1FFu);
    if (cfsr & CFSR_STACKING_ERRORS) {
        board_puts(" pc=? lr=? xpsr=?"); /* no frame was stacked */
    } else {
        put_field("pc", frame[6]);
        put_field("lr", frame[5]);
        put_field("xpsr", frame[7]);
    }
    put_field("cfsr", cfsr);
    put_field("hfsr", hfsr);
    put_field("exc_return", exc_return);
    if (cfsr & CFSR_MMARVALID) {
        put_field("mmfar", REG32(SCB_MMFAR));
    }
    if (cfsr & CFSR_BFARVALID) {
        put_field("bfar", REG32(SCB_BFAR));
    }
    if (hfsr & (1u << 30)) {
        board_puts(" FORCED");
    }
    if (hfsr & (1u << 1)) {
        board_puts(" VECTTBL");
    }
    for (unsigned i = 0; i < sizeof cfsr_causes / sizeof cfsr_causes[0]; i++) {
        if (cfsr & (1u << cfsr_causes[i].bit)) {
            board_putc(' ');
            board_puts(cfsr_causes[i].name);
        }
    }
    board_putc('\n');
    board_exit(BOARD_EXIT_FAULT);
}

/*
 * Stack high-water mark: the main stack is filled with a pattern at reset (and again by
 * board_stack_paint), so the lowest word that no longer holds it marks the deepest the
 * stack has reached since.
 */
#define STACK_PAINT 0x5AC5A5C5u

/* The compiler may read the stack pointer before this function's own prologue pushes
 * registers, so the words just below it are left alone. */
#define STACK_PAINT_MARGIN 64u

__attribute__((noinline)) void board_stack_paint(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    sp -= STACK_PAINT_MARGIN / sizeof *sp;
    for (uint32_t *p = __stack_limit; p < sp; p++) {
        *p = STACK_PAINT;
    }
}

uint32_t board_stack_peak(void)
{
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

typedef union {
    void (*handler)(void);
    uint32_t *stack_top;
} vector_entry;

extern const vector_entry board_vectors[];

/* Kept out of line so that nothing the compiler generates for these loops (FP or MVE
 * registers included) can be scheduled before the FPU is switched on. */
__attribute__((noinline)) static void init_memory(void)
{
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }
}

__attribute__((noreturn)) void board_reset_handler(void)
{
    if (BOARD_HAS_FPU) {
        REG32(SCB_CPACR) |= CPACR_CP10_CP11_FULL;
        __asm__ volatile("dsb\n isb" ::: "memory");
    }
#if HAS_STACK_LIMIT
    /* Turns a main-stack overflow into a UsageFault (STKOF) instead of silent damage. */
    __asm__ volatile("msr msplim, %0" ::"r"(__stack_limit));
#endif
    REG32(SCB_VTOR) = (uint32_t)(uintptr_t)board_vectors;
    board_stack_paint();
    init_memory();
    __libc_init_array();
    board_exit(main());
}

/* Exception numbers 0..15 are the core's; 16 onwards are the board's interrupt lines,
 * none of which the board layer enables, so any of them firing is reported as a fault. */
__attribute__((section(".vectors"), used)) const vector_entry board_vectors[16 + BOARD_IRQ_COUNT] = {
    [0] = {.stack_top = __stack_top},
    [1] = {.handler = board_reset_handler},
    [2] = {.handler = board_nmi_handler},
    [3] = {.handler = board_hardfault_handler},
    [4] = {.handler = board_memmanage_handler},
    [5] = {.handler = board_busfault_handler},
    [6] = {.handler = board_usagefault_handler},
#if HAS_STACK_LIMIT
    [7] = {.handler = board_securefault_handler},
#endif
    [11] = {.handler = board_default_handler}, /* SVCall */
    [12] = {.handler = board_default_handler}, /* DebugMonitor */
    [14] = {.handler = board_default_handler}, /* PendSV */
    [15] = {.handler = board_systick_handler},
    [16 ... 16 + BOARD_IRQ_COUNT - 1] = {.handler = board_default_handler},
};
