/*
 * STM32F4 USART (RM0090, "USART registers"), 8N1, no DMA. The peripheral clock and the
 * pins are switched on by the board's platform.c before uart_init().
 */
#include "drivers.h"

#define USART_SR (BOARD_UART_BASE + 0x00u)
#define USART_DR (BOARD_UART_BASE + 0x04u)
#define USART_BRR (BOARD_UART_BASE + 0x08u)
#define USART_CR1 (BOARD_UART_BASE + 0x0Cu)

#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define CR1_UE (1u << 13)

#define CR1_OVER8 (1u << 15)

/* USART1's interrupt line (RM0090, vector table: position 37). */
#ifdef BOARD_UART_IRQ_LINES
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = BOARD_UART_IRQ_LINES;
#elif BOARD_UART_BASE == 0x40011000u
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = {37, -1};
#else
#error "interrupt line of this USART unknown: define BOARD_UART_IRQ_LINES, e.g. {37, -1}"
#endif

void uart_init(void)
{
    /* BRR and OVER8 for BOARD_UART_BAUD come from boards/uart.py (board_config.h). */
    const uint32_t over8 = BOARD_UART_OVER8 ? CR1_OVER8 : 0u;
    REG32(USART_CR1) = over8;
    REG32(USART_BRR) = BOARD_UART_BRR;
    /* Bytes written before UE and TE are set are dropped (also by QEMU), so enable first. */
    REG32(USART_CR1) = over8 | CR1_UE | CR1_TE | CR1_RE;
}

void uart_tx(uint8_t byte)
{
    while (!(REG32(USART_SR) & SR_TXE)) {
    }
    REG32(USART_DR) = byte;
}

bool uart_rx_ready(void)
{
    return (REG32(USART_SR) & SR_RXNE) != 0;
}

uint8_t uart_rx(void)
{
    return (uint8_t)REG32(USART_DR);
}

void uart_rx_irq(bool on)
{
    uint32_t cr1 = REG32(USART_CR1);
    REG32(USART_CR1) = on ? cr1 | CR1_RXNEIE : cr1 & ~CR1_RXNEIE;
}

void uart_rx_irq_ack(void)
{
    /* Nothing to clear: the interrupt follows RXNE, which reading DR clears. */
}
