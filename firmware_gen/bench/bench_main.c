/*
 * bench_main.c - the benchmark's firmware: runs the generated model on the embedded input
 * vectors (bench_data.c, written by firmware_gen/benchmark.py), measures it with the
 * board's work counter, prints a plain-text report on the UART and exits through
 * semihosting (QEMU's exit status is board_exit's code: 0 = all outputs as expected).
 *
 * Cycle marks (board_cycle_mark) around the same stretches let the QEMU cycle plugin
 * (firmware_gen/cycles/) estimate cycles for them; without the plugin they cost a load each.
 *
 * Built with -DDK_PROFILE, so the generated model.c keeps a per-layer table
 * (model_profile). Report lines, one per fact:
 *   BENCH <board> <unit>          unit: "instructions" (QEMU -icount) or "cycles"
 *   READ <n>                      cost of one work-counter read and one cycle mark
 *                                 (board_cycle_mark), both included in every layer
 *   TOTAL <vector> <n>            one inference with profiling switched off
 *   LAYER <i> <n>                 per-layer figures of the first vector (i = layer count:
 *                                 input/output copies)
 *   STACK <bytes>                 deepest main-stack use during an inference (painted)
 *   BOOTSTACK <bytes>             deepest main-stack use from reset to the first inference
 *   CHECK <vector> <ok|FAIL>      output equal to the expected (TFLM host) output
 *   END
 */
#include <stdint.h>

#include "board.h"
#include "model_api.h"

extern uint32_t model_profile[];
extern volatile int model_profile_enabled;
extern void model_profile_probe(void);

/* bench_data.c */
extern const uint32_t bench_vectors;
extern const int8_t bench_inputs[];
extern const int8_t bench_expected[];
extern int8_t bench_output[];

static void line(const char *key, uint64_t a, int has_b, uint64_t b)
{
    board_puts(key);
    board_putc(' ');
    board_put_dec(a);
    if (has_b) {
        board_putc(' ');
        board_put_dec(b);
    }
    board_puts("\n");
}

int main(void)
{
    board_init();
    const uint32_t boot_stack = board_stack_peak();
    int status = model_init();
    const uint32_t n_in = model_input()->size, n_out = model_output()->size;
    int failures = 0;

    board_puts("BENCH ");
    board_puts(board_name());
    board_puts(" ");
    board_puts(board_counter_unit());
    board_puts("\n");
    if (status != MODEL_OK) {
        line("INITFAIL", (uint64_t)(uint32_t)status, 0, 0);
        board_exit(1);
    }

    /* What one counter read (and the cycle mark every profiled layer also has) costs. */
    board_counter_start();
    board_cycle_mark(BOARD_MARK_BEGIN);
    const uint64_t r0 = board_counter_read();
    board_cycle_mark(BOARD_MARK_READ);
    const uint64_t r1 = board_counter_read();
    line("READ", r1 - r0, 0, 0);

    for (uint32_t v = 0; v < bench_vectors; v++) {
        const int8_t *x = bench_inputs + v * n_in;
        model_profile_enabled = 0;
        board_stack_paint();
        board_cycle_mark(BOARD_MARK_BEGIN);
        board_counter_start();
        status = model_invoke(x, bench_output);
        const uint64_t total = board_counter_read();
        board_cycle_mark(BOARD_MARK_TOTAL);
        if (v == 0) {
            line("STACK", board_stack_peak(), 0, 0);
        }
        line("TOTAL", v, 1, total);
        int ok = status == MODEL_OK;
        for (uint32_t i = 0; ok && i < n_out; i++) {
            ok = bench_output[i] == bench_expected[v * n_out + i];
        }
        board_puts(ok ? "CHECK ok\n" : "CHECK FAIL\n");
        failures += !ok;
        if (v == 0) {
            model_profile_probe();
            model_profile_enabled = 1;
            board_counter_start();
            (void)model_invoke(x, bench_output);
            model_profile_enabled = 0;
            for (int i = 0; i <= model_layer_count(); i++) {
                line("LAYER", (uint64_t)i, 1, model_profile[i]);
            }
        }
    }
    line("BOOTSTACK", boot_stack, 0, 0);
    board_puts("END\n");
    board_exit(failures ? 1 : 0);
}
