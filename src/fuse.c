/*
** fuse.c -- merging the lexical and dense candidate lists into one
** ranking (hybrid search, stage 1).
**
** Methods (plumb.h, plumb_fusion):
**   MINMAX  s = (1 - alpha) * mm(lex) + alpha * mm(dense), where mm maps
**           a source's scores over the candidates to [0, 1] (all equal:
**           1); a candidate the lexical list did not return takes the
**           lexical minimum (0 after mapping).
**   ZSCORE  the same with (x - mean) / sd over each source's candidates
**           (sd 0: 0); a missing lexical score takes the lowest z.
**   RRF     s = (1 - alpha) / (rrf_k + rank_lex) + alpha / (rrf_k +
**           rank_dense), ranks 1-based within each list; a source that
**           did not return the candidate adds nothing. (With alpha 0.5
**           this is the usual RRF, halved.)
** Dense scores of lexical candidates that the dense list missed are
** exact (the caller computes them from the stored vectors), so only the
** lexical side ever lacks a value. Ties: ascending chunk id.
**
** Pools. The lists may be deeper than the fusion's candidate counts
** (an evaluation ranks 1,000 documents; fusion takes the top 100 of each
** list). Only the pool -- the top pool_lex lexical and top pool_dense
** dense candidates -- defines the normalisation and ranks first; a
** lexical score or rank beyond pool_lex counts as absent. Candidates
** outside the pool follow, in the same formula's order. So the top of a
** deep fused list is exactly the fused list a k = 10 search returns.
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_rowid(const void *a, const void *b) {
    const fuse_cand *x = a, *y = b;
    return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

static int cmp_fused(const void *a, const void *b) {
    const fuse_cand *x = a, *y = b;
    if (x->pool != y->pool) return x->pool ? -1 : 1;
    if (x->fused != y->fused) return x->fused > y->fused ? -1 : 1;
    return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

size_t fuse_union(const lex_hit *lex, size_t nl, const lex_hit *dense, size_t nd, fuse_cand *out) {
    size_t n = 0;
    for (size_t i = 0; i < nl; i++)
        out[n++] = (fuse_cand){lex[i].rowid, lex[i].score, NAN, (int)i + 1, 0, 0, 0, NAN};
    qsort(out, n, sizeof *out, cmp_rowid);
    size_t base = n;
    for (size_t i = 0; i < nd; i++) {
        fuse_cand key = {.rowid = dense[i].rowid};
        fuse_cand *f = bsearch(&key, out, base, sizeof *out, cmp_rowid);
        if (f) {
            f->dense = dense[i].score;
            f->rank_dense = (int)i + 1;
        } else {
            out[n++] = (fuse_cand){dense[i].rowid, NAN, dense[i].score, 0, (int)i + 1, 0, 0, NAN};
        }
    }
    return n;
}

typedef struct moments { double lo, hi, mean, sd; size_t n; } moments;

static int in_pool(const fuse_cand *c, int pl, int pd) {
    return (c->rank_lex && c->rank_lex <= pl) || (c->rank_dense && c->rank_dense <= pd);
}

/* Moments over the pool's members (see above). */
static moments stats_of(const fuse_cand *c, size_t n, int dense, int pl, int pd) {
    moments m = {INFINITY, -INFINITY, 0, 0, 0};
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double x = dense ? c[i].dense : c[i].lex;
        if (isnan(x) || !in_pool(&c[i], pl, pd)) continue;
        if (x < m.lo) m.lo = x;
        if (x > m.hi) m.hi = x;
        s += x;
        m.n++;
    }
    if (!m.n) return m;
    m.mean = s / (double)m.n;
    for (size_t i = 0; i < n; i++) {
        double x = dense ? c[i].dense : c[i].lex;
        if (!isnan(x) && in_pool(&c[i], pl, pd)) s2 += (x - m.mean) * (x - m.mean);
    }
    m.sd = sqrt(s2 / (double)m.n);
    return m;
}

static double norm(double x, const moments *m, plumb_fusion how) {
    if (!m->n) return 0;
    if (how == PLUMB_FUSE_ZSCORE) {
        if (isnan(x)) x = m->lo;
        return m->sd > 0 ? (x - m->mean) / m->sd : 0;
    }
    if (isnan(x)) return 0;
    return m->hi > m->lo ? (x - m->lo) / (m->hi - m->lo) : 1;
}

void fuse_score(fuse_cand *c, size_t n, plumb_fusion how, double alpha, double rrf_k,
                int pool_lex, int pool_dense) {
    for (size_t i = 0; i < n; i++) {
        c[i].pool = in_pool(&c[i], pool_lex, pool_dense);
        if (c[i].rank_lex > pool_lex) { /* beyond the lexical pool: absent */
            c[i].lex_out = c[i].lex;
            c[i].lex = NAN;
        }
    }
    if (how == PLUMB_FUSE_RRF) {
        for (size_t i = 0; i < n; i++) {
            int rl = c[i].rank_lex, rd = c[i].rank_dense;
            if (c[i].pool) {
                if (rl > pool_lex) rl = 0;
                if (rd > pool_dense) rd = 0;
            }
            c[i].fused = (rl ? (1 - alpha) / (rrf_k + rl) : 0) + (rd ? alpha / (rrf_k + rd) : 0);
        }
    } else {
        moments ml = stats_of(c, n, 0, pool_lex, pool_dense);
        moments md = stats_of(c, n, 1, pool_lex, pool_dense);
        for (size_t i = 0; i < n; i++) {
            double lx = c[i].pool ? c[i].lex : (isnan(c[i].lex) ? c[i].lex_out : c[i].lex);
            c[i].fused = (1 - alpha) * norm(lx, &ml, how) + alpha * norm(c[i].dense, &md, how);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!isnan(c[i].lex_out)) c[i].lex = c[i].lex_out; /* report the true score */
    qsort(c, n, sizeof *c, cmp_fused);
}
