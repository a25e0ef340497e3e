/*
** cmd_ask.c -- `plumb ask QUESTION... --dry-run`: search, then pack the
** best passages into a prompt held to a token budget, and print it with
** its citations and its token count.
**
** Only the dry run exists: the generator client (plumb_ask over HTTP) is
** not built yet, so without --dry-run the command says so and exits 2.
** Tokenizer files are not bundled: --tokenizer FILE names one (a path, or
** a file name looked up in the directories of $PLUMB_TOKENIZERS, separated
** by ':'); a --profile's tokenizer is looked up there too; with neither,
** cl100k_base.tiktoken is used when $PLUMB_TOKENIZERS has it. Without any,
** the count is the library's conservative estimate and the output says so.
*/
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <unistd.h>

enum {
    O_DRY = 1, O_DB, O_K, O_BUDGET, O_WINDOW, O_RESERVE, O_PROFILE, O_TOKENIZER, O_TSYS,
    O_TUSER, O_TPASS, O_ORDER, O_DEDUP, O_NOMERGE, O_MAXP, O_NOCHAT, O_JSON, O_HELP,
    O_URL, O_MODEL, O_MAXTOK, O_TEMP, O_TIMEOUT
};

static const cli_opt opts[] = {
    {"dry-run", 0, 0, O_DRY},
    {"db", 0, 1, O_DB},
    {"index", 0, 1, O_DB},
    {"k", 'k', 1, O_K},
    {"budget", 0, 1, O_BUDGET},
    {"context-window", 0, 1, O_WINDOW},
    {"reserve", 0, 1, O_RESERVE},
    {"profile", 0, 1, O_PROFILE},
    {"tokenizer", 0, 1, O_TOKENIZER},
    {"template-system", 0, 1, O_TSYS},
    {"template-user", 0, 1, O_TUSER},
    {"template-passage", 0, 1, O_TPASS},
    {"order", 0, 1, O_ORDER},
    {"dedup", 0, 1, O_DEDUP},
    {"no-merge", 0, 0, O_NOMERGE},
    {"max-passages", 0, 1, O_MAXP},
    {"no-chat", 0, 0, O_NOCHAT},
    {"json", 0, 0, O_JSON},
    {"help", 'h', 0, O_HELP},
    {"url", 0, 1, O_URL},
    {"model", 0, 1, O_MODEL},
    {"max-tokens", 0, 1, O_MAXTOK},
    {"temperature", 0, 1, O_TEMP},
    {"timeout", 0, 1, O_TIMEOUT},
    CLI_RERANK_OPTS,
    {NULL, 0, 0, 0},
};

#define ASK_DEFAULT_K 10

void cmd_ask_help(FILE *f) {
    plumb_pack_params pp;
    plumb_pack_params_init(&pp);
    fprintf(f,
            "Usage: plumb ask QUESTION... --url URL --model NAME [OPTIONS]\n"
            "       plumb ask QUESTION... --dry-run [OPTIONS]\n"
            "\n"
            "Search the index for the question, then pack the best passages into a prompt\n"
            "for a generator model that fits its token budget exactly: numbered passages\n"
            "with their titles and sources, adjacent chunks of a document merged, near-\n"
            "duplicates dropped, the passage that does not fit cut at a sentence end.\n"
            "The prompt goes to an OpenAI-compatible /v1/chat/completions service (Ollama,\n"
            "llama.cpp's server, vLLM, OpenAI); the answer is printed as it streams in,\n"
            "then the sources its [n] citations refer to. Ctrl-C stops it (exit 130).\n"
            "--dry-run prints the prompt (system and user messages), the citations, what\n"
            "became of every hit, and the token count, and calls no model.\n"
            "\n"
            "Options:\n"
            "  --dry-run              pack and print; do not call a model\n"
            "  --url URL              the generator's base URL, e.g.\n"
            "                         http://127.0.0.1:11434/v1 (default $PLUMB_LLM_URL);\n"
            "                         the key comes from $PLUMB_LLM_API_KEY\n"
            "  --model NAME           the model (default $PLUMB_LLM_MODEL); the name the\n"
            "                         server reports is recorded, and a change is flagged\n"
            "  --max-tokens N         answer limit (default: the reserve)\n"
            "  --temperature X        0..2 (default 0)\n"
            "  --timeout S            seconds to wait for the first token (default 60)\n"
            "  --db FILE              the index (default: $PLUMB_DB, else ./plumb.db);\n"
            "                         --index FILE is the same\n"
            "  -k N                   hits to search for and pack from, 1..10000 (default %d)\n"
            "  --budget N             tokens the prompt may take (default: context window\n"
            "                         minus reserve)\n"
            "  --context-window N     the model's context (default %d, or the profile's)\n"
            "  --reserve N            tokens kept for the answer (default %d, or the profile's)\n"
            "  --profile NAME         a model: context window, reserve, chat framing and\n"
            "                         tokenizer file (see below)\n"
            "  --tokenizer FILE       count exactly with this tokenizer: a .tiktoken rank\n"
            "                         file (with its .meta.json) or a tokenizer.json; a bare\n"
            "                         file name is also looked up in $PLUMB_TOKENIZERS\n"
            "  --template-system FILE   system message template ({question}); an empty file\n"
            "                           sends no system message\n"
            "  --template-user FILE     user message template: {context} once, {question}\n"
            "  --template-passage FILE  one passage: {text} once, {n}, {title}, {source},\n"
            "                           {doc_id}\n"
            "  --order ORDER          best-first (default) or ends: the best passages at both\n"
            "                         ends of the context\n"
            "  --dedup X              near-duplicate threshold, 0..1 (default %g; 0: only\n"
            "                         the same chunk twice)\n"
            "  --no-merge             do not merge adjacent chunks of a document\n"
            "  --max-passages N       at most N passages (default: no limit)\n"
            "  --no-chat              count the prompt as one string (completion APIs)\n"
            "                         instead of chat messages with their framing tokens\n"
            "  --json                 print one JSON object\n"
            "  --reranker, --rerank-url, --rerank-model, --rerank-timeout\n"
            "                         stage 2 of the search, as for 'plumb search'\n"
            "  -h, --help             show this help\n"
            "\n"
            "Token counts are exact with a tokenizer; without one they are a conservative\n"
            "estimate, and the output says 'estimated'. Tokenizer files are not bundled:\n"
            "$PLUMB_TOKENIZERS lists directories (separated by ':') to look in. With no\n"
            "--tokenizer and no --profile, cl100k_base.tiktoken is used when found there.\n"
            "\n"
            "Profiles (context window, reserve, tokenizer file):\n",
            ASK_DEFAULT_K, pp.context_window, pp.reserve_answer, pp.dedup);
    for (size_t i = 0;; i++) {
        const plumb_model_profile *m = plumb_model_profile_at(i);
        if (!m) break;
        fprintf(f, "  %-14s %7d %6d  %s\n", m->name, m->context_window, m->reserve_answer,
                m->tokenizer_file ? m->tokenizer_file : "(none public: estimated)");
    }
    fprintf(f,
            "\n"
            "Examples:\n"
            "  export PLUMB_TOKENIZERS=../shared/data/tokenizers\n"
            "  plumb ask how does BM25 normalize document length --dry-run\n"
            "  plumb ask 'what is HNSW efSearch' --dry-run --profile gpt-4o --budget 2000\n"
            "  plumb ask --dry-run --json --order ends 'RRF k=60' | jq .citations\n");
}

/* Read a template file; trailing newlines are dropped (an editor's
** final newline is not part of the template). NULL with a message on
** failure. */
static char *read_template(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "plumb: cannot read template '%s'\n", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p) {
        if (cap - n < 2) {
            char *q = cap < (size_t)1 << 26 ? realloc(p, cap * 2) : NULL;
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
        size_t r = fread(p + n, 1, cap - n - 1, f);
        n += r;
        if (!r) break;
    }
    int err = ferror(f);
    fclose(f);
    if (!p || err) {
        free(p);
        fprintf(stderr, "plumb: cannot read template '%s'%s\n", path,
                p ? "" : " (too large or out of memory)");
        return NULL;
    }
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r')) n--;
    p[n] = 0;
    return p;
}

/* Find `name` in the directories of $PLUMB_TOKENIZERS; the path is
** written to out. 1 when found. */
static int find_in_env(const char *name, char *out, size_t cap) {
    const char *env = getenv("PLUMB_TOKENIZERS");
    if (!env || !*env) return 0;
    const char *p = env;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l) {
            snprintf(out, cap, "%.*s/%s", (int)l, p, name);
            if (access(out, R_OK) == 0) return 1;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int load_tokenizer(const char *path, plumb_tokenizer **tok) {
    plumb_status rc = plumb_tokenizer_load(path, tok);
    if (rc != PLUMB_OK) {
        cli_fail(rc, "cannot load tokenizer '%s'", path);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static void print_json(const char *question, const plumb_hits *h, const plumb_packed *pk) {
    printf("{\"question\":");
    cli_json_str(stdout, question);
    printf(",\"system\":");
    cli_json_str(stdout, pk->system);
    printf(",\"user\":");
    cli_json_str(stdout, pk->user);
    printf(",\"prompt\":");
    cli_json_str(stdout, pk->prompt);
    printf(",\"tokens\":%zu,\"budget\":%zu,\"exact\":%s,\"counter\":", pk->tokens, pk->budget,
           pk->exact ? "true" : "false");
    cli_json_str(stdout, pk->counter);
    printf(",\"chat\":%s,\"tokens_system\":%zu,\"tokens_user\":%zu,\"retries\":%d",
           pk->chat ? "true" : "false", pk->tokens_system, pk->tokens_user, pk->retries);
    printf(",\"counts\":{\"included\":%zu,\"trimmed\":%zu,\"merged\":%zu,\"duplicate\":%zu,"
           "\"left_out\":%zu,\"no_text\":%zu}",
           pk->included, pk->trimmed, pk->merged, pk->duplicates, pk->left_out, pk->no_text);
    printf(",\"citations\":[");
    for (size_t i = 0; i < pk->ncitations; i++) {
        const plumb_citation *c = &pk->citation[i];
        printf("%s{\"n\":%d,\"rank\":%d,\"doc_id\":", i ? "," : "", c->n, c->rank);
        cli_json_str(stdout, c->doc_id);
        printf(",\"title\":");
        cli_json_str(stdout, c->title);
        printf(",\"source\":");
        cli_json_str(stdout, c->source);
        printf(",\"score\":");
        cli_json_num(stdout, c->score);
        printf(",\"first_seq\":%d,\"last_seq\":%d,\"chunk_ids\":[", c->first_seq, c->last_seq);
        for (size_t m = 0; m < c->nchunks; m++)
            printf("%s%" PRId64, m ? "," : "", c->chunk_ids[m]);
        printf("],\"hits\":[");
        for (size_t m = 0; m < c->nchunks; m++) printf("%s%zu", m ? "," : "", c->hits[m] + 1);
        printf("],\"trimmed\":%s,\"tokens\":%zu,\"text\":", c->trimmed ? "true" : "false",
               c->tokens);
        cli_json_str(stdout, c->text);
        printf("}");
    }
    printf("],\"hits\":[");
    for (size_t i = 0; i < pk->nitems; i++) {
        const plumb_hit *x = &h->hit[i];
        const plumb_pack_item *it = &pk->item[i];
        printf("%s{\"rank\":%zu,\"doc_id\":", i ? "," : "", i + 1);
        cli_json_str(stdout, x->doc_id);
        printf(",\"chunk_id\":%" PRId64 ",\"chunk_seq\":%d,\"score\":", x->chunk_id,
               x->chunk_seq);
        cli_json_num(stdout, x->score);
        printf(",\"fate\":");
        cli_json_str(stdout, plumb_pack_fate_name(it->fate));
        printf(",\"citation\":%d", it->citation);
        if (it->fate == PLUMB_PACK_DUPLICATE) {
            printf(",\"duplicate_of\":%zu,\"overlap\":", it->dup_of + 1);
            cli_json_num(stdout, it->overlap);
        }
        printf(",\"kept_bytes\":%zu}", it->kept_bytes);
    }
    printf("]}\n");
}

static void section(const char *name, int styled) {
    if (styled)
        printf("\x1b[1m--- %s ---\x1b[0m\n", name);
    else
        printf("--- %s ---\n", name);
}

static void print_human(const plumb_hits *h, const plumb_packed *pk, int styled) {
    if (*pk->system) {
        section("system", styled);
        cli_put_clean(stdout, pk->system, CLI_CLEAN_LINES);
        putchar('\n');
    }
    section("user", styled);
    cli_put_clean(stdout, pk->user, CLI_CLEAN_LINES);
    putchar('\n');
    section("citations", styled);
    for (size_t i = 0; i < pk->ncitations; i++) {
        const plumb_citation *c = &pk->citation[i];
        printf("[%d] ", c->n);
        cli_put_clean(stdout, *c->title ? c->title : c->doc_id, 0);
        if (*c->source && strcmp(c->source, c->doc_id) != 0) {
            fputs(" -- ", stdout);
            cli_put_clean(stdout, c->source, 0);
        }
        fputs("\n    ", stdout);
        cli_put_clean(stdout, c->doc_id, 0);
        if (c->first_seq == c->last_seq)
            printf(", chunk %d", c->first_seq + 1);
        else
            printf(", chunks %d-%d", c->first_seq + 1, c->last_seq + 1);
        printf(", score %.4f, rank %d, %zu tokens%s\n", c->score, c->rank, c->tokens,
               c->trimmed ? ", trimmed" : "");
    }
    section("hits", styled);
    int w = pk->nitems >= 100 ? 3 : pk->nitems >= 10 ? 2 : 1;
    for (size_t i = 0; i < pk->nitems; i++) {
        const plumb_hit *x = &h->hit[i];
        const plumb_pack_item *it = &pk->item[i];
        printf("%*zu. %-9s ", w, i + 1, plumb_pack_fate_name(it->fate));
        if (it->citation)
            printf("[%d] ", it->citation);
        else if (it->fate == PLUMB_PACK_DUPLICATE)
            printf("of %zu (%.2f) ", it->dup_of + 1, it->overlap);
        cli_put_clean(stdout, x->doc_id, 0);
        printf(" (chunk %d)", x->chunk_seq + 1);
        if (it->fate == PLUMB_PACK_TRIMMED || it->fate == PLUMB_PACK_MERGED)
            printf(", %zu bytes kept", it->kept_bytes);
        putchar('\n');
    }
    printf("%zu tokens (%s, %s) of budget %zu", pk->tokens, pk->exact ? "exact" : "estimated",
           pk->exact ? pk->counter : "no tokenizer", pk->budget);
    if (pk->chat)
        printf(" [system %zu + user %zu + chat framing %zu]", pk->tokens_system, pk->tokens_user,
               pk->tokens - pk->tokens_system - pk->tokens_user);
    printf("; %zu passage%s: %zu included, %zu trimmed, %zu merged, %zu duplicate, "
           "%zu left out\n",
           pk->ncitations, pk->ncitations == 1 ? "" : "s", pk->included, pk->trimmed,
           pk->merged, pk->duplicates, pk->left_out + pk->no_text);
}

/* ------------------------------------------------------------------ */
/* The generator                                                       */
/* ------------------------------------------------------------------ */

static volatile int ask_cancel;
static void on_sigint(int sig) {
    (void)sig;
    ask_cancel = 1;
}

static int print_piece(void *arg, const char *s, size_t n) {
    (void)arg;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

static int ask_generator(plumb_db *db, const char *question, const plumb_search_params *sp,
                         const plumb_pack_params *pp, const char *url, const char *model,
                         int max_tokens, double temperature, double timeout_s, int json,
                         plumb_answer **ans) {
    plumb_ask_params ap;
    plumb_ask_params_init(&ap);
    ap.search = *sp;
    ap.pack = *pp;
    ap.url = url;
    ap.model = model;
    ap.api_key = getenv("PLUMB_LLM_API_KEY");
    ap.max_tokens = max_tokens;
    ap.temperature = temperature;
    ap.timeout_ms = (long)(timeout_s * 1000);
    ap.on_delta = json ? NULL : print_piece;
    ap.cancel = &ask_cancel;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    plumb_status rc = plumb_ask(db, question, &ap, ans);
    sigaction(SIGINT, &old, NULL);
    plumb_answer *a = *ans;
    if (a && a->hits) cli_rerank_warn(a->hits);
    if (!json && a && a->text[0]) putchar('\n');
    if (a && a->model_changed)
        fprintf(stderr, "plumb: warning: the server answered with model '%s', last time with "
                "'%s': answers may not be comparable\n", a->model, a->previous_model);
    if (json && a) {
        printf("{\"question\":");
        cli_json_str(stdout, question);
        printf(",\"answer\":");
        cli_json_str(stdout, a->text);
        printf(",\"model\":");
        cli_json_str(stdout, a->model);
        printf(",\"model_changed\":%s,\"finish_reason\":", a->model_changed ? "true" : "false");
        cli_json_str(stdout, a->finish_reason);
        printf(",\"prompt_tokens\":%lld,\"packed_tokens\":%zu,\"packed_tokens_exact\":%s,"
               "\"completion_tokens\":%lld,\"log_id\":%lld,\"search_ms\":",
               (long long)a->prompt_tokens, a->packed->tokens, a->packed->exact ? "true" : "false",
               (long long)a->completion_tokens, (long long)a->log_id);
        cli_json_num(stdout, a->search_ms);
        printf(",\"first_token_ms\":");
        cli_json_num(stdout, a->first_token_ms);
        printf(",\"total_ms\":");
        cli_json_num(stdout, a->total_ms);
        printf(",\"sources\":[");
        for (size_t i = 0; i < a->packed->ncitations; i++) {
            const plumb_citation *c = &a->packed->citation[i];
            printf("%s{\"n\":%d,\"doc_id\":", i ? "," : "", c->n);
            cli_json_str(stdout, c->doc_id);
            printf(",\"title\":");
            cli_json_str(stdout, c->title);
            printf(",\"source\":");
            cli_json_str(stdout, c->source);
            printf("}");
        }
        printf("]");
        if (rc) {
            printf(",\"error\":{\"status\":");
            cli_json_str(stdout, plumb_status_str(rc));
            printf(",\"message\":");
            cli_json_str(stdout, plumb_errmsg());
            printf("}");
        }
        printf("}\n");
    } else if (a) {
        /* the sources the answer can cite */
        printf("\nSources:\n");
        for (size_t i = 0; i < a->packed->ncitations; i++) {
            const plumb_citation *c = &a->packed->citation[i];
            printf("  [%d] ", c->n);
            cli_put_clean(stdout, c->title && *c->title ? c->title : c->doc_id, 0);
            if (c->source && *c->source && strcmp(c->source, c->doc_id)) {
                printf(" (");
                cli_put_clean(stdout, c->source, 0);
                printf(")");
            } else if (c->title && *c->title) {
                printf(" (");
                cli_put_clean(stdout, c->doc_id, 0);
                printf(")");
            }
            putchar('\n');
        }
        fprintf(stderr, "%s; prompt %zu tokens (%s); first token %.0f ms, %.0f ms in all%s\n",
                a->model[0] ? a->model : model, a->packed->tokens,
                a->packed->exact ? "exact" : "estimated", a->first_token_ms, a->total_ms,
                a->log_id ? "" : "");
    }
    if (rc) {
        cli_fail(rc, rc == PLUMB_CANCELLED ? "stopped" : "asking the model failed");
        return rc == PLUMB_CANCELLED ? 130 : CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cmd_ask(int argc, char **argv) {
    plumb_pack_params pp;
    plumb_search_params sp;
    plumb_hits *hits = NULL;
    plumb_packed *pk = NULL;
    plumb_db *db = NULL;
    plumb_tokenizer *tok = NULL;
    const char *dbopt = NULL, *profile = NULL, *tokopt = NULL;
    const char *tsys = NULL, *tuser = NULL, *tpass = NULL;
    char *tmpl[3] = {NULL, NULL, NULL};
    const char **words = NULL;
    char *question = NULL;
    int nwords = 0, json = 0, dry = 0, code = CLI_EXIT_OK;
    int budget = -1, window = -1, reserve = -1, order = -1, nomerge = 0, nochat = 0, maxp = -1;
    double dedup = -1;
    const char *url = NULL, *model = NULL;
    int max_tokens = 0;
    double temperature = 0, timeout_s = 60;
    plumb_answer *ans = NULL;
    cli_parser ps;

    plumb_pack_params_init(&pp);
    plumb_search_params_init(&sp);
    sp.k = ASK_DEFAULT_K;
    words = malloc(sizeof *words * (size_t)(argc > 0 ? argc : 1));
    if (!words) {
        fputs("plumb: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    cli_parser_init(&ps, "ask", argc, argv, opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        if (o == CLI_BAD) {
            code = CLI_EXIT_USAGE;
            goto done;
        }
        switch (o) {
        case CLI_ARG: words[nwords++] = ps.val; break;
        case O_DRY: dry = 1; break;
        case O_DB: dbopt = ps.val; break;
        case O_K: bad = cli_int_arg(&ps, 1, 10000, &sp.k); break;
        case O_BUDGET: bad = cli_int_arg(&ps, 1, 100000000, &budget); break;
        case O_WINDOW: bad = cli_int_arg(&ps, 1, 100000000, &window); break;
        case O_RESERVE: bad = cli_int_arg(&ps, 0, 100000000, &reserve); break;
        case O_PROFILE: profile = ps.val; break;
        case O_TOKENIZER: tokopt = ps.val; break;
        case O_TSYS: tsys = ps.val; break;
        case O_TUSER: tuser = ps.val; break;
        case O_TPASS: tpass = ps.val; break;
        case O_ORDER:
            if (strcmp(ps.val, "best-first") == 0)
                order = PLUMB_ORDER_BEST_FIRST;
            else if (strcmp(ps.val, "ends") == 0)
                order = PLUMB_ORDER_BEST_AT_ENDS;
            else
                bad = cli_usage("ask", "--order: expected best-first or ends, got '%s'", ps.val);
            break;
        case O_DEDUP: bad = cli_num_arg(&ps, 0, 1, &dedup); break;
        case O_NOMERGE: nomerge = 1; break;
        case O_MAXP: bad = cli_int_arg(&ps, 0, 10000, &maxp); break;
        case O_NOCHAT: nochat = 1; break;
        case O_JSON: json = 1; break;
        case O_HELP: cmd_ask_help(stdout); goto done;
        case O_URL: url = ps.val; break;
        case O_MODEL: model = ps.val; break;
        case O_MAXTOK: bad = cli_int_arg(&ps, 1, 10000000, &max_tokens); break;
        case O_TEMP: bad = cli_num_arg(&ps, 0, 2, &temperature); break;
        case O_TIMEOUT: bad = cli_num_arg(&ps, 0.1, 86400, &timeout_s); break;
        default: bad = cli_rerank_opt(&ps, o, &sp); break;
        }
        if (bad) {
            code = bad;
            goto done;
        }
    }
    if (nwords == 0) {
        code = cli_usage("ask", "missing QUESTION");
        goto done;
    }
    if (!dry) {
        if (!url) url = getenv("PLUMB_LLM_URL");
        if (!model) model = getenv("PLUMB_LLM_MODEL");
        if (!url || !*url || !model || !*model) {
            code = cli_usage("ask", "the generator needs --url and --model (or $PLUMB_LLM_URL "
                             "and $PLUMB_LLM_MODEL); --dry-run shows the prompt without one");
            goto done;
        }
    }
    question = cli_join_args(words, nwords);
    if (!question) {
        fputs("plumb: out of memory\n", stderr);
        code = CLI_EXIT_FAIL;
        goto done;
    }

    /* the budget: profile, then explicit flags */
    const plumb_model_profile *prof = NULL;
    if (profile) {
        plumb_status rc = plumb_pack_profile(profile, &pp, &prof);
        if (rc != PLUMB_OK) {
            code = cli_usage("ask", "--profile: %s", plumb_errmsg());
            goto done;
        }
    }
    if (window > 0) pp.context_window = window;
    if (reserve >= 0) pp.reserve_answer = reserve;
    if (budget > 0) pp.budget = budget;
    if (pp.budget <= 0 && pp.context_window - pp.reserve_answer <= 0) {
        code = cli_usage("ask", "the reserve (%d) leaves nothing of the context window (%d)",
                         pp.reserve_answer, pp.context_window);
        goto done;
    }
    if (order >= 0) pp.order = (plumb_pack_order)order;
    if (dedup >= 0) pp.dedup = dedup;
    if (nomerge) pp.merge_adjacent = 0;
    if (maxp >= 0) pp.max_passages = maxp;
    if (nochat) pp.chat = 0;

    /* templates */
    const char *tpath[3] = {tsys, tuser, tpass};
    for (int i = 0; i < 3; i++) {
        if (!tpath[i]) continue;
        if (!(tmpl[i] = read_template(tpath[i]))) {
            code = CLI_EXIT_FAIL;
            goto done;
        }
    }
    pp.system_template = tmpl[0];
    pp.user_template = tmpl[1];
    pp.passage_template = tmpl[2];

    /* the tokenizer */
    char path[4096];
    if (tokopt) {
        const char *use = tokopt;
        if (!strchr(tokopt, '/') && access(tokopt, R_OK) != 0 &&
            find_in_env(tokopt, path, sizeof path))
            use = path;
        if ((code = load_tokenizer(use, &tok))) goto done;
    } else if (prof && prof->tokenizer_file) {
        if (find_in_env(prof->tokenizer_file, path, sizeof path)) {
            if ((code = load_tokenizer(path, &tok))) goto done;
        } else {
            fprintf(stderr,
                    "plumb: warning: profile %s counts with %s, which is not in "
                    "$PLUMB_TOKENIZERS: token counts are estimated\n",
                    prof->name, prof->tokenizer_file);
        }
    } else if (!prof && find_in_env("cl100k_base.tiktoken", path, sizeof path)) {
        if ((code = load_tokenizer(path, &tok))) goto done;
    }
    pp.tokenizer = tok;

    /* search, then pack */
    sp.with_text = 1;
    sp.snippet_tokens = 0;
    const char *dbpath = cli_db_path(dbopt);
    code = cli_open_existing(dbpath, dry, &db); /* asking records the served model */
    if (code == CLI_EXIT_FAIL && !dry) code = cli_open_existing(dbpath, 1, &db);
    if (code) goto done;
    if (!dry) {
        code = ask_generator(db, question, &sp, &pp, url, model, max_tokens, temperature,
                             timeout_s, json, &ans);
        goto done;
    }
    plumb_status rc = plumb_search(db, question, &sp, &hits);
    if (rc != PLUMB_OK) {
        cli_fail(rc, "search failed");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    cli_rerank_warn(hits);
    rc = plumb_pack(question, hits->hit, hits->n, &pp, &pk);
    if (rc != PLUMB_OK) {
        cli_fail(rc, "packing failed");
        code = rc == PLUMB_MISUSE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        goto done;
    }
    if (json)
        print_json(question, hits, pk);
    else
        print_human(hits, pk, cli_can_style(stdout));

done:
    plumb_answer_free(ans);
    plumb_packed_free(pk);
    plumb_hits_free(hits);
    plumb_close(db);
    plumb_tokenizer_free(tok);
    for (int i = 0; i < 3; i++) free(tmpl[i]);
    free(question);
    free(words);
    return code;
}
