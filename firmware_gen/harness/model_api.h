/*
 * model_api.h - what the serial harness needs from a model.
 *
 * The harness (protocol.c, main.c) never knows which network it runs: the code generator
 * emits one C file implementing these functions for the chosen model, and the test suite
 * links a small hand-written model (tests/firmware/test_model.c) instead. Everything is
 * int8 in, int8 out, except that a model whose last op is DEQUANTIZE outputs float32 and one
 * whose first op is a QUANTIZE of its input takes float32 (the size is then 4 bytes per
 * element; the harness moves bytes and never looks inside).
 * Quantization parameters are reported, never applied, by the harness.
 */
#ifndef DRSN_MODEL_API_H
#define DRSN_MODEL_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Enough for NHWC; a lower-rank tensor leaves the trailing entries unused. */
#define MODEL_MAX_DIMS 4
/* Length of model_hash(): a SHA-256 of the model file, so the host can tell that the
 * board runs exactly the network it means to validate. */
#define MODEL_HASH_BYTES 32

/* Return codes of model_init / model_invoke / model_invoke_debug. Anything other than
 * these is passed to the host as the detail of an INTERNAL error. */
#define MODEL_OK 0
#define MODEL_BUSY 1 /* not ready now, the same call may succeed later: host retries */

/* What a tensor is, for the DEBUG dump: a layer's output, or the per-channel shrinkage
 * thresholds tau a DRSN unit computed for this input (they are data-dependent, which is
 * why they are dumped per inference rather than read from the weights). */
#define MODEL_TENSOR_ACTIVATION 0
#define MODEL_TENSOR_THRESHOLD 1

typedef struct {
    const char *name;     /* e.g. "rsbu1/soft_threshold", unique within the model */
    uint8_t kind;         /* MODEL_TENSOR_* */
    uint8_t ndim;         /* 1..MODEL_MAX_DIMS, no batch dimension */
    uint32_t dims[MODEL_MAX_DIMS];
    uint32_t size;        /* bytes: the product of dims for int8; 4 times it for the float32
                           * output of a final DEQUANTIZE or input of a first QUANTIZE (the
                           * element type is size divided by the product of dims) */
    float scale;          /* real = scale * (q - zero_point); 0 for a float32 tensor */
    int32_t zero_point;
} model_tensor_info;

const char *model_name(void);
const uint8_t *model_hash(void);                /* MODEL_HASH_BYTES bytes */
const model_tensor_info *model_input(void);
const model_tensor_info *model_output(void);
uint32_t model_arena_bytes(void);               /* working memory the model reserves */

/* Called once at boot before anything else; a failure is reported by every request. */
int model_init(void);

/* One inference: model_input()->size bytes in, model_output()->size bytes out (float32
 * inputs and outputs as native float bytes, read and written byte-wise: neither `in` nor
 * `out` needs alignment). */
int model_invoke(const int8_t *in, int8_t *out);

/*
 * The same inference, reporting intermediate tensors as they are computed: emit() is
 * called once per entry of the layer table (model_layer(i)), in any order, with exactly
 * model_layer(i)->size bytes. `data` needs to stay valid only during the call (it may
 * point into the arena). The final output is also written to `out`, and must equal what
 * model_invoke computes for the same input.
 */
typedef void (*model_emit_fn)(int layer, const int8_t *data, uint32_t n, void *ctx);
int model_layer_count(void);
const model_tensor_info *model_layer(int i);    /* NULL outside 0..count-1 */
int model_invoke_debug(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_MODEL_API_H */
