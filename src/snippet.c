/*
** snippet.c -- the best short window of a hit, query terms highlighted.
**
** HOW IT WORKS: the chunk is tokenized with the index's tokenizer (so
** "running" in the text matches the query's "runs"), each token is marked
** with the query term it equals, if any, and a window of `words` tokens
** slides over the token list keeping counts per query term. The window
** with the most distinct query terms wins, then the most matches, then
** the earliest. Its text is copied from the first to the last token of
** the window, extended to the surrounding word boundaries, with matches
** wrapped in the highlight markers.
**
** Workload: run for the k returned hits only (k is small), over chunks of
** a few hundred words; O(tokens * query terms).
*/
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

#define MAXQ 64 /* distinct query terms tracked; more are rare and ignored */

typedef struct stok {
    int start, end; /* byte range in the text */
    int q;          /* index of the distinct query term, or -1 */
} stok;

typedef struct scollect {
    stok *t;
    size_t n, cap;
    const char *qt[MAXQ]; /* distinct query terms */
    size_t ql[MAXQ];
    int nq;
    int oom;
} scollect;

static int collect(void *arg, const char *term, int n, int start, int end) {
    scollect *c = arg;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        stok *t = realloc(c->t, nc * sizeof *t);
        if (!t) { c->oom = 1; return 1; }
        c->t = t;
        c->cap = nc;
    }
    int q = -1;
    for (int i = 0; i < c->nq; i++)
        if (c->ql[i] == (size_t)n && !memcmp(c->qt[i], term, (size_t)n)) { q = i; break; }
    c->t[c->n++] = (stok){start, end, q};
    return 0;
}

int snippet_build(tok_ctx *tok, const char *text, size_t n, const lex_query *q, int words,
                  const char *hl_open, const char *hl_close, buf *out) {
    scollect c = {0};
    const char *p = q->terms.p;
    for (int i = 0; i < q->nterms && p; i++) {
        size_t l = strlen(p);
        int dup = 0;
        for (int j = 0; j < c.nq; j++)
            if (c.ql[j] == l && !memcmp(c.qt[j], p, l)) dup = 1;
        if (!dup && c.nq < MAXQ) { c.qt[c.nq] = p; c.ql[c.nq] = l; c.nq++; }
        p += l + 1;
    }
    if (n > (size_t)1 << 30) n = (size_t)1 << 30; /* tokenizer takes an int length */
    if (tok_run(tok, text, (int)n, collect, &c) < 0 || c.oom) { free(c.t); return -1; }
    if (words < 1) words = 1;

    size_t best = 0;
    if (c.n > (size_t)words && c.nq > 0) {
        int cnt[MAXQ] = {0};
        int distinct = 0, matches = 0, bd = -1, bm = -1;
        for (size_t i = 0; i < c.n; i++) {
            int qi = c.t[i].q;
            if (qi >= 0) { if (cnt[qi]++ == 0) distinct++; matches++; }
            if (i >= (size_t)words) {
                int qo = c.t[i - (size_t)words].q;
                if (qo >= 0) { if (--cnt[qo] == 0) distinct--; matches--; }
            }
            if (i + 1 >= (size_t)words && (distinct > bd || (distinct == bd && matches > bm))) {
                bd = distinct;
                bm = matches;
                best = i + 1 - (size_t)words;
            }
        }
    }
    if (c.n == 0) {
        /* nothing tokenizable: show the start of the text */
        size_t e = n < 200 ? n : 200;
        while (e < n && e > 0 && ((unsigned char)text[e] & 0xC0) == 0x80) e--;
        buf_append(out, text, e);
        if (e < n) buf_puts(out, "…");
        free(c.t);
        return out->oom ? -1 : 0;
    }
    size_t last = best + (size_t)words;
    if (last > c.n) last = c.n;
    size_t s = (size_t)c.t[best].start, e = (size_t)c.t[last - 1].end;
    /* widen to include a word's punctuation tail (e.g. "end." or "(x)") */
    while (e < n && e - (size_t)c.t[last - 1].end < 3 && strchr(".,;:!?)]\"'", text[e]) && text[e])
        e++;
    if (best > 0) buf_puts(out, "…");
    /* highlight spans, merged where matches touch or overlap (CJK bigrams
    ** overlap by one character: "[転置イン]" rather than "[転置][イン]") */
    size_t pos = s, hs = 0, he = 0;
    int open = 0;
    for (size_t i = best; i <= last; i++) {
        int flush = i == last;
        if (!flush && c.t[i].q < 0) continue;
        size_t ts = flush ? 0 : (size_t)c.t[i].start, te = flush ? 0 : (size_t)c.t[i].end;
        if (!flush && open && ts <= he) { /* touching or overlapping: extend */
            if (te > he) he = te;
            continue;
        }
        if (open) {
            for (size_t j = pos; j < hs; j++) buf_putc(out, text[j] == '\n' ? ' ' : text[j]);
            buf_puts(out, hl_open);
            buf_append(out, text + hs, he - hs);
            buf_puts(out, hl_close);
            pos = he;
            open = 0;
        }
        if (!flush) { hs = ts; he = te; open = 1; }
    }
    for (size_t j = pos; j < e; j++) buf_putc(out, text[j] == '\n' ? ' ' : text[j]);
    if (last < c.n || e < n) {
        /* trailing text remains only if there is a non-space byte after e */
        size_t k = e;
        while (k < n && (text[k] == ' ' || text[k] == '\n' || text[k] == '\t' || text[k] == '\r')) k++;
        if (k < n) buf_puts(out, "…");
    }
    free(c.t);
    return out->oom ? -1 : 0;
}
