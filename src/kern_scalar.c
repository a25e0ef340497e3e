/*
** kern_scalar.c -- the scalar reference kernels.
**
** What: f32 and int8 inner products, hamming distance, and the one-query
** scans over contiguous rows, in plain C. Every SIMD kernel is tested
** against these (tests/test_kern.c).
** Invariant: f32 sums run left to right in float, as a reader would
** write them; int8 sums are exact in int32 (|a*b| <= 127*128, so d up to
** about 130,000 cannot overflow); binary scores are nbits - 2*hamming.
** Workload: correctness reference and the fallback on CPUs without AVX2;
** the compiler may auto-vectorize at the baseline ISA (SSE2).
*/
#include "plumb_impl.h"

static float dot_f32(const float *a, const float *b, size_t d) {
    float s = 0.0f;
    for (size_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d) {
    int32_t s = 0;
    for (size_t i = 0; i < d; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

static uint64_t hamming(const uint8_t *a, const uint8_t *b, size_t nbytes) {
    uint64_t h = 0;
    for (size_t i = 0; i < nbytes; i++) h += (uint64_t)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return h;
}

static void scan_f32(const float *q, const float *base, size_t n, size_t d, float *scores) {
    for (size_t i = 0; i < n; i++) scores[i] = dot_f32(q, base + i * d, d);
}

/* Several queries: one scan each (the batch driver keeps the rows cached). */
static void scan_f32_multi(const float *qs, size_t nq, const float *base, size_t n, size_t d,
                           float *scores) {
    for (size_t j = 0; j < nq; j++) scan_f32(qs + j * d, base, n, d, scores + j * n);
}

static void scan_i8(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                    size_t n, size_t d, float *scores) {
    for (size_t i = 0; i < n; i++) {
        float s = (float)dot_i8(q, base + i * d, d);
        scores[i] = scales ? qscale * scales[i] * s : s;
    }
}

static void scan_bin(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                     float *scores) {
    double nbits = (double)nbytes * 8.0;
    for (size_t i = 0; i < n; i++)
        scores[i] = (float)(nbits - 2.0 * (double)hamming(q, base + i * nbytes, nbytes));
}

void kern_scalar_ops(kern_ops *ops) {
    ops->desc = "scalar";
    ops->dot_f32 = dot_f32;
    ops->dot_i8 = dot_i8;
    ops->hamming = hamming;
    ops->scan_f32 = scan_f32;
    ops->scan_f32_multi = scan_f32_multi;
    ops->scan_i8 = scan_i8;
    ops->scan_bin = scan_bin;
}
