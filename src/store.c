/*
** store.c -- the index file: schema, settings, connections and writes.
**
** An index is one SQLite database in WAL mode (index/schema.sql,
** index/FORMAT.md). A handle owns one writer connection, used under
** db->wlock, and a pool of reader connections handed to one searching
** thread at a time. Every committed write transaction increments the
** "generation" setting, so a reader can tell which state it read and
** files added beside the database later can be tied to one state.
**
** Workload: bulk ingest runs thousands of add-document calls inside one
** transaction, so every writer statement is prepared once and reused.
*/
#include "plumb_impl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema_sql.h"

#define APP_ID 0x504C4D42 /* 'PLMB' */

plumb_status store_err(sqlite3 *conn, int src, const char *what) {
    plumb_status rc;
    switch (src & 0xff) {
    case SQLITE_NOMEM: rc = PLUMB_NOMEM; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: rc = PLUMB_BUSY; break;
    case SQLITE_CORRUPT: rc = PLUMB_CORRUPT; break;
    case SQLITE_NOTADB: rc = PLUMB_FORMAT; break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: rc = PLUMB_IO; break;
    default: rc = PLUMB_ERROR;
    }
    const char *m = conn ? sqlite3_errmsg(conn) : sqlite3_errstr(src);
    if (rc == PLUMB_FORMAT) return err_set(rc, "%s: not a plumb index (%s)", what, m);
    /* "disk I/O error" alone names neither the file nor the likely cause
    ** (sqlite3_system_errno() is the errno of a later call by then) */
    const char *file = conn && rc == PLUMB_IO ? sqlite3_db_filename(conn, "main") : NULL;
    int full = conn && (sqlite3_extended_errcode(conn) == SQLITE_IOERR_WRITE ||
                        (src & 0xff) == SQLITE_FULL);
    if (file && *file)
        return err_set(rc, "%s: %s: %s%s", what, file, m,
                       full ? " (a write failed: the disk may be full or the file over a size "
                              "limit)" : "");
    return err_set(rc, "%s: %s", what, m);
}

static plumb_status exec(sqlite3 *c, const char *sql, const char *what) {
    int src = sqlite3_exec(c, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? PLUMB_OK : store_err(c, src, what);
}

/* ---------------------------------------------------------------- */
/* Connections                                                        */
/* ---------------------------------------------------------------- */

/* SQLite reads a WAL database through its -shm file, which it creates on
** the first read. An index left whole at rest (no -shm) in a directory we
** may not write (chmod 555, chattr +i, a read-only mount) can then only be
** read as "immutable". No writer can change it there without creating a
** -wal first; the one case left out is the directory's owner indexing
** while such a read-only handle stays open. Returns a malloc'd URI
** "file:PATH?immutable=1" for that case, NULL otherwise. */
static char *immutable_uri(const char *path) {
    size_t n = strlen(path);
    char *p = malloc(n + 8);
    if (!p) return NULL;
    int ro = 0;
    snprintf(p, n + 8, "%s-shm", path);
    if (access(p, F_OK) != 0) {
        const char *slash = strrchr(path, '/');
        if (!slash) strcpy(p, ".");
        else snprintf(p, n + 8, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        ro = access(p, W_OK) != 0;
    }
    free(p);
    if (!ro || !(p = malloc(5 + 3 * n + 13))) return NULL;
    char *o = p + sprintf(p, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        o += isalnum(*c) || strchr("/._-~", *c) ? sprintf(o, "%c", *c) : sprintf(o, "%%%02X", *c);
    strcpy(o, "?immutable=1");
    return p;
}

/* A read-only handle on an index we could write connects read-write with
** query_only set. The reason is what it leaves behind: any connection to a
** WAL database creates -wal and -shm beside it, and only a read-write
** connection that closes last removes them again (SQLite checkpoints, an
** empty WAL here, and deletes both when it can lock the database
** exclusively), so `plumb search` on an index at rest leaves it one file,
** as it found it. A read-only connection cannot, and would leave both. When
** another process still has the index open, the files stay for it. An
** index we may not write is opened SQLITE_OPEN_READONLY (immutable: see
** above); then -wal/-shm are left only where they could be made, that is
** when the directory is writable but the file is not (a chmod 444 index),
** because SQLite needs the -shm to read a WAL database. */
static plumb_status connect(plumb_db *db, int readonly, int create, sqlite3 **out) {
    *out = NULL;
    sqlite3 *c = NULL;
    char *uri = readonly ? immutable_uri(db->path) : NULL;
    int rw_reader = readonly && !uri && access(db->path, W_OK) == 0;
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly && !rw_reader ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
    if (create) flags |= SQLITE_OPEN_CREATE;
    int src = sqlite3_open_v2(uri ? uri : db->path, &c, flags | (uri ? SQLITE_OPEN_URI : 0), NULL);
    free(uri);
    if (src != SQLITE_OK) {
        plumb_status rc = store_err(c, src, db->path);
        sqlite3_close(c);
        return rc;
    }
    sqlite3_extended_result_codes(c, 1);
    sqlite3_busy_timeout(c, db->busy_ms);
    plumb_status rc = rw_reader ? exec(c, "PRAGMA query_only=1", "configure reader") : PLUMB_OK;
    if (!rc) rc = lex_register(c);
    if (rc) { sqlite3_close(c); return rc; }
    *out = c;
    return PLUMB_OK;
}

/* Read one settings value as text (NULL if absent) into dst. */
static plumb_status read_settings(plumb_db *db, sqlite3 *c) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c, "SELECT key, value FROM settings", -1, &st, NULL);
    if (src != SQLITE_OK) {
        plumb_status rc = store_err(c, src, db->path);
        /* a database without our tables is somebody else's */
        if (rc == PLUMB_ERROR)
            rc = err_set(PLUMB_FORMAT, "%s: not a plumb index (no settings table)", db->path);
        return rc;
    }
    idx_settings *s = &db->set;
    memset(s, 0, sizeof *s);
    s->format_version = -1;
    /* hybrid defaults: measured in bench/RESULTS.md ("Hybrid") */
    s->fusion = PLUMB_FUSE_MINMAX;
    s->alpha = 0.5;
    s->rrf_k = 60;
    s->k_lex = s->k_dense = 100;
    s->rerank = 30; /* stage 2 on by default: bench/RESULTS.md ("Rerank") */
    s->prf_docs = 3;
    s->prf_weight = 1.0;
    s->qe_docs = 10; /* RM3 in hybrid: bench/RESULTS.md ("Query expansion") */
    s->qe_terms = 30;
    s->qe_weight = 0.7;
    s->qe_max_df = 0.03;
    snprintf(s->rerank_kind, sizeof s->rerank_kind, "features");
    memcpy(s->rerank_w, rerank_default_weights, sizeof s->rerank_w);
    int seen = 0;
    rerank_trees *trees = NULL;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (!k) continue;
        seen++;
        if (!strcmp(k, "format_version")) s->format_version = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "created_at")) s->created_at = sqlite3_column_int64(st, 1);
        else if (!strcmp(k, "index_id")) s->index_id = sqlite3_column_int64(st, 1);
        else if (!strcmp(k, "language")) {
            const char *v = (const char *)sqlite3_column_text(st, 1);
            snprintf(s->language, sizeof s->language, "%s", v ? v : "");
        } else if (!strcmp(k, "stopwords")) s->stopwords = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "chunk_tokens")) s->chunk_tokens = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "chunk_overlap")) s->chunk_overlap = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "bm25_k1")) s->k1 = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "bm25_b")) s->b = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "weight_title")) s->wt = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "weight_body")) s->wb = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "fusion")) s->fusion = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "alpha")) s->alpha = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "rrf_k")) s->rrf_k = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "k_lex")) s->k_lex = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "k_dense")) s->k_dense = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "rerank")) s->rerank = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "prf_docs")) s->prf_docs = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "prf_weight")) s->prf_weight = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "qe_docs")) s->qe_docs = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "qe_terms")) s->qe_terms = sqlite3_column_int(st, 1);
        else if (!strcmp(k, "qe_weight")) s->qe_weight = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "qe_max_df")) s->qe_max_df = sqlite3_column_double(st, 1);
        else if (!strcmp(k, "rerank_kind")) {
            const char *v = (const char *)sqlite3_column_text(st, 1);
            snprintf(s->rerank_kind, sizeof s->rerank_kind, "%s", v ? v : "features");
        } else if (!strcmp(k, "rerank_url") || !strcmp(k, "rerank_model")) {
            const char *v = (const char *)sqlite3_column_text(st, 1);
            int url = k[7] == 'u';
            char *dst = url ? s->rerank_url : s->rerank_model;
            size_t cap = url ? sizeof s->rerank_url : sizeof s->rerank_model;
            if (v && strlen(v) >= cap) { /* plumb_config_set refuses these */
                trees_free(trees);
                sqlite3_finalize(st);
                return err_set(PLUMB_CORRUPT, "%s: settings: %s is longer than %zu bytes",
                               db->path, url ? "rerank_url" : "rerank_model", cap - 1);
            }
            snprintf(dst, cap, "%s", v ? v : "");
        } else if (!strcmp(k, "rerank_timeout_ms")) {
            s->rerank_timeout_ms = sqlite3_column_int(st, 1);
        } else if (!strcmp(k, "rerank_trees")) {
            const char *v = (const char *)sqlite3_column_text(st, 1);
            trees_free(trees);
            int bad = trees_parse(v, &trees);
            if (bad) {
                /* the message first: v lives in st until it is finalized */
                plumb_status e = bad == -2
                    ? err_set(PLUMB_NOMEM, "%s: settings: rerank_trees", db->path)
                    : err_set(PLUMB_CORRUPT, "%s: settings: malformed rerank_trees '%.60s...'",
                              db->path, v ? v : "");
                sqlite3_finalize(st);
                return e;
            }
        } else if (!strcmp(k, "rerank_weights")) {
            const char *v = (const char *)sqlite3_column_text(st, 1);
            if (rerank_weights_parse(v, s->rerank_w)) {
                /* the message first: v lives in st until it is finalized */
                plumb_status e = err_set(PLUMB_CORRUPT,
                                         "%s: settings: malformed rerank_weights '%.200s'",
                                         db->path, v ? v : "");
                trees_free(trees);
                sqlite3_finalize(st);
                return e;
            }
        }
    }
    plumb_status rc = src == SQLITE_DONE ? PLUMB_OK : store_err(c, src, db->path);
    sqlite3_finalize(st);
    if (rc) { trees_free(trees); return rc; }
    s->rerank_trees = trees; /* store_close frees it, also after a failed open */
    if (s->format_version != PLUMB_FORMAT_VERSION)
        return err_set(PLUMB_FORMAT,
                       "%s: index format version %d, this plumb reads version %d%s", db->path,
                       s->format_version, PLUMB_FORMAT_VERSION,
                       s->format_version > PLUMB_FORMAT_VERSION ? " (upgrade plumb)"
                                                                : " (re-create the index)");
    if (seen < 12 || !tok_language_ok(s->language))
        return err_set(PLUMB_CORRUPT, "%s: settings table is incomplete or names unknown "
                       "language '%s'", db->path, s->language);
    return PLUMB_OK;
}

static int app_id(sqlite3 *c, int *out) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c, "PRAGMA application_id", -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) { *out = sqlite3_column_int(st, 0); src = SQLITE_OK; }
    }
    sqlite3_finalize(st);
    return src;
}

/* Count schema objects: 0 means a brand-new (empty) database file. */
static int schema_count(sqlite3 *c, int *out) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) { *out = sqlite3_column_int(st, 0); src = SQLITE_OK; }
    }
    sqlite3_finalize(st);
    return src;
}

static int64_t random_id(void) {
    uint64_t x = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&x, sizeof x, 1, f) != 1) { /* fall back to time and address bits */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = hash64(&ts, sizeof ts, (uint64_t)(uintptr_t)&x);
    }
    if (f) fclose(f);
    return (int64_t)(x >> 1); /* positive: SQLite integers are signed */
}

static plumb_status create_schema(plumb_db *db, sqlite3 *c, const plumb_open_params *p) {
    const char *lang = p->language ? p->language : "english";
    if (!tok_language_ok(lang)) {
        tok_ctx *t = tok_new(lang, 0); /* sets the detailed message */
        tok_free(t);
        return PLUMB_MISUSE;
    }
    if (strlen(lang) >= sizeof db->set.language)
        return err_set(PLUMB_MISUSE, "language name too long: '%s'", lang);
    buf sql = {0};
    const char *s = schema_sql;
    for (;;) { /* substitute @LANGUAGE@ and @STOPWORDS@ */
        const char *at = strchr(s, '@');
        if (!at) { buf_puts(&sql, s); break; }
        buf_append(&sql, s, (size_t)(at - s));
        if (!strncmp(at, "@LANGUAGE@", 10)) { buf_puts(&sql, lang); s = at + 10; }
        else if (!strncmp(at, "@STOPWORDS@", 11)) { buf_puts(&sql, p->stopwords ? "1" : "0"); s = at + 11; }
        else { buf_putc(&sql, '@'); s = at + 1; }
    }
    if (sql.oom) { buf_free(&sql); return err_set(PLUMB_NOMEM, "schema"); }
    plumb_status rc = exec(c, "PRAGMA journal_mode=WAL", "enable WAL");
    if (!rc) rc = exec(c, "BEGIN IMMEDIATE", "create index");
    if (!rc) {
        /* another process may have created it between our check and BEGIN */
        int n = 0;
        int src = schema_count(c, &n);
        if (src) rc = store_err(c, src, db->path);
        else if (n == 0) {
            rc = exec(c, sql.p, "create schema");
            if (!rc) {
                char ins[1024];
                snprintf(ins, sizeof ins,
                         "INSERT INTO settings(key, value) VALUES"
                         "('format_version', %d), ('generation', 0), ('created_at', %lld),"
                         "('language', '%s'), ('stopwords', %d), ('chunk_tokens', %d),"
                         "('chunk_overlap', %d), ('bm25_k1', %.17g), ('bm25_b', %.17g),"
                         "('weight_title', %.17g), ('weight_body', %.17g),"
                         "('tokenizer', 'plumb-1'), ('index_id', %lld)",
                         PLUMB_FORMAT_VERSION, (long long)time(NULL), lang,
                         p->stopwords ? 1 : 0, p->chunk_tokens, p->chunk_overlap, p->bm25_k1,
                         p->bm25_b, p->weight_title, p->weight_body, (long long)random_id());
                rc = exec(c, ins, "write settings");
            }
        }
        if (!rc) rc = exec(c, "COMMIT", "create index");
        else sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
    }
    buf_free(&sql);
    return rc;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

plumb_status store_open(plumb_db *db, const char *path, const plumb_open_params *p) {
    plumb_status rc = PLUMB_OK;
    db->path = strdup(path);
    if (!db->path) return err_set(PLUMB_NOMEM, "open");
    db->readonly = p->readonly;
    db->busy_ms = p->busy_timeout_ms;
    pthread_mutex_init(&db->wlock, NULL);
    pthread_mutex_init(&db->plock, NULL);

    int exists = file_exists(path);
    if (!exists && (!p->create || p->readonly))
        return err_set(PLUMB_NOTFOUND, "no index at '%s'", path);
    {
        struct stat sb;
        if (exists && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return err_set(PLUMB_IO, "'%s' is a directory, not an index file", path);
    }
    sqlite3 *c = NULL;
    rc = connect(db, p->readonly, !p->readonly && p->create, &c);
    if (rc) return rc;

    int n = 0, src = schema_count(c, &n);
    if (src) { rc = store_err(c, src, path); goto done; }
    if (n == 0) {
        if (p->readonly || !p->create) {
            rc = err_set(PLUMB_FORMAT, "%s: empty database, not a plumb index", path);
            goto done;
        }
        rc = create_schema(db, c, p);
        if (rc) goto done;
    }
    int id = 0;
    src = app_id(c, &id);
    if (src) { rc = store_err(c, src, path); goto done; }
    if (id != APP_ID) {
        rc = err_set(PLUMB_FORMAT, "%s: an SQLite database, but not a plumb index "
                     "(application_id %d)", path, id);
        goto done;
    }
    rc = read_settings(db, c);
    if (rc) goto done;
    if (!(db->bm25 = bm25_new(path, db->set.index_id)) ||
        !(db->vec = vec_new(path, db->set.index_id)) || !(db->emb = embed_cache_new())) {
        rc = err_set(PLUMB_NOMEM, "open");
        goto done;
    }
    if (!p->readonly) {
        /* make sure WAL is on even for an index created by an older run */
        rc = exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;"
                     "PRAGMA foreign_keys=OFF", "configure writer");
        if (rc) goto done;
        rc = exec(c, "CREATE TEMP TABLE seen_docs(doc_id TEXT PRIMARY KEY) WITHOUT ROWID;"
                     "CREATE TEMP TABLE seen_files(path TEXT PRIMARY KEY) WITHOUT ROWID",
                  "create work tables");
        if (rc) goto done;
        db->w = c;
        c = NULL;
        db->wtok = tok_new(db->set.language, db->set.stopwords);
        if (!db->wtok) { rc = PLUMB_NOMEM; goto done; }
    }
done:
    if (c) sqlite3_close(c);
    return rc;
}

static void reader_free(reader *r) {
    if (!r) return;
    sqlite3_finalize(r->st_gen);
    sqlite3_finalize(r->st_epoch);
    sqlite3_finalize(r->st_bm25);
    sqlite3_finalize(r->st_fts5);
    sqlite3_finalize(r->st_hit);
    sqlite3_close(r->conn);
    tok_free(r->tok);
    bm25_scratch_free(&r->scratch);
    free(r);
}

void store_close(plumb_db *db) {
    trees_free(db->set.rerank_trees);
    db->set.rerank_trees = NULL;
    if (db->w) {
        if (db->in_txn) sqlite3_exec(db->w, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < WS_COUNT; i++) sqlite3_finalize(db->ws[i]);
        /* leave the WAL checkpointed so the index is one file at rest */
        sqlite3_close(db->w);
    }
    while (db->pool) {
        reader *r = db->pool;
        db->pool = r->next;
        reader_free(r);
    }
    tok_free(db->wtok);
    bm25_free(db->bm25);
    vec_free(db->vec);
    embed_cache_free(db->emb);
    pthread_mutex_destroy(&db->wlock);
    pthread_mutex_destroy(&db->plock);
    free(db->path);
}

static plumb_status prep(sqlite3 *c, const char *sql, sqlite3_stmt **st) {
    int src = sqlite3_prepare_v3(c, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return src == SQLITE_OK ? PLUMB_OK : store_err(c, src, "prepare");
}

plumb_status store_reader_get(plumb_db *db, reader **out) {
    *out = NULL;
    pthread_mutex_lock(&db->plock);
    reader *r = db->pool;
    if (r) db->pool = r->next;
    pthread_mutex_unlock(&db->plock);
    if (r) { *out = r; return PLUMB_OK; }

    r = calloc(1, sizeof *r);
    if (!r) return err_set(PLUMB_NOMEM, "reader");
    plumb_status rc = connect(db, db->readonly, 0, &r->conn);
    if (!rc) rc = exec(r->conn, "PRAGMA query_only=1", "configure reader");
    if (!rc && !(r->tok = tok_new(db->set.language, db->set.stopwords))) rc = PLUMB_NOMEM;
    if (!rc) rc = prep(r->conn, "SELECT value FROM settings WHERE key='generation'", &r->st_gen);
    if (!rc) rc = prep(r->conn, "SELECT value FROM settings WHERE key='vec_epoch'", &r->st_epoch);
    if (!rc) rc = prep(r->conn,
                       "SELECT rowid, plumb_bm25(chunks_fts, ?1) AS s FROM chunks_fts "
                       "WHERE chunks_fts MATCH ?2 ORDER BY s DESC, rowid ASC LIMIT ?3",
                       &r->st_bm25);
    if (!rc) rc = prep(r->conn,
                       "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts "
                       "WHERE chunks_fts MATCH ?2 ORDER BY rank, rowid LIMIT ?3",
                       &r->st_fts5);
    if (!rc) rc = prep(r->conn,
                       "SELECT c.seq, c.text, d.doc_id, d.title, d.source, d.metadata "
                       "FROM chunks c JOIN documents d ON d.id = c.doc WHERE c.id = ?1",
                       &r->st_hit);
    if (rc) { reader_free(r); return rc; }
    *out = r;
    return PLUMB_OK;
}

void store_reader_put(plumb_db *db, reader *r) {
    if (!r) return;
    pthread_mutex_lock(&db->plock);
    r->next = db->pool;
    db->pool = r;
    pthread_mutex_unlock(&db->plock);
}

/* ---------------------------------------------------------------- */
/* Writes                                                             */
/* ---------------------------------------------------------------- */

static const char *const ws_sql[WS_COUNT] = {
    [WS_DOC_GET] = "SELECT id, hash, title FROM documents WHERE doc_id = ?1",
    [WS_DOC_INS] = "INSERT INTO documents(doc_id, title, metadata, source, file_id, hash, "
                   "n_chunks, text_bytes, added_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [WS_DOC_DEL] = "DELETE FROM documents WHERE id = ?1",
    [WS_CHUNKS_OF] = "SELECT id, text FROM chunks WHERE doc = ?1",
    [WS_CHUNK_INS] = "INSERT INTO chunks(doc, seq, start, end, text) VALUES(?1,?2,?3,?4,?5)",
    [WS_CHUNKS_DEL] = "DELETE FROM chunks WHERE doc = ?1",
    [WS_FTS_INS] = "INSERT INTO chunks_fts(rowid, title, body) VALUES(?1,?2,?3)",
    [WS_FTS_DEL] = "INSERT INTO chunks_fts(chunks_fts, rowid, title, body) "
                   "VALUES('delete', ?1, ?2, ?3)",
    [WS_GEN_BUMP] = "UPDATE settings SET value = value + 1 WHERE key = 'generation'",
    [WS_FILE_GET] = "SELECT id, size, mtime, hash FROM files WHERE path = ?1",
    [WS_FILE_UPSERT] = "INSERT INTO files(path, size, mtime, hash, n_docs, indexed_at) "
                       "VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(path) DO UPDATE SET "
                       "size=excluded.size, mtime=excluded.mtime, hash=excluded.hash, "
                       "n_docs=excluded.n_docs, indexed_at=excluded.indexed_at RETURNING id",
    [WS_FILE_DEL] = "DELETE FROM files WHERE id = ?1",
    [WS_LOG] = "INSERT INTO lex_log(chunk, op) VALUES(?1, ?2)",
    [WS_DOCS_OF_FILE] = "SELECT id FROM documents WHERE file_id = ?1",
    [WS_SEEN_ADD] = "INSERT OR IGNORE INTO temp.seen_docs VALUES(?1)",
    [WS_UNSEEN_DOCS] = "SELECT id FROM documents WHERE file_id = ?1 AND doc_id NOT IN "
                       "(SELECT doc_id FROM temp.seen_docs)",
    [WS_WALK_ADD] = "INSERT OR IGNORE INTO temp.seen_files VALUES(?1)",
    [WS_FILES_UNSEEN] = "SELECT id, path FROM files WHERE (path = ?1 OR (path >= ?2 AND "
                        "path < ?3)) AND path NOT IN (SELECT path FROM temp.seen_files)",
};

static plumb_status wstmt(plumb_db *db, int which, sqlite3_stmt **out) {
    if (!db->ws[which]) {
        plumb_status rc = prep(db->w, ws_sql[which], &db->ws[which]);
        if (rc) { *out = NULL; return rc; }
    }
    *out = db->ws[which];
    return PLUMB_OK;
}

/* Run a statement that returns no rows (or ignore them) and reset it. */
static plumb_status run(plumb_db *db, sqlite3_stmt *st, const char *what) {
    int src = sqlite3_step(st);
    plumb_status rc = (src == SQLITE_DONE || src == SQLITE_ROW) ? PLUMB_OK
                                                                 : store_err(db->w, src, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static plumb_status log_chunk(plumb_db *db, int64_t chunk, int op) {
    sqlite3_stmt *st;
    plumb_status rc = wstmt(db, WS_LOG, &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, chunk);
    sqlite3_bind_int(st, 2, op);
    rc = run(db, st, "log chunk change");
    if (!rc) db->log_rows++;
    return rc;
}

/* Keep the log bounded: drop entries older than LOG_KEEP once it holds
** twice that. A reader whose position falls off rebuilds (bm25.c). */
#define LOG_KEEP 1000000
static plumb_status log_truncate(plumb_db *db) {
    if (db->log_rows < LOG_KEEP) return PLUMB_OK;
    db->log_rows = 0;
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM lex_log WHERE seq <= (SELECT max(seq) FROM lex_log) "
             "- %d", LOG_KEEP);
    return exec(db->w, sql, "truncate lexical log");
}

plumb_status store_begin(plumb_db *db) {
    if (db->in_txn) return PLUMB_OK;
    qlog_before_write(db); /* the query log's queue, in a transaction of its own */
    plumb_status rc = exec(db->w, "BEGIN IMMEDIATE", "begin write transaction");
    if (!rc) { db->in_txn = 1; db->dirty = 0; }
    return rc;
}

plumb_status store_commit(plumb_db *db) {
    if (!db->in_txn) return PLUMB_OK;
    plumb_status rc = PLUMB_OK;
    if (db->dirty) {
        sqlite3_stmt *st;
        rc = wstmt(db, WS_GEN_BUMP, &st);
        if (!rc) rc = run(db, st, "bump generation");
        if (!rc) rc = log_truncate(db);
    }
    if (!rc) rc = exec(db->w, "COMMIT", "commit");
    if (rc) {
        store_rollback(db);
        return rc;
    }
    db->in_txn = 0;
    db->dirty = 0;
    return PLUMB_OK;
}

plumb_status store_put_settings(plumb_db *db, const char *const *keys, const char *const *vals,
                                int n) {
    if (db->readonly || !db->w)
        return err_set(PLUMB_MISUSE, "the index is open read-only: its settings cannot change");
    pthread_mutex_lock(&db->wlock);
    plumb_status rc = db->in_txn ? err_set(PLUMB_MISUSE, "settings cannot change inside a batch")
                                 : store_begin(db);
    sqlite3_stmt *st = NULL;
    if (!rc) {
        int src = sqlite3_prepare_v2(db->w, "INSERT OR REPLACE INTO settings(key, value) "
                                     "VALUES (?1, ?2)", -1, &st, NULL);
        if (src) rc = store_err(db->w, src, "write settings");
    }
    for (int i = 0; !rc && i < n; i++) {
        if (!vals[i]) { /* back to the built-in default */
            sqlite3_stmt *del = NULL;
            int src = sqlite3_prepare_v2(db->w, "DELETE FROM settings WHERE key = ?1", -1, &del,
                                         NULL);
            if (!src) {
                sqlite3_bind_text(del, 1, keys[i], -1, SQLITE_STATIC);
                src = sqlite3_step(del);
                if (src == SQLITE_DONE) src = SQLITE_OK;
            }
            if (src) rc = store_err(db->w, src, "write settings");
            sqlite3_finalize(del);
            continue;
        }
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        /* numbers are stored as numbers, as at creation */
        char *end;
        double x = strtod(vals[i], &end);
        if (*vals[i] && !*end && end != vals[i]) {
            if (x == (double)(int64_t)x && !strpbrk(vals[i], ".eE"))
                sqlite3_bind_int64(st, 2, (int64_t)x);
            else
                sqlite3_bind_double(st, 2, x);
        } else {
            sqlite3_bind_text(st, 2, vals[i], -1, SQLITE_STATIC);
        }
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE) rc = store_err(db->w, src, "write settings");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (!rc) rc = store_commit(db);
    else store_rollback(db);
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

void store_rollback(plumb_db *db) {
    if (!db->in_txn) return;
    sqlite3_exec(db->w, "ROLLBACK", NULL, NULL, NULL);
    db->in_txn = 0;
    db->dirty = 0;
}

static void doc_hash(const plumb_doc *d, char out[17]) {
    uint64_t h = 0x706c756d62ULL; /* "plumb" */
    const char *parts[3] = {d->title, d->text, d->metadata};
    for (int i = 0; i < 3; i++) {
        const char *s = parts[i] ? parts[i] : "";
        /* the index keeps the part boundaries: ("ab","") != ("a","b") */
        h = hash64(s, strlen(s), h + (uint64_t)i + 1);
    }
    hash64_hex(h, out);
}

/* Remove a document's chunks from FTS5 and the chunks table and the
** document row itself. `title` is the title FTS5 indexed. */
static plumb_status delete_doc_rows(plumb_db *db, int64_t rowid, const char *title) {
    sqlite3_stmt *of, *fdel, *cdel, *ddel;
    plumb_status rc = wstmt(db, WS_CHUNKS_OF, &of);
    if (!rc) rc = wstmt(db, WS_FTS_DEL, &fdel);
    if (!rc) rc = wstmt(db, WS_CHUNKS_DEL, &cdel);
    if (!rc) rc = wstmt(db, WS_DOC_DEL, &ddel);
    if (rc) return rc;
    sqlite3_bind_int64(of, 1, rowid);
    int src;
    while ((src = sqlite3_step(of)) == SQLITE_ROW) {
        /* external-content FTS5 needs the exact indexed values to delete */
        int64_t cid = sqlite3_column_int64(of, 0);
        sqlite3_bind_int64(fdel, 1, cid);
        sqlite3_bind_text(fdel, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_value(fdel, 3, sqlite3_column_value(of, 1));
        rc = run(db, fdel, "remove chunk from lexical index");
        if (!rc) rc = log_chunk(db, cid, -1);
        if (rc) break;
    }
    if (!rc && src != SQLITE_DONE) rc = store_err(db->w, src, "list chunks");
    sqlite3_reset(of);
    if (rc) return rc;
    sqlite3_bind_int64(cdel, 1, rowid);
    rc = run(db, cdel, "delete chunks");
    if (rc) return rc;
    sqlite3_bind_int64(ddel, 1, rowid);
    rc = run(db, ddel, "delete document");
    if (!rc) db->dirty = 1;
    return rc;
}

plumb_status store_add_doc(plumb_db *db, const plumb_doc *doc, int64_t file_id,
                           plumb_add_result *result, int64_t *doc_rowid, size_t *nchunks) {
    plumb_status rc = PLUMB_OK;
    chunk_span *spans = NULL;
    size_t nspans = 0;
    char h[17];
    const char *title = doc->title ? doc->title : "";
    const char *text = doc->text ? doc->text : "";
    size_t tlen = strlen(text);
    doc_hash(doc, h);
    if (result) *result = PLUMB_ADDED;
    if (nchunks) *nchunks = 0;

    sqlite3_stmt *get, *dins, *cins, *fins;
    if ((rc = wstmt(db, WS_DOC_GET, &get)) || (rc = wstmt(db, WS_DOC_INS, &dins)) ||
        (rc = wstmt(db, WS_CHUNK_INS, &cins)) || (rc = wstmt(db, WS_FTS_INS, &fins)))
        return rc;

    sqlite3_bind_text(get, 1, doc->id, -1, SQLITE_STATIC);
    int src = sqlite3_step(get);
    if (src == SQLITE_ROW) {
        int64_t old = sqlite3_column_int64(get, 0);
        const char *oh = (const char *)sqlite3_column_text(get, 1);
        if (oh && !strcmp(oh, h)) {
            sqlite3_reset(get);
            if (result) *result = PLUMB_UNCHANGED;
            if (doc_rowid) *doc_rowid = old;
            /* same content; the file it is attributed to may have changed */
            if (file_id) {
                char sql[128];
                snprintf(sql, sizeof sql, "UPDATE documents SET file_id=%lld WHERE id=%lld",
                         (long long)file_id, (long long)old);
                return exec(db->w, sql, "update document file");
            }
            return PLUMB_OK;
        }
        char *otitle = strdup((const char *)sqlite3_column_text(get, 2)
                                  ? (const char *)sqlite3_column_text(get, 2) : "");
        sqlite3_reset(get);
        if (!otitle) return err_set(PLUMB_NOMEM, "replace document");
        rc = delete_doc_rows(db, old, otitle);
        free(otitle);
        if (rc) return rc;
        if (result) *result = PLUMB_REPLACED;
    } else {
        sqlite3_reset(get);
        if (src != SQLITE_DONE) return store_err(db->w, src, "look up document");
    }

    if (chunk_split(text, tlen, (size_t)db->set.chunk_tokens, (size_t)db->set.chunk_overlap,
                    &spans, &nspans))
        return err_set(PLUMB_NOMEM, "chunking document '%s'", doc->id);
    /* a document with a title but no text still gets one (empty) chunk, so
    ** its title is searchable */
    int title_only = nspans == 0;

    sqlite3_bind_text(dins, 1, doc->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(dins, 2, title, -1, SQLITE_STATIC);
    if (doc->metadata) sqlite3_bind_text(dins, 3, doc->metadata, -1, SQLITE_STATIC);
    if (doc->source) sqlite3_bind_text(dins, 4, doc->source, -1, SQLITE_STATIC);
    if (file_id) sqlite3_bind_int64(dins, 5, file_id);
    sqlite3_bind_text(dins, 6, h, 16, SQLITE_STATIC);
    sqlite3_bind_int64(dins, 7, title_only ? 1 : (int64_t)nspans);
    sqlite3_bind_int64(dins, 8, (int64_t)tlen);
    sqlite3_bind_int64(dins, 9, (int64_t)time(NULL));
    rc = run(db, dins, "insert document");
    if (rc) goto done;
    int64_t drow = sqlite3_last_insert_rowid(db->w);
    if (doc_rowid) *doc_rowid = drow;

    for (size_t i = 0; i < (title_only ? 1 : nspans); i++) {
        size_t s = title_only ? 0 : spans[i].start, e = title_only ? 0 : spans[i].end;
        sqlite3_bind_int64(cins, 1, drow);
        sqlite3_bind_int64(cins, 2, (int64_t)i);
        sqlite3_bind_int64(cins, 3, (int64_t)s);
        sqlite3_bind_int64(cins, 4, (int64_t)e);
        sqlite3_bind_text(cins, 5, text + s, (int)(e - s), SQLITE_STATIC);
        rc = run(db, cins, "insert chunk");
        if (rc) goto done;
        int64_t crow = sqlite3_last_insert_rowid(db->w);
        sqlite3_bind_int64(fins, 1, crow);
        sqlite3_bind_text(fins, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_text(fins, 3, text + s, (int)(e - s), SQLITE_STATIC);
        rc = run(db, fins, "index chunk");
        if (!rc) rc = log_chunk(db, crow, +1);
        if (rc) goto done;
    }
    db->dirty = 1;
    if (nchunks) *nchunks = title_only ? 1 : nspans;
done:
    free(spans);
    return rc;
}

plumb_status store_delete_rowid(plumb_db *db, int64_t rowid) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db->w, "SELECT title FROM documents WHERE id = ?1", -1, &st,
                                 NULL);
    if (src) return store_err(db->w, src, "delete document");
    sqlite3_bind_int64(st, 1, rowid);
    src = sqlite3_step(st);
    plumb_status rc;
    if (src == SQLITE_ROW) {
        char *t = strdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
                                                    : "");
        sqlite3_finalize(st);
        if (!t) return err_set(PLUMB_NOMEM, "delete document");
        rc = delete_doc_rows(db, rowid, t);
        free(t);
        return rc;
    }
    rc = src == SQLITE_DONE ? err_set(PLUMB_NOTFOUND, "no document with row id %lld",
                                      (long long)rowid)
                            : store_err(db->w, src, "delete document");
    sqlite3_finalize(st);
    return rc;
}

plumb_status store_delete_doc(plumb_db *db, const char *doc_id) {
    sqlite3_stmt *get;
    plumb_status rc = wstmt(db, WS_DOC_GET, &get);
    if (rc) return rc;
    sqlite3_bind_text(get, 1, doc_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(get);
    if (src != SQLITE_ROW) {
        sqlite3_reset(get);
        if (src == SQLITE_DONE) return err_set(PLUMB_NOTFOUND, "no document with id '%s'", doc_id);
        return store_err(db->w, src, "look up document");
    }
    int64_t row = sqlite3_column_int64(get, 0);
    char *t = strdup(sqlite3_column_text(get, 2) ? (const char *)sqlite3_column_text(get, 2) : "");
    sqlite3_reset(get);
    if (!t) return err_set(PLUMB_NOMEM, "delete document");
    rc = delete_doc_rows(db, row, t);
    free(t);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Files                                                              */
/* ---------------------------------------------------------------- */

plumb_status store_file_get(plumb_db *db, const char *path, store_file *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    plumb_status rc = wstmt(db, WS_FILE_GET, &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->size = sqlite3_column_int64(st, 1);
        out->mtime = sqlite3_column_int64(st, 2);
        const char *h = (const char *)sqlite3_column_text(st, 3);
        snprintf(out->hash, sizeof out->hash, "%s", h ? h : "");
    } else if (src != SQLITE_DONE) {
        rc = store_err(db->w, src, "look up file");
    }
    sqlite3_reset(st);
    return rc;
}

plumb_status store_file_put(plumb_db *db, const char *path, int64_t size, int64_t mtime,
                            const char *hash, int64_t n_docs, int64_t *file_id) {
    sqlite3_stmt *st;
    plumb_status rc = wstmt(db, WS_FILE_UPSERT, &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_int64(st, 3, mtime);
    sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, n_docs);
    sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if (file_id) *file_id = sqlite3_column_int64(st, 0);
        src = sqlite3_step(st);
    }
    if (src != SQLITE_DONE) rc = store_err(db->w, src, "record file");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!rc) db->dirty = 1;
    return rc;
}

plumb_status store_file_delete(plumb_db *db, int64_t file_id, int64_t *ndocs) {
    sqlite3_stmt *st, *fdel;
    plumb_status rc = wstmt(db, WS_DOCS_OF_FILE, &st);
    if (!rc) rc = wstmt(db, WS_FILE_DEL, &fdel);
    if (rc) return rc;
    /* collect first: deleting while stepping the same table is unsafe */
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    sqlite3_bind_int64(st, 1, file_id);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *t = realloc(ids, nc * sizeof *ids);
            if (!t) { rc = err_set(PLUMB_NOMEM, "prune file"); break; }
            ids = t;
            cap = nc;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (!rc && src != SQLITE_DONE) rc = store_err(db->w, src, "list documents of file");
    sqlite3_reset(st);
    for (size_t i = 0; !rc && i < n; i++) rc = store_delete_rowid(db, ids[i]);
    free(ids);
    if (rc) return rc;
    sqlite3_bind_int64(fdel, 1, file_id);
    rc = run(db, fdel, "delete file");
    if (!rc) db->dirty = 1;
    if (ndocs) *ndocs = (int64_t)n;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Statistics                                                         */
/* ---------------------------------------------------------------- */

int store_write_all(FILE *f, const void *p, size_t n) {
    return n && fwrite(p, 1, n, f) != n ? -1 : 0;
}

void store_fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + 1), path);
    else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
}

int64_t store_scalar(sqlite3 *c, const char *sql, int *src) {
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (*src) return 0;
    *src = sqlite3_prepare_v2(c, sql, -1, &st, NULL);
    if (*src == SQLITE_OK) {
        *src = sqlite3_step(st);
        if (*src == SQLITE_ROW) { v = sqlite3_column_int64(st, 0); *src = SQLITE_OK; }
        else if (*src == SQLITE_DONE) *src = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return v;
}

/* FTS5 keeps the per-column token totals in its "averages" record
** (rowid 1 of the %_data table): varint row count, then one varint per
** column. Format documented in SQLite's fts5Int.h / fts5_index.c. */
static void fts_totals(sqlite3 *c, int64_t *title, int64_t *body) {
    sqlite3_stmt *st = NULL;
    *title = *body = 0;
    if (sqlite3_prepare_v2(c, "SELECT block FROM chunks_fts_data WHERE id = 1", -1, &st, NULL))
        return;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *p = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0), i = 0;
        int64_t v[3] = {0, 0, 0};
        for (int k = 0; k < 3 && i < n; k++) {
            uint64_t x = 0;
            for (int j = 0; j < 9 && i < n; j++) {
                unsigned char b = p[i++];
                if (j == 8) { x = (x << 8) | b; break; }
                x = (x << 7) | (b & 0x7f);
                if (!(b & 0x80)) break;
            }
            v[k] = (int64_t)x;
        }
        *title = v[1];
        *body = v[2];
    }
    sqlite3_finalize(st);
}

plumb_status store_stats(plumb_db *db, plumb_stats *out) {
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    out->format_version = db->set.format_version;
    out->generation = store_scalar(r->conn, "SELECT value FROM settings WHERE key='generation'", &src);
    out->documents = store_scalar(r->conn, "SELECT count(*) FROM documents", &src);
    out->chunks = store_scalar(r->conn, "SELECT count(*) FROM chunks", &src);
    out->files = store_scalar(r->conn, "SELECT count(*) FROM files", &src);
    if (!src) fts_totals(r->conn, &out->tokens_title, &out->tokens_body);
    if (src) rc = store_err(r->conn, src, "statistics");
    else rc = embed_info(db, r->conn, out);
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    store_reader_put(db, r);
    if (rc) return rc;
    snprintf(out->language, sizeof out->language, "%s", db->set.language);
    out->stopwords = db->set.stopwords;
    out->chunk_tokens = db->set.chunk_tokens;
    out->chunk_overlap = db->set.chunk_overlap;
    out->bm25_k1 = db->set.k1;
    out->bm25_b = db->set.b;
    out->weight_title = db->set.wt;
    out->weight_body = db->set.wb;
    snprintf(out->rerank_kind, sizeof out->rerank_kind, "%s", db->set.rerank_kind);
    out->rerank_trees = db->set.rerank_trees ? db->set.rerank_trees->ntrees : 0;
    out->rerank = db->set.rerank;
    snprintf(out->rerank_url, sizeof out->rerank_url, "%s", db->set.rerank_url);
    snprintf(out->rerank_model, sizeof out->rerank_model, "%s", db->set.rerank_model);
    out->rerank_timeout_ms = db->set.rerank_timeout_ms > 0 ? db->set.rerank_timeout_ms
                                                           : RERANK_HTTP_TIMEOUT_MS;
    bm25_info_t bi;
    bm25_info(db->bm25, &bi);
    if (bi.built) {
        out->lex_terms = bi.terms;
        out->lex_postings = bi.postings;
        out->lex_memory_bytes = bi.bytes;
    }
    vec_info_t vi;
    vec_info(db->vec, &vi);
    if (vi.built) {
        out->vec_memory_bytes = vi.bytes;
        out->ann_count = vi.ann_n;
        out->ann_bytes = vi.ann_bytes;
        out->ann_deleted = vi.ann_deleted;
        snprintf(out->ann_type, sizeof out->ann_type, "%s", vi.ann_type);
    }
    out->db_bytes = 0;
    const char *sfx[] = {"", "-wal", ".bm25", ".vec", ".ann"};
    for (int i = 0; i < 5; i++) {
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof p, "%s%s", db->path, sfx[i]);
        if (stat(p, &sb) == 0) {
            out->db_bytes += (int64_t)sb.st_size;
            if (i == 3) out->vec_bytes += (int64_t)sb.st_size; /* the .vec side file */
        }
    }
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* Ingest bookkeeping (TEMP tables: private to the writer connection) */
/* ---------------------------------------------------------------- */

plumb_status store_seen_reset(plumb_db *db) {
    return exec(db->w, "DELETE FROM temp.seen_docs", "reset seen documents");
}

plumb_status store_seen_add(plumb_db *db, const char *doc_id, int *dup) {
    sqlite3_stmt *st;
    plumb_status rc = wstmt(db, WS_SEEN_ADD, &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE) rc = store_err(db->w, src, "record seen document");
    else *dup = sqlite3_changes(db->w) == 0;
    sqlite3_reset(st);
    return rc;
}

static plumb_status collect_ids(plumb_db *db, sqlite3_stmt *st, int64_t **ids, char ***paths,
                                size_t *n) {
    size_t cap = 0;
    plumb_status rc = PLUMB_OK;
    int src;
    *ids = NULL;
    if (paths) *paths = NULL;
    *n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *t = realloc(*ids, nc * sizeof **ids);
            if (t) *ids = t;
            char **tp = paths ? realloc(*paths, nc * sizeof **paths) : NULL;
            if (tp) *paths = tp;
            if (!t || (paths && !tp)) { rc = err_set(PLUMB_NOMEM, "collect ids"); break; }
            cap = nc;
        }
        (*ids)[*n] = sqlite3_column_int64(st, 0);
        if (paths) {
            const char *p = (const char *)sqlite3_column_text(st, 1);
            if (!((*paths)[*n] = strdup(p ? p : ""))) { rc = err_set(PLUMB_NOMEM, "collect"); break; }
        }
        (*n)++;
    }
    if (!rc && src != SQLITE_DONE) rc = store_err(db->w, src, "query");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

plumb_status store_prune_unseen(plumb_db *db, int64_t file_id, int64_t *n) {
    sqlite3_stmt *st;
    *n = 0;
    plumb_status rc = wstmt(db, WS_UNSEEN_DOCS, &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, file_id);
    int64_t *ids;
    size_t k;
    rc = collect_ids(db, st, &ids, NULL, &k);
    for (size_t i = 0; !rc && i < k; i++) rc = store_delete_rowid(db, ids[i]);
    free(ids);
    if (!rc) *n = (int64_t)k;
    return rc;
}

plumb_status store_walk_reset(plumb_db *db) {
    return exec(db->w, "DELETE FROM temp.seen_files", "reset walk");
}

plumb_status store_walk_add(plumb_db *db, const char *path, int *dup) {
    sqlite3_stmt *st;
    plumb_status rc = wstmt(db, WS_WALK_ADD, &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    rc = run(db, st, "record walked file");
    *dup = !rc && sqlite3_changes(db->w) == 0;
    return rc;
}

plumb_status store_files_unseen(plumb_db *db, const char *root, int64_t **ids, char ***paths,
                                size_t *n) {
    sqlite3_stmt *st;
    plumb_status rc = wstmt(db, WS_FILES_UNSEEN, &st);
    if (rc) return rc;
    /* under root: the path itself, or root + "/" + anything; the range
    ** [root"/", root"0") is exactly that prefix ('0' follows '/') */
    size_t l = strlen(root);
    char *lo = malloc(l + 2), *hi = malloc(l + 2);
    if (!lo || !hi) { free(lo); free(hi); return err_set(PLUMB_NOMEM, "prune"); }
    int slash = l > 0 && root[l - 1] == '/';
    memcpy(lo, root, l);
    memcpy(hi, root, l);
    if (slash) { lo[l] = 0; hi[l - 1] = '0'; hi[l] = 0; }
    else { lo[l] = '/'; lo[l + 1] = 0; hi[l] = '0'; hi[l + 1] = 0; }
    sqlite3_bind_text(st, 1, root, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hi, -1, SQLITE_STATIC);
    rc = collect_ids(db, st, ids, paths, n);
    free(lo);
    free(hi);
    return rc;
}
