/*
** tune.c -- plumb_tune: learning BM25's k1 and b, the fusion weight and
** the feature reranker (weights, and trees on top) from training
** judgments.
**
** HOW IT WORKS
**   Cache. For each grid point (k1, b, and alpha when every index has
**   vectors) every training query is searched once (search.c with a sink
**   instead of stage 2): the normalised features of its top N candidates,
**   each candidate's judgment and a key for its document (candidates of
**   one document share it: MaxP) are kept. Scoring a model is then a pass
**   over the cache: per query, sort N scores and sum the gains of the
**   first 10 documents.
**
**   Grid. The point kept is the one where the SHIPPED reranker scores
**   best on the training queries: nothing is fitted while choosing it, so
**   the choice cannot reward a model that memorised the training set.
**
**   Models, at that point, chosen by 5-fold cross-validation over the
**   training queries (choose_model): the shipped weights; the weights
**   coordinate ascent learns from them (Metzler and Croft, 2007: each
**   weight in turn set to the best value of a line search over -2 .. 5 in
**   steps of 0.05, moving only on a strict improvement, until a pass
**   changes nothing or `rounds` passes were made; a ranking does not
**   change when all weights are scaled, so a bounded grid loses nothing
**   but resolution); and those weights plus a LambdaMART tree ensemble
**   (trees.c) of each configuration in tree_cfgs. Each candidate is
**   learned on four folds and scored on the fifth; the best mean wins
**   (ties: the simpler) and is learned again on every training query.
**
**   Held-out judgments go through the same cache code, searched only for
**   the final figures: nothing learned ever sees them.
**
** WORKLOAD: hundreds to thousands of training queries; one search per
** query and grid point, then six coordinate ascents and up to eleven tree
** fits (seconds each) at the point kept.
*/
#include "plumb_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NF = RERANK_NFEAT };

typedef struct tq {
    size_t off, n; /* candidates [off, off + n) of the cache */
    double idcg;   /* IDCG@10 of the query's judgments */
    int set;
} tq;

typedef struct tcache {
    double *feat;  /* NF per candidate */
    int *rel;      /* judgment of its document */
    int *doc;      /* key of its document within the query: the position of
                      the query's first candidate of the same document */
    size_t n, cap;
    tq *q;
    size_t nq, capq;
    int nsets;
} tcache;

static void cache_free(tcache *c) {
    free(c->feat);
    free(c->rel);
    free(c->doc);
    free(c->q);
    memset(c, 0, sizeof *c);
}

static double idcg10(const int *ideal, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n && i < 10; i++) s += ideal[i] / log2((double)i + 2);
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One candidate as a line of LETOR / SVMlight text: judgment, query,
** the normalised features numbered from 1, then the set, split,
** document and the query's ideal DCG@10 over all its judgments (for
** nDCG@10 computed from the candidates alone) as a comment. */
static void dump_line(FILE *f, int rel, int set, const char *split, const char *qid,
                      const double *feat, const char *doc, double idcg) {
    fprintf(f, "%d qid:%d_%s", rel, set, qid);
    for (int i = 0; i < NF; i++) fprintf(f, " %d:%.9g", i + 1, feat[i]);
    fprintf(f, " # set=%d split=%s doc=%s idcg=%.9g\n", set, split, doc, idcg);
}

/* Search every judged query of one set into the cache (alpha < 0: the
** index's fusion weight); with `dump`, each candidate is also written
** out (dump_line). */
static plumb_status collect(const plumb_tune_set *s, const plumb_qrels *qrels, int set, double k1,
                            double b, double alpha, int n_rerank, tcache *c, FILE *dump,
                            const char *split) {
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = n_rerank;
    sp.with_text = 0;
    sp.snippet_tokens = 0;
    sp.log = 0;
    sp.bm25_k1 = k1;
    sp.bm25_b = b;
    sp.alpha = alpha;
    size_t nq = plumb_queries_count(s->queries);
    for (size_t i = 0; i < nq; i++) {
        const char *qid, *text;
        eval_query_at(s->queries, i, &qid, &text);
        const int *ideal;
        size_t nideal;
        eval_ideal(qrels, qid, &ideal, &nideal);
        if (!nideal) continue;
        search_sink sink = {n_rerank, NULL, 0};
        plumb_hits *h = NULL;
        plumb_status rc = search_run_ex(s->db, text, &sp, &sink, &h);
        if (rc) return rc;
        if (c->nq == c->capq) {
            size_t cap = c->capq ? c->capq * 2 : 1024;
            tq *x = realloc(c->q, cap * sizeof *x);
            if (!x) { free(sink.cand); plumb_hits_free(h); return err_set(PLUMB_NOMEM, "tune"); }
            c->q = x;
            c->capq = cap;
        }
        if (c->n + sink.n > c->cap) {
            size_t cap = (c->n + sink.n) * 2 + 4096;
            double *f = realloc(c->feat, cap * NF * sizeof *f);
            if (f) c->feat = f;
            int *r = f ? realloc(c->rel, cap * sizeof *r) : NULL;
            if (r) c->rel = r;
            int *d = r ? realloc(c->doc, cap * sizeof *d) : NULL;
            if (d) c->doc = d;
            if (!d) { free(sink.cand); plumb_hits_free(h); return err_set(PLUMB_NOMEM, "tune"); }
            c->cap = cap;
        }
        tq *t = &c->q[c->nq++];
        *t = (tq){c->n, 0, idcg10(ideal, nideal), set};
        if (dump) /* every judged query, also one without candidates (it scores 0) */
            fprintf(dump, "# query qid:%d_%s split=%s idcg=%.9g\n", set, qid, split, t->idcg);
        for (size_t j = 0; j < sink.n && j < h->n; j++) {
            const char *doc = h->hit[j].doc_id;
            if (!strcmp(doc, qid)) continue; /* drop_self, as plumb_eval_run */
            size_t at = c->n;
            int key = (int)j;
            for (size_t k = 0; k < j; k++)
                if (!strcmp(h->hit[k].doc_id, doc)) { key = (int)k; break; }
            memcpy(c->feat + at * NF, sink.cand[j].feat, NF * sizeof(double));
            c->rel[at] = eval_judgment(qrels, qid, doc);
            c->doc[at] = key;
            if (dump) dump_line(dump, c->rel[at], set, split, qid, c->feat + at * NF, doc, t->idcg);
            c->n++;
            t->n++;
        }
        free(sink.cand);
        plumb_hits_free(h);
    }
    return PLUMB_OK;
}

/* Mean over sets of the per-set mean nDCG@10 (per-set means in per[]
** when not NULL). w NULL: stage-1 order. */
static double objective_t(const tcache *c, const double *w, const rerank_trees *tr, double *per);
static double objective(const tcache *c, const double *w, double *per) {
    return objective_t(c, w, NULL, per);
}

/* Mean nDCG@10 as objective(), the score being w . f + trees(f). */
static double objective_t(const tcache *c, const double *w, const rerank_trees *tr, double *per) {
    double sum[PLUMB_TUNE_MAX_SETS] = {0};
    size_t cnt[PLUMB_TUNE_MAX_SETS] = {0};
    int idx[1024];
    double sc[1024];
    uint8_t seen[1024];
    for (size_t qi = 0; qi < c->nq; qi++) {
        const tq *t = &c->q[qi];
        size_t n = t->n < 1024 ? t->n : 1024;
        /* insertion sort of candidate positions by score, stage-1 order on ties */
        for (size_t i = 0; i < n; i++) {
            const double *f = c->feat + (t->off + i) * NF;
            double s = w ? rerank_dot(w, f) + trees_predict(tr, f) : -(double)i;
            size_t j = i;
            while (j > 0 && sc[j - 1] < s) { sc[j] = sc[j - 1]; idx[j] = idx[j - 1]; j--; }
            sc[j] = s;
            idx[j] = (int)i;
        }
        memset(seen, 0, n);
        double dcg = 0;
        int r = 0;
        for (size_t i = 0; i < n && r < 10; i++) {
            size_t at = t->off + (size_t)idx[i];
            int d = c->doc[at];
            if (d < 1024 && seen[d]) continue;
            if (d < 1024) seen[d] = 1;
            dcg += c->rel[at] / log2((double)r + 2);
            r++;
        }
        sum[t->set] += t->idcg > 0 ? dcg / t->idcg : 0;
        cnt[t->set]++;
    }
    double m = 0;
    int k = 0;
    for (int s = 0; s < c->nsets; s++) {
        double v = cnt[s] ? sum[s] / (double)cnt[s] : NAN;
        if (per) per[s] = v;
        if (cnt[s]) { m += v; k++; }
    }
    return k ? m / k : NAN;
}

static double ascend(const tcache *c, double *w, int rounds) {
    double best = objective(c, w, NULL);
    for (int round = 0; round < rounds; round++) {
        int moved = 0;
        for (int f = 0; f < NF; f++) {
            double keep = w[f], bestv = keep;
            for (int step = -40; step <= 100; step++) {
                double v = step * 0.05;
                if (fabs(v - keep) < 1e-9) continue;
                w[f] = v;
                double o = objective(c, w, NULL);
                if (o > best + 1e-9) { best = o; bestv = v; }
            }
            w[f] = bestv;
            if (bestv != keep) moved = 1;
        }
        if (!moved) break;
    }
    return best;
}

double tune_fit(const double *feat, const int *rel, const int *ideal_unused, size_t nq,
                size_t per_q, double *w, int rounds, double *before) {
    (void)ideal_unused;
    tcache c = {0};
    c.nsets = 1;
    c.n = nq * per_q;
    c.nq = nq;
    c.feat = (double *)feat;
    c.rel = (int *)rel;
    c.doc = malloc((c.n ? c.n : 1) * sizeof *c.doc);
    c.q = malloc((nq ? nq : 1) * sizeof *c.q);
    int *sorted = malloc((per_q ? per_q : 1) * sizeof *sorted);
    if (!c.doc || !c.q || !sorted) {
        free(c.doc);
        free(c.q);
        free(sorted);
        return NAN;
    }
    for (size_t q = 0; q < nq; q++) {
        for (size_t i = 0; i < per_q; i++) {
            c.doc[q * per_q + i] = (int)i;
            /* ideal: the judgments, highest first */
            int v = rel[q * per_q + i];
            size_t j = i;
            while (j > 0 && sorted[j - 1] < v) { sorted[j] = sorted[j - 1]; j--; }
            sorted[j] = v;
        }
        size_t npos = 0;
        while (npos < per_q && sorted[npos] > 0) npos++;
        c.q[q] = (tq){q * per_q, per_q, idcg10(sorted, npos), 0};
    }
    if (before) *before = objective(&c, w, NULL);
    double o = ascend(&c, w, rounds);
    free(c.doc);
    free(c.q);
    free(sorted);
    return o;
}

static void say(const plumb_tune_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- */
/* Trees on top of the linear model                                   */
/* ---------------------------------------------------------------- */

/* The candidates the tree learner is given: those of the queries
** c->q[qs[0..m)) copied out, with their linear scores in F. */
typedef struct tsub {
    double *feat, *F, *idcg;
    int *rel;
    size_t *qoff, *qn;
    trees_data d;
} tsub;

static void sub_free(tsub *s) {
    free(s->feat);
    free(s->F);
    free(s->idcg);
    free(s->rel);
    free(s->qoff);
    free(s->qn);
}

static int sub_build(const tcache *c, const size_t *qs, size_t m, const double *w, tsub *s) {
    memset(s, 0, sizeof *s);
    size_t n = 0;
    for (size_t i = 0; i < m; i++) n += c->q[qs[i]].n;
    s->feat = malloc((n ? n : 1) * NF * sizeof *s->feat);
    s->F = malloc((n ? n : 1) * sizeof *s->F);
    s->rel = malloc((n ? n : 1) * sizeof *s->rel);
    s->idcg = malloc((m ? m : 1) * sizeof *s->idcg);
    s->qoff = malloc((m ? m : 1) * sizeof *s->qoff);
    s->qn = malloc((m ? m : 1) * sizeof *s->qn);
    if (!s->feat || !s->F || !s->rel || !s->idcg || !s->qoff || !s->qn) { sub_free(s); return -1; }
    size_t at = 0;
    for (size_t i = 0; i < m; i++) {
        const tq *t = &c->q[qs[i]];
        s->qoff[i] = at;
        s->qn[i] = t->n;
        s->idcg[i] = t->idcg;
        memcpy(s->feat + at * NF, c->feat + t->off * NF, t->n * NF * sizeof *s->feat);
        memcpy(s->rel + at, c->rel + t->off, t->n * sizeof *s->rel);
        for (size_t j = 0; j < t->n; j++) s->F[at + j] = rerank_dot(w, s->feat + (at + j) * NF);
        at += t->n;
    }
    s->d = (trees_data){s->feat, s->rel, n, s->qoff, s->qn, s->idcg, m};
    return 0;
}

/* The configurations cross-validation chooses from (none of them when
** the linear model alone does as well): from bench/letor_trees.py's
** study (bench/RESULTS.md, "Two-stage ranking"). */
static const trees_cfg tree_cfgs[] = {{100, 8, 50, 0.05}, {200, 16, 50, 0.05}};
#define NCFG (int)(sizeof tree_cfgs / sizeof *tree_cfgs)
#define NFOLD 5

static int fold_of(size_t q) { return (int)(hash64(&q, sizeof q, 0x74726565) % NFOLD); }

/* The model tune keeps, chosen by 5-fold cross-validation over the
** training queries: each candidate model is learned on four folds and
** scored on the fifth. Candidates: the shipped weights (nothing learned),
** the weights coordinate ascent learns from them, and those plus each
** tree configuration. The winner is then learned on every training query:
** w (in: the shipped weights; out: the chosen weights) and *out (the
** trees, or NULL). Ties go to the simpler model. */
static plumb_status choose_model(const tcache *c, double *w, const plumb_tune_params *pp,
                                 rerank_trees **out, plumb_tune_result *res) {
    *out = NULL;
    res->ntrees = 0;
    size_t *in = malloc((c->nq ? c->nq : 1) * sizeof *in);
    tq *held = malloc((c->nq ? c->nq : 1) * sizeof *held);
    tq *fit = malloc((c->nq ? c->nq : 1) * sizeof *fit);
    if (!in || !held || !fit) {
        free(in);
        free(held);
        free(fit);
        return err_set(PLUMB_NOMEM, "tune: cross-validation");
    }
    double ship = 0, lin = 0, cv[NCFG] = {0};
    int folds = 0, ntry = pp->trees ? NCFG : 0;
    plumb_status rc = PLUMB_OK;
    for (int k = 0; k < NFOLD && !rc; k++) {
        size_t m = 0, nh = 0;
        for (size_t q = 0; q < c->nq; q++) {
            if (fold_of(q) == k) held[nh++] = c->q[q];
            else { fit[m] = c->q[q]; in[m++] = q; }
        }
        if (!nh || !m) continue;
        tcache hv = *c, fv = *c; /* the same candidates, some of the queries */
        hv.q = held;
        hv.nq = nh;
        fv.q = fit;
        fv.nq = m;
        double wk[NF];
        memcpy(wk, w, sizeof wk);
        ship += objective(&hv, wk, NULL);
        ascend(&fv, wk, pp->rounds);
        lin += objective(&hv, wk, NULL);
        for (int g = 0; g < ntry && !rc; g++) {
            tsub sb;
            if (sub_build(c, in, m, wk, &sb)) { rc = err_set(PLUMB_NOMEM, "tune: trees"); break; }
            rerank_trees *t = trees_fit(&sb.d, sb.F, &tree_cfgs[g]);
            sub_free(&sb);
            if (!t) { rc = err_set(PLUMB_NOMEM, "tune: trees"); break; }
            cv[g] += objective_t(&hv, wk, t, NULL);
            trees_free(t);
        }
        folds++;
        say(pp, "cross-validation: fold %d of %d", k + 1, NFOLD);
    }
    free(held);
    free(fit);
    if (rc) { free(in); return rc; }
    if (!folds) {
        /* every query fell into one fold (one query, or a few hashed
        ** together): nothing can be held out, so nothing is compared; the
        ** learned weights are kept, as before cross-validation, no trees */
        free(in);
        res->cv_shipped = res->cv_linear = res->cv_trees = NAN;
        res->model = "linear";
        say(pp, "cross-validation: %zu training queries in one fold; keeping the learned "
            "weights, no trees", c->nq);
        ascend(c, w, pp->rounds);
        return PLUMB_OK;
    }
    res->cv_shipped = ship / folds;
    res->cv_linear = lin / folds;
    res->cv_trees = NAN;
    say(pp, "cross-validated nDCG@10: shipped weights %.4f, learned weights %.4f",
        res->cv_shipped, res->cv_linear);
    int best = -1; /* -2: shipped, -1: linear, g: trees */
    double bestv = res->cv_linear;
    if (!(res->cv_linear > res->cv_shipped)) { best = -2; bestv = res->cv_shipped; }
    for (int g = 0; g < ntry; g++) {
        cv[g] /= folds;
        say(pp, "cross-validated nDCG@10: learned weights + %d trees of %d leaves %.4f",
            tree_cfgs[g].ntrees, tree_cfgs[g].leaves, cv[g]);
        if (cv[g] > bestv) { best = g; bestv = cv[g]; }
    }
    res->model = best == -2 ? "shipped" : best == -1 ? "linear" : "trees";
    if (best != -2) ascend(c, w, pp->rounds);
    if (best >= 0) {
        res->cv_trees = cv[best];
        for (size_t q = 0; q < c->nq; q++) in[q] = q;
        tsub sb;
        if (sub_build(c, in, c->nq, w, &sb)) rc = err_set(PLUMB_NOMEM, "tune: trees");
        else {
            *out = trees_fit(&sb.d, sb.F, &tree_cfgs[best]);
            sub_free(&sb);
            if (!*out) rc = err_set(PLUMB_NOMEM, "tune: trees");
            else res->ntrees = tree_cfgs[best].ntrees;
        }
    }
    free(in);
    return rc;
}

void plumb_tune_params_init(plumb_tune_params *p) {
    memset(p, 0, sizeof *p);
    p->trees = 1;
    p->rerank = 30;
    p->grid = 1;
    p->rounds = 8;
}

static void say(const plumb_tune_params *p, const char *fmt, ...) {
    if (!p->progress) return;
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    p->progress(p->arg, m);
}

/* Measure one split at (k1, b) (< 0: each index's) with the weights
** given (NULL skips), into figs (per set) and the mean. */
static plumb_status measure(const plumb_tune_set *sets, int nsets, int heldout, double k1, double b,
                            double alpha, int n, const double *w, const rerank_trees *tr,
                            double *stage1, double *withw, plumb_tune_figures *per, size_t *nq,
                            FILE *dump) {
    tcache c = {0};
    c.nsets = nsets;
    plumb_status rc = PLUMB_OK;
    for (int s = 0; s < nsets && !rc; s++) {
        const plumb_qrels *q = heldout ? sets[s].heldout : sets[s].train;
        if (q) rc = collect(&sets[s], q, s, k1, b, alpha, n, &c, dump,
                            heldout ? "heldout" : "train");
    }
    if (!rc) {
        double p1[PLUMB_TUNE_MAX_SETS], p2[PLUMB_TUNE_MAX_SETS];
        double o1 = objective(&c, NULL, p1);
        double o2 = w ? objective_t(&c, w, tr, p2) : NAN;
        if (stage1) *stage1 = o1;
        if (withw) *withw = o2;
        for (int s = 0; s < nsets; s++) {
            if (stage1) per[s].stage1 = p1[s];
            if (withw) per[s].tuned = w ? p2[s] : NAN;
        }
        *nq = c.nq;
        if (per)
            for (int s = 0; s < nsets; s++) {
                per[s].queries = 0;
                for (size_t i = 0; i < c.nq; i++) per[s].queries += c.q[i].set == s;
            }
    }
    cache_free(&c);
    return rc;
}

plumb_status plumb_tune(const plumb_tune_set *sets, int nsets, const plumb_tune_params *pp,
                        plumb_tune_result *out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_tune: NULL result");
    memset(out, 0, sizeof *out);
    plumb_tune_params def;
    if (!pp) { plumb_tune_params_init(&def); pp = &def; }
    if (!sets || nsets < 1 || nsets > PLUMB_TUNE_MAX_SETS)
        return err_set(PLUMB_MISUSE, "plumb_tune: 1 to %d sets", PLUMB_TUNE_MAX_SETS);
    if (pp->rerank < 10 || pp->rerank > 1000)
        return err_set(PLUMB_MISUSE, "plumb_tune: rerank must be in 10..1000 (got %d)", pp->rerank);
    for (int s = 0; s < nsets; s++) {
        if (!sets[s].db || !sets[s].queries || !sets[s].train)
            return err_set(PLUMB_MISUSE, "plumb_tune: set %d lacks db, queries or train", s);
        if (pp->store && sets[s].db->readonly)
            return err_set(PLUMB_MISUSE, "plumb_tune: set %d: the index is open read-only", s);
    }
    double t0 = now_s();
    int n = pp->rerank;
    plumb_status rc = PLUMB_OK;
    /* the grid; (k1, b, alpha) < 0 stands for each index's own. The
    ** fusion weight joins the grid only when every index has vectors
    ** (without them stage 1 is lexical and alpha changes nothing). */
    static const double gk1[] = {0.6, 0.9, 1.2}, gb[] = {0.3, 0.4, 0.6}, ga[] = {0.3, 0.5, 0.7};
    int dense = 1;
    for (int s = 0; s < nsets && !rc; s++) {
        plumb_stats st;
        rc = plumb_stats_get(sets[s].db, &st);
        if (!rc && st.vec_count == 0) dense = 0;
    }
    if (rc) return rc;
    int nalpha = pp->grid && dense ? 3 : 1;
    double best_obj = -1, best_k1 = -1, best_b = -1, best_a = -1, best_w[NF];
    tcache best_c = {0};
    memcpy(best_w, rerank_default_weights, sizeof best_w);
    int npts = pp->grid ? 9 * nalpha : 1;
    for (int g = 0; g < npts && !rc; g++) {
        double k1 = pp->grid ? gk1[g / (3 * nalpha)] : -1;
        double b = pp->grid ? gb[(g / nalpha) % 3] : -1;
        double a = nalpha > 1 ? ga[g % nalpha] : -1;
        tcache c = {0};
        c.nsets = nsets;
        for (int s = 0; s < nsets && !rc; s++)
            rc = collect(&sets[s], sets[s].train, s, k1, b, a, n, &c, NULL, NULL);
        if (!rc && !c.nq) rc = err_set(PLUMB_MISUSE, "plumb_tune: no training query has a "
                                       "relevant judgment");
        if (!rc) {
            /* the grid point is chosen by what the shipped model makes of
            ** it: learning there, and its cross-validation, come after */
            double o = objective(&c, rerank_default_weights, NULL);
            if (a >= 0)
                say(pp, "k1 %.2f b %.2f alpha %.1f: train nDCG@10 %.4f (stage 1 %.4f)", k1, b, a,
                    o, objective(&c, NULL, NULL));
            else if (k1 >= 0)
                say(pp, "k1 %.2f b %.2f: train nDCG@10 %.4f (stage 1 %.4f)", k1, b, o,
                    objective(&c, NULL, NULL));
            else
                say(pp, "the index's k1, b and alpha: train nDCG@10 %.4f (stage 1 %.4f)", o,
                    objective(&c, NULL, NULL));
            if (o > best_obj) {
                best_obj = o;
                best_k1 = k1;
                best_b = b;
                best_a = a;
                cache_free(&best_c);
                best_c = c;
                memset(&c, 0, sizeof c);
            }
        }
        cache_free(&c);
    }
    rerank_trees *trees = NULL;
    if (!rc) rc = choose_model(&best_c, best_w, pp, &trees, out);
    cache_free(&best_c);
    if (rc) return rc;
    out->k1 = best_k1 >= 0 ? best_k1 : sets[0].db->set.k1;
    out->b = best_b >= 0 ? best_b : sets[0].db->set.b;
    out->alpha = best_a >= 0 ? best_a : NAN;
    out->rerank = n;
    out->nweights = NF;
    for (int i = 0; i < NF; i++) {
        out->weight_names[i] = rerank_feature_names[i];
        out->weights[i] = best_w[i];
    }
    buf wt = {0};
    rerank_weights_format(best_w, &wt);
    snprintf(out->weights_text, sizeof out->weights_text, "%s", wt.p ? wt.p : "");
    buf_free(&wt);
    /* figures: stage 1 and shipped weights at each index's own k1 and b;
    ** tuned at the learned ones */
    size_t nq = 0;
    FILE *dump = NULL;
    if (pp->features_out && !(dump = fopen(pp->features_out, "w"))) {
        trees_free(trees);
        return err_set(PLUMB_IO, "%s: %s", pp->features_out, strerror(errno));
    }
    for (int split = 0; split < 2 && !rc; split++) {
        plumb_tune_figures *fig = split ? &out->heldout : &out->train;
        plumb_tune_figures *per = split ? out->set_heldout : out->set_train;
        int any = 0;
        for (int s = 0; s < nsets; s++) any |= split ? sets[s].heldout != NULL : 1;
        if (!any) {
            fig->stage1 = fig->shipped = fig->tuned = NAN;
            continue;
        }
        say(pp, "measuring the %s split", split ? "held-out" : "training");
        plumb_tune_figures tmp[PLUMB_TUNE_MAX_SETS];
        rc = measure(sets, nsets, split, -1, -1, -1, n, rerank_default_weights, NULL,
                     &fig->stage1, &fig->shipped, tmp, &fig->queries, NULL);
        for (int s = 0; s < nsets && !rc; s++) {
            per[s].queries = tmp[s].queries;
            per[s].stage1 = tmp[s].stage1;
            per[s].shipped = tmp[s].tuned;
        }
        /* without a grid each index keeps (and is measured at) its own k1 and b */
        if (!rc) rc = measure(sets, nsets, split, best_k1, best_b, best_a, n, best_w, trees,
                              NULL, &fig->tuned, tmp, &nq, dump);
        for (int s = 0; s < nsets && !rc; s++) per[s].tuned = tmp[s].tuned;
    }
    if (dump) {
        int bad = ferror(dump) != 0;
        bad |= fclose(dump) != 0;
        if (bad && !rc) rc = err_set(PLUMB_IO, "%s: write failed", pp->features_out);
    }
    if (!rc && pp->store) {
        char v1[32], v2[32], v3[32], v4[32];
        snprintf(v1, sizeof v1, "%.6g", out->k1);
        snprintf(v2, sizeof v2, "%.6g", out->b);
        snprintf(v3, sizeof v3, "%d", n);
        snprintf(v4, sizeof v4, "%.6g", out->alpha);
        buf tt = {0};
        trees_format(trees, &tt);
        buf_putc(&tt, 0);
        if (tt.oom) rc = err_set(PLUMB_NOMEM, "tune");
        const char *keys[7] = {"rerank", "rerank_kind", "rerank_weights", "rerank_trees"};
        const char *vals[7] = {v3, "features", out->weights_text, tt.p};
        int nk = 4;
        /* alpha and k1, b only when learned: without a grid each index
        ** keeps its own */
        if (!isnan(out->alpha)) keys[nk] = "alpha", vals[nk++] = v4;
        if (best_k1 >= 0) {
            keys[nk] = "bm25_k1", vals[nk++] = v1;
            keys[nk] = "bm25_b", vals[nk++] = v2;
        }
        for (int s = 0; s < nsets && !rc; s++) rc = store_put_settings(sets[s].db, keys, vals, nk);
        if (!rc) out->stored = 1;
        buf_free(&tt);
    }
    trees_free(trees);
    out->elapsed_s = now_s() - t0;
    return rc;
}
