/*
** kern.c -- run-time ISA dispatch, quantization and top-k scans.
**
** What: chooses the kernel table once (the best ISA the CPU and OS
** support, or PLUMB_ISA=scalar|avx2|avx512 when supported), and builds on
** it: int8/binary quantization, bounded-heap top-k scans with an optional
** allowed-row bitset, f32 rescoring of candidates, and OpenMP variants
** (rows split across threads; many queries in parallel).
** Invariant: top-k output is sorted by score descending then row
** ascending, so every ISA and thread count returns the same list when the
** scores agree; a filtered row never takes a heap slot (the filter is
** applied during the scan, before truncation).
** Workload: one query over 10^4..10^7 rows of a few hundred dims; k is
** small (10..1000). Rows are scored in blocks of 64 (one bitset word) and
** a row enters the heap only when it beats the current k-th score, so
** the heap costs O(n + k log k log n) in the usual case.
**
** ISA detection: __builtin_cpu_supports reads CPUID and, for AVX and
** AVX-512, also checks through XGETBV that the OS saves the wider
** registers, so a feature it reports is usable.
*/
#include "plumb_impl.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static kern_ops ops_table[KERN_ISA_COUNT];
static int ops_ok[KERN_ISA_COUNT];
static const kern_ops *ops;
static kern_isa ops_isa;
static pthread_once_t ops_once = PTHREAD_ONCE_INIT;

static void ops_init(void) {
    __builtin_cpu_init();
    kern_scalar_ops(&ops_table[KERN_SCALAR]);
    ops_ok[KERN_SCALAR] = 1;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("popcnt")) {
        kern_avx2_ops(&ops_table[KERN_AVX2]);
        ops_ok[KERN_AVX2] = 1;
    }
    if (ops_ok[KERN_AVX2] && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        kern_avx512_ops(&ops_table[KERN_AVX512], !!__builtin_cpu_supports("avx512vnni"),
                        !!__builtin_cpu_supports("avx512vpopcntdq"));
        ops_ok[KERN_AVX512] = 1;
    }
#endif
    ops_isa = KERN_SCALAR;
    for (int i = KERN_ISA_COUNT - 1; i >= 0; i--)
        if (ops_ok[i]) {
            ops_isa = (kern_isa)i;
            break;
        }
    const char *env = getenv("PLUMB_ISA");
    if (env && *env) {
        for (int i = 0; i < KERN_ISA_COUNT; i++)
            if (strcmp(env, kern_isa_name((kern_isa)i)) == 0 && ops_ok[i]) ops_isa = (kern_isa)i;
    }
    ops = &ops_table[ops_isa];
}

static inline const kern_ops *K(void) {
    pthread_once(&ops_once, ops_init);
    return ops;
}

const char *kern_isa_name(kern_isa isa) {
    switch (isa) {
    case KERN_SCALAR: return "scalar";
    case KERN_AVX2: return "avx2";
    case KERN_AVX512: return "avx512";
    default: return "?";
    }
}

int kern_isa_supported(kern_isa isa) {
    K();
    return (int)isa >= 0 && isa < KERN_ISA_COUNT && ops_ok[isa];
}

kern_isa kern_isa_active(void) {
    K();
    return ops_isa;
}

int kern_isa_set(kern_isa isa) {
    if (!kern_isa_supported(isa)) return -1;
    ops_isa = isa;
    ops = &ops_table[isa];
    return 0;
}

const char *kern_isa_desc(void) { return K()->desc; }

float kern_dot_f32(const float *a, const float *b, size_t d) { return K()->dot_f32(a, b, d); }
int32_t kern_dot_i8(const int8_t *a, const int8_t *b, size_t d) { return K()->dot_i8(a, b, d); }
uint64_t kern_hamming(const uint8_t *a, const uint8_t *b, size_t nbytes) {
    return K()->hamming(a, b, nbytes);
}

void kern_scan_f32(const float *q, const float *base, size_t n, size_t d, float *scores) {
    K()->scan_f32(q, base, n, d, scores);
}
void kern_scan_i8(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                  size_t n, size_t d, float *scores) {
    K()->scan_i8(q, qscale, base, scales, n, d, scores);
}
void kern_scan_bin(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                   float *scores) {
    K()->scan_bin(q, base, n, nbytes, scores);
}

float kern_quantize_i8(const float *x, size_t d, int8_t *out) {
    float m = 0.0f;
    for (size_t i = 0; i < d; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > m) m = a;
    }
    if (!(m > 0.0f)) {
        memset(out, 0, d);
        return 0.0f;
    }
    float scale = m / 127.0f, inv = 127.0f / m;
    for (size_t i = 0; i < d; i++) {
        float v = x[i] * inv;
        int r = (int)(v < 0 ? v - 0.5f : v + 0.5f);
        out[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    return scale;
}

void kern_binarize(const float *x, size_t d, uint8_t *out) {
    memset(out, 0, (d + 7) / 8);
    for (size_t i = 0; i < d; i++)
        if (x[i] > 0.0f) out[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* ---------------------------------------------------------------------
** Top-k. The heap is a min-heap on "worse": its root is the hit a better
** one replaces. Ties on score go to the lower row, so results do not
** depend on the order rows were scanned in.
** ------------------------------------------------------------------- */

static inline int worse(kern_hit a, kern_hit b) {
    return a.score < b.score || (a.score == b.score && a.row > b.row);
}

typedef struct heap {
    kern_hit *h;
    size_t n, k;
} heap;

static void heap_push(heap *hp, kern_hit x) {
    kern_hit *h = hp->h;
    if (hp->n < hp->k) {
        size_t i = hp->n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!worse(x, h[p])) break;
            h[i] = h[p];
            i = p;
        }
        h[i] = x;
        return;
    }
    if (!worse(h[0], x)) return;
    size_t i = 0, n = hp->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && worse(h[c + 1], h[c])) c++;
        if (!worse(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int hit_cmp(const void *pa, const void *pb) {
    const kern_hit *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->row < b->row ? -1 : a->row > b->row;
}

static size_t heap_finish(heap *hp) {
    qsort(hp->h, hp->n, sizeof *hp->h, hit_cmp);
    return hp->n;
}

/* Scores rows [row, row+nrows) into scores. */
typedef struct scan_ctx {
    const kern_ops *o;
    int type; /* 0 f32, 1 i8, 2 bin */
    const void *q, *base;
    const float *scales;
    float qscale;
    size_t d; /* elements (f32, i8) or bytes (bin) per row */
} scan_ctx;

static void score_rows(const scan_ctx *c, size_t row, size_t nrows, float *scores) {
    switch (c->type) {
    case 0:
        c->o->scan_f32(c->q, (const float *)c->base + row * c->d, nrows, c->d, scores);
        break;
    case 1:
        c->o->scan_i8(c->q, c->qscale, (const int8_t *)c->base + row * c->d,
                      c->scales ? c->scales + row : NULL, nrows, c->d, scores);
        break;
    default:
        c->o->scan_bin(c->q, (const uint8_t *)c->base + row * c->d, nrows, c->d, scores);
        break;
    }
}

/* Rows [lo, hi), lo a multiple of 64, into hp (not yet sorted). */
static void topk_range(const scan_ctx *c, size_t lo, size_t hi, const uint64_t *allow,
                       heap *hp) {
    float sc[64];
    for (size_t b = lo; b < hi; b += 64) {
        size_t nr = hi - b < 64 ? hi - b : 64;
        uint64_t w = nr == 64 ? ~(uint64_t)0 : (((uint64_t)1 << nr) - 1);
        if (allow) w &= allow[b / 64];
        if (w == 0) continue;
        if (~w != 0 && __builtin_popcountll(w) < 16) {
            /* Sparse word: score only the allowed rows. */
            while (w) {
                size_t j = (size_t)__builtin_ctzll(w);
                w &= w - 1;
                score_rows(c, b + j, 1, sc);
                heap_push(hp, (kern_hit){sc[0], (uint32_t)(b + j)});
            }
            continue;
        }
        score_rows(c, b, nr, sc);
        float floor = hp->n == hp->k ? hp->h[0].score : -__builtin_inff();
        for (size_t j = 0; j < nr; j++)
            if ((w >> j & 1) && sc[j] >= floor) {
                heap_push(hp, (kern_hit){sc[j], (uint32_t)(b + j)});
                if (hp->n == hp->k) floor = hp->h[0].score;
            }
    }
}

static size_t topk(const scan_ctx *c, size_t n, const uint64_t *allow, size_t k,
                   kern_hit *out) {
    if (k == 0 || n == 0) return 0;
    heap hp = {out, 0, k};
    topk_range(c, 0, n, allow, &hp);
    return heap_finish(&hp);
}

size_t kern_topk_f32(const float *q, const float *base, size_t n, size_t d,
                     const uint64_t *allow, size_t k, kern_hit *out) {
    scan_ctx c = {K(), 0, q, base, NULL, 0.0f, d};
    return topk(&c, n, allow, k, out);
}

size_t kern_topk_i8(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                    size_t n, size_t d, const uint64_t *allow, size_t k, kern_hit *out) {
    scan_ctx c = {K(), 1, q, base, scales, qscale, d};
    return topk(&c, n, allow, k, out);
}

size_t kern_topk_bin(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                     const uint64_t *allow, size_t k, kern_hit *out) {
    scan_ctx c = {K(), 2, q, base, NULL, 0.0f, nbytes};
    return topk(&c, n, allow, k, out);
}

size_t kern_topk_f32_par(const float *q, const float *base, size_t n, size_t d,
                         const uint64_t *allow, size_t k, kern_hit *out, int nthreads) {
    if (k == 0 || n == 0) return 0;
    int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    size_t blocks = (n + 63) / 64;
    if ((size_t)nt > blocks) nt = (int)blocks;
    if (nt <= 1) return kern_topk_f32(q, base, n, d, allow, k, out);
    if (k > SIZE_MAX / sizeof(kern_hit) / (size_t)nt) return 0;
    kern_hit *loc = malloc((size_t)nt * k * sizeof *loc);
    size_t *cnt = calloc((size_t)nt, sizeof *cnt);
    if (!loc || !cnt) {
        free(loc);
        free(cnt);
        return 0;
    }
    scan_ctx c = {K(), 0, q, base, NULL, 0.0f, d};
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        size_t lo = blocks * (size_t)t / (size_t)T * 64, hi = blocks * (size_t)(t + 1) / (size_t)T * 64;
        if (hi > n) hi = n;
        heap hp = {loc + (size_t)t * k, 0, k};
        if (lo < hi) topk_range(&c, lo, hi, allow, &hp);
        cnt[t] = hp.n;
    }
    heap hp = {out, 0, k};
    for (int t = 0; t < nt; t++)
        for (size_t i = 0; i < cnt[t]; i++) heap_push(&hp, loc[(size_t)t * k + i]);
    free(loc);
    free(cnt);
    return heap_finish(&hp);
}

/* Scores sc[0..nb) of rows b.. into the heap, skipping filtered rows. */
static void push_block(heap *hp, const float *sc, size_t b, size_t nb, const uint64_t *allow) {
    float floor = hp->n == hp->k ? hp->h[0].score : -__builtin_inff();
    for (size_t j = 0; j < nb; j++) {
        size_t row = b + j;
        if (allow && !(allow[row / 64] >> (row % 64) & 1)) continue;
        if (sc[j] >= floor) {
            heap_push(hp, (kern_hit){sc[j], (uint32_t)row});
            if (hp->n == hp->k) floor = hp->h[0].score;
        }
    }
}

#define BATCH_GROUP 16 /* queries scored together against a row block */

/* Many queries: the rows are cut into L2-sized blocks and groups of
** queries score a block while it is in cache (scan_f32_multi shares each
** row load among four queries), so DRAM is read once for the whole batch;
** threads take disjoint row ranges and keep their own heaps, merged per
** query at the end. A filter is applied row by row here: unlike the
** single-query scan, filtered rows are scored before being skipped. */
void kern_topk_f32_batch(const float *qs, size_t nq, const float *base, size_t n, size_t d,
                         const uint64_t *allow, size_t k, kern_hit *out, size_t *nout,
                         int nthreads) {
    if (nq == 0) return;
    if (k == 0 || n == 0) {
        memset(nout, 0, nq * sizeof *nout);
        return;
    }
    const kern_ops *o = K();
    int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
    size_t blocks = (n + 63) / 64;
    if ((size_t)nt > blocks) nt = (int)blocks;
    if (nt < 1) nt = 1;
    /* Rows per block: about 256 KiB of vectors, a multiple of 64. */
    size_t rows = (256u << 10) / (d * sizeof(float) + 1) / 64 * 64;
    if (rows < 64) rows = 64;
    if (rows > 4096) rows = 4096;
    kern_hit *loc = NULL;
    size_t *cnt = NULL;
    float *scb = NULL;
    if (nq <= SIZE_MAX / k / (size_t)nt / sizeof *loc) {
        loc = malloc((size_t)nt * nq * k * sizeof *loc);
        cnt = calloc((size_t)nt * nq, sizeof *cnt);
        scb = malloc((size_t)nt * BATCH_GROUP * rows * sizeof *scb);
    }
    if (!loc || !cnt || !scb) {
        /* No memory for per-thread heaps: one query at a time. */
        free(loc);
        free(cnt);
        free(scb);
        for (size_t i = 0; i < nq; i++)
            nout[i] = kern_topk_f32(qs + i * d, base, n, d, allow, k, out + i * k);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        size_t lo = blocks * (size_t)t / (size_t)T * 64, hi = blocks * (size_t)(t + 1) / (size_t)T * 64;
        if (hi > n) hi = n;
        kern_hit *mine = loc + (size_t)t * nq * k;
        size_t *mcnt = cnt + (size_t)t * nq;
        float *sc = scb + (size_t)t * BATCH_GROUP * rows;
        for (size_t b = lo; b < hi; b += rows) {
            size_t nb = b + rows < hi ? rows : hi - b;
            for (size_t g = 0; g < nq; g += BATCH_GROUP) {
                size_t gn = nq - g < BATCH_GROUP ? nq - g : BATCH_GROUP;
                o->scan_f32_multi(qs + g * d, gn, base + b * d, nb, d, sc);
                for (size_t i = 0; i < gn; i++) {
                    heap hp = {mine + (g + i) * k, mcnt[g + i], k};
                    push_block(&hp, sc + i * nb, b, nb, allow);
                    mcnt[g + i] = hp.n;
                }
            }
        }
    }
    for (size_t i = 0; i < nq; i++) {
        heap hp = {out + i * k, 0, k};
        for (int t = 0; t < nt; t++) {
            const kern_hit *h = loc + ((size_t)t * nq + i) * k;
            for (size_t j = 0; j < cnt[(size_t)t * nq + i]; j++) heap_push(&hp, h[j]);
        }
        nout[i] = heap_finish(&hp);
    }
    free(loc);
    free(cnt);
    free(scb);
}

size_t kern_rescore_f32(const float *q, const float *base, size_t d, const kern_hit *cand,
                        size_t ncand, size_t k, kern_hit *out) {
    if (k == 0) return 0;
    const kern_ops *o = K();
    heap hp = {out, 0, k};
    for (size_t i = 0; i < ncand; i++) {
        size_t r = cand[i].row;
        float s;
        o->scan_f32(q, base + r * d, 1, d, &s); /* the very score a scan gives */
        heap_push(&hp, (kern_hit){s, cand[i].row});
    }
    return heap_finish(&hp);
}
