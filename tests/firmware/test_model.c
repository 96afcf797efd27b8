/*
 * A stand-in for a generated model, for tests/test_protocol.py: small, deterministic, and
 * exactly reproducible in numpy (test_protocol.reference_model), so every RESULT and
 * DEBUG dump can be checked bit for bit.
 *
 *   input  x: int8 [IN, 1]
 *   dense  z[j] = sat8(((sum_i w(j,i) x[i] + b(j)) * 77 + 2^14) >> 15) + 3),
 *          w(j,i) = (7i + 13j) mod 17 - 8, b(j) = 100j - 800, j = p*CH + c
 *   tau[c] = min(127, (sum_p |z[p,c] - 3|) >> 3)            (a "threshold" tensor)
 *   output y[p,c] = sat8(3 + sign(d) * max(|d| - tau[c], 0)), d = z[p,c] - 3
 *
 * Inputs starting with the bytes "BUSY" or "FAIL" make the model return MODEL_BUSY or 42,
 * so the tests can provoke the harness's BUSY and INTERNAL errors.
 * TEST_MODEL_IN and TEST_MODEL_POS change the sizes (a large output tests RESULTs that
 * span several frames).
 */
#include <string.h>

#include "model_api.h"

#ifndef TEST_MODEL_IN
#define TEST_MODEL_IN 1024
#endif
#ifndef TEST_MODEL_POS
#define TEST_MODEL_POS 4
#endif
#ifndef TEST_MODEL_IN_SCALE /* another value (e.g. 0) tests how RAW reports a bad scale */
#define TEST_MODEL_IN_SCALE (1.0f / 64)
#endif
#define CH 4
#define OUT (TEST_MODEL_POS * CH)
#define OUT_ZP 3
#define OUT_SCALE 0.05f
#define REQUANT_MULT 77
#define REQUANT_SHIFT 15
#define FAIL_STATUS 42

static const uint8_t hash[MODEL_HASH_BYTES] = {
    /* SHA-256 of "drsn-edge test model v1" */
    0x5e, 0x3d, 0xb8, 0xc4, 0x0d, 0xc1, 0x81, 0xf1, 0x70, 0xd2, 0x2e, 0x4a, 0x04, 0x58, 0x25, 0x52,
    0xb0, 0xf5, 0xf3, 0x81, 0x12, 0xf2, 0xf7, 0xcf, 0xc4, 0x56, 0x68, 0x30, 0x5c, 0x61, 0x27, 0x4b,
};

static const model_tensor_info input_info = {
    "input", MODEL_TENSOR_ACTIVATION, 2, {TEST_MODEL_IN, 1}, TEST_MODEL_IN, TEST_MODEL_IN_SCALE, -1};
static const model_tensor_info layers[] = {
    {"dense", MODEL_TENSOR_ACTIVATION, 2, {TEST_MODEL_POS, CH}, OUT, OUT_SCALE, OUT_ZP},
    {"shrink/tau", MODEL_TENSOR_THRESHOLD, 1, {CH}, CH, OUT_SCALE, 0},
    {"shrink/out", MODEL_TENSOR_ACTIVATION, 2, {TEST_MODEL_POS, CH}, OUT, OUT_SCALE, OUT_ZP},
};
#define LAYER_COUNT (int)(sizeof layers / sizeof layers[0])

static int8_t z[OUT];
static int8_t tau[CH];

const char *model_name(void) { return "test-dense-shrink"; }
const uint8_t *model_hash(void) { return hash; }
const model_tensor_info *model_input(void) { return &input_info; }
const model_tensor_info *model_output(void) { return &layers[LAYER_COUNT - 1]; }
uint32_t model_arena_bytes(void) { return sizeof z + sizeof tau; }
int model_init(void) { return MODEL_OK; }
int model_layer_count(void) { return LAYER_COUNT; }

const model_tensor_info *model_layer(int i)
{
    return i >= 0 && i < LAYER_COUNT ? &layers[i] : 0;
}

static int8_t sat8(int32_t v)
{
    return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
}

static int run(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{
    if (memcmp(in, "BUSY", 4) == 0) {
        return MODEL_BUSY;
    }
    if (memcmp(in, "FAIL", 4) == 0) {
        return FAIL_STATUS;
    }
    for (int j = 0; j < OUT; j++) {
        int32_t acc = 100 * j - 800;
        int32_t w = (13 * j) % 17; /* (7i + 13j) mod 17, stepped by 7 per i */
        for (int i = 0; i < TEST_MODEL_IN; i++) {
            acc += (w - 8) * in[i];
            w += 7;
            if (w >= 17) {
                w -= 17;
            }
        }
        int64_t scaled = ((int64_t)acc * REQUANT_MULT + (1 << (REQUANT_SHIFT - 1))) >> REQUANT_SHIFT;
        z[j] = sat8((int32_t)scaled + OUT_ZP);
    }
    for (int c = 0; c < CH; c++) {
        int32_t sum = 0;
        for (int p = 0; p < TEST_MODEL_POS; p++) {
            int32_t d = z[p * CH + c] - OUT_ZP;
            sum += d < 0 ? -d : d;
        }
        tau[c] = (int8_t)((sum >> 3) > 127 ? 127 : sum >> 3);
    }
    for (int j = 0; j < OUT; j++) {
        int32_t d = z[j] - OUT_ZP;
        int32_t m = (d < 0 ? -d : d) - tau[j % CH];
        m = m < 0 ? 0 : m;
        out[j] = sat8(OUT_ZP + (d < 0 ? -m : m));
    }
    if (emit) {
        emit(0, z, OUT, ctx);
        emit(1, tau, CH, ctx);
        emit(2, out, OUT, ctx);
    }
    return MODEL_OK;
}

int model_invoke(const int8_t *in, int8_t *out)
{
    return run(in, out, 0, 0);
}

int model_invoke_debug(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{
    return run(in, out, emit, ctx);
}
