/*
** test_vec.c -- the vector store, the built-in embedder and hybrid fusion
** (unit).
**
**   fusion      fuse_union/fuse_score against hand-computed min-max,
**               z-score and RRF values, including the pool rule
**   store       vec_topk (f32, int8, binary) against brute force over the
**               `vectors` table read with plain SQL, before and after
**               deletes, replacements and re-adds; deleted chunks never
**               returned; vec_verify clean
**   embedder    training on a random collection, re-embedding a chunk
**               gives the identical vector (resume after a crash), a new
**               epoch replaces every vector, too-small collections stay
**               lexical
**   side files  a new handle loads "<index>.vec" and answers the same; a
**               damaged one is ignored by search and reported by check
**   ANN         a forced HNSW index: recall@10 against exact search, no
**               deleted chunk, vectors added after the build are found
**   search      dense/hybrid through plumb_search: hits carry per-stage
**               scores and ranks that agree with the stages run alone
*/
#include "check.h"
#include "plumb_impl.h"

#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static uint64_t rs = 0x1234567;
static unsigned rnd(unsigned n) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (unsigned)(rs % n);
}

static const char *words[] = {
    "river", "bank", "money", "loan", "water", "fish", "boat", "stream", "credit", "interest",
    "mountain", "snow", "ski", "slope", "peak", "climb", "rope", "glacier", "valley", "trail",
    "protein", "cell", "gene", "enzyme", "membrane", "dna", "virus", "immune", "tissue", "blood",
    "planet", "orbit", "star", "galaxy", "telescope", "comet", "moon", "solar", "gravity", "dust"};
enum { NW = sizeof words / sizeof words[0] };

/* A document about topic t (10 words per topic) with some noise. */
static void doc_text(int t, char *out, size_t cap) {
    size_t n = 0;
    int len = 20 + (int)rnd(40);
    out[0] = 0;
    for (int i = 0; i < len; i++) {
        int w = rnd(5) == 0 ? (int)rnd(NW) : t * 10 + (int)rnd(10);
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "", words[w]);
    }
}

static plumb_db *open_new(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.chunk_tokens = 0;
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, &op, &db));
    return db;
}

static void add_doc(plumb_db *db, int i, int topic) {
    char id[32], text[2048];
    snprintf(id, sizeof id, "d%d", i);
    doc_text(topic, text, sizeof text);
    plumb_doc d = {0};
    d.id = id;
    d.title = "";
    d.text = text;
    CHECK_OK(plumb_add(db, &d, NULL));
}

/* ---------------------------------------------------------------- */

static void test_fusion(void) {
    /* lexical: a 10, b 6, c 2; dense: c 0.9, d 0.5, a 0.1 (all exact) */
    lex_hit lx[3] = {{1, 10}, {2, 6}, {3, 2}};
    lex_hit dn[3] = {{3, 0.9}, {4, 0.5}, {1, 0.1}};
    fuse_cand c[6];
    size_t n = fuse_union(lx, 3, dn, 3, c);
    CHECK(n == 4);
    for (size_t i = 0; i < n; i++) /* the caller fills b's exact dense score */
        if (c[i].rowid == 2) c[i].dense = 0.3;
    fuse_score(c, n, PLUMB_FUSE_MINMAX, 0.5, 60, 100, 100);
    /* lex mm: a 1, b .5, c 0, d absent 0; dense mm over {.9,.5,.1,.3}:
    ** c 1, d .5, a 0, b .25. fused: a .5, b .375, c .5, d .25 -> a, c (tie: id), b, d */
    CHECK(c[0].rowid == 1 && c[1].rowid == 3 && c[2].rowid == 2 && c[3].rowid == 4);
    CHECK_NEAR(c[0].fused, 0.5, 1e-12);
    CHECK_NEAR(c[2].fused, 0.375, 1e-12);
    CHECK_NEAR(c[3].fused, 0.25, 1e-12);

    n = fuse_union(lx, 3, dn, 3, c);
    for (size_t i = 0; i < n; i++)
        if (c[i].rowid == 2) c[i].dense = 0.3;
    fuse_score(c, n, PLUMB_FUSE_ZSCORE, 0.5, 60, 100, 100);
    /* lex mean 6, sd sqrt(32/3); d absent -> lowest z (c's) */
    double sl = sqrt(32.0 / 3), sd = sqrt(0.2 / 4); /* dense mean .45, var (.2025+.0025+.1225+.0225)/4 */
    sd = sqrt((0.45 * 0.45 + 0.05 * 0.05 + 0.35 * 0.35 + 0.15 * 0.15) / 4);
    double za = 0.5 * (4 / sl) + 0.5 * ((0.1 - 0.45) / sd);
    double zd = 0.5 * (-4 / sl) + 0.5 * ((0.5 - 0.45) / sd);
    for (size_t i = 0; i < n; i++) {
        if (c[i].rowid == 1) CHECK_NEAR(c[i].fused, za, 1e-12);
        if (c[i].rowid == 4) CHECK_NEAR(c[i].fused, zd, 1e-12);
    }

    n = fuse_union(lx, 3, dn, 3, c);
    fuse_score(c, n, PLUMB_FUSE_RRF, 0.5, 60, 100, 100);
    /* a: .5/61 + .5/63; c: .5/63 + .5/61; b: .5/62; d: .5/62 */
    CHECK(c[0].rowid == 1 && c[1].rowid == 3 && c[2].rowid == 2 && c[3].rowid == 4);
    CHECK_NEAR(c[0].fused, 0.5 / 61 + 0.5 / 63, 1e-15);
    CHECK_NEAR(c[2].fused, 0.5 / 62, 1e-15);

    /* pools of 1: only a (lex rank 1) and c (dense rank 1) define the
    ** scale and rank first; b and d follow */
    n = fuse_union(lx, 3, dn, 3, c);
    for (size_t i = 0; i < n; i++)
        if (c[i].rowid == 2) c[i].dense = 0.3;
    fuse_score(c, n, PLUMB_FUSE_MINMAX, 0.5, 60, 1, 1);
    CHECK(c[0].pool && c[1].pool && !c[2].pool && !c[3].pool);
    CHECK((c[0].rowid == 1 || c[0].rowid == 3) && (c[1].rowid == 1 || c[1].rowid == 3));
    /* c's lexical rank 3 is beyond the pool: treated as absent, so
    ** lex mm: a 1 (the only pooled value -> 1), c absent 0; dense over
    ** {a .1, c .9}: a 0, c 1 -> both 0.5, tie by id: a first */
    CHECK(c[0].rowid == 1);
    CHECK_NEAR(c[0].fused, 0.5, 1e-12);
    CHECK_NEAR(c[1].fused, 0.5, 1e-12);
    CHECK_NEAR(c[1].lex, 2, 0); /* the true score is still reported */
}

/* ---------------------------------------------------------------- */

typedef struct ref { int64_t id; double s; } ref;
static int cmp_ref(const void *a, const void *b) {
    const ref *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Brute force over the table through a fresh reader snapshot. */
static size_t brute(plumb_db *db, const float *q, int dim, int k, ref *out) {
    reader *r;
    CHECK_OK(store_reader_get(db, &r));
    sqlite3_stmt *st;
    size_t n = 0, cap = 1024;
    ref *all = malloc(cap * sizeof *all);
    sqlite3_prepare_v2(r->conn, "SELECT chunk, v FROM vectors", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const float *v = sqlite3_column_blob(st, 1);
        if (sqlite3_column_bytes(st, 1) != dim * 4) {
            CHECK(sqlite3_column_bytes(st, 1) == dim * 4);
            break;
        }
        if (n == cap) all = realloc(all, (cap *= 2) * sizeof *all);
        all[n].id = sqlite3_column_int64(st, 0);
        all[n++].s = kern_dot_f32(q, v, (size_t)dim);
    }
    sqlite3_finalize(st);
    store_reader_put(db, r);
    qsort(all, n, sizeof *all, cmp_ref);
    size_t m = n < (size_t)k ? n : (size_t)k;
    memcpy(out, all, m * sizeof *out);
    free(all);
    return m;
}

/* vec_topk through a reader at the current snapshot. */
static size_t topk(plumb_db *db, const float *q, int k, plumb_vsearch how, lex_hit **out) {
    reader *r;
    size_t n = 0;
    *out = NULL;
    CHECK_OK(store_reader_get(db, &r));
    sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    int64_t gen = -1;
    if (sqlite3_step(r->st_gen) == SQLITE_ROW) gen = sqlite3_column_int64(r->st_gen, 0);
    sqlite3_reset(r->st_gen);
    plumb_status rc = vec_sync(db->vec, r, gen);
    CHECK_OK(rc);
    if (!rc) {
        CHECK_OK(vec_topk(db->vec, q, k, how, 0, out, &n));
        vec_release(db->vec);
    }
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    store_reader_put(db, r);
    return n;
}

static void random_unit(float *q, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++) {
        q[i] = (float)((int)rnd(2001) - 1000);
        s += (double)q[i] * q[i];
    }
    for (int i = 0; i < dim; i++) q[i] /= (float)sqrt(s);
}

static void report(void *arg, const char *part, const char *msg) {
    (void)arg;
    fprintf(stderr, "check: %s: %s\n", part, msg);
}

static void compare_all(plumb_db *db, int dim, const char *when, int64_t want_problems) {
    float q[512];
    ref want[20];
    for (int t = 0; t < 30; t++) {
        random_unit(q, dim);
        size_t nw = brute(db, q, dim, 10, want);
        lex_hit *got;
        size_t ng = topk(db, q, 10, PLUMB_VSEARCH_F32, &got);
        CHECK(ng == nw);
        for (size_t i = 0; i < ng && i < nw; i++) {
            if (got[i].rowid != want[i].id)
                fprintf(stderr, "%s: query %d rank %zu: %lld vs %lld\n", when, t, i,
                        (long long)got[i].rowid, (long long)want[i].id);
            CHECK(got[i].rowid == want[i].id);
            CHECK_NEAR(got[i].score, want[i].s, 1e-5);
        }
        free(got);
        /* quantized scans rescore in f32: the top-10 they return are exact
        ** scores, and on this small collection the same set */
        for (int how = PLUMB_VSEARCH_INT8; how <= PLUMB_VSEARCH_BINARY; how++) {
            ng = topk(db, q, 10, (plumb_vsearch)how, &got);
            int hit = 0;
            for (size_t i = 0; i < ng; i++)
                for (size_t j = 0; j < nw; j++) hit += got[i].rowid == want[j].id;
            CHECK(ng == nw && hit >= (int)nw - 1);
            free(got);
        }
    }
    int64_t problems = -1;
    CHECK_OK(vec_verify(db, want_problems ? NULL : report, NULL, &problems));
    CHECK(problems == want_problems);
}

static void test_store_and_embedder(void) {
    plumb_db *db = open_new("store.db");
    for (int i = 0; i < 300; i++) add_doc(db, i, i % 4);
    plumb_embed_params ep;
    plumb_embed_params_init(&ep);
    ep.dim = 16;
    ep.commit_every = 50;
    plumb_embed_stats es;
    CHECK_OK(plumb_embed(db, &ep, &es));
    CHECK(es.trained == 1 && es.trained_chunks == 300 && es.embedded == 300 && es.missing == 0);
    CHECK(es.dim == 16);
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.vec_dim == 16 && st.vec_count == 300 && st.vec_missing == 0);
    CHECK_STR(st.embedder, "lsa");
    CHECK(st.embed_trained_chunks == 300 && st.embed_added_since == 0);
    compare_all(db, 16, "fresh", 0);

    /* a chunk re-embedded after losing its vector gets the same one */
    reader *r;
    CHECK_OK(store_reader_get(db, &r));
    sqlite3_stmt *s1;
    sqlite3_prepare_v2(r->conn, "SELECT v FROM vectors WHERE chunk = 7", -1, &s1, NULL);
    float before[16] = {0}, after[16] = {0};
    if (sqlite3_step(s1) == SQLITE_ROW) memcpy(before, sqlite3_column_blob(s1, 0), sizeof before);
    sqlite3_finalize(s1);
    store_reader_put(db, r);
    pthread_mutex_lock(&db->wlock);
    sqlite3_exec(db->w, "DELETE FROM vectors WHERE chunk IN (7, 8, 9)", NULL, NULL, NULL);
    pthread_mutex_unlock(&db->wlock);
    CHECK_OK(plumb_embed(db, &ep, &es));
    CHECK(es.trained == 0 && es.embedded == 3 && es.missing == 0);
    CHECK_OK(store_reader_get(db, &r));
    sqlite3_prepare_v2(r->conn, "SELECT v FROM vectors WHERE chunk = 7", -1, &s1, NULL);
    if (sqlite3_step(s1) == SQLITE_ROW) memcpy(after, sqlite3_column_blob(s1, 0), sizeof after);
    sqlite3_finalize(s1);
    store_reader_put(db, r);
    CHECK(memcmp(before, after, sizeof before) == 0);

    /* deletes, replacements and re-adds, folded in with the same model */
    for (int i = 0; i < 300; i += 3) {
        char id[32];
        snprintf(id, sizeof id, "d%d", i);
        CHECK_OK(plumb_delete(db, id));
    }
    for (int i = 1; i < 300; i += 7)
        if (i % 3) add_doc(db, i, (i + 1) % 4); /* replace */
    for (int i = 300; i < 360; i++) add_doc(db, i, i % 4);        /* new */
    CHECK_OK(plumb_embed(db, &ep, &es));
    CHECK(es.trained == 0 && es.missing == 0);
    compare_all(db, 16, "after changes", 0);
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.vec_count == st.chunks && st.embed_added_since > 0);

    /* dense search never returns a deleted document */
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.mode = PLUMB_MODE_DENSE;
    sp.rerank = 0; /* stage 1 as it is: ranks and scores of the stages */
    sp.k = 200;
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "river bank money", &sp, &h));
    for (size_t i = 0; h && i < h->n; i++) {
        int num = atoi(h->hit[i].doc_id + 1);
        CHECK(num >= 300 || num % 3 != 0);
        CHECK(!isnan(h->hit[i].score_dense) && isnan(h->hit[i].score_lex));
        CHECK(h->hit[i].rank_dense == (int)i + 1);
    }
    plumb_hits_free(h);

    /* hybrid: every hit carries the fused score; the dense score is the
    ** exact similarity, the lexical one the BM25 stage's (without query
    ** expansion) */
    sp.mode = PLUMB_MODE_HYBRID;
    sp.k = 10;
    sp.qe_docs = 0; /* the lexical list unexpanded (RM3: test_bm25's test_rm3) */
    CHECK_OK(plumb_search(db, "river bank money", &sp, &h));
    plumb_hits *hl = NULL;
    plumb_search_params lp;
    plumb_search_params_init(&lp);
    lp.mode = PLUMB_MODE_LEXICAL;
    lp.rerank = 0;
    lp.k = 100;
    CHECK_OK(plumb_search(db, "river bank money", &lp, &hl));
    for (size_t i = 0; h && i < h->n; i++) {
        CHECK(h->hit[i].rank_fused == (int)i + 1 && !isnan(h->hit[i].score_fused));
        CHECK(!isnan(h->hit[i].score_dense));
        if (i) CHECK(h->hit[i].score_fused <= h->hit[i - 1].score_fused);
        if (h->hit[i].rank_lex) {
            const plumb_hit *x = &hl->hit[h->hit[i].rank_lex - 1];
            CHECK(x->chunk_id == h->hit[i].chunk_id);
            CHECK_NEAR(x->score, h->hit[i].score_lex, 1e-9);
        }
    }
    plumb_hits_free(h);
    plumb_hits_free(hl);

    /* query expansion: the stored default (10) unless the query says 0;
    ** a stored 0 (read by handles opened after it) is the same as asking */
    plumb_hits *e10 = NULL, *e0 = NULL, *es0 = NULL;
    sp.k = 30;
    sp.qe_docs = -1;
    CHECK_OK(plumb_search(db, "river bank money", &sp, &e10));
    sp.qe_docs = 0;
    CHECK_OK(plumb_search(db, "river bank money", &sp, &e0));
    CHECK_OK(plumb_config_set(db, "qe_docs", "0"));
    {
        char sp_[512];
        snprintf(sp_, sizeof sp_, "%s/store.db", dir);
        plumb_db *dq = NULL;
        CHECK_OK(plumb_open(sp_, NULL, &dq));
        sp.qe_docs = -1;
        if (dq) CHECK_OK(plumb_search(dq, "river bank money", &sp, &es0));
        plumb_close(dq);
    }
    int differ = 0;
    CHECK(e10 && e0 && es0 && e0->n == es0->n);
    for (size_t i = 0; e0 && es0 && i < e0->n && i < es0->n; i++) {
        CHECK(e0->hit[i].chunk_id == es0->hit[i].chunk_id);
        CHECK_NEAR(e0->hit[i].score, es0->hit[i].score, 0);
    }
    for (size_t i = 0; e0 && e10 && i < e0->n && i < e10->n; i++)
        differ |= e0->hit[i].chunk_id != e10->hit[i].chunk_id ||
                  (!isnan(e0->hit[i].score_lex) && e0->hit[i].score_lex != e10->hit[i].score_lex);
    CHECK(differ); /* the expansion changed the lexical list */
    plumb_hits_free(e10);
    plumb_hits_free(e0);
    plumb_hits_free(es0);
    CHECK_RC(plumb_config_set(db, "qe_docs", "101"), PLUMB_MISUSE);
    CHECK_OK(plumb_config_set(db, "qe_docs", "10"));
    sp.qe_docs = 101;
    e0 = NULL;
    CHECK_RC(plumb_search(db, "river bank money", &sp, &e0), PLUMB_MISUSE);
    sp.qe_docs = -1;

    /* a new epoch replaces every vector */
    ep.retrain = 1;
    ep.dim = 8;
    CHECK_OK(plumb_embed(db, &ep, &es));
    CHECK(es.trained == 1 && es.dim == 8 && es.missing == 0);
    compare_all(db, 8, "retrained", 0);
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.vec_dim == 8 && st.vec_count == st.chunks && st.embed_added_since == 0);

    /* side file: a second handle loads it and answers the same */
    setenv("PLUMB_VEC_SIDE_MIN", "0", 1);
    CHECK_OK(plumb_embed(db, NULL, NULL)); /* persists */
    char p[512];
    snprintf(p, sizeof p, "%s/store.db.vec", dir);
    CHECK(access(p, F_OK) == 0);
    char dbp[512];
    snprintf(dbp, sizeof dbp, "%s/store.db", dir);
    plumb_open_params op;
    plumb_open_params_init(&op);
    plumb_db *db2 = NULL;
    CHECK_OK(plumb_open(dbp, &op, &db2));
    float q[8];
    for (int t = 0; t < 10; t++) {
        random_unit(q, 8);
        lex_hit *a, *b;
        size_t na = topk(db, q, 10, PLUMB_VSEARCH_F32, &a), nb = topk(db2, q, 10, PLUMB_VSEARCH_F32, &b);
        CHECK(na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0));
        free(a);
        free(b);
    }
    plumb_close(db2);
    /* damage it: the search ignores it and rebuilds; check says so */
    FILE *f = fopen(p, "r+b");
    if (f) {
        fseek(f, 300, SEEK_SET);
        fputc(0x5a, f);
        fputc(0xa5, f);
        fclose(f);
    }
    CHECK_OK(plumb_open(dbp, &op, &db2));
    /* the store itself (rebuilt) is fine; the file on disk is reported */
    compare_all(db2, 8, "damaged side file ignored", 1);
    plumb_close(db2);
    unsetenv("PLUMB_VEC_SIDE_MIN");
    plumb_close(db);
}

static void test_too_small(void) {
    plumb_db *db = open_new("small.db");
    for (int i = 0; i < 10; i++) add_doc(db, i, i % 4);
    plumb_embed_stats es;
    CHECK_OK(plumb_embed(db, NULL, &es));
    CHECK(es.trained == 0 && es.embedded == 0);
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.vec_dim == 0 && st.vec_count == 0);
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "river", &sp, &h)); /* auto: lexical */
    CHECK(h && h->n > 0 && isnan(h->hit[0].score_dense));
    plumb_hits_free(h);
    sp.mode = PLUMB_MODE_DENSE;
    CHECK_RC(plumb_search(db, "river", &sp, &h), PLUMB_MISUSE);
    CHECK(strstr(plumb_errmsg(), "no vectors") != NULL);
    plumb_close(db);
}

static void test_ann(void) {
    if (!ann_available()) {
        fprintf(stderr, "test_vec: FAISS not built in; ANN part skipped\n");
        return;
    }
    plumb_db *db = open_new("ann.db");
    CHECK_OK(plumb_batch_begin(db));
    for (int i = 0; i < 3000; i++) add_doc(db, i, i % 4);
    CHECK_OK(plumb_batch_commit(db));
    plumb_embed_params ep;
    plumb_embed_params_init(&ep);
    ep.dim = 16;
    ep.ann = "HNSW16,Flat";
    ep.ann_ef = 64;
    CHECK_OK(plumb_embed(db, &ep, NULL));
    plumb_stats st;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.mode = PLUMB_MODE_DENSE;
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "glacier", &sp, &h)); /* loads the store */
    plumb_hits_free(h);
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK_STR(st.ann_type, "HNSW16,Flat");
    CHECK(st.ann_count == 2944 || st.ann_count == 3000 - 3000 % 64);
    /* delete some, add some after the build */
    for (int i = 0; i < 3000; i += 10) {
        char id[32];
        snprintf(id, sizeof id, "d%d", i);
        CHECK_OK(plumb_delete(db, id));
    }
    for (int i = 3000; i < 3100; i++) add_doc(db, i, i % 4);
    ep.ann = "none"; /* keep the built one: it must cope with the changes */
    CHECK_OK(plumb_embed(db, &ep, NULL));
    enum { QD = 16 };
    float q[QD];
    CHECK(st.vec_dim == QD);
    int found = 0, total = 0, tail = 0;
    for (int t = 0; t < 50; t++) {
        /* queries like the data: a stored vector plus noise */
        float noise[QD];
        random_unit(noise, QD);
        reader *r;
        CHECK_OK(store_reader_get(db, &r));
        sqlite3_stmt *sv;
        sqlite3_prepare_v2(r->conn, "SELECT v FROM vectors ORDER BY chunk LIMIT 1 OFFSET ?1", -1, &sv, NULL);
        sqlite3_bind_int(sv, 1, (int)rnd(2500));
        if (sqlite3_step(sv) == SQLITE_ROW) memcpy(q, sqlite3_column_blob(sv, 0), sizeof q);
        sqlite3_finalize(sv);
        store_reader_put(db, r);
        double nq = 0;
        for (int j = 0; j < QD; j++) {
            q[j] += 0.3f * noise[j];
            nq += (double)q[j] * q[j];
        }
        for (int j = 0; j < QD; j++) q[j] /= (float)sqrt(nq);
        ref want[10];
        size_t nw = brute(db, q, QD, 10, want);
        lex_hit *got;
        size_t ng = topk(db, q, 10, PLUMB_VSEARCH_ANN, &got);
        CHECK(ng == nw);
        /* recall by score: a hit counts when it scores at least the exact
        ** 10th (ties between equal vectors make ids ambiguous) */
        double tenth = nw ? want[nw - 1].s : 0;
        for (size_t i = 0; i < ng; i++) {
            found += got[i].score >= tenth - 1e-6;
            /* no deleted chunk: every id is in the table */
            ref all[4000];
            size_t na = brute(db, q, QD, 4000, all);
            int ok = 0;
            for (size_t j = 0; j < na && !ok; j++) ok = all[j].id == got[i].rowid;
            CHECK(ok);
        }
        total += (int)nw;
        for (size_t j = 0; j < nw; j++) tail += want[j].id > 3000;
        free(got);
    }
    double recall = total ? (double)found / total : 0;
    fprintf(stderr, "test_vec: HNSW16 recall@10 %.3f over 50 queries (%d of the exact hits "
            "were added after the build)\n", recall, tail);
    CHECK(recall >= 0.9);
    plumb_close(db);
}

/* Searchers (dense and hybrid) on two threads while the writer adds,
** deletes and embeds, and once retrains: every hit refers to a document
** that exists in the snapshot it was read from (its generation), and no
** search fails. Run under ThreadSanitizer in CI. */
typedef struct cstate {
    plumb_db *db;
    _Atomic int stop;
    _Atomic int searches, failures;
} cstate;

static void *searcher(void *arg) {
    cstate *c = arg;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = 20;
    for (int i = 0; !c->stop; i++) {
        sp.mode = i % 2 ? PLUMB_MODE_HYBRID : PLUMB_MODE_AUTO;
        plumb_hits *h = NULL;
        plumb_status rc = plumb_search(c->db, words[i % NW], &sp, &h);
        if (rc != PLUMB_OK && !(rc == PLUMB_MISUSE && sp.mode == PLUMB_MODE_HYBRID)) {
            fprintf(stderr, "concurrent search: %s: %s\n", plumb_status_str(rc), plumb_errmsg());
            c->failures++;
        }
        for (size_t j = 0; h && j < h->n; j++)
            if (!h->hit[j].doc_id || h->hit[j].doc_id[0] != 'd') c->failures++;
        plumb_hits_free(h);
        c->searches++;
    }
    return NULL;
}

static void test_concurrency(void) {
    plumb_db *db = open_new("conc.db");
    for (int i = 0; i < 200; i++) add_doc(db, i, i % 4);
    plumb_embed_params ep;
    plumb_embed_params_init(&ep);
    ep.dim = 8;
    ep.commit_every = 25;
    CHECK_OK(plumb_embed(db, &ep, NULL));
    cstate c = {db, 0, 0, 0};
    pthread_t th[2];
    for (int t = 0; t < 2; t++) pthread_create(&th[t], NULL, searcher, &c);
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 30; i++) add_doc(db, 200 + round * 30 + i, i % 4);
        for (int i = round; i < 200; i += 9) {
            char id[32];
            snprintf(id, sizeof id, "d%d", i);
            plumb_delete(db, id); /* NOTFOUND after an earlier round is fine */
        }
        ep.retrain = round == 3;
        CHECK_OK(plumb_embed(db, &ep, NULL));
    }
    c.stop = 1;
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    CHECK(c.failures == 0);
    CHECK(c.searches > 0);
    int64_t problems = -1;
    CHECK_OK(vec_verify(db, report, NULL, &problems));
    CHECK(problems == 0);
    plumb_close(db);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/plumb-test-vec-%d", (int)getpid());
    mkdir(dir, 0700);
    test_fusion();
    test_store_and_embedder();
    test_too_small();
    test_ann();
    test_concurrency();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return CHECK_DONE();
}
