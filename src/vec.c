/*
** vec.c -- the dense half of the first stage: an in-memory vector store
** kept in step with the SQLite store, exact SIMD top-k search over it,
** and an optional FAISS index for large collections.
**
** HOW IT WORKS
**   Source of truth. The `vectors` table holds one unit-length f32 vector
**   per embedded chunk; triggers append (chunk, +1/-1) to `vec_log` in
**   the same transaction as every vector insert and delete (a deleted
**   chunk takes its vector with it). settings.vec_epoch names the
**   embedder the vectors belong to; a new epoch (retraining, another
**   model) replaces them all.
**
**   Memory. Rows ("slots") in arrival order, each held three ways,
**   contiguous per kind: f32 (dim floats), int8 (dim bytes and a scale,
**   kern_quantize_i8) and sign bits (dim/8 bytes); a live bitmap; a map
**   chunk id -> slot. A search reads the epoch and generation in its
**   read transaction and brings the store to that snapshot exactly as
**   bm25.c does: replay vec_log after the store's position (adds read the
**   blob through the same snapshot, deletes clear the live bit), rebuild
**   from the table when the epoch changed, the log was truncated past the
**   store's position, or a quarter of the slots are dead. Deleted slots
**   stay in place until then and are filtered during the scan through
**   the live bitmap (never after truncation).
**
**   Search. Exact: kern_topk_f32 over the f32 rows; int8 or binary scans
**   keep more candidates than asked (4x / 20x, at least 64 / 256) and
**   rescore them in f32. Approximate: a FAISS index (HNSW by default)
**   over slots [0, ann_n) whose ids are slot numbers; slots appended
**   since it was built ([ann_n, n)) are scanned exactly and merged, and
**   deleted slots are skipped, so results always reflect the snapshot.
**   The FAISS index is only valid for the slot layout it was built on
**   (`layout`, a random id drawn at each rebuild); a rebuild drops it
**   until vec_persist builds a new one.
**
**   Side files. So that a new process need not rebuild, vec_persist
**   writes "<index>.vec" (the whole store, sections 64-byte aligned, so
**   the f32 block is memory-mappable) and "<index>.ann" (FAISS's own
**   format), both to temporary names, fsynced and renamed; the .vec
**   header records index id, epoch, generation, log position, layout and
**   the .ann file's size, so a stale, foreign or damaged file is ignored.
**
** WORKLOAD: single queries at interactive rates. A million 384-d vectors
** take 1.5 GB as f32 plus 0.4 GB int8 and 48 MB of sign bits; an exact
** int8 scan of them is ~20 ms on one core (bench/RESULTS.md).
*/
#include "plumb_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vec_index {
    pthread_rwlock_t lock;
    pthread_mutex_t save_lock;
    pthread_rwlock_t ann_lock; /* write side: a search with its own efSearch */
    char *side_path, *ann_path;
    int64_t index_id;
    /* from here on: the contents, zeroed by clear() */
    int built;
    int64_t epoch, generation, log_seq;
    uint32_t dim, nbin;      /* nbin = (dim + 7) / 8 */
    uint32_t n, cap;         /* slots used / allocated */
    uint32_t ndead;
    int64_t *cid;            /* chunk id per slot */
    float *f32;              /* n x dim */
    int8_t *i8;              /* n x dim */
    float *scale;            /* n */
    uint8_t *bin;            /* n x nbin */
    uint64_t *live;          /* cap / 64 words */
    int64_t *ckey;           /* chunk id -> slot + 1 */
    uint32_t *cval;
    uint32_t ncslot, ncused;
    uint64_t layout;
    ann_index *ann;          /* over slots [0, ann_n); ids are slots */
    uint32_t ann_n;
    int ann_ef, ann_hnsw;    /* default efSearch (HNSW) or nprobe (IVF) */
    int64_t ann_bytes;
    char ann_type[64];
    int64_t applied;         /* log entries applied since load or save */
};

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint64_t new_layout(void) {
    static _Atomic uint64_t ctr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid() ^
                 (++ctr << 48));
}

static void clear(vec_index *v) {
    free(v->cid);
    free(v->f32);
    free(v->i8);
    free(v->scale);
    free(v->bin);
    free(v->live);
    free(v->ckey);
    free(v->cval);
    ann_free(v->ann);
    memset(&v->built, 0, sizeof *v - offsetof(vec_index, built));
}

vec_index *vec_new(const char *db_path, int64_t index_id) {
    vec_index *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    size_t n = strlen(db_path) + 8;
    v->side_path = malloc(n);
    v->ann_path = malloc(n);
    if (!v->side_path || !v->ann_path) {
        free(v->side_path);
        free(v->ann_path);
        free(v);
        return NULL;
    }
    snprintf(v->side_path, n, "%s.vec", db_path);
    snprintf(v->ann_path, n, "%s.ann", db_path);
    v->index_id = index_id;
    pthread_rwlock_init(&v->lock, NULL);
    pthread_mutex_init(&v->save_lock, NULL);
    pthread_rwlock_init(&v->ann_lock, NULL);
    return v;
}

void vec_free(vec_index *v) {
    if (!v) return;
    clear(v);
    pthread_rwlock_destroy(&v->lock);
    pthread_mutex_destroy(&v->save_lock);
    pthread_rwlock_destroy(&v->ann_lock);
    free(v->side_path);
    free(v->ann_path);
    free(v);
}

/* ---------------------------------------------------------------- */
/* Slots                                                              */
/* ---------------------------------------------------------------- */

static int grow(vec_index *v, uint32_t need) {
    if (need <= v->cap) return 0;
    uint32_t cap = v->cap ? v->cap : 1024;
    while (cap < need) cap *= 2;
    size_t d = v->dim;
    int64_t *cid = realloc(v->cid, cap * sizeof *cid);
    if (cid) v->cid = cid;
    float *f = realloc(v->f32, (size_t)cap * d * sizeof *f);
    if (f) v->f32 = f;
    int8_t *q = realloc(v->i8, (size_t)cap * d);
    if (q) v->i8 = q;
    float *s = realloc(v->scale, cap * sizeof *s);
    if (s) v->scale = s;
    uint8_t *b = realloc(v->bin, (size_t)cap * v->nbin);
    if (b) v->bin = b;
    uint64_t *l = realloc(v->live, (cap / 64 + 1) * sizeof *l);
    if (l) {
        memset(l + (v->cap ? v->cap / 64 + 1 : 0), 0,
               (cap / 64 + 1 - (v->cap ? v->cap / 64 + 1 : 0)) * sizeof *l);
        v->live = l;
    }
    if (!cid || !f || !q || !s || !b || !l) return -1;
    v->cap = cap;
    return 0;
}

static int cmap_grow(vec_index *v) {
    uint32_t ns = v->ncslot ? v->ncslot * 2 : 1024;
    int64_t *k = malloc(ns * sizeof *k);
    uint32_t *val = calloc(ns, sizeof *val);
    if (!k || !val) { free(k); free(val); return -1; }
    for (uint32_t i = 0; i < v->ncslot; i++) {
        if (!v->cval[i]) continue;
        uint32_t s = (uint32_t)mix64((uint64_t)v->ckey[i]) & (ns - 1);
        while (val[s]) s = (s + 1) & (ns - 1);
        k[s] = v->ckey[i];
        val[s] = v->cval[i];
    }
    free(v->ckey);
    free(v->cval);
    v->ckey = k;
    v->cval = val;
    v->ncslot = ns;
    return 0;
}

static uint32_t cmap_slot(const vec_index *v, int64_t id) {
    uint32_t s = (uint32_t)mix64((uint64_t)id) & (v->ncslot - 1);
    while (v->cval[s] && v->ckey[s] != id) s = (s + 1) & (v->ncslot - 1);
    return s;
}

static int is_live(const vec_index *v, uint32_t slot) {
    return (v->live[slot / 64] >> (slot % 64)) & 1;
}

/* Append chunk cid's vector x (dim floats). */
static plumb_status add_vec(vec_index *v, int64_t cid, const float *x) {
    if (grow(v, v->n + 1)) return err_set(PLUMB_NOMEM, "vector store");
    if ((v->ncused + 1) * 2 > v->ncslot && cmap_grow(v)) return err_set(PLUMB_NOMEM, "vector store");
    uint32_t o = v->n++;
    size_t d = v->dim;
    v->cid[o] = cid;
    memcpy(v->f32 + (size_t)o * d, x, d * sizeof *x);
    v->scale[o] = kern_quantize_i8(x, d, v->i8 + (size_t)o * d);
    kern_binarize(x, d, v->bin + (size_t)o * v->nbin);
    v->live[o / 64] |= 1ULL << (o % 64);
    uint32_t s = cmap_slot(v, cid);
    if (!v->cval[s]) { v->ncused++; v->ckey[s] = cid; }
    v->cval[s] = o + 1;
    return PLUMB_OK;
}

static void del_vec(vec_index *v, int64_t cid) {
    if (!v->ncslot) return;
    uint32_t s = cmap_slot(v, cid);
    if (!v->cval[s]) return;
    uint32_t o = v->cval[s] - 1;
    if (is_live(v, o)) {
        v->live[o / 64] &= ~(1ULL << (o % 64));
        v->ndead++;
    }
}

/* ---------------------------------------------------------------- */
/* Keeping in step with a snapshot                                    */
/* ---------------------------------------------------------------- */

/* Decode a stored vector; PLUMB_CORRUPT names the chunk when its size is wrong. */
static plumb_status blob_vec(sqlite3_stmt *st, int col, int64_t cid, uint32_t dim, float *out) {
    const void *b = sqlite3_column_blob(st, col);
    int nb = sqlite3_column_bytes(st, col);
    if (!b || nb != (int)(dim * 4))
        return err_set(PLUMB_CORRUPT, "vector of chunk %lld has %d bytes, expected %u "
                       "(%u dimensions)", (long long)cid, nb, dim * 4, dim);
    memcpy(out, b, (size_t)dim * 4); /* little-endian hosts only (see FORMAT.md) */
    return PLUMB_OK;
}

/* The epoch and dimension the reader's snapshot has. */
static plumb_status snap_epoch(reader *r, int64_t *epoch, uint32_t *dim) {
    int src = 0;
    *epoch = store_scalar(r->conn, "SELECT coalesce((SELECT value FROM settings WHERE "
                    "key = 'vec_epoch'), 0)", &src);
    *dim = 0;
    if (!src && *epoch > 0) {
        sqlite3_stmt *st = NULL;
        src = sqlite3_prepare_v2(r->conn, "SELECT dim FROM embedder WHERE epoch = ?1", -1, &st, NULL);
        if (!src) {
            sqlite3_bind_int64(st, 1, *epoch);
            int s = sqlite3_step(st);
            if (s == SQLITE_ROW) *dim = (uint32_t)sqlite3_column_int(st, 0);
            else if (s != SQLITE_DONE) src = s;
            else {
                sqlite3_finalize(st);
                return err_set(PLUMB_CORRUPT, "settings name embedder epoch %lld, which the "
                               "embedder table does not have", (long long)*epoch);
            }
        }
        sqlite3_finalize(st);
        if (!src && (*dim < 1 || *dim > 65536))
            return err_set(PLUMB_CORRUPT, "embedder epoch %lld has dimension %u",
                           (long long)*epoch, *dim);
    }
    return src ? store_err(r->conn, src, "read vector settings") : PLUMB_OK;
}

static plumb_status rebuild(vec_index *v, reader *r, int64_t gen, int64_t epoch, uint32_t dim) {
    clear(v);
    v->epoch = epoch;
    v->dim = dim;
    v->nbin = (dim + 7) / 8;
    v->layout = new_layout();
    int src = 0;
    int64_t seq = store_scalar(r->conn, "SELECT coalesce(max(seq), 0) FROM vec_log", &src);
    if (src) return store_err(r->conn, src, "read vector log");
    plumb_status rc = PLUMB_OK;
    if (epoch > 0) {
        int64_t cnt = store_scalar(r->conn, "SELECT count(*) FROM vectors", &src);
        if (src) return store_err(r->conn, src, "count vectors");
        if (cnt > UINT32_MAX - 1) return err_set(PLUMB_MISUSE, "more than 4 billion vectors");
        if (cnt && grow(v, (uint32_t)cnt)) { clear(v); return err_set(PLUMB_NOMEM, "vector store"); }
        float *x = malloc((size_t)dim * sizeof *x);
        sqlite3_stmt *st = NULL;
        if (!x) rc = err_set(PLUMB_NOMEM, "vector store");
        else if ((src = sqlite3_prepare_v2(r->conn, "SELECT chunk, v FROM vectors ORDER BY chunk",
                                           -1, &st, NULL)))
            rc = store_err(r->conn, src, "load vectors");
        while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t cid = sqlite3_column_int64(st, 0);
            rc = blob_vec(st, 1, cid, dim, x);
            if (!rc) rc = add_vec(v, cid, x);
        }
        if (!rc && src != SQLITE_DONE) rc = store_err(r->conn, src, "load vectors");
        sqlite3_finalize(st);
        free(x);
    }
    if (rc) { clear(v); return rc; }
    v->built = 1;
    v->generation = gen;
    v->log_seq = seq;
    v->applied = v->n ? v->n : 1; /* never saved */
    return PLUMB_OK;
}

static plumb_status catch_up(vec_index *v, reader *r, int64_t gen) {
    int src = 0;
    int64_t floor = store_scalar(r->conn, "SELECT coalesce(min(seq), 0) FROM vec_log", &src);
    if (src) return store_err(r->conn, src, "read vector log");
    if (floor > v->log_seq + 1 || (v->ndead > 1024 && v->ndead > v->n / 4))
        return rebuild(v, r, gen, v->epoch, v->dim);
    sqlite3_stmt *lg = NULL, *vs = NULL;
    plumb_status rc = PLUMB_OK;
    float *x = malloc((size_t)(v->dim ? v->dim : 1) * sizeof *x);
    src = sqlite3_prepare_v2(r->conn, "SELECT seq, chunk, op FROM vec_log WHERE seq > ?1 "
                             "ORDER BY seq", -1, &lg, NULL);
    if (!src) src = sqlite3_prepare_v2(r->conn, "SELECT v FROM vectors WHERE chunk = ?1", -1, &vs, NULL);
    if (!x) rc = err_set(PLUMB_NOMEM, "vector store");
    else if (src) rc = store_err(r->conn, src, "catch up vector store");
    int64_t last = v->log_seq;
    if (!rc) sqlite3_bind_int64(lg, 1, v->log_seq);
    while (!rc && (src = sqlite3_step(lg)) == SQLITE_ROW) {
        last = sqlite3_column_int64(lg, 0);
        int64_t cid = sqlite3_column_int64(lg, 1);
        if (sqlite3_column_int(lg, 2) < 0) { del_vec(v, cid); continue; }
        /* already here from a rebuild that saw this incarnation: skip */
        if (v->ncslot) {
            uint32_t s = cmap_slot(v, cid);
            if (v->cval[s] && is_live(v, v->cval[s] - 1)) continue;
        }
        sqlite3_bind_int64(vs, 1, cid);
        int s2 = sqlite3_step(vs);
        if (s2 == SQLITE_ROW) {
            rc = blob_vec(vs, 0, cid, v->dim, x);
            if (!rc) rc = add_vec(v, cid, x);
        } else if (s2 != SQLITE_DONE) {
            rc = store_err(r->conn, s2, "catch up vector store");
        } /* DONE: deleted later in this window; its -1 follows */
        sqlite3_reset(vs);
    }
    if (!rc && src != SQLITE_DONE) rc = store_err(r->conn, src, "catch up vector store");
    sqlite3_finalize(lg);
    sqlite3_finalize(vs);
    free(x);
    if (rc) { v->built = 0; return rc; }
    v->applied += last - v->log_seq;
    v->log_seq = last;
    v->generation = gen;
    return PLUMB_OK;
}

static void load(vec_index *v, reader *r, int64_t gen, int64_t epoch, uint32_t dim);

plumb_status vec_sync(vec_index *v, reader *r, int64_t gen) {
    for (;;) {
        pthread_rwlock_rdlock(&v->lock);
        if (v->built && v->generation == gen) return PLUMB_OK; /* read lock held */
        int ahead = v->built && v->generation > gen;
        pthread_rwlock_unlock(&v->lock);
        if (ahead) return PLUMB_BUSY;
        int64_t epoch;
        uint32_t dim;
        plumb_status rc = snap_epoch(r, &epoch, &dim);
        if (rc) return rc;
        pthread_rwlock_wrlock(&v->lock);
        if (v->built && (v->epoch != epoch || v->dim != dim)) v->built = 0;
        if (!v->built && epoch > 0) load(v, r, gen, epoch, dim);
        if (!v->built) rc = rebuild(v, r, gen, epoch, dim);
        else if (v->generation < gen) rc = catch_up(v, r, gen);
        pthread_rwlock_unlock(&v->lock);
        if (rc) return rc;
    }
}

void vec_release(vec_index *v) { pthread_rwlock_unlock(&v->lock); }

uint32_t vec_dim(const vec_index *v) { return v->dim; }
int64_t vec_epoch(const vec_index *v) { return v->epoch; }
uint32_t vec_live(const vec_index *v) { return v->n - v->ndead; }

/* ---------------------------------------------------------------- */
/* Search                                                             */
/* ---------------------------------------------------------------- */

static int hit_cmp(const void *a, const void *b) {
    const kern_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Exact or quantized scan of slots [lo, n); rows in `out` are slots. */
static size_t scan(const vec_index *v, const float *q, uint32_t lo, size_t k, plumb_vsearch how,
                   kern_hit *out, plumb_status *rc) {
    size_t d = v->dim, n = v->n - lo;
    const uint64_t *allow = v->live + lo / 64; /* lo is a multiple of 64 */
    if (!n || !k) return 0;
    size_t got = 0;
    if (how == PLUMB_VSEARCH_F32) {
        if (n * d >= ((size_t)8 << 20))
            got = kern_topk_f32_par(q, v->f32 + (size_t)lo * d, n, d, allow, k, out, 0);
        if (!got) got = kern_topk_f32(q, v->f32 + (size_t)lo * d, n, d, allow, k, out);
    } else {
        size_t kc = how == PLUMB_VSEARCH_INT8 ? (k * 4 > 64 ? k * 4 : 64)
                                              : (k * 20 > 256 ? k * 20 : 256);
        kern_hit *cand = malloc(kc * sizeof *cand);
        void *qq = malloc(d + 8);
        if (!cand || !qq) {
            free(cand);
            free(qq);
            *rc = err_set(PLUMB_NOMEM, "vector search");
            return 0;
        }
        size_t nc;
        if (how == PLUMB_VSEARCH_INT8) {
            float qs = kern_quantize_i8(q, d, qq);
            nc = kern_topk_i8(qq, qs, v->i8 + (size_t)lo * d, v->scale + lo, n, d, allow, kc, cand);
        } else {
            kern_binarize(q, d, qq);
            nc = kern_topk_bin(qq, v->bin + (size_t)lo * v->nbin, n, v->nbin, allow, kc, cand);
        }
        got = kern_rescore_f32(q, v->f32 + (size_t)lo * d, d, cand, nc, k, out);
        free(cand);
        free(qq);
    }
    for (size_t i = 0; i < got; i++) out[i].row += lo;
    return got;
}

plumb_status vec_topk(const vec_index *v, const float *q, int k, plumb_vsearch how, int ef,
                      lex_hit **out, size_t *nout) {
    *out = NULL;
    *nout = 0;
    if (k <= 0 || v->n == v->ndead) return PLUMB_OK;
    if (how == PLUMB_VSEARCH_ANN && !v->ann)
        return err_set(PLUMB_MISUSE, "approximate vector search asked for, but the index has "
                       "no ANN index (it is built by plumb index for large collections, or "
                       "with --ann)");
    if (how == PLUMB_VSEARCH_AUTO)
        how = v->ann ? PLUMB_VSEARCH_ANN : v->n >= 20000 ? PLUMB_VSEARCH_INT8 : PLUMB_VSEARCH_F32;
    size_t kk = (size_t)k;
    plumb_status rc = PLUMB_OK;
    kern_hit *h = NULL;
    size_t nh = 0;
    if (how != PLUMB_VSEARCH_ANN) {
        if (!(h = malloc(kk * sizeof *h))) return err_set(PLUMB_NOMEM, "vector search");
        nh = scan(v, q, 0, kk, how, h, &rc);
    } else {
        /* ANN over [0, ann_n) with room for deleted slots, plus an exact
        ** scan of the tail; merged */
        size_t dead_share = v->ann_n ? (size_t)v->ndead * 100 / v->ann_n : 0;
        size_t ka = kk + kk * dead_share / 50 + 16;
        if (ka > v->ann_n) ka = v->ann_n;
        float *sc = malloc(ka * sizeof *sc);
        int64_t *ids = malloc(ka * sizeof *ids);
        h = malloc((ka + kk) * sizeof *h);
        if (!sc || !ids || !h) rc = err_set(PLUMB_NOMEM, "vector search");
        if (!rc && ka) {
            /* efSearch/nprobe live in the FAISS index: a search with its
            ** own value runs alone and puts the default back */
            int own = ef > 0 && ef != v->ann_ef;
            if (own) {
                pthread_rwlock_wrlock(&((vec_index *)v)->ann_lock);
                rc = ann_set_param(v->ann, v->ann_hnsw ? "efSearch" : "nprobe", ef);
            } else {
                pthread_rwlock_rdlock(&((vec_index *)v)->ann_lock);
            }
            if (!rc) rc = ann_search(v->ann, 1, q, ka, sc, ids);
            if (own && v->ann_ef > 0)
                ann_set_param(v->ann, v->ann_hnsw ? "efSearch" : "nprobe", v->ann_ef);
            pthread_rwlock_unlock(&((vec_index *)v)->ann_lock);
        }
        for (size_t i = 0; !rc && i < ka; i++) {
            if (ids[i] < 0 || ids[i] >= (int64_t)v->ann_n || !is_live(v, (uint32_t)ids[i])) continue;
            h[nh++] = (kern_hit){sc[i], (uint32_t)ids[i]};
        }
        if (!rc) nh += scan(v, q, v->ann_n, kk, PLUMB_VSEARCH_F32, h + nh, &rc);
        free(sc);
        free(ids);
        if (!rc) {
            qsort(h, nh, sizeof *h, hit_cmp);
            if (nh > kk) nh = kk;
        }
    }
    if (rc) { free(h); return rc; }
    lex_hit *o = malloc((nh ? nh : 1) * sizeof *o);
    if (!o) { free(h); return err_set(PLUMB_NOMEM, "vector search"); }
    for (size_t i = 0; i < nh; i++) o[i] = (lex_hit){v->cid[h[i].row], h[i].score};
    free(h);
    /* equal scores: ascending chunk id, as everywhere else */
    for (size_t i = 1; i < nh; i++)
        for (size_t j = i; j > 0 && o[j].score == o[j - 1].score && o[j].rowid < o[j - 1].rowid; j--) {
            lex_hit t = o[j];
            o[j] = o[j - 1];
            o[j - 1] = t;
        }
    *out = o;
    *nout = nh;
    return PLUMB_OK;
}

/* Exact similarity of chunk cid's vector to q, or NAN when it has none. */
double vec_score(const vec_index *v, const float *q, int64_t cid) {
    if (!v->ncslot) return NAN;
    uint32_t s = cmap_slot(v, cid);
    if (!v->cval[s] || !is_live(v, v->cval[s] - 1)) return NAN;
    return kern_dot_f32(q, v->f32 + (size_t)(v->cval[s] - 1) * v->dim, v->dim);
}

const float *vec_get(const vec_index *v, int64_t cid) {
    if (!v->ncslot) return NULL;
    uint32_t s = cmap_slot(v, cid);
    if (!v->cval[s] || !is_live(v, v->cval[s] - 1)) return NULL;
    return v->f32 + (size_t)(v->cval[s] - 1) * v->dim;
}

/* ---------------------------------------------------------------- */
/* Side files                                                         */
/* ---------------------------------------------------------------- */

/* Layout, native byte order (little-endian hosts), sections 64-byte
** aligned after a 256-byte header:
**   cid[n] i64 | live[n/64+1] u64 | f32[n*dim] | scale[n] f32 |
**   i8[n*dim] | bin[n*nbin]
** body_hash chains hash64 over the sections. */
#define SIDE_MAGIC "PLMBVEC1"
#define SIDE_VERSION 1

typedef struct side_hdr {
    char magic[8];
    uint32_t version, endian;
    int64_t index_id, epoch, generation, log_seq;
    uint32_t dim, n, ndead, ann_n;
    uint64_t layout;
    int64_t ann_file_bytes; /* size of <index>.ann written with it; 0: none */
    char ann_type[64];
    uint64_t body_hash;
    int32_t ann_ef, pad0;
    char pad[256 - 8 - 8 - 32 - 16 - 8 - 8 - 64 - 8 - 8];
} side_hdr;

typedef struct section { void *p; size_t bytes; } section;

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }

static void sections(const vec_index *v, uint32_t n, uint32_t dim, section s[6]) {
    uint32_t nbin = (dim + 7) / 8;
    s[0] = (section){v->cid, (size_t)n * 8};
    s[1] = (section){v->live, n ? ((size_t)n / 64 + 1) * 8 : 0}; /* no slots: no bitmap */
    s[2] = (section){v->f32, (size_t)n * dim * 4};
    s[3] = (section){v->scale, (size_t)n * 4};
    s[4] = (section){v->i8, (size_t)n * dim};
    s[5] = (section){v->bin, (size_t)n * nbin};
}

static int64_t fsize(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* Load "<index>.vec" (and "<index>.ann" when it belongs to it) if they
** fit this snapshot; otherwise leave v unbuilt. A cache: never fails loudly. */
static void load(vec_index *v, reader *r, int64_t gen, int64_t epoch, uint32_t dim) {
    FILE *f = fopen(v->side_path, "rb");
    if (!f) return;
    side_hdr h;
    int ok = fread(&h, sizeof h, 1, f) == 1 && !memcmp(h.magic, SIDE_MAGIC, 8) &&
             h.version == SIDE_VERSION && h.endian == 0x01020304u && h.index_id == v->index_id &&
             h.epoch == epoch && h.dim == dim && h.generation <= gen && h.ndead <= h.n &&
             h.ann_n <= h.n;
    if (ok) {
        /* the header must account for the file exactly before we allocate */
        size_t total = sizeof h;
        section s[6];
        sections(v, h.n, h.dim, s);
        for (int i = 0; i < 6; i++) total += al64(s[i].bytes);
        ok = fsize(v->side_path) == (int64_t)total;
    }
    if (ok) {
        int src = 0;
        int64_t floor = store_scalar(r->conn, "SELECT coalesce(min(seq), 0) FROM vec_log", &src);
        int64_t top = store_scalar(r->conn, "SELECT coalesce(max(seq), 0) FROM vec_log", &src);
        ok = !src && h.log_seq <= top && (floor == 0 || h.log_seq + 1 >= floor);
    }
    if (!ok) { fclose(f); return; }
    clear(v);
    v->dim = dim;
    v->nbin = (dim + 7) / 8;
    if (h.n && grow(v, h.n)) { clear(v); fclose(f); return; }
    section s[6];
    sections(v, h.n, dim, s);
    uint64_t hh = 0;
    char pad[64];
    for (int i = 0; ok && i < 6; i++) {
        size_t pn = al64(s[i].bytes) - s[i].bytes;
        ok = (!s[i].bytes || fread(s[i].p, 1, s[i].bytes, f) == s[i].bytes) &&
             (!pn || fread(pad, 1, pn, f) == pn);
        if (ok) hh = hash64(s[i].p, s[i].bytes, hh);
    }
    fclose(f);
    if (!ok || hh != h.body_hash) { clear(v); return; }
    v->n = h.n;
    v->ndead = h.ndead;
    for (uint32_t o = 0; o < v->n; o++) {
        if ((v->ncused + 1) * 2 > v->ncslot && cmap_grow(v)) { clear(v); return; }
        uint32_t sl = cmap_slot(v, v->cid[o]);
        if (!v->cval[sl]) { v->ncused++; v->ckey[sl] = v->cid[o]; v->cval[sl] = o + 1; }
        else if (is_live(v, o)) v->cval[sl] = o + 1;
    }
    v->epoch = epoch;
    v->generation = h.generation;
    v->log_seq = h.log_seq;
    v->layout = h.layout;
    v->applied = 0;
    v->built = 1;
    /* the FAISS index written together with this file, if still there */
    if (h.ann_n && h.ann_file_bytes > 0 && fsize(v->ann_path) == h.ann_file_bytes) {
        ann_index *a = NULL;
        if (ann_load(v->ann_path, &a) == PLUMB_OK && ann_count(a) == (int64_t)h.ann_n &&
            ann_dim(a) == dim) {
            v->ann = a;
            v->ann_n = h.ann_n;
            v->ann_bytes = h.ann_file_bytes;
            memcpy(v->ann_type, h.ann_type, sizeof v->ann_type);
            v->ann_type[sizeof v->ann_type - 1] = 0;
            v->ann_hnsw = strstr(v->ann_type, "HNSW") != NULL;
            v->ann_ef = h.ann_ef;
            if (v->ann_ef > 0) ann_set_param(a, v->ann_hnsw ? "efSearch" : "nprobe", v->ann_ef);
        } else {
            ann_free(a);
        }
        err_clear();
    }
}

/* Write the store (caller holds the read lock and save_lock). */
static plumb_status save(vec_index *v) {
    side_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SIDE_MAGIC, 8);
    h.version = SIDE_VERSION;
    h.endian = 0x01020304u;
    h.index_id = v->index_id;
    h.epoch = v->epoch;
    h.generation = v->generation;
    h.log_seq = v->log_seq;
    h.dim = v->dim;
    h.n = v->n;
    h.ndead = v->ndead;
    h.layout = v->layout;
    if (v->ann) {
        h.ann_n = v->ann_n;
        h.ann_file_bytes = v->ann_bytes;
        h.ann_ef = v->ann_ef;
        memcpy(h.ann_type, v->ann_type, sizeof h.ann_type);
    }
    section s[6];
    sections(v, v->n, v->dim, s);
    for (int i = 0; i < 6; i++) h.body_hash = hash64(s[i].p, s[i].bytes, h.body_hash);
    size_t pl = strlen(v->side_path) + 32;
    char *tmp = malloc(pl);
    if (!tmp) return err_set(PLUMB_NOMEM, "save vector store");
    snprintf(tmp, pl, "%s.tmp%ld", v->side_path, (long)getpid());
    plumb_status rc = PLUMB_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) rc = err_set(PLUMB_IO, "%s: %s", tmp, strerror(errno));
    else {
        static const char zero[64];
        int bad = store_write_all(f, &h, sizeof h);
        for (int i = 0; !bad && i < 6; i++)
            bad = store_write_all(f, s[i].p, s[i].bytes) ||
                  store_write_all(f, zero, al64(s[i].bytes) - s[i].bytes);
        bad |= fflush(f) != 0;
        bad |= fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (bad) rc = err_set(PLUMB_IO, "%s: %s", tmp, strerror(errno));
        else if (rename(tmp, v->side_path) != 0)
            rc = err_set(PLUMB_IO, "rename %s: %s", v->side_path, strerror(errno));
        if (rc) unlink(tmp);
        else store_fsync_dir(v->side_path);
    }
    free(tmp);
    if (!rc) v->applied = 0;
    return rc;
}

/* Build the FAISS index over every current slot (caller holds the write lock). */
static plumb_status build_ann(vec_index *v, const char *factory, int ef_search) {
    ann_index *a = NULL;
    uint32_t n = v->n / 64 * 64; /* the exact tail scan starts on a bitmap word */
    if (n == 0) return PLUMB_OK;
    plumb_status rc = ann_new(factory, v->dim, ANN_IP, &a);
    if (!rc && !ann_is_trained(a)) {
        size_t nt = n < 100000 ? n : 100000;
        rc = ann_train(a, nt, v->f32);
    }
    int64_t *ids = rc ? NULL : malloc((size_t)n * sizeof *ids);
    if (!rc && !ids) rc = err_set(PLUMB_NOMEM, "build ANN index");
    for (uint32_t i = 0; !rc && i < n; i++) ids[i] = i;
    if (!rc) rc = ann_add(a, n, v->f32, ids);
    free(ids);
    int hnsw = strstr(factory, "HNSW") != NULL;
    if (ef_search <= 0) ef_search = hnsw ? 64 : 16;
    if (!rc) {
        rc = ann_set_param(a, hnsw ? "efSearch" : "nprobe", ef_search);
        if (rc == PLUMB_MISUSE) { rc = PLUMB_OK; ef_search = 0; err_clear(); }
    }
    if (!rc) rc = ann_save(a, v->ann_path);
    if (rc) { ann_free(a); return rc; }
    store_fsync_dir(v->ann_path);
    ann_free(v->ann);
    v->ann = a;
    v->ann_n = n;
    v->ann_bytes = fsize(v->ann_path);
    snprintf(v->ann_type, sizeof v->ann_type, "%s", factory);
    v->ann_ef = ef_search;
    v->ann_hnsw = hnsw;
    return PLUMB_OK;
}

static int64_t env_int(const char *name, int64_t def) {
    const char *e = getenv(name);
    return e && *e ? strtoll(e, NULL, 10) : def;
}

plumb_status vec_persist(plumb_db *db, const char *ann_factory, int ann_force, int ef_search,
                         int *ann_built) {
    if (ann_built) *ann_built = 0;
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    vec_index *v = db->vec;
    int64_t min_side = env_int("PLUMB_VEC_SIDE_MIN", 20000);
    int64_t min_ann = env_int("PLUMB_ANN_MIN", 2000000);
    for (int attempt = 0; attempt < 100; attempt++) {
        int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
        if (src) { rc = store_err(r->conn, src, "begin read"); break; }
        int64_t gen = store_scalar(r->conn, "SELECT value FROM settings WHERE key='generation'", &src);
        int64_t nv = store_scalar(r->conn, "SELECT count(*) FROM vectors", &src);
        if (src) rc = store_err(r->conn, src, "read generation");
        else if (nv == 0 || (nv < min_side && !ann_force)) {
            sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL); /* nothing worth a file */
            break;
        }
        else rc = vec_sync(v, r, gen);
        if (rc == PLUMB_OK) {
            vec_release(v);
            /* building the FAISS index changes the store: exclusive */
            pthread_rwlock_wrlock(&v->lock);
            pthread_mutex_lock(&v->save_lock);
            if (v->built && v->generation == gen) {
                uint32_t live = v->n - v->ndead;
                int want = ann_force || (ann_factory && *ann_factory && live >= min_ann);
                int stale = !v->ann || v->n - v->ann_n > v->n / 10 ||
                            (v->ndead > v->ann_n / 5);
                if (want && stale && ann_available()) {
                    rc = build_ann(v, ann_factory && *ann_factory ? ann_factory : "HNSW32,Flat",
                                   ef_search);
                    if (!rc && ann_built) *ann_built = 1;
                    if (!rc) v->applied = 1; /* the side file must record it */
                }
                if (!rc && v->applied > 0 && (v->applied >= (int64_t)v->n / 20 || !v->n ||
                                              (ann_built && *ann_built)))
                    rc = save(v);
            }
            pthread_mutex_unlock(&v->save_lock);
            pthread_rwlock_unlock(&v->lock);
        }
        sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
        if (rc != PLUMB_BUSY) break;
    }
    store_reader_put(db, r);
    return rc;
}

int64_t vec_applied_since_save(vec_index *v) {
    pthread_rwlock_rdlock(&v->lock);
    int64_t a = v->built ? v->applied : 0;
    pthread_rwlock_unlock(&v->lock);
    return a;
}

void vec_info(vec_index *v, vec_info_t *out) {
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&v->lock);
    out->built = v->built;
    if (v->built) {
        out->dim = v->dim;
        out->live = v->n - v->ndead;
        out->slots = v->n;
        out->bytes = (int64_t)v->cap * ((int64_t)v->dim * 5 + v->nbin + 20) +
                     (int64_t)v->ncslot * 12;
        out->ann_n = v->ann_n;
        out->ann_bytes = v->ann ? v->ann_bytes : 0;
        snprintf(out->ann_type, sizeof out->ann_type, "%s", v->ann ? v->ann_type : "");
        uint32_t dead_in_ann = 0;
        for (uint32_t o = 0; v->ann && o < v->ann_n; o++) dead_in_ann += !is_live(v, o);
        out->ann_deleted = dead_in_ann;
    }
    pthread_rwlock_unlock(&v->lock);
}

/* ---------------------------------------------------------------- */
/* Verification (plumb check)                                          */
/* ---------------------------------------------------------------- */

plumb_status vec_verify(plumb_db *db, void (*report)(void *, const char *, const char *),
                        void *arg, int64_t *problems) {
    *problems = 0;
    reader *r;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    char m[512];
#define PROBLEM(...)                                 \
    do {                                             \
        snprintf(m, sizeof m, __VA_ARGS__);          \
        (*problems)++;                               \
        if (report) report(arg, "vectors", m);       \
    } while (0)
    vec_index *v = db->vec;
    for (int attempt = 0; attempt < 100; attempt++) {
        int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
        if (src) { rc = store_err(r->conn, src, "begin read"); break; }
        int64_t gen = store_scalar(r->conn, "SELECT value FROM settings WHERE key='generation'", &src);
        if (src) { rc = store_err(r->conn, src, "read generation"); sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL); break; }
        int64_t epoch;
        uint32_t dim;
        rc = snap_epoch(r, &epoch, &dim);
        if (rc == PLUMB_CORRUPT) {
            PROBLEM("%s", plumb_errmsg());
            rc = PLUMB_OK;
            sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
            break;
        }
        if (!rc) rc = vec_sync(v, r, gen);
        if (rc == PLUMB_CORRUPT) {
            PROBLEM("%s", plumb_errmsg());
            rc = PLUMB_OK;
            sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
            break;
        }
        if (rc == PLUMB_OK) {
            /* every stored vector, exactly as the store holds it */
            int64_t nvec = store_scalar(r->conn, "SELECT count(*) FROM vectors", &src);
            int64_t orphans = store_scalar(r->conn, "SELECT count(*) FROM vectors WHERE chunk NOT IN "
                                     "(SELECT id FROM chunks)", &src);
            if (orphans) PROBLEM("%lld vectors belong to no chunk", (long long)orphans);
            if (epoch == 0 && nvec) PROBLEM("%lld vectors but no embedder epoch", (long long)nvec);
            if ((int64_t)(v->n - v->ndead) != nvec)
                PROBLEM("the in-memory store holds %u vectors, the table %lld",
                        v->n - v->ndead, (long long)nvec);
            sqlite3_stmt *st = NULL;
            float *x = malloc((size_t)(dim ? dim : 1) * 4);
            int64_t bad = 0, missing = 0;
            if (epoch > 0 && x && !sqlite3_prepare_v2(r->conn, "SELECT chunk, v FROM vectors",
                                                      -1, &st, NULL)) {
                while (sqlite3_step(st) == SQLITE_ROW) {
                    int64_t cid = sqlite3_column_int64(st, 0);
                    if (blob_vec(st, 1, cid, dim, x)) {
                        if (++bad <= 5) PROBLEM("%s", plumb_errmsg());
                        continue;
                    }
                    uint32_t s = v->ncslot ? cmap_slot(v, cid) : 0;
                    if (!v->ncslot || !v->cval[s] || !is_live(v, v->cval[s] - 1)) {
                        if (++missing <= 5) PROBLEM("chunk %lld's vector is not in the store", (long long)cid);
                        continue;
                    }
                    if (memcmp(x, v->f32 + (size_t)(v->cval[s] - 1) * dim, (size_t)dim * 4)) {
                        if (++bad <= 5) PROBLEM("chunk %lld's vector differs from the table's "
                                                "(damaged side file?)", (long long)cid);
                    }
                }
                sqlite3_finalize(st);
            }
            free(x);
            if (bad > 5 || missing > 5) PROBLEM("... %lld damaged and %lld missing vectors in all",
                                                (long long)bad, (long long)missing);
            vec_release(v);
        }
        sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
        if (rc != PLUMB_BUSY) break;
    }
    store_reader_put(db, r);
    /* the side file on its own: header and checksum */
    FILE *f = fopen(v->side_path, "rb");
    if (f && !rc) {
        side_hdr h;
        if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, SIDE_MAGIC, 8))
            PROBLEM("%s: not a vector side file (bad header)", v->side_path);
        else if (h.index_id != v->index_id)
            PROBLEM("%s: belongs to another index", v->side_path);
        else if (h.dim > 65536 || h.n > (1u << 31))
            PROBLEM("%s: header damaged", v->side_path);
        else {
            vec_index tmp;
            memset(&tmp, 0, sizeof tmp);
            section s[6];
            sections(&tmp, h.n, h.dim, s);
            uint64_t hh = 0;
            size_t total = sizeof h;
            for (int i = 0; i < 6; i++) total += al64(s[i].bytes);
            if (fsize(v->side_path) != (int64_t)total)
                PROBLEM("%s: size does not match its header (truncated or damaged)", v->side_path);
            else {
                for (int i = 0; i < 6; i++) {
                    size_t nb = al64(s[i].bytes);
                    char *b = malloc(nb ? nb : 1);
                    if (!b || fread(b, 1, nb, f) != nb) { free(b); hh = ~h.body_hash; break; }
                    hh = hash64(b, s[i].bytes, hh);
                    free(b);
                }
                if (hh != h.body_hash) PROBLEM("%s: checksum mismatch (damaged)", v->side_path);
            }
        }
    }
    if (f) fclose(f);
#undef PROBLEM
    return rc;
}
