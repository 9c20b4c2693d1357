# cython: language_level=3
"""The Cython backend: fusenn's kernel contract compiled, fused and free of the GIL.

Every public function here has the name, arguments and in-place semantics of its twin in
:mod:`fusenn.backends._numpy` (the oracle; read its module docstring for the contract). The
code is in three tiers, after scikit-learn's Cython losses:

1. scalar ``cdef inline ... noexcept nogil`` functions: one forward and one derivative per
   activation, picked by the activation's integer code (:mod:`fusenn.activations`) in a
   ``switch``, and the stable primitives (sigmoid, softplus) written once;
2. pointer-level kernels (``noexcept nogil``) over rows: the dense layer (BLAS GEMM, from
   NumPy's OpenBLAS or ``scipy.linalg.cython_blas``, plus a fused bias + activation epilogue,
   parallel over rows with ``prange`` only when the size pays), the softmax family, the fused
   losses, the optimiser updates and the whole training epoch, which chains them with no
   Python per batch;
3. ``def`` functions that dispatch on the dtype once (float32 or float64; both come from one
   fused-type source), check every shape so that no kernel can read or write out of bounds,
   and release the GIL around the work.

Row-major C = A @ B is computed by column-major BLAS as C^T = B^T A^T: the row-major buffers
already *are* the transposes, so only the argument order changes (see ``_mm_nn`` and friends).

``OPENMP`` says whether this module was compiled with OpenMP; without it every ``prange`` runs
serially and the results are the same.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport (cos, cosf, erf, erff, expm1, expm1f, fabs, fabsf, isfinite,
                        log, log1p, log1pf, pow, sin, sinf, sqrt, sqrtf, tanh)
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as np

from fusenn._threads import get_num_threads as _get_num_threads

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FUSENN_HAVE_OPENMP 1
    #else
    #define FUSENN_HAVE_OPENMP 0
    #endif
    """
    int FUSENN_HAVE_OPENMP

cdef extern from *:
    """
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
    """
    float fusenn_expf(float x) noexcept nogil
    double fusenn_exp(double x) noexcept nogil
    float fusenn_tanhf(float x) noexcept nogil

NAME = "cython"
#: Whether this extension was compiled with OpenMP (``prange`` runs in parallel).
OPENMP = bool(FUSENN_HAVE_OPENMP)

# --------------------------------------------------------------------------- codes
# Activation codes: the numbers of fusenn.activations (checked by the test-suite).
cdef enum:
    LINEAR = 0
    STEP = 1
    HEAVISIDE = 2
    SIGN = 3
    PIECEWISE_LINEAR = 4
    SIGMOID = 5
    TANH = 6
    RELU = 7
    LEAKY_RELU = 8
    ELU = 10
    SELU = 11
    GELU = 12
    GELU_TANH = 13
    SWISH = 14
    MISH = 15
    SOFTPLUS = 16
    SOFTSIGN = 17
    LOG_SIGMOID = 18
    SINC = 19
    HARD_SWISH = 20
    HARD_SIGMOID = 21
    HARD_TANH = 22
    TANH_SHRINK = 23
    SOFT_SHRINK = 24
    HARD_SHRINK = 25
    SOFTMAX = 26

# Loss, optimiser and hyper-parameter indexes of train_epoch (as in backends/_numpy.py).
cdef enum:
    LOSS_SOFTMAX_XENT = 0
    LOSS_SIGMOID_BCE = 1
    LOSS_MSE = 2
    LOSS_HALF_MSE = 3
    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RMSPROP = 2
    OPT_ADAGRAD = 3
    H_LR = 0
    H_MOMENTUM = 1
    H_NESTEROV = 2
    H_WEIGHT_DECAY = 3
    H_BETA1 = 4
    H_BETA2 = 5
    H_EPS = 6
    H_RHO = 7
    H_STEP = 8
    N_HYPER = 9

#: The activation codes this module implements, by name (the test-suite compares them with
#: fusenn.activations).
ACTIVATION_CODES = {
    "LINEAR": LINEAR, "STEP": STEP, "HEAVISIDE": HEAVISIDE, "SIGN": SIGN,
    "PIECEWISE_LINEAR": PIECEWISE_LINEAR, "SIGMOID": SIGMOID, "TANH": TANH, "RELU": RELU,
    "LEAKY_RELU": LEAKY_RELU, "ELU": ELU, "SELU": SELU, "GELU": GELU, "GELU_TANH": GELU_TANH,
    "SWISH": SWISH, "MISH": MISH, "SOFTPLUS": SOFTPLUS, "SOFTSIGN": SOFTSIGN,
    "LOG_SIGMOID": LOG_SIGMOID, "SINC": SINC, "HARD_SWISH": HARD_SWISH,
    "HARD_SIGMOID": HARD_SIGMOID, "HARD_TANH": HARD_TANH, "TANH_SHRINK": TANH_SHRINK,
    "SOFT_SHRINK": SOFT_SHRINK, "HARD_SHRINK": HARD_SHRINK, "SOFTMAX": SOFTMAX,
}

cdef double SELU_ALPHA = 1.6732632423543772848170429916717
cdef double SELU_SCALE = 1.0507009873554804934193349852946
cdef double GELU_TANH_K = 0.79788456080286535587989211986876  # sqrt(2/pi)
cdef double GELU_TANH_C = 0.044715
cdef double INV_SQRT2 = 0.70710678118654752440084436210485
cdef double INV_SQRT_2PI = 0.39894228040143267793994605993438
cdef double SINC_SERIES_BELOW = 1e-2

# --------------------------------------------------------------------------- threads
# Below this much work (elements x relative cost) a loop runs on one thread: waking an OpenMP
# team costs microseconds, and an idle team competes with BLAS on a 2-core machine.
cdef Py_ssize_t _par_min_work = 1 << 20


def set_parallel_threshold(Py_ssize_t work):
    """Set the work (elements x cost) from which loops use OpenMP threads; return the old one.

    For tests and tuning: ``0`` makes every loop parallel (when ``fusenn.get_num_threads() >
    1``), a huge value makes every loop serial.
    """
    global _par_min_work
    if work < 0:
        raise ValueError(f"threshold must be >= 0, got {work}")
    old = _par_min_work
    _par_min_work = work
    return old


cdef int _threads_for(Py_ssize_t work) except -1:
    """The thread count for a loop of ``work``: 1 when small or without OpenMP."""
    if not FUSENN_HAVE_OPENMP or work < _par_min_work:
        return 1
    return max(1, <int>_get_num_threads())


cdef inline int _pick(int nt, Py_ssize_t work) noexcept nogil:
    """``nt`` if ``work`` pays for threads, else 1 (used inside train_epoch)."""
    if nt > 1 and work >= _par_min_work:
        return nt
    return 1


cdef inline Py_ssize_t _act_cost(int code) noexcept nogil:
    """Rough cost of one activation element relative to an add (for the thread decision)."""
    if (code == SIGMOID or code == TANH or ELU <= code <= SINC or code == TANH_SHRINK
            or code == SOFTMAX):
        return 8  # a transcendental function per element
    return 1


# --------------------------------------------------------------------------- scalar math
# The float32 path calls the float functions (expf, ...), as NumPy's float32 loops do.
cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return fusenn_expf(x)
    else:
        return fusenn_exp(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return fusenn_tanhf(x)
    else:
        return tanh(x)


cdef inline floating _erf(floating x) noexcept nogil:
    if floating is float:
        return erff(x)
    else:
        return erf(x)


cdef inline floating _sin(floating x) noexcept nogil:
    if floating is float:
        return sinf(x)
    else:
        return sin(x)


cdef inline floating _cos(floating x) noexcept nogil:
    if floating is float:
        return cosf(x)
    else:
        return cos(x)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating _sigmoid(floating z) noexcept nogil:
    """1 / (1 + exp(-z)) without overflow: exp only ever sees -|z|."""
    cdef floating e = _exp(-_abs(z))
    return (1 if z >= 0 else e) / (1 + e)  # a select, not a branch: loops vectorise


cdef inline floating _softplus(floating z) noexcept nogil:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))."""
    cdef floating r = z if z > 0 else 0
    return r + _log1p(_exp(-_abs(z)))


cdef inline floating _clip(floating z, floating lo, floating hi) noexcept nogil:
    if z < lo:
        return lo
    if z > hi:
        return hi
    return z


# --------------------------------------------------------------------------- activations
cdef inline floating _act_f(floating z, int code, floating p0, floating p1) noexcept nogil:
    """Activation ``code``'s forward f(z) (formulas as in fusenn.activations)."""
    cdef floating t, s
    if code == LINEAR:
        return z
    elif code == STEP:
        return 1 if z >= 0 else 0
    elif code == HEAVISIDE:
        if z > 0:
            return 1
        return <floating>0.5 if z == 0 else 0
    elif code == SIGN:
        if z > 0:
            return 1
        return -1 if z < 0 else 0
    elif code == PIECEWISE_LINEAR:
        return _clip(z + <floating>0.5, 0, 1)
    elif code == SIGMOID:
        return _sigmoid(z)
    elif code == TANH:
        return _tanh(z)
    elif code == RELU:
        return z if z > 0 else 0
    elif code == LEAKY_RELU:
        return z if z > 0 else p0 * z
    elif code == ELU:
        return z if z > 0 else p0 * _expm1(z)
    elif code == SELU:
        if z > 0:
            return <floating>SELU_SCALE * z
        return <floating>SELU_SCALE * (<floating>SELU_ALPHA * _expm1(z))
    elif code == GELU:
        return <floating>0.5 * z * (1 + _erf(z * <floating>INV_SQRT2))
    elif code == GELU_TANH:
        t = _tanh(<floating>GELU_TANH_K * (z + <floating>GELU_TANH_C * (z * z * z)))
        return <floating>0.5 * z * (1 + t)
    elif code == SWISH:
        return z * _sigmoid(p0 * z)
    elif code == MISH:
        return z * _tanh(_softplus(z))
    elif code == SOFTPLUS:
        return _softplus(p0 * z) / p0
    elif code == SOFTSIGN:
        return z / (1 + _abs(z))
    elif code == LOG_SIGMOID:
        return -_softplus(-z)
    elif code == SINC:
        return 1 if z == 0 else _sin(z) / z
    elif code == HARD_SWISH:
        return z * _clip(z + 3, 0, 6) / 6
    elif code == HARD_SIGMOID:
        return _clip(z / 6 + <floating>0.5, 0, 1)
    elif code == HARD_TANH:
        return _clip(z, p0, p1)
    elif code == TANH_SHRINK:
        return z - _tanh(z)
    elif code == SOFT_SHRINK:
        if z > p0:
            return z - p0
        return z + p0 if z < -p0 else 0
    elif code == HARD_SHRINK:
        return z if _abs(z) > p0 else 0
    return z  # SOFTMAX is row-wise and never reaches here


cdef inline floating _act_d(floating z, int code, floating p0, floating p1) noexcept nogil:
    """Activation ``code``'s derivative f'(z); 0 for step-like functions, PyTorch at kinks."""
    cdef floating t, s, q, e
    if code == LINEAR:
        return 1
    elif code == STEP or code == HEAVISIDE or code == SIGN:
        return 0
    elif code == PIECEWISE_LINEAR:
        return 1 if z > <floating>-0.5 and z < <floating>0.5 else 0
    elif code == SIGMOID:
        # sigmoid(z) sigmoid(-z), both from one exp(-|z|)
        e = _exp(-_abs(z))
        s = 1 / (1 + e) if z >= 0 else e / (1 + e)
        t = 1 / (1 + e) if z <= 0 else e / (1 + e)
        return s * t
    elif code == TANH:
        t = _tanh(z)
        return 1 - t * t
    elif code == RELU:
        return 1 if z > 0 else 0
    elif code == LEAKY_RELU:
        return 1 if z > 0 else p0
    elif code == ELU:
        return 1 if z > 0 else p0 * _exp(z)
    elif code == SELU:
        if z > 0:
            return <floating>SELU_SCALE
        return <floating>SELU_SCALE * (<floating>SELU_ALPHA * _exp(z))
    elif code == GELU:
        return (<floating>0.5 * (1 + _erf(z * <floating>INV_SQRT2))
                + z * _exp(<floating>-0.5 * z * z) * <floating>INV_SQRT_2PI)
    elif code == GELU_TANH:
        t = _tanh(<floating>GELU_TANH_K * (z + <floating>GELU_TANH_C * (z * z * z)))
        return (<floating>0.5 * (1 + t) + <floating>0.5 * z * (1 - t * t)
                * <floating>GELU_TANH_K * (1 + 3 * <floating>GELU_TANH_C * z * z))
    elif code == SWISH:
        return _sigmoid(p0 * z) * (1 + p0 * z * _sigmoid(-p0 * z))
    elif code == MISH:
        t = _tanh(_softplus(z))
        return t + z * _sigmoid(z) * (1 - t * t)
    elif code == SOFTPLUS:
        return _sigmoid(p0 * z)
    elif code == SOFTSIGN:
        q = 1 + _abs(z)
        return 1 / (q * q)
    elif code == LOG_SIGMOID:
        return _sigmoid(-z)
    elif code == SINC:
        if _abs(z) < <floating>SINC_SERIES_BELOW:  # Taylor series: no cancellation near 0
            return -z / 3 + z * z * z / 30
        return (_cos(z) - _sin(z) / z) / z
    elif code == HARD_SWISH:
        if z < -3:
            return 0
        return 1 if z > 3 else (2 * z + 3) / 6
    elif code == HARD_SIGMOID:
        return <floating>(1.0 / 6.0) if z > -3 and z < 3 else 0
    elif code == HARD_TANH:
        return 1 if z > p0 and z < p1 else 0
    elif code == TANH_SHRINK:
        t = _tanh(z)
        return t * t
    elif code == SOFT_SHRINK or code == HARD_SHRINK:
        return 1 if _abs(z) > p0 else 0
    return 1


# --------------------------------------------------------------------------- rows
cdef inline floating _row_max(const floating* z, Py_ssize_t n) noexcept nogil:
    """max of z[0:n], n >= 1, with four independent running maxima (NaN is skipped here; it
    still reaches every result through exp(z - max))."""
    cdef floating m0 = z[0], m1 = z[0], m2 = z[0], m3 = z[0]
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        m0 = z[j] if z[j] > m0 else m0
        m1 = z[j + 1] if z[j + 1] > m1 else m1
        m2 = z[j + 2] if z[j + 2] > m2 else m2
        m3 = z[j + 3] if z[j + 3] > m3 else m3
        j += 4
    while j < n:
        m0 = z[j] if z[j] > m0 else m0
        j += 1
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    return m2 if m2 > m0 else m0


cdef inline double _row_sum(const floating* v, Py_ssize_t n) noexcept nogil:
    """sum of v[0:n] in double, four independent partial sums."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        s0 += v[j]
        s1 += v[j + 1]
        s2 += v[j + 2]
        s3 += v[j + 3]
        j += 4
    while j < n:
        s0 += v[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef void _softmax_row(const floating* z, floating* out, Py_ssize_t n) noexcept nogil:
    """out = exp(z - max z) / sum; ``out`` may be ``z``; n >= 1."""
    cdef Py_ssize_t j
    cdef floating m = _row_max(z, n)
    cdef double s = 0
    cdef floating sf
    for j in range(n):  # vectorises
        out[j] = _exp(z[j] - m)
    s = _row_sum(out, n)
    sf = <floating>s
    for j in range(n):
        out[j] = out[j] / sf


cdef inline floating _logsumexp_row(const floating* z, Py_ssize_t n) noexcept nogil:
    """max z + log(sum exp(z - max z)); n >= 1. Four partial sums, as in _row_sum: one
    running sum waits on every add, four keep the exps flowing."""
    cdef Py_ssize_t j = 0
    cdef floating m = _row_max(z, n)
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    while j + 4 <= n:
        s0 += _exp(z[j] - m)
        s1 += _exp(z[j + 1] - m)
        s2 += _exp(z[j + 2] - m)
        s3 += _exp(z[j + 3] - m)
        j += 4
    while j < n:
        s0 += _exp(z[j] - m)
        j += 1
    return m + <floating>log((s0 + s1) + (s2 + s3))


cdef void _act_fwd_row(const floating* z, floating* out, Py_ssize_t n, int code, floating p0,
                       floating p1) noexcept nogil:
    cdef Py_ssize_t j
    if code == SOFTMAX:
        _softmax_row(z, out, n)
    elif code == LINEAR:
        if out != z:
            memcpy(out, z, n * sizeof(floating))
    elif code == RELU:  # the common case, kept branch-free so that it vectorises
        for j in range(n):
            out[j] = z[j] if z[j] > 0 else 0
    elif code == TANH:  # the switch hoisted out of the loop for the common codes
        for j in range(n):
            out[j] = _tanh(z[j])
    elif code == SIGMOID:
        for j in range(n):
            out[j] = _sigmoid(z[j])
    else:
        for j in range(n):
            out[j] = _act_f(z[j], code, p0, p1)


cdef void _bias_act_row(floating* z, const floating* b, floating* a, Py_ssize_t n, int code,
                        floating p0, floating p1) noexcept nogil:
    """z += b (b may be NULL), then a = f(z) unless a is z (then only the bias)."""
    cdef Py_ssize_t j
    cdef floating v
    if b != NULL and (a == z or code == SOFTMAX or code == LINEAR):
        for j in range(n):
            z[j] = z[j] + b[j]
        b = NULL
    if a == z:
        return
    if b == NULL:
        _act_fwd_row(z, a, n, code, p0, p1)
    elif code == RELU:
        for j in range(n):
            v = z[j] + b[j]
            z[j] = v
            a[j] = v if v > 0 else 0
    elif code == TANH:  # the switch hoisted out of the loop for the common codes
        for j in range(n):
            v = z[j] + b[j]
            z[j] = v
            a[j] = _tanh(v)
    elif code == SIGMOID:
        for j in range(n):
            v = z[j] + b[j]
            z[j] = v
            a[j] = _sigmoid(v)
    else:
        for j in range(n):
            v = z[j] + b[j]
            z[j] = v
            a[j] = _act_f(v, code, p0, p1)


cdef void _act_bwd_row(const floating* z, const floating* a, const floating* dy, floating* dz,
                       Py_ssize_t n, int code, floating p0, floating p1) noexcept nogil:
    """dz = dy * f'(z), or the softmax product a (dy - sum(dy a)); dz may be dy."""
    cdef Py_ssize_t j
    cdef double s = 0
    cdef floating sf, v
    if code == SOFTMAX:
        for j in range(n):
            s += dy[j] * a[j]
        sf = <floating>s
        for j in range(n):
            dz[j] = (dy[j] - sf) * a[j]
    elif code == LINEAR:
        if dz != dy:
            memcpy(dz, dy, n * sizeof(floating))
    elif code == RELU:  # dy loaded unconditionally: a select, so the loop vectorises
        for j in range(n):
            v = dy[j]
            dz[j] = v if z[j] > 0 else 0
    elif code == TANH:  # f' from the output a = f(z): no second pass through exp
        for j in range(n):
            dz[j] = dy[j] * (1 - a[j] * a[j])
    elif code == SIGMOID:
        for j in range(n):
            dz[j] = dy[j] * (a[j] * (1 - a[j]))
    else:
        for j in range(n):
            dz[j] = dy[j] * _act_d(z[j], code, p0, p1)


cdef void _act_der_row(const floating* z, const floating* a, floating* out, Py_ssize_t n,
                       int code, floating p0, floating p1) noexcept nogil:
    """out = f'(z) (softmax: a (1 - a))."""
    cdef Py_ssize_t j
    if code == SOFTMAX:
        for j in range(n):
            out[j] = a[j] * (1 - a[j])
    else:
        for j in range(n):
            out[j] = _act_d(z[j], code, p0, p1)


# --------------------------------------------------------------------------- row loops
# Each runs its row function over m rows of width n, on nt threads (nt == 1: serially).
cdef void _bias_act(floating* z, const floating* b, floating* a, Py_ssize_t m, Py_ssize_t n,
                    int code, floating p0, floating p1, int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _bias_act_row(z + i * n, b, a + i * n, n, code, p0, p1)
    else:
        for i in range(m):
            _bias_act_row(z + i * n, b, a + i * n, n, code, p0, p1)


cdef void _act_fwd(const floating* z, floating* out, Py_ssize_t m, Py_ssize_t n, int code,
                   floating p0, floating p1, int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _act_fwd_row(z + i * n, out + i * n, n, code, p0, p1)
    else:
        for i in range(m):
            _act_fwd_row(z + i * n, out + i * n, n, code, p0, p1)


cdef void _act_bwd(const floating* z, const floating* a, const floating* dy, floating* dz,
                   Py_ssize_t m, Py_ssize_t n, int code, floating p0, floating p1,
                   int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _act_bwd_row(z + i * n, a + i * n, dy + i * n, dz + i * n, n, code, p0, p1)
    else:
        for i in range(m):
            _act_bwd_row(z + i * n, a + i * n, dy + i * n, dz + i * n, n, code, p0, p1)


cdef void _act_der(const floating* z, const floating* a, floating* out, Py_ssize_t m,
                   Py_ssize_t n, int code, floating p0, floating p1, int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _act_der_row(z + i * n, a + i * n, out + i * n, n, code, p0, p1)
    else:
        for i in range(m):
            _act_der_row(z + i * n, a + i * n, out + i * n, n, code, p0, p1)


cdef void _column_sum(const floating* dz, floating* db, Py_ssize_t m,
                      Py_ssize_t n) noexcept nogil:
    """db = dz.sum(0), rows added in order (as NumPy reduces a C array over axis 0)."""
    cdef Py_ssize_t i, j
    cdef const floating* row
    memset(db, 0, n * sizeof(floating))
    for i in range(m):
        row = dz + i * n
        for j in range(n):
            db[j] = db[j] + row[j]


# --------------------------------------------------------------------------- BLAS
# The products go to NumPy's own BLAS when the backend module found its CBLAS gemm (see
# fusenn.backends._blas): then NumPy's matmul and fusenn's kernels share one BLAS library and
# one thread pool in the process, instead of waking a second library's pool (SciPy's). Until
# then, and wherever NumPy's BLAS cannot be found, they go to SciPy's cython_blas.
ctypedef void (*cblas_sgemm64_t)(int order, int ta, int tb, int64_t M, int64_t N, int64_t K,
                                 float alpha, const float* A, int64_t lda, const float* B,
                                 int64_t ldb, float beta, float* C,
                                 int64_t ldc) noexcept nogil
ctypedef void (*cblas_dgemm64_t)(int order, int ta, int tb, int64_t M, int64_t N, int64_t K,
                                 double alpha, const double* A, int64_t lda, const double* B,
                                 int64_t ldb, double beta, double* C,
                                 int64_t ldc) noexcept nogil
cdef enum:
    CBLAS_COL_MAJOR = 102
    CBLAS_NO_TRANS = 111
    CBLAS_TRANS = 112
cdef cblas_sgemm64_t _cblas_sgemm = NULL
cdef cblas_dgemm64_t _cblas_dgemm = NULL
BLAS = "scipy.linalg.cython_blas"


def use_cblas(size_t sgemm_address, size_t dgemm_address, str name):
    """Send every product to the ILP64 CBLAS ``sgemm``/``dgemm`` at these addresses (both,
    or 0 and 0 to go back to SciPy's cython_blas); ``name`` is what :data:`BLAS` reports.

    The addresses must be those of functions with the CBLAS signature and 64-bit integers
    (OpenBLAS's ``cblas_sgemm64_``); :mod:`fusenn.backends._blas` finds them and checks a
    product against a known result before it calls this.
    """
    global _cblas_sgemm, _cblas_dgemm, BLAS
    if (sgemm_address == 0) != (dgemm_address == 0):
        raise ValueError("give both gemm addresses, or neither")
    _cblas_sgemm = <cblas_sgemm64_t>sgemm_address
    _cblas_dgemm = <cblas_dgemm64_t>dgemm_address
    BLAS = name if sgemm_address else "scipy.linalg.cython_blas"


# Products this small (XOR's 4 x 2 x 8) cost less than a BLAS call's own overhead: a plain loop.
DEF SMALL_GEMM = 512


cdef void _gemm_small(bint ta, bint tb, int M, int N, int K, floating alpha,
                      const floating* A, int lda, const floating* B, int ldb, floating beta,
                      floating* C, int ldc) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C by the definition, for tiny sizes."""
    cdef int i, j, p
    cdef floating acc, av, bv
    for j in range(N):
        for i in range(M):
            acc = 0
            for p in range(K):
                av = A[p + i * lda] if ta else A[i + p * lda]
                bv = B[j + p * ldb] if tb else B[p + j * ldb]
                acc = acc + av * bv
            if beta == 0:
                C[i + j * ldc] = alpha * acc
            else:
                C[i + j * ldc] = beta * C[i + j * ldc] + alpha * acc


cdef void _gemm(char ta, char tb, int M, int N, int K, const floating* A, int lda,
                const floating* B, int ldb, floating* C, int ldc) noexcept nogil:
    """Column-major C (M x N, ldc == M) = op(A) op(B); C is zeroed when K == 0."""
    _gemm_ab(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, ldc)


cdef void _gemm_ab(char ta, char tb, int M, int N, int K, floating alpha, const floating* A,
                   int lda, const floating* B, int ldb, floating beta, floating* C,
                   int ldc) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C (BLAS's gemm; beta == 0 ignores C)."""
    cdef Py_ssize_t q
    if M <= 0 or N <= 0:
        return
    if K <= 0:
        if beta == 0:
            memset(C, 0, <size_t>M * <size_t>N * sizeof(floating))
        elif beta != 1:
            for q in range(<Py_ssize_t>M * N):
                C[q] = beta * C[q]
        return
    if <Py_ssize_t>M * N * K <= SMALL_GEMM:
        _gemm_small(ta == c"T", tb == c"T", M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    cdef int cta = CBLAS_TRANS if ta == c"T" else CBLAS_NO_TRANS
    cdef int ctb = CBLAS_TRANS if tb == c"T" else CBLAS_NO_TRANS
    if floating is float:
        if _cblas_sgemm != NULL:
            _cblas_sgemm(CBLAS_COL_MAJOR, cta, ctb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        else:
            sgemm(&ta, &tb, &M, &N, &K, &alpha, <float*>A, &lda, <float*>B, &ldb, &beta, C,
                  &ldc)
    elif _cblas_dgemm != NULL:
        _cblas_dgemm(CBLAS_COL_MAJOR, cta, ctb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    else:
        dgemm(&ta, &tb, &M, &N, &K, &alpha, <double*>A, &lda, <double*>B, &ldb, &beta, C, &ldc)


cdef inline void _mm_nn(const floating* x, const floating* W, floating* z, Py_ssize_t m,
                        Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """z (m, n) = x (m, k) @ W (k, n), row-major: z^T = W^T x^T in column-major."""
    _gemm(c"N", c"N", <int>n, <int>m, <int>k, W, <int>n, x, <int>k, z, <int>n)


cdef inline void _mm_tn(const floating* x, const floating* dz, floating* dW, Py_ssize_t m,
                        Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """dW (k, n) = x (m, k).T @ dz (m, n): dW^T = dz^T x in column-major."""
    _gemm(c"N", c"T", <int>n, <int>k, <int>m, dz, <int>n, x, <int>k, dW, <int>n)


cdef inline void _mm_nt(const floating* dz, const floating* W, floating* dx, Py_ssize_t m,
                        Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    """dx (m, k) = dz (m, n) @ W (k, n).T: dx^T = W dz^T in column-major."""
    _gemm(c"T", c"N", <int>k, <int>m, <int>n, W, <int>n, dz, <int>n, dx, <int>k)


# --------------------------------------------------------------------------- dense layer
cdef void _dense_fwd(const floating* x, const floating* W, const floating* b, floating* z,
                     floating* a, Py_ssize_t m, Py_ssize_t k, Py_ssize_t n, int code,
                     floating p0, floating p1, int nt) noexcept nogil:
    """z = x @ W + b, a = f(z) in one epilogue pass over z (a == z: bias only)."""
    _mm_nn(x, W, z, m, k, n)
    if b != NULL or a != z:
        _bias_act(z, b, a, m, n, code, p0, p1, nt)


cdef void _dense_bwd(const floating* x, const floating* W, const floating* z,
                     const floating* a, const floating* dy, floating* dz, floating* dW,
                     floating* db, floating* dx, Py_ssize_t m, Py_ssize_t k, Py_ssize_t n,
                     int code, floating p0, floating p1, int nt) noexcept nogil:
    """dz = dy * f'(z); dW = x.T @ dz; db = dz.sum(0) (db may be NULL); dx = dz @ W.T (or
    NULL)."""
    _act_bwd(z, a, dy, dz, m, n, code, p0, p1, nt)
    _mm_tn(x, dz, dW, m, k, n)
    if db != NULL:
        _column_sum(dz, db, m, n)
    if dx != NULL:
        _mm_nt(dz, W, dx, m, k, n)


# --------------------------------------------------------------------------- losses
cdef double _xent_row(const floating* z, Py_ssize_t lab, floating* g, Py_ssize_t k,
                      floating div) noexcept nogil:
    """One row of softmax cross-entropy: returns lse - z[lab]; g = (softmax - onehot) / n."""
    cdef Py_ssize_t j
    cdef floating m = _row_max(z, k)
    cdef floating lse, sf, p_lab
    cdef double s = 0
    if g != NULL:
        for j in range(k):  # vectorises
            g[j] = _exp(z[j] - m)
        s = _row_sum(g, k)
        sf = <floating>s
        p_lab = g[lab] / sf
        for j in range(k):  # vectorises
            g[j] = g[j] / sf / div
        g[lab] = (p_lab - 1) / div
    else:
        for j in range(k):
            s += _exp(z[j] - m)
    lse = m + <floating>log(s)
    return <double>lse - <double>z[lab]


cdef double _xent(const floating* z, const int64_t* labels, const int64_t* idx, floating* g,
                  Py_ssize_t m, Py_ssize_t k) noexcept nogil:
    """Mean softmax cross-entropy of m rows; labels[idx[i]] (idx may be NULL: labels[i])."""
    cdef Py_ssize_t i
    cdef double total = 0
    cdef floating div = <floating>m
    for i in range(m):
        total += _xent_row(z + i * k, labels[idx[i]] if idx != NULL else labels[i],
                           g + i * k if g != NULL else NULL, k, div)
    return total / m


cdef double _bce(const floating* z, const floating* t, const int64_t* idx, floating* g,
                 Py_ssize_t m, Py_ssize_t k) noexcept nogil:
    """Mean over elements of softplus(z) - t z; g = (sigmoid(z) - t) / (m k)."""
    cdef Py_ssize_t i, j
    cdef double total = 0
    cdef floating zz, tt, e, r, s
    cdef floating count = <floating>(m * k)
    cdef const floating* trow
    for i in range(m):
        trow = t + (idx[i] if idx != NULL else i) * k
        for j in range(k):
            zz = z[i * k + j]
            tt = trow[j]
            e = _exp(-_abs(zz))
            r = zz if zz > 0 else 0
            total += r - tt * zz + _log1p(e)
            if g != NULL:
                s = 1 / (1 + e) if zz >= 0 else e / (1 + e)
                g[i * k + j] = (s - tt) / count
    return total / (m * k)


cdef double _mse(const floating* y, const floating* t, const int64_t* idx, floating* g,
                 Py_ssize_t m, Py_ssize_t k, bint half) noexcept nogil:
    """Mean squared error (half: 1/(2m) sum), gradient into g (may be NULL)."""
    cdef Py_ssize_t i, j
    cdef double total = 0
    cdef floating diff, scale
    cdef const floating* trow
    if half:
        scale = <floating>(1.0 / m)
    else:
        scale = <floating>(2.0 / (m * k))
    for i in range(m):
        trow = t + (idx[i] if idx != NULL else i) * k
        for j in range(k):
            diff = y[i * k + j] - trow[j]
            total += <double>diff * <double>diff
            if g != NULL:
                g[i * k + j] = diff * scale
    if half:
        return total / (2 * m)
    return total / (m * k)


# --------------------------------------------------------------------------- optimisers
cdef inline void _sgd_one(floating* p, const floating* g, floating* vel, Py_ssize_t i,
                          floating lr, floating mom, bint nesterov, floating wd) noexcept nogil:
    cdef floating gi = g[i]
    cdef floating v
    if wd != 0:
        gi = gi + wd * p[i]
    if mom != 0:
        v = vel[i] * mom + gi
        vel[i] = v
        gi = gi + mom * v if nesterov else v
    p[i] = p[i] - lr * gi


cdef void _sgd(floating* p, const floating* g, floating* vel, Py_ssize_t P, floating lr,
               floating mom, bint nesterov, floating wd, int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1:
        for i in prange(P, num_threads=nt, schedule="static"):
            _sgd_one(p, g, vel, i, lr, mom, nesterov, wd)
    else:
        for i in range(P):
            _sgd_one(p, g, vel, i, lr, mom, nesterov, wd)


cdef inline void _adam_one(floating* p, const floating* g, floating* m1, floating* m2,
                           Py_ssize_t i, floating lr, floating b1, floating b2, floating c1,
                           floating c2, floating bc1, floating bc2, floating eps,
                           floating wd) noexcept nogil:
    cdef floating gi = g[i]
    cdef floating mi, vi
    if wd != 0:
        gi = gi + wd * p[i]
    mi = m1[i] * b1 + c1 * gi
    vi = m2[i] * b2 + c2 * (gi * gi)
    m1[i] = mi
    m2[i] = vi
    p[i] = p[i] - lr * (mi / bc1) / (_sqrt(vi / bc2) + eps)


cdef void _adam(floating* p, const floating* g, floating* m1, floating* m2, Py_ssize_t P,
                floating lr, double b1, double b2, floating eps, floating wd, double t,
                int nt) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating fb1 = <floating>b1
    cdef floating fb2 = <floating>b2
    cdef floating c1 = <floating>(1.0 - b1)
    cdef floating c2 = <floating>(1.0 - b2)
    cdef floating bc1 = <floating>(1.0 - pow(b1, t))
    cdef floating bc2 = <floating>(1.0 - pow(b2, t))
    if nt > 1:
        for i in prange(P, num_threads=nt, schedule="static"):
            _adam_one(p, g, m1, m2, i, lr, fb1, fb2, c1, c2, bc1, bc2, eps, wd)
    else:
        for i in range(P):
            _adam_one(p, g, m1, m2, i, lr, fb1, fb2, c1, c2, bc1, bc2, eps, wd)


cdef inline void _scaled_one(floating* p, const floating* g, floating* acc, Py_ssize_t i,
                             floating lr, floating keep, floating add, floating eps,
                             floating wd) noexcept nogil:
    """acc = keep acc + add g'^2; p -= lr g' / (sqrt(acc) + eps) (RMSprop and Adagrad)."""
    cdef floating gi = g[i]
    cdef floating ai
    if wd != 0:
        gi = gi + wd * p[i]
    ai = acc[i] * keep + add * (gi * gi)
    acc[i] = ai
    p[i] = p[i] - lr * gi / (_sqrt(ai) + eps)


cdef void _scaled(floating* p, const floating* g, floating* acc, Py_ssize_t P, floating lr,
                  floating keep, floating add, floating eps, floating wd,
                  int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1:
        for i in prange(P, num_threads=nt, schedule="static"):
            _scaled_one(p, g, acc, i, lr, keep, add, eps, wd)
    else:
        for i in range(P):
            _scaled_one(p, g, acc, i, lr, keep, add, eps, wd)


cdef inline void _rmsprop(floating* p, const floating* g, floating* sq, Py_ssize_t P,
                          floating lr, double rho, floating eps, floating wd,
                          int nt) noexcept nogil:
    """sq = rho sq + (1 - rho) g'^2; p -= lr g' / (sqrt(sq) + eps)."""
    _scaled(p, g, sq, P, lr, <floating>rho, <floating>(1.0 - rho), eps, wd, nt)


cdef inline void _adagrad(floating* p, const floating* g, floating* acc, Py_ssize_t P,
                          floating lr, floating eps, floating wd, int nt) noexcept nogil:
    """acc += g'^2 (1 acc + 1 g'^2: exact); p -= lr g' / (sqrt(acc) + eps)."""
    _scaled(p, g, acc, P, lr, 1, 1, eps, wd, nt)


cdef void _opt_step(int opt, floating* p, const floating* g, floating* s0, floating* s1,
                    Py_ssize_t P, const double* hyper, double t, int nt) noexcept nogil:
    """optimizer_step of the contract with the ``hyper`` vector; t is the 1-based step."""
    cdef floating lr = <floating>hyper[H_LR]
    cdef floating wd = <floating>hyper[H_WEIGHT_DECAY]
    cdef floating eps = <floating>hyper[H_EPS]
    if opt == OPT_SGD:
        _sgd(p, g, s0, P, lr, <floating>hyper[H_MOMENTUM], hyper[H_NESTEROV] != 0, wd, nt)
    elif opt == OPT_ADAM:
        _adam(p, g, s0, s1, P, lr, hyper[H_BETA1], hyper[H_BETA2], eps, wd, t, nt)
    elif opt == OPT_RMSPROP:
        _rmsprop(p, g, s0, P, lr, hyper[H_RHO], eps, wd, nt)
    else:
        _adagrad(p, g, s0, P, lr, eps, wd, nt)


# --------------------------------------------------------------------------- whole epoch
cdef Py_ssize_t _epoch(floating* flat, floating* grad, floating* s0, floating* s1,
                       Py_ssize_t P, const int64_t* widths, const int64_t* codes,
                       const double* params, Py_ssize_t L, const int64_t* woff,
                       const floating* X, Py_ssize_t n, const int64_t* labels,
                       const floating* targets, const int64_t* perm, Py_ssize_t bs,
                       int loss_code, int opt_code, const double* hyper, double* losses,
                       floating* work, const int64_t* aoff, const int64_t* zoff,
                       const int64_t* dzoff, int nt) noexcept nogil:
    """The body of train_epoch on raw buffers (all shapes checked by the caller)."""
    cdef Py_ssize_t n_batches = (n + bs - 1) // bs
    cdef Py_ssize_t kb, i, l, m, start, nin, nout, d = widths[0], k_out = widths[L]
    cdef const int64_t* idx
    cdef floating* a0 = work + aoff[0]
    cdef floating* W
    cdef floating* dx
    cdef floating p0, p1
    cdef double loss
    cdef double step = hyper[H_STEP]
    cdef int code
    # Plain SGD (no momentum, no weight decay) updates W inside the weight-gradient product,
    # W = W - lr x.T @ dz (gemm with alpha = -lr, beta = 1), after dx has used the old W: the
    # gradient is never written out and read back.
    cdef bint plain_sgd = (opt_code == OPT_SGD and hyper[H_MOMENTUM] == 0
                           and hyper[H_WEIGHT_DECAY] == 0)
    cdef floating lr = <floating>hyper[H_LR]
    cdef floating* gb
    cdef Py_ssize_t j
    for kb in range(n_batches):
        start = kb * bs
        m = bs if n - start > bs else n - start
        idx = perm + start
        for i in range(m):  # gather the batch's rows
            memcpy(a0 + i * d, X + idx[i] * d, d * sizeof(floating))
        for l in range(L):
            nin = widths[l]
            nout = widths[l + 1]
            W = flat + woff[l]
            code = <int>codes[l]
            _dense_fwd(work + aoff[l], W, W + nin * nout, work + zoff[l], work + aoff[l + 1],
                       m, nin, nout, code, <floating>params[2 * l], <floating>params[2 * l + 1],
                       _pick(nt, m * nout * _act_cost(code)))
        if loss_code == LOSS_SOFTMAX_XENT:
            loss = _xent(work + aoff[L], labels, idx, work + dzoff[L], m, k_out)
        elif loss_code == LOSS_SIGMOID_BCE:
            loss = _bce(work + aoff[L], targets, idx, work + dzoff[L], m, k_out)
        else:
            loss = _mse(work + aoff[L], targets, idx, work + dzoff[L], m, k_out,
                        loss_code == LOSS_HALF_MSE)
        losses[kb] = loss
        if not isfinite(loss):
            return kb
        for l in range(L - 1, -1, -1):
            nin = widths[l]
            nout = widths[l + 1]
            W = flat + woff[l]
            code = <int>codes[l]
            dx = work + dzoff[l] if l > 0 else NULL
            if plain_sgd:
                _act_bwd(work + zoff[l], work + aoff[l + 1], work + dzoff[l + 1],
                         work + dzoff[l + 1], m, nout, code, <floating>params[2 * l],
                         <floating>params[2 * l + 1], 1)
                if dx != NULL:
                    _mm_nt(work + dzoff[l + 1], W, dx, m, nin, nout)
                _gemm_ab(c"N", c"T", <int>nout, <int>nin, <int>m, -lr, work + dzoff[l + 1],
                         <int>nout, work + aoff[l], <int>nin, 1, W, <int>nout)
                gb = grad + woff[l] + nin * nout
                _column_sum(work + dzoff[l + 1], gb, m, nout)
                for j in range(nout):
                    W[nin * nout + j] = W[nin * nout + j] - lr * gb[j]
            else:
                _dense_bwd(work + aoff[l], W, work + zoff[l], work + aoff[l + 1],
                           work + dzoff[l + 1], work + dzoff[l + 1], grad + woff[l],
                           grad + woff[l] + nin * nout, dx, m, nin, nout, code,
                           <floating>params[2 * l], <floating>params[2 * l + 1],
                           _pick(nt, m * nout * _act_cost(code)))
        step += 1
        if not plain_sgd:
            _opt_step(opt_code, flat, grad, s0, s1, P, hyper, step, _pick(nt, 4 * P))
    return n_batches


# =========================================================================== Python boundary
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
cdef Py_ssize_t _INT_MAX = 2147483647


cdef int _kind(x, str name) except -1:
    """0 for float32, 1 for float64; TypeError naming ``name`` otherwise."""
    dt = getattr(x, "dtype", None)
    if dt is _F32 or dt == _F32:
        return 0
    if dt is _F64 or dt == _F64:
        return 1
    raise TypeError(f"{name} must be a float32 or float64 array, got "
                    f"{type(x).__name__ if dt is None else dt}")


cdef int _check_code(long code) except -1:
    if code < 0 or code > SOFTMAX or code == 9:
        raise ValueError(f"unknown activation code {code}")
    return 0


cdef int _same2(str what, Py_ssize_t r, Py_ssize_t c, Py_ssize_t r2, Py_ssize_t c2) except -1:
    if r != r2 or c != c2:
        raise ValueError(f"{what} has shape ({r}, {c}), expected ({r2}, {c2})")
    return 0


cdef int _blas_dims(Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) except -1:
    if a > _INT_MAX or b > _INT_MAX or c > _INT_MAX:
        raise ValueError("array dimension too large for BLAS (over 2**31 - 1)")
    return 0


def _as_i64(x, str name):
    """``x`` as a C-contiguous 1-D int64 array (no copy when it already is one)."""
    arr = np.ascontiguousarray(x, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------- activations
cdef _act_forward_t(const floating[:, ::1] z, int code, floating p0, floating p1,
                    floating[:, ::1] out):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1]
    cdef int nt
    _same2("out", out.shape[0], out.shape[1], m, n)
    if m == 0 or n == 0:
        return
    nt = _threads_for(m * n * _act_cost(code))
    with nogil:
        _act_fwd(&z[0, 0], &out[0, 0], m, n, code, p0, p1, nt)


def act_forward(z, int code, double p0, double p1, out):
    """``out = f(z)`` elementwise (softmax: per row); ``out`` may be ``z``. 2-D, C order."""
    _check_code(code)
    if _kind(z, "z") == 0:
        _act_forward_t[float](z, code, <float>p0, <float>p1, out)
    else:
        _act_forward_t[double](z, code, p0, p1, out)


cdef _act_derivative_t(const floating[:, ::1] z, const floating[:, ::1] a, int code,
                       floating p0, floating p1, floating[:, ::1] out):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1]
    cdef int nt
    _same2("a", a.shape[0], a.shape[1], m, n)
    _same2("out", out.shape[0], out.shape[1], m, n)
    if m == 0 or n == 0:
        return
    nt = _threads_for(m * n * _act_cost(code))
    with nogil:
        _act_der(&z[0, 0], &a[0, 0], &out[0, 0], m, n, code, p0, p1, nt)


def act_derivative(z, a, int code, double p0, double p1, out):
    """``out = f'(z)`` given ``a = f(z)`` (softmax: the Jacobian's diagonal ``a (1 - a)``)."""
    _check_code(code)
    if _kind(z, "z") == 0:
        _act_derivative_t[float](z, a, code, <float>p0, <float>p1, out)
    else:
        _act_derivative_t[double](z, a, code, p0, p1, out)


# --------------------------------------------------------------------------- dense layer
cdef _dense_forward_t(const floating[:, ::1] x, const floating[:, ::1] W,
                      const floating[::1] b, int code, floating p0, floating p1,
                      floating[:, ::1] z, floating[:, ::1] a):
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], n = W.shape[1]
    cdef const floating* bp = NULL
    cdef int nt
    if W.shape[0] != k:
        raise ValueError(f"x of shape ({m}, {k}) cannot multiply W of shape "
                         f"({W.shape[0]}, {n})")
    _same2("z", z.shape[0], z.shape[1], m, n)
    _same2("a", a.shape[0], a.shape[1], m, n)
    if b is not None:
        if b.shape[0] != n:
            raise ValueError(f"b has length {b.shape[0]}, expected {n}")
        if n > 0:
            bp = &b[0]
    _blas_dims(m, k, n)
    if m == 0 or n == 0:
        return
    nt = _threads_for(m * n * _act_cost(code))
    with nogil:
        _dense_fwd(&x[0, 0] if k > 0 else NULL, &W[0, 0] if k > 0 else NULL, bp, &z[0, 0],
                   &a[0, 0], m, k, n, code, p0, p1, nt)


def dense_forward(x, W, b, int code, double p0, double p1, z, a):
    """``z = x @ W + b`` then ``a = f(z)``, fused; ``b`` may be None; ``a`` may be ``z``."""
    _check_code(code)
    if _kind(x, "x") == 0:
        _dense_forward_t[float](x, W, b, code, <float>p0, <float>p1, z, a)
    else:
        _dense_forward_t[double](x, W, b, code, p0, p1, z, a)


cdef _dense_backward_t(const floating[:, ::1] x, const floating[:, ::1] W,
                       const floating[:, ::1] z, const floating[:, ::1] a,
                       const floating[:, ::1] dy, int code, floating p0, floating p1,
                       floating[:, ::1] dz, floating[:, ::1] dW, floating[::1] db,
                       floating[:, ::1] dx):
    cdef Py_ssize_t m = x.shape[0], k = x.shape[1], n = W.shape[1]
    cdef floating* dbp = NULL
    cdef floating* dxp = NULL
    cdef int nt
    if W.shape[0] != k:
        raise ValueError(f"x of shape ({m}, {k}) does not fit W of shape ({W.shape[0]}, {n})")
    _same2("z", z.shape[0], z.shape[1], m, n)
    _same2("a", a.shape[0], a.shape[1], m, n)
    _same2("dy", dy.shape[0], dy.shape[1], m, n)
    _same2("dz", dz.shape[0], dz.shape[1], m, n)
    _same2("dW", dW.shape[0], dW.shape[1], k, n)
    if db is not None:
        if db.shape[0] != n:
            raise ValueError(f"db has length {db.shape[0]}, expected {n}")
    if dx is not None:
        _same2("dx", dx.shape[0], dx.shape[1], m, k)
    _blas_dims(m, k, n)
    if n == 0:  # no outputs: dW, db are empty, dx = dz @ W.T is zero
        if dx is not None and m > 0 and k > 0:
            dx[:, :] = 0
        return
    if m == 0:  # no rows: the gradients of the weights are sums over nothing
        if k > 0:
            dW[:, :] = 0
        if db is not None:
            db[:] = 0
        return
    if db is not None:
        dbp = &db[0]
    if dx is not None and k > 0:
        dxp = &dx[0, 0]
    nt = _threads_for(m * n * _act_cost(code))
    with nogil:
        _dense_bwd(&x[0, 0] if k > 0 else NULL, &W[0, 0] if k > 0 else NULL, &z[0, 0],
                   &a[0, 0], &dy[0, 0], &dz[0, 0], &dW[0, 0] if k > 0 else NULL, dbp, dxp,
                   m, k, n, code, p0, p1, nt)


def dense_backward(x, W, z, a, dy, int code, double p0, double p1, dz, dW, db, dx):
    """``dz = dy * f'(z)``; ``dW = x.T @ dz``; ``db = dz.sum(0)``; ``dx = dz @ W.T``.

    ``dz`` may be ``dy``; ``db`` and ``dx`` may be None.
    """
    _check_code(code)
    if _kind(x, "x") == 0:
        _dense_backward_t[float](x, W, z, a, dy, code, <float>p0, <float>p1, dz, dW, db, dx)
    else:
        _dense_backward_t[double](x, W, z, a, dy, code, p0, p1, dz, dW, db, dx)


# --------------------------------------------------------------------------- softmax family
cdef int _nonempty_rows(Py_ssize_t n, str name) except -1:
    if n == 0:
        raise ValueError(f"{name} has rows of length 0: the maximum of an empty row is "
                         "undefined")
    return 0


cdef _softmax_t(const floating[:, ::1] z, floating[:, ::1] out, bint log_form):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1], i, j
    cdef floating lse
    cdef const floating* zr
    cdef floating* orow
    _same2("out", out.shape[0], out.shape[1], m, n)
    if m == 0:
        return
    _nonempty_rows(n, "z")
    with nogil:
        for i in range(m):
            zr = &z[0, 0] + i * n
            orow = &out[0, 0] + i * n
            if log_form:
                lse = _logsumexp_row(zr, n)
                for j in range(n):
                    orow[j] = zr[j] - lse
            else:
                _softmax_row(zr, orow, n)


def softmax(z, out):
    """``out = exp(z - max) / sum`` along the last axis; ``out`` may be ``z``."""
    if _kind(z, "z") == 0:
        _softmax_t[float](z, out, False)
    else:
        _softmax_t[double](z, out, False)


def log_softmax(z, out):
    """``out = z - logsumexp(z)`` along the last axis; ``out`` may be ``z``."""
    if _kind(z, "z") == 0:
        _softmax_t[float](z, out, True)
    else:
        _softmax_t[double](z, out, True)


cdef _logsumexp_t(const floating[:, ::1] z, floating[::1] out):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1], i
    if out.shape[0] != m:
        raise ValueError(f"out has length {out.shape[0]}, expected {m}")
    if m == 0:
        return
    _nonempty_rows(n, "z")
    with nogil:
        for i in range(m):
            out[i] = _logsumexp_row(&z[0, 0] + i * n, n)


def logsumexp(z, out):
    """``out[i] = max z[i] + log(sum exp(z[i] - max z[i]))``; ``out`` 1-D of length n."""
    if _kind(z, "z") == 0:
        _logsumexp_t[float](z, out)
    else:
        _logsumexp_t[double](z, out)


# --------------------------------------------------------------------------- fused losses
cdef int _check_labels(const int64_t[::1] labels, Py_ssize_t m, Py_ssize_t k) except -1:
    cdef Py_ssize_t i
    cdef int64_t bad = -1
    if labels.shape[0] != m:
        raise ValueError(f"labels has length {labels.shape[0]}, expected {m}")
    with nogil:
        for i in range(m):
            if labels[i] < 0 or labels[i] >= k:
                bad = i
                break
    if bad >= 0:
        raise IndexError(f"label {labels[bad]} at index {bad} is out of range for {k} classes")
    return 0


cdef double _softmax_xent_t(const floating[:, ::1] z, const int64_t[::1] labels,
                            floating[:, ::1] grad) except? -1:
    cdef Py_ssize_t m = z.shape[0], k = z.shape[1]
    cdef floating* g = NULL
    cdef double loss
    if m == 0:
        raise ValueError("logits has no rows: the mean loss is undefined")
    _nonempty_rows(k, "logits")
    _check_labels(labels, m, k)
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    with nogil:
        loss = _xent(&z[0, 0], &labels[0], NULL, g, m, k)
    return loss


def softmax_xent(logits, labels, grad):
    """Mean softmax cross-entropy of int64 ``labels``; ``grad`` (or None) gets its gradient."""
    lab = _as_i64(labels, "labels")
    if _kind(logits, "logits") == 0:
        return _softmax_xent_t[float](logits, lab, grad)
    return _softmax_xent_t[double](logits, lab, grad)


cdef double _softmax_xent_probs_t(const floating[:, ::1] z, const floating[:, ::1] t,
                                  floating[:, ::1] grad) except? -1:
    cdef Py_ssize_t m = z.shape[0], k = z.shape[1], i, j
    cdef floating* g = NULL
    cdef const floating* zr
    cdef const floating* tr
    cdef floating* gr
    cdef floating lse, fm, sf, tsf
    cdef double total = 0, tsum, dot, s
    if m == 0:
        raise ValueError("logits has no rows: the mean loss is undefined")
    _nonempty_rows(k, "logits")
    _same2("targets", t.shape[0], t.shape[1], m, k)
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    fm = <floating>m
    with nogil:
        for i in range(m):
            zr = &z[0, 0] + i * k
            tr = &t[0, 0] + i * k
            lse = _logsumexp_row(zr, k)
            tsum = 0
            dot = 0
            for j in range(k):
                tsum += tr[j]
                dot += tr[j] * zr[j]
            total += <double>lse * tsum - dot
            if g != NULL:
                gr = g + i * k
                _softmax_row(zr, gr, k)
                tsf = <floating>tsum
                for j in range(k):
                    gr[j] = (gr[j] * tsf - tr[j]) / fm
    return total / m


def softmax_xent_probs(logits, targets, grad):
    """Softmax cross-entropy against target distributions (rows of ``targets``)."""
    if _kind(logits, "logits") == 0:
        return _softmax_xent_probs_t[float](logits, targets, grad)
    return _softmax_xent_probs_t[double](logits, targets, grad)


cdef double _sigmoid_bce_t(const floating[:, ::1] z, const floating[:, ::1] t,
                           floating[:, ::1] grad) except? -1:
    cdef Py_ssize_t m = z.shape[0], k = z.shape[1]
    cdef floating* g = NULL
    cdef double loss
    _same2("targets", t.shape[0], t.shape[1], m, k)
    if m == 0 or k == 0:
        raise ValueError("logits is empty: the mean loss is undefined")
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    with nogil:
        loss = _bce(&z[0, 0], &t[0, 0], NULL, g, m, k)
    return loss


def sigmoid_bce(logits, targets, grad):
    """Mean binary cross-entropy from logits: ``softplus(z) - t z``; gradient into ``grad``."""
    if _kind(logits, "logits") == 0:
        return _sigmoid_bce_t[float](logits, targets, grad)
    return _sigmoid_bce_t[double](logits, targets, grad)


cdef double _mse_t(const floating[:, ::1] y, const floating[:, ::1] t, floating[:, ::1] grad,
                   bint half) except? -1:
    cdef Py_ssize_t m = y.shape[0], k = y.shape[1]
    cdef floating* g = NULL
    cdef double loss
    _same2("targets", t.shape[0], t.shape[1], m, k)
    if m == 0 or k == 0:
        raise ValueError("pred is empty: the mean loss is undefined")
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    with nogil:
        loss = _mse(&y[0, 0], &t[0, 0], NULL, g, m, k, half)
    return loss


def mse(pred, targets, grad, half):
    """Mean squared error (``half``: the notes' 1/(2n) sum); gradient into ``grad``."""
    if _kind(pred, "pred") == 0:
        return _mse_t[float](pred, targets, grad, bool(half))
    return _mse_t[double](pred, targets, grad, bool(half))


# --------------------------------------------------------------------------- optimisers
cdef int _same1(str name, Py_ssize_t got, Py_ssize_t want) except -1:
    if got != want:
        raise ValueError(f"{name} has length {got}, expected {want}")
    return 0


cdef _sgd_t(floating[::1] p, const floating[::1] g, floating[::1] vel, double lr,
            double momentum, bint nesterov, double wd):
    cdef Py_ssize_t P = p.shape[0]
    cdef floating* vp = NULL
    cdef int nt
    _same1("g", g.shape[0], P)
    if momentum != 0:
        if vel is None:
            raise ValueError("SGD with momentum needs a velocity buffer, got None")
        _same1("vel", vel.shape[0], P)
        if P > 0:
            vp = &vel[0]
    if P == 0:
        return
    nt = _threads_for(4 * P)
    with nogil:
        _sgd(&p[0], &g[0], vp, P, <floating>lr, <floating>momentum, nesterov, <floating>wd, nt)


def sgd_update(p, g, vel, lr, momentum, nesterov, weight_decay):
    """In place: ``p -= lr * step`` with momentum/Nesterov and weight decay (1-D arrays)."""
    if _kind(p, "p") == 0:
        _sgd_t[float](p, g, vel, lr, momentum, bool(nesterov), weight_decay)
    else:
        _sgd_t[double](p, g, vel, lr, momentum, bool(nesterov), weight_decay)


cdef _adam_t(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
             double lr, double beta1, double beta2, double eps, double wd, double t):
    cdef Py_ssize_t P = p.shape[0]
    cdef int nt
    _same1("g", g.shape[0], P)
    _same1("m", m.shape[0], P)
    _same1("v", v.shape[0], P)
    if P == 0:
        return
    nt = _threads_for(4 * P)
    with nogil:
        _adam(&p[0], &g[0], &m[0], &v[0], P, <floating>lr, beta1, beta2, <floating>eps,
              <floating>wd, t, nt)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t):
    """In place Adam step ``t`` (1-based) with bias correction and weight decay."""
    if _kind(p, "p") == 0:
        _adam_t[float](p, g, m, v, lr, beta1, beta2, eps, weight_decay, t)
    else:
        _adam_t[double](p, g, m, v, lr, beta1, beta2, eps, weight_decay, t)


cdef _rmsprop_t(floating[::1] p, const floating[::1] g, floating[::1] sq, double lr,
                double rho, double eps, double wd):
    cdef Py_ssize_t P = p.shape[0]
    cdef int nt
    _same1("g", g.shape[0], P)
    _same1("sq", sq.shape[0], P)
    if P == 0:
        return
    nt = _threads_for(4 * P)
    with nogil:
        _rmsprop(&p[0], &g[0], &sq[0], P, <floating>lr, rho, <floating>eps, <floating>wd, nt)


def rmsprop_update(p, g, sq, lr, rho, eps, weight_decay):
    """In place RMSprop: ``sq = rho sq + (1-rho) g^2``; ``p -= lr g / (sqrt(sq) + eps)``."""
    if _kind(p, "p") == 0:
        _rmsprop_t[float](p, g, sq, lr, rho, eps, weight_decay)
    else:
        _rmsprop_t[double](p, g, sq, lr, rho, eps, weight_decay)


cdef _adagrad_t(floating[::1] p, const floating[::1] g, floating[::1] acc, double lr,
                double eps, double wd):
    cdef Py_ssize_t P = p.shape[0]
    cdef int nt
    _same1("g", g.shape[0], P)
    _same1("acc", acc.shape[0], P)
    if P == 0:
        return
    nt = _threads_for(4 * P)
    with nogil:
        _adagrad(&p[0], &g[0], &acc[0], P, <floating>lr, <floating>eps, <floating>wd, nt)


def adagrad_update(p, g, acc, lr, eps, weight_decay):
    """In place Adagrad: ``acc += g^2``; ``p -= lr g / (sqrt(acc) + eps)``."""
    if _kind(p, "p") == 0:
        _adagrad_t[float](p, g, acc, lr, eps, weight_decay)
    else:
        _adagrad_t[double](p, g, acc, lr, eps, weight_decay)


# --------------------------------------------------------------------------- whole epoch
cdef Py_ssize_t _train_epoch_t(floating[::1] flat, floating[::1] grad,
                               const int64_t[::1] widths, const int64_t[::1] codes,
                               const double[:, ::1] params, const floating[:, ::1] X,
                               labels_obj, targets_obj, const int64_t[::1] perm,
                               Py_ssize_t bs, int loss_code, int opt_code,
                               const double[::1] hyper, floating[:, ::1] state,
                               double[::1] losses) except -1:
    cdef Py_ssize_t L = widths.shape[0] - 1, n = X.shape[0], P = 0, l, i, rows, off
    cdef Py_ssize_t n_batches, need_state, k_out, result
    cdef const int64_t[::1] labels
    cdef const floating[:, ::1] targets
    cdef const int64_t* lp = NULL
    cdef const floating* tp = NULL
    cdef floating* s0 = NULL
    cdef floating* s1 = NULL
    cdef floating[::1] work
    cdef int64_t[::1] woff, aoff, zoff, dzoff
    cdef int nt
    if L < 1:
        raise ValueError(f"widths must hold at least 2 sizes, got {widths.shape[0]}")
    for l in range(L + 1):
        if widths[l] < 1 or widths[l] > _INT_MAX:
            raise ValueError(f"widths[{l}] = {widths[l]} is not a valid layer size")
    if codes.shape[0] != L:
        raise ValueError(f"codes has length {codes.shape[0]}, expected {L}")
    for l in range(L):
        _check_code(codes[l])
    _same2("params", params.shape[0], params.shape[1], L, 2)
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1, got {bs}")
    if loss_code < 0 or loss_code > LOSS_HALF_MSE:
        raise ValueError(f"unknown loss code {loss_code}")
    if opt_code < 0 or opt_code > OPT_ADAGRAD:
        raise ValueError(f"unknown optimiser code {opt_code}")
    if hyper.shape[0] < N_HYPER:
        raise ValueError(f"hyper has length {hyper.shape[0]}, expected {N_HYPER}")
    woff = np.empty(L, dtype=np.int64)
    for l in range(L):
        woff[l] = P
        P += widths[l] * widths[l + 1] + widths[l + 1]
    _same1("flat", flat.shape[0], P)
    _same1("grad", grad.shape[0], P)
    if X.shape[1] != widths[0]:
        raise ValueError(f"X has {X.shape[1]} features, the first layer takes {widths[0]}")
    _same1("perm", perm.shape[0], n)
    for i in range(n):
        if perm[i] < 0 or perm[i] >= n:
            raise IndexError(f"perm[{i}] = {perm[i]} is out of range for {n} samples")
    k_out = widths[L]
    if loss_code == LOSS_SOFTMAX_XENT:
        labels = labels_obj
        _same1("labels", labels.shape[0], n)
        for i in range(n):
            if labels[i] < 0 or labels[i] >= k_out:
                raise IndexError(f"label {labels[i]} at index {i} is out of range for "
                                 f"{k_out} classes")
        if n > 0:
            lp = &labels[0]
    else:
        targets = targets_obj
        _same2("targets", targets.shape[0], targets.shape[1], n, k_out)
        if n > 0:
            tp = &targets[0, 0]
    need_state = 0
    if opt_code == OPT_ADAM:
        need_state = 2
    elif opt_code != OPT_SGD or hyper[H_MOMENTUM] != 0:
        need_state = 1
    if need_state > 0:
        if state is None or state.shape[0] < need_state or state.shape[1] != P:
            raise ValueError(f"state must have shape ({need_state}, {P}) or more rows, got "
                             f"{None if state is None else (state.shape[0], state.shape[1])}")
        s0 = &state[0, 0]
        if need_state == 2:
            s1 = &state[1, 0]
    n_batches = (n + bs - 1) // bs
    if losses.shape[0] < n_batches:
        raise ValueError(f"losses has length {losses.shape[0]}, expected at least {n_batches}")
    if n == 0:
        return 0
    # Workspaces, once per call: a[0] is the batch; per layer z, a (aliased to z for linear
    # layers, which have no activation to keep) and the gradient dz wrt z.
    rows = bs if bs < n else n
    _blas_dims(rows, 1, 1)
    aoff = np.empty(L + 1, dtype=np.int64)
    zoff = np.empty(L, dtype=np.int64)
    dzoff = np.empty(L + 1, dtype=np.int64)
    off = 0
    aoff[0] = 0
    dzoff[0] = 0  # never used: the first layer has no dx
    off += rows * widths[0]
    for l in range(L):
        zoff[l] = off
        off += rows * widths[l + 1]
        if codes[l] == LINEAR:
            aoff[l + 1] = zoff[l]
        else:
            aoff[l + 1] = off
            off += rows * widths[l + 1]
        dzoff[l + 1] = off
        off += rows * widths[l + 1]
    work = np.empty(off, dtype=_F32 if floating is float else _F64)
    # Inside an epoch the elementwise passes run on one thread and BLAS has the threads: on 2
    # cores an OpenMP team per mini-batch fights the BLAS threads still spinning after each
    # product (measured, large 784-1024-1024-10 at batch 512: 11.4k samples/s with parallel
    # optimiser updates, 15.9k serial; the Numba backend made the same choice).
    nt = 1
    with nogil:
        result = _epoch(&flat[0], &grad[0], s0, s1, P, &widths[0], &codes[0], &params[0, 0],
                        L, &woff[0], &X[0, 0], n, lp, tp, &perm[0], bs, loss_code, opt_code,
                        &hyper[0], &losses[0], &work[0], &aoff[0], &zoff[0], &dzoff[0], nt)
    return result


def train_epoch(flat, grad, widths, codes, params, X, labels, targets, perm, batch_size,
                loss_code, opt_code, hyper, state, losses):
    """One epoch of mini-batch training of a stack of Dense layers, GIL released throughout.

    Arguments as :func:`fusenn.backends._numpy.train_epoch`. Returns the number of batches
    completed: all of them, or the index of the first batch whose loss was not finite (the
    weights are then those before that batch's update).
    """
    cdef int kind = _kind(X, "X")
    w = _as_i64(widths, "widths")
    c = _as_i64(codes, "codes")
    pr = np.ascontiguousarray(params, dtype=np.float64)
    hy = np.ascontiguousarray(hyper, dtype=np.float64)
    pm = _as_i64(perm, "perm")
    if int(loss_code) == LOSS_SOFTMAX_XENT:
        labels = _as_i64(labels, "labels")
    out = losses
    if not (isinstance(losses, np.ndarray) and losses.dtype == _F64 and losses.ndim == 1
            and losses.flags.c_contiguous):
        out = np.zeros(np.shape(losses)[0] if np.ndim(losses) else 0, dtype=np.float64)
    st = state
    if st is not None and np.ndim(st) == 2 and np.shape(st)[0] == 0:
        st = None  # an empty state (plain SGD) needs no buffer
    if kind == 0:
        done = _train_epoch_t[float](flat, grad, w, c, pr, X, labels, targets, pm,
                                     int(batch_size), int(loss_code), int(opt_code), hy, st,
                                     out)
    else:
        done = _train_epoch_t[double](flat, grad, w, c, pr, X, labels, targets, pm,
                                      int(batch_size), int(loss_code), int(opt_code), hy, st,
                                      out)
    if out is not losses:
        n = min(len(out), np.shape(losses)[0])
        losses[:n] = out[:n]
    return done
