/*
** embed.c -- the embedders: the built-in LSA model learned from the
** collection, the HTTP provider, and the job that gives every chunk a
** vector (plumb_embed). Query embedding for search lives here too.
**
** HOW IT WORKS
**   Epochs. settings.vec_epoch names the embedder row in use. Starting an
**   epoch (first training, retraining, another HTTP model) is one
**   transaction: the new row, the setting, and the deletion of every old
**   vector. Embedding then fills in the chunks that have no vector, in
**   transactions of commit_every vectors; a crash or Ctrl-C keeps what
**   was committed and the next run continues (the missing chunks are the
**   to-do list, so there is no separate progress record to get wrong).
**
**   LSA. Training reads every chunk (title + text) through one read
**   snapshot, tokenized exactly as the lexical index is, keeps terms in
**   at least two chunks, weights them (1 + ln tf) * ln(N / df), and
**   trains lsa.c's randomized SVD. The model (vocabulary, idf, basis) is
**   stored in the embedder row. A chunk or a query becomes a vector by
**   the same fold-in, so a chunk embedded after a crash gets exactly the
**   vector it would have had.
**
**   Cache. Each handle keeps the model of one epoch in memory
**   (reference-counted: a search holds it while embedding its query,
**   a newer epoch replaces it without waiting).
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LSA_OVERSAMPLE 20
#define LSA_POWER 2
#define LSA_SEED 42

struct embed_model {
    _Atomic int refs;
    int64_t epoch;
    char kind[16];
    char model[128];
    int dim;
    int64_t trained_chunks, max_chunk; /* max_chunk: largest chunk id at training */
    /* lsa */
    uint32_t nterms;
    char *vocab;        /* NUL-terminated terms back to back */
    uint32_t *voff;     /* offset of each term */
    uint32_t *slot;     /* open addressing: term + 1 */
    uint32_t nslot;
    float *idf;
    lsa_model lsa;
    /* http */
    char url[512];
};

struct embed_cache {
    pthread_mutex_t lock;
    embed_model *cur;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t term_hash(const char *s, size_t n) { return hash64(s, n, 0x6c7361); }

/* ---------------------------------------------------------------- */
/* Models                                                             */
/* ---------------------------------------------------------------- */

static void model_free(embed_model *m) {
    if (!m) return;
    free(m->vocab);
    free(m->voff);
    free(m->slot);
    free(m->idf);
    lsa_model_free(&m->lsa);
    free(m);
}

void embed_model_put(embed_model *m) {
    if (m && --m->refs == 0) model_free(m);
}

static int64_t term_lookup(const embed_model *m, const char *t, size_t n) {
    if (!m->nslot) return -1;
    uint32_t s = (uint32_t)term_hash(t, n) & (m->nslot - 1);
    while (m->slot[s]) {
        uint32_t i = m->slot[s] - 1;
        const char *k = m->vocab + m->voff[i];
        if (strlen(k) == n && !memcmp(k, t, n)) return i;
        s = (s + 1) & (m->nslot - 1);
    }
    return -1;
}

static plumb_status index_vocab(embed_model *m, size_t vocab_bytes) {
    m->voff = malloc((m->nterms ? m->nterms : 1) * sizeof *m->voff);
    m->nslot = 16;
    while (m->nslot < m->nterms * 2) m->nslot *= 2;
    m->slot = calloc(m->nslot, sizeof *m->slot);
    if (!m->voff || !m->slot) return err_set(PLUMB_NOMEM, "embedder vocabulary");
    size_t off = 0;
    for (uint32_t i = 0; i < m->nterms; i++) {
        if (off >= vocab_bytes) return err_set(PLUMB_CORRUPT, "embedder vocabulary is truncated");
        m->voff[i] = (uint32_t)off;
        size_t n = strnlen(m->vocab + off, vocab_bytes - off);
        if (off + n >= vocab_bytes) return err_set(PLUMB_CORRUPT, "embedder vocabulary is truncated");
        uint32_t s = (uint32_t)term_hash(m->vocab + off, n) & (m->nslot - 1);
        while (m->slot[s]) s = (s + 1) & (m->nslot - 1);
        m->slot[s] = i + 1;
        off += n + 1;
    }
    return PLUMB_OK;
}

/* Read the embedder row of `epoch` through conn. */
static plumb_status model_load(sqlite3 *conn, int64_t epoch, embed_model **out) {
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(conn, "SELECT kind, model, dim, params, trained_chunks, vocab, "
                                 "idf, basis FROM embedder WHERE epoch = ?1", -1, &st, NULL);
    if (src) return store_err(conn, src, "read embedder");
    sqlite3_bind_int64(st, 1, epoch);
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        plumb_status rc = src == SQLITE_DONE
                              ? err_set(PLUMB_CORRUPT, "embedder epoch %lld is missing",
                                        (long long)epoch)
                              : store_err(conn, src, "read embedder");
        sqlite3_finalize(st);
        return rc;
    }
    plumb_status rc = PLUMB_OK;
    embed_model *m = calloc(1, sizeof *m);
    if (!m) { sqlite3_finalize(st); return err_set(PLUMB_NOMEM, "embedder"); }
    m->refs = 1;
    m->epoch = epoch;
    snprintf(m->kind, sizeof m->kind, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(m->model, sizeof m->model, "%s", (const char *)sqlite3_column_text(st, 1));
    m->dim = sqlite3_column_int(st, 2);
    m->trained_chunks = sqlite3_column_int64(st, 4);
    const char *params = (const char *)sqlite3_column_text(st, 3);
    const char *mc = params ? strstr(params, "\"max_chunk\":") : NULL;
    m->max_chunk = mc ? strtoll(mc + 12, NULL, 10) : 0;
    const char *u = params ? strstr(params, "\"url\":\"") : NULL;
    if (u) {
        u += 7;
        size_t n = strcspn(u, "\"");
        snprintf(m->url, sizeof m->url, "%.*s", (int)n, u);
    }
    if (m->dim < 1 || m->dim > 65536) rc = err_set(PLUMB_CORRUPT, "embedder dimension %d", m->dim);
    if (!rc && !strcmp(m->kind, "lsa")) {
        int vb = sqlite3_column_bytes(st, 5), ib = sqlite3_column_bytes(st, 6),
            bb = sqlite3_column_bytes(st, 7);
        const void *vp = sqlite3_column_blob(st, 5), *ip = sqlite3_column_blob(st, 6),
                   *bp = sqlite3_column_blob(st, 7);
        m->nterms = (uint32_t)(ib / 4);
        if (!vp || !ip || !bp || ib % 4 || (int64_t)bb != (int64_t)m->nterms * m->dim * 4)
            rc = err_set(PLUMB_CORRUPT, "LSA model of epoch %lld is damaged (sizes do not agree)",
                         (long long)epoch);
        if (!rc) {
            m->vocab = malloc((size_t)vb + 1);
            m->idf = malloc((size_t)ib + 4);
            m->lsa.basis = malloc((size_t)bb + 4);
            if (!m->vocab || !m->idf || !m->lsa.basis) rc = err_set(PLUMB_NOMEM, "embedder");
        }
        if (!rc) {
            memcpy(m->vocab, vp, (size_t)vb);
            m->vocab[vb] = 0;
            memcpy(m->idf, ip, (size_t)ib);
            memcpy(m->lsa.basis, bp, (size_t)bb);
            m->lsa.dim = m->dim;
            m->lsa.ncols = m->nterms;
            rc = index_vocab(m, (size_t)vb);
        }
    } else if (!rc && strcmp(m->kind, "http")) {
        rc = err_set(PLUMB_CORRUPT, "unknown embedder kind '%s'", m->kind);
    }
    sqlite3_finalize(st);
    if (rc) { model_free(m); return rc; }
    *out = m;
    return PLUMB_OK;
}

embed_cache *embed_cache_new(void) {
    embed_cache *c = calloc(1, sizeof *c);
    if (c) pthread_mutex_init(&c->lock, NULL);
    return c;
}

void embed_cache_free(embed_cache *c) {
    if (!c) return;
    embed_model_put(c->cur);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

plumb_status embed_model_get(plumb_db *db, sqlite3 *conn, int64_t epoch, embed_model **out) {
    embed_cache *c = db->emb;
    pthread_mutex_lock(&c->lock);
    if (c->cur && c->cur->epoch == epoch) {
        c->cur->refs++;
        *out = c->cur;
        pthread_mutex_unlock(&c->lock);
        return PLUMB_OK;
    }
    pthread_mutex_unlock(&c->lock);
    embed_model *m;
    plumb_status rc = model_load(conn, epoch, &m);
    if (rc) return rc;
    pthread_mutex_lock(&c->lock);
    if (!c->cur || c->cur->epoch < epoch) {
        embed_model_put(c->cur);
        c->cur = m;
        m->refs++;
    }
    pthread_mutex_unlock(&c->lock);
    *out = m;
    return PLUMB_OK;
}

int embed_model_dim(const embed_model *m) { return m->dim; }
const char *embed_model_kind(const embed_model *m) { return m->kind; }

/* ---------------------------------------------------------------- */
/* Bags of terms                                                      */
/* ---------------------------------------------------------------- */

typedef struct bag {
    const embed_model *m;   /* lookup in a model's vocabulary... */
    struct vocab *v;        /* ...or in a training vocabulary */
    uint32_t *t;
    float *w;
    size_t n, cap;
    int oom;
} bag;

/* Training vocabulary: every term seen, with its document frequency. */
typedef struct vocab {
    buf arena;
    uint32_t *off, *df, *last; /* last: the row that counted df last */
    uint32_t n, cap;
    uint32_t *slot;
    uint32_t nslot;
    uint32_t row;              /* the row being read */
} vocab;

static int64_t vocab_get(vocab *v, const char *t, size_t n) {
    if ((v->n + 1) * 2 > v->nslot) {
        uint32_t ns = v->nslot ? v->nslot * 2 : 4096;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl) return -1;
        for (uint32_t i = 0; i < v->n; i++) {
            const char *k = v->arena.p + v->off[i];
            uint32_t s = (uint32_t)term_hash(k, strlen(k)) & (ns - 1);
            while (sl[s]) s = (s + 1) & (ns - 1);
            sl[s] = i + 1;
        }
        free(v->slot);
        v->slot = sl;
        v->nslot = ns;
    }
    uint32_t s = (uint32_t)term_hash(t, n) & (v->nslot - 1);
    while (v->slot[s]) {
        uint32_t i = v->slot[s] - 1;
        const char *k = v->arena.p + v->off[i];
        if (strlen(k) == n && !memcmp(k, t, n)) return i;
        s = (s + 1) & (v->nslot - 1);
    }
    if (v->n == v->cap) {
        uint32_t nc = v->cap ? v->cap * 2 : 4096;
        uint32_t *o = realloc(v->off, nc * sizeof *o);
        if (o) v->off = o;
        uint32_t *d = realloc(v->df, nc * sizeof *d);
        if (d) v->df = d;
        uint32_t *l = realloc(v->last, nc * sizeof *l);
        if (l) v->last = l;
        if (!o || !d || !l) return -1;
        v->cap = nc;
    }
    v->off[v->n] = (uint32_t)v->arena.len;
    buf_append(&v->arena, t, n);
    buf_putc(&v->arena, 0);
    if (v->arena.oom) return -1;
    v->df[v->n] = 0;
    v->last[v->n] = UINT32_MAX;
    v->slot[s] = v->n + 1;
    return v->n++;
}

static int bag_tok(void *arg, const char *term, int n, int start, int end) {
    (void)start, (void)end;
    bag *b = arg;
    int64_t t = b->m ? term_lookup(b->m, term, (size_t)n) : vocab_get(b->v, term, (size_t)n);
    if (t < 0) {
        if (b->m) return 0; /* a term the model never saw */
        b->oom = 1;
        return 1;
    }
    for (size_t i = b->n; i-- > 0;) /* recent terms repeat most */
        if (b->t[i] == (uint32_t)t) { b->w[i] += 1; return 0; }
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        uint32_t *tt = realloc(b->t, nc * sizeof *tt);
        if (tt) b->t = tt;
        float *ww = realloc(b->w, nc * sizeof *ww);
        if (ww) b->w = ww;
        if (!tt || !ww) { b->oom = 1; return 1; }
        b->cap = nc;
    }
    b->t[b->n] = (uint32_t)t;
    b->w[b->n++] = 1;
    if (b->v) {
        vocab *v = b->v;
        if (v->last[t] != v->row) { v->last[t] = v->row; v->df[t]++; }
    }
    return 0;
}

/* Fill b with the terms of title + text (b->n reset first). */
static int bag_fill(bag *b, tok_ctx *tok, const char *title, int tn, const char *text, int xn) {
    b->n = 0;
    b->oom = 0;
    if (tn > 0 && tok_run(tok, title, tn, bag_tok, b) < 0) return -1;
    if (xn > 0 && tok_run(tok, text, xn, bag_tok, b) < 0) return -1;
    return b->oom ? -1 : 0;
}

/* LSA vector of a bag of model terms; returns 0 when no term is known
** (out is then all zero). */
static int lsa_embed_bag(const embed_model *m, bag *b, float *out) {
    for (size_t i = 0; i < b->n; i++) b->w[i] = (1.0f + logf(b->w[i])) * m->idf[b->t[i]];
    lsa_fold(&m->lsa, b->t, b->w, b->n, out);
    for (int k = 0; k < m->dim; k++)
        if (out[k] != 0) return 1;
    return 0;
}

plumb_status embed_query(const embed_model *m, tok_ctx *tok, const char *query, float *out,
                         int *usable) {
    *usable = 0;
    if (!strcmp(m->kind, "lsa")) {
        bag b = {0};
        b.m = m;
        int n = (int)strlen(query);
        if (bag_fill(&b, tok, NULL, 0, query, n)) {
            free(b.t);
            free(b.w);
            return err_set(PLUMB_NOMEM, "embed query");
        }
        *usable = lsa_embed_bag(m, &b, out);
        free(b.t);
        free(b.w);
        return PLUMB_OK;
    }
    return embed_http_query(m->url, m->model, m->dim, query, out, usable);
}

/* ---------------------------------------------------------------- */
/* Training                                                           */
/* ---------------------------------------------------------------- */

typedef struct trained {
    char *vocab;
    size_t vocab_bytes;
    uint32_t nterms;
    float *idf;
    lsa_model lsa;
    int64_t rows, max_chunk;
    int dim;
} trained;

static void trained_free(trained *t) {
    free(t->vocab);
    free(t->idf);
    lsa_model_free(&t->lsa);
}

/* Read every chunk through one snapshot of conn and train. */
static plumb_status lsa_learn(plumb_db *db, sqlite3 *conn, const plumb_embed_params *p,
                              trained *out) {
    memset(out, 0, sizeof *out);
    vocab v = {0};
    bag b = {0};
    b.v = &v;
    /* rows as (term, count) lists kept compactly until idf is known */
    uint32_t *rt = NULL;
    float *rw = NULL;
    uint64_t *rp = NULL;
    size_t nnz = 0, capnz = 0, nrows = 0, caprows = 0;
    plumb_status rc = PLUMB_OK;
    sqlite3_stmt *st = NULL;
    int64_t total = 0, max_chunk = 0;
    int src = sqlite3_exec(conn, "BEGIN", NULL, NULL, NULL);
    if (!src) src = sqlite3_prepare_v2(conn, "SELECT count(*), coalesce(max(id), 0) FROM chunks",
                                       -1, &st, NULL);
    if (!src && sqlite3_step(st) == SQLITE_ROW) {
        total = sqlite3_column_int64(st, 0);
        max_chunk = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!src) src = sqlite3_prepare_v2(conn, "SELECT d.title, c.text FROM chunks c JOIN "
                                       "documents d ON d.id = c.doc ORDER BY c.id", -1, &st, NULL);
    if (src) { rc = store_err(conn, src, "read chunks for training"); goto done; }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        v.row = (uint32_t)nrows;
        if (bag_fill(&b, db->wtok, (const char *)sqlite3_column_text(st, 0),
                     sqlite3_column_bytes(st, 0), (const char *)sqlite3_column_text(st, 1),
                     sqlite3_column_bytes(st, 1))) {
            rc = err_set(PLUMB_NOMEM, "training vocabulary");
            goto done;
        }
        if (nrows + 2 > caprows) {
            size_t nc = caprows ? caprows * 2 : 4096;
            uint64_t *x = realloc(rp, nc * sizeof *x);
            if (!x) { rc = err_set(PLUMB_NOMEM, "training"); goto done; }
            rp = x;
            caprows = nc;
        }
        if (nnz + b.n > capnz) {
            size_t nc = capnz ? capnz * 2 : 65536;
            while (nc < nnz + b.n) nc *= 2;
            uint32_t *x = realloc(rt, nc * sizeof *x);
            if (x) rt = x;
            float *y = realloc(rw, nc * sizeof *y);
            if (y) rw = y;
            if (!x || !y) { rc = err_set(PLUMB_NOMEM, "training: %zu MB", nc * 8 >> 20); goto done; }
            capnz = nc;
        }
        if (!nrows) rp[0] = 0;
        memcpy(rt + nnz, b.t, b.n * sizeof *rt);
        memcpy(rw + nnz, b.w, b.n * sizeof *rw);
        nnz += b.n;
        rp[++nrows] = nnz;
        if (p->progress && nrows % 4096 == 0) p->progress(p->arg, "read", (int64_t)nrows, total);
        if (p->cancel && *p->cancel) { rc = err_set(PLUMB_CANCELLED, "training cancelled"); goto done; }
    }
    if (src != SQLITE_DONE) { rc = store_err(conn, src, "read chunks for training"); goto done; }
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_exec(conn, "COMMIT", NULL, NULL, NULL);

    /* keep terms in >= 2 chunks; renumber them */
    uint32_t *map = malloc((v.n ? v.n : 1) * sizeof *map);
    if (!map) { rc = err_set(PLUMB_NOMEM, "training"); goto done; }
    uint32_t kept = 0;
    buf vb = {0};
    for (uint32_t i = 0; i < v.n; i++) {
        if (v.df[i] >= 2 || nrows < 8) {
            map[i] = kept++;
            buf_puts(&vb, v.arena.p + v.off[i]);
            buf_putc(&vb, 0);
        } else {
            map[i] = UINT32_MAX;
        }
    }
    float *idf = malloc((kept ? kept : 1) * sizeof *idf);
    if (!idf || vb.oom) { free(map); free(idf); buf_free(&vb); rc = err_set(PLUMB_NOMEM, "training"); goto done; }
    for (uint32_t i = 0; i < v.n; i++)
        if (map[i] != UINT32_MAX) idf[map[i]] = (float)log((double)nrows / v.df[i]);
    /* weight, renumber and normalise rows in place (dropping pruned terms) */
    size_t w = 0;
    for (size_t r = 0; r < nrows; r++) {
        size_t a = rp[r], e = rp[r + 1], w0 = w;
        double norm = 0;
        for (size_t i = a; i < e; i++) {
            uint32_t t = map[rt[i]];
            if (t == UINT32_MAX) continue;
            float x = (1.0f + logf(rw[i])) * idf[t];
            rt[w] = t;
            rw[w++] = x;
            norm += (double)x * x;
        }
        float inv = norm > 0 ? (float)(1 / sqrt(norm)) : 0;
        for (size_t i = w0; i < w; i++) rw[i] *= inv;
        rp[r] = w0;
    }
    rp[nrows] = w;
    free(map);
    /* columns must ascend within a row for lsa.c's transpose: sort each */
    for (size_t r = 0; r < nrows; r++)
        for (size_t i = rp[r] + 1; i < rp[r + 1]; i++)
            for (size_t j = i; j > rp[r] && rt[j] < rt[j - 1]; j--) {
                uint32_t tt = rt[j]; rt[j] = rt[j - 1]; rt[j - 1] = tt;
                float ww = rw[j]; rw[j] = rw[j - 1]; rw[j - 1] = ww;
            }
    int dim = p->dim > 0 ? p->dim : 256;
    int over = LSA_OVERSAMPLE;
    int lim = (int)((nrows < kept ? nrows : kept) > (size_t)INT32_MAX ? INT32_MAX
                                                                      : (nrows < kept ? nrows : kept));
    if (dim + over > lim) {
        dim = lim / 2;
        over = lim - dim > LSA_OVERSAMPLE ? LSA_OVERSAMPLE : lim - dim;
    }
    if (dim < 2) {
        free(idf);
        buf_free(&vb);
        rc = err_set(PLUMB_MISUSE, "too few chunks or terms to train the built-in embedder "
                     "(%zu chunks, %u terms in two or more)", nrows, kept);
        goto done;
    }
    if (p->progress) p->progress(p->arg, "train", 0, (int64_t)nrows);
    lsa_csr A = {(uint32_t)nrows, kept, rp, rt, rw};
    rc = lsa_train(&A, dim, over, LSA_POWER, LSA_SEED, &out->lsa);
    if (rc) { free(idf); buf_free(&vb); goto done; }
    if (p->progress) p->progress(p->arg, "train", (int64_t)nrows, (int64_t)nrows);
    out->vocab_bytes = vb.len;
    out->vocab = buf_detach(&vb);
    out->nterms = kept;
    out->idf = idf;
    out->rows = (int64_t)nrows;
    out->max_chunk = max_chunk;
    out->dim = dim;
done:
    if (st) sqlite3_finalize(st);
    if (rc) sqlite3_exec(conn, "ROLLBACK", NULL, NULL, NULL);
    free(rt);
    free(rw);
    free(rp);
    free(b.t);
    free(b.w);
    buf_free(&v.arena);
    free(v.off);
    free(v.df);
    free(v.last);
    free(v.slot);
    return rc;
}

/* ---------------------------------------------------------------- */
/* The job                                                            */
/* ---------------------------------------------------------------- */

void plumb_embed_params_init(plumb_embed_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->dim = 256;
    p->min_chunks = 64;
    p->batch = 64;
    p->concurrency = 4;
    p->timeout_ms = 60000;
    p->commit_every = 2000;
}

static void say(const plumb_embed_params *p, plumb_msg_level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const plumb_embed_params *p, plumb_msg_level lv, const char *fmt, ...) {
    if (!p->message) return;
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    p->message(p->arg, lv, m);
}

/* Start a new epoch with the given row (caller holds wlock, no txn open). */
static plumb_status new_epoch(plumb_db *db, const char *kind, const char *model, int dim,
                              const char *params, int64_t trained_chunks, const trained *t,
                              int64_t *epoch_out) {
    plumb_status rc = store_begin(db);
    if (rc) return rc;
    int src = 0;
    int64_t epoch = store_scalar(db->w, "SELECT coalesce(max(epoch), 0) + 1 FROM embedder", &src);
    sqlite3_stmt *st = NULL;
    if (!src) src = sqlite3_exec(db->w, "DELETE FROM embedder; DELETE FROM vectors; "
                                        "DELETE FROM vec_log;", NULL, NULL, NULL);
    if (!src) src = sqlite3_prepare_v2(db->w, "INSERT INTO embedder(epoch, kind, model, dim, "
                                       "params, trained_chunks, created_at, vocab, idf, basis) "
                                       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)", -1, &st, NULL);
    if (!src) {
        sqlite3_bind_int64(st, 1, epoch);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, dim);
        sqlite3_bind_text(st, 5, params, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, trained_chunks);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
        if (t) {
            sqlite3_bind_blob64(st, 8, t->vocab, t->vocab_bytes, SQLITE_STATIC);
            sqlite3_bind_blob64(st, 9, t->idf, (sqlite3_uint64)t->nterms * 4, SQLITE_STATIC);
            sqlite3_bind_blob64(st, 10, t->lsa.basis, (sqlite3_uint64)t->nterms * t->dim * 4,
                                SQLITE_STATIC);
        }
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) src = 0;
        sqlite3_finalize(st);
    }
    if (!src) {
        char sql[160];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO settings(key, value) "
                 "VALUES('vec_epoch', %lld)", (long long)epoch);
        src = sqlite3_exec(db->w, sql, NULL, NULL, NULL);
    }
    if (src) {
        rc = store_err(db->w, src, "start a new embedder epoch");
        store_rollback(db);
        return rc;
    }
    db->dirty = 1;
    rc = store_commit(db);
    if (!rc) *epoch_out = epoch;
    return rc;
}

/* Embed chunks without a vector, commit_every per transaction. */
static plumb_status fill_missing(plumb_db *db, const embed_model *m, const plumb_embed_params *p,
                                 plumb_embed_stats *st) {
    int src = 0;
    int64_t todo = store_scalar(db->w, "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk FROM "
                      "vectors)", &src);
    if (src) return store_err(db->w, src, "count chunks without vectors");
    sqlite3_stmt *sel = NULL, *ins = NULL;
    plumb_status rc = PLUMB_OK;
    int batch = p->commit_every > 0 ? p->commit_every : 2000;
    float *x = malloc((size_t)m->dim * batch * sizeof *x);
    int64_t *ids = malloc((size_t)batch * sizeof *ids);
    char **texts = calloc((size_t)batch, sizeof *texts);
    bag b = {0};
    b.m = m;
    int is_lsa = !strcmp(m->kind, "lsa");
    if (!x || !ids || !texts) { rc = err_set(PLUMB_NOMEM, "embed"); goto done; }
    src = sqlite3_prepare_v2(db->w, "SELECT c.id, d.title, c.text FROM chunks c JOIN documents d "
                             "ON d.id = c.doc WHERE c.id > ?1 AND c.id NOT IN (SELECT chunk FROM "
                             "vectors) ORDER BY c.id LIMIT ?2", -1, &sel, NULL);
    if (!src) src = sqlite3_prepare_v2(db->w, "INSERT INTO vectors(chunk, v) VALUES(?1, ?2)",
                                       -1, &ins, NULL);
    if (src) { rc = store_err(db->w, src, "embed"); goto done; }
    int64_t after = 0, done_n = 0, empty = 0;
    if (p->progress) p->progress(p->arg, "embed", 0, todo);
    for (;;) {
        if (p->cancel && *p->cancel) { rc = err_set(PLUMB_CANCELLED, "embedding cancelled after "
                                                    "%lld vectors (committed)", (long long)done_n);
            break; }
        /* read a batch (outside a write transaction: another process may write) */
        sqlite3_bind_int64(sel, 1, after);
        sqlite3_bind_int(sel, 2, batch);
        int nb = 0;
        while (!rc && (src = sqlite3_step(sel)) == SQLITE_ROW) {
            ids[nb] = sqlite3_column_int64(sel, 0);
            float *o = x + (size_t)nb * m->dim;
            if (is_lsa) {
                if (bag_fill(&b, db->wtok, (const char *)sqlite3_column_text(sel, 1),
                             sqlite3_column_bytes(sel, 1), (const char *)sqlite3_column_text(sel, 2),
                             sqlite3_column_bytes(sel, 2)))
                    rc = err_set(PLUMB_NOMEM, "embed");
                else if (!lsa_embed_bag(m, &b, o)) empty++;
            } else {
                const char *ti = (const char *)sqlite3_column_text(sel, 1);
                const char *tx = (const char *)sqlite3_column_text(sel, 2);
                size_t n1 = ti ? strlen(ti) : 0, n2 = tx ? strlen(tx) : 0;
                free(texts[nb]);
                texts[nb] = malloc(n1 + n2 + 3);
                if (!texts[nb]) rc = err_set(PLUMB_NOMEM, "embed");
                else snprintf(texts[nb], n1 + n2 + 3, "%s%s%s", n1 ? ti : "", n1 ? "\n\n" : "",
                              tx ? tx : "");
            }
            nb++;
        }
        if (!rc && src != SQLITE_DONE) rc = store_err(db->w, src, "embed");
        sqlite3_reset(sel);
        if (rc || nb == 0) break;
        after = ids[nb - 1];
        if (!is_lsa) rc = embed_http_batch(m->url, m->model, m->dim, p, (const char *const *)texts,
                                           (size_t)nb, x);
        if (rc) break;
        if ((rc = store_begin(db))) break;
        for (int i = 0; !rc && i < nb; i++) {
            sqlite3_bind_int64(ins, 1, ids[i]);
            sqlite3_bind_blob(ins, 2, x + (size_t)i * m->dim, m->dim * 4, SQLITE_STATIC);
            src = sqlite3_step(ins);
            /* a chunk deleted meanwhile by another process: its vector is not wanted */
            if (src != SQLITE_DONE && src != SQLITE_CONSTRAINT_PRIMARYKEY)
                rc = store_err(db->w, src, "store vector");
            sqlite3_reset(ins);
        }
        if (!rc) {
            sqlite3_stmt *orph = NULL;
            if (sqlite3_prepare_v2(db->w, "DELETE FROM vectors WHERE chunk > ?1 - ?2 AND chunk <= ?1 "
                                   "AND chunk NOT IN (SELECT id FROM chunks)", -1, &orph, NULL) == 0) {
                sqlite3_bind_int64(orph, 1, after);
                sqlite3_bind_int64(orph, 2, after - ids[0] + 1);
                sqlite3_step(orph);
            }
            sqlite3_finalize(orph);
            db->dirty = 1;
            rc = store_commit(db);
        } else {
            store_rollback(db);
        }
        if (rc) break;
        done_n += nb;
        if (st) st->embedded = done_n;
        if (p->progress) p->progress(p->arg, "embed", done_n, todo);
    }
    if (empty) say(p, PLUMB_MSG_INFO, "%lld chunks have no term the embedder knows: their vectors "
                   "are zero and dense search never returns them", (long long)empty);
done:
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    if (texts) for (int i = 0; i < batch; i++) free(texts[i]);
    free(texts);
    free(x);
    free(ids);
    free(b.t);
    free(b.w);
    return rc;
}

plumb_status embed_run(plumb_db *db, const plumb_embed_params *p, plumb_embed_stats *st) {
    int src = 0;
    int64_t epoch = store_scalar(db->w, "SELECT coalesce((SELECT value FROM settings WHERE key = "
                       "'vec_epoch'), 0)", &src);
    int64_t chunks = store_scalar(db->w, "SELECT count(*) FROM chunks", &src);
    if (src) return store_err(db->w, src, "read embedder state");
    embed_model *cur = NULL;
    plumb_status rc = PLUMB_OK;
    if (epoch > 0 && (rc = model_load(db->w, epoch, &cur))) return rc;
    const char *want = p->embedder && *p->embedder ? p->embedder : cur ? cur->kind : "lsa";
    if (strcmp(want, "lsa") && strcmp(want, "http")) {
        embed_model_put(cur);
        return err_set(PLUMB_MISUSE, "unknown embedder '%s' (lsa or http)", want);
    }
    int start = p->retrain || !cur;
    if (cur && !start && strcmp(cur->kind, want)) {
        rc = err_set(PLUMB_MISUSE, "the index's vectors come from embedder '%s' (%s, %d "
                     "dimensions), not '%s': re-embed with retrain to switch", cur->kind,
                     cur->model, cur->dim, want);
        embed_model_put(cur);
        return rc;
    }
    if (cur && !start && !strcmp(want, "http") && p->model && *p->model &&
        strcmp(p->model, cur->model)) {
        rc = err_set(PLUMB_MISUSE, "the index's vectors come from model '%s' (%d dimensions), "
                     "not '%s': re-embed with retrain to switch", cur->model, cur->dim, p->model);
        embed_model_put(cur);
        return rc;
    }
    if (cur && !start && !strcmp(want, "lsa")) {
        sqlite3_stmt *s2 = NULL;
        int64_t added = 0;
        if (!sqlite3_prepare_v2(db->w, "SELECT count(*) FROM chunks WHERE id > ?1", -1, &s2, NULL)) {
            sqlite3_bind_int64(s2, 1, cur->max_chunk);
            if (sqlite3_step(s2) == SQLITE_ROW) added = sqlite3_column_int64(s2, 0);
        }
        sqlite3_finalize(s2);
        if (added > cur->trained_chunks && chunks >= p->min_chunks) {
            say(p, PLUMB_MSG_INFO, "the collection has grown from %lld to %lld chunks since the "
                "embedder was trained: training it again", (long long)cur->trained_chunks,
                (long long)chunks);
            start = 1;
        }
    }
    if (start) {
        if (!strcmp(want, "lsa")) {
            if (chunks < (p->min_chunks > 0 ? p->min_chunks : 1)) {
                say(p, PLUMB_MSG_INFO, "%lld chunks are too few to train the built-in embedder "
                    "(%d needed): dense search stays off", (long long)chunks, p->min_chunks);
                embed_model_put(cur);
                if (st) st->missing = cur ? 0 : chunks;
                return PLUMB_OK;
            }
            trained t;
            double tt = now_s();
            rc = lsa_learn(db, db->w, p, &t);
            if (rc == PLUMB_MISUSE) { /* too small to learn from */
                say(p, PLUMB_MSG_INFO, "%s: dense search stays off", plumb_errmsg());
                embed_model_put(cur);
                return PLUMB_OK;
            }
            if (rc) { embed_model_put(cur); return rc; }
            char model[64], params[256];
            snprintf(model, sizeof model, "lsa-%d", t.dim);
            snprintf(params, sizeof params, "{\"weighting\":\"log-tf*idf, unit rows, df>=2\","
                     "\"oversample\":%d,\"power_iters\":%d,\"seed\":%d,\"max_chunk\":%lld}",
                     LSA_OVERSAMPLE, LSA_POWER, LSA_SEED, (long long)t.max_chunk);
            int64_t ep;
            rc = new_epoch(db, "lsa", model, t.dim, params, t.rows, &t, &ep);
            if (st) {
                st->trained = !rc;
                st->trained_chunks = t.rows;
                st->train_s = now_s() - tt;
            }
            trained_free(&t);
            if (rc) { embed_model_put(cur); return rc; }
            say(p, PLUMB_MSG_INFO, "trained the built-in embedder: %s on %lld chunks", model,
                (long long)(st ? st->trained_chunks : 0));
            epoch = ep;
        } else {
            if (!p->url || !*p->url || !p->model || !*p->model) {
                embed_model_put(cur);
                return err_set(PLUMB_MISUSE, "the http embedder needs a URL and a model name");
            }
            int dim = 0;
            rc = embed_http_probe(p, &dim);
            if (rc) { embed_model_put(cur); return rc; }
            char params[700];
            snprintf(params, sizeof params, "{\"url\":\"%.512s\"}", p->url);
            int64_t ep;
            rc = new_epoch(db, "http", p->model, dim, params, 0, NULL, &ep);
            if (rc) { embed_model_put(cur); return rc; }
            if (st) st->trained = 1;
            epoch = ep;
        }
        embed_model_put(cur);
        cur = NULL;
        if ((rc = model_load(db->w, epoch, &cur))) return rc;
    }
    if (st) st->dim = cur->dim;
    double te = now_s();
    rc = fill_missing(db, cur, p, st);
    if (st) {
        st->embed_s = now_s() - te;
        src = 0;
        st->missing = store_scalar(db->w, "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk FROM "
                         "vectors)", &src);
        if (!st->trained_chunks) st->trained_chunks = cur->trained_chunks;
    }
    embed_model_put(cur);
    return rc;
}

plumb_status embed_info(plumb_db *db, sqlite3 *conn, plumb_stats *out) {
    int src = 0;
    int64_t epoch = store_scalar(conn, "SELECT coalesce((SELECT value FROM settings WHERE key = "
                       "'vec_epoch'), 0)", &src);
    if (src) return store_err(conn, src, "statistics");
    out->vec_count = store_scalar(conn, "SELECT count(*) FROM vectors", &src);
    out->vec_missing = out->chunks - out->vec_count;
    if (src) return store_err(conn, src, "statistics");
    if (epoch <= 0) { out->vec_missing = 0; return PLUMB_OK; }
    embed_model *m;
    plumb_status rc = embed_model_get(db, conn, epoch, &m);
    if (rc) return rc;
    snprintf(out->embedder, sizeof out->embedder, "%s", m->kind);
    snprintf(out->embed_model, sizeof out->embed_model, "%s", m->model);
    out->vec_dim = m->dim;
    out->embed_trained_chunks = m->trained_chunks;
    sqlite3_stmt *st = NULL;
    if (!sqlite3_prepare_v2(conn, "SELECT count(*) FROM chunks WHERE id > ?1", -1, &st, NULL)) {
        sqlite3_bind_int64(st, 1, m->max_chunk);
        if (sqlite3_step(st) == SQLITE_ROW && !strcmp(m->kind, "lsa"))
            out->embed_added_since = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    /* f32 in the table, plus f32 + int8 + scale + sign bits in the side file when present */
    out->vec_bytes = out->vec_count * (int64_t)m->dim * 4;
    embed_model_put(m);
    return PLUMB_OK;
}
