/*
** tok.c -- the engine's tokenizer: word segmentation, folding, possessive
** and stop word removal, Snowball stemming, CJK bigrams.
**
** WORKLOAD. Every indexed chunk and every query goes through tok_run().
** The indexer's budget is >10,000 SciFact documents (~215 words each) per
** second on one core, so this file must sustain well over 5 million words
** per second including stemming. Text is mostly ASCII English with a few
** accented letters, Greek symbols and, in other corpora, CJK runs.
**
** HOW IT WORKS
**   1. Segmentation. A byte table classifies ASCII; only bytes >= 0x80 are
**      decoded (own decoder, same validity rules as utf8.c) and classified
**      with utf8proc's category table. Letters (L*), digits (N*) and '_'
**      join into words. Marks (M*) and the invisible joiners (soft hyphen,
**      ZWNJ, ZWJ, word joiner, BOM) extend a word in progress but never
**      start one, as UAX #29's WB4 attaches them to what precedes. '.',
**      '\'' and U+2019 stay inside a word between two letters/digits
**      ("e.g", "don't", "3.14"); ',' only between two digits ("1,000").
**      Everything else, including invalid UTF-8, separates.
**   2. Folding, written into t->w while scanning (no second pass): ASCII
**      is lowercased through the table; other code points go through
**      utf8proc_decompose_char(CASEFOLD|COMPAT|DECOMPOSE) and the result
**      loses its diacritics (see is_diacritic). U+2019 becomes '\''.
**   3. Possessive: a trailing "'s" (after the U+2019 mapping, so "’s"
**      too) is dropped, as Lucene's EnglishPossessiveFilter does.
**   4. The stem cache maps the folded word to (stop?, stem). Only on a
**      miss are the stop list and libstemmer consulted, so each distinct
**      word costs one stemmer call per cache generation and a repeated
**      word costs one hash and one memcmp.
**   5. CJK runs (Han, kana, hangul) never join Latin words; a run of k
**      characters emits its k-1 overlapping bigrams straight from the
**      input bytes (a run of one emits the unigram). No folding,
**      stop words or stemming apply to them.
**
** DEVIATIONS FROM LUCENE (StandardAnalyzer/EnglishAnalyzer), on purpose:
**   - Diacritics are removed only for the combining-diacritics blocks
**     (U+0300-036F, 1AB0-1AFF, 1DC0-1DFF, 20D0-20FF, FE20-FE2F), not for
**     every mark: UTF8PROC_STRIPMARK would delete Indic and other vowel
**     signs and make those words unsearchable garbage.
**   - Compatibility forms are folded (NFKC-like: "ﬁ" -> "fi", fullwidth
**     Latin -> ASCII), as Lucene's ICUFoldingFilter does.
**   - U+2019 is stored as '\'' so "don’t" and "don't" are one term.
**   - ':' and other UAX #29 MidLetter characters separate words, and a
**     '.' or apostrophe also joins letter-digit pairs ("v1.2", "a.1").
**   - CJK runs mix scripts freely (Han + kana bigram across the border).
**   - Words longer than TOK_MAX_BYTES bytes after folding are dropped, not
**     truncated or split (Lucene splits at 255 chars).
**
** OFFSETS. [start,end) is the original span of the word, including a
** stripped possessive "'s" and any marks, excluding separators (so "e.g."
** ends before the final '.'). For a CJK bigram it covers both characters.
** Offsets always satisfy 0 <= start < end <= n.
**
** LIMITATIONS. Stop words are always the English list whatever the
** stemmer language. A tok_ctx is not thread-safe (the stemmer, the cache
** and the word buffer are per context).
*/
#include "plumb_impl.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>
#include <utf8proc.h>

/* The stem cache. 32k distinct words cover a SciFact-sized working set
** (the per-generation vocabulary of a few thousand documents); when either
** the slots or the arena fill, the whole cache is dropped at once: a reset
** costs one memset, far cheaper than any eviction bookkeeping on the hit
** path, and frequent words come back after a handful of misses. */
#define CACHE_SLOTS (1u << 16)        /* power of two; load factor <= 1/2 */
#define CACHE_MAX (CACHE_SLOTS / 2)   /* entries per generation */
#define ARENA_BYTES (1u << 20)        /* key+stem bytes per generation */

/* Longest case folding + compatibility decomposition of one code point
** (U+FDFA expands to 18); longer ones are kept unfolded. */
#define FOLD_MAX 32

typedef struct slot {
    uint32_t h;     /* word hash | 1; 0 marks an empty slot */
    uint32_t off;   /* arena offset of the key, followed by the stem */
    uint8_t klen;   /* key bytes (<= TOK_MAX_BYTES) */
    uint8_t stop;   /* 1: a stop word, never emitted */
    uint16_t vlen;  /* stem bytes; 0: emit nothing */
} slot;

struct tok_ctx {
    struct sb_stemmer *stemmer; /* NULL for "none" */
    int stopwords;              /* 1: drop the English stop list */
    slot *slots;                /* CACHE_SLOTS entries */
    unsigned char *arena;       /* ARENA_BYTES */
    uint32_t arena_used;        /* bytes */
    uint32_t count;             /* live entries */
    unsigned char w[TOK_MAX_BYTES + 4]; /* the folded word being built */
};

/* ---------------------------------------------------------------------
** Character classes
** ------------------------------------------------------------------- */

enum { K_SEP = 0, K_LETTER, K_DIGIT, K_UNDER, K_EXT, K_APOS, K_CJK };

/* ASCII word bytes to their folded form; 0 for everything else
** (including every byte >= 0x80, which takes the slow path). */
#define D_(c) [c] = c
#define U_(c) [c] = (c) + 32
static const unsigned char afold[256] = {
    D_('0'), D_('1'), D_('2'), D_('3'), D_('4'), D_('5'), D_('6'), D_('7'), D_('8'), D_('9'),
    U_('A'), U_('B'), U_('C'), U_('D'), U_('E'), U_('F'), U_('G'), U_('H'), U_('I'),
    U_('J'), U_('K'), U_('L'), U_('M'), U_('N'), U_('O'), U_('P'), U_('Q'), U_('R'),
    U_('S'), U_('T'), U_('U'), U_('V'), U_('W'), U_('X'), U_('Y'), U_('Z'),
    D_('a'), D_('b'), D_('c'), D_('d'), D_('e'), D_('f'), D_('g'), D_('h'), D_('i'),
    D_('j'), D_('k'), D_('l'), D_('m'), D_('n'), D_('o'), D_('p'), D_('q'), D_('r'),
    D_('s'), D_('t'), D_('u'), D_('v'), D_('w'), D_('x'), D_('y'), D_('z'),
    D_('_'),
};
#undef D_
#undef U_

/* Class of an ASCII byte (K_SEP for the rest). Mid-word punctuation is
** handled by explicit comparisons, not here. */
#define L_(c) [c] = K_LETTER
#define N_(c) [c] = K_DIGIT
static const unsigned char akind[256] = {
    N_('0'), N_('1'), N_('2'), N_('3'), N_('4'), N_('5'), N_('6'), N_('7'), N_('8'), N_('9'),
    L_('A'), L_('B'), L_('C'), L_('D'), L_('E'), L_('F'), L_('G'), L_('H'), L_('I'),
    L_('J'), L_('K'), L_('L'), L_('M'), L_('N'), L_('O'), L_('P'), L_('Q'), L_('R'),
    L_('S'), L_('T'), L_('U'), L_('V'), L_('W'), L_('X'), L_('Y'), L_('Z'),
    L_('a'), L_('b'), L_('c'), L_('d'), L_('e'), L_('f'), L_('g'), L_('h'), L_('i'),
    L_('j'), L_('k'), L_('l'), L_('m'), L_('n'), L_('o'), L_('p'), L_('q'), L_('r'),
    L_('s'), L_('t'), L_('u'), L_('v'), L_('w'), L_('x'), L_('y'), L_('z'),
    ['_'] = K_UNDER,
};
#undef L_
#undef N_

/* Decode the sequence at s[i..n). Returns its length, or 0 when it is
** invalid (overlong, surrogate, > U+10FFFF, truncated): the caller then
** skips one byte, so a broken sequence is a separator. */
static int decode(const unsigned char *s, int i, int n, int32_t *cp) {
    unsigned c = s[i];
    if (c < 0xC2) return 0; /* continuation byte or overlong lead */
    if (c < 0xE0) {
        if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
        *cp = (int32_t)((c & 0x1F) << 6 | (s[i + 1] & 0x3F));
        return 2;
    }
    if (c < 0xF0) {
        if (i + 2 >= n) return 0;
        unsigned c1 = s[i + 1], c2 = s[i + 2];
        if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && c1 < 0xA0) return 0;  /* overlong */
        if (c == 0xED && c1 >= 0xA0) return 0; /* surrogate */
        *cp = (int32_t)((c & 0x0F) << 12 | (c1 & 0x3F) << 6 | (c2 & 0x3F));
        return 3;
    }
    if (c < 0xF5) {
        if (i + 3 >= n) return 0;
        unsigned c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
        if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && c1 < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && c1 >= 0x90) return 0; /* above U+10FFFF */
        *cp = (int32_t)((c & 0x07) << 18 | (c1 & 0x3F) << 12 | (c2 & 0x3F) << 6 | (c3 & 0x3F));
        return 4;
    }
    return 0;
}

/* Blocks whose characters get the bigram treatment. The category check
** in classify() drops the punctuation and symbols inside them (、。「」
** ・ ゛), so the ranges can be generous. */
static int in_cjk_range(int32_t cp) {
    if (cp < 0x3005) return 0; /* all of Latin, Greek, Cyrillic, ... */
    return cp <= 0x30FF                       /* 々〆〇, CJK symbols, kana */
        || (cp >= 0x3131 && cp <= 0x318E)     /* Hangul compatibility jamo */
        || (cp >= 0x31F0 && cp <= 0x31FF)     /* Katakana phonetic ext. */
        || (cp >= 0x3400 && cp <= 0x4DBF)     /* Han ext. A */
        || (cp >= 0x4E00 && cp <= 0x9FFF)     /* Han */
        || (cp >= 0xAC00 && cp <= 0xD7A3)     /* Hangul syllables */
        || (cp >= 0xF900 && cp <= 0xFAFF)     /* Han compatibility */
        || (cp >= 0xFF66 && cp <= 0xFFDC)     /* halfwidth kana, hangul */
        || (cp >= 0x1B000 && cp <= 0x1B16F)   /* kana supplement */
        || (cp >= 0x20000 && cp <= 0x3FFFF);  /* Han ext. B.. */
}

/* Invisible characters that UAX #29 ignores inside a word (Format) and
** that carry no meaning in a term: they join, then vanish when folded. */
static int is_joiner(int32_t cp) {
    return cp == 0x00AD || cp == 0x200C || cp == 0x200D || cp == 0x2060 || cp == 0xFEFF;
}

static int classify(int32_t cp) {
    if (cp == 0x2019) return K_APOS;
    int cat = utf8proc_get_property(cp)->category;
    if (cat < UTF8PROC_CATEGORY_LU || cat > UTF8PROC_CATEGORY_NO)
        return is_joiner(cp) ? K_EXT : K_SEP;
    if (in_cjk_range(cp)) return K_CJK;
    if (cat <= UTF8PROC_CATEGORY_LO) return K_LETTER;
    if (cat <= UTF8PROC_CATEGORY_ME) return K_EXT;
    return K_DIGIT;
}

/* Class of the character at s[i] for the mid-word punctuation rules:
** K_LETTER, K_DIGIT or K_SEP (anything that cannot follow a '.'). */
static int peek(const unsigned char *s, int i, int n) {
    if (i >= n) return K_SEP;
    if (s[i] < 0x80) {
        int k = akind[s[i]];
        return k == K_UNDER ? K_SEP : k;
    }
    int32_t cp;
    if (!decode(s, i, n, &cp)) return K_SEP;
    int k = classify(cp);
    return (k == K_LETTER || k == K_DIGIT) ? k : K_SEP;
}

/* Diacritics removed after decomposition. Only the generic combining
** blocks: see DEVIATIONS in the header comment. */
static int is_diacritic(int32_t cp) {
    return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
           (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
           (cp >= 0xFE20 && cp <= 0xFE2F);
}

/* Append the UTF-8 form of cp at w[*wlen] when it fits in TOK_MAX_BYTES;
** *wlen grows regardless, so an overlong word is detected at its end. */
static void put_cp(unsigned char *w, int *wlen, int32_t cp) {
    int l = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (*wlen + l <= TOK_MAX_BYTES) {
        unsigned char *p = w + *wlen;
        switch (l) {
        case 1: p[0] = (unsigned char)cp; break;
        case 2: p[0] = (unsigned char)(0xC0 | cp >> 6);
                p[1] = (unsigned char)(0x80 | (cp & 0x3F)); break;
        case 3: p[0] = (unsigned char)(0xE0 | cp >> 12);
                p[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                p[2] = (unsigned char)(0x80 | (cp & 0x3F)); break;
        default: p[0] = (unsigned char)(0xF0 | cp >> 18);
                 p[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
                 p[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                 p[3] = (unsigned char)(0x80 | (cp & 0x3F)); break;
        }
    }
    *wlen += l;
}

/* Fold one non-ASCII word character into w. */
static void fold_cp(unsigned char *w, int *wlen, int32_t cp) {
    utf8proc_int32_t out[FOLD_MAX];
    int boundclass = 0;
    const utf8proc_option_t opt =
        (utf8proc_option_t)(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    utf8proc_ssize_t r = utf8proc_decompose_char(cp, out, FOLD_MAX, opt, &boundclass);
    if (r < 0 || r > FOLD_MAX) { out[0] = cp; r = 1; }
    for (utf8proc_ssize_t j = 0; j < r; j++)
        if (!is_diacritic(out[j]) && !is_joiner(out[j])) put_cp(w, wlen, out[j]);
}

/* ---------------------------------------------------------------------
** Stop words and the stem cache
** ------------------------------------------------------------------- */

/* Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, exactly. */
static const char *const stop_list[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
    "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
    "there", "these", "they", "this", "to", "was", "will", "with",
};

/* Only runs on a cache miss, so a linear scan is fine. */
static int is_stop(const unsigned char *w, int n) {
    if (n > 5) return 0;
    for (size_t i = 0; i < sizeof stop_list / sizeof stop_list[0]; i++)
        if (strlen(stop_list[i]) == (size_t)n && memcmp(stop_list[i], w, (size_t)n) == 0)
            return 1;
    return 0;
}

/* Not stored anywhere, so neither stable across versions nor endian-safe
** on purpose: 8 bytes per step matters more here than in hash64(). */
static uint32_t whash(const unsigned char *p, int n) {
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)n;
    uint64_t v;
    while (n >= 8) {
        memcpy(&v, p, 8);
        h = (h ^ v) * UINT64_C(0xFF51AFD7ED558CCD);
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    h = (h ^ v) * UINT64_C(0xC4CEB9FE1A85EC53);
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32)) | 1;
}

static void cache_reset(tok_ctx *t) {
    memset(t->slots, 0, CACHE_SLOTS * sizeof *t->slots);
    t->count = 0;
    t->arena_used = 0;
}

/* Look up w[0..n) (n >= 1); on a miss run the stop list and the stemmer
** and remember the result. *term and *tlen receive the term to emit (valid
** until the next call), *tlen = 0 for a stop word. Returns 0, -1 on OOM. */
static int lookup(tok_ctx *t, const unsigned char *w, int n, const unsigned char **term,
                  int *tlen) {
    assert(n >= 1 && n <= TOK_MAX_BYTES); /* klen is a uint8_t */
    uint32_t h = whash(w, n);
    uint32_t i = h & (CACHE_SLOTS - 1);
    for (;;) {
        slot *e = &t->slots[i];
        if (!e->h) break;
        if (e->h == h && e->klen == n && memcmp(t->arena + e->off, w, (size_t)n) == 0) {
            *term = t->arena + e->off + n;
            *tlen = e->stop ? 0 : e->vlen;
            return 0;
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }

    int stop = t->stopwords && is_stop(w, n);
    const unsigned char *v = w;
    int vlen = n;
    if (!stop && t->stemmer) {
        v = sb_stemmer_stem(t->stemmer, w, n);
        if (!v) return -1;
        vlen = sb_stemmer_length(t->stemmer);
    }
    *term = v;
    *tlen = stop ? 0 : vlen;
    if (vlen > 0xFFFF || (uint32_t)(n + vlen) > ARENA_BYTES) return 0; /* uncacheable */

    if (t->count >= CACHE_MAX || t->arena_used + (uint32_t)(n + vlen) > ARENA_BYTES) {
        cache_reset(t);
        i = h & (CACHE_SLOTS - 1);
    }
    slot *e = &t->slots[i];
    e->h = h;
    e->off = t->arena_used;
    e->klen = (uint8_t)n;
    e->stop = (uint8_t)stop;
    e->vlen = (uint16_t)vlen;
    memcpy(t->arena + e->off, w, (size_t)n);
    memcpy(t->arena + e->off + n, v, (size_t)vlen);
    t->arena_used += (uint32_t)(n + vlen);
    t->count++;
    *term = t->arena + e->off + n;
    return 0;
}

/* The folded word t->w[0..wlen) spanning text[start,end): possessive,
** stop word, stem, emit. */
static int finish_word(tok_ctx *t, int wlen, int start, int end, tok_emit_fn emit, void *arg) {
    if (wlen == 0 || wlen > TOK_MAX_BYTES) return 0; /* only marks, or too long */
    if (t->w[0] == '_') { /* "____" rules in plain text are not words */
        int k = 1;
        while (k < wlen && t->w[k] == '_') k++;
        if (k == wlen) return 0;
    }
    if (wlen >= 3 && t->w[wlen - 2] == '\'' && t->w[wlen - 1] == 's') wlen -= 2;
    const unsigned char *term;
    int tlen;
    if (lookup(t, t->w, wlen, &term, &tlen)) return -1;
    if (tlen == 0) return 0;
    return emit(arg, (const char *)term, tlen, start, end);
}

/* ---------------------------------------------------------------------
** Segmentation
** ------------------------------------------------------------------- */

/* Consume the word starting at *pi (a letter, digit or '_'), fold it into
** t->w and emit it. *pi is left after the word. */
static int word(tok_ctx *t, const unsigned char *s, int n, int *pi, tok_emit_fn emit, void *arg) {
    unsigned char *w = t->w;
    int i = *pi, start = i, wlen = 0;
    int prev = K_SEP; /* class of the last letter/digit/underscore, for mid rules */
    while (i < n) {
        unsigned c = s[i];
        unsigned f = afold[c];
        if (f) { /* the hot path: ASCII letters and digits */
            if (wlen < TOK_MAX_BYTES) w[wlen] = (unsigned char)f;
            wlen++;
            prev = akind[c];
            i++;
            continue;
        }
        if (c < 0x80) {
            if (c != '.' && c != '\'' && c != ',') break;
            int next = peek(s, i + 1, n);
            if (c == ',' ? (prev != K_DIGIT || next != K_DIGIT)
                         : ((prev != K_LETTER && prev != K_DIGIT) || next == K_SEP))
                break;
            if (wlen < TOK_MAX_BYTES) w[wlen] = (unsigned char)c;
            wlen++;
            i++;
            continue;
        }
        int32_t cp;
        int l = decode(s, i, n, &cp);
        if (!l) break;
        int k = classify(cp);
        if (k == K_LETTER || k == K_DIGIT) {
            fold_cp(w, &wlen, cp);
            prev = k;
        } else if (k == K_EXT) {
            fold_cp(w, &wlen, cp); /* marks don't change prev: "é." is "e." */
        } else if (k == K_APOS) {
            if ((prev != K_LETTER && prev != K_DIGIT) || peek(s, i + l, n) == K_SEP) break;
            if (wlen < TOK_MAX_BYTES) w[wlen] = '\'';
            wlen++;
        } else {
            break; /* separator or CJK */
        }
        i += l;
    }
    *pi = i;
    return finish_word(t, wlen, start, i, emit, arg);
}

/* Emit the bigrams of the CJK run starting at *pi (whose first character,
** l bytes long, is already known to be CJK). */
static int cjk(const unsigned char *s, int n, int *pi, int l, tok_emit_fn emit, void *arg) {
    int a = *pi, b = a + l; /* previous char [a,b) */
    int chars = 1, rc = 0;
    for (;;) {
        int32_t cp = 0;
        int l2 = b < n && s[b] >= 0x80 ? decode(s, b, n, &cp) : 0;
        if (!l2 || classify(cp) != K_CJK) break;
        rc = emit(arg, (const char *)s + a, b + l2 - a, a, b + l2);
        if (rc) goto done;
        chars++;
        a = b;
        b += l2;
    }
    if (chars == 1) rc = emit(arg, (const char *)s + a, b - a, a, b);
done:
    *pi = b;
    return rc;
}

int tok_run(tok_ctx *t, const char *text, int n, tok_emit_fn emit, void *arg) {
    const unsigned char *s = (const unsigned char *)text;
    int i = 0, rc = 0;
    if (!text || n <= 0) return 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (!afold[c]) { i++; continue; }
            rc = word(t, s, n, &i, emit, arg);
            if (rc) goto done;
            continue;
        }
        int32_t cp;
        int l = decode(s, i, n, &cp);
        if (!l) { i++; continue; }
        int k = classify(cp);
        if (k == K_LETTER || k == K_DIGIT) {
            rc = word(t, s, n, &i, emit, arg);
        } else if (k == K_CJK) {
            rc = cjk(s, n, &i, l, emit, arg);
        } else {
            i += l; /* separators; marks and apostrophes can't start a word */
        }
        if (rc) goto done;
    }
done:
    return rc;
}

/* ---------------------------------------------------------------------
** Life cycle
** ------------------------------------------------------------------- */

int tok_language_ok(const char *language) {
    if (!language) return 0;
    if (strcmp(language, "none") == 0) return 1;
    struct sb_stemmer *st = sb_stemmer_new(language, "UTF_8");
    if (!st) return 0;
    sb_stemmer_delete(st);
    return 1;
}

tok_ctx *tok_new(const char *language, int stopwords) {
    plumb_status rc = PLUMB_OK;
    tok_ctx *t = NULL;
    if (!language) {
        rc = err_set(PLUMB_MISUSE, "tokenizer language is NULL");
        goto done;
    }
    t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->stopwords = stopwords != 0;
    if (strcmp(language, "none") != 0) {
        t->stemmer = sb_stemmer_new(language, "UTF_8");
        /* sb_stemmer_new also fails on OOM; an unknown name is far likelier
        ** and tok_language_ok() tells them apart. */
        if (!t->stemmer && tok_language_ok(language)) goto oom;
        if (!t->stemmer) {
            char names[512];
            size_t used = 0;
            names[0] = 0;
            for (const char **p = sb_stemmer_list(); *p && used < sizeof names - 64; p++) {
                int w = snprintf(names + used, sizeof names - used, "%s, ", *p);
                if (w > 0) used += (size_t)w;
            }
            rc = err_set(PLUMB_MISUSE, "unknown stemmer language \"%s\" (known: %snone)",
                         language, names);
            goto done;
        }
    }
    /* calloc: a fresh cache's pages are only touched as words arrive */
    t->slots = calloc(CACHE_SLOTS, sizeof *t->slots);
    t->arena = malloc(ARENA_BYTES);
    if (!t->slots || !t->arena) goto oom;
    goto done;
oom:
    rc = err_set(PLUMB_NOMEM, "tokenizer for language \"%s\": out of memory", language);
done:
    if (rc != PLUMB_OK) {
        tok_free(t);
        t = NULL;
    }
    return t;
}

void tok_free(tok_ctx *t) {
    if (!t) return;
    if (t->stemmer) sb_stemmer_delete(t->stemmer);
    free(t->slots);
    free(t->arena);
    free(t);
}
