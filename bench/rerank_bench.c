/*
** rerank_bench.c -- what stage 2 adds to a whole plumb_search, through the
** public API only.
**
**   rerank_bench --db FILE --queries FILE [--rerank N] [--reps R]
**
** Runs every query of the file through plumb_search (k = 10, texts and
** snippets, as a user runs it) on one thread, R passes, once with
** rerank = 0 and once with rerank = N (default: the index's), and prints
** one JSON line per setting: queries/s by wall clock and by the thread's
** CPU time (a shared machine preempts; CPU time does not count the time
** other processes took), and p50/p95 per query of both. A last line gives
** the difference. Verification: the reranked run must return hits with a
** finite score_rerank for at least one query, else exit 1.
*/
#include <plumb.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clk(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Queries: the "text" of each JSONL line, found without a JSON parser
** (BEIR query files put "text" as a plain string). */
static char **load_queries(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char **q = NULL;
    size_t cap = 0;
    *n = 0;
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        char *t = strstr(line, "\"text\"");
        if (!t) continue;
        t = strchr(t + 6, '"');
        if (!t) continue;
        t++;
        char *e = t;
        while (*e && !(*e == '"' && e[-1] != '\\')) e++;
        *e = 0;
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            q = realloc(q, cap * sizeof *q);
            if (!q) exit(1);
        }
        q[(*n)++] = strdup(t);
    }
    fclose(f);
    return q;
}

typedef struct run_fig {
    double qps_wall, qps_cpu, p50_wall, p95_wall, p50_cpu, p95_cpu;
    int reranked;
    uint64_t sum; /* FNV-1a over the first pass's hits */
} run_fig;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static run_fig run(plumb_db *db, char **q, size_t nq, int rerank, int reps) {
    plumb_search_params p;
    plumb_search_params_init(&p);
    p.rerank = rerank;
    p.log = 0;
    size_t tot = nq * (size_t)reps;
    double *w = malloc(tot * sizeof *w), *c = malloc(tot * sizeof *c);
    double sw = 0, sc = 0;
    run_fig r = {0};
    r.sum = 0xcbf29ce484222325ULL;
    for (int rep = 0; rep < reps; rep++)
        for (size_t i = 0; i < nq; i++) {
            double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_THREAD_CPUTIME_ID);
            plumb_hits *h = NULL;
            if (plumb_search(db, q[i], &p, &h) != PLUMB_OK) {
                fprintf(stderr, "search failed: %s\n", plumb_errmsg());
                exit(1);
            }
            double c1 = clk(CLOCK_THREAD_CPUTIME_ID), w1 = clk(CLOCK_MONOTONIC);
            if (h->n && isfinite(h->hit[0].score_rerank)) r.reranked = 1;
            for (size_t j = 0; rep == 0 && j < h->n; j++) {
                double sr = h->hit[j].score_rerank;
                r.sum = fnv(r.sum, &h->hit[j].chunk_id, sizeof h->hit[j].chunk_id);
                r.sum = fnv(r.sum, &sr, sizeof sr);
            }
            plumb_hits_free(h);
            size_t k = (size_t)rep * nq + i;
            w[k] = w1 - w0;
            c[k] = c1 - c0;
            sw += w[k];
            sc += c[k];
        }
    qsort(w, tot, sizeof *w, cmpd);
    qsort(c, tot, sizeof *c, cmpd);
    r.qps_wall = tot / sw;
    r.qps_cpu = tot / sc;
    r.p50_wall = w[tot / 2] * 1e3;
    r.p95_wall = w[tot * 95 / 100] * 1e3;
    r.p50_cpu = c[tot / 2] * 1e3;
    r.p95_cpu = c[tot * 95 / 100] * 1e3;
    free(w);
    free(c);
    return r;
}

int main(int argc, char **argv) {
    const char *dbp = NULL, *qp = NULL;
    int n = -1, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db")) dbp = argv[i + 1];
        else if (!strcmp(argv[i], "--queries")) qp = argv[i + 1];
        else if (!strcmp(argv[i], "--rerank")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    if (!dbp || !qp) {
        fprintf(stderr, "usage: rerank_bench --db FILE --queries FILE [--rerank N] [--reps R]\n");
        return 2;
    }
    size_t nq = 0;
    char **q = load_queries(qp, &nq);
    if (!q || !nq) { fprintf(stderr, "no queries in %s\n", qp); return 2; }
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    op.readonly = 1;
    plumb_db *db = NULL;
    if (plumb_open(dbp, &op, &db)) { fprintf(stderr, "open: %s\n", plumb_errmsg()); return 1; }
    run(db, q, nq, 0, 1); /* warm: load the in-memory indexes */
    run_fig a = run(db, q, nq, 0, reps), b = run(db, q, nq, n, reps);
    const char *nm[2] = {"rerank_off", "rerank_on"};
    run_fig *f[2] = {&a, &b};
    for (int i = 0; i < 2; i++)
        printf("{\"bench\":\"rerank\",\"setting\":\"%s\",\"rerank\":%d,\"queries\":%zu,\"reps\":%d,"
               "\"qps_wall\":%.0f,\"qps_cpu\":%.0f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
               "\"p50_cpu_ms\":%.3f,\"p95_cpu_ms\":%.3f,\"checksum\":\"%016llx\"}\n",
               nm[i], i ? n : 0, nq, reps, f[i]->qps_wall, f[i]->qps_cpu, f[i]->p50_wall,
               f[i]->p95_wall, f[i]->p50_cpu, f[i]->p95_cpu, (unsigned long long)f[i]->sum);
    printf("{\"bench\":\"rerank\",\"setting\":\"added\",\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
           "\"p50_cpu_ms\":%.3f,\"p95_cpu_ms\":%.3f,\"verified\":%s}\n",
           b.p50_wall - a.p50_wall, b.p95_wall - a.p95_wall, b.p50_cpu - a.p50_cpu,
           b.p95_cpu - a.p95_cpu, b.reranked ? "true" : "false");
    plumb_close(db);
    for (size_t i = 0; i < nq; i++) free(q[i]);
    free(q);
    return b.reranked ? 0 : 1;
}
