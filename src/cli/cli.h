/*
** cli.h -- helpers shared by the plumb tool's commands (src/cli/).
**
** The tool is a client of the public API only: it includes <plumb.h> and
** the C/POSIX libraries, never src/plumb_impl.h. main.c implements these
** helpers and dispatches to one cmd_*() per subcommand; each command parses
** its own options with cli_next(), so options may follow positional
** arguments ("plumb search foo -k 5").
**
** Output conventions: results go to stdout, everything else (errors,
** warnings, progress, summaries) to stderr. Errors read
** "plumb: <what>: <status text>: <detail>". Text that came from documents
** or file names is passed through cli_put_clean() before it reaches a
** human, so a hostile title cannot drive the terminal.
*/
#ifndef PLUMB_CLI_H
#define PLUMB_CLI_H

#include <plumb.h>

#include <stdint.h>
#include <stdio.h>

/* Exit codes; documented in the main help (main.c). */
enum {
    CLI_EXIT_OK = 0,     /* success */
    CLI_EXIT_FAIL = 1,   /* operational failure: indexing error, id not found */
    CLI_EXIT_USAGE = 2,  /* unknown command/option, missing or bad value */
    CLI_EXIT_NOINDEX = 3 /* index missing, unreadable or not a plumb index */
};

/* ------------------------------------------------------------------ */
/* Option parsing                                                      */
/* ------------------------------------------------------------------ */

/* One accepted option. Tables end with an entry whose id is 0. */
typedef struct cli_opt {
    const char *name; /* long name without "--", or NULL */
    char short_name;  /* one-letter form, or 0 */
    int has_arg;      /* 1: takes a value ("--db FILE", "--db=FILE", "-k5") */
    int id;           /* > 0; what cli_next() returns for it */
} cli_opt;

typedef struct cli_parser {
    const char *cmd; /* command name for messages ("search") */
    int argc;
    char **argv; /* argv[0] is the command name */
    const cli_opt *opts;
    int i;               /* next argv index */
    const char *cluster; /* rest of a "-qv" cluster still to read, or NULL */
    int only_args;       /* "--" seen: the rest are positional */
    const char *val;     /* value of the last option, or the positional argument */
    char name[40];       /* the last option as the user spelled it: "-k", "--db" */
} cli_parser;

enum {
    CLI_DONE = 0, /* no more arguments */
    CLI_ARG = -1, /* a positional argument, in p->val */
    CLI_BAD = -2  /* usage error, already reported: exit with CLI_EXIT_USAGE */
};

void cli_parser_init(cli_parser *p, const char *cmd, int argc, char **argv, const cli_opt *opts);
/* The next option id (value in p->val), CLI_ARG, CLI_DONE or CLI_BAD. */
int cli_next(cli_parser *p);

/* Report a usage error for `cmd` (NULL: the top level) with a hint to its
** help. Returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse p->val as an integer in [lo, hi] / a finite number in [lo, hi]
** into *out. On failure report "<opt>: expected ..., got '<val>'" and
** return CLI_EXIT_USAGE; 0 on success. */
int cli_int_arg(const cli_parser *p, long lo, long hi, int *out);
int cli_num_arg(const cli_parser *p, double lo, double hi, double *out);

/* ------------------------------------------------------------------ */
/* Index access and errors                                             */
/* ------------------------------------------------------------------ */

/* The index path: `opt` when given, else $PLUMB_DB, else "plumb.db". */
const char *cli_db_path(const char *opt);

/* Open an existing index (create = 0). On failure report it and return
** the exit code (CLI_EXIT_NOINDEX or CLI_EXIT_FAIL); 0 on success. */
int cli_open_existing(const char *path, int readonly, plumb_db **out);
/* A query from several arguments: joined with single spaces; malloc'd, NULL on OOM. */
char *cli_join_args(const char *const *args, int n);

/* Report a failed plumb_open of `path`; returns the exit code to use. */
int cli_open_failed(const char *path, plumb_status rc);

/* Print "plumb: <fmt...>: <status text>: <plumb_errmsg()>" on stderr. Call
** it straight after the failing plumb call: the detail message lives only
** until the next call into the library. */
void cli_fail(plumb_status rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* 1 when the stream is a terminal. */
int cli_isatty(FILE *f);
/* 1 when ANSI styling may be used on `f`: a terminal, TERM is not "dumb"
** and NO_COLOR is unset. */
int cli_can_style(FILE *f);

/* Highlight markers for cli_put_clean(CLI_CLEAN_HL): passed to the library
** as hl_open/hl_close, turned into ANSI bold when printed. */
#define CLI_HL_OPEN "\x01"
#define CLI_HL_CLOSE "\x02"

enum {
    CLI_CLEAN_LINES = 1, /* keep newlines and tabs (else they become spaces) */
    CLI_CLEAN_HL = 2     /* CLI_HL_OPEN/CLOSE become ANSI bold on/off */
};
/* Write s with control characters (C0, DEL, C1) replaced by '?'. */
void cli_put_clean(FILE *f, const char *s, int flags);

/* Write s as a JSON string ("null" when NULL). Invalid UTF-8 becomes
** U+FFFD so the output is always valid JSON. */
void cli_json_str(FILE *f, const char *s);
/* Write a double as the shortest JSON number that reads back equal
** ("null" when not finite). */
void cli_json_num(FILE *f, double v);

/* Format a byte count for humans ("512 B", "3.2 KiB", "1.5 MiB"). */
void cli_fmt_size(char *out, size_t cap, int64_t bytes);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* ------------------------------------------------------------------ */
/* Commands (one file each); argv[0] is the command name               */
/* ------------------------------------------------------------------ */

int cmd_index(int argc, char **argv);
void cmd_index_help(FILE *f);
int cmd_search(int argc, char **argv);
void cmd_search_help(FILE *f);
int cmd_stats(int argc, char **argv);
void cmd_stats_help(FILE *f);
int cmd_delete(int argc, char **argv);
void cmd_delete_help(FILE *f);
int cmd_check(int argc, char **argv);
void cmd_check_help(FILE *f);
int cmd_eval(int argc, char **argv);
void cmd_eval_help(FILE *f);
int cmd_tune(int argc, char **argv);
void cmd_tune_help(FILE *f);
int cmd_embed(int argc, char **argv);
void cmd_embed_help(FILE *f);

/* Embedding options shared by `plumb index` and `plumb embed`
** (cmd_embed.c): put CLI_EMBED_OPTS in the option table and pass the ids
** it returns to cli_embed_opt(). */
enum { E_DIM = 100, E_EMBEDDER, E_URL, E_MODEL, E_ANN, E_ANNEF, E_BATCH, E_CONC };
#define CLI_EMBED_OPTS                                                              \
    {"dim", 0, 1, E_DIM}, {"embedder", 0, 1, E_EMBEDDER}, {"embed-url", 0, 1, E_URL},  \
    {"embed-model", 0, 1, E_MODEL}, {"ann", 0, 1, E_ANN}, {"ann-ef", 0, 1, E_ANNEF}, \
    {"embed-batch", 0, 1, E_BATCH}, {"embed-concurrency", 0, 1, E_CONC}
int cli_embed_opt(const cli_parser *ps, int id, plumb_embed_params *ep);
const char *cli_embed_help_text(void);
/* URL, model and API key from $PLUMB_EMBED_URL/_MODEL/_API_KEY when not given. */
void cli_embed_env(plumb_embed_params *ep);
int cmd_ask(int argc, char **argv);
void cmd_ask_help(FILE *f);

/* Stage 2's reranker options shared by `plumb search`, `plumb ask` and
** `plumb eval` (cmd_search.c): put CLI_RERANK_OPTS in the option table and
** pass the ids it returns to cli_rerank_opt(). */
enum { R_RERANKER = 120, R_RURL, R_RMODEL, R_RTIMEOUT };
#define CLI_RERANK_OPTS                                                             \
    {"reranker", 0, 1, R_RERANKER}, {"rerank-url", 0, 1, R_RURL},                    \
    {"rerank-model", 0, 1, R_RMODEL}, {"rerank-timeout", 0, 1, R_RTIMEOUT}
/* Set the search parameter of option `id`; 0, or the usage exit code (reported). */
int cli_rerank_opt(const cli_parser *ps, int id, plumb_search_params *sp);
const char *cli_rerank_help_text(void);
/* "plumb: warning: the reranker failed ..." on stderr when the hits fell back. */
void cli_rerank_warn(const plumb_hits *h);
/* ,"rerank":{"kind","n","fallback","error"} for a JSON object on stdout. */
void cli_rerank_json(const plumb_hits *h);
int cmd_config(int argc, char **argv); /* cmd_config.c */
void cmd_config_help(FILE *f);
int cmd_log(int argc, char **argv); /* cmd_log.c: log, feedback, export-qrels */
void cmd_log_help(FILE *f);
int cmd_feedback(int argc, char **argv);
void cmd_feedback_help(FILE *f);
int cmd_export_qrels(int argc, char **argv);
void cmd_export_qrels_help(FILE *f);

#endif /* PLUMB_CLI_H */
