/*
 * STM32F405 clocks and pins for the board layer (RM0090: RCC, GPIO). QEMU does not model
 * the RCC or the GPIO ports (they read as zero and ignore writes), but silicon keeps every
 * peripheral's clock gated after reset and the UART pins in input mode, so without this
 * the same image would print nothing on a real board.
 */
#include "drivers.h"

#define RCC_AHB1ENR 0x40023830u
#define RCC_APB1ENR 0x40023840u
#define RCC_APB2ENR 0x40023844u
#define AHB1ENR_GPIOA (1u << 0)
#define APB1ENR_TIM2 (1u << 0)
#define APB2ENR_USART1 (1u << 4)

#define GPIOA_MODER 0x40020000u
#define GPIOA_AFRH 0x40020024u
#define GPIOA_PUPDR 0x4002000Cu

#define PIN_USART1_TX 9u
#define PIN_USART1_RX 10u
#define MODE_ALTERNATE 2u
#define PULL_UP 1u
#define AF7_USART1 7u

void board_platform_init(void)
{
    REG32(RCC_AHB1ENR) |= AHB1ENR_GPIOA;
    REG32(RCC_APB1ENR) |= APB1ENR_TIM2;
    REG32(RCC_APB2ENR) |= APB2ENR_USART1;
    /* The errata sheet asks for a delay between enabling a clock and touching the
     * peripheral; reading the enable register back provides it. */
    (void)REG32(RCC_APB2ENR);

    uint32_t moder = REG32(GPIOA_MODER);
    moder &= ~((3u << (2 * PIN_USART1_TX)) | (3u << (2 * PIN_USART1_RX)));
    moder |= (MODE_ALTERNATE << (2 * PIN_USART1_TX)) | (MODE_ALTERNATE << (2 * PIN_USART1_RX));
    REG32(GPIOA_MODER) = moder;

    /* An unconnected RX line would otherwise float and deliver noise as bytes. */
    uint32_t pupdr = REG32(GPIOA_PUPDR) & ~(3u << (2 * PIN_USART1_RX));
    REG32(GPIOA_PUPDR) = pupdr | (PULL_UP << (2 * PIN_USART1_RX));

    uint32_t afrh = REG32(GPIOA_AFRH);
    afrh &= ~((0xFu << (4 * (PIN_USART1_TX - 8))) | (0xFu << (4 * (PIN_USART1_RX - 8))));
    afrh |= (AF7_USART1 << (4 * (PIN_USART1_TX - 8))) | (AF7_USART1 << (4 * (PIN_USART1_RX - 8)));
    REG32(GPIOA_AFRH) = afrh;
}
