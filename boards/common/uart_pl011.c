/*
 * Arm PrimeCell UART (PL011), as on the Stellaris LM3S parts. The FIFOs stay off so that
 * "receive full" is a one-byte holding register: the emulator then stops feeding bytes
 * until the firmware has read the previous one, which is what makes the link lossless.
 */
#include "drivers.h"

#define UART_DR (BOARD_UART_BASE + 0x000u)
#define UART_FR (BOARD_UART_BASE + 0x018u)
#define UART_IBRD (BOARD_UART_BASE + 0x024u)
#define UART_FBRD (BOARD_UART_BASE + 0x028u)
#define UART_LCRH (BOARD_UART_BASE + 0x02Cu)
#define UART_CR (BOARD_UART_BASE + 0x030u)
#define UART_IMSC (BOARD_UART_BASE + 0x038u)
#define UART_ICR (BOARD_UART_BASE + 0x044u)

#define FR_RX_EMPTY (1u << 4)
#define FR_TX_FULL (1u << 5)
#define LCRH_8_BITS (3u << 5)
#define CR_UART_ENABLE (1u << 0)
#define CR_TX_ENABLE (1u << 8)
#define CR_RX_ENABLE (1u << 9)
#define INT_RX (1u << 4) /* with the FIFO off: a byte is in the holding register */

/* UART0's interrupt line (Stellaris LM3S6965 datasheet, interrupt table). */
#ifdef BOARD_UART_IRQ_LINES
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = BOARD_UART_IRQ_LINES;
#elif BOARD_UART_BASE == 0x4000C000u
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = {5, -1};
#else
#error "interrupt line of this PL011 UART unknown: define BOARD_UART_IRQ_LINES, e.g. {5, -1}"
#endif

void uart_init(void)
{
    REG32(UART_CR) = 0;
    REG32(UART_IMSC) = 0;
    /* clock / (16 * baud) in 1/64 steps, from boards/uart.py (board_config.h). */
    REG32(UART_IBRD) = BOARD_UART_IBRD;
    REG32(UART_FBRD) = BOARD_UART_FBRD;
    REG32(UART_LCRH) = LCRH_8_BITS; /* also latches IBRD/FBRD */
    REG32(UART_CR) = CR_UART_ENABLE | CR_TX_ENABLE | CR_RX_ENABLE;
}

void uart_tx(uint8_t byte)
{
    while (REG32(UART_FR) & FR_TX_FULL) {
    }
    REG32(UART_DR) = byte;
}

bool uart_rx_ready(void)
{
    return (REG32(UART_FR) & FR_RX_EMPTY) == 0;
}

uint8_t uart_rx(void)
{
    return (uint8_t)REG32(UART_DR); /* upper bits are error flags */
}

void uart_rx_irq(bool on)
{
    uint32_t mask = REG32(UART_IMSC);
    REG32(UART_IMSC) = on ? mask | INT_RX : mask & ~INT_RX;
}

void uart_rx_irq_ack(void)
{
    REG32(UART_ICR) = INT_RX;
}
