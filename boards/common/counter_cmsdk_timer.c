/*
 * Work counter on an Arm CMSDK APB timer: a 32-bit down counter clocked at
 * BOARD_COUNTER_HZ. Left free-running from 0xFFFFFFFF, it wraps only every 2^32 ticks
 * (171 s at 25 MHz, i.e. 171e9 instructions under -icount shift=0), so no interrupt is
 * needed; wraps between two reads are folded into a 64-bit count in software.
 * Writing VALUE also restarts the current tick, so counting starts on a tick boundary.
 */
#include "drivers.h"

#define TIMER_CTRL (BOARD_COUNTER_BASE + 0x00u)
#define TIMER_VALUE (BOARD_COUNTER_BASE + 0x04u)
#define TIMER_RELOAD (BOARD_COUNTER_BASE + 0x08u)

#define CTRL_ENABLE (1u << 0)

static uint32_t last_elapsed;
static uint64_t wrapped;

void counter_restart(void)
{
    REG32(TIMER_CTRL) = 0;
    REG32(TIMER_RELOAD) = 0xFFFFFFFFu;
    REG32(TIMER_VALUE) = 0xFFFFFFFFu;
    REG32(TIMER_CTRL) = CTRL_ENABLE;
    last_elapsed = 0;
    wrapped = 0;
}

uint64_t counter_ticks(void)
{
    uint32_t elapsed = ~REG32(TIMER_VALUE); /* counts down from 0xFFFFFFFF */
    if (elapsed < last_elapsed) {
        wrapped += 1ull << 32;
    }
    last_elapsed = elapsed;
    return wrapped + elapsed;
}
