/*
** cmd_index.c -- `plumb index PATH...`: add or update files and directories.
**
** A thin client of plumb_open(create = 1) and plumb_index_paths(). What it
** adds is the human side of a long run: a progress bar on stderr when
** stderr is a terminal (never when piped, so logs stay clean), library
** messages (warnings and errors always, info with -v), and a one-line
** summary on stderr or a JSON object on stdout.
**
** Exit status: 0 when the run completed, even if single files or records
** were skipped (they are reported and counted); 1 when plumb_index_paths()
** failed (the index could not be written, or a given path does not exist);
** 3 when an existing file is not a usable plumb index.
*/
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum {
    O_DB = 1,
    O_PRUNE,
    O_FOLLOW,
    O_LANG,
    O_NOSTOP,
    O_CTOK,
    O_COVL,
    O_K1,
    O_B,
    O_WTITLE,
    O_WBODY,
    O_COMMIT,
    O_JSON,
    O_QUIET,
    O_VERBOSE,
    O_HELP,
    O_NOEMBED
};

static const cli_opt opts[] = {
    {"db", 0, 1, O_DB},
    {"prune", 0, 0, O_PRUNE},
    {"follow-links", 0, 0, O_FOLLOW},
    {"language", 0, 1, O_LANG},
    {"no-stopwords", 0, 0, O_NOSTOP},
    {"chunk-tokens", 0, 1, O_CTOK},
    {"chunk-overlap", 0, 1, O_COVL},
    {"k1", 0, 1, O_K1},
    {"b", 0, 1, O_B},
    {"title-weight", 0, 1, O_WTITLE},
    {"body-weight", 0, 1, O_WBODY},
    {"commit-every", 0, 1, O_COMMIT},
    {"json", 0, 0, O_JSON},
    {"quiet", 'q', 0, O_QUIET},
    {"verbose", 'v', 0, O_VERBOSE},
    {"help", 'h', 0, O_HELP},
    {"no-embed", 0, 0, O_NOEMBED},
    CLI_EMBED_OPTS,
    {NULL, 0, 0, 0},
};

void cmd_index_help(FILE *f) {
    plumb_open_params op;
    plumb_index_params ip;
    plumb_open_params_init(&op);
    plumb_index_params_init(&ip);
    fprintf(f,
            "Usage: plumb index PATH... [OPTIONS]\n"
            "\n"
            "Add or update files and directories (recursively) in the index, creating\n"
            "it if needed. Supported: .txt, .md/.markdown, .html/.htm, .jsonl (BEIR:\n"
            "\"_id\", \"title\", \"text\", optional \"metadata\"), .pdf (with pdftotext).\n"
            "A file's document id is its absolute path; a JSONL record's id is \"_id\".\n"
            "Unchanged files are skipped by content hash; changed files replace their\n"
            "documents. Unsupported, binary or unreadable files are reported and\n"
            "skipped without failing the run.\n"
            "\n"
            "Odd input, each reported with the file (and line) and byte offset:\n"
            "  invalid UTF-8 (Latin-1, Windows-1252 ...) is replaced with U+FFFD and\n"
            "  NUL bytes are dropped, also raw or as \\u0000 in JSONL; a NUL byte in\n"
            "  the first 8 KiB of a text file marks it binary: skipped. UTF-16 text\n"
            "  with a byte order mark is decoded; JSONL must be UTF-8 (UTF-16 JSONL is\n"
            "  skipped). Text files over 1 GiB are skipped; JSONL is streamed (any\n"
            "  size; a line over 256 MiB is skipped). A file that changes while it\n"
            "  is read is read again; still changing after 3 tries, it is skipped\n"
            "  (\"changed while being read\") and the next run reads it again.\n"
            "  Directories nested deeper than 256, or past PATH_MAX, are skipped\n"
            "  and named; link loops are reported; a file reached through links\n"
            "  is indexed once, under its real path.\n"
            "\n"
            "Options:\n"
            "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
            "  --prune              remove documents whose file vanished from under the\n"
            "                       given directories, or from a changed JSONL file\n"
            "  --follow-links       follow symbolic links to directories (default: %s)\n"
            "  --no-embed           do not give the new chunks vectors (they can get them\n"
            "                       later with 'plumb embed'); by default the built-in\n"
            "                       embedder is trained on the collection the first time\n"
            "                       and new chunks are folded in\n"
            "  --commit-every N     commit every N documents, so an interrupted run keeps\n"
            "                       its work (default %d)\n"
            "  --json               print the result as one JSON object on stdout\n"
            "  -q, --quiet          no progress bar and no summary (warnings still shown)\n"
            "  -v, --verbose        also show informational messages\n"
            "  -h, --help           show this help\n"
            "\n"
            "Embedding (see also 'plumb embed --help'):\n"
            "%s"
            "\n"
            "Settings stored when the index is CREATED (an existing index keeps its\n"
            "own; 'plumb stats' shows them):\n"
            "  --language L         Snowball stemmer: english, porter, french, ... or\n"
            "                       none (default %s)\n"
            "  --no-stopwords       keep English stop words (default: dropped)\n"
            "  --chunk-tokens N     chunk window in estimated tokens; 0 = one chunk per\n"
            "                       document (default %d)\n"
            "  --chunk-overlap N    tokens shared by consecutive chunks (default %d)\n"
            "  --k1 X               BM25 k1 used by searches (default %g)\n"
            "  --b X                BM25 b, 0..1 (default %g)\n"
            "  --title-weight X     BM25F weight of the title (default %g)\n"
            "  --body-weight X      BM25F weight of the body (default %g)\n"
            "\n"
            "A progress bar is drawn on stderr when it is a terminal. At the end a\n"
            "summary goes to stderr (or JSON to stdout with --json). Exit status: 0 when\n"
            "the run completed (skipped files included), 1 when indexing failed or a\n"
            "given path does not exist, 3 when --db is not a usable plumb index.\n"
            "\n"
            "Examples:\n"
            "  plumb index ~/notes\n"
            "  plumb index --prune ~/notes          # also forget deleted files\n"
            "  plumb index --db scifact.db --chunk-tokens 0 scifact/corpus.jsonl\n"
            "  plumb index docs/ --json | jq .docs_added\n",
            ip.follow_links ? "yes" : "no", ip.commit_every, cli_embed_help_text(), op.language ? op.language : "english",
            op.chunk_tokens, op.chunk_overlap, op.bm25_k1, op.bm25_b, op.weight_title,
            op.weight_body);
}

/* ------------------------------------------------------------------ */
/* Progress and messages                                               */
/* ------------------------------------------------------------------ */

typedef struct ui {
    int bar;                  /* draw a progress bar (stderr is a terminal, not -q) */
    int verbose;              /* show PLUMB_MSG_INFO */
    int bar_shown;            /* a bar is on the screen's last line */
    double last_draw;         /* cli_now() of the last redraw, seconds */
    int64_t warnings, errors; /* messages received */
    /* plumb.h does not say whether callbacks may come from several
    ** threads at once (ingest may parse in parallel); a spin lock makes
    ** that harmless and costs nothing when they do not. */
    atomic_flag lock;
} ui;

static void ui_lock(ui *u) {
    while (atomic_flag_test_and_set_explicit(&u->lock, memory_order_acquire)) {
    }
}

static void ui_unlock(ui *u) { atomic_flag_clear_explicit(&u->lock, memory_order_release); }

static void clear_bar(ui *u) {
    if (!u->bar_shown) return;
    fputs("\r\x1b[K", stderr);
    u->bar_shown = 0;
}

static int term_cols(void) {
#ifdef TIOCGWINSZ
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
#endif
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n > 0 ? n : 80;
}

static void fmt_eta(char *out, size_t cap, double s) {
    if (!(s >= 0) || s > 359999) {
        snprintf(out, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

static void fmt_rate(char *out, size_t cap, double r) {
    if (r >= 100000)
        snprintf(out, cap, "%.0fk", r / 1000);
    else if (r >= 10000)
        snprintf(out, cap, "%.1fk", r / 1000);
    else
        snprintf(out, cap, "%.0f", r);
}

/* Append the tail of `path` that fits in `cols` columns (counting code
** points), with control characters masked and "..." when cut. */
static size_t put_path_tail(char *out, size_t cap, const char *path, int cols) {
    const unsigned char *s = (const unsigned char *)path;
    size_t len = strlen(path), n = 0, start = 0;
    int cp = 0;
    for (size_t i = 0; i < len; i++) cp += (s[i] & 0xc0) != 0x80;
    if (cp > cols) {
        if (cols < 4) return 0;
        int skip = cp - (cols - 3);
        while (start < len && skip > 0) {
            start++;
            while (start < len && (s[start] & 0xc0) == 0x80) start++;
            skip--;
        }
        if (cap < 4) return 0;
        memcpy(out, "...", 3);
        n = 3;
    }
    for (size_t i = start; i < len && n + 1 < cap; i++)
        out[n++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
    return n;
}

static void draw_bar(ui *u, const plumb_progress *p) {
    char line[1024], eta[32], rate[32];
    int cols = term_cols() - 1; /* never touch the last column: no auto-wrap */
    if (cols > (int)sizeof line - 16) cols = (int)sizeof line - 16;
    double frac = -1;
    if (p->bytes_total > 0)
        frac = (double)p->bytes_done / (double)p->bytes_total;
    else if (p->files_total > 0)
        frac = (double)p->files_done / (double)p->files_total;
    if (frac > 1) frac = 1;
    fmt_rate(rate, sizeof rate, p->elapsed_s > 0 ? (double)p->docs_done / p->elapsed_s : 0);
    int n;
    if (frac < 0) {
        n = snprintf(line, sizeof line, "\rscanning: %" PRId64 " files, %s docs/s  ", p->files_done,
                     rate);
    } else {
        char bar[24];
        int fill = (int)(frac * 20);
        for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '-';
        bar[20] = 0;
        double left = frac > 0.001 ? p->elapsed_s * (1 - frac) / frac : -1;
        fmt_eta(eta, sizeof eta, p->elapsed_s >= 1 ? left : -1);
        n = snprintf(line, sizeof line,
                     "\r[%s] %3d%%  %" PRId64 "/%" PRId64 " files  %s docs/s  ETA %s  ", bar,
                     (int)(frac * 100), p->files_done, p->files_total, rate, eta);
    }
    if (n < 0 || n >= (int)sizeof line) return;
    int room = cols - (n - 1);
    if (room > 10 && p->current)
        n += (int)put_path_tail(line + n, sizeof line - (size_t)n - 8, p->current, room);
    else if (room < 0) /* a very narrow terminal: cut the statistics */
        n = cols + 1 > 1 ? cols + 1 : 1;
    memcpy(line + n, "\x1b[K", 3);
    n += 3;
    fwrite(line, 1, (size_t)n, stderr);
    u->bar_shown = 1;
}

static void on_progress(void *arg, const plumb_progress *p) {
    ui *u = arg;
    if (!u->bar) return;
    ui_lock(u);
    double now = cli_now();
    if (!u->bar_shown || now - u->last_draw >= 0.1) {
        u->last_draw = now;
        draw_bar(u, p);
    }
    ui_unlock(u);
}

static void on_message(void *arg, plumb_msg_level level, const char *msg) {
    ui *u = arg;
    ui_lock(u);
    if (level == PLUMB_MSG_WARN) u->warnings++;
    if (level == PLUMB_MSG_ERROR) u->errors++;
    if (level != PLUMB_MSG_INFO || u->verbose) {
        clear_bar(u);
        fputs(level == PLUMB_MSG_ERROR  ? "plumb: error: "
              : level == PLUMB_MSG_WARN ? "plumb: warning: "
                                        : "plumb: ",
              stderr);
        cli_put_clean(stderr, msg, 0);
        fputc('\n', stderr);
    }
    ui_unlock(u);
}

/* ------------------------------------------------------------------ */
/* Result                                                              */
/* ------------------------------------------------------------------ */

static void print_summary(const plumb_index_stats *s, double elapsed, double rate) {
    fprintf(stderr,
            "files: %" PRId64 " seen, %" PRId64 " indexed, %" PRId64 " unchanged, %" PRId64
            " skipped, %" PRId64 " pruned; docs: %" PRId64 " added, %" PRId64 " replaced, %" PRId64
            " unchanged, %" PRId64 " deleted; %" PRId64 " chunks; %" PRId64
            " bad records; %.2f s (%.0f docs/s)\n",
            s->files_seen, s->files_indexed, s->files_unchanged, s->files_skipped, s->files_pruned,
            s->docs_added, s->docs_replaced, s->docs_unchanged, s->docs_deleted, s->chunks_added,
            s->bad_records, elapsed, rate);
    if (s->vectors_added || s->vectors_missing || s->embed_trained)
        fprintf(stderr, "vectors: %" PRId64 " added%s, %" PRId64 " chunks without one; %.2f s\n",
                s->vectors_added, s->embed_trained ? " (embedder trained)" : "",
                s->vectors_missing, s->embed_s);
}

static void print_json(const char *db, const plumb_index_stats *s, double elapsed, double rate,
                       const ui *u, plumb_status rc, const char *detail) {
    printf("{\"db\":");
    cli_json_str(stdout, db);
    printf(",\"ok\":%s", rc == PLUMB_OK ? "true" : "false");
    printf(",\"files_seen\":%" PRId64 ",\"files_indexed\":%" PRId64 ",\"files_unchanged\":%" PRId64
           ",\"files_skipped\":%" PRId64 ",\"files_pruned\":%" PRId64,
           s->files_seen, s->files_indexed, s->files_unchanged, s->files_skipped, s->files_pruned);
    printf(",\"docs_added\":%" PRId64 ",\"docs_replaced\":%" PRId64 ",\"docs_unchanged\":%" PRId64
           ",\"docs_deleted\":%" PRId64 ",\"chunks_added\":%" PRId64 ",\"bad_records\":%" PRId64
           ",\"bytes_read\":%" PRId64,
           s->docs_added, s->docs_replaced, s->docs_unchanged, s->docs_deleted, s->chunks_added,
           s->bad_records, s->bytes_read);
    printf(",\"embed_trained\":%s,\"vectors_added\":%" PRId64 ",\"vectors_missing\":%" PRId64
           ",\"embed_s\":", s->embed_trained ? "true" : "false", s->vectors_added,
           s->vectors_missing);
    cli_json_num(stdout, s->embed_s);
    printf(",\"elapsed_s\":");
    cli_json_num(stdout, elapsed);
    printf(",\"docs_per_s\":");
    cli_json_num(stdout, rate);
    printf(",\"warnings\":%" PRId64 ",\"errors\":%" PRId64, u->warnings, u->errors);
    if (rc != PLUMB_OK) {
        printf(",\"error\":{\"status\":");
        cli_json_str(stdout, plumb_status_str(rc));
        printf(",\"message\":");
        cli_json_str(stdout, detail);
        putchar('}');
    }
    printf("}\n");
}

/* Report one creation-only setting that an existing index overrides. */
static void kept(int *first, const char *path, const char *opt, const char *have) {
    if (*first)
        fprintf(stderr,
                "plumb: warning: '%s' already exists and keeps its stored settings "
                "(they apply only when an index is created):\n",
                path);
    *first = 0;
    fprintf(stderr, "plumb: warning:   %s ignored; the index has %s\n", opt, have);
}

static void kept_int(int *first, const char *path, const char *opt, int want, int have) {
    char o[64], h[32];
    if (want == have) return;
    snprintf(o, sizeof o, "%s %d", opt, want);
    snprintf(h, sizeof h, "%d", have);
    kept(first, path, o, h);
}

static void kept_num(int *first, const char *path, const char *opt, double want, double have) {
    char o[64], h[32];
    if (fabs(want - have) < 1e-12) return;
    snprintf(o, sizeof o, "%s %g", opt, want);
    snprintf(h, sizeof h, "%g", have);
    kept(first, path, o, h);
}

/* Whether we may write the index file and create files beside it (its
** -wal and -shm). */
static int writable(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return access(path, W_OK) == 0 && access(dir, W_OK) == 0;
}

/* plumb_open ignores the creation-only settings of an existing index:
** tell the user which of the ones they gave differ from the stored ones. */
static void warn_kept_settings(plumb_db *db, const char *path, const plumb_open_params *want,
                               const int *given) {
    plumb_stats st;
    int first = 1;
    if (plumb_stats_get(db, &st) != PLUMB_OK) return;
    if (given[O_LANG] && strncmp(st.language, want->language, sizeof st.language) != 0) {
        char o[64], h[sizeof st.language + 1];
        snprintf(o, sizeof o, "--language %s", want->language);
        snprintf(h, sizeof h, "%.*s", (int)sizeof st.language, st.language);
        kept(&first, path, o, h);
    }
    if (given[O_NOSTOP] && st.stopwords != want->stopwords)
        kept(&first, path, "--no-stopwords", "stop words dropped");
    if (given[O_CTOK])
        kept_int(&first, path, "--chunk-tokens", want->chunk_tokens, st.chunk_tokens);
    if (given[O_COVL])
        kept_int(&first, path, "--chunk-overlap", want->chunk_overlap, st.chunk_overlap);
    if (given[O_K1]) kept_num(&first, path, "--k1", want->bm25_k1, st.bm25_k1);
    if (given[O_B]) kept_num(&first, path, "--b", want->bm25_b, st.bm25_b);
    if (given[O_WTITLE])
        kept_num(&first, path, "--title-weight", want->weight_title, st.weight_title);
    if (given[O_WBODY]) kept_num(&first, path, "--body-weight", want->weight_body, st.weight_body);
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

int cmd_index(int argc, char **argv) {
    plumb_open_params op;
    plumb_index_params ip;
    plumb_index_stats st;
    plumb_db *db = NULL;
    const char *dbopt = NULL;
    const char **paths = NULL;
    int npaths = 0, json = 0, quiet = 0, verbose = 0, code = CLI_EXIT_OK;
    int given[O_HELP + 1] = {0};
    char lang[64];
    cli_parser ps;
    ui u;

    plumb_embed_params ep;
    plumb_open_params_init(&op);
    plumb_index_params_init(&ip);
    plumb_embed_params_init(&ep);
    memset(&st, 0, sizeof st);
    memset(&u, 0, sizeof u);
    atomic_flag_clear(&u.lock);
    op.create = 1;

    paths = malloc(sizeof *paths * (size_t)(argc > 0 ? argc : 1));
    if (!paths) {
        fputs("plumb: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    cli_parser_init(&ps, "index", argc, argv, opts);
    for (;;) {
        int o = cli_next(&ps), bad = 0;
        if (o == CLI_DONE) break;
        if (o == CLI_BAD) {
            code = CLI_EXIT_USAGE;
            goto done;
        }
        if (o > 0 && o <= O_HELP) given[o] = 1;
        switch (o) {
        case CLI_ARG:
            paths[npaths++] = ps.val;
            break;
        case O_DB:
            dbopt = ps.val;
            break;
        case O_PRUNE:
            ip.prune = 1;
            break;
        case O_FOLLOW:
            ip.follow_links = 1;
            break;
        case O_LANG:
            if (!*ps.val || strlen(ps.val) >= 32) {
                code = cli_usage("index",
                                 "%s: expected a stemmer name such as 'english' or "
                                 "'none', got '%s'",
                                 ps.name, ps.val);
                goto done;
            }
            snprintf(lang, sizeof lang, "%s", ps.val);
            op.language = lang;
            break;
        case O_NOSTOP:
            op.stopwords = 0;
            break;
        case O_CTOK:
            bad = cli_int_arg(&ps, 0, 1000000, &op.chunk_tokens);
            break;
        case O_COVL:
            bad = cli_int_arg(&ps, 0, 1000000, &op.chunk_overlap);
            break;
        case O_K1:
            bad = cli_num_arg(&ps, 0, 1000, &op.bm25_k1);
            break;
        case O_B:
            bad = cli_num_arg(&ps, 0, 1, &op.bm25_b);
            break;
        case O_WTITLE:
            bad = cli_num_arg(&ps, 0, 1000, &op.weight_title);
            break;
        case O_WBODY:
            bad = cli_num_arg(&ps, 0, 1000, &op.weight_body);
            break;
        case O_COMMIT:
            bad = cli_int_arg(&ps, 1, 1000000000, &ip.commit_every);
            break;
        case O_JSON:
            json = 1;
            break;
        case O_QUIET:
            quiet = 1;
            verbose = 0;
            break;
        case O_VERBOSE:
            verbose = 1;
            quiet = 0;
            break;
        case O_NOEMBED:
            ip.embed = 0;
            break;
        case E_DIM: case E_EMBEDDER: case E_URL: case E_MODEL: case E_ANN: case E_ANNEF:
        case E_BATCH: case E_CONC:
            bad = cli_embed_opt(&ps, o, &ep);
            break;
        case O_HELP:
            cmd_index_help(stdout);
            goto done;
        default:
            break;
        }
        if (bad) {
            code = bad;
            goto done;
        }
    }
    if (npaths == 0) {
        code = cli_usage("index", "missing PATH: name the files or directories to index");
        goto done;
    }
    if (op.chunk_tokens > 0 && op.chunk_overlap >= op.chunk_tokens) {
        code = cli_usage("index", "--chunk-overlap (%d) must be smaller than --chunk-tokens (%d)",
                         op.chunk_overlap, op.chunk_tokens);
        goto done;
    }

    const char *path = cli_db_path(dbopt);
    int existed = access(path, F_OK) == 0;
    double t0 = cli_now();
    plumb_status rc = plumb_open(path, &op, &db);
    if (rc != PLUMB_OK) {
        if (existed && rc == PLUMB_IO) {
            /* e.g. a read-only file or directory: the index may well be
            ** fine, so this is a failed run (1), not a bad index (3) */
            cli_fail(rc, "cannot open index '%s' for writing%s", path,
                     writable(path) ? "" : " (the file or its directory is read-only)");
            code = CLI_EXIT_FAIL;
        } else if (existed) {
            code = cli_open_failed(path, rc);
        } else {
            cli_fail(rc, "cannot create index '%s'", path);
            code = CLI_EXIT_FAIL;
        }
        goto done;
    }
    if (existed) warn_kept_settings(db, path, &op, given);

    u.bar = !quiet && cli_isatty(stderr);
    u.verbose = verbose;
    ip.progress = on_progress;
    ip.message = on_message;
    ip.arg = &u;
    cli_embed_env(&ep);
    ep.message = on_message;
    ep.arg = &u;
    ip.embed_params = &ep;
    rc = plumb_index_paths(db, paths, npaths, &ip, &st);
    char detail[1024] = "";
    if (rc != PLUMB_OK) snprintf(detail, sizeof detail, "%s", plumb_errmsg());
    ui_lock(&u);
    clear_bar(&u);
    ui_unlock(&u);
    if (rc != PLUMB_OK) {
        cli_fail(rc, "indexing failed");
        code = CLI_EXIT_FAIL;
    }

    double elapsed = st.elapsed_s > 0 ? st.elapsed_s : cli_now() - t0;
    int64_t docs = st.docs_added + st.docs_replaced + st.docs_unchanged;
    double rate = elapsed > 0 ? (double)docs / elapsed : 0;
    if (json)
        print_json(path, &st, elapsed, rate, &u, rc, detail);
    else if (!quiet)
        print_summary(&st, elapsed, rate);

done:
    plumb_close(db);
    free(paths);
    return code;
}
