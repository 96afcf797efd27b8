/*
 * A model that misbehaves on purpose, for tests/test_hil.py: it answers like a real model
 * (the hash and shapes of the model the host validates, constant outputs) until its
 * FAULT_AFTER-th inference, which then
 *   FAULT_KIND 1: executes an undefined instruction (UsageFault, escalated to HardFault),
 *   FAULT_KIND 2: never returns (a hang: the board stops answering),
 *   FAULT_KIND 3: resets the core (as a watchdog would), so the board boots again.
 *
 * Build with -DMODEL_HASH_INIT="{0x.., ...}" (32 bytes), -DMODEL_IN=<input samples>,
 * -DMODEL_OUT=<outputs>, -DFAULT_KIND=<1..3>, -DFAULT_AFTER=<n>.
 */
#include "model_api.h"

#ifndef FAULT_AFTER
#define FAULT_AFTER 10
#endif

#define AIRCR 0xE000ED0Cu
#define AIRCR_SYSRESETREQ 0x05FA0004u

static const uint8_t hash[MODEL_HASH_BYTES] = MODEL_HASH_INIT;
static const model_tensor_info input_info = {
    "input", MODEL_TENSOR_ACTIVATION, 2, {MODEL_IN, 1}, MODEL_IN, 0.0625f, 0};
static const model_tensor_info output_info = {
    "output", MODEL_TENSOR_ACTIVATION, 1, {MODEL_OUT}, MODEL_OUT, 0.00390625f, -128};
static unsigned invocations;

const char *model_name(void) { return "fault_model"; }
const uint8_t *model_hash(void) { return hash; }
const model_tensor_info *model_input(void) { return &input_info; }
const model_tensor_info *model_output(void) { return &output_info; }
uint32_t model_arena_bytes(void) { return 0; }
int model_init(void) { return MODEL_OK; }
int model_layer_count(void) { return 1; }

const model_tensor_info *model_layer(int i)
{
    return i == 0 ? &output_info : 0;
}

int model_invoke(const int8_t *in, int8_t *out)
{
    (void)in;
    if (++invocations == FAULT_AFTER) {
#if FAULT_KIND == 1
        __asm__ volatile("udf #0");
#elif FAULT_KIND == 2
        for (;;) {
            __asm__ volatile("nop");
        }
#elif FAULT_KIND == 3
        for (;;) {
            *(volatile uint32_t *)AIRCR = AIRCR_SYSRESETREQ;
        }
#endif
    }
    for (int i = 0; i < MODEL_OUT; i++) {
        out[i] = -128;
    }
    return MODEL_OK;
}

int model_invoke_debug(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{
    int status = model_invoke(in, out);
    if (status == MODEL_OK && emit) {
        emit(0, out, MODEL_OUT, ctx);
    }
    return status;
}
