/*
** kern_avx512.c -- AVX-512 kernels (compiled with -mavx512f -mavx512bw
** -mavx512vl -mfma -mpopcnt).
**
** What: the kern_ops table for CPUs with AVX-512F/BW/VL. The int8 kernels
** use VNNI (vpdpbusd) and the binary kernels VPOPCNTDQ when the CPU has
** them: those functions carry their own target attribute rather than a
** file-wide flag, so the compiler cannot slip a VNNI or VPOPCNTDQ
** instruction into the code that runs on CPUs without them. kern.c
** installs this table only after the run-time check.
** Invariant: unaligned loads; tails use masked loads (masked-off lanes
** neither fault nor read memory), so nothing touches bytes past the end.
** VNNI multiplies unsigned by signed bytes: a signed query byte a is fed
** as a+128 (a ^ 0x80) and 128 * sum(b) is subtracted, which is exact.
** Workload: the one-query scan over many rows of 384..1024 dims
** (memory-bound): rows are scored one after another in a single stream.
*/
#include "plumb_impl.h"

/* Other architectures compile this file to nothing (kern.c never asks). */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

static inline __mmask16 tail16(size_t r) { return (__mmask16)((1u << r) - 1u); }
static inline __mmask64 tail64(size_t r) { return r >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << r) - 1); }

/* The summation order of every f32 kernel in this file: two accumulators
** over alternating 16-float chunks, the masked tail into the second.
** scan_f32_multi repeats it exactly, so a row's score is the same bits
** whichever kernel computed it. */
static float dot_f32(const float *a, const float *b, size_t d) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= d) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < d) {
        __mmask16 m = tail16(d - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void scan_f32(const float *q, const float *base, size_t n, size_t d, float *scores) {
    /* Row after row, one sequential stream: measured on Zen 4, scoring
    ** four rows at once (sharing query loads) ran at ~12 GB/s from DRAM,
    ** this at ~20 GB/s; the query stays in L1 either way. */
    for (size_t i = 0; i < n; i++) scores[i] = dot_f32(q, base + i * d, d);
}

/* Four queries x two rows per step (16 accumulators): each row load feeds
** four FMAs and each query load two, where a single-query scan needs two
** loads per FMA; Zen 4 issues one 512-bit load per cycle, so this is what
** bounds a batch whose rows sit in L2. */
static void scan_f32_multi(const float *qs, size_t nq, const float *base, size_t n, size_t d,
                           float *scores) {
    size_t j = 0;
    for (; j + 4 <= nq; j += 4) {
        const float *q[4] = {qs + j * d, qs + (j + 1) * d, qs + (j + 2) * d, qs + (j + 3) * d};
        float *o[4] = {scores + j * n, scores + (j + 1) * n, scores + (j + 2) * n, scores + (j + 3) * n};
        size_t r = 0;
        for (; r + 2 <= n; r += 2) {
            const float *x0 = base + r * d, *x1 = x0 + d;
            __m512 a[4][2][2];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                a[k][0][0] = a[k][0][1] = a[k][1][0] = a[k][1][1] = _mm512_setzero_ps();
            size_t i = 0;
            for (; i + 32 <= d; i += 32) {
                __m512 x00 = _mm512_loadu_ps(x0 + i), x01 = _mm512_loadu_ps(x0 + i + 16);
                __m512 x10 = _mm512_loadu_ps(x1 + i), x11 = _mm512_loadu_ps(x1 + i + 16);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m512 v0 = _mm512_loadu_ps(q[k] + i), v1 = _mm512_loadu_ps(q[k] + i + 16);
                    a[k][0][0] = _mm512_fmadd_ps(v0, x00, a[k][0][0]);
                    a[k][0][1] = _mm512_fmadd_ps(v1, x01, a[k][0][1]);
                    a[k][1][0] = _mm512_fmadd_ps(v0, x10, a[k][1][0]);
                    a[k][1][1] = _mm512_fmadd_ps(v1, x11, a[k][1][1]);
                }
            }
            if (i + 16 <= d) {
                __m512 x00 = _mm512_loadu_ps(x0 + i), x10 = _mm512_loadu_ps(x1 + i);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m512 v0 = _mm512_loadu_ps(q[k] + i);
                    a[k][0][0] = _mm512_fmadd_ps(v0, x00, a[k][0][0]);
                    a[k][1][0] = _mm512_fmadd_ps(v0, x10, a[k][1][0]);
                }
                i += 16;
            }
            if (i < d) {
                __mmask16 m = tail16(d - i);
                __m512 x01 = _mm512_maskz_loadu_ps(m, x0 + i), x11 = _mm512_maskz_loadu_ps(m, x1 + i);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m512 v1 = _mm512_maskz_loadu_ps(m, q[k] + i);
                    a[k][0][1] = _mm512_fmadd_ps(v1, x01, a[k][0][1]);
                    a[k][1][1] = _mm512_fmadd_ps(v1, x11, a[k][1][1]);
                }
            }
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                o[k][r] = _mm512_reduce_add_ps(_mm512_add_ps(a[k][0][0], a[k][0][1]));
                o[k][r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a[k][1][0], a[k][1][1]));
            }
        }
        for (; r < n; r++)
            for (int k = 0; k < 4; k++) o[k][r] = dot_f32(q[k], base + r * d, d);
    }
    for (; j < nq; j++) scan_f32(qs + j * d, base, n, d, scores + j * n);
}

/* --- int8 without VNNI: widen to int16, madd into int32 --- */

static int32_t dot_i8_bw(const int8_t *a, const int8_t *b, size_t d) {
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512i a0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i b0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        __m512i a1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i + 32)));
        __m512i b1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i + 32)));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
        s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(a1, b1));
    }
    for (; i < d; i += 32) {
        size_t r = d - i;
        __mmask32 m = r >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << r) - 1u);
        __m512i a0 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i b0 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

static void scan_i8_bw(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                       size_t n, size_t d, float *scores) {
    for (size_t i = 0; i < n; i++) {
        float s = (float)dot_i8_bw(q, base + i * d, d);
        scores[i] = scales ? qscale * scales[i] * s : s;
    }
}

/* --- int8 with VNNI --- */

#define VNNI __attribute__((target("avx512vnni")))

VNNI static int32_t dot_i8_vnni(const int8_t *a, const int8_t *b, size_t d) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i p0 = _mm512_setzero_si512(), p1 = _mm512_setzero_si512();
    __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= d; i += 128) {
        __m512i b0 = _mm512_loadu_si512(b + i), b1 = _mm512_loadu_si512(b + i + 64);
        p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(_mm512_loadu_si512(a + i), flip), b0);
        p1 = _mm512_dpbusd_epi32(p1, _mm512_xor_si512(_mm512_loadu_si512(a + i + 64), flip), b1);
        c0 = _mm512_dpbusd_epi32(c0, ones, b0);
        c1 = _mm512_dpbusd_epi32(c1, ones, b1);
    }
    for (; i < d; i += 64) {
        __mmask64 m = tail64(d - i);
        __m512i bv = _mm512_maskz_loadu_epi8(m, b + i);
        p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), flip), bv);
        c0 = _mm512_dpbusd_epi32(c0, ones, bv);
    }
    /* sum((a+128)*b) - 128*sum(b), lane by lane, then one reduction. */
    __m512i p = _mm512_add_epi32(p0, p1), c = _mm512_add_epi32(c0, c1);
    return _mm512_reduce_add_epi32(_mm512_sub_epi32(p, _mm512_slli_epi32(c, 7)));
}

/* Row after row in one stream (see scan_f32). */
VNNI static void scan_i8_vnni(const int8_t *q, float qscale, const int8_t *base,
                              const float *scales, size_t n, size_t d, float *scores) {
    for (size_t i = 0; i < n; i++) {
        float s = (float)dot_i8_vnni(q, base + i * d, d);
        scores[i] = scales ? qscale * scales[i] * s : s;
    }
}

/* --- binary --- */

/* Without VPOPCNTDQ: nibble lookup (vpshufb) and vpsadbw. */
static uint64_t hamming_bw(const uint8_t *a, const uint8_t *b, size_t nbytes) {
    const __m512i lut = _mm512_set4_epi32(0x04030302, 0x03020201, 0x03020201, 0x02010100);
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512i acc = _mm512_setzero_si512();
    for (size_t i = 0; i < nbytes; i += 64) {
        __mmask64 m = tail64(nbytes - i);
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i),
                                     _mm512_maskz_loadu_epi8(m, b + i));
        __m512i lo = _mm512_and_si512(x, low);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
        __m512i c = _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
        acc = _mm512_add_epi64(acc, _mm512_sad_epu8(c, _mm512_setzero_si512()));
    }
    return (uint64_t)_mm512_reduce_add_epi64(acc);
}

#define VPOPCNT __attribute__((target("avx512vpopcntdq")))

VPOPCNT static uint64_t hamming_vpop(const uint8_t *a, const uint8_t *b, size_t nbytes) {
    __m512i acc = _mm512_setzero_si512();
    for (size_t i = 0; i < nbytes; i += 64) {
        __mmask64 m = tail64(nbytes - i);
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i),
                                     _mm512_maskz_loadu_epi8(m, b + i));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
    }
    return (uint64_t)_mm512_reduce_add_epi64(acc);
}

/* Short codes (384 bits = 48 bytes) are one masked load each: the scan
** calls the kernel per row. */
static void scan_bin_bw(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                        float *scores) {
    double nbits = (double)nbytes * 8.0;
    for (size_t i = 0; i < n; i++)
        scores[i] = (float)(nbits - 2.0 * (double)hamming_bw(q, base + i * nbytes, nbytes));
}

VPOPCNT static void scan_bin_vpop(const uint8_t *q, const uint8_t *base, size_t n,
                                  size_t nbytes, float *scores) {
    double nbits = (double)nbytes * 8.0;
    for (size_t i = 0; i < n; i++)
        scores[i] = (float)(nbits - 2.0 * (double)hamming_vpop(q, base + i * nbytes, nbytes));
}

void kern_avx512_ops(kern_ops *ops, int vnni, int vpopcntdq) {
    static const char *const desc[4] = {"avx512", "avx512+vnni", "avx512+vpopcntdq",
                                        "avx512+vnni+vpopcntdq"};
    ops->desc = desc[(vnni ? 1 : 0) + (vpopcntdq ? 2 : 0)];
    ops->dot_f32 = dot_f32;
    ops->dot_i8 = vnni ? dot_i8_vnni : dot_i8_bw;
    ops->hamming = vpopcntdq ? hamming_vpop : hamming_bw;
    ops->scan_f32 = scan_f32;
    ops->scan_f32_multi = scan_f32_multi;
    ops->scan_i8 = vnni ? scan_i8_vnni : scan_i8_bw;
    ops->scan_bin = vpopcntdq ? scan_bin_vpop : scan_bin_bw;
}

#endif /* x86 */
