/*
 * Work counter on an STM32 32-bit general-purpose timer (TIM2/TIM5, RM0090), counting
 * up from 0 with no prescaler. QEMU models these timers at 1 GHz, so under
 * -icount shift=0 one tick is exactly one instruction. The count wraps every 2^32 ticks;
 * wraps between two reads are folded into a 64-bit count in software.
 */
#include "drivers.h"

#define TIM_CR1 (BOARD_COUNTER_BASE + 0x00u)
#define TIM_EGR (BOARD_COUNTER_BASE + 0x14u)
#define TIM_CNT (BOARD_COUNTER_BASE + 0x24u)
#define TIM_PSC (BOARD_COUNTER_BASE + 0x28u)
#define TIM_ARR (BOARD_COUNTER_BASE + 0x2Cu)

#define CR1_CEN (1u << 0)
#define EGR_UG (1u << 0) /* loads PSC, which otherwise only takes effect at the next wrap */

static uint32_t last_count;
static uint64_t wrapped;

void counter_restart(void)
{
    REG32(TIM_CR1) = 0;
    REG32(TIM_PSC) = 0;
    REG32(TIM_ARR) = 0xFFFFFFFFu;
    REG32(TIM_EGR) = EGR_UG;
    REG32(TIM_CNT) = 0;
    REG32(TIM_CR1) = CR1_CEN;
    last_count = 0;
    wrapped = 0;
}

uint64_t counter_ticks(void)
{
    uint32_t count = REG32(TIM_CNT);
    if (count < last_count) {
        wrapped += 1ull << 32;
    }
    last_count = count;
    return wrapped + count;
}
