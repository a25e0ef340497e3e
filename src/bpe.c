/*
** bpe.c -- exact byte-level BPE token counting and encoding.
**
** Implements plumb_tokenizer_* (see plumb.h): loading tiktoken rank files
** (with their .meta.json) and Hugging Face tokenizer.json byte-level BPE
** models, then counting or encoding text exactly as those tokenizers do:
**   1. split the text at special / added tokens (when recognised);
**   2. NFC-normalise the ordinary segments (tokenizer.json with an NFC
**      normalizer only);
**   3. pre-tokenize each segment with the model's regex, implemented by
**      hand per pattern family (bpe_match, essay below);
**   4. merge each piece's bytes by rank, lowest first, leftmost on ties.
**
** KEY INVARIANT: a loaded tokenizer is never written again. Every table is
** built in plumb_tokenizer_load and read-only afterwards, so any number of
** threads may count with one handle; a call's scratch lives in that call.
**
** Ranks. tiktoken merges the adjacent pair whose concatenated bytes have
** the lowest rank in the vocabulary (the rank is the token id). Hugging
** Face BPE merges the adjacent pair whose merge rule comes first in the
** merges list. Both are expressed here as one "pair priority" function
** returning (priority, merged id); the merge loops are shared.
**
** WORKLOAD: prompt packing counts every candidate passage of every query,
** so throughput on ordinary prose matters most. Most pieces are whole
** vocabulary entries (" the", " retrieval") and resolve with one hash
** probe; short pieces merge with a small quadratic scan over an array;
** pieces longer than BPE_SCAN_MAX bytes (runs of one character, base64,
** long numbers in some patterns) use a binary heap over a linked list, so
** a megabyte of "aaaa..." costs O(n log n), not O(n^2).
*/
#include "plumb_impl.h"

#include <utf8proc.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BPE_SCAN_MAX 64        /* pieces up to this many bytes use the scan */
#define BPE_NONE UINT32_MAX    /* no such token / no merge */
#define BPE_MAX_FILE (1u << 30) /* refuse tokenizer files above 1 GiB */

enum { KIND_TIKTOKEN = 1, KIND_HF = 2 };
enum { PAT_CL100K = 1, PAT_O200K = 2, PAT_QWEN = 3 };

/* Character classes (bit set) used by the pre-tokenizers. */
enum {
    C_L = 1,     /* \p{L} */
    C_N = 2,     /* \p{N} */
    C_S = 4,     /* \s: Unicode White_Space */
    C_NL = 8,    /* \r or \n */
    C_LU = 16,   /* Lu or Lt */
    C_LL = 32,   /* Ll */
    C_LMO = 64,  /* Lm or Lo */
    C_M = 128    /* \p{M}: Mn, Mc, Me */
};
#define C_UPPERISH (C_LU | C_LMO | C_M) /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
#define C_LOWERISH (C_LL | C_LMO | C_M) /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] */

typedef struct special_tok {
    char *text;   /* the token's text, owned */
    size_t len;   /* bytes */
    uint32_t id;
    int always;   /* 1: recognised even when specials are not allowed */
} special_tok;

/* A vocabulary hash slot. Tokens of up to 8 bytes (most lookups) are
** compared without touching the token arrays: the tag carries the length
** and key8 the bytes. */
typedef struct vslot {
    uint64_t key8; /* the first 8 bytes, zero-padded */
    uint32_t tag;  /* hash bits 8..31 | min(length, 255) */
    uint32_t id1;  /* id + 1; 0 = empty slot */
} vslot;

struct plumb_tokenizer {
    int kind;             /* KIND_TIKTOKEN or KIND_HF */
    int pat;              /* PAT_* pre-tokenizer family */
    int nfc;              /* 1: NFC-normalise ordinary text first */
    char name[96];
    uint32_t nids;        /* one more than the largest id (incl. specials) */
    size_t ids_cap;       /* entries allocated in tok_off and tok_len */
    uint32_t *tok_off;    /* nids entries: offset of token bytes in blob */
    uint32_t *tok_len;    /* nids entries: byte length; 0 = no such id */
    unsigned char *blob;  /* all token bytes */
    size_t blob_len, blob_cap;
    vslot *slot;          /* bytes -> id, open addressing */
    uint32_t slot_mask;
    /* Hugging Face merges: (left id, right id) -> (rank, merged id) */
    uint64_t *pair_key;   /* key + 1 so 0 means empty */
    uint64_t *pair_val;   /* rank << 32 | merged id */
    uint32_t pair_mask;
    uint8_t *whole_ok;    /* HF: merging token i's own bytes gives [i] */
    uint64_t *byte_pair;  /* 65536: (prio << 32 | merged) of two single bytes */
    uint32_t byte_id[256];/* id of each single byte */
    uint8_t ascii_cls[128];
    special_tok *specials;
    size_t nspecials;
    uint8_t special_first[256]; /* 1: some special token starts with byte */
};

/* ------------------------------------------------------------------ */
/* Hashing and lookup                                                  */
/* ------------------------------------------------------------------ */

static inline uint64_t bytes_hash(const unsigned char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94d049bb133111ebull;
        h ^= h >> 32;
    }
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t first8(const unsigned char *p, size_t n) {
    uint64_t w = 0;
    memcpy(&w, p, n < 8 ? n : 8);
    return w;
}

static inline uint32_t slot_tag(uint64_t h, size_t n) {
    return ((uint32_t)h & ~0xFFu) | (uint32_t)(n < 255 ? n : 255);
}

/* The id of the ordinary token with bytes p[0..n), or BPE_NONE. */
static inline uint32_t vocab_find(const plumb_tokenizer *t, const unsigned char *p, size_t n) {
    uint64_t h = bytes_hash(p, n), k8 = first8(p, n);
    uint32_t tag = slot_tag(h, n), i = (uint32_t)(h >> 32) & t->slot_mask;
    for (;;) {
        const vslot *s = &t->slot[i];
        if (!s->id1) return BPE_NONE;
        if (s->tag == tag && s->key8 == k8) {
            uint32_t id = s->id1 - 1;
            if (n <= 8) return id; /* length (in the tag) and bytes match */
            if (t->tok_len[id] == n && memcmp(t->blob + t->tok_off[id] + 8, p + 8, n - 8) == 0)
                return id;
        }
        i = (i + 1) & t->slot_mask;
    }
}

static inline uint64_t pair_hash(uint64_t k) {
    k ^= k >> 31;
    k *= 0x7fb5d329728ea185ull;
    k ^= k >> 27;
    k *= 0x81dadef4bc2dd44dull;
    k ^= k >> 33;
    return k;
}

/* Priority of merging the adjacent parts piece[a..m) (id la) and
** piece[m..b) (id rb): lower merges first; BPE_NONE when they do not
** merge. *merged receives the resulting id. */
static inline uint32_t pair_prio(const plumb_tokenizer *t, const unsigned char *piece, size_t a,
                                 size_t b, uint32_t la, uint32_t rb, uint32_t *merged) {
    if (t->kind == KIND_TIKTOKEN) {
        uint32_t r = vocab_find(t, piece + a, b - a);
        *merged = r;
        return r;
    }
    uint64_t key = ((uint64_t)la << 32 | rb) + 1;
    uint32_t i = (uint32_t)pair_hash(key) & t->pair_mask;
    for (;;) {
        uint64_t k = t->pair_key[i];
        if (!k) return BPE_NONE;
        if (k == key) {
            *merged = (uint32_t)t->pair_val[i];
            return (uint32_t)(t->pair_val[i] >> 32);
        }
        i = (i + 1) & t->pair_mask;
    }
}

/* ------------------------------------------------------------------ */
/* Merging one piece                                                   */
/* ------------------------------------------------------------------ */

static int ids_push(uint32_t **ids, size_t *n, size_t *cap, uint32_t id) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        if (nc > SIZE_MAX / sizeof(uint32_t)) return -1;
        uint32_t *p = realloc(*ids, nc * sizeof(uint32_t));
        if (!p) return -1;
        *ids = p;
        *cap = nc;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

/* Short pieces: parts in arrays, each step scans for the lowest pair.
** Mirrors tiktoken's _byte_pair_merge. len <= BPE_SCAN_MAX. */
static int merge_scan(const plumb_tokenizer *t, const unsigned char *piece, size_t len,
                      uint32_t **ids, size_t *n, size_t *cap) {
    uint32_t start[BPE_SCAN_MAX + 1], id[BPE_SCAN_MAX], pr[BPE_SCAN_MAX], nid[BPE_SCAN_MAX];
    size_t m = len;
    for (size_t i = 0; i < len; i++) {
        start[i] = (uint32_t)i;
        id[i] = t->byte_id[piece[i]];
    }
    start[len] = (uint32_t)len;
    for (size_t i = 0; i + 1 < m; i++) {
        uint64_t v = t->byte_pair[(size_t)piece[i] << 8 | piece[i + 1]];
        pr[i] = (uint32_t)(v >> 32);
        nid[i] = (uint32_t)v;
    }
    while (m > 1) {
        size_t best = 0;
        uint32_t bp = BPE_NONE;
        for (size_t i = 0; i + 1 < m; i++)
            if (pr[i] < bp) {
                bp = pr[i];
                best = i;
            }
        if (bp == BPE_NONE) break;
        id[best] = nid[best];
        /* drop part best+1 */
        memmove(start + best + 1, start + best + 2, (m - best - 1) * sizeof start[0]);
        memmove(id + best + 1, id + best + 2, (m - best - 2) * sizeof id[0]);
        if (best + 3 <= m) { /* pairs best+2 .. m-2 move down one */
            memmove(pr + best + 1, pr + best + 2, (m - best - 3) * sizeof pr[0]);
            memmove(nid + best + 1, nid + best + 2, (m - best - 3) * sizeof nid[0]);
        }
        m--;
        if (best + 1 < m)
            pr[best] = pair_prio(t, piece, start[best], start[best + 2], id[best], id[best + 1],
                                 &nid[best]);
        if (best > 0)
            pr[best - 1] = pair_prio(t, piece, start[best - 1], start[best + 1], id[best - 1],
                                     id[best], &nid[best - 1]);
    }
    for (size_t i = 0; i < m; i++)
        if (ids_push(ids, n, cap, id[i])) return -1;
    return 0;
}

typedef struct heap_ent {
    uint32_t prio;  /* pair priority, lower first */
    uint32_t left;  /* start byte of the left part */
    uint32_t end;   /* end byte of the right part when pushed */
    uint32_t merged;/* id of the merged token */
} heap_ent;

static inline int heap_less(const heap_ent *a, const heap_ent *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(heap_ent *h, size_t *hn, heap_ent e) {
    size_t i = (*hn)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *hn) {
    heap_ent top = h[0], last = h[--(*hn)];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

/* Long pieces: parts form a linked list indexed by their start byte; the
** candidate pairs sit in a min-heap ordered by (priority, start), which is
** the scan's "lowest priority, leftmost" order. Entries made stale by an
** earlier merge are recognised (left part dead, or right part no longer
** ending where it did) and skipped. */
static int merge_heap(const plumb_tokenizer *t, const unsigned char *piece, size_t len,
                      uint32_t **ids, size_t *n, size_t *cap) {
    int rc = -1;
    if (len >= UINT32_MAX / 2) return -1;
    uint32_t *nxt = malloc((len + 1) * sizeof *nxt);
    uint32_t *prv = malloc((len + 1) * sizeof *prv);
    uint32_t *id = malloc((len + 1) * sizeof *id);
    heap_ent *h = malloc(3 * (len + 1) * sizeof *h); /* len + 2 pushes per merge, <= 3 len */
    size_t hn = 0;
    if (!nxt || !prv || !id || !h) goto done;
    for (size_t i = 0; i < len; i++) {
        nxt[i] = (uint32_t)(i + 1);
        prv[i] = (uint32_t)(i ? i - 1 : UINT32_MAX);
        id[i] = t->byte_id[piece[i]];
    }
    for (size_t i = 0; i + 1 < len; i++) {
        uint64_t v = t->byte_pair[(size_t)piece[i] << 8 | piece[i + 1]];
        heap_ent e = {(uint32_t)(v >> 32), (uint32_t)i, (uint32_t)(i + 2), (uint32_t)v};
        if (e.prio != BPE_NONE) heap_push(h, &hn, e);
    }
    while (hn) {
        heap_ent e = heap_pop(h, &hn);
        uint32_t a = e.left;
        if (id[a] == BPE_NONE) continue; /* left part was absorbed */
        uint32_t b = nxt[a];
        if (b >= len || nxt[b] != e.end) continue; /* right part changed */
        id[a] = e.merged;
        id[b] = BPE_NONE;
        nxt[a] = nxt[b];
        if (nxt[a] < len) prv[nxt[a]] = a;
        if (prv[a] != UINT32_MAX) {
            uint32_t p = prv[a];
            heap_ent f = {0, p, nxt[a], 0};
            f.prio = pair_prio(t, piece, p, nxt[a], id[p], id[a], &f.merged);
            if (f.prio != BPE_NONE) heap_push(h, &hn, f);
        }
        if (nxt[a] < len) {
            uint32_t r = nxt[a];
            heap_ent f = {0, a, nxt[r], 0};
            f.prio = pair_prio(t, piece, a, nxt[r], id[a], id[r], &f.merged);
            if (f.prio != BPE_NONE) heap_push(h, &hn, f);
        }
    }
    for (uint32_t i = 0; i < len; i = nxt[i])
        if (ids_push(ids, n, cap, id[i])) goto done;
    rc = 0;
done:
    free(nxt);
    free(prv);
    free(id);
    free(h);
    return rc;
}

/* Fill byte_pair once the vocabulary (and for HF the merges) is known. */
static plumb_status build_byte_pairs(plumb_tokenizer *t) {
    t->byte_pair = malloc(65536 * sizeof *t->byte_pair);
    if (!t->byte_pair) return err_set(PLUMB_NOMEM, "bpe: out of memory");
    for (size_t a = 0; a < 256; a++)
        for (size_t b = 0; b < 256; b++) {
            unsigned char two[2] = {(unsigned char)a, (unsigned char)b};
            uint32_t merged = BPE_NONE;
            uint32_t prio = pair_prio(t, two, 0, 2, t->byte_id[a], t->byte_id[b], &merged);
            t->byte_pair[a << 8 | b] = (uint64_t)prio << 32 | merged;
        }
    return PLUMB_OK;
}

plumb_status bpe_encode_piece(const plumb_tokenizer *t, const unsigned char *piece, size_t len,
                              int path, uint32_t **ids, size_t *n, size_t *cap) {
    if (len == 0) return PLUMB_OK;
    if (path == 0) {
        uint32_t w = vocab_find(t, piece, len);
        if (w != BPE_NONE && (t->kind == KIND_TIKTOKEN || t->whole_ok[w]))
            return ids_push(ids, n, cap, w) ? err_set(PLUMB_NOMEM, "bpe: out of memory")
                                            : PLUMB_OK;
        path = len <= BPE_SCAN_MAX ? 1 : 2;
    }
    if (path == 1 && len > BPE_SCAN_MAX) path = 2;
    int r = path == 1 ? merge_scan(t, piece, len, ids, n, cap)
                      : merge_heap(t, piece, len, ids, n, cap);
    return r ? err_set(PLUMB_NOMEM, "bpe: out of memory") : PLUMB_OK;
}

/* ------------------------------------------------------------------ */
/* Pre-tokenization                                                    */
/* ------------------------------------------------------------------ */

/*
** HOW THE PRE-TOKENIZER MATCHES THE REGEX
**
** The three supported patterns are alternations tried left to right at
** the current position by a backtracking engine (Rust fancy-regex for
** tiktoken, Oniguruma for tokenizer.json, V8 for the JavaScript
** references): the FIRST alternative that matches wins, not the longest,
** and each greedy quantifier yields the first success found while giving
** back characters one at a time. The text is then cut at the match and
** matching resumes after it. Below, P is [^\s\p{L}\p{N}] ("punctuation"),
** X is [^\r\n\p{L}\p{N}] (anything but a letter, number or line break,
** so also spaces, tabs and marks), U is [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
** and W is [\p{Ll}\p{Lm}\p{Lo}\p{M}]; c0, c1 are the first two characters.
**
** cl100k_base and Qwen (the Qwen pattern differs only in \p{N} instead of
** \p{N}{1,3}; its (?i:'s|...) is the same contraction set):
**   1. '(?i:[sdmt]|ll|ve|re)  -- an apostrophe and one of the seven
**      suffixes, ASCII letters in either case. The one-letter and the
**      two-letter suffixes start with different letters, so no order
**      question arises.
**   2. X?\p{L}+  -- X and \p{L} are disjoint, so "X?" takes c0 exactly
**      when c0 is in X; then c1 must be a letter, else the engine gives
**      the X back and \p{L}+ fails at c0 (not a letter). The possessive
**      ?+ of tiktoken's spelling changes nothing for the same reason.
**      Note that X contains ' ' and '\t': " word" and "\tword" are one
**      piece, and this alternative is tried before the whitespace ones.
**   3. \p{N}{1,3}  -- one to three numbers (Qwen: exactly one).
**   4. " ?P+[\r\n]*"  -- an optional space, a maximal punctuation run
**      (a space not followed by P gives the space back and fails, since a
**      space is not P), then any \r and \n. P and [\r\n] are disjoint, so
**      the possessive ++ is again immaterial.
**   5. \s*[\r\n]+  -- \s* first takes the whole whitespace run, then gives
**      back characters until a \r or \n follows; [\r\n]+ then takes that
**      one character (what follows it is not \r/\n, else \s* would have
**      stopped later). So: the run up to and including its LAST line
**      break; fails if the run has none. tiktoken's "\s*[\r\n]" is
**      identical.
**   6. \s+(?!\S)  -- the whitespace run, if it ends the text; otherwise
**      the run minus its last character, provided that leaves at least
**      one (the lookahead then sees that last whitespace character, not
**      \S). This is why "a   b" splits as "a", "  ", " b".
**   7. \s+  -- a single whitespace character before non-space text.
** Every character matches one of 2 (letters, with X?), 3 (numbers), 4
** (P) or 5-7 (\s), so the text is always fully covered.
**
** o200k_base replaces 1-2 by two letter alternatives, each followed by an
** optional contraction (?i:'s|'t|'re|'ve|'m|'ll|'d)?:
**   1a. X?U*W+  -- after the optional X, U* takes the maximal run of U;
**       W+ must then match at the first position the engine reaches by
**       giving U back. If the character after the U run is Ll (the only
**       W that is not U) W+ starts there and takes the maximal W run.
**       Otherwise the engine backs up to the LAST character of the U run
**       that is also W (Lm, Lo or M); W+ takes that one character (the
**       characters after it are Lu/Lt, not W). With no such character
**       the match fails with X taken and is retried without X: this
**       matters when c0 is a mark (\p{M} is in X and in U and W).
**   2a. X?U+W*  -- same prefix rule; U+ takes the maximal U run (at least
**       one), W* whatever W run follows (it can only start with Ll).
**   3-7 as for cl100k, except that 4 is " ?P+[\r\n/]*".
** Examples: "HelloWorld" gives "Hello" (U* = "H", W+ = "ello") and
** "World"; "HTMLParser" is one piece (U* = "HTMLP", W+ = "arser"); "ABC"
** fails 1a (no W anywhere) and is taken whole by 2a.
**
** LIMITATION: the contractions are matched in ASCII case only. The
** "(?i:...)" spellings (tiktoken's Python source, tokenizer.json) would
** in Rust regex and Oniguruma also accept U+017F LATIN SMALL LETTER LONG
** S as 's' ("'\u017f"); the expanded spellings of js-tiktoken and the
** *.meta.json files, and transformers.js, do not, and neither does plumb.
**
** \s is Unicode White_Space (U+0009-000D, U+0020, U+0085, U+00A0, U+1680,
** U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000), as in Rust's regex
** crate and Oniguruma. (JavaScript's \s differs: it adds U+FEFF and drops
** U+0085; the test vectors avoid those two characters.) Letter, number
** and mark classes come from utf8proc's general categories.
*/

static unsigned cls_of_cp(int32_t cp) {
    unsigned c = 0;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LT: c = C_L | C_LU; break;
    case UTF8PROC_CATEGORY_LL: c = C_L | C_LL; break;
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: c = C_L | C_LMO; break;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: c = C_M; break;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: c = C_N; break;
    default: break;
    }
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F || cp == 0x3000)
        c |= C_S;
    if (cp == '\r' || cp == '\n') c |= C_NL;
    return c;
}

/* Class of the character at s[i] (i < n); *len receives its byte length.
** An invalid UTF-8 byte is a character of its own with no class. */
static inline unsigned cls_at(const plumb_tokenizer *t, const unsigned char *s, size_t n, size_t i,
                              size_t *len) {
    unsigned b = s[i];
    if (b < 0x80) {
        *len = 1;
        return t->ascii_cls[b];
    }
    int32_t cp;
    size_t l;
    if (b >= 0xC2 && b <= 0xDF) {
        l = 2;
        cp = (int32_t)(b & 0x1F);
    } else if (b >= 0xE0 && b <= 0xEF) {
        l = 3;
        cp = (int32_t)(b & 0x0F);
    } else if (b >= 0xF0 && b <= 0xF4) {
        l = 4;
        cp = (int32_t)(b & 0x07);
    } else {
        *len = 1;
        return 0;
    }
    if (i + l > n) {
        *len = 1;
        return 0;
    }
    for (size_t k = 1; k < l; k++) {
        unsigned c = s[i + k];
        if ((c & 0xC0) != 0x80) {
            *len = 1;
            return 0;
        }
        cp = (cp << 6) | (int32_t)(c & 0x3F);
    }
    if ((l == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (l == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *len = 1;
        return 0;
    }
    *len = l;
    return cls_of_cp(cp);
}

/* Length of the contraction ('s 't 're 've 'm 'll 'd, any ASCII case) at
** s[p], or 0. */
static size_t contraction(const unsigned char *s, size_t n, size_t p) {
    if (p + 1 >= n || s[p] != '\'') return 0;
    unsigned a = s[p + 1] | 0x20;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (p + 2 >= n) return 0;
    unsigned b = s[p + 2] | 0x20;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* End of the maximal run of characters whose class meets `mask`, from p. */
static inline size_t run(const plumb_tokenizer *t, const unsigned char *s, size_t n, size_t p,
                         unsigned mask) {
    size_t l;
    while (p < n && (cls_at(t, s, n, p, &l) & mask)) p += l;
    return p;
}

/* o200k 1a from s0 (after the optional X): end or 0 on failure. */
static size_t o200k_lower(const plumb_tokenizer *t, const unsigned char *s, size_t n, size_t s0) {
    size_t p = s0, l, lastw_end = 0;
    unsigned c = 0;
    while (p < n && ((c = cls_at(t, s, n, p, &l)) & C_UPPERISH)) {
        if (c & C_LOWERISH) lastw_end = p + l;
        p += l;
    }
    if (p < n && (c & C_LL)) return run(t, s, n, p, C_LOWERISH);
    return lastw_end; /* 0 when no W in the U run: fail */
}

/* o200k 2a from s0: end or 0 on failure. */
static size_t o200k_upper(const plumb_tokenizer *t, const unsigned char *s, size_t n, size_t s0) {
    size_t e = run(t, s, n, s0, C_UPPERISH);
    if (e == s0) return 0;
    return run(t, s, n, e, C_LOWERISH);
}

size_t bpe_match(const plumb_tokenizer *t, const unsigned char *s, size_t n, size_t p, int *emit) {
    size_t l0, l1, e;
    unsigned c0 = cls_at(t, s, n, p, &l0);
    int x0 = !(c0 & (C_L | C_N | C_NL)); /* c0 in X */
    *emit = 1;
    if (t->pat == PAT_O200K) {
        /* 1a, then 2a; each with X, then without. The helpers return 0
        ** only on failure: a match ends after its start. */
        if (x0 && p + l0 < n && (e = o200k_lower(t, s, n, p + l0)) != 0) goto contr;
        if ((e = o200k_lower(t, s, n, p)) != 0) goto contr;
        if (x0 && p + l0 < n && (e = o200k_upper(t, s, n, p + l0)) != 0) goto contr;
        if ((e = o200k_upper(t, s, n, p)) != 0) goto contr;
    } else {
        size_t k = contraction(s, n, p);
        if (k) return p + k;
        if (c0 & C_L) return run(t, s, n, p, C_L);
        if (x0 && p + l0 < n && (cls_at(t, s, n, p + l0, &l1) & C_L))
            return run(t, s, n, p + l0, C_L);
    }
    if (c0 & C_N) {
        int max = t->pat == PAT_QWEN ? 1 : 3;
        e = p;
        for (int i = 0; i < max && e < n; i++) {
            size_t l;
            if (!(cls_at(t, s, n, e, &l) & C_N)) break;
            e += l;
        }
        return e;
    }
    {
        size_t q = p;
        unsigned cq = c0;
        size_t lq = l0;
        if (s[p] == ' ' && p + 1 < n) {
            q = p + 1;
            cq = cls_at(t, s, n, q, &lq);
        }
        if (!(cq & (C_S | C_L | C_N))) {
            e = q; /* P has no class bit of its own: walk by hand */
            while (e < n) {
                size_t l;
                if (cls_at(t, s, n, e, &l) & (C_S | C_L | C_N)) break;
                e += l;
            }
            while (e < n && (s[e] == '\r' || s[e] == '\n' || (t->pat == PAT_O200K && s[e] == '/')))
                e++;
            return e;
        }
    }
    if (c0 & C_S) {
        size_t q = p, last_nl_end = 0, last_start = p, l;
        while (q < n && (cls_at(t, s, n, q, &l) & C_S)) {
            if (s[q] == '\r' || s[q] == '\n') last_nl_end = q + 1;
            last_start = q;
            q += l;
        }
        if (last_nl_end) return last_nl_end;
        if (q == n) return q;
        if (last_start > p) return last_start;
        return q;
    }
    *emit = 0;
    return p + l0;
contr:
    return e + contraction(s, n, e);
}

/* ------------------------------------------------------------------ */
/* Encoding driver                                                     */
/* ------------------------------------------------------------------ */

typedef struct enc_out {
    uint32_t *ids;   /* ids of the text so far (count mode: of one piece) */
    size_t n, cap;   /* entries used / allocated */
    int count_only;  /* 1: ids are dropped after each piece */
    size_t count;    /* count mode: tokens so far */
} enc_out;

static plumb_status encode_ordinary(const plumb_tokenizer *t, const unsigned char *s, size_t n,
                                    enc_out *o) {
    size_t p = 0;
    while (p < n) {
        int emit;
        size_t e = bpe_match(t, s, n, p, &emit);
        if (emit) {
            plumb_status rc = bpe_encode_piece(t, s + p, e - p, 0, &o->ids, &o->n, &o->cap);
            if (rc) return rc;
            if (o->count_only) {
                o->count += o->n;
                o->n = 0;
            }
        }
        p = e;
    }
    return PLUMB_OK;
}

static plumb_status encode_segment(const plumb_tokenizer *t, const unsigned char *s, size_t n,
                                   enc_out *o) {
    if (t->nfc) {
        size_t i = 0;
        while (i < n && s[i] < 0x80) i++;
        if (i < n) {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r = n > (size_t)SSIZE_MAX / 8 ? -1
                : utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                               (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
            if (r == UTF8PROC_ERROR_NOMEM) return err_set(PLUMB_NOMEM, "bpe: out of memory");
            if (r >= 0) { /* invalid UTF-8 (r < 0) is encoded as it is */
                plumb_status rc = encode_ordinary(t, dst, (size_t)r, o);
                free(dst);
                return rc;
            }
            free(dst);
        }
    }
    return encode_ordinary(t, s, n, o);
}

static plumb_status encode_text(const plumb_tokenizer *t, const unsigned char *s, size_t n,
                                int allow_special, enc_out *o) {
    size_t seg = 0, i = 0;
    while (i < n) {
        if (!t->special_first[s[i]]) {
            i++;
            continue;
        }
        const special_tok *best = NULL;
        for (size_t k = 0; k < t->nspecials; k++) {
            const special_tok *sp = &t->specials[k];
            if (!(allow_special || sp->always) || sp->len > n - i) continue;
            if (memcmp(s + i, sp->text, sp->len) == 0 && (!best || sp->len > best->len)) best = sp;
        }
        if (!best) {
            i++;
            continue;
        }
        plumb_status rc = encode_segment(t, s + seg, i - seg, o);
        if (rc) return rc;
        if (ids_push(&o->ids, &o->n, &o->cap, best->id))
            return err_set(PLUMB_NOMEM, "bpe: out of memory");
        if (o->count_only) {
            o->count += o->n;
            o->n = 0;
        }
        i += best->len;
        seg = i;
    }
    return encode_segment(t, s + seg, n - seg, o);
}

plumb_status plumb_tokenizer_count(const plumb_tokenizer *tok, const char *text, size_t len,
                                   int allow_special, size_t *n) {
    if (n) *n = 0;
    if (!tok || !n || (!text && len)) return err_set(PLUMB_MISUSE, "plumb_tokenizer_count: NULL argument");
    enc_out o = {NULL, 0, 0, 1, 0};
    plumb_status rc = encode_text(tok, (const unsigned char *)text, len, allow_special, &o);
    free(o.ids);
    if (rc == PLUMB_OK) *n = o.count;
    return rc;
}

plumb_status plumb_tokenizer_encode(const plumb_tokenizer *tok, const char *text, size_t len,
                                    int allow_special, uint32_t **ids, size_t *n) {
    if (ids) *ids = NULL;
    if (n) *n = 0;
    if (!tok || !ids || !n || (!text && len))
        return err_set(PLUMB_MISUSE, "plumb_tokenizer_encode: NULL argument");
    enc_out o = {NULL, 0, 0, 0, 0};
    plumb_status rc = encode_text(tok, (const unsigned char *)text, len, allow_special, &o);
    if (rc != PLUMB_OK || o.n == 0) {
        free(o.ids);
        return rc;
    }
    *ids = o.ids;
    *n = o.n;
    return PLUMB_OK;
}

void plumb_tokenizer_ids_free(uint32_t *ids) { free(ids); }

const char *plumb_tokenizer_name(const plumb_tokenizer *tok) { return tok ? tok->name : NULL; }

uint32_t plumb_tokenizer_vocab_size(const plumb_tokenizer *tok) { return tok ? tok->nids : 0; }

const char *plumb_tokenizer_token_bytes(const plumb_tokenizer *tok, uint32_t id, size_t *len) {
    if (len) *len = 0;
    if (!tok || id >= tok->nids || !tok->tok_len[id]) return NULL;
    if (len) *len = tok->tok_len[id];
    return (const char *)tok->blob + tok->tok_off[id];
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

void plumb_tokenizer_free(plumb_tokenizer *t) {
    if (!t) return;
    free(t->tok_off);
    free(t->tok_len);
    free(t->blob);
    free(t->slot);
    free(t->pair_key);
    free(t->pair_val);
    free(t->whole_ok);
    free(t->byte_pair);
    for (size_t i = 0; i < t->nspecials; i++) free(t->specials[i].text);
    free(t->specials);
    free(t);
}

static plumb_status read_all(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(errno == ENOENT ? PLUMB_NOTFOUND : PLUMB_IO, "open %s: %s", path,
                           strerror(errno));
    plumb_status rc = PLUMB_OK;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p) {
        rc = err_set(PLUMB_NOMEM, "bpe: out of memory");
        goto done;
    }
    for (;;) {
        if (cap - n < 2) {
            if (cap >= BPE_MAX_FILE) {
                rc = err_set(PLUMB_FORMAT, "%s: larger than 1 GiB", path);
                goto done;
            }
            char *q = realloc(p, cap * 2);
            if (!q) {
                rc = err_set(PLUMB_NOMEM, "bpe: out of memory");
                goto done;
            }
            p = q;
            cap *= 2;
        }
        size_t r = fread(p + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) rc = err_set(PLUMB_IO, "read %s: %s", path, strerror(errno));
done:
    fclose(f);
    if (rc) {
        free(p);
        return rc;
    }
    p[n] = 0;
    *data = p;
    *len = n;
    return PLUMB_OK;
}

/* Store the bytes of token id (ordinary or special). */
static plumb_status add_token(plumb_tokenizer *t, uint32_t id, const void *bytes, size_t len,
                              const char *what) {
    if (id >= UINT32_MAX - 1 || len == 0 || len > UINT32_MAX / 2)
        return err_set(PLUMB_FORMAT, "%s: bad token (id %u, %zu bytes)", what, id, len);
    if (id >= t->nids) {
        size_t cap = t->ids_cap;
        uint32_t need = id + 1;
        size_t nc = cap ? cap : 1024;
        while (nc < need) nc *= 2;
        if (nc > cap) {
            uint32_t *a = realloc(t->tok_off, nc * sizeof *a);
            if (!a) return err_set(PLUMB_NOMEM, "bpe: out of memory");
            t->tok_off = a;
            uint32_t *b = realloc(t->tok_len, nc * sizeof *b);
            if (!b) return err_set(PLUMB_NOMEM, "bpe: out of memory");
            t->tok_len = b;
            memset(t->tok_len + cap, 0, (nc - cap) * sizeof *b);
            memset(t->tok_off + cap, 0, (nc - cap) * sizeof *a);
            t->ids_cap = nc;
        }
        t->nids = need;
    }
    if (t->tok_len[id]) return err_set(PLUMB_FORMAT, "%s: token id %u given twice", what, id);
    if (t->blob_cap - t->blob_len < len) {
        size_t nc = t->blob_cap ? t->blob_cap : 1 << 20;
        while (nc - t->blob_len < len) nc *= 2;
        if (nc > UINT32_MAX) return err_set(PLUMB_FORMAT, "%s: vocabulary too large", what);
        unsigned char *b = realloc(t->blob, nc);
        if (!b) return err_set(PLUMB_NOMEM, "bpe: out of memory");
        t->blob = b;
        t->blob_cap = nc;
    }
    memcpy(t->blob + t->blob_len, bytes, len);
    t->tok_off[id] = (uint32_t)t->blob_len;
    t->tok_len[id] = (uint32_t)len;
    t->blob_len += len;
    return PLUMB_OK;
}

/* Hash every token stored so far (the ordinary vocabulary). */
static plumb_status build_vocab_hash(plumb_tokenizer *t, const char *what) {
    size_t nslots = 1024;
    while (nslots < (size_t)t->nids * 2) nslots *= 2;
    t->slot = calloc(nslots, sizeof *t->slot);
    if (!t->slot) return err_set(PLUMB_NOMEM, "bpe: out of memory");
    t->slot_mask = (uint32_t)(nslots - 1);
    for (uint32_t id = 0; id < t->nids; id++) {
        if (!t->tok_len[id]) continue;
        const unsigned char *p = t->blob + t->tok_off[id];
        size_t n = t->tok_len[id];
        if (vocab_find(t, p, n) != BPE_NONE)
            return err_set(PLUMB_FORMAT, "%s: two tokens have the same bytes (id %u)", what, id);
        uint64_t h = bytes_hash(p, n);
        uint32_t i = (uint32_t)(h >> 32) & t->slot_mask;
        while (t->slot[i].id1) i = (i + 1) & t->slot_mask;
        t->slot[i] = (vslot){first8(p, n), slot_tag(h, n), id + 1};
    }
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = vocab_find(t, &c, 1);
        if (t->byte_id[b] == BPE_NONE)
            return err_set(PLUMB_FORMAT, "%s: byte 0x%02x has no token (not byte-level BPE)",
                           what, b);
    }
    for (int c = 0; c < 128; c++) t->ascii_cls[c] = (uint8_t)cls_of_cp(c);
    return PLUMB_OK;
}

static plumb_status add_special(plumb_tokenizer *t, const char *text, uint32_t id, int always,
                                const char *what) {
    size_t len = strlen(text);
    if (!len) return err_set(PLUMB_FORMAT, "%s: empty special token", what);
    special_tok *a = realloc(t->specials, (t->nspecials + 1) * sizeof *a);
    if (!a) return err_set(PLUMB_NOMEM, "bpe: out of memory");
    t->specials = a;
    char *c = malloc(len + 1);
    if (!c) return err_set(PLUMB_NOMEM, "bpe: out of memory");
    memcpy(c, text, len + 1);
    t->specials[t->nspecials++] = (special_tok){c, len, id, always};
    t->special_first[(unsigned char)text[0]] = 1;
    /* An added token may also be an ordinary vocabulary entry. */
    if (id < t->nids && t->tok_len[id]) return PLUMB_OK;
    return add_token(t, id, text, len, what);
}

/* The pre-tokenization patterns implemented by bpe_match, in the
** spellings of tiktoken (Python), js-tiktoken / *.meta.json and the
** Qwen2/Qwen3 tokenizer.json. */
static const struct {
    int pat;
    const char *re;
} known_patterns[] = {
    {PAT_CL100K, "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,3}| "
                 "?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"},
    {PAT_CL100K, "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|"
                 "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {PAT_CL100K, "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                 "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {PAT_O200K,
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
     "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|"
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
     "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {PAT_O200K,
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {PAT_QWEN, "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

static int pattern_family(const char *re) {
    for (size_t i = 0; i < sizeof known_patterns / sizeof known_patterns[0]; i++)
        if (strcmp(re, known_patterns[i].re) == 0) return known_patterns[i].pat;
    return 0;
}

static void set_name(plumb_tokenizer *t, const char *path, const char *suffix) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b), sl = strlen(suffix);
    if (n > sl && strcmp(b + n - sl, suffix) == 0) n -= sl;
    if (n >= sizeof t->name) n = sizeof t->name - 1;
    memcpy(t->name, b, n);
    t->name[n] = 0;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode base64 s[0..n) into out (n bytes suffice); returns the length or
** -1 when malformed. */
static long b64dec(const char *s, size_t n, unsigned char *out) {
    while (n && s[n - 1] == '=') n--;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

static plumb_status load_meta(plumb_tokenizer *t, const char *path) {
    size_t pl = strlen(path);
    const char *suf = ".tiktoken";
    size_t sl = strlen(suf);
    size_t base = pl > sl && strcmp(path + pl - sl, suf) == 0 ? pl - sl : pl;
    char *mp = malloc(base + 16);
    char *data = NULL;
    size_t len;
    json_val *root = NULL;
    plumb_status rc;
    if (!mp) return err_set(PLUMB_NOMEM, "bpe: out of memory");
    memcpy(mp, path, base);
    memcpy(mp + base, ".meta.json", 11);
    rc = read_all(mp, &data, &len);
    if (rc) {
        err_set(rc == PLUMB_NOTFOUND ? PLUMB_FORMAT : rc,
                "%s: needs %s beside it (pre-tokenization regex and special tokens)", path, mp);
        rc = rc == PLUMB_NOTFOUND ? PLUMB_FORMAT : rc;
        goto done;
    }
    const char *end = NULL;
    root = json_parse(data, &end);
    if (!root) {
        rc = err_set(PLUMB_FORMAT, "%s: JSON syntax error at byte %ld", mp,
                     end ? (long)(end - data) : -1L);
        goto done;
    }
    const json_val *pat = json_get(root, "pat_str");
    if (!json_is_str(pat) || !(t->pat = pattern_family(json_str(pat)))) {
        rc = err_set(PLUMB_FORMAT, "%s: pat_str missing or not a supported pattern family "
                     "(cl100k_base, o200k_base, Qwen)", mp);
        goto done;
    }
    const json_val *sp = json_get(root, "special_tokens"), *it;
    for (it = json_first(sp); it; it = json_next(it)) {
        if (!json_is_num(it) || json_num(it) < 0 || json_num(it) >= 4e9 || !json_key(it)) {
            rc = err_set(PLUMB_FORMAT, "%s: bad special token", mp);
            goto done;
        }
        rc = add_special(t, json_key(it), (uint32_t)json_num(it), 0, mp);
        if (rc) goto done;
    }
    rc = PLUMB_OK;
done:
    json_free(root);
    free(data);
    free(mp);
    return rc;
}

static plumb_status load_tiktoken(plumb_tokenizer *t, const char *path, char *data, size_t len) {
    plumb_status rc;
    unsigned char tmp[1024];
    size_t line = 0;
    t->kind = KIND_TIKTOKEN;
    set_name(t, path, ".tiktoken");
    for (size_t p = 0; p < len;) {
        size_t e = p;
        while (e < len && data[e] != '\n') e++;
        line++;
        size_t sp = p;
        while (sp < e && data[sp] != ' ') sp++;
        if (e > p && !(e == p + 1 && data[p] == '\r')) {
            char *endp = NULL;
            long b = sp < e && sp - p <= sizeof tmp ? b64dec(data + p, sp - p, tmp) : -1;
            unsigned long r = 0;
            if (b > 0) {
                errno = 0;
                r = strtoul(data + sp + 1, &endp, 10);
            }
            if (b <= 0 || !endp || endp == data + sp + 1 || errno ||
                r >= UINT32_MAX - 1 || (endp != data + e && !(endp + 1 == data + e && *endp == '\r')))
                return err_set(PLUMB_FORMAT, "%s:%zu: not a \"base64 rank\" line", path, line);
            rc = add_token(t, (uint32_t)r, tmp, (size_t)b, path);
            if (rc) return rc;
        }
        p = e + 1;
    }
    if (!t->nids) return err_set(PLUMB_FORMAT, "%s: no tokens", path);
    rc = build_vocab_hash(t, path);
    if (!rc) rc = build_byte_pairs(t);
    if (rc) return rc;
    return load_meta(t, path);
}

/* GPT-2's byte-level alphabet: byte b is written as the code point
** byte_char(b); printable Latin-1 bytes stand for themselves. */
static void byte_level_table(int32_t cp_of_byte[256]) {
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp_of_byte[b] = keep ? b : 256 + k++;
    }
}

/* Decode a byte-level string (UTF-8 of the alphabet above) to bytes;
** returns the length or -1. out holds strlen(s) bytes. */
static long byte_level_decode(const unsigned char byte_of_cp[324], const char *s,
                              unsigned char *out) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    long o = 0;
    while (*p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(p, -1, &cp);
        if (l <= 0 || cp < 0 || cp >= 324 || (cp < 256 && byte_of_cp[cp] != cp) ||
            (cp >= 256 && byte_of_cp[cp] == 0 && cp != 256))
            return -1;
        out[o++] = byte_of_cp[cp];
        p += l;
    }
    return o;
}

static plumb_status pair_insert(plumb_tokenizer *t, uint32_t a, uint32_t b, uint32_t rank,
                                uint32_t merged) {
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    uint32_t i = (uint32_t)pair_hash(key) & t->pair_mask;
    while (t->pair_key[i] && t->pair_key[i] != key) i = (i + 1) & t->pair_mask;
    t->pair_key[i] = key; /* a repeated rule: the later one wins, as in tokenizers */
    t->pair_val[i] = (uint64_t)rank << 32 | merged;
    return PLUMB_OK;
}

static plumb_status load_hf(plumb_tokenizer *t, const char *path, char *data) {
    plumb_status rc = PLUMB_FORMAT;
    const char *end = NULL;
    unsigned char *tmp = NULL;
    uint32_t *ids = NULL;
    size_t nids = 0, capids = 0;
    json_val *root = json_parse(data, &end);
    t->kind = KIND_HF;
    set_name(t, path, ".json");
    if (!root)
        return err_set(PLUMB_FORMAT, "%s: JSON syntax error at byte %ld", path,
                       end ? (long)(end - data) : -1L);
    const json_val *model = json_get(root, "model");
    const json_val *type = json_get(model, "type");
    const json_val *vocab = json_get(model, "vocab");
    const json_val *merges = json_get(model, "merges");
    const json_val *bf = json_get(model, "byte_fallback");
    const json_val *csp = json_get(model, "continuing_subword_prefix");
    const json_val *ews = json_get(model, "end_of_word_suffix");
    const json_val *ign = json_get(model, "ignore_merges");
    if (!json_is_obj(model) || (type && !(json_is_str(type) &&
                                             strcmp(json_str(type), "BPE") == 0)) ||
        !json_is_obj(vocab) || !json_is_arr(merges) || json_is_true(bf) ||
        json_is_true(ign) || (json_is_str(csp) && json_str(csp)[0]) ||
        (json_is_str(ews) && json_str(ews)[0])) {
        err_set(PLUMB_FORMAT, "%s: model is not a plain byte-level BPE (type BPE, vocab, "
                "merges, no byte_fallback, no ignore_merges, no subword affixes)", path);
        goto done;
    }
    const json_val *norm = json_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        const json_val *nt = json_get(norm, "type");
        if (!json_is_str(nt) || strcmp(json_str(nt), "NFC") != 0) {
            err_set(PLUMB_FORMAT, "%s: unsupported normalizer (only NFC or none)", path);
            goto done;
        }
        t->nfc = 1;
    }
    /* pre_tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(use_regex false)] */
    {
        const json_val *pt = json_get(root, "pre_tokenizer");
        const json_val *seq = json_get(pt, "pretokenizers");
        const json_val *sp = json_at(seq, 0), *bl = json_at(seq, 1);
        const json_val *re = json_get(
            json_get(sp, "pattern"), "Regex");
        const json_val *beh = json_get(sp, "behavior");
        const json_val *inv = json_get(sp, "invert");
        const json_val *blt = json_get(bl, "type");
        const json_val *ur = json_get(bl, "use_regex");
        const json_val *aps = json_get(bl, "add_prefix_space");
        if (json_len(seq) != 2 || !json_is_str(re) ||
            !json_is_str(beh) || strcmp(json_str(beh), "Isolated") != 0 ||
            json_is_true(inv) || !json_is_str(blt) ||
            strcmp(json_str(blt), "ByteLevel") != 0 || json_is_true(ur) || json_is_true(aps) ||
            !(t->pat = pattern_family(json_str(re)))) {
            err_set(PLUMB_FORMAT, "%s: unsupported pre_tokenizer (needs Sequence of an "
                    "Isolated Split with a known regex and ByteLevel without regex or prefix "
                    "space)", path);
            goto done;
        }
    }
    int32_t cp_of_byte[256];
    unsigned char byte_of_cp[324];
    byte_level_table(cp_of_byte);
    memset(byte_of_cp, 0, sizeof byte_of_cp);
    for (int b = 0; b < 256; b++) byte_of_cp[cp_of_byte[b]] = (unsigned char)b;
    tmp = malloc(strlen(data) + 1); /* any key fits */
    if (!tmp) {
        rc = err_set(PLUMB_NOMEM, "bpe: out of memory");
        goto done;
    }
    const json_val *it;
    for (it = json_first(vocab); it; it = json_next(it)) {
        long n = byte_level_decode(byte_of_cp, json_key(it), tmp);
        if (n <= 0 || !json_is_num(it) || json_num(it) < 0 || json_num(it) >= 4e9) {
            rc = err_set(PLUMB_FORMAT, "%s: vocab entry \"%s\" is not byte-level", path,
                         json_key(it));
            goto done;
        }
        rc = add_token(t, (uint32_t)json_num(it), tmp, (size_t)n, path);
        if (rc) goto done;
    }
    rc = build_vocab_hash(t, path);
    if (rc) goto done;
    {
        size_t nm = (size_t)json_len(merges), np = 1024;
        while (np < nm * 2) np *= 2;
        t->pair_key = calloc(np, sizeof *t->pair_key);
        t->pair_val = calloc(np, sizeof *t->pair_val);
        if (!t->pair_key || !t->pair_val) {
            rc = err_set(PLUMB_NOMEM, "bpe: out of memory");
            goto done;
        }
        t->pair_mask = (uint32_t)(np - 1);
    }
    uint32_t rank = 0;
    for (it = json_first(merges); it; it = json_next(it)) {
        const char *a = NULL, *b = NULL;
        char *dup = NULL;
        if (json_is_arr(it) && json_len(it) == 2 &&
            json_is_str(json_at(it, 0)) && json_is_str(json_at(it, 1))) {
            a = json_str(json_at(it, 0));
            b = json_str(json_at(it, 1));
        } else if (json_is_str(it) && (dup = strdup(json_str(it))) != NULL) {
            char *s = strchr(dup, ' ');
            if (s) {
                *s = 0;
                a = dup;
                b = s + 1;
            }
        }
        long na = a ? byte_level_decode(byte_of_cp, a, tmp) : -1;
        long nb = na > 0 ? byte_level_decode(byte_of_cp, b, tmp + na) : -1;
        uint32_t ia = na > 0 ? vocab_find(t, tmp, (size_t)na) : BPE_NONE;
        uint32_t ib = nb > 0 ? vocab_find(t, tmp + na, (size_t)nb) : BPE_NONE;
        uint32_t im = nb > 0 ? vocab_find(t, tmp, (size_t)(na + nb)) : BPE_NONE;
        free(dup);
        if (ia == BPE_NONE || ib == BPE_NONE || im == BPE_NONE) {
            rc = err_set(PLUMB_FORMAT, "%s: merge %u names tokens not in the vocabulary", path,
                         rank);
            goto done;
        }
        pair_insert(t, ia, ib, rank++, im);
    }
    rc = build_byte_pairs(t);
    if (rc) goto done;
    /* A piece equal to a vocabulary entry may take that id directly only
    ** when merging its bytes would produce it anyway. */
    t->whole_ok = calloc(t->nids, 1);
    if (!t->whole_ok) {
        rc = err_set(PLUMB_NOMEM, "bpe: out of memory");
        goto done;
    }
    for (uint32_t id = 0; id < t->nids; id++) {
        if (!t->tok_len[id]) continue;
        nids = 0;
        rc = bpe_encode_piece(t, t->blob + t->tok_off[id], t->tok_len[id], 1, &ids, &nids,
                              &capids);
        if (rc) goto done;
        t->whole_ok[id] = nids == 1 && ids[0] == id;
    }
    const json_val *added = json_get(root, "added_tokens");
    for (it = json_first(added); it; it = json_next(it)) {
        const json_val *id = json_get(it, "id");
        const json_val *content = json_get(it, "content");
        const json_val *special = json_get(it, "special");
        if (!json_is_num(id) || json_num(id) < 0 || json_num(id) >= 4e9 ||
            !json_is_str(content)) {
            rc = err_set(PLUMB_FORMAT, "%s: malformed added token", path);
            goto done;
        }
        rc = add_special(t, json_str(content), (uint32_t)json_num(id),
                         !json_is_true(special), path);
        if (rc) goto done;
    }
    rc = PLUMB_OK;
done:
    free(ids);
    free(tmp);
    json_free(root);
    return rc;
}

plumb_status plumb_tokenizer_load(const char *path, plumb_tokenizer **out) {
    if (out) *out = NULL;
    if (!path || !out) return err_set(PLUMB_MISUSE, "plumb_tokenizer_load: NULL argument");
    char *data = NULL;
    size_t len = 0;
    plumb_status rc = read_all(path, &data, &len);
    if (rc) return rc;
    plumb_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        free(data);
        return err_set(PLUMB_NOMEM, "bpe: out of memory");
    }
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    rc = i < len && data[i] == '{' ? load_hf(t, path, data) : load_tiktoken(t, path, data, len);
    free(data);
    if (rc) {
        plumb_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return PLUMB_OK;
}
