/*
** embed_bench.c -- the dense stage's cost per query: embedding the query
** with the index's embedder, and the vector search, timed apart.
**
**   embed_bench --db INDEX --queries QUERIES.jsonl [--k 100]
**
** Uses an existing index (plumb index / plumb eval's cache) with vectors.
** For every query: the time of embed_query (tokenize, fold in, normalise)
** and of vec_topk with each exact method (f32; int8 and binary, each
** rescored in f32), through one reader snapshot; then whole plumb_search
** calls (lexical; hybrid without and with query expansion; top 10 with texts
** and snippets). Prints one JSON line per
** measure with p50/p95 in microseconds. Verification, which fails the
** run: the int8 top-10 after rescoring shares >= 0.99 of the f32 top-10
** on average (binary's recall is reported, not required).
*/
#include "plumb_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q) {
    qsort(v, n, sizeof *v, cmpd);
    return n ? v[(size_t)(q * (double)(n - 1) + 0.5)] : 0;
}

int main(int argc, char **argv) {
    const char *dbp = NULL, *qp = NULL;
    int k = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) dbp = argv[++i];
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc) qp = argv[++i];
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) k = atoi(argv[++i]);
        else { fprintf(stderr, "usage: embed_bench --db INDEX --queries FILE [--k N]\n"); return 2; }
    }
    if (!dbp || !qp) { fprintf(stderr, "usage: embed_bench --db INDEX --queries FILE [--k N]\n"); return 2; }
    /* the queries' texts (BEIR JSONL: "text") */
    FILE *qf = fopen(qp, "r");
    if (!qf) { perror(qp); return 1; }
    size_t nq = 0, capq = 1024;
    char **qtext = malloc(capq * sizeof *qtext), line[1 << 16];
    while (fgets(line, sizeof line, qf)) {
        line[strcspn(line, "\r\n")] = 0;
        json_rec jr;
        if (json_rec_parse(line, &jr) == JSON_REC_OK && jr.text) {
            if (nq == capq) qtext = realloc(qtext, (capq *= 2) * sizeof *qtext);
            qtext[nq++] = strdup(jr.text);
        }
        json_rec_free(&jr);
    }
    fclose(qf);
    if (!nq) { fprintf(stderr, "embed_bench: no query text in %s\n", qp); return 1; }
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    op.readonly = 1;
    plumb_db *db;
    if (plumb_open(dbp, &op, &db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    reader *r;
    if (store_reader_get(db, &r)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    int64_t gen = -1, epoch = 0;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(r->conn, "SELECT (SELECT value FROM settings WHERE key='generation'), "
                       "coalesce((SELECT value FROM settings WHERE key='vec_epoch'), 0)", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW) { gen = sqlite3_column_int64(st, 0); epoch = sqlite3_column_int64(st, 1); }
    sqlite3_finalize(st);
    if (epoch <= 0) { fprintf(stderr, "embed_bench: %s has no vectors\n", dbp); return 1; }
    embed_model *m;
    if (embed_model_get(db, r->conn, epoch, &m) || vec_sync(db->vec, r, gen)) {
        fprintf(stderr, "%s\n", plumb_errmsg());
        return 1;
    }
    int dim = embed_model_dim(m);
    double *te = malloc(nq * sizeof *te), *ts[3];
    for (int j = 0; j < 3; j++) ts[j] = malloc(nq * sizeof *ts[j]);
    float *qv = malloc((size_t)dim * sizeof *qv);
    double recall[3] = {0, 0, 0};
    size_t used = 0;
    for (size_t i = 0; i < nq; i++) {
        int usable = 0;
        double t0 = now_us();
        if (embed_query(m, r->tok, qtext[i], qv, &usable)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
        te[i] = now_us() - t0;
        if (!usable) continue;
        lex_hit *h[3];
        size_t nh[3];
        for (int j = 0; j < 3; j++) {
            double t1 = now_us();
            vec_topk(db->vec, qv, k, (plumb_vsearch)(PLUMB_VSEARCH_F32 + j), 0, &h[j], &nh[j]);
            ts[j][used] = now_us() - t1;
        }
        for (int j = 0; j < 3; j++) {
            int hit = 0;
            for (size_t a = 0; a < nh[j] && a < 10; a++)
                for (size_t b = 0; b < nh[0] && b < 10; b++) hit += h[j][a].rowid == h[0][b].rowid;
            recall[j] += nh[0] ? (double)hit / (double)(nh[0] < 10 ? nh[0] : 10) : 1;
        }
        for (int j = 0; j < 3; j++) free(h[j]);
        used++;
    }
    printf("{\"bench\":\"embed_query\",\"db\":\"%s\",\"embedder\":\"%s\",\"dim\":%d,\"queries\":%zu,"
           "\"p50_us\":%.1f,\"p95_us\":%.1f}\n", dbp, embed_model_kind(m), dim, nq, pct(te, nq, 0.5),
           pct(te, nq, 0.95));
    const char *nm[3] = {"f32", "int8+rescore", "binary+rescore"};
    int bad = 0;
    for (int j = 0; j < 3; j++) {
        double rc = used ? recall[j] / (double)used : 0;
        printf("{\"bench\":\"dense_topk\",\"method\":\"%s\",\"vectors\":%u,\"k\":%d,\"queries\":%zu,"
               "\"p50_us\":%.1f,\"p95_us\":%.1f,\"recall@10_vs_f32\":%.4f}\n", nm[j],
               vec_live(db->vec), k, used, pct(ts[j], used, 0.5), pct(ts[j], used, 0.95), rc);
        if (j == 1 && rc < 0.99) bad = 1; /* int8 must hold; binary is reported */
    }
    vec_release(db->vec);
    embed_model_put(m);
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    store_reader_put(db, r);
    /* whole searches, as a user runs them: lexical, hybrid without query
    ** expansion, and hybrid as shipped (RM3 expansion of the BM25 query),
    ** top 10 with texts and snippets (the first of each warms the
    ** in-memory indexes) */
    const char *mn[3] = {"lexical", "hybrid, qe_docs 0", "hybrid"};
    for (int j = 0; j < 3; j++) {
        plumb_search_params sp;
        plumb_search_params_init(&sp);
        sp.mode = j ? PLUMB_MODE_HYBRID : PLUMB_MODE_LEXICAL;
        if (j == 1) sp.qe_docs = 0;
        plumb_hits *h = NULL;
        double tw = now_us();
        if (plumb_search(db, qtext[0], &sp, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
        tw = now_us() - tw;
        plumb_hits_free(h);
        for (size_t i = 0; i < nq; i++) {
            double t0 = now_us();
            if (plumb_search(db, qtext[i], &sp, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
            te[i] = now_us() - t0;
            plumb_hits_free(h);
        }
        printf("{\"bench\":\"plumb_search\",\"mode\":\"%s\",\"k\":10,\"queries\":%zu,"
               "\"first_search_ms\":%.1f,\"p50_ms\":%.3f,\"p95_ms\":%.3f}\n", mn[j], nq, tw / 1e3,
               pct(te, nq, 0.5) / 1e3, pct(te, nq, 0.95) / 1e3);
    }
    plumb_close(db);
    for (size_t i = 0; i < nq; i++) free(qtext[i]);
    free(qtext);
    if (bad) fprintf(stderr, "embed_bench: int8 recall@10 below 0.99\n");
    return bad;
}
