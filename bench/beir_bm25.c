/*
** beir_bm25.c -- BM25 quality and speed on a BEIR dataset, through the
** public API only.
**
**   beir_bm25 [--data DIR] [--split test] [--db FILE] [--k1 X] [--b X]
**             [--chunk-tokens N] [--language L] [--no-stopwords] [--reps N]
**
** Indexes DIR/corpus.jsonl into a fresh index (lexical only), runs every
** query judged in DIR/qrels/SPLIT.tsv, and prints one JSON line per
** result: indexing docs/s, nDCG@10 (trec_eval's ndcg_cut_10: linear
** gains, log2 discount, ideal from all judgments; a document's score is
** its best chunk's; a hit whose id equals the query id is dropped, as
** BEIR does), and queries/s for plumb's BM25 (stage only, and a whole
** plumb_search with texts and snippets) beside FTS5's bm25() ordering,
** measured in the same run. Exits 2 when the dataset is absent (skip),
** 1 when verification fails (no hits at all, or NaN scores).
*/
#include <plumb.h>

#include <sqlite3.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct qrel { char *qid, *did; int rel; } qrel;
typedef struct query { char *id, *text; } query;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz + 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) { free(p); p = NULL; }
    fclose(f);
    if (p) { p[sz] = 0; if (n) *n = (size_t)sz; }
    return p;
}

/* Baseline: plain FTS5 (unicode61 + porter) indexing the same title and
** text in one transaction, in the same run. Returns docs/s. */
static double fts5_baseline(const char *corpus, const char *path) {
    char *txt = slurp(corpus, NULL);
    if (!txt) return 0;
    remove(path);
    sqlite3 *c;
    if (sqlite3_open(path, &c)) return 0;
    sqlite3_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                    "CREATE VIRTUAL TABLE f USING fts5(title, body, tokenize='porter unicode61')",
                 NULL, NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(c, "INSERT INTO f(title, body) VALUES(?1, ?2)", -1, &st, NULL);
    double t0 = now_s();
    sqlite3_exec(c, "BEGIN", NULL, NULL, NULL);
    long n = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cJSON *t = cJSON_GetObjectItem(j, "title"), *b = cJSON_GetObjectItem(j, "text");
        sqlite3_bind_text(st, 1, cJSON_IsString(t) ? t->valuestring : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, cJSON_IsString(b) ? b->valuestring : "", -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE) n++;
        sqlite3_reset(st);
        cJSON_Delete(j);
    }
    sqlite3_exec(c, "COMMIT", NULL, NULL, NULL);
    double t = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(c);
    free(txt);
    char w[4400];
    snprintf(w, sizeof w, "%s-wal", path);
    remove(path);
    remove(w);
    return (double)n / t;
}

/* What two threads can do on this machine at all: the same pure
** arithmetic loop on 1 and on 2 threads (a VM's vCPUs may share a core). */
static double cpu_scaling(void) {
    double t[2];
    for (int n = 1; n <= 2; n++) {
        double t0 = now_s();
#pragma omp parallel num_threads(n)
        {
            volatile double x = 0;
            for (long i = 0; i < 100000000; i++) x += (double)i * 0.5;
        }
        t[n - 1] = now_s() - t0;
    }
    return 2 * t[0] / t[1];
}

static int cmp_dbl_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *data = "../shared/data/beir/scifact", *split = "test", *dbpath = NULL;
    const char *lang = "english";
    double k1 = 0.9, b = 0.4;
    int chunk = 512, stop = 1, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v) { data = v; i++; }
        else if (!strcmp(a, "--split") && v) { split = v; i++; }
        else if (!strcmp(a, "--db") && v) { dbpath = v; i++; }
        else if (!strcmp(a, "--k1") && v) { k1 = atof(v); i++; }
        else if (!strcmp(a, "--b") && v) { b = atof(v); i++; }
        else if (!strcmp(a, "--chunk-tokens") && v) { chunk = atoi(v); i++; }
        else if (!strcmp(a, "--language") && v) { lang = v; i++; }
        else if (!strcmp(a, "--reps") && v) { reps = atoi(v); i++; }
        else if (!strcmp(a, "--no-stopwords")) stop = 0;
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--split test] [--db FILE] [--k1 X] [--b X] "
                    "[--chunk-tokens N] [--language L] [--no-stopwords] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    char corpus[4096], queries[4096], qrels[4096], tmpdb[4096];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", data);
    snprintf(queries, sizeof queries, "%s/queries.jsonl", data);
    snprintf(qrels, sizeof qrels, "%s/qrels/%s.tsv", data, split);
    if (access(corpus, R_OK) || access(queries, R_OK) || access(qrels, R_OK)) {
        fprintf(stderr, "beir_bm25: dataset not found under %s (skipped)\n", data);
        return 2;
    }
    if (!dbpath) {
        snprintf(tmpdb, sizeof tmpdb, "/tmp/plumb-bench-%d.db", (int)getpid());
        dbpath = tmpdb;
    }
    char rm[3 * 4096 + 64];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm'", dbpath, dbpath, dbpath);
    if (system(rm) != 0) return 1;

    plumb_open_params op;
    plumb_open_params_init(&op);
    op.bm25_k1 = k1;
    op.bm25_b = b;
    op.chunk_tokens = chunk;
    op.chunk_overlap = chunk ? chunk / 8 : 0;
    op.language = lang;
    op.stopwords = stop;
    plumb_db *db;
    if (plumb_open(dbpath, &op, &db)) {
        fprintf(stderr, "open: %s\n", plumb_errmsg());
        return 1;
    }
    plumb_index_params ip;
    plumb_index_params_init(&ip);
    ip.commit_every = 1 << 30; /* one transaction: the bulk-load path */
    plumb_index_stats ist;
    const char *paths[1] = {corpus};
    double t0 = now_s();
    if (plumb_index_paths(db, paths, 1, &ip, &ist)) {
        fprintf(stderr, "index: %s\n", plumb_errmsg());
        return 1;
    }
    double tidx = now_s() - t0;
    int64_t ndocs = ist.docs_added;
    char fpath[4200];
    snprintf(fpath, sizeof fpath, "%s.fts5", dbpath);
    double fts5_dps = fts5_baseline(corpus, fpath);
    plumb_stats ps;
    plumb_stats_get(db, &ps);
    printf("{\"bench\":\"index\",\"dataset\":\"%s\",\"docs\":%lld,\"chunks\":%lld,\"seconds\":%.3f,"
           "\"docs_per_s\":%.0f,\"db_bytes\":%lld,\"baseline_fts5_porter_docs_per_s\":%.0f,"
           "\"version\":\"%s\"}\n", data, (long long)ndocs,
           (long long)ps.chunks, tidx, (double)ndocs / tidx, (long long)ps.db_bytes, fts5_dps,
           plumb_libversion());

    /* queries */
    size_t qn = 0, qcap = 0;
    query *qs = NULL;
    char *qtxt = slurp(queries, NULL);
    for (char *line = strtok(qtxt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cJSON *id = cJSON_GetObjectItem(j, "_id"), *tx = cJSON_GetObjectItem(j, "text");
        if (cJSON_IsString(id) && cJSON_IsString(tx)) {
            if (qn == qcap) { qcap = qcap ? qcap * 2 : 256; qs = realloc(qs, qcap * sizeof *qs); }
            qs[qn].id = strdup(id->valuestring);
            qs[qn].text = strdup(tx->valuestring);
            qn++;
        }
        cJSON_Delete(j);
    }
    free(qtxt);
    /* qrels */
    size_t rn = 0, rcap = 0;
    qrel *rs = NULL;
    char *rtxt = slurp(qrels, NULL);
    int header = 1;
    for (char *line = strtok(rtxt, "\n"); line; line = strtok(NULL, "\n")) {
        if (header) { header = 0; if (!strncmp(line, "query-id", 8)) continue; }
        char q[256], d[256];
        int rel;
        if (sscanf(line, "%255s %255s %d", q, d, &rel) != 3) continue;
        if (rn == rcap) { rcap = rcap ? rcap * 2 : 1024; rs = realloc(rs, rcap * sizeof *rs); }
        rs[rn].qid = strdup(q);
        rs[rn].did = strdup(d);
        rs[rn].rel = rel;
        rn++;
    }
    free(rtxt);

    /* judged queries, in queries.jsonl order */
    size_t *judged = malloc(qn * sizeof *judged), nj = 0;
    for (size_t i = 0; i < qn; i++)
        for (size_t r = 0; r < rn; r++)
            if (!strcmp(rs[r].qid, qs[i].id)) { judged[nj++] = i; break; }

    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = 100;
    sp.with_text = 0;
    sp.snippet_tokens = 0;
    double sum_ndcg = 0;
    int64_t total_hits = 0;
    int bad = 0;
    for (size_t qi = 0; qi < nj; qi++) {
        query *q = &qs[judged[qi]];
        plumb_hits *h = NULL;
        if (plumb_search(db, q->text, &sp, &h)) {
            fprintf(stderr, "search %s: %s\n", q->id, plumb_errmsg());
            return 1;
        }
        total_hits += (int64_t)h->n;
        /* MaxP: hits are best-first, so a doc's first hit is its best */
        const char *top[10];
        int nt = 0;
        for (size_t i = 0; i < h->n && nt < 10; i++) {
            if (isnan(h->hit[i].score)) bad = 1;
            if (!strcmp(h->hit[i].doc_id, q->id)) continue;
            int dup = 0;
            for (int t = 0; t < nt; t++) dup |= !strcmp(top[t], h->hit[i].doc_id);
            if (!dup) top[nt++] = h->hit[i].doc_id;
        }
        double dcg = 0, idcg = 0, gains[1024];
        int ng = 0;
        for (size_t r = 0; r < rn; r++)
            if (!strcmp(rs[r].qid, q->id)) {
                if (rs[r].rel > 0 && ng < 1024) gains[ng++] = rs[r].rel;
                for (int t = 0; t < nt; t++)
                    if (!strcmp(rs[r].did, top[t]) && rs[r].rel > 0)
                        dcg += rs[r].rel / log2(t + 2.0);
            }
        qsort(gains, (size_t)ng, sizeof *gains, cmp_dbl_desc);
        for (int t = 0; t < ng && t < 10; t++) idcg += gains[t] / log2(t + 2.0);
        sum_ndcg += idcg > 0 ? dcg / idcg : 0;
        plumb_hits_free(h);
    }
    double ndcg = nj ? sum_ndcg / (double)nj : 0;
    printf("{\"bench\":\"bm25_quality\",\"dataset\":\"%s\",\"split\":\"%s\",\"queries\":%zu,"
           "\"k1\":%.3g,\"b\":%.3g,\"chunk_tokens\":%d,\"language\":\"%s\",\"ndcg@10\":%.4f}\n",
           data, split, nj, k1, b, chunk, lang, ndcg);

    /* speed: every query of the file, top-10, single thread, median of reps */
    /* the same BM25F through FTS5 (exhaustive) must give the same top-10:
    ** its checksum is compared with the fast path's */
    struct { const char *name; plumb_scorer sc; int text; } modes[4] = {
        {"plumb_bm25_stage", PLUMB_SCORER_BM25, 0},
        {"plumb_search_with_texts", PLUMB_SCORER_BM25, 1},
        {"bm25f_via_fts5_aux_function", PLUMB_SCORER_BM25_SQL, 0},
        {"fts5_bm25_ordering", PLUMB_SCORER_FTS5, 0}};
    uint64_t sums[4] = {0, 0, 0, 0};
    for (int m = 0; m < 4; m++) {
        double qps[16];
        int nrep = reps < 1 ? 1 : reps > 16 ? 16 : reps;
        uint64_t check = 0;
        for (int r = 0; r < nrep; r++) {
            plumb_search_params_init(&sp);
            sp.k = 10;
            sp.scorer = modes[m].sc;
            sp.with_text = modes[m].text;
            sp.snippet_tokens = modes[m].text ? 24 : 0;
            double ts = now_s();
            check = 0;
            for (size_t i = 0; i < qn; i++) {
                plumb_hits *h = NULL;
                if (plumb_search(db, qs[i].text, &sp, &h)) {
                    fprintf(stderr, "search: %s\n", plumb_errmsg());
                    return 1;
                }
                for (size_t k = 0; k < h->n; k++) check = check * 31 + (uint64_t)h->hit[k].chunk_id;
                plumb_hits_free(h);
            }
            qps[r] = (double)qn / (now_s() - ts);
        }
        qsort(qps, (size_t)nrep, sizeof *qps, cmp_dbl);
        sums[m] = check;
        printf("{\"bench\":\"bm25_speed\",\"mode\":\"%s\",\"dataset\":\"%s\",\"queries\":%zu,"
               "\"k\":10,\"threads\":1,\"qps_median\":%.0f,\"reps\":%d,\"checksum\":\"%016llx\"}\n",
               modes[m].name, data, qn, qps[nrep / 2], nrep, (unsigned long long)check);
    }
    /* both threads: the stage and the whole search, each query once per rep */
    for (int m = 0; m < 2; m++) {
        plumb_search_params_init(&sp);
        sp.k = 10;
        sp.with_text = m;
        sp.snippet_tokens = m ? 24 : 0;
        double qps[16];
        int nrep = reps < 1 ? 1 : reps > 16 ? 16 : reps, errs = 0;
        for (int r = 0; r < nrep; r++) {
            double ts = now_s();
#pragma omp parallel for num_threads(2) schedule(dynamic, 8) reduction(+ : errs)
            for (size_t i = 0; i < qn; i++) {
                plumb_hits *h = NULL;
                if (plumb_search(db, qs[i].text, &sp, &h)) errs++;
                plumb_hits_free(h);
            }
            qps[r] = (double)qn / (now_s() - ts);
        }
        qsort(qps, (size_t)nrep, sizeof *qps, cmp_dbl);
        if (errs) bad = 1;
        printf("{\"bench\":\"bm25_speed\",\"mode\":\"%s\",\"dataset\":\"%s\",\"queries\":%zu,"
               "\"k\":10,\"threads\":2,\"qps_median\":%.0f,\"reps\":%d,\"errors\":%d}\n",
               m ? "plumb_search_with_texts" : "plumb_bm25_stage", data, qn, qps[nrep / 2], nrep,
               errs);
    }
    printf("{\"bench\":\"cpu_scaling_baseline\",\"threads\":2,\"speedup\":%.2f}\n",
           cpu_scaling());
    plumb_close(db);
    if (system(rm) != 0) return 1;
    if (sums[0] != sums[2]) {
        /* ties may legitimately order differently only when scores are
        ** equal to the last bit; on SciFact they are not */
        fprintf(stderr, "beir_bm25: fast path and exhaustive reference disagree\n");
        bad = 1;
    }
    if (total_hits == 0 || bad) {
        fprintf(stderr, "beir_bm25: verification failed (%s)\n", bad ? "NaN score" : "no hits");
        return 1;
    }
    return 0;
}
