/*
** cmd_embed.c -- `plumb embed`: give every chunk a vector (training the
** built-in embedder first when needed), retrain, switch to an HTTP
** embedder, or build the approximate-search index. Also the embedding
** options that `plumb index` shares (cli_embed_opt).
*/
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int cli_embed_opt(const cli_parser *ps, int id, plumb_embed_params *ep) {
    switch (id) {
    case E_DIM: return cli_int_arg(ps, 2, 4096, &ep->dim);
    case E_EMBEDDER:
        if (strcmp(ps->val, "lsa") && strcmp(ps->val, "http"))
            return cli_usage(ps->cmd, "%s: expected lsa or http, got '%s'", ps->name, ps->val);
        ep->embedder = ps->val;
        return 0;
    case E_URL: ep->url = ps->val; return 0;
    case E_MODEL: ep->model = ps->val; return 0;
    case E_ANN: ep->ann = ps->val; return 0;
    case E_ANNEF: return cli_int_arg(ps, 1, 100000, &ep->ann_ef);
    case E_BATCH: return cli_int_arg(ps, 1, 100000, &ep->batch);
    case E_CONC: return cli_int_arg(ps, 1, 256, &ep->concurrency);
    default: return 0;
    }
}

const char *cli_embed_help_text(void) {
    return  "  --embedder E         lsa (built-in, learned from the collection; default)\n"
            "                       or http (an OpenAI-compatible /v1/embeddings service)\n"
            "  --dim N              lsa: dimensions (default 256)\n"
            "  --embed-url URL      http: base URL, e.g. http://127.0.0.1:11434/v1\n"
            "                       (default $PLUMB_EMBED_URL)\n"
            "  --embed-model NAME   http: model (default $PLUMB_EMBED_MODEL); the key comes\n"
            "                       from $PLUMB_EMBED_API_KEY and is never stored\n"
            "  --embed-batch N      http: inputs per request (default 64)\n"
            "  --embed-concurrency N  http: requests in flight (default 4)\n"
            "  --ann SPEC           approximate index: auto (HNSW from 2,000,000 vectors),\n"
            "                       none, or a FAISS factory string built now, e.g.\n"
            "                       HNSW32,Flat or IVF1024,SQ8\n"
            "  --ann-ef N           its default efSearch (HNSW) or nprobe (IVF)\n";
}

void cli_embed_env(plumb_embed_params *ep) {
    const char *u = getenv("PLUMB_EMBED_URL"), *m = getenv("PLUMB_EMBED_MODEL"),
               *k = getenv("PLUMB_EMBED_API_KEY");
    if (!ep->url && u && *u) ep->url = u;
    if (!ep->model && m && *m) ep->model = m;
    if (!ep->api_key && k && *k) ep->api_key = k;
}

enum { O_DB = 1, O_RETRAIN, O_JSON, O_QUIET, O_VERBOSE, O_HELP, O_COMMIT };

static const cli_opt opts[] = {
    {"db", 0, 1, O_DB},
    {"retrain", 0, 0, O_RETRAIN},
    {"commit-every", 0, 1, O_COMMIT},
    {"json", 0, 0, O_JSON},
    {"quiet", 'q', 0, O_QUIET},
    {"verbose", 'v', 0, O_VERBOSE},
    {"help", 'h', 0, O_HELP},
    CLI_EMBED_OPTS,
    {NULL, 0, 0, 0},
};

void cmd_embed_help(FILE *f) {
    fprintf(f,
            "Usage: plumb embed [OPTIONS]\n"
            "\n"
            "Give every chunk that has no vector one, with the index's embedder.\n"
            "'plumb index' already does this after indexing; use 'plumb embed' to\n"
            "retrain the built-in embedder after the collection changed, to switch to\n"
            "an HTTP embedder, to continue an interrupted run, or to build the\n"
            "approximate-search index. A new model (--retrain, another embedder or\n"
            "model) replaces every vector; until it is done, dense search sees only the\n"
            "vectors made so far. Interrupted runs keep what they committed.\n"
            "\n"
            "Options:\n"
            "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
            "  --retrain            train anew (lsa) or switch model (http) and re-embed\n"
            "  --commit-every N     vectors per transaction (default 2000)\n");
    fputs(cli_embed_help_text(), f);
    fprintf(f,
            "  --json               print the result as one JSON object on stdout\n"
            "  -q, --quiet          no summary\n"
            "  -v, --verbose        also informational messages\n"
            "  -h, --help           show this help\n"
            "\n"
            "Exit status: 0 done, 1 failed, 2 usage, 3 not a usable index.\n"
            "\n"
            "Examples:\n"
            "  plumb embed --retrain --dim 384\n"
            "  plumb embed --embedder http --embed-url http://127.0.0.1:11434/v1 \\\n"
            "              --embed-model nomic-embed-text --retrain\n"
            "  plumb embed --ann HNSW32,Flat\n");
}

typedef struct ectx {
    int verbose, quiet;
    double last;
} ectx;

static void on_message(void *arg, plumb_msg_level lv, const char *msg) {
    ectx *c = arg;
    if (lv == PLUMB_MSG_INFO && !c->verbose && c->quiet) return;
    fprintf(stderr, "plumb: %s%s\n", lv == PLUMB_MSG_WARN ? "warning: " : lv == PLUMB_MSG_ERROR ? "error: " : "", msg);
}

static void on_progress(void *arg, const char *phase, int64_t done, int64_t total) {
    ectx *c = arg;
    if (c->quiet || !cli_isatty(stderr)) return;
    double t = cli_now();
    if (done < total && t - c->last < 0.1) return;
    c->last = t;
    fprintf(stderr, "\r%s: %" PRId64 " / %" PRId64 "   ", phase, done, total);
    if (done >= total) fputc('\r', stderr), fprintf(stderr, "%60s\r", "");
}

int cmd_embed(int argc, char **argv) {
    const char *dbopt = NULL;
    int json = 0, code = CLI_EXIT_OK;
    ectx c = {0, 0, 0};
    plumb_embed_params ep;
    plumb_embed_params_init(&ep);
    cli_parser ps;
    cli_parser_init(&ps, "embed", argc, argv, opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case CLI_ARG: return cli_usage("embed", "unexpected argument '%s'", ps.val);
        case O_DB: dbopt = ps.val; break;
        case O_RETRAIN: ep.retrain = 1; break;
        case O_COMMIT: bad = cli_int_arg(&ps, 1, 1000000, &ep.commit_every); break;
        case O_JSON: json = 1; break;
        case O_QUIET: c.quiet = 1; c.verbose = 0; break;
        case O_VERBOSE: c.verbose = 1; c.quiet = 0; break;
        case O_HELP: cmd_embed_help(stdout); return CLI_EXIT_OK;
        default: bad = cli_embed_opt(&ps, o, &ep); break;
        }
        if (bad) return bad;
    }
    cli_embed_env(&ep);
    ep.message = on_message;
    ep.progress = on_progress;
    ep.arg = &c;
    plumb_db *db = NULL;
    const char *path = cli_db_path(dbopt);
    if ((code = cli_open_existing(path, 0, &db))) return code;
    plumb_embed_stats st;
    double t0 = cli_now();
    plumb_status rc = plumb_embed(db, &ep, &st);
    double el = cli_now() - t0;
    char detail[1024] = "";
    if (rc) {
        snprintf(detail, sizeof detail, "%s", plumb_errmsg());
        cli_fail(rc, "embedding failed");
        code = CLI_EXIT_FAIL;
    }
    plumb_stats s;
    int have = plumb_stats_get(db, &s) == PLUMB_OK;
    if (json) {
        printf("{\"db\":");
        cli_json_str(stdout, path);
        printf(",\"ok\":%s,\"trained\":%s,\"trained_chunks\":%" PRId64 ",\"dim\":%d,"
               "\"embedded\":%" PRId64 ",\"missing\":%" PRId64 ",\"train_s\":",
               rc ? "false" : "true", st.trained ? "true" : "false", st.trained_chunks, st.dim,
               st.embedded, st.missing);
        cli_json_num(stdout, st.train_s);
        printf(",\"embed_s\":");
        cli_json_num(stdout, st.embed_s);
        printf(",\"embedder\":");
        cli_json_str(stdout, have ? s.embed_model : "");
        printf(",\"ann\":");
        cli_json_str(stdout, have ? s.ann_type : "");
        if (rc) {
            printf(",\"error\":{\"status\":");
            cli_json_str(stdout, plumb_status_str(rc));
            printf(",\"message\":");
            cli_json_str(stdout, detail);
            putchar('}');
        }
        printf("}\n");
    } else if (!c.quiet) {
        if (st.trained)
            fprintf(stderr, "trained %s on %" PRId64 " chunks in %.2f s\n",
                    have ? s.embed_model : "the embedder", st.trained_chunks, st.train_s);
        fprintf(stderr, "embedded %" PRId64 " chunks in %.2f s; %" PRId64 " without a vector; "
                "%.2f s in all%s%s\n", st.embedded, st.embed_s, st.missing, el,
                have && s.ann_type[0] ? "; ann index " : "", have ? s.ann_type : "");
    }
    plumb_close(db);
    return code;
}
