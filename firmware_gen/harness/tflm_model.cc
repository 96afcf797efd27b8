/*
 * tflm_model.cc - model_api.h over the TensorFlow Lite Micro interpreter: the second
 * firmware back end (firmware_gen/tflm_backend.py builds it).
 *
 * The .tflite is embedded unchanged (model_data.cc) and interpreted on the board by a
 * prebuilt TFLM library the user supplies. Everything model-specific comes from the
 * generated tflm_model.h: the op list for the resolver, the arena size, the tensor
 * descriptions INFO reports. This file stays the same for every model, so it is compiled
 * with -Werror like the rest of the harness; TFLM's own headers come in as -isystem.
 *
 * No per-layer DEBUG dumps: TFLM plans intermediate tensors into shared arena memory, so
 * they are overwritten before the inference ends, and its only per-op hook (the profiler)
 * is compiled out of release builds (TF_LITE_STRIP_ERROR_STRINGS). Keeping every tensor
 * alive would need an arena of all activations side by side, more RAM than the small
 * boards have. model_layer_count() is therefore 0 and model_invoke_debug() answers
 * TFLM_ERR_NO_DEBUG; the compiled back end has the dumps.
 */
#include <stdint.h>
#include <string.h>

#include <new>

#include "model_api.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm_model.h"

/* model_init / model_invoke status codes; firmware_gen/tflm_backend.py STATUS explains
 * them on the host. 0 and 1 are MODEL_OK and MODEL_BUSY. */
#define TFLM_ERR_SCHEMA 10    /* the .tflite's schema version is not the library's */
#define TFLM_ERR_OPS 11       /* registering an op in the resolver failed */
#define TFLM_ERR_ARENA 12     /* AllocateTensors failed: the arena is too small */
#define TFLM_ERR_TENSORS 13   /* input/output differ from what tflm_model.h describes */
#define TFLM_ERR_INVOKE 14    /* Invoke failed */
#define TFLM_ERR_NO_DEBUG 15  /* DEBUG: no per-layer dumps in this back end */
#define TFLM_ERR_NOT_READY 16 /* model_invoke before a successful model_init */

namespace {

/* 16-byte alignment is what TFLM's allocator asks of the arena (it would otherwise skip
 * bytes at the start to align, and the measured size would no longer fit). */
alignas(16) uint8_t arena[TFLM_ARENA_BYTES];

/* Built in place at model_init rather than as globals: no static constructors to order,
 * and nothing the board layer must run before main. Never destroyed. */
alignas(tflm_resolver) uint8_t resolver_mem[sizeof(tflm_resolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_mem[sizeof(tflite::MicroInterpreter)];

tflite::MicroInterpreter *interpreter;
TfLiteTensor *input_tensor;
TfLiteTensor *output_tensor;
uint32_t arena_used;

const model_tensor_info input_info = TFLM_INPUT_INFO;
const model_tensor_info output_info = TFLM_OUTPUT_INFO;

bool matches(const TfLiteTensor *t, const model_tensor_info *info)
{
    return t != nullptr && t->type == kTfLiteInt8 && t->bytes == info->size &&
           t->data.int8 != nullptr;
}

} // namespace

extern "C" {

const char *model_name(void) { return TFLM_MODEL_NAME; }
const uint8_t *model_hash(void) { return tflm_model_sha256; }
const model_tensor_info *model_input(void) { return &input_info; }
const model_tensor_info *model_output(void) { return &output_info; }

/* What the interpreter actually uses once set up (the host reads it from INFO to size the
 * final arena); before that, the static reservation. */
uint32_t model_arena_bytes(void) { return arena_used ? arena_used : TFLM_ARENA_BYTES; }

int model_init(void)
{
    if (interpreter != nullptr) {
        return MODEL_OK;
    }
    const tflite::Model *model = tflite::GetModel(tflm_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return TFLM_ERR_SCHEMA;
    }
    tflm_resolver *resolver = new (resolver_mem) tflm_resolver();
    if (tflm_register_ops(*resolver) != kTfLiteOk) {
        return TFLM_ERR_OPS;
    }
    tflite::MicroInterpreter *interp =
        new (interpreter_mem) tflite::MicroInterpreter(model, *resolver, arena, sizeof arena);
    if (interp->AllocateTensors() != kTfLiteOk) {
        return TFLM_ERR_ARENA;
    }
    if (interp->inputs_size() != 1 || interp->outputs_size() != 1 ||
        !matches(interp->input(0), &input_info) || !matches(interp->output(0), &output_info)) {
        return TFLM_ERR_TENSORS;
    }
    input_tensor = interp->input(0);
    output_tensor = interp->output(0);
    arena_used = (uint32_t)interp->arena_used_bytes();
    interpreter = interp;
    return MODEL_OK;
}

int model_invoke(const int8_t *in, int8_t *out)
{
    if (interpreter == nullptr) {
        return TFLM_ERR_NOT_READY;
    }
    memcpy(input_tensor->data.int8, in, input_info.size);
    if (interpreter->Invoke() != kTfLiteOk) {
        return TFLM_ERR_INVOKE;
    }
    memcpy(out, output_tensor->data.int8, output_info.size);
    return MODEL_OK;
}

int model_layer_count(void) { return 0; }

const model_tensor_info *model_layer(int i)
{
    (void)i;
    return nullptr;
}

int model_invoke_debug(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{
    (void)in;
    (void)out;
    (void)emit;
    (void)ctx;
    return TFLM_ERR_NO_DEBUG;
}

} // extern "C"
