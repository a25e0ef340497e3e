/*
** test_lsa.c -- the randomized truncated SVD against LAPACK's exact SVD
** (sgesdd) of the same matrix, on a sparse matrix of known low rank plus
** noise: singular values, orthonormal term basis, fold-in.
*/
#include "check.h"
#include "plumb_impl.h"

#include <math.h>

void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s,
             float *u, const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork,
             int *iwork, int *info);

static uint64_t rng = 12345;
static double rnd01(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

int main(void) {
    enum { M = 400, N = 300, R = 12, D = 12 };
    /* dense low-rank matrix with decaying singular values, then sparsified
    ** by keeping entries above a threshold (a sparse, nearly low-rank A) */
    static float U[M][R], V[N][R], A[M][N];
    for (int i = 0; i < M; i++) for (int r = 0; r < R; r++) U[i][r] = (float)(rnd01() - 0.5);
    for (int j = 0; j < N; j++) for (int r = 0; r < R; r++) V[j][r] = (float)(rnd01() - 0.5);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int r = 0; r < R; r++) a += U[i][r] * V[j][r] * pow(0.8, r) * 10;
            A[i][j] = fabs(a) > 0.3 ? (float)a : 0.0f;
        }
    lsa_csr csr = {M, N, calloc(M + 1, sizeof(uint64_t)), malloc(sizeof(uint32_t) * M * N),
                   malloc(sizeof(float) * M * N)};
    uint64_t nz = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++)
            if (A[i][j] != 0) { csr.col[nz] = (uint32_t)j; csr.val[nz] = A[i][j]; nz++; }
        csr.rowptr[i + 1] = nz;
    }
    CHECK(nz > (uint64_t)M * N / 5 && nz < (uint64_t)M * N);

    /* exact singular values: LAPACK on the column-major copy */
    float *Ac = malloc(sizeof(float) * M * N), s[N], work1;
    for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) Ac[(size_t)j * M + i] = A[i][j];
    int m = M, n = N, lw = -1, info = 0, one = 1, iw[8 * N];
    sgesdd_("N", &m, &n, Ac, &m, s, NULL, &one, NULL, &one, &work1, &lw, iw, &info);
    lw = (int)work1 + 1;
    float *work = malloc(sizeof(float) * (size_t)lw);
    sgesdd_("N", &m, &n, Ac, &m, s, NULL, &one, NULL, &one, work, &lw, iw, &info);
    CHECK(info == 0);

    lsa_model mdl;
    CHECK_OK(lsa_train(&csr, D, 10, 2, 7, &mdl));
    for (int k = 0; k < D; k++) {
        if (fabs(mdl.sigma[k] - s[k]) > 1e-3 * s[0])
            fprintf(stderr, "sigma[%d] = %g, exact %g\n", k, mdl.sigma[k], s[k]);
        CHECK(fabs(mdl.sigma[k] - s[k]) <= 1e-3 * s[0]);
    }
    /* V has orthonormal columns */
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double dot = 0;
            for (int j = 0; j < N; j++) dot += (double)mdl.basis[j * D + a] * mdl.basis[j * D + b];
            CHECK(fabs(dot - (a == b)) < 1e-3);
        }
    /* fold-in gives unit vectors; a row and its copy agree; unknown terms ignored */
    float v1[D], v2[D];
    lsa_fold(&mdl, csr.col + csr.rowptr[5], csr.val + csr.rowptr[5],
             csr.rowptr[6] - csr.rowptr[5], v1);
    uint32_t cols[3] = {csr.col[csr.rowptr[5]], 999999, csr.col[csr.rowptr[5]]};
    float vals[3] = {1, 5, 1};
    lsa_fold(&mdl, cols, vals, 3, v2);
    double n1 = 0, n2 = 0;
    for (int k = 0; k < D; k++) { n1 += v1[k] * v1[k]; n2 += v2[k] * v2[k]; }
    CHECK(fabs(n1 - 1) < 1e-5 && fabs(n2 - 1) < 1e-5);
    /* determinism */
    lsa_model m2;
    CHECK_OK(lsa_train(&csr, D, 10, 2, 7, &m2));
    CHECK(!memcmp(m2.basis, mdl.basis, sizeof(float) * N * D));
    lsa_model_free(&m2);
    /* too few rows for the dimensions: a clear misuse */
    lsa_model m3;
    CHECK_RC(lsa_train(&csr, 500, 10, 1, 7, &m3), PLUMB_MISUSE);
    lsa_model_free(&mdl);
    free(work); free(Ac); free(csr.rowptr); free(csr.col); free(csr.val);
    return CHECK_DONE();
}
