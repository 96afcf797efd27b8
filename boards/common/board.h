/*
 * The board support interface every drsn-edge firmware is written against.
 *
 * One header for all boards: the application never names a register. Which UART, which
 * timer and which memory map sit behind these functions is chosen at build time from
 * boards/<name>/board.toml (see boards/build.py, which also generates board_config.h).
 */
#ifndef DRSN_EDGE_BOARD_H
#define DRSN_EDGE_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit code of a run that ended in a fault handler; distinct from the application's own
 * codes so a host can tell "the model gave a wrong answer" from "the firmware crashed". */
#define BOARD_EXIT_FAULT 3

/* Clocks, pins and the serial port; call once at the top of main(). */
void board_init(void);

/* Name of the board the image was built for, e.g. "mps2-an386". */
const char *board_name(void);

/* Serial port. Bytes go through unchanged (no newline translation), so a binary protocol
 * can run over the same link as text. */
void board_putc(uint8_t byte);
int board_getc(void);           /* waits for a byte; returns 0..255 */
int board_try_getc(void);       /* a byte if one has arrived, else -1 */
bool board_rx_ready(void);
void board_write(const void *buf, size_t len);
void board_read(void *buf, size_t len); /* waits until len bytes have arrived */
void board_puts(const char *text);      /* text as is, no newline added */
void board_flush(void);                 /* hand what was written to the link now (end of a frame) */
void board_put_dec(uint64_t value);
void board_put_hex32(uint32_t value);   /* "0x" and eight hex digits */

/*
 * The semihosting link: an emulated board's fast path to a host on the same machine.
 * QEMU's UART models move one byte per round trip between its threads (about 30 us of
 * host CPU per byte); semihosting SYS_READ / SYS_WRITE on two named pipes move a whole
 * request per call. board_link_open(dir) opens <dir>/in (host to board) and <dir>/out
 * (board to host), which the host has made and holds open, and from then on the serial
 * functions above use them instead of the UART. When the host closes its end (or goes
 * away) the board returns to the UART by itself.
 * Returns 0; -1 when the pipes could not be opened (nothing changed); -2 on a core whose
 * cycle counter runs: that is silicon, where semihosting without a debugger would halt it.
 */
int board_link_open(const char *dir, size_t len);
bool board_link_on(void);

/*
 * Work counter. Under QEMU with -icount shift=0 one instruction takes exactly 1 ns of
 * virtual time, so elapsed timer time in ns is the number of instructions executed,
 * the same on every run. On real silicon the DWT cycle counter is used instead and the
 * result is core clock cycles. board_counter_unit() says which one you got.
 *
 * board_counter_start() restarts the count; board_counter_read() may be called any
 * number of times afterwards. The count stays correct for at least 2^32 instructions
 * (more on most boards) as long as interrupts are not kept disabled for long stretches.
 */
void board_counter_start(void);
uint64_t board_counter_read(void);
const char *board_counter_unit(void); /* "instructions" or "cycles" */

/* Cycle marks for the benchmark's cycle estimate (firmware_gen/cycles/cycle_plugin.c, a QEMU
 * plugin): board_cycle_mark(id) loads the byte at BOARD_FLASH_ORIGIN + id, which the plugin
 * sees and logs with its cycle count so far. Harmless without the plugin (one flash read).
 * Ids: layers and the ones below; all < 4096. */
#define BOARD_MARK_BEGIN 4095u     /* start a measured stretch */
#define BOARD_MARK_READ 4094u      /* after one counter read: the cost of a read + a mark */
#define BOARD_MARK_TOTAL 4093u     /* after one inference of the benchmark firmware */
#define BOARD_MARK_INFER 4092u     /* after one inference of the protocol firmware (INFER) */
#define BOARD_MARK_PROBE 4091u     /* one profiling step with nothing in it (model.c, DK_PROFILE) */
void board_cycle_mark(uint32_t id);

/* Stack use. The reset handler fills the main stack with a pattern; board_stack_peak()
 * returns the most bytes of it used since (measured from the top of the stack), and
 * board_stack_paint() refills everything below the caller's stack pointer, so a later
 * board_stack_peak() reports the depth reached after that point. */
void board_stack_paint(void);
uint32_t board_stack_peak(void);

/* End the run with an exit code. Under QEMU (-semihosting-config enable=on) the
 * emulator exits with this code. On a board with no debugger attached the core halts. */
__attribute__((noreturn)) void board_exit(int code);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_EDGE_BOARD_H */
