/*
** cmd_log.c -- the query log from the command line: `plumb log` (recent
** entries, the log's status, switching it on or off and its retention),
** `plumb feedback ID ...` (judgments) and `plumb export-qrels OUT` (the
** judgments as a qrels file and a queries file that `plumb eval` takes).
**
** Reading commands open the index read-only; `plumb feedback` and the
** switches of `plumb log` open it for writing. All of a `plumb feedback`
** call's judgments are recorded in one batch: all of them or none (an
** unknown entry or document id names itself and changes nothing).
*/
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

/* A positive entry id; prints a usage error and returns CLI_EXIT_USAGE. */
static int parse_id(const char *cmd, const char *what, const char *s, int64_t *out) {
    char *end;
    if (!s || !(*s >= '0' && *s <= '9'))
        return cli_usage(cmd, "%s: expected a log entry id (a positive integer), got '%s'", what,
                         s ? s : "");
    long long v = strtoll(s, &end, 10);
    if (*end || v <= 0)
        return cli_usage(cmd, "%s: expected a log entry id (a positive integer), got '%s'", what,
                         s);
    *out = (int64_t)v;
    return 0;
}

static void fmt_time(char *out, size_t cap, int64_t ms, int utc) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (utc) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    strftime(out, cap, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
}

/* The first `max` strings of the "doc" array of a hits JSON object as the
** library writes it (index/schema.sql), unescaped into out[i] (malloc'd).
** Returns how many were read. */
static int hit_docs(const char *json, char **out, int max) {
    const char *p = json ? strstr(json, "\"doc\":[") : NULL;
    int n = 0;
    if (!p) return 0;
    p += 7;
    while (n < max && *p == '"') {
        p++;
        size_t cap = strlen(p) + 1, w = 0;
        char *s = malloc(cap);
        if (!s) break;
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\' && *p) {
                char e = *p++;
                if (e == 'n') c = '\n';
                else if (e == 't') c = '\t';
                else if (e == 'u' && strlen(p) >= 4) {
                    c = (char)strtol((char[]){p[2], p[3], 0}, NULL, 16);
                    p += 4;
                } else c = e;
            }
            s[w++] = c;
        }
        s[w] = 0;
        out[n++] = s;
        if (*p == '"') p++;
        if (*p == ',') p++;
    }
    return n;
}

static const char *verdict_name(plumb_verdict v) {
    return v == PLUMB_VERDICT_GOOD ? "good" : v == PLUMB_VERDICT_BAD ? "bad" : NULL;
}

/* ------------------------------------------------------------------ */
/* plumb log                                                           */
/* ------------------------------------------------------------------ */

enum {
    L_DB = 1, L_LIMIT, L_ID, L_KIND, L_GREP, L_FEEDBACK, L_JSON, L_STATUS, L_ON, L_OFF, L_KEEP,
    L_HELP
};

static const cli_opt log_opts[] = {
    {"db", 0, 1, L_DB},
    {"limit", 'n', 1, L_LIMIT},
    {"id", 0, 1, L_ID},
    {"kind", 0, 1, L_KIND},
    {"grep", 0, 1, L_GREP},
    {"feedback", 0, 0, L_FEEDBACK},
    {"json", 0, 0, L_JSON},
    {"status", 0, 0, L_STATUS},
    {"on", 0, 0, L_ON},
    {"off", 0, 0, L_OFF},
    {"keep", 0, 1, L_KEEP},
    {"help", 'h', 0, L_HELP},
    {NULL, 0, 0, 0},
};

void cmd_log_help(FILE *f) {
    fputs("Usage: plumb log [OPTIONS]\n"
          "\n"
          "Show the most recent entries of the index's query log, newest first: every\n"
          "'plumb search' (and every answer a program records) with its time, latency,\n"
          "number of hits, query and first documents, and the feedback given on it.\n"
          "Judge an entry with 'plumb feedback ID'; export the judgments with\n"
          "'plumb export-qrels'.\n"
          "\n"
          "Options:\n"
          "  -n, --limit N        entries to show (default 20; 0: all)\n"
          "  --id ID              only this entry\n"
          "  --kind KIND          only 'search' or only 'ask' entries\n"
          "  --grep TEXT          only queries that contain TEXT (exact bytes)\n"
          "  --feedback           only entries that have feedback\n"
          "  --json               print one JSON object: {\"entries\": [{\"id\", \"at_ms\",\n"
          "                       \"time\", \"kind\", \"query\", \"query_id\", \"params\",\n"
          "                       \"n_hits\", \"hits\", \"latency_ms\", \"reranker\" (stage 2's,\n"
          "                       null when it did not run), \"rerank_fallback\" (true: the\n"
          "                       reranker failed, the hits are in stage-1 order),\n"
          "                       \"rerank_error\", ..., \"feedback\": [...]}]}\n"
          "  --status             show whether the log is on, its retention and its counts\n"
          "  --on, --off          switch logging on or off for this index (all processes)\n"
          "  --keep N             keep at most N entries without feedback (default 100000;\n"
          "                       0: no limit); older ones are deleted. Entries with\n"
          "                       feedback are always kept.\n"
          "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
          "  -h, --help           show this help\n"
          "\n"
          "What is logged: searches by 'plumb search' on an index it may write (a\n"
          "read-only index logs nothing; 'plumb search --no-log' skips one), never the\n"
          "searches of 'plumb eval'. Log ids are small integers unique in the index.\n"
          "\n"
          "Examples:\n"
          "  plumb log -n 5\n"
          "  plumb log --feedback --json | jq '.entries[].query'\n"
          "  plumb log --off\n"
          "  plumb log --keep 10000 --status\n",
          f);
}

static void print_status(const plumb_log_info *in, int json) {
    if (json) {
        printf("{\"available\":%s,\"enabled\":%s,\"keep\":%" PRId64 ",\"entries\":%" PRId64
               ",\"with_feedback\":%" PRId64 ",\"feedback\":%" PRId64 "}\n",
               in->available ? "true" : "false", in->enabled ? "true" : "false", in->keep,
               in->entries, in->with_feedback, in->feedback);
        return;
    }
    if (!in->available) {
        printf("query log      none (the index was created by an older plumb)\n");
        return;
    }
    printf("query log      %s\n", in->enabled ? "on" : "off");
    if (in->keep > 0)
        printf("retention      %" PRId64 " entries without feedback\n", in->keep);
    else
        printf("retention      no limit\n");
    printf("entries        %" PRId64 " (%" PRId64 " with feedback)\n", in->entries,
           in->with_feedback);
    printf("feedback       %" PRId64 " judgments\n", in->feedback);
}

static void entry_json(const plumb_log_entry *e) {
    char t[32];
    fmt_time(t, sizeof t, e->at_ms, 1);
    printf("{\"id\":%" PRId64 ",\"at_ms\":%" PRId64 ",\"time\":\"%s\",\"kind\":", e->id, e->at_ms,
           t);
    cli_json_str(stdout, e->kind);
    printf(",\"query\":");
    cli_json_str(stdout, e->query);
    printf(",\"query_id\":\"%s\",\"params\":%s,\"n_hits\":%" PRId64 ",\"hits\":%s", e->query_id,
           e->params ? e->params : "null", e->n_hits, e->hits ? e->hits : "null");
    printf(",\"matched\":%" PRId64 ",\"generation\":%" PRId64 ",\"latency_ms\":", e->matched,
           e->generation);
    cli_json_num(stdout, e->latency_ms);
    printf(",\"reranker\":");
    cli_json_str(stdout, e->rerank_kind);
    printf(",\"rerank_fallback\":%s,\"rerank_error\":", e->rerank_fallback ? "true" : "false");
    cli_json_str(stdout, e->rerank_error);
    if (e->kind && strcmp(e->kind, "ask") == 0) {
        printf(",\"prompt_hash\":");
        cli_json_str(stdout, e->prompt_hash);
        printf(",\"prompt_tokens\":");
        if (e->prompt_tokens >= 0) printf("%" PRId64, e->prompt_tokens);
        else printf("null");
        printf(",\"model\":");
        cli_json_str(stdout, e->model);
        printf(",\"answer\":");
        cli_json_str(stdout, e->answer);
    }
    printf(",\"feedback\":[");
    for (size_t i = 0; i < e->nfeedback; i++) {
        const plumb_feedback *b = &e->feedback[i];
        printf("%s{\"id\":%" PRId64 ",\"at_ms\":%" PRId64 ",\"verdict\":", i ? "," : "", b->id,
               b->at_ms);
        cli_json_str(stdout, verdict_name(b->verdict));
        printf(",\"doc_id\":");
        cli_json_str(stdout, b->doc_id);
        printf(",\"relevance\":");
        if (b->doc_id) printf("%d", b->relevance);
        else printf("null");
        printf(",\"note\":");
        cli_json_str(stdout, b->note);
        printf("}");
    }
    printf("]}");
}

static void entry_human(const plumb_log_entry *e) {
    char t[32];
    fmt_time(t, sizeof t, e->at_ms, 0);
    printf("%" PRId64 "  %s  %s  %.2f ms  %" PRId64 " hit%s  ", e->id, t, e->kind, e->latency_ms,
           e->n_hits, e->n_hits == 1 ? "" : "s");
    putchar('"');
    cli_put_clean(stdout, e->query, 0);
    printf("\"\n");
    char *docs[100];
    int nd = hit_docs(e->hits, docs, 100), shown = 0;
    for (int i = 0; i < nd; i++) { /* the first three distinct documents */
        int dup = 0;
        for (int k = 0; k < i && !dup; k++) dup = strcmp(docs[k], docs[i]) == 0;
        if (!dup && shown < 3) {
            printf("%s %d. ", shown ? "" : "    top:", shown + 1);
            cli_put_clean(stdout, docs[i], 0);
            shown++;
        }
    }
    if (shown) putchar('\n');
    for (int i = 0; i < nd; i++) free(docs[i]);
    if (e->rerank_fallback) {
        printf("    rerank: ");
        cli_put_clean(stdout, e->rerank_kind, 0);
        printf(" failed, hits in stage-1 order: ");
        cli_put_clean(stdout, e->rerank_error ? e->rerank_error : "?", 0);
        putchar('\n');
    }
    if (e->answer) {
        printf("    answer (%s): ", e->model ? e->model : "?");
        char a[201];
        snprintf(a, sizeof a, "%s", e->answer);
        cli_put_clean(stdout, a, 0);
        printf("%s\n", strlen(e->answer) > 200 ? "..." : "");
    }
    for (size_t i = 0; i < e->nfeedback; i++) {
        const plumb_feedback *b = &e->feedback[i];
        printf("    feedback:");
        if (b->verdict) printf(" %s", verdict_name(b->verdict));
        if (b->doc_id) {
            printf(" %s ", b->relevance > 0 ? "relevant" : "irrelevant");
            cli_put_clean(stdout, b->doc_id, 0);
            if (b->relevance > 1) printf(" (grade %d)", b->relevance);
        }
        if (b->note) {
            printf(" note \"");
            cli_put_clean(stdout, b->note, 0);
            putchar('"');
        }
        putchar('\n');
    }
}

int cmd_log(int argc, char **argv) {
    const char *dbopt = NULL;
    int json = 0, status = 0, on = -1, code = CLI_EXIT_OK, keep_set = 0;
    int64_t keep = 0;
    plumb_log_filter flt;
    plumb_db *db = NULL;
    plumb_log_entries *ents = NULL;
    cli_parser ps;

    plumb_log_filter_init(&flt);
    cli_parser_init(&ps, "log", argc, argv, log_opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case CLI_ARG: return cli_usage("log", "unexpected argument '%s'", ps.val);
        case L_DB: dbopt = ps.val; break;
        case L_LIMIT: bad = cli_int_arg(&ps, 0, 1000000000, &flt.limit); break;
        case L_ID: bad = parse_id("log", ps.name, ps.val, &flt.id); break;
        case L_KIND:
            if (strcmp(ps.val, "search") && strcmp(ps.val, "ask"))
                return cli_usage("log", "--kind: expected 'search' or 'ask', got '%s'", ps.val);
            flt.kind = ps.val;
            break;
        case L_GREP: flt.contains = ps.val; break;
        case L_FEEDBACK: flt.with_feedback = 1; break;
        case L_JSON: json = 1; break;
        case L_STATUS: status = 1; break;
        case L_ON:
        case L_OFF:
            if (on >= 0 && on != (o == L_ON))
                return cli_usage("log", "--on and --off contradict each other");
            on = o == L_ON;
            break;
        case L_KEEP: {
            char *end;
            long long v = strtoll(ps.val, &end, 10);
            if (!*ps.val || *end || v < 0 || !(ps.val[0] >= '0' && ps.val[0] <= '9'))
                return cli_usage("log", "--keep: expected a non-negative integer, got '%s'",
                                 ps.val);
            keep = (int64_t)v;
            keep_set = 1;
            break;
        }
        case L_HELP: cmd_log_help(stdout); return CLI_EXIT_OK;
        default: break;
        }
        if (bad) return bad;
    }

    const char *path = cli_db_path(dbopt);
    int change = on >= 0 || keep_set;
    code = cli_open_existing(path, !change, &db);
    if (code) return code;
    plumb_status rc = PLUMB_OK;
    if (on >= 0 && (rc = plumb_log_set_enabled(db, on))) {
        cli_fail(rc, "cannot switch the query log %s", on ? "on" : "off");
        code = rc == PLUMB_FORMAT ? CLI_EXIT_NOINDEX : CLI_EXIT_FAIL;
        goto done;
    }
    if (keep_set && (rc = plumb_log_set_keep(db, keep))) {
        cli_fail(rc, "cannot set the retention of the query log");
        code = rc == PLUMB_FORMAT ? CLI_EXIT_NOINDEX : CLI_EXIT_FAIL;
        goto done;
    }
    if (change || status) {
        plumb_log_info in;
        if ((rc = plumb_log_info_get(db, &in))) {
            cli_fail(rc, "cannot read the query log");
            code = CLI_EXIT_FAIL;
            goto done;
        }
        if (status) print_status(&in, json);
        else if (in.available && in.keep) /* a confirmation, not a result */
            fprintf(stderr, "plumb: query log %s, keeping %" PRId64 " entries without feedback\n",
                    in.enabled ? "on" : "off", in.keep);
        else if (in.available)
            fprintf(stderr, "plumb: query log %s, keeping every entry\n", in.enabled ? "on" : "off");
        goto done;
    }
    if ((rc = plumb_log_list(db, &flt, &ents))) {
        cli_fail(rc, "cannot read the query log");
        code = rc == PLUMB_FORMAT ? CLI_EXIT_NOINDEX : CLI_EXIT_FAIL;
        goto done;
    }
    if (flt.id && ents->n == 0) {
        fprintf(stderr, "plumb: no query log entry with id %" PRId64 "\n", flt.id);
        code = CLI_EXIT_FAIL;
        goto done;
    }
    if (json) {
        printf("{\"entries\":[");
        for (size_t i = 0; i < ents->n; i++) {
            if (i) putchar(',');
            entry_json(&ents->entry[i]);
        }
        printf("]}\n");
    } else {
        for (size_t i = 0; i < ents->n; i++) entry_human(&ents->entry[i]);
        if (ents->n == 0 && cli_isatty(stdout)) printf("(no entries)\n");
    }
done:
    plumb_log_entries_free(ents);
    plumb_close(db);
    return code;
}

/* ------------------------------------------------------------------ */
/* plumb feedback                                                      */
/* ------------------------------------------------------------------ */

enum { F_DB = 1, F_GOOD, F_BAD, F_REL, F_IRREL, F_GRADE, F_NOTE, F_HELP };

static const cli_opt fb_opts[] = {
    {"db", 0, 1, F_DB},
    {"good", 0, 0, F_GOOD},
    {"bad", 0, 0, F_BAD},
    {"relevant", 0, 1, F_REL},
    {"irrelevant", 0, 1, F_IRREL},
    {"grade", 0, 1, F_GRADE},
    {"note", 0, 1, F_NOTE},
    {"help", 'h', 0, F_HELP},
    {NULL, 0, 0, 0},
};

void cmd_feedback_help(FILE *f) {
    fputs("Usage: plumb feedback ID [--good | --bad] [--relevant DOC]... [--irrelevant DOC]...\n"
          "                       [--grade N] [--note TEXT] [OPTIONS]\n"
          "\n"
          "Judge the query log entry ID (shown by 'plumb search' and 'plumb log'): the\n"
          "answer as a whole, and documents as relevant or not to its query. These\n"
          "judgments become the next test set: 'plumb export-qrels' writes them as qrels.\n"
          "\n"
          "Options:\n"
          "  --good, --bad        a verdict on the whole answer (recorded; exported as\n"
          "                       judgments only with 'plumb export-qrels --good-top N')\n"
          "  --relevant DOC       DOC is relevant to the query (grade 1, or --grade N)\n"
          "  --irrelevant DOC     DOC was judged and is not relevant (grade 0)\n"
          "  --grade N            the grade of every --relevant DOC of this call, 1..100\n"
          "                       (default 1; BEIR uses 1 and 2)\n"
          "  --note TEXT          a free-form note on the entry\n"
          "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
          "  -h, --help           show this help\n"
          "\n"
          "DOC is a document id as 'plumb search' prints it (a file's path may be given\n"
          "relative to the current directory); it must be in the index or among the\n"
          "entry's hits. A call records all of its judgments or, when an id is unknown,\n"
          "none. A later judgment of the same query and document wins.\n"
          "\n"
          "Examples:\n"
          "  plumb feedback 12 --good --relevant doc3\n"
          "  plumb feedback 12 --irrelevant doc7 --note 'about a different protein'\n"
          "  plumb feedback 13 --relevant doc1 --relevant doc9 --grade 2\n",
          f);
}

typedef struct fb_doc {
    const char *id;
    int grade;
} fb_doc;

/* Record one document judgment; a path typed relative is tried in its
** canonical form too (file documents' ids are canonical paths). */
static plumb_status add_doc(plumb_db *db, int64_t id, const fb_doc *d, char **used) {
    *used = NULL;
    plumb_status rc = plumb_feedback_add(db, id, PLUMB_VERDICT_NONE, d->id, d->grade, NULL, NULL);
    if (rc != PLUMB_NOTFOUND) return rc;
    char *real = realpath(d->id, NULL);
    if (real && strcmp(real, d->id) != 0) {
        plumb_status rc2 = plumb_feedback_add(db, id, PLUMB_VERDICT_NONE, real, d->grade, NULL,
                                              NULL);
        if (rc2 == PLUMB_OK) {
            *used = real;
            return rc2;
        }
    }
    free(real);
    return PLUMB_NOTFOUND; /* reported with the id as typed */
}

int cmd_feedback(int argc, char **argv) {
    const char *dbopt = NULL, *note = NULL;
    plumb_verdict verdict = PLUMB_VERDICT_NONE;
    int64_t id = 0;
    int grade = 1, code = CLI_EXIT_OK, ndocs = 0;
    fb_doc *docs = NULL;
    plumb_db *db = NULL;
    cli_parser ps;

    docs = malloc(sizeof *docs * (size_t)(argc > 0 ? argc : 1));
    if (!docs) {
        fputs("plumb: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    cli_parser_init(&ps, "feedback", argc, argv, fb_opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD: code = CLI_EXIT_USAGE; goto done;
        case CLI_ARG:
            if (id) {
                code = cli_usage("feedback", "unexpected argument '%s' (one entry ID per call)",
                                 ps.val);
                goto done;
            }
            bad = parse_id("feedback", "ID", ps.val, &id);
            break;
        case F_DB: dbopt = ps.val; break;
        case F_GOOD:
        case F_BAD: {
            plumb_verdict v = o == F_GOOD ? PLUMB_VERDICT_GOOD : PLUMB_VERDICT_BAD;
            if (verdict && verdict != v) {
                code = cli_usage("feedback", "--good and --bad contradict each other");
                goto done;
            }
            verdict = v;
            break;
        }
        case F_REL:
        case F_IRREL:
            if (!*ps.val) {
                code = cli_usage("feedback", "%s: expected a document id", ps.name);
                goto done;
            }
            docs[ndocs].id = ps.val;
            docs[ndocs++].grade = o == F_REL ? -1 : 0; /* -1: --grade, resolved below */
            break;
        case F_GRADE: bad = cli_int_arg(&ps, 1, 100, &grade); break;
        case F_NOTE: note = ps.val; break;
        case F_HELP: cmd_feedback_help(stdout); goto done;
        default: break;
        }
        if (bad) {
            code = bad;
            goto done;
        }
    }
    if (!id) {
        code = cli_usage("feedback", "missing ID: the query log entry to judge ('plumb log' "
                         "lists them)");
        goto done;
    }
    if (!verdict && !ndocs && !note) {
        code = cli_usage("feedback", "nothing to record: give --good, --bad, --relevant DOC, "
                         "--irrelevant DOC or --note TEXT");
        goto done;
    }
    for (int i = 0; i < ndocs; i++)
        if (docs[i].grade < 0) docs[i].grade = grade;

    code = cli_open_existing(cli_db_path(dbopt), 0, &db);
    if (code) goto done;
    plumb_status rc = plumb_batch_begin(db);
    if (rc) {
        cli_fail(rc, "cannot record feedback");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    if (verdict || note) {
        rc = plumb_feedback_add(db, id, verdict, NULL, 0, note, NULL);
        if (rc) {
            if (rc == PLUMB_NOTFOUND)
                fprintf(stderr, "plumb: no query log entry with id %" PRId64 " ('plumb log' lists "
                        "them)\n", id);
            else cli_fail(rc, "cannot record feedback on entry %" PRId64, id);
            code = CLI_EXIT_FAIL;
            goto rollback;
        }
    }
    char **used = calloc((size_t)(ndocs ? ndocs : 1), sizeof *used);
    if (!used) {
        fputs("plumb: out of memory\n", stderr);
        code = CLI_EXIT_FAIL;
        goto rollback;
    }
    for (int i = 0; i < ndocs && !code; i++) {
        rc = add_doc(db, id, &docs[i], &used[i]);
        if (rc == PLUMB_NOTFOUND) {
            /* the entry itself may be the unknown one */
            plumb_log_filter f;
            plumb_log_filter_init(&f);
            f.id = id;
            plumb_log_entries *e = NULL;
            int known = plumb_log_list(db, &f, &e) == PLUMB_OK && e->n == 1;
            plumb_log_entries_free(e);
            if (!known)
                fprintf(stderr, "plumb: no query log entry with id %" PRId64 " ('plumb log' "
                        "lists them)\n", id);
            else {
                fputs("plumb: no document '", stderr);
                cli_put_clean(stderr, docs[i].id, 0);
                fprintf(stderr, "' in the index (nor among the hits of entry %" PRId64
                        "); nothing was recorded\n", id);
            }
            code = CLI_EXIT_FAIL;
        } else if (rc) {
            cli_fail(rc, "cannot record feedback on entry %" PRId64, id);
            code = CLI_EXIT_FAIL;
        }
    }
    if (!code && (rc = plumb_batch_commit(db))) {
        cli_fail(rc, "cannot record feedback");
        code = CLI_EXIT_FAIL;
    }
    if (!code) {
        printf("entry %" PRId64 ":", id);
        if (verdict) printf(" %s", verdict_name(verdict));
        for (int i = 0; i < ndocs; i++) {
            printf("%s %s ", verdict || i ? "," : "", docs[i].grade ? "relevant" : "irrelevant");
            cli_put_clean(stdout, used[i] ? used[i] : docs[i].id, 0);
            if (docs[i].grade > 1) printf(" (grade %d)", docs[i].grade);
        }
        if (note) printf("%s note", verdict || ndocs ? "," : "");
        printf("\n");
    }
    for (int i = 0; i < ndocs; i++) free(used[i]);
    free(used);
rollback:
    if (code) plumb_batch_rollback(db);
done:
    plumb_close(db);
    free(docs);
    return code;
}

/* ------------------------------------------------------------------ */
/* plumb export-qrels                                                  */
/* ------------------------------------------------------------------ */

enum { X_DB = 1, X_QUERIES, X_GOODTOP, X_JSON, X_QUIET, X_HELP };

static const cli_opt x_opts[] = {
    {"db", 0, 1, X_DB},
    {"queries", 0, 1, X_QUERIES},
    {"good-top", 0, 1, X_GOODTOP},
    {"json", 0, 0, X_JSON},
    {"quiet", 'q', 0, X_QUIET},
    {"help", 'h', 0, X_HELP},
    {NULL, 0, 0, 0},
};

void cmd_export_qrels_help(FILE *f) {
    fputs("Usage: plumb export-qrels OUT [--queries FILE] [--good-top N] [OPTIONS]\n"
          "\n"
          "Write the feedback given with 'plumb feedback' as a BEIR qrels file OUT\n"
          "(\"query-id<TAB>corpus-id<TAB>score\", with that header), and with --queries\n"
          "the judged queries as BEIR queries JSONL: the two files 'plumb eval' takes\n"
          "beside the index. Entries with the same query (white space and ASCII case\n"
          "aside) share one query id, \"q-\" and 16 hex digits (shown by 'plumb log\n"
          "--json'). For each query and document the latest judgment wins.\n"
          "\n"
          "Options:\n"
          "  --queries FILE       also write the judged queries (needed by 'plumb eval')\n"
          "  --good-top N         a --good entry without document judgments of its own\n"
          "                       marks its first N documents relevant (default 0: a\n"
          "                       verdict alone writes nothing); explicit judgments win\n"
          "  --json               print the counts as one JSON object\n"
          "  -q, --quiet          no summary on stderr\n"
          "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Document ids with white space cannot be written in qrels: such judgments are\n"
          "left out and counted. Files are replaced atomically.\n"
          "\n"
          "Examples:\n"
          "  plumb export-qrels feedback.tsv --queries feedback-queries.jsonl\n"
          "  plumb eval --db plumb.db --queries feedback-queries.jsonl --qrels feedback.tsv\n",
          f);
}

int cmd_export_qrels(int argc, char **argv) {
    const char *dbopt = NULL, *outp = NULL;
    int json = 0, quiet = 0, code = CLI_EXIT_OK;
    plumb_export_params xp;
    plumb_export_stats st;
    plumb_db *db = NULL;
    cli_parser ps;

    plumb_export_params_init(&xp);
    cli_parser_init(&ps, "export-qrels", argc, argv, x_opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case CLI_ARG:
            if (outp) return cli_usage("export-qrels", "unexpected argument '%s'", ps.val);
            outp = ps.val;
            break;
        case X_DB: dbopt = ps.val; break;
        case X_QUERIES: xp.queries_path = ps.val; break;
        case X_GOODTOP: bad = cli_int_arg(&ps, 0, 10000, &xp.good_top); break;
        case X_JSON: json = 1; break;
        case X_QUIET: quiet = 1; break;
        case X_HELP: cmd_export_qrels_help(stdout); return CLI_EXIT_OK;
        default: break;
        }
        if (bad) return bad;
    }
    if (!outp) return cli_usage("export-qrels", "missing OUT: the qrels file to write");
    if (xp.queries_path && strcmp(xp.queries_path, outp) == 0)
        return cli_usage("export-qrels", "--queries names the qrels file OUT itself");

    const char *path = cli_db_path(dbopt);
    code = cli_open_existing(path, 1, &db);
    if (code) return code;
    plumb_status rc = plumb_export_qrels(db, outp, &xp, &st);
    if (rc) {
        cli_fail(rc, "cannot export the feedback");
        code = rc == PLUMB_FORMAT ? CLI_EXIT_NOINDEX : CLI_EXIT_FAIL;
        goto done;
    }
    if (json) {
        printf("{\"qrels\":");
        cli_json_str(stdout, outp);
        printf(",\"queries_file\":");
        cli_json_str(stdout, xp.queries_path);
        printf(",\"feedback\":%" PRId64 ",\"entries\":%" PRId64 ",\"queries\":%" PRId64
               ",\"judgments\":%" PRId64 ",\"relevant\":%" PRId64 ",\"implied\":%" PRId64
               ",\"overridden\":%" PRId64 ",\"verdict_only\":%" PRId64 ",\"unwritable\":%" PRId64
               ",\"orphaned\":%" PRId64 "}\n",
               st.feedback, st.entries, st.queries, st.judgments, st.relevant, st.implied,
               st.overridden, st.verdict_only, st.unwritable, st.orphaned);
    }
    if (!quiet) {
        fprintf(stderr, "plumb: wrote %" PRId64 " judgment%s (%" PRId64 " relevant) of %" PRId64
                " quer%s to ", st.judgments, st.judgments == 1 ? "" : "s", st.relevant,
                st.queries, st.queries == 1 ? "y" : "ies");
        cli_put_clean(stderr, outp, 0);
        if (xp.queries_path) {
            fputs(" and the queries to ", stderr);
            cli_put_clean(stderr, xp.queries_path, 0);
        }
        fputc('\n', stderr);
        if (st.verdict_only && !xp.good_top)
            fprintf(stderr, "plumb: %" PRId64 " entr%s with only a good/bad verdict wrote nothing "
                    "(see --good-top)\n", st.verdict_only, st.verdict_only == 1 ? "y" : "ies");
        if (st.unwritable)
            fprintf(stderr, "plumb: warning: %" PRId64 " judgment%s of document ids with white "
                    "space left out (qrels cannot hold them)\n", st.unwritable,
                    st.unwritable == 1 ? "" : "s");
        if (st.judgments == 0)
            fputs("plumb: warning: no judgments to export yet ('plumb feedback ID --relevant "
                  "DOC' records one)\n", stderr);
        else if (xp.queries_path) {
            fputs("plumb: evaluate with: plumb eval --db ", stderr);
            cli_put_clean(stderr, path, 0);
            fputs(" --queries ", stderr);
            cli_put_clean(stderr, xp.queries_path, 0);
            fputs(" --qrels ", stderr);
            cli_put_clean(stderr, outp, 0);
            fputc('\n', stderr);
        }
    }
done:
    plumb_close(db);
    return code;
}
