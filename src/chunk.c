/*
** chunk.c -- token estimation and token-bounded, overlapping windows cut
** at paragraph, line, sentence and word boundaries.
**
** Workload: the indexer calls chunk_split() once per document, >10,000
** documents/s of about 1.5 KB each, most of which fit in one window; rare
** documents run to megabytes. A document that fits costs one estimation
** pass and no allocation beyond the single span. Everything else is one
** forward scan plus bounded look-backs: O(n) time, and memory bounded by
** the boundaries of a window or two, not by the document.
**
** TOKEN ESTIMATE
**   The text is cut into pieces, each with a cost in quarter tokens; the
**   estimate is floor(sum / 4). Piece costs depend only on the piece, so
**   the cost of any window that starts and ends at piece boundaries is a
**   difference of running sums -- the property the chunker relies on.
**     letters   a run of letters with weighted length W costs 4 + max(0, W-5)
**               (one token, plus one per 4 weight units beyond 5). Weights:
**               ASCII 1 (2 for an upper-case letter after the first: BPE
**               splits acronyms), Latin-1 and Cyrillic 3, Latin Extended-A/B,
**               Greek, Hebrew, Arabic, Indic, Thai and the rest 5, Latin
**               Extended Additional (Vietnamese) 8.
**     digits    4 per group of up to 3 (cl100k splits numbers so).
**     CJK       each ideograph/kana 5 (1.25 tokens), hangul 6, fullwidth
**               and CJK punctuation 4.
**     other     each punctuation or symbol character 4, a run of one
**               repeated ASCII punctuation char 4 + 4 per further 8
**               ("-----" rules), emoji 7, each invalid byte 4.
**     spaces    a single space 0 (BPE glues it to the next word), any other
**               whitespace run (newlines, indentation) 4.
**   No character costs 8 or more, so any one character fits a window of
**   max_tokens >= 1, and no piece costs more than 4 per byte, so the
**   estimate never exceeds the byte length.
**   Calibrated against cl100k_base (../shared/data/tokenizers): estimate /
**   true count over 600 SciFact documents: median 1.15, 1st percentile
**   1.00, worst 0.98; legal prose (GPL, Apache, MPL) 1.20; Python's
**   reference documentation 1.24; Cranfield 1.22; Markdown release notes
**   full of code 1.30. Chinese and Japanese 1.0-1.2; German, Vietnamese
**   and emoji-heavy text run 10-20% under.
**
** CHUNKING: HOW IT WORKS
**   A scanner walks the trimmed text once and reports boundaries: every
**   whitespace run (its bytes [a,b) are never inside a cut window's edge)
**   and every edge of a CJK character (CJK has no spaces). Each boundary
**   has the running cost at a and at b and a strength:
**     PARA (blank line) > LINE+SENT > LINE > SENT > WORD,
**   where SENT is .!? (optionally followed by closing quotes/brackets)
**   then whitespace and an upper-case letter, digit or caseless-script
**   letter, or a CJK 。！？.
**   A window starting at s with running cost Cs may end at any boundary
**   whose a-cost - Cs <= 4*max+3 (i.e. estimate <= max). Among them it
**   ends at the strongest one that fills at least max(max/2, ov + max/4)
**   tokens (ties: the latest), else at the latest one that fits. Then the
**   next window starts at the earliest boundary inside the window whose
**   tail [b, end) costs at most `ov`: a sentence start if one gives at
**   least ov/2, else a word start. Each window must end past the previous
**   one; a window that could only do so by cutting a word restarts
**   without overlap at the next new word instead.
**   A word longer than a window is cut inside: at the latest piece edge
**   (a/b-c) if that fills half the window, else at the last character
**   that fits. Windows inside such a word do not overlap.
**
** LIMITATIONS
**   overlap is clamped to max_tokens/2. Progress per window is at least
**   max/4 tokens when the window ends in its upper region, so the work is
**   at most about 4 passes over the text. Abbreviations ("Dr. Smith")
**   look like sentence ends. Case detection covers Latin, Greek and
**   Cyrillic; letters of other cased scripts count as upper-case.
*/
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

enum { K_WS, K_LETTER, K_DIGIT, K_PUNCT, K_CJK };

typedef struct piece {
    size_t end;    /* byte offset just past the piece */
    uint64_t cost; /* quarter tokens */
    int kind;      /* K_* */
    int nl;        /* K_WS only: line breaks in the run, capped at 2 */
} piece;

/* ---------------------------------------------------------------------
** Characters
** ------------------------------------------------------------------- */

/* Decode the sequence at s[i..n); returns its length and sets *cp, or
** returns 0 for an invalid or truncated sequence (then one byte is
** consumed as a punctuation piece). */
static size_t decode(const unsigned char *s, size_t i, size_t n, uint32_t *cp) {
    uint32_t c = s[i];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
        *cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
        uint32_t v = ((c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
        if (v < 0x800 || (v >= 0xD800 && v < 0xE000)) return 0;
        *cp = v;
        return 3;
    }
    if (c < 0xF5) {
        if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
            (s[i + 3] & 0xC0) != 0x80)
            return 0;
        uint32_t v = ((c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                     ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        if (v < 0x10000 || v > 0x10FFFF) return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

static int ascii_ws(unsigned c) { return c == ' ' || (c >= 9 && c <= 13); }

static int uni_ws(uint32_t c) {
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_cjk_letter(uint32_t c) {
    return (c >= 0x1100 && c <= 0x11FF) || (c >= 0x2E80 && c <= 0x2FFF) ||
           (c >= 0x3040 && c <= 0x31FF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA960 && c <= 0xA97F) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3FFFF);
}

/* Fullwidth forms and CJK punctuation: no spaces around them either. */
static int is_cjk_punct(uint32_t c) {
    return (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
           (c >= 0xFF5B && c <= 0xFF65);
}

static int is_symbol(uint32_t c) {
    return (c >= 0x80 && c <= 0xBF && c != 0xAA && c != 0xB5 && c != 0xBA) || c == 0xD7 ||
           c == 0xF7 || (c >= 0x2000 && c <= 0x2BFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
           (c >= 0x1F000 && c <= 0x1FAFF);
}

/* Weight of a non-ASCII letter: how much faster than ASCII it spends
** cl100k tokens (see the calibration in the header). */
static unsigned letter_weight(uint32_t c) {
    if (c < 0x100) return 3;
    if (c < 0x250) return 5;
    if (c >= 0x400 && c < 0x530) return 3;
    if (c >= 0x1E00 && c < 0x1F00) return 8;
    return 5;
}

/* Cost of the one-character piece c (a non-letter, non-space). */
static uint64_t single_cost(uint32_t c, int *kind) {
    if (is_cjk_letter(c)) {
        *kind = K_CJK;
        return (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) ? 6 : 5;
    }
    if (c >= 0xFF00 && c <= 0xFFEF) {
        *kind = K_CJK;
        return is_cjk_punct(c) ? 4 : 5;
    }
    if (is_cjk_punct(c)) { *kind = K_CJK; return 4; }
    *kind = K_PUNCT;
    if ((c >= 0x2600 && c < 0x2800) || (c >= 0x1F000 && c <= 0x1FAFF)) return 7;
    return 4;
}

/* Is the code point c a letter that joins a letter run? */
static int joins_word(uint32_t c) {
    return c >= 0x80 && !uni_ws(c) && !is_symbol(c) && !is_cjk_letter(c) &&
           !(c >= 0xFF00 && c <= 0xFFEF) && !is_cjk_punct(c);
}

/* ---------------------------------------------------------------------
** Pieces
** ------------------------------------------------------------------- */

/* The piece that starts at s[i], i < n. */
static void piece_at(const unsigned char *s, size_t i, size_t n, piece *p) {
    unsigned c = s[i];
    uint32_t cp = c;
    size_t l = 1;
    if (c >= 0x80 && !(l = decode(s, i, n, &cp))) {
        p->end = i + 1;
        p->cost = 4;
        p->kind = K_PUNCT;
        return;
    }
    if (ascii_ws(c) || (c >= 0x80 && uni_ws(cp))) {
        size_t j = i, chars = 0;
        int nl = 0;
        for (;;) {
            unsigned d = s[j];
            uint32_t dc = d;
            size_t dl = 1;
            if (d < 0x80) {
                if (!ascii_ws(d)) break;
                if (d == '\n' || (d == '\r' && !(j + 1 < n && s[j + 1] == '\n'))) nl++;
            } else {
                if (!(dl = decode(s, j, n, &dc)) || !uni_ws(dc)) break;
                if (dc == 0x2028) nl++;
                if (dc == 0x2029) nl += 2;
            }
            j += dl;
            chars++;
            if (j >= n) break;
        }
        p->end = j;
        p->kind = K_WS;
        p->nl = nl > 2 ? 2 : nl;
        p->cost = (chars == 1 && c == ' ') ? 0 : 4;
        return;
    }
    if (c - '0' < 10) {
        size_t j = i + 1;
        while (j < n && (unsigned)(s[j] - '0') < 10) j++;
        p->end = j;
        p->kind = K_DIGIT;
        p->cost = 4 * (uint64_t)((j - i + 2) / 3);
        return;
    }
    if ((c | 32) - 'a' < 26 || (c >= 0x80 && joins_word(cp))) {
        uint64_t w = c < 0x80 ? 1 : letter_weight(cp);
        size_t j = i + l;
        while (j < n) {
            unsigned d = s[j];
            if (d < 0x80) {
                if ((d | 32) - 'a' >= 26) break;
                w += d < 'a' ? 2 : 1;
                j++;
            } else {
                uint32_t dc;
                size_t dl = decode(s, j, n, &dc);
                if (!dl || !joins_word(dc)) break;
                w += letter_weight(dc);
                j += dl;
            }
        }
        p->end = j;
        p->kind = K_LETTER;
        p->cost = 4 + (w > 5 ? w - 5 : 0);
        return;
    }
    if (c < 0x80) {
        size_t j = i + 1;
        while (j < n && s[j] == c) j++;
        p->end = j;
        p->kind = K_PUNCT;
        p->cost = 4 + 4 * (uint64_t)((j - i - 1) / 8);
        return;
    }
    p->end = i + l;
    p->cost = single_cost(cp, &p->kind);
}

size_t chunk_estimate_tokens(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    uint64_t q = 0;
    size_t i = 0;
    piece p;
    while (i < n) {
        piece_at(s, i, n, &p);
        q += p.cost;
        i = p.end;
    }
    return (size_t)(q / 4);
}

/* The largest end e in (i, p->end) such that the prefix s[i..e) of piece
** p costs at most room quarter tokens, or i if not even one character
** fits. Mirrors the cost formulas of piece_at(). */
static size_t piece_prefix_fit(const unsigned char *s, size_t i, const piece *p, uint64_t room) {
    if (p->kind == K_DIGIT) {
        uint64_t digits = room / 4 * 3;
        return digits >= p->end - i ? p->end : i + (size_t)digits;
    }
    if (p->kind == K_PUNCT && s[i] < 0x80) {
        if (room < 4) return i;
        uint64_t len = (room - 4) / 4 * 8 + 8;
        return len >= p->end - i ? p->end : i + (size_t)len;
    }
    if (p->kind != K_LETTER) return i; /* one-character piece */
    uint64_t w = 0;
    size_t j = i, best = i;
    while (j < p->end) {
        unsigned d = s[j];
        uint32_t dc;
        size_t dl = 1;
        if (d < 0x80) {
            w += (d < 'a' && j > i) ? 2 : 1;
        } else {
            dl = decode(s, j, p->end, &dc);
            w += letter_weight(dc);
        }
        if (4 + (w > 5 ? w - 5 : 0) > room) break;
        j += dl;
        best = j;
    }
    return best;
}

/* ---------------------------------------------------------------------
** Boundaries
** ------------------------------------------------------------------- */

enum {
    S_WORD = CHUNK_CUT_WORD,
    S_SENT = CHUNK_CUT_SENT,
    S_LINE = CHUNK_CUT_LINE,
    S_LINESENT = CHUNK_CUT_LINESENT,
    S_PARA = CHUNK_CUT_PARA
};

typedef struct bound {
    size_t a, b;      /* a window may end at a and start at b; [a,b) is whitespace */
    uint64_t ca, cb;  /* running cost (quarter tokens) at a and at b */
    int strength;     /* S_* */
} bound;

/* 1: s[..a) ends with .!? or an ellipsis, possibly followed by closing
** quotes and brackets; 2: with a CJK full stop, exclamation or question
** mark (no upper-case start needed); 0: neither. */
static int sentence_end_before(const unsigned char *s, size_t lo, size_t a) {
    size_t i = a;
    for (int k = 0; k < 3 && i > lo; k++) {
        unsigned c = s[i - 1];
        if (c == '"' || c == '\'' || c == ')' || c == ']') { i--; continue; }
        if (i - lo >= 3 && s[i - 3] == 0xE2 && s[i - 2] == 0x80 && (c == 0x99 || c == 0x9D)) {
            i -= 3; /* ’ ” */
            continue;
        }
        if (i - lo >= 3 && s[i - 3] == 0xE3 && s[i - 2] == 0x80 && (c == 0x8D || c == 0x8F)) {
            i -= 3; /* 」 』 */
            continue;
        }
        break;
    }
    if (i == lo) return 0;
    unsigned c = s[i - 1];
    if (c == '.' || c == '!' || c == '?') return 1;
    if (i - lo < 3) return 0;
    unsigned c0 = s[i - 3], c1 = s[i - 2];
    if (c0 == 0xE2 && c1 == 0x80 && c == 0xA6) return 1;                 /* … */
    if (c0 == 0xE3 && c1 == 0x80 && c == 0x82) return 2;                 /* 。 */
    if (c0 == 0xEF && c1 == 0xBC && (c == 0x81 || c == 0x9F)) return 2; /* ！？ */
    return 0;
}

static int is_lower(uint32_t c) {
    if (c < 0x100) return c >= 0xDF && c != 0xF7;
    if (c < 0x138 || (c >= 0x14A && c < 0x178)) return c & 1;
    if (c < 0x180) return !(c & 1);
    if (c < 0x250) return 1;
    if (c >= 0x370 && c < 0x400) return c >= 0x3AC;
    if (c >= 0x400 && c < 0x460) return c >= 0x430;
    if (c >= 0x460 && c < 0x530) return c & 1;
    if (c >= 0x1E00 && c < 0x1F00) return c & 1;
    return 0;
}

/* Does s[b..n) open a sentence: an upper-case letter or digit after at
** most three opening quotes or brackets? Letters of caseless scripts
** (CJK, Arabic, ...) count as upper-case. */
static int sentence_start_at(const unsigned char *s, size_t b, size_t n) {
    for (int k = 0; k < 3 && b < n; k++) {
        unsigned c = s[b];
        if (c == '"' || c == '\'' || c == '(' || c == '[') { b++; continue; }
        if (b + 2 < n && s[b] == 0xE2 && s[b + 1] == 0x80 && (s[b + 2] == 0x98 || s[b + 2] == 0x9C)) {
            b += 3; /* ‘ “ */
            continue;
        }
        if (b + 2 < n && s[b] == 0xE3 && s[b + 1] == 0x80 && (s[b + 2] == 0x8C || s[b + 2] == 0x8E)) {
            b += 3; /* 「 『 */
            continue;
        }
        break;
    }
    if (b >= n) return 0;
    unsigned c = s[b];
    if (c < 0x80) return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    uint32_t cp;
    if (!decode(s, b, n, &cp)) return 0;
    return (joins_word(cp) || is_cjk_letter(cp)) && !is_lower(cp);
}

/* The boundary scanner: walks [lo, n) once, piece by piece. */
typedef struct scanner {
    const unsigned char *s;
    size_t lo, i, n;  /* text start, next unread byte, end of trimmed text */
    uint64_t cost;    /* running cost at i */
    int prev;         /* kind of the piece before i, -1 at the start */
    int held;         /* `next` holds the piece at i (already classified) */
    piece next;
} scanner;

/* Fill *bd with the next boundary; 0 when the text is exhausted (then
** sc->cost is the cost of the whole text). */
static int scan_next(scanner *sc, bound *bd) {
    while (sc->i < sc->n) {
        piece *p = &sc->next;
        if (!sc->held) piece_at(sc->s, sc->i, sc->n, p);
        sc->held = 0;
        if (p->kind == K_WS) {
            bd->a = sc->i;
            bd->b = p->end;
            bd->ca = sc->cost;
            bd->cb = sc->cost + p->cost;
            if (p->nl >= 2) {
                bd->strength = S_PARA;
            } else {
                int e = sentence_end_before(sc->s, sc->lo, sc->i);
                int sent = e == 2 || (e == 1 && sentence_start_at(sc->s, p->end, sc->n));
                bd->strength = p->nl ? (sent ? S_LINESENT : S_LINE) : (sent ? S_SENT : S_WORD);
            }
            sc->cost = bd->cb;
            sc->i = p->end;
            sc->prev = K_WS;
            return 1;
        }
        if (sc->prev >= 0 && sc->prev != K_WS && (p->kind == K_CJK || sc->prev == K_CJK)) {
            /* an edge of a CJK character: report it, then resume with p */
            bd->a = bd->b = sc->i;
            bd->ca = bd->cb = sc->cost;
            int e = sentence_end_before(sc->s, sc->lo, sc->i);
            bd->strength = e == 2 || (e == 1 && sentence_start_at(sc->s, sc->i, sc->n)) ? S_SENT : S_WORD;
            sc->held = 1;
            sc->prev = K_WS; /* so that the held piece is not reported twice */
            return 1;
        }
        sc->cost += p->cost;
        sc->i = p->end;
        sc->prev = p->kind;
    }
    return 0;
}

/* ---------------------------------------------------------------------
** Splitting
** ------------------------------------------------------------------- */

typedef struct splitter {
    scanner sc;
    bound *bd;          /* boundaries not yet discarded */
    size_t nb, cap;     /* boundaries held, allocated */
    int done;           /* the scanner is exhausted */
    chunk_span *sp;
    size_t nsp, spcap;
    int oom;
} splitter;

/* Make bd[k] available if the text has that many boundaries. */
static int have(splitter *x, size_t k) {
    while (x->nb <= k && !x->done) {
        if (x->nb == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 256;
            if (cap > SIZE_MAX / sizeof(bound)) { x->oom = 1; return 0; }
            bound *p = realloc(x->bd, cap * sizeof(bound));
            if (!p) { x->oom = 1; return 0; }
            x->bd = p;
            x->cap = cap;
        }
        if (scan_next(&x->sc, &x->bd[x->nb])) x->nb++;
        else x->done = 1;
    }
    return x->nb > k;
}

static void emit(splitter *x, size_t start, size_t end) {
    if (x->oom) return;
    if (x->nsp == x->spcap) {
        size_t cap = x->spcap ? x->spcap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(chunk_span)) { x->oom = 1; return; }
        chunk_span *p = realloc(x->sp, cap * sizeof(chunk_span));
        if (!p) { x->oom = 1; return; }
        x->sp = p;
        x->spcap = cap;
    }
    x->sp[x->nsp].start = start;
    x->sp[x->nsp].end = end;
    x->nsp++;
}

/* Cut the word [s, w1) from its (mid-word) position s: emits windows
** until the rest costs at most bq, and returns the position where the
** rest begins, with its cost in *rest. */
static size_t cut_word(splitter *x, size_t s, size_t w1, uint64_t bq, uint64_t *rest) {
    const unsigned char *t = x->sc.s;
    for (;;) {
        uint64_t tot = 0, at_edge = 0;
        size_t j = s, edge = 0, cut = 0;
        piece p = {w1, 0, K_PUNCT, 0};
        while (j < w1) {
            /* Look no further than the window can reach: every byte costs at
            ** least half a quarter token, so 2 * bq bytes always overflow it.
            ** Scanning to w1 instead made a long word quadratic. */
            size_t lim = w1 - j > 2 * bq + 64 ? j + (size_t)(2 * bq + 64) : w1;
            piece_at(t, j, lim, &p);
            if (tot + p.cost > bq) break;
            tot += p.cost;
            j = p.end;
            if (j < w1) { edge = j; at_edge = tot; }
        }
        if (j >= w1) { *rest = tot; return s; }
        if (edge && at_edge * 2 >= bq) {
            cut = edge;
        } else {
            cut = piece_prefix_fit(t, j, &p, bq - tot);
            if (cut == j && edge) cut = edge;
        }
        /* every character costs < 8 <= bq, so the window is never empty */
        if (cut <= s) cut = p.end;
        emit(x, s, cut);
        if (x->oom) { *rest = 0; return w1; }
        s = cut;
    }
}

int chunk_split(const char *text, size_t n, size_t max_tokens, size_t overlap,
                chunk_span **out, size_t *nout) {
    const unsigned char *t = (const unsigned char *)text;
    *out = NULL;
    *nout = 0;

    /* trim (ASCII and Unicode whitespace, same notion as the scanner) */
    size_t s0 = 0, e0 = n;
    while (s0 < n) {
        piece p;
        piece_at(t, s0, n, &p);
        if (p.kind != K_WS) break;
        s0 = p.end;
    }
    if (s0 == n) return 0;
    while (e0 > s0) {
        size_t k = e0 - 1;
        while (k > s0 && (t[k] & 0xC0) == 0x80 && e0 - k < 4) k--;
        piece p;
        piece_at(t, k, e0, &p);
        if (p.kind != K_WS || p.end != e0) break;
        e0 = k;
    }

    if (max_tokens == 0 || e0 - s0 <= max_tokens ||
        chunk_estimate_tokens(text + s0, e0 - s0) <= max_tokens) {
        chunk_span *sp = malloc(sizeof *sp);
        if (!sp) return -1;
        sp->start = s0;
        sp->end = e0;
        *out = sp;
        *nout = 1;
        return 0;
    }

    uint64_t max = max_tokens > SIZE_MAX / 16 ? SIZE_MAX / 16 : max_tokens;
    uint64_t ov = overlap < max / 2 ? overlap : max / 2;
    uint64_t bq = 4 * max + 3;                  /* window budget, quarter tokens */
    uint64_t ovq = 4 * ov + 3;                  /* overlap budget */
    uint64_t minq = 4 * ov + max > 2 * max ? 4 * ov + max : 2 * max; /* upper region */

    splitter x;
    memset(&x, 0, sizeof x);
    x.sc.s = t;
    x.sc.lo = s0;
    x.sc.i = s0;
    x.sc.n = e0;
    x.sc.prev = -1;

    size_t s = s0;          /* window start */
    uint64_t cs = 0;        /* running cost at s (virtual after a mid-word cut) */
    size_t ks = 0;          /* first boundary with b > s */
    size_t kc = 0;          /* first boundary with a > prev_end */
    size_t resume = s0;     /* where content after prev_end begins */
    uint64_t cresume = 0;

    for (;;) {
        /* drop boundaries no longer reachable */
        size_t keep = ks < kc ? ks : kc;
        if (keep > 1024 && keep > x.nb / 2) {
            memmove(x.bd, x.bd + keep, (x.nb - keep) * sizeof(bound));
            x.nb -= keep;
            ks -= keep;
            kc -= keep;
        }

        size_t hi = SIZE_MAX, any = SIZE_MAX, k = kc;
        int final = 0;
        for (;; k++) {
            if (!have(&x, k)) {
                if (x.oom) goto done;
                final = x.sc.cost - cs <= bq;
                break;
            }
            uint64_t c = x.bd[k].ca - cs;
            if (c > bq) break;
            any = k;
            if (c >= minq && (hi == SIZE_MAX || x.bd[k].strength >= x.bd[hi].strength)) hi = k;
        }
        if (final) {
            emit(&x, s, e0);
            goto done;
        }
        if (any == SIZE_MAX) {
            if (s < resume) {
                /* only a cut word could end this window: drop the overlap */
                s = resume;
                cs = cresume;
                ks = kc;
                continue;
            }
            size_t w1 = kc < x.nb ? x.bd[kc].a : e0;
            uint64_t cw1 = kc < x.nb ? x.bd[kc].ca : x.sc.cost, rest;
            s = cut_word(&x, s, w1, bq, &rest);
            if (x.oom) goto done;
            cs = cw1 - rest;
            resume = s;
            cresume = cs;
            ks = kc;
            continue;
        }
        size_t j = hi != SIZE_MAX ? hi : any;
        emit(&x, s, x.bd[j].a);
        if (x.oom) goto done;

        /* the next window starts inside this one, about ov tokens back */
        uint64_t ce = x.bd[j].ca;
        size_t sent = SIZE_MAX, word = SIZE_MAX;
        for (size_t i = j; i-- > ks;) {
            uint64_t c = ce - x.bd[i].cb;
            if (c > ovq) break;
            word = i;
            if (x.bd[i].strength >= S_SENT && c >= 2 * ov) sent = i;
        }
        size_t nx = sent != SIZE_MAX ? sent : word != SIZE_MAX ? word : j;
        s = x.bd[nx].b;
        cs = x.bd[nx].cb;
        ks = nx + 1;
        kc = j + 1;
        resume = x.bd[j].b;
        cresume = x.bd[j].cb;
    }
done:
    free(x.bd);
    if (x.oom) {
        free(x.sp);
        return -1;
    }
    *out = x.sp;
    *nout = x.nsp;
    return 0;
}

/* ---------------------------------------------------------------------
** Cut points for trimming (pack.c): the same boundaries, in one pass
** ------------------------------------------------------------------- */

int chunk_cuts(const char *text, size_t n, chunk_cut **out, size_t *nout) {
    *out = NULL;
    *nout = 0;
    scanner sc;
    memset(&sc, 0, sizeof sc);
    sc.s = (const unsigned char *)text;
    sc.n = n;
    sc.prev = -1;
    chunk_cut *c = NULL;
    size_t nc = 0, cap = 0;
    bound bd;
    while (scan_next(&sc, &bd)) {
        if (bd.a == 0 || bd.a >= n) continue; /* leading or trailing whitespace */
        if (nc && c[nc - 1].end == bd.a) continue;
        if (nc == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            if (ncap > SIZE_MAX / sizeof *c) { free(c); return -1; }
            chunk_cut *p = realloc(c, ncap * sizeof *c);
            if (!p) { free(c); return -1; }
            c = p;
            cap = ncap;
        }
        c[nc].end = bd.a;
        c[nc].strength = bd.strength;
        nc++;
    }
    *out = c;
    *nout = nc;
    return 0;
}
