/*
** lex.c -- lexical retrieval on SQLite FTS5.
**
** Three pieces:
**   1. The "plumb" FTS5 tokenizer: FTS5 calls it for documents and query
**      strings, and it runs tok.c, so the index and the queries see the
**      same terms.
**   2. plumb_bm25(), an FTS5 auxiliary function scoring one row with
**      BM25F (tunable k1, b and title/body weights; FTS5's own bm25() has
**      k1 and b fixed).
**   3. Query parsing and the top-k SQL.
**
** BM25F, as scored here (Robertson & Zaragoza 2009, "simple BM25F"):
**     tf~(t,d)  = wt * tf_title(t,d) + wb * tf_body(t,d)
**     dl~(d)    = wt * len_title(d)  + wb * len_body(d)
**     avgdl~    = wt * avg len_title + wb * avg len_body
**     idf(t)    = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
**     score(d)  = sum over query terms t of
**                 idf(t) * tf~ * (k1 + 1) / (tf~ + k1 * (1 - b + b * dl~ / avgdl~))
** N is the number of chunks, df(t) the number of chunks containing t in
** any field; lengths count indexed tokens (after stop-word removal). With
** wt = wb = 1 this is exactly BM25 over the concatenated title and body,
** which is how Anserini's BEIR baselines index "title + text".
** A term repeated in the query contributes once per repetition.
**
** Workload: this path scores every row matching any query term (FTS5
** evaluates the OR query fully); the top-k structure of issue "BM25 at
** speed" replaces it on the hot path.
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- */
/* 1. Tokenizer                                                        */
/* ---------------------------------------------------------------- */

typedef struct fts_tok {
    tok_ctx *tok;
} fts_tok;

typedef struct emit_bridge {
    void *ctx;
    int (*xToken)(void *, int, const char *, int, int, int);
} emit_bridge;

static int bridge(void *arg, const char *term, int n, int start, int end) {
    emit_bridge *b = arg;
    return b->xToken(b->ctx, 0, term, n, start, end);
}

static int fts_tok_create(void *unused, const char **azArg, int nArg, Fts5Tokenizer **out) {
    (void)unused;
    const char *lang = nArg > 0 ? azArg[0] : "english";
    int stop = nArg > 1 ? atoi(azArg[1]) : 1;
    fts_tok *t = calloc(1, sizeof *t);
    if (!t) return SQLITE_NOMEM;
    t->tok = tok_new(lang, stop);
    if (!t->tok) { /* an unknown language is an error; anything else ran out of memory */
        free(t);
        return tok_language_ok(lang) ? SQLITE_NOMEM : SQLITE_ERROR;
    }
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void fts_tok_delete(Fts5Tokenizer *p) {
    fts_tok *t = (fts_tok *)p;
    if (!t) return;
    tok_free(t->tok);
    free(t);
}

static int fts_tok_tokenize(Fts5Tokenizer *p, void *ctx, int flags, const char *text, int n,
                            int (*xToken)(void *, int, const char *, int, int, int)) {
    (void)flags;
    fts_tok *t = (fts_tok *)p;
    emit_bridge b = {ctx, xToken};
    int rc = tok_run(t->tok, text, n, bridge, &b);
    if (rc < 0) return SQLITE_NOMEM;
    return rc; /* 0, or the SQLite code xToken returned */
}

/* ---------------------------------------------------------------- */
/* 2. BM25F auxiliary function                                         */
/* ---------------------------------------------------------------- */

/* Passed by pointer (sqlite3_bind_pointer) so per-row calls convert no
** values and the caller learns how many rows matched. */
typedef struct bm25_args {
    double k1, b, wt, wb;
    int64_t matched; /* out: rows scored */
} bm25_args;

#define BM25_PTR "plumb_bm25_args"
#define NCOL 2

typedef struct bm25_query {
    int nphrase;
    double avgdl;   /* weighted average length */
    double *idf;    /* per phrase */
    int *tf;        /* scratch: nphrase * NCOL counts */
} bm25_query;

static void bm25_query_free(void *p) {
    bm25_query *q = p;
    if (!q) return;
    free(q->idf);
    free(q->tf);
    free(q);
}

static int count_rows(const Fts5ExtensionApi *api, Fts5Context *fts, void *arg) {
    (void)api;
    (void)fts;
    (*(int64_t *)arg)++;
    return SQLITE_OK;
}

static int bm25_prepare(const Fts5ExtensionApi *api, Fts5Context *fts, const bm25_args *a,
                        bm25_query **out) {
    int rc;
    bm25_query *q = calloc(1, sizeof *q);
    if (!q) return SQLITE_NOMEM;
    q->nphrase = api->xPhraseCount(fts);
    q->idf = calloc((size_t)q->nphrase + 1, sizeof *q->idf);
    q->tf = calloc(((size_t)q->nphrase + 1) * NCOL, sizeof *q->tf);
    if (!q->idf || !q->tf) { bm25_query_free(q); return SQLITE_NOMEM; }
    sqlite3_int64 nrow = 0, tot[NCOL] = {0, 0};
    rc = api->xRowCount(fts, &nrow);
    for (int c = 0; rc == SQLITE_OK && c < NCOL; c++) rc = api->xColumnTotalSize(fts, c, &tot[c]);
    if (rc != SQLITE_OK) { bm25_query_free(q); return rc; }
    if (nrow < 1) nrow = 1;
    q->avgdl = (a->wt * (double)tot[0] + a->wb * (double)tot[1]) / (double)nrow;
    if (q->avgdl <= 0) q->avgdl = 1;
    for (int i = 0; i < q->nphrase; i++) {
        int64_t df = 0;
        rc = api->xQueryPhrase(fts, i, &df, count_rows);
        if (rc != SQLITE_OK) { bm25_query_free(q); return rc; }
        q->idf[i] = log(1.0 + ((double)nrow - (double)df + 0.5) / ((double)df + 0.5));
    }
    *out = q;
    return SQLITE_OK;
}

static void plumb_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                       int nval, sqlite3_value **val) {
    bm25_args *a = nval == 1 ? sqlite3_value_pointer(val[0], BM25_PTR) : NULL;
    if (!a) {
        sqlite3_result_error(ctx, "plumb_bm25: expects one bound parameter block", -1);
        return;
    }
    bm25_query *q = api->xGetAuxdata(fts, 0);
    if (!q) {
        int rc = bm25_prepare(api, fts, a, &q);
        if (rc == SQLITE_OK) rc = api->xSetAuxdata(fts, q, bm25_query_free);
        if (rc != SQLITE_OK) { sqlite3_result_error_code(ctx, rc); return; }
    }
    a->matched++;
    int ninst = 0, rc = api->xInstCount(fts, &ninst);
    if (rc != SQLITE_OK) { sqlite3_result_error_code(ctx, rc); return; }
    memset(q->tf, 0, (size_t)q->nphrase * NCOL * sizeof *q->tf);
    for (int i = 0; i < ninst; i++) {
        int ph, col, off;
        rc = api->xInst(fts, i, &ph, &col, &off);
        if (rc != SQLITE_OK) { sqlite3_result_error_code(ctx, rc); return; }
        if (ph >= 0 && ph < q->nphrase && col >= 0 && col < NCOL) q->tf[ph * NCOL + col]++;
    }
    int len[NCOL];
    for (int c = 0; c < NCOL; c++) {
        rc = api->xColumnSize(fts, c, &len[c]);
        if (rc != SQLITE_OK) { sqlite3_result_error_code(ctx, rc); return; }
    }
    double dl = a->wt * len[0] + a->wb * len[1];
    double norm = a->k1 * (1.0 - a->b + a->b * dl / q->avgdl);
    double score = 0;
    for (int p = 0; p < q->nphrase; p++) {
        double tf = a->wt * q->tf[p * NCOL] + a->wb * q->tf[p * NCOL + 1];
        if (tf > 0) score += q->idf[p] * tf * (a->k1 + 1.0) / (tf + norm);
    }
    sqlite3_result_double(ctx, score);
}

static fts5_api *get_fts5(sqlite3 *c) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return api;
}

plumb_status lex_register(sqlite3 *conn) {
    fts5_api *api = get_fts5(conn);
    if (!api || api->iVersion < 2)
        return err_set(PLUMB_ERROR, "this SQLite library lacks FTS5 (version 2 or later)");
    fts5_tokenizer t = {fts_tok_create, fts_tok_delete, fts_tok_tokenize};
    int src = api->xCreateTokenizer(api, "plumb", NULL, &t, NULL);
    if (src == SQLITE_OK)
        src = api->xCreateFunction(api, "plumb_bm25", NULL, plumb_bm25, NULL);
    if (src != SQLITE_OK) return store_err(conn, src, "register FTS5 extensions");
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* 3. Queries                                                          */
/* ---------------------------------------------------------------- */

typedef struct qbuild {
    const char *query;
    lex_query *q;
} qbuild;

static int add_term(void *arg, const char *term, int n, int start, int end) {
    qbuild *b = arg;
    lex_query *q = b->q;
    /* Quote the original text of the word, not the term: FTS5 runs the
    ** tokenizer over quoted strings again, and a stem is not always its
    ** own stem. The word re-tokenizes to exactly this one term. */
    if (q->nterms) buf_puts(&q->match, " OR ");
    buf_putc(&q->match, '"');
    for (int i = start; i < end; i++) {
        char c = b->query[i];
        if (c == '"') buf_putc(&q->match, '"');
        buf_putc(&q->match, c);
    }
    buf_putc(&q->match, '"');
    buf_append(&q->terms, term, (size_t)n);
    buf_putc(&q->terms, 0);
    q->nterms++;
    return 0;
}

plumb_status lex_query_parse(tok_ctx *tok, const char *query, lex_query *q) {
    size_t n = strlen(query);
    if (n > (1u << 20)) return err_set(PLUMB_MISUSE, "query longer than 1 MiB");
    size_t bad = utf8_check(query, n);
    if (bad != n) return err_set(PLUMB_MISUSE, "query is not valid UTF-8 (byte %zu)", bad);
    qbuild b = {query, q};
    if (tok_run(tok, query, (int)n, add_term, &b) < 0 || q->match.oom || q->terms.oom)
        return err_set(PLUMB_NOMEM, "parse query");
    return PLUMB_OK;
}

void lex_query_free(lex_query *q) {
    buf_free(&q->match);
    buf_free(&q->terms);
    q->nterms = 0;
}

plumb_status lex_search(reader *r, const lex_query *q, const plumb_search_params *p,
                        const idx_settings *set, lex_hit **out, size_t *nout,
                        int64_t *matched) {
    *out = NULL;
    *nout = 0;
    *matched = 0;
    if (q->nterms == 0 || p->k <= 0) return PLUMB_OK;
    bm25_args a = {p->bm25_k1 >= 0 ? p->bm25_k1 : set->k1, p->bm25_b >= 0 ? p->bm25_b : set->b,
                   p->weight_title >= 0 ? p->weight_title : set->wt,
                   p->weight_body >= 0 ? p->weight_body : set->wb, 0};
    sqlite3_stmt *st = p->scorer == PLUMB_SCORER_FTS5 ? r->st_fts5 : r->st_bm25;
    if (p->scorer != PLUMB_SCORER_FTS5) sqlite3_bind_pointer(st, 1, &a, BM25_PTR, NULL);
    sqlite3_bind_text(st, 2, q->match.p, (int)q->match.len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, p->k);
    lex_hit *hits = malloc((size_t)p->k * sizeof *hits);
    if (!hits) { sqlite3_reset(st); return err_set(PLUMB_NOMEM, "search"); }
    size_t n = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && n < (size_t)p->k) {
        hits[n].rowid = sqlite3_column_int64(st, 0);
        hits[n].score = sqlite3_column_double(st, 1);
        n++;
    }
    plumb_status rc = PLUMB_OK;
    if (src != SQLITE_DONE && src != SQLITE_ROW) rc = store_err(r->conn, src, "search");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) { free(hits); return rc; }
    *out = hits;
    *nout = n;
    *matched = p->scorer == PLUMB_SCORER_FTS5 ? -1 : a.matched;
    return PLUMB_OK;
}
