/*
 * What a UART driver and a timer driver must provide. board.c builds the public
 * interface (board.h) on top; each board's TOML names one file of each kind
 * (uart_<driver>.c, counter_<driver>.c), and board_config.h gives them their base
 * addresses and clocks.
 */
#ifndef DRSN_EDGE_DRIVERS_H
#define DRSN_EDGE_DRIVERS_H

#include <stdbool.h>
#include <stdint.h>

#include "board_config.h"

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* Serial port: no FIFOs assumed. uart_init must be safe to call twice (a fault handler
 * calls it when a fault hits before board_init); it leaves the receive interrupt off. */
void uart_init(void);
void uart_tx(uint8_t byte);
bool uart_rx_ready(void);
uint8_t uart_rx(void); /* only called when uart_rx_ready() */

/* Receive interrupt. board.c moves received bytes into a ring buffer from it, so that the
 * host can send the next request while the core computes: a UART without a FIFO (and
 * QEMU's model of one) takes the next byte only once the previous one has been read.
 * uart_rx_irq_ack clears the UART's pending receive interrupt; the handler calls it
 * before reading, so a byte arriving meanwhile raises the interrupt again. */
void uart_rx_irq(bool on);
void uart_rx_irq_ack(void);

/* The interrupt lines (NVIC numbers) the receive interrupt may arrive on, -1 for unused
 * entries. Two for the CMSDK UART on the MPS3: QEMU up to 2024 (7.2 included) wires its
 * RX and TX interrupts to each other's line; the TX interrupt stays disabled, so
 * listening on both is right either way. Each driver knows the lines of the UARTs the
 * boards use; another board sets them with -DBOARD_UART_IRQ_LINES="{n, m}". */
#define UART_IRQ_LINES_MAX 2
extern const int16_t uart_irq_lines[UART_IRQ_LINES_MAX];

/* Time base in ticks at BOARD_COUNTER_HZ. counter_restart sets up the timer and starts
 * it from zero; counter_ticks returns the ticks since. Restarting (rather than reading a
 * free-running timer twice) matters under QEMU: the firmware waits for host input for a
 * real-time-dependent number of instructions, so a free-running timer's tick boundaries
 * would fall at a different point of the measured code on every run, and the count would
 * differ by a tick from run to run. */
void counter_restart(void);
uint64_t counter_ticks(void);

/* Clocks and pin multiplexing the UART needs on real silicon. Boards that need none use
 * the empty default in board.c; the others define it in boards/<name>/platform.c. */
void board_platform_init(void);

/* board_platform_init + uart_init, once; board_init and the fault handler call it. */
void board_uart_init_once(void);

#endif /* DRSN_EDGE_DRIVERS_H */
