/*
** qlog.c -- the query log and feedback: what was asked, what came back,
** what people said about it; exported as qrels that plumb eval takes.
**
** Workload: plumb_search runs at about 15,000 queries/s on one thread and
** on many threads at once, and must never wait for the writer; feedback,
** listing and export are interactive and rare.
**
** HOW IT WORKS. A search copies a compact entry (query, parameters, the
** first QLOG_MAX_HITS hits' ids, per-stage scores and ranks) into one
** allocation and appends it to the handle's queue under q->mu. Nothing is
** formatted there: the JSON of parameters and hits is written when the
** queue is, with a number formatter that avoids printf. The queue is
** written in one transaction of its own (never the generation's business):
**   - by the handle's writer thread, woken by the search that brings the
**     queue to QLOG_BATCH entries (see WRITER THREAD), when no batch is open
**     and SQLite's write lock can be taken with a busy timeout of 0.
**     Otherwise the entries stay queued and a search wakes it again
**     QLOG_RETRY entries later;
**   - before every write transaction of the handle (store_begin), again
**     without waiting for SQLite's lock;
**   - by plumb_log_flush, plumb_feedback_add, plumb_log_list,
**     plumb_log_info_get, plumb_export_qrels and at plumb_close, which wait
**     for the lock as writes do.
** The queue is detached under q->mu and written without it, so searches
** keep appending while a transaction runs; a transaction that fails puts
** its entries back in front, in order, so every entry lands exactly once.
**
** IDS. An entry's id is given when it is queued, so the caller can show it.
** Ids must be unique across processes that log into one index, and short
** enough to type: a handle reserves blocks of consecutive ids from
** settings.log_next_id inside the transactions that write its queue (the
** first reservation takes exactly the ids its waiting entries need, the
** next ones QLOG_BLOCK_MIN, doubling up to QLOG_BLOCK_MAX ahead), and at
** close gives back what it did not use when no one reserved after it. So a
** tool that runs one search per process numbers entries 1, 2, 3 ... A search
** that finds the handle's block empty queues its entry without an id and
** tries to write the queue at once (without waiting): the entry is numbered
** in that transaction, or later if the index was locked (log_id 0 then).
**
** RETENTION. settings.log_keep bounds the entries without feedback;
** settings.log_unjudged counts them, kept exact by every transaction that
** inserts, prunes or judges (so handles and processes agree without
** recounting). When a transaction finds more than keep + keep/16, it
** deletes the lowest ids down to keep: deletes come in chunks, and an
** entry with feedback is never deleted (its judgments need its query).
**
** BOUNDED WORK. A write of the queue that must not wait takes a bounded
** part of it: QLOG_FLUSH_MAX entries from a search, QLOG_BATCH before the
** handle's own write transaction, so neither a search nor a write pays for
** a backlog. A backlog builds only when searches outrun the log for long
** (a writer that holds the lock all the time, a flood of searches); past
** QLOG_MAX_QUEUE entries or QLOG_MAX_BYTES of them, entries are dropped and
** counted.
**
** WAL. Searches keep read transactions open almost all the time on a busy
** server, and SQLite's automatic checkpoint, run right after a commit, then
** always finds a reader on an older snapshot: it cannot copy every frame,
** the WAL is never restarted, and it grows by the log's volume (gigabytes
** in a minute under a flood of searches). So the handle records the WAL's
** size after each commit (sqlite3_wal_hook, which also runs the automatic
** checkpoint as SQLite's default hook does) and, while it is large, runs a
** PASSIVE checkpoint just before its next transaction, when the readers have
** moved on to the latest snapshot: the checkpoint completes, and that
** transaction's commit restarts the WAL.
**
** WRITER THREAD. Writing a batch (JSON of parameters and hits, the
** inserts, the retention, the commit) costs about 4 us per entry; done by
** the search that filled the queue it was more than 5% of a bare BM25
** search. So a search only copies its entry and, when the queue is due,
** sets q->wake and signals; a thread of the handle, started the first time
** the queue is due (a process that runs one search never starts one), takes
** db->wlock (waiting for it: it is no search) and writes as a search used
** to. It runs with every signal blocked. plumb_close stops and joins it
** before the last write. Ids stay synchronous where they were: an entry
** that finds the handle's block empty is still written by its own search at
** once (trylock, no waiting), so a one-search process (plumb search --json)
** gets its id. If the thread cannot be started, searches write the queue
** themselves (trylock). A child of fork() must not use its parent's handle
** (SQLite's rule too); closing it there does not wait for a thread that is
** not in the child.
**
** LIMITATIONS. A handle reads log_enabled when it opens and each time it
** writes its queue: one that found the log switched off by another process
** stops logging until reopened or switched on through it. Ids grow with time
** within a handle, not strictly across handles that hold blocks at once, so
** "lowest ids first" is "oldest first" only roughly there. Entries queued
** when a process dies are lost.
*/
#include "plumb_impl.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QLOG_BATCH 256       /* a search writes the queue at this length */
#define QLOG_RETRY 32         /* ...and after a failed try, this many entries later */
#define QLOG_MAX_QUEUE 65536  /* entries beyond this are dropped */
#define QLOG_MAX_BYTES (64u << 20) /* ...and beyond this much memory */
#define QLOG_MAX_HITS 100     /* hits kept per entry */
#define QLOG_MAX_ERROR 512    /* bytes of a reranker's error kept, NUL included */
#define QLOG_BLOCK_MIN 16     /* ids reserved ahead, doubling to QLOG_BLOCK_MAX */
#define QLOG_BLOCK_MAX 4096
#define QLOG_FLUSH_MAX 1024   /* entries per write that must not wait */
#define QLOG_WAL_BIG 4096     /* WAL frames (16 MB) that make a checkpoint */
#define QLOG_ID_LIMIT ((int64_t)1 << 53)
#define NOSTR UINT32_MAX      /* a string offset meaning NULL */

enum { KIND_SEARCH = 0, KIND_ASK = 1 };

typedef struct qhit {
    int64_t chunk;
    double score, lex, dense, fused, rerank; /* NAN where absent */
    int rank_lex, rank_dense, rank_fused;
    uint32_t doc; /* offset of the document id in the entry's strings */
} qhit;

typedef struct qentry {
    struct qentry *next;
    uint64_t seq;         /* order of queueing in this handle */
    int64_t id;           /* 0: numbered when written */
    int tentative;        /* id given by a transaction not yet committed */
    size_t size;          /* bytes of this allocation */
    int kind;
    int has_params;
    int64_t at;           /* unix milliseconds */
    double latency_ms;
    plumb_search_params params; /* string fields set to NULL */
    int rerank_fallback;        /* plumb_hits.rerank_fallback */
    int64_t n_hits, matched, generation, prompt_tokens;
    uint32_t nh;          /* hits stored */
    uint32_t query, prompt_hash, model, answer; /* offsets in str, or NOSTR */
    uint32_t rerank_kind, rerank_error;         /* plumb_hits' (the error only
                                                   with rerank_fallback) */
    qhit *hit;            /* nh entries, inside this allocation */
    char *str;            /* the strings, inside this allocation */
} qentry;

enum {
    ST_INS, ST_SETTINGS, ST_SET, ST_COUNT, ST_CUT, ST_CUT_FAST, ST_DEL, ST_DEL_FAST, ST_DEL_ALL,
    ST_COUNT_
};

static const char *const st_sql[ST_COUNT_] = {
    [ST_INS] = "INSERT INTO query_log(id, at, kind, query, params, n_hits, hits, matched, "
               "generation, latency_ms, prompt_hash, prompt_tokens, model, answer) "
               "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    [ST_SETTINGS] = "SELECT key, value FROM settings WHERE key IN ('log_enabled', 'log_keep', "
                    "'log_next_id', 'log_unjudged')",
    [ST_SET] = "INSERT INTO settings(key, value) VALUES(?1, ?2) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [ST_COUNT] = "SELECT count(*) FROM query_log q WHERE NOT EXISTS "
                 "(SELECT 1 FROM feedback f WHERE f.log_id = q.id)",
    [ST_CUT] = "SELECT id FROM query_log q WHERE NOT EXISTS "
               "(SELECT 1 FROM feedback f WHERE f.log_id = q.id) ORDER BY id LIMIT 1 OFFSET ?1",
    [ST_CUT_FAST] = "SELECT id, (SELECT min(log_id) FROM feedback) FROM query_log "
                    "ORDER BY id LIMIT 1 OFFSET ?1",
    [ST_DEL_FAST] = "DELETE FROM query_log WHERE id <= ?1",
    [ST_DEL] = "DELETE FROM query_log WHERE id <= ?1 AND NOT EXISTS "
               "(SELECT 1 FROM feedback f WHERE f.log_id = query_log.id)",
    [ST_DEL_ALL] = "DELETE FROM query_log WHERE NOT EXISTS "
                   "(SELECT 1 FROM feedback f WHERE f.log_id = query_log.id)",
};

typedef struct qlog qlog;

struct qlog {
    pthread_mutex_t mu;       /* guards the fields down to `writer_pid` */
    qentry *head, *tail;      /* the queue, oldest first */
    size_t n;                 /* entries queued */
    size_t pending;           /* ...of which without an id */
    size_t bytes;             /* their allocations */
    size_t retry_at;          /* a search writes the queue when n reaches this */
    size_t retry_pending_at;  /* ...or, for an entry without id, this */
    uint64_t seq;
    int64_t next_id, end_id;  /* the reserved block [next_id, end_id) */
    int64_t dropped;
    pthread_cond_t wake_cv;   /* the writer thread waits on it for `wake` or `stop` */
    int wake;                 /* the queue is due: write it */
    int stop;                 /* plumb_close: the thread returns */
    int writer;               /* the thread: 0 not started, 1 running, -1 failed to start */
    pthread_t thread;
    pid_t writer_pid;         /* the process that started it (see WRITER THREAD) */
    atomic_int enabled;       /* read by searches without the mutex */
    /* writer side: used under db->wlock only (and by the commit hook) */
    int64_t block;            /* ids to reserve ahead next time (0: none yet) */
    int wal_frames;           /* frames in the WAL after the last commit */
    sqlite3_stmt *st[ST_COUNT_];
    buf params, hits;         /* JSON scratch */
};

typedef struct log_settings {
    int enabled;
    int64_t keep, next;
    int64_t unjudged; /* -1: not recorded yet */
} log_settings;

/* ---------------------------------------------------------------- */
/* Clocks and small helpers                                           */
/* ---------------------------------------------------------------- */

double qlog_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int64_t unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static plumb_status exec(sqlite3 *c, const char *sql, const char *what) {
    int src = sqlite3_exec(c, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? PLUMB_OK : store_err(c, src, what);
}

static plumb_status stmt(plumb_db *db, int which, sqlite3_stmt **out) {
    qlog *q = db->qlog;
    if (!q->st[which]) {
        int src = sqlite3_prepare_v3(db->w, st_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                     &q->st[which], NULL);
        if (src) { *out = NULL; return store_err(db->w, src, "query log"); }
    }
    *out = q->st[which];
    return PLUMB_OK;
}

/* Step a statement that returns no rows, then reset it. */
static plumb_status run(plumb_db *db, sqlite3_stmt *st, const char *what) {
    int src = sqlite3_step(st);
    plumb_status rc = src == SQLITE_DONE || src == SQLITE_ROW ? PLUMB_OK
                                                             : store_err(db->w, src, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int utf8_ok(const char *s) { return !s || utf8_check(s, strlen(s)) == strlen(s); }

/* ---------------------------------------------------------------- */
/* JSON without printf                                                */
/* ---------------------------------------------------------------- */

static const int64_t pow10i[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                 100000000, 1000000000, 10000000000LL};

static void put_int(buf *b, int64_t v) {
    char t[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { t[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) t[n++] = '-';
    char o[24];
    for (int i = 0; i < n; i++) o[i] = t[n - 1 - i];
    buf_append(b, o, (size_t)n);
}

/* A finite number with 7 significant digits, shortest form ("12.34567",
** "0.5", "3"); null for NaN and infinities. Scores in [1e-3, 1e9) take the
** fast integer path (printf costs as much as a fifth of a search). */
static void put_num(buf *b, double v) {
    if (!isfinite(v)) { buf_append(b, "null", 4); return; }
    double a = fabs(v);
    if (a == 0) { buf_putc(b, '0'); return; }
    if (a < 1e-3 || a >= 1e9) { buf_printf(b, "%.7g", v); return; }
    int e = 0; /* a in [10^e, 10^(e+1)), e from -3 to 8 */
    if (a >= 1) { while (e < 8 && a >= (double)pow10i[e + 1]) e++; }
    else { e = -1; while (e > -3 && a < 1.0 / (double)pow10i[-e]) e--; }
    int d = 6 - e; /* decimals for 7 significant digits, 0..9 */
    if (d < 0) d = 0;
    int64_t m = llround(a * (double)pow10i[d]);
    int64_t ip = m / pow10i[d], fp = m % pow10i[d];
    if (v < 0) buf_putc(b, '-');
    put_int(b, ip);
    if (fp) {
        char f[12];
        int n = d;
        for (int i = d - 1; i >= 0; i--) { f[i] = (char)('0' + fp % 10); fp /= 10; }
        while (n > 0 && f[n - 1] == '0') n--;
        buf_putc(b, '.');
        buf_append(b, f, (size_t)n);
    }
}

/* A JSON string; s is valid UTF-8 (document ids are checked at add). */
static void put_str(buf *b, const char *s) {
    static const char hx[] = "0123456789abcdef";
    buf_putc(b, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_append(b, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\') { buf_putc(b, '\\'); buf_putc(b, (char)c); }
        else if (c == '\n') buf_append(b, "\\n", 2);
        else if (c == '\t') buf_append(b, "\\t", 2);
        else { char u[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]}; buf_append(b, u, 6); }
    }
    buf_append(b, run, (size_t)(s - run));
    buf_putc(b, '"');
}

static const char *mode_name(plumb_mode m) {
    switch (m) {
    case PLUMB_MODE_AUTO: return "auto";
    case PLUMB_MODE_LEXICAL: return "lexical";
    case PLUMB_MODE_DENSE: return "dense";
    case PLUMB_MODE_HYBRID: return "hybrid";
    }
    return "?";
}

static const char *scorer_name(plumb_scorer s) {
    switch (s) {
    case PLUMB_SCORER_BM25: return "bm25";
    case PLUMB_SCORER_FTS5: return "fts5";
    case PLUMB_SCORER_BM25_SQL: return "bm25_sql";
    }
    return "?";
}

static const char *fusion_name(plumb_fusion f) {
    switch (f) {
    case PLUMB_FUSE_DEFAULT: return "default";
    case PLUMB_FUSE_MINMAX: return "minmax";
    case PLUMB_FUSE_ZSCORE: return "zscore";
    case PLUMB_FUSE_RRF: return "rrf";
    }
    return "?";
}

static const char *vsearch_name(plumb_vsearch v) {
    switch (v) {
    case PLUMB_VSEARCH_AUTO: return "auto";
    case PLUMB_VSEARCH_F32: return "f32";
    case PLUMB_VSEARCH_INT8: return "int8";
    case PLUMB_VSEARCH_BINARY: return "binary";
    case PLUMB_VSEARCH_ANN: return "ann";
    }
    return "?";
}

/* Stage 2 as it ran (plumb_hits): "reranker" when it ran, and
** "rerank_fallback": true with "rerank_error" when it fell back. They sit in
** params, not columns of their own: see index/FORMAT.md. */
static void rerank_json(buf *b, const qentry *e, int comma) {
    if (e->rerank_kind == NOSTR) return;
    buf_puts(b, comma ? ",\"reranker\":" : "\"reranker\":");
    put_str(b, e->str + e->rerank_kind);
    if (!e->rerank_fallback) return;
    buf_puts(b, ",\"rerank_fallback\":true,\"rerank_error\":");
    put_str(b, e->rerank_error == NOSTR ? "" : e->str + e->rerank_error);
}

/* k, mode and scorer always; every other retrieval parameter when it is
** not the default (texts, snippets and highlights do not change a ranking);
** then how stage 2 ran. */
static void params_json(buf *b, const qentry *e) {
    if (!e->has_params) {
        buf_putc(b, '{');
        rerank_json(b, e, 0);
        buf_putc(b, '}');
        return;
    }
    const plumb_search_params *p = &e->params;
    buf_append(b, "{\"k\":", 5);
    put_int(b, p->k);
    buf_puts(b, ",\"mode\":\"");
    buf_puts(b, mode_name(p->mode));
    buf_puts(b, "\",\"scorer\":\"");
    buf_puts(b, scorer_name(p->scorer));
    buf_putc(b, '"');
    const struct { const char *k; double v; } nums[] = {
        {"bm25_k1", p->bm25_k1}, {"bm25_b", p->bm25_b}, {"weight_title", p->weight_title},
        {"weight_body", p->weight_body}, {"alpha", p->alpha}, {"rrf_k", p->rrf_k}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        if (nums[i].v >= 0) {
            buf_printf(b, ",\"%s\":", nums[i].k);
            put_num(b, nums[i].v);
        }
    if (p->k_lex >= 0) { buf_puts(b, ",\"k_lex\":"); put_int(b, p->k_lex); }
    if (p->k_dense >= 0) { buf_puts(b, ",\"k_dense\":"); put_int(b, p->k_dense); }
    if (p->fusion != PLUMB_FUSE_DEFAULT)
        buf_printf(b, ",\"fusion\":\"%s\"", fusion_name(p->fusion));
    if (p->vsearch != PLUMB_VSEARCH_AUTO)
        buf_printf(b, ",\"vsearch\":\"%s\"", vsearch_name(p->vsearch));
    if (p->ef_search > 0) { buf_puts(b, ",\"ef_search\":"); put_int(b, p->ef_search); }
    if (p->rerank >= 0) { buf_puts(b, ",\"rerank\":"); put_int(b, p->rerank); }
    if (p->qe_docs >= 0) { buf_puts(b, ",\"qe_docs\":"); put_int(b, p->qe_docs); }
    rerank_json(b, e, 1);
    buf_putc(b, '}');
}

/* Parallel arrays over the hits (index/schema.sql): "doc", "chunk", "score",
** the stages that ran in "stages", and a stage's scores ("lex", "dense",
** "fused", "rerank") and ranks ("lex_rank" ...) only where they say more
** than "score" and the position: a lexical search writes neither, its
** scores being "score" and its ranks 1..n. */
static int same_scores(const qentry *e, int stage) {
    for (uint32_t i = 0; i < e->nh; i++) {
        double v = stage == 0 ? e->hit[i].lex : stage == 1 ? e->hit[i].dense
                 : stage == 2 ? e->hit[i].fused : e->hit[i].rerank;
        if (!(v == e->hit[i].score)) return 0;
    }
    return 1;
}

static int rank_of(const qhit *h, int stage) {
    return stage == 0 ? h->rank_lex : stage == 1 ? h->rank_dense : stage == 2 ? h->rank_fused : 0;
}

static void hits_json(buf *b, const qentry *e) {
    static const char *const name[4] = {"lex", "dense", "fused", "rerank"};
    int ran[4] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < e->nh; i++) {
        const qhit *h = &e->hit[i];
        ran[0] |= isfinite(h->lex) || h->rank_lex > 0;
        ran[1] |= isfinite(h->dense) || h->rank_dense > 0;
        ran[2] |= isfinite(h->fused) || h->rank_fused > 0;
        ran[3] |= isfinite(h->rerank);
    }
    buf_append(b, "{\"doc\":[", 8);
    for (uint32_t i = 0; i < e->nh; i++) {
        if (i) buf_putc(b, ',');
        put_str(b, e->str + e->hit[i].doc);
    }
    buf_append(b, "],\"chunk\":[", 11);
    for (uint32_t i = 0; i < e->nh; i++) {
        if (i) buf_putc(b, ',');
        put_int(b, e->hit[i].chunk);
    }
    buf_append(b, "],\"score\":[", 11);
    for (uint32_t i = 0; i < e->nh; i++) {
        if (i) buf_putc(b, ',');
        put_num(b, e->hit[i].score);
    }
    buf_append(b, "],\"stages\":[", 12);
    for (int s = 0, n = 0; s < 4; s++)
        if (ran[s]) {
            if (n++) buf_putc(b, ',');
            buf_putc(b, '"');
            buf_puts(b, name[s]);
            buf_putc(b, '"');
        }
    buf_putc(b, ']');
    for (int s = 0; s < 4; s++) {
        if (!ran[s]) continue;
        if (!same_scores(e, s)) {
            buf_printf(b, ",\"%s\":[", name[s]);
            for (uint32_t i = 0; i < e->nh; i++) {
                if (i) buf_putc(b, ',');
                put_num(b, s == 0 ? e->hit[i].lex : s == 1 ? e->hit[i].dense
                          : s == 2 ? e->hit[i].fused : e->hit[i].rerank);
            }
            buf_putc(b, ']');
        }
        int positional = 1;
        for (uint32_t i = 0; i < e->nh && positional; i++)
            positional = rank_of(&e->hit[i], s) == (int)i + 1;
        if (s < 3 && !positional) {
            buf_printf(b, ",\"%s_rank\":[", name[s]);
            for (uint32_t i = 0; i < e->nh; i++) {
                if (i) buf_putc(b, ',');
                put_int(b, rank_of(&e->hit[i], s));
            }
            buf_putc(b, ']');
        }
    }
    buf_putc(b, '}');
}

/* ---------------------------------------------------------------- */
/* Entries and the queue                                              */
/* ---------------------------------------------------------------- */

/* Copy at most cap - 1 bytes of s to d (NUL-terminated), each byte that is
** not part of valid UTF-8 (a cut sequence included) as '?': a server's
** message may be anything, and the log's JSON must be UTF-8. Returns the
** bytes written, NUL included; d may be NULL to measure. */
static size_t clean_copy(char *d, const char *s, size_t cap) {
    size_t n = strlen(s), o = 0;
    if (n > cap - 1) n = cap - 1;
    while (o < n) {
        size_t v = utf8_check(s + o, n - o);
        if (d) memcpy(d + o, s + o, v);
        o += v;
        if (o < n) {
            if (d) d[o] = '?';
            o++;
        }
    }
    if (d) d[o] = 0;
    return o + 1;
}

/* One allocation: the entry, its hits, its strings. NULL on OOM or when the
** strings would not fit 32-bit offsets. */
static qentry *entry_new(int kind, const char *query, const plumb_search_params *p,
                         const plumb_hits *h, const plumb_log_ask *a) {
    size_t nh = h ? (h->n < QLOG_MAX_HITS ? h->n : QLOG_MAX_HITS) : 0;
    size_t lq = strlen(query) + 1, strbytes = lq;
    size_t lph = a && a->prompt_hash ? strlen(a->prompt_hash) + 1 : 0;
    size_t lmo = a && a->model ? strlen(a->model) + 1 : 0;
    size_t lan = a && a->answer ? strlen(a->answer) + 1 : 0;
    /* copied, not kept: plumb_log_record_ask's hits are the caller's */
    size_t lrk = h && h->rerank_kind ? clean_copy(NULL, h->rerank_kind, 32) : 0;
    int fell = lrk && h->rerank_fallback;
    size_t lre = fell && h->rerank_error ? clean_copy(NULL, h->rerank_error, QLOG_MAX_ERROR) : 0;
    strbytes += lph + lmo + lan + lrk + lre;
    for (size_t i = 0; i < nh; i++) strbytes += strlen(h->hit[i].doc_id ? h->hit[i].doc_id : "") + 1;
    if (strbytes >= NOSTR) return NULL;
    size_t size = sizeof(qentry) + nh * sizeof(qhit) + strbytes;
    qentry *e = malloc(size);
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    e->size = size;
    e->hit = (qhit *)(e + 1);
    e->str = (char *)(e->hit + nh);
    e->kind = kind;
    e->at = unix_ms();
    if (p) {
        e->has_params = 1;
        e->params = *p;
        e->params.hl_open = e->params.hl_close = NULL;
        e->params.reranker = e->params.rerank_url = e->params.rerank_model = NULL;
    }
    e->n_hits = h ? (int64_t)h->n : 0;
    e->matched = h ? h->matched : 0;
    e->generation = h ? h->generation : -1;
    e->prompt_tokens = a && a->prompt_tokens >= 0 ? a->prompt_tokens : -1;
    e->rerank_fallback = fell;
    e->nh = (uint32_t)nh;
    size_t off = 0;
#define PUT(s, len) (memcpy(e->str + off, (s), (len)), off += (len), (uint32_t)(off - (len)))
    e->query = PUT(query, lq);
    e->prompt_hash = lph ? PUT(a->prompt_hash, lph) : NOSTR;
    e->model = lmo ? PUT(a->model, lmo) : NOSTR;
    e->answer = lan ? PUT(a->answer, lan) : NOSTR;
    e->rerank_kind = e->rerank_error = NOSTR;
    if (lrk) {
        clean_copy(e->str + off, h->rerank_kind, 32);
        e->rerank_kind = (uint32_t)off;
        off += lrk;
    }
    if (lre) {
        clean_copy(e->str + off, h->rerank_error, QLOG_MAX_ERROR);
        e->rerank_error = (uint32_t)off;
        off += lre;
    }
    for (size_t i = 0; i < nh; i++) {
        const plumb_hit *x = &h->hit[i];
        qhit *y = &e->hit[i];
        const char *d = x->doc_id ? x->doc_id : "";
        y->doc = PUT(d, strlen(d) + 1);
        y->chunk = x->chunk_id;
        y->score = x->score;
        y->lex = x->score_lex;
        y->dense = x->score_dense;
        y->fused = x->score_fused;
        y->rerank = x->score_rerank;
        y->rank_lex = x->rank_lex;
        y->rank_dense = x->rank_dense;
        y->rank_fused = x->rank_fused;
    }
#undef PUT
    return e;
}

static void free_list(qentry *e) {
    while (e) {
        qentry *n = e->next;
        free(e);
        e = n;
    }
}

static plumb_status flush_locked(plumb_db *db, int wait, int closing, size_t max,
                                 uint64_t watch, int64_t *got);

/* A search or an answer finished: try to write the queue without waiting.
** Returns the id the watched entry got (0: none). */
static int64_t try_write(plumb_db *db, uint64_t watch) {
    int64_t got = 0;
    /* another thread of this handle writes: the next search tries again (a
    ** failed trylock costs nothing) */
    if (pthread_mutex_trylock(&db->wlock) != 0) return 0;
    if (db->in_txn) { /* a batch is open: its transaction is not ours to use */
        pthread_mutex_unlock(&db->wlock);
        pthread_mutex_lock(&db->qlog->mu);
        db->qlog->retry_at = db->qlog->n + QLOG_RETRY;
        db->qlog->retry_pending_at = db->qlog->n + QLOG_RETRY;
        pthread_mutex_unlock(&db->qlog->mu);
        return 0;
    }
    flush_locked(db, 0, 0, QLOG_FLUSH_MAX, watch, &got);
    pthread_mutex_unlock(&db->wlock);
    /* the search succeeded; a log write that could not happen now is no
    ** error of it (flush_locked has scheduled the retry) */
    err_clear();
    return got;
}

/* The writer thread: writes the queue each time a search finds it due,
** until plumb_close sets stop. */
static void *writer_main(void *arg) {
    plumb_db *db = arg;
    qlog *q = db->qlog;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->wake && !q->stop) pthread_cond_wait(&q->wake_cv, &q->mu);
        if (q->stop) break;
        q->wake = 0;
        pthread_mutex_unlock(&q->mu);
        pthread_mutex_lock(&db->wlock);
        if (db->in_txn) { /* a batch is open: the queue waits for its end */
            pthread_mutex_lock(&q->mu);
            q->retry_at = q->n + QLOG_RETRY;
            pthread_mutex_unlock(&q->mu);
        } else {
            /* a failure reschedules (retry_at); the entries stay queued */
            flush_locked(db, 0, 0, QLOG_FLUSH_MAX, 0, NULL);
        }
        pthread_mutex_unlock(&db->wlock);
        err_clear();
        pthread_mutex_lock(&q->mu);
        if (q->n >= q->retry_at) q->wake = 1; /* more came due while it wrote */
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Start the writer thread, every signal blocked in it. Caller holds q->mu. */
static void start_writer(plumb_db *db) {
    qlog *q = db->qlog;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    q->writer = pthread_create(&q->thread, NULL, writer_main, db) == 0 ? 1 : -1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (q->writer > 0) q->writer_pid = getpid();
}

static int64_t enqueue(plumb_db *db, qentry *e) {
    qlog *q = db->qlog;
    pthread_mutex_lock(&q->mu);
    if (q->n >= QLOG_MAX_QUEUE || q->bytes + e->size > QLOG_MAX_BYTES) {
        q->dropped++;
        pthread_mutex_unlock(&q->mu);
        free(e);
        return 0;
    }
    e->seq = ++q->seq;
    if (q->next_id < q->end_id) e->id = q->next_id++;
    else q->pending++;
    if (q->tail) q->tail->next = e;
    else q->head = e;
    q->tail = e;
    q->n++;
    q->bytes += e->size;
    int64_t id = e->id;
    uint64_t seq = e->seq;
    int now = !id && q->n >= q->retry_pending_at; /* its id is given only by a write */
    if (!now && q->n >= q->retry_at) {
        if (!q->writer) start_writer(db);
        if (q->writer > 0) {
            /* one wakeup per due batch; the writer reschedules after writing */
            q->retry_at = q->n + QLOG_RETRY;
            q->wake = 1;
            pthread_cond_signal(&q->wake_cv);
        } else {
            now = 1;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (now) {
        int64_t got = try_write(db, id ? 0 : seq);
        if (!id) id = got;
    }
    return id;
}

static int logging(const plumb_db *db) {
    return db->qlog && atomic_load_explicit(&db->qlog->enabled, memory_order_relaxed);
}

static void count_dropped(plumb_db *db) {
    pthread_mutex_lock(&db->qlog->mu);
    db->qlog->dropped++;
    pthread_mutex_unlock(&db->qlog->mu);
}

int64_t qlog_search(plumb_db *db, const char *query, const plumb_search_params *p,
                    const plumb_hits *hits, double t0_ms) {
    if (!p->log || !logging(db)) return 0;
    qentry *e = entry_new(KIND_SEARCH, query, p, hits, NULL);
    if (!e) { count_dropped(db); return 0; }
    e->latency_ms = qlog_now_ms() - t0_ms;
    return enqueue(db, e);
}

plumb_status plumb_log_record_ask(plumb_db *db, const plumb_log_ask *a, int64_t *id) {
    err_clear();
    if (id) *id = 0;
    if (!db || !a || !a->question)
        return err_set(PLUMB_MISUSE, "plumb_log_record_ask: db, the record or its question is NULL");
    const char *f[4] = {a->question, a->prompt_hash, a->model, a->answer};
    const char *nm[4] = {"question", "prompt_hash", "model", "answer"};
    for (int i = 0; i < 4; i++)
        if (!utf8_ok(f[i]))
            return err_set(PLUMB_MISUSE, "plumb_log_record_ask: %s is not valid UTF-8", nm[i]);
    if (a->hits && a->hits->n && !a->hits->hit)
        return err_set(PLUMB_MISUSE, "plumb_log_record_ask: hits has n > 0 and no hit array");
    if (!logging(db)) return PLUMB_OK;
    qentry *e = entry_new(KIND_ASK, a->question, a->search, a->hits, a);
    if (!e) {
        count_dropped(db);
        return err_set(PLUMB_NOMEM, "plumb_log_record_ask");
    }
    e->latency_ms = a->latency_ms >= 0 ? a->latency_ms : 0;
    int64_t got = enqueue(db, e);
    if (id) *id = got;
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* Writing the queue                                                  */
/* ---------------------------------------------------------------- */

static plumb_status read_settings(plumb_db *db, log_settings *s) {
    sqlite3_stmt *st;
    plumb_status rc = stmt(db, ST_SETTINGS, &st);
    if (rc) return rc;
    s->enabled = 1;
    s->keep = 100000;
    s->next = 1;
    s->unjudged = -1;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        int64_t v = sqlite3_column_int64(st, 1);
        if (!k) continue;
        if (!strcmp(k, "log_enabled")) s->enabled = v != 0;
        else if (!strcmp(k, "log_keep")) s->keep = v < 0 ? 0 : v;
        else if (!strcmp(k, "log_next_id")) s->next = v < 1 ? 1 : v;
        else if (!strcmp(k, "log_unjudged")) s->unjudged = v < 0 ? 0 : v;
    }
    sqlite3_reset(st);
    return src == SQLITE_DONE ? PLUMB_OK : store_err(db->w, src, "read the log settings");
}

static plumb_status set_setting(plumb_db *db, const char *key, int64_t v) {
    sqlite3_stmt *st;
    plumb_status rc = stmt(db, ST_SET, &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return run(db, st, "write a log setting");
}

static plumb_status count_unjudged(plumb_db *db, int64_t *out) {
    sqlite3_stmt *st;
    plumb_status rc = stmt(db, ST_COUNT, &st);
    if (rc) return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return src == SQLITE_ROW ? PLUMB_OK : store_err(db->w, src, "count the query log");
}

/* Bring *unjudged (settings.log_unjudged, known) down to `keep` by
** deleting the lowest-id entries without feedback, once it exceeds keep +
** slack. Inside the writer's transaction. */
static plumb_status prune(plumb_db *db, int64_t keep, int64_t slack, int64_t *unjudged) {
    int64_t excess = *unjudged - keep;
    if (keep <= 0 || excess <= slack) return PLUMB_OK;
    sqlite3_stmt *cut, *del;
    /* fast path: no feedback at or below the cut, a plain range of rows */
    plumb_status rc = stmt(db, ST_CUT_FAST, &cut);
    if (rc) return rc;
    sqlite3_bind_int64(cut, 1, excess - 1);
    int src = sqlite3_step(cut);
    int fast = src == SQLITE_ROW && (sqlite3_column_type(cut, 1) == SQLITE_NULL ||
                                     sqlite3_column_int64(cut, 1) > sqlite3_column_int64(cut, 0));
    int64_t last = fast ? sqlite3_column_int64(cut, 0) : 0;
    sqlite3_reset(cut);
    if (src != SQLITE_ROW && src != SQLITE_DONE) return store_err(db->w, src, "prune the query log");
    if (fast) {
        if ((rc = stmt(db, ST_DEL_FAST, &del))) return rc;
        sqlite3_bind_int64(del, 1, last);
        if ((rc = run(db, del, "prune the query log"))) return rc;
        *unjudged -= sqlite3_changes(db->w);
        return PLUMB_OK;
    }
    if ((rc = stmt(db, ST_CUT, &cut))) return rc;
    sqlite3_bind_int64(cut, 1, excess - 1);
    src = sqlite3_step(cut);
    last = src == SQLITE_ROW ? sqlite3_column_int64(cut, 0) : 0;
    sqlite3_reset(cut);
    if (src != SQLITE_ROW && src != SQLITE_DONE) return store_err(db->w, src, "prune the query log");
    if (src == SQLITE_ROW) {
        if ((rc = stmt(db, ST_DEL, &del))) return rc;
        sqlite3_bind_int64(del, 1, last);
        if ((rc = run(db, del, "prune the query log"))) return rc;
        *unjudged -= sqlite3_changes(db->w);
        return PLUMB_OK;
    }
    /* fewer than counted (rows deleted by hand): take them all, recount */
    if ((rc = stmt(db, ST_DEL_ALL, &del)) || (rc = run(db, del, "prune the query log")))
        return rc;
    return count_unjudged(db, unjudged);
}

/* *dup = 1 when the id is taken already (only if settings.log_next_id was
** set back by hand): the entry is dropped, not the transaction. */
static plumb_status insert(plumb_db *db, qentry *e, int *dup) {
    qlog *q = db->qlog;
    *dup = 0;
    sqlite3_stmt *st;
    plumb_status rc = stmt(db, ST_INS, &st);
    if (rc) return rc;
    buf_reset(&q->params);
    buf_reset(&q->hits);
    params_json(&q->params, e);
    hits_json(&q->hits, e);
    if (q->params.oom || q->hits.oom) {
        buf_free(&q->params);
        buf_free(&q->hits);
        return err_set(PLUMB_NOMEM, "query log");
    }
#define STR(i, off) \
    ((off) == NOSTR ? sqlite3_bind_null(st, i) : sqlite3_bind_text(st, i, e->str + (off), -1, SQLITE_STATIC))
    sqlite3_bind_int64(st, 1, e->id);
    sqlite3_bind_int64(st, 2, e->at);
    sqlite3_bind_text(st, 3, e->kind == KIND_ASK ? "ask" : "search", -1, SQLITE_STATIC);
    STR(4, e->query);
    sqlite3_bind_text(st, 5, q->params.p, (int)q->params.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, e->n_hits);
    sqlite3_bind_text(st, 7, q->hits.p, (int)q->hits.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, e->matched);
    if (e->generation >= 0) sqlite3_bind_int64(st, 9, e->generation);
    sqlite3_bind_double(st, 10, e->latency_ms);
    STR(11, e->prompt_hash);
    if (e->prompt_tokens >= 0) sqlite3_bind_int64(st, 12, e->prompt_tokens);
    STR(13, e->model);
    STR(14, e->answer);
#undef STR
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (src == SQLITE_DONE) return PLUMB_OK;
    if (sqlite3_extended_errcode(db->w) == SQLITE_CONSTRAINT_PRIMARYKEY) {
        *dup = 1;
        return PLUMB_OK;
    }
    return store_err(db->w, src, "write the query log");
}

/* Put entries back in front of the queue, in order, without their
** tentative ids. */
static void requeue(qlog *q, qentry *list) {
    if (!list) return;
    size_t n = 0, pend = 0, bytes = 0;
    qentry *last = NULL;
    for (qentry *e = list; e; e = e->next) {
        if (e->tentative) { e->id = 0; e->tentative = 0; }
        pend += !e->id;
        bytes += e->size;
        n++;
        last = e;
    }
    pthread_mutex_lock(&q->mu);
    last->next = q->head;
    q->head = list;
    if (!q->tail) q->tail = last;
    q->n += n;
    q->pending += pend;
    q->bytes += bytes;
    pthread_mutex_unlock(&q->mu);
}

/* Write the first `max` entries of the queue (0: all) in one transaction.
** Caller holds db->wlock; no transaction is open. wait: 0 = give up at once
** when another connection holds SQLite's write lock. closing: give back the
** unused ids, reserve none. watch: the seq of an entry whose id *got
** receives. */
static plumb_status flush_locked(plumb_db *db, int wait, int closing, size_t max,
                                 uint64_t watch, int64_t *got) {
    qlog *q = db->qlog;
    plumb_status rc = PLUMB_OK;
    size_t n = 0, pend = 0, bytes = 0;
    pthread_mutex_lock(&q->mu);
    qentry *list = q->head, *last = NULL;
    for (qentry *e = list; e && (!max || n < max); e = e->next) {
        n++;
        pend += !e->id;
        bytes += e->size;
        last = e;
    }
    if (last) { /* detach the first n */
        q->head = last->next;
        if (!q->head) q->tail = NULL;
        last->next = NULL;
        q->n -= n;
        q->pending -= pend;
        q->bytes -= bytes;
    }
    int64_t next = q->next_id, end = q->end_id;
    pthread_mutex_unlock(&q->mu);
    int giveback = closing && next < end;
    if (!list && !giveback) return PLUMB_OK;

    if (q->wal_frames >= QLOG_WAL_BIG) /* see WAL above; a failure is harmless */
        sqlite3_wal_checkpoint_v2(db->w, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (!wait) sqlite3_busy_timeout(db->w, 0);
    int src = sqlite3_exec(db->w, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (!wait) sqlite3_busy_timeout(db->w, db->busy_ms);
    if (src) {
        rc = store_err(db->w, src, "write the query log");
        goto requeue;
    }
    log_settings s;
    if ((rc = read_settings(db, &s))) goto rollback;
    if (!s.enabled) { /* switched off, perhaps by another process */
        atomic_store(&q->enabled, 0);
        sqlite3_exec(db->w, "ROLLBACK", NULL, NULL, NULL);
        free_list(list);
        return PLUMB_OK;
    }

    /* ids: entries without one first, then a block ahead (see IDS) */
    int64_t ahead = closing ? 0 : q->block;
    int64_t reserve = 0, start = s.next;
    if (pend || (!closing && end - next <= ahead / 2)) reserve = (int64_t)pend + ahead;
    if (start + reserve >= QLOG_ID_LIMIT) {
        rc = err_set(PLUMB_ERROR, "the query log has used up its ids (next id %lld)",
                     (long long)start);
        goto rollback;
    }
    int64_t nid = start;
    for (qentry *e = list; e; e = e->next)
        if (!e->id) { e->id = nid++; e->tentative = 1; }

    int64_t inserted = 0, taken = 0;
    if (s.unjudged < 0 && (rc = count_unjudged(db, &s.unjudged))) goto rollback;
    for (qentry *e = list; e; e = e->next) {
        int dup;
        if ((rc = insert(db, e, &dup))) goto rollback;
        if (dup) { taken++; e->id = -e->id; } /* negated: dropped */
        else inserted++;
    }
    s.unjudged += inserted;
    if ((rc = prune(db, s.keep, s.keep / 16, &s.unjudged)) ||
        (rc = set_setting(db, "log_unjudged", s.unjudged)))
        goto rollback;
    if (reserve && (rc = set_setting(db, "log_next_id", start + reserve))) goto rollback;
    if (giveback && s.next == end && (rc = set_setting(db, "log_next_id", next)))
        goto rollback;
    if ((rc = exec(db->w, "COMMIT", "write the query log"))) goto rollback;

    /* committed: the new block, the schedule, the watched id */
    pthread_mutex_lock(&q->mu);
    if (reserve > (int64_t)pend) {
        int64_t bstart = start + (int64_t)pend, bend = start + reserve;
        if (!pend && q->end_id == start) q->end_id = bend; /* contiguous: extend */
        else { q->next_id = bstart; q->end_id = bend; }
    }
    if (reserve) q->block = q->block ? (q->block * 2 < QLOG_BLOCK_MAX ? q->block * 2
                                                                       : QLOG_BLOCK_MAX)
                                     : QLOG_BLOCK_MIN;
    if (giveback) q->next_id = q->end_id = 0;
    q->dropped += taken;
    q->retry_at = QLOG_BATCH;
    q->retry_pending_at = 0;
    pthread_mutex_unlock(&q->mu);
    if (got)
        for (qentry *e = list; e; e = e->next)
            if (e->seq == watch) *got = e->id > 0 ? e->id : 0;
    free_list(list);
    return PLUMB_OK;

rollback:
    sqlite3_exec(db->w, "ROLLBACK", NULL, NULL, NULL);
    for (qentry *e = list; e; e = e->next)
        if (e->id < 0) e->id = -e->id;
requeue:
    requeue(q, list);
    pthread_mutex_lock(&q->mu);
    q->retry_at = q->n + QLOG_RETRY;
    q->retry_pending_at = q->n + QLOG_RETRY;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void qlog_before_write(plumb_db *db) {
    qlog *q = db->qlog;
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    int empty = !q->head;
    pthread_mutex_unlock(&q->mu);
    if (empty) return;
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", plumb_errmsg());
    if (flush_locked(db, 0, 0, QLOG_BATCH, 0, NULL)) err_set(PLUMB_OK, "%s", keep);
}

/* ---------------------------------------------------------------- */
/* Opening, closing, switches                                         */
/* ---------------------------------------------------------------- */

/* 1 when both log tables exist (indexes made before the log have none). */
static int has_tables(sqlite3 *c) {
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(c, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
                              "name IN ('query_log', 'feedback')", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n == 2;
}

/* After each commit on the writer connection: SQLite's default hook (a
** PASSIVE checkpoint from QLOG_WAL_BIG frames on), and the WAL's size for
** flush_locked (see WAL at the top). */
static int wal_hook(void *arg, sqlite3 *c, const char *name, int frames) {
    qlog *q = arg;
    q->wal_frames = frames;
    if (frames >= QLOG_WAL_BIG) sqlite3_wal_checkpoint(c, name);
    return SQLITE_OK;
}

plumb_status qlog_open(plumb_db *db) {
    db->qlog = NULL;
    if (!db->w || !has_tables(db->w)) return PLUMB_OK;
    qlog *q = calloc(1, sizeof *q);
    if (!q) return err_set(PLUMB_NOMEM, "open: query log");
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->wake_cv, NULL);
    q->retry_at = QLOG_BATCH;
    db->qlog = q;
    sqlite3_wal_hook(db->w, wal_hook, q);
    sqlite3_stmt *st = NULL;
    int on = 1;
    if (sqlite3_prepare_v2(db->w, "SELECT value FROM settings WHERE key = 'log_enabled'", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        on = sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    atomic_init(&q->enabled, on);
    return PLUMB_OK;
}

void qlog_close(plumb_db *db) {
    qlog *q = db->qlog;
    if (!q) return;
    pthread_mutex_lock(&q->mu); /* the writer thread first: it may be writing */
    int joinable = q->writer > 0 && q->writer_pid == getpid();
    q->stop = 1;
    pthread_cond_signal(&q->wake_cv);
    pthread_mutex_unlock(&q->mu);
    if (joinable) pthread_join(q->thread, NULL);
    if (db->in_txn) store_rollback(db); /* plumb_close rolls an open batch back */
    db->user_batch = 0;
    if (flush_locked(db, 1, 1, 0, 0, NULL)) {
        /* entries that could not be written at close are lost */
        size_t n = 0;
        for (qentry *e = q->head; e; e = e->next) n++;
        q->dropped += (int64_t)n;
    }
    free_list(q->head);
    for (int i = 0; i < ST_COUNT_; i++) sqlite3_finalize(q->st[i]);
    sqlite3_wal_autocheckpoint(db->w, QLOG_WAL_BIG); /* SQLite's own hook again */
    buf_free(&q->params);
    buf_free(&q->hits);
    pthread_cond_destroy(&q->wake_cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
    db->qlog = NULL;
}

static plumb_status check_log_writable(plumb_db *db, const char *fn) {
    if (!db) return err_set(PLUMB_MISUSE, "%s: db is NULL", fn);
    if (db->readonly || !db->w) return err_set(PLUMB_MISUSE, "%s: index opened read-only", fn);
    if (!db->qlog)
        return err_set(PLUMB_FORMAT, "%s: this index has no query log (it was created by an "
                       "older plumb; re-create it to log)", fn);
    return PLUMB_OK;
}

/* Begin a write: the queue first, then the handle's transaction (or the
** open batch). Returns with db->wlock held on success. */
static plumb_status write_begin(plumb_db *db) {
    pthread_mutex_lock(&db->wlock);
    if (db->user_batch) return PLUMB_OK;
    plumb_status rc = flush_locked(db, 1, 0, 0, 0, NULL);
    if (!rc) rc = store_begin(db);
    if (rc) pthread_mutex_unlock(&db->wlock);
    return rc;
}

/* As api.c's write_end: a failure other than NOTFOUND/MISUSE (nothing
** written) rolls the transaction back, an open batch included. */
static plumb_status write_end(plumb_db *db, plumb_status rc) {
    if (rc && rc != PLUMB_NOTFOUND && rc != PLUMB_MISUSE) {
        if (db->in_txn) {
            char m[1024];
            snprintf(m, sizeof m, "%s", plumb_errmsg());
            store_rollback(db);
            if (db->user_batch) rc = err_set(rc, "%s (the open batch was rolled back)", m);
        }
        db->user_batch = 0;
    } else if (!db->user_batch) {
        if (rc) store_rollback(db);
        else rc = store_commit(db);
    }
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

plumb_status plumb_log_flush(plumb_db *db) {
    err_clear();
    if (!db) return err_set(PLUMB_MISUSE, "plumb_log_flush: db is NULL");
    if (!db->qlog) return PLUMB_OK;
    pthread_mutex_lock(&db->wlock);
    plumb_status rc = db->in_txn ? err_set(PLUMB_MISUSE, "plumb_log_flush: a batch is open; the "
                                           "log is written when the next transaction starts")
                                 : flush_locked(db, 1, 0, 0, 0, NULL);
    pthread_mutex_unlock(&db->wlock);
    return rc;
}

plumb_status plumb_log_set_enabled(plumb_db *db, int on) {
    err_clear();
    plumb_status rc = check_log_writable(db, "plumb_log_set_enabled");
    if (rc) return rc;
    if ((rc = write_begin(db))) return rc;
    rc = set_setting(db, "log_enabled", on ? 1 : 0);
    rc = write_end(db, rc);
    if (rc) return rc;
    qlog *q = db->qlog;
    atomic_store(&q->enabled, on ? 1 : 0);
    if (!on) { /* what was queued is not written */
        pthread_mutex_lock(&q->mu);
        qentry *list = q->head;
        q->head = q->tail = NULL;
        q->n = q->pending = q->bytes = 0;
        pthread_mutex_unlock(&q->mu);
        free_list(list);
    }
    return PLUMB_OK;
}

plumb_status plumb_log_set_keep(plumb_db *db, int64_t keep) {
    err_clear();
    plumb_status rc = check_log_writable(db, "plumb_log_set_keep");
    if (rc) return rc;
    if (keep < 0) return err_set(PLUMB_MISUSE, "plumb_log_set_keep: keep < 0");
    if ((rc = write_begin(db))) return rc;
    int64_t unjudged = 0;
    rc = set_setting(db, "log_keep", keep);
    if (!rc) rc = count_unjudged(db, &unjudged);
    if (!rc) rc = prune(db, keep, 0, &unjudged);
    if (!rc) rc = set_setting(db, "log_unjudged", unjudged);
    return write_end(db, rc);
}

/* ---------------------------------------------------------------- */
/* Feedback                                                           */
/* ---------------------------------------------------------------- */

/* 1 when this handle still has entry `id` queued. */
static int queued(qlog *q, int64_t id) {
    int found = 0;
    pthread_mutex_lock(&q->mu);
    for (qentry *e = q->head; e && !found; e = e->next) found = e->id == id;
    pthread_mutex_unlock(&q->mu);
    return found;
}

static plumb_status scalar(sqlite3 *c, const char *sql, int64_t a, const char *t, int *row,
                           int64_t *v) {
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(c, sql, -1, &st, NULL);
    if (src) return store_err(c, src, "query log");
    sqlite3_bind_int64(st, 1, a);
    if (t) sqlite3_bind_text(st, 2, t, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    *row = src == SQLITE_ROW;
    if (v && *row) *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return src == SQLITE_ROW || src == SQLITE_DONE ? PLUMB_OK : store_err(c, src, "query log");
}

plumb_status plumb_feedback_add(plumb_db *db, int64_t log_id, plumb_verdict verdict,
                                const char *doc_id, int relevance, const char *note,
                                int64_t *id) {
    err_clear();
    if (id) *id = 0;
    plumb_status rc = check_log_writable(db, "plumb_feedback_add");
    if (rc) return rc;
    if (log_id <= 0) return err_set(PLUMB_MISUSE, "plumb_feedback_add: log id must be > 0");
    if (verdict != PLUMB_VERDICT_NONE && verdict != PLUMB_VERDICT_GOOD &&
        verdict != PLUMB_VERDICT_BAD)
        return err_set(PLUMB_MISUSE, "plumb_feedback_add: unknown verdict %d", (int)verdict);
    if (doc_id && !*doc_id) return err_set(PLUMB_MISUSE, "plumb_feedback_add: doc_id is empty");
    if (doc_id && relevance < 0)
        return err_set(PLUMB_MISUSE, "plumb_feedback_add: relevance must be >= 0 (0: not "
                       "relevant), got %d", relevance);
    if (!verdict && !doc_id && !note)
        return err_set(PLUMB_MISUSE, "plumb_feedback_add: give a verdict, a document or a note");
    if (!utf8_ok(doc_id) || !utf8_ok(note))
        return err_set(PLUMB_MISUSE, "plumb_feedback_add: text is not valid UTF-8");
    if ((rc = write_begin(db))) return rc;
    int row = 0;
    int64_t had = 0;
    rc = scalar(db->w, "SELECT EXISTS(SELECT 1 FROM feedback WHERE log_id = ?1) FROM query_log "
                "WHERE id = ?1", log_id, NULL, &row, &had);
    if (!rc && !row && !queued(db->qlog, log_id))
        rc = err_set(PLUMB_NOTFOUND, "no query log entry with id %lld", (long long)log_id);
    if (!rc && doc_id) {
        int in_index = 0, in_hits = 0;
        rc = scalar(db->w, "SELECT 1 FROM documents WHERE doc_id = ?2 LIMIT ?1", 1, doc_id,
                    &in_index, NULL);
        if (!rc && !in_index)
            rc = scalar(db->w, "SELECT 1 FROM query_log q, json_each(q.hits, '$.doc') j "
                        "WHERE q.id = ?1 AND j.value = ?2", log_id, doc_id, &in_hits, NULL);
        if (!rc && !in_index && !in_hits)
            rc = err_set(PLUMB_NOTFOUND, "no document '%.300s' in the index (nor among the hits "
                         "of query log entry %lld)", doc_id, (long long)log_id);
    }
    if (!rc) {
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(db->w, "INSERT INTO feedback(log_id, at, verdict, doc_id, "
                                     "relevance, note) VALUES(?1,?2,?3,?4,?5,?6)", -1, &st, NULL);
        if (!src) {
            sqlite3_bind_int64(st, 1, log_id);
            sqlite3_bind_int64(st, 2, unix_ms());
            if (verdict)
                sqlite3_bind_text(st, 3, verdict == PLUMB_VERDICT_GOOD ? "good" : "bad", -1,
                                  SQLITE_STATIC);
            if (doc_id) {
                sqlite3_bind_text(st, 4, doc_id, -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 5, relevance);
            }
            if (note) sqlite3_bind_text(st, 6, note, -1, SQLITE_STATIC);
            src = sqlite3_step(st);
            if (src == SQLITE_DONE) src = SQLITE_OK;
        }
        if (src) rc = store_err(db->w, src, "record feedback");
        else if (id) *id = sqlite3_last_insert_rowid(db->w);
        sqlite3_finalize(st);
    }
    if (!rc && row && !had) { /* the entry is no longer one retention may delete */
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(db->w, "UPDATE settings SET value = value - 1 WHERE key = "
                                     "'log_unjudged' AND value > 0", -1, &st, NULL);
        if (!src) src = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db->w);
        if (src) rc = store_err(db->w, src, "record feedback");
        sqlite3_finalize(st);
    }
    return write_end(db, rc);
}

/* ---------------------------------------------------------------- */
/* Reading: info and lists                                            */
/* ---------------------------------------------------------------- */

/* A writable handle writes its queue before reading, when neither its own
** writer nor another connection holds the lock at that moment: readers
** never wait for a writer (the reader sees what was committed). */
static void flush_for_read(plumb_db *db) {
    if (!db->qlog || pthread_mutex_trylock(&db->wlock) != 0) return;
    if (!db->in_txn) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", plumb_errmsg());
        if (flush_locked(db, 0, 0, QLOG_FLUSH_MAX, 0, NULL)) err_set(PLUMB_OK, "%s", keep);
    }
    pthread_mutex_unlock(&db->wlock);
}

static int64_t col64(sqlite3 *c, const char *sql, int *src) {
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (*src) return 0;
    *src = sqlite3_prepare_v2(c, sql, -1, &st, NULL);
    if (!*src) {
        *src = sqlite3_step(st);
        if (*src == SQLITE_ROW) {
            v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
            *src = SQLITE_OK;
        } else if (*src == SQLITE_DONE) {
            v = -1;
            *src = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return v;
}

plumb_status plumb_log_info_get(plumb_db *db, plumb_log_info *out) {
    err_clear();
    if (out) memset(out, 0, sizeof *out);
    if (!db || !out) return err_set(PLUMB_MISUSE, "plumb_log_info_get: NULL argument");
    flush_for_read(db);
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    if (!src && has_tables(r->conn)) {
        out->available = 1;
        int64_t en = col64(r->conn, "SELECT value FROM settings WHERE key = 'log_enabled'", &src);
        int64_t keep = col64(r->conn, "SELECT value FROM settings WHERE key = 'log_keep'", &src);
        out->enabled = en != 0;
        out->keep = keep < 0 ? 100000 : keep;
        out->entries = col64(r->conn, "SELECT count(*) FROM query_log", &src);
        out->with_feedback = col64(r->conn, "SELECT count(*) FROM query_log q WHERE EXISTS "
                                   "(SELECT 1 FROM feedback f WHERE f.log_id = q.id)", &src);
        out->feedback = col64(r->conn, "SELECT count(*) FROM feedback", &src);
    }
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    if (src) rc = store_err(r->conn, src, "read the query log");
    store_reader_put(db, r);
    if (rc) return rc;
    if (db->qlog) {
        qlog *q = db->qlog;
        pthread_mutex_lock(&q->mu);
        out->queued = (int64_t)q->n;
        out->dropped = q->dropped;
        pthread_mutex_unlock(&q->mu);
    }
    return PLUMB_OK;
}

void plumb_log_filter_init(plumb_log_filter *f) {
    if (!f) return;
    memset(f, 0, sizeof *f);
    f->limit = 20;
}

void plumb_log_query_id(const char *query, char out[20]) {
    /* normalise: trim, collapse white space, ASCII lower case; hashed in
    ** pieces so no copy of the query is needed */
    uint64_t h = 0x716c6f67ULL; /* "qlog" */
    char chunk[256];
    size_t n = 0;
    int space = 0, any = 0;
    for (const unsigned char *s = (const unsigned char *)(query ? query : ""); *s; s++) {
        unsigned char c = *s;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = any;
            continue;
        }
        if (space) {
            if (n == sizeof chunk) { h = hash64(chunk, n, h); n = 0; }
            chunk[n++] = ' ';
            space = 0;
        }
        if (n == sizeof chunk) { h = hash64(chunk, n, h); n = 0; }
        chunk[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        any = 1;
    }
    h = hash64(chunk, n, h);
    out[0] = 'q';
    out[1] = '-';
    hash64_hex(h, out + 2);
}

typedef struct list_impl {
    plumb_log_entries pub;
    plumb_feedback *fb;
    buf arena;
} list_impl;

/* Strings go into the arena as offsets (+1; 0 = NULL) and become pointers
** once it stops moving. */
static uintptr_t arena_col(buf *a, sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
    const char *s = (const char *)sqlite3_column_text(st, col);
    size_t off = a->len;
    buf_append(a, s ? s : "", (size_t)sqlite3_column_bytes(st, col));
    buf_putc(a, 0);
    return off + 1;
}

#define RESOLVE(a, f) ((f) = (f) ? (a)->p + ((uintptr_t)(f) - 1) : NULL)

/* Stage 2's keys in an entry's params (rerank_json), strings into the
** arena as arena_col's are. Entries without them (stage 2 off, or logged
** before the keys existed) are not parsed. A params text that does not
** parse (only out of memory, for text written here) leaves the fields
** empty: they are a summary of params, which the entry still carries. */
static void rerank_from_params(buf *a, plumb_log_entry *e, const char *params) {
    if (!params || !strstr(params, "\"reranker\"")) return;
    json_val *j = json_parse(params, NULL);
    const char *kind = json_str(json_get(j, "reranker"));
    if (kind) {
        e->rerank_kind = (const char *)(uintptr_t)(a->len + 1);
        buf_append(a, kind, strlen(kind) + 1);
        e->rerank_fallback = json_is_true(json_get(j, "rerank_fallback"));
        const char *err = json_str(json_get(j, "rerank_error"));
        if (e->rerank_fallback && err) {
            e->rerank_error = (const char *)(uintptr_t)(a->len + 1);
            buf_append(a, err, strlen(err) + 1);
        }
    }
    json_free(j);
}

void plumb_log_entries_free(plumb_log_entries *e) {
    if (!e) return;
    list_impl *l = (list_impl *)e;
    free(l->pub.entry);
    free(l->fb);
    buf_free(&l->arena);
    free(l);
}

plumb_status plumb_log_list(plumb_db *db, const plumb_log_filter *f, plumb_log_entries **out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_log_list: out is NULL");
    *out = NULL;
    if (!db) return err_set(PLUMB_MISUSE, "plumb_log_list: db is NULL");
    plumb_log_filter def;
    if (!f) { plumb_log_filter_init(&def); f = &def; }
    if (f->limit < 0) return err_set(PLUMB_MISUSE, "plumb_log_list: limit < 0");
    flush_for_read(db);
    list_impl *l = calloc(1, sizeof *l);
    if (!l) return err_set(PLUMB_NOMEM, "plumb_log_list");
    reader *r = NULL;
    sqlite3_stmt *st = NULL, *fst = NULL;
    size_t cap = 0, fcap = 0, nfb = 0;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) goto done;
    int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    if (src) { rc = store_err(r->conn, src, "read the query log"); goto done; }
    if (!has_tables(r->conn)) {
        rc = err_set(PLUMB_FORMAT, "this index has no query log (it was created by an older "
                     "plumb)");
        goto done;
    }
    src = sqlite3_prepare_v2(r->conn,
        "SELECT id, at, kind, query, params, n_hits, hits, matched, generation, latency_ms, "
        "prompt_hash, prompt_tokens, model, answer FROM query_log WHERE (?1 = 0 OR id = ?1) AND "
        "(?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR instr(query, ?3) > 0) AND at >= ?4 AND "
        "(?5 = 0 OR EXISTS (SELECT 1 FROM feedback f WHERE f.log_id = query_log.id)) "
        "ORDER BY at DESC, id DESC LIMIT ?6", -1, &st, NULL);
    if (!src)
        src = sqlite3_prepare_v2(r->conn, "SELECT id, log_id, at, verdict, doc_id, relevance, "
                                 "note FROM feedback WHERE log_id = ?1 ORDER BY at, id", -1, &fst,
                                 NULL);
    if (src) { rc = store_err(r->conn, src, "read the query log"); goto done; }
    sqlite3_bind_int64(st, 1, f->id > 0 ? f->id : 0);
    if (f->kind) sqlite3_bind_text(st, 2, f->kind, -1, SQLITE_STATIC);
    if (f->contains) sqlite3_bind_text(st, 3, f->contains, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, f->since_ms);
    sqlite3_bind_int(st, 5, f->with_feedback ? 1 : 0);
    sqlite3_bind_int64(st, 6, f->limit > 0 ? f->limit : -1);
    buf *a = &l->arena;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->pub.n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            plumb_log_entry *t = realloc(l->pub.entry, nc * sizeof *t);
            if (!t) { rc = err_set(PLUMB_NOMEM, "plumb_log_list"); goto done; }
            l->pub.entry = t;
            cap = nc;
        }
        plumb_log_entry *e = &l->pub.entry[l->pub.n++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(st, 0);
        e->at_ms = sqlite3_column_int64(st, 1);
        e->kind = (const char *)arena_col(a, st, 2);
        e->query = (const char *)arena_col(a, st, 3);
        plumb_log_query_id((const char *)sqlite3_column_text(st, 3), e->query_id);
        e->params = (const char *)arena_col(a, st, 4);
        rerank_from_params(a, e, (const char *)sqlite3_column_text(st, 4));
        e->n_hits = sqlite3_column_int64(st, 5);
        e->hits = (const char *)arena_col(a, st, 6);
        e->matched = sqlite3_column_int64(st, 7);
        e->generation = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 8);
        e->latency_ms = sqlite3_column_double(st, 9);
        e->prompt_hash = (const char *)arena_col(a, st, 10);
        e->prompt_tokens = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1
                                                                      : sqlite3_column_int64(st, 11);
        e->model = (const char *)arena_col(a, st, 12);
        e->answer = (const char *)arena_col(a, st, 13);
        /* feedback rows: their index in l->fb, as an offset, for now */
        e->feedback = (const plumb_feedback *)(uintptr_t)nfb;
        sqlite3_bind_int64(fst, 1, e->id);
        while ((src = sqlite3_step(fst)) == SQLITE_ROW) {
            if (nfb == fcap) {
                size_t nc = fcap ? fcap * 2 : 16;
                plumb_feedback *t = realloc(l->fb, nc * sizeof *t);
                if (!t) { rc = err_set(PLUMB_NOMEM, "plumb_log_list"); goto done; }
                l->fb = t;
                fcap = nc;
            }
            plumb_feedback *b = &l->fb[nfb++];
            b->id = sqlite3_column_int64(fst, 0);
            b->log_id = sqlite3_column_int64(fst, 1);
            b->at_ms = sqlite3_column_int64(fst, 2);
            const char *v = (const char *)sqlite3_column_text(fst, 3);
            b->verdict = !v ? PLUMB_VERDICT_NONE
                         : !strcmp(v, "good") ? PLUMB_VERDICT_GOOD : PLUMB_VERDICT_BAD;
            b->doc_id = (const char *)arena_col(a, fst, 4);
            b->relevance = b->doc_id ? sqlite3_column_int(fst, 5) : -1;
            b->note = (const char *)arena_col(a, fst, 6);
            e->nfeedback++;
        }
        sqlite3_reset(fst);
        if (src != SQLITE_DONE) { rc = store_err(r->conn, src, "read feedback"); goto done; }
    }
    if (src != SQLITE_DONE) { rc = store_err(r->conn, src, "read the query log"); goto done; }
    if (a->oom) { rc = err_set(PLUMB_NOMEM, "plumb_log_list"); goto done; }
    for (size_t i = 0; i < nfb; i++) {
        RESOLVE(a, l->fb[i].doc_id);
        RESOLVE(a, l->fb[i].note);
    }
    for (size_t i = 0; i < l->pub.n; i++) {
        plumb_log_entry *e = &l->pub.entry[i];
        RESOLVE(a, e->kind);
        RESOLVE(a, e->query);
        RESOLVE(a, e->params);
        RESOLVE(a, e->hits);
        RESOLVE(a, e->prompt_hash);
        RESOLVE(a, e->model);
        RESOLVE(a, e->answer);
        RESOLVE(a, e->rerank_kind);
        RESOLVE(a, e->rerank_error);
        e->feedback = e->nfeedback ? l->fb + (uintptr_t)e->feedback : NULL;
    }
done:
    sqlite3_finalize(st);
    sqlite3_finalize(fst);
    if (r) {
        sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
        store_reader_put(db, r);
    }
    if (rc) {
        plumb_log_entries_free(&l->pub);
        return rc;
    }
    *out = &l->pub;
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* Export as qrels                                                    */
/* ---------------------------------------------------------------- */

void plumb_export_params_init(plumb_export_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
}

typedef struct judgment {
    char qid[20];
    char *doc;     /* owned */
    int grade;
    int explicit_; /* 1: a document judgment; 0: implied by a "good" verdict */
    int64_t seq;   /* feedback order (time, then id) */
} judgment;

typedef struct equery {
    char qid[20];
    char *text;    /* owned: the latest entry's query */
    int64_t at, id;
} equery;

typedef struct export_ctx {
    judgment *j;
    size_t nj, jcap;
    equery *q;
    size_t nq, qcap;
    int64_t *judged_entries, *good_entries, *verdict_entries; /* log ids */
    size_t nje, nge, nve, cje, cge, cve;
} export_ctx;

static int push_id(int64_t **a, size_t *n, size_t *cap, int64_t v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        int64_t *t = realloc(*a, nc * sizeof *t);
        if (!t) return -1;
        *a = t;
        *cap = nc;
    }
    (*a)[(*n)++] = v;
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and drop duplicates; returns the new length. */
static size_t uniq_ids(int64_t *a, size_t n) {
    if (!n) return 0;
    qsort(a, n, sizeof *a, cmp_i64);
    size_t w = 1;
    for (size_t i = 1; i < n; i++)
        if (a[i] != a[w - 1]) a[w++] = a[i];
    return w;
}

static int has_id(const int64_t *a, size_t n, int64_t v) {
    return bsearch(&v, a, n, sizeof *a, cmp_i64) != NULL;
}

static int push_judgment(export_ctx *x, const char *qid, const char *doc, int grade, int expl,
                         int64_t seq) {
    if (x->nj == x->jcap) {
        size_t nc = x->jcap ? x->jcap * 2 : 64;
        judgment *t = realloc(x->j, nc * sizeof *t);
        if (!t) return -1;
        x->j = t;
        x->jcap = nc;
    }
    judgment *j = &x->j[x->nj];
    memcpy(j->qid, qid, sizeof j->qid);
    if (!(j->doc = strdup(doc))) return -1;
    j->grade = grade;
    j->explicit_ = expl;
    j->seq = seq;
    x->nj++;
    return 0;
}

static int push_query(export_ctx *x, const char *qid, const char *text, int64_t at, int64_t id) {
    if (x->nq == x->qcap) {
        size_t nc = x->qcap ? x->qcap * 2 : 64;
        equery *t = realloc(x->q, nc * sizeof *t);
        if (!t) return -1;
        x->q = t;
        x->qcap = nc;
    }
    equery *q = &x->q[x->nq];
    memcpy(q->qid, qid, sizeof q->qid);
    if (!(q->text = strdup(text))) return -1;
    q->at = at;
    q->id = id;
    x->nq++;
    return 0;
}

/* (query, document), then explicit before implied, then older first: the
** last of each group wins. */
static int cmp_judgment(const void *a, const void *b) {
    const judgment *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    if (!c) c = strcmp(x->doc, y->doc);
    if (!c) c = x->explicit_ - y->explicit_;
    if (!c) c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

/* By query id, the latest entry first. */
static int cmp_query(const void *a, const void *b) {
    const equery *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    if (!c) c = x->at > y->at ? -1 : x->at < y->at ? 1 : (x->id > y->id ? -1 : x->id < y->id);
    return c;
}

static int cmp_qid_key(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const equery *)elem)->qid);
}

static int writable_id(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f')
            return 0;
    return 1;
}

/* JSON string of arbitrary bytes: invalid UTF-8 becomes U+FFFD. */
static void put_text(buf *b, const char *s) {
    buf fixed = {0};
    size_t n = strlen(s);
    if (utf8_check(s, n) != n) {
        utf8_repair(s, n, &fixed, NULL);
        if (!fixed.oom && fixed.p) s = fixed.p;
    }
    put_str(b, s);
    buf_free(&fixed);
}

/* Write `data` to path atomically: a temporary file beside it, renamed. */
static plumb_status write_file(const char *path, const buf *data) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 32);
    if (!tmp) return err_set(PLUMB_NOMEM, "write %s", path);
    snprintf(tmp, n + 32, "%s.tmp%ld", path, (long)getpid());
    plumb_status rc = PLUMB_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) rc = err_set(PLUMB_IO, "cannot write '%s': %s", tmp, strerror(errno));
    else {
        if (data->len && fwrite(data->p, 1, data->len, f) != data->len)
            rc = err_set(PLUMB_IO, "cannot write '%s': %s", tmp, strerror(errno));
        if (fclose(f) != 0 && !rc) rc = err_set(PLUMB_IO, "cannot write '%s': %s", tmp, strerror(errno));
        if (!rc && rename(tmp, path) != 0)
            rc = err_set(PLUMB_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        if (rc) remove(tmp);
    }
    free(tmp);
    return rc;
}

plumb_status plumb_export_qrels(plumb_db *db, const char *qrels_path, const plumb_export_params *p,
                                plumb_export_stats *stats) {
    err_clear();
    if (stats) memset(stats, 0, sizeof *stats);
    if (!db || !qrels_path || !*qrels_path)
        return err_set(PLUMB_MISUSE, "plumb_export_qrels: db or path is NULL or empty");
    plumb_export_params def;
    if (!p) { plumb_export_params_init(&def); p = &def; }
    if (p->good_top < 0) return err_set(PLUMB_MISUSE, "plumb_export_qrels: good_top < 0");
    flush_for_read(db);
    plumb_export_stats s;
    memset(&s, 0, sizeof s);
    export_ctx x;
    memset(&x, 0, sizeof x);
    buf out = {0}, qout = {0};
    reader *r = NULL;
    sqlite3_stmt *st = NULL, *hst = NULL;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
    if (src) { rc = store_err(r->conn, src, "read feedback"); goto done; }
    if (!has_tables(r->conn)) {
        rc = err_set(PLUMB_FORMAT, "this index has no query log (it was created by an older "
                     "plumb)");
        goto done;
    }
    src = sqlite3_prepare_v2(r->conn,
        "SELECT f.log_id, f.verdict, f.doc_id, f.relevance, q.query, q.at, q.id IS NULL "
        "FROM feedback f LEFT JOIN query_log q ON q.id = f.log_id ORDER BY f.at, f.id",
        -1, &st, NULL);
    if (!src)
        src = sqlite3_prepare_v2(r->conn, "SELECT j.value, q.query FROM query_log q, "
                                 "json_each(q.hits, '$.doc') j WHERE q.id = ?1 ORDER BY j.key",
                                 -1, &hst, NULL);
    if (src) { rc = store_err(r->conn, src, "read feedback"); goto done; }
    int64_t seq = 0;
    int oom = 0;
    while (!oom && (src = sqlite3_step(st)) == SQLITE_ROW) {
        s.feedback++;
        seq++;
        if (sqlite3_column_int(st, 6)) { s.orphaned++; continue; }
        int64_t log_id = sqlite3_column_int64(st, 0);
        const char *verdict = (const char *)sqlite3_column_text(st, 1);
        const char *doc = (const char *)sqlite3_column_text(st, 2);
        const char *query = (const char *)sqlite3_column_text(st, 4);
        char qid[20];
        plumb_log_query_id(query, qid);
        oom |= push_query(&x, qid, query ? query : "", sqlite3_column_int64(st, 5), log_id);
        if (doc) {
            oom |= push_judgment(&x, qid, doc, sqlite3_column_int(st, 3), 1, seq);
            oom |= push_id(&x.judged_entries, &x.nje, &x.cje, log_id);
        } else if (verdict) { /* a note alone only counts its entry (below) */
            oom |= push_id(&x.verdict_entries, &x.nve, &x.cve, log_id);
            if (!strcmp(verdict, "good"))
                oom |= push_id(&x.good_entries, &x.nge, &x.cge, log_id);
        }
    }
    if (oom) { rc = err_set(PLUMB_NOMEM, "plumb_export_qrels"); goto done; }
    if (src != SQLITE_DONE) { rc = store_err(r->conn, src, "read feedback"); goto done; }
    x.nje = uniq_ids(x.judged_entries, x.nje);
    x.nve = uniq_ids(x.verdict_entries, x.nve);
    x.nge = uniq_ids(x.good_entries, x.nge);
    for (size_t i = 0; i < x.nve; i++)
        s.verdict_only += !has_id(x.judged_entries, x.nje, x.verdict_entries[i]);
    /* "good" entries without document judgments: their first documents */
    for (size_t i = 0; p->good_top > 0 && i < x.nge; i++) {
        if (has_id(x.judged_entries, x.nje, x.good_entries[i])) continue;
        sqlite3_bind_int64(hst, 1, x.good_entries[i]);
        size_t base = x.nj;
        int taken = 0;
        while (taken < p->good_top && (src = sqlite3_step(hst)) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(hst, 0);
            char qid[20];
            plumb_log_query_id((const char *)sqlite3_column_text(hst, 1), qid);
            int dup = !d; /* a document with several chunks in the hits counts once */
            for (size_t k = base; k < x.nj && !dup; k++) dup = !strcmp(x.j[k].doc, d);
            if (dup) continue;
            if (push_judgment(&x, qid, d, 1, 0, 0)) { oom = 1; break; }
            taken++;
        }
        sqlite3_reset(hst);
        if (oom) { rc = err_set(PLUMB_NOMEM, "plumb_export_qrels"); goto done; }
        if (src != SQLITE_ROW && src != SQLITE_DONE) {
            rc = store_err(r->conn, src, "read logged hits");
            goto done;
        }
    }
    {   /* entries judged: documents or verdicts or notes */
        int64_t *all = NULL;
        size_t na = 0, ca = 0;
        for (size_t i = 0; i < x.nq && !oom; i++) oom |= push_id(&all, &na, &ca, x.q[i].id);
        s.entries = (int64_t)uniq_ids(all, na);
        free(all);
        if (oom) { rc = err_set(PLUMB_NOMEM, "plumb_export_qrels"); goto done; }
    }

    /* the winners, in (query, document) order */
    qsort(x.j, x.nj, sizeof *x.j, cmp_judgment);
    qsort(x.q, x.nq, sizeof *x.q, cmp_query);
    buf_puts(&out, "query-id\tcorpus-id\tscore\n");
    const char *lastq = NULL;
    for (size_t i = 0; i < x.nj; i++) {
        const judgment *j = &x.j[i];
        if (i + 1 < x.nj && !strcmp(j->qid, x.j[i + 1].qid) && !strcmp(j->doc, x.j[i + 1].doc)) {
            s.overridden++;
            continue;
        }
        if (!writable_id(j->doc)) { s.unwritable++; continue; }
        buf_puts(&out, j->qid);
        buf_putc(&out, '\t');
        buf_puts(&out, j->doc);
        buf_printf(&out, "\t%d\n", j->grade);
        s.judgments++;
        s.relevant += j->grade >= 1;
        s.implied += !j->explicit_;
        if (!lastq || strcmp(lastq, j->qid)) {
            s.queries++;
            if (p->queries_path) {
                const equery *eq = bsearch(j->qid, x.q, x.nq, sizeof *x.q, cmp_qid_key);
                /* bsearch may land on any entry of the query id: step back to
                ** the first, the latest one */
                if (eq) {
                    while (eq > x.q && !strcmp(eq[-1].qid, j->qid)) eq--;
                    buf_puts(&qout, "{\"_id\":\"");
                    buf_puts(&qout, j->qid);
                    buf_puts(&qout, "\",\"text\":");
                    put_text(&qout, eq->text);
                    buf_puts(&qout, "}\n");
                }
            }
            lastq = j->qid;
        }
    }
    if (out.oom || qout.oom) { rc = err_set(PLUMB_NOMEM, "plumb_export_qrels"); goto done; }
    sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    if (p->queries_path) {
        if (!qout.p) buf_puts(&qout, "");
        if ((rc = write_file(p->queries_path, &qout))) goto done;
    }
    rc = write_file(qrels_path, &out);
done:
    sqlite3_finalize(st);
    sqlite3_finalize(hst);
    if (r) {
        sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
        store_reader_put(db, r);
    }
    for (size_t i = 0; i < x.nj; i++) free(x.j[i].doc);
    for (size_t i = 0; i < x.nq; i++) free(x.q[i].text);
    free(x.j);
    free(x.q);
    free(x.judged_entries);
    free(x.good_entries);
    free(x.verdict_entries);
    buf_free(&out);
    buf_free(&qout);
    if (!rc && stats) *stats = s;
    return rc;
}
