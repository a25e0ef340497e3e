/*
** vec_bench.c -- exact vector scan speed against memory bandwidth and
** against FAISS, on synthetic clustered vectors.
**
**   vec_bench [--n N] [--queries Q] [--threads T] [--seed S] [--hnsw H]
**             [--no-faiss]
**
** Builds N x 384 unit vectors (default N = 1,000,000) around 1,000
** Gaussian centroids from a fixed seed (each row from its own seeded
** generator, so the data do not depend on the thread count), and Q
** (default 30) fresh queries from the same clusters. Measured in the same
** run, one thread unless said:
**   copy      STREAM-like copy bandwidth (c[i] = a[i], 2 x 512 MiB,
**             counted as bytes read + written, best of 5) and a read-only
**             pass, for reference
**   f32       exact top-10 scan (kern_topk_f32): GB/s read and % of copy
**   int8      int8 top-C scan + f32 rescoring: speedup and recall@10
**   binary    sign-bit top-C scan + f32 rescoring: speedup and recall@10
**   faiss     FAISS IndexFlatIP (through src/ann.c), single queries, and
**             the whole query set in one call (BLAS), vs the f32 scan
**   par       the f32 scan split over T threads (default 2)
**   batch     all Q queries in one cache-blocked pass (kern_topk_f32_batch)
**   hnsw      FAISS HNSW32 on the first H rows (default 100,000; 0: skip),
**             built with T threads: recall@10 against the exact top-10 of
**             those rows and single-query latency at efSearch 16..256
** Times are medians over the queries. One JSON line per result.
** Verification (exit 1 on failure): the f32 top-10 of the first queries
** equals the scalar reference kernel's; the threaded scan equals the
** single-threaded one; FAISS returns the same top-10 (recall >= 0.99,
** near-ties aside); int8 + rescoring reaches recall@10 >= 0.99.
*/
#include "plumb_impl.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PLUMB_GIT_COMMIT
#define PLUMB_GIT_COMMIT "unknown"
#endif

#define D 384
#define NCENT 1000
#define K 10

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct rng {
    uint64_t s;
} rng;
static uint64_t rnext(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rgauss(rng *r) {
    double u = ((double)(rnext(r) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(rnext(r) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* Row i of the collection (or query i when q): centroid + noise, unit norm. */
static void gen_vec(const float *cent, uint64_t seed, uint64_t i, int q, float *v) {
    rng r = {seed ^ (i * 0xd1342543de82ef95ull) ^ (q ? 0x5555555555555555ull : 0)};
    rnext(&r);
    const float *c = cent + (rnext(&r) % NCENT) * D;
    float nn = 0;
    for (int j = 0; j < D; j++) {
        v[j] = c[j] + 0.6f * rgauss(&r);
        nn += v[j] * v[j];
    }
    float inv = 1.0f / sqrtf(nn);
    for (int j = 0; j < D; j++) v[j] *= inv;
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *t, size_t n) {
    qsort(t, n, sizeof *t, dcmp);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Share of the exact top-K rows found in got (K entries). */
static double overlap_rows(const kern_hit *exact, const int64_t *got, size_t ngot) {
    size_t h = 0;
    for (size_t i = 0; i < ngot; i++)
        for (size_t j = 0; j < K; j++) h += got[i] == (int64_t)exact[j].row;
    return (double)h / K;
}
static double overlap_hits(const kern_hit *exact, const kern_hit *got, size_t ngot) {
    int64_t g[K];
    for (size_t i = 0; i < ngot && i < K; i++) g[i] = got[i].row;
    return overlap_rows(exact, g, ngot < K ? ngot : K);
}

static char common[512];

int main(int argc, char **argv) {
    size_t n = 1000000, nq = 30;
    int threads = 2, use_faiss = 1;
    size_t hnsw_n = 100000;
    uint64_t seed = 20261124;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc) nq = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--hnsw") && i + 1 < argc) hnsw_n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--no-faiss")) use_faiss = 0;
        else {
            fprintf(stderr, "usage: vec_bench [--n N] [--queries Q] [--threads T] [--seed S] [--hnsw H] [--no-faiss]\n");
            return 2;
        }
    }
    if (n < 1000 || n > 100000000 || nq < 1) {
        fprintf(stderr, "vec_bench: --n must be in 1000..1e8, --queries >= 1\n");
        return 2;
    }
    int fail = 0;
    snprintf(common, sizeof common,
             "\"commit\":\"%s\",\"isa\":\"%s\",\"dataset\":\"synth-clustered-%zux%d-seed%llu\"",
             PLUMB_GIT_COMMIT, kern_isa_desc(), n, D, (unsigned long long)seed);

    /* --- data --- */
    double t0 = now();
    float *cent = malloc((size_t)NCENT * D * sizeof *cent);
    float *base = malloc(n * D * sizeof *base), *qs = malloc(nq * D * sizeof *qs);
    int8_t *b8 = malloc(n * D), *q8 = malloc(nq * D);
    uint8_t *bb = malloc(n * D / 8), *qb = malloc(nq * D / 8);
    float *scl = malloc(n * sizeof *scl), *qscl = malloc(nq * sizeof *qscl);
    if (!cent || !base || !qs || !b8 || !q8 || !bb || !qb || !scl || !qscl) {
        fprintf(stderr, "vec_bench: out of memory\n");
        return 1;
    }
    rng cr = {seed};
    for (size_t i = 0; i < (size_t)NCENT * D; i++) cent[i] = rgauss(&cr);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float *v = base + (size_t)i * D;
        gen_vec(cent, seed, (uint64_t)i, 0, v);
        scl[i] = kern_quantize_i8(v, D, b8 + (size_t)i * D);
        kern_binarize(v, D, bb + (size_t)i * D / 8);
    }
    for (size_t i = 0; i < nq; i++) {
        gen_vec(cent, seed, i, 1, qs + i * D);
        qscl[i] = kern_quantize_i8(qs + i * D, D, q8 + i * D);
        kern_binarize(qs + i * D, D, qb + i * D / 8);
    }
    fprintf(stderr, "vec_bench: generated %zu x %d in %.1f s (%s)\n", n, D, now() - t0, kern_isa_desc());

    /* --- memory bandwidth, one thread --- */
    size_t cn = (size_t)512 << 20 >> 3; /* 512 MiB of uint64 */
    uint64_t *ca = malloc(cn * 8), *cc = malloc(cn * 8);
    if (!ca || !cc) return 1;
    for (size_t i = 0; i < cn; i++) ca[i] = i, cc[i] = 0;
    double best_copy = 1e9, best_read = 1e9;
    uint64_t sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t = now();
        for (size_t i = 0; i < cn; i++) cc[i] = ca[i];
        t = now() - t;
        if (t < best_copy) best_copy = t;
        __asm__ volatile("" : : "r"(cc) : "memory");
        t = now();
        uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
        for (size_t i = 0; i < cn; i += 4) x0 ^= cc[i], x1 ^= cc[i + 1], x2 ^= cc[i + 2], x3 ^= cc[i + 3];
        t = now() - t;
        sink ^= x0 ^ x1 ^ x2 ^ x3;
        if (t < best_read) best_read = t;
    }
    double copy_gbs = 2.0 * (double)cn * 8 / best_copy / 1e9, read_gbs = (double)cn * 8 / best_read / 1e9;
    printf("{\"bench\":\"vec_bandwidth\",%s,\"threads\":1,\"copy_gbs\":%.2f,\"read_gbs\":%.2f,"
           "\"bytes\":%zu,\"check\":%llu}\n",
           common, copy_gbs, read_gbs, cn * 8, (unsigned long long)(sink & 0xffff));
    free(ca);
    free(cc);

    /* --- f32 exact scan --- */
    kern_hit (*exact)[K] = malloc(nq * sizeof *exact);
    kern_hit *cand = malloc(4096 * sizeof *cand), res[K];
    double *tm = malloc(nq * sizeof *tm), *tm2 = malloc(nq * sizeof *tm2);
    uint64_t csum = 1469598103934665603ull;
    for (size_t q = 0; q < nq; q++) {
        double t = now();
        kern_topk_f32(qs + q * D, base, n, D, NULL, K, exact[q]);
        tm[q] = now() - t;
        for (int j = 0; j < K; j++) csum = (csum ^ exact[q][j].row) * 1099511628211ull;
    }
    double f32_t = median(tm, nq), bytes = (double)n * D * 4;
    /* Verification against the scalar reference (first 3 queries). */
    kern_isa isa = kern_isa_active();
    double ref_rec = 0;
    size_t nref = nq < 3 ? nq : 3;
    kern_isa_set(KERN_SCALAR);
    for (size_t q = 0; q < nref; q++) {
        kern_hit r[K];
        kern_topk_f32(qs + q * D, base, n, D, NULL, K, r);
        ref_rec += overlap_hits(r, exact[q], K) / (double)nref;
        for (int j = 0; j < K; j++)
            if (fabsf(r[j].score - exact[q][j].score) > 1e-4f) ref_rec = -1;
    }
    kern_isa_set(isa);
    if (ref_rec < 0.99) fail = 1, fprintf(stderr, "vec_bench: f32 scan disagrees with the scalar reference\n");
    printf("{\"bench\":\"vec_f32_scan\",%s,\"threads\":1,\"n\":%zu,\"d\":%d,\"k\":%d,\"queries\":%zu,"
           "\"ms\":%.2f,\"gbs\":%.2f,\"pct_of_copy\":%.1f,\"pct_of_read\":%.1f,"
           "\"scalar_agreement\":%.3f,\"checksum\":\"%016llx\"}\n",
           common, n, D, K, nq, f32_t * 1e3, bytes / f32_t / 1e9, 100.0 * bytes / f32_t / 1e9 / copy_gbs,
           100.0 * bytes / f32_t / 1e9 / read_gbs, ref_rec, (unsigned long long)csum);

    /* --- int8 + f32 rescoring --- */
    static const size_t c8s[] = {20, 50, 100};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t c8 = c8s[ci];
        double rec = 0;
        for (size_t q = 0; q < nq; q++) {
            double t = now();
            size_t nc = kern_topk_i8(q8 + q * D, qscl[q], b8, scl, n, D, NULL, c8, cand);
            double t1 = now();
            size_t nr = kern_rescore_f32(qs + q * D, base, D, cand, nc, K, res);
            tm[q] = t1 - t;
            tm2[q] = now() - t;
            rec += overlap_hits(exact[q], res, nr) / (double)nq;
        }
        double ts = median(tm, nq), tt = median(tm2, nq);
        printf("{\"bench\":\"vec_int8_scan\",%s,\"threads\":1,\"n\":%zu,\"candidates\":%zu,"
               "\"scan_ms\":%.2f,\"total_ms\":%.2f,\"gbs\":%.2f,\"speedup_vs_f32\":%.2f,"
               "\"speedup_with_rescore\":%.2f,\"recall_at_10\":%.4f}\n",
               common, n, c8, ts * 1e3, tt * 1e3, (double)n * D / ts / 1e9, f32_t / ts, f32_t / tt, rec);
        if (c8 == 100 && rec < 0.99) fail = 1, fprintf(stderr, "vec_bench: int8 recall@10 %.4f < 0.99\n", rec);
    }

    /* --- binary + f32 rescoring --- */
    static const size_t cbs[] = {100, 1000, 4000};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t cb = cbs[ci];
        double rec = 0;
        for (size_t q = 0; q < nq; q++) {
            double t = now();
            size_t nc = kern_topk_bin(qb + q * D / 8, bb, n, D / 8, NULL, cb, cand);
            double t1 = now();
            size_t nr = kern_rescore_f32(qs + q * D, base, D, cand, nc, K, res);
            tm[q] = t1 - t;
            tm2[q] = now() - t;
            rec += overlap_hits(exact[q], res, nr) / (double)nq;
        }
        double ts = median(tm, nq), tt = median(tm2, nq);
        printf("{\"bench\":\"vec_binary_scan\",%s,\"threads\":1,\"n\":%zu,\"candidates\":%zu,"
               "\"scan_ms\":%.2f,\"total_ms\":%.2f,\"speedup_vs_f32\":%.2f,"
               "\"speedup_with_rescore\":%.2f,\"recall_at_10\":%.4f}\n",
               common, n, cb, ts * 1e3, tt * 1e3, f32_t / ts, f32_t / tt, rec);
    }

    /* --- f32 scan over threads --- */
    {
        int same = 1;
        for (size_t q = 0; q < nq; q++) {
            kern_hit r[K];
            double t = now();
            size_t nr = kern_topk_f32_par(qs + q * D, base, n, D, NULL, K, r, threads);
            tm[q] = now() - t;
            if (nr != K || memcmp(r, exact[q], sizeof r) != 0) same = 0;
        }
        double tp = median(tm, nq);
        printf("{\"bench\":\"vec_f32_scan_par\",%s,\"threads\":%d,\"n\":%zu,\"ms\":%.2f,\"gbs\":%.2f,"
               "\"speedup_vs_1\":%.2f,\"same_as_1\":%d}\n",
               common, threads, n, tp * 1e3, bytes / tp / 1e9, f32_t / tp, same);
        if (!same) fail = 1, fprintf(stderr, "vec_bench: threaded scan differs\n");
    }

    /* --- the whole query set in one blocked pass --- */
    double batch_ms = 0;
    {
        kern_hit *bo = malloc(nq * K * sizeof *bo);
        size_t *bn = malloc(nq * sizeof *bn);
        int same = 1;
        double t = now();
        kern_topk_f32_batch(qs, nq, base, n, D, NULL, K, bo, bn, 1);
        batch_ms = (now() - t) * 1e3 / (double)nq;
        for (size_t q = 0; q < nq; q++)
            if (bn[q] != K || memcmp(bo + q * K, exact[q], K * sizeof *bo) != 0) same = 0;
        printf("{\"bench\":\"vec_f32_batch\",%s,\"threads\":1,\"n\":%zu,\"queries\":%zu,"
               "\"ms_per_query\":%.2f,\"speedup_vs_single\":%.2f,\"same_as_single\":%d}\n",
               common, n, nq, batch_ms, f32_t * 1e3 / batch_ms, same);
        if (!same) fail = 1, fprintf(stderr, "vec_bench: batched scan differs\n");
        free(bo);
        free(bn);
    }

    /* --- FAISS IndexFlatIP, same data, same run --- */
    if (use_faiss && ann_available()) {
        ann_index *fx = NULL;
        omp_set_num_threads(1);
        if (ann_new_flat_ip(D, &fx) != PLUMB_OK || ann_add(fx, n, base, NULL) != PLUMB_OK) {
            fprintf(stderr, "vec_bench: faiss: %s\n", plumb_errmsg());
            return 1;
        }
        float *sc = malloc(nq * K * sizeof *sc);
        int64_t *ids = malloc(nq * K * sizeof *ids);
        double rec = 0;
        for (size_t q = 0; q < nq; q++) {
            double t = now();
            if (ann_search(fx, 1, qs + q * D, K, sc + q * K, ids + q * K) != PLUMB_OK) {
                fprintf(stderr, "vec_bench: faiss: %s\n", plumb_errmsg());
                return 1;
            }
            tm[q] = now() - t;
            rec += overlap_rows(exact[q], ids + q * K, K) / (double)nq;
        }
        double tf = median(tm, nq);
        double tb = now();
        if (ann_search(fx, nq, qs, K, sc, ids) != PLUMB_OK) return 1;
        tb = (now() - tb) / (double)nq;
        double recb = 0;
        for (size_t q = 0; q < nq; q++) recb += overlap_rows(exact[q], ids + q * K, K) / (double)nq;
        printf("{\"bench\":\"vec_vs_faiss_flat\",%s,\"threads\":1,\"n\":%zu,\"faiss_ms\":%.2f,"
               "\"plumb_ms\":%.2f,\"speedup\":%.2f,\"faiss_batch_ms_per_query\":%.2f,"
               "\"plumb_batch_ms_per_query\":%.2f,\"batch_queries\":%zu,\"agreement\":%.4f,\"agreement_batch\":%.4f}\n",
               common, n, tf * 1e3, f32_t * 1e3, tf / f32_t, tb * 1e3, batch_ms, nq, rec, recb);
        if (rec < 0.99 || recb < 0.99) fail = 1, fprintf(stderr, "vec_bench: FAISS top-10 disagrees\n");
        free(sc);
        free(ids);
        ann_free(fx);
    }

    /* --- HNSW through FAISS: recall@10 vs queries/s at several efSearch --- */
    if (use_faiss && ann_available() && hnsw_n > 0) {
        size_t hn = hnsw_n < n ? hnsw_n : n;
        ann_index *hx = NULL;
        int64_t *hid = malloc(hn * sizeof *hid);
        for (size_t i = 0; i < hn; i++) hid[i] = (int64_t)i;
        omp_set_num_threads(threads);
        double tb = now();
        if (ann_new("HNSW32,Flat", D, ANN_IP, &hx) != PLUMB_OK || ann_add(hx, hn, base, hid) != PLUMB_OK) {
            fprintf(stderr, "vec_bench: faiss hnsw: %s\n", plumb_errmsg());
            return 1;
        }
        tb = now() - tb;
        omp_set_num_threads(1);
        kern_hit (*hex)[K] = malloc(nq * sizeof *hex);
        for (size_t q = 0; q < nq; q++) kern_topk_f32(qs + q * D, base, hn, D, NULL, K, hex[q]);
        static const int efs[] = {16, 32, 64, 128, 256};
        for (int e = 0; e < 5; e++) {
            float sc[K];
            int64_t ids[K];
            double rec = 0;
            if (ann_set_param(hx, "efSearch", efs[e]) != PLUMB_OK) return 1;
            for (int rep = 0; rep < 2; rep++) /* the first pass warms the graph into cache */
                for (size_t q = 0; q < nq; q++) {
                    double t = now();
                    if (ann_search(hx, 1, qs + q * D, K, sc, ids) != PLUMB_OK) return 1;
                    tm[q] = now() - t;
                    if (rep) rec += overlap_rows(hex[q], ids, K) / (double)nq;
                }
            double th = median(tm, nq);
            printf("{\"bench\":\"vec_hnsw\",%s,\"threads\":1,\"n\":%zu,\"index\":\"HNSW32,Flat\","
                   "\"build_s\":%.1f,\"build_threads\":%d,\"ef_search\":%d,\"ms\":%.3f,\"qps\":%.0f,"
                   "\"recall_at_10\":%.4f}\n",
                   common, hn, tb, threads, efs[e], th * 1e3, 1.0 / th, rec);
        }
        free(hex);
        free(hid);
        ann_free(hx);
    }

    free(cent), free(base), free(qs), free(b8), free(q8), free(bb), free(qb), free(scl), free(qscl);
    free(exact), free(cand), free(tm), free(tm2);
    if (fail) fprintf(stderr, "vec_bench: VERIFICATION FAILED\n");
    return fail;
}
