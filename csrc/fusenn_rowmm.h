/* fusenn_rowmm.h: the single-precision products of the split training epoch's first
   layer (_split_worker in _kernels.pxi), with the mini-batch given as row pointers.

     fusenn_rowmm_nn:  Z[i, j] = sum_k x_i[k] W[k, j]                       (forward)
     fusenn_rowmm_tn:  G[k, j] = alpha sum_i x_i[k] D[i, j] + beta G[k, j]   (x^T dz)

   x_i is row i of the batch wherever it lies: the training row itself, so that the batch is
   never gathered into a buffer. Both products are thin (a few dozen
   rows), where OpenBLAS spends a good part of each call packing its operands; these kernels
   read the operands where they are, in register tiles of 4 rows by 24 columns (12 AVX2
   accumulators; the first operand's scalars broadcast, the second's 24-column panel reused
   across the rows). The forward runs over blocks of 64 k so that its panel of W stays in the
   L1 cache. A last block of 9 to 23 columns takes a tile of 4 x 16 or 4 x 24 under a lane
   mask. Lanes past the last column read the next columns of the same operand (the next
   row's, for its last columns): only the operand's last row is loaded under the mask, so no
   kernel reads past an operand's end, and the extra lanes are dropped at the masked store.
   Rows missing from a last tile read a real row and write to a scratch tile. Up to 8 last
   columns are dot products along k instead, where a masked 8-wide vector would waste most
   of its lanes: the forward's from those columns of W transposed (blocks of 256 k on the
   stack), the weight gradient's with x_i[k : k + 8] as the vector.

   Inputs such as images hold many zeros: fusenn_rowmm_active lists the k where some row of
   the batch is not 0, and fusenn_rowmm_nn_active / fusenn_rowmm_tn_active run the tiles over
   those k alone (the weight gradient's rows of the others are 0). A zero term adds nothing to
   a sum, so they give the full products' numbers to the bit.

   Two helpers of the training epochs follow them: fusenn_gemm_tiny, the one-thread epoch's
   products of at most 8 output columns and a few hundred multiply-adds (XOR's), and
   fusenn_rowmm_sumsq, the split epoch's L2 penalty.

   With AVX2 and FMA (the _cykernels_avx2 build) FUSENN_ROWMM is 1; elsewhere the same
   functions are plain loops and FUSENN_ROWMM is 0 (the epoch then gathers the batch and
   calls BLAS instead; the tests check both builds' functions against NumPy), but for
   fusenn_gemm_tiny, which there leaves the product to the epoch's own loop. */
#ifndef FUSENN_ROWMM_H
#define FUSENN_ROWMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A hint: bring x_i[off : off + K] of the rows base + idx[i] * stride, i < m, towards the L2
   cache (the split epoch asks for the next batch's rows while it works on this one). */
static inline void fusenn_rowmm_prefetch(const float* base, ptrdiff_t stride,
                                         const int64_t* idx, ptrdiff_t m, ptrdiff_t off,
                                         ptrdiff_t K) {
#if defined(__GNUC__)
    for (ptrdiff_t i = 0; i < m; i++) {
        const float* row = base + idx[i] * stride + off;
        for (ptrdiff_t k = 0; k < K; k += 16)
            __builtin_prefetch(row + k, 0, 2);
        __builtin_prefetch(row + K - 1, 0, 2);
    }
#else
    (void)base; (void)stride; (void)idx; (void)m; (void)off; (void)K;
#endif
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__GNUC__)
#include <immintrin.h>
#define FUSENN_ROWMM 1

#define FUSENN_RM_INLINE static inline __attribute__((always_inline))
#define FUSENN_RM_KC 64   /* k per block of the forward: a 64 x 24 panel of W is 6 KiB */
#define FUSENN_RM_NC 24   /* columns per full tile */
#define FUSENN_RM_KT 256  /* k per block of the forward's last columns transposed */

/* lanes [0, w) on */
FUSENN_RM_INLINE __m256i fusenn_rm_mask(int w) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* How n columns are tiled: ``full`` tiles of 24, then w (0 to 23) columns in nv vectors, the
   last one's lanes under mk. Returns where the w columns begin. */
FUSENN_RM_INLINE ptrdiff_t fusenn_rm_columns(ptrdiff_t n, ptrdiff_t* full, int* w, int* nv,
                                             __m256i* mk) {
    *full = n / FUSENN_RM_NC;
    *w = (int)(n % FUSENN_RM_NC);
    *nv = (*w + 7) / 8;
    *mk = fusenn_rm_mask(*w - 8 * (*nv - 1));
    return *full * FUSENN_RM_NC;
}

/* One term of a tile's sums: s[r][v] += p[r][off] b[8 v : 8 v + 8], r < mr <= 4, v < nv <= 3;
   b's last vector loaded under mk when ``lastmask``. With b's nv vectors, one broadcast and
   the mr nv accumulators, at most 16 vector registers are live. mr, nv and lastmask are
   constants at every call, so the accumulators live in registers. */
FUSENN_RM_INLINE void fusenn_rm_step(const int mr, const int nv, const int lastmask,
                                     __m256 s[4][3], const float* const* p, ptrdiff_t off,
                                     const float* b, __m256i mk) {
    __m256 bv[3];
    for (int v = 0; v < nv; v++)
        bv[v] = (lastmask && v == nv - 1) ? _mm256_maskload_ps(b + 8 * v, mk)
                                          : _mm256_loadu_ps(b + 8 * v);
    for (int r = 0; r < mr; r++) {
        __m256 x = _mm256_broadcast_ss(p[r] + off);
        for (int v = 0; v < nv; v++)
            s[r][v] = _mm256_fmadd_ps(x, bv[v], s[r][v]);
    }
}

/* Store a tile: c[r][0:8 nv] = s[r] (the last vector under mk when ``masked``). */
FUSENN_RM_INLINE void fusenn_rm_store(const int mr, const int nv, const int masked,
                                      __m256 s[4][3], float* const* c, __m256i mk) {
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            if (masked && v == nv - 1)
                _mm256_maskstore_ps(c[r] + 8 * v, mk, s[r][v]);
            else
                _mm256_storeu_ps(c[r] + 8 * v, s[r][v]);
        }
}

/* Forward tile: c[r][0:8 nv] (+)= sum_{q < kb} a[r][t] w[t ldw + 0:8 nv], r < mr (kb >= 1),
   over t = q, or where the active k are given over t = ks[q] - kbase. ``masked``: the last
   vector's lanes past mk are dropped, and w's row of the last term loaded under mk. */
FUSENN_RM_INLINE void fusenn_rm_tile_nn(const int mr, const int nv, const int masked,
                                        const float* const* a, const float* w, ptrdiff_t ldw,
                                        ptrdiff_t kb, const int32_t* ks, ptrdiff_t kbase,
                                        float* const* c, int acc, __m256i mk) {
    __m256 s[4][3];
    ptrdiff_t q, t;
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            s[r][v] = !acc ? _mm256_setzero_ps()
                      : (masked && v == nv - 1) ? _mm256_maskload_ps(c[r] + 8 * v, mk)
                                                : _mm256_loadu_ps(c[r] + 8 * v);
    for (q = 0; q < kb - 1; q++) {
        t = ks ? ks[q] - kbase : q;
        fusenn_rm_step(mr, nv, 0, s, a, t, w + t * ldw, mk);
    }
    t = ks ? ks[q] - kbase : q;
    fusenn_rm_step(mr, nv, masked, s, a, t, w + t * ldw, mk);
    fusenn_rm_store(mr, nv, masked, s, c, mk);
}

/* One row block [i, i + mr) of the forward over columns [j, j + 8 nv) and the kb terms of
   fusenn_rm_nn's block from k0 (or listed in ks): rows past m read row i and write to
   ``scratch`` (mr x 24 floats, mr <= 4). */
FUSENN_RM_INLINE void fusenn_rm_rows_nn(const int mr, const int nv, const int masked,
                                        const float* const* x, ptrdiff_t xoff, ptrdiff_t i,
                                        ptrdiff_t m, const float* W, ptrdiff_t ldw, float* Z,
                                        ptrdiff_t ldz, ptrdiff_t j, ptrdiff_t k0, ptrdiff_t kb,
                                        const int32_t* ks, int acc, float* scratch,
                                        __m256i mk) {
    const float* a[4];
    float* c[4];
    for (int r = 0; r < mr; r++) {
        int real = i + r < m;
        a[r] = x[real ? i + r : i] + xoff + k0;
        c[r] = real ? Z + (i + r) * ldz + j : scratch + r * FUSENN_RM_NC;
    }
    fusenn_rm_tile_nn(mr, nv, masked, a, W + k0 * ldw + j, ldw, kb, ks, xoff, c, acc, mk);
}

/* w <= 8 columns of the forward as dot products along k: Z[i, c] (+)= x_i[xoff : xoff + K] .
   wt[c ldwt : c ldwt + K], c < w (adding to Z when ``acc``); ``rr`` rows at a time (2 when
   w <= 4, so that 8 or fewer accumulators are live). The last partial vector of both is
   loaded under a mask. */
FUSENN_RM_INLINE void fusenn_rm_dots(const int w, const float* const* x, ptrdiff_t xoff,
                                     ptrdiff_t m, ptrdiff_t K, const float* wt, ptrdiff_t ldwt,
                                     float* Z, ptrdiff_t ldz, int acc) {
    const int rr = w <= 4 ? 2 : 1;
    __m256 s[2][8];
    float lanes[8];
    __m256i mk = fusenn_rm_mask((int)(K % 8));
    for (ptrdiff_t i = 0; i < m; i += rr) {
        const float* a[2];
        int nr = (int)(m - i < rr ? m - i : rr);
        for (int r = 0; r < rr; r++) {
            a[r] = x[r < nr ? i + r : i] + xoff;
            for (int c = 0; c < w; c++)
                s[r][c] = _mm256_setzero_ps();
        }
        ptrdiff_t k = 0;
        for (; k + 8 <= K; k += 8)
            for (int r = 0; r < rr; r++) {
                __m256 xv = _mm256_loadu_ps(a[r] + k);
                for (int c = 0; c < w; c++)
                    s[r][c] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(wt + c * ldwt + k), s[r][c]);
            }
        if (k < K)
            for (int r = 0; r < rr; r++) {
                __m256 xv = _mm256_maskload_ps(a[r] + k, mk);
                for (int c = 0; c < w; c++)
                    s[r][c] = _mm256_fmadd_ps(xv, _mm256_maskload_ps(wt + c * ldwt + k, mk),
                                              s[r][c]);
            }
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < w; c++) {
                float* z = Z + (i + r) * ldz + c;
                _mm256_storeu_ps(lanes, s[r][c]);
                *z = (acc ? *z : 0.0f) + (((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
                                          + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])));
            }
    }
}

/* The last w <= 8 columns of the weight gradient, along k: G[k:k+8, c] from the sums over i
   of x_i[k:k+8] D[i, c] (``rr`` blocks of 8 k at a time, 2 when w <= 4), written back a
   row at a time. */
FUSENN_RM_INLINE void fusenn_rm_tail_tn(const int w, const float* const* x, ptrdiff_t xoff,
                                        ptrdiff_t m, ptrdiff_t K, const float* D, ptrdiff_t ldd,
                                        float alpha, float beta, float* G, ptrdiff_t ldg) {
    const int rr = w <= 4 ? 2 : 1;
    __m256 s[2][8];
    float lanes[8][8];
    for (ptrdiff_t k = 0; k < K; k += 8 * rr) {
        __m256i mk[2];
        int nk[2];
        for (int r = 0; r < rr; r++) {
            ptrdiff_t left = K - k - 8 * r;
            nk[r] = left <= 0 ? 0 : (left < 8 ? (int)left : 8);
            mk[r] = fusenn_rm_mask(nk[r]);
            for (int c = 0; c < w; c++)
                s[r][c] = _mm256_setzero_ps();
        }
        for (ptrdiff_t i = 0; i < m; i++) {
            const float* xi = x[i] + xoff + k;
            const float* di = D + i * ldd;
            for (int r = 0; r < rr; r++) {
                __m256 xv = nk[r] == 8 ? _mm256_loadu_ps(xi + 8 * r)
                                       : _mm256_maskload_ps(xi + 8 * r, mk[r]);
                for (int c = 0; c < w; c++)
                    s[r][c] = _mm256_fmadd_ps(xv, _mm256_broadcast_ss(di + c), s[r][c]);
            }
        }
        for (int r = 0; r < rr; r++) {
            for (int c = 0; c < w; c++)
                _mm256_storeu_ps(lanes[c], s[r][c]);
            for (int q = 0; q < nk[r]; q++) {
                float* g = G + (k + 8 * r + q) * ldg;
                for (int c = 0; c < w; c++)
                    g[c] = beta == 0.0f ? alpha * lanes[c][q] : alpha * lanes[c][q] + beta * g[c];
            }
        }
    }
}

/* The forward's last w <= 8 columns, from column j: Z[i, j + c] = x_i[xoff : xoff + K] .
   W[0:K, j + c], by dot products along k from those columns of W transposed (blocks of
   FUSENN_RM_KT k on the stack). */
static void fusenn_rm_nn_tail(const float* const* x, ptrdiff_t xoff, ptrdiff_t m, ptrdiff_t K,
                              const float* W, ptrdiff_t ldw, ptrdiff_t j, int w, float* Z,
                              ptrdiff_t ldz) {
    float wt[8 * FUSENN_RM_KT];
    ptrdiff_t k0, kb, q;
    for (k0 = 0; k0 < K; k0 += FUSENN_RM_KT) {
        kb = K - k0 < FUSENN_RM_KT ? K - k0 : FUSENN_RM_KT;
        for (int c = 0; c < w; c++)
            for (q = 0; q < kb; q++)
                wt[c * FUSENN_RM_KT + q] = W[(k0 + q) * ldw + j + c];
        switch (w) {  /* (w a constant in each call, for the accumulators' registers) */
#define FUSENN_RM_DOTS(w_) \
            case w_: fusenn_rm_dots(w_, x, xoff + k0, m, kb, wt, FUSENN_RM_KT, Z + j, ldz, \
                                    k0 > 0); break;
            FUSENN_RM_DOTS(1) FUSENN_RM_DOTS(2) FUSENN_RM_DOTS(3) FUSENN_RM_DOTS(4)
            FUSENN_RM_DOTS(5) FUSENN_RM_DOTS(6) FUSENN_RM_DOTS(7) default: FUSENN_RM_DOTS(8)
#undef FUSENN_RM_DOTS
        }
    }
}

/* Z[i, 0:n] = sum_k x_i[xoff + k] W[k, 0:n] for i < m, over every k < K, or, where ks (nk of
   them, fusenn_rowmm_active's) lists the active k, over those alone (W row stride ldw, Z's
   ldz). The terms go in blocks of 64 (a panel of W in the L1 cache); a listed k's term comes
   where it would over every k, and a zero term adds nothing to a sum, so the list gives the
   same Z to the bit where W is finite. The last w <= 8 columns are dot products over every
   k. */
FUSENN_RM_INLINE void fusenn_rm_nn(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                   ptrdiff_t K, const int32_t* ks, ptrdiff_t nk,
                                   const float* W, ptrdiff_t ldw, ptrdiff_t n, float* Z,
                                   ptrdiff_t ldz) {
    float scratch[4 * FUSENN_RM_NC];
    ptrdiff_t i, j, q0, kb, k0, full, terms = ks ? nk : K;
    int w, nv;
    __m256i mk, all = fusenn_rm_mask(8);
    if (m <= 0 || n <= 0)
        return;
    if (terms <= 0) {  /* (for K > 0, the last w columns' dot products follow) */
        for (i = 0; i < m; i++)
            memset(Z + i * ldz, 0, (size_t)n * sizeof(float));
        if (K <= 0)
            return;
    }
    memset(scratch, 0, sizeof(scratch));
    j = fusenn_rm_columns(n, &full, &w, &nv, &mk);
    for (q0 = 0; q0 < terms; q0 += FUSENN_RM_KC) {
        kb = terms - q0 < FUSENN_RM_KC ? terms - q0 : FUSENN_RM_KC;
        k0 = ks ? 0 : q0;  /* (a listed block's k come from the list) */
        for (j = 0; j < full * FUSENN_RM_NC; j += FUSENN_RM_NC)
            for (i = 0; i < m; i += 4)
                fusenn_rm_rows_nn(4, 3, 0, x, xoff, i, m, W, ldw, Z, ldz, j, k0, kb,
                                  ks ? ks + q0 : NULL, q0 > 0, scratch, all);
        if (nv == 3)
            for (i = 0; i < m; i += 4)
                fusenn_rm_rows_nn(4, 3, 1, x, xoff, i, m, W, ldw, Z, ldz, j, k0, kb,
                                  ks ? ks + q0 : NULL, q0 > 0, scratch, mk);
        else if (nv == 2)
            for (i = 0; i < m; i += 4)
                fusenn_rm_rows_nn(4, 2, 1, x, xoff, i, m, W, ldw, Z, ldz, j, k0, kb,
                                  ks ? ks + q0 : NULL, q0 > 0, scratch, mk);
    }
    if (nv == 1)
        fusenn_rm_nn_tail(x, xoff, m, K, W, ldw, j, w, Z, ldz);
}

/* Z[i, 0:n] = x_i[xoff : xoff + K] W[0:K, 0:n] for i < m (W row stride ldw, Z's ldz). */
static void fusenn_rowmm_nn(const float* const* x, ptrdiff_t xoff, ptrdiff_t m, ptrdiff_t K,
                            const float* W, ptrdiff_t ldw, ptrdiff_t n, float* Z, ptrdiff_t ldz) {
    fusenn_rm_nn(x, xoff, m, K, NULL, 0, W, ldw, n, Z, ldz);
}

/* The same over the active k of x (ks, nk: fusenn_rowmm_active's), to the bit. */
static void fusenn_rowmm_nn_active(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                   ptrdiff_t K, const int32_t* ks, ptrdiff_t nk, const float* W,
                                   ptrdiff_t ldw, ptrdiff_t n, float* Z, ptrdiff_t ldz) {
    fusenn_rm_nn(x, xoff, m, K, ks, nk, W, ldw, n, Z, ldz);
}

/* Weight-gradient tile: c[r][0:8 nv] = alpha sum_{i < m} x_i[koff + o[r]] d[i ldd + 0:8 nv]
   (+ beta c[r], when beta != 0), r < mr (m >= 1; masked as in fusenn_rm_tile_nn, d's last
   row loaded under mk). */
FUSENN_RM_INLINE void fusenn_rm_tile_tn(const int mr, const int nv, const int masked,
                                        const float* const* x, ptrdiff_t koff,
                                        const ptrdiff_t* o, ptrdiff_t m, const float* d,
                                        ptrdiff_t ldd, float alpha, float beta,
                                        float* const* c, __m256i mk) {
    __m256 s[4][3];
    const float* p[4];
    ptrdiff_t i;
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            s[r][v] = _mm256_setzero_ps();
    for (i = 0; i < m; i++, d += ldd) {
        for (int r = 0; r < mr; r++)
            p[r] = x[i] + koff + o[r];
        if (i < m - 1)
            fusenn_rm_step(mr, nv, 0, s, p, 0, d, mk);
        else
            fusenn_rm_step(mr, nv, masked, s, p, 0, d, mk);
    }
    if (alpha != 1.0f || beta != 0.0f) {
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < nv; v++) {
                s[r][v] = _mm256_mul_ps(va, s[r][v]);
                if (beta != 0.0f)
                    s[r][v] = _mm256_fmadd_ps(vb, (masked && v == nv - 1)
                                                  ? _mm256_maskload_ps(c[r] + 8 * v, mk)
                                                  : _mm256_loadu_ps(c[r] + 8 * v), s[r][v]);
            }
    }
    fusenn_rm_store(mr, nv, masked, s, c, mk);
}

/* One block of G's rows over columns [j, j + 8 nv), the rows t[0:mr] (relative to xoff,
   mr <= 4): the block's missing rows read x_i[xoff + t[0]] and write to ``scratch`` (4 x 24
   floats). */
FUSENN_RM_INLINE void fusenn_rm_rows_tn(const int nv, const int masked, const float* const* x,
                                        ptrdiff_t xoff, const ptrdiff_t* t, int mr,
                                        ptrdiff_t m, const float* D, ptrdiff_t ldd,
                                        float alpha, float beta, float* G, ptrdiff_t ldg,
                                        ptrdiff_t j, float* scratch, __m256i mk) {
    ptrdiff_t o[4];
    float* c[4];
    for (int r = 0; r < 4; r++) {
        o[r] = t[r < mr ? r : 0];
        c[r] = r < mr ? G + t[r] * ldg + j : scratch + r * FUSENN_RM_NC;
    }
    fusenn_rm_tile_tn(4, nv, masked, x, xoff, o, m, D + j, ldd, alpha, beta, c, mk);
}

/* The weight gradient's last w <= 8 columns (D and G from their first): fusenn_rm_tail_tn
   with w a constant. One compiled copy for both products, so that they round alike. */
static __attribute__((noinline)) void fusenn_rm_tn_tail(const float* const* x, ptrdiff_t xoff,
                                                       ptrdiff_t m, ptrdiff_t K, const float* D,
                                                       ptrdiff_t ldd, int w, float alpha,
                                                       float beta, float* G, ptrdiff_t ldg) {
    switch (w) {
#define FUSENN_RM_TAIL(w_) \
        case w_: fusenn_rm_tail_tn(w_, x, xoff, m, K, D, ldd, alpha, beta, G, ldg); break;
        FUSENN_RM_TAIL(1) FUSENN_RM_TAIL(2) FUSENN_RM_TAIL(3) FUSENN_RM_TAIL(4)
        FUSENN_RM_TAIL(5) FUSENN_RM_TAIL(6) FUSENN_RM_TAIL(7) FUSENN_RM_TAIL(8)
#undef FUSENN_RM_TAIL
        default: break;
    }
}

/* G[k, 0:n] = alpha sum_{i < m} x_i[xoff + k] D[i, 0:n] + beta G[k, 0:n] for k < K (D row
   stride ldd, G's ldg; beta == 0 does not read G), by tiles of four rows of G; where ks (nk
   of them, fusenn_rowmm_active's) lists the active k, the tiles take those rows alone and
   the others are beta G (their sums are of zero terms: the same to the bit where D is
   finite). The last w <= 8 columns are summed along every k. */
FUSENN_RM_INLINE void fusenn_rm_tn(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                   ptrdiff_t K, const int32_t* ks, ptrdiff_t nk, const float* D,
                                   ptrdiff_t ldd, ptrdiff_t n, float alpha, float beta, float* G,
                                   ptrdiff_t ldg) {
    float scratch[4 * FUSENN_RM_NC];
    ptrdiff_t k, j, q, p, full, cols, t[4], rows = ks ? nk : K;
    int w, nv, mr;
    __m256i mk, all = fusenn_rm_mask(8);
    if (K <= 0 || n <= 0)
        return;
    if (m <= 0) {
        for (k = 0; k < K; k++)
            for (q = 0; q < n; q++)
                G[k * ldg + q] = beta == 0.0f ? 0.0f : beta * G[k * ldg + q];
        return;
    }
    memset(scratch, 0, sizeof(scratch));
    j = fusenn_rm_columns(n, &full, &w, &nv, &mk);
    cols = nv >= 2 ? n : j;  /* the tiles' columns */
    for (k = 0, q = 0; ks && beta != 1.0f && k < K; k++) {  /* rows not listed: beta G */
        if (q < nk && ks[q] == xoff + k) {
            q++;
            continue;
        }
        for (p = 0; p < cols; p++)
            G[k * ldg + p] = beta == 0.0f ? 0.0f : beta * G[k * ldg + p];
    }
    for (q = 0; q < rows; q += 4) {
        mr = rows - q < 4 ? (int)(rows - q) : 4;
        for (int r = 0; r < mr; r++)
            t[r] = ks ? ks[q + r] - xoff : q + r;
        for (j = 0; j < full * FUSENN_RM_NC; j += FUSENN_RM_NC)
            fusenn_rm_rows_tn(3, 0, x, xoff, t, mr, m, D, ldd, alpha, beta, G, ldg, j, scratch,
                              all);
        if (nv == 3)
            fusenn_rm_rows_tn(3, 1, x, xoff, t, mr, m, D, ldd, alpha, beta, G, ldg, j, scratch,
                              mk);
        else if (nv == 2)
            fusenn_rm_rows_tn(2, 1, x, xoff, t, mr, m, D, ldd, alpha, beta, G, ldg, j, scratch,
                              mk);
    }
    if (nv == 1)  /* up to 8 columns left: along k */
        fusenn_rm_tn_tail(x, xoff, m, K, D + j, ldd, w, alpha, beta, G + j, ldg);
}

/* G[k, 0:n] = alpha sum_{i < m} x_i[xoff + k] D[i, 0:n] + beta G[k, 0:n] for k < K. */
static void fusenn_rowmm_tn(const float* const* x, ptrdiff_t xoff, ptrdiff_t m, ptrdiff_t K,
                            const float* D, ptrdiff_t ldd, ptrdiff_t n, float alpha, float beta,
                            float* G, ptrdiff_t ldg) {
    fusenn_rm_tn(x, xoff, m, K, NULL, 0, D, ldd, n, alpha, beta, G, ldg);
}

/* The same given the active k of x (ks, nk: fusenn_rowmm_active's), to the bit. */
static void fusenn_rowmm_tn_active(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                   ptrdiff_t K, const int32_t* ks, ptrdiff_t nk, const float* D,
                                   ptrdiff_t ldd, ptrdiff_t n, float alpha, float beta,
                                   float* G, ptrdiff_t ldg) {
    fusenn_rm_tn(x, xoff, m, K, ks, nk, D, ldd, n, alpha, beta, G, ldg);
}

/* The k in [xoff, xoff + K) where x_i[k] is not 0 for some i < m (NaN counts), ascending, into
   ks; returns how many. Eight k at a time: the rows' lane masks ORed until all eight are on. */
static ptrdiff_t fusenn_rowmm_active(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                     ptrdiff_t K, int32_t* ks) {
    const __m256 zero = _mm256_setzero_ps();
    ptrdiff_t nk = 0;
    for (ptrdiff_t k = 0; k < K; k += 8) {
        int width = K - k < 8 ? (int)(K - k) : 8, full = (1 << width) - 1, bits = 0;
        __m256i mk = fusenn_rm_mask(width);
        for (ptrdiff_t i = 0; i < m && bits != full; i++) {
            const float* xi = x[i] + xoff + k;
            __m256 v = width == 8 ? _mm256_loadu_ps(xi) : _mm256_maskload_ps(xi, mk);
            bits |= _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
        }
        for (bits &= full; bits; bits &= bits - 1)
            ks[nk++] = (int32_t)(xoff + k + __builtin_ctz((unsigned)bits));
    }
    return nk;
}

#else  /* no AVX2 and FMA: the definitions by the sums, which the tests check */
#define FUSENN_ROWMM 0

static inline void fusenn_rowmm_nn(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                   ptrdiff_t K, const float* W, ptrdiff_t ldw, ptrdiff_t n,
                                   float* Z, ptrdiff_t ldz) {
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (ptrdiff_t k = 0; k < K; k++)
                s += x[i][xoff + k] * W[k * ldw + j];
            Z[i * ldz + j] = s;
        }
}

static inline void fusenn_rowmm_tn(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                   ptrdiff_t K, const float* D, ptrdiff_t ldd, ptrdiff_t n,
                                   float alpha, float beta, float* G, ptrdiff_t ldg) {
    for (ptrdiff_t k = 0; k < K; k++)
        for (ptrdiff_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (ptrdiff_t i = 0; i < m; i++)
                s += x[i][xoff + k] * D[i * ldd + j];
            G[k * ldg + j] = beta == 0.0f ? alpha * s : alpha * s + beta * G[k * ldg + j];
        }
}

static inline ptrdiff_t fusenn_rowmm_active(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                            ptrdiff_t K, int32_t* ks) {
    ptrdiff_t nk = 0;
    for (ptrdiff_t k = xoff; k < xoff + K; k++)
        for (ptrdiff_t i = 0; i < m; i++)
            if (x[i][k] != 0.0f || x[i][k] != x[i][k]) {
                ks[nk++] = (int32_t)k;
                break;
            }
    return nk;
}

static inline void fusenn_rowmm_nn_active(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                          ptrdiff_t K, const int32_t* ks, ptrdiff_t nk,
                                          const float* W, ptrdiff_t ldw, ptrdiff_t n, float* Z,
                                          ptrdiff_t ldz) {
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (ptrdiff_t q = 0; q < nk; q++)
                s += x[i][ks[q]] * W[(ks[q] - xoff) * ldw + j];
            Z[i * ldz + j] = s;
        }
    (void)K;
}

static inline void fusenn_rowmm_tn_active(const float* const* x, ptrdiff_t xoff, ptrdiff_t m,
                                          ptrdiff_t K, const int32_t* ks, ptrdiff_t nk,
                                          const float* D, ptrdiff_t ldd, ptrdiff_t n,
                                          float alpha, float beta, float* G, ptrdiff_t ldg) {
    (void)ks; (void)nk;  /* (the sums over every k: the others' terms are 0) */
    fusenn_rowmm_tn(x, xoff, m, K, D, ldd, n, alpha, beta, G, ldg);
}
#endif

/* The tiny products of the one-thread epoch (XOR's 4 x 2 x 8 and the like, where a BLAS
   call costs more than the product): column-major C (M x N, column stride ldc) =
   alpha op(A) op(B) + beta C (beta == 0: C is not read), op(A) = A (M x K, column stride lda)
   or A^T (ta), op(B) = B (K x N) or B^T (tb), for M <= 8 and, with ta, K <= 64
   (FUSENN_TINY_KT). A column of C is one vector of 8 lanes (M of them used), summed over k
   in k's order with one FMA per k, where the scalar loop took M multiply-adds and a loop per
   element. op(A)'s columns are read under a lane mask, or first copied out of A^T's rows into
   columns of 8 on the stack; the result is stored whole when M == 8, else through the stack
   (AMD's masked stores are slow). Returns 1; without AVX2 and FMA it computes nothing and
   returns 0, and the caller's own loop does the product. */
#define FUSENN_TINY_KT 64
static inline int fusenn_gemm_tiny(int ta, int tb, int M, int N, int K, float alpha,
                                   const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb,
                                   float beta, float* C, ptrdiff_t ldc) {
#if FUSENN_ROWMM
    const ptrdiff_t bk = tb ? ldb : 1, bj = tb ? 1 : ldb;  /* op(B)[k, j] = B[k bk + j bj] */
    const __m256i mask = fusenn_rm_mask(M);
    float cols[8 * FUSENN_TINY_KT];  /* op(A)'s columns, 8 floats apart, when ta */
    const float* a = A;
    ptrdiff_t ak = lda;  /* op(A)'s column k starts at a + k ak */
    if (ta) {
        for (int k = 0; k < K; k++)
            for (int i = 0; i < M; i++)
                cols[8 * k + i] = A[k + i * lda];
        a = cols;
        ak = 8;
    }
    for (int j = 0; j < N; j++) {
        __m256 acc = _mm256_setzero_ps();
        for (int k = 0; k < K; k++)
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + k * ak, mask),
                                  _mm256_set1_ps(B[k * bk + j * bj]), acc);
        __m256 r = _mm256_mul_ps(_mm256_set1_ps(alpha), acc);
        if (beta != 0)
            r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(C + j * ldc, mask), r);
        if (M == 8) {
            _mm256_storeu_ps(C + j * ldc, r);
        } else {
            float lanes[8];
            _mm256_storeu_ps(lanes, r);
            for (int i = 0; i < M; i++)
                C[i + j * ldc] = lanes[i];
        }
    }
    return 1;
#else
    (void)ta; (void)tb; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda; (void)B;
    (void)ldb; (void)beta; (void)C; (void)ldc;
    return 0;
#endif
}

/* The sum of squares of n float32 weights (the split epoch's L2 penalty over a thread's rows
   of W), in eight accumulators of eight float lanes (as many FMAs in flight as the core
   keeps), then double. */
static inline double fusenn_rowmm_sumsq(const float* w, ptrdiff_t n) {
    double total = 0.0;
    ptrdiff_t i = 0;
#if FUSENN_ROWMM
    __m256 s[8];
    for (int k = 0; k < 8; k++)
        s[k] = _mm256_setzero_ps();
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) {
            __m256 v = _mm256_loadu_ps(w + i + 8 * k);
            s[k] = _mm256_fmadd_ps(v, v, s[k]);
        }
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(w + i);
        s[0] = _mm256_fmadd_ps(v, v, s[0]);
    }
    for (int k = 1; k < 8; k++)
        s[0] = _mm256_add_ps(s[0], s[k]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s[0]);
    for (int k = 0; k < 8; k++)
        total += lanes[k];
#endif
    for (; i < n; i++)
        total += (double)w[i] * w[i];
    return total;
}

#endif
