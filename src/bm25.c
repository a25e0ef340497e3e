/*
** bm25.c -- the BM25 top-k hot path: an in-memory inverted index kept in
** step with the SQLite store, and exact term-at-a-time scoring.
**
** HOW IT WORKS
**   Structure. Every chunk gets a dense ordinal (0, 1, 2 ... in order of
**   arrival). Per term, a postings array of (ordinal, tf in title, tf in
**   body), sorted by ordinal because ordinals only grow. Per ordinal: the
**   chunk id, the title and body lengths in tokens, and a dead flag.
**   Terms come from the same tokenizer FTS5 uses (tok.c), so the terms,
**   tfs and lengths are exactly the ones FTS5 holds.
**
**   Consistency. SQLite is the source of truth. Every chunk insert and
**   delete appends (chunk id, +1/-1) to the lex_log table in the same
**   transaction. The index records the generation and the last log
**   sequence number it reflects. A search reads the generation in its
**   read transaction; if the index is behind, it applies the log entries
**   after its sequence number, read through that same snapshot (adds are
**   tokenized from the chunk text, deletes set the dead flag), so the
**   index matches the reader's snapshot exactly. If the index is ahead
**   of a reader's snapshot, the reader starts a newer read transaction.
**   If the log was truncated past the index's position, or a quarter of
**   the ordinals are dead, the index is rebuilt from the chunks table.
**   A reader-writer lock lets many searches score at once; catching up
**   takes the write side for as long as the new chunks take to tokenize.
**
**   Scoring. For each distinct query term: one pass over its postings
**   counts the live ones (df at this snapshot, so deleted chunks never
**   distort idf), a second pass adds
**       m * idf * tf~ * (k1+1) / (tf~ + k1 * (1 - b + b * dl~/avgdl~))
**   into a dense per-reader accumulator (m: the term's multiplicity in
**   the query; tf~ and dl~ weighted by the field weights, see lex.c for
**   the BM25F definition). k1, b and field weights are query parameters:
**   nothing is precomputed that depends on them. Top-k selection is a
**   bounded heap over the touched ordinals. Results are exactly those of
**   exhaustive scoring, with ties broken by ascending chunk id.
**
** WORKLOAD AND LIMITATIONS
**   Tuned for interactive queries of a few to a few dozen terms: cost is
**   the total postings length of the query terms (no dynamic pruning
**   yet). Memory is about 8 bytes per posting plus 17 bytes per chunk.
**   The index is loaded at the first search of a handle from the side
**   file <index>.bm25 when that fits (index/FORMAT.md), else built from
**   the chunks table (a million short chunks: about five seconds).
*/
#include "plumb_impl.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct post {
    uint32_t ord;
    uint16_t tft, tfb; /* saturate at 65535 */
} post;

typedef struct term {
    post *p;
    uint32_t n, cap;
    uint32_t off;  /* key offset in the arena */
    uint16_t len;  /* key length */
} term;

struct bm25_index {
    pthread_rwlock_t lock;
    pthread_mutex_t save_lock; /* one saver at a time (savers hold only the read lock) */
    char *side_path;    /* "<index>.bm25"; kept across clear() */
    int64_t index_id;   /* settings.index_id of the database */
    /* from here on: the contents, zeroed by clear() */
    int built;
    int64_t generation; /* snapshot generation reflected */
    int64_t log_seq;    /* last lex_log seq applied */
    /* terms */
    term *terms;
    uint32_t nterms, capterms;
    uint32_t *tslot; /* open addressing: term index + 1; 0 empty */
    uint32_t ntslot; /* power of two */
    char *arena;
    size_t narena, caparena;
    /* ordinals */
    int64_t *cid;
    uint32_t *lt, *lb;
    uint8_t *dead;
    uint32_t nord, capord;
    uint32_t ndead;
    /* chunk id -> ordinal + 1 (open addressing) */
    int64_t *ckey;
    uint32_t *cval;
    uint32_t ncslot, ncused;
    /* live totals */
    int64_t live;
    double tot_t, tot_b;
    /* loaded snapshot: postings of terms with cap == 0 point into it */
    void *block;
    _Atomic int64_t applied; /* log entries applied since load/save */
    /* build scratch (under the write lock) */
    uint32_t *sc_tft, *sc_tfb, *sc_touched;
    uint32_t sc_cap, sc_n;
    /* forward index for the reranker (rerank.c): the term ids of each
    ** chunk, title then body, in token order; saved in and loaded from
    ** the side file. Ordinals added once fwd holds fwd_max ids have none
    ** (foff == UINT64_MAX), nor any when a loaded file holds more than
    ** fwd_max: the reranker tokenizes their text instead. fwd holds
    ** exactly the lists of the ordinals that have one, in ordinal order. */
    uint32_t *fwd;
    uint64_t nfwd, capfwd, fwd_max;
    uint64_t *foff; /* per ordinal: offset of its ids in fwd; capord entries */
};

/* ---------------------------------------------------------------- */
/* Maps                                                               */
/* ---------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int grow_terms_table(bm25_index *ix) {
    uint32_t n = ix->ntslot ? ix->ntslot * 2 : 1024;
    while (n < (uint64_t)ix->nterms * 2 + 2) n *= 2; /* load factor <= 1/2 */
    uint32_t *s = calloc(n, sizeof *s);
    if (!s) return -1;
    for (uint32_t i = 0; i < ix->nterms; i++) {
        term *t = &ix->terms[i];
        uint32_t h = (uint32_t)hash64(ix->arena + t->off, t->len, 0) & (n - 1);
        while (s[h]) h = (h + 1) & (n - 1);
        s[h] = i + 1;
    }
    free(ix->tslot);
    ix->tslot = s;
    ix->ntslot = n;
    return 0;
}

/* Term index for a key, or -1 when absent (create == 0) or OOM. */
static int64_t term_find(const bm25_index *ix, const char *k, size_t n) {
    if (!ix->ntslot) return -1;
    uint32_t h = (uint32_t)hash64(k, n, 0) & (ix->ntslot - 1);
    for (;;) {
        uint32_t v = ix->tslot[h];
        if (!v) return -1;
        const term *t = &ix->terms[v - 1];
        if (t->len == n && !memcmp(ix->arena + t->off, k, n)) return v - 1;
        h = (h + 1) & (ix->ntslot - 1);
    }
}

static int64_t term_get(bm25_index *ix, const char *k, size_t n) {
    int64_t f = term_find(ix, k, n);
    if (f >= 0) return f;
    if ((ix->nterms + 1) * 2 > ix->ntslot && grow_terms_table(ix)) return -1;
    if (ix->nterms == ix->capterms) {
        uint32_t c = ix->capterms ? ix->capterms * 2 : 1024;
        term *t = realloc(ix->terms, c * sizeof *t);
        if (!t) return -1;
        ix->terms = t;
        ix->capterms = c;
    }
    if (ix->narena + n > ix->caparena) {
        size_t c = ix->caparena ? ix->caparena * 2 : 65536;
        while (c < ix->narena + n) c *= 2;
        if (c > UINT32_MAX) return -1;
        char *a = realloc(ix->arena, c);
        if (!a) return -1;
        ix->arena = a;
        ix->caparena = c;
    }
    memcpy(ix->arena + ix->narena, k, n);
    term *t = &ix->terms[ix->nterms];
    memset(t, 0, sizeof *t);
    t->off = (uint32_t)ix->narena;
    t->len = (uint16_t)n;
    ix->narena += n;
    uint32_t h = (uint32_t)hash64(k, n, 0) & (ix->ntslot - 1);
    while (ix->tslot[h]) h = (h + 1) & (ix->ntslot - 1);
    ix->tslot[h] = ++ix->nterms;
    return ix->nterms - 1;
}

static int cmap_grow(bm25_index *ix) {
    uint32_t n = ix->ncslot ? ix->ncslot * 2 : 4096;
    int64_t *k = malloc(n * sizeof *k);
    uint32_t *v = calloc(n, sizeof *v);
    if (!k || !v) { free(k); free(v); return -1; }
    for (uint32_t i = 0; i < ix->ncslot; i++) {
        if (!ix->cval[i]) continue;
        uint32_t h = (uint32_t)mix64((uint64_t)ix->ckey[i]) & (n - 1);
        while (v[h]) h = (h + 1) & (n - 1);
        k[h] = ix->ckey[i];
        v[h] = ix->cval[i];
    }
    free(ix->ckey);
    free(ix->cval);
    ix->ckey = k;
    ix->cval = v;
    ix->ncslot = n;
    return 0;
}

/* Slot of chunk id, or the empty slot where it would go. */
static uint32_t cmap_slot(const bm25_index *ix, int64_t id) {
    uint32_t h = (uint32_t)mix64((uint64_t)id) & (ix->ncslot - 1);
    while (ix->cval[h] && ix->ckey[h] != id) h = (h + 1) & (ix->ncslot - 1);
    return h;
}

/* ---------------------------------------------------------------- */
/* Building                                                           */
/* ---------------------------------------------------------------- */

typedef struct addctx {
    bm25_index *ix;
    int field; /* 0 title, 1 body */
    uint32_t ntok;
    int oom;
    int fwd;   /* 1: append the ids to the forward index */
} addctx;

static int add_tok(void *arg, const char *t, int n, int start, int end) {
    (void)start;
    (void)end;
    addctx *a = arg;
    bm25_index *ix = a->ix;
    a->ntok++;
    int64_t id = term_get(ix, t, (size_t)n);
    if (id < 0) { a->oom = 1; return 1; }
    if ((uint32_t)id >= ix->sc_cap) {
        uint32_t c = ix->sc_cap ? ix->sc_cap : 1024;
        while (c <= (uint32_t)id) c *= 2;
        uint32_t *x = realloc(ix->sc_tft, c * sizeof *x), *y = NULL, *z = NULL;
        if (x) ix->sc_tft = x;
        if (x && (y = realloc(ix->sc_tfb, c * sizeof *y))) ix->sc_tfb = y;
        if (y && (z = realloc(ix->sc_touched, c * sizeof *z))) ix->sc_touched = z;
        if (!z) { a->oom = 1; return 1; }
        memset(ix->sc_tft + ix->sc_cap, 0, (c - ix->sc_cap) * sizeof *x);
        memset(ix->sc_tfb + ix->sc_cap, 0, (c - ix->sc_cap) * sizeof *y);
        ix->sc_cap = c;
    }
    if (a->fwd) {
        if (ix->nfwd == ix->capfwd) {
            uint64_t c = ix->capfwd ? ix->capfwd * 2 : 65536;
            uint32_t *f = realloc(ix->fwd, c * sizeof *f);
            if (!f) a->fwd = 0; /* no forward entry for this chunk; not an error */
            else { ix->fwd = f; ix->capfwd = c; }
        }
        if (a->fwd) ix->fwd[ix->nfwd++] = (uint32_t)id;
    }
    if (ix->sc_tft[id] == 0 && ix->sc_tfb[id] == 0) ix->sc_touched[ix->sc_n++] = (uint32_t)id;
    if (a->field == 0) ix->sc_tft[id]++;
    else ix->sc_tfb[id]++;
    return 0;
}

/* Index one chunk: tokenize title and body, append postings. */
static plumb_status add_chunk(bm25_index *ix, tok_ctx *tok, int64_t cid, const char *title,
                              int tn, const char *body, int bn) {
    if (ix->nord == UINT32_MAX - 1) return err_set(PLUMB_ERROR, "more than 4e9 chunks");
    if (ix->nord == ix->capord) {
        uint32_t c = ix->capord ? ix->capord * 2 : 4096;
        int64_t *a = realloc(ix->cid, c * sizeof *a);
        if (a) ix->cid = a;
        uint32_t *b = a ? realloc(ix->lt, c * sizeof *b) : NULL;
        if (b) ix->lt = b;
        uint32_t *d = b ? realloc(ix->lb, c * sizeof *d) : NULL;
        if (d) ix->lb = d;
        uint8_t *e = d ? realloc(ix->dead, c) : NULL;
        if (e) ix->dead = e;
        uint64_t *g = e ? realloc(ix->foff, c * sizeof *g) : NULL;
        if (g) ix->foff = g;
        if (!g) return err_set(PLUMB_NOMEM, "lexical index");
        ix->capord = c;
    }
    if ((ix->ncused + 1) * 2 > ix->ncslot && cmap_grow(ix)) return err_set(PLUMB_NOMEM, "lexical index");
    uint64_t fstart = ix->nfwd;
    addctx a = {ix, 0, 0, 0, ix->nfwd < ix->fwd_max};
    ix->sc_n = 0;
    if (tok_run(tok, title, tn, add_tok, &a) < 0) a.oom = 1;
    uint32_t lt = a.ntok;
    a.field = 1;
    a.ntok = 0;
    if (!a.oom && tok_run(tok, body, bn, add_tok, &a) < 0) a.oom = 1;
    uint32_t lb = a.ntok;
    uint32_t ord = ix->nord;
    plumb_status rc = a.oom ? err_set(PLUMB_NOMEM, "lexical index") : PLUMB_OK;
    for (uint32_t i = 0; i < ix->sc_n; i++) {
        uint32_t id = ix->sc_touched[i];
        if (!rc) {
            term *t = &ix->terms[id];
            if (t->n >= t->cap) {
                /* cap == 0 with postings: they live in a loaded snapshot */
                uint32_t c = t->cap ? t->cap * 2 : t->n ? t->n * 2 : 4;
                post *p;
                if (!t->cap && t->n) {
                    if ((p = malloc(c * sizeof *p))) memcpy(p, t->p, t->n * sizeof *p);
                } else {
                    p = realloc(t->p, c * sizeof *p);
                }
                if (!p) rc = err_set(PLUMB_NOMEM, "lexical index");
                else { t->p = p; t->cap = c; }
            }
            if (!rc) {
                uint32_t ft = ix->sc_tft[id], fb = ix->sc_tfb[id];
                t->p[t->n++] = (post){ord, (uint16_t)(ft > 65535 ? 65535 : ft),
                                      (uint16_t)(fb > 65535 ? 65535 : fb)};
            }
        }
        ix->sc_tft[id] = ix->sc_tfb[id] = 0;
    }
    if (rc) {
        /* postings already appended for this ordinal are harmless only if
        ** the ordinal exists and is dead: record it so */
        ix->cid[ord] = cid;
        ix->lt[ord] = ix->lb[ord] = 0;
        ix->foff[ord] = UINT64_MAX;
        ix->nfwd = fstart;
        ix->dead[ord] = 1;
        ix->nord++;
        ix->ndead++;
        return rc;
    }
    ix->cid[ord] = cid;
    ix->lt[ord] = lt;
    ix->lb[ord] = lb;
    ix->dead[ord] = 0;
    if (a.fwd) ix->foff[ord] = fstart;
    else { ix->foff[ord] = UINT64_MAX; ix->nfwd = fstart; }
    ix->nord++;
    uint32_t s = cmap_slot(ix, cid);
    if (ix->cval[s]) { /* an id reused after its delete was applied: replace */
        uint32_t old = ix->cval[s] - 1;
        if (!ix->dead[old]) {
            ix->dead[old] = 1;
            ix->ndead++;
            ix->live--;
            ix->tot_t -= ix->lt[old];
            ix->tot_b -= ix->lb[old];
        }
    } else {
        ix->ncused++;
    }
    ix->ckey[s] = cid;
    ix->cval[s] = ord + 1;
    ix->live++;
    ix->tot_t += lt;
    ix->tot_b += lb;
    return PLUMB_OK;
}

static void del_chunk(bm25_index *ix, int64_t cid) {
    if (!ix->ncslot) return;
    uint32_t s = cmap_slot(ix, cid);
    if (!ix->cval[s]) return; /* added and deleted within one catch-up */
    uint32_t o = ix->cval[s] - 1;
    if (ix->dead[o]) return;
    ix->dead[o] = 1;
    ix->ndead++;
    ix->live--;
    ix->tot_t -= ix->lt[o];
    ix->tot_b -= ix->lb[o];
}

static void clear(bm25_index *ix) {
    for (uint32_t i = 0; i < ix->nterms; i++)
        if (ix->terms[i].cap) free(ix->terms[i].p);
    free(ix->block);
    free(ix->terms);
    free(ix->tslot);
    free(ix->arena);
    free(ix->cid);
    free(ix->lt);
    free(ix->lb);
    free(ix->dead);
    free(ix->ckey);
    free(ix->cval);
    free(ix->sc_tft);
    free(ix->sc_tfb);
    free(ix->sc_touched);
    free(ix->fwd);
    free(ix->foff);
    uint64_t fmax = ix->fwd_max;
    /* zero the contents only: the locks (held by the caller, watched by
    ** other threads), the side file's path and the index id stay */
    memset(&ix->built, 0, sizeof *ix - offsetof(bm25_index, built));
    ix->fwd_max = fmax;
}

bm25_index *bm25_new(const char *db_path, int64_t index_id) {
    bm25_index *ix = calloc(1, sizeof *ix);
    if (!ix) return NULL;
    if (pthread_rwlock_init(&ix->lock, NULL)) { free(ix); return NULL; }
    if (pthread_mutex_init(&ix->save_lock, NULL)) {
        pthread_rwlock_destroy(&ix->lock);
        free(ix);
        return NULL;
    }
    size_t n = strlen(db_path);
    if (!(ix->side_path = malloc(n + 6))) { bm25_free(ix); return NULL; }
    memcpy(ix->side_path, db_path, n);
    memcpy(ix->side_path + n, ".bm25", 6);
    ix->index_id = index_id;
    /* the forward index costs 4 bytes per token: keep it for collections
    ** up to 32M tokens (128 MB); beyond, the reranker tokenizes texts */
    const char *e = getenv("PLUMB_FWD_MAX");
    ix->fwd_max = e && *e ? strtoull(e, NULL, 10) : (uint64_t)32 << 20;
    return ix;
}

void bm25_free(bm25_index *ix) {
    if (!ix) return;
    clear(ix);
    free(ix->side_path);
    pthread_mutex_destroy(&ix->save_lock);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

/* Build from the chunks table at the reader's snapshot. */
static plumb_status rebuild(bm25_index *ix, reader *r, int64_t gen) {
    clear(ix);
    int src = 0;
    int64_t seq = store_scalar(r->conn, "SELECT coalesce(max(seq), 0) FROM lex_log", &src);
    if (src) return store_err(r->conn, src, "read lexical log");
    sqlite3_stmt *st = NULL;
    src = sqlite3_prepare_v2(r->conn,
                             "SELECT c.id, d.title, c.text FROM chunks c JOIN documents d "
                             "ON d.id = c.doc ORDER BY c.id", -1, &st, NULL);
    if (src) return store_err(r->conn, src, "build lexical index");
    plumb_status rc = PLUMB_OK;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = add_chunk(ix, r->tok, sqlite3_column_int64(st, 0),
                       (const char *)sqlite3_column_text(st, 1), sqlite3_column_bytes(st, 1),
                       (const char *)sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2));
        if (rc) break;
    }
    if (!rc && src != SQLITE_DONE) rc = store_err(r->conn, src, "build lexical index");
    sqlite3_finalize(st);
    if (rc) { clear(ix); return rc; }
    ix->built = 1;
    ix->log_seq = seq;
    ix->generation = gen;
    ix->applied = seq > 0 ? seq : 1; /* never saved: worth saving */
    return PLUMB_OK;
}

/* Apply log entries after ix->log_seq, through the reader's snapshot. */
static plumb_status catch_up(bm25_index *ix, reader *r, int64_t gen) {
    int src = 0;
    int64_t floor = store_scalar(r->conn, "SELECT coalesce(min(seq), 0) FROM lex_log", &src);
    if (src) return store_err(r->conn, src, "read lexical log");
    /* entries we need were truncated, or too many dead: start over */
    if ((floor > ix->log_seq + 1) || (ix->ndead > 1024 && ix->ndead > ix->nord / 4))
        return rebuild(ix, r, gen);
    sqlite3_stmt *lg = NULL, *ch = NULL;
    src = sqlite3_prepare_v2(r->conn, "SELECT seq, chunk, op FROM lex_log WHERE seq > ?1 "
                             "ORDER BY seq", -1, &lg, NULL);
    if (!src) src = sqlite3_prepare_v2(r->conn, "SELECT d.title, c.text FROM chunks c JOIN "
                                       "documents d ON d.id = c.doc WHERE c.id = ?1", -1, &ch,
                                       NULL);
    plumb_status rc = PLUMB_OK;
    if (src) { rc = store_err(r->conn, src, "catch up lexical index"); goto done; }
    sqlite3_bind_int64(lg, 1, ix->log_seq);
    int64_t last = ix->log_seq;
    while ((src = sqlite3_step(lg)) == SQLITE_ROW) {
        last = sqlite3_column_int64(lg, 0);
        int64_t cid = sqlite3_column_int64(lg, 1);
        int op = sqlite3_column_int(lg, 2);
        if (op < 0) { del_chunk(ix, cid); continue; }
        sqlite3_bind_int64(ch, 1, cid);
        int s2 = sqlite3_step(ch);
        if (s2 == SQLITE_ROW) {
            /* a chunk id seen twice in a row without a delete between is
            ** the same incarnation applied by an earlier rebuild: skip */
            uint32_t s = ix->ncslot ? cmap_slot(ix, cid) : 0;
            int have = ix->ncslot && ix->cval[s] && !ix->dead[ix->cval[s] - 1];
            if (!have)
                rc = add_chunk(ix, r->tok, cid, (const char *)sqlite3_column_text(ch, 0),
                               sqlite3_column_bytes(ch, 0),
                               (const char *)sqlite3_column_text(ch, 1),
                               sqlite3_column_bytes(ch, 1));
        } else if (s2 != SQLITE_DONE) {
            rc = store_err(r->conn, s2, "catch up lexical index");
        }
        /* SQLITE_DONE: deleted again later in this window; its -1 follows */
        sqlite3_reset(ch);
        if (rc) break;
    }
    if (!rc && src != SQLITE_DONE) rc = store_err(r->conn, src, "catch up lexical index");
    if (!rc) {
        ix->applied += last - ix->log_seq;
        ix->log_seq = last;
        ix->generation = gen;
    } else {
        ix->built = 0; /* half applied: rebuild next time */
    }
done:
    sqlite3_finalize(lg);
    sqlite3_finalize(ch);
    return rc;
}

static void load(bm25_index *ix, reader *r, int64_t gen);

plumb_status bm25_sync(bm25_index *ix, reader *r, int64_t gen) {
    for (;;) {
        pthread_rwlock_rdlock(&ix->lock);
        if (ix->built && ix->generation == gen) return PLUMB_OK; /* read lock held */
        int ahead = ix->built && ix->generation > gen;
        pthread_rwlock_unlock(&ix->lock);
        if (ahead) return PLUMB_BUSY; /* the caller takes a newer snapshot */
        pthread_rwlock_wrlock(&ix->lock);
        plumb_status rc = PLUMB_OK;
        if (!ix->built && ix->side_path) load(ix, r, gen); /* failure: rebuild */
        if (!ix->built) rc = rebuild(ix, r, gen);
        else if (ix->generation < gen) rc = catch_up(ix, r, gen);
        pthread_rwlock_unlock(&ix->lock);
        if (rc) return rc;
    }
}

void bm25_release(bm25_index *ix) { pthread_rwlock_unlock(&ix->lock); }


/* ---------------------------------------------------------------- */
/* Side file                                                          */
/* ---------------------------------------------------------------- */

/* On-disk layout, native byte order (the endian field rejects a file
** from another byte order), every section 8-byte aligned:
**   header | arena[narena] | sterm[nterms] | post[npost] |
**   cid[nord] (int64) | lt[nord] (u32) | lb[nord] (u32) | dead[nord] (u8) |
**   hasfwd[nord] (u8, 0 or 1) | fwd[nfwd] (u32 term ids)
** fwd is the forward lists of the ordinals with hasfwd 1, in ordinal
** order, lt + lb ids each: offsets follow from the lengths. It is last
** so that a loader can read it into its own array (or skip it) while the
** rest goes into one block. body_hash = hash64 of everything after the
** header. Version 1 had no forward lists (its loaders tokenized reranked
** chunks): it is ignored and rebuilt, like any other version. */
#define SIDE_MAGIC "PLMBBM25"
#define SIDE_VERSION 2

enum { S_ARENA, S_TERMS, S_POST, S_CID, S_LT, S_LB, S_DEAD, S_HASFWD, S_FWD, S_N };

typedef struct side_hdr {
    char magic[8];
    uint32_t version, endian;
    int64_t index_id, generation, log_seq;
    uint32_t nterms, nord;
    uint64_t npost, narena;
    int64_t live;
    double tot_t, tot_b;
    uint32_t ndead, pad;
    uint64_t nfwd; /* forward list ids */
    uint64_t body_hash;
} side_hdr;

typedef struct sterm {
    uint32_t off;
    uint16_t len, pad;
    uint32_t n, pad2;
} sterm;

static size_t al8(size_t x) { return (x + 7) & ~(size_t)7; }

/* Section offsets in the body, and its size. The counts come from a
** header that may be damaged: the caller compares total with the file's
** size before trusting any of it, and a 64-bit count that could not fit
** in `limit` bytes (the file's size) gives total SIZE_MAX, so that the
** sums below cannot wrap (nord and nterms are 32-bit). */
static void side_layout(const side_hdr *h, size_t limit, size_t off[S_N], size_t *total) {
    if (h->narena > limit || h->npost > limit / sizeof(post) || h->nfwd > limit / 4) {
        memset(off, 0, S_N * sizeof *off);
        *total = SIZE_MAX;
        return;
    }
    size_t o = 0;
    off[S_ARENA] = o; o = al8(o + h->narena);
    off[S_TERMS] = o; o = al8(o + (size_t)h->nterms * sizeof(sterm));
    off[S_POST] = o; o = al8(o + (size_t)h->npost * sizeof(post));
    off[S_CID] = o; o = al8(o + (size_t)h->nord * 8);
    off[S_LT] = o; o = al8(o + (size_t)h->nord * 4);
    off[S_LB] = o; o = al8(o + (size_t)h->nord * 4);
    off[S_DEAD] = o; o = al8(o + h->nord);
    off[S_HASFWD] = o; o = al8(o + h->nord);
    off[S_FWD] = o; o = al8(o + (size_t)h->nfwd * 4);
    *total = o;
}

/* Size of an open file, or SIZE_MAX when unknown (never matches). */
static size_t file_size(FILE *f) {
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 0) return SIZE_MAX;
    return (size_t)sb.st_size;
}

/* Why the side file cannot be used at generation gen, or NULL if it can
** (as far as its header and checksum tell). *benign is set when that is
** no damage: a file an older plumb wrote, which the next plumb index
** replaces. */
static const char *side_problem(const bm25_index *ix, int64_t gen, char *buf_, size_t n,
                                int *benign) {
    *benign = 0;
    FILE *f = fopen(ix->side_path, "rb");
    if (!f) return "absent";
    side_hdr h;
    const char *why = NULL;
    char *body = NULL;
    if (fread(&h, sizeof h, 1, f) != 1) why = "truncated header";
    else if (memcmp(h.magic, SIDE_MAGIC, 8) || h.endian != 0x01020304u) why = "not a BM25 side file";
    else if (h.version < SIDE_VERSION) {
        snprintf(buf_, n, "version %u, from an older plumb: ignored (searches build the index "
                 "from the chunks table) until plumb index rewrites it", h.version);
        why = buf_;
        *benign = 1;
    } else if (h.version != SIDE_VERSION) why = "unknown side file version";
    else if (h.index_id != ix->index_id) why = "belongs to another index (index id differs)";
    else if (h.generation > gen) {
        snprintf(buf_, n, "generation %lld is newer than the database's %lld",
                 (long long)h.generation, (long long)gen);
        why = buf_;
    } else {
        size_t off[S_N], total;
        side_layout(&h, file_size(f), off, &total);
        /* hashed in 64 KB reads: checking a side file needs no copy of it */
        enum { BUF = 1 << 16 };
        hash64_state hs;
        hash64_begin(&hs, total, 0);
        if (total != file_size(f) - sizeof h)
            why = "size does not match its header (truncated or damaged)";
        else if (!(body = malloc(BUF))) why = "out of memory reading it";
        for (size_t left = total; !why && left;) {
            size_t k = left < BUF ? left : BUF;
            if (fread(body, 1, k, f) != k) why = "truncated body";
            else { hash64_update(&hs, body, k); left -= k; }
        }
        if (!why && hash64_end(&hs) != h.body_hash) why = "checksum mismatch (damaged)";
    }
    free(body);
    fclose(f);
    return why;
}

/* Load the side file if it fits this database at a snapshot we can
** replay from; otherwise leave ix unbuilt. Never fails loudly: the side
** file is a cache. */
static void load(bm25_index *ix, reader *r, int64_t gen) {
    FILE *f = fopen(ix->side_path, "rb");
    if (!f) return;
    side_hdr h;
    char *body = NULL;
    uint32_t *fwd = NULL;
    int ok = fread(&h, sizeof h, 1, f) == 1 && !memcmp(h.magic, SIDE_MAGIC, 8) &&
             h.version == SIDE_VERSION && h.endian == 0x01020304u &&
             h.index_id == ix->index_id && h.generation <= gen && h.ndead <= h.nord;
    size_t off[S_N], total = 0, fsize = ok ? file_size(f) : 0;
    /* the forward lists are kept within PLUMB_FWD_MAX, as a build keeps them */
    int keep_fwd = ok && h.nfwd > 0 && h.nfwd <= ix->fwd_max;
    if (ok) {
        side_layout(&h, fsize, off, &total);
        /* the header's counts must account for the file exactly: a damaged
        ** header must not make us allocate (or read) what is not there.
        ** body: every section before the forward ids; the ids go to their
        ** own array, or through a small buffer to the hash only */
        hash64_state hs;
        hash64_begin(&hs, total, 0);
        size_t head = off[S_FWD];
        ok = total == fsize - sizeof h && (body = malloc(head ? head : 1)) &&
             fread(body, 1, head, f) == head;
        if (ok) hash64_update(&hs, body, head);
        size_t rest = total - head;
        if (ok && keep_fwd) {
            ok = (fwd = malloc(rest)) && fread(fwd, 1, rest, f) == rest;
            if (ok) hash64_update(&hs, fwd, rest);
        } else if (ok) {
            enum { BUF = 1 << 16 };
            char *tmp = malloc(BUF);
            ok = tmp != NULL;
            for (size_t k; ok && rest; rest -= k) {
                k = rest < BUF ? rest : BUF;
                ok = fread(tmp, 1, k, f) == k;
                if (ok) hash64_update(&hs, tmp, k);
            }
            free(tmp);
        }
        ok = ok && hash64_end(&hs) == h.body_hash;
    }
    fclose(f);
    if (ok) {
        int src = 0;
        int64_t floor = store_scalar(r->conn, "SELECT coalesce(min(seq), 0) FROM lex_log", &src);
        int64_t top = store_scalar(r->conn, "SELECT coalesce(max(seq), 0) FROM lex_log", &src);
        ok = !src && h.log_seq <= top && (floor == 0 || h.log_seq + 1 >= floor);
    }
    if (!ok) { free(body); free(fwd); return; }
    clear(ix);
    plumb_status rc = PLUMB_OK;
    ix->block = body;
    ix->nterms = ix->capterms = h.nterms;
    ix->narena = ix->caparena = h.narena;
    ix->nord = ix->capord = h.nord;
    ix->terms = calloc(h.nterms ? h.nterms : 1, sizeof *ix->terms);
    ix->arena = malloc(h.narena ? h.narena : 1);
    ix->cid = malloc((h.nord ? h.nord : 1) * sizeof *ix->cid);
    ix->lt = malloc((h.nord ? h.nord : 1) * sizeof *ix->lt);
    ix->lb = malloc((h.nord ? h.nord : 1) * sizeof *ix->lb);
    ix->dead = malloc(h.nord ? h.nord : 1);
    ix->foff = malloc((h.nord ? h.nord : 1) * sizeof *ix->foff);
    ix->fwd = fwd; /* clear() frees it from here on */
    ix->nfwd = ix->capfwd = keep_fwd ? h.nfwd : 0;
    if (!ix->terms || !ix->arena || !ix->cid || !ix->lt || !ix->lb || !ix->dead || !ix->foff)
        rc = PLUMB_NOMEM;
    if (!rc) {
        memcpy(ix->arena, body + off[S_ARENA], h.narena);
        const sterm *st = (const sterm *)(body + off[S_TERMS]);
        post *ps = (post *)(body + off[S_POST]);
        uint64_t used = 0;
        for (uint32_t i = 0; !rc && i < h.nterms; i++) {
            if ((uint64_t)st[i].off + st[i].len > h.narena || used + st[i].n > h.npost) {
                rc = PLUMB_CORRUPT;
                break;
            }
            ix->terms[i] = (term){ps + used, st[i].n, 0, st[i].off, st[i].len};
            for (uint32_t j = 0; j < st[i].n; j++)
                if (ps[used + j].ord >= h.nord) rc = PLUMB_CORRUPT;
            used += st[i].n;
        }
        if (used != h.npost) rc = PLUMB_CORRUPT;
        memcpy(ix->cid, body + off[S_CID], (size_t)h.nord * 8);
        memcpy(ix->lt, body + off[S_LT], (size_t)h.nord * 4);
        memcpy(ix->lb, body + off[S_LB], (size_t)h.nord * 4);
        memcpy(ix->dead, body + off[S_DEAD], h.nord);
    }
    /* forward lists: offsets from the lengths; they must use up the ids
    ** exactly, and every id must name a term */
    const uint8_t *has = (const uint8_t *)body + off[S_HASFWD];
    uint64_t at = 0;
    for (uint32_t o = 0; !rc && o < h.nord; o++) {
        if (has[o] > 1) { rc = PLUMB_CORRUPT; break; }
        ix->foff[o] = UINT64_MAX;
        if (!has[o] || !keep_fwd) continue;
        ix->foff[o] = at;
        at += (uint64_t)ix->lt[o] + ix->lb[o];
        if (at > h.nfwd) rc = PLUMB_CORRUPT;
    }
    if (!rc && at != ix->nfwd) rc = PLUMB_CORRUPT;
    for (uint64_t i = 0; !rc && i < ix->nfwd; i++)
        if (ix->fwd[i] >= h.nterms) rc = PLUMB_CORRUPT;
    if (!rc && h.nterms && grow_terms_table(ix)) rc = PLUMB_NOMEM;
    for (uint32_t o = 0; !rc && o < h.nord; o++) {
        if ((ix->ncused + 1) * 2 > ix->ncslot && cmap_grow(ix)) { rc = PLUMB_NOMEM; break; }
        uint32_t sl = cmap_slot(ix, ix->cid[o]);
        if (!ix->cval[sl]) ix->ncused++;
        else if (!ix->dead[o] && !ix->dead[ix->cval[sl] - 1]) rc = PLUMB_CORRUPT;
        if (!ix->cval[sl] || !ix->dead[o]) { ix->ckey[sl] = ix->cid[o]; ix->cval[sl] = o + 1; }
    }
    if (rc) { clear(ix); return; }
    ix->live = h.live;
    ix->tot_t = h.tot_t;
    ix->tot_b = h.tot_b;
    ix->ndead = h.ndead;
    ix->generation = h.generation;
    ix->log_seq = h.log_seq;
    ix->applied = 0;
    ix->built = 1;
}

/* Remove "<side>.tmp<pid>" files left by processes that died mid-save
** (a kill between create and rename); a live writer's file is kept. */
static void sweep_stale(const bm25_index *ix) {
    const char *slash = strrchr(ix->side_path, '/');
    const char *base = slash ? slash + 1 : ix->side_path;
    char dir[4096];
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - ix->side_path + 1), ix->side_path);
    else snprintf(dir, sizeof dir, "./");
    DIR *d = opendir(dir);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bl) || strncmp(e->d_name + bl, ".tmp", 4)) continue;
        char *end = NULL;
        long pid = strtol(e->d_name + bl + 4, &end, 10);
        if (!end || *end || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char p[4096 + 256];
        snprintf(p, sizeof p, "%s%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

/* Streaming writer for the side file body: appends through stdio and
** hashes what it appends, so the body never exists in memory as a whole.
** (It is about as large as the postings; assembling it in one buffer
** doubled the peak RSS of indexing.) The error is sticky: after a failed
** write every later put is a no-op, and the caller checks bad once. */
typedef struct side_out {
    FILE *f;
    hash64_state hs;
    uint64_t pos; /* body bytes appended so far */
    int bad;      /* a write failed (errno says why) */
} side_out;

static void side_put(side_out *o, const void *p, size_t n) {
    if (o->bad || !n) return; /* !n: an empty index has NULL arrays */
    if (store_write_all(o->f, p, n)) { o->bad = 1; return; }
    hash64_update(&o->hs, p, n);
    o->pos += n;
}

/* Zeros up to the next multiple of 8 (the layout's al8), then the
** position must be the section start the layout computed. */
static void side_align(side_out *o, size_t want) {
    static const char zero[8];
    side_put(o, zero, al8(o->pos) - o->pos);
    assert(o->bad || o->pos == want);
    (void)want;
}

/* Write the snapshot (caller holds at least the read lock), section by
** section straight from the in-memory arrays into "<side>.tmp<pid>";
** extra memory: a 16 KB sterm buffer, a 4 KB one and stdio's. The header is written
** first with body_hash 0 and rewritten in place once the hash is known.
** A crash at any point leaves the old side file (or none) under the real
** name: the new one is renamed in only when complete and synced. */
static plumb_status save(bm25_index *ix) {
    sweep_stale(ix);
    side_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SIDE_MAGIC, 8);
    h.version = SIDE_VERSION;
    h.endian = 0x01020304u;
    h.index_id = ix->index_id;
    h.generation = ix->generation;
    h.log_seq = ix->log_seq;
    h.nterms = ix->nterms;
    h.nord = ix->nord;
    h.narena = ix->narena;
    for (uint32_t i = 0; i < ix->nterms; i++) h.npost += ix->terms[i].n;
    h.live = ix->live;
    h.tot_t = ix->tot_t;
    h.tot_b = ix->tot_b;
    h.ndead = ix->ndead;
    h.nfwd = ix->nfwd;
    size_t off[S_N], total;
    side_layout(&h, SIZE_MAX, off, &total);
    size_t pl = strlen(ix->side_path);
    char *tmp = malloc(pl + 32);
    if (!tmp) return err_set(PLUMB_NOMEM, "save lexical index");
    snprintf(tmp, pl + 32, "%s.tmp%ld", ix->side_path, (long)getpid());
    plumb_status rc = PLUMB_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = err_set(PLUMB_IO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    side_out o = {f, {0}, 0, 0};
    hash64_begin(&o.hs, total, 0);
    /* placeholder header (body_hash 0): rewritten below */
    o.bad = store_write_all(f, &h, sizeof h);
    side_put(&o, ix->arena, ix->narena);
    side_align(&o, off[S_TERMS]);
    sterm st[1024];
    for (uint32_t i = 0; i < ix->nterms;) {
        uint32_t k = 0;
        for (; k < 1024 && i < ix->nterms; k++, i++) {
            const term *t = &ix->terms[i];
            st[k] = (sterm){t->off, t->len, 0, t->n, 0};
        }
        side_put(&o, st, (size_t)k * sizeof *st);
    }
    side_align(&o, off[S_POST]);
    for (uint32_t i = 0; i < ix->nterms; i++)
        side_put(&o, ix->terms[i].p, (size_t)ix->terms[i].n * sizeof(post));
    side_align(&o, off[S_CID]);
    side_put(&o, ix->cid, (size_t)ix->nord * 8);
    side_align(&o, off[S_LT]);
    side_put(&o, ix->lt, (size_t)ix->nord * 4);
    side_align(&o, off[S_LB]);
    side_put(&o, ix->lb, (size_t)ix->nord * 4);
    side_align(&o, off[S_DEAD]);
    side_put(&o, ix->dead, ix->nord);
    side_align(&o, off[S_HASFWD]);
    /* fwd holds the lists of the ordinals that have one, in ordinal
    ** order and nothing else (add_chunk rolls back a partial list) */
    uint8_t has[4096];
    for (uint32_t i = 0; i < ix->nord;) {
        uint32_t k = 0;
        for (; k < sizeof has && i < ix->nord; k++, i++) has[k] = ix->foff[i] != UINT64_MAX;
        side_put(&o, has, k);
    }
    side_align(&o, off[S_FWD]);
    side_put(&o, ix->fwd, (size_t)ix->nfwd * 4);
    side_align(&o, total);
    int bad = o.bad;
    if (!bad) {
        h.body_hash = hash64_end(&o.hs);
        bad = fflush(f) != 0 || pwrite(fileno(f), &h, sizeof h, 0) != (ssize_t)sizeof h;
    }
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad) rc = err_set(PLUMB_IO, "%s: %s", tmp, strerror(errno));
    else if (rename(tmp, ix->side_path) != 0)
        rc = err_set(PLUMB_IO, "rename %s: %s", ix->side_path, strerror(errno));
    if (rc) unlink(tmp);
    else store_fsync_dir(ix->side_path); /* make the rename itself durable */
done:
    free(tmp);
    if (!rc) ix->applied = 0;
    return rc;
}

/* Compare the handle's index (loaded and replayed) with one rebuilt from
** the chunks table at the same snapshot, and check the side file. */
plumb_status bm25_verify(plumb_db *db, void (*report)(void *, const char *, const char *),
                         void *arg, int64_t *problems) {
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    bm25_index *fresh = bm25_new(db->path, db->set.index_id);
    if (!fresh) { store_reader_put(db, r); return err_set(PLUMB_NOMEM, "check"); }
    char m[256], why_buf[192];
    for (int attempt = 0; attempt < 100; attempt++) {
        int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
        if (src) { rc = store_err(r->conn, src, "begin read"); break; }
        int64_t gen = store_scalar(r->conn, "SELECT value FROM settings WHERE key='generation'", &src);
        if (src) { rc = store_err(r->conn, src, "read generation"); sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL); break; }
        int benign;
        const char *why = side_problem(db->bm25, gen, why_buf, sizeof why_buf, &benign);
        if (why && strcmp(why, "absent")) {
            report(arg, "bm25 side file", why);
            *problems += !benign;
        }
        rc = bm25_sync(db->bm25, r, gen);
        if (rc == PLUMB_BUSY) { sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL); continue; }
        if (rc) { sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL); break; }
        rc = rebuild(fresh, r, gen);
        if (!rc) {
            const bm25_index *a = db->bm25, *b = fresh;
            if (a->live != b->live || a->tot_t != b->tot_t || a->tot_b != b->tot_b) {
                snprintf(m, sizeof m, "in-memory index has %lld chunks / %.0f+%.0f tokens, the "
                         "chunks table %lld / %.0f+%.0f", (long long)a->live, a->tot_t, a->tot_b,
                         (long long)b->live, b->tot_t, b->tot_b);
                report(arg, "bm25 index", m);
                (*problems)++;
            }
            /* every term's live postings: same chunks, same tfs */
            int64_t bad = 0;
            for (uint32_t i = 0; i < b->nterms && bad < 5; i++) {
                const term *tb = &b->terms[i];
                int64_t ia = term_find(a, b->arena + tb->off, tb->len);
                uint64_t ha = 0, hb = 0, na = 0, nb = 0;
                for (uint32_t j = 0; j < tb->n; j++) {
                    const post *p = &tb->p[j];
                    uint64_t x[2] = {(uint64_t)b->cid[p->ord], (uint64_t)p->tft << 16 | p->tfb};
                    hb += hash64(x, sizeof x, 0);
                    nb++;
                }
                if (ia >= 0)
                    for (uint32_t j = 0; j < a->terms[ia].n; j++) {
                        const post *p = &a->terms[ia].p[j];
                        if (a->dead[p->ord]) continue;
                        uint64_t x[2] = {(uint64_t)a->cid[p->ord], (uint64_t)p->tft << 16 | p->tfb};
                        ha += hash64(x, sizeof x, 0);
                        na++;
                    }
                if (ha != hb || na != nb) {
                    snprintf(m, sizeof m, "postings of term '%.*s' differ from the chunks table "
                             "(%llu vs %llu live)", (int)tb->len, b->arena + tb->off,
                             (unsigned long long)na, (unsigned long long)nb);
                    report(arg, "bm25 index", m);
                    bad++;
                }
            }
            *problems += bad;
            /* every forward list both keep (the reranker reads them; a
            ** loaded one comes from the side file) spells the chunk's
            ** terms as the chunks table does */
            bad = 0;
            for (uint32_t o = 0; o < b->nord && bad < 5; o++) {
                const uint32_t *fa, *fb;
                uint32_t ta, ba, tb, bb;
                if (!bm25_forward(b, b->cid[o], &fb, &tb, &bb) ||
                    !bm25_forward(a, b->cid[o], &fa, &ta, &ba))
                    continue;
                int same = ta == tb && ba == bb;
                for (uint32_t j = 0; same && j < ta + ba; j++) {
                    const term *x = &a->terms[fa[j]], *y = &b->terms[fb[j]];
                    same = x->len == y->len &&
                           !memcmp(a->arena + x->off, b->arena + y->off, x->len);
                }
                if (!same) {
                    snprintf(m, sizeof m, "forward list of chunk %lld differs from the chunks "
                             "table (%u+%u vs %u+%u terms)", (long long)b->cid[o], ta, ba, tb,
                             bb);
                    report(arg, "bm25 index", m);
                    bad++;
                }
            }
            *problems += bad;
            /* and FTS5's own counts of the same chunks */
            int64_t rows = store_scalar(r->conn, "SELECT count(*) FROM chunks_fts_docsize", &src);
            if (!src && rows != b->live) {
                snprintf(m, sizeof m, "FTS5 holds %lld rows, the chunks table %lld",
                         (long long)rows, (long long)b->live);
                report(arg, "fts5", m);
                (*problems)++;
            }
        }
        bm25_release(db->bm25);
        sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
        break;
    }
    bm25_free(fresh);
    store_reader_put(db, r);
    return rc;
}

int64_t bm25_applied_since_save(bm25_index *ix) {
    pthread_rwlock_rdlock(&ix->lock);
    int64_t a = ix->built ? ix->applied : 0;
    pthread_rwlock_unlock(&ix->lock);
    return a;
}

/* Below this many chunks a rebuild at the first search is about as fast
** as loading a snapshot (SciFact's 5,772 chunks rebuild in ~0.1 s), so no
** side file is written and indexing pays nothing for it. Environment
** PLUMB_BM25_SIDE_MIN_CHUNKS overrides (tests set 0). */
static int64_t side_min_chunks(void) {
    const char *e = getenv("PLUMB_BM25_SIDE_MIN_CHUNKS");
    return e && *e ? strtoll(e, NULL, 10) : 50000;
}

plumb_status bm25_persist(plumb_db *db) {
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    int64_t min_chunks = side_min_chunks();
    for (int attempt = 0; attempt < 100; attempt++) {
        int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
        if (src) { rc = store_err(r->conn, src, "begin read"); break; }
        int64_t gen = store_scalar(r->conn, "SELECT value FROM settings WHERE key='generation'", &src);
        int64_t chunks = store_scalar(r->conn, "SELECT count(*) FROM chunks", &src);
        if (src) rc = store_err(r->conn, src, "read generation");
        else if (chunks < min_chunks) { sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL); break; }
        else rc = bm25_sync(db->bm25, r, gen);
        if (rc == PLUMB_OK) {
            /* saving needs the index stable, not exclusive: the read lock.
            ** Rewrite only when the snapshot is missing or 5% behind:
            ** replaying a short log is cheaper than rewriting the file. */
            pthread_mutex_lock(&db->bm25->save_lock);
            if (db->bm25->applied > 0 && db->bm25->applied >= (int64_t)db->bm25->nord / 20)
                rc = save(db->bm25);
            pthread_mutex_unlock(&db->bm25->save_lock);
            bm25_release(db->bm25);
        }
        sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
        if (rc != PLUMB_BUSY) break;
    }
    store_reader_put(db, r);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Scoring                                                            */
/* ---------------------------------------------------------------- */

typedef struct qterm {
    uint32_t id;  /* index into ix->terms */
    double w;     /* query weight: multiplicity, or the expanded query's */
} qterm;

/* heap of the k best so far; the root is the worst of them */
static int worse(const lex_hit *a, const lex_hit *b) {
    return a->score < b->score || (a->score == b->score && a->rowid > b->rowid);
}

static void sift_down(lex_hit *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m])) m = l;
        if (r < n && worse(&h[r], &h[m])) m = r;
        if (m == i) return;
        lex_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int cmp_best(const void *a, const void *b) {
    const lex_hit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->rowid > y->rowid) - (x->rowid < y->rowid);
}

/* The distinct query terms the index knows, with multiplicity, into
** qt[max]; returns their count. */
static int query_terms(const bm25_index *ix, const lex_query *q, qterm *qt, int max) {
    int nq = 0;
    const char *p = q->terms.p;
    for (int i = 0; i < q->nterms; i++) {
        size_t l = strlen(p);
        int64_t id = term_find(ix, p, l);
        p += l + 1;
        if (id < 0) continue;
        int j = 0;
        while (j < nq && qt[j].id != (uint32_t)id) j++;
        if (j < nq) qt[j].w++;
        else if (nq < max) qt[nq++] = (qterm){(uint32_t)id, 1};
    }
    return nq;
}

static int scratch_fit(bm25_scratch *s, size_t nord) {
    if (s->cap >= nord) return 0;
    size_t c = nord + nord / 4 + 64;
    double *a = realloc(s->acc, c * sizeof *a);
    if (a) s->acc = a;
    uint32_t *t = a ? realloc(s->touched, c * sizeof *t) : NULL;
    if (t) s->touched = t;
    uint8_t *m = t ? realloc(s->mark, c) : NULL;
    if (m) s->mark = m;
    if (!m) return -1;
    memset(s->mark + s->cap, 0, c - s->cap);
    s->cap = c;
    return 0;
}

/* Exact BM25F top-k of a weighted term list. */
static plumb_status topk_terms(const bm25_index *ix, bm25_scratch *s, const qterm *qt, int nq,
                               double k1, double b, double wt, double wb, int k, lex_hit **out,
                               size_t *nout, int64_t *matched) {
    *out = NULL;
    *nout = 0;
    *matched = 0;
    if (!nq) return PLUMB_OK;
    if (scratch_fit(s, ix->nord)) return err_set(PLUMB_NOMEM, "search scratch");
    double N = (double)ix->live;
    double avg = (wt * ix->tot_t + wb * ix->tot_b) / N;
    if (!(avg > 0)) avg = 1;
    double c0 = k1 * (1 - b), c1 = k1 * b / avg;
    const uint8_t *dead = ix->dead;
    const uint32_t *lt = ix->lt, *lb = ix->lb;
    uint32_t nt = 0;
    for (int i = 0; i < nq; i++) {
        const term *tm = &ix->terms[qt[i].id];
        const post *ps = tm->p;
        uint32_t n = tm->n, df = 0;
        for (uint32_t j = 0; j < n; j++) df += !dead[ps[j].ord];
        if (!df) continue;
        double idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        double w = qt[i].w * idf * (k1 + 1);
        for (uint32_t j = 0; j < n; j++) {
            uint32_t o = ps[j].ord;
            if (dead[o]) continue;
            if (!s->mark[o]) { s->mark[o] = 1; s->acc[o] = 0; s->touched[nt++] = o; }
            double tf = wt * ps[j].tft + wb * ps[j].tfb;
            if (tf > 0) s->acc[o] += w * tf / (tf + c0 + c1 * (wt * lt[o] + wb * lb[o]));
        }
    }
    *matched = nt;
    size_t kk = (size_t)k < nt ? (size_t)k : nt;
    lex_hit *h = malloc((kk ? kk : 1) * sizeof *h);
    if (!h) {
        for (uint32_t i = 0; i < nt; i++) s->mark[s->touched[i]] = 0;
        return err_set(PLUMB_NOMEM, "search");
    }
    size_t n = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t o = s->touched[i];
        s->mark[o] = 0;
        lex_hit c = {ix->cid[o], s->acc[o]};
        if (n < kk) {
            h[n++] = c;
            if (n == kk)
                for (size_t j = kk / 2 + 1; j-- > 0;) sift_down(h, n, j);
        } else if (worse(&h[0], &c)) {
            h[0] = c;
            sift_down(h, n, 0);
        }
    }
    qsort(h, n, sizeof *h, cmp_best);
    *out = h;
    *nout = n;
    return PLUMB_OK;
}

plumb_status bm25_topk(const bm25_index *ix, bm25_scratch *s, const lex_query *q,
                       double k1, double b, double wt, double wb, int k, lex_hit **out,
                       size_t *nout, int64_t *matched) {
    *out = NULL;
    *nout = 0;
    *matched = 0;
    if (k <= 0 || q->nterms == 0 || ix->live == 0) return PLUMB_OK;
    qterm qt[256];
    int nq = query_terms(ix, q, qt, 256);
    return topk_terms(ix, s, qt, nq, k1, b, wt, wb, k, out, nout, matched);
}

static int cmp_qterm_w(const void *a, const void *b) {
    const qterm *x = a, *y = b;
    if (x->w != y->w) return x->w > y->w ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The expansion of RM3 (see plumb_impl.h) from the n feedback hits h
** (those without a forward list give no terms): e[t] = sum over them of
** P(D|Q) tf(t,D) / |D|,
** P(D|Q) = exp(score - best score), normalised; the `terms` heaviest
** into ex (sorted by weight, then id), normalised to sum 1. Returns
** their count: 0 when no hit has a forward list. */
static int rm3_expansion(const bm25_index *ix, bm25_scratch *s, const lex_hit *h, size_t n,
                         const bm25_rm3 *fb, int terms, const qterm *qt, int nq, qterm *ex,
                         plumb_status *rc) {
    /* terms in more chunks than this never join unless in the query */
    double max_df = fb->max_df < 1 ? fb->max_df * (double)ix->live : INFINITY;
    *rc = PLUMB_OK;
    if (s->tcap < ix->nterms) {
        size_t c = ix->nterms + ix->nterms / 4 + 64;
        double *a = realloc(s->tacc, c * sizeof *a);
        if (a) s->tacc = a;
        uint32_t *t = a ? realloc(s->ttouched, c * sizeof *t) : NULL;
        if (t) s->ttouched = t;
        if (!t) { *rc = err_set(PLUMB_NOMEM, "query expansion"); return 0; }
        for (size_t i = s->tcap; i < c; i++) s->tacc[i] = -1; /* -1: untouched */
        s->tcap = c;
    }
    double pz = 0;
    for (size_t i = 0; i < n; i++) pz += exp(h[i].score - h[0].score);
    uint32_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *ids;
        uint32_t lt, lb;
        if (!bm25_forward(ix, h[i].rowid, &ids, &lt, &lb) || !(lt + lb)) continue;
        double inc = exp(h[i].score - h[0].score) / pz / (lt + lb);
        for (uint32_t j = 0; j < lt + lb; j++) {
            uint32_t t = ids[j];
            if (s->tacc[t] < 0) { s->tacc[t] = 0; s->ttouched[nt++] = t; }
            s->tacc[t] += inc;
        }
    }
    /* the heaviest `terms` (insertion into a sorted array of at most 100) */
    int ne = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t t = s->ttouched[i];
        qterm e = {t, s->tacc[t]};
        s->tacc[t] = -1;
        if (ne == terms && cmp_qterm_w(&e, &ex[terms - 1]) >= 0) continue;
        if (ix->terms[t].n > max_df) {
            int j = 0;
            while (j < nq && qt[j].id != t) j++;
            if (j == nq) continue;
        }
        int j = ne < terms ? ne++ : terms - 1;
        while (j > 0 && cmp_qterm_w(&e, &ex[j - 1]) < 0) { ex[j] = ex[j - 1]; j--; }
        ex[j] = e;
    }
    double sum = 0;
    for (int i = 0; i < ne; i++) sum += ex[i].w;
    if (!(sum > 0)) return 0;
    for (int i = 0; i < ne; i++) ex[i].w /= sum;
    return ne;
}

plumb_status bm25_topk_rm3(const bm25_index *ix, bm25_scratch *s, const lex_query *q,
                           double k1, double b, double wt, double wb, int k,
                           const bm25_rm3 *fb, lex_hit **out, size_t *nout, int64_t *matched) {
    if (!fb || fb->docs <= 0 || fb->terms <= 0 || !(fb->orig < 1))
        return bm25_topk(ix, s, q, k1, b, wt, wb, k, out, nout, matched);
    *out = NULL;
    *nout = 0;
    *matched = 0;
    if (k <= 0 || q->nterms == 0 || ix->live == 0) return PLUMB_OK;
    enum { MAXQ = 256, MAXE = BM25_RM3_MAX_TERMS };
    qterm qt[MAXQ + MAXE], ex[MAXE];
    int nq = query_terms(ix, q, qt, MAXQ);
    /* the first pass ranks only the feedback hits (a prefix of any
    ** deeper ranking: the order is total) */
    lex_hit *h = NULL;
    size_t n = 0;
    plumb_status rc = topk_terms(ix, s, qt, nq, k1, b, wt, wb, fb->docs, &h, &n, matched);
    if (rc || !n) { free(h); return rc; }
    int terms = fb->terms < MAXE ? fb->terms : MAXE;
    int ne = rm3_expansion(ix, s, h, n, fb, terms, qt, nq, ex, &rc);
    free(h);
    if (rc) return rc;
    int64_t m2;
    if (!ne) /* no forward lists: the unexpanded query to depth k */
        return topk_terms(ix, s, qt, nq, k1, b, wt, wb, k, out, nout, &m2);
    /* orig * query / |query| + (1 - orig) * expansion, merged by term */
    double qs = 0;
    for (int i = 0; i < nq; i++) qs += qt[i].w;
    for (int i = 0; i < nq; i++) qt[i].w *= fb->orig / qs;
    int nm = nq;
    for (int i = 0; i < ne; i++) {
        int j = 0;
        while (j < nq && qt[j].id != ex[i].id) j++;
        if (j < nq) qt[j].w += (1 - fb->orig) * ex[i].w;
        else qt[nm++] = (qterm){ex[i].id, (1 - fb->orig) * ex[i].w};
    }
    return topk_terms(ix, s, qt, nm, k1, b, wt, wb, k, out, nout, &m2);
}

void bm25_scratch_free(bm25_scratch *s) {
    free(s->acc);
    free(s->touched);
    free(s->mark);
    free(s->tacc);
    free(s->ttouched);
    memset(s, 0, sizeof *s);
}

void bm25_info(bm25_index *ix, bm25_info_t *out) {
    pthread_rwlock_rdlock(&ix->lock);
    memset(out, 0, sizeof *out);
    out->built = ix->built;
    out->generation = ix->generation;
    out->terms = ix->nterms;
    out->ordinals = ix->nord;
    out->dead = ix->ndead;
    size_t bytes = ix->caparena + (size_t)ix->ntslot * 4 + (size_t)ix->capterms * sizeof(term) +
                   (size_t)ix->capord * 25 + (size_t)ix->ncslot * 12 +
                   (size_t)ix->capfwd * 4;
    for (uint32_t i = 0; i < ix->nterms; i++) {
        out->postings += ix->terms[i].n;
        bytes += (size_t)ix->terms[i].cap * sizeof(post);
    }
    out->bytes = (int64_t)bytes;
    pthread_rwlock_unlock(&ix->lock);
}

/* ---------------------------------------------------------------- */
/* Reranker support (rerank.c), under the read lock                  */
/* ---------------------------------------------------------------- */

int64_t bm25_term_id(const bm25_index *ix, const char *t, size_t n) {
    return term_find(ix, t, n);
}

void bm25_term_stats(const bm25_index *ix, uint32_t id, double *idf, double *pc) {
    const term *t = &ix->terms[id];
    uint32_t df = 0;
    double cf = 0;
    if (!pc && !ix->ndead) {
        df = t->n; /* no dead ordinal: every posting is live */
    } else {
        for (uint32_t j = 0; j < t->n; j++)
            if (!ix->dead[t->p[j].ord]) { df++; cf += t->p[j].tft + t->p[j].tfb; }
    }
    double N = (double)ix->live;
    *idf = df ? log(1.0 + (N - df + 0.5) / (df + 0.5)) : 0;
    if (pc) {
        double tot = ix->tot_t + ix->tot_b;
        *pc = tot > 0 ? (cf > 0 ? cf : 0.5) / tot : 0;
    }
}

void bm25_avg_lengths(const bm25_index *ix, double *avg_title, double *avg_body) {
    double N = ix->live > 0 ? (double)ix->live : 1;
    *avg_title = ix->tot_t / N;
    *avg_body = ix->tot_b / N;
}

int bm25_forward(const bm25_index *ix, int64_t cid, const uint32_t **ids, uint32_t *ntitle,
                 uint32_t *nbody) {
    *ids = NULL;
    *ntitle = *nbody = 0;
    if (!ix->ncslot) return 0;
    uint32_t s = cmap_slot(ix, cid);
    if (!ix->cval[s]) return 0;
    uint32_t o = ix->cval[s] - 1;
    if (ix->dead[o] || ix->foff[o] == UINT64_MAX) return 0;
    *ids = ix->fwd + ix->foff[o];
    *ntitle = ix->lt[o];
    *nbody = ix->lb[o];
    return 1;
}
