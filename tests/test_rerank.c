/* test_rerank.c -- the feature reranker (rerank.c) against hand-computed
** values, its weights text, the search hook, and coordinate ascent
** (tune.c) on a synthetic task with a known optimum. */
#include "check.h"
#include "plumb_impl.h"

#include <math.h>
#include <unistd.h>

/* A query "a b c" of three known terms with idf 1, 2 and 3. */
static rerank_qinfo query3(void) {
    rerank_qinfo qi;
    memset(&qi, 0, sizeof qi);
    qi.nd = 3;
    for (int i = 0; i < 3; i++) {
        qi.id[i] = (uint32_t)(10 * (i + 1));
        qi.idf[i] = i + 1;
        qi.pc[i] = 0.01 * (i + 1);
        qi.mult[i] = 1;
        qi.seq[i] = i;
    }
    qi.nseq = 3;
    qi.idf_sum = 6;
    qi.k1 = 0.9;
    qi.b = 0.4;
    qi.wt = qi.wb = 1;
    qi.avg_t = 2;
    qi.avg_b = 8;
    return qi;
}

static void test_features(void) {
    rerank_qinfo qi = query3();
    /* title: a x | body: x a b x c x b x c   (slots; -1 = not a query term) */
    const int16_t doc[] = {0, -1, -1, 0, 1, -1, 2, -1, 1, -1, 2};
    double f[RERANK_NFEAT];
    rerank_doc_features(&qi, doc, 2, 9, f);
    /* K = k1 (1 - b + b dl/avgdl) = 0.9 (0.6 + 0.4 * 11/10) = 0.936 */
    double K = 0.936;
    /* tf: a 2 (title 1, body 1), b 2, c 2 */
    CHECK_NEAR(f[RERANK_BM25], (1 + 2 + 3) * 2 * 1.9 / (2 + K), 1e-9);
    CHECK_NEAR(f[RERANK_COVER], 1.0, 1e-12);        /* all three terms */
    CHECK_NEAR(f[RERANK_TITLE], 1.0 / 6, 1e-12);    /* only a (idf 1) in the title */
    /* body: a@1 b@2 c@4 b@6 c@8: smallest span holding a, b, c is 1..4,
    ** w = 4, m = 3 of nq = 3: (3/3) * (3/4) */
    CHECK_NEAR(f[RERANK_WINDOW], 0.75, 1e-12);
    /* query bigrams (a,b) and (b,c): a b adjacent at 1-2; b c never
    ** adjacent (2-4, 6-8 have a gap) */
    CHECK_NEAR(f[RERANK_BIGRAM], 0.5, 1e-12);
    /* proximity: pairs (a@1,b@2) d=1, (b@2,c@4) d=2, (c@4,b@6) d=2,
    ** (b@6,c@8) d=2: acc a = 2/1 = 2; acc b = 1/1 + 3/4 + 3/4 + 3/4 = 3.25;
    ** acc c = 2/4 * 3 = 1.5; the title has a single occurrence */
    double prox = 1 * 2 * 1.9 / (2 + K) + 2 * 3.25 * 1.9 / (3.25 + K) + 3 * 1.5 * 1.9 / (1.5 + K);
    CHECK_NEAR(f[RERANK_PROX], prox, 1e-9);
    CHECK_NEAR(f[RERANK_LEN], log(12.0), 1e-12);
    /* query likelihood, mu 300, dl 11: tf 2 each, p(t|C) .01 .02 .03 */
    CHECK_NEAR(f[RERANK_QL], log(5.0 / 311) + log(8.0 / 311) + log(11.0 / 311), 1e-9);
    /* title BM25: a once in a title of 2 (avg 2): Kt = 0.9, 1 * 1.9 / 1.9 */
    CHECK_NEAR(f[RERANK_TBM25], 1.0, 1e-12);

    /* no match at all: every feature 0 but length */
    const int16_t none[] = {-1, -1, -1};
    rerank_doc_features(&qi, none, 0, 3, f);
    CHECK(f[RERANK_BM25] == 0 && f[RERANK_COVER] == 0 && f[RERANK_TITLE] == 0);
    CHECK(f[RERANK_PROX] == 0 && f[RERANK_WINDOW] == 0 && f[RERANK_BIGRAM] == 0);

    /* window with a repeated term: c a x a b -> smallest span with a, b, c
    ** is "c a x a b" = 5? no: "c a" then b at 4: span 0..4 = 5 positions;
    ** m = 3: 3/5. Phrase "a b" is found (3-4), "b c" not. */
    const int16_t rep[] = {2, 0, -1, 0, 1};
    rerank_doc_features(&qi, rep, 0, 5, f);
    CHECK_NEAR(f[RERANK_WINDOW], 0.6, 1e-12);
    CHECK_NEAR(f[RERANK_BIGRAM], 0.5, 1e-12);
    /* two of three terms in a field: (2/3) * (2/w) */
    const int16_t two[] = {0, -1, -1, 2};
    rerank_doc_features(&qi, two, 0, 4, f);
    CHECK_NEAR(f[RERANK_WINDOW], (2.0 / 3) * (2.0 / 4), 1e-12);
    CHECK_NEAR(f[RERANK_COVER], 4.0 / 6, 1e-12);
    /* the two fields are separate: a in the title, b in the body make no
    ** window, no bigram and no proximity */
    const int16_t split[] = {0, 1};
    rerank_doc_features(&qi, split, 1, 1, f);
    CHECK(f[RERANK_WINDOW] == 0 && f[RERANK_BIGRAM] == 0 && f[RERANK_PROX] == 0);
}

static void test_combination(void) {
    rerank_cand c[3];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 3; i++) { c[i].rowid = 100 + i; c[i].order = i; }
    /* raw BM25 5, 10, 15 -> 0, 0.5, 1; DENSE NAN -> 0; cover as is */
    c[0].feat[RERANK_BM25] = 5;  c[0].feat[RERANK_DENSE] = 0.9; c[0].feat[RERANK_COVER] = 1;
    c[1].feat[RERANK_BM25] = 10; c[1].feat[RERANK_DENSE] = NAN; c[1].feat[RERANK_COVER] = 0;
    c[2].feat[RERANK_BM25] = 15; c[2].feat[RERANK_DENSE] = 0.1; c[2].feat[RERANK_COVER] = 0.5;
    rerank_normalise(c, 3);
    CHECK_NEAR(c[1].feat[RERANK_BM25], 0.5, 1e-12);
    CHECK_NEAR(c[0].feat[RERANK_DENSE], 1, 1e-12);
    CHECK_NEAR(c[1].feat[RERANK_DENSE], 0, 1e-12);
    CHECK_NEAR(c[2].feat[RERANK_DENSE], 0, 1e-12);
    CHECK_NEAR(c[2].feat[RERANK_COVER], 0.5, 1e-12);
    double w[RERANK_NFEAT] = {0};
    w[RERANK_BM25] = 1;
    w[RERANK_DENSE] = 0.8;
    w[RERANK_COVER] = 0.5;
    /* scores: c0 0 + 0.8 + 0.5 = 1.3; c1 0.5; c2 1 + 0 + 0.25 = 1.25 */
    rerank_score(c, 3, w, NULL);
    CHECK(c[0].rowid == 100 && c[1].rowid == 102 && c[2].rowid == 101);
    CHECK_NEAR(c[0].score, 1.3, 1e-12);
    CHECK_NEAR(c[1].score, 1.25, 1e-12);
    /* ties keep stage-1 order */
    memset(w, 0, sizeof w);
    rerank_score(c, 3, w, NULL);
    CHECK(c[0].order == 0 && c[1].order == 1 && c[2].order == 2);

    /* weights text */
    double v[RERANK_NFEAT];
    CHECK(rerank_weights_parse("dense=2.5,bigram=-0.25", v) == 0);
    CHECK(v[RERANK_DENSE] == 2.5 && v[RERANK_BIGRAM] == -0.25);
    CHECK(v[RERANK_BM25] == rerank_default_weights[RERANK_BM25]);
    CHECK(rerank_weights_parse("nosuch=1", v) == -1);
    CHECK(rerank_weights_parse("bm25=x", v) == -1);
    buf b = {0};
    rerank_weights_format(rerank_default_weights, &b);
    CHECK(rerank_weights_parse(b.p, v) == 0);
    for (int i = 0; i < RERANK_NFEAT; i++) CHECK_NEAR(v[i], rerank_default_weights[i], 1e-6);
    buf_free(&b);
}

/* Relevance is a known function of two features: gain 2 when
** bm25 + 2 dense > 1.6, 1 when > 1.0, else 0. The other features are
** noise. Coordinate ascent from the shipped weights must reach nDCG@10 =
** 1 and recover a dense weight close to 2 (relative to bm25's 1). */
static void test_tune_synthetic(void) {
    enum { NQ = 60, PER = 30 };
    static double feat[NQ * PER * RERANK_NFEAT];
    static int rel[NQ * PER];
    uint64_t s = 12345;
    for (size_t i = 0; i < NQ * PER; i++) {
        double *f = feat + i * RERANK_NFEAT;
        for (int k = 0; k < RERANK_NFEAT; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            f[k] = (double)(s >> 11) / 9007199254740992.0;
        }
        double g = f[RERANK_BM25] + 2 * f[RERANK_DENSE];
        rel[i] = g > 2.2 ? 2 : g > 1.6 ? 1 : 0;
    }
    double w[RERANK_NFEAT];
    memcpy(w, rerank_default_weights, sizeof w);
    double before = 0;
    double after = tune_fit(feat, rel, NULL, NQ, PER, w, 20, &before);
    fprintf(stderr, "synthetic: nDCG@10 %.4f -> %.4f, weights bm25 %.2f dense %.2f\n", before,
            after, w[RERANK_BM25], w[RERANK_DENSE]);
    CHECK(before < 0.97);
    CHECK(after > 0.995);
    /* the ratio of the two weights that matter, around 2 */
    CHECK(w[RERANK_BM25] > 0);
    if (w[RERANK_BM25] > 0)
        CHECK(w[RERANK_DENSE] / w[RERANK_BM25] > 1.4 && w[RERANK_DENSE] / w[RERANK_BM25] < 2.8);
}

/* Trees (trees.c): the text form by hand, round trips, refusals. */
static void test_trees_text(void) {
    /* tree 1: f2 <= 0.5 ? 1 : -1; tree 2: f0 <= 0.25 ? 0.5 : (f3 <= 0.1 ? 2 : 3) */
    const char *text = "2:0.5,=1,=-1 0:0.25,=0.5,3:0.10000000000000001,=2,=3";
    rerank_trees *t = NULL;
    CHECK(trees_parse(text, &t) == 0);
    if (!t) return;
    CHECK(t->ntrees == 2 && t->nnodes == 8);
    double f[RERANK_NFEAT] = {0};
    f[0] = 0.3, f[2] = 0.7, f[3] = 0.05; /* -1 + 2 */
    CHECK_NEAR(trees_predict(t, f), 1.0, 1e-15);
    f[2] = 0.5, f[3] = 0.2; /* on the threshold goes left: 1 + 3 */
    CHECK_NEAR(trees_predict(t, f), 4.0, 1e-15);
    f[0] = 0.25; /* 1 + 0.5 */
    CHECK_NEAR(trees_predict(t, f), 1.5, 1e-15);
    buf b = {0};
    trees_format(t, &b);
    buf_putc(&b, 0);
    CHECK_STR(b.p, text);
    buf_free(&b);
    trees_free(t);
    CHECK(trees_parse("", &t) == 0 && t == NULL);
    CHECK(trees_predict(NULL, f) == 0);
    const char *bad[] = {"2:0.5,=1", "13:0.5,=1,=2", "-1:0.5,=1,=2", "=nan", "=1,", "2:x,=1,=2",
                         "=1  =2", "2:0.5,=1,=2,=3", "=inf",
                         /* strtod/strtol would skip the space or take the sign */
                         "2: 0.5,=1,=2", "= 1", "=1  2:0.5,=1,=2", " 2:0.5,=1,=2", "+2:0.5,=1,=2",
                         "2:+0.5,=1,=2", "=+1", "=1 ", "=1\t", "=nan(1)", "2:inf,=1,=2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = (rerank_trees *)1;
        CHECK(trees_parse(bad[i], &t) == -1);
        CHECK(t == NULL);
        if (t != NULL && t != (rerank_trees *)1) trees_free(t);
    }
    /* a subnormal output or threshold (strtod sets ERANGE for them) is
    ** what trees_format prints, and must read back bit for bit */
    const char *tiny = "0:4.9406564584124654e-324,=-2.2250738585072009e-308,=9.9999999999999694e-311";
    t = NULL;
    CHECK(trees_parse(tiny, &t) == 0 && t);
    if (t) {
        double z[RERANK_NFEAT] = {0};
        CHECK(trees_predict(t, z) == -2.2250738585072009e-308);
        buf tb = {0};
        trees_format(t, &tb);
        buf_putc(&tb, 0);
        CHECK_STR(tb.p, tiny);
        buf_free(&tb);
        trees_free(t);
    }
}

static double ndcg10_of(const double *score, const int *rel, size_t n, double idcg) {
    /* the order by score, best first, ties by position (selection of 10) */
    int used[64] = {0};
    double dcg = 0;
    for (int r = 0; r < 10 && r < (int)n; r++) {
        int b = -1;
        for (size_t i = 0; i < n; i++)
            if (!used[i] && (b < 0 || score[i] > score[b])) b = (int)i;
        used[b] = 1;
        dcg += rel[b] / log2(r + 2.0);
    }
    return dcg / idcg;
}

/* Relevance no linear model can express: relevant when exactly one of
** two features is above 0.5 (XOR). The linear ascent stays low, the
** trees learned on 150 queries must rank 50 new ones far better, and a
** stored-and-parsed model scores exactly as the learned one. */
static void test_trees_fit(void) {
    enum { NQ = 200, NT = 150, PER = 24 };
    static double feat[NQ * PER * RERANK_NFEAT], F[NQ * PER];
    static int rel[NQ * PER];
    size_t qoff[NQ], qn[NQ];
    double idcg[NQ];
    uint64_t s = 777;
    for (size_t q = 0; q < NQ; q++) {
        qoff[q] = q * PER;
        qn[q] = PER;
        int nrel = 0;
        for (size_t i = q * PER; i < (q + 1) * PER; i++) {
            double *f = feat + i * RERANK_NFEAT;
            for (int k = 0; k < RERANK_NFEAT; k++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                f[k] = (double)(s >> 11) / 9007199254740992.0;
            }
            rel[i] = (f[RERANK_BM25] > 0.5) != (f[RERANK_DENSE] > 0.5);
            nrel += rel[i];
        }
        idcg[q] = 0;
        for (int r = 0; r < nrel && r < 10; r++) idcg[q] += 1 / log2(r + 2.0);
    }
    /* linear: the best coordinate ascent can do on the training queries */
    double w[RERANK_NFEAT];
    memcpy(w, rerank_default_weights, sizeof w);
    double lin_train = tune_fit(feat, rel, NULL, NT, PER, w, 20, NULL);
    for (size_t i = 0; i < NQ * PER; i++) F[i] = rerank_dot(w, feat + i * RERANK_NFEAT);
    trees_data d = {feat, rel, NT * PER, qoff, qn, idcg, NT};
    trees_cfg cfg = {100, 8, 20, 0.1};
    rerank_trees *t = trees_fit(&d, F, &cfg);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(t->ntrees == 100);
    /* held-out queries: linear against linear + trees */
    double lin = 0, tr = 0;
    double sl[PER], st[PER];
    for (size_t q = NT; q < NQ; q++) {
        for (size_t i = 0; i < PER; i++) {
            const double *f = feat + (q * PER + i) * RERANK_NFEAT;
            sl[i] = rerank_dot(w, f);
            st[i] = sl[i] + trees_predict(t, f);
        }
        lin += ndcg10_of(sl, rel + q * PER, PER, idcg[q]);
        tr += ndcg10_of(st, rel + q * PER, PER, idcg[q]);
    }
    lin /= NQ - NT;
    tr /= NQ - NT;
    fprintf(stderr, "xor: linear train %.4f, held out linear %.4f, trees %.4f\n", lin_train, lin,
            tr);
    CHECK(lin < 0.75);
    CHECK(tr > 0.9);
    CHECK(tr > lin + 0.2);
    /* the text form scores bit for bit as the learned model */
    buf b = {0};
    trees_format(t, &b);
    buf_putc(&b, 0);
    rerank_trees *u = NULL;
    CHECK(!b.oom && trees_parse(b.p, &u) == 0 && u);
    for (size_t i = 0; u && i < NQ * PER; i += 7) {
        const double *f = feat + i * RERANK_NFEAT;
        if (trees_predict(t, f) != trees_predict(u, f)) {
            CHECK(!"a parsed model scores differently");
            break;
        }
    }
    buf_free(&b);
    trees_free(u);
    trees_free(t);
}

/* The search hook: reranked hits carry score_rerank, scores descend, and
** the tail stays below the reranked head. */
static void test_search(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/plumb-test-rerank-%d.db", (int)getpid());
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    if (!db) return;
    const char *texts[] = {
        "the quick brown fox jumps over the lazy dog",
        "brown dogs and quick foxes are rarely seen together",
        "a fox, quick as ever, ran far from the brown field",
        "lazy afternoons with a dog",
        "quick brown fox",
        "nothing here matches at all",
    };
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        plumb_doc d = {id, i == 3 ? "quick brown fox" : NULL, texts[i], NULL, NULL};
        CHECK_OK(plumb_add(db, &d, NULL));
    }
    plumb_search_params p;
    plumb_search_params_init(&p);
    p.mode = PLUMB_MODE_LEXICAL;
    p.rerank = 3;
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "quick brown fox", &p, &h));
    if (h) {
        CHECK(h->n == 5);
        for (size_t i = 0; i < h->n; i++) {
            CHECK(i < 3 ? !isnan(h->hit[i].score_rerank) : isnan(h->hit[i].score_rerank));
            if (i) CHECK(h->hit[i].score < h->hit[i - 1].score);
        }
        /* the phrase in order, short: d4 first */
        CHECK_STR(h->hit[0].doc_id, "d4");
    }
    plumb_hits_free(h);
    p.rerank = 0;
    CHECK_OK(plumb_search(db, "quick brown fox", &p, &h));
    if (h) for (size_t i = 0; i < h->n; i++) CHECK(isnan(h->hit[i].score_rerank));
    plumb_hits_free(h);
    /* stored trees (plumb tune's rerank_trees) join the linear score: a
    ** constant tree adds exactly its output; one that rewards title
    ** coverage puts the document titled "quick brown fox" first */
    p.rerank = 3;
    double base[3] = {0};
    char first[3][8] = {{0}};
    CHECK_OK(plumb_search(db, "quick brown fox", &p, &h));
    for (size_t i = 0; h && i < 3 && i < h->n; i++) {
        base[i] = h->hit[i].score_rerank;
        snprintf(first[i], sizeof first[i], "%s", h->hit[i].doc_id);
    }
    plumb_hits_free(h);
    const char *key[1] = {"rerank_trees"}, *val[1] = {"=5"};
    CHECK_OK(store_put_settings(db, key, val, 1));
    plumb_close(db);
    db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    if (!db) return;
    CHECK_OK(plumb_search(db, "quick brown fox", &p, &h));
    for (size_t i = 0; h && i < 3 && i < h->n; i++) {
        CHECK_STR(h->hit[i].doc_id, first[i]);
        CHECK_NEAR(h->hit[i].score_rerank, base[i] + 5, 1e-9);
    }
    plumb_hits_free(h);
    char tree[64];
    snprintf(tree, sizeof tree, "%d:0.5,=0,=100", RERANK_TITLE);
    val[0] = tree;
    CHECK_OK(store_put_settings(db, key, val, 1));
    plumb_close(db);
    db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    if (!db) return;
    CHECK(strcmp(first[0], "d3") != 0); /* not first without the tree */
    CHECK_OK(plumb_search(db, "quick brown fox", &p, &h));
    if (h && h->n) CHECK_STR(h->hit[0].doc_id, "d3");
    plumb_hits_free(h);
    /* new weights drop trees learned on top of the old ones */
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.rerank_trees == 1);
    CHECK_OK(plumb_config_set(db, "rerank_weights", NULL));
    plumb_close(db);
    db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    if (!db) return;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.rerank_trees == 0);
    /* a damaged model is refused at open, naming the key */
    val[0] = "4:0.5,=0";
    CHECK_OK(store_put_settings(db, key, val, 1));
    plumb_close(db);
    db = NULL;
    CHECK_RC(plumb_open(path, NULL, &db), PLUMB_CORRUPT);
    CHECK(strstr(plumb_errmsg(), "rerank_trees") != NULL);
    plumb_close(db);
    char f[300];
    const char *sfx[] = {"", "-wal", "-shm", ".bm25"};
    for (int i = 0; i < 4; i++) {
        snprintf(f, sizeof f, "%s%s", path, sfx[i]);
        unlink(f);
    }
}

/* Settings refused at open: the message quotes the stored value (read
** before the statement holding it is finalized: ASan saw the freed text),
** and trees parsed from an earlier row are freed (LeakSanitizer). */
static void test_settings_refused(void) {
    char path[256], f[300];
    snprintf(path, sizeof path, "/tmp/plumb-test-rerank-set-%d.db", (int)getpid());
    char url[700];
    memset(url, 'x', sizeof url - 1);
    url[sizeof url - 1] = 0;
    const char *cases[3][3] = {
        {"rerank_trees", "4:0.5,=0", "4:0.5,=0"},
        {"rerank_weights", "bogus=1", "bogus=1"},
        {"rerank_url", url, "rerank_url"}, /* after rerank_trees in key order */
    };
    for (int c = 0; c < 3; c++) {
        plumb_db *db = NULL;
        CHECK_OK(plumb_open(path, NULL, &db));
        if (!db) return;
        /* good trees beside the bad value (case 0: the bad trees alone) */
        const char *key[2] = {"rerank_trees", cases[c][0]}, *val[2] = {"=1", cases[c][1]};
        if (c == 0) val[0] = cases[0][1];
        CHECK_OK(store_put_settings(db, key, val, c == 0 ? 1 : 2));
        plumb_close(db);
        db = NULL;
        CHECK_RC(plumb_open(path, NULL, &db), PLUMB_CORRUPT);
        CHECK(strstr(plumb_errmsg(), cases[c][2]) != NULL);
        plumb_close(db);
        const char *sfx[] = {"", "-wal", "-shm", ".bm25"};
        for (int i = 0; i < 4; i++) {
            snprintf(f, sizeof f, "%s%s", path, sfx[i]);
            unlink(f);
        }
    }
}

/* Every query's reranked hits as "chunk:score_rerank " with the score's
** exact bits (%a), and whether any hit was reranked. */
static int rerank_run(plumb_db *db, char *out, size_t n) {
    static const char *qs[] = {"index search ranking bm25 length", "vector embeddings",
                               "how do I delete a document", "chunk size tokens overlap",
                               "retrieval augmented generation prompt", "query", "fusion rank"};
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.mode = PLUMB_MODE_LEXICAL;
    sp.k = 20;
    sp.rerank = 20;
    sp.snippet_tokens = 0;
    sp.log = 0;
    int reranked = 0;
    out[0] = 0;
    for (size_t q = 0; q < sizeof qs / sizeof *qs; q++) {
        plumb_hits *h = NULL;
        CHECK_OK(plumb_search(db, qs[q], &sp, &h));
        for (size_t i = 0; h && i < h->n; i++) {
            char one[80];
            snprintf(one, sizeof one, "%lld:%a ", (long long)h->hit[i].chunk_id,
                     h->hit[i].score_rerank);
            strncat(out, one, n - strlen(out) - 1);
            reranked |= !isnan(h->hit[i].score_rerank);
        }
        strncat(out, "| ", n - strlen(out) - 1);
        plumb_hits_free(h);
    }
    CHECK(strlen(out) < n - 1); /* not cut short */
    return reranked;
}

/* The reranker's features are the same whether a candidate's terms come
** from the BM25 index's forward lists or from tokenizing its text: a
** handle that built its index from the chunks table (forward lists), one
** that loaded the side file, one without forward lists (PLUMB_FWD_MAX=0:
** every candidate tokenized) and one with forward lists for only the
** first chunks (some candidates of a query tokenized, some not) give the
** same order and the same score_rerank, bit for bit. */
static void test_forward_paths(void) {
    const char *src = getenv("PLUMB_SOURCE_DIR");
    char sample[512], dbp[256], side[300];
    snprintf(sample, sizeof sample, "%s/data/sample", src ? src : ".");
    snprintf(dbp, sizeof dbp, "/tmp/plumb-test-rerank-fwd-%d.db", (int)getpid());
    snprintf(side, sizeof side, "%s.bm25", dbp);
    setenv("PLUMB_BM25_SIDE_MIN_CHUNKS", "0", 1); /* a side file for this small index */
    unsetenv("PLUMB_FWD_MAX");
    enum { OUT = 1 << 16 };
    char *want = malloc(OUT), *got = malloc(OUT);
    if (!want || !got) { CHECK(0); free(want); free(got); return; }
    const char *paths[1] = {sample};
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(dbp, NULL, &db));
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, NULL)); /* writes the side file */
    CHECK(rerank_run(db, want, OUT)); /* built from the chunks table */
    plumb_close(db);
    CHECK(access(side, R_OK) == 0);
    const char *cases[][2] = {
        {NULL, "side file loaded"},
        {"0", "side file loaded, no forward lists"},
        {"300", "forward lists for the first chunks only"},
    };
    for (int c = 0; c < 3; c++) {
        if (cases[c][0]) setenv("PLUMB_FWD_MAX", cases[c][0], 1);
        if (c == 2) unlink(side); /* rebuilt from the chunks table */
        db = NULL;
        CHECK_OK(plumb_open(dbp, NULL, &db));
        CHECK(rerank_run(db, got, OUT));
        if (strcmp(got, want)) {
            fprintf(stderr, "reranked hits differ (%s):\n  want %.300s\n  got  %.300s\n",
                    cases[c][1], want, got);
            CHECK(0);
        }
        plumb_close(db);
        unsetenv("PLUMB_FWD_MAX");
    }
    free(want);
    free(got);
    char rm[1200];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s'-wal '%s'-shm '%s'", dbp, dbp, dbp, side);
    if (system(rm) != 0) CHECK(0);
}

int main(void) {
    test_features();
    test_combination();
    test_tune_synthetic();
    test_trees_text();
    test_trees_fit();
    test_search();
    test_settings_refused();
    test_forward_paths();
    return CHECK_DONE();
}
