/*
 * dk_acle.h - the few DSP-extension operations the optimised kernels use, and exact
 * requantization helpers built on them.
 *
 * On a core with the DSP extension (Cortex-M4/M7/M33/M55: __ARM_FEATURE_DSP) these are the
 * compiler's ACLE intrinsics from <arm_acle.h> (and SMMULR, which ACLE lacks, as one
 * instruction of inline assembly). Elsewhere (Cortex-M3, the host) each is a plain C
 * emulation with the same bit-exact result, so the optimised kernels compile and are tested
 * everywhere. DK_USE_DSP selects the DSP variant of a kernel: set on DSP cores, and on the
 * host with -DDK_EMULATE_DSP so the host tests run the DSP code with the emulations.
 */
#ifndef DK_ACLE_H
#define DK_ACLE_H

#include <stdint.h>
#include <string.h>

/* Small helpers are forced inline: the specialised kernels (conv1d.h, ew_fused.h) are
 * expanded into one large function per model, where the compiler's size limits would
 * otherwise leave these as calls. */
#if defined(__GNUC__)
#define DK_INLINE static inline __attribute__((always_inline))
#else
#define DK_INLINE static inline
#endif

#if (defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP) || (defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define DK_HAS_DSP 1
#else
#define DK_HAS_DSP 0
#endif

#if DK_HAS_DSP || defined(DK_EMULATE_DSP)
#define DK_USE_DSP 1
#else
#define DK_USE_DSP 0
#endif

#if DK_HAS_DSP

/* acc + lo(a)*lo(b) + hi(a)*hi(b), signed 16-bit halves */
DK_INLINE int32_t dk_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/* bytes 0 and 2, sign-extended to the two 16-bit halves */
DK_INLINE uint32_t dk_sxtb16(uint32_t x)
{
    return __sxtb16(x);
}

/* bytes 1 and 3: SXTB16 with its built-in ROR #8 (one instruction) */
DK_INLINE uint32_t dk_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* two words from a word-aligned address, then advance it by 8 (one LDRD) */
DK_INLINE void dk_ldrd_inc(const void **p, uint32_t *lo, uint32_t *hi)
{
    __asm__ volatile("ldrd %0, %1, [%2], #8" : "=r"(*lo), "=r"(*hi), "+r"(*p) : : "memory");
}

/* two words to a word-aligned address, then advance it by 8 (one STRD) */
DK_INLINE void dk_strd_inc(void **p, uint32_t lo, uint32_t hi)
{
    __asm__ volatile("strd %1, %2, [%0], #8" : "+r"(*p) : "r"(lo), "r"(hi) : "memory");
}

/* 16-bit lane-wise add */
DK_INLINE uint32_t dk_sadd16(uint32_t a, uint32_t b)
{
    return __sadd16(a, b);
}

/* acc + lo(a) * lo(b), and acc + hi(a) * hi(b): one lane's product each (SMLABB, SMLATT) */
DK_INLINE int32_t dk_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

DK_INLINE int32_t dk_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

/* (a * b + 2^31) >> 32: the rounded high word of the product */
DK_INLINE int32_t dk_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* acc + ((a * b + 2^31) >> 32): SMMULR with an accumulator added to the high word */
DK_INLINE int32_t dk_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

#else /* exact emulations */

DK_INLINE int32_t dk_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    const int32_t lo = (int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu);
    const int32_t hi = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}

DK_INLINE uint32_t dk_sxtb16(uint32_t x)
{
    const uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFFu);
    const uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFFu);
    return lo | (hi << 16);
}

DK_INLINE uint32_t dk_sxtb16_ror8(uint32_t x)
{
    return dk_sxtb16((x >> 8) | (x << 24));
}

DK_INLINE uint32_t dk_sadd16(uint32_t a, uint32_t b)
{
    const uint32_t lo = (a + b) & 0xFFFFu;
    const uint32_t hi = ((a >> 16) + (b >> 16)) & 0xFFFFu;
    return lo | (hi << 16);
}

DK_INLINE int32_t dk_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu)));
}

DK_INLINE int32_t dk_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16)));
}

DK_INLINE int32_t dk_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
}

DK_INLINE int32_t dk_smmlar(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)dk_smmulr(a, b));
}

DK_INLINE void dk_ldrd_inc(const void **p, uint32_t *lo, uint32_t *hi)
{
    const uint8_t *b = (const uint8_t *)*p;
    memcpy(lo, b, 4);
    memcpy(hi, b + 4, 4);
    *p = b + 8;
}

DK_INLINE void dk_strd_inc(void **p, uint32_t lo, uint32_t hi)
{
    uint8_t *b = (uint8_t *)*p;
    memcpy(b, &lo, 4);
    memcpy(b + 4, &hi, 4);
    *p = b + 8;
}

#endif

/*
 * Fast exact requantization for values known (at generation time) to be small.
 *
 * TFLM's x * multiplier * 2^(shift - 31) is SaturatingRoundingDoublingHighMul followed by
 * RoundingDivideByPOT. For a multiplier in [0, 2^31) and |x << left| < 2^30 (the generator
 * checks that bound from the operand ranges), the doubling high multiply
 * trunc((p + nudge) / 2^31) with nudge = +-2^30 equals floor((p + 2^30) / 2^31) for both
 * signs of p = x * multiplier, which is SMMULR of 2x. The divide by 2^e, rounding half
 * away from zero, is floor((t + 2^(e-1) - [t < 0]) / 2^e) for e >= 1, and t for e = 0.
 */
typedef struct {
    int32_t multiplier;
    int32_t left;       /* 1 + left shift: SMMULR needs the doubled operand */
    int32_t right;      /* right shift e */
    int32_t round;      /* 2^(e-1), or 0 */
    int32_t neg;        /* -1 when e >= 1, else 0: the [t < 0] correction applies */
} dk_fast_rq;

DK_INLINE dk_fast_rq dk_fast_rq_make(int32_t multiplier, int32_t shift)
{
    dk_fast_rq q;
    q.multiplier = multiplier;
    q.left = 1 + (shift > 0 ? shift : 0);
    q.right = shift > 0 ? 0 : -shift;
    q.round = q.right > 0 ? (int32_t)(1u << (q.right - 1)) : 0;
    q.neg = q.right > 0 ? -1 : 0;
    return q;
}

DK_INLINE int32_t dk_fast_mbqm(int32_t x, const dk_fast_rq *q)
{
    const int32_t t = dk_smmulr((int32_t)((uint32_t)x << q->left), q->multiplier);
    return (t + q->round + ((t >> 31) & q->neg)) >> q->right;
}

/* Clamp to [lo, hi] within the int8 range: SSAT (ARMv7-M, also on the Cortex-M3) saturates
 * to int8 in one instruction; the remaining bounds fold away when they are -128 / 127. */
DK_INLINE int32_t dk_clamp8(int32_t y, int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    y = __ssat(y, 8);
#else
    y = y < -128 ? -128 : (y > 127 ? 127 : y);
#endif
    if (lo > -128 && y < lo) {
        y = lo;
    }
    if (hi < 127 && y > hi) {
        y = hi;
    }
    return y;
}

DK_INLINE int32_t dk_min32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

DK_INLINE int32_t dk_max32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

#endif /* DK_ACLE_H */
