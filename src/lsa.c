/*
** lsa.c -- latent semantic analysis: a truncated SVD of a sparse weighted
** term-document matrix, for the built-in embedder that needs no model
** download (DESIGN.md, "The default embedder needs no download").
**
** HOW IT WORKS (randomized SVD, Halko, Martinsson & Tropp 2011, alg. 4.4)
**   A is rows x cols, sparse (CSR): rows are documents or chunks, cols
**   terms, values the caller's weights (log-tf x idf, rows unit length).
**   With l = dim + oversample columns:
**     Y = A Omega                   Omega: cols x l, Gaussian, fixed seed
**     repeat q times: Q = qr(Y); Z = qr(A^T Q); Y = A Z
**     Q = qr(Y)                     rows x l, orthonormal
**     B^T = A^T Q                   cols x l
**     B B^T = U~ S^2 U~^T           l x l symmetric eigenproblem (ssyevd)
**     V = B^T U~ S^-1               cols x dim: the term space basis
**   A row r then folds in as r V (the same for training rows and for new
**   ones, and for queries), normalised to unit length; similarity is the
**   dot product. Sparse products are written out (OpenMP over rows), dense
**   QR and the eigenproblem go to LAPACK through OpenBLAS.
**
** WORKLOAD: training touches every non-zero (2 + 2q) times per column of
** Y; SciFact (5k docs, 600k non-zeros, l = 532) trains in seconds. The
** result is deterministic for a given matrix, dim, oversample, q and seed.
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (Fortran ABI), exported by OpenBLAS */
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda,
             const float *tau, float *work, const int *lwork, int *info);
void ssyrk_(const char *uplo, const char *trans, const int *n, const int *k, const float *alpha,
            const float *a, const int *lda, const float *beta, float *c, const int *ldc);
void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k,
            const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
            const float *beta, float *c, const int *ldc);
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda,
             float *w, float *work, const int *lwork, int *iwork, const int *liwork, int *info);

static uint64_t rs_next(uint64_t *s) {
    uint64_t x = *s += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static float gauss(uint64_t *s) { /* Box-Muller */
    double u = ((double)(rs_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(rs_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* Y (rows x l, row-major) = A X, X: cols x l row-major. */
static void spmm(const lsa_csr *A, const float *X, int l, float *Y) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t r = 0; r < (int64_t)A->nrows; r++) {
        float *y = Y + (size_t)r * (size_t)l;
        memset(y, 0, (size_t)l * sizeof *y);
        for (uint64_t k = A->rowptr[r]; k < A->rowptr[r + 1]; k++) {
            const float *x = X + (size_t)A->col[k] * (size_t)l;
            float v = A->val[k];
            for (int j = 0; j < l; j++) y[j] += v * x[j];
        }
    }
}

/* The transpose of A in CSR (= A in CSC), so A^T Y runs row-parallel too
** instead of scattering into colliding columns. */
typedef struct csr_t {
    uint64_t *ptr; /* ncols + 1 */
    uint32_t *row;
    float *val;
} csr_t;

static int transpose(const lsa_csr *A, csr_t *T) {
    uint64_t nnz = A->rowptr[A->nrows];
    T->ptr = calloc((size_t)A->ncols + 1, sizeof *T->ptr);
    T->row = malloc((nnz ? nnz : 1) * sizeof *T->row);
    T->val = malloc((nnz ? nnz : 1) * sizeof *T->val);
    if (!T->ptr || !T->row || !T->val) return -1;
    for (uint64_t k = 0; k < nnz; k++) T->ptr[A->col[k] + 1]++;
    for (uint32_t c = 0; c < A->ncols; c++) T->ptr[c + 1] += T->ptr[c];
    uint64_t *fill = malloc(((size_t)A->ncols + 1) * sizeof *fill);
    if (!fill) return -1;
    memcpy(fill, T->ptr, ((size_t)A->ncols + 1) * sizeof *fill);
    for (uint32_t r = 0; r < A->nrows; r++)
        for (uint64_t k = A->rowptr[r]; k < A->rowptr[r + 1]; k++) {
            uint64_t at = fill[A->col[k]]++;
            T->row[at] = r;
            T->val[at] = A->val[k];
        }
    free(fill);
    return 0;
}

/* Z (cols x l) = A^T Y, Y: rows x l. */
static void spmm_t(const lsa_csr *A, const csr_t *T, const float *Y, int l, float *Z) {
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t c = 0; c < (int64_t)A->ncols; c++) {
        float *z = Z + (size_t)c * (size_t)l;
        memset(z, 0, (size_t)l * sizeof *z);
        for (uint64_t k = T->ptr[c]; k < T->ptr[c + 1]; k++) {
            const float *y = Y + (size_t)T->row[k] * (size_t)l;
            float v = T->val[k];
            for (int j = 0; j < l; j++) z[j] += v * y[j];
        }
    }
}

/* Orthonormalise the columns of M (m x n, row-major) in place. LAPACK is
** column-major: a row-major m x n matrix is its n x m transpose, so QR of
** M goes through a transposed copy. */
static int orth(float *M, int m, int n, float *scratch /* m*n */) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) scratch[(size_t)j * m + i] = M[(size_t)i * n + j];
    int info = 0, lwork = -1;
    float wq;
    float *tau = malloc((size_t)n * sizeof *tau);
    if (!tau) return -1;
    sgeqrf_(&m, &n, scratch, &m, tau, &wq, &lwork, &info);
    lwork = (int)wq + 1;
    float *work = malloc((size_t)lwork * sizeof *work);
    if (!work) { free(tau); return -1; }
    sgeqrf_(&m, &n, scratch, &m, tau, work, &lwork, &info);
    if (!info) sorgqr_(&m, &n, &n, scratch, &m, tau, work, &lwork, &info);
    free(work);
    free(tau);
    if (info) return -1;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) M[(size_t)i * n + j] = scratch[(size_t)j * m + i];
    return 0;
}

plumb_status lsa_train(const lsa_csr *A, int dim, int oversample, int power_iters, uint64_t seed,
                       lsa_model *out) {
    memset(out, 0, sizeof *out);
    if (dim < 1 || oversample < 0 || power_iters < 0)
        return err_set(PLUMB_MISUSE, "lsa: bad parameters");
    int l = dim + oversample;
    if ((uint64_t)l > A->nrows || (uint64_t)l > A->ncols)
        return err_set(PLUMB_MISUSE, "lsa: %d dimensions need at least %d rows and columns "
                       "(have %u x %u)", dim, l, A->nrows, A->ncols);
    int m = (int)A->nrows, n = (int)A->ncols;
    size_t big = (size_t)(m > n ? m : n) * (size_t)l;
    float *Y = malloc((size_t)m * l * sizeof *Y), *Z = malloc((size_t)n * l * sizeof *Z);
    float *S = malloc(big * sizeof *S), *G = calloc((size_t)l * l, sizeof *G);
    float *w = malloc((size_t)l * sizeof *w), *V = NULL;
    csr_t T = {0};
    plumb_status rc = PLUMB_OK;
    if (!Y || !Z || !S || !G || !w || transpose(A, &T)) {
        rc = err_set(PLUMB_NOMEM, "lsa: %zu MB", big * 12 >> 20);
        goto done;
    }
    uint64_t st = seed;
    for (size_t i = 0; i < (size_t)n * l; i++) Z[i] = gauss(&st);
    spmm(A, Z, l, Y);
    for (int q = 0; q < power_iters; q++) {
        if (orth(Y, m, l, S)) { rc = err_set(PLUMB_NOMEM, "lsa: QR failed"); goto done; }
        spmm_t(A, &T, Y, l, Z);
        if (orth(Z, n, l, S)) { rc = err_set(PLUMB_NOMEM, "lsa: QR failed"); goto done; }
        spmm(A, Z, l, Y);
    }
    if (orth(Y, m, l, S)) { rc = err_set(PLUMB_NOMEM, "lsa: QR failed"); goto done; }
    spmm_t(A, &T, Y, l, Z); /* Z = B^T, n x l */
    /* G = B B^T = Z^T Z (l x l). Row-major Z (n x l) is the column-major
    ** l x n matrix Zc, so G = Zc Zc^T: one SYRK (upper triangle). */
    {
        const float one = 1, zero = 0;
        ssyrk_("U", "N", &l, &n, &one, Z, &l, &zero, G, &l);
    }
    {
        int info = 0, lwork = -1, liwork = -1, iw;
        float wq;
        ssyevd_("V", "U", &l, G, &l, w, &wq, &lwork, &iw, &liwork, &info);
        lwork = (int)wq + 1;
        liwork = iw + 1;
        float *work = malloc((size_t)lwork * sizeof *work);
        int *iwork = malloc((size_t)liwork * sizeof *iwork);
        if (work && iwork) ssyevd_("V", "U", &l, G, &l, w, work, &lwork, iwork, &liwork, &info);
        else info = -100;
        free(work);
        free(iwork);
        if (info) { rc = err_set(PLUMB_ERROR, "lsa: eigensolver failed (%d)", info); goto done; }
    }
    /* eigenvalues ascending: the top dim are the last ones. Column c of
    ** U~ is G[c*l .. c*l+l) (column-major). V[:, k] = Z U~[:, c] / s_c. */
    V = calloc((size_t)n * dim, sizeof *V);
    out->sigma = malloc((size_t)dim * sizeof *out->sigma);
    if (!V || !out->sigma) { rc = err_set(PLUMB_NOMEM, "lsa"); goto done; }
    {
        /* Vf = Z U~ (n x l, row-major) == column-major l x n: U~^T Zc */
        const float one = 1, zero = 0;
        sgemm_("T", "N", &l, &n, &l, &one, G, &l, Z, &l, &zero, S, &l);
    }
    for (int k = 0; k < dim; k++) {
        int c = l - 1 - k; /* eigenvalues ascend: the largest come last */
        double sg = w[c] > 0 ? sqrt((double)w[c]) : 0;
        out->sigma[k] = (float)sg;
        if (sg <= 0) continue;
        float inv = (float)(1.0 / sg);
        for (int i = 0; i < n; i++) V[(size_t)i * dim + k] = S[(size_t)i * l + c] * inv;
    }
    out->dim = dim;
    out->ncols = (uint32_t)n;
    out->basis = V;
    V = NULL;
done:
    free(T.ptr);
    free(T.row);
    free(T.val);
    free(Y);
    free(Z);
    free(S);
    free(G);
    free(w);
    free(V);
    if (rc) lsa_model_free(out);
    return rc;
}

void lsa_fold(const lsa_model *m, const uint32_t *cols, const float *vals, size_t n, float *out) {
    memset(out, 0, (size_t)m->dim * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (cols[i] >= m->ncols) continue; /* a term the model never saw */
        const float *v = m->basis + (size_t)cols[i] * m->dim;
        for (int k = 0; k < m->dim; k++) out[k] += vals[i] * v[k];
    }
    double s = 0;
    for (int k = 0; k < m->dim; k++) s += (double)out[k] * out[k];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int k = 0; k < m->dim; k++) out[k] *= inv;
    }
}

void lsa_model_free(lsa_model *m) {
    free(m->basis);
    free(m->sigma);
    memset(m, 0, sizeof *m);
}
