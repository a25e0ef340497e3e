/*
** parse.c -- HTML and Markdown to (title, plain text) for indexing.
**
** Workload: one call per ingested file, >10,000 files/s of a few KB,
** occasionally megabytes of machine-generated or broken markup. Both
** parsers make one forward pass, never read past n and never recurse
** without a depth bound. A search for a closer either jumps past what it
** scanned, or can fail only once (a later opener would have been the
** closer: attribute quotes), or remembers where its closer is known to be
** absent ("</title", "]]>", "-->", backtick runs, link title and <dest>
** closers), so hostile input stays O(n); tests/test_parse.c sweeps the
** repetitions that broke earlier versions.
**
** Output contract shared by both: text is valid UTF-8 without NULs (bytes
** of invalid input become U+FFFD) and trimmed; no line ends in
** whitespace; outside <pre> and code blocks (kept verbatim) whitespace
** runs are one space and paragraphs are separated by exactly one blank
** line, which is where the chunker prefers to cut. Titles are one trimmed
** line. Both are appended to the caller's buffers.
*/
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

/* =====================================================================
** Sink: collapses whitespace, turns requested breaks into "\n" or
** "\n\n" just before the next visible character (so nothing dangles at
** the end), and keeps whitespace verbatim inside <pre> and code blocks.
** =================================================================== */

typedef struct sink {
    buf *out;
    size_t base; /* out->len when the sink started: nothing before it is ours */
    buf pend;    /* whitespace-preserving mode: whitespace not yet written */
    int space;   /* a collapsed space is pending */
    int brk;     /* pending break: 1 newline, 2 blank line */
    int pre;     /* >0: whitespace is kept */
} sink;

static void sink_init(sink *k, buf *out) {
    memset(k, 0, sizeof *k);
    k->out = out;
    k->base = out->len;
}

static void sink_flush(sink *k) {
    buf *o = k->out;
    if (o->len > k->base) {
        if (k->brk) buf_append(o, "\n\n", (size_t)k->brk);
        else if (k->space) buf_putc(o, ' ');
        const char *p = k->pend.p;
        size_t l = k->pend.len;
        if (k->brk && l) { /* (pend.p is NULL while nothing is pending) */
            /* a break replaces the pending newlines; indentation stays */
            size_t i = l;
            while (i > 0 && p[i - 1] != '\n') i--;
            p += i;
            l -= i;
        }
        if (l) buf_append(o, p, l);
    }
    k->brk = k->space = 0;
    buf_reset(&k->pend);
}

static void sink_break(sink *k, int level) {
    if (level > k->brk) k->brk = level;
    k->space = 0;
}

/* Bytes that need a look in sink_text(): whitespace, NUL and the first
** byte of U+00A0 (no-break space reads as a space). */
static int sink_special(unsigned char c) {
    return c <= ' ' || c == 0xC2;
}

static void sink_ws(sink *k, unsigned char c) {
    if (!k->pre) {
        k->space = 1;
        return;
    }
    if (c == '\n') {
        while (k->pend.len && k->pend.p[k->pend.len - 1] != '\n') k->pend.len--;
        buf_putc(&k->pend, '\n');
    } else if (c == '\f' || c == '\v') {
        buf_putc(&k->pend, ' ');
    } else {
        buf_putc(&k->pend, (char)c);
    }
}

static void sink_text(sink *k, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && !sink_special(s[j])) j++;
        if (j > i) {
            if (k->brk || k->space || k->pend.len) sink_flush(k);
            buf_append(k->out, str + i, j - i);
            i = j;
            continue;
        }
        unsigned char c = s[i];
        if (c == 0xC2) {
            if (i + 1 < n && s[i + 1] == 0xA0) {
                sink_ws(k, ' ');
                i += 2;
            } else {
                if (k->brk || k->space || k->pend.len) sink_flush(k);
                buf_putc(k->out, (char)c);
                i++;
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\v') {
            sink_ws(k, c);
            i++;
        } else if (c == '\r') {
            /* CRLF and lone CR both end a line */
            if (!(i + 1 < n && s[i + 1] == '\n')) sink_ws(k, '\n');
            i++;
        } else if (c == 0) {
            i++;
        } else {
            /* other control characters are kept as text */
            if (k->brk || k->space || k->pend.len) sink_flush(k);
            buf_putc(k->out, (char)c);
            i++;
        }
    }
}

/* Replace invalid UTF-8 in out[from..) by U+FFFD. */
static void fix_utf8(buf *out, size_t from) {
    if (out->oom || out->len <= from) return;
    size_t n = out->len - from;
    if (utf8_check(out->p + from, n) == n) return;
    char *copy = malloc(n);
    if (!copy) { out->oom = 1; return; }
    memcpy(copy, out->p + from, n);
    out->len = from;
    out->p[from] = 0;
    utf8_repair(copy, n, out, NULL);
    free(copy);
}

/* =====================================================================
** Character references (HTML entities), shared by both parsers.
** =================================================================== */

typedef struct entity {
    const char *name;
    const char *utf8;
} entity;

/* The common named references. "nbsp" and the typographic spaces map to
** a plain space so that they collapse like one. */
static const entity entities[] = {
    {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"},
    {"nbsp", " "}, {"ensp", " "}, {"emsp", " "}, {"thinsp", " "}, {"shy", ""},
    {"zwnj", "\u200C"}, {"zwj", "\u200D"}, {"lrm", ""}, {"rlm", ""},
    {"Tab", "\t"}, {"NewLine", "\n"},
    {"copy", "\u00A9"}, {"reg", "\u00AE"}, {"trade", "\u2122"}, {"hellip", "\u2026"},
    {"mdash", "\u2014"}, {"ndash", "\u2013"}, {"lsquo", "\u2018"}, {"rsquo", "\u2019"},
    {"sbquo", "\u201A"}, {"ldquo", "\u201C"}, {"rdquo", "\u201D"}, {"bdquo", "\u201E"},
    {"laquo", "\u00AB"}, {"raquo", "\u00BB"}, {"lsaquo", "\u2039"}, {"rsaquo", "\u203A"},
    {"bull", "\u2022"}, {"middot", "\u00B7"}, {"deg", "\u00B0"}, {"plusmn", "\u00B1"},
    {"times", "\u00D7"}, {"divide", "\u00F7"}, {"micro", "\u00B5"}, {"para", "\u00B6"},
    {"sect", "\u00A7"}, {"euro", "\u20AC"}, {"pound", "\u00A3"}, {"yen", "\u00A5"},
    {"cent", "\u00A2"}, {"curren", "\u00A4"}, {"iexcl", "\u00A1"}, {"iquest", "\u00BF"},
    {"brvbar", "\u00A6"}, {"uml", "\u00A8"}, {"ordf", "\u00AA"}, {"ordm", "\u00BA"},
    {"not", "\u00AC"}, {"macr", "\u00AF"}, {"acute", "\u00B4"}, {"cedil", "\u00B8"},
    {"sup1", "\u00B9"}, {"sup2", "\u00B2"}, {"sup3", "\u00B3"}, {"frac14", "\u00BC"},
    {"frac12", "\u00BD"}, {"frac34", "\u00BE"}, {"dagger", "\u2020"}, {"Dagger", "\u2021"},
    {"permil", "\u2030"}, {"prime", "\u2032"}, {"Prime", "\u2033"}, {"oline", "\u203E"},
    {"frasl", "\u2044"}, {"larr", "\u2190"}, {"uarr", "\u2191"}, {"rarr", "\u2192"},
    {"darr", "\u2193"}, {"harr", "\u2194"}, {"lArr", "\u21D0"}, {"rArr", "\u21D2"},
    {"hArr", "\u21D4"}, {"le", "\u2264"}, {"ge", "\u2265"}, {"ne", "\u2260"},
    {"asymp", "\u2248"}, {"equiv", "\u2261"}, {"infin", "\u221E"}, {"minus", "\u2212"},
    {"radic", "\u221A"}, {"sum", "\u2211"}, {"prod", "\u220F"}, {"int", "\u222B"},
    {"part", "\u2202"}, {"nabla", "\u2207"}, {"isin", "\u2208"}, {"loz", "\u25CA"},
    {"spades", "\u2660"}, {"clubs", "\u2663"}, {"hearts", "\u2665"}, {"diams", "\u2666"},
    {"Agrave", "\u00C0"}, {"Aacute", "\u00C1"}, {"Acirc", "\u00C2"}, {"Atilde", "\u00C3"},
    {"Auml", "\u00C4"}, {"Aring", "\u00C5"}, {"AElig", "\u00C6"}, {"Ccedil", "\u00C7"},
    {"Egrave", "\u00C8"}, {"Eacute", "\u00C9"}, {"Ecirc", "\u00CA"}, {"Euml", "\u00CB"},
    {"Igrave", "\u00CC"}, {"Iacute", "\u00CD"}, {"Icirc", "\u00CE"}, {"Iuml", "\u00CF"},
    {"Ntilde", "\u00D1"}, {"Ograve", "\u00D2"}, {"Oacute", "\u00D3"}, {"Ocirc", "\u00D4"},
    {"Otilde", "\u00D5"}, {"Ouml", "\u00D6"}, {"Oslash", "\u00D8"}, {"Ugrave", "\u00D9"},
    {"Uacute", "\u00DA"}, {"Ucirc", "\u00DB"}, {"Uuml", "\u00DC"}, {"Yacute", "\u00DD"},
    {"szlig", "\u00DF"}, {"agrave", "\u00E0"}, {"aacute", "\u00E1"}, {"acirc", "\u00E2"},
    {"atilde", "\u00E3"}, {"auml", "\u00E4"}, {"aring", "\u00E5"}, {"aelig", "\u00E6"},
    {"ccedil", "\u00E7"}, {"egrave", "\u00E8"}, {"eacute", "\u00E9"}, {"ecirc", "\u00EA"},
    {"euml", "\u00EB"}, {"igrave", "\u00EC"}, {"iacute", "\u00ED"}, {"icirc", "\u00EE"},
    {"iuml", "\u00EF"}, {"ntilde", "\u00F1"}, {"ograve", "\u00F2"}, {"oacute", "\u00F3"},
    {"ocirc", "\u00F4"}, {"otilde", "\u00F5"}, {"ouml", "\u00F6"}, {"oslash", "\u00F8"},
    {"ugrave", "\u00F9"}, {"uacute", "\u00FA"}, {"ucirc", "\u00FB"}, {"uuml", "\u00FC"},
    {"yacute", "\u00FD"}, {"yuml", "\u00FF"}, {"OElig", "\u0152"}, {"oelig", "\u0153"},
    {"Scaron", "\u0160"}, {"scaron", "\u0161"}, {"fnof", "\u0192"},
    {"Alpha", "\u0391"}, {"Beta", "\u0392"}, {"Gamma", "\u0393"}, {"Delta", "\u0394"},
    {"Theta", "\u0398"}, {"Lambda", "\u039B"}, {"Pi", "\u03A0"}, {"Sigma", "\u03A3"},
    {"Phi", "\u03A6"}, {"Psi", "\u03A8"}, {"Omega", "\u03A9"},
    {"alpha", "\u03B1"}, {"beta", "\u03B2"}, {"gamma", "\u03B3"}, {"delta", "\u03B4"},
    {"epsilon", "\u03B5"}, {"zeta", "\u03B6"}, {"eta", "\u03B7"}, {"theta", "\u03B8"},
    {"iota", "\u03B9"}, {"kappa", "\u03BA"}, {"lambda", "\u03BB"}, {"mu", "\u03BC"},
    {"nu", "\u03BD"}, {"xi", "\u03BE"}, {"omicron", "\u03BF"}, {"pi", "\u03C0"},
    {"rho", "\u03C1"}, {"sigma", "\u03C3"}, {"sigmaf", "\u03C2"}, {"tau", "\u03C4"},
    {"upsilon", "\u03C5"}, {"phi", "\u03C6"}, {"chi", "\u03C7"}, {"psi", "\u03C8"},
    {"omega", "\u03C9"},
};

/* Names browsers still decode without the trailing ';'. */
static int legacy_name(const unsigned char *s, size_t n) {
    static const char *const names[] = {"amp", "lt", "gt", "quot", "nbsp", "copy", "reg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) return 1;
    return 0;
}

static size_t put_utf8(uint32_t c, char *out) {
    if (c < 0x80) { out[0] = (char)c; return 1; }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* What a numeric reference means: the HTML rules, with every code point
** that cannot appear in clean text (NUL, surrogates, > U+10FFFF, C0/C1
** controls other than whitespace) mapped to U+FFFD. */
static uint32_t numeric_ref(uint32_t v) {
    /* 0x80-0x9F: what Windows-1252 meant (HTML5 keeps this table) */
    static const uint16_t cp1252[32] = {
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178};
    if (v >= 0x80 && v <= 0x9F) return cp1252[v - 0x80] ? cp1252[v - 0x80] : 0xFFFD;
    if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0xFFFD;
    if ((v < 0x20 && v != '\t' && v != '\n' && v != '\f' && v != '\r') || v == 0x7F)
        return 0xFFFD;
    return v;
}

static int is_alpha(unsigned c) { return (c | 32) - 'a' < 26; }
static int is_digit(unsigned c) { return c - '0' < 10; }
static int is_alnum(unsigned c) { return is_alpha(c) || is_digit(c); }
static int is_xdigit(unsigned c) { return is_digit(c) || (c | 32) - 'a' < 6; }

/* Decode the reference at s[i] == '&'. Returns the bytes it spans and
** writes its UTF-8 (at most 4 bytes) to out, *olen bytes; returns 0 when
** s[i..] is not a reference we know (the '&' is then literal text). */
static size_t decode_entity(const unsigned char *s, size_t i, size_t n, char out[4],
                            size_t *olen) {
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        int hex = j + 1 < n && (s[j + 1] | 32) == 'x';
        size_t k = j + 1 + (size_t)hex, d = k;
        uint32_t v = 0;
        while (k < n && (hex ? is_xdigit(s[k]) : is_digit(s[k]))) {
            unsigned c = s[k];
            unsigned dv = is_digit(c) ? c - '0' : (c | 32) - 'a' + 10;
            if (v <= 0x10FFFF) v = v * (hex ? 16 : 10) + dv;
            k++;
        }
        if (k == d) return 0;
        if (k < n && s[k] == ';') k++;
        *olen = put_utf8(numeric_ref(v), out);
        return k - i;
    }
    size_t k = j;
    while (k < n && k - j < 32 && is_alnum(s[k])) k++;
    size_t len = k - j;
    if (len == 0) return 0;
    int semi = k < n && s[k] == ';';
    if (!semi && (!legacy_name(s + j, len) || (k < n && (is_alnum(s[k]) || s[k] == '='))))
        return 0;
    for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++) {
        const char *name = entities[e].name;
        if (name[0] == (char)s[j] && strlen(name) == len && memcmp(name, s + j, len) == 0) {
            *olen = strlen(entities[e].utf8);
            memcpy(out, entities[e].utf8, *olen);
            return len + 1 + (size_t)semi;
        }
    }
    return 0;
}

/* Write s[i..j) to k with references decoded. */
static void sink_decoded(sink *k, const unsigned char *s, size_t i, size_t j) {
    while (i < j) {
        const unsigned char *amp = memchr(s + i, '&', j - i);
        size_t a = amp ? (size_t)(amp - s) : j;
        if (a > i) sink_text(k, (const char *)s + i, a - i);
        if (a >= j) break;
        char out[4];
        size_t olen, used = decode_entity(s, a, j, out, &olen);
        if (used) {
            sink_text(k, out, olen);
            i = a + used;
        } else {
            sink_text(k, "&", 1);
            i = a + 1;
        }
    }
}

/* Case-insensitive search for the ASCII needle (lower case) in s[i..n). */
static size_t find_ci(const unsigned char *s, size_t i, size_t n, const char *needle) {
    size_t m = strlen(needle);
    unsigned c0 = (unsigned char)needle[0];
    while (i + m <= n) {
        const unsigned char *p = memchr(s + i, (int)c0, n - m + 1 - i);
        const unsigned char *q = c0 >= 'a' && c0 <= 'z'
                                     ? memchr(s + i, (int)(c0 - 32), n - m + 1 - i) : NULL;
        if (!p || (q && q < p)) p = q;
        if (!p) return n;
        size_t at = (size_t)(p - s), k = 1;
        while (k < m && (s[at + k] | (is_alpha(s[at + k]) ? 32 : 0)) == (unsigned char)needle[k]) k++;
        if (k == m) return at;
        i = at + 1;
    }
    return n;
}

static size_t find_str(const unsigned char *s, size_t i, size_t n, const char *needle) {
    size_t m = strlen(needle);
    while (i + m <= n) {
        const unsigned char *p = memchr(s + i, needle[0], n - m + 1 - i);
        if (!p) return n;
        if (memcmp(p, needle, m) == 0) return (size_t)(p - s);
        i = (size_t)(p - s) + 1;
    }
    return n;
}

static size_t skip_bom(const unsigned char *s, size_t n) {
    return n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF ? 3 : 0;
}

/* =====================================================================
** HTML
**
** Not a tree builder: tags only switch modes (dropped content, <pre>,
** <head>) and request breaks, which is all plain-text extraction needs
** and which degrades gracefully on tag soup. Content models follow the
** HTML spec where it matters for text: script/style/noscript/iframe/...
** are raw text ended only by their own end tag, <title> is RCDATA,
** comments end at "-->", and a quote in an attribute value hides '>'.
** Deviations for robustness: an attribute quote that never closes ends
** at the next '>' (browsers would swallow the rest of the file), as does
** a <title> without </title>.
** =================================================================== */

typedef struct html {
    const unsigned char *s;
    size_t n;
    sink txt, ttl;
    buf *title;
    int in_head;     /* inside <head>: text dropped */
    int skip;        /* depth of <template>: text dropped */
    int svg;         /* depth of <svg>/<math>: their <title> is a tooltip */
    int have_title;  /* a non-empty <title> was seen */
    int h1_state;    /* 0 none yet, 1 inside the first <h1>, 2 done */
    size_t h1_start; /* text length when the first <h1> opened */
    size_t no_title, no_cdata; /* no "</title" / "]]>" at or after this offset */
} html;

/* What a tag does to the text. */
enum {
    T_RAW = 1,   /* raw text up to its own end tag: content dropped */
    T_LINE = 2,  /* a line break before and after */
    T_PARA = 4,  /* a blank line before and after */
    T_HEAD = 8,  /* may appear in <head> (any other start tag ends it) */
    T_PRE = 16,  /* whitespace-preserving */
    T_SPECIAL = 32 /* handled by name in html_tag() */
};

typedef struct tagdef {
    const char *name;
    unsigned char len, flags;
} tagdef;

#define TAG(n, f) {n, sizeof(n) - 1, f}
static const tagdef tags[] = {
    TAG("a", 0), TAG("p", T_PARA), TAG("br", T_LINE), TAG("li", T_LINE),
    TAG("div", T_PARA), TAG("span", 0), TAG("td", T_LINE), TAG("tr", T_LINE), TAG("th", T_LINE),
    TAG("h1", T_PARA | T_SPECIAL), TAG("h2", T_PARA), TAG("h3", T_PARA), TAG("h4", T_PARA),
    TAG("h5", T_PARA), TAG("h6", T_PARA), TAG("ul", T_PARA), TAG("ol", T_PARA),
    TAG("dl", T_PARA), TAG("dd", T_LINE), TAG("dt", T_LINE), TAG("hr", T_PARA),
    TAG("pre", T_PARA | T_PRE), TAG("listing", T_PARA | T_PRE), TAG("table", T_PARA),
    TAG("section", T_PARA), TAG("article", T_PARA), TAG("header", T_PARA),
    TAG("footer", T_PARA), TAG("blockquote", T_PARA), TAG("main", T_PARA), TAG("nav", T_PARA),
    TAG("aside", T_PARA), TAG("figure", T_PARA), TAG("figcaption", T_PARA),
    TAG("address", T_PARA), TAG("form", T_PARA), TAG("fieldset", T_PARA),
    TAG("details", T_PARA), TAG("summary", T_PARA), TAG("center", T_PARA), TAG("menu", T_PARA),
    TAG("dir", T_PARA), TAG("hgroup", T_PARA), TAG("body", T_PARA),
    TAG("caption", T_LINE), TAG("option", T_LINE), TAG("legend", T_LINE), TAG("thead", T_LINE),
    TAG("tbody", T_LINE), TAG("tfoot", T_LINE),
    TAG("script", T_RAW | T_HEAD), TAG("style", T_RAW | T_HEAD), TAG("noscript", T_RAW | T_HEAD),
    TAG("iframe", T_RAW), TAG("noembed", T_RAW), TAG("noframes", T_RAW), TAG("xmp", T_RAW),
    TAG("plaintext", T_RAW | T_SPECIAL),
    TAG("title", T_HEAD | T_SPECIAL), TAG("meta", T_HEAD), TAG("link", T_HEAD),
    TAG("base", T_HEAD), TAG("basefont", T_HEAD), TAG("bgsound", T_HEAD),
    TAG("template", T_HEAD | T_SPECIAL), TAG("head", T_HEAD | T_SPECIAL),
    TAG("html", T_HEAD), TAG("svg", T_SPECIAL), TAG("math", T_SPECIAL),
};
#undef TAG

/* The definition of the (lower-cased) tag name, or NULL. */
static const tagdef *tag_lookup(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (tags[i].len == len && tags[i].name[0] == name[0] && memcmp(tags[i].name, name, len) == 0)
            return &tags[i];
    return NULL;
}

static int html_ws(unsigned c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

/* Skip the attributes of a tag whose name ends at j; returns the offset
** after its '>' (n if the input ends first). *selfclose is set for "/>". */
static size_t tag_end(html *h, size_t j, int *selfclose) {
    const unsigned char *s = h->s;
    size_t n = h->n;
    *selfclose = 0;
    for (;;) {
        while (j < n && (html_ws(s[j]) || s[j] == '/')) {
            *selfclose = s[j] == '/';
            j++;
        }
        if (j >= n) return n;
        if (s[j] == '>') return j + 1;
        *selfclose = 0;
        j++; /* the first character of a name may be anything, even '=' */
        while (j < n && !html_ws(s[j]) && s[j] != '/' && s[j] != '>' && s[j] != '=') j++;
        while (j < n && html_ws(s[j])) j++;
        if (j >= n || s[j] != '=') continue;
        j++;
        while (j < n && html_ws(s[j])) j++;
        if (j >= n) return n;
        if (s[j] == '"' || s[j] == '\'') {
            const unsigned char *close = memchr(s + j + 1, s[j], n - j - 1);
            if (close) {
                j = (size_t)(close - s) + 1;
            } else {
                const unsigned char *gt = memchr(s + j, '>', n - j);
                return gt ? (size_t)(gt - s) + 1 : n;
            }
        } else {
            while (j < n && !html_ws(s[j]) && s[j] != '>') j++;
        }
    }
}

/* Take the text the first <h1> produced as the fallback title. */
static void h1_capture(html *h) {
    if (h->h1_state != 1) return;
    h->h1_state = 2;
    buf *t = h->txt.out;
    if (h->have_title || t->oom || t->len <= h->h1_start) return;
    sink k;
    sink_init(&k, h->title);
    sink_text(&k, t->p + h->h1_start, t->len - h->h1_start);
    buf_free(&k.pend);
}

/* Handle the markup at s[i] == '<'; returns where text resumes. */
static size_t html_tag(html *h, size_t i) {
    const unsigned char *s = h->s;
    size_t n = h->n;
    int dropping = h->in_head || h->skip;
    if (i + 1 >= n) {
        if (!dropping) sink_text(&h->txt, "<", 1);
        return n;
    }
    unsigned c1 = s[i + 1];
    if (c1 == '!') {
        if (i + 3 < n && s[i + 2] == '-' && s[i + 3] == '-') {
            size_t j = i + 4;
            if (j < n && s[j] == '>') return j + 1; /* <!--> */
            if (j + 1 < n && s[j] == '-' && s[j + 1] == '>') return j + 2; /* <!---> */
            size_t e = find_str(s, j, n, "-->");
            size_t e2 = find_str(s, j, e < n ? e : n, "--!>");
            if (e2 < e) return e2 + 4;
            return e < n ? e + 3 : n;
        }
        if (n - i >= 9 && memcmp(s + i, "<![CDATA[", 9) == 0 && i + 9 < h->no_cdata) {
            size_t e = find_str(s, i + 9, n, "]]>");
            if (e < n) return e + 3;
            h->no_cdata = i + 9;
        }
        const unsigned char *gt = memchr(s + i, '>', n - i);
        return gt ? (size_t)(gt - s) + 1 : n;
    }
    if (c1 == '?') {
        const unsigned char *gt = memchr(s + i, '>', n - i);
        return gt ? (size_t)(gt - s) + 1 : n;
    }
    int end = c1 == '/';
    size_t j = i + 1 + (size_t)end;
    if (j >= n || !is_alpha(s[j])) {
        if (end && j < n) {
            /* "</>" is nothing, "</ 3" a bogus comment */
            const unsigned char *gt = memchr(s + j, '>', n - j);
            return gt ? (size_t)(gt - s) + 1 : n;
        }
        if (!dropping) sink_text(&h->txt, end ? "</" : "<", end ? 2 : 1);
        return i + 1 + (size_t)end;
    }
    char name[16];
    size_t len = 0;
    while (j < n && !html_ws(s[j]) && s[j] != '/' && s[j] != '>') {
        if (len < sizeof name - 1) name[len] = (char)(is_alpha(s[j]) ? s[j] | 32 : s[j]);
        len++;
        j++;
    }
    if (len >= sizeof name) len = 0; /* too long for any tag we act on */
    name[len] = 0;
    int selfclose;
    size_t after = tag_end(h, j, &selfclose);
    const tagdef *td = len ? tag_lookup(name, len) : NULL;
    unsigned flags = td ? td->flags : 0;
    int level = flags & T_PARA ? 2 : flags & T_LINE ? 1 : 0;

    if (end) {
        if (flags & T_SPECIAL) {
            if (!strcmp(name, "head")) h->in_head = 0;
            else if (!strcmp(name, "template") && h->skip) h->skip--;
            else if ((!strcmp(name, "svg") || !strcmp(name, "math")) && h->svg) h->svg--;
            else if (!strcmp(name, "h1")) h1_capture(h);
        }
        if ((flags & T_PRE) && h->txt.pre) h->txt.pre--;
        if (level) sink_break(&h->txt, level); /* </br> acts as <br> too */
        return after;
    }

    if (h->in_head && len && !(flags & T_HEAD)) h->in_head = 0;
    if (flags & T_RAW) {
        if (!strcmp(name, "plaintext")) return n; /* nothing after it is markup */
        char close[16];
        close[0] = '<';
        close[1] = '/';
        memcpy(close + 2, name, len + 1);
        return find_ci(s, after, n, close); /* the main loop handles the end tag */
    }
    if (flags & T_SPECIAL) {
        if (!strcmp(name, "title")) {
            size_t e = after < h->no_title ? find_ci(s, after, n, "</title") : n;
            if (e >= n) {
                h->no_title = after;
                const unsigned char *lt = memchr(s + after, '<', n - after);
                e = lt ? (size_t)(lt - s) : n;
            }
            if (!h->have_title && !h->svg && !h->skip) {
                sink_decoded(&h->ttl, s, after, e);
                h->have_title = h->title->len > h->ttl.base;
            }
            return e;
        }
        if (!strcmp(name, "head")) {
            h->in_head = 1;
        } else if (!strcmp(name, "template")) {
            h->skip++;
        } else if (!strcmp(name, "svg") || !strcmp(name, "math")) {
            if (!selfclose) h->svg++;
        } else if (!strcmp(name, "h1") && h->h1_state == 0 && !h->skip) {
            h->h1_state = 1;
            h->h1_start = h->txt.out->len;
        }
    }
    if (level) sink_break(&h->txt, level);
    if (flags & T_PRE) {
        h->txt.pre++;
        /* a newline right after <pre> is not content */
        if (after < n && s[after] == '\n') after++;
        else if (after + 1 < n && s[after] == '\r' && s[after + 1] == '\n') after += 2;
    }
    return after;
}

int parse_html(const char *in, size_t n, buf *title, buf *text) {
    html h;
    memset(&h, 0, sizeof h);
    h.s = (const unsigned char *)in;
    h.n = n;
    h.title = title;
    h.no_title = h.no_cdata = SIZE_MAX;
    sink_init(&h.txt, text);
    sink_init(&h.ttl, title);
    size_t title0 = title->len, text0 = text->len;

    size_t i = skip_bom(h.s, n), run = i;
    while (i < n) {
        unsigned char c = h.s[i];
        if (c != '<' && c != '&') {
            i++;
            continue;
        }
        int dropping = h.in_head || h.skip;
        if (i > run && !dropping) sink_text(&h.txt, in + run, i - run);
        if (c == '<') {
            i = html_tag(&h, i);
        } else {
            char out[4];
            size_t olen, used = decode_entity(h.s, i, n, out, &olen);
            if (!dropping) sink_text(&h.txt, used ? out : "&", used ? olen : 1);
            i += used ? used : 1;
        }
        run = i;
    }
    if (i > run && !h.in_head && !h.skip) sink_text(&h.txt, in + run, i - run);
    if (h.h1_state == 1) {
        /* an unclosed <h1>: its first line is as good a title as any */
        size_t e = h.h1_start;
        while (e < text->len && (text->p[e] == '\n' || text->p[e] == ' ')) e++;
        while (e < text->len && text->p[e] != '\n') e++;
        size_t keep = text->len;
        text->len = e;
        h1_capture(&h);
        text->len = keep;
    }
    int oom = h.txt.pend.oom || h.ttl.pend.oom;
    buf_free(&h.txt.pend);
    buf_free(&h.ttl.pend);
    fix_utf8(text, text0);
    fix_utf8(title, title0);
    return oom || text->oom || title->oom ? -1 : 0;
}

/* =====================================================================
** Markdown
**
** Line-oriented block pass (CommonMark block structure, simplified)
** feeding an inline pass per block. Paragraph lines are joined with a
** space (soft breaks are not content, and keeping them would make the
** chunker prefer arbitrary wrap points over sentence ends); hard breaks
** (two trailing spaces or a trailing backslash) stay newlines. List
** items and table rows are one line each, blocks are separated by a
** blank line, code blocks keep their lines verbatim.
** Simplifications: fences may be indented any amount; lazy continuation
** lines of block quotes start a new paragraph; emphasis delimiters match
** per character with a stack (no "rule of 3"); a shortcut reference
** [label] is a link only when a definition for it exists.
** =================================================================== */

enum { B_NONE, B_PARA, B_LIST, B_HEADING, B_H1, B_CODE, B_TABLE };

typedef struct delim {
    size_t pos, len;    /* bytes in the inline scratch buffer */
    size_t below;       /* next opener down the same character's stack */
    unsigned char c;    /* '*', '_' or '~' */
    unsigned char open, close, gone;
} delim;

typedef struct md {
    const unsigned char *s;
    size_t n;
    sink txt;
    buf *title;
    size_t title0;
    int have_title;

    buf para;            /* inline source of the current block */
    int btype;           /* B_* of the current block */
    int hard;            /* the last paragraph line ended in a hard break */
    int last;            /* B_* of the last written block */
    int blank;           /* a blank line since the last block */
    int in_list;         /* inside a list: indented lines are not code */
    int qdepth;          /* block quote depth of the previous line */
    int in_table;        /* table rows follow */

    int fence;           /* inside a fenced code block */
    unsigned char fch;   /* its fence character */
    size_t flen, find;   /* its fence length and indentation */
    int fq;              /* its quote depth */
    int icode;           /* inside an indented code block */

    uint64_t *labels;    /* sorted hashes of link reference labels */
    size_t nlabels;

    /* inline pass scratch */
    const unsigned char *src;
    size_t srclen;
    buf tb;              /* rendered text, delimiter runs still in place */
    delim *dl;
    size_t ndl, dlcap;
    size_t *match;       /* match[i]: the ']' closing '[' at i, or SIZE_MAX */
    size_t matchcap;
    size_t *stack;
    size_t no_comment;   /* no "-->" at or after this offset */
    size_t no_code[33];  /* no backtick run of this length at or after */
    size_t no_close[4][2]; /* [from,to): no '>' / ')' / '"' / '\'' closes a link tail there */
    int oom;
} md;

/* ---- inline pass ---- */

static int md_punct(unsigned c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

static int md_space(unsigned c) { return c == ' ' || c == '\t' || c == '\n'; }

/* The end of the code span opened by the k backticks at i: the offset
** after the closing run of exactly k backticks, or 0. An escape can split
** a run ("\``"), so an opener may have no closer run at all; the cache
** keeps that from rescanning. Runs of more than 32 open nothing. */
static size_t code_end(md *m, size_t i, size_t k, size_t hi) {
    const unsigned char *s = m->src;
    size_t n = m->srclen, j = i + k;
    if (k > 32 || j >= m->no_code[k]) return 0;
    while (j < n) {
        const unsigned char *p = memchr(s + j, '`', n - j);
        if (!p) break;
        size_t a = (size_t)(p - s), b = a;
        while (b < n && s[b] == '`') b++;
        if (b - a == k) return b <= hi ? b : 0;
        j = b;
    }
    m->no_code[k] = i + k;
    return 0;
}

static uint64_t label_hash(const unsigned char *s, size_t n) {
    /* labels match case-insensitively with whitespace runs collapsed */
    char tmp[256];
    size_t l = 0;
    int sp = 0;
    for (size_t i = 0; i < n && l < sizeof tmp; i++) {
        unsigned c = s[i];
        if (md_space(c) || c == '\r') { sp = l > 0; continue; }
        if (sp && l < sizeof tmp) tmp[l++] = ' ';
        sp = 0;
        if (l < sizeof tmp) tmp[l++] = (char)(c >= 'A' && c <= 'Z' ? c | 32 : c);
    }
    return hash64(tmp, l, 0x6c6162656cULL);
}

static int label_defined(md *m, const unsigned char *s, size_t n) {
    if (!m->nlabels) return 0;
    uint64_t h = label_hash(s, n);
    size_t lo = 0, hi = m->nlabels;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->labels[mid] < h) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->nlabels && m->labels[lo] == h;
}

/* Pair brackets once per block so that link parsing stays linear. */
static int match_brackets(md *m) {
    size_t n = m->srclen;
    if (!memchr(m->src, '[', n)) return 0;
    if (n > m->matchcap) {
        if (n > SIZE_MAX / sizeof(size_t)) return -1;
        size_t *a = realloc(m->match, n * sizeof(size_t));
        if (!a) return -1;
        m->match = a;
        size_t *b = realloc(m->stack, n * sizeof(size_t));
        if (!b) return -1;
        m->stack = b;
        m->matchcap = n;
    }
    const unsigned char *s = m->src;
    size_t depth = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        m->match[i] = SIZE_MAX;
        if (c == '\\' && i + 1 < n) {
            m->match[i + 1] = SIZE_MAX;
            i += 2;
        } else if (c == '`') {
            size_t k = 1;
            while (i + k < n && s[i + k] == '`') k++;
            size_t e = code_end(m, i, k, n);
            size_t stop = e ? e : i + k;
            while (i < stop) m->match[i++] = SIZE_MAX;
        } else {
            if (c == '[') m->stack[depth++] = i;
            else if (c == ']' && depth) m->match[m->stack[--depth]] = i;
            i++;
        }
    }
    return 0;
}

static void tb_delim(md *m, unsigned char c, size_t i, size_t k) {
    const unsigned char *s = m->src;
    unsigned prev = i > 0 ? s[i - 1] : ' ', next = i + k < m->srclen ? s[i + k] : ' ';
    int left = !md_space(next) && (!md_punct(next) || md_space(prev) || md_punct(prev));
    int right = !md_space(prev) && (!md_punct(prev) || md_space(next) || md_punct(next));
    int open = left, close = right;
    if (c == '_') {
        open = left && (!right || md_punct(prev));
        close = right && (!left || md_punct(next));
    }
    if (c == '~' && k < 2) open = close = 0;
    if (open || close) {
        if (m->ndl == m->dlcap) {
            size_t cap = m->dlcap ? m->dlcap * 2 : 32;
            delim *d = cap < SIZE_MAX / sizeof(delim) ? realloc(m->dl, cap * sizeof(delim)) : NULL;
            if (!d) { m->oom = 1; return; }
            m->dl = d;
            m->dlcap = cap;
        }
        delim *d = &m->dl[m->ndl++];
        d->pos = m->tb.len;
        d->len = k;
        d->c = c;
        d->open = (unsigned char)open;
        d->close = (unsigned char)close;
        d->gone = 0;
        d->below = SIZE_MAX;
    }
    buf_append(&m->tb, (const char *)s + i, k);
}

/* Where the unescaped closer c of a link tail part starting at k is: its
** offset, or SIZE_MAX. Titles and <destinations> of successive failed
** links can overlap, so a closer found missing is remembered. */
static size_t tail_closer(md *m, size_t k, unsigned c) {
    const unsigned char *s = m->src;
    size_t n = m->srclen;
    int slot = c == '>' ? 0 : c == ')' ? 1 : c == '"' ? 2 : 3;
    if (k >= m->no_close[slot][0] && k < m->no_close[slot][1]) return SIZE_MAX;
    size_t i = k;
    for (; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == c) return i;
        else if (c == '>' && s[i] == '\n') break; /* <destinations> stay on one line */
    }
    m->no_close[slot][0] = k;
    m->no_close[slot][1] = i;
    return SIZE_MAX;
}

/* The offset after "(dest "title")" starting at s[j] == '(' or 0. */
static size_t link_tail(md *m, size_t j, size_t hi) {
    const unsigned char *s = m->src;
    size_t k = j + 1;
    while (k < hi && md_space(s[k])) k++;
    if (k < hi && s[k] == '<') {
        size_t e = tail_closer(m, k + 1, '>');
        if (e >= hi) return 0;
        k = e + 1;
    } else {
        /* CommonMark's nesting limit also bounds the rescans of failures */
        int depth = 0;
        while (k < hi && !md_space(s[k])) {
            if (s[k] == '\\' && k + 1 < hi) { k += 2; continue; }
            if (s[k] == '(') {
                if (++depth > 32) return 0;
            } else if (s[k] == ')') {
                if (depth == 0) break;
                depth--;
            }
            k++;
        }
    }
    while (k < hi && md_space(s[k])) k++;
    if (k < hi && (s[k] == '"' || s[k] == '\'' || s[k] == '(')) {
        size_t e = tail_closer(m, k + 1, s[k] == '(' ? ')' : s[k]);
        if (e >= hi) return 0;
        k = e + 1;
        while (k < hi && md_space(s[k])) k++;
    }
    return k < hi && s[k] == ')' ? k + 1 : 0;
}

/* "<scheme:...>" or "<user@host>": the offset after '>' or 0. */
static size_t autolink_end(const unsigned char *s, size_t i, size_t hi) {
    size_t k = i + 1, a = k;
    while (k < hi && (is_alnum(s[k]) || s[k] == '+' || s[k] == '.' || s[k] == '-')) k++;
    int scheme = k < hi && s[k] == ':' && k - a >= 2 && k - a <= 32 && is_alpha(s[a]);
    int at = 0;
    for (k = a; k < hi && s[k] != '>'; k++) {
        if (s[k] <= ' ' || s[k] == '<') return 0;
        if (s[k] == '@') at = 1;
    }
    if (k >= hi || k == a || !(scheme || at)) return 0;
    return k + 1;
}

/* Inline HTML at s[i] == '<': the offset after it, or 0 if it is not. */
static size_t inline_html_end(md *m, size_t i, size_t hi) {
    const unsigned char *s = m->src;
    if (i + 1 >= hi) return 0;
    unsigned c = s[i + 1];
    if (c == '!' && i + 3 < hi && s[i + 2] == '-' && s[i + 3] == '-') {
        if (i + 4 >= m->no_comment) return 0;
        size_t e = find_str(s, i + 4, m->srclen, "-->");
        if (e >= m->srclen) m->no_comment = i + 4;
        return e + 3 <= hi ? e + 3 : 0;
    }
    if (!(is_alpha(c) || ((c == '/' || c == '!' || c == '?') && i + 2 < hi && is_alpha(s[i + 2]))))
        return 0;
    size_t k = i + 2, lim = hi - i > 4096 ? i + 4096 : hi; /* tags are short */
    unsigned q = 0;
    for (; k < lim; k++) {
        if (q) {
            if (s[k] == q) q = 0;
        } else if (s[k] == '"' || s[k] == '\'') {
            if (k > 0 && s[k - 1] == '=') q = s[k];
        } else if (s[k] == '>') {
            return k + 1;
        } else if (s[k] == '<') {
            return 0;
        }
    }
    return 0;
}

static void inline_run(md *m, size_t lo, size_t hi, int depth);

/* Bytes that may start inline markup. */
static const unsigned char md_special[256] = {
    ['\\'] = 1, ['`'] = 1, ['*'] = 1, ['_'] = 1, ['~'] = 1, ['!'] = 1, ['['] = 1, ['<'] = 1,
    ['&'] = 1,
};

/* A link or image at s[i] == '['; returns the offset after it or 0. */
static size_t inline_link(md *m, size_t i, size_t hi, int depth, int image) {
    const unsigned char *s = m->src;
    if (!m->match || depth > 16) return 0;
    size_t q = m->match[i];
    if (q == SIZE_MAX || q >= hi) return 0;
    size_t j = q + 1, after = 0;
    if (!image && i + 1 < q && s[i + 1] == '^') {
        /* footnote reference: the note itself is kept where it is defined */
        return j < hi && s[j] == ':' ? 0 : j;
    }
    if (j < hi && s[j] == '(') after = link_tail(m, j, hi);
    if (!after && j < hi && s[j] == '[' && m->match[j] != SIZE_MAX && m->match[j] < hi)
        after = m->match[j] + 1;
    if (!after && label_defined(m, s + i + 1, q - i - 1)) after = j;
    if (!after) return 0;
    inline_run(m, i + 1, q, depth + 1);
    return after;
}

static void inline_run(md *m, size_t lo, size_t hi, int depth) {
    const unsigned char *s = m->src;
    size_t i = lo;
    while (i < hi) {
        size_t r = i;
        while (r < hi && !md_special[s[r]]) r++;
        if (r > i) {
            buf_append(&m->tb, (const char *)s + i, r - i);
            i = r;
            continue;
        }
        unsigned c = s[i];
        if (c == '\\') {
            if (i + 1 < hi && md_punct(s[i + 1])) {
                buf_putc(&m->tb, (char)s[i + 1]);
                i += 2;
            } else if (i + 1 < hi && s[i + 1] == '\n') {
                buf_putc(&m->tb, '\n');
                i += 2;
            } else {
                buf_putc(&m->tb, '\\');
                i++;
            }
        } else if (c == '`') {
            size_t k = 1;
            while (i + k < hi && s[i + k] == '`') k++;
            size_t e = code_end(m, i, k, hi);
            if (!e) {
                buf_append(&m->tb, (const char *)s + i, k);
                i += k;
                continue;
            }
            size_t a = i + k, b = e - k;
            int all_space = 1;
            for (size_t x = a; x < b; x++) all_space &= s[x] == ' ' || s[x] == '\n';
            if (!all_space && b - a >= 2 && md_space(s[a]) && md_space(s[b - 1])) a++, b--;
            for (size_t x = a; x < b; x++) buf_putc(&m->tb, s[x] == '\n' ? ' ' : (char)s[x]);
            i = e;
        } else if (c == '*' || c == '_' || c == '~') {
            size_t k = 1;
            while (i + k < hi && s[i + k] == c) k++;
            tb_delim(m, (unsigned char)c, i, k);
            i += k;
        } else if (c == '!' || c == '[') {
            int image = c == '!';
            size_t at = i + (size_t)image, e = 0;
            if (at < hi && s[at] == '[') e = inline_link(m, at, hi, depth, image);
            if (e) {
                i = e;
            } else {
                buf_putc(&m->tb, (char)c);
                i++;
            }
        } else if (c == '<') {
            size_t e = autolink_end(s, i, hi);
            if (e) {
                buf_append(&m->tb, (const char *)s + i + 1, e - i - 2);
                i = e;
            } else if ((e = inline_html_end(m, i, hi)) != 0) {
                i = e;
            } else {
                buf_putc(&m->tb, '<');
                i++;
            }
        } else { /* '&' */
            char out[4];
            size_t olen, used = decode_entity(s, i, hi, out, &olen);
            if (used) {
                buf_append(&m->tb, out, olen);
                i += used;
            } else {
                buf_putc(&m->tb, '&');
                i++;
            }
        }
    }
}

/* Write tb to k, without the emphasis runs that found a partner; '\n'
** (a hard break) becomes a line break. */
static void tb_write(md *m, sink *k, size_t from, size_t to) {
    const char *p = m->tb.p;
    while (from < to) {
        const char *nl = memchr(p + from, '\n', to - from);
        size_t e = nl ? (size_t)(nl - p) : to;
        sink_text(k, p + from, e - from);
        if (!nl) break;
        sink_break(k, 1);
        from = e + 1;
    }
}

/* Render the inline source src[0..n) into k. */
static void render_inline(md *m, const char *src, size_t n, sink *k) {
    m->src = (const unsigned char *)src;
    m->srclen = n;
    buf_reset(&m->tb);
    m->ndl = 0;
    m->no_comment = SIZE_MAX;
    for (size_t i = 0; i < 33; i++) m->no_code[i] = SIZE_MAX;
    for (size_t i = 0; i < 4; i++) m->no_close[i][0] = m->no_close[i][1] = 0;
    if (match_brackets(m)) { m->oom = 1; return; }
    int have_match = memchr(src, '[', n) != NULL;
    size_t *saved = m->match;
    if (!have_match) m->match = NULL;
    inline_run(m, 0, n, 0);
    m->match = saved;
    if (m->tb.oom) { m->oom = 1; return; }

    size_t top[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
    for (size_t i = 0; i < m->ndl; i++) {
        delim *d = &m->dl[i];
        int c = d->c == '*' ? 0 : d->c == '_' ? 1 : 2;
        if (d->close && top[c] != SIZE_MAX) {
            d->gone = 1;
            m->dl[top[c]].gone = 1;
            top[c] = m->dl[top[c]].below;
        } else if (d->open) {
            d->below = top[c];
            top[c] = i;
        }
    }
    size_t at = 0;
    for (size_t i = 0; i < m->ndl; i++) {
        if (!m->dl[i].gone) continue;
        tb_write(m, k, at, m->dl[i].pos);
        at = m->dl[i].pos + m->dl[i].len;
    }
    tb_write(m, k, at, m->tb.len);
}

/* ---- block pass ---- */

static void md_set_title(md *m, const char *s, size_t n) {
    if (m->have_title) return;
    sink k;
    sink_init(&k, m->title);
    sink_text(&k, s, n);
    buf_free(&k.pend);
    m->have_title = m->title->len > m->title0;
}

/* Start a new output block: the break before it depends on what it
** follows (list items and table rows stay on adjacent lines). */
static void block_start(md *m, int type) {
    int tight = (type == B_LIST && m->last == B_LIST && !m->blank);
    sink_break(&m->txt, tight ? 1 : 2);
    m->last = type;
    m->blank = 0;
}

static void flush_block(md *m) {
    int type = m->btype;
    m->btype = B_NONE;
    m->hard = 0;
    if (type == B_NONE) return;
    block_start(m, type);
    if (type == B_H1 && !m->have_title) {
        /* the first level-1 heading: the title candidate */
        size_t t0 = m->title->len;
        sink k;
        sink_init(&k, m->title);
        render_inline(m, m->para.p ? m->para.p : "", m->para.len, &k);
        buf_free(&k.pend);
        m->have_title = m->title->len > m->title0;
        if (m->title->len > t0) sink_text(&m->txt, m->title->p + t0, m->title->len - t0);
        buf_reset(&m->para);
        return;
    }
    render_inline(m, m->para.p ? m->para.p : "", m->para.len, &m->txt);
    buf_reset(&m->para);
}

static void para_add(md *m, const unsigned char *s, size_t a, size_t e) {
    /* the line's trailing whitespace decides whether the break is hard */
    size_t t = e;
    while (t > a && (s[t - 1] == ' ' || s[t - 1] == '\t')) t--;
    int hard = e - t >= 2;
    if (t > a && s[t - 1] == '\\' && !(t - 1 > a && s[t - 2] == '\\')) {
        hard = 1;
        t--;
    }
    while (a < t && (s[a] == ' ' || s[a] == '\t')) a++;
    if (m->para.len) buf_putc(&m->para, m->hard ? '\n' : ' ');
    buf_append(&m->para, (const char *)s + a, t - a);
    m->hard = hard;
}

/* Column width of leading whitespace of s[a..e); *at receives its end. */
static size_t indent(const unsigned char *s, size_t a, size_t e, size_t *at) {
    size_t col = 0;
    while (a < e && (s[a] == ' ' || s[a] == '\t')) {
        col = s[a] == '\t' ? (col + 4) & ~(size_t)3 : col + 1;
        a++;
    }
    *at = a;
    return col;
}

/* Drop up to `cols` columns of indentation. */
static size_t strip_cols(const unsigned char *s, size_t a, size_t e, size_t cols) {
    size_t col = 0;
    while (a < e && col < cols && (s[a] == ' ' || s[a] == '\t')) {
        col = s[a] == '\t' ? (col + 4) & ~(size_t)3 : col + 1;
        a++;
    }
    return a;
}

static int thematic_break(const unsigned char *s, size_t a, size_t e) {
    unsigned c = a < e ? s[a] : 0;
    if (c != '-' && c != '*' && c != '_') return 0;
    size_t count = 0;
    for (size_t i = a; i < e; i++) {
        if (s[i] == c) count++;
        else if (s[i] != ' ' && s[i] != '\t') return 0;
    }
    return count >= 3;
}

/* '=' (1) or '-' (2) setext underline, else 0. */
static int setext_line(const unsigned char *s, size_t a, size_t e) {
    while (e > a && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
    if (a >= e || (s[a] != '=' && s[a] != '-')) return 0;
    for (size_t i = a; i < e; i++)
        if (s[i] != s[a]) return 0;
    return s[a] == '=' ? 1 : 2;
}

/* Length of a list marker at s[a] (including the space after it), or 0. */
static size_t list_marker(const unsigned char *s, size_t a, size_t e) {
    size_t k = a;
    if (k < e && (s[k] == '-' || s[k] == '*' || s[k] == '+')) {
        k++;
    } else {
        while (k < e && k - a < 9 && is_digit(s[k])) k++;
        if (k == a || k >= e || (s[k] != '.' && s[k] != ')')) return 0;
        k++;
    }
    if (k < e && s[k] != ' ' && s[k] != '\t') return 0;
    while (k < e && (s[k] == ' ' || s[k] == '\t')) k++;
    /* a task list box is a marker too */
    if (k + 3 <= e && s[k] == '[' && (s[k + 1] == ' ' || (s[k + 1] | 32) == 'x') &&
        s[k + 2] == ']' && (k + 3 == e || s[k + 3] == ' ' || s[k + 3] == '\t')) {
        k += 3;
        while (k < e && (s[k] == ' ' || s[k] == '\t')) k++;
    }
    return k - a;
}

/* Number of cells of a table row (outer pipes do not count). */
static size_t table_cells(const unsigned char *s, size_t a, size_t e) {
    while (a < e && (s[a] == ' ' || s[a] == '\t')) a++;
    while (e > a && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
    if (a < e && s[a] == '|') a++;
    if (e > a && s[e - 1] == '|' && !(e - 1 > a && s[e - 2] == '\\')) e--;
    size_t cells = 1;
    for (size_t i = a; i < e; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '|') cells++;
    }
    return cells;
}

static int has_pipe(const unsigned char *s, size_t a, size_t e) {
    for (size_t i = a; i < e; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '|') return 1;
    }
    return 0;
}

static int delimiter_row(const unsigned char *s, size_t a, size_t e) {
    int dash = 0;
    for (size_t i = a; i < e; i++) {
        unsigned c = s[i];
        if (c == '-') dash = 1;
        else if (c != '|' && c != ':' && c != ' ' && c != '\t') return 0;
    }
    return dash;
}

/* A table row becomes one line, cells separated by a space. */
static void table_row(md *m, const unsigned char *s, size_t a, size_t e) {
    while (a < e && (s[a] == ' ' || s[a] == '\t')) a++;
    while (e > a && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
    if (a < e && s[a] == '|') a++;
    if (e > a && s[e - 1] == '|' && !(e - 1 > a && s[e - 2] == '\\')) e--;
    buf_reset(&m->para);
    for (size_t i = a; i < e; i++) {
        if (s[i] == '\\' && i + 1 < e) {
            buf_append(&m->para, (const char *)s + i, 2);
            i++;
        } else {
            buf_putc(&m->para, s[i] == '|' ? ' ' : (char)s[i]);
        }
    }
    sink_break(&m->txt, 1);
    render_inline(m, m->para.p ? m->para.p : "", m->para.len, &m->txt);
    buf_reset(&m->para);
}

static void line_bounds(const unsigned char *s, size_t i, size_t n, size_t *e, size_t *next) {
    const unsigned char *nl = memchr(s + i, '\n', n - i);
    size_t j = nl ? (size_t)(nl - s) : n;
    const unsigned char *cr = memchr(s + i, '\r', j - i);
    if (cr) j = (size_t)(cr - s);
    *e = j;
    if (j < n && s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') *next = j + 2;
    else *next = j < n ? j + 1 : n;
}

/* Front matter: YAML between "---" lines or TOML between "+++" lines.
** Returns where the document proper starts. */
static size_t front_matter(md *m, size_t i) {
    const unsigned char *s = m->s;
    size_t n = m->n, e, next;
    line_bounds(s, i, n, &e, &next);
    size_t t = e;
    while (t > i && (s[t - 1] == ' ' || s[t - 1] == '\t')) t--;
    if (t - i != 3 || (memcmp(s + i, "---", 3) != 0 && memcmp(s + i, "+++", 3) != 0)) return i;
    int toml = s[i] == '+';
    size_t body = next;
    for (size_t k = body; k < n; k = next) {
        line_bounds(s, k, n, &e, &next);
        t = e;
        while (t > k && (s[t - 1] == ' ' || s[t - 1] == '\t')) t--;
        if (t - k == 3 && (memcmp(s + k, toml ? "+++" : "---", 3) == 0 ||
                           (!toml && memcmp(s + k, "...", 3) == 0))) {
            /* found the end: now pick the title out of [body, k) */
            size_t doc = next;
            for (size_t l = body; l < k; l = next) {
                line_bounds(s, l, n, &e, &next);
                if (e - l < 6 || memcmp(s + l, "title", 5) != 0) continue;
                size_t v = l + 5;
                while (v < e && (s[v] == ' ' || s[v] == '\t')) v++;
                if (v >= e || s[v] != (toml ? '=' : ':')) continue;
                v++;
                while (v < e && (s[v] == ' ' || s[v] == '\t')) v++;
                size_t w = e;
                while (w > v && (s[w - 1] == ' ' || s[w - 1] == '\t')) w--;
                if (w - v >= 2 && (s[v] == '"' || s[v] == '\'') && s[w - 1] == s[v]) v++, w--;
                if (w > v && (s[v] == '|' || s[v] == '>') && w - v <= 2 && next < k) {
                    /* a block scalar: its first line will do */
                    size_t e2, n2, a2;
                    line_bounds(s, next, n, &e2, &n2);
                    indent(s, next, e2, &a2);
                    v = a2;
                    w = e2;
                }
                md_set_title(m, (const char *)s + v, w - v);
                break;
            }
            return doc;
        }
    }
    return i;
}

/* Collect link reference definition labels (for shortcut references). */
static int collect_labels(md *m, size_t i) {
    const unsigned char *s = m->s;
    size_t n = m->n, e, next, cap = 0;
    for (; i < n; i = next) {
        line_bounds(s, i, n, &e, &next);
        size_t a;
        if (indent(s, i, e, &a) > 3 || a >= e || s[a] != '[' || a + 1 >= e || s[a + 1] == '^')
            continue;
        const unsigned char *q = memchr(s + a, ']', e - a);
        if (!q || (size_t)(q - s) + 1 >= e || q[1] != ':') continue;
        if (m->nlabels == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *p = cap < SIZE_MAX / 8 ? realloc(m->labels, cap * sizeof(uint64_t)) : NULL;
            if (!p) return -1;
            m->labels = p;
        }
        m->labels[m->nlabels++] = label_hash(s + a + 1, (size_t)(q - s) - a - 1);
    }
    /* insertion sort would be quadratic on label-heavy files */
    for (size_t gap = m->nlabels / 2; gap > 0; gap /= 2)
        for (size_t x = gap; x < m->nlabels; x++) {
            uint64_t v = m->labels[x];
            size_t y = x;
            while (y >= gap && m->labels[y - gap] > v) {
                m->labels[y] = m->labels[y - gap];
                y -= gap;
            }
            m->labels[y] = v;
        }
    return 0;
}

/* Strip block quote markers (at most `limit`); returns the depth. */
static int quote_strip(const unsigned char *s, size_t *a, size_t e, int limit) {
    int depth = 0;
    size_t k = *a;
    while (depth < limit) {
        size_t at;
        if (indent(s, k, e, &at) > 3 || at >= e || s[at] != '>') break;
        k = at + 1;
        if (k < e && (s[k] == ' ' || s[k] == '\t')) k++;
        depth++;
    }
    *a = k;
    return depth;
}

int parse_markdown(const char *in, size_t n, buf *title, buf *text) {
    md m;
    memset(&m, 0, sizeof m);
    const unsigned char *s = (const unsigned char *)in;
    m.s = s;
    m.n = n;
    m.title = title;
    m.title0 = title->len;
    size_t text0 = text->len;
    sink_init(&m.txt, text);

    size_t i = skip_bom(s, n);
    i = front_matter(&m, i);
    if (collect_labels(&m, i)) m.oom = 1;

    size_t e, next;
    for (; i < n && !m.oom; i = next) {
        line_bounds(s, i, n, &e, &next);
        size_t a = i;

        if (m.fence) {
            size_t qa = a;
            if (m.fq) quote_strip(s, &qa, e, m.fq);
            size_t at;
            indent(s, qa, e, &at);
            size_t k = at;
            while (k < e && s[k] == m.fch) k++;
            size_t t = k;
            while (t < e && (s[t] == ' ' || s[t] == '\t')) t++;
            if (k - at >= m.flen && t == e) {
                m.fence = 0;
                m.txt.pre--;
                sink_break(&m.txt, 2);
                continue;
            }
            qa = strip_cols(s, qa, e, m.find);
            sink_text(&m.txt, (const char *)s + qa, e - qa);
            sink_text(&m.txt, "\n", 1);
            continue;
        }

        int qd = quote_strip(s, &a, e, 64);
        if (qd != m.qdepth) {
            flush_block(&m);
            if (m.icode) { m.icode = 0; m.txt.pre--; }
            m.in_table = 0;
            sink_break(&m.txt, 2);
            m.last = B_NONE;
            m.qdepth = qd;
        }

        size_t at;
        size_t ind = indent(s, a, e, &at);

        if (at >= e) { /* blank line */
            flush_block(&m);
            m.in_table = 0;
            m.blank = 1;
            if (m.icode) sink_text(&m.txt, "\n", 1);
            continue;
        }

        if (m.icode) {
            if (ind >= 4) {
                size_t c = strip_cols(s, a, e, 4);
                sink_text(&m.txt, (const char *)s + c, e - c);
                sink_text(&m.txt, "\n", 1);
                continue;
            }
            m.icode = 0;
            m.txt.pre--;
            sink_break(&m.txt, 2);
        }

        if (m.in_table) {
            if (has_pipe(s, at, e)) {
                table_row(&m, s, at, e);
                continue;
            }
            m.in_table = 0;
            sink_break(&m.txt, 2);
        }

        /* fenced code */
        if (e - at >= 3 && (s[at] == '`' || s[at] == '~') && s[at + 1] == s[at] &&
            s[at + 2] == s[at]) {
            size_t k = at;
            while (k < e && s[k] == s[at]) k++;
            if (s[at] != '`' || !memchr(s + k, '`', e - k)) {
                flush_block(&m);
                block_start(&m, B_CODE);
                m.fence = 1;
                m.fch = s[at];
                m.flen = k - at;
                m.find = ind;
                m.fq = qd;
                m.txt.pre++;
                continue;
            }
        }

        /* indented code (not inside lists, not continuing a paragraph) */
        if (ind >= 4 && m.btype == B_NONE && !m.in_list) {
            flush_block(&m);
            block_start(&m, B_CODE);
            m.icode = 1;
            m.txt.pre++;
            size_t c = strip_cols(s, a, e, 4);
            sink_text(&m.txt, (const char *)s + c, e - c);
            sink_text(&m.txt, "\n", 1);
            continue;
        }

        /* HTML comments and script/style blocks */
        if (ind <= 3 && s[at] == '<') {
            const char *close = NULL;
            if (e - at >= 4 && memcmp(s + at, "<!--", 4) == 0) close = "-->";
            else if (e - at >= 7 && find_ci(s, at, at + 7, "<script") == at) close = "</script>";
            else if (e - at >= 6 && find_ci(s, at, at + 6, "<style") == at) close = "</style>";
            size_t c = !close ? n : close[0] == '-' ? find_str(s, at + 4, n, close)
                                                    : find_ci(s, at, n, close);
            if (close && (close[0] != '-' || c >= e)) {
                /* drop through the line that closes it; a comment that
                ** closes on its own line is left to the inline pass */
                flush_block(&m);
                size_t le, ln;
                line_bounds(s, c < n ? c : n, n, &le, &ln);
                next = c < n ? ln : n;
                continue;
            }
        }

        /* setext underline turns the paragraph above into a heading */
        if (ind <= 3 && m.btype == B_PARA) {
            int lvl = setext_line(s, at, e);
            if (lvl) {
                m.btype = lvl == 1 ? B_H1 : B_HEADING;
                flush_block(&m);
                m.last = B_HEADING;
                m.in_list = 0;
                continue;
            }
        }

        if (ind <= 3 && thematic_break(s, at, e)) {
            flush_block(&m);
            sink_break(&m.txt, 2);
            m.in_list = 0;
            continue;
        }

        /* ATX heading */
        if (ind <= 3 && s[at] == '#') {
            size_t k = at;
            while (k < e && s[k] == '#') k++;
            if (k - at <= 6 && (k == e || s[k] == ' ' || s[k] == '\t')) {
                int level = (int)(k - at);
                size_t c = k, t = e;
                while (t > c && (s[t - 1] == ' ' || s[t - 1] == '\t')) t--;
                size_t h = t;
                while (h > c && s[h - 1] == '#') h--;
                if (h == c || s[h - 1] == ' ' || s[h - 1] == '\t') t = h;
                flush_block(&m);
                para_add(&m, s, c, t);
                m.btype = level == 1 ? B_H1 : B_HEADING;
                flush_block(&m);
                m.last = B_HEADING;
                m.in_list = 0;
                continue;
            }
        }

        /* table: a row with pipes over a delimiter row with as many cells */
        if (has_pipe(s, at, e) && next < n) {
            size_t e2, n2, a2 = next;
            line_bounds(s, next, n, &e2, &n2);
            if (qd) quote_strip(s, &a2, e2, qd);
            if (delimiter_row(s, a2, e2) && table_cells(s, a2, e2) == table_cells(s, at, e)) {
                flush_block(&m);
                block_start(&m, B_TABLE);
                table_row(&m, s, at, e);
                m.in_table = 1;
                next = n2;
                continue;
            }
        }

        /* list item */
        size_t lm = list_marker(s, at, e);
        if (lm && (ind <= 3 || m.in_list)) {
            flush_block(&m);
            m.btype = B_LIST;
            m.in_list = 1;
            para_add(&m, s, at + lm, e);
            continue;
        }

        /* link reference definition (cannot interrupt a paragraph) */
        if (ind <= 3 && s[at] == '[' && m.btype != B_PARA) {
            const unsigned char *q = memchr(s + at, ']', e - at);
            if (q && (size_t)(q - s) + 1 < e && q[1] == ':') {
                flush_block(&m);
                if (at + 1 < e && s[at + 1] == '^') {
                    /* a footnote: its text is content */
                    m.btype = B_PARA;
                    para_add(&m, s, (size_t)(q - s) + 2, e);
                }
                continue;
            }
        }

        /* paragraph text (or the continuation of a list item) */
        if (m.btype == B_NONE || m.btype == B_HEADING) {
            if (ind == 0 && m.blank) m.in_list = 0;
            m.btype = B_PARA;
        }
        para_add(&m, s, at, e);
    }
    flush_block(&m);
    if (m.para.oom || m.tb.oom || m.txt.pend.oom) m.oom = 1;
    buf_free(&m.txt.pend);
    buf_free(&m.para);
    buf_free(&m.tb);
    free(m.dl);
    free(m.match);
    free(m.stack);
    free(m.labels);
    fix_utf8(text, text0);
    fix_utf8(title, m.title0);
    return m.oom || text->oom || title->oom ? -1 : 0;
}
