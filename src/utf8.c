/*
** utf8.c -- UTF-8 validation and repair for everything that enters the
** index, and UTF-16 decoding (files with a byte order mark). Text stored
** in the index is always valid UTF-8 without NULs; the ingest path
** repairs (U+FFFD) and reports the first bad offset.
*/
#include "plumb_impl.h"

/* Length of the valid sequence at s[i..n), or 0 if invalid. */
static size_t seq_len(const unsigned char *s, size_t i, size_t n) {
    unsigned c = s[i];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
        if (i + 1 < n && (s[i + 1] & 0xC0) == 0x80) return 2;
        return 0;
    }
    if (c < 0xF0) {
        if (i + 2 >= n) return 0;
        unsigned c1 = s[i + 1];
        if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && c1 < 0xA0) return 0; /* overlong */
        if (c == 0xED && c1 >= 0xA0) return 0; /* surrogates */
        return 3;
    }
    if (c < 0xF5) {
        if (i + 3 >= n) return 0;
        unsigned c1 = s[i + 1];
        if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && c1 < 0x90) return 0; /* overlong */
        if (c == 0xF4 && c1 >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

size_t utf8_check(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t l = seq_len(s, i, n);
        if (!l) return i;
        i += l;
    }
    return n;
}

size_t utf8_repair(const char *str, size_t n, buf *out, size_t *first_bad) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0, bad = 0;
    if (first_bad) *first_bad = n;
    while (i < n) {
        size_t l = s[i] ? (s[i] < 0x80 ? 1 : seq_len(s, i, n)) : 0;
        if (l) { i += l; continue; }
        buf_append(out, str + run, i - run);
        if (s[i]) buf_append(out, "\xEF\xBF\xBD", 3);
        if (bad == 0 && first_bad) *first_bad = i;
        bad++;
        i++;
        /* swallow the continuation bytes of the broken sequence */
        while (i < n && (s[i] & 0xC0) == 0x80) i++;
        run = i;
    }
    buf_append(out, str + run, n - run);
    return bad;
}

size_t utf16_to_utf8(const char *str, size_t n, int big_endian, buf *out, size_t *first_bad) {
    const unsigned char *s = (const unsigned char *)str;
    size_t bad = 0, i = 0;
    int repl = 0;
    if (first_bad) *first_bad = n;
#define UNIT(k) (big_endian ? (unsigned)s[k] << 8 | s[(k) + 1] : (unsigned)s[(k) + 1] << 8 | s[k])
    while (i + 1 < n) {
        unsigned c = UNIT(i);
        size_t at = i;
        i += 2;
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && UNIT(i) >= 0xDC00 && UNIT(i) <= 0xDFFF) {
            c = 0x10000 + ((c - 0xD800) << 10) + (UNIT(i) - 0xDC00);
            i += 2;
        } else if (c >= 0xD800 && c <= 0xDFFF) {
            c = 0; /* a lone surrogate */
            repl = 1;
        }
        if (repl || c == 0) {
            if (bad++ == 0 && first_bad) *first_bad = at;
            if (!repl) continue; /* NUL: dropped, as utf8_repair does */
            c = 0xFFFD;
            repl = 0;
        }
        char u[4];
        size_t l;
        if (c < 0x80) { u[0] = (char)c; l = 1; }
        else if (c < 0x800) { u[0] = (char)(0xC0 | c >> 6); u[1] = (char)(0x80 | (c & 0x3F)); l = 2; }
        else if (c < 0x10000) {
            u[0] = (char)(0xE0 | c >> 12); u[1] = (char)(0x80 | (c >> 6 & 0x3F));
            u[2] = (char)(0x80 | (c & 0x3F)); l = 3;
        } else {
            u[0] = (char)(0xF0 | c >> 18); u[1] = (char)(0x80 | (c >> 12 & 0x3F));
            u[2] = (char)(0x80 | (c >> 6 & 0x3F)); u[3] = (char)(0x80 | (c & 0x3F)); l = 4;
        }
        buf_append(out, u, l);
    }
#undef UNIT
    if (i < n) { /* an odd last byte */
        if (bad++ == 0 && first_bad) *first_bad = i;
        buf_append(out, "\xEF\xBF\xBD", 3);
    }
    return bad;
}
