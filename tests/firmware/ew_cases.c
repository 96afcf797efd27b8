/*
 * ew_cases.c - the fused element-wise kernels (dk_shrink_s8, dk_channel_affine_s8,
 * dk_mul_s8, dk_abs_mean_s8, dk_mean_s8, dk_add_same_s8) and dk_fully_connected_s8 on a board, with the real instructions: on a
 * Helium core (Cortex-M55) their MVE variants (ew_fused_mve.h, fully_connected_mve.h). Cases, parameters (the ctypes bytes of the structs), inputs
 * and the reference kernels' outputs come from ew_cases_data.c, written by
 * tests/test_kernels_mve.py.
 *
 * Prints "CASE <i> ok" or "CASE <i> FAIL <first wrong byte>" per case, then "END <failures>";
 * exits with 0 when every case matched and no kernel wrote past its output.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "dk.h"

typedef struct {
    int32_t kind;               /* 0 shrink, 1 channel affine, 2 add, 3 sub, 4 fully connected */
    const void *params;         /* the kernel's parameter struct */
    int32_t positions;          /* fully connected: batches */
    int32_t channels;           /* fully connected: output depth */
    int32_t stage;              /* fully connected: accumulation depth */
    const int8_t *a;            /* r / x / input1 */
    const int8_t *b;            /* tau / scale / input2 / weights */
    const int8_t *c;            /* shortcut (or NULL) / shift */
    const int8_t *expected;
    const int32_t *bias;        /* fully connected: bias (or NULL), requantization */
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t per_channel;
} ew_case;

extern const ew_case ew_cases[];
extern const uint32_t ew_case_count;
#include "ew_cases_sizes.h"     /* CASES_MAX_OUT */

#define GUARD 16
#define FILL 0x5A

static int8_t out_buf[CASES_MAX_OUT + GUARD];
static int8_t abs_buf[CASES_MAX_OUT];

int main(void)
{
    board_init();
    uint32_t failures = 0;
    for (uint32_t i = 0; i < ew_case_count; i++) {
        const ew_case *c = &ew_cases[i];
        const int32_t n = c->kind == 6 ? c->channels : c->kind == 7 ? c->stage * c->channels
                                                                     : c->positions * c->channels;
        int32_t abs_wrong = 0;
        memset(out_buf, FILL, sizeof out_buf);
        if (c->kind == 0) {
            dk_shrink_s8((const dk_shrink_params *)c->params, c->positions, c->channels, c->a, c->b, c->c,
                         out_buf, c->stage);
        } else if (c->kind == 1) {
            dk_channel_affine_s8((const dk_channel_affine_params *)c->params, c->positions, c->channels, c->a,
                                 c->b, c->c, out_buf, c->stage);
        } else if (c->kind == 4) {
            const dk_channel_requant q = {c->multiplier, c->shift, c->per_channel};
            dk_fully_connected_s8((const dk_fc_params *)c->params, &q, c->positions, c->stage, c->channels,
                                  c->a, c->b, c->bias, out_buf);
        } else if (c->kind == 6) {   /* ABS + MEAN, stage 1: the ABS tensor too, into abs_buf */
            memset(abs_buf, FILL, sizeof abs_buf);
            dk_abs_mean_s8(c->b, (const dk_mean_params *)c->params, c->positions, c->channels, c->a,
                           c->stage ? abs_buf : NULL, out_buf);
            abs_wrong = c->stage && memcmp(abs_buf, c->c, (size_t)(c->positions * c->channels)) != 0;
        } else if (c->kind == 7) {   /* MEAN: stage x positions x channels, over the positions */
            dk_mean_s8((const dk_mean_params *)c->params, c->stage, c->positions, c->channels, c->a, out_buf);
        } else if (c->kind == 5) {   /* MUL, stage: b per channel, same shape, scalar */
            const int32_t s2 = c->stage == 2 ? 0 : c->stage == 1 ? c->channels : 0;
            const dk_broadcast bc = {{1, 1, c->positions, c->channels}, {0, 0, c->channels, 1},
                                     {0, 0, s2, c->stage == 2 ? 0 : 1}};
            dk_mul_s8((const dk_mul_params *)c->params, &bc, c->a, c->b, out_buf);
        } else {
            dk_add_same_s8((const dk_add_params *)c->params, n, c->a, c->b, out_buf, c->kind == 3);
        }
        int32_t wrong = -1;
        for (int32_t k = 0; k < n && wrong < 0; k++) {
            if (out_buf[k] != c->expected[k]) {
                wrong = k;
            }
        }
        for (int32_t k = n; k < n + GUARD && wrong < 0; k++) {
            if ((uint8_t)out_buf[k] != FILL) {
                wrong = k;
            }
        }
        if (abs_wrong && wrong < 0) {
            wrong = n;   /* the ABS tensor differs */
        }
        board_puts("CASE ");
        board_put_dec(i);
        if (wrong < 0) {
            board_puts(" ok\n");
        } else {
            board_puts(" FAIL ");
            board_put_dec((uint32_t)wrong);
            board_puts("\n");
            failures++;
        }
    }
    board_puts("END ");
    board_put_dec(failures);
    board_puts("\n");
    board_exit(failures == 0 ? 0 : 1);
    return 0;
}
