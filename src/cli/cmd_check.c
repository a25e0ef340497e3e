/*
** cmd_check.c -- `plumb check`: verify every part of an index.
**
** Runs plumb_check() and prints each problem with the part it concerns,
** then a verdict. Opens the index writable when it can (FTS5's own
** integrity check needs that), read-only otherwise. Exit status: 0 whole,
** 1 problems found, 3 the index cannot even be opened (the message names
** what failed: the file is missing, not a plumb index, or damaged).
*/
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum { C_DB = 1, C_JSON, C_HELP };

static const cli_opt check_opts[] = {
    {"db", 0, 1, C_DB},
    {"json", 0, 0, C_JSON},
    {"help", 'h', 0, C_HELP},
    {NULL, 0, 0, 0},
};

void cmd_check_help(FILE *f) {
    fputs("Usage: plumb check [OPTIONS]\n"
          "\n"
          "Verify the index: SQLite's integrity check of the file, FTS5's integrity\n"
          "check of the lexical index, every document against its chunks, the\n"
          "settings, the BM25 side file (<index>.bm25: header, index id, generation,\n"
          "checksum), and the in-memory BM25 index replayed from the log against a\n"
          "rebuild from the chunks table. Each problem is printed with its part.\n"
          "A damaged side file is harmless to searches (it is ignored and rebuilt);\n"
          "damage to the database file is not: re-create the index from its sources.\n"
          "\n"
          "Options:\n"
          "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
          "  --json               print {\"db\", \"ok\", \"problems\": [{\"part\", \"problem\"}]}\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 the index is whole, 1 problems were found, 3 the index\n"
          "cannot be opened.\n",
          f);
}

typedef struct found {
    int json;
    int64_t n;
} found;

static void on_problem(void *arg, const char *part, const char *problem) {
    found *fd = arg;
    if (fd->json) {
        printf("%s{\"part\":", fd->n ? "," : "");
        cli_json_str(stdout, part);
        printf(",\"problem\":");
        cli_json_str(stdout, problem);
        printf("}");
    } else {
        printf("%s: ", part);
        cli_put_clean(stdout, problem, 0);
        printf("\n");
    }
    /* notes (a skipped part) are reported too but not counted by the
    ** library; count what we print to separate the JSON items */
    fd->n++;
}

int cmd_check(int argc, char **argv) {
    const char *dbopt = NULL;
    int json = 0;
    cli_parser ps;
    cli_parser_init(&ps, "check", argc, argv, check_opts);
    for (;;) {
        int o = cli_next(&ps);
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD: return CLI_EXIT_USAGE;
        case CLI_ARG: return cli_usage("check", "unexpected argument '%s'", ps.val);
        case C_DB: dbopt = ps.val; break;
        case C_JSON: json = 1; break;
        case C_HELP: cmd_check_help(stdout); return CLI_EXIT_OK;
        default: break;
        }
    }
    const char *path = cli_db_path(dbopt);
    plumb_db *db = NULL;
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    plumb_status rc = plumb_open(path, &op, &db);
    if (rc == PLUMB_IO || rc == PLUMB_BUSY) { /* a read-only place: check what we can */
        op.readonly = 1;
        rc = plumb_open(path, &op, &db);
    }
    if (rc != PLUMB_OK) {
        if (json) {
            printf("{\"db\":");
            cli_json_str(stdout, path);
            printf(",\"ok\":false,\"opened\":false,\"problems\":[{\"part\":\"%s\",\"problem\":",
                   rc == PLUMB_NOTFOUND ? "file" : "sqlite");
            cli_json_str(stdout, plumb_errmsg());
            printf("}]}\n");
            return CLI_EXIT_NOINDEX;
        }
        return cli_open_failed(path, rc);
    }
    found fd = {json, 0};
    int64_t problems = 0;
    if (json) {
        printf("{\"db\":");
        cli_json_str(stdout, path);
        printf(",\"problems\":[");
    }
    rc = plumb_check(db, on_problem, &fd, &problems);
    plumb_stats st;
    memset(&st, 0, sizeof st);
    plumb_status src = plumb_stats_get(db, &st);
    (void)src;
    plumb_close(db);
    if (json) {
        printf("],\"ok\":%s,\"problem_count\":%" PRId64 ",\"documents\":%" PRId64
               ",\"chunks\":%" PRId64 ",\"generation\":%" PRId64 "}\n",
               rc == PLUMB_OK ? "true" : "false", problems, st.documents, st.chunks, st.generation);
    } else if (rc == PLUMB_OK) {
        printf("ok: %s is whole (%" PRId64 " documents, %" PRId64 " chunks, generation %" PRId64
               ")\n", path, st.documents, st.chunks, st.generation);
    } else if (rc == PLUMB_CORRUPT) {
        printf("%" PRId64 " problem%s in %s\n", problems, problems == 1 ? "" : "s", path);
    } else {
        cli_fail(rc, "cannot check '%s'", path);
    }
    return rc == PLUMB_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
