/*
** main.c -- the plumb tool: command dispatch, global help and version, and
** the helpers every command shares (option parser, error reporting, JSON
** and terminal-safe output; declared in cli.h).
**
** The option parser is hand-written rather than getopt_long so that it
** behaves the same everywhere: options and positional arguments may be
** mixed, "--opt=value" and "--opt value" are both accepted, "-k5" and
** "-k 5" too, short flags cluster ("-qv"), "--" ends the options, long
** names must be spelled in full (no prefix guessing that a future option
** could make ambiguous). Every usage error names the offending argument.
*/
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Option parser                                                       */
/* ------------------------------------------------------------------ */

void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv, const cli_opt *opts) {
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    p->opts = opts;
    p->i = 1;
}

static const cli_opt *find_long(const cli_opt *opts, const char *name, size_t n) {
    for (; opts->id; opts++)
        if (opts->name && strlen(opts->name) == n && memcmp(opts->name, name, n) == 0) return opts;
    return NULL;
}

static const cli_opt *find_short(const cli_opt *opts, char c) {
    for (; opts->id; opts++)
        if (opts->short_name && opts->short_name == c) return opts;
    return NULL;
}

/* Record how the user spelled the option, for messages. */
static void set_name(cli_parser *p, const char *prefix, const char *s, size_t n) {
    snprintf(p->name, sizeof p->name, "%s%.*s%s", prefix, (int)(n < 30 ? n : 30), s,
             n < 30 ? "" : "...");
}

static int next_short(cli_parser *p) {
    char c = *p->cluster++;
    set_name(p, "-", &c, 1);
    const cli_opt *o = find_short(p->opts, c);
    if (!o) {
        p->cluster = NULL;
        cli_usage(p->cmd, "unknown option '-%c'", c);
        return CLI_BAD;
    }
    if (!o->has_arg) {
        if (!*p->cluster) p->cluster = NULL;
        p->val = NULL;
        return o->id;
    }
    if (*p->cluster) { /* "-k5" */
        p->val = p->cluster;
        p->cluster = NULL;
        return o->id;
    }
    p->cluster = NULL;
    if (p->i >= p->argc) {
        cli_usage(p->cmd, "option '%s' needs a value", p->name);
        return CLI_BAD;
    }
    p->val = p->argv[p->i++];
    return o->id;
}

int cli_next(cli_parser *p) {
    if (p->cluster) return next_short(p);
    if (p->i >= p->argc) return CLI_DONE;
    const char *a = p->argv[p->i++];
    p->val = NULL;
    p->name[0] = 0;
    if (p->only_args || a[0] != '-' || a[1] == 0) { /* "-" alone is an argument */
        p->val = a;
        return CLI_ARG;
    }
    if (a[1] != '-') {
        p->cluster = a + 1;
        return next_short(p);
    }
    if (a[2] == 0) { /* "--" */
        p->only_args = 1;
        return cli_next(p);
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    set_name(p, "--", name, n);
    const cli_opt *o = find_long(p->opts, name, n);
    if (!o) {
        cli_usage(p->cmd, "unknown option '--%.*s'", (int)n, name);
        return CLI_BAD;
    }
    if (!o->has_arg) {
        if (eq) {
            cli_usage(p->cmd, "option '%s' takes no value", p->name);
            return CLI_BAD;
        }
        return o->id;
    }
    if (eq) {
        p->val = eq + 1;
    } else if (p->i < p->argc) {
        p->val = p->argv[p->i++];
    } else {
        cli_usage(p->cmd, "option '%s' needs a value", p->name);
        return CLI_BAD;
    }
    return o->id;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("plumb: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'plumb %s --help' for more information.\n", cmd);
    else
        fputs("\nTry 'plumb --help' for more information.\n", stderr);
    return CLI_EXIT_USAGE;
}

static int bad_value(const cli_parser *p, const char *what) {
    return cli_usage(p->cmd, "%s: expected %s, got '%s'", p->name, what, p->val);
}

int cli_int_arg(const cli_parser *p, long lo, long hi, int *out) {
    const char *s = p->val;
    const char *what = lo == 1   ? "a positive integer"
                       : lo == 0 ? "a non-negative integer"
                                 : "an integer";
    /* strtol would accept leading blanks; insist on a sign or a digit */
    if (!s || !*s || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return bad_value(p, what);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || (errno == ERANGE && v < 0) || v < lo) return bad_value(p, what);
    if (errno == ERANGE || v > hi) {
        char most[48];
        snprintf(most, sizeof most, "at most %ld", hi);
        return bad_value(p, most);
    }
    *out = (int)v;
    return 0;
}

int cli_num_arg(const cli_parser *p, double lo, double hi, double *out) {
    const char *s = p->val;
    char what[96];
    if (isinf(hi))
        snprintf(what, sizeof what, "a number >= %g", lo);
    else
        snprintf(what, sizeof what, "a number from %g to %g", lo, hi);
    if (!s || !*s || !(s[0] == '-' || s[0] == '+' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
        return bad_value(p, what);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return bad_value(p, what);
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Index access and errors                                             */
/* ------------------------------------------------------------------ */

const char *cli_db_path(const char *opt) {
    if (opt) return opt;
    const char *env = getenv("PLUMB_DB");
    return env && *env ? env : "plumb.db";
}

void cli_fail(plumb_status rc, const char *fmt, ...) {
    /* Copy the detail before plumb_status_str(): it is a library call too. */
    char detail[1024];
    snprintf(detail, sizeof detail, "%s", plumb_errmsg());
    const char *st = plumb_status_str(rc);
    va_list ap;
    va_start(ap, fmt);
    fputs("plumb: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s", st);
    if (detail[0] && strcmp(detail, st) != 0) {
        fputs(": ", stderr);
        cli_put_clean(stderr, detail, 0);
    }
    fputc('\n', stderr);
}

int cli_open_failed(const char *path, plumb_status rc) {
    switch (rc) {
    case PLUMB_NOTFOUND:
        fprintf(stderr, "plumb: no index at '%s' (run 'plumb index PATH' first, or pass --db)\n",
                path);
        return CLI_EXIT_NOINDEX;
    case PLUMB_FORMAT:
    case PLUMB_CORRUPT:
    case PLUMB_IO:
        cli_fail(rc, "cannot open index '%s'", path);
        return CLI_EXIT_NOINDEX;
    default: /* busy, out of memory, ...: the index itself may be fine */
        cli_fail(rc, "cannot open index '%s'", path);
        return CLI_EXIT_FAIL;
    }
}

/* The positional arguments joined with single spaces (malloc'd; NULL on OOM). */
char *cli_join_args(const char *const *args, int n) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(args[i]) + 1;
    char *q = malloc(len), *w = q;
    if (!q) return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(args[i]);
        if (i) *w++ = ' ';
        memcpy(w, args[i], l);
        w += l;
    }
    *w = 0;
    return q;
}

int cli_open_existing(const char *path, int readonly, plumb_db **out) {
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    op.readonly = readonly;
    plumb_status rc = plumb_open(path, &op, out);
    if (rc != PLUMB_OK) return cli_open_failed(path, rc);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

int cli_isatty(FILE *f) { return isatty(fileno(f)); }

int cli_can_style(FILE *f) {
    if (!cli_isatty(f)) return 0;
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc) return 0;
    const char *term = getenv("TERM");
    return !(term && strcmp(term, "dumb") == 0);
}

void cli_put_clean(FILE *f, const char *s, int flags) {
    const unsigned char *p = (const unsigned char *)s;
    int bold = 0;
    if (!s) return;
    for (; *p; p++) {
        unsigned c = *p;
        if ((flags & CLI_CLEAN_HL) && c == (unsigned char)CLI_HL_OPEN[0]) {
            fputs("\x1b[1m", f);
            bold = 1;
        } else if ((flags & CLI_CLEAN_HL) && c == (unsigned char)CLI_HL_CLOSE[0]) {
            fputs("\x1b[0m", f);
            bold = 0;
        } else if (c == '\n' || c == '\t') {
            putc((flags & CLI_CLEAN_LINES) ? (int)c : ' ', f);
        } else if (c == '\r') {
            if (!(flags & CLI_CLEAN_LINES)) putc(' ', f);
        } else if (c < 0x20 || c == 0x7f) {
            putc('?', f);
        } else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            putc('?', f); /* C1 controls: U+0080..U+009F (0x9b is a CSI) */
            p++;
        } else {
            putc((int)c, f);
        }
    }
    if (bold) fputs("\x1b[0m", f);
}

/* Length of the valid UTF-8 sequence at s, or 0 (s is NUL-terminated). */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xc2) return 0;
    if (c < 0xe0) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c < 0xf0) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
        if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xf5) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
        if (c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xf4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

void cli_json_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    putc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc((int)c, f);
            p++;
        } else if (c < 0x20) {
            switch (c) {
            case '\b':
                fputs("\\b", f);
                break;
            case '\f':
                fputs("\\f", f);
                break;
            case '\n':
                fputs("\\n", f);
                break;
            case '\r':
                fputs("\\r", f);
                break;
            case '\t':
                fputs("\\t", f);
                break;
            default:
                fprintf(f, "\\u%04x", c);
                break;
            }
            p++;
        } else if (c < 0x80) {
            putc((int)c, f);
            p++;
        } else {
            /* The short-circuit in utf8_seq never reads past the NUL. */
            size_t n = utf8_seq(p);
            if (n) {
                fwrite(p, 1, n, f);
                p += n;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    putc('"', f);
}

void cli_json_num(FILE *f, double v) {
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    char b[40];
    snprintf(b, sizeof b, "%.15g", v);
    if (strtod(b, NULL) != v) snprintf(b, sizeof b, "%.17g", v);
    fputs(b, f);
}

void cli_fmt_size(char *out, size_t cap, int64_t bytes) {
    double v = (double)bytes;
    if (bytes < 1024)
        snprintf(out, cap, "%lld B", (long long)bytes);
    else if (v < 1024.0 * 1024)
        snprintf(out, cap, "%.1f KiB", v / 1024);
    else if (v < 1024.0 * 1024 * 1024)
        snprintf(out, cap, "%.1f MiB", v / (1024.0 * 1024));
    else
        snprintf(out, cap, "%.2f GiB", v / (1024.0 * 1024 * 1024));
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *f);
} command;

static const command commands[] = {
    {"index", cmd_index, cmd_index_help},
    {"search", cmd_search, cmd_search_help},
    {"stats", cmd_stats, cmd_stats_help},
    {"delete", cmd_delete, cmd_delete_help},
    {"check", cmd_check, cmd_check_help},
    {"eval", cmd_eval, cmd_eval_help},
    {"embed", cmd_embed, cmd_embed_help},
    {"ask", cmd_ask, cmd_ask_help},
    {"log", cmd_log, cmd_log_help},
    {"feedback", cmd_feedback, cmd_feedback_help},
    {"export-qrels", cmd_export_qrels, cmd_export_qrels_help},
    {"tune", cmd_tune, cmd_tune_help},
    {"config", cmd_config, cmd_config_help},
    {NULL, NULL, NULL},
};

static const command *find_command(const char *name) {
    for (const command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

static void main_help(FILE *f) {
    fprintf(f,
            "plumb %s -- index local documents and search them with BM25\n"
            "\n"
            "Usage: plumb COMMAND [ARGUMENTS] [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  index PATH...     add or update files and directories in the index\n"
            "  search QUERY...   show the passages that best match a query\n"
            "  stats             show what the index holds and its settings\n"
            "  delete ID...      remove documents by id\n"
            "  check             verify every part of the index\n"
            "  eval DIR          measure retrieval quality and speed on a BEIR dataset\n"
            "  embed             give every chunk a vector (built-in embedder or an HTTP\n"
            "                    embedding service) for dense and hybrid search\n"
            "  ask QUESTION...   answer from the best passages with an OpenAI-compatible\n"
            "                    chat service, citing them; --dry-run prints the prompt\n"
            "                    packed to its token budget instead\n"
            "  log               show the query log: recent searches and their feedback\n"
            "  feedback ID       judge a logged search: --good/--bad, --relevant DOC ...\n"
            "  export-qrels OUT  write the judgments as qrels (and queries) for eval\n"
            "  tune              learn BM25 and reranker parameters from training judgments\n"
            "  config [KEY [VALUE]]  show or set the search defaults stored in the index\n"
            "  help [COMMAND]    show the help of a command (same as 'plumb COMMAND --help')\n"
            "\n"
            "Options:\n"
            "  -h, --help        show this help\n"
            "  -V, --version     show the versions of the tool and of the library\n"
            "\n"
            "The index is one SQLite file: --db FILE, else $PLUMB_DB, else ./plumb.db.\n"
            "Options may come before or after the arguments; '--' ends the options.\n"
            "\n"
            "Exit status:\n"
            "  0  success (index: also when single files were skipped; they are reported)\n"
            "  1  operational failure: indexing failed, a path or document id was not\n"
            "     found, the index is locked, output could not be written\n"
            "  2  usage error: unknown command or option, missing or invalid value\n"
            "  3  the index is missing, unreadable, damaged or not a plumb index\n"
            "\n"
            "Examples:\n"
            "  plumb index ~/notes ~/papers/corpus.jsonl\n"
            "  plumb search how do axolotls regrow limbs -k 5\n"
            "  plumb search --json 'quantum chromodynamics' | jq '.hits[0]'\n"
            "  plumb ask 'how do axolotls regrow limbs' --dry-run --profile gpt-4o\n"
            "  plumb feedback 12 --relevant /home/me/notes/qcd.md\n"
            "  PLUMB_DB=~/corpus.db plumb stats\n",
            PLUMB_VERSION);
}

static void version(void) {
    printf("plumb %s (library %s, index format %d)\n", PLUMB_VERSION, plumb_libversion(),
           PLUMB_FORMAT_VERSION);
}

static int is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

static int dispatch(int argc, char **argv) {
    if (argc < 2) {
        main_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (is_help(a)) {
        main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0 || strcmp(a, "version") == 0) {
        version();
        return CLI_EXIT_OK;
    }
    if (strcmp(a, "help") == 0) {
        if (argc < 3) {
            main_help(stdout);
            return CLI_EXIT_OK;
        }
        const command *c = find_command(argv[2]);
        if (!c) return cli_usage(NULL, "no command '%s'", argv[2]);
        if (argc > 3) return cli_usage(NULL, "help: unexpected argument '%s'", argv[3]);
        c->help(stdout);
        return CLI_EXIT_OK;
    }
    if (a[0] == '-')
        return cli_usage(NULL, "unknown option '%s' (command options go after the command)", a);
    const command *c = find_command(a);
    if (!c) return cli_usage(NULL, "unknown command '%s'", a);
    return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) {
    int code = dispatch(argc, argv);
    /* A full disk or a closed pipe must not look like success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "plumb: error writing output: %s\n", strerror(errno));
        if (code == CLI_EXIT_OK) code = CLI_EXIT_FAIL;
    }
    return code;
}
