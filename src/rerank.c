/*
** rerank.c -- stage 2: the built-in feature reranker.
**
** The top N candidates of stage 1 (fused, or lexical without vectors)
** are rescored by a linear model over query-document features and
** re-sorted; candidates past N keep their stage-1 order below them.
**
** HOW IT WORKS
**   Terms. Every candidate is read as the sequence of its indexed terms,
**   title then body, exactly as the lexical index saw them (stop words
**   removed, stemmed): from the BM25 index's forward lists when it has
**   them (bm25.c keeps them up to PLUMB_FWD_MAX ids), else by tokenizing
**   the chunk's title and text with the reader's tokenizer into the same
**   term ids; every feature is the same whichever path gave the terms.
**   Each position becomes the slot of the distinct query term it
**   matches, or -1. Query terms the index does not know never match and
**   weigh nothing.
**
**   Features (rerank_feature; "idf" is BM25's ln(1 + (N-df+.5)/(df+.5))
**   at this snapshot, IDF = the sum of idf over the distinct known terms):
**     BM25     BM25F of the candidate (k1, b, field weights of the
**              search), computed here for every candidate, so dense-only
**              candidates get their true lexical score too
**     DENSE    vector similarity from stage 1 (absent: the minimum)
**     FUSED    the stage-1 score (absent: the minimum)
**     COVER    idf of the distinct query terms present / IDF
**     TITLE    idf of the distinct query terms present in the title / IDF
**     PROX     term proximity (Buettcher, Clarke and Lushman, SIGIR 2006,
**              with this file's BM25 idf): for each pair of consecutive
**              query-term occurrences of different terms in one field at
**              distance d <= 5 positions, each term accumulates the other's
**              idf / d^2; PROX = sum over terms of idf * acc * (k1+1) /
**              (acc + k1 * (1 - b + b * dl / avgdl))
**     WINDOW   max over the two fields of (m / nq) * (m / w), where m >= 2
**              distinct query terms occur in the field, w is the length in
**              positions of the smallest span that holds all m, and nq the
**              distinct known query terms (0 when m < 2)
**     BIGRAM   distinct ordered query bigrams (query terms i, i+1, both
**              known and different) found on adjacent positions of a field
**              / the query's such bigrams (0 when it has none)
**     LEN      ln(1 + title and body positions)
**     DPRF     pseudo-relevance feedback in the dense space: cosine of the
**              candidate's vector with the mean vector of the top
**              RERANK_FB stage-1 candidates (0 without vectors)
**     LPRF     lexical pseudo-relevance feedback (RM3-like): the top
**              RERANK_FB stage-1 candidates' terms weighted by
**              sum over them of tf / length; of the 4 * RERANK_FBT
**              heaviest non-query terms, the RERANK_FBT heaviest after
**              multiplying by idf form an expansion, and LPRF is the
**              candidate's BM25 for it with those weights in place of the
**              query multiplicity
**     QL       query likelihood with Dirichlet smoothing (mu = 300): sum
**              over the query's known terms of mult * ln((tf + mu p(t|C))
**              / (dl + mu)), tf and dl over title and body
**     TBM25    BM25 of the title alone (k1, b; title lengths)
**   BM25, DENSE, FUSED, PROX, LEN, DPRF, LPRF, QL and TBM25 vary in scale from query to query:
**   they are min-max normalised over the N candidates (all equal: 0).
**   The others are in [0, 1] already.
**
**   Model. score = sum of w[i] * feature[i], plus the output of the
**   index's regression trees when plumb tune kept some (trees.c;
**   settings "rerank_trees"). The shipped weights (rerank_default_weights)
**   and how they were learned are documented where they are defined;
**   `plumb tune` learns weights for an index and stores them in its
**   settings ("rerank_weights").
**
** WORKLOAD
**   N of 10 to 100 candidates of a few hundred terms each: one pass over
**   each candidate's terms plus a window scan, microseconds per
**   candidate from the forward lists; tokenizing a candidate read from
**   SQLite costs several times that.
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const rerank_feature_names[RERANK_NFEAT] = {
    "bm25", "dense", "fused", "cover", "title", "prox", "window", "bigram", "len", "dprf", "lprf",
    "ql", "tbm25"};

/* The shipped weights, in rerank_feature order. Learned with
**   plumb tune --db SCIFACT.db --data scifact --db NFCORPUS.db --data nfcorpus-pre \
**              --no-grid --no-trees
** (coordinate ascent on the mean of the two sets' nDCG@10) on the TRAIN
** splits of SciFact (809 queries) and NFCorpus-pre (2,590) together --
** never on a test split -- with the default BM25 (k1 0.9, b 0.4), the
** built-in LSA embedder (256 dimensions), hybrid min-max fusion (alpha
** 0.5) over the RM3-expanded BM25 list (qe_docs 10, before qe_max_df
** limited the expansion terms) and N = 30. Train
** nDCG@10 moved from 0.7070 to 0.7096 (SciFact) and 0.3457 to 0.3508
** (NFCorpus-pre) against the weights learned before the expansion
** (5-fold cross-validated: 0.5261 to 0.5269, the mean of the two). The
** fused stage-1 score carries most weight: the reranker corrects that
** order with title coverage, dense feedback, bigrams and proximity, and
** demotes candidates that merely echo the feedback terms. */
const double rerank_default_weights[RERANK_NFEAT] = {
    /* bm25  dense  fused cover  title prox window bigram len  dprf lprf   ql   tbm25 */
    -0.05, -0.75, 3.9, -0.85, 2.1, 0.4, 0.05, 1.1, -0.1, 1.7, -0.65, -0.1, 0.05};

/* ---------------------------------------------------------------- */
/* Query                                                              */
/* ---------------------------------------------------------------- */

void rerank_query_init(rerank_qinfo *qi, const bm25_index *ix, const lex_query *q, double k1,
                       double b, double wt, double wb) {
    memset(qi, 0, sizeof *qi);
    qi->k1 = k1;
    qi->b = b;
    qi->wt = wt;
    qi->wb = wb;
    bm25_avg_lengths(ix, &qi->avg_t, &qi->avg_b);
    const char *p = q->terms.p;
    for (int i = 0; i < q->nterms; i++) {
        size_t l = strlen(p);
        int64_t id = bm25_term_id(ix, p, l);
        p += l + 1;
        int slot = -1;
        if (id >= 0) {
            for (int j = 0; j < qi->nd; j++)
                if (qi->id[j] == (uint32_t)id) slot = j;
            if (slot < 0 && qi->nd < RERANK_MAXQ) {
                slot = qi->nd++;
                qi->id[slot] = (uint32_t)id;
                bm25_term_stats(ix, (uint32_t)id, &qi->idf[slot], &qi->pc[slot]);
            }
            if (slot >= 0) qi->mult[slot]++;
        }
        if (qi->nseq < RERANK_MAXQ) qi->seq[qi->nseq++] = slot;
    }
    for (int j = 0; j < qi->nd; j++) qi->idf_sum += qi->idf[j];
}

int rerank_slot(const rerank_qinfo *qi, uint32_t id) {
    for (int j = 0; j < qi->nd; j++)
        if (qi->id[j] == id) return j;
    return -1;
}

/* ---------------------------------------------------------------- */
/* Features of one candidate                                          */
/* ---------------------------------------------------------------- */

/* Smallest span of field[0..n) holding every slot in `want` (a bit set of
** m slots); 0 when some is missing. Two pointers over the positions. */
static uint32_t min_window(const int16_t *f, uint32_t n, uint64_t want, int m) {
    int cnt[RERANK_MAXQ] = {0};
    int have = 0;
    uint32_t best = 0, lo = 0;
    for (uint32_t hi = 0; hi < n; hi++) {
        int s = f[hi];
        if (s < 0 || !(want >> s & 1)) continue;
        if (cnt[s]++ == 0) have++;
        while (have == m) {
            uint32_t w = hi - lo + 1;
            if (!best || w < best) best = w;
            int t = f[lo++];
            if (t >= 0 && (want >> t & 1) && --cnt[t] == 0) have--;
        }
    }
    return best;
}

void rerank_doc_features(const rerank_qinfo *qi, const int16_t *slot, uint32_t nt, uint32_t nb,
                         double *f) {
    double tft[RERANK_MAXQ] = {0}, tfb[RERANK_MAXQ] = {0}, acc[RERANK_MAXQ] = {0};
    uint64_t in_t = 0, in_b = 0;
    for (uint32_t i = 0; i < nt + nb; i++) {
        int s = slot[i];
        if (s < 0) continue;
        if (i < nt) { tft[s]++; in_t |= 1ull << s; }
        else { tfb[s]++; in_b |= 1ull << s; }
    }
    /* BM25F, as bm25.c scores it */
    double avg = qi->wt * qi->avg_t + qi->wb * qi->avg_b;
    if (!(avg > 0)) avg = 1;
    double dl = qi->wt * nt + qi->wb * nb;
    double K = qi->k1 * (1 - qi->b + qi->b * dl / avg);
    double bm = 0, cover = 0, title = 0, ql = 0, tbm = 0;
    double Kt = qi->k1 * (1 - qi->b + qi->b * nt / (qi->avg_t > 0 ? qi->avg_t : 1));
    for (int s = 0; s < qi->nd; s++) {
        double tf = qi->wt * tft[s] + qi->wb * tfb[s];
        if (tf > 0) bm += qi->mult[s] * qi->idf[s] * tf * (qi->k1 + 1) / (tf + K);
        if (tft[s] > 0) tbm += qi->mult[s] * qi->idf[s] * tft[s] * (qi->k1 + 1) / (tft[s] + Kt);
        if (qi->pc[s] > 0)
            ql += qi->mult[s] * log((tft[s] + tfb[s] + 300 * qi->pc[s]) / (nt + nb + 300.0));
        if ((in_t | in_b) >> s & 1) cover += qi->idf[s];
        if (in_t >> s & 1) title += qi->idf[s];
    }
    /* proximity, window and bigrams, field by field */
    double window = 0;
    int nbig = 0, found = 0;
    uint64_t bigram_seen = 0; /* bit i: query bigram (seq[i], seq[i+1]) found */
    for (int fld = 0; fld < 2; fld++) {
        const int16_t *x = slot + (fld ? nt : 0);
        uint32_t n = fld ? nb : nt;
        int64_t prev = -1;
        for (uint32_t i = 0; i < n; i++) {
            int s = x[i];
            if (s < 0) continue;
            if (prev >= 0 && x[prev] != s) {
                double d = (double)(i - (uint32_t)prev);
                if (d <= 5) {
                    acc[s] += qi->idf[x[prev]] / (d * d);
                    acc[x[prev]] += qi->idf[s] / (d * d);
                }
            }
            if (prev >= 0 && i == (uint32_t)prev + 1)
                for (int j = 0; j + 1 < qi->nseq && j < 64; j++)
                    if (qi->seq[j] == x[prev] && qi->seq[j + 1] == s) bigram_seen |= 1ull << j;
            prev = i;
        }
        uint64_t in = fld ? in_b : in_t;
        int m = __builtin_popcountll(in);
        if (m >= 2 && qi->nd > 0) {
            uint32_t w = min_window(x, n, in, m);
            double v = w ? ((double)m / qi->nd) * ((double)m / w) : 0;
            if (v > window) window = v;
        }
    }
    for (int j = 0; j + 1 < qi->nseq && j < 64; j++) {
        int a = qi->seq[j], c = qi->seq[j + 1];
        if (a < 0 || c < 0 || a == c) continue;
        /* count each distinct bigram once */
        int dup = 0;
        for (int i = 0; i < j; i++)
            if (qi->seq[i] == a && qi->seq[i + 1] == c) dup = 1;
        if (dup) continue;
        nbig++;
        if (bigram_seen >> j & 1) found++;
    }
    double prox = 0;
    for (int s = 0; s < qi->nd; s++)
        if (acc[s] > 0) prox += qi->idf[s] * acc[s] * (qi->k1 + 1) / (acc[s] + K);
    double idfs = qi->idf_sum > 0 ? qi->idf_sum : 1;
    f[RERANK_BM25] = bm;
    f[RERANK_COVER] = cover / idfs;
    f[RERANK_TITLE] = title / idfs;
    f[RERANK_PROX] = prox;
    f[RERANK_WINDOW] = window;
    f[RERANK_BIGRAM] = nbig ? (double)found / nbig : 0;
    f[RERANK_LEN] = log(1.0 + nt + nb);
    f[RERANK_QL] = ql;
    f[RERANK_TBM25] = tbm;
}

/* ---------------------------------------------------------------- */
/* Candidates: term slots, features, scoring                          */
/* ---------------------------------------------------------------- */

/* Term ids of a chunk tokenized here (no forward list), appended to one
** buffer for all the candidates; UINT32_MAX for a term the index does
** not know (none, at the snapshot the index reflects). */
typedef struct tokids {
    const bm25_index *ix;
    uint32_t *id;
    size_t n, cap;
    int oom;
} tokids;

static int id_tok(void *arg, const char *t, int n, int start, int end) {
    (void)start;
    (void)end;
    tokids *a = arg;
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 1024;
        uint32_t *x = realloc(a->id, c * sizeof *x);
        if (!x) { a->oom = 1; return 1; }
        a->id = x;
        a->cap = c;
    }
    int64_t id = bm25_term_id(a->ix, t, (size_t)n);
    a->id[a->n++] = id < 0 ? UINT32_MAX : (uint32_t)id;
    return 0;
}

/* One candidate's terms, title then body. */
typedef struct cterms {
    const uint32_t *ids; /* nt + nb ids: its forward list, or in the tokids buffer */
    size_t off;          /* without a forward list: offset of its ids in that buffer */
    uint32_t nt, nb;     /* title and body positions */
} cterms;

/* The terms of c[0..n): from the BM25 index's forward lists where it has
** them, else by tokenizing the chunk's title and text with the reader's
** tokenizer -- the same ids either way, so every feature (LPRF's
** expansion included) is the same whichever path produced them. */
static plumb_status cand_terms(const bm25_index *ix, reader *r, const rerank_cand *c, size_t n,
                               cterms *ct, tokids *tk) {
    plumb_status rc = PLUMB_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (bm25_forward(ix, c[i].rowid, &ct[i].ids, &ct[i].nt, &ct[i].nb)) continue;
        ct[i].ids = NULL;
        ct[i].off = tk->n;
        sqlite3_stmt *st = r->st_hit;
        sqlite3_bind_int64(st, 1, c[i].rowid);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            const char *title = (const char *)sqlite3_column_text(st, 3);
            int tl = sqlite3_column_bytes(st, 3);
            if (title && tok_run(r->tok, title, tl, id_tok, tk) < 0) tk->oom = 1;
            ct[i].nt = (uint32_t)(tk->n - ct[i].off);
            const char *text = (const char *)sqlite3_column_text(st, 1);
            int xl = sqlite3_column_bytes(st, 1);
            if (text && !tk->oom && tok_run(r->tok, text, xl, id_tok, tk) < 0) tk->oom = 1;
            ct[i].nb = (uint32_t)(tk->n - ct[i].off - ct[i].nt);
        } else {
            rc = src == SQLITE_DONE
                     ? err_set(PLUMB_CORRUPT, "chunk %lld is not in the chunks table",
                               (long long)c[i].rowid)
                     : store_err(r->conn, src, "rerank: read chunk");
        }
        sqlite3_reset(st);
        if (!rc && tk->oom) rc = err_set(PLUMB_NOMEM, "rerank");
    }
    /* the buffer has stopped moving: point into it */
    for (size_t i = 0; i < n && !rc; i++)
        if (!ct[i].ids) ct[i].ids = tk->id ? tk->id + ct[i].off : NULL;
    return rc;
}

#define RERANK_FB 5   /* feedback candidates */
#define RERANK_FBT 20 /* expansion terms */

typedef struct fbterm {
    uint32_t id;
    double w;
} fbterm;

static int cmp_fbw(const void *a, const void *b) {
    const fbterm *x = a, *y = b;
    if (x->w != y->w) return x->w > y->w ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Open addressing over term ids (power-of-two capacity, load <= 1/2). */
typedef struct idtab {
    uint32_t *key;
    int32_t *val; /* -1: empty */
    double *w;
    uint32_t mask;
} idtab;

static int idtab_init(idtab *t, size_t n, uint32_t *kbuf, int32_t *vbuf, double *wbuf,
                      size_t cap) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    if (c > cap) {
        t->key = malloc(c * sizeof *t->key);
        t->val = malloc(c * sizeof *t->val);
        t->w = malloc(c * sizeof *t->w);
        if (!t->key || !t->val || !t->w) {
            free(t->key);
            free(t->val);
            free(t->w);
            return -1;
        }
    } else {
        t->key = kbuf;
        t->val = vbuf;
        t->w = wbuf;
    }
    t->mask = (uint32_t)c - 1;
    for (size_t i = 0; i < c; i++) t->val[i] = -1;
    return 0;
}

static void idtab_free(idtab *t, const uint32_t *kbuf) {
    if (t->key != kbuf) {
        free(t->key);
        free(t->val);
        free(t->w);
    }
}

static inline uint32_t idtab_slot(const idtab *t, uint32_t id) {
    uint32_t h = (id * 2654435761u) & t->mask;
    while (t->val[h] >= 0 && t->key[h] != id) h = (h + 1) & t->mask;
    return h;
}

/* The expansion terms of the feedback candidates (see LPRF); returns
** their count (0 when they have no terms). Weights are summed in a hash
** table; idf is looked up for the RERANK_FBT * 4 heaviest only. */
static int expansion(const bm25_index *ix, const rerank_qinfo *qi, const cterms *ct, size_t n,
                     fbterm *out) {
    size_t total = 0;
    int used = 0;
    for (size_t i = 0; i < n && i < RERANK_FB; i++) total += ct[i].nt + ct[i].nb;
    if (!total) return 0;
    static _Thread_local uint32_t kb[4096];
    static _Thread_local int32_t vb[4096];
    static _Thread_local double wb[4096];
    idtab t;
    if (idtab_init(&t, total, kb, vb, wb, 4096)) return 0; /* the feature is 0 */
    int32_t nd = 0;
    for (size_t i = 0; i < n && i < RERANK_FB; i++) {
        const uint32_t *ids = ct[i].ids;
        uint32_t nt = ct[i].nt, nb = ct[i].nb;
        if (!(nt + nb)) continue;
        used++;
        double inc = 1.0 / (nt + nb);
        for (uint32_t j = 0; j < nt + nb; j++) {
            if (ids[j] == UINT32_MAX) continue; /* unknown to the index */
            uint32_t h = idtab_slot(&t, ids[j]);
            if (t.val[h] < 0) { t.key[h] = ids[j]; t.val[h] = nd++; t.w[h] = 0; }
            t.w[h] += inc;
        }
    }
    /* the RERANK_FBT * 4 heaviest non-query terms, kept sorted descending */
    enum { PRE = RERANK_FBT * 4 };
    fbterm top[PRE];
    int ntop = 0;
    for (uint32_t h = 0; h <= t.mask; h++) {
        if (t.val[h] < 0 || rerank_slot(qi, t.key[h]) >= 0) continue;
        fbterm e = {t.key[h], t.w[h]};
        if (ntop == PRE && cmp_fbw(&e, &top[PRE - 1]) >= 0) continue;
        int j = ntop < PRE ? ntop++ : PRE - 1;
        while (j > 0 && cmp_fbw(&e, &top[j - 1]) < 0) { top[j] = top[j - 1]; j--; }
        top[j] = e;
    }
    idtab_free(&t, kb);
    int k = 0;
    for (int i = 0; i < ntop; i++) {
        double idf;
        bm25_term_stats(ix, top[i].id, &idf, NULL);
        top[i].w *= idf / used;
        if (top[i].w > 0) top[k++] = top[i];
    }
    qsort(top, (size_t)k, sizeof *top, cmp_fbw);
    int nout = k < RERANK_FBT ? k : RERANK_FBT;
    memcpy(out, top, (size_t)nout * sizeof *out);
    return nout;
}

plumb_status rerank_features(const bm25_index *ix, reader *r, const vec_index *v,
                             const rerank_qinfo *qi, rerank_cand *c, size_t n) {
    tokids tk = {ix, NULL, 0, 0, 0};
    int16_t *slot = NULL;
    uint32_t cap = 0;
    float *cen = NULL;
    cterms *ct = calloc(n ? n : 1, sizeof *ct);
    if (!ct) return err_set(PLUMB_NOMEM, "rerank");
    plumb_status rc = cand_terms(ix, r, c, n, ct, &tk);
    if (rc) goto done;
    fbterm fb[RERANK_FBT];
    int nfb = expansion(ix, qi, ct, n, fb);
    /* one table: term id -> query slot (0..63) or 64 + feedback term */
    uint32_t tk_[256];
    int32_t tv[256];
    double tw[256];
    idtab look;
    idtab_init(&look, RERANK_MAXQ + RERANK_FBT, tk_, tv, tw, 256); /* fits: never allocates */
    for (int j = 0; j < qi->nd; j++) {
        uint32_t h = idtab_slot(&look, qi->id[j]);
        look.key[h] = qi->id[j];
        look.val[h] = j;
    }
    for (int j = 0; j < nfb; j++) {
        uint32_t h = idtab_slot(&look, fb[j].id);
        if (look.val[h] < 0) { look.key[h] = fb[j].id; look.val[h] = 64 + j; }
    }
    /* dense feedback: the mean vector of the first RERANK_FB candidates */
    uint32_t dim = v ? vec_dim(v) : 0;
    if (dim && (cen = calloc(dim, sizeof *cen))) {
        int got = 0;
        for (size_t i = 0; i < n && i < RERANK_FB; i++) {
            const float *x = vec_get(v, c[i].rowid);
            if (!x) continue;
            for (uint32_t j = 0; j < dim; j++) cen[j] += x[j];
            got++;
        }
        if (!got) { free(cen); cen = NULL; }
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t *ids = ct[i].ids;
        uint32_t nt = ct[i].nt, nb = ct[i].nb;
        if (nt + nb > cap) {
            int16_t *x = realloc(slot, (nt + nb) * sizeof *x);
            if (!x) { rc = err_set(PLUMB_NOMEM, "rerank"); break; }
            slot = x;
            cap = nt + nb;
        }
        double tf[RERANK_FBT] = {0};
        for (uint32_t j = 0; j < nt + nb; j++) {
            /* UINT32_MAX (unknown) is never a key: -1 */
            int32_t code = look.val[idtab_slot(&look, ids[j])];
            slot[j] = (int16_t)(code >= 0 && code < 64 ? code : -1);
            if (code >= 64) tf[code - 64] += j < nt ? qi->wt : qi->wb;
        }
        double lp = 0; /* LPRF */
        double avg = qi->wt * qi->avg_t + qi->wb * qi->avg_b;
        if (!(avg > 0)) avg = 1;
        double K = qi->k1 * (1 - qi->b + qi->b * (qi->wt * nt + qi->wb * nb) / avg);
        for (int t = 0; t < nfb; t++)
            if (tf[t] > 0) lp += fb[t].w * tf[t] * (qi->k1 + 1) / (tf[t] + K);
        rerank_doc_features(qi, slot, nt, nb, c[i].feat);
        c[i].feat[RERANK_DENSE] = c[i].dense;
        c[i].feat[RERANK_FUSED] = c[i].fused;
        const float *x = cen ? vec_get(v, c[i].rowid) : NULL;
        c[i].feat[RERANK_DPRF] = x ? kern_dot_f32(x, cen, dim) : NAN;
        c[i].feat[RERANK_LPRF] = lp;
    }
done:
    free(slot);
    free(cen);
    free(tk.id);
    free(ct);
    return rc;
}

void rerank_normalise(rerank_cand *c, size_t n) {
    static const int scaled[] = {RERANK_BM25, RERANK_DENSE, RERANK_FUSED, RERANK_PROX, RERANK_LEN,
                                 RERANK_DPRF, RERANK_LPRF, RERANK_QL, RERANK_TBM25};
    for (size_t k = 0; k < sizeof scaled / sizeof *scaled; k++) {
        int f = scaled[k];
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double x = c[i].feat[f];
            if (isnan(x)) continue;
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        for (size_t i = 0; i < n; i++) {
            double x = c[i].feat[f];
            c[i].feat[f] = isnan(x) || !(hi > lo) ? 0 : (x - lo) / (hi - lo);
        }
    }
}

double rerank_dot(const double *w, const double *f) {
    double s = 0;
    for (int i = 0; i < RERANK_NFEAT; i++) s += w[i] * f[i];
    return s;
}

static int cmp_score(const void *a, const void *b) {
    const rerank_cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

void rerank_score(rerank_cand *c, size_t n, const double *w, const rerank_trees *t) {
    for (size_t i = 0; i < n; i++) c[i].score = rerank_dot(w, c[i].feat) + trees_predict(t, c[i].feat);
    rerank_sort(c, n);
}

void rerank_sort(rerank_cand *c, size_t n) { qsort(c, n, sizeof *c, cmp_score); }

/* ---------------------------------------------------------------- */
/* Weights as text: "bm25=1,dense=0.6,..." (settings, parameter files) */
/* ---------------------------------------------------------------- */

int rerank_weights_parse(const char *s, double *w) {
    double v[RERANK_NFEAT];
    memcpy(v, rerank_default_weights, sizeof v);
    while (s && *s) {
        const char *eq = strchr(s, '=');
        if (!eq) return -1;
        int f = -1;
        for (int i = 0; i < RERANK_NFEAT; i++)
            if (strlen(rerank_feature_names[i]) == (size_t)(eq - s) &&
                !memcmp(rerank_feature_names[i], s, (size_t)(eq - s)))
                f = i;
        if (f < 0) return -1;
        char *end;
        double x = strtod(eq + 1, &end);
        if (end == eq + 1 || !isfinite(x) || (*end && *end != ',')) return -1;
        v[f] = x;
        s = *end ? end + 1 : end;
    }
    memcpy(w, v, sizeof v);
    return 0;
}

void rerank_weights_format(const double *w, buf *out) {
    for (int i = 0; i < RERANK_NFEAT; i++)
        buf_printf(out, "%s%s=%.6g", i ? "," : "", rerank_feature_names[i], w[i]);
}

_Static_assert(sizeof(((idx_settings *)0)->rerank_w) == RERANK_NFEAT * sizeof(double),
               "idx_settings.rerank_w holds one weight per feature");
