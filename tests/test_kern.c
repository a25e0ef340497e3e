/*
** test_kern.c -- SIMD kernels against the scalar reference (unit).
**
** Every kernel table this CPU can run (scalar, AVX2, and AVX-512 with and
** without VNNI / VPOPCNTDQ) is compared with kern_scalar_ops on random
** data: every length 1..1100 (unaligned starts, so tails and odd offsets
** are covered) and the embedding dims 384/768/1024. f32 must agree within
** a summation-order tolerance, int8 and hamming exactly. Top-k (plain,
** filtered, threaded, batched) must equal a brute-force sort of the same
** ISA's scores; int8 and binary codes with f32 rescoring must find the
** exact top-10 (recall measured on clustered data).
*/
#include "check.h"
#include "plumb_impl.h"

#include <math.h>

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rndf(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0) * 2.0f - 1.0f; }
static float gauss(void) {
    double u = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0, v = (double)(rnd() >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

typedef struct table {
    char name[40];
    kern_ops ops;
} table;

static table tabs[8];
static int ntabs;

static void add_table(const char *name, const kern_ops *o) {
    snprintf(tabs[ntabs].name, sizeof tabs[ntabs].name, "%s", name);
    tabs[ntabs++].ops = *o;
}

static void collect_tables(void) {
    kern_ops o;
    kern_scalar_ops(&o);
    add_table("scalar", &o);
#if defined(__x86_64__) || defined(__i386__)
    if (kern_isa_supported(KERN_AVX2)) {
        kern_avx2_ops(&o);
        add_table(o.desc, &o);
    }
    if (kern_isa_supported(KERN_AVX512)) {
        int vnni = !!__builtin_cpu_supports("avx512vnni"), vpop = !!__builtin_cpu_supports("avx512vpopcntdq");
        for (int v = 0; v <= vnni; v++)
            for (int p = 0; p <= vpop; p++) {
                kern_avx512_ops(&o, v, p);
                add_table(o.desc, &o);
            }
    }
#endif
}

#define MAXD 1100
#define NR 7 /* rows per scan in the length sweep */

static int near_f(float got, float want, float mag) {
    return fabsf(got - want) <= 1e-5f * mag + 1e-5f;
}

/* Every length 1..MAXD, starting at odd offsets. */
static void test_lengths(void) {
    float *fa = malloc((MAXD + 3) * sizeof *fa), *fb = malloc((NR * MAXD + 3) * sizeof *fb);
    int8_t *ia = malloc(MAXD + 3), *ib = malloc(NR * MAXD + 3);
    float *sr = malloc(NR * sizeof *sr), *sg = malloc(NR * sizeof *sg), *scl = malloc(NR * sizeof *scl);
    for (size_t i = 0; i < MAXD + 3; i++) fa[i] = rndf(), ia[i] = (int8_t)(rnd() & 0xff);
    for (size_t i = 0; i < NR * MAXD + 3; i++) fb[i] = rndf(), ib[i] = (int8_t)(rnd() & 0xff);
    for (int i = 0; i < NR; i++) scl[i] = 0.5f + (float)i;
    const kern_ops *ref = &tabs[0].ops;
    for (int t = 1; t < ntabs; t++) {
        const kern_ops *o = &tabs[t].ops;
        int bad = 0;
        for (size_t d = 1; d <= MAXD && bad < 5; d++) {
            const float *a = fa + (d % 3), *b = fb + 1;
            const int8_t *qa = ia + (d % 3), *qb = ib + 1;
            const uint8_t *ua = (const uint8_t *)qa, *ub = (const uint8_t *)qb;
            float mag = 0;
            for (size_t i = 0; i < d; i++) mag += fabsf(a[i] * b[i]);
            float r = ref->dot_f32(a, b, d), g = o->dot_f32(a, b, d);
            if (!near_f(g, r, mag)) bad++, fprintf(stderr, "%s dot_f32 d=%zu: %g vs %g\n", tabs[t].name, d, g, r);
            if (o->dot_i8(qa, qb, d) != ref->dot_i8(qa, qb, d))
                bad++, fprintf(stderr, "%s dot_i8 d=%zu\n", tabs[t].name, d);
            if (o->hamming(ua, ub, d) != ref->hamming(ua, ub, d))
                bad++, fprintf(stderr, "%s hamming nbytes=%zu\n", tabs[t].name, d);
            /* Scans of NR rows of dim d. */
            ref->scan_f32(a, b, NR, d, sr);
            o->scan_f32(a, b, NR, d, sg);
            for (int i = 0; i < NR; i++) {
                float m = 0;
                for (size_t j = 0; j < d; j++) m += fabsf(a[j] * b[i * d + j]);
                if (!near_f(sg[i], sr[i], m)) bad++, fprintf(stderr, "%s scan_f32 d=%zu row %d\n", tabs[t].name, d, i);
            }
            /* Five queries at once: bit-identical to one scan each. */
            float mq[5 * NR];
            o->scan_f32_multi(fb + 2, 5, b, NR, d, mq);
            for (int j = 0; j < 5; j++) {
                o->scan_f32(fb + 2 + j * d, b, NR, d, sg);
                if (memcmp(sg, mq + j * NR, NR * sizeof *sg) != 0)
                    bad++, fprintf(stderr, "%s scan_f32_multi d=%zu query %d\n", tabs[t].name, d, j);
            }
            ref->scan_i8(qa, 0.25f, qb, scl, NR, d, sr);
            o->scan_i8(qa, 0.25f, qb, scl, NR, d, sg);
            for (int i = 0; i < NR; i++)
                if (sg[i] != sr[i]) bad++, fprintf(stderr, "%s scan_i8 d=%zu row %d\n", tabs[t].name, d, i);
            ref->scan_bin(ua, ub, NR, d, sr);
            o->scan_bin(ua, ub, NR, d, sg);
            for (int i = 0; i < NR; i++)
                if (sg[i] != sr[i]) bad++, fprintf(stderr, "%s scan_bin nbytes=%zu row %d\n", tabs[t].name, d, i);
        }
        CHECK(bad == 0);
    }
    free(fa), free(fb), free(ia), free(ib), free(sr), free(sg), free(scl);
}

/* Embedding dims, 300 rows each. */
static void test_dims(void) {
    static const size_t dims[] = {384, 768, 1024};
    const size_t n = 300;
    for (size_t di = 0; di < 3; di++) {
        size_t d = dims[di];
        float *q = malloc(d * sizeof *q), *base = malloc(n * d * sizeof *base);
        int8_t *q8 = malloc(d), *b8 = malloc(n * d);
        uint8_t *qb = malloc(d / 8), *bb = malloc(n * d / 8);
        float *scl = malloc(n * sizeof *scl), *sr = malloc(n * sizeof *sr), *sg = malloc(n * sizeof *sg);
        for (size_t i = 0; i < d; i++) q[i] = rndf();
        for (size_t i = 0; i < n * d; i++) base[i] = rndf();
        float qs = kern_quantize_i8(q, d, q8);
        kern_binarize(q, d, qb);
        for (size_t i = 0; i < n; i++) {
            scl[i] = kern_quantize_i8(base + i * d, d, b8 + i * d);
            kern_binarize(base + i * d, d, bb + i * d / 8);
        }
        const kern_ops *ref = &tabs[0].ops;
        for (int t = 1; t < ntabs; t++) {
            const kern_ops *o = &tabs[t].ops;
            int bad = 0;
            ref->scan_f32(q, base, n, d, sr);
            o->scan_f32(q, base, n, d, sg);
            for (size_t i = 0; i < n; i++) {
                float m = 0;
                for (size_t j = 0; j < d; j++) m += fabsf(q[j] * base[i * d + j]);
                bad += !near_f(sg[i], sr[i], m);
            }
            ref->scan_i8(q8, qs, b8, scl, n, d, sr);
            o->scan_i8(q8, qs, b8, scl, n, d, sg);
            for (size_t i = 0; i < n; i++) bad += sg[i] != sr[i];
            ref->scan_bin(qb, bb, n, d / 8, sr);
            o->scan_bin(qb, bb, n, d / 8, sg);
            for (size_t i = 0; i < n; i++) bad += sg[i] != sr[i];
            if (bad) fprintf(stderr, "%s d=%zu: %d mismatches\n", tabs[t].name, d, bad);
            CHECK(bad == 0);
        }
        free(q), free(base), free(q8), free(b8), free(qb), free(bb), free(scl), free(sr), free(sg);
    }
}

static void test_quantize(void) {
    float x[37];
    int8_t q[37];
    uint8_t b[5];
    for (int i = 0; i < 37; i++) x[i] = rndf() * 3.0f;
    x[5] = -4.0f;
    float s = kern_quantize_i8(x, 37, q);
    CHECK_NEAR(s, 4.0 / 127, 1e-6);
    CHECK(q[5] == -127);
    for (int i = 0; i < 37; i++) CHECK(fabsf(x[i] - s * q[i]) <= s * 0.5f + 1e-6f);
    float z[3] = {0, 0, 0};
    CHECK(kern_quantize_i8(z, 3, q) == 0.0f && q[0] == 0 && q[2] == 0);
    kern_binarize(x, 37, b);
    for (int i = 0; i < 37; i++) CHECK(((b[i / 8] >> (i % 8)) & 1) == (x[i] > 0));
    CHECK((b[4] >> 5) == 0); /* padding bits */
}

static int hit_cmp(const void *pa, const void *pb) {
    const kern_hit *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->row < b->row ? -1 : a->row > b->row;
}

/* Brute force: every allowed row's score, fully sorted, first k. */
static size_t brute(const float *scores, size_t n, const uint64_t *allow, size_t k, kern_hit *out) {
    kern_hit *all = malloc(n * sizeof *all);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!allow || (allow[i / 64] >> (i % 64) & 1)) all[m++] = (kern_hit){scores[i], (uint32_t)i};
    qsort(all, m, sizeof *all, hit_cmp);
    if (m > k) m = k;
    memcpy(out, all, m * sizeof *out);
    free(all);
    return m;
}

static int same_hits(const kern_hit *a, size_t na, const kern_hit *b, size_t nb) {
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].row != b[i].row || a[i].score != b[i].score) return 0;
    return 1;
}

/* Top-k under every dispatchable ISA, with and without filters. */
static void test_topk(void) {
    const size_t n = 3001, d = 96, K = 100;
    float *base = malloc(n * d * sizeof *base), *q = malloc(4 * d * sizeof *q), *sc = malloc(n * sizeof *sc);
    int8_t *b8 = malloc(n * d), q8[96];
    uint8_t *bb = malloc(n * d / 8), qb[12];
    float *scl = malloc(n * sizeof *scl);
    uint64_t allow[3][(3001 + 63) / 64];
    kern_hit *got = malloc(4 * K * sizeof *got), *want = malloc(K * sizeof *want);
    for (size_t i = 0; i < n * d; i++) base[i] = rndf();
    for (size_t i = 0; i < 4 * d; i++) q[i] = rndf();
    /* Duplicate rows force ties: order must fall back to the row. */
    memcpy(base + 2000 * d, base + 17 * d, d * sizeof *base);
    for (size_t i = 0; i < n; i++) {
        scl[i] = kern_quantize_i8(base + i * d, d, b8 + i * d);
        kern_binarize(base + i * d, d, bb + i * d / 8);
    }
    float qs = kern_quantize_i8(q, d, q8);
    kern_binarize(q, d, qb);
    memset(allow, 0, sizeof allow);
    for (size_t i = 0; i < n; i++) {
        if (rnd() % 10 < 3) allow[0][i / 64] |= 1ull << (i % 64);  /* dense */
        if (rnd() % 100 < 3) allow[1][i / 64] |= 1ull << (i % 64); /* sparse */
    }
    allow[2][5] = 1ull << 7; /* one row */
    static const size_t ks[] = {1, 10, 100};
    for (int isa = 0; isa < KERN_ISA_COUNT; isa++) {
        if (kern_isa_set((kern_isa)isa) != 0) continue;
        for (int f = -1; f < 3; f++) {
            const uint64_t *al = f < 0 ? NULL : allow[f];
            for (size_t ki = 0; ki < 3; ki++) {
                size_t k = ks[ki], ng, nw;
                kern_scan_f32(q, base, n, d, sc);
                nw = brute(sc, n, al, k, want);
                ng = kern_topk_f32(q, base, n, d, al, k, got);
                CHECK(same_hits(got, ng, want, nw));
                ng = kern_topk_f32_par(q, base, n, d, al, k, got, 2);
                CHECK(same_hits(got, ng, want, nw));
                kern_scan_i8(q8, qs, b8, scl, n, d, sc);
                nw = brute(sc, n, al, k, want);
                ng = kern_topk_i8(q8, qs, b8, scl, n, d, al, k, got);
                CHECK(same_hits(got, ng, want, nw));
                kern_scan_bin(qb, bb, n, d / 8, sc);
                nw = brute(sc, n, al, k, want);
                ng = kern_topk_bin(qb, bb, n, d / 8, al, k, got);
                CHECK(same_hits(got, ng, want, nw));
            }
        }
        /* Filter before truncation: forbid the unfiltered top 10; the
        ** filtered top 10 must still hold 10 allowed rows. */
        uint64_t al[(3001 + 63) / 64];
        memset(al, 0xff, sizeof al);
        size_t nw = kern_topk_f32(q, base, n, d, NULL, 10, want);
        for (size_t i = 0; i < nw; i++) al[want[i].row / 64] &= ~(1ull << (want[i].row % 64));
        size_t ng = kern_topk_f32(q, base, n, d, al, 10, got);
        CHECK(ng == 10);
        for (size_t i = 0; i < ng; i++) CHECK(al[got[i].row / 64] >> (got[i].row % 64) & 1);
        CHECK(ng == 10 && got[0].score <= want[9].score);
        /* Batch equals one query at a time (row blocks of 640 at d=96). */
        size_t nout[4];
        for (int nt = 1; nt <= 2; nt++)
            for (int f = -1; f < 2; f++) {
                const uint64_t *alw = f < 0 ? NULL : allow[f];
                kern_topk_f32_batch(q, 4, base, n, d, alw, 10, got, nout, nt);
                for (size_t j = 0; j < 4; j++) {
                    nw = kern_topk_f32(q + j * d, base, n, d, alw, 10, want);
                    CHECK(same_hits(got + j * 10, nout[j], want, nw));
                }
            }
        CHECK(kern_topk_f32(q, base, n, d, NULL, 0, got) == 0);
        CHECK(kern_topk_f32(q, base, 0, d, NULL, 5, got) == 0);
        CHECK(kern_topk_f32(q, base, 3, d, NULL, 5, got) == 3);
    }
    kern_isa_set(KERN_SCALAR);
    free(base), free(q), free(sc), free(b8), free(bb), free(scl), free(got), free(want);
}

/* Quantized scans + f32 rescoring on clustered data: recall@10 against
** the exact f32 top-10. */
static void test_recall(void) {
    const size_t n = 20000, d = 384, nc = 50, nq = 20, k = 10;
    float *cent = malloc(nc * d * sizeof *cent), *base = malloc(n * d * sizeof *base);
    int8_t *b8 = malloc(n * d), *q8 = malloc(d);
    uint8_t *bb = malloc(n * d / 8), *qb = malloc(d / 8);
    float *scl = malloc(n * sizeof *scl);
    kern_hit exact[10], cand[400], res[10];
    for (size_t i = 0; i < nc * d; i++) cent[i] = gauss();
    for (size_t i = 0; i < n; i++) {
        const float *c = cent + (rnd() % nc) * d;
        float *v = base + i * d, nn = 0;
        for (size_t j = 0; j < d; j++) v[j] = c[j] + 0.8f * gauss(), nn += v[j] * v[j];
        for (size_t j = 0; j < d; j++) v[j] /= sqrtf(nn);
        scl[i] = kern_quantize_i8(v, d, b8 + i * d);
        kern_binarize(v, d, bb + i * d / 8);
    }
    kern_isa_set(kern_isa_supported(KERN_AVX512) ? KERN_AVX512 : kern_isa_supported(KERN_AVX2) ? KERN_AVX2 : KERN_SCALAR);
    size_t hit8 = 0, hitb = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        const float *q = base + (rnd() % n) * d; /* a stored vector, perturbed below */
        float qv[384];
        for (size_t j = 0; j < d; j++) qv[j] = q[j] + 0.02f * gauss();
        float qs = kern_quantize_i8(qv, d, q8);
        kern_binarize(qv, d, qb);
        kern_topk_f32(qv, base, n, d, NULL, k, exact);
        size_t nc8 = kern_topk_i8(q8, qs, b8, scl, n, d, NULL, 40, cand);
        size_t nr = kern_rescore_f32(qv, base, d, cand, nc8, k, res);
        for (size_t i = 0; i < nr; i++)
            for (size_t j = 0; j < k; j++) hit8 += res[i].row == exact[j].row;
        size_t ncb = kern_topk_bin(qb, bb, n, d / 8, NULL, 400, cand);
        nr = kern_rescore_f32(qv, base, d, cand, ncb, k, res);
        for (size_t i = 0; i < nr; i++)
            for (size_t j = 0; j < k; j++) hitb += res[i].row == exact[j].row;
    }
    double r8 = (double)hit8 / (double)(nq * k), rb = (double)hitb / (double)(nq * k);
    printf("recall@10: int8 top-40 + f32 rescoring %.3f; binary top-400 + f32 rescoring %.3f (%s)\n",
           r8, rb, kern_isa_desc());
    CHECK(r8 >= 0.99);
    CHECK(rb >= 0.80);
    free(cent), free(base), free(b8), free(q8), free(bb), free(qb), free(scl);
}

int main(void) {
    printf("kern: active ISA %s (%s)\n", kern_isa_name(kern_isa_active()), kern_isa_desc());
    /* PLUMB_ISA picks the ISA at first use when the CPU supports it. */
    const char *env = getenv("PLUMB_ISA");
    if (env && *env) {
        int want = -1;
        for (int i = 0; i < KERN_ISA_COUNT; i++)
            if (!strcmp(env, kern_isa_name((kern_isa)i))) want = i;
        CHECK(want >= 0);
        if (want >= 0 && kern_isa_supported((kern_isa)want)) CHECK((int)kern_isa_active() == want);
    }
    collect_tables();
    for (int t = 0; t < ntabs; t++) printf("  testing table %s\n", tabs[t].name);
    test_quantize();
    test_lengths();
    test_dims();
    test_topk();
    test_recall();
    CHECK(kern_isa_set(KERN_ISA_COUNT) == -1);
    return CHECK_DONE();
}
