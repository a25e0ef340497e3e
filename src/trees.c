/*
** trees.c -- a small ensemble of regression trees over the reranker's
** features (LambdaMART, Burges 2010), learned by plumb tune on top of the
** linear model and added to its score.
**
** HOW IT WORKS
**   Model. score = w . f + sum over trees of tree(f), f the normalised
**   features of rerank.c. A tree's internal node sends f left when
**   f[feature] <= threshold; a leaf holds its output (the learning rate
**   already applied). Nodes are stored in preorder (a node, its left
**   subtree, its right subtree), which is also the text form kept in the
**   index's settings ("rerank_trees"):
**     TREE [" " TREE]...     TREE = NODE ["," NODE]...
**     NODE = FEATURE ":" THRESHOLD  |  "=" OUTPUT
**   with numbers printed exactly (%.17g), so a stored model scores
**   bit-for-bit as the one tune measured.
**
**   Learning (trees_fit). Each round computes, per query, LambdaRank
**   gradients for nDCG@10 from the current scores: for every pair of
**   candidates with different judgments, |delta nDCG@10| of swapping them
**   (gains rel, discounts 1/log2(rank+2) within the first 10, ideal DCG
**   of the query's judgments) times the logistic of their score
**   difference; the Hessian the same with rho (1 - rho). A tree is grown
**   best-first on the gradients (split gain SL^2/nL + SR^2/nR - S^2/n,
**   at least `minleaf` candidates a leaf, at most `leaves` leaves), its
**   leaves set to the Newton step lr * sum(g) / sum(h) (0 when sum(h) <
**   TREES_MIN_HESS: a leaf of pairs far out of order), and the scores
**   moved by it. Split points are midpoints between distinct values,
**   scanned from one presorted order per feature.
**
** WORKLOAD: tune only. Per tree, (2 leaves - 1) scans of every candidate
** per feature, plus the pairs of each query; NFCorpus-pre's 78k training
** candidates take about a second per 100 trees of 8 leaves.
*/
#include "plumb_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NF = RERANK_NFEAT };
#define TREES_MIN_HESS 1e-3 /* as LightGBM's min_sum_hessian_in_leaf */

void trees_free(rerank_trees *t) {
    if (!t) return;
    free(t->feat);
    free(t->val);
    free(t->right);
    free(t->root);
    free(t);
}

double trees_predict(const rerank_trees *t, const double *f) {
    double s = 0;
    if (!t) return 0;
    for (int k = 0; k < t->ntrees; k++) {
        int32_t i = t->root[k];
        while (t->feat[i] >= 0) i = f[t->feat[i]] <= t->val[i] ? i + 1 : t->right[i];
        s += t->val[i];
    }
    return s;
}

/* ---------------------------------------------------------------- */
/* Text form                                                          */
/* ---------------------------------------------------------------- */

static int grow(rerank_trees *t, int32_t want) {
    if (want <= t->cap) return 0;
    int32_t nc = t->cap ? t->cap * 2 : 64;
    while (nc < want) nc *= 2;
    int16_t *f = realloc(t->feat, (size_t)nc * sizeof *f);
    if (f) t->feat = f;
    double *v = realloc(t->val, (size_t)nc * sizeof *v);
    if (v) t->val = v;
    int32_t *r = realloc(t->right, (size_t)nc * sizeof *r);
    if (r) t->right = r;
    if (!f || !v || !r) return -1;
    t->cap = nc;
    return 0;
}

static int add_root(rerank_trees *t) {
    if (t->ntrees == t->rcap) {
        int nc = t->rcap ? t->rcap * 2 : 16;
        int32_t *r = realloc(t->root, (size_t)nc * sizeof *r);
        if (!r) return -1;
        t->root = r;
        t->rcap = nc;
    }
    t->root[t->ntrees++] = t->nnodes;
    return 0;
}

/* A number as trees_format prints it starts with a digit, after an
** optional '-': strtod and strtol would also skip leading white space
** and take a '+', "inf" or "nan", none of which the exact form has. */
static int num_start(const char *p) {
    if (*p == '-') p++;
    return *p >= '0' && *p <= '9';
}

/* One tree in preorder from *s; fills the right-child links. */
static int parse_node(rerank_trees *t, const char **s, int depth) {
    if (depth > 64 || grow(t, t->nnodes + 1)) return -1;
    int32_t at = t->nnodes++;
    const char *p = *s;
    char *end;
    errno = 0;
    /* strtod's ERANGE is not checked: an overflow is caught by isfinite,
    ** and an underflow to a subnormal is what %.17g printed, exactly */
    if (*p == '=') {
        if (!num_start(p + 1)) return -1;
        double v = strtod(p + 1, &end);
        if (end == p + 1 || !isfinite(v)) return -1;
        t->feat[at] = -1;
        t->val[at] = v;
        t->right[at] = -1;
        *s = end;
        return 0;
    }
    if (*p < '0' || *p > '9') return -1;
    long f = strtol(p, &end, 10);
    if (end == p || errno || f >= NF || *end != ':') return -1;
    p = end + 1;
    if (!num_start(p)) return -1;
    double thr = strtod(p, &end);
    if (end == p || !isfinite(thr)) return -1;
    t->feat[at] = (int16_t)f;
    t->val[at] = thr;
    *s = end;
    for (int side = 0; side < 2; side++) {
        if (**s != ',') return -1;
        (*s)++;
        if (side) t->right[at] = t->nnodes;
        if (parse_node(t, s, depth + 1)) return -1;
    }
    return 0;
}

int trees_parse(const char *s, rerank_trees **out) {
    *out = NULL;
    if (!s || !*s) return 0; /* no trees */
    rerank_trees *t = calloc(1, sizeof *t);
    if (!t) return -2;
    while (*s) {
        if (add_root(t) || parse_node(t, &s, 0)) { trees_free(t); return -1; }
        if (*s == ' ' && s[1]) s++; /* one space between trees, none at the end */
        else if (*s) { trees_free(t); return -1; }
    }
    *out = t;
    return 0;
}

static void format_node(const rerank_trees *t, int32_t i, buf *out) {
    if (t->feat[i] < 0) {
        buf_printf(out, "=%.17g", t->val[i]);
        return;
    }
    buf_printf(out, "%d:%.17g,", t->feat[i], t->val[i]);
    format_node(t, i + 1, out);
    buf_putc(out, ',');
    format_node(t, t->right[i], out);
}

void trees_format(const rerank_trees *t, buf *out) {
    for (int k = 0; t && k < t->ntrees; k++) {
        if (k) buf_putc(out, ' ');
        format_node(t, t->root[k], out);
    }
}

/* ---------------------------------------------------------------- */
/* Learning                                                           */
/* ---------------------------------------------------------------- */

typedef struct fitter {
    const double *x;      /* n x NF */
    size_t n;
    const double *g, *h;
    uint32_t *sorted;     /* NF orders of the n rows, by feature value */
    int32_t *leaf_of;     /* row -> open leaf slot */
    int minleaf;
} fitter;

typedef struct open_leaf {
    int32_t node;         /* its node in the tree being grown */
    size_t count;
    double sg, sh;
    double gain;          /* of its best split; <= 0: none */
    int feat;
    double thr;
} open_leaf;

static void best_split(const fitter *ft, int slot, open_leaf *L) {
    L->gain = 0;
    if (L->count < 2 * (size_t)ft->minleaf) return;
    double base = L->sg * L->sg / (double)L->count;
    for (int f = 0; f < NF; f++) {
        const uint32_t *o = ft->sorted + (size_t)f * ft->n;
        size_t nl = 0;
        double sl = 0, prev = 0;
        for (size_t k = 0; k < ft->n; k++) {
            uint32_t r = o[k];
            if (ft->leaf_of[r] != slot) continue;
            double v = ft->x[(size_t)r * NF + f];
            if (nl >= (size_t)ft->minleaf && v > prev && L->count - nl >= (size_t)ft->minleaf) {
                double sr = L->sg - sl;
                double gain = sl * sl / (double)nl + sr * sr / (double)(L->count - nl) - base;
                if (gain > L->gain + 1e-12) {
                    L->gain = gain;
                    L->feat = f;
                    L->thr = prev + (v - prev) / 2;
                    if (L->thr >= v) L->thr = prev; /* adjacent doubles: keep v right */
                }
            }
            nl++;
            sl += ft->g[r];
            prev = v;
        }
    }
}

/* Grow one tree on the gradients into t (appended); the rows' leaves
** are left in ft->leaf_of and the scores F moved by the tree's outputs. */
static int grow_tree(fitter *ft, rerank_trees *t, int leaves, double lr, double *F) {
    open_leaf *L = malloc((size_t)leaves * sizeof *L);
    if (!L || add_root(t)) { free(L); return -1; }
    /* nodes in creation order; rewritten to preorder at the end */
    int rc = -1;
    int32_t cap = 2 * leaves, nn = 1;
    int16_t *nf = malloc((size_t)cap * sizeof *nf);
    double *nv = malloc((size_t)cap * sizeof *nv);
    int32_t *nlft = malloc((size_t)cap * sizeof *nlft), *nrgt = malloc((size_t)cap * sizeof *nrgt);
    if (!nf || !nv || !nlft || !nrgt) goto done;
    nf[0] = -1;
    int nl = 1;
    L[0] = (open_leaf){.node = 0};
    for (size_t r = 0; r < ft->n; r++) {
        ft->leaf_of[r] = 0;
        L[0].count++;
        L[0].sg += ft->g[r];
        L[0].sh += ft->h[r];
    }
    best_split(ft, 0, &L[0]);
    while (nl < leaves) {
        int b = -1;
        for (int i = 0; i < nl; i++)
            if (L[i].gain > 0 && (b < 0 || L[i].gain > L[b].gain)) b = i;
        if (b < 0) break;
        /* split leaf b: it keeps the left half, slot nl takes the right */
        int32_t parent = L[b].node, lnode = nn++, rnode = nn++;
        nf[parent] = (int16_t)L[b].feat;
        nv[parent] = L[b].thr;
        nlft[parent] = lnode;
        nrgt[parent] = rnode;
        nf[lnode] = nf[rnode] = -1;
        open_leaf left = {.node = lnode}, right = {.node = rnode};
        for (size_t r = 0; r < ft->n; r++) {
            if (ft->leaf_of[r] != b) continue;
            int go_right = ft->x[r * NF + L[b].feat] > L[b].thr;
            open_leaf *d = go_right ? &right : &left;
            d->count++;
            d->sg += ft->g[r];
            d->sh += ft->h[r];
            if (go_right) ft->leaf_of[r] = nl;
        }
        L[b] = left;
        L[nl] = right;
        best_split(ft, b, &L[b]);
        best_split(ft, nl, &L[nl]);
        nl++;
    }
    /* Newton step; a leaf whose pairs are all far out of order has almost
    ** no curvature, and its step would swamp the linear score: none */
    for (int i = 0; i < nl; i++)
        nv[L[i].node] = L[i].sh < TREES_MIN_HESS ? 0 : lr * L[i].sg / L[i].sh;
    for (size_t r = 0; r < ft->n; r++) F[r] += nv[L[ft->leaf_of[r]].node];
    /* preorder copy */
    if (grow(t, t->nnodes + nn)) goto done;
    int32_t stack[128], sp = 0, at = t->nnodes, patch[128];
    stack[sp] = 0;
    patch[sp++] = -1;
    while (sp) {
        sp--;
        int32_t i = stack[sp], fix = patch[sp];
        if (fix >= 0) t->right[fix] = at;
        t->feat[at] = nf[i];
        t->val[at] = nv[i];
        t->right[at] = -1;
        if (nf[i] >= 0) {
            stack[sp] = nrgt[i];
            patch[sp++] = at; /* the right child's position fills this node's link */
            stack[sp] = nlft[i];
            patch[sp++] = -1; /* the left child follows at once */
        }
        at++;
    }
    t->nnodes = at;
    rc = 0;
done:
    free(nf);
    free(nv);
    free(nlft);
    free(nrgt);
    free(L);
    return rc;
}

/* LambdaRank gradients of every candidate at scores F. */
static void lambdas(const trees_data *d, const double *F, double *g, double *h, int *rank,
                    uint32_t *ord) {
    memset(g, 0, d->n * sizeof *g);
    memset(h, 0, d->n * sizeof *h);
    for (size_t q = 0; q < d->nq; q++) {
        size_t a = d->qoff[q], m = d->qn[q];
        double idcg = d->idcg[q];
        if (!(idcg > 0) || m < 2) continue;
        for (size_t i = 0; i < m; i++) ord[i] = (uint32_t)i;
        for (size_t i = 1; i < m; i++) { /* insertion sort: best first, ties by position */
            uint32_t v = ord[i];
            size_t j = i;
            while (j > 0 && F[a + ord[j - 1]] < F[a + v]) { ord[j] = ord[j - 1]; j--; }
            ord[j] = v;
        }
        for (size_t i = 0; i < m; i++) rank[ord[i]] = (int)i;
        for (size_t i = 0; i < m; i++) {
            int ri = d->rel[a + i];
            if (ri <= 0) continue;
            double di = rank[i] < 10 ? 1 / log2(rank[i] + 2.0) : 0;
            for (size_t j = 0; j < m; j++) {
                int rj = d->rel[a + j];
                if (rj >= ri) continue;
                double dj = rank[j] < 10 ? 1 / log2(rank[j] + 2.0) : 0;
                double dd = fabs((double)(ri - rj) * (di - dj)) / idcg;
                if (dd == 0) continue;
                double rho = 1 / (1 + exp(F[a + i] - F[a + j]));
                g[a + i] += rho * dd;
                g[a + j] -= rho * dd;
                double hh = rho * (1 - rho) * dd;
                h[a + i] += hh;
                h[a + j] += hh;
            }
        }
    }
}

typedef struct keyed { double v; uint32_t r; } keyed;
static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

rerank_trees *trees_fit(const trees_data *d, double *F, const trees_cfg *cfg) {
    size_t n = d->n, maxq = 1;
    for (size_t q = 0; q < d->nq; q++)
        if (d->qn[q] > maxq) maxq = d->qn[q];
    rerank_trees *t = calloc(1, sizeof *t);
    double *g = malloc((n ? n : 1) * sizeof *g), *h = malloc((n ? n : 1) * sizeof *h);
    uint32_t *sorted = malloc((n ? n : 1) * NF * sizeof *sorted), *ord = malloc(maxq * sizeof *ord);
    int32_t *leaf_of = malloc((n ? n : 1) * sizeof *leaf_of);
    int *rank = malloc(maxq * sizeof *rank);
    int ok = t && g && h && sorted && ord && leaf_of && rank;
    if (ok) {
        keyed *kv = malloc((n ? n : 1) * sizeof *kv);
        ok = kv != NULL;
        for (int f = 0; f < NF && ok; f++) {
            uint32_t *o = sorted + (size_t)f * n;
            for (size_t r = 0; r < n; r++) kv[r] = (keyed){d->feat[r * NF + f], (uint32_t)r};
            qsort(kv, n, sizeof *kv, cmp_keyed);
            for (size_t r = 0; r < n; r++) o[r] = kv[r].r;
        }
        free(kv);
        fitter ft = {d->feat, n, g, h, sorted, leaf_of, cfg->minleaf > 0 ? cfg->minleaf : 1};
        for (int k = 0; k < cfg->ntrees && ok; k++) {
            lambdas(d, F, g, h, rank, ord);
            ok = grow_tree(&ft, t, cfg->leaves < 2 ? 2 : cfg->leaves > 64 ? 64 : cfg->leaves,
                           cfg->lr, F) == 0;
        }
    }
    free(g);
    free(h);
    free(sorted);
    free(ord);
    free(leaf_of);
    free(rank);
    if (!ok) { trees_free(t); return NULL; }
    return t;
}
