# The Python boundary of fusenn's Cython backend (included by _cykernels.pyx): the contract's
# ``def`` functions. Each dispatches on the dtype once (float32 or float64, from one fused-type
# source), checks every shape so that no kernel can read or write out of bounds, and releases
# the GIL around the work.

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
    raise _ArgumentTypeError(f"{name} must be a float32 or float64 array, got "
                    f"{type(x).__name__ if dt is None else dt}")


cdef int _check_code(long code) except -1:
    if not _known_code(code):
        raise _ArgumentError(f"unknown activation code {code}")
    return 0


cdef int _same2(str what, Py_ssize_t r, Py_ssize_t c, Py_ssize_t r2, Py_ssize_t c2) except -1:
    if r != r2 or c != c2:
        raise _ArgumentError(f"{what} has shape ({r}, {c}), expected ({r2}, {c2})")
    return 0


cdef int _blas_dims(Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) except -1:
    if a > _INT_MAX or b > _INT_MAX or c > _INT_MAX:
        raise _ArgumentError("array dimension too large for BLAS (over 2**31 - 1)")
    return 0


def _as_i64(x, str name):
    """``x`` as a C-contiguous 1-D int64 array (no copy when it already is one)."""
    arr = np.ascontiguousarray(x, dtype=np.int64)
    if arr.ndim != 1:
        raise _ArgumentError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------- activations
cdef _act_forward_t(const floating[:, ::1] z, int code, double p0, double p1,
                    floating[:, ::1] out):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1]
    cdef int nt
    _check_code(code)
    _same2("out", out.shape[0], out.shape[1], m, n)
    if m == 0 or n == 0:
        return
    nt = _threads_for(m * n * _act_cost(code))
    with nogil:
        _act_fwd(&z[0, 0], &out[0, 0], m, n, code, <floating>p0, <floating>p1, nt)


cdef _act_derivative_t(const floating[:, ::1] z, const floating[:, ::1] a, int code,
                       double p0, double p1, floating[:, ::1] out):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1]
    cdef int nt
    _check_code(code)
    _same2("a", a.shape[0], a.shape[1], m, n)
    _same2("out", out.shape[0], out.shape[1], m, n)
    if m == 0 or n == 0:
        return
    nt = _threads_for(m * n * _act_cost(code))
    with nogil:
        _act_der(&z[0, 0], &a[0, 0], &out[0, 0], m, n, code, <floating>p0, <floating>p1, nt)


# --------------------------------------------------------------------------- dense layer
# The dense layer's calls are the ones a microsecond-sized network makes several times per
# batch, so they check their arrays through NumPy's C API (a few field reads each) instead of
# typed memoryviews (about 0.13 us each: half the call of an 8 x 64 x 32 layer).
cdef cnp.ndarray _c_array(object o, str name, int ndim, int typenum, bint out):
    """``o`` itself where it is a C-contiguous, native-order ndarray of ``ndim`` dimensions and
    NumPy type ``typenum`` (writable where it is an ``out``put), else the error that names
    ``name``: what a typed memoryview would accept (which does not ask for alignment either:
    arrays that dask or pickle rebuild from a byte buffer may not be aligned)."""
    if not cnp.PyArray_Check(o):
        raise _ArgumentTypeError(f"{name} must be a NumPy array, got {type(o).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>o
    if cnp.PyArray_NDIM(arr) != ndim:
        raise _ArgumentError(f"{name} must have {ndim} dimension(s), got shape {o.shape}")
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise _ArgumentError(f"{name} has dtype {o.dtype}, expected x's "
                             f"{_F32 if typenum == cnp.NPY_FLOAT else _F64}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise _ArgumentError(f"{name} must be a C-contiguous array")
    if out and not cnp.PyArray_ISWRITEABLE(arr):
        raise _ArgumentError(f"{name} is read-only")
    return arr


cdef inline int _shape2(cnp.ndarray arr, str name, Py_ssize_t r, Py_ssize_t c) except -1:
    return _same2(name, cnp.PyArray_DIM(arr, 0), cnp.PyArray_DIM(arr, 1), r, c)


def dense_forward(x, W, b, code, p0, p1, z, a):
    """``z = x @ W + b`` then ``a = f(z)``, fused; ``b`` may be None. Returns whether every
    element of ``z`` is finite (where a NaN or infinity of ``x``, ``W`` or ``b`` lands),
    looked at row by row in the epilogue's pass."""
    cdef bint single = _kind(x, "x") == 0
    cdef int typ = cnp.NPY_FLOAT if single else cnp.NPY_DOUBLE
    cdef cnp.ndarray xa = _c_array(x, "x", 2, typ, False)
    cdef cnp.ndarray Wa = _c_array(W, "W", 2, typ, False)
    cdef cnp.ndarray za = _c_array(z, "z", 2, typ, True)
    cdef cnp.ndarray aa = _c_array(a, "a", 2, typ, True)
    cdef Py_ssize_t m = cnp.PyArray_DIM(xa, 0), k = cnp.PyArray_DIM(xa, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(Wa, 1), bad
    cdef int icode = code, nt
    cdef double dp0 = p0, dp1 = p1
    cdef void* xp = cnp.PyArray_DATA(xa)
    cdef void* Wp = cnp.PyArray_DATA(Wa)
    cdef void* zp = cnp.PyArray_DATA(za)
    cdef void* ap = cnp.PyArray_DATA(aa)
    cdef void* bp = NULL
    _check_code(icode)
    if cnp.PyArray_DIM(Wa, 0) != k:
        raise _ArgumentError(f"x of shape ({m}, {k}) cannot multiply W of shape "
                             f"({cnp.PyArray_DIM(Wa, 0)}, {n})")
    _shape2(za, "z", m, n)
    _shape2(aa, "a", m, n)
    if b is not None:
        ba = _c_array(b, "b", 1, typ, False)
        if cnp.PyArray_DIM(ba, 0) != n:
            raise _ArgumentError(f"b has length {cnp.PyArray_DIM(ba, 0)}, expected {n}")
        bp = cnp.PyArray_DATA(ba)
    _blas_dims(m, k, n)
    if m == 0 or n == 0:
        return True
    nt = _threads_for(m * n * _act_cost(icode))
    with nogil:
        if single:
            bad = _dense_fwd(<const float*>xp, <const float*>Wp, <const float*>bp, <float*>zp,
                             <float*>ap, m, k, n, icode, <float>dp0, <float>dp1, nt, True)
        else:
            bad = _dense_fwd(<const double*>xp, <const double*>Wp, <const double*>bp,
                             <double*>zp, <double*>ap, m, k, n, icode, dp0, dp1, nt, True)
    return bad == 0


def dense_backward(x, W, z, a, dy, code, p0, p1, dz, dW, db, dx):
    """``dz = dy * f'(z)``; ``dW = x.T @ dz``; ``db = dz.sum(0)``; ``dx = dz @ W.T``."""
    cdef bint single = _kind(x, "x") == 0
    cdef int typ = cnp.NPY_FLOAT if single else cnp.NPY_DOUBLE
    cdef cnp.ndarray xa = _c_array(x, "x", 2, typ, False)
    cdef cnp.ndarray Wa = _c_array(W, "W", 2, typ, False)
    cdef cnp.ndarray za = _c_array(z, "z", 2, typ, False)
    cdef cnp.ndarray aa = _c_array(a, "a", 2, typ, False)
    cdef cnp.ndarray dya = _c_array(dy, "dy", 2, typ, False)
    cdef cnp.ndarray dza = _c_array(dz, "dz", 2, typ, True)
    cdef cnp.ndarray dWa = _c_array(dW, "dW", 2, typ, True)
    cdef Py_ssize_t m = cnp.PyArray_DIM(xa, 0), k = cnp.PyArray_DIM(xa, 1)
    cdef Py_ssize_t n = cnp.PyArray_DIM(Wa, 1)
    cdef int icode = code, nt
    cdef double dp0 = p0, dp1 = p1
    cdef void* xp = cnp.PyArray_DATA(xa)
    cdef void* Wp = cnp.PyArray_DATA(Wa)
    cdef void* zp = cnp.PyArray_DATA(za)
    cdef void* ap = cnp.PyArray_DATA(aa)
    cdef void* dyp = cnp.PyArray_DATA(dya)
    cdef void* dzp = cnp.PyArray_DATA(dza)
    cdef void* dWp = cnp.PyArray_DATA(dWa)
    cdef void* dbp = NULL
    cdef void* dxp = NULL
    _check_code(icode)
    if cnp.PyArray_DIM(Wa, 0) != k:
        raise _ArgumentError(f"x of shape ({m}, {k}) does not fit W of shape "
                             f"({cnp.PyArray_DIM(Wa, 0)}, {n})")
    _shape2(za, "z", m, n)
    _shape2(aa, "a", m, n)
    _shape2(dya, "dy", m, n)
    _shape2(dza, "dz", m, n)
    _shape2(dWa, "dW", k, n)
    if db is not None:
        dba = _c_array(db, "db", 1, typ, True)
        if cnp.PyArray_DIM(dba, 0) != n:
            raise _ArgumentError(f"db has length {cnp.PyArray_DIM(dba, 0)}, expected {n}")
        dbp = cnp.PyArray_DATA(dba)
    if dx is not None:
        _shape2(_c_array(dx, "dx", 2, typ, True), "dx", m, k)
        dxp = cnp.PyArray_DATA(<cnp.ndarray>dx)
    _blas_dims(m, k, n)
    if n == 0:  # no outputs: dW, db are empty, dx = dz @ W.T is zero
        if dx is not None:
            dx[...] = 0
        return
    if m == 0:  # no rows: the gradients of the weights are sums over nothing
        dW[...] = 0
        if db is not None:
            db[...] = 0
        return
    nt = _threads_for(m * n * _act_cost(icode))
    with nogil:
        if single:
            _dense_bwd(<const float*>xp, <const float*>Wp, <const float*>zp, <const float*>ap,
                       <const float*>dyp, <float*>dzp, <float*>dWp, <float*>dbp, <float*>dxp,
                       m, k, n, icode, <float>dp0, <float>dp1, nt)
        else:
            _dense_bwd(<const double*>xp, <const double*>Wp, <const double*>zp,
                       <const double*>ap, <const double*>dyp, <double*>dzp, <double*>dWp,
                       <double*>dbp, <double*>dxp, m, k, n, icode, dp0, dp1, nt)


# --------------------------------------------------------------------------- softmax family
cdef int _nonempty_rows(Py_ssize_t n, str name) except -1:
    if n == 0:
        raise _ArgumentError(f"{name} has rows of length 0: the maximum of an empty row is "
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


cdef _logsumexp_t(const floating[:, ::1] z, floating[::1] out):
    cdef Py_ssize_t m = z.shape[0], n = z.shape[1], i
    if out.shape[0] != m:
        raise _ArgumentError(f"out has length {out.shape[0]}, expected {m}")
    if m == 0:
        return
    _nonempty_rows(n, "z")
    with nogil:
        for i in range(m):
            out[i] = _logsumexp_row(&z[0, 0] + i * n, n)


# --------------------------------------------------------------------------- fused losses
cdef int _check_labels(const int64_t[::1] labels, Py_ssize_t m, Py_ssize_t k) except -1:
    cdef Py_ssize_t i
    cdef int64_t bad = -1
    if labels.shape[0] != m:
        raise _ArgumentError(f"labels has length {labels.shape[0]}, expected {m}")
    with nogil:
        for i in range(m):
            if labels[i] < 0 or labels[i] >= k:
                bad = i
                break
    if bad >= 0:
        raise IndexError(f"label {labels[bad]} at index {bad} is out of range for {k} classes")
    return 0


cdef double _softmax_xent_t(const floating[:, ::1] z, labels_obj,
                            floating[:, ::1] grad) except? -1:
    cdef const int64_t[::1] labels = _as_i64(labels_obj, "labels")
    cdef Py_ssize_t m = z.shape[0], k = z.shape[1]
    cdef floating* g = NULL
    cdef double loss
    if m == 0:
        raise _ArgumentError("logits has no rows: the mean loss is undefined")
    _nonempty_rows(k, "logits")
    _check_labels(labels, m, k)
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    with nogil:
        loss = _softmax_xent(&z[0, 0], &labels[0], NULL, g, m, k, m)
    return loss


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
        raise _ArgumentError("logits has no rows: the mean loss is undefined")
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


cdef double _sigmoid_bce_t(const floating[:, ::1] z, const floating[:, ::1] t,
                           floating[:, ::1] grad) except? -1:
    cdef Py_ssize_t m = z.shape[0], k = z.shape[1]
    cdef floating* g = NULL
    cdef double loss
    _same2("targets", t.shape[0], t.shape[1], m, k)
    if m == 0 or k == 0:
        raise _ArgumentError("logits is empty: the mean loss is undefined")
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    with nogil:
        loss = _sigmoid_bce(&z[0, 0], &t[0, 0], NULL, g, m, k, m)
    return loss


cdef double _mse_t(const floating[:, ::1] y, const floating[:, ::1] t, floating[:, ::1] grad,
                   bint half) except? -1:
    cdef Py_ssize_t m = y.shape[0], k = y.shape[1]
    cdef floating* g = NULL
    cdef double loss
    _same2("targets", t.shape[0], t.shape[1], m, k)
    if m == 0 or k == 0:
        raise _ArgumentError("pred is empty: the mean loss is undefined")
    if grad is not None:
        _same2("grad", grad.shape[0], grad.shape[1], m, k)
        g = &grad[0, 0]
    with nogil:
        loss = _mse(&y[0, 0], &t[0, 0], NULL, g, m, k, half, m)
    return loss


# --------------------------------------------------------------------------- optimisers
cdef int _same1(str name, Py_ssize_t got, Py_ssize_t want) except -1:
    if got != want:
        raise _ArgumentError(f"{name} has length {got}, expected {want}")
    return 0


cdef _update_t(int opt, floating[::1] p, const floating[::1] g, s0_obj, s1_obj, str s0_name,
               str s1_name, double lr, double momentum, bint nesterov, double wd, double b1,
               double b2, double eps, double rho, double t):
    """One optimiser step of the contract's ``<opt>_update`` (settings as in ``hyper``)."""
    cdef Py_ssize_t P = p.shape[0]
    cdef floating[::1] s0, s1
    cdef floating* s0p = NULL
    cdef floating* s1p = NULL
    cdef double hyper[N_HYPER]
    cdef int nt
    _same1("g", g.shape[0], P)
    if opt != OPT_SGD or momentum != 0:  # plain SGD keeps no state
        if s0_obj is None:
            raise _ArgumentError(f"{s0_name} is None, but this update keeps it")
        s0 = s0_obj
        _same1(s0_name, s0.shape[0], P)
        s0p = &s0[0] if P > 0 else NULL
    if opt == OPT_ADAM:
        s1 = s1_obj
        _same1(s1_name, s1.shape[0], P)
        s1p = &s1[0] if P > 0 else NULL
    if P == 0:
        return
    hyper[H_LR], hyper[H_MOMENTUM], hyper[H_NESTEROV], hyper[H_WEIGHT_DECAY] = (
        lr, momentum, nesterov, wd)
    hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPS], hyper[H_RHO] = b1, b2, eps, rho
    nt = _threads_for(4 * P)
    with nogil:
        _opt_step(opt, &p[0], &g[0], s0p, s1p, P, hyper, t, nt)


cdef Py_ssize_t _train_epoch_t(floating[::1] flat, floating[::1] grad,
                               const int64_t[::1] widths, const int64_t[::1] codes,
                               const double[:, ::1] params, const floating[:, ::1] X,
                               labels_obj, targets_obj, const int64_t[::1] perm,
                               Py_ssize_t bs, int loss_code, int opt_code,
                               const double[::1] hyper, floating[:, ::1] state,
                               double[::1] losses, double[::1] correct,
                               int team) except -1:
    cdef Py_ssize_t L = widths.shape[0] - 1, n = X.shape[0], P = 0, l, i, rows
    cdef Py_ssize_t n_batches, need_state, k_out, result, n_epochs
    cdef double* cp = NULL
    cdef const int64_t[::1] labels
    cdef const floating[:, ::1] targets
    cdef const int64_t* lp = NULL
    cdef const floating* tp = NULL
    cdef floating* s0 = NULL
    cdef floating* s1 = NULL
    cdef floating[::1] work
    cdef const int64_t[::1] woff, aoff, zoff, dzoff
    if L < 1:
        raise _ArgumentError(f"widths must hold at least 2 sizes, got {widths.shape[0]}")
    for l in range(L + 1):
        if widths[l] < 1 or widths[l] > _INT_MAX:
            raise _ArgumentError(f"widths[{l}] = {widths[l]} is not a valid layer size")
    if codes.shape[0] != L:
        raise _ArgumentError(f"codes has length {codes.shape[0]}, expected {L}")
    for l in range(L):
        _check_code(codes[l])
    _same2("params", params.shape[0], params.shape[1], L, 2)
    if bs < 1:
        raise _ArgumentError(f"batch_size must be >= 1, got {bs}")
    if loss_code < 0 or loss_code > LOSS_HALF_MSE:
        raise _ArgumentError(f"unknown loss code {loss_code}")
    if opt_code < 0 or opt_code > OPT_ADAGRAD:
        raise _ArgumentError(f"unknown optimiser code {opt_code}")
    if hyper.shape[0] < N_HYPER:
        raise _ArgumentError(f"hyper has length {hyper.shape[0]}, expected {N_HYPER}")
    rows = bs if bs < n else n
    _blas_dims(rows, 1, 1)
    plan = plan_epoch(widths, codes, rows, LINEAR)
    P = plan.n_params
    woff = plan.woff
    _same1("flat", flat.shape[0], P)
    _same1("grad", grad.shape[0], P)
    if X.shape[1] != widths[0]:
        raise _ArgumentError(f"X has {X.shape[1]} features, the first layer takes {widths[0]}")
    if n == 0:
        return 0
    if perm.shape[0] % n != 0 or perm.shape[0] == 0:
        raise _ArgumentError(f"perm has {perm.shape[0]} entries, expected one or more rows of "
                             f"{n} (one order of the samples per epoch)")
    n_epochs = perm.shape[0] // n
    for i in range(perm.shape[0]):
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
            raise _ArgumentError(f"state must have shape ({need_state}, {P}) or more rows, got "
                             f"{None if state is None else (state.shape[0], state.shape[1])}")
        s0 = &state[0, 0]
        if need_state == 2:
            s1 = &state[1, 0]
    n_batches = (n + bs - 1) // bs
    if losses.shape[0] < n_epochs * n_batches:
        raise _ArgumentError(f"losses has {losses.shape[0]} entries, expected at least "
                             f"{n_epochs * n_batches} ({n_epochs} epochs of {n_batches} batches)")
    if correct is not None and correct.shape[0] > 0:
        if correct.shape[0] < n_epochs * n_batches:
            raise _ArgumentError(f"correct has {correct.shape[0]} entries, expected at least "
                                 f"{n_epochs * n_batches}, or none")
        cp = &correct[0]
    aoff = plan.aoff
    zoff = plan.zoff
    dzoff = plan.dzoff
    work = np.empty(plan.size, dtype=_F32 if floating is float else _F64)
    for l in range(L):
        if codes[l] == SOFTMAX:  # a row's softmax needs all of its columns
            team = 1
    cdef floating[::1] part
    cdef Py_ssize_t part_stride = 0
    cdef double[::1] l2sums
    cdef double* l2p = NULL
    cdef double[::1] lsums
    if team > 1 and FUSENN_HAVE_SPIN_BARRIER:
        if hyper[H_L2] != 0:
            l2sums = np.zeros(8 * team)
            l2p = &l2sums[0]
        lsums = np.zeros(16 * team)
        for l in range(L):
            part_stride = max(part_stride, rows * widths[l + 1])
        part_stride = (part_stride + 15) // 16 * 16  # each partial on its own cache lines
        part = np.empty(2 * team * part_stride, dtype=_F32 if floating is float else _F64)
        with nogil:
            result = _epoch_split(&flat[0], &grad[0], s0, s1, &widths[0], &codes[0],
                                  &params[0, 0], L, &woff[0], &X[0, 0], n, lp, tp, &perm[0], bs,
                                  n_epochs, loss_code, opt_code, &hyper[0], &losses[0], cp,
                                  &work[0], &aoff[0], &zoff[0], &dzoff[0], &part[0],
                                  part_stride, team, l2p, &lsums[0])
        return result
    with nogil:
        result = _epoch(&flat[0], &grad[0], s0, s1, P, &widths[0], &codes[0], &params[0, 0],
                        L, &woff[0], &X[0, 0], n, lp, tp, &perm[0], bs, n_epochs, loss_code,
                        opt_code, &hyper[0], &losses[0], cp, &work[0], &aoff[0], &zoff[0],
                        &dzoff[0])
    return result


def train_epoch(flat, grad, widths, codes, params, X, labels, targets, perm, batch_size,
                loss_code, opt_code, hyper, state, losses, correct=None):
    """Epochs of mini-batch training of a stack of Dense layers (one per row of ``perm``),
    GIL released throughout.

    Arguments as :func:`fusenn.backends._numpy.train_epoch`. Returns the number of batches
    completed over all epochs: all of them, or the index of the first batch whose loss was not
    finite (the weights are then those before that batch's update).
    """
    cdef int kind = _kind(X, "X")
    w = _as_i64(widths, "widths")
    c = _as_i64(codes, "codes")
    pr = np.ascontiguousarray(params, dtype=np.float64)
    hy = np.ascontiguousarray(hyper, dtype=np.float64)
    pm = _as_i64(np.ravel(perm), "perm")
    if int(loss_code) == LOSS_SOFTMAX_XENT:
        labels = _as_i64(labels, "labels")
    out = _f64_out(losses)
    counts = None if correct is None or np.size(correct) == 0 else _f64_out(correct)
    st = state
    if st is not None and np.ndim(st) == 2 and np.shape(st)[0] == 0:
        st = None  # an empty state (plain SGD) needs no buffer
    # The column-split epoch (see _epoch_split) where fusenn's thread policy picks it for
    # this much work per batch; BLAS then runs one thread inside each of its threads.
    team = 1
    if FUSENN_HAVE_SPIN_BARRIER and np.size(w) > 1:  # work: rows x parameters, as the Trainer's
        team = _split_threads(int(batch_size) * sum(int(w[l] + 1) * int(w[l + 1])
                                                     for l in range(np.size(w) - 1)))
    with (_thread_limits(1) if team > 1 else contextlib.nullcontext()):
        if kind == 0:
            done = _train_epoch_t[float](flat, grad, w, c, pr, X, labels, targets, pm,
                                         int(batch_size), int(loss_code), int(opt_code), hy,
                                         st, out, counts, team)
        else:
            done = _train_epoch_t[double](flat, grad, w, c, pr, X, labels, targets, pm,
                                          int(batch_size), int(loss_code), int(opt_code), hy,
                                          st, out, counts, team)
    _copy_back(out, losses)
    if counts is not None:
        _copy_back(counts, correct)
    return done


def _f64_out(arr):
    """``arr`` flattened as the float64 C-contiguous buffer the kernel writes (a view when it
    is one already, else a scratch copy for :func:`_copy_back`)."""
    if isinstance(arr, np.ndarray) and arr.dtype == _F64 and arr.flags.c_contiguous:
        return arr.reshape(-1)
    return np.zeros(np.size(arr), dtype=np.float64)


def _copy_back(buf, arr):
    """Write a scratch output back into the caller's array ``arr``."""
    if isinstance(arr, np.ndarray) and not np.shares_memory(buf, arr):
        flat = arr.reshape(-1)
        n = min(flat.shape[0], buf.shape[0])
        flat[:n] = buf[:n]


# ------------------------------------------------------- the one-thread epoch's products
# Not part of the kernel contract: _gemm_ab on NumPy arrays, so that the tests can check its
# paths (the plain loop, fusenn_gemm_tiny, BLAS) against NumPy in this build at any shape.

def product(A, B, C, double alpha=1.0, double beta=0.0, bint ta=False, bint tb=False):
    """``C = alpha op(A) @ op(B) + beta C`` (``op(X)`` is ``X.T`` where ``ta`` / ``tb``;
    C-contiguous arrays of one float dtype; ``beta == 0`` ignores C) by the product that the
    one-thread training epoch runs (below SMALL_GEMM multiply-adds a loop, or
    fusenn_gemm_tiny where C has at most 8 columns, else BLAS)."""
    cdef int typ = cnp.NPY_FLOAT if _kind(C, "C") == 0 else cnp.NPY_DOUBLE
    cdef cnp.ndarray Aa = _c_array(A, "A", 2, typ, False)
    cdef cnp.ndarray Ba = _c_array(B, "B", 2, typ, False)
    cdef cnp.ndarray Ca = _c_array(C, "C", 2, typ, True)
    cdef Py_ssize_t m = cnp.PyArray_DIM(Ca, 0), n = cnp.PyArray_DIM(Ca, 1)
    cdef Py_ssize_t k = cnp.PyArray_DIM(Aa, 0 if ta else 1)
    if cnp.PyArray_DIM(Aa, 1 if ta else 0) != m or cnp.PyArray_DIM(Ba, 1 if tb else 0) != k \
            or cnp.PyArray_DIM(Ba, 0 if tb else 1) != n:
        raise _ArgumentError(f"op(A) {A.shape}{'.T' if ta else ''} @ op(B) "
                             f"{B.shape}{'.T' if tb else ''} does not give C's {C.shape}")
    _blas_dims(m, n, k)
    # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, as the epoch calls it
    cdef char ca = c"T" if ta else c"N"
    cdef char cb = c"T" if tb else c"N"
    if typ == cnp.NPY_FLOAT:
        with nogil:
            _gemm_ab(cb, ca, <int>n, <int>m, <int>k, <float>alpha,
                     <const float*>cnp.PyArray_DATA(Ba), <int>cnp.PyArray_DIM(Ba, 1),
                     <const float*>cnp.PyArray_DATA(Aa), <int>cnp.PyArray_DIM(Aa, 1),
                     <float>beta, <float*>cnp.PyArray_DATA(Ca), <int>n)
    else:
        with nogil:
            _gemm_ab(cb, ca, <int>n, <int>m, <int>k, alpha,
                     <const double*>cnp.PyArray_DATA(Ba), <int>cnp.PyArray_DIM(Ba, 1),
                     <const double*>cnp.PyArray_DATA(Aa), <int>cnp.PyArray_DIM(Aa, 1), beta,
                     <double*>cnp.PyArray_DATA(Ca), <int>n)


# ------------------------------------------------------- the split epoch's row products
# Not part of the kernel contract: the two products of fusenn_rowmm.h on NumPy arrays, so that
# the tests can check them against NumPy in this build (with AVX2 or without) at any shape.

def _rowmm_arrays(X, idx, Py_ssize_t xoff, Py_ssize_t K, B, Py_ssize_t n, C, str b_name,
                  Py_ssize_t b_rows, Py_ssize_t c_rows):
    """Check the operands of :func:`rowmm_nn` / :func:`rowmm_tn`; the row pointers."""
    cdef cnp.ndarray Xa = _c_array(X, "X", 2, cnp.NPY_FLOAT, False)
    cdef cnp.ndarray Ba = _c_array(B, b_name, 2, cnp.NPY_FLOAT, False)
    cdef cnp.ndarray Ca = _c_array(C, "out", 2, cnp.NPY_FLOAT, True)
    ia = _as_i64(idx, "idx")
    if ia.size and (ia.min() < 0 or ia.max() >= cnp.PyArray_DIM(Xa, 0)):
        raise _ArgumentError("idx holds a row outside X")
    if xoff < 0 or K < 0 or xoff + K > cnp.PyArray_DIM(Xa, 1):
        raise _ArgumentError(f"columns [{xoff}, {xoff + K}) outside X's "
                             f"{cnp.PyArray_DIM(Xa, 1)}")
    if n < 0 or cnp.PyArray_DIM(Ba, 0) < b_rows or cnp.PyArray_DIM(Ba, 1) < n:
        raise _ArgumentError(f"{b_name} is smaller than ({b_rows}, {n})")
    if cnp.PyArray_DIM(Ca, 0) < c_rows or cnp.PyArray_DIM(Ca, 1) < n:
        raise _ArgumentError(f"out is smaller than ({c_rows}, {n})")
    rows = np.asarray(ia, dtype=np.uintp) * (cnp.PyArray_DIM(Xa, 1) * 4) + \
        np.uintp(<size_t>cnp.PyArray_DATA(Xa))
    return Xa, Ba, Ca, rows


cdef int32_t[::1] _active_columns(const float* const* xp, Py_ssize_t xoff, Py_ssize_t m,
                                  Py_ssize_t K, Py_ssize_t* nk):
    """fusenn_rowmm_active's columns (nk of them) in a new array."""
    cdef int32_t[::1] ks = np.empty(max(K, 1), np.int32)
    with nogil:
        nk[0] = fusenn_rowmm_active(xp, xoff, m, K, &ks[0])
    return ks


def rowmm_active(X, idx, Py_ssize_t xoff, Py_ssize_t K):
    """The columns k in ``[xoff, xoff + K)`` of X (float32, C-contiguous) where some row of
    ``X[idx]`` is not 0, as the split epoch finds them for its first layer's products."""
    Xa, _, _, rows = _rowmm_arrays(X, idx, xoff, K, np.empty((K, 0), np.float32), 0,
                                   np.empty((0, 0), np.float32), "W", K, 0)
    cdef const size_t[::1] r = rows
    cdef const float* const* xp = <const float* const*>&r[0] if r.shape[0] else NULL
    cdef Py_ssize_t nk = 0
    ks = _active_columns(xp, xoff, r.shape[0], K, &nk)
    return np.asarray(ks[:nk]).astype(np.int64)


def rowmm_nn(X, idx, Py_ssize_t xoff, Py_ssize_t K, W, Py_ssize_t n, Z, bint active=False):
    """``Z[:, :n] = X[idx, xoff:xoff + K] @ W[:K, :n]`` (float32, C-contiguous) by the split
    epoch's forward kernel (``active``: over the columns of ``X[idx]`` that are not all 0, as
    the split epoch runs it on sparse inputs; the same numbers)."""
    Xa, Wa, Za, rows = _rowmm_arrays(X, idx, xoff, K, W, n, Z, "W", K, np.size(idx))
    cdef const size_t[::1] r = rows
    cdef const float* const* xp = <const float* const*>&r[0] if r.shape[0] else NULL
    cdef Py_ssize_t m = r.shape[0], nk = 0
    cdef Py_ssize_t ldw = cnp.PyArray_DIM(<cnp.ndarray>Wa, 1)
    cdef Py_ssize_t ldz = cnp.PyArray_DIM(<cnp.ndarray>Za, 1)
    cdef const float* Wp = <const float*>cnp.PyArray_DATA(<cnp.ndarray>Wa)
    cdef float* Zp = <float*>cnp.PyArray_DATA(<cnp.ndarray>Za)
    cdef int32_t[::1] ks
    if active:
        ks = _active_columns(xp, xoff, m, K, &nk)
        with nogil:
            fusenn_rowmm_nn_active(xp, xoff, m, K, &ks[0], nk, Wp, ldw, n, Zp, ldz)
        return
    with nogil:
        fusenn_rowmm_nn(xp, xoff, m, K, Wp, ldw, n, Zp, ldz)


def rowmm_tn(X, idx, Py_ssize_t xoff, Py_ssize_t K, D, Py_ssize_t n, double alpha,
             double beta, G, bint active=False):
    """``G[:K, :n] = alpha X[idx, xoff:xoff + K]^T @ D[:, :n] + beta G[:K, :n]`` (float32,
    C-contiguous; ``D`` has ``len(idx)`` rows) by the split epoch's weight-gradient kernel
    (``active``: over the columns of ``X[idx]`` that are not all 0, the others' rows of G
    ``beta G``; the same numbers)."""
    Xa, Da, Ga, rows = _rowmm_arrays(X, idx, xoff, K, D, n, G, "D", np.size(idx), K)
    cdef const size_t[::1] r = rows
    cdef const float* const* xp = <const float* const*>&r[0] if r.shape[0] else NULL
    cdef Py_ssize_t m = r.shape[0], nk = 0
    cdef Py_ssize_t ldd = cnp.PyArray_DIM(<cnp.ndarray>Da, 1)
    cdef Py_ssize_t ldg = cnp.PyArray_DIM(<cnp.ndarray>Ga, 1)
    cdef const float* Dp = <const float*>cnp.PyArray_DATA(<cnp.ndarray>Da)
    cdef float* Gp = <float*>cnp.PyArray_DATA(<cnp.ndarray>Ga)
    cdef int32_t[::1] ks
    if active:
        ks = _active_columns(xp, xoff, m, K, &nk)
        with nogil:
            fusenn_rowmm_tn_active(xp, xoff, m, K, &ks[0], nk, Dp, ldd, n, <float>alpha,
                                   <float>beta, Gp, ldg)
        return
    with nogil:
        fusenn_rowmm_tn(xp, xoff, m, K, Dp, ldd, n, <float>alpha, <float>beta, Gp, ldg)
