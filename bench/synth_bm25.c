/*
** synth_bm25.c -- BM25 at scale on a synthetic collection.
**
**   synth_bm25 [--docs N] [--queries Q] [--db FILE] [--threads T] [--keep]
**
** Generates N short documents (8..40 words) over a Zipfian vocabulary
** (100,000 pronounceable pseudo-words, exponent 1.0) from a fixed seed,
** so every run and every machine sees the same collection; indexes them
** through the public API in one batch; then measures BM25 top-10 latency
** (p50/p99, single thread) for Q queries of 2..6 Zipfian terms, the time
** of the first search (which builds the in-memory index), and
** multi-threaded throughput; then deletes 10% of the documents and
** measures again. Each result is one JSON line. Verification: every
** query's top-10 is checked against the exhaustive FTS5-side reference
** scorer (PLUMB_SCORER_BM25_SQL) for the first 50 queries of each phase;
** a mismatch fails the run (exit 1).
*/
#include <plumb.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define V 100000

static uint64_t rs = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd64(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static double rnd01(void) { return (double)(rnd64() >> 11) / 9007199254740992.0; }

static double *cdf;
static char words[V][16];

static int zipf(void) {
    double u = rnd01();
    int lo = 0, hi = V - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void make_vocab(void) {
    static const char *cons = "bcdfghjklmnprstvz", *vow = "aeiou";
    cdf = malloc(V * sizeof *cdf);
    double sum = 0;
    for (int i = 0; i < V; i++) sum += 1.0 / (i + 1);
    double acc = 0;
    for (int i = 0; i < V; i++) {
        acc += 1.0 / (i + 1) / sum;
        cdf[i] = acc;
        /* a distinct pseudo-word per rank: syllables from the rank's digits */
        int x = i, n = 0;
        do {
            words[i][n++] = cons[x % 17];
            x /= 17;
            words[i][n++] = vow[x % 5];
            x /= 5;
        } while (x && n < 12);
        words[i][n++] = 'q'; /* keeps stems distinct from English words */
        words[i][n] = 0;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int verify(plumb_db *db, char **qs, int n) {
    plumb_search_params a, b;
    plumb_search_params_init(&a);
    a.snippet_tokens = 0;
    a.with_text = 0;
    b = a;
    b.scorer = PLUMB_SCORER_BM25_SQL;
    for (int i = 0; i < n; i++) {
        plumb_hits *x = NULL, *y = NULL;
        if (plumb_search(db, qs[i], &a, &x) || plumb_search(db, qs[i], &b, &y)) {
            fprintf(stderr, "verify: %s\n", plumb_errmsg());
            return 1;
        }
        int bad = x->n != y->n;
        for (size_t k = 0; !bad && k < x->n; k++)
            bad = fabs(x->hit[k].score - y->hit[k].score) > 1e-9 * (1 + fabs(y->hit[k].score)) ||
                  (x->hit[k].chunk_id != y->hit[k].chunk_id &&
                   x->hit[k].score != y->hit[k].score);
        if (bad) fprintf(stderr, "verify: query '%s' differs from the reference\n", qs[i]);
        plumb_hits_free(x);
        plumb_hits_free(y);
        if (bad) return 1;
    }
    return 0;
}

static int measure(plumb_db *db, char **qs, int nq, int threads, const char *phase, int ndocs) {
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = 10;
    sp.with_text = 0;
    sp.snippet_tokens = 0;
    double *lat = malloc((size_t)nq * sizeof *lat);
    long hits = 0;
    for (int i = 0; i < nq; i++) {
        plumb_hits *h = NULL;
        double t = now_s();
        if (plumb_search(db, qs[i], &sp, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
        lat[i] = (now_s() - t) * 1e3;
        hits += (long)h->n;
        plumb_hits_free(h);
    }
    qsort(lat, (size_t)nq, sizeof *lat, cmp_dbl);
    double p50 = lat[nq / 2], p99 = lat[(int)(nq * 0.99)], mx = lat[nq - 1];
    double sum = 0;
    for (int i = 0; i < nq; i++) sum += lat[i];
    printf("{\"bench\":\"synth_bm25_latency\",\"phase\":\"%s\",\"docs\":%d,\"queries\":%d,"
           "\"k\":10,\"threads\":1,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"qps\":%.0f,\"hits\":%ld}\n", phase, ndocs, nq, p50, p99, mx, nq / (sum / 1e3), hits);
    fflush(stdout);
    /* all threads, each query once */
    double t0 = now_s();
    int errs = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16) reduction(+ : errs)
    for (int i = 0; i < nq; i++) {
        plumb_hits *h = NULL;
        if (plumb_search(db, qs[i], &sp, &h)) errs++;
        plumb_hits_free(h);
    }
    double tt = now_s() - t0;
    printf("{\"bench\":\"synth_bm25_throughput\",\"phase\":\"%s\",\"docs\":%d,\"queries\":%d,"
           "\"threads\":%d,\"qps\":%.0f,\"qps_single\":%.0f,\"errors\":%d}\n", phase, ndocs, nq,
           threads, nq / tt, nq / (sum / 1e3), errs);
    fflush(stdout);
    free(lat);
    return errs != 0;
}

int main(int argc, char **argv) {
    int ndocs = 1000000, nq = 2000, threads = 2, keep = 0;
    const char *dbpath = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--docs") && v) { ndocs = atoi(v); i++; }
        else if (!strcmp(a, "--queries") && v) { nq = atoi(v); i++; }
        else if (!strcmp(a, "--threads") && v) { threads = atoi(v); i++; }
        else if (!strcmp(a, "--db") && v) { dbpath = v; i++; }
        else if (!strcmp(a, "--keep")) keep = 1;
        else {
            fprintf(stderr, "usage: %s [--docs N] [--queries Q] [--db FILE] [--threads T] "
                    "[--keep]\n", argv[0]);
            return 2;
        }
    }
    if (ndocs < 100 || nq < 100) { fprintf(stderr, "need --docs >= 100, --queries >= 100\n"); return 2; }
    char tmp[256];
    if (!dbpath) {
        snprintf(tmp, sizeof tmp, "/tmp/plumb-synth-%d.db", (int)getpid());
        dbpath = tmp;
    }
    char rm[2048];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm' '%s.bm25'", dbpath, dbpath, dbpath, dbpath);
    if (system(rm) != 0) return 1;
    make_vocab();

    plumb_open_params op;
    plumb_open_params_init(&op);
    plumb_db *db;
    if (plumb_open(dbpath, &op, &db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    double t0 = now_s();
    if (plumb_batch_begin(db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    char text[1024], id[32];
    long words_total = 0;
    for (int d = 0; d < ndocs; d++) {
        int len = 8 + (int)(rnd64() % 33), n = 0;
        for (int w = 0; w < len; w++) {
            const char *s = words[zipf()];
            size_t l = strlen(s);
            if (n + (int)l + 2 >= (int)sizeof text) break;
            if (w) text[n++] = ' ';
            memcpy(text + n, s, l);
            n += (int)l;
        }
        text[n] = 0;
        words_total += len;
        snprintf(id, sizeof id, "s%d", d);
        plumb_doc doc = {id, NULL, text, NULL, NULL};
        if (plumb_add(db, &doc, NULL)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
        if ((d + 1) % 100000 == 0) {
            if (plumb_batch_commit(db) || plumb_batch_begin(db)) {
                fprintf(stderr, "%s\n", plumb_errmsg());
                return 1;
            }
        }
    }
    if (plumb_batch_commit(db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    double tidx = now_s() - t0;
    plumb_stats st;
    plumb_stats_get(db, &st);
    printf("{\"bench\":\"synth_index\",\"docs\":%d,\"words\":%ld,\"seconds\":%.2f,"
           "\"docs_per_s\":%.0f,\"db_bytes\":%lld,\"db_bytes_per_doc\":%.1f}\n", ndocs,
           words_total, tidx, ndocs / tidx, (long long)st.db_bytes,
           (double)st.db_bytes / ndocs);
    fflush(stdout);
    plumb_close(db);

    /* queries: 2..6 Zipfian terms, drawn after the documents */
    char **qs = malloc((size_t)nq * sizeof *qs);
    for (int i = 0; i < nq; i++) {
        char q[256] = "";
        int nt = 2 + (int)(rnd64() % 5);
        for (int t = 0; t < nt; t++) {
            strcat(q, t ? " " : "");
            strcat(q, words[zipf()]);
        }
        qs[i] = strdup(q);
    }

    /* a fresh handle: the first search builds the in-memory index */
    if (plumb_open(dbpath, &op, &db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    plumb_hits *h = NULL;
    double tb = now_s();
    if (plumb_search(db, qs[0], NULL, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    plumb_hits_free(h);
    tb = now_s() - tb;
    plumb_stats_get(db, &st);
    printf("{\"bench\":\"synth_first_search\",\"docs\":%d,\"build_seconds\":%.2f,"
           "\"memory_index_bytes\":%lld,\"memory_bytes_per_doc\":%.1f,\"postings\":%lld}\n",
           ndocs, tb, (long long)st.lex_memory_bytes, (double)st.lex_memory_bytes / ndocs,
           (long long)st.lex_postings);
    fflush(stdout);
    int fail = verify(db, qs, 50);
    fail |= measure(db, qs, nq, threads, "full", ndocs);

    /* delete 10% (every tenth document), then again */
    double td = now_s();
    plumb_batch_begin(db);
    for (int d = 0; d < ndocs; d += 10) {
        snprintf(id, sizeof id, "s%d", d);
        if (plumb_delete(db, id)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    }
    if (plumb_batch_commit(db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    td = now_s() - td;
    double tc = now_s();
    if (plumb_search(db, qs[0], NULL, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    plumb_hits_free(h);
    tc = now_s() - tc;
    printf("{\"bench\":\"synth_delete\",\"deleted\":%d,\"seconds\":%.2f,"
           "\"catch_up_seconds\":%.3f}\n", (ndocs + 9) / 10, td, tc);
    fflush(stdout);
    fail |= verify(db, qs, 50);
    fail |= measure(db, qs, nq, threads, "after_10pct_deleted", ndocs - (ndocs + 9) / 10);
    /* closing a handle that rebuilt the index leaves the side file; the
    ** next handle loads it instead of rebuilding */
    double tclose = now_s();
    plumb_close(db);
    tclose = now_s() - tclose;
    if (plumb_open(dbpath, &op, &db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    double tl = now_s();
    if (plumb_search(db, qs[0], NULL, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    plumb_hits_free(h);
    tl = now_s() - tl;
    printf("{\"bench\":\"synth_side_file\",\"docs\":%d,\"save_at_close_seconds\":%.2f,"
           "\"first_search_with_side_file_seconds\":%.3f}\n", ndocs - (ndocs + 9) / 10, tclose, tl);
    fflush(stdout);
    fail |= verify(db, qs, 20);
    plumb_close(db);
    for (int i = 0; i < nq; i++) free(qs[i]);
    free(qs);
    free(cdf);
    if (!keep && system(rm) != 0) return 1;
    if (fail) fprintf(stderr, "synth_bm25: verification failed\n");
    return fail;
}
