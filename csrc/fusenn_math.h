/* fusenn_math.h: the C pieces of the Cython kernels (included by csrc/_cykernels.pyx):
   whether OpenMP is on, and call-free exp and float tanh so that loops vectorise. */
#ifndef FUSENN_MATH_H
#define FUSENN_MATH_H

#ifndef FUSENN_DEBUG_BUILD  /* setup.py defines it to 1 for debug and sanitizer builds */
#define FUSENN_DEBUG_BUILD 0
#endif

#ifdef _OPENMP
#define FUSENN_HAVE_OPENMP 1
#else
#define FUSENN_HAVE_OPENMP 0
#endif
#include <stdint.h>
#include <string.h>
#if defined(__GNUC__)
#define FUSENN_INLINE static inline __attribute__((always_inline))
#else
#define FUSENN_INLINE static inline
#endif
/* exp without a libm call, so that loops over rows vectorise: exp(x) = 2^n exp(r) with
   n = round(x / ln 2) (the 1.5 * 2^k rounding trick, no float-to-int conversion of a
   possibly NaN value), r = x - n ln 2 in two parts (Cody-Waite), exp(r) by its Taylor
   polynomial on |r| <= ln2 / 2 (float: degree 7, truncation 5e-9; double: degree 13,
   truncation 2e-17), and 2^n applied in two halves so that neither overflows: results
   overflow to inf and underflow through the subnormals as they should, NaN stays NaN. */
FUSENN_INLINE float fusenn_expf(float x) {
    const float magic = 12582912.0f;                /* 1.5 * 2^23 */
    float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
    float t = xc * 1.44269504088896341f + magic;
    float fn = t - magic;
    uint32_t tb, b1, b2;
    int32_t n, n1;
    float r, p, s1, s2;
    memcpy(&tb, &t, 4);
    n = (int32_t)(tb - 0x4B400000u);
    r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
    p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
        + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    n1 = n >> 1;
    b1 = (uint32_t)(n1 + 127) << 23;
    b2 = (uint32_t)(n - n1 + 127) << 23;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    return p * s1 * s2;
}
FUSENN_INLINE double fusenn_exp(double x) {
    const double magic = 6755399441055744.0;        /* 1.5 * 2^52 */
    double xc = x < -746.0 ? -746.0 : (x > 710.0 ? 710.0 : x);
    double t = xc * 1.4426950408889634074 + magic;
    double fn = t - magic;
    uint64_t tb, b1, b2;
    int64_t n, n1;
    double r, p, s1, s2;
    memcpy(&tb, &t, 8);
    n = (int64_t)(tb - 0x4338000000000000ULL);
    r = (xc - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
    p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120
        + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880
        + r * (1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600
        + r * (1.0 / 6227020800.0)))))))))))));
    n1 = n >> 1;
    b1 = (uint64_t)(n1 + 1023) << 52;
    b2 = (uint64_t)(n - n1 + 1023) << 52;
    memcpy(&s1, &b1, 8);
    memcpy(&s2, &b2, 8);
    return p * s1 * s2;
}
/* float tanh in float arithmetic, branch-free so that loops vectorise four lanes wide:
   below |x| = 0.5 the odd Taylor series through x^17 (truncation under 1e-8 relative;
   written x (1 + x^2 (...)) so that -0 keeps its sign), above it 1 - 2 / (exp(2|x|) + 1)
   with the sign of x (|x| capped at 9.5, where tanh rounds to 1). Max error 2.1 ulp
   over every float (1.8e-7 relative, at |x| just above 0.5); NaN stays NaN. 2.2x
   faster than the same formula through the double exp, itself twice libm's tanhf. */
FUSENN_INLINE float fusenn_tanhf(float x) {
    float ax = x < 0 ? -x : x;
    float x2 = x * x;
    float p = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315
        + x2 * (62.0f / 2835 + x2 * (-1382.0f / 155925 + x2 * (21844.0f / 6081075
        + x2 * (-929569.0f / 638512875 + x2 * (6404582.0f / 10854718875.0f)))))))));
    float e = fusenn_expf(2.0f * (ax > 9.5f ? 9.5f : ax));
    float q = 1.0f - 2.0f / (e + 1.0f);
    q = x < 0 ? -q : q;
    return ax < 0.5f ? p : q;
}

/* A spin barrier for the threads of one OpenMP team, for the column-split training epoch
   (csrc/_kernels.pxi, _epoch_split): its threads meet several times per mini-batch, tens of
   microseconds apart, and OpenMP's own barrier sleeps in the kernel under the passive wait
   policy fusenn sets (waking costs more than the work between two meetings). The last thread
   to arrive resets the count and bumps the phase; the others spin on the phase, pausing, and
   yield their core after a while (another process may hold the core the last thread needs).
   Built with GCC's or clang's atomics and OpenMP only: elsewhere FUSENN_HAVE_SPIN_BARRIER is
   0 and the split epoch is never chosen. */
#if FUSENN_HAVE_OPENMP && defined(__GNUC__)
#define FUSENN_HAVE_SPIN_BARRIER 1
#include <omp.h>
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FUSENN_PAUSE() _mm_pause()
#else
#define FUSENN_PAUSE() ((void)0)
#endif
#else
#define FUSENN_HAVE_SPIN_BARRIER 0
#endif

typedef struct { int count; int phase; } fusenn_barrier;

static inline void fusenn_barrier_init(fusenn_barrier* b) { b->count = 0; b->phase = 0; }

static inline void fusenn_barrier_wait(fusenn_barrier* b, int team) {
#if FUSENN_HAVE_SPIN_BARRIER
    int phase = __atomic_load_n(&b->phase, __ATOMIC_ACQUIRE);
    unsigned spins = 0;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == team) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->phase, phase + 1, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&b->phase, __ATOMIC_ACQUIRE) == phase) {
        if (++spins < 20000) {
            FUSENN_PAUSE();
        } else {
            sched_yield();
        }
    }
#else
    (void)b; (void)team;
#endif
}

/* The number of threads of the enclosing OpenMP team (1 outside one, or without OpenMP). */
static inline int fusenn_team_size(void) {
#if FUSENN_HAVE_SPIN_BARRIER
    return omp_get_num_threads();
#else
    return 1;
#endif
}

#endif
