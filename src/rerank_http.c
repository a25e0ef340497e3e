/*
** rerank_http.c -- stage 2 over an HTTP /rerank service: the candidates'
** texts go to a cross-encoder behind the common request shape (Cohere,
** Jina, Hugging Face TEI: query + documents -> relevance scores) through
** http_rerank (http.c, which owns retries, time limits and messages).
**
** Where the service is: the search parameter, else $PLUMB_RERANK_URL /
** $PLUMB_RERANK_MODEL (the service moved, as $PLUMB_EMBED_URL for the
** embedder), else the index's settings rerank_url / rerank_model. The API
** key comes only from $PLUMB_RERANK_API_KEY (for the "llm" kind,
** rerank_llm.c, $PLUMB_LLM_API_KEY first): it is never stored.
**
** What is sent: per candidate its document's title, a blank line and the
** chunk's text, cut to RERANK_HTTP_DOC_BYTES (2 KiB: about 512 tokens,
** the input limit of the common cross-encoders; TEI refuses longer
** inputs unless told to truncate) at a UTF-8 character boundary. One
** request per search: N is at most a few hundred.
**
** Workload: one call per search with N ~ 30 short documents; the network
** dominates, so the texts are copied without cleverness.
*/
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

static const char *env_or(const char *name, const char *dflt) {
    const char *e = getenv(name);
    return e && *e ? e : dflt;
}

plumb_status rerank_http_target_of(const idx_settings *set, const plumb_search_params *p,
                                   const char *kind, rerank_http_target *t) {
    memset(t, 0, sizeof *t);
    t->url = p->rerank_url && *p->rerank_url ? p->rerank_url
                                             : env_or("PLUMB_RERANK_URL", set->rerank_url);
    t->model = p->rerank_model ? p->rerank_model : env_or("PLUMB_RERANK_MODEL", set->rerank_model);
    t->api_key = getenv("PLUMB_RERANK_API_KEY");
    if (!strcmp(kind, "llm")) t->api_key = env_or("PLUMB_LLM_API_KEY", t->api_key);
    t->timeout_ms = p->rerank_timeout_ms > 0     ? p->rerank_timeout_ms
                    : set->rerank_timeout_ms > 0 ? set->rerank_timeout_ms
                                                 : RERANK_HTTP_TIMEOUT_MS;
    if (!t->url || !*t->url)
        return err_set(PLUMB_MISUSE, "reranker '%s' has no URL: set "
                                     "plumb_search_params.rerank_url (plumb search --rerank-url), "
                                     "$PLUMB_RERANK_URL or the index's setting rerank_url "
                                     "(plumb config rerank_url URL)",
                       kind);
    return PLUMB_OK;
}

/* Bytes of s[0..n) that end on a character boundary within cap. */
static size_t utf8_cut(const char *s, size_t n, size_t cap) {
    if (n <= cap) return n;
    size_t k = cap;
    while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80) k--; /* s[k] continues a character */
    return k;
}

plumb_status rerank_http_docs(reader *r, const int64_t *rowid, size_t n, char ***out) {
    plumb_status rc = PLUMB_OK;
    *out = NULL;
    char **docs = calloc(n ? n : 1, sizeof *docs);
    if (!docs) return err_set(PLUMB_NOMEM, "rerank");
    sqlite3_stmt *st = r->st_hit; /* seq, text, doc_id, title, source, metadata */
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_bind_int64(st, 1, rowid[i]);
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            rc = src == SQLITE_DONE ? err_set(PLUMB_CORRUPT,
                                              "chunk %lld was retrieved but is "
                                              "not in the chunks table",
                                              (long long)rowid[i])
                                    : store_err(r->conn, src, "read rerank candidate");
        } else {
            const char *title = (const char *)sqlite3_column_text(st, 3);
            size_t tn = title ? (size_t)sqlite3_column_bytes(st, 3) : 0;
            const char *text = (const char *)sqlite3_column_text(st, 1);
            size_t xn = text ? (size_t)sqlite3_column_bytes(st, 1) : 0;
            buf b = {0};
            if (tn) {
                buf_append(&b, title, utf8_cut(title, tn, RERANK_HTTP_DOC_BYTES));
                if (b.len + 2 < RERANK_HTTP_DOC_BYTES) buf_append(&b, "\n\n", 2);
            }
            if (xn && b.len < RERANK_HTTP_DOC_BYTES)
                buf_append(&b, text, utf8_cut(text, xn, RERANK_HTTP_DOC_BYTES - b.len));
            buf_putc(&b, 0);
            if (b.oom) {
                buf_free(&b);
                rc = err_set(PLUMB_NOMEM, "rerank");
            } else {
                docs[i] = b.p; /* the buffer's memory is the string's */
            }
        }
        sqlite3_reset(st);
    }
    if (rc) {
        rerank_http_docs_free(docs, n);
        return rc;
    }
    *out = docs;
    return PLUMB_OK;
}

void rerank_http_docs_free(char **docs, size_t n) {
    for (size_t i = 0; docs && i < n; i++) free(docs[i]);
    free(docs);
}

void rerank_http_cfg(const rerank_http_target *t, http_cfg *c) {
    http_cfg_init(c);
    c->base_url = t->url;
    c->model = t->model;
    c->api_key = t->api_key;
    c->timeout_ms = t->timeout_ms;
    c->idle_timeout_ms = t->timeout_ms; /* streams (the llm kind): silence counts too */
    if (c->connect_timeout_ms > t->timeout_ms) c->connect_timeout_ms = t->timeout_ms;
    c->max_retries = RERANK_HTTP_RETRIES;
}

plumb_status rerank_http_scores(reader *r, const rerank_http_target *t, const char *query,
                                const int64_t *rowid, size_t n, double *scores) {
    char **docs = NULL;
    plumb_status rc = rerank_http_docs(r, rowid, n, &docs);
    if (!rc) {
        http_cfg c;
        rerank_http_cfg(t, &c);
        rc = http_rerank(&c, query, (const char *const *)docs, n, scores);
    }
    rerank_http_docs_free(docs, n);
    return rc;
}
