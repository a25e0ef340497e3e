/*
** cmd_tune.c -- `plumb tune`: learn BM25 k1/b and the reranker's weights
** from training judgments (plumb_tune) and store them in the index.
**
** Policy kept here: which files make a set (a BEIR directory gives
** queries.jsonl, qrels/train.tsv and, as held-out, qrels/dev.tsv or
** qrels/test.tsv), refusing a training file named test.tsv without
** --force, and saying on every run which split was learned from.
*/
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { O_HELP = 1, O_DB, O_DATA, O_QUERIES, O_QRELS, O_HELDOUT, O_RERANK, O_NOGRID, O_ROUNDS,
       O_NOSTORE, O_OUT, O_FORCE, O_JSON, O_DUMP, O_NOTREES };

static const cli_opt opts[] = {
    {"help", 'h', 0, O_HELP},        {"db", 0, 1, O_DB},
    {"data", 0, 1, O_DATA},          {"queries", 0, 1, O_QUERIES},
    {"qrels", 0, 1, O_QRELS},        {"heldout", 0, 1, O_HELDOUT},
    {"rerank", 0, 1, O_RERANK},      {"no-grid", 0, 0, O_NOGRID},
    {"rounds", 0, 1, O_ROUNDS},      {"no-store", 0, 0, O_NOSTORE},
    {"out", 0, 1, O_OUT},            {"force", 0, 0, O_FORCE},
    {"json", 0, 0, O_JSON},          {"dump-features", 0, 1, O_DUMP},
    {"no-trees", 0, 0, O_NOTREES},
    {NULL, 0, 0, 0},
};

void cmd_tune_help(FILE *f) {
    fprintf(f,
            "Usage: plumb tune --db FILE --data DIR [--db FILE --data DIR ...] [OPTIONS]\n"
            "       plumb tune --db FILE --queries FILE --qrels TRAIN [--heldout FILE]\n"
            "\n"
            "Learn the search parameters of an index from relevance judgments: BM25's k1\n"
            "and b and the fusion weight alpha (when the index has vectors) on a small\n"
            "grid, and the feature reranker's weights by coordinate ascent on nDCG@10\n"
            "of the TRAINING judgments only, and a small ensemble of regression trees\n"
            "(LambdaMART) on top. The grid point is the one where the shipped reranker\n"
            "does best; the model kept (the shipped weights, the learned ones, or those\n"
            "plus trees) is the best by 5-fold cross-validation on the training queries. Held-out judgments are measured,\n"
            "never learned from. The result is stored in the index's settings (so plumb\n"
            "search and plumb eval use it) and, with --out, written to a file.\n"
            "Each --db starts a set; with several, one set of values is learned for all\n"
            "(each set weighs the same) and stored in each index.\n"
            "\n"
            "Options:\n"
            "  --db FILE          the index (built with plumb index, or plumb eval --db)\n"
            "  --data DIR         BEIR layout: DIR/queries.jsonl, DIR/qrels/train.tsv to\n"
            "                     learn from, DIR/qrels/dev.tsv or else test.tsv held out\n"
            "  --queries FILE     queries (JSONL with _id and text)\n"
            "  --qrels FILE       training judgments; a file named test.tsv is refused\n"
            "                     unless --force\n"
            "  --heldout FILE     judgments to report only\n"
            "  --rerank N         candidates reranked (default 30)\n"
            "  --no-grid          keep the index's k1, b and alpha\n"
            "  --rounds N         coordinate ascent passes at most (default 8)\n"
            "  --no-trees         the linear model only\n"
            "  --no-store         do not write the index's settings\n"
            "  --out FILE         write the learned values as settings lines (key value)\n"
            "  --json             one JSON object on stdout\n"
            "  --dump-features FILE  write each judged query's top-N reranker features at\n"
            "                     the learned values (train and held out) as LETOR/SVMlight\n"
            "                     lines, for learners outside plumb\n"
            "  --force            allow training on a file named test.tsv\n"
            "\n"
            "Example:\n"
            "  plumb eval data/scifact --db sf.db && plumb tune --db sf.db --data data/scifact\n");
}

typedef struct tset {
    const char *db, *data, *queries, *qrels, *heldout;
    char bq[4096], bt[4096], bh[4096];
} tset;

static void on_progress(void *arg, const char *what) {
    (void)arg;
    fprintf(stderr, "tune: %s\n", what);
}

static int file_exists(const char *p) { return access(p, R_OK) == 0; }

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int cmd_tune(int argc, char **argv) {
    tset sets[PLUMB_TUNE_MAX_SETS];
    memset(sets, 0, sizeof sets);
    int ns = 0, force = 0, json = 0;
    const char *out = NULL;
    plumb_tune_params tp;
    plumb_tune_params_init(&tp);
    tp.store = 1;
    cli_parser ps;
    cli_parser_init(&ps, "tune", argc, argv, opts);
    int id;
    while ((id = cli_next(&ps)) != CLI_DONE) {
        tset *cur = ns ? &sets[ns - 1] : NULL;
        if (id == CLI_BAD) return CLI_EXIT_USAGE;
        if ((id == O_DATA || id == O_QUERIES || id == O_QRELS || id == O_HELDOUT) && !cur)
            return cli_usage("tune", "%s: give --db first", ps.name);
        switch (id) {
        case O_HELP: cmd_tune_help(stdout); return CLI_EXIT_OK;
        case O_DB:
            if (ns == PLUMB_TUNE_MAX_SETS)
                return cli_usage("tune", "at most %d indexes", PLUMB_TUNE_MAX_SETS);
            sets[ns++].db = ps.val;
            break;
        case O_DATA: cur->data = ps.val; break;
        case O_QUERIES: cur->queries = ps.val; break;
        case O_QRELS: cur->qrels = ps.val; break;
        case O_HELDOUT: cur->heldout = ps.val; break;
        case O_RERANK: if (cli_int_arg(&ps, 10, 1000, &tp.rerank)) return CLI_EXIT_USAGE; break;
        case O_ROUNDS: if (cli_int_arg(&ps, 1, 100, &tp.rounds)) return CLI_EXIT_USAGE; break;
        case O_NOGRID: tp.grid = 0; break;
        case O_NOSTORE: tp.store = 0; break;
        case O_OUT: out = ps.val; break;
        case O_FORCE: force = 1; break;
        case O_JSON: json = 1; break;
        case O_DUMP: tp.features_out = ps.val; break;
        case O_NOTREES: tp.trees = 0; break;
        case CLI_ARG: return cli_usage("tune", "unexpected argument '%s'", ps.val);
        default: return CLI_EXIT_USAGE;
        }
    }
    if (!ns) return cli_usage("tune", "give --db FILE and --data DIR (or --queries/--qrels)");
    for (int i = 0; i < ns; i++) {
        tset *s = &sets[i];
        if (s->data) {
            snprintf(s->bq, sizeof s->bq, "%s/queries.jsonl", s->data);
            snprintf(s->bt, sizeof s->bt, "%s/qrels/train.tsv", s->data);
            if (!s->queries) s->queries = s->bq;
            if (!s->qrels) s->qrels = s->bt;
            if (!s->heldout) {
                snprintf(s->bh, sizeof s->bh, "%s/qrels/dev.tsv", s->data);
                if (!file_exists(s->bh)) snprintf(s->bh, sizeof s->bh, "%s/qrels/test.tsv", s->data);
                if (file_exists(s->bh)) s->heldout = s->bh;
            }
        }
        if (!s->queries || !s->qrels)
            return cli_usage("tune", "index %s: give --data DIR or --queries and --qrels", s->db);
        if (!file_exists(s->qrels))
            return cli_usage("tune", "no training judgments '%s' (cranfield-like datasets "
                             "have only a test split: tune on another dataset)", s->qrels);
        if (!force && !strcmp(base_name(s->qrels), "test.tsv"))
            return cli_usage("tune", "refusing to learn from '%s': a test split must never be "
                             "tuned on (--force overrides)", s->qrels);
        if (s->heldout && !strcmp(s->heldout, s->qrels))
            return cli_usage("tune", "the held-out judgments are the training judgments");
    }
    plumb_db *db[PLUMB_TUNE_MAX_SETS] = {0};
    plumb_queries *qs[PLUMB_TUNE_MAX_SETS] = {0};
    plumb_qrels *tr[PLUMB_TUNE_MAX_SETS] = {0}, *ho[PLUMB_TUNE_MAX_SETS] = {0};
    plumb_tune_set ts[PLUMB_TUNE_MAX_SETS];
    int code = 0;
    plumb_status rc = PLUMB_OK;
    for (int i = 0; i < ns && !code; i++) {
        tset *s = &sets[i];
        if ((code = cli_open_existing(s->db, !tp.store, &db[i]))) break;
        if ((rc = plumb_queries_load(s->queries, NULL, NULL, &qs[i], NULL))) {
            cli_fail(rc, "cannot load queries '%s'", s->queries);
            code = CLI_EXIT_FAIL;
        } else if ((rc = plumb_qrels_load(s->qrels, NULL, NULL, &tr[i], NULL))) {
            cli_fail(rc, "cannot load judgments '%s'", s->qrels);
            code = CLI_EXIT_FAIL;
        } else if (s->heldout && (rc = plumb_qrels_load(s->heldout, NULL, NULL, &ho[i], NULL))) {
            cli_fail(rc, "cannot load judgments '%s'", s->heldout);
            code = CLI_EXIT_FAIL;
        }
        ts[i] = (plumb_tune_set){db[i], qs[i], tr[i], ho[i], s->db};
    }
    plumb_tune_result r;
    if (!code) {
        for (int i = 0; i < ns; i++)
            fprintf(stderr, "tune: %s: learning from %s only%s%s%s\n", sets[i].db, sets[i].qrels,
                    sets[i].heldout ? "; " : "", sets[i].heldout ? sets[i].heldout : "",
                    sets[i].heldout ? " is held out (measured, never learned from)" : "");
        tp.progress = on_progress;
        if ((rc = plumb_tune(ts, ns, &tp, &r))) {
            cli_fail(rc, "tuning failed");
            code = CLI_EXIT_FAIL;
        }
    }
    if (!code && out) {
        FILE *f = fopen(out, "w");
        if (!f) {
            fprintf(stderr, "plumb: cannot write '%s'\n", out);
            code = CLI_EXIT_FAIL;
        } else {
            fprintf(f, "# plumb tune: learned from the training judgments only:");
            for (int i = 0; i < ns; i++) fprintf(f, " %s", sets[i].qrels);
            fprintf(f, "\nbm25_k1 %.6g\nbm25_b %.6g\nrerank %d\nrerank_kind features\n"
                       "rerank_weights %s\n", r.k1, r.b, r.rerank, r.weights_text);
            if (!isnan(r.alpha)) fprintf(f, "alpha %.6g\n", r.alpha);
            if (r.ntrees)
                fprintf(f, "# rerank_trees: %d trees, written to the index only (not with "
                           "--no-store)\n", r.ntrees);
            if (fclose(f)) code = CLI_EXIT_FAIL;
        }
    }
    if (!code && json) {
        printf("{\"k1\":");
        cli_json_num(stdout, r.k1);
        printf(",\"b\":");
        cli_json_num(stdout, r.b);
        printf(",\"alpha\":");
        cli_json_num(stdout, r.alpha);
        printf(",\"model\":");
        cli_json_str(stdout, r.model);
        printf(",\"trees\":%d,\"cv_shipped\":", r.ntrees);
        cli_json_num(stdout, r.cv_shipped);
        printf(",\"cv_linear\":");
        cli_json_num(stdout, r.cv_linear);
        printf(",\"cv_trees\":");
        cli_json_num(stdout, r.cv_trees);
        printf(",\"rerank\":%d,\"weights\":{", r.rerank);
        for (int i = 0; i < r.nweights; i++) {
            printf("%s\"%s\":", i ? "," : "", r.weight_names[i]);
            cli_json_num(stdout, r.weights[i]);
        }
        printf("},\"stored\":%s,\"trained_on\":\"train\",\"sets\":[", r.stored ? "true" : "false");
        for (int i = 0; i < ns; i++) {
            printf("%s{\"db\":", i ? "," : "");
            cli_json_str(stdout, sets[i].db);
            printf(",\"train_qrels\":");
            cli_json_str(stdout, sets[i].qrels);
            const plumb_tune_figures *f[2] = {&r.set_train[i], &r.set_heldout[i]};
            const char *nm[2] = {"train", "heldout"};
            for (int k = 0; k < 2; k++) {
                if (k && !sets[i].heldout) continue;
                printf(",\"%s\":{\"queries\":%zu,\"stage1\":", nm[k], f[k]->queries);
                cli_json_num(stdout, f[k]->stage1);
                printf(",\"shipped\":");
                cli_json_num(stdout, f[k]->shipped);
                printf(",\"tuned\":");
                cli_json_num(stdout, f[k]->tuned);
                printf("}");
            }
            printf("}");
        }
        printf("],\"elapsed_s\":");
        cli_json_num(stdout, r.elapsed_s);
        printf("}\n");
    } else if (!code) {
        printf("Tuned on the TRAINING judgments only (never on a test split).\n");
        printf("k1 %.3g  b %.3g", r.k1, r.b);
        if (!isnan(r.alpha)) printf("  alpha %.3g", r.alpha);
        printf("  rerank N %d\nweights %s\n", r.rerank, r.weights_text);
        printf("model %s", r.model ? r.model : "?");
        if (r.ntrees) printf(" (%d trees)", r.ntrees);
        if (isnan(r.cv_linear)) {
            printf(": not cross-validated (too few training queries)");
        } else {
            printf(": 5-fold cross-validated training nDCG@10 shipped %.4f, learned weights %.4f",
                   r.cv_shipped, r.cv_linear);
            if (!isnan(r.cv_trees)) printf(", + trees %.4f", r.cv_trees);
        }
        printf("\n");
        printf("\nnDCG@10        %-8s %8s %8s %8s\n", "queries", "stage 1", "shipped", "tuned");
        for (int i = 0; i < ns; i++) {
            const plumb_tune_figures *t = &r.set_train[i], *h = &r.set_heldout[i];
            printf("%s\n  train        %-8zu %8.4f %8.4f %8.4f\n", sets[i].db, t->queries,
                   t->stage1, t->shipped, t->tuned);
            if (sets[i].heldout)
                printf("  held out     %-8zu %8.4f %8.4f %8.4f   (%s)\n", h->queries, h->stage1,
                       h->shipped, h->tuned, sets[i].heldout);
        }
        printf("(stage 1: the index's own k1, b and alpha, no reranking; shipped: the\n"
               "built-in weights; tuned: the learned values; nDCG@10 over the top %d)\n",
               r.rerank);
        printf("%s\n", r.stored ? "stored in the index settings" : "not stored (--no-store)");
    }
    for (int i = 0; i < ns; i++) {
        plumb_close(db[i]);
        plumb_queries_free(qs[i]);
        plumb_qrels_free(tr[i]);
        plumb_qrels_free(ho[i]);
    }
    return code;
}
