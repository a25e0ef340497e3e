/*
** cmd_config.c -- `plumb config [KEY [VALUE]]`, `plumb config --unset KEY`:
** show and change the search defaults stored in the index, through
** plumb_config_get / plumb_config_set (the library validates and owns
** the list of keys). Listing and reading open the index read-only;
** setting opens it for writing. A value the library refuses is a usage
** error (exit 2) with its message, which names the key, the value and
** what is allowed.
*/
#include "cli.h"

#include <string.h>

enum { O_DB = 1, O_UNSET, O_HELP };

static const cli_opt opts[] = {
    {"db", 0, 1, O_DB},
    {"unset", 0, 1, O_UNSET},
    {"help", 'h', 0, O_HELP},
    {NULL, 0, 0, 0},
};

void cmd_config_help(FILE *f) {
    fprintf(f,
            "Usage: plumb config [OPTIONS]              list the keys and their values\n"
            "       plumb config KEY [OPTIONS]          print one value\n"
            "       plumb config KEY VALUE [OPTIONS]    check and store a value\n"
            "       plumb config --unset KEY [OPTIONS]  back to the built-in default\n"
            "\n"
            "The defaults a search uses when its options do not say otherwise are stored\n"
            "in the index. A stored value applies to every search started after it (the\n"
            "index's readers take the settings when they open it).\n"
            "\n"
            "Options:\n"
            "  --db FILE      the index (default: $PLUMB_DB, else ./plumb.db)\n"
            "  --unset KEY    remove the stored value: the built-in default applies\n"
            "  -h, --help     show this help\n"
            "\n"
            "Keys (built-in default in brackets):\n");
    for (size_t i = 0;; i++) {
        const plumb_config_key *k = plumb_config_key_at(i);
        if (!k) break;
        fprintf(f, "  %-18s %s [%s]\n  %-18s %s\n", k->name, k->what,
                *k->def                               ? k->def
                : !strcmp(k->name, "rerank_weights") ? "the shipped weights"
                                                      : "none", "",
                k->allowed);
    }
    fprintf(f,
            "\n"
            "Examples:\n"
            "  plumb config\n"
            "  plumb config rerank_kind http\n"
            "  plumb config rerank_url http://127.0.0.1:8080/v1\n"
            "  plumb config --unset fusion\n");
}

static int fail(plumb_status rc, const char *what) {
    if (rc == PLUMB_MISUSE) { /* a bad key or value: the message says which */
        cli_fail(rc, "%s", what);
        return CLI_EXIT_USAGE;
    }
    cli_fail(rc, "%s", what);
    return CLI_EXIT_FAIL;
}

int cmd_config(int argc, char **argv) {
    const char *dbopt = NULL, *unset = NULL, *args[2] = {NULL, NULL};
    int nargs = 0, code = CLI_EXIT_OK;
    plumb_db *db = NULL;
    cli_parser ps;
    cli_parser_init(&ps, "config", argc, argv, opts);
    for (;;) {
        int o = cli_next(&ps);
        if (o == CLI_DONE) break;
        if (o == CLI_BAD) return CLI_EXIT_USAGE;
        switch (o) {
        case CLI_ARG:
            if (nargs == 2) return cli_usage("config", "unexpected argument '%s'", ps.val);
            args[nargs++] = ps.val;
            break;
        case O_DB: dbopt = ps.val; break;
        case O_UNSET: unset = ps.val; break;
        case O_HELP: cmd_config_help(stdout); return CLI_EXIT_OK;
        default: break;
        }
    }
    if (unset && nargs)
        return cli_usage("config", "--unset KEY takes no other argument (got '%s')", args[0]);
    int write = unset || nargs == 2;
    const char *path = cli_db_path(dbopt);
    code = cli_open_existing(path, !write, &db);
    if (code) return code;
    char v[PLUMB_CONFIG_VALUE_MAX];
    plumb_status rc;
    if (unset || nargs == 2) {
        const char *key = unset ? unset : args[0];
        rc = plumb_config_set(db, key, unset ? NULL : args[1]);
        if (rc) {
            code = fail(rc, "config");
        } else if ((rc = plumb_config_get(db, key, v, sizeof v, NULL)) == PLUMB_OK) {
            fprintf(stderr, "plumb: %s = ", key);
            cli_put_clean(stderr, v, 0);
            fputs(unset ? " (the default)\n" : "\n", stderr);
        }
    } else if (nargs == 1) {
        rc = plumb_config_get(db, args[0], v, sizeof v, NULL);
        if (rc) code = fail(rc, "config");
        else {
            cli_put_clean(stdout, v, 0);
            putchar('\n');
        }
    } else {
        for (size_t i = 0; !code; i++) {
            const plumb_config_key *k = plumb_config_key_at(i);
            if (!k) break;
            int is_set = 0;
            rc = plumb_config_get(db, k->name, v, sizeof v, &is_set);
            if (rc) { code = fail(rc, "config"); break; }
            printf("%-18s ", k->name);
            cli_put_clean(stdout, *v ? v : "\"\"", 0); /* "": none, visibly */
            printf("%s\n", is_set ? "" : "  (default)");
        }
    }
    plumb_close(db);
    return code;
}
