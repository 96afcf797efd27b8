/*
 * monitor.c - the streaming monitor (monitor.h): ring buffer, sliding window, verdicts and
 * their integer smoothing. Used by the STREAM command (protocol.c).
 */
#include "monitor.h"

#include <string.h>

#include "board.h"
#include "dk.h"
#include "model_api.h"

/* The ring buffer of the last `window` samples. */
int16_t monitor_ring[MONITOR_MAX_WINDOW] __attribute__((aligned(4)));

/* Scratch: the window unrolled in time order, the model's int8 input and output, and the
 * history the smoothing reads (oldest first). */
struct monitor_scratch {
    int16_t window[MONITOR_MAX_WINDOW];
    int8_t input[MONITOR_MAX_WINDOW];
    int8_t output[MONITOR_MAX_OUTPUT];
    int8_t history[MONITOR_MAX_SMOOTH * MONITOR_MAX_OUTPUT];
    uint8_t classes[MONITOR_MAX_SMOOTH];
} __attribute__((aligned(8)));
struct monitor_scratch monitor_scratch;

static monitor_status st;

uint32_t monitor_ring_bytes(void)
{
    return (uint32_t)sizeof monitor_ring;
}

uint32_t monitor_scratch_bytes(void)
{
    return (uint32_t)sizeof monitor_scratch;
}

const monitor_status *monitor_state(void)
{
    return &st;
}

void monitor_stop(void)
{
    st.active = 0;
}

int monitor_start(uint32_t hop, uint8_t mode, uint32_t smooth_windows)
{
    const uint32_t window = model_input()->size, out_size = model_output()->size;
    st.active = 0;
    if (window > MONITOR_MAX_WINDOW || out_size > MONITOR_MAX_OUTPUT || out_size == 0 ||
        out_size > 256) {
        return MONITOR_TOO_LARGE;
    }
    if (hop == 0 || hop > window) {
        return MONITOR_BAD_HOP;
    }
    if (mode > MONITOR_MEAN || smooth_windows == 0 || smooth_windows > MONITOR_MAX_SMOOTH) {
        return MONITOR_BAD_SMOOTHING;
    }
    memset(&st, 0, sizeof st);
    st.window = window;
    st.hop = hop;
    st.mode = mode;
    st.smooth_windows = smooth_windows;
    st.out_size = out_size;
    st.until_next = window;
    st.active = 1;
    return MONITOR_OK;
}

uint32_t monitor_verdicts_for(uint32_t n)
{
    if (!st.active || n < st.until_next) {
        return 0;
    }
    return 1u + (n - st.until_next) / st.hop;
}

uint8_t monitor_argmax(const int8_t *output, uint32_t out_size)
{
    uint32_t best = 0;
    for (uint32_t j = 1; j < out_size; j++) {
        if (output[j] > output[best]) {
            best = j;
        }
    }
    return (uint8_t)best;
}

uint8_t monitor_smooth(uint8_t mode, const uint8_t *classes, const int8_t *outputs,
                       uint32_t n, uint32_t out_size)
{
    if (n == 0 || out_size == 0 || out_size > MONITOR_MAX_OUTPUT) {
        return 0;
    }
    if (mode == MONITOR_MEAN) {
        int32_t sums[MONITOR_MAX_OUTPUT];
        for (uint32_t j = 0; j < out_size; j++) {
            sums[j] = 0;
            for (uint32_t i = 0; i < n; i++) {
                sums[j] += outputs[i * out_size + j];
            }
        }
        uint32_t best = 0;
        for (uint32_t j = 1; j < out_size; j++) {
            if (sums[j] > sums[best]) {
                best = j;
            }
        }
        return (uint8_t)best;
    }
    uint32_t counts[MONITOR_MAX_OUTPUT];
    memset(counts, 0, sizeof counts);
    uint32_t most = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = classes[i] < out_size ? classes[i] : 0;
        if (++counts[c] > most) {
            most = counts[c];
        }
    }
    for (uint32_t i = n; i-- > 0;) { /* the most recent of the tied classes */
        uint32_t c = classes[i] < out_size ? classes[i] : 0;
        if (counts[c] == most) {
            return (uint8_t)c;
        }
    }
    return 0;
}

/* One verdict on the ring's current window. */
static int32_t run_window(monitor_verdict *v)
{
    struct monitor_scratch *m = &monitor_scratch;
    const model_tensor_info *in = model_input();
    const uint32_t w = st.window, out_size = st.out_size;
    board_counter_start();
    /* the oldest sample sits at head (the ring is full) */
    memcpy(m->window, monitor_ring + st.head, (w - st.head) * sizeof(int16_t));
    memcpy(m->window + (w - st.head), monitor_ring, st.head * sizeof(int16_t));
    uint64_t a = board_counter_read();
    int32_t status = dk_preprocess_s16(m->window, w, in->scale, in->zero_point, m->input, NULL);
    uint64_t b = board_counter_read();
    v->work_pre = (uint32_t)(b - a);
    v->start = st.received - w;
    v->input = m->input;
    v->output = m->output;
    if (status != DK_PRE_OK) {
        return status;
    }
    status = model_invoke(m->input, m->output);
    if (status != MODEL_OK) {
        return status;
    }
    v->cls = monitor_argmax(m->output, out_size);
    /* history: the last smooth_windows outputs and classes, oldest first */
    uint32_t kept = st.verdicts < st.smooth_windows ? st.verdicts : st.smooth_windows - 1;
    if (kept == st.smooth_windows - 1 && st.verdicts >= st.smooth_windows) {
        memmove(m->history, m->history + out_size, kept * out_size);
        memmove(m->classes, m->classes + 1, kept);
    }
    memcpy(m->history + kept * out_size, m->output, out_size);
    m->classes[kept] = v->cls;
    v->smoothed = monitor_smooth(st.mode, m->classes, m->history, kept + 1, out_size);
    v->work = (uint32_t)board_counter_read();
    st.verdicts++;
    return 0;
}

uint32_t monitor_push(const uint8_t *samples_le, uint32_t n, monitor_emit_fn emit, void *ctx)
{
    if (!st.active) {
        return 0;
    }
    uint32_t i = 0;
    while (i < n) {
        /* copy up to the next verdict (or the end of the chunk) into the ring */
        uint32_t take = n - i < st.until_next ? n - i : st.until_next;
        for (uint32_t k = 0; k < take; k++, i++) {
            monitor_ring[st.head] = (int16_t)(uint16_t)(samples_le[2 * i] |
                                                        samples_le[2 * i + 1] << 8);
            st.head = st.head + 1 == st.window ? 0 : st.head + 1;
        }
        st.received += take;
        st.until_next -= take;
        if (st.until_next == 0) {
            monitor_verdict v;
            memset(&v, 0, sizeof v);
            v.status = run_window(&v);
            st.until_next = st.hop;
            emit(&v, ctx);
            if (v.status != 0) {
                return i;
            }
        }
    }
    return i;
}
