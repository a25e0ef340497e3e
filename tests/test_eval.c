/*
** test_eval.c -- evaluation: metrics against hand-computed values,
** trec_eval's tie order, judgment/query/run parsing with malformed lines,
** run-file round trips, paired significance tests with known answers.
**
**   test_eval               unit tests (fixtures in $PLUMB_TEST_DATA/eval)
**   test_eval --cli PLUMB   integration: `plumb eval` end to end on the tiny
**                           BEIR-layout fixture, checking its JSON
**
** Hand computations (tests/data/eval/qrels.tsv, run.txt):
**   q1 judged d1=2 d2=1 d3=0 d9=1 (d9 never retrieved); run d3 5, d1 4,
**      d2 4, dX 3. trec_eval breaks the d1/d2 tie by docid descending:
**      d3 d2 d1 dX -> gains 0 1 2 0. DCG = 1/log2(3) + 2/log2(4);
**      IDCG over 2,1,1 = 2 + 1/log2(3) + 1/log2(4); nDCG = 0.520909085...
**      (ascending ties would give 0.5627). R = 3: R@k = 2/3, MRR@10 = 1/2,
**      MAP@100 = (1/2 + 2/3) / 3, P@10 = 0.2.
**   q2 judged d4=1, retrieved at rank 11: nDCG@10 = R@10 = MRR@10 = P@10 =
**      0, R@100 = 1, MAP@100 = 1/11.
**   q3 judged d5=0 only: no relevant document, skipped.
**   q4 judged dA=1, in no run: zeros (trec_eval -c).
**   q5 is in the run but not in the qrels: not evaluated.
** These agree with an independent re-implementation of trec_eval's
** definitions (form_res_rels.c, m_ndcg_cut.c, ...).
*/
#include "check.h"
#include "plumb_impl.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char data_dir[4096];

static const char *fixture(const char *name) {
    static char p[4][4200];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/eval/%s", data_dir, name);
    return p[i];
}

/* Messages collected from the callbacks, one per line. */
static buf msgs;

static void collect(void *arg, plumb_msg_level level, const char *msg) {
    (void)arg;
    buf_printf(&msgs, "%d %s\n", (int)level, msg);
}

static int has_msg(const char *needle) { return msgs.p && strstr(msgs.p, needle) != NULL; }

/* ------------------------------------------------------------------ */
/* Unit tests                                                          */
/* ------------------------------------------------------------------ */

static void test_measure(void) {
    double m[PLUMB_METRIC_COUNT];
    /* gains 0 1 2 0 against ideal 2 1 1 (the q1 case) */
    int rels[4] = {0, 1, 2, 0}, ideal[3] = {2, 1, 1};
    eval_measure(rels, 4, ideal, 3, m);
    double idcg = 2 + 1 / log2(3) + 0.5;
    CHECK_NEAR(m[PLUMB_METRIC_NDCG10], (1 / log2(3) + 1) / idcg, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_NDCG10], 0.5209090851403014, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_RECALL10], 2.0 / 3, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_MRR10], 0.5, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_MAP100], (0.5 + 2.0 / 3) / 3, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_P10], 0.2, 1e-12);

    /* perfect ranking with graded gains -> 1 everywhere it can be */
    int perfect[3] = {3, 2, 1}, pideal[3] = {3, 2, 1};
    eval_measure(perfect, 3, pideal, 3, m);
    CHECK_NEAR(m[PLUMB_METRIC_NDCG10], 1, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_MAP100], 1, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_MRR10], 1, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_P10], 0.3, 1e-12);

    /* the ideal DCG is cut at 10 too: 12 relevant, all retrieved first */
    int many[12], mideal[12];
    for (int i = 0; i < 12; i++) many[i] = mideal[i] = 1;
    eval_measure(many, 12, mideal, 12, m);
    CHECK_NEAR(m[PLUMB_METRIC_NDCG10], 1, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_RECALL10], 10.0 / 12, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_P10], 1, 1e-12);

    /* negative judgments are not relevant and do not count in DCG */
    int neg[2] = {-1, 1}, nideal[1] = {1};
    eval_measure(neg, 2, nideal, 1, m);
    CHECK_NEAR(m[PLUMB_METRIC_NDCG10], 1 / log2(3), 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_MRR10], 0.5, 1e-12);

    /* nothing retrieved, and no relevant document at all */
    eval_measure(NULL, 0, nideal, 1, m);
    for (int i = 0; i < PLUMB_METRIC_COUNT; i++) CHECK(m[i] == 0);
    eval_measure(rels, 4, NULL, 0, m);
    for (int i = 0; i < PLUMB_METRIC_COUNT; i++) CHECK(m[i] == 0);

    /* a relevant document at rank 11 and at rank 1001 */
    int deep[1001];
    memset(deep, 0, sizeof deep);
    deep[10] = 1;
    deep[1000] = 1;
    int dideal[2] = {1, 1};
    eval_measure(deep, 1001, dideal, 2, m);
    CHECK(m[PLUMB_METRIC_NDCG10] == 0 && m[PLUMB_METRIC_MRR10] == 0);
    CHECK_NEAR(m[PLUMB_METRIC_RECALL100], 0.5, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_RECALL1000], 0.5, 1e-12);
    CHECK_NEAR(m[PLUMB_METRIC_MAP100], (1.0 / 11) / 2, 1e-12);

    CHECK_STR(plumb_metric_name(PLUMB_METRIC_NDCG10), "ndcg@10");
    CHECK(plumb_metric_name(PLUMB_METRIC_COUNT) == NULL);
    CHECK(plumb_metric_from_name("MAP@100") == PLUMB_METRIC_MAP100);
    CHECK(plumb_metric_from_name("ndcg") == -1);
}

static void test_tie_order(void) {
    plumb_run_doc d[5] = {{"b", 1}, {"a", 2}, {"c", 1}, {"d10", 1}, {"d9", 1}};
    eval_sort_ranking(d, 5);
    /* score descending, then docid descending in strcmp order */
    CHECK_STR(d[0].doc_id, "a");
    CHECK_STR(d[1].doc_id, "d9");
    CHECK_STR(d[2].doc_id, "d10");
    CHECK_STR(d[3].doc_id, "c");
    CHECK_STR(d[4].doc_id, "b");
}

static const plumb_eval_query *find_q(const plumb_eval_stage_result *s, const char *id) {
    for (size_t i = 0; i < s->nq; i++)
        if (strcmp(s->q[i].query_id, id) == 0) return &s->q[i];
    return NULL;
}

static void test_fixture_metrics(void) {
    plumb_qrels *qr = NULL;
    plumb_run *run = NULL;
    plumb_eval_result *r = NULL;
    plumb_load_stats ls;
    CHECK_OK(plumb_qrels_load(fixture("qrels.tsv"), NULL, NULL, &qr, &ls));
    if (!qr) return;
    CHECK(ls.lines == 8 && ls.records == 7 && ls.malformed == 0);
    CHECK(plumb_qrels_queries(qr) == 4);
    CHECK(plumb_qrels_judgments(qr) == 7);
    CHECK(plumb_qrels_relevant(qr) == 5);
    CHECK_OK(plumb_run_load(fixture("run.txt"), NULL, NULL, &run, &ls));
    if (!run) goto done;
    CHECK(ls.records == 17 && run->nq == 4);
    CHECK_STR(run->tag, "fixture");
    /* loaded runs are in trec_eval order: d2 before d1 on the tie */
    CHECK_STR(run->q[0].doc[1].doc_id, "d2");
    CHECK_STR(run->q[0].doc[2].doc_id, "d1");

    buf_reset(&msgs);
    plumb_eval_params p;
    plumb_eval_params_init(&p);
    p.message = collect;
    const plumb_run *runs[1] = {run};
    CHECK_OK(plumb_eval_runs(qr, runs, NULL, 1, &p, &r));
    if (!r) goto done;
    const plumb_eval_counts *c = &r->counts;
    CHECK(c->evaluated == 3);           /* q1 q2 q4 */
    CHECK(c->skipped_no_relevant == 1); /* q3 */
    CHECK(c->skipped_unjudged == 1);    /* q5 */
    CHECK(c->unknown_queries == 1);     /* q4: in no run */
    CHECK(c->unknown_docs == -1);
    CHECK(has_msg("'q4'"));
    CHECK(r->nstages == 1);
    const plumb_eval_stage_result *s = &r->stage[0];
    CHECK_STR(s->name, "fixture");
    CHECK(s->no_hits == 1 && !s->latency.measured);
    const plumb_eval_query *q1 = find_q(s, "q1"), *q2 = find_q(s, "q2"), *q4 = find_q(s, "q4");
    CHECK(q1 && q2 && q4 && !find_q(s, "q3") && !find_q(s, "q5"));
    if (!q1 || !q2 || !q4) goto done;
    CHECK(q1->nrel == 3 && q1->nret == 4);
    CHECK_NEAR(q1->metric[PLUMB_METRIC_NDCG10], 0.5209090851403014, 1e-12);
    CHECK_NEAR(q1->metric[PLUMB_METRIC_RECALL1000], 2.0 / 3, 1e-12);
    CHECK_NEAR(q1->metric[PLUMB_METRIC_MAP100], 0.38888888888888884, 1e-12);
    CHECK_NEAR(q2->metric[PLUMB_METRIC_NDCG10], 0, 0);
    CHECK_NEAR(q2->metric[PLUMB_METRIC_MRR10], 0, 0);
    CHECK_NEAR(q2->metric[PLUMB_METRIC_RECALL10], 0, 0);
    CHECK_NEAR(q2->metric[PLUMB_METRIC_RECALL100], 1, 0);
    CHECK_NEAR(q2->metric[PLUMB_METRIC_MAP100], 1.0 / 11, 1e-12);
    for (int m = 0; m < PLUMB_METRIC_COUNT; m++) CHECK(q4->metric[m] == 0);
    CHECK(q4->nret == 0 && q4->latency_ms == -1);
    CHECK_NEAR(s->mean[PLUMB_METRIC_NDCG10], 0.1736363617134338, 1e-12);
    CHECK_NEAR(s->mean[PLUMB_METRIC_RECALL10], 2.0 / 9, 1e-12);
    CHECK_NEAR(s->mean[PLUMB_METRIC_RECALL100], 5.0 / 9, 1e-12);
    CHECK_NEAR(s->mean[PLUMB_METRIC_RECALL1000], 5.0 / 9, 1e-12);
    CHECK_NEAR(s->mean[PLUMB_METRIC_MRR10], 1.0 / 6, 1e-12);
    CHECK_NEAR(s->mean[PLUMB_METRIC_MAP100], 0.15993265993265993, 1e-12);
    CHECK_NEAR(s->mean[PLUMB_METRIC_P10], 0.2 / 3, 1e-12);

    /* depth cuts rankings: at 10, q2's relevant document (rank 11) is gone */
    plumb_eval_result *r10 = NULL;
    p.depth = 10;
    CHECK_OK(plumb_eval_runs(qr, runs, NULL, 1, &p, &r10));
    if (r10) {
        const plumb_eval_query *d2 = find_q(&r10->stage[0], "q2");
        CHECK(d2 && d2->nret == 10 && d2->metric[PLUMB_METRIC_RECALL100] == 0);
        plumb_eval_result_free(r10);
    }
done:
    plumb_eval_result_free(r);
    plumb_run_free(run);
    plumb_qrels_free(qr);
}

static void test_caller_runs(void) {
    plumb_qrels *qr = NULL;
    plumb_eval_result *r = NULL;
    CHECK_OK(plumb_qrels_load(fixture("qrels.tsv"), NULL, NULL, &qr, NULL));
    if (!qr) return;
    /* a run built by the caller, in no particular order */
    plumb_run_doc d1[4] = {{"dX", 3}, {"d1", 4}, {"d3", 5}, {"d2", 4}};
    plumb_run_query q[1] = {{"q1", 4, d1}};
    plumb_run run = {"mine", 1, q};
    const plumb_run *runs[1] = {&run};
    CHECK_OK(plumb_eval_runs(qr, runs, NULL, 1, NULL, &r));
    if (r) {
        const plumb_eval_query *q1 = find_q(&r->stage[0], "q1");
        CHECK(q1 && fabs(q1->metric[PLUMB_METRIC_NDCG10] - 0.5209090851403014) < 1e-12);
        plumb_eval_result_free(r);
        r = NULL;
    }
    /* the same document twice is an error, as in trec_eval */
    plumb_run_doc dup[2] = {{"d1", 4}, {"d1", 3}};
    q[0].n = 2;
    q[0].doc = dup;
    CHECK_RC(plumb_eval_runs(qr, runs, NULL, 1, NULL, &r), PLUMB_CORRUPT);
    CHECK(r == NULL);
    CHECK_RC(plumb_eval_runs(qr, NULL, NULL, 1, NULL, &r), PLUMB_MISUSE);
    plumb_qrels_free(qr);
}

static void test_round_trip(void) {
    char dir[] = "/tmp/plumb-test-eval-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/out.run", dir);
    plumb_run *a = NULL, *b = NULL;
    CHECK_OK(plumb_run_load(fixture("run.txt"), NULL, NULL, &a, NULL));
    if (!a) goto done;
    /* awkward scores must read back exactly */
    a->q[0].doc[0].score = 0.1 + 0.2;
    a->q[0].doc[1].score = 1e-300;
    a->q[0].doc[2].score = 1e-300;
    a->q[0].doc[3].score = -2.5;
    a->tag = "rt";
    CHECK_OK(plumb_run_write(a, path));
    CHECK_OK(plumb_run_load(path, NULL, NULL, &b, NULL));
    if (!b) goto done;
    CHECK_STR(b->tag, "rt");
    CHECK(a->nq == b->nq);
    for (size_t i = 0; i < a->nq && i < b->nq; i++) {
        CHECK_STR(a->q[i].query_id, b->q[i].query_id);
        CHECK(a->q[i].n == b->q[i].n);
        /* a's first query is no longer sorted; b is, in trec order */
        plumb_run_doc tmp[32];
        size_t n = a->q[i].n < 32 ? a->q[i].n : 32;
        memcpy(tmp, a->q[i].doc, n * sizeof *tmp);
        eval_sort_ranking(tmp, n);
        for (size_t k = 0; k < n && k < b->q[i].n; k++) {
            CHECK_STR(tmp[k].doc_id, b->q[i].doc[k].doc_id);
            CHECK(tmp[k].score == b->q[i].doc[k].score);
        }
    }
    /* ids with white space cannot be written */
    a->q[0].doc[0].doc_id = "has space";
    CHECK_RC(plumb_run_write(a, path), PLUMB_MISUSE);
    a->tag = "bad tag";
    CHECK_RC(plumb_run_write(a, path), PLUMB_MISUSE);
    CHECK(access(path, R_OK) == 0); /* the earlier file is untouched */
done:
    plumb_run_free(a);
    plumb_run_free(b);
    remove(path);
    rmdir(dir);
}

static void test_malformed(void) {
    plumb_load_stats ls;
    plumb_qrels *qr = NULL;
    buf_reset(&msgs);
    CHECK_OK(plumb_qrels_load(fixture("qrels_bad.tsv"), collect, NULL, &qr, &ls));
    CHECK(ls.lines == 10);
    CHECK(ls.malformed == 3);  /* lines 3, 4, 10 */
    CHECK(ls.duplicates == 1); /* line 8 repeats line 2 */
    CHECK(ls.records == 3);    /* q1 d1 (=2), q2 d4, q3 d7 (TREC form) */
    CHECK(has_msg("qrels_bad.tsv:3: expected 3 fields"));
    CHECK(has_msg("qrels_bad.tsv:4: relevance 'x' is not an integer"));
    CHECK(has_msg("qrels_bad.tsv:10: expected 3 fields"));
    CHECK(has_msg("qrels_bad.tsv:8: query 'q1' judges document 'd1' again (first on line 2)"));
    if (qr) {
        CHECK(plumb_qrels_queries(qr) == 3);
        CHECK(plumb_qrels_relevant(qr) == 3);
        plumb_qrels_free(qr);
    }

    plumb_queries *qs = NULL;
    buf_reset(&msgs);
    CHECK_OK(plumb_queries_load(fixture("queries_bad.jsonl"), collect, NULL, &qs, &ls));
    CHECK(ls.lines == 7 && ls.records == 2 && ls.malformed == 4 && ls.duplicates == 1);
    CHECK(has_msg("queries_bad.jsonl:2: query 'q2' has no \"text\" string"));
    CHECK(has_msg("queries_bad.jsonl:3: invalid JSON"));
    CHECK(has_msg("queries_bad.jsonl:4: query id 'q1' repeats"));
    CHECK(has_msg("queries_bad.jsonl:5: no \"_id\" string"));
    CHECK(has_msg("queries_bad.jsonl:7: text after the JSON object"));
    CHECK(plumb_queries_count(qs) == 2);
    plumb_queries_free(qs);

    plumb_run *run = NULL;
    buf_reset(&msgs);
    CHECK_OK(plumb_run_load(fixture("run_bad.txt"), collect, NULL, &run, &ls));
    CHECK(ls.lines == 7 && ls.malformed == 4 && ls.duplicates == 1 && ls.records == 2);
    CHECK(has_msg("run_bad.txt:2: score 'abc' is not a finite number"));
    CHECK(has_msg("run_bad.txt:3: expected 6 fields"));
    CHECK(has_msg("run_bad.txt:4: query 'q1' lists document 'd1' again"));
    CHECK(has_msg("run_bad.txt:5: rank 'x' is not an integer"));
    CHECK(has_msg("run_bad.txt:6: score 'nan' is not a finite number"));
    CHECK(has_msg("run_bad.txt:7: run tag 'tagB' differs"));
    if (run) {
        CHECK(run->nq == 2 && run->q[0].n == 1 && run->q[0].doc[0].score == 1.5);
        CHECK(run->q[1].n == 1 && run->q[1].doc[0].score == 0.2);
        plumb_run_free(run);
    }

    /* files that hold nothing usable, or are missing */
    CHECK_RC(plumb_run_load(fixture("qrels.tsv"), NULL, NULL, &run, NULL), PLUMB_CORRUPT);
    CHECK(run == NULL);
    CHECK_RC(plumb_qrels_load(fixture("no-such-file"), NULL, NULL, &qr, NULL), PLUMB_NOTFOUND);
    CHECK(strstr(plumb_errmsg(), "no-such-file") != NULL);
    CHECK_RC(plumb_queries_load(fixture("run.txt"), NULL, NULL, &qs, NULL), PLUMB_CORRUPT);
    CHECK_RC(plumb_qrels_load(NULL, NULL, NULL, &qr, NULL), PLUMB_MISUSE);
}

/* Two stage results from per-query values, for comparisons. */
typedef struct fake_stage {
    plumb_eval_stage_result s;
    plumb_eval_query q[64];
    char ids[64][16];
} fake_stage;

static void fake(fake_stage *f, const char *name, const double *v, int n) {
    memset(f, 0, sizeof *f);
    f->s.name = name;
    f->s.nq = (size_t)n;
    f->s.q = f->q;
    for (int i = 0; i < n; i++) {
        snprintf(f->ids[i], sizeof f->ids[i], "q%d", i);
        f->q[i].query_id = f->ids[i];
        f->q[i].metric[PLUMB_METRIC_NDCG10] = v[i];
    }
}

static void test_compare(void) {
    static fake_stage a, b;
    double va[40], vb[40];
    uint64_t x = 12345;
    for (int i = 0; i < 40; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        va[i] = 0.2 + (double)(x >> 40) / (double)(1ull << 24) * 0.6;
        vb[i] = va[i];
    }
    plumb_comparison *c = NULL;
    /* identical inputs: no difference, p = 1 */
    fake(&a, "A", va, 40);
    fake(&b, "B", vb, 40);
    CHECK_OK(plumb_eval_compare(&a.s, &b.s, NULL, &c));
    if (c) {
        CHECK(c->n == 40 && c->ties == 40 && c->wins == 0 && c->losses == 0);
        CHECK(c->p_randomization == 1.0);
        CHECK(c->p_ttest == 1.0);
        CHECK(c->mean_diff == 0);
        CHECK(c->permutations == 10000 && c->seed == 42);
        plumb_comparison_free(c);
        c = NULL;
    }
    /* B consistently better by 0.05 +- 0.02: tiny p */
    for (int i = 0; i < 40; i++) vb[i] = va[i] + 0.05 + 0.02 * ((i % 5) - 2) / 2.0;
    fake(&b, "B", vb, 40);
    CHECK_OK(plumb_eval_compare(&a.s, &b.s, NULL, &c));
    if (c) {
        CHECK(c->wins == 40 && c->losses == 0);
        CHECK_NEAR(c->mean_diff, 0.05, 1e-12);
        CHECK(c->p_randomization < 0.001);
        CHECK(c->p_randomization >= 1.0 / 10001);
        CHECK(c->p_ttest < 1e-10);
        CHECK(c->t > 10);
        CHECK_STR(c->name_a, "A");
        CHECK_STR(c->name_b, "B");
        double p1 = c->p_randomization;
        plumb_comparison_free(c);
        c = NULL;
        /* the fixed seed reproduces the p-value */
        CHECK_OK(plumb_eval_compare(&a.s, &b.s, NULL, &c));
        if (c) CHECK(c->p_randomization == p1);
        plumb_comparison_free(c);
        c = NULL;
    }
    /* queries matched by id; missing ones counted */
    fake(&b, "B", vb, 30);
    CHECK_OK(plumb_eval_compare(&a.s, &b.s, NULL, &c));
    if (c) {
        CHECK(c->n == 30 && c->only_a == 10 && c->only_b == 0);
        plumb_comparison_free(c);
        c = NULL;
    }
    plumb_compare_params cp;
    plumb_compare_params_init(&cp);
    cp.permutations = 10;
    CHECK_RC(plumb_eval_compare(&a.s, &b.s, &cp, &c), PLUMB_MISUSE);
    CHECK(c == NULL);

    /* the randomization test against an exact answer: three differences of
    ** +1: |sum| >= 3 in 2 of the 8 sign patterns, p = 0.25 */
    double d3[3] = {1, 1, 1};
    double p = eval_randomization_p(d3, 3, 100000, 7);
    CHECK_NEAR(p, 0.25, 0.006);
    /* Student's t, two-sided: known values */
    CHECK_NEAR(eval_ttest_p(1.0, 1), 0.5, 1e-9);              /* Cauchy */
    CHECK_NEAR(eval_ttest_p(1.0, 2), 1 - 1 / sqrt(3.0), 1e-9); /* closed form */
    CHECK_NEAR(eval_ttest_p(2.228138851986, 10), 0.05, 1e-7);
    CHECK_NEAR(eval_ttest_p(-2.228138851986, 10), 0.05, 1e-7);
    CHECK_NEAR(eval_ttest_p(1.959963984540, 1e7), 0.05, 1e-6); /* the normal limit */
    CHECK_NEAR(eval_ttest_p(0, 5), 1, 1e-12);
}

static void test_percentile(void) {
    double v[5] = {1, 2, 3, 4, 5};
    CHECK_NEAR(eval_percentile(v, 5, 0.5), 3, 1e-12);
    CHECK_NEAR(eval_percentile(v, 5, 0.95), 4.8, 1e-12);
    CHECK_NEAR(eval_percentile(v, 5, 1), 5, 1e-12);
    CHECK_NEAR(eval_percentile(v, 1, 0.99), 1, 1e-12);
    char s[40];
    eval_fmt_double(s, sizeof s, 0.1 + 0.2);
    CHECK_STR(s, "0.30000000000000004");
    eval_fmt_double(s, sizeof s, 12.5);
    CHECK_STR(s, "12.5");
}

/* plumb_eval_run on the tiny fixture, through the library. */
static void test_eval_run(void) {
    char dir[] = "/tmp/plumb-test-evalrun-XXXXXX", db_path[256], corpus[4300];
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    snprintf(db_path, sizeof db_path, "%s/t.db", dir);
    snprintf(corpus, sizeof corpus, "%s", fixture("tiny/corpus.jsonl"));
    plumb_db *db = NULL;
    plumb_queries *qs = NULL;
    plumb_qrels *qr = NULL;
    plumb_eval_result *r = NULL;
    const char *paths[1] = {corpus};
    CHECK_OK(plumb_open(db_path, NULL, &db));
    if (!db) goto done;
    CHECK_OK(plumb_index_paths(db, paths, 1, NULL, NULL));
    CHECK_OK(plumb_queries_load(fixture("tiny/queries.jsonl"), NULL, NULL, &qs, NULL));
    CHECK_OK(plumb_qrels_load(fixture("tiny/qrels/test.tsv"), NULL, NULL, &qr, NULL));
    if (!qs || !qr) goto done;
    plumb_eval_params p;
    plumb_eval_params_init(&p);
    p.threads = 2;
    buf_reset(&msgs);
    p.message = collect;
    CHECK_OK(plumb_eval_run(db, qs, qr, &p, &r));
    if (!r) goto done;
    CHECK(r->counts.evaluated == 3 && r->counts.unknown_docs == 1 && r->counts.judged_docs == 6);
    CHECK(r->counts.self_hits_dropped >= 1);
    CHECK(has_msg("'dMISSING'") && has_msg("'q9'") && has_msg("'q4'"));
    CHECK(r->nstages == 1);
    const plumb_eval_stage_result *s = &r->stage[0];
    CHECK_STR(s->name, "bm25");
    CHECK(s->latency.measured && s->latency.threads == 2 && s->latency.parallel_identical);
    CHECK(s->latency.k_eval >= 1000 && s->search.k == 10);
    CHECK(s->run && s->run->nq == s->nq);
    for (size_t i = 0; i < s->nq; i++) {
        CHECK(s->q[i].latency_ms >= 0);
        for (size_t k = 0; k < s->run->q[i].n; k++)
            CHECK(strcmp(s->run->q[i].doc[k].doc_id, s->run->q[i].query_id) != 0);
    }
    /* the run file written from it evaluates to the same figures */
    char rpath[300];
    snprintf(rpath, sizeof rpath, "%s/bm25.run", dir);
    CHECK_OK(plumb_run_write(s->run, rpath));
    plumb_run *back = NULL;
    plumb_eval_result *r2 = NULL;
    CHECK_OK(plumb_run_load(rpath, NULL, NULL, &back, NULL));
    if (back) {
        const plumb_run *runs[1] = {back};
        CHECK_OK(plumb_eval_runs(qr, runs, NULL, 1, NULL, &r2));
        /* per query the same; q9 (judged, in no queries file) joins with zeros */
        if (r2) {
            CHECK(r2->counts.evaluated == 4 && r2->counts.unknown_queries == 1);
            for (int m = 0; m < PLUMB_METRIC_COUNT; m++) {
                plumb_compare_params cp;
                plumb_compare_params_init(&cp);
                cp.metric = (plumb_metric)m;
                cp.tie_eps = 0;
                plumb_comparison *c = NULL;
                CHECK_OK(plumb_eval_compare(s, &r2->stage[0], &cp, &c));
                CHECK(c && c->n == 3 && c->ties == 3 && c->only_b == 1 && c->only_a == 0);
                CHECK(c && c->mean_a == s->mean[m]);
                plumb_comparison_free(c);
            }
        }
        plumb_eval_result_free(r2);
        plumb_run_free(back);
    }
    remove(rpath);
    /* misuse */
    plumb_eval_result *bad = NULL;
    p.depth = 5;
    CHECK_RC(plumb_eval_run(db, qs, qr, &p, &bad), PLUMB_MISUSE);
    plumb_eval_stage st[2];
    p.depth = 100;
    st[0].name = st[1].name = "same";
    plumb_search_params_init(&st[0].search);
    st[1].search = st[0].search;
    p.stages = st;
    p.nstages = 2;
    CHECK_RC(plumb_eval_run(db, qs, qr, &p, &bad), PLUMB_MISUSE);
    CHECK(bad == NULL);
done:
    plumb_eval_result_free(r);
    plumb_qrels_free(qr);
    plumb_queries_free(qs);
    plumb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* ------------------------------------------------------------------ */
/* Integration: the plumb tool                                         */
/* ------------------------------------------------------------------ */

static char tmpdir[64];

/* Run the tool through the shell; stdout into *out (malloc'd). Returns
** the exit status. */
static int run_cli(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_cli(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    buf b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_append(&b, tmp, n);
    int st = pclose(f);
    if (out) *out = buf_detach(&b);
    else buf_free(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double jnum(const cJSON *root, const char *path) {
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    const cJSON *j = root;
    for (char *t = strtok(p, "/"); t && j; t = strtok(NULL, "/")) j = cJSON_GetObjectItem(j, t);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

static const cJSON *jget(const cJSON *root, const char *path) {
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    const cJSON *j = root;
    for (char *t = strtok(p, "/"); t && j; t = strtok(NULL, "/")) j = cJSON_GetObjectItem(j, t);
    return j;
}

static int count_entries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) n++;
    closedir(d);
    return n;
}

static const cJSON *per_query(const cJSON *root, const char *qid) {
    const cJSON *pq = jget(root, "stages/bm25/per_query"), *e;
    cJSON_ArrayForEach(e, pq) {
        const cJSON *id = cJSON_GetObjectItem(e, "query_id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, qid) == 0) return e;
    }
    return NULL;
}

static int test_cli(const char *plumb) {
    char tiny[4200];
    snprintf(tiny, sizeof tiny, "%s", fixture("tiny")); /* fixture() reuses its buffers */
    char *out = NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/plumb-eval-cli-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    int before = count_entries(tiny), before_q = count_entries(fixture("tiny/qrels"));
    /* first run: builds the cached index under XDG_CACHE_HOME */
    int rc = run_cli(&out,
                     "cd '%s' && XDG_CACHE_HOME='%s/cache' '%s' eval '%s' --json --per-query "
                     "--run-dir '%s/runs' --report '%s/report.html' --threads 2 2>'%s/err1'",
                     tmpdir, tmpdir, plumb, tiny, tmpdir, tmpdir, tmpdir);
    CHECK(rc == 0);
    cJSON *j = cJSON_Parse(out ? out : "");
    CHECK(j != NULL);
    if (!j) fprintf(stderr, "output: %s\n", out ? out : "(none)");
    free(out);
    out = NULL;
    if (j) {
        CHECK(jnum(j, "counts/queries") == 5);
        CHECK(jnum(j, "counts/evaluated") == 3);          /* q1 q2 q3 */
        CHECK(jnum(j, "counts/skipped_unjudged") == 1);   /* q5 */
        CHECK(jnum(j, "counts/skipped_no_relevant") == 1); /* q4 */
        CHECK(jnum(j, "counts/unknown_queries") == 1);    /* q9 */
        CHECK(jnum(j, "counts/unknown_docs") == 1);       /* dMISSING */
        CHECK(jnum(j, "counts/self_hits_dropped") >= 1);  /* doc "q3" for query q3 */
        CHECK(jnum(j, "index/documents") == 8);
        CHECK(cJSON_IsTrue(jget(j, "index/built")) && cJSON_IsTrue(jget(j, "index/cached")));
        CHECK(jnum(j, "params/depth") == 1000);
        CHECK(cJSON_IsTrue(jget(j, "params/drop_self")));
        CHECK(jnum(j, "stages/bm25/search/k1") == 0.9);
        double nd = jnum(j, "stages/bm25/metrics/ndcg@10");
        CHECK(nd > 0.5 && nd <= 1);
        CHECK(jnum(j, "stages/bm25/latency/p50_ms") >= 0);
        CHECK(jnum(j, "stages/bm25/latency/threads") == 2);
        CHECK(cJSON_IsTrue(jget(j, "stages/bm25/latency/parallel_identical")));
        const cJSON *q1 = per_query(j, "q1"), *q2 = per_query(j, "q2"), *q3 = per_query(j, "q3");
        CHECK(q1 && q2 && q3);
        if (q1 && q2 && q3) {
            /* q1 has R = 3 with dMISSING never retrievable */
            CHECK(jnum(q1, "nrel") == 3);
            CHECK_NEAR(jnum(q1, "metrics/recall@1000"), 2.0 / 3, 1e-12);
            CHECK_NEAR(jnum(q2, "metrics/recall@1000"), 1, 0);
            /* q3's own document is dropped, so d4 (or d3) leads */
            CHECK(jnum(q3, "metrics/mrr@10") > 0);
        }
        cJSON_Delete(j);
    }
    /* nothing was written into the dataset directory */
    CHECK(count_entries(tiny) == before && count_entries(fixture("tiny/qrels")) == before_q);
    /* the run file: trec format, no self hit */
    char path[256];
    snprintf(path, sizeof path, "%s/runs/bm25.run", tmpdir);
    plumb_run *run = NULL;
    CHECK_OK(plumb_run_load(path, NULL, NULL, &run, NULL));
    if (run) {
        for (size_t i = 0; i < run->nq; i++)
            for (size_t k = 0; k < run->q[i].n; k++)
                CHECK(strcmp(run->q[i].query_id, run->q[i].doc[k].doc_id) != 0);
        plumb_run_free(run);
    }
    snprintf(path, sizeof path, "%s/report.html", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        char page[1 << 16];
        size_t n = fread(page, 1, sizeof page - 1, f);
        page[n] = 0;
        fclose(f);
        CHECK(strstr(page, "<svg") && strstr(page, "Metrics per stage") &&
              strstr(page, "Latency per query"));
        CHECK(!strstr(page, "http://") && !strstr(page, "https://") && !strstr(page, "<script"));
    }

    /* second run: the cached index is reused */
    rc = run_cli(&out, "XDG_CACHE_HOME='%s/cache' '%s' eval '%s' --json --threads 1 2>/dev/null",
                 tmpdir, plumb, tiny);
    CHECK(rc == 0);
    j = cJSON_Parse(out ? out : "");
    free(out);
    out = NULL;
    CHECK(j && !cJSON_IsTrue(jget(j, "index/built")) && cJSON_IsTrue(jget(j, "index/cached")));
    CHECK(j && jnum(j, "stages/bm25/latency/threads") == 0);
    cJSON_Delete(j);

    /* --compare of a run with itself: p = 1; metrics equal the eval's */
    rc = run_cli(&out, "'%s' eval --compare '%s/runs/bm25.run' '%s/runs/bm25.run' --qrels "
                 "'%s/qrels/test.tsv' --json 2>/dev/null", plumb, tmpdir, tmpdir, tiny);
    CHECK(rc == 0);
    j = cJSON_Parse(out ? out : "");
    free(out);
    out = NULL;
    CHECK(j != NULL);
    if (j) {
        CHECK(jnum(j, "comparison/p_randomization") == 1);
        CHECK(jnum(j, "comparison/p_ttest") == 1);
        CHECK(jnum(j, "comparison/ties") == jnum(j, "comparison/queries"));
        cJSON_Delete(j);
    }

    /* the human table, and a malformed qrels file reported with its line */
    rc = run_cli(&out, "XDG_CACHE_HOME='%s/cache' '%s' eval --corpus '%s/corpus.jsonl' "
                 "--queries '%s/queries.jsonl' --qrels '%s' --threads 1 2>&1",
                 tmpdir, plumb, tiny, tiny, fixture("qrels_bad.tsv"));
    CHECK(rc == 0);
    CHECK(out && strstr(out, "qrels_bad.tsv:3: expected 3 fields"));
    CHECK(out && strstr(out, "nDCG@10") && strstr(out, "bm25"));
    free(out);
    out = NULL;

    /* errors: usage (2), missing dataset (1), no matching ids (1) */
    CHECK(run_cli(NULL, "'%s' eval 2>/dev/null", plumb) == 2);
    CHECK(run_cli(NULL, "'%s' eval --depth 5 '%s' 2>/dev/null", plumb, tiny) == 2);
    CHECK(run_cli(NULL, "'%s' eval --stages colbert '%s' 2>/dev/null", plumb, tiny) == 2);
    CHECK(run_cli(NULL, "'%s' eval '%s/nope' 2>/dev/null", plumb, tmpdir) == 1);
    rc = run_cli(&out, "XDG_CACHE_HOME='%s/cache' '%s' eval --corpus '%s/corpus.jsonl' "
                 "--queries '%s/queries.jsonl' --qrels '%s' 2>&1 >/dev/null",
                 tmpdir, plumb, tiny, tiny, fixture("qrels_mismatch.tsv"));
    CHECK(rc == 1);
    CHECK(out && strstr(out, "no query of the queries file has a relevant judgment"));
    free(out);
    CHECK(run_cli(NULL, "'%s' eval --help | grep -q -- --compare", plumb) == 0);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE();
}

int main(int argc, char **argv) {
    const char *td = getenv("PLUMB_TEST_DATA");
    snprintf(data_dir, sizeof data_dir, "%s", td && *td ? td : "tests/data");
    if (argc == 3 && strcmp(argv[1], "--cli") == 0) {
        char plumb[4096];
        if (!realpath(argv[2], plumb)) { /* the test changes directory */
            fprintf(stderr, "test_eval: no plumb tool at '%s'\n", argv[2]);
            return 1;
        }
        int rc = test_cli(plumb);
        printf("eval cli: %s\n", rc ? "FAILED" : "ok");
        return rc;
    }
    test_measure();
    test_tie_order();
    test_fixture_metrics();
    test_caller_runs();
    test_round_trip();
    test_malformed();
    test_compare();
    test_percentile();
    test_eval_run();
    buf_free(&msgs);
    return CHECK_DONE();
}
