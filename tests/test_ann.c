/*
** test_ann.c -- FAISS through src/ann.c against brute force (unit).
**
** On random clustered data (deterministic seed): a bare IndexFlatIP
** returns what the engine's exact scan returns; HNSW and IVF reach a
** sensible recall@10 against the exact top-10 and keep the caller's ids;
** a saved and reloaded index answers identically; errors come back as
** statuses with FAISS's message. Skipped when plumb was built without
** FAISS.
*/
#include "check.h"
#include "plumb_impl.h"

#include <math.h>
#include <unistd.h>

static uint64_t rng_s = 42;
static uint64_t rnd(void) {
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float gauss(void) {
    double u = ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0, v = (double)(rnd() >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

enum { N = 10000, D = 64, NC = 100, NQ = 100, K = 10 };

static float *base, *qs;
static int64_t *ids;
static kern_hit exact[NQ][K];

static void make_data(void) {
    float *cent = malloc(NC * D * sizeof *cent);
    base = malloc((size_t)N * D * sizeof *base);
    qs = malloc(NQ * D * sizeof *qs);
    ids = malloc(N * sizeof *ids);
    for (int i = 0; i < NC * D; i++) cent[i] = gauss();
    for (int i = 0; i < N + NQ; i++) {
        float *v = i < N ? base + (size_t)i * D : qs + (size_t)(i - N) * D, nn = 0;
        const float *c = cent + (rnd() % NC) * D;
        for (int j = 0; j < D; j++) v[j] = c[j] + 1.0f * gauss(), nn += v[j] * v[j];
        for (int j = 0; j < D; j++) v[j] /= sqrtf(nn);
    }
    for (int i = 0; i < N; i++) ids[i] = (int64_t)i * 7 + 3;
    for (int q = 0; q < NQ; q++) kern_topk_f32(qs + q * D, base, N, D, NULL, K, exact[q]);
    free(cent);
}

/* Recall@K of an index whose ids are row*7+3. */
static double recall(const ann_index *ix) {
    float sc[NQ * K];
    int64_t got[NQ * K];
    CHECK_OK(ann_search(ix, NQ, qs, K, sc, got));
    size_t hit = 0;
    for (int q = 0; q < NQ; q++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) hit += got[q * K + i] == (int64_t)exact[q][j].row * 7 + 3;
    return (double)hit / (NQ * K);
}

static void test_flat(void) {
    ann_index *ix = NULL;
    CHECK_OK(ann_new_flat_ip(D, &ix));
    if (!ix) return;
    CHECK_OK(ann_add(ix, N, base, NULL));
    CHECK(ann_count(ix) == N && ann_dim(ix) == D);
    CHECK_RC(ann_add(ix, 1, base, ids), PLUMB_MISUSE);
    float sc[NQ * K];
    int64_t got[NQ * K];
    CHECK_OK(ann_search(ix, NQ, qs, K, sc, got));
    int bad = 0;
    for (int q = 0; q < NQ; q++)
        for (int i = 0; i < K; i++) {
            /* Same rows; near ties may swap, so compare scores closely. */
            bad += fabsf(sc[q * K + i] - exact[q][i].score) > 1e-5f;
            float s = kern_dot_f32(qs + q * D, base + got[q * K + i] * D, D);
            bad += fabsf(s - sc[q * K + i]) > 1e-5f;
        }
    CHECK(bad == 0);
    ann_free(ix);
}

static void test_hnsw(const char *dir) {
    ann_index *ix = NULL, *ix2 = NULL;
    CHECK_OK(ann_new("HNSW32,Flat", D, ANN_IP, &ix));
    if (!ix) return;
    CHECK(ann_is_trained(ix));
    CHECK_OK(ann_add(ix, N, base, ids));
    CHECK_RC(ann_add(ix, 1, base, NULL), PLUMB_MISUSE);
    CHECK_OK(ann_set_param(ix, "efSearch", 64));
    double r = recall(ix);
    printf("HNSW32 efSearch=64 recall@10 %.3f\n", r);
    CHECK(r >= 0.9);
    CHECK_OK(ann_set_param(ix, "efSearch", 16));
    double r16 = recall(ix);
    printf("HNSW32 efSearch=16 recall@10 %.3f\n", r16);
    CHECK(r16 <= r + 1e-9);
    CHECK_RC(ann_set_param(ix, "no_such_param", 1), PLUMB_MISUSE);
    CHECK(strstr(plumb_errmsg(), "no_such_param") != NULL);

    char path[512];
    snprintf(path, sizeof path, "%s/hnsw.faiss", dir);
    CHECK_OK(ann_save(ix, path));
    CHECK_OK(ann_load(path, &ix2));
    if (ix2) {
        CHECK(ann_count(ix2) == N && ann_dim(ix2) == D);
        CHECK_OK(ann_set_param(ix2, "efSearch", 16));
        float s1[K], s2[K];
        int64_t g1[K], g2[K];
        CHECK_OK(ann_search(ix, 1, qs, K, s1, g1));
        CHECK_OK(ann_search(ix2, 1, qs, K, s2, g2));
        CHECK(memcmp(g1, g2, sizeof g1) == 0 && memcmp(s1, s2, sizeof s1) == 0);
    }
    ann_free(ix2);
    ann_free(ix);
    unlink(path);
    CHECK_RC(ann_load(path, &ix2), PLUMB_IO);
    CHECK(ix2 == NULL);
}

static void test_ivf(void) {
    static const char *const fac[] = {"IVF64,Flat", "IVF64,SQ8"};
    for (int f = 0; f < 2; f++) {
        ann_index *ix = NULL;
        CHECK_OK(ann_new(fac[f], D, ANN_IP, &ix));
        if (!ix) continue;
        CHECK(!ann_is_trained(ix));
        CHECK_RC(ann_add(ix, N, base, ids), PLUMB_MISUSE);
        CHECK_OK(ann_train(ix, N, base));
        CHECK_OK(ann_add(ix, N, base, ids));
        CHECK_OK(ann_set_param(ix, "nprobe", 16));
        double r = recall(ix);
        printf("%s nprobe=16 recall@10 %.3f\n", fac[f], r);
        CHECK(r >= 0.85);
        ann_free(ix);
    }
}

static void test_errors(void) {
    ann_index *ix = (ann_index *)1;
    CHECK_RC(ann_new("NoSuchIndex42", D, ANN_IP, &ix), PLUMB_MISUSE);
    CHECK(ix == NULL);
    CHECK(strstr(plumb_errmsg(), "faiss") != NULL);
    CHECK_RC(ann_new("HNSW32", 0, ANN_IP, &ix), PLUMB_MISUSE);
    /* L2: scores are negated distances, best first. */
    CHECK_OK(ann_new("Flat", D, ANN_L2, &ix));
    if (ix) {
        CHECK_OK(ann_add(ix, 100, base, ids));
        float sc[3];
        int64_t got[3];
        CHECK_OK(ann_search(ix, 1, base + 5 * D, 3, sc, got));
        CHECK(got[0] == 5 * 7 + 3 && fabsf(sc[0]) < 1e-5f && sc[1] <= sc[0] && sc[2] <= sc[1]);
        /* More results asked than vectors: missing ones are -1 / -inf. */
        float s2[101];
        int64_t g2[101];
        CHECK_OK(ann_search(ix, 1, base, 101, s2, g2));
        CHECK(g2[100] == -1 && isinf(s2[100]) && s2[100] < 0);
        ann_free(ix);
    }
}

int main(void) {
    if (!ann_available()) {
        printf("test_ann: built without FAISS, skipped\n");
        return 0;
    }
    char dir[] = "/tmp/plumb_test_ann_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    make_data();
    test_flat();
    test_hnsw(dir);
    test_ivf();
    test_errors();
    rmdir(dir);
    free(base), free(qs), free(ids);
    return CHECK_DONE();
}
