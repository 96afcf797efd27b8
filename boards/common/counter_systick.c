/*
 * Work counter on the core's SysTick, clocked from the processor clock. SysTick is only
 * 24 bits wide (at the AN547's 32 MHz it wraps every 0.52 s, 524 M instructions under
 * -icount shift=0), so every wrap raises the SysTick exception and the handler counts it;
 * a read combines that count with the current value.
 */
#include "drivers.h"

#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u
#define SCB_ICSR 0xE000ED04u

#define CSR_ENABLE (1u << 0)
#define CSR_TICKINT (1u << 1)
#define CSR_CLKSOURCE_CPU (1u << 2)
#define ICSR_PENDSTSET (1u << 26)
#define ICSR_PENDSTCLR (1u << 25)

/* Overridable so a test can force many wraps in a short run. */
#ifndef BOARD_SYSTICK_RELOAD
#define BOARD_SYSTICK_RELOAD 0xFFFFFFu
#endif
#define PERIOD ((uint64_t)BOARD_SYSTICK_RELOAD + 1u)

static volatile uint32_t wraps;

void board_systick_handler(void)
{
    wraps++;
}

void counter_restart(void)
{
    REG32(SYST_CSR) = 0;
    REG32(SYST_RVR) = BOARD_SYSTICK_RELOAD;
    REG32(SYST_CVR) = 0; /* any write clears the count; the next tick loads RVR */
    REG32(SCB_ICSR) = ICSR_PENDSTCLR;
    wraps = 0;
    REG32(SYST_CSR) = CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE_CPU;
}

uint64_t counter_ticks(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    uint32_t count = wraps;
    uint32_t value = REG32(SYST_CVR);
    /* A wrap that has happened but whose exception has not run yet (interrupts masked
     * here, or by the caller): count it, and re-read the value so it is post-wrap too. */
    if (REG32(SCB_ICSR) & ICSR_PENDSTSET) {
        count++;
        value = REG32(SYST_CVR);
    }
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
    /* The exception fires as the value reaches 0, so within one wrap count the value
     * runs 0, RELOAD, ..., 1, and the position in that run is (PERIOD - value) mod PERIOD. */
    return (uint64_t)count * PERIOD + (value ? PERIOD - value : 0u);
}
