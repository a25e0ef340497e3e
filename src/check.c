/*
** check.c -- plumb_check(): is every part of the index whole and in step?
**
** Parts, each reported by name with what is wrong:
**   sqlite      PRAGMA integrity_check of the database file
**   fts5        FTS5's own integrity-check of the lexical index against its
**               content (needs a writable handle: it is an INSERT command)
**   documents   every document has exactly n_chunks chunks, seq 0..n-1;
**   chunks      no chunk without its document
**   settings    format version and generation present and sane
**   bm25 index  the handle's in-memory index (loaded from the side file and
**               replayed from the log) equals a rebuild from the chunks table
**   bm25 side file   header, index id, generation and checksum
**   vectors     every stored vector has its chunk and the right size; the
**               handle's vector store equals the table; the .vec side
**               file's header and checksum
** Workload: a full scan of every table; seconds for a million chunks.
*/
#include "plumb_impl.h"

#include <stdio.h>
#include <string.h>

typedef struct ck {
    void (*report)(void *, const char *, const char *);
    void *arg;
    int64_t problems;
} ck;

static void problem(ck *c, const char *part, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(ck *c, const char *part, const char *fmt, ...) {
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->report) c->report(c->arg, part, m);
}

static void report_cb(void *arg, const char *part, const char *msg) {
    ck *c = arg;
    if (c->report) c->report(c->arg, part, msg);
}

/* Run a query whose rows each describe one problem of `part`. */
static plumb_status rows(ck *c, sqlite3 *conn, const char *part, const char *sql, int ok_is_ok) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(conn, sql, -1, &st, NULL);
    if (src) {
        plumb_status rc = store_err(conn, src, part);
        if (rc == PLUMB_CORRUPT || rc == PLUMB_FORMAT) {
            problem(c, part, "%s", plumb_errmsg());
            return PLUMB_OK;
        }
        return rc;
    }
    int n = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (ok_is_ok && t && !strcmp(t, "ok")) continue;
        if (++n <= 20) problem(c, part, "%s", t ? t : "(null)");
        else c->problems++;
    }
    if (src != SQLITE_DONE) problem(c, part, "%s", sqlite3_errmsg(conn));
    sqlite3_finalize(st);
    return PLUMB_OK;
}

plumb_status plumb_check(plumb_db *db, void (*report)(void *arg, const char *part, const char *problem),
                         void *arg, int64_t *problems) {
    err_clear();
    if (problems) *problems = 0;
    if (!db) return err_set(PLUMB_MISUSE, "plumb_check: db is NULL");
    ck c = {report, arg, 0};
    reader *r = NULL;
    plumb_status rc = store_reader_get(db, &r);
    if (rc == PLUMB_CORRUPT || rc == PLUMB_FORMAT) {
        /* so damaged that a connection cannot even prepare its queries */
        problem(&c, strstr(plumb_errmsg(), "chunks_fts") ? "fts5" : "sqlite", "%s", plumb_errmsg());
        if (problems) *problems = c.problems;
        return err_set(PLUMB_CORRUPT, "1 problem found (the index cannot be read)");
    }
    if (rc) return rc;
    sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    rc = rows(&c, r->conn, "sqlite", "PRAGMA integrity_check", 1);
    if (!rc)
        rc = rows(&c, r->conn, "settings",
                  "SELECT 'missing setting ' || k FROM (SELECT 'format_version' AS k UNION ALL "
                  "SELECT 'generation' UNION ALL SELECT 'language' UNION ALL SELECT 'index_id') "
                  "WHERE k NOT IN (SELECT key FROM settings) UNION ALL "
                  "SELECT 'generation is ' || value FROM settings WHERE key = 'generation' AND "
                  "(typeof(value) != 'integer' OR value < 0)", 0);
    if (!rc)
        rc = rows(&c, r->conn, "documents",
                  "SELECT 'document ''' || d.doc_id || ''' records ' || d.n_chunks || "
                  "' chunks but has ' || count(c.id) || coalesce(' (last seq ' || max(c.seq) || ')', '') "
                  "FROM documents d LEFT JOIN chunks c ON c.doc = d.id GROUP BY d.id "
                  "HAVING d.n_chunks != count(c.id) OR coalesce(max(c.seq), -1) != count(c.id) - 1", 0);
    if (!rc)
        rc = rows(&c, r->conn, "chunks",
                  "SELECT count(*) || ' chunks belong to no document' FROM chunks "
                  "WHERE doc NOT IN (SELECT id FROM documents) HAVING count(*) > 0", 0);
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    store_reader_put(db, r);
    if (rc) return rc;

    /* SQLite opens a file it may not write (chmod, chattr +i, a read-only
    ** mount) read-only without saying so: FTS5's check needs a write. */
    if (db->w && !sqlite3_db_readonly(db->w, "main")) {
        pthread_mutex_lock(&db->wlock);
        int src = sqlite3_exec(db->w, "INSERT INTO chunks_fts(chunks_fts, rank) "
                                      "VALUES('integrity-check', 1)", NULL, NULL, NULL);
        if (src != SQLITE_OK) problem(&c, "fts5", "%s", sqlite3_errmsg(db->w));
        pthread_mutex_unlock(&db->wlock);
    } else if (report) {
        report(arg, "fts5", "integrity-check skipped: the index was opened read-only");
    }

    int64_t nb = 0;
    rc = bm25_verify(db, report_cb, &c, &nb);
    c.problems += nb;
    if (rc == PLUMB_CORRUPT) { /* the chunks could not even be read back */
        problem(&c, "bm25 index", "%s", plumb_errmsg());
        rc = PLUMB_OK;
    }
    if (rc) return rc;
    int64_t nv = 0;
    rc = vec_verify(db, report_cb, &c, &nv);
    c.problems += nv;
    if (rc == PLUMB_CORRUPT) {
        problem(&c, "vectors", "%s", plumb_errmsg());
        rc = PLUMB_OK;
    }
    if (rc) return rc;
    if (problems) *problems = c.problems;
    if (c.problems) return err_set(PLUMB_CORRUPT, "%lld problem%s found", (long long)c.problems,
                                   c.problems == 1 ? "" : "s");
    return PLUMB_OK;
}
