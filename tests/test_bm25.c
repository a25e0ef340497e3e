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
#include "plumb_impl.h"

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
        a.rerank = 0; /* BM25 scores, not stage 2's */
        a.mode = PLUMB_MODE_LEXICAL; /* hybrid expands the query (RM3): test_rm3 */
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
    sp.rerank = 0; /* BM25 scores, not stage 2's */
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
    sp.rerank = 0; /* BM25 scores, not stage 2's */
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

/* The BM25 snapshot beside the index: written by plumb_index_paths, loaded
** by the next handle, ignored when stale, foreign or damaged, and never a
** reason for different results. */
static void search_ids(plumb_db *db, const char *q, char *out, size_t n) {
    plumb_hits *h = NULL;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.rerank = 0; /* BM25 scores, not stage 2's */
    sp.k = 20;
    sp.snippet_tokens = 0;
    out[0] = 0;
    CHECK_OK(plumb_search(db, q, &sp, &h));
    for (size_t i = 0; h && i < h->n; i++) {
        char one[64];
        snprintf(one, sizeof one, "%lld:%.12g ", (long long)h->hit[i].chunk_id, h->hit[i].score);
        strncat(out, one, n - strlen(out) - 1);
    }
    plumb_hits_free(h);
}

static void test_side_file(void) {
    const char *src = getenv("PLUMB_SOURCE_DIR");
    char sample[512], dbp[256], side[300], want[4096], got[4096];
    snprintf(sample, sizeof sample, "%s/data/sample", src ? src : ".");
    snprintf(dbp, sizeof dbp, "/tmp/plumb-test-side-%d.db", (int)getpid());
    snprintf(side, sizeof side, "%s.bm25", dbp);
    const char *paths[1] = {sample};
    const char *q = "index search ranking bm25 length";
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(dbp, NULL, &db));
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, NULL));
    search_ids(db, q, want, sizeof want);
    CHECK(strlen(want) > 0);
    plumb_close(db);
    CHECK(access(side, R_OK) == 0);

    /* a new handle loads it: same results */
    CHECK_OK(plumb_open(dbp, NULL, &db));
    search_ids(db, q, got, sizeof got);
    CHECK_STR(got, want);
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.lex_postings > 0);
    /* stale: change the index without refreshing the side file; the next
    ** handle loads the old snapshot and replays the log */
    CHECK_OK(plumb_delete(db, "faq-1"));
    plumb_doc d = {"new-doc", "bm25 length ranking", "index search ranking bm25 length", NULL, NULL};
    CHECK_OK(plumb_add(db, &d, NULL));
    search_ids(db, q, want, sizeof want);
    plumb_close(db);
    CHECK_OK(plumb_open(dbp, NULL, &db));
    search_ids(db, q, got, sizeof got);
    CHECK_STR(got, want);
    plumb_close(db);

    /* damaged: flip bytes in the body; it must be ignored, not trusted */
    FILE *f = fopen(side, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 200, SEEK_SET);
        fputc(0x5A, f);
        fputc(0xA5, f);
        fclose(f);
    }
    CHECK_OK(plumb_open(dbp, NULL, &db));
    search_ids(db, q, got, sizeof got);
    CHECK_STR(got, want);
    plumb_close(db);

    /* foreign: another index's side file under this name is ignored */
    char other[256], oside[300];
    snprintf(other, sizeof other, "/tmp/plumb-test-side-%d-b.db", (int)getpid());
    snprintf(oside, sizeof oside, "%s.bm25", other);
    CHECK_OK(plumb_open(other, NULL, &db));
    plumb_doc o = {"x", "bm25", "index search ranking bm25 length bm25 bm25", NULL, NULL};
    CHECK_OK(plumb_add(db, &o, NULL));
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, NULL)); /* writes its side file */
    plumb_close(db);
    CHECK(rename(oside, side) == 0);
    CHECK_OK(plumb_open(dbp, NULL, &db));
    search_ids(db, q, got, sizeof got);
    CHECK_STR(got, want);
    plumb_close(db);

    char rm[3000];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s'-wal '%s'-shm '%s' '%s' '%s'-wal '%s'-shm", dbp, dbp,
             dbp, side, other, other, other);
    if (system(rm) != 0) CHECK(0);
}

/* The side file's bytes, read back from disk by a reader written here
** from index/FORMAT.md alone: the header's counts account for the file
** exactly, every padding byte is zero, the postings are grouped by term
** and by ordinal, the forward lists account for their ids exactly and
** name known terms, and the header's hash is hash64 of the body as it
** lies on disk. The writer streams the body and hashes as it goes; this is
** the independent check that what it hashed is what it wrote. */
typedef struct disk_hdr {
    char magic[8];
    uint32_t version, endian;
    int64_t index_id, generation, log_seq;
    uint32_t nterms, nord;
    uint64_t npost, narena;
    int64_t live;
    double tot_t, tot_b;
    uint32_t ndead, pad;
    uint64_t nfwd;
    uint64_t body_hash;
} disk_hdr;

static size_t up8(size_t x) { return (x + 7) & ~(size_t)7; }

static int zeros(const unsigned char *p, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        if (p[i]) return 0;
    return 1;
}

static void check_side_bytes(const char *side, int64_t want_live, int want_dead) {
    CHECK(sizeof(disk_hdr) == 112);
    FILE *f = fopen(side, "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *all = malloc(size > 0 ? (size_t)size : 1);
    CHECK(all && size >= 112 && fread(all, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    if (!all || size < 112) { free(all); return; }
    disk_hdr h;
    memcpy(&h, all, sizeof h);
    const unsigned char *b = all + sizeof h;
    size_t n = (size_t)size - sizeof h;
    CHECK(!memcmp(h.magic, "PLMBBM25", 8) && h.version == 2 && h.endian == 0x01020304u);
    CHECK(h.live == want_live && h.ndead <= h.nord && h.live == (int64_t)(h.nord - h.ndead));
    CHECK(h.nterms > 0 && h.npost >= h.nterms);
    CHECK(want_dead ? h.ndead > 0 : h.ndead == 0); /* the rewrite happened */
    size_t o_st = up8(h.narena), o_ps = o_st + up8((size_t)h.nterms * 16);
    size_t o_cid = o_ps + up8((size_t)h.npost * 8), o_lt = o_cid + up8((size_t)h.nord * 8);
    size_t o_lb = o_lt + up8((size_t)h.nord * 4), o_dead = o_lb + up8((size_t)h.nord * 4);
    size_t o_has = o_dead + up8(h.nord), o_fwd = o_has + up8(h.nord);
    size_t total = o_fwd + up8((size_t)h.nfwd * 4);
    CHECK(h.nfwd > 0); /* a small index keeps every chunk's list */
    CHECK(n == total);
    if (n != total) { free(all); return; }
    CHECK(hash64(b, n, 0) == h.body_hash);
    /* every gap between a section's end and the next section is zero */
    CHECK(zeros(b, h.narena, o_st) && zeros(b, o_st + (size_t)h.nterms * 16, o_ps));
    CHECK(zeros(b, o_ps + (size_t)h.npost * 8, o_cid) && zeros(b, o_cid + (size_t)h.nord * 8, o_lt));
    CHECK(zeros(b, o_lt + (size_t)h.nord * 4, o_lb) && zeros(b, o_lb + (size_t)h.nord * 4, o_dead));
    CHECK(zeros(b, o_dead + h.nord, o_has) && zeros(b, o_has + h.nord, o_fwd));
    CHECK(zeros(b, o_fwd + (size_t)h.nfwd * 4, total));
    uint64_t used = 0;
    int bad = 0;
    for (uint32_t i = 0; i < h.nterms; i++) {
        uint32_t off, cnt, pad2;
        uint16_t len, pad;
        memcpy(&off, b + o_st + i * 16, 4);
        memcpy(&len, b + o_st + i * 16 + 4, 2);
        memcpy(&pad, b + o_st + i * 16 + 6, 2);
        memcpy(&cnt, b + o_st + i * 16 + 8, 4);
        memcpy(&pad2, b + o_st + i * 16 + 12, 4);
        bad += pad || pad2 || len == 0 || (uint64_t)off + len > h.narena || cnt == 0;
        uint32_t prev = 0;
        for (uint32_t j = 0; j < cnt && used + j < h.npost; j++) {
            uint32_t ord;
            memcpy(&ord, b + o_ps + (used + j) * 8, 4);
            bad += ord >= h.nord || (j && ord <= prev);
            prev = ord;
        }
        used += cnt;
    }
    CHECK(bad == 0);
    CHECK(used == h.npost);
    uint32_t ndead = 0;
    for (uint32_t o = 0; o < h.nord; o++) ndead += b[o_dead + o] != 0;
    CHECK(ndead == h.ndead);
    /* forward lists: lt + lb ids for each ordinal flagged, in order */
    uint64_t ids = 0;
    for (uint32_t o = 0; o < h.nord; o++) {
        uint32_t lt, lb;
        memcpy(&lt, b + o_lt + (size_t)o * 4, 4);
        memcpy(&lb, b + o_lb + (size_t)o * 4, 4);
        CHECK(b[o_has + o] <= 1);
        if (b[o_has + o]) ids += (uint64_t)lt + lb;
    }
    CHECK(ids == h.nfwd);
    bad = 0;
    for (uint64_t i = 0; i < h.nfwd; i++) {
        uint32_t id;
        memcpy(&id, b + o_fwd + i * 4, 4);
        bad += id >= h.nterms;
    }
    CHECK(bad == 0);
    free(all);
}

static void count_problem(void *arg, const char *part, const char *problem) {
    fprintf(stderr, "plumb_check: %s: %s\n", part, problem);
    ++*(int *)arg;
}

static void test_side_bytes(void) {
    const char *src = getenv("PLUMB_SOURCE_DIR");
    char sample[512], dbp[256], side[300];
    snprintf(sample, sizeof sample, "%s/data/sample", src ? src : ".");
    snprintf(dbp, sizeof dbp, "/tmp/plumb-test-bytes-%d.db", (int)getpid());
    snprintf(side, sizeof side, "%s.bm25", dbp);
    const char *paths[1] = {sample};
    plumb_db *db = NULL;
    plumb_stats st;
    int reported = 0;
    int64_t problems = -1;
    CHECK_OK(plumb_open(dbp, NULL, &db));
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, NULL));
    CHECK_OK(plumb_stats_get(db, &st));
    check_side_bytes(side, st.chunks, 0);
    plumb_close(db);
    /* a new handle loads it; plumb_check finds the file whole and the
    ** loaded index equal to a rebuild */
    CHECK_OK(plumb_open(dbp, NULL, &db));
    CHECK_OK(plumb_check(db, count_problem, &reported, &problems));
    CHECK(problems == 0 && reported == 0);
    /* dead ordinals: delete a third of the documents and index the files
    ** again (they come back as new ordinals), which rewrites the file */
    plumb_hits *h = NULL;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = 1000;
    sp.rerank = 0;
    CHECK_OK(plumb_search(db, "index search data results ranking", &sp, &h));
    CHECK(h && h->n > 10);
    for (size_t i = 0; h && i < h->n; i += 3) {
        plumb_status rc = plumb_delete(db, h->hit[i].doc_id);
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOTFOUND);
    }
    plumb_hits_free(h);
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, NULL));
    CHECK_OK(plumb_stats_get(db, &st));
    check_side_bytes(side, st.chunks, 1);
    plumb_close(db);
    CHECK_OK(plumb_open(dbp, NULL, &db));
    problems = -1;
    CHECK_OK(plumb_check(db, count_problem, &reported, &problems));
    CHECK(problems == 0 && reported == 0);
    plumb_close(db);
    /* a forward list that names other terms than its chunk's, in a file
    ** whose checksum is right: the handle loads it, and plumb_check finds
    ** it against the chunks table */
    FILE *f = fopen(side, "r+b");
    CHECK(f != NULL);
    if (f) {
        disk_hdr dh;
        CHECK(fread(&dh, sizeof dh, 1, f) == 1);
        size_t o_lt = up8(dh.narena) + up8((size_t)dh.nterms * 16) + up8((size_t)dh.npost * 8) +
                      up8((size_t)dh.nord * 8);
        size_t o_dead = o_lt + 2 * up8((size_t)dh.nord * 4), o_has = o_dead + up8(dh.nord);
        size_t o_fwd = o_has + up8(dh.nord), n = o_fwd + up8((size_t)dh.nfwd * 4);
        unsigned char *b = malloc(n);
        CHECK(b && dh.nfwd > 0 && dh.nterms > 1 && fread(b, 1, n, f) == n);
        /* the first id of the first live chunk's list (ordinal 0 may be dead) */
        size_t at = 0;
        uint32_t o = 0;
        for (; b && o < dh.nord; o++) {
            uint32_t lt, lb;
            memcpy(&lt, b + o_lt + (size_t)o * 4, 4);
            memcpy(&lb, b + o_lt + up8((size_t)dh.nord * 4) + (size_t)o * 4, 4);
            if (b[o_has + o] && !b[o_dead + o] && lt + lb > 0) break;
            if (b[o_has + o]) at += (size_t)lt + lb;
        }
        CHECK(o < dh.nord);
        if (b && o < dh.nord && dh.nterms > 1) {
            uint32_t id;
            memcpy(&id, b + o_fwd + at * 4, 4);
            id = (id + 1) % dh.nterms;
            memcpy(b + o_fwd + at * 4, &id, 4);
            dh.body_hash = hash64(b, n, 0);
            CHECK(fseek(f, 0, SEEK_SET) == 0 && fwrite(&dh, sizeof dh, 1, f) == 1 &&
                  fwrite(b, 1, n, f) == n);
        }
        free(b);
        fclose(f);
    }
    CHECK_OK(plumb_open(dbp, NULL, &db));
    problems = -1;
    reported = 0;
    CHECK_RC(plumb_check(db, count_problem, &reported, &problems), PLUMB_CORRUPT);
    CHECK(problems == 1 && reported == 1);
    plumb_close(db);
    char rm[1200];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s'-wal '%s'-shm '%s'", dbp, dbp, dbp, side);
    if (system(rm) != 0) CHECK(0);
}

/* ---- RM3 query expansion (bm25_topk_rm3) against the formula by hand ---- */

static const char *const rm3_docs[][2] = {
    {"d1", "cat dog dog fish"},       {"d2", "cat fish fish fish bird"},
    {"d3", "dog tree tree"},          {"d4", "bird lamp tree cat"},
    {"d5", "lamp lamp fish"},         {"d6", "tree bird"},
};
#define RM3_ND 6
static const char *const rm3_words[] = {"cat", "dog", "fish", "bird", "tree", "lamp"};
#define RM3_NW 6

static int rm3_tf(int d, int w) {
    int n = 0;
    const char *p = rm3_docs[d][1];
    size_t l = strlen(rm3_words[w]);
    while (*p) {
        size_t m = strcspn(p, " ");
        if (m == l && !strncmp(p, rm3_words[w], l)) n++;
        p += m + (p[m] == ' ');
    }
    return n;
}

/* BM25 of every document for query weights qw[word] (k1 0.9, b 0.4, no titles). */
static void rm3_bm25(const double *qw, double *score) {
    double avg = 0, len[RM3_ND];
    for (int d = 0; d < RM3_ND; d++) {
        len[d] = 0;
        for (int w = 0; w < RM3_NW; w++) len[d] += rm3_tf(d, w);
        avg += len[d] / RM3_ND;
    }
    for (int d = 0; d < RM3_ND; d++) {
        score[d] = 0;
        for (int w = 0; w < RM3_NW; w++) {
            int df = 0;
            for (int e = 0; e < RM3_ND; e++) df += rm3_tf(e, w) > 0;
            double idf = log(1 + (RM3_ND - df + 0.5) / (df + 0.5)), tf = rm3_tf(d, w);
            if (tf > 0 && qw[w] > 0)
                score[d] += qw[w] * idf * tf * 1.9 / (tf + 0.9 * (0.6 + 0.4 * len[d] / avg));
        }
    }
}

/* By hand: the RM3 scores s2[] of query word qw0 with `docs` feedback
** documents, `terms` kept, weight orig on the query. Ties (scores, then
** weights) go to the earlier document / word, as the engine's rowid and
** term id orders do for this corpus. */
static void rm3_hand(int qw0, int docs, int terms, double orig, double max_df, double *s2) {
    double qw[RM3_NW] = {0}, s1[RM3_ND];
    qw[qw0] = 1;
    rm3_bm25(qw, s1);
    int ord[RM3_ND], nz = 0;
    for (int d = 0; d < RM3_ND; d++)
        if (s1[d] > 0) ord[nz++] = d;
    for (int i = 1; i < nz; i++) /* stable insertion sort, best first */
        for (int j = i; j > 0 && s1[ord[j]] > s1[ord[j - 1]]; j--) {
            int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t;
        }
    if (docs > nz) docs = nz;
    double e[RM3_NW] = {0};
    for (int i = 0; i < docs; i++) {
        int d = ord[i], len = 0;
        for (int w = 0; w < RM3_NW; w++) len += rm3_tf(d, w);
        for (int w = 0; w < RM3_NW; w++) e[w] += exp(s1[d] - s1[ord[0]]) * rm3_tf(d, w) / len;
    }
    for (int w = 0; w < RM3_NW; w++) { /* words in too many documents, but the query's */
        int df = 0;
        for (int d = 0; d < RM3_ND; d++) df += rm3_tf(d, w) > 0;
        if (w != qw0 && df > max_df * RM3_ND) e[w] = 0;
    }
    double kept[RM3_NW] = {0}, sum = 0;
    for (int r = 0; r < terms; r++) {
        int best = -1;
        for (int w = 0; w < RM3_NW; w++)
            if (kept[w] == 0 && e[w] > 0 && (best < 0 || e[w] > e[best])) best = w;
        if (best < 0) break;
        kept[best] = e[best];
        sum += e[best];
    }
    for (int w = 0; w < RM3_NW; w++) qw[w] = orig * (w == qw0) + (1 - orig) * kept[w] / sum;
    rm3_bm25(qw, s2);
}

/* The document (index into rm3_docs) of chunk id c, or -1. */
static int rm3_doc(const int64_t *cid, int64_t c) {
    for (int j = 0; j < RM3_ND; j++)
        if (cid[j] == c) return j;
    return -1;
}

static void test_rm3(void) {
    char dbp[256];
    snprintf(dbp, sizeof dbp, "/tmp/plumb-test-rm3-%d.db", (int)getpid());
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(dbp, NULL, &db));
    if (!db) return;
    for (int d = 0; d < RM3_ND; d++) {
        plumb_doc doc = {rm3_docs[d][0], NULL, rm3_docs[d][1], NULL, NULL};
        CHECK_OK(plumb_add(db, &doc, NULL));
    }
    /* chunk id -> document, from a lexical search that matches every one */
    int64_t cid[RM3_ND] = {0};
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.rerank = 0;
    sp.k = 100;
    plumb_hits *all = NULL;
    CHECK_OK(plumb_search(db, "cat dog fish bird tree lamp", &sp, &all));
    for (size_t i = 0; all && i < all->n; i++)
        cid[all->hit[i].doc_id[1] - '1'] = all->hit[i].chunk_id;
    CHECK(all && all->n == RM3_ND);
    plumb_hits_free(all);

    reader *r;
    CHECK_OK(store_reader_get(db, &r));
    sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    int64_t gen = -1;
    if (sqlite3_step(r->st_gen) == SQLITE_ROW) gen = sqlite3_column_int64(r->st_gen, 0);
    sqlite3_reset(r->st_gen);
    CHECK_OK(bm25_sync(db->bm25, r, gen));
    /* "cat" 2/3: the two feedback documents tie (same score and length),
    ** so it alone cannot see P(D|Q) or |D|; "fish" 3/3 and "tree" 4/2 have
    ** feedback documents of different scores and lengths. Each case twice:
    ** the scratch (tacc) must be clean for the next query. */
    /* The last: max_df 0.4 of 6 documents leaves only dog and lamp (2
    ** documents each) besides the query's cat (3). */
    static const struct { int w, docs, terms; double orig, max_df; int matched; } cs[] = {
        {0, 2, 3, 0.6, 1, 3}, {2, 3, 3, 0.5, 1, 3}, {4, 4, 2, 0.3, 1, 3}, {0, 2, 3, 0.6, 1, 3},
        {0, 2, 3, 0.6, 0.4, 3}};
    for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
        double s2[RM3_ND];
        rm3_hand(cs[c].w, cs[c].docs, cs[c].terms, cs[c].orig, cs[c].max_df, s2);
        lex_query q = {0};
        CHECK_OK(lex_query_parse(r->tok, rm3_words[cs[c].w], &q));
        bm25_rm3 fb = {cs[c].docs, cs[c].terms, cs[c].orig, cs[c].max_df};
        lex_hit *h = NULL;
        size_t n = 0;
        int64_t matched = 0;
        CHECK_OK(bm25_topk_rm3(db->bm25, &r->scratch, &q, 0.9, 0.4, 1, 1, 10, &fb, &h, &n,
                               &matched));
        int want = 0;
        for (int d = 0; d < RM3_ND; d++) want += s2[d] > 0;
        CHECK(n == (size_t)want);
        CHECK(matched == cs[c].matched); /* the first pass */
        CHECK(n > (size_t)cs[c].matched); /* the expansion reaches more documents */
        for (size_t i = 0; i < n; i++) {
            int d = rm3_doc(cid, h[i].rowid);
            CHECK(d >= 0);
            if (d < 0) continue;
            if (!NEAR(h[i].score, s2[d]))
                fprintf(stderr, "rm3 case %zu: %s scored %.12g, by hand %.12g\n", c,
                        rm3_docs[d][0], h[i].score, s2[d]);
            CHECK(NEAR(h[i].score, s2[d]));
            if (i) CHECK(h[i].score <= h[i - 1].score);
        }
        free(h);
        lex_query_free(&q);
    }
    /* off (docs 0, or orig 1): exactly bm25_topk */
    {
        double qw[RM3_NW] = {1, 0, 0, 0, 0, 0}, s1[RM3_ND];
        rm3_bm25(qw, s1);
        lex_query q = {0};
        CHECK_OK(lex_query_parse(r->tok, "cat", &q));
        for (int off = 0; off < 2; off++) {
            bm25_rm3 fb = {off ? 2 : 0, 3, off ? 1.0 : 0.6, 1};
            lex_hit *h0 = NULL;
            size_t n0 = 0;
            int64_t m0 = 0;
            CHECK_OK(bm25_topk_rm3(db->bm25, &r->scratch, &q, 0.9, 0.4, 1, 1, 10, &fb, &h0, &n0,
                                   &m0));
            CHECK(n0 == 3 && m0 == 3);
            for (size_t i = 0; i < n0; i++) {
                int d = rm3_doc(cid, h0[i].rowid);
                CHECK(d >= 0 && NEAR(h0[i].score, s1[d]));
            }
            free(h0);
        }
        lex_query_free(&q);
    }
    bm25_release(db->bm25);
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    store_reader_put(db, r);
    plumb_close(db);
    unlink(dbp);
}

int main(void) {
    test_rm3();
    test_side_file();
    test_side_bytes();
    const char *src = getenv("PLUMB_SOURCE_DIR");
    char sample[512];
    snprintf(sample, sizeof sample, "%s/data/sample", src ? src : ".");
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
