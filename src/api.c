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
    rc = ingest_paths(db, paths, npaths, p, stats ? stats : &local);
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
        err_set(rc, "%s", keep);
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
    p->log = 1;
}

/* Results are one allocation for the struct and hit array plus a string
** arena, so plumb_hits_free is two frees. */
typedef struct hits_impl {
    plumb_hits pub;
    buf arena;
} hits_impl;

static size_t arena_add(buf *a, const char *s, size_t n) {
    size_t off = a->len;
    buf_append(a, s ? s : "", s ? n : 0);
    buf_putc(a, 0);
    return off;
}

static int64_t read_generation(reader *r) {
    int64_t g = -1;
    if (sqlite3_step(r->st_gen) == SQLITE_ROW) g = sqlite3_column_int64(r->st_gen, 0);
    sqlite3_reset(r->st_gen);
    return g;
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

    hits_impl *h = calloc(1, sizeof *h);
    if (!h) return err_set(PLUMB_NOMEM, "plumb_search");
    reader *r = NULL;
    lex_query q = {0};
    lex_hit *lh = NULL;
    size_t nl = 0;
    size_t *offs = NULL;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) goto done;
    rc = lex_query_parse(r->tok, query, &q);
    if (rc) goto done;
    int src;
    for (int attempt = 0;; attempt++) {
        src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
        if (src) { rc = store_err(r->conn, src, "begin read"); goto done; }
        h->pub.generation = read_generation(r);
        if (p->scorer != PLUMB_SCORER_BM25 || q.nterms == 0) {
            rc = lex_search(r, &q, p, &db->set, &lh, &nl, &h->pub.matched);
            break;
        }
        rc = bm25_sync(db->bm25, r, h->pub.generation);
        if (rc == PLUMB_BUSY && attempt < 1000) {
            /* the index moved past this snapshot: read a newer one */
            sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
            continue;
        }
        if (rc) break;
        const idx_settings *set = &db->set;
        rc = bm25_topk(db->bm25, &r->scratch, &q, p->bm25_k1 >= 0 ? p->bm25_k1 : set->k1,
                       p->bm25_b >= 0 ? p->bm25_b : set->b,
                       p->weight_title >= 0 ? p->weight_title : set->wt,
                       p->weight_body >= 0 ? p->weight_body : set->wb, p->k, &lh, &nl,
                       &h->pub.matched);
        bm25_release(db->bm25);
        break;
    }
    if (!rc && nl) {
        /* 7 string offsets per hit, resolved to pointers once the arena
        ** stops moving */
        offs = malloc(nl * 7 * sizeof *offs);
        h->pub.hit = calloc(nl, sizeof *h->pub.hit);
        if (!offs || !h->pub.hit) rc = err_set(PLUMB_NOMEM, "plumb_search");
        buf sn = {0};
        for (size_t i = 0; !rc && i < nl; i++) {
            sqlite3_stmt *st = r->st_hit;
            sqlite3_bind_int64(st, 1, lh[i].rowid);
            src = sqlite3_step(st);
            if (src != SQLITE_ROW) {
                rc = src == SQLITE_DONE
                         ? err_set(PLUMB_CORRUPT, "chunk %lld is in the lexical index but not "
                                   "in the chunks table", (long long)lh[i].rowid)
                         : store_err(r->conn, src, "read hit");
                sqlite3_reset(st);
                break;
            }
            plumb_hit *ht = &h->pub.hit[i];
            ht->chunk_id = lh[i].rowid;
            ht->score = lh[i].score;
            ht->score_lex = lh[i].score;
            ht->rank_lex = (int)i + 1;
            ht->score_dense = ht->score_fused = ht->score_rerank = NAN;
            ht->chunk_seq = sqlite3_column_int(st, 0);
            const char *text = (const char *)sqlite3_column_text(st, 1);
            size_t tn = (size_t)sqlite3_column_bytes(st, 1);
            size_t *o = offs + i * 7;
            for (int c = 2; c <= 5; c++)
                o[c - 2] = sqlite3_column_type(st, c) == SQLITE_NULL
                               ? (size_t)-1
                               : arena_add(&h->arena, (const char *)sqlite3_column_text(st, c),
                                           (size_t)sqlite3_column_bytes(st, c));
            o[4] = p->with_text ? arena_add(&h->arena, text, tn) : (size_t)-1;
            o[5] = (size_t)-1;
            if (p->snippet_tokens > 0 && text) {
                buf_reset(&sn);
                if (snippet_build(r->tok, text, tn, &q, p->snippet_tokens,
                                  p->hl_open ? p->hl_open : "", p->hl_close ? p->hl_close : "",
                                  &sn))
                    rc = err_set(PLUMB_NOMEM, "snippet");
                else o[5] = arena_add(&h->arena, sn.p, sn.len);
            }
            if (!rc && o[0] == (size_t)-1) /* NOT NULL in the schema: only damage gets here */
                rc = err_set(PLUMB_CORRUPT, "chunk %lld: its document has no id",
                             (long long)lh[i].rowid);
            sqlite3_reset(st);
        }
        buf_free(&sn);
        if (!rc && h->arena.oom) rc = err_set(PLUMB_NOMEM, "plumb_search");
        if (!rc) {
            for (size_t i = 0; i < nl; i++) {
                plumb_hit *ht = &h->pub.hit[i];
                size_t *o = offs + i * 7;
                const char *a = h->arena.p;
                ht->doc_id = a + o[0];
                ht->title = o[1] == (size_t)-1 ? "" : a + o[1];
                ht->source = o[2] == (size_t)-1 ? "" : a + o[2];
                ht->metadata = o[3] == (size_t)-1 ? NULL : a + o[3];
                ht->text = o[4] == (size_t)-1 ? NULL : a + o[4];
                ht->snippet = o[5] == (size_t)-1 ? NULL : a + o[5];
            }
            h->pub.n = nl;
        }
    }
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
done:
    free(offs);
    free(lh);
    lex_query_free(&q);
    if (r) store_reader_put(db, r);
    if (rc) {
        free(h->pub.hit);
        buf_free(&h->arena);
        free(h);
        return rc;
    }
    /* ---- the query log (src/qlog.c): queues an entry, never waits ---- */
    h->pub.log_id = qlog_search(db, query, p, &h->pub, t0_ms);
    *out = &h->pub;
    return PLUMB_OK;
}

void plumb_hits_free(plumb_hits *hits) {
    if (!hits) return;
    hits_impl *h = (hits_impl *)hits;
    free(h->pub.hit);
    buf_free(&h->arena);
    free(h);
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
