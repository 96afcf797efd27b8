/*
 * cycle_model.c - estimated Cortex-M cycles per Thumb/Thumb-2 instruction, decoded from the
 * instruction's bytes. Used by the QEMU plugin (cycle_plugin.c) and, compiled on its own
 * for the host, by the tests (tests/test_cycles.py calls cm_classify through ctypes).
 *
 * The model assumes zero-wait-state memory, no caches, no bus contention, no interrupts.
 * Branch refill P = 2 cycles (taken branch = 1 + P = 3; not taken = 1). See cycle_model.h
 * for the per-core tables; firmware_gen/cycles.py describes them in the benchmark report.
 */
#include "cycle_model.h"

#define P_REFILL 2u

static unsigned popcount16(uint32_t v)
{
    unsigned n = 0;
    for (v &= 0xFFFFu; v; v &= v - 1u) {
        n++;
    }
    return n;
}

/* Whether the instruction at hw1 is 32 bits long. */
int cm_is_wide(uint32_t hw1)
{
    const uint32_t top = hw1 >> 11;
    return top == 0x1Du || top == 0x1Eu || top == 0x1Fu;
}

static void set(struct cm_insn *o, enum cm_class cls, uint32_t cycles)
{
    o->cls = cls;
    o->cycles = cycles;
}

/* Single loads and stores: 2 cycles, 1 when directly after a single load (address and data
 * phases pipelined); nothing pipelines after a store. */
static void single(struct cm_insn *o, const struct cm_state *st, int is_load)
{
    set(o, is_load ? CM_LOAD : CM_STORE, st->prev == CM_LOAD ? 1u : 2u);
}

static void multiple(struct cm_insn *o, unsigned n, int loads_pc)
{
    set(o, loads_pc ? CM_BRANCH : CM_MULTI, 1u + n + (loads_pc ? P_REFILL : 0u));
    o->taken_extra = 0;
}

static void branch(struct cm_insn *o, int conditional)
{
    if (conditional) {
        set(o, CM_COND_BRANCH, 1u);
        o->taken_extra = P_REFILL;
    } else {
        set(o, CM_BRANCH, 1u + P_REFILL);
    }
}

static void decode16(uint32_t hw, int core, const struct cm_state *st, struct cm_insn *o)
{
    (void)core;
    if ((hw & 0xFF00u) == 0x4700u) {                 /* BX, BLX register */
        branch(o, st->in_it);
    } else if ((hw & 0xFC00u) == 0x4400u) {          /* ADD/CMP/MOV high registers */
        const uint32_t rd = (hw & 7u) | ((hw >> 4) & 8u);
        if ((hw & 0x0300u) != 0x0100u && rd == 15u) {
            branch(o, st->in_it);
        } else {
            set(o, CM_ALU, 1u);
        }
    } else if ((hw & 0xF800u) == 0x4800u) {          /* LDR literal */
        single(o, st, 1);
    } else if ((hw >> 12) == 0x5u) {                 /* load/store register offset */
        single(o, st, ((hw >> 9) & 7u) >= 3u);
    } else if ((hw >> 12) >= 0x6u && (hw >> 12) <= 0x9u) {   /* load/store immediate, SP */
        single(o, st, (hw >> 11) & 1u);
    } else if ((hw & 0xF500u) == 0xB100u) {          /* CBZ, CBNZ */
        branch(o, 1);
    } else if ((hw & 0xFE00u) == 0xB400u) {          /* PUSH */
        multiple(o, popcount16(hw & 0x1FFu), 0);
    } else if ((hw & 0xFE00u) == 0xBC00u) {          /* POP */
        multiple(o, popcount16(hw & 0x1FFu), (hw >> 8) & 1u);
        if ((hw >> 8) & 1u && st->in_it) {           /* conditional return */
            o->cls = CM_COND_BRANCH;
            o->cycles = 1u;
            o->taken_extra = popcount16(hw & 0x1FFu) + P_REFILL;
        }
    } else if ((hw & 0xFF00u) == 0xBF00u && (hw & 0xFu) != 0u) {   /* IT */
        set(o, CM_IT, 1u);
    } else if ((hw & 0xF000u) == 0xC000u) {          /* STM, LDM */
        multiple(o, popcount16(hw & 0xFFu), 0);
        o->cls = CM_MULTI;
    } else if ((hw & 0xF000u) == 0xD000u) {
        const uint32_t cond = (hw >> 8) & 0xFu;
        if (cond >= 0xEu) {                          /* UDF, SVC */
            set(o, CM_ALU, 1u);
        } else {
            branch(o, 1);
        }
    } else if ((hw & 0xF800u) == 0xE000u) {          /* B */
        branch(o, st->in_it);
    } else {                                         /* shifts, ALU, MUL, misc */
        set(o, CM_ALU, 1u);
    }
}

/* Coprocessor space: FPv4/FPv5 (coprocessors 10, 11) and, on the M55, MVE. */
static void decode_cp(uint32_t hw1, uint32_t hw2, int core, const struct cm_state *st,
                      struct cm_insn *o)
{
    const int fp = (hw2 & 0x0E00u) == 0x0A00u && (hw1 & 0x1000u) == 0u;
    if (!fp) {
        set(o, CM_VECTOR, core == CM_CORE_M55 ? 2u : 1u);   /* MVE: two beats per cycle */
        return;
    }
    if ((hw1 & 0xFE00u) == 0xEC00u && (hw1 & 0x01A0u) != 0u && (hw1 & 0x0100u) == 0u
        && (hw1 & 0x0180u) != 0u) {
        /* VLDM/VSTM/VPUSH/VPOP: imm8 counts words */
        set(o, CM_MULTI, 1u + (hw2 & 0xFFu));
    } else if ((hw1 & 0xFF20u) == 0xED00u || (hw1 & 0xFF20u) == 0xED20u) {
        if ((hw1 & 0x0020u) == 0u) {                 /* VLDR, VSTR */
            single(o, st, (hw1 >> 4) & 1u);
        } else {                                     /* VLDM/VSTM DB with writeback */
            set(o, CM_MULTI, 1u + (hw2 & 0xFFu));
        }
    } else if ((hw1 & 0xFFB0u) == 0xEE80u && (hw2 & 0x0E50u) == 0x0A00u) {   /* VDIV */
        set(o, CM_DIV, 14u);
    } else if ((hw1 & 0xFFBFu) == 0xEEB1u && (hw2 & 0x0ED0u) == 0x0AC0u) {   /* VSQRT */
        set(o, CM_DIV, 14u);
    } else if (((hw1 & 0xFFB0u) == 0xEE00u || (hw1 & 0xFFB0u) == 0xEE10u
                || (hw1 & 0xFFB0u) == 0xEEA0u || (hw1 & 0xFFB0u) == 0xEE90u)
               && (hw2 & 0x0E10u) == 0x0A00u) {      /* VMLA/VMLS, VNMLA/VNMLS, VFMA, VFNMA */
        set(o, CM_MAC, 3u);
    } else {
        set(o, CM_FP, 1u);
    }
}

static void decode32(uint32_t hw1, uint32_t hw2, int core, const struct cm_state *st,
                     struct cm_insn *o)
{
    if ((hw1 & 0xEC00u) == 0xEC00u) {
        decode_cp(hw1, hw2, core, st, o);
    } else if ((hw1 & 0xFE40u) == 0xE800u) {         /* LDM, STM (.W) */
        const int load = (hw1 >> 4) & 1u;
        multiple(o, popcount16(hw2), load && (hw2 & 0x8000u));
        if (o->cls == CM_BRANCH && st->in_it) {
            o->cls = CM_COND_BRANCH;
            o->cycles = 1u;
            o->taken_extra = popcount16(hw2) + P_REFILL;
        }
    } else if ((hw1 & 0xFE40u) == 0xE840u) {
        if ((hw1 & 0x0120u) != 0u) {                 /* LDRD, STRD */
            set(o, (hw1 >> 4) & 1u ? CM_LOAD_DUAL : CM_STORE_DUAL, 3u);
        } else if ((hw1 & 0xFFF0u) == 0xE8D0u && (hw2 & 0x00E0u) == 0u) {   /* TBB, TBH */
            set(o, CM_BRANCH, 2u + P_REFILL);
        } else {                                     /* LDREX, STREX family */
            single(o, st, (hw1 >> 4) & 1u);
        }
    } else if ((hw1 & 0xF800u) == 0xF000u && (hw2 & 0x8000u)) {   /* branches, misc control */
        const uint32_t op = hw2 & 0x5000u;
        if (op == 0x5000u || op == 0x1000u) {        /* BL, B.W */
            branch(o, op == 0x1000u && st->in_it);
        } else if (op == 0x0000u) {
            if (((hw1 >> 6) & 0xEu) == 0xEu) {       /* MSR, MRS, hints, barriers */
                set(o, CM_ALU, 1u);
            } else {                                 /* B<c>.W */
                branch(o, 1);
            }
        } else {                                     /* M55 low-overhead loops (WLS/DLS/LE) */
            set(o, CM_ALU, 1u);
        }
    } else if ((hw1 & 0xFE00u) == 0xF800u) {         /* load/store single (.W) */
        const int load = (hw1 >> 4) & 1u;
        const uint32_t rt = hw2 >> 12;
        if (load && rt == 15u && ((hw1 >> 5) & 3u) == 2u) {   /* LDR pc */
            set(o, st->in_it ? CM_COND_BRANCH : CM_BRANCH, st->in_it ? 1u : 2u + P_REFILL);
            o->taken_extra = st->in_it ? 1u + P_REFILL : 0u;
        } else {
            single(o, st, load);
        }
    } else if ((hw1 & 0xFF80u) == 0xFB80u) {         /* long multiply, divide */
        const uint32_t op1 = (hw1 >> 4) & 7u, op2 = (hw2 >> 4) & 0xFu;
        if ((op1 == 1u || op1 == 3u) && op2 == 0xFu) {   /* SDIV, UDIV */
            set(o, CM_DIV, 12u);
        } else if (core == CM_CORE_M3) {
            set(o, CM_MAC, op1 >= 4u ? 7u : 5u);     /* M3: early-terminating, worst case */
        } else {
            set(o, CM_MAC, 1u);
        }
    } else if ((hw1 & 0xFF80u) == 0xFB00u) {         /* MUL, MLA, MLS, SMLAD, SMMUL, ... */
        const int accumulates = ((hw2 >> 12) & 0xFu) != 0xFu;
        if (core == CM_CORE_M3 && accumulates) {
            set(o, CM_MAC, 2u);                      /* M3: MLA, MLS */
        } else {
            set(o, CM_MAC, 1u);
        }
    } else {                                         /* data processing, DSP SIMD, bit fields */
        set(o, CM_ALU, 1u);
    }
}

void cm_classify(uint32_t hw1, uint32_t hw2, int core, const struct cm_state *st,
                 struct cm_insn *out)
{
    out->taken_extra = 0;
    out->size = cm_is_wide(hw1) ? 4u : 2u;
    if (out->size == 4u) {
        decode32(hw1 & 0xFFFFu, hw2 & 0xFFFFu, core, st, out);
    } else {
        decode16(hw1 & 0xFFFFu, core, st, out);
    }
}

void cm_advance(struct cm_state *st, uint32_t hw1, const struct cm_insn *insn)
{
    if (st->in_it) {
        st->in_it--;
    }
    if (insn->cls == CM_IT) {
        const uint32_t mask = hw1 & 0xFu;
        st->in_it = mask & 1u ? 4u : mask & 2u ? 3u : mask & 4u ? 2u : 1u;
    }
    st->prev = insn->cls;
}

uint32_t cm_cost(uint32_t hw1, uint32_t hw2, int core, uint32_t prev, uint32_t in_it,
                 uint32_t *cls, uint32_t *taken_extra)
{
    struct cm_state st = {.prev = (enum cm_class)prev, .in_it = in_it};
    struct cm_insn o;
    cm_classify(hw1, hw2, core, &st, &o);
    *cls = o.cls;
    *taken_extra = o.taken_extra;
    return o.cycles;
}
