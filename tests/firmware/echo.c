/*
 * Test firmware for the board layer (tests/test_boards.py). After a banner it serves
 * one-byte commands from the serial port:
 *   'e' b      echo the next byte b back (any value: the link must be binary-transparent)
 *   'c' n32le  run a loop of exactly 2*n instructions between counter start and read,
 *              print the count in decimal and '\n'
 *   'u'        print the counter's unit and '\n'
 *   'f'        jump to a function address with the Thumb bit clear: INVSTATE, escalated
 *              to HardFault, which reports and exits with BOARD_EXIT_FAULT
 *   'q' / 'x'  exit with code 0 / 7
 * Anything else is answered with '?'.
 */
#include <stdint.h>

#include "board.h"

#define EXIT_ON_REQUEST 7

/* Two instructions per iteration (subs, bne), whatever the compiler's mood. */
static void spin(uint32_t iterations)
{
    if (iterations) {
        __asm__ volatile("1: subs %0, %0, #1\n"
                         "   bne 1b"
                         : "+r"(iterations)
                         :
                         : "cc");
    }
}

static uint32_t read_u32le(void)
{
    uint8_t b[4];
    board_read(b, sizeof b);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void jump_to_arm_state(void)
{
    /* A pointer whose bit 0 is clear asks for the ARM instruction set, which an M-profile
     * core does not have: the branch itself succeeds, the next fetch faults. */
    void (*volatile target)(void) = (void (*)(void))((uintptr_t)&spin & ~(uintptr_t)1);
    target();
}

int main(void)
{
    board_init();
    board_puts("hello ");
    board_puts(board_name());
    board_putc('\n');
    for (;;) {
        int command = board_getc();
        switch (command) {
        case 'e':
            board_putc((uint8_t)board_getc());
            break;
        case 'c': {
            uint32_t iterations = read_u32le();
            board_counter_start();
            spin(iterations);
            uint64_t count = board_counter_read();
            board_put_dec(count);
            board_putc('\n');
            break;
        }
        case 'u':
            board_puts(board_counter_unit());
            board_putc('\n');
            break;
        case 'f':
            jump_to_arm_state();
            break;
        case 'q':
            board_exit(0);
        case 'x':
            board_exit(EXIT_ON_REQUEST);
        default:
            board_putc('?');
            break;
        }
    }
}
