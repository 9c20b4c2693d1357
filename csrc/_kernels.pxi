# The nogil kernels of fusenn's Cython backend (included by _cykernels.pyx): pointer-level
# loops over rows, the BLAS products, the dense layer, the fused losses, the optimiser updates
# and the whole training epoch. Every activation's loop comes from _generated.pxi.

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
        raise _ArgumentError(f"threshold must be >= 0, got {work}")
    old = _par_min_work
    _par_min_work = work
    return old


cdef int _threads_for(Py_ssize_t work) except -1:
    """The thread count for a loop of ``work``: 1 when small or without OpenMP."""
    if not FUSENN_HAVE_OPENMP or work < _par_min_work:
        return 1
    return max(1, <int>_get_num_threads())


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
    """out = f(z) (softmax: the row's softmax); ``out`` may be ``z``."""
    if code == SOFTMAX:
        _softmax_row(z, out, n)
    elif code == LINEAR:
        if out != z:
            memcpy(out, z, n * sizeof(floating))
    else:
        _act_fwd_loop(z, out, n, code, p0, p1)


cdef void _bias_act_row(floating* z, const floating* b, floating* a, Py_ssize_t n, int code,
                        floating p0, floating p1) noexcept nogil:
    """z += b (b may be NULL), then a = f(z) unless a is z (then only the bias)."""
    cdef Py_ssize_t j
    if b != NULL and (a == z or code == SOFTMAX or code == LINEAR):
        for j in range(n):
            z[j] = z[j] + b[j]
        b = NULL
    if a == z:
        return
    if b == NULL:
        _act_fwd_row(z, a, n, code, p0, p1)
    else:
        _bias_act_loop(z, b, a, n, code, p0, p1)


cdef void _act_bwd_row(const floating* z, const floating* a, const floating* dy, floating* dz,
                       Py_ssize_t n, int code, floating p0, floating p1) noexcept nogil:
    """dz = dy * f'(z), or the softmax product a (dy - sum(dy a)); dz may be dy."""
    cdef Py_ssize_t j
    cdef double s = 0
    cdef floating sf
    if code == SOFTMAX:
        for j in range(n):
            s += dy[j] * a[j]
        sf = <floating>s
        for j in range(n):
            dz[j] = (dy[j] - sf) * a[j]
    elif code == LINEAR:
        if dz != dy:
            memcpy(dz, dy, n * sizeof(floating))
    else:
        _act_bwd_loop(z, a, dy, dz, n, code, p0, p1)


cdef void _act_der_row(const floating* z, const floating* a, floating* out, Py_ssize_t n,
                       int code, floating p0, floating p1) noexcept nogil:
    """out = f'(z) (softmax: a (1 - a))."""
    cdef Py_ssize_t j
    if code == SOFTMAX:
        for j in range(n):
            out[j] = a[j] * (1 - a[j])
    else:
        _act_der_loop(z, out, n, code, p0, p1)


# --------------------------------------------------------------------------- row loops
# Each runs its row function over m rows of width n, on nt threads (nt == 1: serially, with
# no OpenMP region: even an `if(0)` region costs a call into libgomp per loop, which made
# XOR's epoch of 4-row batches 4x slower).
cdef inline bint _row_finite(const floating* z, Py_ssize_t n) noexcept nogil:
    """Whether z[0:n] holds no NaN or infinity: z - z is 0 for a finite z and NaN otherwise,
    and an integer AND of the comparisons vectorises (a floating-point sum would not)."""
    cdef Py_ssize_t j
    cdef int ok = 1
    for j in range(n):
        ok &= (z[j] - z[j]) == 0
    return ok


#: Rows this narrow take _bias_act's activation and finiteness check in one pass over the
#: whole output instead of row by row.
DEF NARROW_ROWS = 16


cdef Py_ssize_t _bias_act(floating* z, const floating* b, floating* a, Py_ssize_t m,
                          Py_ssize_t n, int code, floating p0, floating p1, int nt,
                          bint check) noexcept nogil:
    """The rows' epilogue; with ``check``, returns how many rows of z hold a NaN or infinity
    (each looked at while it is in the cache), else 0."""
    cdef Py_ssize_t i, j, bad = 0
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _bias_act_row(z + i * n, b, a + i * n, n, code, p0, p1)
            if check:
                bad += 0 if _row_finite(z + i * n, n) else 1
    elif n <= NARROW_ROWS and code != SOFTMAX and a != z:
        # narrow rows, elementwise: the bias row by row, then the activation and the check
        # each in one pass over all m n (a choice of the activation per row cost more than
        # the row: 64 x 10 took 0.45 us fused row by row)
        if b != NULL:
            for i in range(m):
                for j in range(n):
                    z[i * n + j] = z[i * n + j] + b[j]
        _act_fwd_row(z, a, m * n, code, p0, p1)
        if check and not _row_finite(z, m * n):
            for i in range(m):
                bad += 0 if _row_finite(z + i * n, n) else 1
    else:  # no OpenMP region at all: its call costs a microsecond
        for i in range(m):
            _bias_act_row(z + i * n, b, a + i * n, n, code, p0, p1)
            if check and not _row_finite(z + i * n, n):
                bad += 1
    return bad


cdef void _act_fwd(const floating* z, floating* out, Py_ssize_t m, Py_ssize_t n, int code,
                   floating p0, floating p1, int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _act_fwd_row(z + i * n, out + i * n, n, code, p0, p1)
    else:  # no OpenMP region at all: its call costs a microsecond
        for i in range(m):
            _act_fwd_row(z + i * n, out + i * n, n, code, p0, p1)


cdef void _act_bwd(const floating* z, const floating* a, const floating* dy, floating* dz,
                   Py_ssize_t m, Py_ssize_t n, int code, floating p0, floating p1,
                   int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _act_bwd_row(z + i * n, a + i * n, dy + i * n, dz + i * n, n, code, p0, p1)
    else:  # no OpenMP region at all: its call costs a microsecond
        for i in range(m):
            _act_bwd_row(z + i * n, a + i * n, dy + i * n, dz + i * n, n, code, p0, p1)


cdef void _act_der(const floating* z, const floating* a, floating* out, Py_ssize_t m,
                   Py_ssize_t n, int code, floating p0, floating p1, int nt) noexcept nogil:
    cdef Py_ssize_t i
    if nt > 1 and m > 1:
        for i in prange(m, num_threads=nt, schedule="static"):
            _act_der_row(z + i * n, a + i * n, out + i * n, n, code, p0, p1)
    else:  # no OpenMP region at all: its call costs a microsecond
        for i in range(m):
            _act_der_row(z + i * n, a + i * n, out + i * n, n, code, p0, p1)


cdef void _column_sum(const floating* dz, floating* db, Py_ssize_t m, Py_ssize_t n,
                      Py_ssize_t ld) noexcept nogil:
    """db = dz.sum(0) for m rows of n columns ld apart, rows added in order (as NumPy reduces a
    C array over axis 0)."""
    cdef Py_ssize_t i, j
    cdef const floating* row
    memset(db, 0, n * sizeof(floating))
    for i in range(m):
        row = dz + i * ld
        for j in range(n):
            db[j] = db[j] + row[j]

# --------------------------------------------------------------------------- BLAS
# The products go to NumPy's own BLAS when the backend module found its CBLAS gemm (see
# fusenn.backends._blas): then NumPy's matmul and fusenn's kernels share one BLAS library and
# one thread pool in the process, instead of waking a second library's pool (SciPy's). Until
# then, and wherever NumPy's BLAS cannot be found, they go to SciPy's cython_blas, whose
# Fortran gemm is looked up (through its exported function table) only when a product needs
# it: importing scipy.linalg costs more than a small network's whole fit.
ctypedef void (*f_sgemm_t)(char* ta, char* tb, int* M, int* N, int* K, float* alpha,
                           float* A, int* lda, float* B, int* ldb, float* beta, float* C,
                           int* ldc) noexcept nogil
ctypedef void (*f_dgemm_t)(char* ta, char* tb, int* M, int* N, int* K, double* alpha,
                           double* A, int* lda, double* B, int* ldb, double* beta, double* C,
                           int* ldc) noexcept nogil
cdef f_sgemm_t _f_sgemm = NULL
cdef f_dgemm_t _f_dgemm = NULL


cdef void _load_scipy_blas() noexcept with gil:
    """Point the Fortran gemm pointers at SciPy's cython_blas (imported now, once)."""
    global _f_sgemm, _f_dgemm
    if _f_sgemm != NULL:
        return
    from scipy.linalg import cython_blas
    table = cython_blas.__pyx_capi__
    s_cap, d_cap = table["sgemm"], table["dgemm"]
    _f_dgemm = <f_dgemm_t>PyCapsule_GetPointer(d_cap, PyCapsule_GetName(d_cap))
    _f_sgemm = <f_sgemm_t>PyCapsule_GetPointer(s_cap, PyCapsule_GetName(s_cap))
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
        raise _ArgumentError("give both gemm addresses, or neither")
    _cblas_sgemm = <cblas_sgemm64_t>sgemm_address
    _cblas_dgemm = <cblas_dgemm64_t>dgemm_address
    BLAS = name if sgemm_address else "scipy.linalg.cython_blas"


# Products this small (XOR's 4 x 2 x 8) cost less than a BLAS call's own overhead: a plain loop.
DEF SMALL_GEMM = 512


cdef void _gemm_small(bint ta, bint tb, int M, int N, int K, floating alpha,
                      const floating* A, int lda, const floating* B, int ldb, floating beta,
                      floating* C, int ldc) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C for tiny sizes: float32 columns of C of
    at most 8 rows on fusenn_gemm_tiny (a vector per column, where the build has AVX2); else
    by the definition."""
    cdef int i, j, p
    cdef floating acc, av, bv
    if floating is float:
        if M <= 8 and (not ta or K <= FUSENN_TINY_KT) and \
                fusenn_gemm_tiny(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
            return
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
            return
    elif _cblas_dgemm != NULL:
        _cblas_dgemm(CBLAS_COL_MAJOR, cta, ctb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    if _f_sgemm == NULL:
        _load_scipy_blas()
    if floating is float:
        _f_sgemm(&ta, &tb, &M, &N, &K, &alpha, <float*>A, &lda, <float*>B, &ldb, &beta, C,
                 &ldc)
    else:
        _f_dgemm(&ta, &tb, &M, &N, &K, &alpha, <double*>A, &lda, <double*>B, &ldb, &beta, C,
                 &ldc)


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
cdef Py_ssize_t _dense_fwd(const floating* x, const floating* W, const floating* b,
                           floating* z, floating* a, Py_ssize_t m, Py_ssize_t k, Py_ssize_t n,
                           int code, floating p0, floating p1, int nt,
                           bint check=False) noexcept nogil:
    """z = x @ W + b, a = f(z) in one epilogue pass over z (a == z: bias only). With
    ``check``, returns the number of rows of z holding a NaN or infinity, else 0."""
    cdef Py_ssize_t i, bad = 0
    _mm_nn(x, W, z, m, k, n)
    if b != NULL or a != z:
        return _bias_act(z, b, a, m, n, code, p0, p1, nt, check)
    if check:
        for i in range(m):
            if not _row_finite(z + i * n, n):
                bad += 1
    return bad


cdef void _dense_bwd(const floating* x, const floating* W, const floating* z,
                     const floating* a, const floating* dy, floating* dz, floating* dW,
                     floating* db, floating* dx, Py_ssize_t m, Py_ssize_t k, Py_ssize_t n,
                     int code, floating p0, floating p1, int nt) noexcept nogil:
    """dz = dy * f'(z); dW = x.T @ dz; db = dz.sum(0) (db may be NULL); dx = dz @ W.T (or
    NULL)."""
    _act_bwd(z, a, dy, dz, m, n, code, p0, p1, nt)
    _mm_tn(x, dz, dW, m, k, n)
    if db != NULL:
        _column_sum(dz, db, m, n, n)
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


cdef double _softmax_xent(const floating* z, const int64_t* labels, const int64_t* idx,
                          floating* g, Py_ssize_t m, Py_ssize_t k,
                          Py_ssize_t mb) noexcept nogil:
    """Softmax cross-entropy of m rows over a batch of mb (>= m) rows: their sum divided by
    mb, and the gradient of that mean; labels[idx[i]] (idx may be NULL: labels[i])."""
    cdef Py_ssize_t i
    cdef double total = 0
    cdef floating div = <floating>mb
    for i in range(m):
        total += _xent_row(z + i * k, labels[idx[i]] if idx != NULL else labels[i],
                           g + i * k if g != NULL else NULL, k, div)
    return total / mb


cdef double _sigmoid_bce(const floating* z, const floating* t, const int64_t* idx,
                         floating* g, Py_ssize_t m, Py_ssize_t k,
                         Py_ssize_t mb) noexcept nogil:
    """Mean over elements of softplus(z) - t z (m rows of a batch of mb: the sum divided by
    mb k); g = (sigmoid(z) - t) / (mb k)."""
    cdef Py_ssize_t i, j
    cdef double total = 0
    cdef floating zz, tt, e, r, s
    cdef floating count = <floating>(mb * k)
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
    return total / (mb * k)


cdef double _mse(const floating* y, const floating* t, const int64_t* idx, floating* g,
                 Py_ssize_t m, Py_ssize_t k, bint half, Py_ssize_t mb) noexcept nogil:
    """Mean squared error (half: 1/(2 mb) sum) of m rows of a batch of mb, gradient into g
    (may be NULL)."""
    cdef Py_ssize_t i, j
    cdef double total = 0
    cdef floating diff, scale
    cdef const floating* trow
    if half:
        scale = <floating>(1.0 / mb)
    else:
        scale = <floating>(2.0 / (mb * k))
    for i in range(m):
        trow = t + (idx[i] if idx != NULL else i) * k
        for j in range(k):
            diff = y[i * k + j] - trow[j]
            total += <double>diff * <double>diff
            if g != NULL:
                g[i * k + j] = diff * scale
    if half:
        return total / (2 * mb)
    return total / (mb * k)


# --------------------------------------------------------------------------- optimisers
cdef double _count_correct(const floating* out, const int64_t* labels, const floating* t,
                           const int64_t* idx, Py_ssize_t m, Py_ssize_t k,
                           int loss_code) noexcept nogil:
    """A batch's correct predictions (fusenn.backends._numpy._count_correct): the row's first
    largest logit is its label (softmax cross-entropy), else each output on the side of its
    threshold (0 for sigmoid logits, 0.5 for squared errors) that ``target > 0.5`` is on."""
    cdef Py_ssize_t i, j, best
    cdef double count = 0
    cdef const floating* row
    cdef const floating* trow
    cdef floating threshold = 0 if loss_code == LOSS_SIGMOID_BCE else <floating>0.5
    cdef floating top
    cdef bint above
    for i in range(m):
        row = out + i * k
        if loss_code == LOSS_SOFTMAX_XENT:
            best = 0  # (selects, not branches: early in training the winner is a coin toss)
            top = row[0]
            for j in range(1, k):
                above = row[j] > top
                best = j if above else best
                top = row[j] if above else top
            count += best == labels[idx[i]]
        else:
            trow = t + idx[i] * k
            for j in range(k):
                count += (row[j] > threshold) == (trow[j] > <floating>0.5)
    return count


# --------------------------------------------------------------------------- whole epoch
cdef double _batch_loss(const floating* out, const int64_t* labels, const floating* targets,
                        const int64_t* idx, floating* dout, Py_ssize_t m, Py_ssize_t k,
                        int loss_code, double* correct, Py_ssize_t mb) noexcept nogil:
    """A batch's loss of the outputs ``out`` (m x k; logits for the cross-entropies) with its
    gradient into ``dout``, after counting its correct predictions into ``correct[0]``
    (unless NULL); the rows' labels or targets are at ``idx``. The m rows may be part of a
    batch of mb: the loss and gradient are then their share of the batch's mean."""
    if correct != NULL:
        correct[0] = _count_correct(out, labels, targets, idx, m, k, loss_code)
    if loss_code == LOSS_SOFTMAX_XENT:
        return _softmax_xent(out, labels, idx, dout, m, k, mb)
    if loss_code == LOSS_SIGMOID_BCE:
        return _sigmoid_bce(out, targets, idx, dout, m, k, mb)
    return _mse(out, targets, idx, dout, m, k, loss_code == LOSS_HALF_MSE, mb)


cdef inline double _sum_squares(const floating* w, Py_ssize_t n) noexcept nogil:
    """The sum of squares of n weights, for train_epoch's L2 penalty."""
    cdef Py_ssize_t i
    cdef double total = 0
    if floating is float:
        return fusenn_rowmm_sumsq(w, n)
    for i in range(n):
        total += w[i] * w[i]
    return total


cdef inline void _l2_hyper(double* hw, const double* hyper, Py_ssize_t m) noexcept nogil:
    """``hw``: the ``hyper`` vector for the weights (not the biases) of a batch of m rows,
    whose weight decay adds the gradient ``(l2 / m) W`` of train_epoch's L2 penalty (the
    optimisers' decay ``g + weight_decay p`` is that gradient's form)."""
    memcpy(hw, hyper, N_HYPER * sizeof(double))
    hw[H_WEIGHT_DECAY] = hyper[H_WEIGHT_DECAY] + hyper[H_L2] / m


cdef Py_ssize_t _epoch(floating* flat, floating* grad, floating* s0, floating* s1,
                       Py_ssize_t P, const int64_t* widths, const int64_t* codes,
                       const double* params, Py_ssize_t L, const int64_t* woff,
                       const floating* X, Py_ssize_t n, const int64_t* labels,
                       const floating* targets, const int64_t* perm, Py_ssize_t bs,
                       Py_ssize_t n_epochs, int loss_code, int opt_code,
                       const double* hyper, double* losses, double* correct, floating* work,
                       const int64_t* aoff, const int64_t* zoff,
                       const int64_t* dzoff) noexcept nogil:
    """The body of train_epoch on raw buffers (all shapes checked by the caller), the
    workspace laid out by fusenn.backends._contract.plan_epoch: ``n_epochs`` epochs, the
    order of epoch e at ``perm + e n``; ``correct`` may be NULL (not counted).

    Every elementwise pass runs on one thread and BLAS has the threads: on 2 cores an OpenMP
    team per mini-batch fights the BLAS threads still spinning after each product (measured,
    large 784-1024-1024-10 at batch 512: 11.4k samples/s with parallel optimiser updates,
    15.9k serial; the Numba backend made the same choice)."""
    cdef Py_ssize_t n_batches = (n + bs - 1) // bs
    cdef Py_ssize_t kk, kb, i, l, m, start, nin, nout, d = widths[0], k_out = widths[L]
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
    cdef double l2 = hyper[H_L2], penalty
    cdef double hw[N_HYPER]
    cdef bint plain_sgd = (opt_code == OPT_SGD and hyper[H_MOMENTUM] == 0
                           and hyper[H_WEIGHT_DECAY] == 0 and l2 == 0)
    cdef floating lr = <floating>hyper[H_LR]
    cdef floating* gb
    cdef Py_ssize_t j
    for kk in range(n_epochs * n_batches):
        kb = kk % n_batches
        start = kb * bs
        m = bs if n - start > bs else n - start
        idx = perm + (kk // n_batches) * n + start
        if d <= 16:  # gather the batch's rows (short ones by hand: a memcpy call per row
            for i in range(m):  # cost XOR's 2 features more than the copy)
                for j in range(d):
                    a0[i * d + j] = X[idx[i] * d + j]
        else:
            for i in range(m):
                memcpy(a0 + i * d, X + idx[i] * d, d * sizeof(floating))
        for l in range(L):
            nin = widths[l]
            nout = widths[l + 1]
            W = flat + woff[l]
            code = <int>codes[l]
            _dense_fwd(work + aoff[l], W, W + nin * nout, work + zoff[l], work + aoff[l + 1],
                       m, nin, nout, code, <floating>params[2 * l], <floating>params[2 * l + 1],
                       1)
        loss = _batch_loss(work + aoff[L], labels, targets, idx, work + dzoff[L], m, k_out,
                           loss_code, correct + kk if correct != NULL else NULL, m)
        losses[kk] = loss
        if not isfinite(loss):
            return kk
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
                _column_sum(work + dzoff[l + 1], gb, m, nout, nout)
                for j in range(nout):
                    W[nin * nout + j] = W[nin * nout + j] - lr * gb[j]
            else:
                _dense_bwd(work + aoff[l], W, work + zoff[l], work + aoff[l + 1],
                           work + dzoff[l + 1], work + dzoff[l + 1], grad + woff[l],
                           grad + woff[l] + nin * nout, dx, m, nin, nout, code,
                           <floating>params[2 * l], <floating>params[2 * l + 1], 1)
        step += 1
        if l2 != 0:  # the L2 penalty: its term in the loss, its gradient in each W's update
            _l2_hyper(hw, hyper, m)
            penalty = 0
            for l in range(L):
                nin = widths[l]
                nout = widths[l + 1]
                W = flat + woff[l]
                penalty += _sum_squares(W, nin * nout)
                _opt_step(opt_code, W, grad + woff[l], s0 + woff[l] if s0 != NULL else NULL,
                          s1 + woff[l] if s1 != NULL else NULL, nin * nout, hw, step, 1)
                _opt_step(opt_code, W + nin * nout, grad + woff[l] + nin * nout,
                          s0 + woff[l] + nin * nout if s0 != NULL else NULL,
                          s1 + woff[l] + nin * nout if s1 != NULL else NULL, nout, hyper,
                          step, 1)
            losses[kk] = loss + 0.5 * l2 * penalty / m
        elif not plain_sgd:
            _opt_step(opt_code, flat, grad, s0, s1, P, hyper, step, 1)
    return n_epochs * n_batches


# --------------------------------------------------------------------------- split epoch
# Mini-batches of a few dozen rows make products too small for BLAS's own threads (784-100-10
# at batch 32: 32 x 784 x 100 takes 60 us on one thread and no less on two). The split epoch
# runs T threads, each with a one-thread BLAS, and gives thread t a share R_t(w) of every
# layer width w: the rows R_t(n_in) of each W (contiguous in memory) and the columns
# R_t(n_out) of each layer's output. Each thread
#   forward: multiplies its columns of the input by its rows of W into a partial product
#     (m x n_out); once all partials are in, sums them (in thread order) over its output
#     columns, adds the bias and applies the activation there - the columns its next layer's
#     partial product reads;
#   backward: applies the activation's derivative to its columns of dz; once dz is whole,
#     computes its rows of dW = x^T dz, and its columns of dx = dz W^T from its rows of W -
#     the columns of the layer below it works on next;
#   update: its rows of every W and its entries of every b, which no other thread reads.
# So every thread's weights, gradients and optimiser state stay in its own core's cache (a
# split over W's columns moved them between the cores on every batch and ran slower than one
# thread). The threads meet at a spin barrier after each layer's partial products, before
# and after the loss (each thread computes its share of the rows), and after each layer's
# derivative but a linear last layer's (its dz is the loss gradient, whole already): 2 L + 1
# or 2 L + 2 times per batch. The forward sums are split over the input features, so results
# differ from the one-thread epoch's in rounding (they are the same for the same thread
# count).
# In float32, where the AVX2 build has them (FUSENN_ROWMM, ``use_rowmm``), and for batches of
# ROWMM_MIN_BATCH to ROWMM_MAX_BATCH rows, the first layer's forward and weight-gradient
# products go to fusenn_rowmm.h's kernels over row pointers instead of BLAS: they multiply the
# training rows where they lie (no gather), each thread asks for its columns of the next
# batch's rows while it computes this batch's weight gradient, and the optimiser updates each
# block of ROWMM_UPDATE_ROWS rows of W right after its gradient, while it is in the L1 cache.

cdef inline Py_ssize_t _share(Py_ssize_t n, int t, int T) noexcept nogil:
    """Where thread t's share of n items begins (thread T: the end)."""
    return (n * t) // T


cdef bint _rowmm_on = FUSENN_ROWMM
#: The split epoch's first layer runs on the row-pointer kernels for batches of
#: ROWMM_MIN_BATCH to ROWMM_MAX_BATCH rows: where they were measured faster than gathering the
#: batch for OpenBLAS (2-core development machine, use_rowmm on/off alternating in one
#: process, median of 6-10 rounds): 784-100-10 at batch 16 0.97x, 24 1.07x, 32 1.04-1.19x,
#: 48 1.14x; nielsen's 784-30-10 at batch 10 0.95x, medium's 784-128-64-10 at batch 64 0.89x.
#: Later layers (narrow products already in the cache) stay with BLAS, whose call was faster.
DEF ROWMM_MIN_BATCH = 24
DEF ROWMM_MAX_BATCH = 48
#: Rows of a weight gradient per row-pointer product in the split epoch, each block followed by
#: the optimiser's update of those rows while they are in the L1 cache.
DEF ROWMM_UPDATE_ROWS = 32
#: With the row-pointer kernels on, a later layer's input gradient ``dz W^T`` over a thread's
#: rows of W of at most this many weights goes to them too, from those rows transposed into
#: the thread's scratch (784-100-10 at batch 32: the 32 x 50 x 10 product took 3.4 us in BLAS).
DEF ROWMM_DX_MAX = 4096
#: The first layer's products run over the inputs that are not 0 in some row of the batch
#: (the others add nothing) where at most this share of a thread's inputs are: on MNIST's
#: digits 51-62 % of the pixels are in batches of 32 rows.
DEF ROWMM_ACTIVE_SHARE = 0.875


def use_rowmm(bint on):
    """Whether the split epoch sends its first layer's float32 products (batches of
    ROWMM_MIN_BATCH to ROWMM_MAX_BATCH rows) to the row-pointer kernels of ``fusenn_rowmm.h``
    (the default where they are built: :data:`ROWMM`) or gathers each batch for BLAS; returns
    the previous setting. For benchmarks and tests that compare the two in one process;
    ``on`` has no effect where :data:`ROWMM` is False."""
    global _rowmm_on
    previous = _rowmm_on
    _rowmm_on = on and FUSENN_ROWMM
    return previous


cdef inline void _batch_rows(const floating** xr, const floating* X, Py_ssize_t d,
                             const int64_t* idx, Py_ssize_t m) noexcept nogil:
    """xr[i] = the batch's training row i, ``X + idx[i] * d``."""
    cdef Py_ssize_t i
    for i in range(m):
        xr[i] = X + idx[i] * d


cdef void _add_l2_penalty(double* losses, Py_ssize_t kk, const double* l2sums, int T,
                          double l2, Py_ssize_t n, Py_ssize_t bs) noexcept nogil:
    """Add batch kk's L2 penalty, from the T threads' sums of squares, to its loss."""
    cdef Py_ssize_t rows = n - (kk % ((n + bs - 1) // bs)) * bs
    cdef double total = 0
    cdef int s
    for s in range(T):
        total += l2sums[8 * s]
    losses[kk] += 0.5 * l2 * total / (bs if rows > bs else rows)


cdef void _split_worker(int t, int T, fusenn_barrier* bar, floating* flat, floating* grad,
                        floating* s0, floating* s1, const int64_t* widths,
                        const int64_t* codes, const double* params, Py_ssize_t L,
                        const int64_t* woff, const floating* X, Py_ssize_t n,
                        const int64_t* labels, const floating* targets, const int64_t* perm,
                        Py_ssize_t bs, Py_ssize_t n_epochs, int loss_code, int opt_code,
                        const double* hyper, double* losses, double* correct, floating* work,
                        const int64_t* aoff, const int64_t* zoff, const int64_t* dzoff,
                        floating* part, Py_ssize_t part_stride, Py_ssize_t* done,
                        const floating** xr, int32_t* ks, double* l2sums,
                        double* lsums) noexcept nogil:
    """Thread t's part of every batch of _epoch_split (arguments as _epoch's; ``part``: two
    sets of T partial products of ``part_stride`` entries each; ``xr``: room for 2 ``bs`` row
    pointers and ROWMM_DX_MAX floats, or NULL). With ``xr`` (float32 builds with
    FUSENN_ROWMM) the first layer's products go to the row-pointer kernels and the batch is
    never gathered, and so do the input gradients of narrow later layers; ``ks`` (room for
    the thread's share of the first layer's inputs) then lists the inputs of the thread's
    share that are not 0 in some row of the batch, and where at most ROWMM_ACTIVE_SHARE of
    them are, both products run over those alone. With the L2
    penalty, ``l2sums[8 t]`` receives the sum of squares of the thread's rows of every W before
    each batch's update, which thread 0 adds into the batch's loss at the next batch's loss
    (the caller adds the last batch's). Each thread computes the loss of its share of the
    batch's rows into ``lsums[16 t]`` and counts their correct predictions into
    ``lsums[16 t + 8]``."""
    cdef Py_ssize_t n_batches = (n + bs - 1) // bs
    cdef Py_ssize_t kk, i, j, l, m, start, nin, nout, k0, k1, c0, c1, q, kb, ke, d = widths[0]
    cdef Py_ssize_t k_out = widths[L], m_next
    cdef int s
    cdef const int64_t* idx
    cdef const int64_t* idx_next = NULL
    cdef bint rows, sparse = False
    cdef Py_ssize_t nk = 0, qa, qb
    cdef floating* a0 = work + aoff[0]
    cdef floating* W
    cdef floating* z
    cdef floating* a
    cdef floating* dz
    cdef floating* gb
    cdef floating* parts
    cdef const floating* x
    cdef floating p0, p1, v
    cdef floating* wt
    cdef Py_ssize_t r0, r1
    cdef double loss
    cdef double step = hyper[H_STEP]
    cdef int code
    cdef double l2 = hyper[H_L2], penalty = 0, penalty_next = 0
    cdef double hw[N_HYPER]  # (the weights' hyper-parameters: with the L2 penalty's decay)
    cdef bint plain_sgd = (opt_code == OPT_SGD and hyper[H_MOMENTUM] == 0
                           and hyper[H_WEIGHT_DECAY] == 0 and l2 == 0)
    cdef floating lr = <floating>hyper[H_LR]
    # The L2 penalty's sum of squares of this thread's rows of every W: before the first
    # batch, then of each block of rows right after its update, while it is in the L1 cache.
    if l2 != 0:
        for l in range(L):
            k0 = _share(widths[l], t, T)
            k1 = _share(widths[l], t + 1, T)
            penalty_next += _sum_squares(flat + woff[l] + k0 * widths[l + 1],
                                         (k1 - k0) * widths[l + 1])
    for kk in range(n_epochs * n_batches):
        start = (kk % n_batches) * bs
        m = bs if n - start > bs else n - start
        idx = perm + (kk // n_batches) * n + start
        k0 = _share(d, t, T)
        k1 = _share(d, t + 1, T)
        if xr != NULL:  # the batch's training rows, where they lie
            _batch_rows(xr, X, d, idx, m)
        elif k1 > k0:  # this thread's features of the batch: only it reads them
            for i in range(m):
                memcpy(a0 + i * d + k0, X + idx[i] * d + k0, (k1 - k0) * sizeof(floating))
        for l in range(L):
            nin = widths[l]
            nout = widths[l + 1]
            W = flat + woff[l]
            x = work + aoff[l]
            parts = part + (l % 2) * T * part_stride
            k0 = _share(nin, t, T)
            k1 = _share(nin, t + 1, T)
            rows = xr != NULL and l == 0
            if floating is float:
                if rows:  # over the inputs not 0 in some row, where few enough are
                    nk = fusenn_rowmm_active(xr, k0, m, k1 - k0, ks)
                    sparse = nk <= (k1 - k0) * ROWMM_ACTIVE_SHARE
                    if sparse:
                        fusenn_rowmm_nn_active(xr, k0, m, k1 - k0, ks, nk, W + k0 * nout,
                                               nout, nout, parts + t * part_stride, nout)
                    else:
                        fusenn_rowmm_nn(xr, k0, m, k1 - k0, W + k0 * nout, nout, nout,
                                        parts + t * part_stride, nout)
            if not rows:
                _gemm(c"N", c"N", <int>nout, <int>m, <int>(k1 - k0), W + k0 * nout,
                      <int>nout, x + k0, <int>nin, parts + t * part_stride, <int>nout)
            fusenn_barrier_wait(bar, T)  # every partial product is in
            c0 = _share(nout, t, T)
            c1 = _share(nout, t + 1, T)
            z = work + zoff[l]
            a = work + aoff[l + 1]
            code = <int>codes[l]
            p0 = <floating>params[2 * l]
            p1 = <floating>params[2 * l + 1]
            for i in range(m):
                for j in range(c0, c1):
                    v = parts[i * nout + j]
                    for s in range(1, T):
                        v = v + parts[s * part_stride + i * nout + j]
                    z[i * nout + j] = v
                if c1 > c0:
                    _bias_act_row(z + i * nout + c0, W + nin * nout + c0, a + i * nout + c0,
                                  c1 - c0, code, p0, p1)
        fusenn_barrier_wait(bar, T)  # the output is whole
        r0 = _share(m, t, T)  # this thread's rows of the loss
        r1 = _share(m, t + 1, T)
        lsums[16 * t] = _batch_loss(work + aoff[L] + r0 * k_out, labels, targets, idx + r0,
                                    work + dzoff[L] + r0 * k_out, r1 - r0, k_out, loss_code,
                                    lsums + 16 * t + 8 if correct != NULL else NULL, m)
        if t == 0 and l2 != 0 and kk > 0:  # the last batch's penalty: every thread updated
            _add_l2_penalty(losses, kk - 1, l2sums, T, l2, n, bs)
        fusenn_barrier_wait(bar, T)  # the loss and its gradient are in
        loss = 0
        for s in range(T):  # (every thread the same sum, in thread order)
            loss += lsums[16 * s]
        if t == 0:
            losses[kk] = loss
            if correct != NULL:
                correct[kk] = 0
                for s in range(T):
                    correct[kk] += lsums[16 * s + 8]
        if not isfinite(loss):
            if t == 0:
                done[0] = kk
            return
        step += 1
        penalty = penalty_next  # (of the weights as this batch's loss saw them)
        penalty_next = 0
        _l2_hyper(hw, hyper, m)
        m_next = 0  # the next batch (for the row products' prefetch)
        if xr != NULL and kk + 1 < n_epochs * n_batches:
            start = ((kk + 1) % n_batches) * bs
            m_next = bs if n - start > bs else n - start
            idx_next = perm + ((kk + 1) // n_batches) * n + start
        for l in range(L - 1, -1, -1):
            nin = widths[l]
            nout = widths[l + 1]
            W = flat + woff[l]
            x = work + aoff[l]
            code = <int>codes[l]
            c0 = _share(nout, t, T)
            c1 = _share(nout, t + 1, T)
            z = work + zoff[l]
            a = work + aoff[l + 1]
            dz = work + dzoff[l + 1]
            gb = grad + woff[l] + nin * nout
            if c1 > c0:  # this thread's columns of dz = dy f'(z), and of db
                if code != LINEAR:
                    for i in range(m):
                        _act_bwd_row(z + i * nout + c0, a + i * nout + c0, dz + i * nout + c0,
                                     dz + i * nout + c0, c1 - c0, code, <floating>params[2 * l],
                                     <floating>params[2 * l + 1])
                _column_sum(dz + c0, gb + c0, m, c1 - c0, nout)
            if code != LINEAR or l < L - 1:  # (a linear last layer's dz is the loss's: whole)
                fusenn_barrier_wait(bar, T)  # dz is whole
            k0 = _share(nin, t, T)
            k1 = _share(nin, t + 1, T)
            if l > 0 and k1 > k0 and xr != NULL and (k1 - k0) * nout <= ROWMM_DX_MAX:
                if floating is float:  # the same on the row kernels, from W[k0:k1, :]^T
                    wt = <floating*>(xr + 2 * bs)  # (scratch after the two pointer arrays)
                    for j in range(k1 - k0):
                        for i in range(nout):
                            wt[i * (k1 - k0) + j] = W[(k0 + j) * nout + i]
                    for i in range(m):
                        xr[bs + i] = dz + i * nout
                    fusenn_rowmm_nn(xr + bs, 0, m, nout, wt, k1 - k0, k1 - k0,
                                    work + dzoff[l] + k0, nin)
            elif l > 0 and k1 > k0:  # dx[:, k0:k1] = dz @ W[k0:k1, :]^T, before W changes
                _gemm(c"T", c"N", <int>(k1 - k0), <int>m, <int>nout, W + k0 * nout,
                      <int>nout, dz, <int>nout, work + dzoff[l] + k0, <int>nin)
            rows = xr != NULL and l == 0
            if plain_sgd:  # as _epoch: W -= lr x^T dz inside the product, b -= lr db
                if k1 > k0:
                    if floating is float:
                        if rows and sparse:
                            fusenn_rowmm_tn_active(xr, k0, m, k1 - k0, ks, nk, dz, nout, nout,
                                                   -lr, 1, W + k0 * nout, nout)
                        elif rows:
                            fusenn_rowmm_tn(xr, k0, m, k1 - k0, dz, nout, nout, -lr, 1,
                                            W + k0 * nout, nout)
                    if not rows:
                        _gemm_ab(c"N", c"T", <int>nout, <int>(k1 - k0), <int>m, -lr, dz,
                                 <int>nout, x + k0, <int>nin, 1, W + k0 * nout, <int>nout)
                for j in range(c0, c1):
                    W[nin * nout + j] = W[nin * nout + j] - lr * gb[j]
                continue
            # dW[k0:k1, :] = x[:, k0:k1]^T dz, then the update of those rows and of b[c0:c1]
            if floating is float:
                if rows:  # by blocks of rows, each updated while in the L1 cache
                    qa = 0  # (the block's share of the active inputs: ks[qa:qb])
                    for kb in range(k0, k1, ROWMM_UPDATE_ROWS):
                        ke = kb + ROWMM_UPDATE_ROWS if k1 - kb > ROWMM_UPDATE_ROWS else k1
                        if m_next > 0:  # these columns of the next batch's rows
                            fusenn_rowmm_prefetch(X, d, idx_next, m_next, kb, ke - kb)
                        q = woff[l] + kb * nout
                        if sparse:
                            qb = qa
                            while qb < nk and ks[qb] < ke:
                                qb += 1
                            fusenn_rowmm_tn_active(xr, kb, m, ke - kb, ks + qa, qb - qa, dz,
                                                   nout, nout, 1, 0, grad + q, nout)
                            qa = qb
                        else:
                            fusenn_rowmm_tn(xr, kb, m, ke - kb, dz, nout, nout, 1, 0,
                                            grad + q, nout)
                        _opt_step(opt_code, flat + q, grad + q,
                                  s0 + q if s0 != NULL else NULL,
                                  s1 + q if s1 != NULL else NULL, (ke - kb) * nout, hw,
                                  step, 1)
                        if l2 != 0:
                            penalty_next += _sum_squares(flat + q, (ke - kb) * nout)
            if k1 > k0 and not rows:
                _gemm(c"N", c"T", <int>nout, <int>(k1 - k0), <int>m, dz, <int>nout,
                      x + k0, <int>nin, grad + woff[l] + k0 * nout, <int>nout)
                q = woff[l] + k0 * nout
                _opt_step(opt_code, flat + q, grad + q, s0 + q if s0 != NULL else NULL,
                          s1 + q if s1 != NULL else NULL, (k1 - k0) * nout, hw, step, 1)
                if l2 != 0:
                    penalty_next += _sum_squares(flat + q, (k1 - k0) * nout)
            if c1 > c0:
                q = woff[l] + nin * nout + c0
                _opt_step(opt_code, flat + q, grad + q, s0 + q if s0 != NULL else NULL,
                          s1 + q if s1 != NULL else NULL, c1 - c0, hyper, step, 1)
        if l2 != 0:
            l2sums[8 * t] = penalty  # (each thread's own cache line)


cdef Py_ssize_t _epoch_split(floating* flat, floating* grad, floating* s0, floating* s1,
                             const int64_t* widths, const int64_t* codes,
                             const double* params, Py_ssize_t L, const int64_t* woff,
                             const floating* X, Py_ssize_t n, const int64_t* labels,
                             const floating* targets, const int64_t* perm, Py_ssize_t bs,
                             Py_ssize_t n_epochs, int loss_code, int opt_code,
                             const double* hyper, double* losses, double* correct,
                             floating* work, const int64_t* aoff, const int64_t* zoff,
                             const int64_t* dzoff, floating* part, Py_ssize_t part_stride,
                             int team, double* l2sums, double* lsums) noexcept nogil:
    """_epoch on a team of ``team`` OpenMP threads sharing every layer (above); ``part`` holds
    2 x ``team`` x ``part_stride`` entries (``part_stride`` >= batch rows x widest layer);
    ``l2sums``, with the L2 penalty, 8 x ``team`` entries; ``lsums`` 16 x ``team``.
    BLAS must run one thread per call (the caller limits it). The team OpenMP gives may be
    smaller; its threads share the work by its real size."""
    cdef fusenn_barrier bar
    cdef Py_ssize_t done = n_epochs * ((n + bs - 1) // bs)
    cdef int t = 0, T = 1  # (each thread's own, set in the region)
    cdef const floating** xr = NULL  # (each thread's own: its row pointers, float32 only)
    cdef int32_t* ks = NULL  # (each thread's own: its active inputs, in xr's block)
    fusenn_barrier_init(&bar)
    with parallel(num_threads=team):
        t = threadid()
        T = fusenn_team_size()
        xr = NULL
        if floating is float:
            if _rowmm_on and ROWMM_MIN_BATCH <= bs <= ROWMM_MAX_BATCH:  # (no memory: BLAS)
                # the batch's rows, a later layer's dz rows, ROWMM_DX_MAX floats, then the
                # first layer's active inputs
                xr = <const floating**>malloc(2 * <size_t>bs * sizeof(floating*)
                                              + ROWMM_DX_MAX * sizeof(floating)
                                              + <size_t>widths[0] * sizeof(int32_t))
        ks = NULL if xr == NULL else <int32_t*>(<char*>xr + 2 * <size_t>bs * sizeof(floating*)
                                                + ROWMM_DX_MAX * sizeof(floating))
        _split_worker(t, T, &bar, flat, grad, s0, s1, widths, codes, params, L, woff, X, n,
                      labels, targets, perm, bs, n_epochs, loss_code, opt_code, hyper, losses,
                      correct, work, aoff, zoff, dzoff, part, part_stride, &done, xr, ks,
                      l2sums, lsums)
        free(xr)
    if hyper[H_L2] != 0 and done > 0 and done == n_epochs * ((n + bs - 1) // bs):
        _add_l2_penalty(losses, done - 1, l2sums, team, hyper[H_L2], n, bs)  # the last one
    return done
