/*
** cmd_search.c -- `plumb search QUERY...`: print the best-ranked chunks.
**
** Prints the hits of one plumb_search() call, either for people (rank,
** score, id, title, highlighted snippet, optionally the chunk text) or as
** one JSON object. The search is recorded in the index's query log, so the
** index is opened for writing when it may be written (file and directory
** writable); otherwise, or with --no-log, it is opened read-only and the
** search is not logged. The log entry's id goes to --json ("log_id") and,
** on a terminal, to stderr, for `plumb feedback`.
** Highlights are ANSI bold on a terminal and "[...]" elsewhere; text from
** documents is cleaned of control characters before it reaches a terminal.
** Zero hits is not an error (exit 0).
*/
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { O_K = 1, O_DB, O_JSON, O_K1, O_B, O_WTITLE, O_WBODY, O_FTS5, O_NOSNIP, O_TEXT, O_NOLOG,
       O_HELP, O_MODE, O_FUSION, O_ALPHA, O_RRFK, O_KLEX, O_KDENSE, O_VSEARCH, O_EF, O_RERANK, O_QE };

static const cli_opt opts[] = {
    {"k", 'k', 1, O_K},
    {"db", 0, 1, O_DB},
    {"json", 0, 0, O_JSON},
    {"k1", 0, 1, O_K1},
    {"b", 0, 1, O_B},
    {"title-weight", 0, 1, O_WTITLE},
    {"body-weight", 0, 1, O_WBODY},
    {"fts5", 0, 0, O_FTS5},
    {"no-snippet", 0, 0, O_NOSNIP},
    {"text", 0, 0, O_TEXT},
    {"no-log", 0, 0, O_NOLOG},
    {"help", 'h', 0, O_HELP},
    {"mode", 'm', 1, O_MODE},
    {"fusion", 0, 1, O_FUSION},
    {"alpha", 0, 1, O_ALPHA},
    {"rrf-k", 0, 1, O_RRFK},
    {"k-lex", 0, 1, O_KLEX},
    {"rerank", 0, 1, O_RERANK},
    {"k-dense", 0, 1, O_KDENSE},
    {"qe-docs", 0, 1, O_QE},
    {"vsearch", 0, 1, O_VSEARCH},
    {"ef", 0, 1, O_EF},
    CLI_RERANK_OPTS,
    {NULL, 0, 0, 0},
};

const char *cli_rerank_help_text(void) {
    return "  --reranker KIND      stage 2: features (built in), http, a /rerank\n"
           "                       service (Cohere/Jina/TEI), or llm, a chat model grading\n"
           "                       each of the top 5 (--rerank N: up to 20) 0-3, one\n"
           "                       call each; default: stored in the index\n"
           "                       ('plumb config rerank_kind'). When the service fails\n"
           "                       the hits keep the stage-1 order and a warning says so\n"
           "  --rerank-url URL     http: base URL, /rerank appended (llm:\n"
           "                       /chat/completions; default $PLUMB_RERANK_URL, else\n"
           "                       stored); the key comes from $PLUMB_RERANK_API_KEY\n"
           "                       (llm: $PLUMB_LLM_API_KEY, else that)\n"
           "  --rerank-model NAME  http, llm: model (default $PLUMB_RERANK_MODEL, else stored)\n"
           "  --rerank-timeout S   http, llm: seconds per attempt, 2 retries (default: stored, 10)\n";
}

int cli_rerank_opt(const cli_parser *ps, int id, plumb_search_params *sp) {
    double s;
    switch (id) {
    case R_RERANKER:
        if (strcmp(ps->val, "features") && strcmp(ps->val, "http") && strcmp(ps->val, "llm"))
            return cli_usage(ps->cmd, "%s: expected features, http or llm, got '%s'", ps->name,
                             ps->val);
        sp->reranker = ps->val;
        return 0;
    case R_RURL:
        sp->rerank_url = ps->val;
        return 0;
    case R_RMODEL:
        sp->rerank_model = ps->val;
        return 0;
    case R_RTIMEOUT: {
        int bad = cli_num_arg(ps, 0.001, 600, &s);
        if (!bad) sp->rerank_timeout_ms = (int)(s * 1000 + 0.5);
        return bad;
    }
    default:
        return 0;
    }
}

void cli_rerank_warn(const plumb_hits *h) {
    if (!h->rerank_fallback) return;
    fputs("plumb: warning: the reranker failed; the hits are in stage-1 order: ", stderr);
    cli_put_clean(stderr, h->rerank_error ? h->rerank_error : "(no message)", 0);
    fputc('\n', stderr);
}

void cli_rerank_json(const plumb_hits *h) {
    printf(",\"rerank\":{\"kind\":");
    cli_json_str(stdout, h->rerank_kind);
    printf(",\"n\":%d,\"fallback\":%s,\"error\":", h->rerank_n,
           h->rerank_fallback ? "true" : "false");
    cli_json_str(stdout, h->rerank_error);
    printf("}");
}

void cmd_search_help(FILE *f) {
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    fprintf(f,
            "Usage: plumb search QUERY... [OPTIONS]\n"
            "\n"
            "Rank the indexed chunks for a query and print the best ones: rank, score,\n"
            "document id, title and a snippet with the query terms highlighted (bold on\n"
            "a terminal, [like this] otherwise). Several arguments are joined with\n"
            "spaces into one query. By default BM25 and dense candidates are fused\n"
            "(hybrid) when the index has vectors, else BM25 alone.\n"
            "\n"
            "Options:\n"
            "  -k N                 number of hits, 1..10000 (default %d)\n"
            "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
            "  --json               print one JSON object: {\"query\", \"generation\",\n"
            "                       \"matched\", \"hits\": [{\"rank\", \"doc_id\", \"chunk_id\",\n"
            "                       \"chunk_seq\", \"score\", \"scores\": {\"lexical\", \"dense\",\n"
            "                       \"fused\", \"rerank\"} (null: stage not run), \"ranks\",\n"
            "                       \"title\", \"source\", \"snippet\", \"text\" (with\n"
            "                       --text), \"metadata\"}], \"log_id\", \"rerank\":\n"
            "                       {\"kind\", \"n\", \"fallback\", \"error\"}}\n"
            "  --text               also print each hit's full chunk text\n"
            "  --no-snippet         do not compute snippets\n"
            "  --k1 X               BM25 k1 (default: the value stored in the index)\n"
            "  --b X                BM25 b, 0..1 (default: stored in the index)\n"
            "  --title-weight X     BM25F weight of the title (default: stored in the index)\n"
            "  --body-weight X      BM25F weight of the body (default: stored in the index)\n"
            "  --fts5               score with SQLite FTS5's bm25() instead (k1=1.2, b=0.75\n"
            "                       fixed); a baseline for comparisons\n"
            "  -m, --mode M         auto, lexical, dense or hybrid (default auto)\n"
            "  --fusion F           minmax, zscore or rrf (default: stored in the index)\n"
            "  --alpha X            weight of the dense side in fusion, 0..1 (default:\n"
            "                       stored in the index)\n"
            "  --rrf-k X            RRF constant (default: stored, 60)\n"
            "  --k-lex N, --k-dense N   candidates each retriever gives fusion (default:\n"
            "                       stored, 100)\n"
            "  --qe-docs N          hybrid: expand the BM25 query from its top N hits\n"
            "                       (RM3; 0: off; default: stored, 10)\n"
            "  --rerank N           rerank the top N candidates (stage 2); 0: off\n"
            "                       (default: stored in the index, 30)\n"
            "%s"
            "  --vsearch V          dense search: f32, int8, binary (each exact, the\n"
            "                       quantized ones rescored in f32) or ann (FAISS)\n"
            "  --ef N               HNSW efSearch (IVF nprobe) for --vsearch ann\n"
            "  --no-log             do not record this search in the query log\n"
            "  -h, --help           show this help\n"
            "\n"
            "'plumb stats' shows the stored BM25 settings. Use '--' before a query that\n"
            "starts with '-'.\n"
            "\n"
            "Each search is recorded in the index's query log (see 'plumb log') when the\n"
            "index may be written; its entry id is \"log_id\" in --json and is shown on a\n"
            "terminal, so 'plumb feedback ID --relevant DOC' can judge the hits.\n"
            "\n"
            "Examples:\n"
            "  plumb search axolotl limb regeneration\n"
            "  plumb search \"heart muscle repair\" -k 3 --text\n"
            "  plumb search --json --k1 1.2 --b 0.75 quarks | jq '.hits[].doc_id'\n"
            "  plumb search quarks --reranker http --rerank-url http://127.0.0.1:8080\n",
            sp.k, cli_rerank_help_text());
}

static void print_json(const char *query, const plumb_hits *h, int with_text, int logged) {
    printf("{\"query\":");
    cli_json_str(stdout, query);
    printf(",\"generation\":%" PRId64 ",\"matched\":%" PRId64 ",\"hits\":[", h->generation,
           h->matched);
    for (size_t i = 0; i < h->n; i++) {
        const plumb_hit *x = &h->hit[i];
        printf("%s{\"rank\":%zu,\"doc_id\":", i ? "," : "", i + 1);
        cli_json_str(stdout, x->doc_id);
        printf(",\"chunk_id\":%" PRId64 ",\"chunk_seq\":%d,\"score\":", x->chunk_id, x->chunk_seq);
        cli_json_num(stdout, x->score);
        const double sc[4] = {x->score_lex, x->score_dense, x->score_fused, x->score_rerank};
        const char *sn[4] = {"lexical", "dense", "fused", "rerank"};
        printf(",\"scores\":{");
        for (int j = 0; j < 4; j++) {
            printf("%s\"%s\":", j ? "," : "", sn[j]);
            if (isnan(sc[j])) printf("null");
            else cli_json_num(stdout, sc[j]);
        }
        printf("},\"ranks\":{\"lexical\":%d,\"dense\":%d,\"fused\":%d}", x->rank_lex,
               x->rank_dense, x->rank_fused);
        printf(",\"title\":");
        cli_json_str(stdout, x->title ? x->title : "");
        printf(",\"source\":");
        cli_json_str(stdout, x->source ? x->source : "");
        printf(",\"snippet\":");
        cli_json_str(stdout, x->snippet);
        if (with_text) {
            printf(",\"text\":");
            cli_json_str(stdout, x->text);
        }
        /* The library validated metadata as a JSON object when it was added. */
        printf(",\"metadata\":%s}", x->metadata && *x->metadata ? x->metadata : "null");
    }
    printf("]");
    if (logged && h->log_id > 0) printf(",\"log_id\":%" PRId64, h->log_id);
    else printf(",\"log_id\":null");
    cli_rerank_json(h);
    printf("}\n");
}

/* Print `s` with every line indented by `indent` spaces. */
static void put_indented(const char *s, int indent, int flags) {
    const char *p = s;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = malloc(n + 1);
        if (!line) return;
        memcpy(line, p, n);
        line[n] = 0;
        printf("%*s", indent, "");
        cli_put_clean(stdout, line, flags);
        putchar('\n');
        free(line);
        p += n + (nl ? 1 : 0);
    }
}

static void print_human(const plumb_hits *h, int with_text, int styled) {
    int w = h->n >= 1000 ? 4 : h->n >= 100 ? 3 : h->n >= 10 ? 2 : 1;
    int flags = styled ? CLI_CLEAN_HL : 0;
    for (size_t i = 0; i < h->n; i++) {
        const plumb_hit *x = &h->hit[i];
        if (i) putchar('\n');
        printf("%*zu. %.4f  ", w, i + 1, x->score);
        cli_put_clean(stdout, x->doc_id, 0);
        if (x->chunk_seq > 0) printf(" (chunk %d)", x->chunk_seq + 1);
        if (x->title && *x->title) {
            fputs("  ", stdout);
            if (styled) fputs("\x1b[1m", stdout);
            cli_put_clean(stdout, x->title, 0);
            if (styled) fputs("\x1b[0m", stdout);
        }
        putchar('\n');
        if (x->snippet && *x->snippet) {
            printf("%*s", w + 2, "");
            cli_put_clean(stdout, x->snippet, flags);
            putchar('\n');
        }
        if (with_text && x->text) {
            printf("%*s--- text ---\n", w + 2, "");
            put_indented(x->text, w + 2, CLI_CLEAN_LINES);
        }
    }
    if (styled)
        printf("%s%zu hit%s of %" PRId64 " matching chunk%s\n", h->n ? "\n" : "", h->n,
               h->n == 1 ? "" : "s", h->matched, h->matched == 1 ? "" : "s");
}

/* 1 when this process may write `path` and the directory that holds it
** (SQLite puts its -wal and -shm files there). */
static int may_write(const char *path) {
    if (access(path, W_OK) != 0) return 0;
    const char *sl = strrchr(path, '/');
    if (!sl) return access(".", W_OK | X_OK) == 0;
    size_t n = sl == path ? 1 : (size_t)(sl - path);
    char *dir = malloc(n + 1);
    if (!dir) return 0;
    memcpy(dir, path, n);
    dir[n] = 0;
    int ok = access(dir, W_OK | X_OK) == 0;
    free(dir);
    return ok;
}

/* Open for writing (so the search is logged) when possible, else
** read-only. Returns 0 or an exit code (reported). */
static int open_for_search(const char *path, int log, plumb_db **db, int *logged) {
    *logged = 0;
    if (log && may_write(path)) {
        plumb_open_params op;
        plumb_open_params_init(&op);
        op.create = 0;
        plumb_status rc = plumb_open(path, &op, db);
        if (rc == PLUMB_OK) {
            *logged = 1;
            return 0;
        }
        /* a file system that refuses writes after all: search without a log */
        if (rc != PLUMB_IO && rc != PLUMB_BUSY) return cli_open_failed(path, rc);
    }
    return cli_open_existing(path, 1, db);
}

int cmd_search(int argc, char **argv) {
    plumb_search_params sp;
    plumb_hits *hits = NULL;
    plumb_db *db = NULL;
    const char *dbopt = NULL;
    const char **words = NULL;
    char *query = NULL;
    int nwords = 0, json = 0, with_text = 0, code = CLI_EXIT_OK, bm25_opt = 0, log = 1, logged;
    cli_parser ps;

    plumb_search_params_init(&sp);
    words = malloc(sizeof *words * (size_t)(argc > 0 ? argc : 1));
    if (!words) {
        fputs("plumb: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    cli_parser_init(&ps, "search", argc, argv, opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        if (o == CLI_BAD) {
            code = CLI_EXIT_USAGE;
            goto done;
        }
        switch (o) {
        case CLI_ARG:
            words[nwords++] = ps.val;
            break;
        case O_K:
            bad = cli_int_arg(&ps, 1, 10000, &sp.k);
            break;
        case O_DB:
            dbopt = ps.val;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_K1:
            bad = cli_num_arg(&ps, 0, 1000, &sp.bm25_k1);
            bm25_opt = 1;
            break;
        case O_B:
            bad = cli_num_arg(&ps, 0, 1, &sp.bm25_b);
            bm25_opt = 1;
            break;
        case O_WTITLE:
            bad = cli_num_arg(&ps, 0, 1000, &sp.weight_title);
            break;
        case O_WBODY:
            bad = cli_num_arg(&ps, 0, 1000, &sp.weight_body);
            break;
        case O_FTS5:
            sp.scorer = PLUMB_SCORER_FTS5;
            break;
        case O_NOSNIP:
            sp.snippet_tokens = 0;
            break;
        case O_TEXT:
            with_text = 1;
            break;
        case O_NOLOG:
            log = 0;
            break;
        case O_HELP:
            cmd_search_help(stdout);
            goto done;
        case O_MODE:
            if (!strcmp(ps.val, "auto")) sp.mode = PLUMB_MODE_AUTO;
            else if (!strcmp(ps.val, "lexical") || !strcmp(ps.val, "bm25")) sp.mode = PLUMB_MODE_LEXICAL;
            else if (!strcmp(ps.val, "dense")) sp.mode = PLUMB_MODE_DENSE;
            else if (!strcmp(ps.val, "hybrid")) sp.mode = PLUMB_MODE_HYBRID;
            else bad = cli_usage("search", "%s: expected auto, lexical, dense or hybrid, got '%s'",
                                 ps.name, ps.val);
            break;
        case O_FUSION:
            if (!strcmp(ps.val, "minmax")) sp.fusion = PLUMB_FUSE_MINMAX;
            else if (!strcmp(ps.val, "zscore")) sp.fusion = PLUMB_FUSE_ZSCORE;
            else if (!strcmp(ps.val, "rrf")) sp.fusion = PLUMB_FUSE_RRF;
            else bad = cli_usage("search", "%s: expected minmax, zscore or rrf, got '%s'",
                                 ps.name, ps.val);
            break;
        case O_ALPHA:
            bad = cli_num_arg(&ps, 0, 1, &sp.alpha);
            break;
        case O_RRFK:
            bad = cli_num_arg(&ps, 0, 1e6, &sp.rrf_k);
            break;
        case O_RERANK:
            bad = cli_int_arg(&ps, 0, 10000, &sp.rerank);
            break;
        case O_KLEX:
            bad = cli_int_arg(&ps, 1, 10000, &sp.k_lex);
            break;
        case O_KDENSE:
            bad = cli_int_arg(&ps, 1, 10000, &sp.k_dense);
            break;
        case O_QE:
            bad = cli_int_arg(&ps, 0, 100, &sp.qe_docs);
            break;
        case O_VSEARCH:
            if (!strcmp(ps.val, "f32")) sp.vsearch = PLUMB_VSEARCH_F32;
            else if (!strcmp(ps.val, "int8")) sp.vsearch = PLUMB_VSEARCH_INT8;
            else if (!strcmp(ps.val, "binary")) sp.vsearch = PLUMB_VSEARCH_BINARY;
            else if (!strcmp(ps.val, "ann")) sp.vsearch = PLUMB_VSEARCH_ANN;
            else bad = cli_usage("search", "%s: expected f32, int8, binary or ann, got '%s'",
                                 ps.name, ps.val);
            break;
        case O_EF:
            bad = cli_int_arg(&ps, 1, 100000, &sp.ef_search);
            break;
        default:
            bad = cli_rerank_opt(&ps, o, &sp);
            break;
        }
        if (bad) {
            code = bad;
            goto done;
        }
    }
    if (nwords == 0) {
        code = cli_usage("search", "missing QUERY (use \"\" for an empty query)");
        goto done;
    }
    if (sp.scorer == PLUMB_SCORER_FTS5 && bm25_opt)
        fputs("plumb: warning: --k1 and --b have no effect with --fts5 (its bm25() has "
              "k1=1.2, b=0.75)\n",
              stderr);
    query = cli_join_args(words, nwords);
    if (!query) {
        fputs("plumb: out of memory\n", stderr);
        code = CLI_EXIT_FAIL;
        goto done;
    }

    int styled = !json && cli_can_style(stdout);
    sp.with_text = with_text;
    if (styled) {
        sp.hl_open = CLI_HL_OPEN;
        sp.hl_close = CLI_HL_CLOSE;
    } else {
        sp.hl_open = "[";
        sp.hl_close = "]";
    }

    const char *path = cli_db_path(dbopt);
    code = open_for_search(path, log, &db, &logged);
    if (code) goto done;
    sp.log = logged;
    plumb_status rc = plumb_search(db, query, &sp, &hits);
    if (rc != PLUMB_OK) {
        cli_fail(rc, "search failed");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    cli_rerank_warn(hits);
    if (json)
        print_json(query, hits, with_text, logged);
    else
        print_human(hits, with_text, styled);
    fflush(stdout); /* the results first: closing writes the log entry */
    if (logged) {
        /* written now, so a failure can be told; plumb_close would only drop it */
        rc = plumb_log_flush(db);
        if (rc == PLUMB_OK && hits->log_id > 0 && !json && cli_isatty(stderr))
            fprintf(stderr, "plumb: logged as entry %" PRId64 " ('plumb feedback %" PRId64
                    " --relevant DOC' judges it)\n", hits->log_id, hits->log_id);
        else if (rc != PLUMB_OK)
            cli_fail(rc, "warning: the search was not recorded in the query log");
    }

done:
    plumb_hits_free(hits);
    plumb_close(db);
    free(query);
    free(words);
    return code;
}
