/*
 * LM3S6965 clock gating and pins for UART0 (Stellaris LM3S6965 datasheet: System Control,
 * GPIO). QEMU's model does not need them, but on silicon UART0 and GPIO port A are gated
 * off after reset and PA0/PA1 are plain GPIOs until handed to the UART.
 */
#include "drivers.h"

#define SYSCTL_RCGC1 0x400FE104u
#define SYSCTL_RCGC2 0x400FE108u
#define RCGC1_UART0 (1u << 0)
#define RCGC2_GPIOA (1u << 0)

#define GPIOA_AFSEL 0x40004420u
#define GPIOA_DEN 0x4000451Cu
#define PINS_UART0 ((1u << 0) | (1u << 1)) /* PA0 = U0RX, PA1 = U0TX */

void board_platform_init(void)
{
    REG32(SYSCTL_RCGC1) |= RCGC1_UART0;
    REG32(SYSCTL_RCGC2) |= RCGC2_GPIOA;
    /* A few cycles must pass before a newly clocked peripheral answers. */
    (void)REG32(SYSCTL_RCGC2);
    (void)REG32(SYSCTL_RCGC2);

    REG32(GPIOA_AFSEL) |= PINS_UART0;
    REG32(GPIOA_DEN) |= PINS_UART0;
}
