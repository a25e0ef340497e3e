/*
** api.c -- the public entry points: validate arguments, then dispatch.
**
** Argument checks live here so the layers below can assume sane input;
** misuse of the API returns PLUMB_MISUSE with the parameter named.
** Write entry points take db->wlock; searches take a pooled reader and
** run in one read transaction, so every field of every hit comes from
** the same snapshot.
*/
#include "plumb_impl.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_K 10000

void plumb_open_params_init(plumb_open_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->create = 1;
    p->busy_timeout_ms = 5000;
    p->language = "english";
    p->stopwords = 1;
    p->chunk_tokens = 512;
    p->chunk_overlap = 64;
    p->bm25_k1 = 0.9;
    p->bm25_b = 0.4;
    p->weight_title = 1.0;
    p->weight_body = 1.0;
}

plumb_status plumb_open(const char *path, const plumb_open_params *p, plumb_db **out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return err_set(PLUMB_MISUSE, "plumb_open: path is NULL or empty");
    plumb_open_params def;
    if (!p) { plumb_open_params_init(&def); p = &def; }
    if (p->chunk_tokens < 0 || p->chunk_overlap < 0 ||
        (p->chunk_tokens > 0 && p->chunk_overlap >= p->chunk_tokens))
        return err_set(PLUMB_MISUSE, "chunk_overlap (%d) must be >= 0 and below chunk_tokens (%d)",
                       p->chunk_overlap, p->chunk_tokens);
    if (!(p->bm25_k1 >= 0) || !(p->bm25_b >= 0 && p->bm25_b <= 1) || !(p->weight_title >= 0) ||
        !(p->weight_body >= 0) || p->weight_title + p->weight_body <= 0)
        return err_set(PLUMB_MISUSE, "BM25 parameters out of range: k1 >= 0, 0 <= b <= 1, "
                       "field weights >= 0 and not both 0");
    if (p->busy_timeout_ms < 0) return err_set(PLUMB_MISUSE, "busy_timeout_ms < 0");
    plumb_db *db = calloc(1, sizeof *db);
    if (!db) return err_set(PLUMB_NOMEM, "plumb_open");
    plumb_status rc = store_open(db, path, p);
    if (!rc) rc = qlog_open(db);
    if (rc) {
        qlog_close(db);
        store_close(db);
        free(db);
        return rc;
    }
    *out = db;
    return PLUMB_OK;
}

void plumb_close(plumb_db *db) {
    if (!db) return;
    /* a handle that replayed much of the log saves the work for the next */
    if (db->w && !db->in_txn && db->bm25 && bm25_applied_since_save(db->bm25) >= 10000)
        bm25_persist(db);
    if (db->w && !db->in_txn && db->vec && vec_applied_since_save(db->vec) >= 10000)
        vec_persist(db, "", 0, 0, NULL);
    qlog_close(db); /* writes what the query log still has queued */
    store_close(db);
    free(db);
}

/* ---------------------------------------------------------------- */
/* Writes                                                             */
/* ---------------------------------------------------------------- */

static plumb_status check_writable(plumb_db *db, const char *fn) {
    if (!db) return err_set(PLUMB_MISUSE, "%s: db is NULL", fn);
    if (db->readonly || !db->w) return err_set(PLUMB_MISUSE, "%s: index opened read-only", fn);
    return PLUMB_OK;
}

static plumb_status check_doc(const plumb_doc *d) {
    if (!d) return err_set(PLUMB_MISUSE, "plumb_add: doc is NULL");
    if (!d->id || !*d->id) return err_set(PLUMB_MISUSE, "plumb_add: document id is NULL or empty");
    const char *f[4] = {d->id, d->title, d->text, d->source};
    const char *nm[4] = {"id", "title", "text", "source"};
    for (int i = 0; i < 4; i++) {
        if (!f[i]) continue;
        size_t n = strlen(f[i]), bad = utf8_check(f[i], n);
        if (bad != n)
            return err_set(PLUMB_CORRUPT, "document '%.200s': %s is not valid UTF-8 at byte %zu",
                           i ? d->id : "?", nm[i], bad);
    }
    if (d->metadata) {
        size_t off = 0;
        if (!json_is_object(d->metadata, &off)) {
            if (off)
                return err_set(PLUMB_CORRUPT, "document '%.200s': metadata is not valid JSON "
                               "(error near byte %zu)", d->id, off);
            return err_set(PLUMB_CORRUPT, "document '%.200s': metadata is JSON but not an "
                           "object", d->id);
        }
    }
    return PLUMB_OK;
}

/* Run one write: inside the open batch, or in a transaction of its own. */
static plumb_status write_begin(plumb_db *db) {
    pthread_mutex_lock(&db->wlock);
    if (db->user_batch) return PLUMB_OK;
    plumb_status rc = store_begin(db);
    if (rc) pthread_mutex_unlock(&db->wlock);
    return rc;
}

/* A write that fails after validation failed in SQLite (I/O, memory,
** locking) and may have left part of its rows: the transaction is rolled
** back, a user batch included (no per-write savepoint: FTS5 flushes its
** pending terms at each one, which would halve bulk-load speed). */
static plumb_status write_end(plumb_db *db, plumb_status rc) {
    if (rc && rc != PLUMB_NOTFOUND) {
        if (db->in_txn) {
            char m[1024];
            snprintf(m, sizeof m, "%s", plumb_errmsg());
            store_rollback(db);
            if (db->user_batch)
                rc = err_set(rc, "%s (the open batch was rolled back)", m);
        }
        db->user_batch = 0;
    } else if (!db->user_batch) {
        plumb_status crc = store_commit(db);
        if (crc) rc = crc;
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

plumb_status plumb_add(plumb_db *db, const plumb_doc *doc, plumb_add_result *result) {
    err_clear();
    plumb_status rc = check_writable(db, "plumb_add");
    if (!rc) rc = check_doc(doc);
    if (rc) return rc;
    if ((rc = write_begin(db))) return rc;
    rc = store_add_doc(db, doc, 0, result, NULL, NULL);
    return write_end(db, rc);
}

plumb_status plumb_delete(plumb_db *db, const char *id) {
    err_clear();
    plumb_status rc = check_writable(db, "plumb_delete");
    if (rc) return rc;
    if (!id || !*id) return err_set(PLUMB_MISUSE, "plumb_delete: id is NULL or empty");
    if ((rc = write_begin(db))) return rc;
    rc = store_delete_doc(db, id);
    return write_end(db, rc);
}

plumb_status plumb_batch_begin(plumb_db *db) {
    err_clear();
    plumb_status rc = check_writable(db, "plumb_batch_begin");
    if (rc) return rc;
    pthread_mutex_lock(&db->wlock);
    if (db->user_batch) rc = err_set(PLUMB_MISUSE, "plumb_batch_begin: a batch is already open");
    else if (!(rc = store_begin(db))) db->user_batch = 1;
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

plumb_status plumb_batch_commit(plumb_db *db) {
    err_clear();
    plumb_status rc = check_writable(db, "plumb_batch_commit");
    if (rc) return rc;
    pthread_mutex_lock(&db->wlock);
    if (!db->user_batch) rc = err_set(PLUMB_MISUSE, "plumb_batch_commit: no batch is open");
    else {
        rc = store_commit(db); /* rolls back on failure */
        db->user_batch = 0;
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

plumb_status plumb_batch_rollback(plumb_db *db) {
    err_clear();
    plumb_status rc = check_writable(db, "plumb_batch_rollback");
    if (rc) return rc;
    pthread_mutex_lock(&db->wlock);
    if (!db->user_batch) rc = err_set(PLUMB_MISUSE, "plumb_batch_rollback: no batch is open");
    else {
        store_rollback(db);
        db->user_batch = 0;
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

void plumb_index_params_init(plumb_index_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->commit_every = 2000;
    p->embed = 1;
}

/* The vector side files after embedding. An ANN index asked for by name
** must be built (its failure is the caller's error); the automatic one
** and the snapshot are caches whose failure loses nothing. */
static plumb_status persist_vectors(plumb_db *db, const plumb_embed_params *p) {
    const char *ann = p && p->ann ? p->ann : "auto";
    int force = strcmp(ann, "auto") && strcmp(ann, "none");
    plumb_status rc = vec_persist(db, !strcmp(ann, "none") ? "" : force ? ann : "HNSW32,Flat",
                                  force, p ? p->ann_ef : 0, NULL);
    return force ? rc : PLUMB_OK;
}

plumb_status plumb_index_paths(plumb_db *db, const char *const *paths, int npaths,
                               const plumb_index_params *p, plumb_index_stats *stats) {
    err_clear();
    if (stats) memset(stats, 0, sizeof *stats);
    plumb_status rc = check_writable(db, "plumb_index_paths");
    if (rc) return rc;
    if (npaths < 0 || (npaths > 0 && !paths))
        return err_set(PLUMB_MISUSE, "plumb_index_paths: paths is NULL");
    for (int i = 0; i < npaths; i++)
        if (!paths[i] || !*paths[i])
            return err_set(PLUMB_MISUSE, "plumb_index_paths: path %d is NULL or empty", i);
    plumb_index_params def;
    if (!p) { plumb_index_params_init(&def); p = &def; }
    if (p->commit_every < 1) return err_set(PLUMB_MISUSE, "commit_every must be >= 1");
    plumb_index_stats local;
    pthread_mutex_lock(&db->wlock);
    if (db->user_batch) {
        pthread_mutex_unlock(&db->wlock);
        return err_set(PLUMB_MISUSE, "plumb_index_paths: a batch is open; commit it first");
    }
    plumb_index_stats *st = stats ? stats : &local;
    rc = ingest_paths(db, paths, npaths, p, st);
    if ((rc == PLUMB_OK || rc == PLUMB_NOTFOUND) && p->embed) {
        /* the vectors of what was just indexed (a failure here keeps the
        ** lexical index: it is committed; the next run embeds what is missing) */
        plumb_embed_params ep;
        if (p->embed_params) ep = *p->embed_params;
        else {
            plumb_embed_params_init(&ep);
            ep.message = p->message;
            ep.arg = p->arg;
        }
        plumb_embed_stats es = {0};
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", plumb_errmsg());
        plumb_status erc = embed_run(db, &ep, &es);
        st->embed_trained = es.trained;
        st->vectors_added = es.embedded;
        st->vectors_missing = es.missing;
        st->embed_s = es.train_s + es.embed_s;
        if (erc) rc = erc;
        else err_set(rc, "%s", keep);
    }
    pthread_mutex_unlock(&db->wlock);
    /* leave a BM25 snapshot beside the index, so the next process to
    ** search loads it instead of rebuilding; a failure here loses nothing */
    if (rc == PLUMB_OK || rc == PLUMB_NOTFOUND) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", plumb_errmsg());
        plumb_status prc = bm25_persist(db);
        if (prc && p->message) {
            char m[1200];
            snprintf(m, sizeof m, "could not save the BM25 snapshot: %s", plumb_errmsg());
            p->message(p->arg, PLUMB_MSG_WARN, m);
        }
        prc = p->embed ? persist_vectors(db, p->embed_params) : PLUMB_OK;
        if (prc && p->message) {
            char m[1200];
            snprintf(m, sizeof m, "could not save the vector snapshot: %s", plumb_errmsg());
            p->message(p->arg, PLUMB_MSG_WARN, m);
        }
        err_set(rc, "%s", keep);
    }
    return rc;
}

plumb_status plumb_embed(plumb_db *db, const plumb_embed_params *p, plumb_embed_stats *st) {
    err_clear();
    if (st) memset(st, 0, sizeof *st);
    plumb_status rc = check_writable(db, "plumb_embed");
    if (rc) return rc;
    plumb_embed_params def;
    if (!p) { plumb_embed_params_init(&def); p = &def; }
    if (p->dim < 0 || p->dim > 4096) return err_set(PLUMB_MISUSE, "plumb_embed: dim must be 1..4096");
    if (p->commit_every < 0 || p->batch < 0 || p->concurrency < 0)
        return err_set(PLUMB_MISUSE, "plumb_embed: negative batch, concurrency or commit_every");
    plumb_embed_stats local = {0};
    pthread_mutex_lock(&db->wlock);
    if (db->user_batch) {
        pthread_mutex_unlock(&db->wlock);
        return err_set(PLUMB_MISUSE, "plumb_embed: a batch is open; commit it first");
    }
    rc = embed_run(db, p, st ? st : &local);
    pthread_mutex_unlock(&db->wlock);
    if (rc == PLUMB_OK) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", plumb_errmsg());
        rc = persist_vectors(db, p);
        if (rc == PLUMB_OK) err_set(PLUMB_OK, "%s", keep);
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* Search                                                             */
/* ---------------------------------------------------------------- */

void plumb_search_params_init(plumb_search_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->k = 10;
    p->scorer = PLUMB_SCORER_BM25;
    p->bm25_k1 = p->bm25_b = p->weight_title = p->weight_body = -1;
    p->with_text = 1;
    p->snippet_tokens = 24;
    p->hl_open = "[";
    p->hl_close = "]";
    p->mode = PLUMB_MODE_AUTO;
    p->k_lex = p->k_dense = -1;
    p->fusion = PLUMB_FUSE_DEFAULT;
    p->alpha = p->rrf_k = -1;
    p->vsearch = PLUMB_VSEARCH_AUTO;
    p->ef_search = 0;
    p->rerank = -1;
    p->qe_docs = -1;
    p->log = 1;
}

plumb_status plumb_search(plumb_db *db, const char *query, const plumb_search_params *p,
                          plumb_hits **out) {
    double t0_ms = qlog_now_ms(); /* the query log's latency */
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_search: out is NULL");
    *out = NULL;
    if (!db) return err_set(PLUMB_MISUSE, "plumb_search: db is NULL");
    if (!query) return err_set(PLUMB_MISUSE, "plumb_search: query is NULL");
    plumb_search_params def;
    if (!p) { plumb_search_params_init(&def); p = &def; }
    if (p->k < 0 || p->k > MAX_K)
        return err_set(PLUMB_MISUSE, "plumb_search: k must be between 0 and %d (got %d)", MAX_K, p->k);
    if (p->scorer != PLUMB_SCORER_BM25 && p->scorer != PLUMB_SCORER_FTS5 &&
        p->scorer != PLUMB_SCORER_BM25_SQL)
        return err_set(PLUMB_MISUSE, "plumb_search: unknown scorer %d", (int)p->scorer);
    if ((p->bm25_b > 1) || (p->weight_title >= 0 && p->weight_body >= 0 &&
                            p->weight_title + p->weight_body <= 0))
        return err_set(PLUMB_MISUSE, "plumb_search: b must be <= 1 and field weights not both 0");
    if (p->snippet_tokens < 0) return err_set(PLUMB_MISUSE, "plumb_search: snippet_tokens < 0");
    if ((unsigned)p->mode > PLUMB_MODE_HYBRID)
        return err_set(PLUMB_MISUSE, "plumb_search: unknown mode %d", (int)p->mode);
    if ((unsigned)p->fusion > PLUMB_FUSE_RRF)
        return err_set(PLUMB_MISUSE, "plumb_search: unknown fusion %d", (int)p->fusion);
    if ((unsigned)p->vsearch > PLUMB_VSEARCH_ANN)
        return err_set(PLUMB_MISUSE, "plumb_search: unknown vector search %d", (int)p->vsearch);
    if (p->alpha > 1) return err_set(PLUMB_MISUSE, "plumb_search: alpha must be in 0..1 (got %g)", p->alpha);
    if (p->k_lex > MAX_K || p->k_dense > MAX_K)
        return err_set(PLUMB_MISUSE, "plumb_search: k_lex and k_dense must be at most %d", MAX_K);
    if (p->rerank > MAX_K)
        return err_set(PLUMB_MISUSE, "plumb_search: rerank must be at most %d", MAX_K);
    if (p->qe_docs > 100)
        return err_set(PLUMB_MISUSE, "plumb_search: qe_docs must be at most 100 (got %d)", p->qe_docs);
    plumb_status rc = search_run(db, query, p, out);
    /* ---- the query log (src/qlog.c): queues an entry, never waits ---- */
    if (rc == PLUMB_OK) (*out)->log_id = qlog_search(db, query, p, *out, t0_ms);
    return rc;
}

plumb_status plumb_stats_get(plumb_db *db, plumb_stats *out) {
    err_clear();
    if (!db || !out) return err_set(PLUMB_MISUSE, "plumb_stats_get: NULL argument");
    memset(out, 0, sizeof *out);
    return store_stats(db, out);
}

typedef struct tok_bridge {
    int (*emit)(void *, const char *, size_t, size_t, size_t);
    void *arg;
} tok_bridge;

static int tok_adapter(void *arg, const char *term, int n, int start, int end) {
    tok_bridge *b = arg;
    return b->emit(b->arg, term, (size_t)n, (size_t)start, (size_t)end) ? 1 : 0;
}

plumb_status plumb_tokenize(plumb_db *db, const char *text, size_t len,
                            int (*emit)(void *, const char *, size_t, size_t, size_t),
                            void *arg) {
    err_clear();
    if (!db || (!text && len) || !emit) return err_set(PLUMB_MISUSE, "plumb_tokenize: NULL argument");
    if (len > (size_t)1 << 30) return err_set(PLUMB_MISUSE, "plumb_tokenize: text over 1 GiB");
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    tok_bridge b = {emit, arg};
    int trc = tok_run(r->tok, text ? text : "", (int)len, tok_adapter, &b);
    store_reader_put(db, r);
    return trc < 0 ? err_set(PLUMB_NOMEM, "plumb_tokenize") : PLUMB_OK;
}
