/*
 * dk_mve.h - Helium (the M-profile Vector Extension, MVE) selection for the optimised kernels.
 *
 * DK_USE_MVE is 1 when the compiler targets a core with integer MVE (Cortex-M55:
 * -mcpu=cortex-m55 sets __ARM_FEATURE_MVE) and the build did not ask for the DSP path with
 * -DDK_NO_MVE (the benchmark builds both on the same board to compare them). A kernel with
 * an MVE variant picks it with a small #if at the top of its entry point; the variants live
 * in their own headers (conv1d_mve.h), beside the DSP code they replace on such cores.
 *
 * Bit-exactness notes (the TFLM primitives, fixedpoint.h):
 *  - VRMULH.S32 is (a * b + 2^31) >> 32 per lane, SMMULR's arithmetic: with the doubled
 *    accumulators of the fast Conv1D records it is TFLM's rounding doubling high multiply.
 *  - VSHL by a negative scalar is an arithmetic (flooring) right shift; TFLM's
 *    round-half-away divide by 2^e is floor((t + 2^(e-1) - [t < 0]) / 2^e), so the kernels
 *    add the rounding constant and the sign correction themselves (VRSHL would round
 *    negative ties up, not away from zero).
 */
#ifndef DK_MVE_H
#define DK_MVE_H

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(DK_NO_MVE)
#define DK_USE_MVE 1
#include <arm_mve.h>
#else
#define DK_USE_MVE 0
#endif

#endif /* DK_MVE_H */
