/*
 * C++ on the board layer: a static constructor must have run before main (the reset
 * handler calls __libc_init_array), and printf must reach the UART (boards/common/
 * syscalls.c). Prints "ctor=42 sum=6 <counter unit>" and exits with code 5.
 */
#include <cstdio>
#include <vector>

#include "board.h"

namespace {
struct Constructed {
    int value;
    Constructed() : value(42) {}
};
Constructed constructed;
} // namespace

int main()
{
    board_init();
    std::vector<int> threes(10, 3);
    std::printf("ctor=%d sum=%d %s\n", constructed.value, threes[0] + threes[9],
                board_counter_unit());
    return constructed.value == 42 ? 5 : 1;
}
