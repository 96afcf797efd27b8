/*
 * cycle_model.h - per-core instruction timing tables of the cycle estimate (cycle_model.c).
 *
 * Cortex-M4 (Arm's published instruction timings, zero-wait-state memory):
 *   data processing, shifts, bit fields, DSP SIMD, MUL, MLA/MLS, SMLAD/SMLAL family  1
 *   single load/store 2, or 1 directly after a single load (pipelined); LDRD/STRD 3
 *   LDM/STM/PUSH/POP 1 + N; with PC loaded + P
 *   branch taken 1 + P, not taken 1 (P = pipeline refill, taken as 2); TBB/TBH 2 + P
 *   SDIV/UDIV 12 (the worst case of 2..12: operands are not seen)
 *   FPU: VLDR/VSTR like loads, VLDM/VSTM 1 + words, VDIV/VSQRT 14, VMLA/VFMA family 3, else 1
 * Cortex-M3: as the M4, but MLA/MLS 2, long multiplies 5 and long MACs 7 (worst cases of
 *   the early-terminating multiplier); no DSP or FPU instructions.
 * Cortex-M55: the M4 table for scalar code (an estimate: Arm publishes no such table for the
 *   M55); each MVE instruction 2 cycles (128-bit vector, two 32-bit beats per cycle).
 * IT costs 1 (folding not modelled); instructions skipped by IT are charged as executed.
 */
#ifndef CYCLE_MODEL_H
#define CYCLE_MODEL_H

#include <stdint.h>

enum cm_core { CM_CORE_M3 = 3, CM_CORE_M4 = 4, CM_CORE_M55 = 55 };

enum cm_class {
    CM_NONE = 0, CM_ALU, CM_LOAD, CM_STORE, CM_LOAD_DUAL, CM_STORE_DUAL, CM_MULTI,
    CM_BRANCH, CM_COND_BRANCH, CM_MAC, CM_DIV, CM_IT, CM_FP, CM_VECTOR
};

/* What the decoder knows about the instructions before this one in the same block. */
struct cm_state {
    enum cm_class prev;     /* class of the previous instruction (CM_NONE at a block start) */
    uint32_t in_it;         /* instructions of an IT block still to come, this one included */
};

struct cm_insn {
    enum cm_class cls;
    uint32_t size;          /* bytes: 2 or 4 */
    uint32_t cycles;        /* cost when executed (conditional branch: when not taken) */
    uint32_t taken_extra;   /* conditional branch: cycles added when it is taken */
};

int cm_is_wide(uint32_t hw1);
void cm_classify(uint32_t hw1, uint32_t hw2, int core, const struct cm_state *st,
                 struct cm_insn *out);
void cm_advance(struct cm_state *st, uint32_t hw1, const struct cm_insn *insn);
/* Flat form for the tests (ctypes): cycles, with class and taken extra written back. */
uint32_t cm_cost(uint32_t hw1, uint32_t hw2, int core, uint32_t prev, uint32_t in_it,
                 uint32_t *cls, uint32_t *taken_extra);

#endif /* CYCLE_MODEL_H */
