/*
** eval.c -- retrieval evaluation: judgments, queries and run files in,
** trec_eval's metrics per query and per stage out, paired significance
** tests between stages or runs.
**
** Invariants. Every ranking that reaches eval_measure() is in trec_eval's
** order (score descending, ties by document id in descending strcmp order)
** and holds each document once; a document's score is its best chunk's
** (MaxP). Means are over the queries with at least one judgment >= 1, and
** every stage of a result is evaluated on the same queries in the same
** order, so per-query figures line up for comparisons. plumb.h
** ("Evaluation") is the reference for the definitions and where they
** differ from trec_eval's defaults.
**
** Workload. BEIR-sized collections: hundreds to a few thousand queries,
** tens of thousands of judgments, rankings of 1,000 documents per query
** and stage. Files are read whole into memory; ids are interned once (a
** string pool plus an open-addressing map), so a 1000-deep run of 300
** queries costs 300k pointers and one copy of each distinct document id.
** Searching dominates: the searches of a stage run once on the calling
** thread, timed per query, and once more with OpenMP over all queries to
** measure throughput and to check that the parallel answers are the same.
*/
#include "plumb_impl.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define EVAL_MAX_K 10000     /* plumb_search's largest k */
#define EVAL_MAX_REL 1000000 /* judgment values beyond +-this are malformed */

/* ---------------------------------------------------------------- */
/* 1. String pool and string map                                      */
/* ---------------------------------------------------------------- */

/* Strings that live as long as their owner: blocks of at least 64 KiB,
** never moved, freed together. */
typedef struct spool_blk {
    struct spool_blk *next;
    size_t used, cap; /* bytes */
    char data[];
} spool_blk;

typedef struct spool {
    spool_blk *head;
} spool;

static const char *spool_dup(spool *p, const char *s, size_t n) {
    spool_blk *b = p->head;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > 65536 ? n + 1 : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = p->head;
        p->head = b;
    }
    char *d = b->data + b->used;
    memcpy(d, s, n);
    d[n] = 0;
    b->used += n + 1;
    return d;
}

static void spool_free(spool *p) {
    while (p->head) {
        spool_blk *b = p->head;
        p->head = b->next;
        free(b);
    }
}

/* Open addressing, linear probing, power-of-two capacity, at most half
** full. Keys are NUL-terminated strings owned elsewhere (a spool). */
typedef struct strmap {
    size_t cap, n;
    const char **key;
    size_t *val;
} strmap;

static size_t strmap_slot(const strmap *m, const char *s, size_t n) {
    size_t i = (size_t)hash64(s, n, 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->key[i] && !(memcmp(m->key[i], s, n) == 0 && m->key[i][n] == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* 1 and *val when s[0..n) is a key, else 0. */
static int strmap_get(const strmap *m, const char *s, size_t n, size_t *val) {
    if (!m->cap) return 0;
    size_t i = strmap_slot(m, s, n);
    if (!m->key[i]) return 0;
    if (val) *val = m->val[i];
    return 1;
}

/* Insert a key known to be absent. Returns -1 on OOM. */
static int strmap_put(strmap *m, const char *key, size_t val) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        const char **k = calloc(cap, sizeof *k);
        size_t *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return -1;
        }
        strmap old = *m;
        m->cap = cap;
        m->key = k;
        m->val = v;
        for (size_t i = 0; i < old.cap; i++)
            if (old.key[i]) {
                size_t j = strmap_slot(m, old.key[i], strlen(old.key[i]));
                m->key[j] = old.key[i];
                m->val[j] = old.val[i];
            }
        free(old.key);
        free(old.val);
    }
    size_t i = strmap_slot(m, key, strlen(key));
    m->key[i] = key;
    m->val[i] = val;
    m->n++;
    return 0;
}

static void strmap_free(strmap *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* Grow *arr (elements of `size` bytes) to hold at least `need`. */
static int grow(void **arr, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / size) return -1;
        c *= 2;
    }
    void *p = realloc(*arr, c * size);
    if (!p) return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- */
/* 2. Reading files line by line, reporting what is wrong             */
/* ---------------------------------------------------------------- */

typedef struct reader_ctx {
    const char *path;
    plumb_message_fn message;
    void *arg;
    plumb_load_stats *st;
} reader_ctx;

static void say(plumb_message_fn message, void *arg, plumb_msg_level lv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(plumb_message_fn message, void *arg, plumb_msg_level lv, const char *fmt, ...) {
    if (!message) return;
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    message(arg, lv, m);
}

/* Report a malformed line and count it. */
static void bad_line(reader_ctx *c, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad_line(reader_ctx *c, int64_t line, const char *fmt, ...) {
    c->st->malformed++;
    if (!c->message) return;
    char what[768], m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(m, sizeof m, "%s:%lld: %s", c->path, (long long)line, what);
    c->message(c->arg, PLUMB_MSG_WARN, m);
}

/* Read the whole file; *out is NUL-terminated (free() it). */
static plumb_status slurp(const char *path, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errno == ENOENT ? PLUMB_NOTFOUND : PLUMB_IO, "cannot open '%s': %s", path,
                       strerror(errno));
    char *p = NULL;
    size_t n = 0, cap = 0;
    plumb_status rc = PLUMB_OK;
    for (;;) {
        if (grow((void **)&p, &cap, n + 65537, 1)) {
            rc = err_set(PLUMB_NOMEM, "reading '%s'", path);
            break;
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) rc = err_set(PLUMB_IO, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(p);
        return rc;
    }
    p[n] = 0;
    *out = p;
    *len = n;
    return PLUMB_OK;
}

/* Next line of buf[*pos..len): NUL-terminates it in place (dropping a
** trailing '\r') and returns it, or NULL at the end. */
static char *next_line(char *b, size_t len, size_t *pos, size_t *n) {
    if (*pos >= len) return NULL;
    char *s = b + *pos;
    char *nl = memchr(s, '\n', len - *pos);
    size_t l = nl ? (size_t)(nl - s) : len - *pos;
    *pos += l + (nl ? 1 : 0);
    s[l] = 0;
    if (l && s[l - 1] == '\r') s[--l] = 0;
    *n = l;
    return s;
}

/* Split s on spaces and tabs into at most max fields; returns the count
** (max + 1 when there are more). Fields are NUL-terminated in place. */
static int split_fields(char *s, char **f, int max) {
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) return n;
        if (n == max) return max + 1;
        f[n++] = s;
        while (*s && *s != ' ' && *s != '\t') s++;
        if (!*s) return n;
        *s++ = 0;
    }
}

static int parse_int(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int blank_or_comment(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return *s == 0 || *s == '#';
}

/* ---------------------------------------------------------------- */
/* 3. Judgments                                                       */
/* ---------------------------------------------------------------- */

typedef struct judg {
    const char *doc;
    int rel;
    int64_t line; /* where it was read; the later line wins a repeat */
} judg;

typedef struct qrel_q {
    const char *id;
    judg *j;       /* sorted by doc (strcmp) once loaded */
    size_t n, cap;
    int nrel;      /* judgments >= 1 */
    int *ideal;    /* the nrel values >= 1, highest first */
} qrel_q;

struct plumb_qrels {
    spool sp;
    strmap qmap; /* id -> index in q */
    qrel_q *q;   /* in order of first appearance */
    size_t nq, cap;
    size_t njudg, nrel;
};

static int cmp_judg(const void *x, const void *y) {
    const judg *a = x, *b = y;
    int c = strcmp(a->doc, b->doc);
    if (c) return c;
    return (a->line > b->line) - (a->line < b->line);
}

static int cmp_int_desc(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return (a < b) - (a > b);
}

void plumb_qrels_free(plumb_qrels *q) {
    if (!q) return;
    for (size_t i = 0; i < q->nq; i++) {
        free(q->q[i].j);
        free(q->q[i].ideal);
    }
    free(q->q);
    strmap_free(&q->qmap);
    spool_free(&q->sp);
    free(q);
}

/* Sort each query's judgments, resolve repeats (the later line wins),
** and precompute the ideal gains. */
static plumb_status qrels_finish(plumb_qrels *q, reader_ctx *c) {
    for (size_t i = 0; i < q->nq; i++) {
        qrel_q *r = &q->q[i];
        qsort(r->j, r->n, sizeof *r->j, cmp_judg);
        size_t w = 0;
        for (size_t k = 0; k < r->n; k++) {
            if (w && strcmp(r->j[w - 1].doc, r->j[k].doc) == 0) {
                c->st->duplicates++;
                say(c->message, c->arg, PLUMB_MSG_WARN,
                    "%s:%lld: query '%.100s' judges document '%.100s' again (first on line "
                    "%lld); the later judgment is kept",
                    c->path, (long long)r->j[k].line, r->id, r->j[k].doc,
                    (long long)r->j[w - 1].line);
                r->j[w - 1] = r->j[k];
            } else {
                r->j[w++] = r->j[k];
            }
        }
        r->n = w;
        r->nrel = 0;
        for (size_t k = 0; k < r->n; k++) r->nrel += r->j[k].rel >= 1;
        if (r->nrel) {
            r->ideal = malloc((size_t)r->nrel * sizeof *r->ideal);
            if (!r->ideal) return err_set(PLUMB_NOMEM, "qrels");
            int m = 0;
            for (size_t k = 0; k < r->n; k++)
                if (r->j[k].rel >= 1) r->ideal[m++] = r->j[k].rel;
            qsort(r->ideal, (size_t)m, sizeof *r->ideal, cmp_int_desc);
        }
        q->njudg += r->n;
        q->nrel += (size_t)r->nrel;
    }
    c->st->records = (int64_t)q->njudg;
    return PLUMB_OK;
}

plumb_status plumb_qrels_load(const char *path, plumb_message_fn message, void *arg,
                              plumb_qrels **out, plumb_load_stats *stats) {
    err_clear();
    plumb_load_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!out) return err_set(PLUMB_MISUSE, "plumb_qrels_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return err_set(PLUMB_MISUSE, "plumb_qrels_load: path is NULL or empty");
    char *text = NULL;
    size_t len = 0, pos = 0, n;
    plumb_qrels *q = calloc(1, sizeof *q);
    reader_ctx c = {path, message, arg, stats};
    int seen_record = 0;
    plumb_status rc = q ? slurp(path, &text, &len) : err_set(PLUMB_NOMEM, "qrels");
    if (rc) goto done;
    char *s;
    while ((s = next_line(text, len, &pos, &n))) {
        stats->lines++;
        if (blank_or_comment(s)) continue;
        char *f[4];
        int nf = split_fields(s, f, 4);
        int first = !seen_record;
        seen_record = 1;
        if (nf != 3 && nf != 4) {
            bad_line(&c, stats->lines,
                     "expected 3 fields (BEIR: query-id corpus-id score) or 4 (TREC: qid "
                     "iter docid rel), found %s%d",
                     nf > 4 ? "more than " : "", nf > 4 ? 4 : nf);
            continue;
        }
        const char *qid = f[0], *did = f[nf - 2], *rs = f[nf - 1];
        long rel;
        if (parse_int(rs, &rel)) {
            if (first) continue; /* a header line such as "query-id corpus-id score" */
            bad_line(&c, stats->lines, "relevance '%.40s' is not an integer", rs);
            continue;
        }
        if (rel < -EVAL_MAX_REL || rel > EVAL_MAX_REL) {
            bad_line(&c, stats->lines, "relevance %ld is out of range", rel);
            continue;
        }
        size_t qi;
        if (!strmap_get(&q->qmap, qid, strlen(qid), &qi)) {
            const char *id = spool_dup(&q->sp, qid, strlen(qid));
            if (!id || grow((void **)&q->q, &q->cap, q->nq + 1, sizeof *q->q) ||
                strmap_put(&q->qmap, id, q->nq)) {
                rc = err_set(PLUMB_NOMEM, "qrels");
                goto done;
            }
            qi = q->nq++;
            memset(&q->q[qi], 0, sizeof q->q[qi]);
            q->q[qi].id = id;
        }
        qrel_q *r = &q->q[qi];
        const char *doc = spool_dup(&q->sp, did, strlen(did));
        if (!doc || grow((void **)&r->j, &r->cap, r->n + 1, sizeof *r->j)) {
            rc = err_set(PLUMB_NOMEM, "qrels");
            goto done;
        }
        r->j[r->n++] = (judg){doc, (int)rel, stats->lines};
    }
    rc = qrels_finish(q, &c);
    if (!rc && q->njudg == 0)
        rc = err_set(PLUMB_CORRUPT, "'%s' holds no valid judgment (%lld lines, %lld malformed)",
                     path, (long long)stats->lines, (long long)stats->malformed);
done:
    free(text);
    if (rc) {
        plumb_qrels_free(q);
        return rc;
    }
    *out = q;
    return PLUMB_OK;
}

size_t plumb_qrels_queries(const plumb_qrels *q) { return q ? q->nq : 0; }
size_t plumb_qrels_judgments(const plumb_qrels *q) { return q ? q->njudg : 0; }
size_t plumb_qrels_relevant(const plumb_qrels *q) { return q ? q->nrel : 0; }

/* The judgment value of `doc` for this query, 0 when not judged. */
static int qrel_value(const qrel_q *r, const char *doc) {
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->j[mid].doc, doc);
        if (c == 0) return r->j[mid].rel;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static const qrel_q *qrels_find(const plumb_qrels *q, const char *id) {
    size_t i;
    return strmap_get(&q->qmap, id, strlen(id), &i) ? &q->q[i] : NULL;
}

int eval_judgment(const plumb_qrels *q, const char *qid, const char *doc) {
    const qrel_q *r = qrels_find(q, qid);
    return r ? qrel_value(r, doc) : 0;
}

void eval_ideal(const plumb_qrels *q, const char *qid, const int **ideal, size_t *n) {
    const qrel_q *r = qrels_find(q, qid);
    *ideal = r ? r->ideal : NULL;
    *n = r ? (size_t)r->nrel : 0;
}

/* ---------------------------------------------------------------- */
/* 4. Queries                                                         */
/* ---------------------------------------------------------------- */

typedef struct query_rec {
    const char *id, *text;
} query_rec;

struct plumb_queries {
    spool sp;
    strmap map;
    query_rec *q;
    size_t n, cap;
};

void eval_query_at(const plumb_queries *q, size_t i, const char **id, const char **text) {
    *id = q->q[i].id;
    *text = q->q[i].text;
}

void plumb_queries_free(plumb_queries *q) {
    if (!q) return;
    free(q->q);
    strmap_free(&q->map);
    spool_free(&q->sp);
    free(q);
}

size_t plumb_queries_count(const plumb_queries *q) { return q ? q->n : 0; }

plumb_status plumb_queries_load(const char *path, plumb_message_fn message, void *arg,
                                plumb_queries **out, plumb_load_stats *stats) {
    err_clear();
    plumb_load_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!out) return err_set(PLUMB_MISUSE, "plumb_queries_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return err_set(PLUMB_MISUSE, "plumb_queries_load: path is NULL or empty");
    char *text = NULL;
    size_t len = 0, pos = 0, n;
    plumb_queries *q = calloc(1, sizeof *q);
    reader_ctx c = {path, message, arg, stats};
    plumb_status rc = q ? slurp(path, &text, &len) : err_set(PLUMB_NOMEM, "queries");
    if (rc) goto done;
    char *s;
    while ((s = next_line(text, len, &pos, &n))) {
        stats->lines++;
        if (s[strspn(s, " \t")] == 0) continue;
        json_rec j;
        json_rec_status js = json_rec_parse(s, &j);
        const char *ids = j.id;
        if (js == JSON_REC_NOMEM) {
            json_rec_free(&j);
            rc = err_set(PLUMB_NOMEM, "queries");
            goto done;
        }
        if (js == JSON_REC_MALFORMED)
            bad_line(&c, stats->lines, "invalid JSON near byte %ld", (long)j.err_col);
        else if (js == JSON_REC_TRAILING)
            bad_line(&c, stats->lines, "text after the JSON object at byte %ld", (long)j.err_col);
        else if (js == JSON_REC_NOT_OBJECT)
            bad_line(&c, stats->lines, "expected a JSON object");
        else if (!ids || !*ids)
            bad_line(&c, stats->lines, "no \"_id\" string");
        else if (!j.text)
            bad_line(&c, stats->lines, "query '%.100s' has no \"text\" string", ids);
        else if (utf8_check(j.text, strlen(j.text)) != strlen(j.text))
            bad_line(&c, stats->lines, "query '%.100s': text is not valid UTF-8", ids);
        else if (strmap_get(&q->map, ids, strlen(ids), NULL)) {
            stats->duplicates++;
            say(message, arg, PLUMB_MSG_WARN,
                "%s:%lld: query id '%.100s' repeats an earlier line; the first is kept", path,
                (long long)stats->lines, ids);
        } else {
            const char *idc = spool_dup(&q->sp, ids, strlen(ids));
            const char *txc = spool_dup(&q->sp, j.text, strlen(j.text));
            if (!idc || !txc || grow((void **)&q->q, &q->cap, q->n + 1, sizeof *q->q) ||
                strmap_put(&q->map, idc, q->n)) {
                json_rec_free(&j);
                rc = err_set(PLUMB_NOMEM, "queries");
                goto done;
            }
            q->q[q->n++] = (query_rec){idc, txc};
            stats->records++;
        }
        json_rec_free(&j);
    }
    if (q->n == 0)
        rc = err_set(PLUMB_CORRUPT, "'%s' holds no valid query (%lld lines, %lld malformed)", path,
                     (long long)stats->lines, (long long)stats->malformed);
done:
    free(text);
    if (rc) {
        plumb_queries_free(q);
        return rc;
    }
    *out = q;
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* 5. Runs                                                            */
/* ---------------------------------------------------------------- */

/* Runs made by the library: the public struct first, so a plumb_run *
** converts back. Document ids point into `sp` or into the owning
** result's pool. */
typedef struct run_impl {
    plumb_run pub;
    spool sp;
} run_impl;

static void run_impl_free(run_impl *r) {
    if (!r) return;
    for (size_t i = 0; i < r->pub.nq; i++) free(r->pub.q[i].doc);
    free(r->pub.q);
    spool_free(&r->sp);
    free(r);
}

void plumb_run_free(plumb_run *run) { run_impl_free((run_impl *)run); }

/* trec_eval's order: score descending, then document id descending. */
static int cmp_trec(const void *x, const void *y) {
    const plumb_run_doc *a = x, *b = y;
    if (a->score > b->score) return -1;
    if (a->score < b->score) return 1;
    return strcmp(b->doc_id, a->doc_id);
}

void eval_sort_ranking(plumb_run_doc *d, size_t n) { qsort(d, n, sizeof *d, cmp_trec); }

typedef struct run_line {
    size_t q;        /* query index */
    const char *doc;
    double score;
    int64_t line;
} run_line;

static int cmp_run_line(const void *x, const void *y) {
    const run_line *a = x, *b = y;
    if (a->q != b->q) return (a->q > b->q) - (a->q < b->q);
    int c = strcmp(a->doc, b->doc);
    if (c) return c;
    return (a->line > b->line) - (a->line < b->line);
}

plumb_status plumb_run_load(const char *path, plumb_message_fn message, void *arg,
                            plumb_run **out, plumb_load_stats *stats) {
    err_clear();
    plumb_load_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!out) return err_set(PLUMB_MISUSE, "plumb_run_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return err_set(PLUMB_MISUSE, "plumb_run_load: path is NULL or empty");
    char *text = NULL;
    size_t len = 0, pos = 0, n, nl = 0, lcap = 0, qcap = 0;
    run_line *lines = NULL;
    strmap qmap = {0};
    int tag_warned = 0;
    run_impl *r = calloc(1, sizeof *r);
    reader_ctx c = {path, message, arg, stats};
    plumb_status rc = r ? slurp(path, &text, &len) : err_set(PLUMB_NOMEM, "run");
    if (rc) goto done;
    char *s;
    while ((s = next_line(text, len, &pos, &n))) {
        stats->lines++;
        if (blank_or_comment(s)) continue;
        char *f[6];
        int nf = split_fields(s, f, 6);
        if (nf != 6) {
            bad_line(&c, stats->lines,
                     "expected 6 fields (qid Q0 docid rank score tag), found %s%d",
                     nf > 6 ? "more than " : "", nf > 6 ? 6 : nf);
            continue;
        }
        char *end;
        errno = 0;
        double score = strtod(f[4], &end);
        if (end == f[4] || *end || !isfinite(score)) {
            bad_line(&c, stats->lines, "score '%.40s' is not a finite number", f[4]);
            continue;
        }
        long rank;
        if (parse_int(f[3], &rank)) {
            bad_line(&c, stats->lines, "rank '%.40s' is not an integer", f[3]);
            continue;
        }
        if (!r->pub.tag) {
            if (!(r->pub.tag = spool_dup(&r->sp, f[5], strlen(f[5])))) goto oom;
        } else if (strcmp(r->pub.tag, f[5]) != 0 && !tag_warned) {
            tag_warned = 1;
            say(message, arg, PLUMB_MSG_INFO,
                "%s:%lld: run tag '%.60s' differs from the first line's '%.60s'; using the first",
                path, (long long)stats->lines, f[5], r->pub.tag);
        }
        size_t qi;
        if (!strmap_get(&qmap, f[0], strlen(f[0]), &qi)) {
            const char *id = spool_dup(&r->sp, f[0], strlen(f[0]));
            if (!id || grow((void **)&r->pub.q, &qcap, r->pub.nq + 1, sizeof *r->pub.q) ||
                strmap_put(&qmap, id, r->pub.nq))
                goto oom;
            qi = r->pub.nq++;
            r->pub.q[qi] = (plumb_run_query){id, 0, NULL};
        }
        const char *doc = spool_dup(&r->sp, f[2], strlen(f[2]));
        if (!doc || grow((void **)&lines, &lcap, nl + 1, sizeof *lines)) goto oom;
        lines[nl++] = (run_line){qi, doc, score, stats->lines};
    }
    if (nl == 0) {
        rc = err_set(PLUMB_CORRUPT, "'%s' holds no valid run line (%lld lines, %lld malformed)",
                     path, (long long)stats->lines, (long long)stats->malformed);
        goto done;
    }
    qsort(lines, nl, sizeof *lines, cmp_run_line);
    for (size_t i = 0; i < nl;) {
        size_t j = i;
        while (j < nl && lines[j].q == lines[i].q) j++;
        plumb_run_query *rq = &r->pub.q[lines[i].q];
        if (!(rq->doc = malloc((j - i) * sizeof *rq->doc))) goto oom;
        for (size_t k = i; k < j; k++) {
            if (rq->n && strcmp(rq->doc[rq->n - 1].doc_id, lines[k].doc) == 0) {
                stats->duplicates++;
                say(message, arg, PLUMB_MSG_WARN,
                    "%s:%lld: query '%.100s' lists document '%.100s' again; the first line "
                    "is kept",
                    path, (long long)lines[k].line, rq->query_id, lines[k].doc);
                continue;
            }
            rq->doc[rq->n++] = (plumb_run_doc){lines[k].doc, lines[k].score};
        }
        stats->records += (int64_t)rq->n;
        eval_sort_ranking(rq->doc, rq->n);
        i = j;
    }
    goto done;
oom:
    rc = err_set(PLUMB_NOMEM, "run");
done:
    free(text);
    free(lines);
    strmap_free(&qmap);
    if (rc) {
        run_impl_free(r);
        return rc;
    }
    *out = &r->pub;
    return PLUMB_OK;
}

/* Shortest "%.*g" that reads back as the same double. */
void eval_fmt_double(char *out, size_t cap, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static int has_space(const char *s) {
    if (!*s) return 1;
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') return 1;
    return 0;
}

plumb_status plumb_run_write(const plumb_run *run, const char *path) {
    err_clear();
    if (!run || !path || !*path) return err_set(PLUMB_MISUSE, "plumb_run_write: NULL argument");
    const char *tag = run->tag && *run->tag ? run->tag : "plumb";
    if (has_space(tag)) return err_set(PLUMB_MISUSE, "run tag '%.100s' contains white space", tag);
    plumb_status rc = PLUMB_OK;
    plumb_run_doc *tmp = NULL;
    size_t tcap = 0;
    char tpath[4200];
    if ((size_t)snprintf(tpath, sizeof tpath, "%s.tmp%ld", path, (long)getpid()) >= sizeof tpath)
        return err_set(PLUMB_MISUSE, "plumb_run_write: path too long");
    FILE *f = fopen(tpath, "w");
    if (!f) return err_set(PLUMB_IO, "cannot create '%s': %s", tpath, strerror(errno));
    for (size_t i = 0; i < run->nq && !rc; i++) {
        const plumb_run_query *q = &run->q[i];
        if (!q->query_id || has_space(q->query_id)) {
            rc = err_set(PLUMB_MISUSE, "query id '%.100s' is empty or contains white space",
                         q->query_id ? q->query_id : "(null)");
            break;
        }
        if (q->n && grow((void **)&tmp, &tcap, q->n, sizeof *tmp)) {
            rc = err_set(PLUMB_NOMEM, "plumb_run_write");
            break;
        }
        if (q->n) memcpy(tmp, q->doc, q->n * sizeof *tmp);
        eval_sort_ranking(tmp, q->n);
        for (size_t k = 0; k < q->n; k++) {
            if (!tmp[k].doc_id || has_space(tmp[k].doc_id)) {
                rc = err_set(PLUMB_MISUSE, "query '%.100s': document id '%.100s' is empty or "
                             "contains white space", q->query_id,
                             tmp[k].doc_id ? tmp[k].doc_id : "(null)");
                break;
            }
            char sc[40];
            eval_fmt_double(sc, sizeof sc, tmp[k].score);
            fprintf(f, "%s Q0 %s %zu %s %s\n", q->query_id, tmp[k].doc_id, k + 1, sc, tag);
        }
    }
    free(tmp);
    int werr = ferror(f);
    if (fclose(f) != 0) werr = 1;
    if (!rc && werr) rc = err_set(PLUMB_IO, "cannot write '%s': %s", tpath, strerror(errno));
    if (!rc && rename(tpath, path) != 0)
        rc = err_set(PLUMB_IO, "cannot rename '%s' to '%s': %s", tpath, path, strerror(errno));
    if (rc) remove(tpath);
    return rc;
}

/* ---------------------------------------------------------------- */
/* 6. Metrics                                                         */
/* ---------------------------------------------------------------- */

static const char *const metric_names[PLUMB_METRIC_COUNT] = {
    "ndcg@10", "recall@10", "recall@100", "recall@1000", "mrr@10", "map@100", "p@10"};

const char *plumb_metric_name(plumb_metric m) {
    return (int)m >= 0 && m < PLUMB_METRIC_COUNT ? metric_names[m] : NULL;
}

int plumb_metric_from_name(const char *name) {
    if (!name) return -1;
    for (int m = 0; m < PLUMB_METRIC_COUNT; m++)
        if (strcasecmp(name, metric_names[m]) == 0) return m;
    return -1;
}

/* HOW IT WORKS. One pass over the ranking in trec_eval's order computes
** every metric: rels[i] is the judgment value of the document at rank i+1
** (0 when not judged). Gains are the values themselves (linear, as
** trec_eval's ndcg_cut); the discount of rank r is log2(r + 1). The ideal
** DCG runs over `ideal`, the query's judgment values >= 1 sorted highest
** first, whether retrieved or not. R = nideal. With R = 0 every metric is
** 0 (callers skip such queries). */
void eval_measure(const int *rels, size_t n, const int *ideal, size_t nideal,
                  double out[PLUMB_METRIC_COUNT]) {
    double dcg10 = 0, idcg10 = 0, ap100 = 0, rr10 = 0;
    size_t rel10 = 0, rel100 = 0, rel1000 = 0, relsofar = 0;
    for (size_t i = 0; i < n && i < 1000; i++) {
        int g = rels[i];
        if (g <= 0) continue;
        relsofar++;
        if (i < 10) {
            dcg10 += g / log2((double)i + 2.0);
            rel10++;
            if (rr10 == 0) rr10 = 1.0 / ((double)i + 1.0);
        }
        if (i < 100) {
            rel100++;
            ap100 += (double)relsofar / ((double)i + 1.0);
        }
        rel1000++;
    }
    for (size_t i = 0; i < nideal && i < 10; i++) idcg10 += ideal[i] / log2((double)i + 2.0);
    memset(out, 0, PLUMB_METRIC_COUNT * sizeof *out);
    if (nideal == 0) return;
    double R = (double)nideal;
    out[PLUMB_METRIC_NDCG10] = idcg10 > 0 ? dcg10 / idcg10 : 0;
    out[PLUMB_METRIC_RECALL10] = (double)rel10 / R;
    out[PLUMB_METRIC_RECALL100] = (double)rel100 / R;
    out[PLUMB_METRIC_RECALL1000] = (double)rel1000 / R;
    out[PLUMB_METRIC_MRR10] = rr10;
    out[PLUMB_METRIC_MAP100] = ap100 / R;
    out[PLUMB_METRIC_P10] = (double)rel10 / 10.0;
}

/* Measure one query's ranking (already in trec_eval order). */
static plumb_status measure_query(const qrel_q *qr, const plumb_run_doc *d, size_t n,
                                  double out[PLUMB_METRIC_COUNT]) {
    size_t m = n < 1000 ? n : 1000;
    int *rels = malloc((m ? m : 1) * sizeof *rels);
    if (!rels) return err_set(PLUMB_NOMEM, "measure");
    for (size_t i = 0; i < m; i++) rels[i] = qrel_value(qr, d[i].doc_id);
    eval_measure(rels, m, qr->ideal, (size_t)qr->nrel, out);
    free(rels);
    return PLUMB_OK;
}

/* Linear interpolation between the order statistics of sorted[0..n):
** q in [0,1]; the q-quantile of n values sits at position q*(n-1). */
double eval_percentile(const double *sorted, size_t n, double q) {
    if (n == 0) return 0;
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n) return sorted[n - 1];
    double frac = pos - (double)lo;
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* ---------------------------------------------------------------- */
/* 7. Results                                                         */
/* ---------------------------------------------------------------- */

typedef struct result_impl {
    plumb_eval_result pub;
    spool sp;       /* stage names, interned document ids */
    strmap docs;    /* interned document id -> dense number */
    size_t ndocs;
} result_impl;

void plumb_eval_result_free(plumb_eval_result *r) {
    if (!r) return;
    result_impl *ri = (result_impl *)r;
    for (size_t s = 0; s < r->nstages; s++) {
        free(r->stage[s].q);
        run_impl_free((run_impl *)r->stage[s].run);
    }
    free(r->stage);
    strmap_free(&ri->docs);
    spool_free(&ri->sp);
    free(ri);
}

/* The interned copy of s[0..n) and its dense number. */
static const char *intern_doc(result_impl *ri, const char *s, size_t n, size_t *num) {
    size_t v;
    if (strmap_get(&ri->docs, s, n, &v)) {
        *num = v;
        return ri->docs.key[strmap_slot(&ri->docs, s, n)];
    }
    const char *d = spool_dup(&ri->sp, s, n);
    if (!d || strmap_put(&ri->docs, d, ri->ndocs)) return NULL;
    *num = ri->ndocs++;
    return d;
}

static plumb_status means_of(plumb_eval_stage_result *st) {
    for (int m = 0; m < PLUMB_METRIC_COUNT; m++) {
        double s = 0;
        for (size_t i = 0; i < st->nq; i++) s += st->q[i].metric[m];
        st->mean[m] = st->nq ? s / (double)st->nq : 0;
    }
    return PLUMB_OK;
}

/* Names of up to three ids for a message: "'a', 'b', 'c', ..." */
static void examples(char *out, size_t cap, const char *const *ids, size_t n) {
    size_t w = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && i < 3 && w < cap; i++)
        w += (size_t)snprintf(out + w, cap - w, "%s'%.40s'", i ? ", " : "", ids[i]);
    if (n > 3 && w < cap) snprintf(out + w, cap - w, ", ...");
}

void plumb_eval_params_init(plumb_eval_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->depth = 1000;
    p->drop_self = 1;
    p->threads = 0;
}

/* The queries an evaluation averages over, and the counts of those left
** out. Message ids are collected for the summary. */
typedef struct eval_q {
    const char *id, *text;
    const qrel_q *qr;
} eval_q;

/* Count distinct judged documents and those the index does not hold. */
static plumb_status check_docs(plumb_db *db, const plumb_qrels *qrels, plumb_eval_counts *c,
                               const plumb_eval_params *p) {
    reader *r = NULL;
    sqlite3_stmt *st = NULL;
    strmap seen = {0};
    const char *ex[4];
    size_t nex = 0;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    int src = sqlite3_prepare_v2(r->conn, "SELECT 1 FROM documents WHERE doc_id = ?1", -1, &st,
                                 NULL);
    if (src != SQLITE_OK) {
        rc = store_err(r->conn, src, "check judged documents");
        goto done;
    }
    c->judged_docs = c->unknown_docs = 0;
    for (size_t i = 0; i < qrels->nq; i++)
        for (size_t k = 0; k < qrels->q[i].n; k++) {
            const char *d = qrels->q[i].j[k].doc;
            if (strmap_get(&seen, d, strlen(d), NULL)) continue;
            if (strmap_put(&seen, d, 0)) {
                rc = err_set(PLUMB_NOMEM, "check judged documents");
                goto done;
            }
            c->judged_docs++;
            sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
            src = sqlite3_step(st);
            sqlite3_reset(st);
            if (src == SQLITE_DONE) {
                if (nex < 4) ex[nex++] = d;
                c->unknown_docs++;
            } else if (src != SQLITE_ROW) {
                rc = store_err(r->conn, src, "check judged documents");
                goto done;
            }
        }
    if (c->unknown_docs) {
        char e[256];
        examples(e, sizeof e, ex, nex);
        say(p->message, p->arg, PLUMB_MSG_WARN,
            "%lld of %lld judged documents are not in the index (%s); they count as relevant "
            "documents never retrieved",
            (long long)c->unknown_docs, (long long)c->judged_docs, e);
    }
done:
    sqlite3_finalize(st);
    strmap_free(&seen);
    store_reader_put(db, r);
    return rc;
}

/* ---------------------------------------------------------------- */
/* 8. Evaluating stages by searching                                  */
/* ---------------------------------------------------------------- */

/* Per-stage scratch of the evaluation pass. */
typedef struct stage_pass {
    int64_t *stamp;    /* per interned document: the last query that saw it */
    size_t stamp_cap, stamp_n; /* allocated, initialised (to -1) */
    plumb_run_doc *docs; /* one query's distinct documents */
    size_t docs_cap;
} stage_pass;

static uint64_t hits_checksum(const plumb_hits *h) {
    uint64_t s = 0x51ed270b27a3c4d5ull;
    for (size_t i = 0; i < h->n; i++) {
        struct {
            int64_t id;
            double score;
        } e = {h->hit[i].chunk_id, h->hit[i].score};
        s = hash64(&e, sizeof e, s);
    }
    return s;
}

/* Search one query for one stage until `depth` distinct documents are
** ranked or the stage has no more: fills sp->docs (trec order, cut at
** depth), returns their count in *nret and the search time in *ms. When
** the search whose hits were ranked fell back to the stage-1 order (its
** reranker failed), *fallback is 1 and fberr[0..fbcap) holds why. */
static plumb_status search_query(plumb_db *db, result_impl *ri, const plumb_search_params *base,
                                 const eval_q *q, int depth, int drop_self, int kfirst,
                                 int64_t qnum, stage_pass *sp, plumb_eval_query *out,
                                 int64_t *dropped, size_t *nret, double *ms, int *fallback,
                                 char *fberr, size_t fbcap) {
    plumb_search_params s = *base;
    s.with_text = 0;
    s.snippet_tokens = 0;
    s.k = kfirst;
    double t = 0;
    plumb_status rc = PLUMB_OK;
    size_t n = 0;
    int64_t drop = 0;
    for (;;) {
        plumb_hits *h = NULL;
        double t0 = now_s();
        rc = plumb_search(db, q->text, &s, &h);
        t += now_s() - t0;
        if (rc) {
            char m[768];
            snprintf(m, sizeof m, "%s", plumb_errmsg());
            return err_set(rc, "query '%.100s': %s", q->id, m);
        }
        n = 0;
        drop = 0;
        for (size_t i = 0; i < h->n; i++) {
            const plumb_hit *x = &h->hit[i];
            if (isnan(x->score)) {
                plumb_hits_free(h);
                return err_set(PLUMB_ERROR, "query '%.100s': the search returned a NaN score "
                               "for document '%.100s'", q->id, x->doc_id);
            }
            if (drop_self && strcmp(x->doc_id, q->id) == 0) {
                drop++;
                continue;
            }
            size_t num;
            const char *d = intern_doc(ri, x->doc_id, strlen(x->doc_id), &num);
            if (!d || grow((void **)&sp->stamp, &sp->stamp_cap, num + 1, sizeof *sp->stamp) ||
                grow((void **)&sp->docs, &sp->docs_cap, n + 1, sizeof *sp->docs)) {
                plumb_hits_free(h);
                return err_set(PLUMB_NOMEM, "evaluate");
            }
            while (sp->stamp_n <= num) sp->stamp[sp->stamp_n++] = -1;
            if (sp->stamp[num] == qnum) continue; /* a lower chunk of a ranked document */
            sp->stamp[num] = qnum;
            sp->docs[n++] = (plumb_run_doc){d, x->score}; /* hits are best first: MaxP */
        }
        int more = h->n == (size_t)s.k && s.k < EVAL_MAX_K;
        out->chunks = (int)h->n;
        /* the last search's hits are the ones ranked: its flag is the query's */
        *fallback = h->rerank_fallback != 0;
        if (*fallback) snprintf(fberr, fbcap, "%s", h->rerank_error ? h->rerank_error : "");
        plumb_hits_free(h);
        if (n >= (size_t)depth || !more) break;
        s.k = s.k > EVAL_MAX_K / 2 ? EVAL_MAX_K : s.k * 2;
    }
    eval_sort_ranking(sp->docs, n);
    if (n > (size_t)depth) n = (size_t)depth;
    *dropped += drop;
    *nret = n;
    *ms = t * 1000.0;
    return PLUMB_OK;
}

/* Run the stage's own search `s` for every query on `threads` threads (1:
** on the calling thread), timing each call: ms[i], sum[i] (a hash of the
** chunks and scores), *wall for the whole pass. */
static plumb_status time_searches(plumb_db *db, const plumb_search_params *s, const eval_q *qs,
                                  size_t nq, int threads, double *ms, uint64_t *sum,
                                  double *wall) {
    int failed = 0;
    plumb_status frc = PLUMB_OK;
    char fmsg[768] = "";
    double w0 = now_s();
    long nql = (long)nq;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (long i = 0; i < nql; i++) {
        int stop;
#pragma omp atomic read
        stop = failed;
        if (stop) continue;
        plumb_hits *h = NULL;
        double t0 = now_s();
        plumb_status rc = plumb_search(db, qs[i].text, s, &h);
        ms[i] = (now_s() - t0) * 1000.0;
        if (rc) {
#pragma omp critical(eval_fail)
            {
                if (!frc) {
                    frc = rc;
                    snprintf(fmsg, sizeof fmsg, "query '%.100s' (timing, %d thread%s): %s",
                             qs[i].id, threads, threads > 1 ? "s" : "", plumb_errmsg());
                }
#pragma omp atomic write
                failed = 1;
            }
            continue;
        }
        sum[i] = hits_checksum(h);
        plumb_hits_free(h);
    }
    *wall = now_s() - w0;
    return failed ? err_set(frc, "%s", fmsg) : PLUMB_OK;
}

/* Latency of the stage's own search: one thread, then `threads`. */
static plumb_status time_stage(plumb_db *db, const plumb_search_params *s, const eval_q *qs,
                               size_t nq, int threads, plumb_eval_stage_result *out) {
    size_t m = nq ? nq : 1;
    double *ms = malloc(m * sizeof *ms), *pms = malloc(m * sizeof *pms), wall = 0;
    uint64_t *sum = malloc(m * sizeof *sum), *psum = malloc(m * sizeof *psum);
    plumb_eval_latency *l = &out->latency;
    plumb_status rc = PLUMB_OK;
    if (!ms || !pms || !sum || !psum) {
        rc = err_set(PLUMB_NOMEM, "evaluate");
        goto done;
    }
    if ((rc = time_searches(db, s, qs, nq, 1, ms, sum, &wall))) goto done;
    double total = 0;
    for (size_t i = 0; i < nq; i++) {
        out->q[i].latency_ms = ms[i];
        total += ms[i];
    }
    qsort(ms, nq, sizeof *ms, cmp_double);
    l->measured = 1;
    l->mean_ms = nq ? total / (double)nq : 0;
    l->p50_ms = eval_percentile(ms, nq, 0.50);
    l->p95_ms = eval_percentile(ms, nq, 0.95);
    l->p99_ms = eval_percentile(ms, nq, 0.99);
    l->qps = total > 0 ? (double)nq / (total / 1000.0) : 0;
    if (threads > 1 && nq) {
        /* untimed warm-up: every thread gets a reader connection from the
        ** pool, so the pass below measures searching, not connecting */
        size_t warm = nq < (size_t)threads * 8 ? nq : (size_t)threads * 8;
        if ((rc = time_searches(db, s, qs, warm, threads, pms, psum, &wall))) goto done;
        if ((rc = time_searches(db, s, qs, nq, threads, pms, psum, &wall))) goto done;
        qsort(pms, nq, sizeof *pms, cmp_double);
        l->threads = threads;
        l->qps_parallel = wall > 0 ? (double)nq / wall : 0;
        l->p50_parallel_ms = eval_percentile(pms, nq, 0.50);
        l->p95_parallel_ms = eval_percentile(pms, nq, 0.95);
        l->p99_parallel_ms = eval_percentile(pms, nq, 0.99);
        l->parallel_identical = memcmp(sum, psum, nq * sizeof *sum) == 0;
    }
done:
    free(ms);
    free(pms);
    free(sum);
    free(psum);
    return rc;
}

static plumb_status run_stage(plumb_db *db, result_impl *ri, const plumb_eval_stage *stg,
                              const eval_q *qs, size_t nq, const plumb_eval_params *p,
                              int kfirst, int threads, plumb_eval_stage_result *out) {
    stage_pass sp = {0};
    run_impl *run = NULL;
    plumb_status rc = PLUMB_OK;
    size_t every = nq / 100 ? nq / 100 : 1;
    char fberr[1024]; /* a fallback's reason (plumb_hits.rerank_error) */

    out->name = spool_dup(&ri->sp, stg->name, strlen(stg->name));
    out->search = stg->search;
    out->search.hl_open = out->search.hl_close = NULL;
    out->search.reranker = out->search.rerank_url = out->search.rerank_model = NULL;
    plumb_search_params sprm = stg->search;
    sprm.log = 0; /* evaluation queries stay out of the query log */
    out->q = calloc(nq ? nq : 1, sizeof *out->q);
    run = calloc(1, sizeof *run);
    if (!out->name || !out->q || !run ||
        !(run->pub.q = calloc(nq ? nq : 1, sizeof *run->pub.q))) {
        rc = err_set(PLUMB_NOMEM, "evaluate");
        goto done;
    }
    run->pub.tag = out->name;
    out->run = &run->pub;
    out->nq = nq;
    if (p->progress) p->progress(p->arg, out->name, 0, nq);
    double total = 0;
    for (size_t i = 0; i < nq; i++) {
        plumb_eval_query *eq = &out->q[i];
        size_t n = 0;
        double ms = 0;
        int fallback = 0;
        eq->query_id = qs[i].id;
        eq->nrel = qs[i].qr->nrel;
        rc = search_query(db, ri, &sprm, &qs[i], p->depth, p->drop_self, kfirst,
                          (int64_t)i, &sp, eq, &ri->pub.counts.self_hits_dropped, &n, &ms,
                          &fallback, fberr, sizeof fberr);
        if (rc) goto done;
        if (fallback && out->rerank_fallbacks++ == 0 &&
            !(out->rerank_error = spool_dup(&ri->sp, fberr, strlen(fberr)))) {
            rc = err_set(PLUMB_NOMEM, "evaluate");
            goto done;
        }
        total += ms;
        plumb_run_query *rq = &run->pub.q[i];
        rq->query_id = qs[i].id;
        if (n && !(rq->doc = malloc(n * sizeof *rq->doc))) {
            rc = err_set(PLUMB_NOMEM, "evaluate");
            goto done;
        }
        if (n) memcpy(rq->doc, sp.docs, n * sizeof *rq->doc);
        rq->n = n;
        run->pub.nq = i + 1;
        eq->nret = (int)n;
        if (!n) out->no_hits++;
        if ((rc = measure_query(qs[i].qr, rq->doc, n, eq->metric))) goto done;
        if (p->progress && ((i + 1) % every == 0 || i + 1 == nq))
            p->progress(p->arg, out->name, i + 1, nq);
    }
    means_of(out);
    rc = time_stage(db, &sprm, qs, nq, threads, out);
    out->latency.k_eval = kfirst;
    out->latency.qps_eval = total > 0 ? (double)nq / (total / 1000.0) : 0;
done:
    free(sp.stamp);
    free(sp.docs);
    if (!out->run) run_impl_free(run);
    return rc;
}

plumb_status plumb_eval_run(plumb_db *db, const plumb_queries *queries, const plumb_qrels *qrels,
                            const plumb_eval_params *p, plumb_eval_result **out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_eval_run: out is NULL");
    *out = NULL;
    if (!db || !queries || !qrels) return err_set(PLUMB_MISUSE, "plumb_eval_run: NULL argument");
    plumb_eval_params def;
    if (!p) {
        plumb_eval_params_init(&def);
        p = &def;
    }
    if (p->depth < 10 || p->depth > EVAL_MAX_K)
        return err_set(PLUMB_MISUSE, "plumb_eval_run: depth must be between 10 and %d (got %d)",
                       EVAL_MAX_K, p->depth);
    if (p->threads < 0) return err_set(PLUMB_MISUSE, "plumb_eval_run: threads < 0");
    if (p->nstages < 0 || (p->nstages > 0 && !p->stages))
        return err_set(PLUMB_MISUSE, "plumb_eval_run: stages is NULL");
    plumb_eval_stage defstage;
    const plumb_eval_stage *stages = p->stages;
    int nstages = p->nstages;
    if (!stages || nstages == 0) {
        defstage.name = "bm25";
        plumb_search_params_init(&defstage.search);
        stages = &defstage;
        nstages = 1;
    }
    for (int s = 0; s < nstages; s++) {
        if (!stages[s].name || !*stages[s].name || has_space(stages[s].name))
            return err_set(PLUMB_MISUSE, "plumb_eval_run: stage %d needs a name without white "
                           "space", s);
        if (stages[s].search.k < 1 || stages[s].search.k > EVAL_MAX_K)
            return err_set(PLUMB_MISUSE, "plumb_eval_run: stage '%s': search.k must be between "
                           "1 and %d (got %d)", stages[s].name, EVAL_MAX_K, stages[s].search.k);
        for (int t = 0; t < s; t++)
            if (strcmp(stages[s].name, stages[t].name) == 0)
                return err_set(PLUMB_MISUSE, "plumb_eval_run: two stages are named '%s'",
                               stages[s].name);
    }

    double t0 = now_s();
    eval_q *qs = NULL;
    const char **ex = NULL;
    size_t nq = 0, nex = 0;
    result_impl *ri = calloc(1, sizeof *ri);
    plumb_status rc = PLUMB_OK;
    if (!ri || !(qs = malloc((queries->n ? queries->n : 1) * sizeof *qs)) ||
        !(ex = malloc((qrels->nq + queries->n + 1) * sizeof *ex))) {
        rc = err_set(PLUMB_NOMEM, "evaluate");
        goto done;
    }
    plumb_eval_result *r = &ri->pub;
    plumb_eval_counts *c = &r->counts;
    r->depth = p->depth;
    r->drop_self = p->drop_self ? 1 : 0;
    c->queries = (int64_t)queries->n;
    c->qrels_queries = (int64_t)qrels->nq;
    c->judgments = (int64_t)qrels->njudg;
    c->relevant = (int64_t)qrels->nrel;

    /* which queries count */
    for (size_t i = 0; i < queries->n; i++) {
        const qrel_q *qr = qrels_find(qrels, queries->q[i].id);
        if (!qr)
            c->skipped_unjudged++;
        else if (qr->nrel == 0) {
            ex[nex++] = queries->q[i].id;
            c->skipped_no_relevant++;
        } else
            qs[nq++] = (eval_q){queries->q[i].id, queries->q[i].text, qr};
    }
    c->evaluated = (int64_t)nq;
    char e[256];
    if (c->skipped_no_relevant) {
        examples(e, sizeof e, ex, nex);
        say(p->message, p->arg, PLUMB_MSG_WARN,
            "%lld judged queries have no judgment >= 1 and are skipped (%s)",
            (long long)c->skipped_no_relevant, e);
    }
    nex = 0;
    for (size_t i = 0; i < qrels->nq; i++)
        if (!strmap_get(&queries->map, qrels->q[i].id, strlen(qrels->q[i].id), NULL))
            ex[nex++] = qrels->q[i].id;
    c->unknown_queries = (int64_t)nex;
    if (nex) {
        examples(e, sizeof e, ex, nex);
        say(p->message, p->arg, PLUMB_MSG_WARN,
            "%zu of %zu qrels queries are not in the queries file (%s): not evaluated", nex,
            qrels->nq, e);
    }
    if (c->skipped_unjudged)
        say(p->message, p->arg, PLUMB_MSG_INFO,
            "%lld of %lld queries have no judgment in the qrels: skipped",
            (long long)c->skipped_unjudged, (long long)c->queries);
    if (nq == 0) {
        const char *qa = queries->n ? queries->q[0].id : "", *qb = qrels->nq ? qrels->q[0].id : "";
        rc = err_set(PLUMB_CORRUPT,
                     "no query of the queries file has a relevant judgment in the qrels "
                     "(%zu queries, %zu judged queries, %lld unjudged, %lld without a "
                     "relevant judgment; query ids look like '%.40s' in one and '%.40s' "
                     "in the other)",
                     queries->n, qrels->nq, (long long)c->skipped_unjudged,
                     (long long)c->skipped_no_relevant, qa, qb);
        goto done;
    }
    if ((rc = check_docs(db, qrels, c, p))) goto done;

    /* chunks to ask for: enough for depth documents at the index's mean
    ** chunks per document, with room to spare; more on demand */
    plumb_stats ist;
    if ((rc = plumb_stats_get(db, &ist))) goto done;
    double ratio = ist.documents > 0 ? (double)ist.chunks / (double)ist.documents : 1;
    if (ratio < 1) ratio = 1;
    double kf = ((double)p->depth + (p->drop_self ? 1 : 0)) * ratio * 1.1 + 16;
    int kfirst = kf > EVAL_MAX_K ? EVAL_MAX_K : (int)kf;
    int threads = p->threads ? p->threads : omp_get_max_threads();

    if (!(r->stage = calloc((size_t)nstages, sizeof *r->stage))) {
        rc = err_set(PLUMB_NOMEM, "evaluate");
        goto done;
    }
    for (int s = 0; s < nstages && !rc; s++) {
        r->nstages = (size_t)s + 1;
        rc = run_stage(db, ri, &stages[s], qs, nq, p, kfirst, threads, &r->stage[s]);
    }
    r->elapsed_s = now_s() - t0;
done:
    free(qs);
    free(ex);
    if (rc) {
        plumb_eval_result_free(ri ? &ri->pub : NULL);
        return rc;
    }
    *out = &ri->pub;
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* 9. Evaluating run files                                            */
/* ---------------------------------------------------------------- */

plumb_status plumb_eval_runs(const plumb_qrels *qrels, const plumb_run *const *runs,
                             const char *const *names, int nruns, const plumb_eval_params *p,
                             plumb_eval_result **out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_eval_runs: out is NULL");
    *out = NULL;
    if (!qrels || nruns < 1 || !runs) return err_set(PLUMB_MISUSE, "plumb_eval_runs: no runs");
    for (int i = 0; i < nruns; i++)
        if (!runs[i]) return err_set(PLUMB_MISUSE, "plumb_eval_runs: run %d is NULL", i);
    plumb_eval_params def;
    if (!p) {
        plumb_eval_params_init(&def);
        p = &def;
    }
    if (p->depth < 10 || p->depth > EVAL_MAX_K)
        return err_set(PLUMB_MISUSE, "plumb_eval_runs: depth must be between 10 and %d",
                       EVAL_MAX_K);
    double t0 = now_s();
    plumb_status rc = PLUMB_OK;
    result_impl *ri = calloc(1, sizeof *ri);
    strmap *rmap = calloc((size_t)nruns, sizeof *rmap);
    strmap unj = {0};
    const char **ex = malloc((qrels->nq + 1) * sizeof *ex);
    plumb_run_doc *tmp = NULL;
    int64_t *stamp = NULL; /* per interned document: the last (stage, query) that listed it */
    size_t tcap = 0, nex = 0, scap = 0, sn = 0;
    if (!ri || !rmap || !ex || !(ri->pub.stage = calloc((size_t)nruns, sizeof *ri->pub.stage))) {
        rc = err_set(PLUMB_NOMEM, "evaluate runs");
        goto done;
    }
    plumb_eval_result *r = &ri->pub;
    plumb_eval_counts *c = &r->counts;
    r->depth = p->depth;
    r->drop_self = 0;
    c->qrels_queries = (int64_t)qrels->nq;
    c->judgments = (int64_t)qrels->njudg;
    c->relevant = (int64_t)qrels->nrel;
    c->unknown_docs = -1;
    /* index every run by query id; count run queries without judgments */
    for (int i = 0; i < nruns; i++)
        for (size_t k = 0; k < runs[i]->nq; k++) {
            const char *id = runs[i]->q[k].query_id;
            if (!id) {
                rc = err_set(PLUMB_MISUSE, "plumb_eval_runs: run %d query %zu has no id", i, k);
                goto done;
            }
            if (strmap_get(&rmap[i], id, strlen(id), NULL)) {
                rc = err_set(PLUMB_CORRUPT, "run %d lists query '%.100s' twice", i, id);
                goto done;
            }
            if (strmap_put(&rmap[i], id, k)) {
                rc = err_set(PLUMB_NOMEM, "evaluate runs");
                goto done;
            }
            if (!qrels_find(qrels, id) && !strmap_get(&unj, id, strlen(id), NULL)) {
                if (strmap_put(&unj, id, 0)) {
                    rc = err_set(PLUMB_NOMEM, "evaluate runs");
                    goto done;
                }
                c->skipped_unjudged++;
            }
        }
    size_t nq = 0;
    for (size_t i = 0; i < qrels->nq; i++) {
        if (qrels->q[i].nrel == 0) {
            c->skipped_no_relevant++;
            continue;
        }
        int found = 0;
        for (int k = 0; k < nruns && !found; k++)
            found = strmap_get(&rmap[k], qrels->q[i].id, strlen(qrels->q[i].id), NULL);
        if (!found) ex[nex++] = qrels->q[i].id;
        nq++;
    }
    c->evaluated = (int64_t)nq;
    c->unknown_queries = (int64_t)nex;
    if (nex) {
        char e[256];
        examples(e, sizeof e, ex, nex);
        say(p->message, p->arg, PLUMB_MSG_WARN,
            "%zu of %zu judged queries are in no run (%s): they score 0", nex, nq, e);
    }
    if (c->skipped_unjudged)
        say(p->message, p->arg, PLUMB_MSG_WARN,
            "%lld run queries have no judgment in the qrels: not evaluated",
            (long long)c->skipped_unjudged);
    if (nq == 0) {
        rc = err_set(PLUMB_CORRUPT, "the qrels hold no relevant judgment");
        goto done;
    }
    for (int s = 0; s < nruns && !rc; s++) {
        plumb_eval_stage_result *st = &r->stage[s];
        r->nstages = (size_t)s + 1;
        const char *nm = names && names[s] ? names[s] : runs[s]->tag ? runs[s]->tag : "run";
        run_impl *run = calloc(1, sizeof *run);
        if (!run) {
            rc = err_set(PLUMB_NOMEM, "evaluate runs");
            break;
        }
        st->run = &run->pub;
        st->name = spool_dup(&ri->sp, nm, strlen(nm));
        st->q = calloc(nq, sizeof *st->q);
        run->pub.q = calloc(nq, sizeof *run->pub.q);
        if (!st->name || !st->q || !run->pub.q) {
            rc = err_set(PLUMB_NOMEM, "evaluate runs");
            break;
        }
        run->pub.tag = st->name;
        st->nq = nq;
        size_t w = 0;
        for (size_t i = 0; i < qrels->nq && !rc; i++) {
            const qrel_q *qr = &qrels->q[i];
            if (qr->nrel == 0) continue;
            plumb_eval_query *eq = &st->q[w];
            plumb_run_query *rq = &run->pub.q[w];
            eq->query_id = rq->query_id = qr->id;
            eq->nrel = qr->nrel;
            eq->latency_ms = -1;
            size_t k, n = 0;
            if (strmap_get(&rmap[s], qr->id, strlen(qr->id), &k)) {
                const plumb_run_query *src = &runs[s]->q[k];
                if (src->n && (grow((void **)&tmp, &tcap, src->n, sizeof *tmp))) {
                    rc = err_set(PLUMB_NOMEM, "evaluate runs");
                    break;
                }
                for (size_t d = 0; d < src->n; d++) {
                    if (!src->doc[d].doc_id || isnan(src->doc[d].score)) {
                        rc = err_set(PLUMB_MISUSE, "run %d query '%.100s': document %zu has "
                                     "no id or a NaN score", s, qr->id, d);
                        break;
                    }
                    size_t num;
                    const char *id = intern_doc(ri, src->doc[d].doc_id,
                                                strlen(src->doc[d].doc_id), &num);
                    if (!id || grow((void **)&stamp, &scap, num + 1, sizeof *stamp)) {
                        rc = err_set(PLUMB_NOMEM, "evaluate runs");
                        break;
                    }
                    while (sn <= num) stamp[sn++] = -1;
                    int64_t mark = (int64_t)s * (int64_t)nq + (int64_t)w;
                    if (stamp[num] == mark) {
                        rc = err_set(PLUMB_CORRUPT, "run %d query '%.100s' lists document "
                                     "'%.100s' twice", s, qr->id, id);
                        break;
                    }
                    stamp[num] = mark;
                    tmp[n++] = (plumb_run_doc){id, src->doc[d].score};
                }
                if (rc) break;
                eval_sort_ranking(tmp, n);
                if (n > (size_t)p->depth) n = (size_t)p->depth;
                if (n && !(rq->doc = malloc(n * sizeof *rq->doc))) {
                    rc = err_set(PLUMB_NOMEM, "evaluate runs");
                    break;
                }
                if (n) memcpy(rq->doc, tmp, n * sizeof *rq->doc);
            }
            rq->n = n;
            eq->nret = (int)n;
            if (!n) st->no_hits++;
            run->pub.nq = w + 1;
            rc = measure_query(qr, rq->doc, n, eq->metric);
            w++;
        }
        if (!rc) means_of(st);
    }
    r->elapsed_s = now_s() - t0;
done:
    if (rmap)
        for (int i = 0; i < nruns; i++) strmap_free(&rmap[i]);
    free(rmap);
    strmap_free(&unj);
    free(ex);
    free(tmp);
    free(stamp);
    if (rc) {
        plumb_eval_result_free(ri ? &ri->pub : NULL);
        return rc;
    }
    *out = &ri->pub;
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* 10. Paired comparison                                              */
/* ---------------------------------------------------------------- */

void plumb_compare_params_init(plumb_compare_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->metric = PLUMB_METRIC_NDCG10;
    p->permutations = 10000;
    p->seed = 42;
    p->tie_eps = 1e-9;
}

/* splitmix64: a small, well-mixed generator; the sequence for a seed is
** fixed forever, so a published p-value can be reproduced. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* HOW IT WORKS. Under the null hypothesis the two systems are
** exchangeable per query, so each difference is as likely to have either
** sign. Each round draws one random bit per query (64 per generator call),
** sums the differences with those signs, and counts the rounds whose
** |sum| reaches the observed |sum|. Adding the observed labelling itself
** (+1 / +1) keeps p > 0 and makes it a valid p-value for a Monte Carlo
** test. The comparison allows a relative 1e-12 for rounding, so that a
** permutation equal to the observed one in exact arithmetic counts. */
double eval_randomization_p(const double *d, size_t n, int rounds, uint64_t seed) {
    double obs = 0;
    for (size_t i = 0; i < n; i++) obs += d[i];
    obs = fabs(obs);
    double tol = 1e-12 * (1.0 + obs);
    uint64_t st = seed;
    long hit = 0;
    for (int r = 0; r < rounds; r++) {
        double s = 0;
        uint64_t bits = 0;
        for (size_t i = 0; i < n; i++) {
            if ((i & 63) == 0) bits = splitmix64(&st);
            s += (bits & 1) ? -d[i] : d[i];
            bits >>= 1;
        }
        if (fabs(s) >= obs - tol) hit++;
    }
    return (double)(hit + 1) / (double)(rounds + 1);
}

/* Continued fraction of the incomplete beta function (modified Lentz). */
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-15;
    double qab = a + b, qap = a + 1, qam = a - 1;
    double c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps) break;
    }
    return h;
}

/* Regularized incomplete beta I_x(a, b). */
static double betai(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    double bt = exp(lbt);
    if (x < (a + 1) / (a + b + 2)) return bt * betacf(a, b, x) / a;
    return 1 - bt * betacf(b, a, 1 - x) / b;
}

/* Two-sided p-value of Student's t with df degrees of freedom:
** P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2). */
double eval_ttest_p(double t, double df) {
    if (isnan(t) || !(df > 0)) return NAN;
    if (isinf(t)) return 0;
    return betai(df / 2, 0.5, df / (df + t * t));
}

plumb_status plumb_eval_compare(const plumb_eval_stage_result *a, const plumb_eval_stage_result *b,
                                const plumb_compare_params *p, plumb_comparison **out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_eval_compare: out is NULL");
    *out = NULL;
    if (!a || !b) return err_set(PLUMB_MISUSE, "plumb_eval_compare: NULL stage");
    plumb_compare_params def;
    if (!p) {
        plumb_compare_params_init(&def);
        p = &def;
    }
    if ((int)p->metric < 0 || p->metric >= PLUMB_METRIC_COUNT)
        return err_set(PLUMB_MISUSE, "plumb_eval_compare: unknown metric %d", (int)p->metric);
    if (p->permutations < 1000 || p->permutations > 100000000)
        return err_set(PLUMB_MISUSE, "plumb_eval_compare: permutations must be between 1000 "
                       "and 100000000 (got %d)", p->permutations);
    if (!(p->tie_eps >= 0)) return err_set(PLUMB_MISUSE, "plumb_eval_compare: tie_eps < 0");

    /* one allocation for the struct, the rows and the copied strings */
    size_t strbytes = strlen(a->name ? a->name : "A") + strlen(b->name ? b->name : "B") + 2;
    for (size_t i = 0; i < a->nq; i++) strbytes += strlen(a->q[i].query_id) + 1;
    size_t rows = a->nq ? a->nq : 1;
    plumb_comparison *c = calloc(1, sizeof *c + rows * sizeof *c->q + strbytes);
    strmap bm = {0};
    double *d = malloc(rows * sizeof *d);
    plumb_status rc = PLUMB_OK;
    if (!c || !d) {
        rc = err_set(PLUMB_NOMEM, "compare");
        goto done;
    }
    c->q = (plumb_compare_query *)(c + 1);
    char *sp = (char *)(c->q + rows);
    size_t l = strlen(a->name ? a->name : "A") + 1;
    memcpy(sp, a->name ? a->name : "A", l);
    c->name_a = sp;
    sp += l;
    l = strlen(b->name ? b->name : "B") + 1;
    memcpy(sp, b->name ? b->name : "B", l);
    c->name_b = sp;
    sp += l;
    for (size_t i = 0; i < b->nq; i++)
        if (strmap_put(&bm, b->q[i].query_id, i)) {
            rc = err_set(PLUMB_NOMEM, "compare");
            goto done;
        }
    c->metric = p->metric;
    double sa = 0, sb = 0;
    for (size_t i = 0; i < a->nq; i++) {
        size_t k;
        const char *id = a->q[i].query_id;
        if (!strmap_get(&bm, id, strlen(id), &k)) {
            c->only_a++;
            continue;
        }
        l = strlen(id) + 1;
        memcpy(sp, id, l);
        plumb_compare_query *r = &c->q[c->n];
        r->query_id = sp;
        sp += l;
        r->a = a->q[i].metric[p->metric];
        r->b = b->q[k].metric[p->metric];
        d[c->n] = r->b - r->a;
        if (d[c->n] > p->tie_eps)
            c->wins++;
        else if (d[c->n] < -p->tie_eps)
            c->losses++;
        else
            c->ties++;
        sa += r->a;
        sb += r->b;
        c->n++;
    }
    c->only_b = (int64_t)b->nq - (int64_t)c->n;
    c->permutations = p->permutations;
    c->seed = p->seed;
    if (c->n == 0) {
        rc = err_set(PLUMB_CORRUPT, "'%s' and '%s' have no evaluated query in common", c->name_a,
                     c->name_b);
        goto done;
    }
    double n = (double)c->n;
    c->mean_a = sa / n;
    c->mean_b = sb / n;
    double sd = 0, md = 0;
    for (size_t i = 0; i < c->n; i++) md += d[i];
    md /= n;
    c->mean_diff = md;
    c->p_randomization = eval_randomization_p(d, c->n, p->permutations, p->seed);
    if (c->n < 2) {
        c->t = c->p_ttest = NAN;
    } else {
        for (size_t i = 0; i < c->n; i++) sd += (d[i] - md) * (d[i] - md);
        sd = sqrt(sd / (n - 1));
        if (sd <= 1e-15 * (1 + fabs(md))) {
            int zero = fabs(md) <= p->tie_eps;
            c->t = zero ? 0 : md > 0 ? INFINITY : -INFINITY;
            c->p_ttest = zero ? 1 : 0;
        } else {
            c->t = md / (sd / sqrt(n));
            c->p_ttest = eval_ttest_p(c->t, n - 1);
        }
    }
done:
    free(d);
    strmap_free(&bm);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return PLUMB_OK;
}

void plumb_comparison_free(plumb_comparison *c) { free(c); }
