/*
 * monitor.h - streaming monitor: a continuous int16 sample stream in, one verdict per hop.
 *
 * The board keeps the last `window` samples in a ring buffer. Once a full window has
 * arrived, and then every `hop` samples, it unrolls the ring into a linear window,
 * preprocesses it (dk_preprocess_s16, drsn_edge/preprocess.py), runs the model, takes the
 * class (argmax of the int8 output, the lowest index on ties) and a smoothed decision over
 * the last `smooth_windows` verdicts (fewer at the start of a stream). The smoothing is
 * integer-only, defined once here and mirrored by runner/monitor.py `smooth`:
 *
 *   MONITOR_MAJORITY: the class with the most votes among those windows; on a tie, the
 *                     tied class that occurs most recently.
 *   MONITOR_MEAN:     argmax over classes of the sum of the int8 outputs of those windows
 *                     (the argmax of the mean probability, since dequantization is
 *                     monotonic), the lowest index on ties.
 *
 * Verdict k (k = 0, 1, ...) covers samples [k * hop, k * hop + window) of the stream.
 * Memory: the ring (window int16) plus scratch (a linear int16 window, the int8 model
 * input, and the last smooth_windows outputs and classes), all static, sized at compile
 * time by MONITOR_MAX_WINDOW / MONITOR_MAX_SMOOTH / MONITOR_MAX_OUTPUT; the firmware
 * generator sets MONITOR_MAX_WINDOW to the model's input size.
 */
#ifndef DRSN_MONITOR_H
#define DRSN_MONITOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef MONITOR_MAX_WINDOW
#define MONITOR_MAX_WINDOW 1024u
#endif
#ifndef MONITOR_MAX_SMOOTH
#define MONITOR_MAX_SMOOTH 32u
#endif
#ifndef MONITOR_MAX_OUTPUT
#define MONITOR_MAX_OUTPUT 32u
#endif

#define MONITOR_MAJORITY 0u
#define MONITOR_MEAN 1u

/* monitor_start results */
#define MONITOR_OK 0
#define MONITOR_BAD_HOP 1        /* hop 0 or above the window */
#define MONITOR_BAD_SMOOTHING 2  /* unknown mode, or smooth_windows 0 or too many */
#define MONITOR_TOO_LARGE 3      /* the model's input or output exceeds the static buffers */

typedef struct {
    uint32_t start;       /* first sample of the window (stream sample index, mod 2^32) */
    uint8_t cls;          /* argmax of the output */
    uint8_t smoothed;     /* the smoothed decision */
    uint32_t work_pre;    /* board_counter over dk_preprocess_s16 */
    uint32_t work;        /* board_counter over the whole window: unroll, preprocess,
                             model, smoothing */
    const int8_t *input;  /* the preprocessed int8 input, valid during the callback */
    const int8_t *output; /* model output, valid during the callback */
    int32_t status;       /* 0, or the failing dk_preprocess_s16 / model_invoke status */
} monitor_verdict;

typedef struct {
    uint32_t window, hop, smooth_windows, out_size;
    uint8_t mode;
    uint8_t active;
    uint32_t received;    /* samples since monitor_start (mod 2^32) */
    uint32_t until_next;  /* samples still needed before the next verdict */
    uint32_t verdicts;    /* verdicts so far */
    uint32_t head;        /* next write position in the ring */
} monitor_status;

/* (Re)start a stream: forgets every sample and verdict. */
int monitor_start(uint32_t hop, uint8_t mode, uint32_t smooth_windows);
void monitor_stop(void);
const monitor_status *monitor_state(void);

/* Verdicts that pushing n more samples would produce (0 when not started). */
uint32_t monitor_verdicts_for(uint32_t n);

/* Push n little-endian int16 samples; emit() is called for every verdict, in order. Stops
 * at the first verdict whose preprocessing or model fails (status set; that verdict is
 * emitted with the status, and the samples after it are not consumed). Returns the number
 * of samples consumed. */
typedef void (*monitor_emit_fn)(const monitor_verdict *v, void *ctx);
uint32_t monitor_push(const uint8_t *samples_le, uint32_t n, monitor_emit_fn emit, void *ctx);

/* Bytes of static memory: the ring, and the scratch around it. */
uint32_t monitor_ring_bytes(void);
uint32_t monitor_scratch_bytes(void);

/* The smoothing rule alone (for tests and the standalone image): classes[i] and
 * outputs[i * out_size ...] for the last n windows, oldest first. */
uint8_t monitor_argmax(const int8_t *output, uint32_t out_size);
uint8_t monitor_smooth(uint8_t mode, const uint8_t *classes, const int8_t *outputs,
                       uint32_t n, uint32_t out_size);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_MONITOR_H */
