/* cycle_main.c - runs tests/firmware/cycle_sequence.S once and exits (tests/test_cycles.py). */
#include "board.h"

void cycle_empty(void);
void cycle_sequence(void);

int main(void)
{
    board_init();
    cycle_empty();
    cycle_sequence();
    board_exit(0);
}
