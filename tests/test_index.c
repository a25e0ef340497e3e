/*
** test_index.c -- the store and BM25 through the public API: scores
** against hand-computed values and a brute-force reference, adds,
** replacements, deletes, errors, format checks, and readers running
** while a writer changes the index.
*/
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <unistd.h>

static char dir[256];

static void dbpath(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

static plumb_db *open_plain(const char *name, double k1, double b) {
    char p[512];
    dbpath(p, sizeof p, name);
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.language = "none"; /* no stemming: terms are the words */
    op.stopwords = 0;
    op.chunk_tokens = 0;  /* one chunk per document */
    op.bm25_k1 = k1;
    op.bm25_b = b;
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, &op, &db));
    return db;
}

static void add(plumb_db *db, const char *id, const char *title, const char *text) {
    plumb_doc d = {id, title, text, NULL, NULL};
    CHECK_OK(plumb_add(db, &d, NULL));
}

static double score_of(plumb_hits *h, const char *id) {
    for (size_t i = 0; i < h->n; i++)
        if (!strcmp(h->hit[i].doc_id, id)) return h->hit[i].score;
    return -1;
}

/* BM25 with k1 = 0.9, b = 0.4, worked by hand on three documents. */
static void test_hand_computed(void) {
    plumb_db *db = open_plain("hand.db", 0.9, 0.4);
    add(db, "d1", "apple", "apple banana");               /* lengths 1 + 2 = 3 */
    add(db, "d2", "", "banana cherry cherry");            /* 0 + 3 = 3 */
    add(db, "d3", "cherry pie", "apple apple apple banana date"); /* 2 + 5 = 7 */
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "apple", &sp, &h));
    /* N = 3, df(apple) = 2: idf = ln(1 + 1.5/2.5) = ln 1.6; avgdl = 13/3 */
    double idf = log(1.6), avgdl = 13.0 / 3.0;
    double n1 = 0.9 * (0.6 + 0.4 * 3 / avgdl), n3 = 0.9 * (0.6 + 0.4 * 7 / avgdl);
    double s1 = idf * 2 * 1.9 / (2 + n1); /* tf = 1 (title) + 1 (body) */
    double s3 = idf * 3 * 1.9 / (3 + n3); /* tf = 3 (body) */
    CHECK(h && h->n == 2);
    CHECK_NEAR(s1, 0.6403249, 1e-6); /* the formula itself, checked on paper */
    CHECK_NEAR(score_of(h, "d1"), s1, 1e-9);
    CHECK_NEAR(score_of(h, "d3"), s3, 1e-9);
    CHECK(h->matched == 2);
    CHECK_STR(h->hit[0].doc_id, s1 > s3 ? "d1" : "d3");
    plumb_hits_free(h);

    /* two terms add up; a repeated query term counts twice */
    CHECK_OK(plumb_search(db, "cherry apple", &sp, &h));
    double idfc = log(1 + 1.5 / 2.5); /* df(cherry) = 2 too */
    double n2 = 0.9 * (0.6 + 0.4 * 3 / avgdl);
    CHECK_NEAR(score_of(h, "d2"), idfc * 2 * 1.9 / (2 + n2), 1e-9);
    CHECK_NEAR(score_of(h, "d3"), s3 + idfc * 1 * 1.9 / (1 + n3), 1e-9);
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "apple apple", &sp, &h));
    CHECK_NEAR(score_of(h, "d1"), 2 * s1, 1e-9);
    plumb_hits_free(h);

    /* field weights: title x2 -> BM25F lengths and tfs weighted */
    sp.weight_title = 2;
    sp.weight_body = 1;
    CHECK_OK(plumb_search(db, "apple", &sp, &h));
    double wavg = (2.0 * 3 + 10) / 3; /* title tokens 3, body tokens 10 */
    double wn1 = 0.9 * (0.6 + 0.4 * (2 * 1 + 2) / wavg);
    CHECK_NEAR(score_of(h, "d1"), idf * 3 * 1.9 / (3 + wn1), 1e-9);
    plumb_hits_free(h);

    /* k1 and b per query */
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    sp.bm25_k1 = 1.2;
    sp.bm25_b = 0.75;
    CHECK_OK(plumb_search(db, "apple", &sp, &h));
    double m1 = 1.2 * (0.25 + 0.75 * 3 / avgdl);
    CHECK_NEAR(score_of(h, "d1"), idf * 2 * 2.2 / (2 + m1), 1e-9);
    plumb_hits_free(h);

    /* FTS5's own bm25() ordering is available as a baseline */
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    sp.scorer = PLUMB_SCORER_FTS5;
    CHECK_OK(plumb_search(db, "apple", &sp, &h));
    CHECK(h->n == 2 && h->hit[0].score > 0);
    plumb_hits_free(h);

    /* delete changes N and df */
    CHECK_OK(plumb_delete(db, "d1"));
    CHECK_RC(plumb_delete(db, "d1"), PLUMB_NOTFOUND);
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    CHECK_OK(plumb_search(db, "apple", &sp, &h));
    CHECK(h->n == 1);
    /* N = 2, df = 1: idf = ln(1 + 1.5/1.5) = ln 2; avgdl = 10/2 */
    double dn3 = 0.9 * (0.6 + 0.4 * 7 / 5.0);
    CHECK_NEAR(score_of(h, "d3"), log(2) * 3 * 1.9 / (3 + dn3), 1e-9);
    plumb_hits_free(h);
    plumb_close(db);
}

/* ------------------------------------------------------------------ */
/* Brute-force reference over random collections                       */
/* ------------------------------------------------------------------ */

#define NV 40
#define MAXD 400

typedef struct rdoc {
    int live;
    char id[16];
    int tt[8], nt;   /* title term ids */
    int bt[60], nb;  /* body term ids */
} rdoc;

static uint64_t rng = 88172645463325252ULL;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng % n);
}
static int zipf_term(void) { /* skewed: low ids frequent */
    unsigned a = rnd(NV), b = rnd(NV);
    return (int)(a < b ? a : b);
}

static void text_of(const int *t, int n, char *out) {
    out[0] = 0;
    for (int i = 0; i < n; i++) sprintf(out + strlen(out), "%sw%d", i ? " " : "", t[i]);
}

static void put(plumb_db *db, rdoc *d) {
    char title[256], body[1024];
    text_of(d->tt, d->nt, title);
    text_of(d->bt, d->nb, body);
    add(db, d->id, title, body);
    d->live = 1;
}

static void randomize(rdoc *d, int i) {
    snprintf(d->id, sizeof d->id, "r%d", i);
    d->nt = (int)rnd(5);
    d->nb = 1 + (int)rnd(59);
    for (int k = 0; k < d->nt; k++) d->tt[k] = zipf_term();
    for (int k = 0; k < d->nb; k++) d->bt[k] = zipf_term();
}

typedef struct ref { const char *id; double s; } ref;
static int cmp_ref(const void *a, const void *b) {
    double x = ((const ref *)a)->s, y = ((const ref *)b)->s;
    return (x < y) - (x > y);
}

static void compare_with_reference(plumb_db *db, rdoc *docs, int nd, int nq) {
    double k1 = 0.9, b = 0.4, wt = 1.0, wb = 1.0;
    for (int q = 0; q < nq; q++) {
        if (q % 3 == 1) { wt = 2.5; wb = 0.7; k1 = 1.3; b = 0.8; }
        else if (q % 3 == 2) { wt = 0.0; wb = 1.0; k1 = 0.5; b = 0.0; }
        else { wt = 1.0; wb = 1.0; k1 = 0.9; b = 0.4; }
        int qt[4], nqt = 1 + (int)rnd(4);
        char qs[128] = "";
        for (int i = 0; i < nqt; i++) {
            qt[i] = (int)rnd(NV + 5); /* some terms match nothing */
            sprintf(qs + strlen(qs), "%sw%d", i ? " " : "", qt[i]);
        }
        /* reference */
        double N = 0, tot = 0;
        for (int i = 0; i < nd; i++)
            if (docs[i].live) { N++; tot += wt * docs[i].nt + wb * docs[i].nb; }
        double avg = tot / N;
        ref r[MAXD];
        int nr = 0;
        double dfs[4] = {0, 0, 0, 0};
        for (int k = 0; k < nqt; k++)
            for (int j = 0; j < nd; j++) {
                if (!docs[j].live) continue;
                int has = 0;
                for (int m = 0; m < docs[j].nt; m++) has |= docs[j].tt[m] == qt[k];
                for (int m = 0; m < docs[j].nb; m++) has |= docs[j].bt[m] == qt[k];
                dfs[k] += has;
            }
        for (int i = 0; i < nd; i++) {
            if (!docs[i].live) continue;
            double s = 0;
            int any = 0;
            for (int k = 0; k < nqt; k++) {
                double df = dfs[k];
                double tft = 0, tfb = 0;
                for (int m = 0; m < docs[i].nt; m++) tft += docs[i].tt[m] == qt[k];
                for (int m = 0; m < docs[i].nb; m++) tfb += docs[i].bt[m] == qt[k];
                if (tft + tfb > 0) any = 1;
                double tf = wt * tft + wb * tfb;
                double dl = wt * docs[i].nt + wb * docs[i].nb;
                if (tf > 0)
                    s += log(1 + (N - df + 0.5) / (df + 0.5)) * tf * (k1 + 1) /
                         (tf + k1 * (1 - b + b * dl / avg));
            }
            if (any) r[nr++] = (ref){docs[i].id, s};
        }
        qsort(r, (size_t)nr, sizeof *r, cmp_ref);
        plumb_search_params sp;
        plumb_search_params_init(&sp);
        sp.rerank = 0; /* BM25 scores, not stage 2's */
        sp.k = 10;
        sp.bm25_k1 = k1;
        sp.bm25_b = b;
        sp.weight_title = wt;
        sp.weight_body = wb;
        sp.snippet_tokens = 0;
        plumb_hits *h = NULL;
        CHECK_OK(plumb_search(db, qs, &sp, &h));
        if (!h) continue;
        size_t want = nr < 10 ? (size_t)nr : 10;
        CHECK(h->n == want);
        CHECK(h->matched == nr);
        for (size_t i = 0; i < h->n && i < want; i++) {
            /* same score at every rank; ids equal unless tied */
            CHECK_NEAR(h->hit[i].score, r[i].s, 1e-9);
            double exact = -1;
            for (int j = 0; j < nr; j++)
                if (!strcmp(r[j].id, h->hit[i].doc_id)) exact = r[j].s;
            CHECK_NEAR(exact, h->hit[i].score, 1e-9);
            if (i > 0) CHECK(h->hit[i - 1].score >= h->hit[i].score);
        }
        plumb_hits_free(h);
    }
}

static void test_reference(void) {
    plumb_db *db = open_plain("ref.db", 0.9, 0.4);
    static rdoc docs[MAXD];
    int nd = 300;
    CHECK_OK(plumb_batch_begin(db));
    for (int i = 0; i < nd; i++) { randomize(&docs[i], i); put(db, &docs[i]); }
    CHECK_OK(plumb_batch_commit(db));
    compare_with_reference(db, docs, nd, 300);
    /* delete a third, replace a third with new content, add some */
    for (int i = 0; i < nd; i++) {
        if (i % 3 == 0) { CHECK_OK(plumb_delete(db, docs[i].id)); docs[i].live = 0; }
        else if (i % 3 == 1) {
            char id[16];
            strcpy(id, docs[i].id);
            randomize(&docs[i], i);
            strcpy(docs[i].id, id);
            put(db, &docs[i]);
        }
    }
    for (int i = nd; i < nd + 50; i++) { randomize(&docs[i], i); put(db, &docs[i]); }
    nd += 50;
    compare_with_reference(db, docs, nd, 300);
    /* re-add the deleted ones */
    for (int i = 0; i < nd; i += 3) if (!docs[i].live) put(db, &docs[i]);
    compare_with_reference(db, docs, nd, 200);
    plumb_close(db);
}

/* ------------------------------------------------------------------ */
/* Documents, results and errors                                       */
/* ------------------------------------------------------------------ */

static void test_docs_and_errors(void) {
    char p[512];
    dbpath(p, sizeof p, "docs.db");
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, NULL, &db)); /* defaults: english, stop words */
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.format_version == PLUMB_FORMAT_VERSION);
    CHECK_STR(st.language, "english");
    CHECK(st.stopwords == 1 && st.chunk_tokens == 512 && st.chunk_overlap == 64);
    CHECK_NEAR(st.bm25_k1, 0.9, 1e-12);
    CHECK_NEAR(st.bm25_b, 0.4, 1e-12);
    int64_t g0 = st.generation;

    plumb_doc d = {"guide", "Running the Engine",
                   "The engines were running smoothly. Nothing else happened here.",
                   "{\"lang\":\"en\",\"n\":3}", "/docs/guide.txt"};
    plumb_add_result ar;
    CHECK_OK(plumb_add(db, &d, &ar));
    CHECK(ar == PLUMB_ADDED);
    CHECK_OK(plumb_add(db, &d, &ar));
    CHECK(ar == PLUMB_UNCHANGED);
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.generation == g0 + 1); /* the unchanged add wrote nothing */
    CHECK(st.documents == 1 && st.chunks == 1);
    /* "running engine"; body minus "the": 8 (were, nothing, else, here are not stop words) */
    CHECK(st.tokens_title == 2 && st.tokens_body == 8);

    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "engine runs", &sp, &h)); /* stems match */
    CHECK(h && h->n == 1);
    if (h && h->n == 1) {
        CHECK_STR(h->hit[0].doc_id, "guide");
        CHECK_STR(h->hit[0].title, "Running the Engine");
        CHECK_STR(h->hit[0].source, "/docs/guide.txt");
        CHECK_STR(h->hit[0].metadata, "{\"lang\":\"en\",\"n\":3}");
        CHECK_STR(h->hit[0].text, d.text);
        CHECK(h->hit[0].chunk_seq == 0);
        CHECK(strstr(h->hit[0].snippet, "[engines]") != NULL);
        CHECK(strstr(h->hit[0].snippet, "[running]") != NULL);
        CHECK(h->generation == g0 + 1);
    }
    plumb_hits_free(h);

    /* replace with new content */
    d.text = "Completely different words about databases.";
    CHECK_OK(plumb_add(db, &d, &ar));
    CHECK(ar == PLUMB_REPLACED);
    CHECK_OK(plumb_search(db, "smoothly", &sp, &h));
    CHECK(h && h->n == 0);
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "database", &sp, &h));
    CHECK(h && h->n == 1);
    plumb_hits_free(h);

    /* empty and stop-word-only queries: no hits, no error */
    CHECK_OK(plumb_search(db, "", &sp, &h));
    CHECK(h && h->n == 0);
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "the of and", &sp, &h));
    CHECK(h && h->n == 0);
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "\"quoted\" OR NOT (x) *", &sp, &h)); /* FTS5 syntax is inert */
    plumb_hits_free(h);

    /* invalid input */
    plumb_doc bad = {"bad", "t", "caf\xC3", NULL, NULL};
    CHECK_RC(plumb_add(db, &bad, NULL), PLUMB_CORRUPT);
    CHECK(strstr(plumb_errmsg(), "byte 3") != NULL);
    bad.text = "fine";
    bad.metadata = "[1,2]";
    CHECK_RC(plumb_add(db, &bad, NULL), PLUMB_CORRUPT);
    bad.metadata = "{\"a\":";
    CHECK_RC(plumb_add(db, &bad, NULL), PLUMB_CORRUPT);
    bad.id = "";
    CHECK_RC(plumb_add(db, &bad, NULL), PLUMB_MISUSE);
    CHECK_RC(plumb_add(NULL, &d, NULL), PLUMB_MISUSE);
    CHECK_RC(plumb_search(db, NULL, &sp, &h), PLUMB_MISUSE);
    CHECK(h == NULL);
    sp.k = -1;
    CHECK_RC(plumb_search(db, "x", &sp, &h), PLUMB_MISUSE);
    CHECK_RC(plumb_search(db, "caf\xC3", NULL, &h), PLUMB_MISUSE);
    CHECK_RC(plumb_delete(db, "nope"), PLUMB_NOTFOUND);
    CHECK(strstr(plumb_errmsg(), "nope") != NULL);

    /* batches: rollback loses the batch, commit keeps it */
    CHECK_OK(plumb_batch_begin(db));
    CHECK_RC(plumb_batch_begin(db), PLUMB_MISUSE);
    plumb_doc e = {"temp", NULL, "ephemeral words", NULL, NULL};
    CHECK_OK(plumb_add(db, &e, NULL));
    CHECK_RC(plumb_add(db, &bad, NULL), PLUMB_MISUSE); /* a bad add inside a batch */
    CHECK_OK(plumb_batch_rollback(db));
    CHECK_OK(plumb_search(db, "ephemeral", NULL, &h));
    CHECK(h && h->n == 0);
    plumb_hits_free(h);
    CHECK_OK(plumb_batch_begin(db));
    CHECK_OK(plumb_add(db, &e, NULL));
    CHECK_OK(plumb_batch_commit(db));
    CHECK_OK(plumb_search(db, "ephemeral", NULL, &h));
    CHECK(h && h->n == 1);
    plumb_hits_free(h);

    /* a title-only document is searchable by its title */
    plumb_doc t = {"titled", "Zeppelin manual", NULL, NULL, NULL};
    CHECK_OK(plumb_add(db, &t, NULL));
    CHECK_OK(plumb_search(db, "zeppelin", NULL, &h));
    CHECK(h && h->n == 1);
    plumb_hits_free(h);
    plumb_close(db);

    /* read-only handle refuses writes but searches */
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.readonly = 1;
    CHECK_OK(plumb_open(p, &op, &db));
    CHECK_RC(plumb_add(db, &e, NULL), PLUMB_MISUSE);
    CHECK_OK(plumb_search(db, "zeppelin", NULL, &h));
    CHECK(h && h->n == 1);
    plumb_hits_free(h);
    plumb_close(db);
    plumb_close(NULL);
}

static void test_open_errors(void) {
    char p[512];
    plumb_db *db = (plumb_db *)1;
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    dbpath(p, sizeof p, "missing.db");
    CHECK_RC(plumb_open(p, &op, &db), PLUMB_NOTFOUND);
    CHECK(db == NULL);
    CHECK(access(p, F_OK) != 0); /* not created */

    /* a text file is not an index */
    dbpath(p, sizeof p, "notes.txt");
    FILE *f = fopen(p, "w");
    fputs("these are my notes, not a database, and long enough to be a header..........\n"
          "................................................................................\n",
          f);
    fclose(f);
    CHECK_RC(plumb_open(p, NULL, &db), PLUMB_FORMAT);
    CHECK(strstr(plumb_errmsg(), "notes.txt") != NULL);

    /* someone else's SQLite database */
    dbpath(p, sizeof p, "other.db");
    sqlite3 *c;
    sqlite3_open(p, &c);
    sqlite3_exec(c, "CREATE TABLE t(x); INSERT INTO t VALUES(1)", NULL, NULL, NULL);
    sqlite3_close(c);
    CHECK_RC(plumb_open(p, NULL, &db), PLUMB_FORMAT);

    /* a future format version */
    dbpath(p, sizeof p, "future.db");
    CHECK_OK(plumb_open(p, NULL, &db));
    plumb_close(db);
    sqlite3_open(p, &c);
    sqlite3_exec(c, "UPDATE settings SET value = 99 WHERE key = 'format_version'", NULL, NULL, NULL);
    sqlite3_close(c);
    CHECK_RC(plumb_open(p, NULL, &db), PLUMB_FORMAT);
    CHECK(strstr(plumb_errmsg(), "99") != NULL);

    /* a corrupt file: valid header, garbage pages */
    dbpath(p, sizeof p, "corrupt.db");
    CHECK_OK(plumb_open(p, NULL, &db));
    for (int i = 0; i < 50; i++) {
        char id[16], txt[64];
        snprintf(id, sizeof id, "d%d", i);
        snprintf(txt, sizeof txt, "document number %d with some words", i);
        plumb_doc d = {id, NULL, txt, NULL, NULL};
        CHECK_OK(plumb_add(db, &d, NULL));
    }
    plumb_close(db);
    f = fopen(p, "r+b");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    for (long off = 4096; off < sz; off += 97) { fseek(f, off, SEEK_SET); fputc(0xA5, f); }
    fclose(f);
    plumb_status rc = plumb_open(p, NULL, &db);
    if (rc == PLUMB_OK) { /* damage may surface only when read */
        plumb_hits *h = NULL;
        rc = plumb_search(db, "document words", NULL, &h);
        plumb_hits_free(h);
        plumb_close(db);
    }
    CHECK(rc == PLUMB_CORRUPT || rc == PLUMB_FORMAT);

    /* bad parameters */
    plumb_open_params_init(&op);
    op.language = "klingon";
    dbpath(p, sizeof p, "klingon.db");
    CHECK_RC(plumb_open(p, &op, &db), PLUMB_MISUSE);
    CHECK(strstr(plumb_errmsg(), "klingon") != NULL);
    plumb_open_params_init(&op);
    op.bm25_b = 1.5;
    CHECK_RC(plumb_open(p, &op, &db), PLUMB_MISUSE);
    CHECK_RC(plumb_open(NULL, NULL, &db), PLUMB_MISUSE);
}

/* ------------------------------------------------------------------ */
/* Readers while a writer works                                        */
/* ------------------------------------------------------------------ */

typedef struct rstate {
    plumb_db *db;
    atomic_int *stop;
    int errors, searches, bad;
} rstate;

static void *reader_main(void *arg) {
    rstate *s = arg;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    sp.k = 20;
    while (!atomic_load(s->stop)) {
        plumb_hits *h = NULL;
        if (plumb_search(s->db, "alpha gamma", &sp, &h)) { s->errors++; continue; }
        s->searches++;
        /* every hit must be whole: id and text agree (writer writes
        ** "alpha <id> gamma" for each id) */
        for (size_t i = 0; i < h->n; i++) {
            char want[64];
            snprintf(want, sizeof want, "alpha %s gamma", h->hit[i].doc_id);
            if (!h->hit[i].text || strcmp(h->hit[i].text, want)) s->bad++;
        }
        plumb_hits_free(h);
    }
    return NULL;
}

static void test_concurrency(void) {
    plumb_db *db = open_plain("conc.db", 0.9, 0.4);
    atomic_int stop = 0;
    enum { NR = 4 };
    pthread_t th[NR];
    rstate rs[NR];
    for (int i = 0; i < NR; i++) {
        rs[i] = (rstate){db, &stop, 0, 0, 0};
        pthread_create(&th[i], NULL, reader_main, &rs[i]);
    }
    /* a second handle on the same file, as another process would have */
    char p[512];
    dbpath(p, sizeof p, "conc.db");
    plumb_db *db2 = NULL;
    CHECK_OK(plumb_open(p, NULL, &db2));
    rstate r2 = {db2, &stop, 0, 0, 0};
    pthread_t t2;
    pthread_create(&t2, NULL, reader_main, &r2);
    for (int i = 0; i < 400; i++) {
        char id[32], text[64];
        snprintf(id, sizeof id, "doc%d", i);
        snprintf(text, sizeof text, "alpha %s gamma", id);
        plumb_doc d = {id, NULL, text, NULL, NULL};
        CHECK_OK(plumb_add(db, &d, NULL));
        if (i % 5 == 4) {
            snprintf(id, sizeof id, "doc%d", i - 2);
            CHECK_OK(plumb_delete(db, id));
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < NR; i++) pthread_join(th[i], NULL);
    pthread_join(t2, NULL);
    int searches = r2.searches;
    for (int i = 0; i < NR; i++) {
        CHECK(rs[i].errors == 0);
        CHECK(rs[i].bad == 0);
        searches += rs[i].searches;
    }
    CHECK(r2.errors == 0 && r2.bad == 0);
    CHECK(searches > 0);
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.documents == 400 - 80);
    plumb_close(db2);
    plumb_close(db);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/plumb-test-index-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_hand_computed();
    test_reference();
    test_docs_and_errors();
    test_open_errors();
    test_concurrency();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!check_failures && system(cmd) != 0) return 1;
    return CHECK_DONE();
}
