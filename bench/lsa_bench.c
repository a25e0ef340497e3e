/*
** lsa_bench.c -- how much the built-in LSA embedder (src/lsa.c) adds to
** BM25 on a BEIR dataset, measured before it is wired into plumb_search.
**
**   lsa_bench [--data DIR] [--dim N] [--power Q]
**
** Documents are tokenized with plumb's tokenizer (title + text), weighted
** log-tf x idf with unit rows, and the LSA model is trained on them; each
** document and query is folded in. BM25 comes from plumb itself (an index
** of whole documents). Hybrid = (1 - a) * minmax(BM25) + a * minmax(dense)
** over the union of both top-100 lists (a missing score counts as the
** list's minimum). The weight a is chosen on the TRAIN split (when there is
** one) and reported on the test split: no tuning on test. One JSON line
** per result; exits 2 when the dataset is absent, 1 when verification
** fails (NaN, or a dense ranking that is no better than random).
*/
#include "plumb_impl.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- a string -> id map for terms and document ids ---- */
typedef struct smap { char **k; uint32_t *v; size_t cap, n; } smap;
static uint32_t smap_get(smap *m, const char *s, size_t l, int add) {
    if (add && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1 << 16;
        char **k = calloc(nc, sizeof *k);
        uint32_t *v = calloc(nc, sizeof *v);
        for (size_t i = 0; i < m->cap; i++)
            if (m->k[i]) {
                size_t h = hash64(m->k[i], strlen(m->k[i]), 1) & (nc - 1);
                while (k[h]) h = (h + 1) & (nc - 1);
                k[h] = m->k[i];
                v[h] = m->v[i];
            }
        free(m->k);
        free(m->v);
        m->k = k;
        m->v = v;
        m->cap = nc;
    }
    if (!m->cap) return UINT32_MAX;
    size_t h = hash64(s, l, 1) & (m->cap - 1);
    while (m->k[h]) {
        if (strlen(m->k[h]) == l && !memcmp(m->k[h], s, l)) return m->v[h];
        h = (h + 1) & (m->cap - 1);
    }
    if (!add) return UINT32_MAX;
    m->k[h] = strndup(s, l);
    m->v[h] = (uint32_t)m->n;
    return (uint32_t)m->n++;
}

/* ---- bag of words of one text ---- */
typedef struct bag { uint32_t *t; float *w; size_t n, cap; smap *terms; int add; } bag;
static int bag_tok(void *arg, const char *term, int n, int s, int e) {
    (void)s;
    (void)e;
    bag *b = arg;
    uint32_t id = smap_get(b->terms, term, (size_t)n, b->add);
    if (id == UINT32_MAX) return 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->t[i] == id) { b->w[i] += 1; return 0; }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->t = realloc(b->t, b->cap * sizeof *b->t);
        b->w = realloc(b->w, b->cap * sizeof *b->w);
    }
    b->t[b->n] = id;
    b->w[b->n++] = 1;
    return 0;
}

typedef struct qrel { int q, d, rel; } qrel;

static double ndcg10(const int *ranked, int nr, const qrel *qr, size_t nq_rels, int q) {
    double dcg = 0, idcg = 0;
    int gains[256], ng = 0;
    for (size_t i = 0; i < nq_rels; i++)
        if (qr[i].q == q && qr[i].rel > 0 && ng < 256) gains[ng++] = qr[i].rel;
    for (int a = 0; a < ng; a++)
        for (int b = a + 1; b < ng; b++)
            if (gains[b] > gains[a]) { int t = gains[a]; gains[a] = gains[b]; gains[b] = t; }
    for (int i = 0; i < ng && i < 10; i++) idcg += gains[i] / log2(i + 2.0);
    for (int r = 0; r < nr && r < 10; r++)
        for (size_t i = 0; i < nq_rels; i++)
            if (qr[i].q == q && qr[i].d == ranked[r] && qr[i].rel > 0) dcg += qr[i].rel / log2(r + 2.0);
    return idcg > 0 ? dcg / idcg : 0;
}

static char *slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    b[n] = 0;
    fclose(f);
    return b;
}

static qrel *load_qrels(const char *path, smap *qids, smap *dids, size_t *n) {
    char *t = slurp(path);
    *n = 0;
    if (!t) return NULL;
    size_t cap = 1024;
    qrel *r = malloc(cap * sizeof *r);
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        char q[256], d[256];
        int rel;
        if (sscanf(line, "%255s %255s %d", q, d, &rel) != 3) continue;
        uint32_t qi = smap_get(qids, q, strlen(q), 0), di = smap_get(dids, d, strlen(d), 0);
        if (qi == UINT32_MAX || di == UINT32_MAX) continue;
        if (*n == cap) r = realloc(r, (cap *= 2) * sizeof *r);
        r[(*n)++] = (qrel){(int)qi, (int)di, rel};
    }
    free(t);
    return r;
}

typedef struct cand { int d; double s; } cand;
static int cmp_cand(const void *a, const void *b) {
    double x = ((const cand *)a)->s, y = ((const cand *)b)->s;
    return (x < y) - (x > y);
}

int main(int argc, char **argv) {
    const char *data = "../shared/data/beir/scifact";
    int dim = 512, power = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--power") && i + 1 < argc) power = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--data DIR] [--dim N] [--power Q]\n", argv[0]); return 2; }
    }
    char corpus[4096], queries[4096], test[4096], train[4096], dbp[256];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", data);
    snprintf(queries, sizeof queries, "%s/queries.jsonl", data);
    snprintf(test, sizeof test, "%s/qrels/test.tsv", data);
    snprintf(train, sizeof train, "%s/qrels/train.tsv", data);
    if (access(corpus, R_OK) || access(queries, R_OK) || access(test, R_OK)) {
        fprintf(stderr, "lsa_bench: dataset not found under %s (skipped)\n", data);
        return 2;
    }
    tok_ctx *tok = tok_new("english", 1);
    smap terms = {0}, dids = {0}, qids = {0};
    /* documents */
    char *ct = slurp(corpus);
    size_t nd = 0, capd = 1024;
    bag *docs = calloc(capd, sizeof *docs);
    for (char *line = strtok(ct, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cJSON *id = cJSON_GetObjectItem(j, "_id"), *ti = cJSON_GetObjectItem(j, "title"),
              *tx = cJSON_GetObjectItem(j, "text");
        if (cJSON_IsString(id)) {
            if (nd == capd) {
                docs = realloc(docs, (capd *= 2) * sizeof *docs);
                memset(docs + nd, 0, (capd - nd) * sizeof *docs);
            }
            smap_get(&dids, id->valuestring, strlen(id->valuestring), 1);
            bag *b = &docs[nd++];
            b->terms = &terms;
            b->add = 1;
            const char *t1 = cJSON_IsString(ti) ? ti->valuestring : "";
            const char *t2 = cJSON_IsString(tx) ? tx->valuestring : "";
            tok_run(tok, t1, (int)strlen(t1), bag_tok, b);
            tok_run(tok, t2, (int)strlen(t2), bag_tok, b);
        }
        cJSON_Delete(j);
    }
    free(ct);
    /* idf and weights */
    uint32_t nt = (uint32_t)terms.n;
    float *idf = calloc(nt, sizeof *idf);
    uint32_t *df = calloc(nt, sizeof *df);
    for (size_t d = 0; d < nd; d++) for (size_t i = 0; i < docs[d].n; i++) df[docs[d].t[i]]++;
    for (uint32_t t = 0; t < nt; t++) idf[t] = df[t] ? (float)log((double)nd / df[t]) : 0;
    lsa_csr A = {(uint32_t)nd, nt, calloc(nd + 1, sizeof(uint64_t)), NULL, NULL};
    uint64_t nnz = 0;
    for (size_t d = 0; d < nd; d++) nnz += docs[d].n;
    A.col = malloc(nnz * sizeof *A.col);
    A.val = malloc(nnz * sizeof *A.val);
    nnz = 0;
    for (size_t d = 0; d < nd; d++) {
        double norm = 0;
        for (size_t i = 0; i < docs[d].n; i++) {
            docs[d].w[i] = (1.0f + logf(docs[d].w[i])) * idf[docs[d].t[i]];
            norm += (double)docs[d].w[i] * docs[d].w[i];
        }
        norm = norm > 0 ? 1 / sqrt(norm) : 0;
        for (size_t i = 0; i < docs[d].n; i++) {
            A.col[nnz] = docs[d].t[i];
            A.val[nnz++] = docs[d].w[i] * (float)norm;
        }
        A.rowptr[d + 1] = nnz;
    }
    double t0 = now_s();
    lsa_model m;
    if (lsa_train(&A, dim, 20, power, 42, &m)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    double ttrain = now_s() - t0;
    float *dv = malloc(nd * (size_t)dim * sizeof *dv);
    for (size_t d = 0; d < nd; d++)
        lsa_fold(&m, A.col + A.rowptr[d], A.val + A.rowptr[d], A.rowptr[d + 1] - A.rowptr[d],
                 dv + d * (size_t)dim);
    printf("{\"bench\":\"lsa_train\",\"dataset\":\"%s\",\"docs\":%zu,\"terms\":%u,\"nnz\":%llu,"
           "\"dim\":%d,\"power_iters\":%d,\"train_seconds\":%.2f,\"sigma0\":%.4f,\"sigma_last\":%.4f}\n",
           data, nd, nt, (unsigned long long)nnz, dim, power, ttrain, m.sigma[0], m.sigma[dim - 1]);
    fflush(stdout);

    /* BM25 from plumb: whole documents */
    snprintf(dbp, sizeof dbp, "/tmp/plumb-lsa-bench-%d.db", (int)getpid());
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.chunk_tokens = 0;
    plumb_db *db;
    if (plumb_open(dbp, &op, &db)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
    const char *paths[1] = {corpus};
    if (plumb_index_paths(db, paths, 1, NULL, NULL)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }

    /* queries */
    char *qt = slurp(queries);
    size_t nq = 0, capq = 1024;
    char **qtext = malloc(capq * sizeof *qtext);
    for (char *line = strtok(qt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cJSON *id = cJSON_GetObjectItem(j, "_id"), *tx = cJSON_GetObjectItem(j, "text");
        if (cJSON_IsString(id) && cJSON_IsString(tx)) {
            if (nq == capq) qtext = realloc(qtext, (capq *= 2) * sizeof *qtext);
            smap_get(&qids, id->valuestring, strlen(id->valuestring), 1);
            qtext[nq++] = strdup(tx->valuestring);
        }
        cJSON_Delete(j);
    }
    free(qt);
    size_t ntest = 0, ntrain = 0;
    qrel *qtest = load_qrels(test, &qids, &dids, &ntest);
    qrel *qtrain = access(train, R_OK) == 0 ? load_qrels(train, &qids, &dids, &ntrain) : NULL;

    /* per query: top-100 of each, kept for every alpha */
    enum { K = 100 };
    cand *bm = calloc(nq * K, sizeof *bm), *de = calloc(nq * K, sizeof *de);
    int *nbm = calloc(nq, sizeof *nbm);
    float *qv = malloc((size_t)dim * sizeof *qv);
    cand *all = malloc(nd * sizeof *all);
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = K;
    sp.with_text = 0;
    sp.snippet_tokens = 0;
    int bad = 0;
    double tdense = 0;
    for (size_t q = 0; q < nq; q++) {
        plumb_hits *h = NULL;
        if (plumb_search(db, qtext[q], &sp, &h)) { fprintf(stderr, "%s\n", plumb_errmsg()); return 1; }
        for (size_t i = 0; i < h->n; i++) {
            uint32_t d = smap_get(&dids, h->hit[i].doc_id, strlen(h->hit[i].doc_id), 0);
            bm[q * K + i] = (cand){(int)d, h->hit[i].score};
        }
        nbm[q] = (int)h->n;
        plumb_hits_free(h);
        double ts = now_s();
        bag b = {0};
        b.terms = &terms;
        tok_run(tok, qtext[q], (int)strlen(qtext[q]), bag_tok, &b);
        for (size_t i = 0; i < b.n; i++) b.w[i] = (1.0f + logf(b.w[i])) * idf[b.t[i]];
        lsa_fold(&m, b.t, b.w, b.n, qv);
        free(b.t);
        free(b.w);
        for (size_t d = 0; d < nd; d++) {
            const float *v = dv + d * (size_t)dim;
            double s = 0;
            for (int k = 0; k < dim; k++) s += (double)v[k] * qv[k];
            all[d] = (cand){(int)d, s};
            if (isnan(s)) bad = 1;
        }
        qsort(all, nd, sizeof *all, cmp_cand);
        memcpy(de + q * K, all, K * sizeof *all);
        tdense += now_s() - ts;
    }
    /* evaluate one configuration over a split */
    double alphas[] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0};
    enum { NA = sizeof alphas / sizeof alphas[0] };
    double res_test[NA], res_train[NA];
    for (int s = 0; s < 2; s++) {
        const qrel *qr = s ? qtrain : qtest;
        size_t nqr = s ? ntrain : ntest;
        if (!qr) { for (int a = 0; a < NA; a++) res_train[a] = -1; continue; }
        for (int a = 0; a < NA; a++) {
            double sum = 0;
            int nj = 0;
            for (size_t q = 0; q < nq; q++) {
                int judged = 0;
                for (size_t i = 0; i < nqr && !judged; i++) judged = qr[i].q == (int)q;
                if (!judged) continue;
                /* fuse */
                cand u[2 * K];
                int nu = 0;
                double bmin = 1e300, bmax = -1e300, dmin = 1e300, dmax = -1e300;
                for (int i = 0; i < nbm[q]; i++) {
                    double x = bm[q * K + i].s;
                    if (x < bmin) bmin = x;
                    if (x > bmax) bmax = x;
                }
                for (int i = 0; i < K; i++) {
                    double x = de[q * K + i].s;
                    if (x < dmin) dmin = x;
                    if (x > dmax) dmax = x;
                }
                double br = bmax > bmin ? bmax - bmin : 1, dr = dmax > dmin ? dmax - dmin : 1;
                for (int i = 0; i < nbm[q]; i++) u[nu++] = (cand){bm[q * K + i].d, 0};
                for (int i = 0; i < K; i++) {
                    int d = de[q * K + i].d, f = 0;
                    for (int j = 0; j < nu && !f; j++) f = u[j].d == d;
                    if (!f) u[nu++] = (cand){d, 0};
                }
                for (int j = 0; j < nu; j++) {
                    double bs = 0, ds = 0;
                    for (int i = 0; i < nbm[q]; i++)
                        if (bm[q * K + i].d == u[j].d) bs = (bm[q * K + i].s - bmin) / br;
                    for (int i = 0; i < K; i++)
                        if (de[q * K + i].d == u[j].d) ds = (de[q * K + i].s - dmin) / dr;
                    u[j].s = (1 - alphas[a]) * bs + alphas[a] * ds;
                }
                qsort(u, (size_t)nu, sizeof *u, cmp_cand);
                int ranked[10], nr = 0;
                for (int j = 0; j < nu && nr < 10; j++) ranked[nr++] = u[j].d;
                sum += ndcg10(ranked, nr, qr, nqr, (int)q);
                nj++;
            }
            (s ? res_train : res_test)[a] = nj ? sum / nj : 0;
        }
    }
    int best = 0;
    for (int a = 0; a < NA; a++)
        if ((res_train[a] >= 0 ? res_train[a] : res_test[a]) >
            (res_train[best] >= 0 ? res_train[best] : res_test[best]))
            best = a;
    for (int a = 0; a < NA; a++)
        printf("{\"bench\":\"lsa_quality\",\"dataset\":\"%s\",\"dim\":%d,\"alpha_dense\":%.1f,"
               "\"ndcg@10_test\":%.4f,\"ndcg@10_train\":%.4f,\"chosen_on_train\":%s}\n", data, dim,
               alphas[a], res_test[a], res_train[a], a == best ? "true" : "false");
    printf("{\"bench\":\"lsa_dense_latency\",\"dataset\":\"%s\",\"dim\":%d,\"queries\":%zu,"
           "\"ms_per_query_scalar_scan\":%.3f}\n", data, dim, nq, 1e3 * tdense / nq);
    plumb_close(db);
    char rm[1200];
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm' '%s.bm25'", dbp, dbp, dbp, dbp);
    if (system(rm) != 0) return 1;
    /* a dense ranking no better than a tenth of BM25 means something broke */
    if (bad || res_test[NA - 1] < 0.1 * res_test[0]) {
        fprintf(stderr, "lsa_bench: verification failed\n");
        return 1;
    }
    return 0;
}
