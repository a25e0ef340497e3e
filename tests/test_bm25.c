/*
** test_bm25.c -- the in-memory BM25 top-k index against the exhaustive
** reference (PLUMB_SCORER_BM25_SQL: the same formula evaluated by FTS5
** over every matching row) on real text: the bundled sample corpus and,
** when ../shared is present, SciFact. Thousands of random queries drawn
** from the collection's own words, with varying k1, b and field weights,
** before and after deletes, replacements and re-adds; and a second
** handle writing while this one searches (catch-up from the log).
*/
#include "check.h"

#include <math.h>
#include <unistd.h>

static uint64_t rng = 0x243F6A8885A308D3ULL;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* words of the collection, for queries */
static char **vocab;
static size_t nvocab, capvocab;

static int collect_word(void *arg, const char *term, size_t n, size_t start, size_t end) {
    (void)term;
    (void)n;
    const char *text = arg;
    if (nvocab == capvocab) {
        capvocab = capvocab ? capvocab * 2 : 4096;
        vocab = realloc(vocab, capvocab * sizeof *vocab);
    }
    vocab[nvocab++] = strndup(text + start, end - start);
    return nvocab >= 200000;
}

#define NEAR(x, y) (fabs((x) - (y)) <= 1e-9 * (1 + fabs(y)))

/* Same scores rank by rank; same chunks, except that chunks tied (within
** rounding: the two scorers sum in different orders) may swap. */
static int same_hits(plumb_hits *a, plumb_hits *b) {
    if (a->n != b->n) return 0;
    if (!a->n) return 1;
    for (size_t i = 0; i < a->n; i++)
        if (!NEAR(a->hit[i].score, b->hit[i].score)) return 0;
    double last = b->hit[b->n - 1].score;
    for (size_t i = 0; i < a->n; i++) {
        if (NEAR(a->hit[i].score, last)) continue; /* may be cut differently */
        int found = 0;
        for (size_t j = 0; j < b->n && !found; j++)
            found = b->hit[j].chunk_id == a->hit[i].chunk_id && NEAR(b->hit[j].score, a->hit[i].score);
        if (!found) return 0;
    }
    return 1;
}

static int compare_queries(plumb_db *db, int nq, const char *what) {
    int bad = 0;
    for (int q = 0; q < nq; q++) {
        char query[512] = "";
        int nt = 1 + (int)rnd(8);
        for (int t = 0; t < nt && nvocab; t++) {
            const char *w = vocab[rnd((unsigned)nvocab)];
            if (strlen(query) + strlen(w) + 2 >= sizeof query) break;
            strcat(query, t ? " " : "");
            strcat(query, w);
        }
        plumb_search_params a;
        plumb_search_params_init(&a);
        a.k = 1 + (int)rnd(30);
        a.snippet_tokens = 0;
        a.with_text = 0;
        switch (q % 4) {
        case 1: a.bm25_k1 = 1.2; a.bm25_b = 0.75; break;
        case 2: a.weight_title = 3; a.weight_body = 0.5; break;
        case 3: a.bm25_k1 = 0.3; a.bm25_b = 1.0; a.weight_title = 0; break;
        default: break;
        }
        plumb_search_params b = a;
        b.scorer = PLUMB_SCORER_BM25_SQL;
        plumb_hits *x = NULL, *y = NULL;
        CHECK_OK(plumb_search(db, query, &a, &x));
        CHECK_OK(plumb_search(db, query, &b, &y));
        if (x && y && (!same_hits(x, y) || x->matched != y->matched)) {
            if (bad++ < 5)
                fprintf(stderr, "%s: query '%s' k=%d: fast %zu hits (matched %lld), reference "
                        "%zu (matched %lld); first %g vs %g\n", what, query, a.k, x->n,
                        (long long)x->matched, y->n, (long long)y->matched,
                        x->n ? x->hit[0].score : -1, y->n ? y->hit[0].score : -1);
        }
        plumb_hits_free(x);
        plumb_hits_free(y);
    }
    CHECK(bad == 0);
    return bad;
}

static void run_on(const char *corpus_path, int nq, const char *name) {
    char db_path[256];
    snprintf(db_path, sizeof db_path, "/tmp/plumb-test-bm25-%d-%s.db", (int)getpid(), name);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(db_path, NULL, &db));
    if (!db) return;
    const char *paths[1] = {corpus_path};
    plumb_index_stats st;
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, &st));
    CHECK(st.docs_added > 10);

    /* vocabulary from a few documents' text */
    plumb_hits *h = NULL;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = 200;
    const char *seeds[] = {"the research results show", "data index search", "cell protein"};
    for (int s = 0; s < 3; s++) {
        CHECK_OK(plumb_search(db, seeds[s], &sp, &h));
        for (size_t i = 0; h && i < h->n; i++)
            if (h->hit[i].text)
                CHECK_OK(plumb_tokenize(db, h->hit[i].text, strlen(h->hit[i].text), collect_word,
                                        (void *)h->hit[i].text));
        plumb_hits_free(h);
    }
    CHECK(nvocab > 100);
    compare_queries(db, nq, name);

    /* a second handle deletes and replaces documents, as another process
    ** would; this handle must catch up from the log */
    plumb_db *w = NULL;
    CHECK_OK(plumb_open(db_path, NULL, &w));
    plumb_search_params_init(&sp);
    sp.k = 60;
    CHECK_OK(plumb_search(db, "results data", &sp, &h));
    CHECK_OK(plumb_batch_begin(w));
    for (size_t i = 0; h && i < h->n; i++) {
        plumb_status rc = plumb_delete(w, h->hit[i].doc_id); /* chunks of one doc repeat */
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOTFOUND);
        if (i % 3 == 0) { /* re-add some with new text */
            plumb_doc d = {h->hit[i].doc_id, "replaced title", "entirely new words here", NULL, NULL};
            CHECK_OK(plumb_add(w, &d, NULL));
        }
    }
    CHECK_OK(plumb_batch_commit(w));
    plumb_hits_free(h);
    compare_queries(db, nq / 2, name);
    /* re-index: documents from the file come back (replacing the edits) */
    CHECK_OK(plumb_index_paths(w, paths, 1, NULL, &st));
    compare_queries(db, nq / 4, name);
    plumb_close(w);
    plumb_close(db);
    for (size_t i = 0; i < nvocab; i++) free(vocab[i]);
    nvocab = 0;
    char rm[1024];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm'", db_path, db_path, db_path);
    if (system(rm) != 0) CHECK(0);
}

int main(void) {
    const char *td = getenv("PLUMB_TEST_DATA");
    char sample[512];
    /* tests/data/../../data/sample */
    snprintf(sample, sizeof sample, "%s/../../data/sample", td ? td : "tests/data");
    if (access(sample, R_OK) == 0) run_on(sample, 2000, "sample");
    else { fprintf(stderr, "sample corpus not found at %s\n", sample); CHECK(0); }

    const char *sd = getenv("PLUMB_SHARED_DATA");
    char scifact[512];
    snprintf(scifact, sizeof scifact, "%s/beir/scifact/corpus.jsonl", sd ? sd : "../shared/data");
    if (access(scifact, R_OK) == 0) run_on(scifact, 1000, "scifact");
    else fprintf(stderr, "SKIP scifact part: %s not found\n", scifact);
    free(vocab);
    return CHECK_DONE();
}
