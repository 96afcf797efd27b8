/*
 * conv1d_cases.c - the conv1d kernels on a board, with the real instructions (the DSP
 * assembly of dk_conv1d_s8_fast on DSP cores, the C versions elsewhere). The cases, their
 * inputs, packed weights and expected outputs (the reference conv kernel's, on the host)
 * come from conv1d_cases_data.c, written by tests/test_kernels_fast.py.
 *
 * Prints one line per case, "CASE <i> ok" or "CASE <i> FAIL <first wrong byte>", then
 * "END <failures>", and exits with 0 when every case matched and no kernel wrote outside
 * its output or its scratch.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "dk.h"

typedef struct {
    dk_conv1d_params p;
    int32_t fast;               /* 1: dk_conv1d_s8_fast on records, 0: dk_conv1d_s8 */
    const int8_t *input;
    const void *packed;         /* records (fast) or the packed filter */
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t per_channel;
    const int8_t *expected;
    int32_t out_bytes;
} conv1d_case;

/* conv1d_cases_data.c */
extern const conv1d_case conv1d_cases[];
extern const uint32_t conv1d_case_count;
#include "conv1d_cases_sizes.h"     /* CASES_MAX_OUT, CASES_MAX_SCRATCH (bytes) */

#define GUARD 16
#define FILL 0x5A

static int8_t out_buf[CASES_MAX_OUT + GUARD];
static int16_t scratch_buf[(CASES_MAX_SCRATCH + GUARD) / 2 + 1] __attribute__((aligned(16)));

static int32_t untouched(const void *buf, uint32_t from, uint32_t to)
{
    const uint8_t *b = (const uint8_t *)buf;
    for (uint32_t i = from; i < to; i++) {
        if (b[i] != FILL) {
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    board_init();
    uint32_t failures = 0;
    for (uint32_t i = 0; i < conv1d_case_count; i++) {
        const conv1d_case *c = &conv1d_cases[i];
        const uint32_t scratch_bytes = (uint32_t)dk_conv1d_scratch_bytes(&c->p);
        memset(out_buf, FILL, sizeof out_buf);
        memset(scratch_buf, FILL, sizeof scratch_buf);
        if (c->fast) {
            dk_conv1d_s8_fast(&c->p, c->input, (const int16_t *)c->packed, scratch_buf, out_buf);
        } else {
            const dk_channel_requant q = {c->multiplier, c->shift, c->per_channel};
            dk_conv1d_s8(&c->p, &q, c->input, (const int8_t *)c->packed, c->bias, scratch_buf, out_buf);
        }
        int32_t wrong = -1;
        for (int32_t k = 0; k < c->out_bytes && wrong < 0; k++) {
            if (out_buf[k] != c->expected[k]) {
                wrong = k;
            }
        }
        const int32_t overrun = !untouched(out_buf, (uint32_t)c->out_bytes, (uint32_t)c->out_bytes + GUARD)
                                || scratch_bytes > CASES_MAX_SCRATCH
                                || !untouched(scratch_buf, scratch_bytes, scratch_bytes + GUARD);
        board_puts("CASE ");
        board_put_dec(i);
        if (wrong < 0 && !overrun) {
            board_puts(" ok\n");
        } else {
            failures++;
            board_puts(overrun ? " FAIL overrun " : " FAIL ");
            board_put_dec((uint64_t)(wrong < 0 ? 0 : wrong));
            board_puts("\n");
        }
    }
    board_puts("END ");
    board_put_dec(failures);
    board_puts("\n");
    board_exit(failures ? 1 : 0);
}
