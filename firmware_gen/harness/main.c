/*
 * main.c - the board's whole life under the host runner: bring up the board and the
 * model, then answer requests forever (protocol.h). Nothing is sent until the host asks,
 * so a host may connect long after boot and still find the link quiet.
 */
#include "board.h"
#include "model_api.h"
#include "protocol.h"

int main(void)
{
    board_init();
    /* A model that fails to initialise still gets a running link, so the host learns why
     * (INFO carries the status, INFER answers with it) instead of meeting silence. */
    proto_init(model_init());
    for (;;) {
        proto_feed((uint8_t)board_getc());
    }
}
