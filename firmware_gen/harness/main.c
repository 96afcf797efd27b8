/*
 * main.c - the board's whole life under the host runner: bring up the board and the
 * model, run the boot self-test, then answer requests forever (protocol.h).
 *
 * The self-test is the one thing the board says unasked: a single text line, ended by a
 * 0x00 byte. 0x00 is the protocol's frame delimiter, so a host that reads the line as a
 * (damaged) frame resynchronises right after it; runner/link.py sets such lines aside as
 * console text. After that the board stays silent until the host speaks.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "model_api.h"
#include "protocol.h"

/*
 * The self-test vector, generated next to the model (firmware_gen/stage.py writes
 * selftest.c): one input and the output the TFLM host runtime gives for it. Weak, so a
 * firmware built without one (the protocol tests' hand-written model) still links.
 */
extern const int8_t selftest_input[] __attribute__((weak));
extern const int8_t selftest_expected[] __attribute__((weak));
extern int8_t selftest_actual[] __attribute__((weak));
/* Deepest the stack has been since boot, where the board layer paints the stack. */
extern uint32_t board_stack_peak(void) __attribute__((weak));

static void put_signed(int32_t value)
{
    if (value < 0) {
        board_putc('-');
        value = -value;
    }
    board_put_dec((uint64_t)value);
}

/* One output element: an int8 value, or a float32 as its bit pattern in hex. */
static void put_element(const int8_t *p, uint32_t item)
{
    if (item == 1) {
        put_signed(p[0]);
        return;
    }
    uint32_t bits = 0;
    memcpy(&bits, p, sizeof bits);
    board_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        board_putc((uint8_t)"0123456789abcdef"[(bits >> shift) & 15u]);
    }
}

static void selftest(int status)
{
    board_puts("drsn-edge: ");
    board_puts(board_name());
    board_puts(" ");
    board_puts(model_name());
    if (status != MODEL_OK) {
        board_puts(" self-test FAIL: model_init returned ");
        put_signed(status);
    } else if (!selftest_input || !selftest_expected || !selftest_actual) {
        board_puts(" self-test SKIP: no self-test vector built in");
    } else {
        board_counter_start();
        status = model_invoke(selftest_input, selftest_actual);
        uint64_t work = board_counter_read();
        /* Compared byte for byte, counted per element: an element is 1 byte (int8) or,
         * for the float32 output of a final DEQUANTIZE, 4 (size / product of dims). */
        const model_tensor_info *out = model_output();
        uint32_t n = 1, wrong = 0, first = 0;
        for (unsigned d = 0; d < out->ndim && d < MODEL_MAX_DIMS; d++) {
            n *= out->dims[d];
        }
        const uint32_t item = (n && out->size % n == 0) ? out->size / n : 1;
        n = out->size / item;
        for (uint32_t i = n; i-- > 0;) {
            if (memcmp(selftest_actual + i * item, selftest_expected + i * item, item) != 0) {
                wrong++;
                first = i;
            }
        }
        if (status != MODEL_OK) {
            board_puts(" self-test FAIL: model_invoke returned ");
            put_signed(status);
        } else if (wrong) {
            board_puts(" self-test FAIL: ");
            board_put_dec(wrong);
            board_puts(" of ");
            board_put_dec(n);
            board_puts(" outputs differ from TFLM (first: output ");
            board_put_dec(first);
            board_puts(" = ");
            put_element(selftest_actual + first * item, item);
            board_puts(", expected ");
            put_element(selftest_expected + first * item, item);
            board_puts(")");
        } else {
            board_puts(" self-test PASS: ");
            board_put_dec(n);
            board_puts(" outputs equal TFLM");
        }
        board_puts(", ");
        board_put_dec(work);
        board_puts(" ");
        board_puts(board_counter_unit());
        if (board_stack_peak) {
            board_puts(", stack ");
            board_put_dec(board_stack_peak());
            board_puts(" bytes");
        }
    }
    board_puts("\r\n");
    board_putc(0);
}

#ifdef DRSN_STANDALONE
void standalone_run(int model_status); /* standalone.c */
#endif

int main(void)
{
    board_init();
    int status = model_init();
    selftest(status);
#ifdef DRSN_STANDALONE
    /* No host needed: verdicts on the board's own samples, printed on the UART. */
    standalone_run(status);
#endif
    /* A model that fails to initialise still gets a running link, so the host learns why
     * (INFO carries the status, INFER answers with it) instead of meeting silence. */
    proto_init(status);
    for (;;) {
        proto_feed((uint8_t)board_getc());
    }
}
