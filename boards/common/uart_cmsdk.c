/*
 * Arm CMSDK APB UART (Cortex-M System Design Kit), as on the MPS2/MPS3 FPGA images.
 * Register layout from the CMSDK technical reference manual: DATA, STATE, CTRL, INTSTATUS,
 * BAUDDIV, each 32 bits wide.
 */
#include "drivers.h"

#define UART_DATA (BOARD_UART_BASE + 0x00u)
#define UART_STATE (BOARD_UART_BASE + 0x04u)
#define UART_CTRL (BOARD_UART_BASE + 0x08u)
#define UART_INTSTATUS (BOARD_UART_BASE + 0x0Cu)
#define UART_BAUDDIV (BOARD_UART_BASE + 0x10u)

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_ENABLE (1u << 0)
#define CTRL_RX_ENABLE (1u << 1)
#define CTRL_RX_IRQ (1u << 3)
#define INTSTATUS_RX (1u << 1)

/* The UART rejects divisors below 16 (one bit needs 16 clock samples); boards/uart.py
 * computes BOARD_UART_BAUDDIV within that range. */
_Static_assert(BOARD_UART_BAUDDIV >= 16, "UART clock too slow for the baud rate");

/* UART0's receive (and transmit) interrupt lines: AN386 application note (MPS2+), AN547
 * (MPS3; both the non-secure and the secure alias of the UART). */
#ifdef BOARD_UART_IRQ_LINES
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = BOARD_UART_IRQ_LINES;
#elif BOARD_UART_BASE == 0x40004000u
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = {0, 1};
#elif BOARD_UART_BASE == 0x49303000u || BOARD_UART_BASE == 0x59303000u
const int16_t uart_irq_lines[UART_IRQ_LINES_MAX] = {33, 34};
#else
#error "interrupt lines of this CMSDK UART unknown: define BOARD_UART_IRQ_LINES, e.g. {0, 1}"
#endif

void uart_init(void)
{
    REG32(UART_CTRL) = 0;
    REG32(UART_BAUDDIV) = BOARD_UART_BAUDDIV;
    REG32(UART_CTRL) = CTRL_TX_ENABLE | CTRL_RX_ENABLE;
}

void uart_tx(uint8_t byte)
{
    while (REG32(UART_STATE) & STATE_TX_FULL) {
    }
    REG32(UART_DATA) = byte;
}

bool uart_rx_ready(void)
{
    return (REG32(UART_STATE) & STATE_RX_FULL) != 0;
}

uint8_t uart_rx(void)
{
    return (uint8_t)REG32(UART_DATA);
}

void uart_rx_irq(bool on)
{
    uint32_t ctrl = REG32(UART_CTRL);
    REG32(UART_CTRL) = on ? ctrl | CTRL_RX_IRQ : ctrl & ~CTRL_RX_IRQ;
}

void uart_rx_irq_ack(void)
{
    REG32(UART_INTSTATUS) = INTSTATUS_RX; /* write one to clear */
}
