/*
** pack.c -- plumb_pack(): a question and ranked hits packed into a prompt
** that never exceeds a token budget, with numbered citations.
**
** Workload: once per question, tens to a few hundred hits of about 2 kB
** each (512-token chunks), budgets of a few thousand to 128k tokens. The
** cost is dominated by BPE counting (src/bpe.c, 20-45 MB/s): every
** candidate block that may still fit is counted once, a trimmed one about
** 2 log2(cuts) times more, and the final strings once; once the budget is
** full, each remaining hit costs one count of its template only. Near-
** duplicate checks compare a candidate with every hit taken (merge of
** sorted shingle hashes), so they are skipped for hits that find no room:
** they were half the time of packing 100 SciFact passages into 8k tokens
** before that (36 ms -> 7 ms with cl100k_base, bench/pack_bench.c).
**
** KEY INVARIANT: the result's `tokens` is a count of the returned strings
** themselves (exact with a tokenizer), and it is <= budget. Selection
** works on counts of single blocks, which do not add up exactly (BPE
** merges across the junction of two strings, the estimate's pieces too);
** the final strings are counted whole, and selection is redone with a
** lowered budget while they are over.
**
** HOW SELECTION WORKS (see plumb.h, "Packing", for the rules): one pass
** over the hits in rank order. `left` is the budget minus the fixed parts
** (system message, user template around {context}, chat framing) minus
** the blocks taken so far; a block is the passage template expanded around
** the text, plus the separator. A hit next to a passage of its document
** (chunk_seq adjacent) extends that passage; its cost is the growth of the
** passage's block. Trimming lists the text's cut points (chunk_cuts: the
** chunker's word, sentence, line and paragraph boundaries), then finds by
** binary search the longest prefix at a sentence-or-stronger cut and the
** longest at any cut whose block fits. Counts are not strictly monotone
** in the prefix (BPE can merge a longer prefix into fewer tokens), so the
** search may miss the very longest prefix that fits; it never takes one
** that does not fit, because only probed prefixes are taken.
**
** LIMITATIONS
**   The overlap of adjacent chunks is found from their texts (plumb_hit
**   carries no byte offsets): a document that repeats itself right at a
**   chunk edge ("that that") with an index built without chunk overlap
**   could lose the repeated words. Two chunks with no overlap are joined
**   with a line break, whatever white space separated them.
*/
#include "plumb_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PACK_SHINGLE 3        /* words per shingle for near-duplicate detection */
#define PACK_MIN_OVERLAP 32   /* bytes: an overlap not at a word boundary must be this long */
#define PACK_MAX_RETRIES 64   /* selections redone before giving up on passages */

/* ---------------------------------------------------------------------
** Profiles
** ------------------------------------------------------------------- */

static const plumb_model_profile profiles[] = {
    {"gpt-4o", "o200k_base.tiktoken", 128000, 4096, 4, 3,
     "OpenAI gpt-4o: 128k context, o200k_base; chat framing as OpenAI counts it"},
    {"gpt-4o-mini", "o200k_base.tiktoken", 128000, 4096, 4, 3,
     "OpenAI gpt-4o-mini: 128k context, o200k_base"},
    {"gpt-4-turbo", "cl100k_base.tiktoken", 128000, 4096, 4, 3,
     "OpenAI gpt-4-turbo: 128k context, cl100k_base"},
    {"gpt-4", "cl100k_base.tiktoken", 8192, 1024, 4, 3,
     "OpenAI gpt-4: 8,192 context, cl100k_base"},
    {"gpt-3.5-turbo", "cl100k_base.tiktoken", 16385, 1024, 4, 3,
     "OpenAI gpt-3.5-turbo: 16,385 context, cl100k_base"},
    {"qwen3", "qwen3-tokenizer.json", 32768, 2048, 5, 3,
     "Qwen3: 32,768 native context, its tokenizer.json; ChatML framing (the empty "
     "<think></think> block its template adds when thinking is off comes out of the reserve)"},
    {"llama3", NULL, 8192, 1024, 5, 5,
     "Llama 3: 8,192 context; its tokenizer is not public here: estimated; "
     "header framing <|start_header_id|>role<|end_header_id|>\\n\\n ... <|eot_id|>"},
    {"llama3.1", NULL, 131072, 4096, 5, 5, "Llama 3.1: 128k context; estimated"},
};

#define NPROFILES (sizeof profiles / sizeof profiles[0])

const plumb_model_profile *plumb_model_profile_at(size_t i) {
    return i < NPROFILES ? &profiles[i] : NULL;
}

plumb_status plumb_pack_profile(const char *name, plumb_pack_params *p,
                                const plumb_model_profile **out) {
    if (out) *out = NULL;
    if (!name || !p) return err_set(PLUMB_MISUSE, "plumb_pack_profile: NULL argument");
    for (size_t i = 0; i < NPROFILES; i++) {
        if (strcasecmp(profiles[i].name, name) != 0) continue;
        p->budget = 0;
        p->context_window = profiles[i].context_window;
        p->reserve_answer = profiles[i].reserve_answer;
        p->msg_overhead = profiles[i].msg_overhead;
        p->reply_overhead = profiles[i].reply_overhead;
        if (out) *out = &profiles[i];
        return PLUMB_OK;
    }
    char names[512];
    size_t k = 0;
    names[0] = 0;
    for (size_t i = 0; i < NPROFILES && k < sizeof names; i++) {
        int w = snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", profiles[i].name);
        if (w < 0) break;
        k += (size_t)w;
    }
    return err_set(PLUMB_NOTFOUND, "no model profile '%s' (known: %s)", name, names);
}

void plumb_pack_params_init(plumb_pack_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->context_window = 8192;
    p->reserve_answer = 1024;
    p->chat = 1;
    p->msg_overhead = 4;
    p->reply_overhead = 3;
    p->dedup = 0.7;
    p->merge_adjacent = 1;
    p->order = PLUMB_ORDER_BEST_FIRST;
    p->min_passage_tokens = 32;
}

const char *plumb_pack_fate_name(plumb_pack_fate f) {
    static const char *const names[] = {"included",  "trimmed",  "merged",
                                        "duplicate", "left out", "no text"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : NULL;
}

/* ---------------------------------------------------------------------
** Counting
** ------------------------------------------------------------------- */

/* Tokens of s[0..n): exact with a tokenizer, else the conservative
** estimate documented in plumb.h. */
static plumb_status count(const plumb_tokenizer *tok, const char *s, size_t n, size_t *out) {
    if (tok) return plumb_tokenizer_count(tok, s, n, 0, out);
    size_t e = chunk_estimate_tokens(s, n);
    e += (e + 3) / 4;
    *out = e < n ? e : n;
    return PLUMB_OK;
}

/* ---------------------------------------------------------------------
** Templates
** ------------------------------------------------------------------- */

typedef struct field {
    const char *name; /* with braces: "{title}" */
    const char *val;
} field;

/* Append t[0..n) to b with every placeholder of f[0..nf) replaced. */
static void expand(buf *b, const char *t, size_t n, const field *f, size_t nf) {
    size_t i = 0, run = 0;
    while (i < n) {
        if (t[i] == '{') {
            size_t k;
            for (k = 0; k < nf; k++) {
                size_t l = strlen(f[k].name);
                if (l <= n - i && memcmp(t + i, f[k].name, l) == 0) break;
            }
            if (k < nf) {
                buf_append(b, t + run, i - run);
                buf_puts(b, f[k].val ? f[k].val : "");
                i += strlen(f[k].name);
                run = i;
                continue;
            }
        }
        i++;
    }
    buf_append(b, t + run, n - run);
}

/* The number of occurrences of `ph` in t. */
static size_t occurrences(const char *t, const char *ph) {
    size_t c = 0, l = strlen(ph);
    for (const char *p = strstr(t, ph); p; p = strstr(p + l, ph)) c++;
    return c;
}

/* ---------------------------------------------------------------------
** Near-duplicates: word 3-shingles
** ------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Length of the UTF-8 sequence at s[i] and its code point (invalid bytes:
** one byte, code point 0xFFFD). */
static size_t u8_next(const unsigned char *s, size_t i, size_t n, uint32_t *cp) {
    unsigned c = s[i];
    size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (l == 0 || i + l > n) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = l == 1 ? c : l == 2 ? c & 0x1F : l == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < l; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    *cp = v;
    return l;
}

/* CJK characters are words on their own (no spaces between them). */
static int cjk_char(uint32_t c) {
    return (c >= 0x2E80 && c < 0xA000) || (c >= 0xAC00 && c < 0xD7B0) ||
           (c >= 0xF900 && c < 0xFB00) || (c >= 0xFF00 && c < 0xFFF0) || c >= 0x20000;
}

/* Sorted distinct hashes of the word 3-shingles of s[0..n) (one shingle
** of all words when there are fewer). *out is malloc'd; -1 on OOM. */
static int shingles(const char *str, size_t n, uint64_t **out, size_t *nout) {
    const unsigned char *s = (const unsigned char *)str;
    uint64_t *w = NULL, *sh = NULL;
    size_t nw = 0, cap = 0;
    *out = NULL;
    *nout = 0;
    char word[64];
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = u8_next(s, i, n, &cp);
        int alnum = cp < 0x80 ? isalnum((int)cp) : cp != 0xFFFD && !(cp >= 0x2000 && cp < 0x2E80) &&
                                                       cp != 0xA0 && cp != 0x3000;
        if (!alnum) {
            i += l;
            continue;
        }
        size_t wl = 0;
        uint64_t h;
        if (cjk_char(cp)) {
            h = hash64(s + i, l, 7);
            i += l;
        } else {
            uint64_t acc = 0x9E3779B97F4A7C15ull;
            while (i < n) {
                l = u8_next(s, i, n, &cp);
                int in = cp < 0x80 ? isalnum((int)cp)
                                   : cp != 0xFFFD && !(cp >= 0x2000 && cp < 0x2E80) && cp != 0xA0 &&
                                         cp != 0x3000 && !cjk_char(cp);
                if (!in) break;
                for (size_t k = 0; k < l; k++) {
                    unsigned char c = s[i + k];
                    word[wl++] = (char)(c < 0x80 ? tolower(c) : c);
                    if (wl == sizeof word) {
                        acc = hash64(word, wl, acc);
                        wl = 0;
                    }
                }
                i += l;
            }
            h = hash64(word, wl, acc);
        }
        if (nw == cap) {
            size_t nc = cap ? cap * 2 : 128;
            uint64_t *p = nc <= SIZE_MAX / sizeof *p ? realloc(w, nc * sizeof *p) : NULL;
            if (!p) {
                free(w);
                return -1;
            }
            w = p;
            cap = nc;
        }
        w[nw++] = h;
    }
    if (nw == 0) {
        free(w);
        return 0;
    }
    size_t ns = nw < PACK_SHINGLE ? 1 : nw - PACK_SHINGLE + 1;
    sh = malloc(ns * sizeof *sh);
    if (!sh) {
        free(w);
        return -1;
    }
    for (size_t k = 0; k < ns; k++) {
        size_t m = nw < PACK_SHINGLE ? nw : PACK_SHINGLE;
        sh[k] = hash64(w + k, m * sizeof *w, 11);
    }
    free(w);
    qsort(sh, ns, sizeof *sh, cmp_u64);
    size_t u = 1;
    for (size_t k = 1; k < ns; k++)
        if (sh[k] != sh[u - 1]) sh[u++] = sh[k];
    *out = sh;
    *nout = u;
    return 0;
}

/* |A and B| / min(|A|, |B|) of two sorted sets; 0 when either is empty. */
static double containment(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    if (!na || !nb) return 0;
    size_t i = 0, j = 0, both = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j]) i++;
        else if (a[i] > b[j]) j++;
        else {
            both++;
            i++;
            j++;
        }
    }
    return (double)both / (double)(na < nb ? na : nb);
}

/* ---------------------------------------------------------------------
** The packer's state
** ------------------------------------------------------------------- */

typedef struct cand {
    const char *text; /* the hit's text less surrounding white space */
    size_t len;
    uint64_t *sh;     /* shingles, computed when first needed */
    size_t nsh;
    int sh_done;
} cand;

typedef struct passage {
    size_t anchor;     /* input index of its first (best) hit */
    int lo, hi;        /* chunk_seq range */
    size_t *hits;      /* input indexes, document order */
    size_t nhits, cap;
    buf text;          /* merged (and maybe trimmed) text */
    int trimmed;       /* cut short: nothing may be appended */
    size_t tokens;     /* its block counted alone, separator included */
} passage;

typedef struct packer {
    const plumb_pack_params *p;
    const plumb_tokenizer *tok;
    const plumb_hit *hits;
    size_t nhits;
    cand *c;              /* nhits */
    plumb_pack_item *item;/* nhits */
    size_t *owner;        /* nhits: passage index + 1 holding the hit; 0 none */
    passage *ps;          /* passages in selection order */
    size_t nps;
    const char *sys_t, *user_t, *pass_t, *sep;
    size_t sep_len;
    char *user_pre, *user_post; /* the user template around {context}, expanded */
    char *system;         /* the system text, expanded */
    size_t fixed;         /* tokens of everything but the blocks */
    buf scratch;
} packer;

static void passage_clear(passage *ps) {
    free(ps->hits);
    buf_free(&ps->text);
    memset(ps, 0, sizeof *ps);
}

static void packer_reset(packer *k) {
    for (size_t i = 0; i < k->nps; i++) passage_clear(&k->ps[i]);
    k->nps = 0;
    memset(k->item, 0, k->nhits * sizeof *k->item);
    memset(k->owner, 0, k->nhits * sizeof *k->owner);
}

static plumb_status nomem(void) { return err_set(PLUMB_NOMEM, "plumb_pack: out of memory"); }

static int add_hit(passage *ps, size_t hit, int front) {
    if (ps->nhits == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 4;
        size_t *p = realloc(ps->hits, nc * sizeof *p);
        if (!p) return -1;
        ps->hits = p;
        ps->cap = nc;
    }
    if (front) {
        memmove(ps->hits + 1, ps->hits, ps->nhits * sizeof *ps->hits);
        ps->hits[0] = hit;
    } else {
        ps->hits[ps->nhits] = hit;
    }
    ps->nhits++;
    return 0;
}

/* The value of {title} / {source}: the hit's, else its doc_id. */
static const char *title_of(const plumb_hit *h) {
    return h->title && *h->title ? h->title : h->doc_id;
}
static const char *source_of(const plumb_hit *h) {
    return h->source && *h->source ? h->source : h->doc_id;
}

/* Append the passage template for hit h with number n, around text
** t[0..tn) followed by `tail` (the trim marker, may be NULL); then the
** separator when with_sep. */
static void block(const packer *k, buf *b, const plumb_hit *h, int n, const char *t, size_t tn,
                  const char *tail, int with_sep) {
    char num[24];
    snprintf(num, sizeof num, "%d", n);
    field f[] = {{"{n}", num},
                 {"{title}", title_of(h)},
                 {"{source}", source_of(h)},
                 {"{doc_id}", h->doc_id}};
    const char *pos = strstr(k->pass_t, "{text}");
    expand(b, k->pass_t, (size_t)(pos - k->pass_t), f, 4);
    buf_append(b, t, tn);
    if (tail) buf_puts(b, tail);
    expand(b, pos + 6, strlen(pos + 6), f, 4);
    if (with_sep) buf_append(b, k->sep, k->sep_len);
}

/* Tokens of the block of hit h, number n, text t[0..tn) + tail. */
static plumb_status block_tokens(packer *k, const plumb_hit *h, int n, const char *t, size_t tn,
                                 const char *tail, size_t *out) {
    buf_reset(&k->scratch);
    block(k, &k->scratch, h, n, t, tn, tail, 1);
    if (k->scratch.oom) return nomem();
    return count(k->tok, k->scratch.p ? k->scratch.p : "", k->scratch.len, out);
}

static cand *cand_shingles(packer *k, size_t i, plumb_status *rc) {
    cand *c = &k->c[i];
    if (!c->sh_done) {
        if (shingles(c->text, c->len, &c->sh, &c->nsh)) {
            *rc = nomem();
            return NULL;
        }
        c->sh_done = 1;
    }
    return c;
}

/* ---------------------------------------------------------------------
** Merging adjacent chunks
** ------------------------------------------------------------------- */

static int is_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13); }

/* The length of the longest suffix of a that is a prefix of b and starts
** at a word boundary of a (or is at least PACK_MIN_OVERLAP bytes long and
** starts at a character boundary); 0 when none. */
static size_t overlap_len(const char *a, size_t na, const char *b, size_t nb) {
    size_t lim = na < nb ? na : nb;
    for (size_t start = na - lim; start < na; start++) {
        size_t l = na - start;
        if (a[start] != b[0]) continue;
        int word = start == 0 || is_space((unsigned char)a[start - 1]);
        int charb = ((unsigned char)a[start] & 0xC0) != 0x80;
        if (!(word || (charb && l >= PACK_MIN_OVERLAP))) continue;
        if (memcmp(a + start, b, l) == 0) return l;
    }
    return 0;
}

/* Join a and b (b follows a in the document) into out. *skip receives
** how many bytes of b were already in a. */
static void join(buf *out, const char *a, size_t na, const char *b, size_t nb, size_t *skip) {
    size_t ov = overlap_len(a, na, b, nb);
    buf_append(out, a, na);
    if (ov == 0) buf_putc(out, '\n');
    buf_append(out, b + ov, nb - ov);
    *skip = ov;
}

/* ---------------------------------------------------------------------
** Trimming
** ------------------------------------------------------------------- */

typedef struct trim_ctx {
    packer *k;
    const plumb_hit *h;  /* whose template fields are used */
    int n;               /* citation number used for counting */
    const char *base;    /* text kept whole before the cut part (may be "") */
    size_t nbase;
    const char *t;       /* the text to cut */
    size_t room;         /* tokens the block may take */
} trim_ctx;

/* Does the block with t[0..end) + marker fit? Sets *tokens when it does. */
static plumb_status probe(trim_ctx *x, size_t end, const char *marker, int *fits, size_t *tokens) {
    packer *k = x->k;
    buf_reset(&k->scratch);
    char num[24];
    snprintf(num, sizeof num, "%d", x->n);
    field f[] = {{"{n}", num},
                 {"{title}", title_of(x->h)},
                 {"{source}", source_of(x->h)},
                 {"{doc_id}", x->h->doc_id}};
    const char *pos = strstr(k->pass_t, "{text}");
    expand(&k->scratch, k->pass_t, (size_t)(pos - k->pass_t), f, 4);
    buf_append(&k->scratch, x->base, x->nbase);
    buf_append(&k->scratch, x->t, end);
    buf_puts(&k->scratch, marker);
    expand(&k->scratch, pos + 6, strlen(pos + 6), f, 4);
    buf_append(&k->scratch, k->sep, k->sep_len);
    if (k->scratch.oom) return nomem();
    size_t c;
    plumb_status rc = count(k->tok, k->scratch.p, k->scratch.len, &c);
    if (rc) return rc;
    *fits = c <= x->room;
    if (*fits) *tokens = c;
    return PLUMB_OK;
}

/* The largest index i of cuts[idx[0..m)] whose prefix fits, by binary
** search; -1 when none was found to fit. */
static plumb_status search_cut(trim_ctx *x, const chunk_cut *cuts, const size_t *idx, size_t m,
                               const char *marker, long *best, size_t *tokens) {
    long lo = -1, hi = (long)m;
    *best = -1;
    while (lo + 1 < hi) {
        long mid = lo + (hi - lo) / 2;
        int fits;
        size_t t = 0;
        plumb_status rc = probe(x, cuts[idx[mid]].end, marker, &fits, &t);
        if (rc) return rc;
        if (fits) {
            lo = mid;
            *tokens = t;
        } else {
            hi = mid;
        }
    }
    *best = lo;
    return PLUMB_OK;
}

/* Cut x->t[from..len) short so that the block fits in x->room and keeps
** at least min_tokens tokens of text: *end is the kept length of t (0: no
** acceptable cut), *marker the text appended, *tokens the block's count.
** The kept tokens are the block's count less the empty block's (t cut at
** `from`). A sentence cut is preferred unless it keeps less than half the
** bytes of the best word cut, or too few tokens. */
static plumb_status trim(trim_ctx *x, size_t len, size_t from, size_t min_tokens, size_t *end,
                         const char **marker, size_t *tokens) {
    chunk_cut *cuts = NULL;
    size_t ncuts = 0, *all = NULL, *sent = NULL, nall = 0, nsent = 0;
    plumb_status rc = PLUMB_OK;
    *end = 0;
    *marker = "";
    *tokens = 0;
    /* the empty block: the same with nothing of the cut part; when it
    ** leaves no room for min_tokens, no cut can do */
    int fits;
    size_t empty = 0, room = x->room;
    x->room = SIZE_MAX;
    rc = probe(x, from, "", &fits, &empty);
    x->room = room;
    if (rc || empty + (min_tokens ? min_tokens : 1) > room) return rc;
    if (chunk_cuts(x->t, len, &cuts, &ncuts)) return nomem();
    if (ncuts) {
        all = malloc(ncuts * sizeof *all);
        sent = malloc(ncuts * sizeof *sent);
        if (!all || !sent) {
            rc = nomem();
            goto done;
        }
    }
    for (size_t i = 0; i < ncuts; i++) {
        if (cuts[i].end <= from) continue;
        all[nall++] = i;
        if (cuts[i].strength >= CHUNK_CUT_SENT) sent[nsent++] = i;
    }
    if (!nall) goto done;
    long s = -1, w = -1;
    size_t ts = 0, tw = 0;
    if ((rc = search_cut(x, cuts, sent, nsent, " \xE2\x80\xA6", &s, &ts))) goto done;
    if ((rc = search_cut(x, cuts, all, nall, "\xE2\x80\xA6", &w, &tw))) goto done;
    if (s < 0 && w < 0) goto done;
    size_t es = s >= 0 ? cuts[sent[s]].end - from : 0, ew = w >= 0 ? cuts[all[w]].end - from : 0;
    int s_ok = s >= 0 && ts >= empty + min_tokens;
    int w_ok = w >= 0 && tw >= empty + min_tokens;
    if (s_ok && (es * 2 >= ew || !w_ok)) {
        *end = cuts[sent[s]].end;
        *marker = " \xE2\x80\xA6";
        *tokens = ts;
    } else if (w_ok) {
        *end = cuts[all[w]].end;
        *marker = "\xE2\x80\xA6";
        *tokens = tw;
    }
done:
    free(cuts);
    free(all);
    free(sent);
    return rc;
}

/* ---------------------------------------------------------------------
** Selection
** ------------------------------------------------------------------- */

/* Try hit i against an adjacent passage ps (after: it follows ps). */
static plumb_status try_merge(packer *k, size_t i, size_t pi, int after, int64_t *left) {
    passage *ps = &k->ps[pi];
    cand *c = &k->c[i];
    const plumb_hit *h = &k->hits[ps->anchor];
    plumb_status rc = PLUMB_OK;
    buf nt = {0};
    size_t skip = 0, tokens = 0;
    if (after)
        join(&nt, ps->text.p, ps->text.len, c->text, c->len, &skip);
    else
        join(&nt, c->text, c->len, ps->text.p, ps->text.len, &skip);
    if (nt.oom) {
        rc = nomem();
        goto done;
    }
    int n = (int)pi + 1;
    if ((rc = block_tokens(k, h, n, nt.p, nt.len, NULL, &tokens))) goto done;
    int64_t delta = (int64_t)tokens - (int64_t)ps->tokens;
    size_t kept = c->len;
    if (delta > *left) {
        if (!after) {
            k->item[i].fate = PLUMB_PACK_LEFT_OUT;
            goto done;
        }
        /* cut the new part of the following chunk */
        trim_ctx x = {k, h, n, ps->text.p, ps->text.len, NULL, 0};
        buf_reset(&nt);
        if (skip == 0) buf_putc(&nt, '\n'); /* the joint, as join() writes it */
        buf_append(&nt, c->text + skip, c->len - skip); /* the new part only */
        if (nt.oom) {
            rc = nomem();
            goto done;
        }
        size_t lead = skip == 0 ? 1 : 0, end;
        const char *marker;
        int64_t room = *left + (int64_t)ps->tokens;
        x.t = nt.p;
        x.room = room > 0 ? (size_t)room : 0;
        if ((rc = trim(&x, nt.len, lead, (size_t)k->p->min_passage_tokens, &end, &marker,
                       &tokens)))
            goto done;
        if (end == 0) {
            k->item[i].fate = PLUMB_PACK_LEFT_OUT;
            goto done;
        }
        buf_append(&ps->text, nt.p, end);
        buf_puts(&ps->text, marker);
        ps->trimmed = 1;
        kept = skip + end - lead;
        delta = (int64_t)tokens - (int64_t)ps->tokens;
    } else {
        buf_reset(&ps->text);
        buf_append(&ps->text, nt.p, nt.len);
    }
    if (ps->text.oom || add_hit(ps, i, !after)) {
        rc = nomem();
        goto done;
    }
    if (after)
        ps->hi = k->hits[i].chunk_seq;
    else
        ps->lo = k->hits[i].chunk_seq;
    ps->tokens = tokens;
    *left -= delta;
    k->item[i].fate = PLUMB_PACK_MERGED;
    k->item[i].kept_bytes = kept;
    k->owner[i] = pi + 1;
done:
    buf_free(&nt);
    return rc;
}

/* Is hit i a near-duplicate of a hit already taken? Sets its item. */
static plumb_status near_duplicate(packer *k, size_t i, int *dup) {
    plumb_status rc = PLUMB_OK;
    double best = 0;
    size_t best_hit = 0;
    *dup = 0;
    cand *c = cand_shingles(k, i, &rc);
    if (!c) return rc;
    for (size_t j = 0; j < k->nps; j++) {
        for (size_t m = 0; m < k->ps[j].nhits; m++) {
            size_t o = k->ps[j].hits[m];
            cand *co = cand_shingles(k, o, &rc);
            if (!co) return rc;
            double v = containment(c->sh, c->nsh, co->sh, co->nsh);
            if (v > best) {
                best = v;
                best_hit = o;
            }
        }
    }
    if (best >= k->p->dedup) {
        k->item[i].fate = PLUMB_PACK_DUPLICATE;
        k->item[i].dup_of = best_hit;
        k->item[i].overlap = best;
        *dup = 1;
    }
    return PLUMB_OK;
}

/* Start a new passage with hit i, whole or trimmed, if it fits. */
static plumb_status try_new(packer *k, size_t i, int64_t *left) {
    cand *c = &k->c[i];
    const plumb_hit *h = &k->hits[i];
    int n = (int)k->nps + 1;
    size_t tokens = 0, end = c->len;
    const char *marker = NULL;
    plumb_status rc;
    if (*left <= 0) {
        k->item[i].fate = PLUMB_PACK_LEFT_OUT;
        return PLUMB_OK;
    }
    if (k->p->max_passages > 0 && k->nps >= (size_t)k->p->max_passages) {
        k->item[i].fate = PLUMB_PACK_LEFT_OUT;
        return PLUMB_OK;
    }
    /* not even the template fits: no need to count the text, nor to look
    ** for near-duplicates (the costly part once the budget is full) */
    if ((rc = block_tokens(k, h, n, "", 0, NULL, &tokens))) return rc;
    if ((int64_t)tokens >= *left) {
        k->item[i].fate = PLUMB_PACK_LEFT_OUT;
        return PLUMB_OK;
    }
    if (k->p->dedup > 0) {
        int dup;
        if ((rc = near_duplicate(k, i, &dup)) || dup) return rc;
    }
    if ((rc = block_tokens(k, h, n, c->text, c->len, NULL, &tokens))) return rc;
    if ((int64_t)tokens > *left) {
        trim_ctx x = {k, h, n, "", 0, c->text, (size_t)*left};
        if ((rc = trim(&x, c->len, 0, (size_t)k->p->min_passage_tokens, &end, &marker,
                       &tokens)))
            return rc;
        if (end == 0) {
            k->item[i].fate = PLUMB_PACK_LEFT_OUT;
            return PLUMB_OK;
        }
    }
    passage *ps = &k->ps[k->nps];
    memset(ps, 0, sizeof *ps);
    ps->anchor = i;
    ps->lo = ps->hi = h->chunk_seq;
    buf_append(&ps->text, c->text, end);
    if (marker) buf_puts(&ps->text, marker);
    ps->trimmed = marker != NULL;
    ps->tokens = tokens;
    if (ps->text.oom || add_hit(ps, i, 0)) {
        passage_clear(ps);
        return nomem();
    }
    k->nps++;
    *left -= (int64_t)tokens;
    k->item[i].fate = marker ? PLUMB_PACK_TRIMMED : PLUMB_PACK_INCLUDED;
    k->item[i].kept_bytes = end;
    k->owner[i] = k->nps;
    return PLUMB_OK;
}

/* One selection pass with `budget` tokens for the whole prompt. */
static plumb_status select_passages(packer *k, int64_t budget) {
    plumb_status rc = PLUMB_OK;
    int64_t left = budget - (int64_t)k->fixed;
    packer_reset(k);
    for (size_t i = 0; i < k->nhits; i++) {
        const plumb_hit *h = &k->hits[i];
        cand *c = &k->c[i];
        if (!c->len) {
            k->item[i].fate = PLUMB_PACK_NO_TEXT;
            continue;
        }
        /* the same chunk again, or a chunk next to a passage */
        long adj = -1;
        int after = 0, same = 0;
        for (size_t j = 0; j < k->nps && !same; j++) {
            passage *ps = &k->ps[j];
            if (strcmp(k->hits[ps->anchor].doc_id, h->doc_id) != 0) continue;
            if (h->chunk_seq >= ps->lo && h->chunk_seq <= ps->hi) {
                size_t dup = ps->anchor;
                for (size_t m = 0; m < ps->nhits; m++)
                    if (k->hits[ps->hits[m]].chunk_seq == h->chunk_seq) dup = ps->hits[m];
                k->item[i].fate = PLUMB_PACK_DUPLICATE;
                k->item[i].dup_of = dup;
                k->item[i].overlap = 1;
                same = 1;
            } else if (k->p->merge_adjacent && adj < 0 &&
                       (int64_t)h->chunk_seq == (int64_t)ps->hi + 1 && !ps->trimmed) {
                adj = (long)j;
                after = 1;
            } else if (k->p->merge_adjacent && adj < 0 &&
                       (int64_t)h->chunk_seq == (int64_t)ps->lo - 1) {
                adj = (long)j;
                after = 0;
            }
        }
        if (same) continue;
        if (adj >= 0) {
            if ((rc = try_merge(k, i, (size_t)adj, after, &left))) return rc;
            continue;
        }
        if ((rc = try_new(k, i, &left))) return rc;
    }
    return PLUMB_OK;
}

/* ---------------------------------------------------------------------
** Assembly
** ------------------------------------------------------------------- */

/* Passage index (selection order) written at position `pos`. */
static size_t order_at(plumb_pack_order order, size_t n, size_t pos) {
    if (order != PLUMB_ORDER_BEST_AT_ENDS) return pos;
    /* ranks 0, 2, 4 ... from the front, 1, 3, 5 ... from the back */
    size_t front = (n + 1) / 2;
    return pos < front ? 2 * pos : 2 * (n - 1 - pos) + 1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d) memcpy(d, s ? s : "", n + 1);
    return d;
}

/* Build the final strings of the current selection into *out and count them. */
static plumb_status assemble(packer *k, plumb_packed *out) {
    plumb_status rc = PLUMB_OK;
    buf ctx = {0}, user = {0}, prompt = {0};
    size_t *pos_of = NULL; /* selection index -> position */
    if (k->nps) {
        pos_of = malloc(k->nps * sizeof *pos_of);
        if (!pos_of) return nomem();
    }
    for (size_t pos = 0; pos < k->nps; pos++) {
        size_t j = order_at(k->p->order, k->nps, pos);
        pos_of[j] = pos;
        if (pos) buf_append(&ctx, k->sep, k->sep_len);
        block(k, &ctx, &k->hits[k->ps[j].anchor], (int)pos + 1, k->ps[j].text.p,
              k->ps[j].text.len, NULL, 0);
    }
    buf_puts(&user, k->user_pre);
    buf_append(&user, ctx.p ? ctx.p : "", ctx.len);
    buf_puts(&user, k->user_post);
    if (*k->system) {
        buf_puts(&prompt, k->system);
        buf_puts(&prompt, "\n\n");
    }
    buf_append(&prompt, user.p ? user.p : "", user.len);
    if (ctx.oom || user.oom || prompt.oom) {
        rc = nomem();
        goto done;
    }
    out->system = dup_str(k->system);
    out->user = buf_detach(&user);
    out->prompt = buf_detach(&prompt);
    if (!out->system || !out->user || !out->prompt) {
        rc = nomem();
        goto done;
    }
    if (k->p->chat) {
        size_t msgs = *k->system ? 2 : 1;
        if ((rc = count(k->tok, out->system, strlen(out->system), &out->tokens_system))) goto done;
        if ((rc = count(k->tok, out->user, strlen(out->user), &out->tokens_user))) goto done;
        out->tokens = out->tokens_system + out->tokens_user + msgs * (size_t)k->p->msg_overhead +
                      (size_t)k->p->reply_overhead;
    } else {
        if ((rc = count(k->tok, out->prompt, strlen(out->prompt), &out->tokens))) goto done;
    }

    /* citations, in the order written */
    if (k->nps) {
        out->citation = calloc(k->nps, sizeof *out->citation);
        if (!out->citation) {
            rc = nomem();
            goto done;
        }
    }
    out->ncitations = k->nps;
    for (size_t pos = 0; pos < k->nps; pos++) {
        size_t j = order_at(k->p->order, k->nps, pos);
        passage *ps = &k->ps[j];
        const plumb_hit *h = &k->hits[ps->anchor];
        plumb_citation *ci = &out->citation[pos];
        ci->n = (int)pos + 1;
        ci->rank = (int)j + 1;
        ci->doc_id = dup_str(h->doc_id);
        ci->title = dup_str(h->title);
        ci->source = dup_str(h->source);
        ci->text = dup_str(ps->text.p);
        ci->score = h->score;
        ci->first_seq = ps->lo;
        ci->last_seq = ps->hi;
        ci->trimmed = ps->trimmed;
        ci->tokens = ps->tokens;
        ci->nchunks = ps->nhits;
        ci->hits = malloc(ps->nhits * sizeof *ci->hits);
        ci->chunk_ids = malloc(ps->nhits * sizeof *ci->chunk_ids);
        if (!ci->doc_id || !ci->title || !ci->source || !ci->text || !ci->hits ||
            !ci->chunk_ids) {
            rc = nomem();
            goto done;
        }
        for (size_t m = 0; m < ps->nhits; m++) {
            ci->hits[m] = ps->hits[m];
            ci->chunk_ids[m] = k->hits[ps->hits[m]].chunk_id;
        }
    }
    for (size_t i = 0; i < k->nhits; i++) {
        plumb_pack_item *it = &k->item[i];
        it->citation = k->owner[i] ? (int)pos_of[k->owner[i] - 1] + 1 : 0;
    }
done:
    free(pos_of);
    buf_free(&ctx);
    buf_free(&user);
    buf_free(&prompt);
    return rc;
}

static void packed_clear(plumb_packed *pk) {
    free(pk->system);
    free(pk->user);
    free(pk->prompt);
    for (size_t i = 0; i < pk->ncitations; i++) {
        plumb_citation *c = &pk->citation[i];
        free((char *)c->doc_id);
        free((char *)c->title);
        free((char *)c->source);
        free((char *)c->text);
        free(c->hits);
        free(c->chunk_ids);
    }
    free(pk->citation);
    pk->system = pk->user = pk->prompt = NULL;
    pk->citation = NULL;
    pk->ncitations = 0;
}

void plumb_packed_free(plumb_packed *pk) {
    if (!pk) return;
    packed_clear(pk);
    free(pk->item);
    free(pk);
}

/* ---------------------------------------------------------------------
** Entry point
** ------------------------------------------------------------------- */

static plumb_status check_params(const plumb_pack_params *p, const char *user_t,
                                 const char *pass_t) {
    if (p->dedup < 0 || p->dedup > 1 || p->dedup != p->dedup)
        return err_set(PLUMB_MISUSE, "plumb_pack: dedup must be in [0, 1], got %g", p->dedup);
    if (p->msg_overhead < 0 || p->reply_overhead < 0)
        return err_set(PLUMB_MISUSE, "plumb_pack: chat overheads must be >= 0");
    if (p->min_passage_tokens < 0 || p->max_passages < 0)
        return err_set(PLUMB_MISUSE, "plumb_pack: min_passage_tokens and max_passages must be >= 0");
    if (p->order != PLUMB_ORDER_BEST_FIRST && p->order != PLUMB_ORDER_BEST_AT_ENDS)
        return err_set(PLUMB_MISUSE, "plumb_pack: unknown order %d", (int)p->order);
    if (occurrences(user_t, "{context}") != 1)
        return err_set(PLUMB_MISUSE, "plumb_pack: the user template must hold {context} once");
    if (occurrences(pass_t, "{text}") != 1)
        return err_set(PLUMB_MISUSE, "plumb_pack: the passage template must hold {text} once");
    return PLUMB_OK;
}

plumb_status plumb_pack(const char *question, const plumb_hit *hits, size_t nhits,
                        const plumb_pack_params *params, plumb_packed **out) {
    plumb_pack_params defaults;
    packer k;
    plumb_packed *pk = NULL;
    plumb_status rc = PLUMB_OK;
    buf b = {0};

    memset(&k, 0, sizeof k);
    if (out) *out = NULL;
    if (!out || !question || (!hits && nhits))
        return err_set(PLUMB_MISUSE, "plumb_pack: NULL argument");
    if (!params) {
        plumb_pack_params_init(&defaults);
        params = &defaults;
    }
    k.p = params;
    k.tok = params->tokenizer;
    k.hits = hits;
    k.nhits = nhits;
    k.sys_t = params->system_template ? params->system_template : PLUMB_PACK_SYSTEM;
    k.user_t = params->user_template ? params->user_template : PLUMB_PACK_USER;
    k.pass_t = params->passage_template ? params->passage_template : PLUMB_PACK_PASSAGE;
    k.sep = params->separator ? params->separator : "\n\n";
    k.sep_len = strlen(k.sep);
    if ((rc = check_params(params, k.user_t, k.pass_t))) return rc;
    int64_t budget = params->budget > 0
                         ? params->budget
                         : (int64_t)params->context_window - (int64_t)params->reserve_answer;
    if (budget <= 0)
        return err_set(PLUMB_MISUSE, "plumb_pack: no budget (budget %d, context window %d, "
                       "reserve %d)", params->budget, params->context_window,
                       params->reserve_answer);
    for (size_t i = 0; i < nhits; i++)
        if (hits[i].text && !hits[i].doc_id)
            return err_set(PLUMB_MISUSE, "plumb_pack: hit %zu has text but no doc_id", i);

    if (nhits > SIZE_MAX / sizeof(passage)) return nomem();
    pk = calloc(1, sizeof *pk);
    k.c = calloc(nhits ? nhits : 1, sizeof *k.c);
    k.item = calloc(nhits ? nhits : 1, sizeof *k.item);
    k.owner = calloc(nhits ? nhits : 1, sizeof *k.owner);
    k.ps = calloc(nhits ? nhits : 1, sizeof *k.ps);
    if (!pk || !k.c || !k.item || !k.owner || !k.ps) {
        rc = nomem();
        goto done;
    }
    for (size_t i = 0; i < nhits; i++) {
        const char *t = hits[i].text ? hits[i].text : "";
        size_t n = strlen(t);
        while (n && is_space((unsigned char)t[n - 1])) n--;
        while (n && is_space((unsigned char)*t)) {
            t++;
            n--;
        }
        k.c[i].text = t;
        k.c[i].len = n;
    }

    /* the fixed parts */
    field qf[] = {{"{question}", question}};
    expand(&b, k.sys_t, strlen(k.sys_t), qf, 1);
    k.system = buf_detach(&b);
    const char *cpos = strstr(k.user_t, "{context}");
    expand(&b, k.user_t, (size_t)(cpos - k.user_t), qf, 1);
    k.user_pre = buf_detach(&b);
    expand(&b, cpos + 9, strlen(cpos + 9), qf, 1);
    k.user_post = buf_detach(&b);
    if (!k.system || !k.user_pre || !k.user_post) {
        rc = nomem();
        goto done;
    }
    {
        size_t a = 0, c = 0, s = 0;
        if ((rc = count(k.tok, k.user_pre, strlen(k.user_pre), &a))) goto done;
        if ((rc = count(k.tok, k.user_post, strlen(k.user_post), &c))) goto done;
        if (params->chat) {
            if ((rc = count(k.tok, k.system, strlen(k.system), &s))) goto done;
            s += (*k.system ? 2 : 1) * (size_t)params->msg_overhead + (size_t)params->reply_overhead;
        } else if (*k.system) {
            buf_puts(&b, k.system);
            buf_puts(&b, "\n\n");
            if (b.oom) {
                rc = nomem();
                goto done;
            }
            if ((rc = count(k.tok, b.p, b.len, &s))) goto done;
            buf_reset(&b);
        }
        k.fixed = a + c + s;
    }

    /* select, assemble, count; lower the budget by any excess and redo */
    int64_t eff = budget;
    for (int tries = 0;; tries++) {
        if ((rc = select_passages(&k, tries > PACK_MAX_RETRIES ? 0 : eff))) goto done;
        packed_clear(pk);
        if ((rc = assemble(&k, pk))) goto done;
        if ((int64_t)pk->tokens <= budget) {
            pk->retries = tries;
            break;
        }
        if (k.nps == 0) {
            rc = err_set(PLUMB_ERROR, "plumb_pack: the templates and the question take %zu "
                         "tokens, more than the budget of %lld", pk->tokens, (long long)budget);
            goto done;
        }
        eff -= (int64_t)pk->tokens - budget;
    }
    pk->budget = (size_t)budget;
    pk->exact = k.tok != NULL;
    snprintf(pk->counter, sizeof pk->counter, "%s",
             k.tok ? plumb_tokenizer_name(k.tok) : "estimate");
    pk->chat = params->chat ? 1 : 0;
    if (!pk->chat) pk->tokens_system = pk->tokens_user = 0;
    pk->nitems = nhits;
    pk->item = k.item;
    k.item = NULL;
    for (size_t i = 0; i < nhits; i++) {
        switch (pk->item[i].fate) {
        case PLUMB_PACK_INCLUDED: pk->included++; break;
        case PLUMB_PACK_TRIMMED: pk->trimmed++; break;
        case PLUMB_PACK_MERGED: pk->merged++; break;
        case PLUMB_PACK_DUPLICATE: pk->duplicates++; break;
        case PLUMB_PACK_LEFT_OUT: pk->left_out++; break;
        case PLUMB_PACK_NO_TEXT: pk->no_text++; break;
        }
    }
    *out = pk;
    pk = NULL;
done:
    plumb_packed_free(pk);
    for (size_t i = 0; k.ps && i < k.nps; i++) passage_clear(&k.ps[i]);
    for (size_t i = 0; k.c && i < nhits; i++) free(k.c[i].sh);
    free(k.c);
    free(k.item);
    free(k.owner);
    free(k.ps);
    free(k.system);
    free(k.user_pre);
    free(k.user_post);
    buf_free(&k.scratch);
    buf_free(&b);
    return rc;
}
