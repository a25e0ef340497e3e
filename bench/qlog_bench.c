/*
** qlog_bench.c -- what the query log costs a search: plumb_search
** throughput with logging on and off, same run, through the public API.
**
**   qlog_bench [--data DIR] [--reps N] [--keep N] [--prefill N] [--db FILE]
**
** Indexes DIR/corpus.jsonl (lexical, 512-token chunks), fills the log past
** its retention limit (--keep, default 20000; --prefill entries, default
** 25000) so the measured passes run in the steady state where every write
** of the queue also prunes, then runs every query of DIR/queries.jsonl on
** one thread, top 10, with the log off and on interleaved in blocks of 64
** queries (a rep is two passes with the blocks' modes swapped, so every
** query runs both ways), so the load of a shared machine falls on both
** modes alike; wall-clock and thread CPU time are both reported, and the
** CPU time of the process's other threads (the log's writer thread) per
** logged search, so work moved off the search thread is still counted. Two
** modes: the BM25 stage alone (lexical mode, no reranking, hits without
** texts or snippets: the fastest search, the worst case for the log's
** relative cost) and a whole search as the defaults run it (hybrid when the
** index has vectors, which plumb_index_paths makes by default, reranking as
** stored) with texts and snippets. Prints one JSON line per mode with the medians
** and their ratio. Verifies: the same top-10 lists with and without the log
** (checksum), every logged search written (nothing queued or dropped after a
** flush) and the last entry's query and hit count. Exits 2 when the dataset
** is absent, 1 when verification fails.
*/
#include <plumb.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PLUMB_GIT_COMMIT
#define PLUMB_GIT_COMMIT ""
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double proc_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Search queries [from, to); adds wall and CPU seconds to *wall, *cpu and
** each query's top-10 checksum to sums[i]. */
static void block(plumb_db *db, char **qs, size_t from, size_t to,
                  const plumb_search_params *sp, uint64_t *sums, double *wall, double *cpu,
                  int *bad) {
    double w0 = now_s(), c0 = cpu_s();
    for (size_t i = from; i < to; i++) {
        plumb_hits *h = NULL;
        if (plumb_search(db, qs[i], sp, &h)) {
            fprintf(stderr, "qlog_bench: search: %s\n", plumb_errmsg());
            *bad = 1;
            return;
        }
        uint64_t check = 0;
        for (size_t k = 0; k < h->n; k++) check = check * 31 + (uint64_t)h->hit[k].chunk_id;
        sums[i] = check;
        plumb_hits_free(h);
    }
    *wall += now_s() - w0;
    *cpu += cpu_s() - c0;
}

int main(int argc, char **argv) {
    const char *data = "../shared/data/beir/scifact", *dbpath = NULL;
    int reps = 3;
    long keep = 20000, prefill = 25000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v) { data = v; i++; }
        else if (!strcmp(a, "--reps") && v) { reps = atoi(v); i++; }
        else if (!strcmp(a, "--keep") && v) { keep = atol(v); i++; }
        else if (!strcmp(a, "--prefill") && v) { prefill = atol(v); i++; }
        else if (!strcmp(a, "--db") && v) { dbpath = v; i++; }
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--reps N] [--keep N] [--prefill N] "
                    "[--db FILE]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 15) reps = 3;
    char corpus[4096], queries[4096], tmpdb[4096];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", data);
    snprintf(queries, sizeof queries, "%s/queries.jsonl", data);
    if (access(corpus, R_OK) || access(queries, R_OK)) {
        fprintf(stderr, "qlog_bench: dataset not found under %s (skipped)\n", data);
        return 2;
    }
    if (!dbpath) {
        snprintf(tmpdb, sizeof tmpdb, "/tmp/plumb-qlog-bench-%d.db", (int)getpid());
        dbpath = tmpdb;
    }
    char rm[4 * 4096 + 64];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm' '%s.bm25'", dbpath, dbpath, dbpath,
             dbpath);
    if (system(rm) != 0) return 1;

    /* queries */
    FILE *f = fopen(queries, "rb");
    if (!f) return 2;
    char **qs = NULL, line[65536];
    size_t nq = 0, cap = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line), *t = cJSON_GetObjectItem(j, "text");
        if (cJSON_IsString(t)) {
            if (nq == cap) {
                cap = cap ? cap * 2 : 1024;
                qs = realloc(qs, cap * sizeof *qs);
                if (!qs) return 1;
            }
            qs[nq++] = strdup(t->valuestring);
        }
        cJSON_Delete(j);
    }
    fclose(f);
    if (!nq) return 1;

    plumb_db *db = NULL;
    if (plumb_open(dbpath, NULL, &db)) {
        fprintf(stderr, "qlog_bench: %s\n", plumb_errmsg());
        return 1;
    }
    const char *paths[1] = {corpus};
    plumb_index_params ip;
    plumb_index_params_init(&ip);
    ip.commit_every = 1 << 30;
    if (plumb_index_paths(db, paths, 1, &ip, NULL) || plumb_log_set_keep(db, keep)) {
        fprintf(stderr, "qlog_bench: %s\n", plumb_errmsg());
        return 1;
    }

    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.with_text = 0;
    sp.snippet_tokens = 0;
    sp.mode = PLUMB_MODE_LEXICAL; /* the prefill only needs entries, fast */
    sp.rerank = 0;
    int bad = 0;
    uint64_t *son = calloc(nq, sizeof *son), *soff = calloc(nq, sizeof *soff);
    if (!son || !soff) return 1;
    for (long n = 0; n < prefill && !bad; n += (long)nq) {
        double w = 0, c = 0;
        block(db, qs, 0, nq, &sp, son, &w, &c, &bad);
    }
    if (plumb_log_flush(db)) {
        fprintf(stderr, "qlog_bench: flush: %s\n", plumb_errmsg());
        return 1;
    }

    struct { const char *name; int text; } modes[2] = {{"plumb_bm25_stage", 0},
                                                       {"plumb_search_with_texts", 1}};
    for (int m = 0; m < 2 && !bad; m++) {
        double off[16], on[16], coff[16], con[16], other[16];
        plumb_search_params_init(&sp);
        sp.k = 10;
        if (!modes[m].text) { /* the bare BM25 stage */
            sp.mode = PLUMB_MODE_LEXICAL;
            sp.rerank = 0;
        }
        sp.with_text = modes[m].text;
        sp.snippet_tokens = modes[m].text ? 24 : 0;
        for (int r = 0; r < reps && !bad; r++) {
            double w[2] = {0, 0}, c[2] = {0, 0}, p0 = proc_cpu_s();
            for (int parity = 0; parity < 2; parity++)
                for (size_t from = 0, b = 0; from < nq && !bad; from += 64, b++) {
                    size_t to = from + 64 < nq ? from + 64 : nq;
                    int log = (int)((b + (size_t)parity) % 2);
                    sp.log = log;
                    block(db, qs, from, to, &sp, log ? son : soff, &w[log], &c[log], &bad);
                }
            off[r] = (double)nq / w[0];
            on[r] = (double)nq / w[1];
            coff[r] = (double)nq / c[0];
            con[r] = (double)nq / c[1];
            /* CPU of the process's other threads (the log's writer) per
            ** logged search: the log's work moved off the search thread */
            other[r] = 1e6 * (proc_cpu_s() - p0 - c[0] - c[1]) / (double)nq;
        }
        if (bad) break;
        /* everything logged was written, the last entry is the last query */
        plumb_log_info in;
        plumb_log_filter flt;
        plumb_log_filter_init(&flt);
        flt.limit = 1;
        plumb_log_entries *e = NULL;
        plumb_hits *h = NULL;
        plumb_search_params chk = sp;
        chk.log = 1;
        if (plumb_search(db, qs[nq - 1], &chk, &h) || plumb_log_flush(db) ||
            plumb_log_info_get(db, &in) || plumb_log_list(db, &flt, &e)) {
            fprintf(stderr, "qlog_bench: %s\n", plumb_errmsg());
            return 1;
        }
        int same = memcmp(son, soff, nq * sizeof *son) == 0;
        uint64_t sum = 0;
        for (size_t i = 0; i < nq; i++) sum = sum * 1000003 + son[i];
        int ok = same && in.queued == 0 && in.dropped == 0 && e->n == 1 &&
                 e->entry[0].id == h->log_id && strcmp(e->entry[0].query, qs[nq - 1]) == 0 &&
                 e->entry[0].n_hits == (int64_t)h->n && in.entries <= keep + keep / 16 + 1;
        if (!ok) {
            fprintf(stderr, "qlog_bench: verification failed (same hits %d, queued %lld, "
                    "dropped %lld, entries %lld)\n", same, (long long)in.queued,
                    (long long)in.dropped, (long long)in.entries);
            bad = 1;
        }
        double moff = median(off, reps), mon = median(on, reps);
        double mcoff = median(coff, reps), mcon = median(con, reps);
        double mother = median(other, reps);
        printf("{\"bench\":\"qlog_overhead\",\"mode\":\"%s\",\"commit\":\"%s\",\"dataset\":\"%s\","
               "\"queries\":%zu,\"k\":10,\"threads\":1,\"reps\":%d,\"keep\":%ld,"
               "\"log_entries\":%lld,\"qps_log_off\":%.0f,\"qps_log_on\":%.0f,"
               "\"ratio_on_off\":%.4f,\"slowdown_pct\":%.2f,\"cpu_qps_log_off\":%.0f,"
               "\"cpu_qps_log_on\":%.0f,\"cpu_slowdown_pct\":%.2f,\"us_per_search_log\":%.2f,"
               "\"cpu_us_search_thread_log\":%.2f,\"cpu_us_other_threads_log\":%.2f,"
               "\"checksum\":\"%016llx\",\"verified\":%s}\n",
               modes[m].name, PLUMB_GIT_COMMIT, data, nq, reps, keep, (long long)in.entries, moff,
               mon, mon / moff, 100.0 * (1 - mon / moff), mcoff, mcon, 100.0 * (1 - mcon / mcoff),
               1e6 * (1 / mon - 1 / moff),
               1e6 * (1 / mcon - 1 / mcoff), mother, (unsigned long long)sum, ok ? "true" : "false");
        fflush(stdout);
        plumb_log_entries_free(e);
        plumb_hits_free(h);
    }
    free(son);
    free(soff);
    plumb_close(db);
    if (system(rm) != 0) return 1;
    for (size_t i = 0; i < nq; i++) free(qs[i]);
    free(qs);
    return bad;
}
