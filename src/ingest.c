/*
** ingest.c -- plumb_index_paths(): walk, read, parse, and index files.
**
** HOW IT WORKS
**   1. Walk every path argument (directories recursively; names starting
**      with '.' skipped; symlinked directories followed only on request,
**      by their real path, with loops detected by device/inode) and list
**      the supported files with their sizes, so progress can show bytes
**      and an ETA. A file reached twice (through links, or two path
**      arguments) is listed once, under its real path.
**   2. For each file: read it whole, hash it, and skip it when the hash
**      equals the one recorded last time. Otherwise parse it into one or
**      more documents and add them. A file's row is written with an empty
**      hash before its documents and gets its real hash only after the
**      last one, so an interrupted run re-reads a half-done file.
**      A file that changes while it is read is read again (READ_TRIES
**      times in all; see read_all and do_jsonl): a document never mixes
**      two versions of a text file. After the last try the file is
**      skipped with a message and the index keeps its earlier version
**      (a JSONL file keeps the records read so far, each one whole, and
**      an empty hash, so the next run reads it again).
**   Text is made valid before parsing: a UTF-16 file (byte order mark
**   FF FE or FE FF) is decoded, a UTF-8 byte order mark dropped, invalid
**   UTF-8 replaced by U+FFFD and NUL bytes dropped, each with a message
**   naming the file (and line) and the first byte offset. A NUL byte in
**   the first 8 KiB of a text file without a UTF-16 mark means binary:
**   skipped. A JSONL file must be UTF-8: one with a UTF-16 mark is
**   skipped with a message.
**   3. Commit every commit_every documents: a crash keeps what was
**      committed, and a re-run skips the unchanged documents cheaply.
**   4. With prune: files recorded under a walked root that the walk did
**      not see are removed with their documents; so are records that
**      vanished from a changed JSONL file.
** Bad input never stops the run: each problem goes to the message
** callback with the file and the line or byte offset, and is counted.
**
** LIMITATIONS: JSONL files are streamed in 4 MiB blocks (any size; a
** line over 256 MiB is skipped with a message); other files are read
** into memory whole (above 1 GiB: skipped with a message). PDF needs
** the pdftotext program.
*/
#include "plumb_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILE_BYTES ((int64_t)1 << 30)
#define SNIFF_BYTES 8192

typedef enum kind { K_NONE, K_TEXT, K_MD, K_HTML, K_JSONL, K_PDF } kind;

typedef struct fent {
    char *path; /* canonical */
    int64_t size, mtime;
    kind k;
} fent;

typedef struct dirid {
    dev_t dev;
    ino_t ino;
} dirid;

typedef struct ingest {
    plumb_db *db;
    dirid *walked; /* every directory walked so far (links to them are not followed again) */
    size_t nwalked, capwalked;
    const plumb_index_params *p;
    plumb_index_stats *st;
    fent *f;
    size_t nf, capf;
    dirid *dirs; /* directories on the current walk stack (loop check) */
    size_t ndirs, capdirs;
    int64_t pending; /* documents since the last commit */
    int64_t bytes_total;
    double t0, last_report;
    plumb_progress prog;
    int pdftotext; /* -1 unknown, 0 missing, 1 present */
    int pdf_warned;
    buf msg;
    buf title, text; /* parse scratch */
} ingest;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void say(ingest *g, plumb_msg_level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Messages are never cut: a path nested past PATH_MAX is named whole. */
static void say(ingest *g, plumb_msg_level lv, const char *fmt, ...) {
    if (!g->p->message) return;
    char m[2048], *big = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof m && (big = malloc((size_t)n + 1))) {
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    g->p->message(g->p->arg, lv, big ? big : m);
    free(big);
}

static void report(ingest *g, int force) {
    if (!g->p->progress) return;
    double t = now_s();
    if (!force && t - g->last_report < 0.1) return;
    g->last_report = t;
    g->prog.elapsed_s = t - g->t0;
    g->prog.docs_done = g->st->docs_added + g->st->docs_replaced + g->st->docs_unchanged;
    g->p->progress(g->p->arg, &g->prog);
}

/* ---------------------------------------------------------------- */
/* Walking                                                            */
/* ---------------------------------------------------------------- */

static kind kind_of(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return K_TEXT; /* README, LICENSE, ...: sniffed later */
    const char *e = dot + 1;
    if (!strcasecmp(e, "txt") || !strcasecmp(e, "text") || !strcasecmp(e, "rst")) return K_TEXT;
    if (!strcasecmp(e, "md") || !strcasecmp(e, "markdown")) return K_MD;
    if (!strcasecmp(e, "html") || !strcasecmp(e, "htm") || !strcasecmp(e, "xhtml")) return K_HTML;
    if (!strcasecmp(e, "jsonl") || !strcasecmp(e, "ndjson")) return K_JSONL;
    if (!strcasecmp(e, "pdf")) return K_PDF;
    return K_NONE;
}

static plumb_status add_file(ingest *g, const char *path, const struct stat *sb) {
    int dup = 0;
    plumb_status rc = store_walk_add(g->db, path, &dup);
    if (rc) return rc;
    if (dup) {
        say(g, PLUMB_MSG_INFO, "%s: reached again (through a link or another path "
            "argument); indexed once", path);
        return PLUMB_OK;
    }
    g->st->files_seen++;
    kind k = kind_of(path);
    if (k == K_NONE) {
        g->st->files_skipped++;
        say(g, PLUMB_MSG_INFO, "%s: skipped (unsupported file type)", path);
        return PLUMB_OK;
    }
    if (k != K_JSONL && (int64_t)sb->st_size > MAX_FILE_BYTES) { /* JSONL is streamed */
        g->st->files_skipped++;
        say(g, PLUMB_MSG_WARN, "%s: skipped (%lld bytes; files over 1 GiB are not indexed)",
            path, (long long)sb->st_size);
        return PLUMB_OK;
    }
    if (g->nf == g->capf) {
        size_t nc = g->capf ? g->capf * 2 : 256;
        fent *t = realloc(g->f, nc * sizeof *t);
        if (!t) return err_set(PLUMB_NOMEM, "file list");
        g->f = t;
        g->capf = nc;
    }
    char *cp = strdup(path);
    if (!cp) return err_set(PLUMB_NOMEM, "file list");
    g->f[g->nf++] = (fent){cp, (int64_t)sb->st_size, (int64_t)sb->st_mtime, k};
    g->bytes_total += (int64_t)sb->st_size;
    return PLUMB_OK;
}

static int in_list(const dirid *l, size_t n, const struct stat *sb) {
    for (size_t i = 0; i < n; i++)
        if (l[i].dev == sb->st_dev && l[i].ino == sb->st_ino) return 1;
    return 0;
}

static int on_stack(ingest *g, const struct stat *sb) { return in_list(g->dirs, g->ndirs, sb); }

static int push_dir(dirid **l, size_t *n, size_t *cap, const struct stat *sb) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        dirid *t = realloc(*l, nc * sizeof *t);
        if (!t) return -1;
        *l = t;
        *cap = nc;
    }
    (*l)[(*n)++] = (dirid){sb->st_dev, sb->st_ino};
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static plumb_status walk_dir(ingest *g, const char *dir, const struct stat *dsb, int depth) {
    if (depth > 256) {
        say(g, PLUMB_MSG_WARN, "%s: skipped (directories nested deeper than 256)", dir);
        return PLUMB_OK;
    }
    if (on_stack(g, dsb)) {
        say(g, PLUMB_MSG_WARN, "%s: skipped (symbolic link loop)", dir);
        return PLUMB_OK;
    }
    DIR *d = opendir(dir);
    if (!d) {
        say(g, PLUMB_MSG_WARN, "%s: cannot open directory: %s", dir, strerror(errno));
        return PLUMB_OK;
    }
    if (push_dir(&g->dirs, &g->ndirs, &g->capdirs, dsb) ||
        (g->p->follow_links && push_dir(&g->walked, &g->nwalked, &g->capwalked, dsb))) {
        closedir(d);
        return err_set(PLUMB_NOMEM, "walk");
    }
    /* sorted names: the same tree is always indexed in the same order */
    char **names = NULL;
    size_t n = 0, cap = 0;
    plumb_status rc = PLUMB_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., and hidden entries (.git ...) */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **t = realloc(names, nc * sizeof *t);
            if (!t) { rc = err_set(PLUMB_NOMEM, "walk"); break; }
            names = t;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = err_set(PLUMB_NOMEM, "walk"); break; }
        n++;
    }
    closedir(d);
    if (!rc) qsort(names, n, sizeof *names, cmp_str);
    buf path = {0};
    for (size_t i = 0; !rc && i < n; i++) {
        buf_reset(&path);
        buf_puts(&path, dir);
        if (path.len && path.p[path.len - 1] != '/') buf_putc(&path, '/');
        buf_puts(&path, names[i]);
        if (path.oom) { rc = err_set(PLUMB_NOMEM, "walk"); break; }
        struct stat lsb, sb;
        if (lstat(path.p, &lsb) != 0) {
            say(g, PLUMB_MSG_WARN, "%s: %s", path.p, strerror(errno));
            continue;
        }
        int link = S_ISLNK(lsb.st_mode);
        if (link && stat(path.p, &sb) != 0) {
            if (errno == ELOOP)
                say(g, PLUMB_MSG_WARN, "%s: skipped (symbolic link loop: the links lead back "
                    "to each other)", path.p);
            else
                say(g, PLUMB_MSG_WARN, "%s: skipped (broken symbolic link: %s)", path.p,
                    strerror(errno));
            continue;
        }
        if (!link) sb = lsb;
        if (S_ISDIR(sb.st_mode) && link) {
            if (!g->p->follow_links) {
                say(g, PLUMB_MSG_INFO, "%s: skipped (symbolic link to a directory; "
                    "use follow_links)", path.p);
                continue;
            }
            if (on_stack(g, &sb)) {
                say(g, PLUMB_MSG_WARN, "%s: skipped (symbolic link loop: it leads back to a "
                    "directory that contains it)", path.p);
                continue;
            }
            if (in_list(g->walked, g->nwalked, &sb)) {
                say(g, PLUMB_MSG_INFO, "%s: skipped (symbolic link to a directory walked "
                    "already)", path.p);
                continue;
            }
            /* walked by its real path: the files get their canonical names */
            char *real = realpath(path.p, NULL);
            if (!real) {
                say(g, PLUMB_MSG_WARN, "%s: %s", path.p, strerror(errno));
                continue;
            }
            rc = walk_dir(g, real, &sb, depth + 1);
            free(real);
        } else if (S_ISDIR(sb.st_mode)) {
            rc = walk_dir(g, path.p, &sb, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            if (link) {
                /* index a linked file under its real name, once */
                char *real = realpath(path.p, NULL);
                if (!real) continue;
                rc = add_file(g, real, &sb);
                free(real);
            } else {
                rc = add_file(g, path.p, &sb);
            }
        } else {
            say(g, PLUMB_MSG_INFO, "%s: skipped (not a regular file)", path.p);
        }
    }
    buf_free(&path);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    g->ndirs--;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Reading and parsing                                                */
/* ---------------------------------------------------------------- */

/* Open a listed file for reading. The walk saw a regular file, but by now
** a FIFO may stand in its place, and a plain open() of a FIFO waits for a
** writer forever: open without blocking, then insist on a regular file
** (EINVAL otherwise: see read_error). -1 with errno. */
static int open_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat sb;
    int e = fstat(fd, &sb) != 0 ? errno : !S_ISREG(sb.st_mode) ? EINVAL : 0;
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static const char *read_error(int e) {
    return e == EINVAL ? "no longer a regular file" : strerror(e);
}

/* Up to want bytes, fewer only at the end of the file; -1 with errno. */
static ssize_t read_full(int fd, char *b, size_t want) {
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, b + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The same file, unchanged: size, times (to the nanosecond) and inode. */
static int same_stat(const struct stat *a, const struct stat *b) {
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Changed within the last two seconds. The kernel stamps file times from a
** coarse clock (a tick of 1-10 ms), so a write during our read can leave
** the times as they were before it: for such a file, equal stats before
** and after a read do not prove it was still. */
static int racy(const struct stat *sb) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec - sb->st_ctim.tv_sec < 2 || now.tv_sec - sb->st_mtim.tv_sec < 2;
}

#define READ_TRIES 3

/* Read a whole file into *out (NUL-terminated, malloc'd). *sb receives its
** stat after the read; *changed is set when the file changed while it was
** read (stat before and after differ, or it did not end at its size), so
** the bytes may mix two versions. 0, or -1 with errno. */
static int read_all(const char *path, char **out, size_t *n, struct stat *sb, int *changed) {
    *out = NULL;
    *n = 0;
    *changed = 0;
    int fd = open_file(path);
    if (fd < 0) return -1;
    struct stat sb0;
    if (fstat(fd, &sb0) != 0) { close(fd); return -1; }
    size_t cap = (size_t)sb0.st_size + 1, len = 0;
    char *p = malloc(cap);
    if (!p) { close(fd); errno = ENOMEM; return -1; }
    for (;;) {
        if (len + 1 >= cap) { /* the file grew while we read it */
            if ((int64_t)cap > MAX_FILE_BYTES) { free(p); close(fd); errno = EFBIG; return -1; }
            char *t = realloc(p, cap * 2);
            if (!t) { free(p); close(fd); errno = ENOMEM; return -1; }
            p = t;
            cap *= 2;
        }
        ssize_t r = read(fd, p + len, cap - 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(p);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    if (fstat(fd, sb) != 0) { int e = errno; free(p); close(fd); errno = e; return -1; }
    close(fd);
    *changed = !same_stat(&sb0, sb) || (int64_t)len != (int64_t)sb->st_size;
    p[len] = 0;
    *out = p;
    *n = len;
    return 0;
}

static int has_prog(const char *name) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf_[4096];
    while (*path) {
        const char *c = strchr(path, ':');
        size_t l = c ? (size_t)(c - path) : strlen(path);
        snprintf(buf_, sizeof buf_, "%.*s/%s", (int)l, path, name);
        if (access(buf_, X_OK) == 0) return 1;
        path += l + (c ? 1 : 0);
    }
    return 0;
}

/* Run pdftotext FILE - and collect its output. */
static int pdf_text(const char *path, buf *out, int *status) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return -1; }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) dup2(dn, 2);
        execlp("pdftotext", "pdftotext", "-q", "-enc", "UTF-8", path, "-", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char tmp[65536];
    for (;;) {
        ssize_t r = read(fds[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        buf_append(out, tmp, (size_t)r);
    }
    close(fds[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
    return 0;
}

static const char *base_name(const char *path, size_t *len) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    *len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    return b;
}

static plumb_status commit_if_due(ingest *g) {
    if (++g->pending < g->p->commit_every) return PLUMB_OK;
    g->pending = 0;
    plumb_status rc = store_commit(g->db);
    if (!rc) rc = store_begin(g->db);
    return rc;
}

static void count_result(ingest *g, plumb_add_result r) {
    if (r == PLUMB_ADDED) g->st->docs_added++;
    else if (r == PLUMB_REPLACED) g->st->docs_replaced++;
    else g->st->docs_unchanged++;
}

/* Add one document. Inputs were validated (UTF-8 repaired, metadata
** printed by cJSON), so a failure here is the index's (I/O, memory) and
** ends the run: the open transaction is rolled back by the caller. No
** savepoint per document: FTS5 flushes its pending terms at every
** savepoint, which would cost more than the rest of the indexing. */
static plumb_status add_one(ingest *g, const plumb_doc *d, int64_t file_id) {
    plumb_add_result r;
    size_t nch = 0;
    plumb_status rc = store_add_doc(g->db, d, file_id, &r, NULL, &nch);
    if (rc) return rc;
    count_result(g, r);
    g->st->chunks_added += (int64_t)nch;
    return commit_if_due(g);
}

/* The file hash stored in files.hash: hash64 chained over 4 MiB blocks
** (seeded with the previous block's hash), so a file can be hashed as a
** stream; for a file of one block it is hash64(data, n, FILE_SEED). */
#define FILE_SEED 0x66696c65ULL
#define HASH_BLOCK ((size_t)4 << 20)
static uint64_t hash_blocks(const char *d, size_t n) {
    uint64_t h = FILE_SEED;
    size_t i = 0;
    do {
        size_t l = n - i < HASH_BLOCK ? n - i : HASH_BLOCK;
        h = hash64(d + i, l, h);
        i += l;
    } while (i < n);
    return h;
}

/* The same hash, read from the file; 0 or -1 with errno. head[4]
** receives the first bytes (zero-padded), to see a byte order mark. */
static int hash_file(const char *path, char hex[17], int64_t *bytes, unsigned char head[4]) {
    int fd = open_file(path);
    if (fd < 0) return -1;
    char *b = malloc(HASH_BLOCK);
    if (!b) { close(fd); errno = ENOMEM; return -1; }
    uint64_t h = FILE_SEED;
    int64_t total = 0;
    int first = 1;
    memset(head, 0, 4);
    for (;;) {
        ssize_t got = read_full(fd, b, HASH_BLOCK);
        if (got < 0) { int e = errno; free(b); close(fd); errno = e; return -1; }
        if (first) memcpy(head, b, got < 4 ? (size_t)got : 4);
        if (got || first) h = hash64(b, (size_t)got, h);
        first = 0;
        total += got;
        if ((size_t)got < HASH_BLOCK) break;
    }
    free(b);
    close(fd);
    hash64_hex(h, hex);
    *bytes = total;
    return 0;
}

/* Make s[0..n) fit for the index, reporting what was done with `where`
** (file, or file:line) and offsets from `base`: invalid UTF-8 becomes
** U+FFFD and NUL bytes are dropped (utf8_repair). Returns s itself when it
** was fine, else fixed->p (fixed->len bytes), or NULL on OOM. */
static const char *clean_utf8(ingest *g, const char *where, const char *of, const char *s,
                              size_t n, size_t base, buf *fixed, size_t *out_n) {
    size_t bad_at = utf8_check(s, n);
    const char *nul = memchr(s, 0, n);
    *out_n = n;
    if (bad_at == n && !nul) return s;
    size_t nnul = 0;
    for (const char *q = nul; q; q = memchr(q + 1, 0, n - (size_t)(q + 1 - s))) nnul++;
    buf_reset(fixed);
    size_t first;
    size_t nrep = utf8_repair(s, n, fixed, &first) - nnul;
    if (fixed->oom) return NULL;
    if (bad_at < n)
        say(g, PLUMB_MSG_WARN, "%s: invalid UTF-8 at byte %zu%s (%zu sequence%s replaced with "
            "U+FFFD)", where, base + bad_at, of, nrep, nrep == 1 ? "" : "s");
    if (nul)
        say(g, PLUMB_MSG_WARN, "%s: NUL byte at byte %zu%s (%zu NUL byte%s dropped)", where,
            base + (size_t)(nul - s), of, nnul, nnul == 1 ? "" : "s");
    *out_n = fixed->len;
    return fixed->p ? fixed->p : "";
}

/* One JSONL line (NUL-terminated at s[len], ours to modify). */
static plumb_status do_line(ingest *g, const fent *f, size_t line, const char *s, size_t len,
                            int64_t file_id, int64_t *ndocs, buf *fixed, buf *where) {
    plumb_status rc = PLUMB_OK;
    size_t k = 0;
    while (k < len && (s[k] == ' ' || s[k] == '\t')) k++;
    if (k == len) return PLUMB_OK; /* blank line */
    buf_reset(where);
    buf_printf(where, "%s:%zu", f->path, line);
    const char *ok = clean_utf8(g, where->p, " of the line", s, len, 0, fixed, &len);
    if (!ok) return err_set(PLUMB_NOMEM, "repair");
    json_rec j;
    json_rec_status js = json_rec_parse(ok, &j);
    if (js == JSON_REC_NOMEM) { json_rec_free(&j); return err_set(PLUMB_NOMEM, "JSONL"); }
    if (j.nul_escapes)
        say(g, PLUMB_MSG_WARN, "%s: %zu \\u0000 escape%s dropped (the index holds no NUL)",
            where->p, j.nul_escapes, j.nul_escapes == 1 ? "" : "s");
    if (js != JSON_REC_OK) {
        g->st->bad_records++;
        if (js == JSON_REC_NOT_OBJECT)
            say(g, PLUMB_MSG_WARN, "%s: malformed JSON (not an object); line skipped", where->p);
        else
            say(g, PLUMB_MSG_WARN, "%s: malformed JSON%s near column %zu; line skipped",
                where->p, js == JSON_REC_TRAILING ? " (text after the object)" : "", j.err_col);
        json_rec_free(&j);
        return PLUMB_OK;
    }
    if (!j.id) {
        g->st->bad_records++;
        say(g, PLUMB_MSG_WARN, "%s: record has no \"_id\" (string); line skipped", where->p);
        json_rec_free(&j);
        return PLUMB_OK;
    }
    if (j.text_bad || j.title_bad) {
        g->st->bad_records++;
        say(g, PLUMB_MSG_WARN, "%s: \"%s\" of '%s' is not a string; line skipped", where->p,
            j.text_bad ? "text" : "title", j.id);
        json_rec_free(&j);
        return PLUMB_OK;
    }
    int dup = 0;
    rc = store_seen_add(g->db, j.id, &dup);
    if (rc) { json_rec_free(&j); return rc; }
    if (dup)
        say(g, PLUMB_MSG_WARN, "%s: duplicate _id '%s' in this file; the later record wins",
            where->p, j.id);
    plumb_doc d = {j.id, j.title, j.text, j.metadata, where->p};
    rc = add_one(g, &d, file_id);
    if (!rc) (*ndocs)++;
    json_rec_free(&j);
    return rc;
}

/* One pass over a JSONL file, line by line in blocks: any size, bounded
** memory (one block plus the longest line; lines over MAX_LINE are
** skipped). The blocks are hashed as hash_file does: *changed is set when
** the bytes read are not those hashed before (`expect`), or the file's
** stat moved during the pass; `got` receives their hash. A file that
** vanished or cannot be read to its end sets *cut (reported): the
** records before the failure stay, the rest is not indexed. */
#define BLOCK HASH_BLOCK
#define MAX_LINE ((size_t)256 << 20)
static plumb_status do_jsonl(ingest *g, const fent *f, int64_t file_id, int64_t *ndocs,
                             const char *expect, char got[17], int *changed, int *cut,
                             struct stat *sb) {
    *changed = *cut = 0;
    plumb_status rc = store_seen_reset(g->db);
    if (rc) return rc;
    int fd = open_file(f->path);
    struct stat sb0;
    if (fd < 0 || fstat(fd, &sb0) != 0) {
        say(g, PLUMB_MSG_WARN, "%s: cannot read: %s", f->path, read_error(errno));
        if (fd >= 0) close(fd);
        *cut = 1;
        return PLUMB_OK;
    }
    buf fixed = {0}, where = {0}, acc = {0};
    size_t line = 0;
    int64_t off = 0;
    int skipping = 0; /* inside an over-long line */
    uint64_t h = FILE_SEED;
    char *blk = malloc(BLOCK);
    if (!blk) rc = err_set(PLUMB_NOMEM, "%s: read buffer", f->path);
    for (;;) {
        if (rc) break;
        ssize_t r = read_full(fd, blk, BLOCK);
        if (r < 0) {
            say(g, PLUMB_MSG_WARN, "%s: read error at byte %lld: %s; the rest of the file is "
                "not indexed (it is read again by the next run)", f->path, (long long)off,
                strerror(errno));
            *cut = 1;
            break;
        }
        if (r || off == 0) h = hash64(blk, (size_t)r, h);
        off += r;
        size_t n = (size_t)r, pos = 0;
        while (!rc && pos < n) {
            char *nl = memchr(blk + pos, '\n', n - pos);
            size_t take = nl ? (size_t)(nl - (blk + pos)) : n - pos;
            if (!skipping) {
                if (acc.len + take > MAX_LINE) {
                    skipping = 1;
                    g->st->bad_records++;
                    say(g, PLUMB_MSG_WARN, "%s:%zu: line longer than %zu MiB; skipped", f->path,
                        line + 1, MAX_LINE >> 20);
                    buf_reset(&acc);
                } else {
                    buf_append(&acc, blk + pos, take);
                    if (acc.oom) { rc = err_set(PLUMB_NOMEM, "%s: line %zu", f->path, line + 1); break; }
                }
            }
            pos += take;
            if (!nl) break; /* the line continues in the next block */
            pos++;
            line++;
            if (!skipping) {
                char *sl = acc.p ? acc.p : (char *)"";
                size_t len = acc.len;
                if (len && sl[len - 1] == '\r') sl[--len] = 0;
                rc = do_line(g, f, line, sl, len, file_id, ndocs, &fixed, &where);
                if ((line & 255) == 0) report(g, 0);
            }
            skipping = 0;
            buf_reset(&acc);
        }
        if ((size_t)r < BLOCK) { /* end of file: a last line without a newline */
            if (!rc && !skipping && acc.len) {
                line++;
                size_t len = acc.len;
                if (acc.p[len - 1] == '\r') acc.p[--len] = 0;
                rc = do_line(g, f, line, acc.p, len, file_id, ndocs, &fixed, &where);
            }
            break;
        }
    }
    if (!rc && !*cut) {
        hash64_hex(h, got);
        *changed = strcmp(got, expect) != 0 || fstat(fd, sb) != 0 || !same_stat(&sb0, sb);
    }
    close(fd);
    free(blk);
    buf_free(&acc);
    buf_free(&fixed);
    buf_free(&where);
    return rc;
}

/* A JSONL file, read until one pass sees the bytes the pass before it saw
** (the first pass is hashing, in do_file). */
static plumb_status index_jsonl(ingest *g, const fent *f, int64_t file_id, char hex[17],
                                int64_t *ndocs, struct stat *sb, int *complete) {
    plumb_status rc = PLUMB_OK;
    *complete = 0;
    for (int attempt = 1;; attempt++) {
        char got[17];
        int changed = 0, cut = 0;
        *ndocs = 0;
        rc = do_jsonl(g, f, file_id, ndocs, hex, got, &changed, &cut, sb);
        if (rc || cut) return rc;
        if (!changed) break;
        if (attempt == READ_TRIES) {
            say(g, PLUMB_MSG_WARN, "%s: changed while being read, %d times; its records were "
                "indexed as read (each one whole) and the file is read again by the next run",
                f->path, READ_TRIES);
            return PLUMB_OK;
        }
        memcpy(hex, got, 17);
    }
    if (g->p->prune) {
        int64_t gone = 0;
        rc = store_prune_unseen(g->db, file_id, &gone);
        g->st->docs_deleted += gone;
    }
    *complete = !rc;
    return rc;
}

/* Text for a text, Markdown or HTML file: UTF-16 decoded by its byte order
** mark, a UTF-8 mark dropped, then clean_utf8. NULL on OOM. */
static const char *file_text(ingest *g, const fent *f, const char *data, size_t n, buf *u16,
                             buf *fixed, size_t *out_n) {
    const unsigned char *u = (const unsigned char *)data;
    if (n >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF))) {
        int be = u[0] == 0xFE;
        size_t first;
        size_t nbad = utf16_to_utf8(data + 2, n - 2, be, u16, &first);
        if (u16->oom) return NULL;
        if (nbad)
            say(g, PLUMB_MSG_WARN, "%s: invalid UTF-16%s at byte %zu (%zu code unit%s replaced "
                "with U+FFFD or, for U+0000, dropped)", f->path, be ? "BE" : "LE", first + 2,
                nbad, nbad == 1 ? "" : "s");
        *out_n = u16->len;
        return u16->p ? u16->p : "";
    }
    size_t base = n >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
    return clean_utf8(g, f->path, "", data + base, n - base, base, fixed, out_n);
}

static int utf16_mark(const unsigned char *u, size_t n) {
    return n >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF));
}

static plumb_status do_file(ingest *g, const fent *f) {
    plumb_status rc = PLUMB_OK;
    char *data = NULL;
    size_t n = 0;
    buf pdf = {0}, fixed = {0}, u16 = {0};
    struct stat sb;
    g->prog.current = f->path;
    report(g, 0);

    if (f->k == K_PDF) {
        if (g->pdftotext < 0) g->pdftotext = has_prog("pdftotext");
        if (!g->pdftotext) {
            g->st->files_skipped++;
            if (!g->pdf_warned++)
                say(g, PLUMB_MSG_WARN, "%s: skipped: PDF needs the pdftotext program, which is "
                    "not installed (Debian/Ubuntu: apt-get install poppler-utils); further PDFs "
                    "are skipped silently", f->path);
            goto done;
        }
    }
    char hex[17];
    if (f->k == K_JSONL) { /* streamed: hash now, read the lines later if changed */
        int64_t nb = 0;
        unsigned char head[4];
        if (hash_file(f->path, hex, &nb, head) != 0) {
            g->st->files_skipped++;
            say(g, PLUMB_MSG_WARN, "%s: cannot read: %s", f->path, read_error(errno));
            goto done;
        }
        g->st->bytes_read += nb;
        if (utf16_mark(head, (size_t)nb)) {
            g->st->files_skipped++;
            say(g, PLUMB_MSG_WARN, "%s: skipped (UTF-16: it starts with a UTF-16 byte order "
                "mark; JSONL must be UTF-8)", f->path);
            goto done;
        }
    } else {
        /* a document is one version of the file: read again while it changes */
        for (int attempt = 1;; attempt++) {
            int changed = 0;
            if (read_all(f->path, &data, &n, &sb, &changed) != 0) {
                g->st->files_skipped++;
                say(g, PLUMB_MSG_WARN, "%s: cannot read: %s", f->path, read_error(errno));
                goto done;
            }
            g->st->bytes_read += (int64_t)n;
            hash64_hex(hash_blocks(data, n), hex);
            if (!changed && racy(&sb)) { /* still now, or just too fast for the clock? */
                char again[17];
                int64_t nb;
                unsigned char head[4];
                changed = hash_file(f->path, again, &nb, head) != 0 || strcmp(again, hex) != 0;
            }
            if (!changed) break;
            free(data);
            data = NULL;
            if (attempt == READ_TRIES) {
                g->st->files_skipped++;
                say(g, PLUMB_MSG_WARN, "%s: skipped (changed while being read, %d times; the "
                    "index keeps what it had of it, and the next run reads it again)", f->path,
                    READ_TRIES);
                goto done;
            }
        }
    }
    store_file rec;
    if ((rc = store_file_get(g->db, f->path, &rec))) goto done;
    if (rec.id && !strcmp(rec.hash, hex)) {
        g->st->files_unchanged++;
        goto done;
    }

    if (f->k != K_JSONL && f->k != K_PDF && !utf16_mark((const unsigned char *)data, n)) {
        size_t sniff = n < SNIFF_BYTES ? n : SNIFF_BYTES;
        if (memchr(data, 0, sniff)) {
            g->st->files_skipped++;
            say(g, PLUMB_MSG_WARN, "%s: skipped (binary file: NUL byte in the first %zu bytes)",
                f->path, sniff);
            goto done;
        }
    }
    if (f->k == K_PDF) {
        int status = 0;
        if (pdf_text(f->path, &pdf, &status) != 0 || status != 0 || pdf.oom) {
            g->st->files_skipped++;
            say(g, PLUMB_MSG_WARN, "%s: pdftotext failed (exit status %d); skipped", f->path, status);
            goto done;
        }
    }
    /* record the file first, with an empty hash: see HOW IT WORKS, 2 */
    int64_t file_id = 0, ndocs = 0;
    if ((rc = store_file_put(g->db, f->path, f->size, f->mtime, "", 0, &file_id))) goto done;

    if (f->k == K_JSONL) {
        int complete = 0;
        rc = index_jsonl(g, f, file_id, hex, &ndocs, &sb, &complete);
        if (rc || !complete) {
            if (!rc) g->st->files_skipped++;
            goto done; /* the file keeps its empty hash */
        }
    } else {
        size_t sn;
        const char *src = f->k == K_PDF
                              ? clean_utf8(g, f->path, "", pdf.p ? pdf.p : "", pdf.len, 0, &fixed, &sn)
                              : file_text(g, f, data, n, &u16, &fixed, &sn);
        if (!src) {
            rc = err_set(PLUMB_NOMEM, "%s: repair", f->path);
            goto done;
        }
        buf_reset(&g->title);
        buf_reset(&g->text);
        int prc = 0;
        if (f->k == K_HTML) prc = parse_html(src, sn, &g->title, &g->text);
        else if (f->k == K_MD) prc = parse_markdown(src, sn, &g->title, &g->text);
        if (prc || g->title.oom || g->text.oom) {
            rc = err_set(PLUMB_NOMEM, "%s: parse", f->path);
            goto done;
        }
        /* plain text is indexed as it is (src is NUL-terminated and has no
        ** NUL inside): no copy, which matters for a file of a gigabyte */
        const char *text = f->k == K_HTML || f->k == K_MD ? g->text.p ? g->text.p : "" : src;
        if (!g->title.len) {
            size_t bl;
            const char *b = base_name(f->path, &bl);
            buf_append(&g->title, b, bl);
        }
        plumb_doc d = {f->path, g->title.p, text, NULL, f->path};
        rc = add_one(g, &d, file_id);
        ndocs = 1;
    }
    /* size and time as read (the walk's may be older) */
    if (!rc) rc = store_file_put(g->db, f->path, (int64_t)sb.st_size, (int64_t)sb.st_mtime, hex,
                                 ndocs, NULL);
    if (!rc) g->st->files_indexed++;
done:
    free(data);
    buf_free(&pdf);
    buf_free(&fixed);
    buf_free(&u16);
    g->prog.files_done++;
    g->prog.bytes_done += f->size;
    return rc;
}

/* ---------------------------------------------------------------- */
/* Driver                                                             */
/* ---------------------------------------------------------------- */

static plumb_status prune_root(ingest *g, const char *root) {
    int64_t *ids = NULL;
    char **paths = NULL;
    size_t n = 0;
    plumb_status rc = store_files_unseen(g->db, root, &ids, &paths, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        int64_t nd = 0;
        rc = store_file_delete(g->db, ids[i], &nd);
        if (rc) break;
        g->st->files_pruned++;
        g->st->docs_deleted += nd;
        say(g, PLUMB_MSG_INFO, "%s: gone; removed %lld document%s", paths[i], (long long)nd,
            nd == 1 ? "" : "s");
    }
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
    free(ids);
    return rc;
}

plumb_status ingest_paths(plumb_db *db, const char *const *paths, int npaths,
                          const plumb_index_params *p, plumb_index_stats *st) {
    ingest g = {0};
    g.db = db;
    g.p = p;
    g.st = st;
    g.pdftotext = -1;
    g.t0 = now_s();
    plumb_status rc = PLUMB_OK, missing = PLUMB_OK;
    char **roots = calloc((size_t)npaths + 1, sizeof *roots);
    if (!roots) return err_set(PLUMB_NOMEM, "index");
    char first_missing[1024] = "";

    rc = store_begin(db);
    if (!rc) rc = store_walk_reset(db);
    for (int i = 0; !rc && i < npaths; i++) {
        char *real = realpath(paths[i], NULL);
        if (!real) {
            int e = errno;
            say(&g, PLUMB_MSG_ERROR, "%s: %s", paths[i], strerror(e));
            if (!missing) {
                missing = e == ENOENT ? PLUMB_NOTFOUND : PLUMB_IO;
                snprintf(first_missing, sizeof first_missing, "%s: %s", paths[i], strerror(e));
            }
            /* a vanished explicit path is still pruned, by its absolute name */
            if (p->prune && paths[i][0] == '/') roots[i] = strdup(paths[i]);
            continue;
        }
        roots[i] = real;
        struct stat sb;
        if (stat(real, &sb) != 0) {
            say(&g, PLUMB_MSG_ERROR, "%s: %s", paths[i], strerror(errno));
            continue;
        }
        if (S_ISDIR(sb.st_mode)) rc = walk_dir(&g, real, &sb, 0);
        else if (S_ISREG(sb.st_mode)) rc = add_file(&g, real, &sb);
        else say(&g, PLUMB_MSG_WARN, "%s: skipped (not a regular file or directory)", paths[i]);
    }
    g.prog.files_total = (int64_t)g.nf;
    g.prog.bytes_total = g.bytes_total;
    report(&g, 1);
    for (size_t i = 0; !rc && i < g.nf; i++) rc = do_file(&g, &g.f[i]);
    if (!rc && p->prune)
        for (int i = 0; !rc && i < npaths; i++)
            if (roots[i]) rc = prune_root(&g, roots[i]);
    if (!rc) rc = store_commit(db);
    else {
        /* keep what the earlier commits saved; drop only the open part */
        plumb_status keep = rc;
        char m[1024];
        snprintf(m, sizeof m, "%s", plumb_errmsg());
        store_rollback(db);
        rc = err_set(keep, "%s", m);
    }
    st->elapsed_s = now_s() - g.t0;
    g.prog.current = NULL;
    report(&g, 1);

    for (size_t i = 0; i < g.nf; i++) free(g.f[i].path);
    free(g.f);
    free(g.dirs);
    free(g.walked);
    for (int i = 0; i < npaths; i++) free(roots[i]);
    free(roots);
    buf_free(&g.msg);
    buf_free(&g.title);
    buf_free(&g.text);
    if (!rc && missing) rc = err_set(missing, "%s", first_missing);
    return rc;
}
