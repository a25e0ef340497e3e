/*
** cmd_eval.c -- `plumb eval`: retrieval quality and speed per pipeline
** stage on a BEIR-layout dataset, and paired comparisons of run files.
**
** A client of the public evaluation API (plumb.h, "Evaluation"). What it
** adds is policy and presentation: where the index lives (a cache keyed by
** the corpus file and the index settings, never inside the dataset
** directory, which may be read-only; or --db), which stages run, and the
** outputs: a table on the terminal, --json, --per-query, TREC run files,
** an HTML report, and --compare of two run files.
**
** Invariant: a cached index is only ever used complete. It is built under
** a temporary name and renamed into place after plumb_close(), so an
** interrupted build leaves nothing that a later run would trust.
**
** Workload: one dataset per run, hundreds to thousands of queries; the
** library does the searching and measuring, this file does no heavy work.
*/
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    O_CORPUS = 1,
    O_QUERIES,
    O_QRELS,
    O_SPLIT,
    O_DB,
    O_CACHE,
    O_REINDEX,
    O_LANG,
    O_NOSTOP,
    O_CTOK,
    O_COVL,
    O_K1,
    O_B,
    O_WTITLE,
    O_WBODY,
    O_STAGES,
    O_DEPTH,
    O_KEEPSELF,
    O_THREADS,
    O_LATK,
    O_JSON,
    O_PERQ,
    O_RUNDIR,
    O_REPORT,
    O_COMPARE,
    O_BASELINE,
    O_METRIC,
    O_PERMS,
    O_SEED,
    O_ALPHA,
    O_FUSION,
    O_KLEX,
    O_RERANK,
    O_KDENSE,
    O_QE,
    O_DIM,
    O_VSEARCH,
    O_QUIET,
    O_VERBOSE,
    O_HELP
};

static const cli_opt opts[] = {
    {"corpus", 0, 1, O_CORPUS},
    {"queries", 0, 1, O_QUERIES},
    {"qrels", 0, 1, O_QRELS},
    {"split", 0, 1, O_SPLIT},
    {"db", 0, 1, O_DB},
    {"cache-dir", 0, 1, O_CACHE},
    {"reindex", 0, 0, O_REINDEX},
    {"language", 0, 1, O_LANG},
    {"no-stopwords", 0, 0, O_NOSTOP},
    {"chunk-tokens", 0, 1, O_CTOK},
    {"chunk-overlap", 0, 1, O_COVL},
    {"k1", 0, 1, O_K1},
    {"b", 0, 1, O_B},
    {"title-weight", 0, 1, O_WTITLE},
    {"body-weight", 0, 1, O_WBODY},
    {"stages", 0, 1, O_STAGES},
    {"depth", 0, 1, O_DEPTH},
    {"keep-self", 0, 0, O_KEEPSELF},
    {"threads", 0, 1, O_THREADS},
    {"latency-k", 0, 1, O_LATK},
    {"json", 0, 0, O_JSON},
    {"per-query", 0, 0, O_PERQ},
    {"run-dir", 0, 1, O_RUNDIR},
    {"report", 0, 1, O_REPORT},
    {"compare", 0, 0, O_COMPARE},
    {"baseline", 0, 1, O_BASELINE},
    {"metric", 0, 1, O_METRIC},
    {"permutations", 0, 1, O_PERMS},
    {"seed", 0, 1, O_SEED},
    {"alpha", 0, 1, O_ALPHA},
    {"fusion", 0, 1, O_FUSION},
    {"k-lex", 0, 1, O_KLEX},
    {"rerank", 0, 1, O_RERANK},
    CLI_RERANK_OPTS,
    {"k-dense", 0, 1, O_KDENSE},
    {"qe-docs", 0, 1, O_QE},
    {"dim", 0, 1, O_DIM},
    {"vsearch", 0, 1, O_VSEARCH},
    {"quiet", 'q', 0, O_QUIET},
    {"verbose", 'v', 0, O_VERBOSE},
    {"help", 'h', 0, O_HELP},
    {NULL, 0, 0, 0},
};

/* Index settings for an evaluation: the library's defaults, except that
** BEIR documents are indexed whole (one chunk each), as the published
** baselines (Anserini, BEIR) index them; --chunk-tokens N chunks them. */
static void eval_open_defaults(plumb_open_params *op) {
    plumb_open_params_init(op);
    op->chunk_tokens = 0;
    op->chunk_overlap = 0;
}

void cmd_eval_help(FILE *f) {
    plumb_eval_params ep;
    plumb_compare_params cp;
    plumb_open_params op;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    plumb_eval_params_init(&ep);
    plumb_compare_params_init(&cp);
    eval_open_defaults(&op);
    fprintf(f,
            "Usage: plumb eval DIR [OPTIONS]\n"
            "       plumb eval --corpus FILE --queries FILE --qrels FILE [OPTIONS]\n"
            "       plumb eval --db INDEX --queries FILE --qrels FILE [OPTIONS]\n"
            "       plumb eval --compare RUN_A RUN_B --qrels FILE [OPTIONS]\n"
            "\n"
            "Measure retrieval quality and speed, stage by stage, on a dataset in BEIR\n"
            "layout (DIR/corpus.jsonl, DIR/queries.jsonl, DIR/qrels/SPLIT.tsv). The corpus\n"
            "is indexed once into a cache (or --db), every query with a relevant judgment\n"
            "is searched, and each stage's ranking is scored as trec_eval scores it:\n"
            "nDCG@10 (linear gains, ndcg_cut), Recall@10/100/1000, MRR@10, MAP@100, P@10.\n"
            "Judgments name documents while searches return chunks: a document's score\n"
            "is its best chunk's (MaxP), and enough chunks are fetched to rank --depth\n"
            "documents. Means are over queries with at least one relevant judgment;\n"
            "the exact definitions are in plumb.h (\"Evaluation\").\n"
            "\n"
            "Data:\n"
            "  DIR                  a BEIR-layout directory\n"
            "  --split NAME         the qrels split under DIR/qrels (default test)\n"
            "  --corpus FILE        corpus JSONL (\"_id\", \"title\", \"text\")\n"
            "  --queries FILE       queries JSONL (\"_id\", \"text\")\n"
            "  --qrels FILE         judgments: BEIR TSV or TREC qrels\n"
            "\n"
            "Index (the settings below apply when the index is built):\n"
            "  --db FILE            use (and bring up to date) this index instead of the cache;\n"
            "                       without --corpus or DIR, evaluate it as it is (for\n"
            "                       judgments from 'plumb export-qrels')\n"
            "  --cache-dir DIR      cache of indexes (default $XDG_CACHE_HOME/plumb, else\n"
            "                       ~/.cache/plumb); keyed by the corpus path, size and\n"
            "                       modification time and the settings below\n"
            "  --reindex            rebuild the cached index\n"
            "  --language L         Snowball stemmer or none (default %s)\n"
            "  --no-stopwords       keep English stop words\n"
            "  --chunk-tokens N     chunk window (default %d: one chunk per document, as\n"
            "                       BEIR baselines index documents; N > 0 chunks them)\n"
            "  --chunk-overlap N    tokens shared by consecutive chunks (default %d)\n"
            "\n"
            "Stages and ranking:\n"
            "  --stages LIST        comma-separated stages to run side by side (default bm25):\n"
            "                         bm25  plumb's BM25F\n"
            "                         fts5  SQLite FTS5's bm25() (k1=1.2, b=0.75), a baseline\n"
            "                         dense  vector search with the index's embedder\n"
            "                         hybrid BM25 and dense candidates fused (--fusion, --alpha)\n"
            "                         rrf    hybrid with reciprocal rank fusion\n"
            "                         rerank hybrid, then the top N reranked by the index's\n"
            "                                reranker, or --reranker (N: --rerank, else\n"
            "                                the index's)\n"
            "                       (only the rerank stage reranks)\n"
            "  --fusion F           minmax, zscore or rrf (default: the index's, minmax)\n"
            "  --alpha X            dense weight in fusion, 0..1 (default: the index's, 0.5)\n"
            "  --k-lex N, --k-dense N   candidates from each retriever (default 100)\n"
            "  --qe-docs N          hybrid stages: expand the BM25 query from its top N\n"
            "                       hits (RM3; 0: off; default: the index's, 10)\n"
            "  --rerank N           candidates the rerank stage rescores (default: the\n"
            "                       index's, 30)\n"
            "  --reranker features|http|llm, --rerank-url URL, --rerank-model NAME,\n"
            "  --rerank-timeout S   the rerank stage's reranker, as for 'plumb search' (a\n"
            "                       query whose service call fails keeps its stage-1 order;\n"
            "                       they are counted: a '!' line under the table, and\n"
            "                       \"rerank_fallbacks\", \"rerank_error\" in --json)\n"
            "  --vsearch V          f32, int8, binary or ann (default: int8 from 20,000 vectors)\n"
            "  --dim N              built-in embedder dimensions when the index is built\n"
            "                       (default 256)\n"
            "  --k1 X, --b X        BM25 parameters of the bm25 stage (default: the index's)\n"
            "  --title-weight X, --body-weight X   BM25F field weights (default: the index's)\n"
            "  --depth N            documents ranked per query, 10..10000 (default %d)\n"
            "  --keep-self          keep a hit whose document id equals the query id (by\n"
            "                       default it is dropped, as BEIR does)\n"
            "  --latency-k N        hits per timed search (default %d): latency is measured\n"
            "                       on each stage's search as a user runs it (texts and\n"
            "                       snippets included), apart from the deeper searches\n"
            "                       that rank --depth documents for the metrics\n"
            "  --threads N          threads of the parallel timing pass (default: all cores;\n"
            "                       1: no parallel pass)\n"
            "\n"
            "Output:\n"
            "  --json               one JSON report on stdout (commit, parameters, dataset,\n"
            "                       counts, each stage's metrics and latency under its name)\n"
            "  --per-query          also each query's metrics (table, or \"per_query\" in JSON)\n"
            "  --run-dir DIR        write a TREC run file per stage: DIR/STAGE.run\n"
            "  --report FILE        write a self-contained HTML report (no network needed)\n"
            "  --baseline RUN       compare the first stage with this TREC run file, query by\n"
            "                       query, with significance tests\n"
            "  -q, --quiet          no progress and no notes on stderr (warnings still shown)\n"
            "  -v, --verbose        also informational notes\n"
            "  -h, --help           show this help\n"
            "\n"
            "Comparing runs (--compare RUN_A RUN_B --qrels FILE): B against A per query on\n"
            "--metric (default %s): wins, losses, ties, mean difference, a paired two-sided\n"
            "randomization test (--permutations N, default %d, --seed S, default %" PRIu64 ")\n"
            "and a paired t-test. --json, --per-query and --report apply. With two or more\n"
            "stages, the report also compares the last stage with the first.\n"
            "\n"
            "Exit status: 0 done, 1 evaluation failed, 2 usage error, 3 unusable index.\n"
            "\n"
            "Examples:\n"
            "  plumb eval ../shared/data/beir/scifact\n"
            "  plumb eval data/scifact --json --run-dir runs/ | jq '.stages.bm25.metrics'\n"
            "  plumb eval data/scifact --k1 1.2 --b 0.75 --baseline runs/bm25.run --report r.html\n"
            "  plumb eval --compare runs/old.run runs/new.run --qrels data/scifact/qrels/test.tsv\n",
            op.language, op.chunk_tokens, op.chunk_overlap, ep.depth, sp.k,
            plumb_metric_name(cp.metric), cp.permutations, cp.seed);
}

/* ------------------------------------------------------------------ */
/* Messages and progress                                               */
/* ------------------------------------------------------------------ */

#define MAX_SHOWN 20 /* warnings shown per run; the rest are counted */

typedef struct ui {
    int bar;          /* progress on stderr (a terminal, not --quiet) */
    int quiet, verbose;
    int line_shown;   /* a progress line is on the screen */
    double last_draw; /* cli_now() of the last redraw */
    int64_t warnings, hidden;
} ui;

static void clear_line(ui *u) {
    if (!u->line_shown) return;
    fputs("\r\x1b[K", stderr);
    u->line_shown = 0;
}

static void on_message(void *arg, plumb_msg_level level, const char *msg) {
    ui *u = arg;
    if (level == PLUMB_MSG_INFO && (!u->verbose || u->quiet)) return;
    if (level != PLUMB_MSG_INFO && ++u->warnings > MAX_SHOWN) {
        u->hidden++;
        return;
    }
    clear_line(u);
    fputs(level == PLUMB_MSG_ERROR ? "plumb: error: "
          : level == PLUMB_MSG_WARN ? "plumb: warning: "
                                    : "plumb: ",
          stderr);
    cli_put_clean(stderr, msg, 0);
    fputc('\n', stderr);
}

static void note(const ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const ui *u, const char *fmt, ...) {
    if (u->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("plumb: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_index_progress(void *arg, const plumb_progress *p) {
    ui *u = arg;
    double now = cli_now();
    if (!u->bar || (u->line_shown && now - u->last_draw < 0.1)) return;
    u->last_draw = now;
    double frac = p->bytes_total > 0 ? (double)p->bytes_done / (double)p->bytes_total : 0;
    fprintf(stderr, "\rindexing: %3d%%  %" PRId64 " docs  %.1f s\x1b[K",
            (int)(frac > 1 ? 100 : frac * 100), p->docs_done, p->elapsed_s);
    u->line_shown = 1;
}

static void on_eval_progress(void *arg, const char *stage, size_t done, size_t total) {
    ui *u = arg;
    double now = cli_now();
    if (!u->bar || (u->line_shown && done < total && now - u->last_draw < 0.1)) return;
    u->last_draw = now;
    fprintf(stderr, "\r%s: %zu/%zu queries\x1b[K", stage, done, total);
    u->line_shown = 1;
}

/* ------------------------------------------------------------------ */
/* Paths, the index cache, provenance                                  */
/* ------------------------------------------------------------------ */

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int mkdirs(const char *path) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
    return is_dir(tmp) ? 0 : -1;
}

/* FNV-1a, 64 bits: the cache key need not be cryptographic. */
static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A short name for the dataset: the directory's base name, or the
** corpus's parent directory's. Only [A-Za-z0-9._-] survive. */
static void dataset_name(char *out, size_t cap, const char *dir, const char *corpus) {
    char tmp[PATH_MAX];
    const char *src = dir ? dir : corpus;
    snprintf(tmp, sizeof tmp, "%s", src ? src : "dataset");
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    if (!dir) { /* drop the file name */
        char *sl = strrchr(tmp, '/');
        if (sl) *sl = 0;
        else snprintf(tmp, sizeof tmp, ".");
    }
    if (strcmp(tmp, ".") == 0 || !*tmp) {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd)) snprintf(tmp, sizeof tmp, "%s", cwd);
    }
    char *base = strrchr(tmp, '/');
    base = base && base[1] ? base + 1 : tmp;
    size_t w = 0;
    for (const char *p = base; *p && w + 1 < cap; p++)
        out[w++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_')
                       ? *p
                       : '_';
    out[w] = 0;
    if (!w) snprintf(out, cap, "dataset");
}

/* The cache directory: --cache-dir, else $XDG_CACHE_HOME/plumb, else
** $HOME/.cache/plumb. */
static int cache_dir(char *out, size_t cap, const char *opt) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (opt)
        n = snprintf(out, cap, "%s", opt);
    else if (xdg && *xdg == '/')
        n = snprintf(out, cap, "%s/plumb", xdg);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.cache/plumb", home);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* 1 when `path` (canonical) lies inside directory `dir` (canonical). */
static int inside(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* The commit of the source tree the tool was built from: $PLUMB_COMMIT,
** else `git describe` run where the executable lives (a build directory
** inside the work tree), else "". */
static void find_commit(char *out, size_t cap) {
    out[0] = 0;
    const char *env = getenv("PLUMB_COMMIT");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    char *sl = strrchr(exe, '/');
    if (!sl) return;
    *sl = 0;
    for (const char *p = exe; *p; p++)
        if (*p == '\'') return; /* keep the shell command simple and safe */
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd,
             "git -C '%s' describe --always --dirty --abbrev=12 2>/dev/null", exe);
    FILE *f = popen(cmd, "r");
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\r\n")] = 0;
    else out[0] = 0;
    pclose(f);
}

static void utc_now(char *out, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

typedef struct index_info {
    char path[PATH_MAX];
    int cached;     /* in the cache (not --db) */
    int built;      /* built or updated in this run */
    double build_s; /* time spent indexing */
    plumb_index_stats ist;
    plumb_stats st;
} index_info;

/* Build an index of `corpus` at `path` (created with `op`). */
static int build_index(const char *path, const plumb_open_params *op, int dim, const char *corpus,
                       ui *u, index_info *ii, plumb_db **out) {
    plumb_index_params ip;
    plumb_index_params_init(&ip);
    plumb_embed_params ep;
    plumb_embed_params_init(&ep);
    ep.dim = dim;
    ep.message = on_message;
    ep.arg = u;
    ip.embed_params = &ep;
    ip.commit_every = 1 << 30; /* one transaction: the bulk-load path */
    ip.progress = on_index_progress;
    ip.message = on_message;
    ip.arg = u;
    const char *paths[1] = {corpus};
    double t0 = cli_now();
    plumb_status rc = plumb_open(path, op, out);
    if (rc) return cli_open_failed(path, rc);
    rc = plumb_index_paths(*out, paths, 1, &ip, &ii->ist);
    clear_line(u);
    ii->build_s = cli_now() - t0;
    if (rc) {
        cli_fail(rc, "indexing '%s' failed", corpus);
        return CLI_EXIT_FAIL;
    }
    ii->built = ii->ist.docs_added + ii->ist.docs_replaced + ii->ist.docs_deleted > 0;
    return 0;
}

/* Open the index for the corpus: --db, or the cache (building it under a
** temporary name when it is missing, incomplete, damaged or --reindex). */
static int open_index(const char *dbopt, const char *cacheopt, int reindex,
                      const plumb_open_params *op, int dim, const char *corpus, const char *dsdir,
                      const char *dsname, ui *u, index_info *ii, plumb_db **db) {
    int code;
    *db = NULL;
    if (dbopt && !*corpus) {
        snprintf(ii->path, sizeof ii->path, "%s", dbopt);
        if ((code = cli_open_existing(dbopt, 1, db))) return code;
        note(u, "index %s (as it is: no corpus given)", dbopt);
        return 0;
    }
    if (dbopt) {
        snprintf(ii->path, sizeof ii->path, "%s", dbopt);
        if ((code = build_index(dbopt, op, dim, corpus, u, ii, db))) return code;
        note(u, "index %s: %s (%.2f s)", dbopt, ii->built ? "updated" : "up to date",
             ii->build_s);
        return 0;
    }
    char dir[PATH_MAX], real[PATH_MAX], rdir[PATH_MAX], tmp[PATH_MAX + 32];
    struct stat cs;
    if (!realpath(corpus, real) || stat(real, &cs) != 0) {
        fprintf(stderr, "plumb: cannot read '%s': %s\n", corpus, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (cache_dir(dir, sizeof dir, cacheopt) || mkdirs(dir) || !realpath(dir, rdir)) {
        fprintf(stderr,
                "plumb: cannot use the cache directory '%s' (set --cache-dir or --db): %s\n",
                dir, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    char ddir[PATH_MAX];
    if (dsdir && realpath(dsdir, ddir) && inside(rdir, ddir)) {
        fprintf(stderr,
                "plumb: the cache directory '%s' is inside the dataset directory; pass "
                "--cache-dir or --db elsewhere\n",
                rdir);
        return CLI_EXIT_USAGE;
    }
    char key[PATH_MAX + 512];
    snprintf(key, sizeof key, "plumb-eval-index|%s|%d|%s|%lld|%lld.%09ld|%s|%d|%d|%d|dim%d",
             plumb_libversion(), PLUMB_FORMAT_VERSION, real, (long long)cs.st_size,
             (long long)cs.st_mtim.tv_sec, (long)cs.st_mtim.tv_nsec, op->language,
             op->stopwords, op->chunk_tokens, op->chunk_overlap, dim);
    uint64_t h = fnv1a(0xcbf29ce484222325ull, key);
    if (snprintf(ii->path, sizeof ii->path, "%s/%s-%016" PRIx64 ".db", rdir, dsname, h) >=
        (int)sizeof ii->path) {
        fprintf(stderr, "plumb: the cache directory path is too long: %s\n", rdir);
        return CLI_EXIT_FAIL;
    }
    ii->cached = 1;
    if (!reindex && access(ii->path, F_OK) == 0) {
        plumb_open_params ro;
        plumb_open_params_init(&ro);
        ro.create = 0;
        ro.readonly = 1;
        plumb_status rc = plumb_open(ii->path, &ro, db);
        plumb_stats st;
        if (rc == PLUMB_OK && plumb_stats_get(*db, &st) == PLUMB_OK && st.documents > 0) {
            note(u, "index %s (cached)", ii->path);
            return 0;
        }
        plumb_close(*db);
        *db = NULL;
        note(u, "cached index %s is unusable; rebuilding it", ii->path);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", ii->path, (long)getpid());
    static const char *const sfx[6] = {"", "-wal", "-shm", ".bm25", ".vec", ".ann"};
    for (int i = 0; i < 6; i++) {
        char f[PATH_MAX + 40];
        snprintf(f, sizeof f, "%s%s", tmp, sfx[i]);
        remove(f);
    }
    if ((code = build_index(tmp, op, dim, corpus, u, ii, db))) {
        plumb_close(*db);
        *db = NULL;
        for (int i = 0; i < 6; i++) {
            char f[PATH_MAX + 40];
            snprintf(f, sizeof f, "%s%s", tmp, sfx[i]);
            remove(f);
        }
        return code;
    }
    plumb_close(*db); /* checkpoints the WAL into the file */
    *db = NULL;
    for (int i = 5; i >= 0; i--) {
        char f[PATH_MAX + 40], t[PATH_MAX + 40];
        snprintf(f, sizeof f, "%s%s", tmp, sfx[i]);
        snprintf(t, sizeof t, "%s%s", ii->path, sfx[i]);
        if (i && access(f, F_OK) != 0) {
            remove(t);
            continue;
        }
        if (rename(f, t) != 0) {
            fprintf(stderr, "plumb: cannot move the new index to '%s': %s\n", t,
                    strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }
    note(u, "indexed %" PRId64 " documents into %s (%.2f s)", ii->ist.docs_added, ii->path,
         ii->build_s);
    return cli_open_existing(ii->path, 1, db);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static const char *const short_names[PLUMB_METRIC_COUNT] = {"nDCG@10", "R@10", "R@100", "R@1000",
                                                            "MRR@10",  "MAP@100", "P@10"};

static void print_metrics_table(const plumb_eval_result *r) {
    size_t w = 5;
    for (size_t s = 0; s < r->nstages; s++)
        if (strlen(r->stage[s].name) > w) w = strlen(r->stage[s].name);
    printf("%-*s", (int)w, "stage");
    for (int m = 0; m < PLUMB_METRIC_COUNT; m++) printf("  %8s", short_names[m]);
    printf("\n");
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_stage_result *st = &r->stage[s];
        printf("%-*s", (int)w, st->name);
        for (int m = 0; m < PLUMB_METRIC_COUNT; m++) printf("  %8.4f", st->mean[m]);
        printf("\n");
    }
    /* a stage whose reranker failed was measured (partly) as stage 1: say so
    ** right under its numbers */
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_stage_result *st = &r->stage[s];
        if (!st->rerank_fallbacks) continue;
        printf("! ");
        cli_put_clean(stdout, st->name, 0);
        printf(": %" PRId64 " of %zu searches fell back to the stage-1 order (the reranker "
               "failed; those queries were measured as stage 1): ", st->rerank_fallbacks, st->nq);
        cli_put_clean(stdout, st->rerank_error ? st->rerank_error : "?", 0);
        printf("\n");
    }
}

static void print_latency_table(const plumb_eval_result *r) {
    int any = 0;
    for (size_t s = 0; s < r->nstages; s++) any |= r->stage[s].latency.measured;
    if (!any) return;
    size_t w = 7;
    for (size_t s = 0; s < r->nstages; s++)
        if (strlen(r->stage[s].name) > w) w = strlen(r->stage[s].name);
    int threads = 0;
    for (size_t s = 0; s < r->nstages; s++)
        if (r->stage[s].latency.threads > threads) threads = r->stage[s].latency.threads;
    const plumb_search_params *sp0 = &r->stage[0].search;
    printf("\nlatency of each stage's search as a user runs it (k = %d, %s), one query at a "
           "time:\n", sp0->k, sp0->with_text ? "with texts and snippets" : "no texts");
    printf("%-*s  %8s  %8s  %8s  %8s  %10s", (int)w, "stage", "mean ms", "p50 ms", "p95 ms",
           "p99 ms", "q/s 1 thr");
    if (threads) printf("  q/s %d thr  p50 ms %d thr", threads, threads);
    printf("  eval q/s\n");
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_latency *l = &r->stage[s].latency;
        if (!l->measured) continue;
        printf("%-*s  %8.2f  %8.2f  %8.2f  %8.2f  %10.0f", (int)w, r->stage[s].name, l->mean_ms,
               l->p50_ms, l->p95_ms, l->p99_ms, l->qps);
        if (l->threads)
            printf("  %9.0f%s  %11.2f", l->qps_parallel, l->parallel_identical ? " " : "!",
                   l->p50_parallel_ms);
        else if (threads)
            printf("  %10s  %11s", "-", "-");
        printf("  %8.0f\n", l->qps_eval);
    }
    printf("(eval q/s: the searches that rank %d documents per query for the metrics, "
           "%d chunks asked)\n", r->depth, r->stage[0].latency.k_eval);
    for (size_t s = 0; s < r->nstages; s++)
        if (r->stage[s].latency.threads && !r->stage[s].latency.parallel_identical)
            printf("! stage %s: the parallel pass did not return the same rankings\n",
                   r->stage[s].name);
}

static void print_per_query_table(const plumb_eval_result *r) {
    for (size_t s = 0; s < r->nstages; s++) {
        const plumb_eval_stage_result *st = &r->stage[s];
        printf("\nper query, stage %s\n%-16s %5s %5s", st->name, "query", "R", "ret");
        for (int m = 0; m < PLUMB_METRIC_COUNT; m++) printf(" %8s", short_names[m]);
        if (st->latency.measured) printf(" %8s", "ms");
        printf("\n");
        for (size_t i = 0; i < st->nq; i++) {
            const plumb_eval_query *q = &st->q[i];
            char id[64];
            snprintf(id, sizeof id, "%s", q->query_id);
            cli_put_clean(stdout, id, 0);
            printf("%*s %5d %5d", (int)(16 - (strlen(id) < 16 ? strlen(id) : 16)), "", q->nrel,
                   q->nret);
            for (int m = 0; m < PLUMB_METRIC_COUNT; m++) printf(" %8.4f", q->metric[m]);
            if (st->latency.measured) printf(" %8.2f", q->latency_ms);
            printf("\n");
        }
    }
}

static void print_comparison(const plumb_comparison *c, int per_query) {
    const char *mn = plumb_metric_name(c->metric);
    printf("\n%s: B = ", mn);
    cli_put_clean(stdout, c->name_b, 0);
    printf(" against A = ");
    cli_put_clean(stdout, c->name_a, 0);
    printf(" on %zu queries", c->n);
    if (c->only_a || c->only_b)
        printf(" (%" PRId64 " only in A, %" PRId64 " only in B: left out)", c->only_a, c->only_b);
    printf("\n  mean A %.4f, mean B %.4f, B - A %+.4f\n", c->mean_a, c->mean_b, c->mean_diff);
    printf("  B wins %" PRId64 ", loses %" PRId64 ", ties %" PRId64 "\n", c->wins, c->losses,
           c->ties);
    printf("  paired randomization test (%d permutations, seed %" PRIu64 "): p = %.4f\n",
           c->permutations, c->seed, c->p_randomization);
    if (isnan(c->p_ttest))
        printf("  paired t-test: needs at least 2 queries\n");
    else
        printf("  paired t-test (df %zu): t = %.3f, p = %.4f\n", c->n - 1, c->t, c->p_ttest);
    if (per_query) {
        printf("\n%-16s %8s %8s %8s\n", "query", "A", "B", "B - A");
        for (size_t i = 0; i < c->n; i++) {
            char id[64];
            snprintf(id, sizeof id, "%s", c->q[i].query_id);
            cli_put_clean(stdout, id, 0);
            printf("%*s %8.4f %8.4f %+8.4f\n", (int)(16 - (strlen(id) < 16 ? strlen(id) : 16)),
                   "", c->q[i].a, c->q[i].b, c->q[i].b - c->q[i].a);
        }
    }
}

static void json_load(const char *name, const char *path, const plumb_load_stats *s, int comma) {
    printf("%s\"%s\":{\"path\":", comma ? "," : "", name);
    cli_json_str(stdout, path);
    printf(",\"lines\":%" PRId64 ",\"records\":%" PRId64 ",\"malformed\":%" PRId64
           ",\"duplicates\":%" PRId64 "}",
           s->lines, s->records, s->malformed, s->duplicates);
}

static void json_counts(const plumb_eval_counts *c) {
    printf("\"counts\":{\"queries\":%" PRId64 ",\"qrels_queries\":%" PRId64
           ",\"judgments\":%" PRId64 ",\"relevant\":%" PRId64 ",\"evaluated\":%" PRId64
           ",\"skipped_unjudged\":%" PRId64 ",\"skipped_no_relevant\":%" PRId64
           ",\"unknown_queries\":%" PRId64 ",\"judged_docs\":%" PRId64 ",\"unknown_docs\":%" PRId64
           ",\"self_hits_dropped\":%" PRId64 "}",
           c->queries, c->qrels_queries, c->judgments, c->relevant, c->evaluated,
           c->skipped_unjudged, c->skipped_no_relevant, c->unknown_queries, c->judged_docs,
           c->unknown_docs, c->self_hits_dropped);
}

static void json_metrics(const double *m) {
    printf("{");
    for (int i = 0; i < PLUMB_METRIC_COUNT; i++) {
        printf("%s\"%s\":", i ? "," : "", plumb_metric_name((plumb_metric)i));
        cli_json_num(stdout, m[i]);
    }
    printf("}");
}

static void json_num_field(const char *name, double v, int comma) {
    printf("%s\"%s\":", comma ? "," : "", name);
    cli_json_num(stdout, v);
}

/* The search parameters as run, with the index's defaults resolved. */
static void json_search(const plumb_search_params *sp, const plumb_stats *ist) {
    int fts5 = sp->scorer == PLUMB_SCORER_FTS5;
    printf("{\"scorer\":\"%s\"", fts5 ? "fts5" : "bm25");
    if (fts5) {
        printf(",\"k1\":1.2,\"b\":0.75,\"weight_title\":1,\"weight_body\":1");
    } else {
        json_num_field("k1", sp->bm25_k1 >= 0 ? sp->bm25_k1 : ist->bm25_k1, 1);
        json_num_field("b", sp->bm25_b >= 0 ? sp->bm25_b : ist->bm25_b, 1);
        json_num_field("weight_title", sp->weight_title >= 0 ? sp->weight_title : ist->weight_title,
                       1);
        json_num_field("weight_body", sp->weight_body >= 0 ? sp->weight_body : ist->weight_body,
                       1);
    }
    printf(",\"k\":%d,\"with_text\":%s,\"snippet_tokens\":%d}", sp->k,
           sp->with_text ? "true" : "false", sp->snippet_tokens);
}

static void json_stage(const plumb_eval_stage_result *st, const plumb_stats *ist, int per_query) {
    cli_json_str(stdout, st->name);
    printf(":{");
    if (ist) {
        printf("\"search\":");
        json_search(&st->search, ist);
        printf(",");
    }
    printf("\"metrics\":");
    json_metrics(st->mean);
    printf(",\"queries\":%zu,\"no_hits\":%" PRId64 ",\"rerank_fallbacks\":%" PRId64
           ",\"rerank_error\":", st->nq, st->no_hits, st->rerank_fallbacks);
    cli_json_str(stdout, st->rerank_error);
    const plumb_eval_latency *l = &st->latency;
    if (l->measured) {
        printf(",\"latency\":{");
        json_num_field("mean_ms", l->mean_ms, 0);
        json_num_field("p50_ms", l->p50_ms, 1);
        json_num_field("p95_ms", l->p95_ms, 1);
        json_num_field("p99_ms", l->p99_ms, 1);
        json_num_field("qps", l->qps, 1);
        printf(",\"threads\":%d", l->threads);
        if (l->threads) {
            json_num_field("qps_parallel", l->qps_parallel, 1);
            json_num_field("p50_parallel_ms", l->p50_parallel_ms, 1);
            json_num_field("p95_parallel_ms", l->p95_parallel_ms, 1);
            json_num_field("p99_parallel_ms", l->p99_parallel_ms, 1);
            printf(",\"parallel_identical\":%s", l->parallel_identical ? "true" : "false");
        }
        printf(",\"k_eval\":%d", l->k_eval);
        json_num_field("qps_eval", l->qps_eval, 1);
        printf("}");
    }
    if (per_query) {
        printf(",\"per_query\":[");
        for (size_t i = 0; i < st->nq; i++) {
            const plumb_eval_query *q = &st->q[i];
            printf("%s{\"query_id\":", i ? "," : "");
            cli_json_str(stdout, q->query_id);
            printf(",\"nrel\":%d,\"nret\":%d,\"chunks\":%d,\"metrics\":", q->nrel, q->nret,
                   q->chunks);
            json_metrics(q->metric);
            if (q->latency_ms >= 0) json_num_field("latency_ms", q->latency_ms, 1);
            printf("}");
        }
        printf("]");
    }
    printf("}");
}

static void json_comparison(const plumb_comparison *c, int per_query) {
    printf("{\"a\":");
    cli_json_str(stdout, c->name_a);
    printf(",\"b\":");
    cli_json_str(stdout, c->name_b);
    printf(",\"metric\":\"%s\",\"queries\":%zu,\"only_a\":%" PRId64 ",\"only_b\":%" PRId64
           ",\"wins\":%" PRId64 ",\"losses\":%" PRId64 ",\"ties\":%" PRId64,
           plumb_metric_name(c->metric), c->n, c->only_a, c->only_b, c->wins, c->losses, c->ties);
    json_num_field("mean_a", c->mean_a, 1);
    json_num_field("mean_b", c->mean_b, 1);
    json_num_field("mean_diff", c->mean_diff, 1);
    json_num_field("p_randomization", c->p_randomization, 1);
    printf(",\"permutations\":%d,\"seed\":%" PRIu64, c->permutations, c->seed);
    json_num_field("t", c->t, 1);
    json_num_field("p_ttest", c->p_ttest, 1);
    if (per_query) {
        printf(",\"per_query\":[");
        for (size_t i = 0; i < c->n; i++) {
            printf("%s{\"query_id\":", i ? "," : "");
            cli_json_str(stdout, c->q[i].query_id);
            json_num_field("a", c->q[i].a, 1);
            json_num_field("b", c->q[i].b, 1);
            printf("}");
        }
        printf("]");
    }
    printf("}");
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

typedef struct opts_t {
    const char *dir, *corpus, *queries, *qrels, *split, *db, *cache, *rundir, *report, *baseline;
    const char *stages;
    const char *runs[2];
    int nargs, reindex, json, per_query, compare, quiet, verbose;
    plumb_open_params op;
    plumb_eval_params ep;
    plumb_compare_params cp;
    double k1, b, wt, wb;
    int latency_k;
    char lang[64];
    double alpha;
    int fusion, k_lex, k_dense, dim, vsearch, rerank, qe_docs;
    plumb_search_params rr; /* only the reranker fields: --reranker, --rerank-url ... */
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o, int *help) {
    cli_parser ps;
    const char *args[3];
    cli_parser_init(&ps, "eval", argc, argv, opts);
    for (;;) {
        int c = cli_next(&ps), bad = 0;
        if (c == CLI_DONE) break;
        if (c == CLI_BAD) return CLI_EXIT_USAGE;
        switch (c) {
        case CLI_ARG:
            if (o->nargs == 3) return cli_usage("eval", "unexpected argument '%s'", ps.val);
            args[o->nargs++] = ps.val;
            break;
        case O_CORPUS: o->corpus = ps.val; break;
        case O_QUERIES: o->queries = ps.val; break;
        case O_QRELS: o->qrels = ps.val; break;
        case O_SPLIT: o->split = ps.val; break;
        case O_DB: o->db = ps.val; break;
        case O_CACHE: o->cache = ps.val; break;
        case O_REINDEX: o->reindex = 1; break;
        case O_LANG:
            if (!*ps.val || strlen(ps.val) >= 32)
                return cli_usage("eval", "%s: expected a stemmer name such as 'english' or "
                                 "'none', got '%s'", ps.name, ps.val);
            snprintf(o->lang, sizeof o->lang, "%s", ps.val);
            o->op.language = o->lang;
            break;
        case O_NOSTOP: o->op.stopwords = 0; break;
        case O_CTOK: bad = cli_int_arg(&ps, 0, 1000000, &o->op.chunk_tokens); break;
        case O_COVL: bad = cli_int_arg(&ps, 0, 1000000, &o->op.chunk_overlap); break;
        case O_K1: bad = cli_num_arg(&ps, 0, 1000, &o->k1); break;
        case O_B: bad = cli_num_arg(&ps, 0, 1, &o->b); break;
        case O_WTITLE: bad = cli_num_arg(&ps, 0, 1000, &o->wt); break;
        case O_WBODY: bad = cli_num_arg(&ps, 0, 1000, &o->wb); break;
        case O_STAGES: o->stages = ps.val; break;
        case O_DEPTH: bad = cli_int_arg(&ps, 10, 10000, &o->ep.depth); break;
        case O_KEEPSELF: o->ep.drop_self = 0; break;
        case O_THREADS: bad = cli_int_arg(&ps, 1, 1024, &o->ep.threads); break;
        case O_LATK: bad = cli_int_arg(&ps, 1, 10000, &o->latency_k); break;
        case O_JSON: o->json = 1; break;
        case O_PERQ: o->per_query = 1; break;
        case O_RUNDIR: o->rundir = ps.val; break;
        case O_REPORT: o->report = ps.val; break;
        case O_COMPARE: o->compare = 1; break;
        case O_BASELINE: o->baseline = ps.val; break;
        case O_METRIC: {
            int m = plumb_metric_from_name(ps.val);
            if (m < 0)
                return cli_usage("eval", "%s: expected ndcg@10, recall@10, recall@100, "
                                 "recall@1000, mrr@10, map@100 or p@10, got '%s'",
                                 ps.name, ps.val);
            o->cp.metric = (plumb_metric)m;
            break;
        }
        case O_PERMS: bad = cli_int_arg(&ps, 1000, 100000000, &o->cp.permutations); break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(ps.val, &end, 10);
            if (!*ps.val || *end || errno || ps.val[0] == '-')
                return cli_usage("eval", "%s: expected a non-negative integer, got '%s'",
                                 ps.name, ps.val);
            o->cp.seed = (uint64_t)v;
            break;
        }
        case O_ALPHA: bad = cli_num_arg(&ps, 0, 1, &o->alpha); break;
        case O_FUSION:
            if (!strcmp(ps.val, "minmax")) o->fusion = PLUMB_FUSE_MINMAX;
            else if (!strcmp(ps.val, "zscore")) o->fusion = PLUMB_FUSE_ZSCORE;
            else if (!strcmp(ps.val, "rrf")) o->fusion = PLUMB_FUSE_RRF;
            else return cli_usage("eval", "%s: expected minmax, zscore or rrf, got '%s'", ps.name, ps.val);
            break;
        case O_KLEX: bad = cli_int_arg(&ps, 1, 10000, &o->k_lex); break;
        case O_RERANK: bad = cli_int_arg(&ps, 1, 10000, &o->rerank); break;
        case O_KDENSE: bad = cli_int_arg(&ps, 1, 10000, &o->k_dense); break;
        case O_QE: bad = cli_int_arg(&ps, 0, 100, &o->qe_docs); break;
        case O_DIM: bad = cli_int_arg(&ps, 2, 4096, &o->dim); break;
        case O_VSEARCH:
            if (!strcmp(ps.val, "f32")) o->vsearch = PLUMB_VSEARCH_F32;
            else if (!strcmp(ps.val, "int8")) o->vsearch = PLUMB_VSEARCH_INT8;
            else if (!strcmp(ps.val, "binary")) o->vsearch = PLUMB_VSEARCH_BINARY;
            else if (!strcmp(ps.val, "ann")) o->vsearch = PLUMB_VSEARCH_ANN;
            else return cli_usage("eval", "%s: expected f32, int8, binary or ann, got '%s'", ps.name, ps.val);
            break;
        case O_QUIET: o->quiet = 1; o->verbose = 0; break;
        case O_VERBOSE: o->verbose = 1; o->quiet = 0; break;
        case O_HELP: *help = 1; return 0;
        default: bad = cli_rerank_opt(&ps, c, &o->rr); break;
        }
        if (bad) return bad;
    }
    if (o->compare) {
        if (o->nargs != 2)
            return cli_usage("eval", "--compare needs two run files: RUN_A RUN_B");
        if (!o->qrels) return cli_usage("eval", "--compare needs --qrels FILE");
        if (o->corpus || o->queries || o->db || o->baseline || o->stages)
            return cli_usage("eval", "--compare takes run files and --qrels only (no corpus, "
                             "queries, index, stages or baseline)");
        o->runs[0] = args[0];
        o->runs[1] = args[1];
        return 0;
    }
    if (o->nargs > 1) return cli_usage("eval", "unexpected argument '%s'", args[1]);
    if (o->nargs == 1) o->dir = args[0];
    if (!o->dir && !((o->corpus || o->db) && o->queries && o->qrels))
        return cli_usage("eval", "name a BEIR dataset directory, or give --corpus (or --db), "
                         "--queries and --qrels");
    if (o->op.chunk_tokens > 0 && o->op.chunk_overlap >= o->op.chunk_tokens)
        return cli_usage("eval", "--chunk-overlap (%d) must be smaller than --chunk-tokens (%d)",
                         o->op.chunk_overlap, o->op.chunk_tokens);
    return 0;
}

/* Stages from "--stages bm25,fts5". Returns the count or -1 (reported). */
static int parse_stages(const opts_t *o, plumb_eval_stage *st, int max, char names[][16]) {
    const char *s = o->stages ? o->stages : "bm25";
    int n = 0;
    while (*s) {
        size_t l = strcspn(s, ",");
        if (n == max) {
            cli_usage("eval", "--stages: at most %d stages", max);
            return -1;
        }
        if (l == 0 || l >= 16) {
            cli_usage("eval", "--stages: expected names such as 'bm25,fts5', got '%s'",
                      o->stages);
            return -1;
        }
        memcpy(names[n], s, l);
        names[n][l] = 0;
        plumb_search_params_init(&st[n].search);
        if (o->latency_k) st[n].search.k = o->latency_k;
        st[n].name = names[n];
        plumb_search_params *sp = &st[n].search;
        sp->bm25_k1 = o->k1;
        sp->bm25_b = o->b;
        sp->weight_title = o->wt;
        sp->weight_body = o->wb;
        sp->alpha = o->alpha;
        sp->fusion = (plumb_fusion)o->fusion;
        sp->k_lex = o->k_lex ? o->k_lex : -1;
        sp->rerank = 0; /* only the rerank stage reranks */
        sp->k_dense = o->k_dense ? o->k_dense : -1;
        sp->qe_docs = o->qe_docs;
        sp->vsearch = (plumb_vsearch)o->vsearch;
        if (strcmp(names[n], "bm25") == 0) {
            sp->mode = PLUMB_MODE_LEXICAL;
        } else if (strcmp(names[n], "fts5") == 0) {
            sp->mode = PLUMB_MODE_LEXICAL;
            sp->scorer = PLUMB_SCORER_FTS5;
        } else if (strcmp(names[n], "dense") == 0) {
            sp->mode = PLUMB_MODE_DENSE;
        } else if (strcmp(names[n], "hybrid") == 0) {
            sp->mode = PLUMB_MODE_HYBRID;
        } else if (strcmp(names[n], "rrf") == 0) {
            sp->mode = PLUMB_MODE_HYBRID;
            sp->fusion = PLUMB_FUSE_RRF;
        } else if (strcmp(names[n], "rerank") == 0) {
            sp->mode = PLUMB_MODE_AUTO; /* hybrid with vectors, else lexical */
            sp->rerank = o->rerank ? o->rerank : -1;
            sp->reranker = o->rr.reranker;
            sp->rerank_url = o->rr.rerank_url;
            sp->rerank_model = o->rr.rerank_model;
            sp->rerank_timeout_ms = o->rr.rerank_timeout_ms;
        } else {
            cli_usage("eval", "--stages: unknown stage '%s' (known: bm25, fts5, dense, hybrid, "
                      "rrf, rerank)", names[n]);
            return -1;
        }
        for (int k = 0; k < n; k++)
            if (strcmp(names[k], names[n]) == 0) {
                cli_usage("eval", "--stages: '%s' given twice", names[n]);
                return -1;
            }
        n++;
        s += l;
        if (*s == ',') s++;
    }
    if (n == 0) cli_usage("eval", "--stages: no stage given");
    return n ? n : -1;
}

static int write_runs(const plumb_eval_result *r, const char *dir, ui *u) {
    if (mkdirs(dir)) {
        fprintf(stderr, "plumb: cannot create '%s': %s\n", dir, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    for (size_t s = 0; s < r->nstages; s++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.run", dir, r->stage[s].name);
        plumb_status rc = plumb_run_write(r->stage[s].run, path);
        if (rc) {
            cli_fail(rc, "cannot write the run file '%s'", path);
            return CLI_EXIT_FAIL;
        }
        note(u, "wrote %s", path);
    }
    return 0;
}

static int write_report(const char *path, const char *title, const plumb_eval_result *r,
                        const plumb_comparison *c, ui *u) {
    plumb_status rc = plumb_eval_report_html(path, title, r, c);
    if (rc) {
        cli_fail(rc, "cannot write the report '%s'", path);
        return CLI_EXIT_FAIL;
    }
    note(u, "wrote %s", path);
    return 0;
}

/* plumb eval --compare RUN_A RUN_B --qrels FILE */
static int run_compare(opts_t *o, ui *u) {
    plumb_qrels *qr = NULL;
    plumb_run *runs[2] = {NULL, NULL};
    plumb_eval_result *res = NULL;
    plumb_comparison *cmp = NULL;
    plumb_load_stats ls[3];
    int code = CLI_EXIT_OK;
    plumb_status rc = plumb_qrels_load(o->qrels, on_message, u, &qr, &ls[0]);
    if (rc) {
        cli_fail(rc, "cannot load the qrels");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    for (int i = 0; i < 2; i++)
        if ((rc = plumb_run_load(o->runs[i], on_message, u, &runs[i], &ls[i + 1]))) {
            cli_fail(rc, "cannot load the run '%s'", o->runs[i]);
            code = CLI_EXIT_FAIL;
            goto done;
        }
    /* stages are named by file, so two runs with one tag stay apart */
    char na[80], nb[80];
    snprintf(na, sizeof na, "A:%s", runs[0]->tag ? runs[0]->tag : "run");
    snprintf(nb, sizeof nb, "B:%s", runs[1]->tag ? runs[1]->tag : "run");
    const char *names[2] = {na, nb};
    const plumb_run *rr[2] = {runs[0], runs[1]};
    o->ep.message = on_message;
    o->ep.arg = u;
    if ((rc = plumb_eval_runs(qr, rr, names, 2, &o->ep, &res)) ||
        (rc = plumb_eval_compare(&res->stage[0], &res->stage[1], &o->cp, &cmp))) {
        cli_fail(rc, "comparison failed");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    if (o->json) {
        char date[32], commit[128];
        utc_now(date, sizeof date);
        find_commit(commit, sizeof commit);
        printf("{\"plumb_version\":\"%s\",\"commit\":", plumb_libversion());
        cli_json_str(stdout, commit);
        printf(",\"date\":\"%s\",\"mode\":\"compare\",\"inputs\":{", date);
        json_load("qrels", o->qrels, &ls[0], 0);
        json_load("run_a", o->runs[0], &ls[1], 1);
        json_load("run_b", o->runs[1], &ls[2], 1);
        printf("},\"params\":{\"depth\":%d},", res->depth);
        json_counts(&res->counts);
        printf(",\"stages\":{");
        for (size_t s = 0; s < res->nstages; s++) {
            if (s) printf(",");
            json_stage(&res->stage[s], NULL, o->per_query);
        }
        printf("},\"comparison\":");
        json_comparison(cmp, o->per_query);
        printf("}\n");
    } else {
        printf("A = %s\nB = %s\nqrels %s: %" PRId64 " queries evaluated\n\n", o->runs[0],
               o->runs[1], o->qrels, res->counts.evaluated);
        print_metrics_table(res);
        print_comparison(cmp, o->per_query);
    }
    if (o->report) {
        char title[256];
        snprintf(title, sizeof title, "plumb eval --compare: %s vs %s", o->runs[0], o->runs[1]);
        if ((code = write_report(o->report, title, res, cmp, u))) goto done;
    }
done:
    plumb_comparison_free(cmp);
    plumb_eval_result_free(res);
    plumb_run_free(runs[0]);
    plumb_run_free(runs[1]);
    plumb_qrels_free(qr);
    return code;
}

int cmd_eval(int argc, char **argv) {
    opts_t o;
    ui u;
    int help = 0, code;
    plumb_db *db = NULL;
    plumb_qrels *qr = NULL;
    plumb_queries *qs = NULL;
    plumb_eval_result *res = NULL, *base = NULL;
    plumb_run *brun = NULL;
    plumb_comparison *cmp = NULL;
    char corpus[PATH_MAX], queries[PATH_MAX], qrels[PATH_MAX], dsname[128];
    index_info ii;

    memset(&o, 0, sizeof o);
    memset(&u, 0, sizeof u);
    memset(&ii, 0, sizeof ii);
    eval_open_defaults(&o.op);
    plumb_eval_params_init(&o.ep);
    plumb_compare_params_init(&o.cp);
    o.k1 = o.b = o.wt = o.wb = -1;
    o.alpha = -1;
    o.qe_docs = -1;
    o.dim = 256;
    o.split = "test";
    if ((code = parse_opts(argc, argv, &o, &help))) return code;
    if (help) {
        cmd_eval_help(stdout);
        return CLI_EXIT_OK;
    }
    u.quiet = o.quiet;
    u.verbose = o.verbose;
    u.bar = !o.quiet && cli_isatty(stderr);
    if (o.compare) {
        code = run_compare(&o, &u);
        goto done;
    }

    double t0 = cli_now();
    if (o.dir && !is_dir(o.dir)) {
        fprintf(stderr, "plumb: '%s' is not a directory (expected BEIR layout: corpus.jsonl, "
                "queries.jsonl, qrels/%s.tsv)\n", o.dir, o.split);
        code = CLI_EXIT_FAIL;
        goto done;
    }
    snprintf(corpus, sizeof corpus, "%s", o.corpus ? o.corpus : "");
    snprintf(queries, sizeof queries, "%s", o.queries ? o.queries : "");
    snprintf(qrels, sizeof qrels, "%s", o.qrels ? o.qrels : "");
    if (!o.corpus && o.dir) snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", o.dir);
    /* --db without a corpus: the index is evaluated as it is */
    if (!o.queries) snprintf(queries, sizeof queries, "%s/queries.jsonl", o.dir);
    if (!o.qrels) snprintf(qrels, sizeof qrels, "%s/qrels/%s.tsv", o.dir, o.split);
    const char *need[3] = {queries, qrels, corpus};
    for (int i = 0; i < (corpus[0] ? 3 : 2); i++)
        if (access(need[i], R_OK) != 0) {
            fprintf(stderr, "plumb: cannot read '%s': %s\n", need[i], strerror(errno));
            code = CLI_EXIT_FAIL;
            goto done;
        }
    dataset_name(dsname, sizeof dsname, o.dir, corpus[0] ? corpus : o.db);

    plumb_eval_stage stages[8];
    char snames[8][16];
    int nstages = parse_stages(&o, stages, 8, snames);
    if (nstages < 0) {
        code = CLI_EXIT_USAGE;
        goto done;
    }

    plumb_load_stats lq, lr, lb;
    plumb_status rc = plumb_queries_load(queries, on_message, &u, &qs, &lq);
    if (!rc) rc = plumb_qrels_load(qrels, on_message, &u, &qr, &lr);
    if (rc) {
        cli_fail(rc, "cannot load the %s", qs ? "qrels" : "queries");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    if (o.baseline && (rc = plumb_run_load(o.baseline, on_message, &u, &brun, &lb))) {
        cli_fail(rc, "cannot load the baseline run '%s'", o.baseline);
        code = CLI_EXIT_FAIL;
        goto done;
    }

    if ((code = open_index(o.db, o.cache, o.reindex, &o.op, o.dim, corpus, o.dir, dsname, &u, &ii, &db)))
        goto done;
    if ((rc = plumb_stats_get(db, &ii.st))) {
        cli_fail(rc, "cannot read the index statistics");
        code = CLI_EXIT_NOINDEX;
        goto done;
    }

    o.ep.stages = stages;
    o.ep.nstages = nstages;
    o.ep.progress = on_eval_progress;
    o.ep.message = on_message;
    o.ep.arg = &u;
    rc = plumb_eval_run(db, qs, qr, &o.ep, &res);
    clear_line(&u);
    if (rc) {
        cli_fail(rc, "evaluation failed");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    /* the text table says it under the metrics; --json keeps stdout for JSON */
    for (size_t s = 0; o.json && s < res->nstages; s++)
        if (res->stage[s].rerank_fallbacks) {
            fprintf(stderr, "plumb: warning: stage ");
            cli_put_clean(stderr, res->stage[s].name, 0);
            fprintf(stderr, ": %" PRId64 " of %zu searches fell back to the stage-1 order: ",
                    res->stage[s].rerank_fallbacks, res->stage[s].nq);
            cli_put_clean(stderr, res->stage[s].rerank_error ? res->stage[s].rerank_error : "?", 0);
            fputc('\n', stderr);
        }
    if (brun) {
        const plumb_run *rr[1] = {brun};
        const char *bn[1] = {"baseline"};
        if ((rc = plumb_eval_runs(qr, rr, bn, 1, &o.ep, &base)) ||
            (rc = plumb_eval_compare(&base->stage[0], &res->stage[0], &o.cp, &cmp))) {
            cli_fail(rc, "comparison with the baseline failed");
            code = CLI_EXIT_FAIL;
            goto done;
        }
    } else if (res->nstages >= 2 &&
               (rc = plumb_eval_compare(&res->stage[0], &res->stage[res->nstages - 1], &o.cp,
                                        &cmp))) {
        cli_fail(rc, "comparison of the stages failed");
        code = CLI_EXIT_FAIL;
        goto done;
    }
    double total = cli_now() - t0;

    if (o.json) {
        char date[32], commit[128];
        utc_now(date, sizeof date);
        find_commit(commit, sizeof commit);
        printf("{\"plumb_version\":\"%s\",\"commit\":", plumb_libversion());
        cli_json_str(stdout, commit);
        printf(",\"date\":\"%s\",\"mode\":\"eval\",\"dataset\":{\"name\":", date);
        cli_json_str(stdout, dsname);
        printf(",\"dir\":");
        cli_json_str(stdout, o.dir);
        printf(",\"split\":");
        cli_json_str(stdout, o.qrels ? NULL : o.split);
        printf(",");
        json_load("corpus", corpus[0] ? corpus : NULL, &(plumb_load_stats){0, 0, 0, 0}, 0);
        json_load("queries", queries, &lq, 1);
        json_load("qrels", qrels, &lr, 1);
        printf("},\"index\":{\"db\":");
        cli_json_str(stdout, ii.path);
        printf(",\"cached\":%s,\"built\":%s", ii.cached ? "true" : "false",
               ii.built ? "true" : "false");
        json_num_field("build_s", ii.build_s, 1);
        char lang[sizeof ii.st.language + 1];
        memcpy(lang, ii.st.language, sizeof ii.st.language);
        lang[sizeof ii.st.language] = 0;
        printf(",\"documents\":%" PRId64 ",\"chunks\":%" PRId64 ",\"language\":",
               ii.st.documents, ii.st.chunks);
        cli_json_str(stdout, lang);
        printf(",\"stopwords\":%s,\"chunk_tokens\":%d,\"chunk_overlap\":%d}",
               ii.st.stopwords ? "true" : "false", ii.st.chunk_tokens, ii.st.chunk_overlap);
        printf(",\"params\":{\"depth\":%d,\"drop_self\":%s,\"doc_score\":\"maxp\",\"threads\":%d}",
               res->depth, res->drop_self ? "true" : "false",
               res->nstages ? res->stage[0].latency.threads : 0);
        printf(",");
        json_counts(&res->counts);
        printf(",\"stages\":{");
        for (size_t s = 0; s < res->nstages; s++) {
            if (s) printf(",");
            json_stage(&res->stage[s], &ii.st, o.per_query);
        }
        printf("}");
        if (cmp) {
            printf(",\"comparison\":");
            json_comparison(cmp, o.per_query);
        }
        printf(",\"elapsed_s\":{");
        json_num_field("index", ii.build_s, 0);
        json_num_field("eval", res->elapsed_s, 1);
        json_num_field("total", total, 1);
        printf("}}\n");
    } else {
        const plumb_eval_counts *c = &res->counts;
        printf("%s", dsname);
        if (!o.qrels) printf(" (%s split)", o.split);
        printf(": %" PRId64 " queries evaluated", c->evaluated);
        if (c->skipped_unjudged || c->skipped_no_relevant)
            printf("; skipped %" PRId64 " without judgments, %" PRId64
                   " without a relevant one",
                   c->skipped_unjudged, c->skipped_no_relevant);
        printf("\n");
        if (c->unknown_queries || c->unknown_docs)
            printf("qrels: %" PRId64 " query ids not in the queries file, %" PRId64
                   " of %" PRId64 " judged documents not in the index\n",
                   c->unknown_queries, c->unknown_docs, c->judged_docs);
        printf("index: %" PRId64 " documents, %" PRId64 " chunks (%s, %.2f s)\n",
               ii.st.documents, ii.st.chunks,
               ii.built ? "built" : ii.cached ? "cached" : "up to date", ii.build_s);
        printf("ranking: top %d documents per query; a document scores its best chunk (MaxP)%s\n\n",
               res->depth, res->drop_self ? "; hits whose id equals the query id dropped" : "");
        print_metrics_table(res);
        print_latency_table(res);
        if (o.per_query) print_per_query_table(res);
        if (cmp) print_comparison(cmp, o.per_query);
        printf("\n%.2f s in all (indexing %.2f s, evaluation %.2f s)\n", total, ii.build_s,
               res->elapsed_s);
    }
    if (o.rundir && (code = write_runs(res, o.rundir, &u))) goto done;
    if (o.report) {
        char title[256];
        snprintf(title, sizeof title, "plumb eval: %s%s%s", dsname, o.qrels ? "" : " / ",
                 o.qrels ? "" : o.split);
        if ((code = write_report(o.report, title, res, cmp, &u))) goto done;
    }
done:
    if (u.hidden)
        fprintf(stderr, "plumb: warning: %" PRId64 " more warnings not shown\n", u.hidden);
    plumb_comparison_free(cmp);
    plumb_eval_result_free(base);
    plumb_eval_result_free(res);
    plumb_run_free(brun);
    plumb_queries_free(qs);
    plumb_qrels_free(qr);
    plumb_close(db);
    return code;
}
