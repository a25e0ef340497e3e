/* test_chunk.c -- token estimate and chunk_split(): hand-computed
** estimates, cut placement on texts whose costs are known exactly,
** over-long words, UTF-8 safety, and a seeded property test of every
** invariant over a few thousand random texts. */
#include "check.h"
#include "plumb_impl.h"

#include <stdint.h>
#include <time.h>

/* ---- helpers ---- */

static size_t est(const char *s) { return chunk_estimate_tokens(s, strlen(s)); }

static size_t est_span(const char *t, chunk_span sp) {
    return chunk_estimate_tokens(t + sp.start, sp.end - sp.start);
}

static int is_ws(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13); }

/* The whitespace between the end of span i and the next visible byte. */
static size_t newlines_after(const char *t, size_t n, size_t end) {
    size_t k = 0;
    while (end < n && is_ws((unsigned char)t[end])) k += t[end++] == '\n';
    return k;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static uint32_t below(uint32_t k) { return k ? rnd() % k : 0; }

/* Check every invariant of a split; returns the number of violations
** (and prints the first). */
static int check_split(const char *t, size_t n, size_t max, size_t ov, const chunk_span *sp,
                       size_t ns, int tag) {
    int bad = 0;
#define FAIL(...) do { if (!bad) { fprintf(stderr, "[case %d max %zu ov %zu] ", tag, max, ov); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } bad++; } while (0)
    size_t ovc = ov < max / 2 ? ov : max / 2;
    size_t prev_end = 0;
    for (size_t i = 0; i < ns; i++) {
        size_t a = sp[i].start, b = sp[i].end;
        if (a >= b || b > n) { FAIL("span %zu empty or out of range [%zu,%zu)", i, a, b); continue; }
        if (is_ws((unsigned char)t[a]) || is_ws((unsigned char)t[b - 1]))
            FAIL("span %zu [%zu,%zu) starts or ends with whitespace", i, a, b);
        if (((unsigned char)t[a] & 0xC0) == 0x80 || (b < n && ((unsigned char)t[b] & 0xC0) == 0x80))
            FAIL("span %zu [%zu,%zu) cuts a UTF-8 character", i, a, b);
        if (max && est_span(t, sp[i]) > max)
            FAIL("span %zu [%zu,%zu) estimates %zu > %zu", i, a, b, est_span(t, sp[i]), max);
        size_t gap_from = i ? prev_end : 0;
        if (i && (a <= sp[i - 1].start || b <= sp[i - 1].end))
            FAIL("span %zu [%zu,%zu) not after span %zu [%zu,%zu)", i, a, b, i - 1,
                 sp[i - 1].start, sp[i - 1].end);
        for (size_t k = gap_from; k < a; k++)
            if (!is_ws((unsigned char)t[k])) { FAIL("byte %zu before span %zu not covered", k, i); break; }
        if (i && a < prev_end) {
            chunk_span o = {a, prev_end};
            if (est_span(t, o) > ovc)
                FAIL("spans %zu/%zu overlap by %zu > %zu tokens", i - 1, i, est_span(t, o), ovc);
        }
        if (b > prev_end) prev_end = b;
    }
    for (size_t k = prev_end; k < n; k++)
        if (!is_ws((unsigned char)t[k])) { FAIL("byte %zu after the last span not covered", k); break; }
#undef FAIL
    return bad;
}

static chunk_span *split(const char *t, size_t n, size_t max, size_t ov, size_t *ns) {
    chunk_span *sp = NULL;
    *ns = 0;
    CHECK(chunk_split(t, n, max, ov, &sp, ns) == 0);
    return sp;
}

/* ---- the estimate ---- */

static void test_estimate(void) {
    CHECK(est("") == 0);
    CHECK(est("hello") == 1);                       /* 4 quarters */
    CHECK(est("hello world") == 2);                 /* a single space is free */
    CHECK(est("The quick brown fox.") == 5);        /* 4 words + '.' */
    CHECK(est("1234567") == 3);                     /* groups of 3 digits */
    CHECK(est("internationalization") == 4);        /* 4 + (20-5) = 19 quarters */
    CHECK(est("NASA") == 1);                        /* 4 + (1+2+2+2-5) = 6 quarters */
    CHECK(est("NASAGOV") == 3);                     /* 4 + (1+2*6-5) = 12 quarters */
    CHECK(est("a  b") == 3);                        /* a run of spaces costs 1 */
    CHECK(est("a\n\nb") == 3);                      /* so does a newline run */
    CHECK(est("\xe4\xbd\xa0\xe5\xa5\xbd") == 2);    /* 你好: 5 quarters each */
    CHECK(est("\xf0\x9f\x98\x80\xf0\x9f\x98\x80") == 3); /* two emoji: 7 quarters each */
    CHECK(est("-----") == 1);
    CHECK(est("--------------------") == 3);        /* 4 + 4 per 8 more */
    CHECK(est("caf\xc3\xa9") == 1);                 /* c a f + é(3) = 6 -> 5 quarters */
    CHECK(est("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82") == 4); /* Привет: 4 + 13 */
    CHECK(est("\xff\xfe") == 2);                    /* invalid bytes: 1 each */
    CHECK(est("e.g.") == 4);

    /* never more than one token per byte (the chunker's fast path relies on it) */
    char b[64];
    for (int r = 0; r < 20000; r++) {
        size_t n = 1 + below(sizeof b);
        for (size_t i = 0; i < n; i++) b[i] = below(4) ? (char)below(256) : "aZ9 .\n"[below(6)];
        if (chunk_estimate_tokens(b, n) > n) { CHECK(!"estimate exceeds byte count"); break; }
    }
    /* every single character fits a one-token window */
    const char *one[] = {"A", "z", "7", ".", "\xc3\xa9", "\xe1\xbb\x87", "\xe4\xbd\xa0",
                         "\xea\xb0\x80", "\xf0\x9f\x98\x80", "\xe2\x98\x83", "\x80"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) CHECK(est(one[i]) == 1);
}

/* ---- simple cases ---- */

static void test_small(void) {
    size_t ns;
    chunk_span *sp;

    const char *t = "  hello world \n";
    sp = split(t, strlen(t), 512, 64, &ns);
    CHECK(ns == 1 && sp && sp[0].start == 2 && sp[0].end == 13);
    free(sp);

    sp = split("", 0, 512, 64, &ns);
    CHECK(ns == 0);
    free(sp);
    sp = split(" \n\t \r\n ", 7, 512, 64, &ns);
    CHECK(ns == 0);
    free(sp);
    /* Unicode whitespace (no-break space, ideographic space) trims too */
    t = "\xc2\xa0 x \xe3\x80\x80";
    sp = split(t, strlen(t), 512, 64, &ns);
    CHECK(ns == 1 && sp && sp[0].start == 3 && sp[0].end == 4);
    free(sp);

    /* max_tokens == 0: one span whatever the length */
    buf b = {0};
    for (int i = 0; i < 2000; i++) buf_puts(&b, "Some words here. ");
    sp = split(b.p, b.len, 0, 64, &ns);
    CHECK(ns == 1 && sp && sp[0].start == 0 && sp[0].end == b.len - 1);
    free(sp);

    /* exactly at the budget: one span; one token over: two */
    t = "one two three four five";
    sp = split(t, strlen(t), 5, 1, &ns);
    CHECK(ns == 1);
    free(sp);
    sp = split(t, strlen(t), 4, 1, &ns);
    CHECK(ns == 2 && sp && check_split(t, strlen(t), 4, 1, sp, ns, -1) == 0);
    free(sp);
    buf_free(&b);
}

/* ---- cut placement on texts of known cost ---- */

static const char *words[] = {"alpha", "beta", "gamma", "delta", "omega", "river", "stone",
                              "light", "cloud", "green", "table", "chair"};

/* A sentence of 8 one-token words and a period: exactly 9 tokens. */
static void sentence(buf *b) {
    for (int w = 0; w < 8; w++) {
        const char *x = words[below(12)];
        if (w) buf_putc(b, ' ');
        if (w == 0) {
            buf_putc(b, (char)(x[0] - 32));
            buf_puts(b, x + 1);
        } else {
            buf_puts(b, x);
        }
    }
    buf_putc(b, '.');
}

static void test_paragraph_cuts(void) {
    /* paragraphs of 4 one-line sentences (39 tokens with the newlines)
    ** and max 100: a paragraph break always falls in a window's upper
    ** half, so every cut is one, though line breaks come later */
    buf b = {0};
    for (int p = 0; p < 40; p++) {
        if (p) buf_puts(&b, "\n\n");
        for (int s = 0; s < 4; s++) {
            if (s) buf_putc(&b, '\n');
            sentence(&b);
        }
    }
    size_t ns;
    chunk_span *sp = split(b.p, b.len, 100, 12, &ns);
    CHECK(ns > 10);
    CHECK(check_split(b.p, b.len, 100, 12, sp, ns, -2) == 0);
    int para = 0;
    for (size_t i = 0; i + 1 < ns; i++) para += newlines_after(b.p, b.len, sp[i].end) >= 2;
    CHECK(para == (int)ns - 1);
    /* the next window repeats the last sentence: 9 tokens of 12 asked
    ** (word starts would give 11) */
    for (size_t i = 0; i + 1 < ns; i++) {
        chunk_span o = {sp[i + 1].start, sp[i].end};
        CHECK(sp[i + 1].start < sp[i].end && est_span(b.p, o) == 9);
        CHECK(b.p[sp[i + 1].start] >= 'A' && b.p[sp[i + 1].start] <= 'Z');
    }
    free(sp);

    /* among line breaks, those ending a sentence win */
    buf_reset(&b);
    for (int l = 0; l < 400; l++) {
        if (l) buf_putc(&b, '\n');
        buf_puts(&b, l % 3 == 2 ? "Green table chair." : "Stone river light cloud");
    }
    sp = split(b.p, b.len, 40, 0, &ns);
    CHECK(ns > 20 && check_split(b.p, b.len, 40, 0, sp, ns, -10) == 0);
    for (size_t i = 0; i + 1 < ns; i++) CHECK(b.p[sp[i].end - 1] == '.');
    free(sp);

    /* one long paragraph: cuts at sentence ends, overlaps of one sentence */
    buf_reset(&b);
    for (int s = 0; s < 200; s++) {
        if (s) buf_putc(&b, ' ');
        sentence(&b);
    }
    sp = split(b.p, b.len, 50, 12, &ns);
    CHECK(ns > 30 && check_split(b.p, b.len, 50, 12, sp, ns, -3) == 0);
    for (size_t i = 0; i + 1 < ns; i++) {
        CHECK(b.p[sp[i].end - 1] == '.');
        CHECK(b.p[sp[i].end + 1] >= 'A' && b.p[sp[i].end + 1] <= 'Z');
        CHECK(b.p[sp[i + 1].start] >= 'A' && b.p[sp[i + 1].start] <= 'Z');
        chunk_span o = {sp[i + 1].start, sp[i].end};
        CHECK(est_span(b.p, o) >= 6 && est_span(b.p, o) <= 12);
        CHECK(est_span(b.p, sp[i]) >= 25); /* windows are at least half full */
    }
    free(sp);

    /* no sentence ends at all: word cuts, overlap exactly as asked */
    buf_reset(&b);
    for (int w = 0; w < 3000; w++) {
        if (w) buf_putc(&b, ' ');
        buf_puts(&b, words[below(12)]);
    }
    sp = split(b.p, b.len, 64, 8, &ns);
    CHECK(ns > 50 && check_split(b.p, b.len, 64, 8, sp, ns, -4) == 0);
    for (size_t i = 0; i + 1 < ns; i++) {
        chunk_span o = {sp[i + 1].start, sp[i].end};
        CHECK(est_span(b.p, o) == 8);
        CHECK(est_span(b.p, sp[i]) == 64); /* one-token words fill windows exactly */
    }
    free(sp);

    /* line breaks beat sentence ends: lines "Aa bb cc. Dd ee ff gg" */
    buf_reset(&b);
    for (int l = 0; l < 300; l++) {
        if (l) buf_putc(&b, '\n');
        buf_puts(&b, "Stone river light. Cloud green table chair");
    }
    sp = split(b.p, b.len, 40, 0, &ns);
    CHECK(ns > 20 && check_split(b.p, b.len, 40, 0, sp, ns, -5) == 0);
    for (size_t i = 0; i + 1 < ns; i++) {
        CHECK(newlines_after(b.p, b.len, sp[i].end) == 1);
        CHECK(sp[i + 1].start == sp[i].end + 1); /* no overlap asked */
    }
    free(sp);
    buf_free(&b);
}

/* ---- words longer than a window, UTF-8, CJK ---- */

static void test_long_words(void) {
    size_t ns;
    char *w = malloc(10001);
    memset(w, 'a', 10000);
    w[10000] = 0;
    chunk_span *sp = split(w, 10000, 50, 10, &ns);
    CHECK(ns > 10 && check_split(w, 10000, 50, 10, sp, ns, -6) == 0);
    for (size_t i = 0; i + 1 < ns; i++) {
        CHECK(sp[i].end == sp[i + 1].start); /* no overlap inside a word */
        CHECK(est_span(w, sp[i]) == 50);
    }
    CHECK(ns && sp[0].start == 0 && sp[ns - 1].end == 10000);
    free(sp);

    /* the long word is cut only where it must be */
    buf b = {0};
    buf_puts(&b, "hello world ");
    buf_append(&b, w, 10000);
    buf_puts(&b, " goodbye world");
    sp = split(b.p, b.len, 50, 10, &ns);
    CHECK(ns > 10 && check_split(b.p, b.len, 50, 10, sp, ns, -7) == 0);
    CHECK(ns && sp[0].start == 0 && sp[0].end == 11);
    CHECK(ns > 1 && sp[1].start == 12);
    free(sp);

    /* a piece edge early in the window is not worth half a window */
    buf_reset(&b);
    buf_puts(&b, "x-");
    buf_append(&b, w, 10000);
    sp = split(b.p, b.len, 50, 10, &ns);
    CHECK(ns > 10 && check_split(b.p, b.len, 50, 10, sp, ns, -11) == 0);
    CHECK(ns && est_span(b.p, sp[0]) == 50);
    free(sp);

    /* upper-case and non-ASCII letters weigh more inside a cut word too */
    const char *heavy[] = {"A", "aB", "\xc3\xa9", "\xd0\x96" "a", "\xe1\xbb\x87", "Z9", "-", "7"};
    for (size_t h = 0; h < sizeof heavy / sizeof heavy[0]; h++) {
        buf_reset(&b);
        while (b.len < 6000) buf_puts(&b, heavy[h]);
        for (size_t max = 1; max <= 100; max = max * 2 + 1) {
            sp = split(b.p, b.len, max, 3, &ns);
            CHECK(ns > 1 && check_split(b.p, b.len, max, 3, sp, ns, (int)(-20 - h)) == 0);
            for (size_t i = 0; i + 1 < ns; i++) /* and windows are filled */
                CHECK(est_span(b.p, sp[i]) + 2 >= max);
            free(sp);
        }
    }

    /* a long hyphenated word is cut at its pieces' edges */
    buf_reset(&b);
    for (int i = 0; i < 500; i++) buf_puts(&b, i ? "-alpha" : "alpha");
    sp = split(b.p, b.len, 30, 5, &ns);
    CHECK(ns > 5 && check_split(b.p, b.len, 30, 5, sp, ns, -8) == 0);
    for (size_t i = 0; i + 1 < ns; i++) CHECK(b.p[sp[i].end] == '-' || b.p[sp[i].end - 1] == '-');
    free(sp);

    /* multi-byte characters are never split */
    const char *mb[] = {"\xc3\xa9", "\xe1\xbb\x87", "\xf0\x9f\x98\x80", "\xe6\x97\xa5\xe6\x9c\xac",
                        "\xd0\x96"};
    for (size_t m = 0; m < sizeof mb / sizeof mb[0]; m++) {
        buf_reset(&b);
        for (int i = 0; i < 3000; i++) buf_puts(&b, mb[m]);
        for (size_t max = 1; max <= 64; max = max * 3 + 1) {
            sp = split(b.p, b.len, max, max / 3, &ns);
            CHECK(ns > 1 && check_split(b.p, b.len, max, max / 3, sp, ns, (int)(-100 - m)) == 0);
            for (size_t i = 0; i < ns; i++)
                CHECK(utf8_check(b.p + sp[i].start, sp[i].end - sp[i].start) == sp[i].end - sp[i].start);
            free(sp);
        }
    }

    /* CJK prose: cuts after 。 when one is in reach */
    buf_reset(&b);
    for (int i = 0; i < 400; i++)
        buf_puts(&b, "\xe6\x88\x91\xe4\xbb\xac\xe4\xbb\x8a\xe5\xa4\xa9\xe5\x8e\xbb\xe5\x85\xac"
                     "\xe5\x9b\xad\xe6\x95\xa3\xe6\xad\xa5\xe3\x80\x82"); /* 我们今天去公园散步。 */
    sp = split(b.p, b.len, 40, 5, &ns);
    CHECK(ns > 10 && check_split(b.p, b.len, 40, 5, sp, ns, -9) == 0);
    for (size_t i = 0; i + 1 < ns; i++)
        CHECK(sp[i].end >= 3 && memcmp(b.p + sp[i].end - 3, "\xe3\x80\x82", 3) == 0);
    free(sp);

    /* overlap >= max: clamped, still terminates with every invariant */
    buf_reset(&b);
    for (int s = 0; s < 100; s++) {
        if (s) buf_putc(&b, ' ');
        sentence(&b);
    }
    size_t cases[][2] = {{1, 0}, {1, 5}, {2, 100}, {3, 3}, {10, 10}, {10, 1000}, {7, SIZE_MAX}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sp = split(b.p, b.len, cases[c][0], cases[c][1], &ns);
        CHECK(ns > 1 && check_split(b.p, b.len, cases[c][0], cases[c][1], sp, ns, (int)(-200 - c)) == 0);
        free(sp);
    }
    sp = split(b.p, b.len, SIZE_MAX, 5, &ns);
    CHECK(ns == 1);
    free(sp);

    /* invalid UTF-8 is cut like anything else */
    buf_reset(&b);
    for (int i = 0; i < 2000; i++) buf_puts(&b, i % 7 ? "\xff\xc3 ab\x80" : "\xe6\x97 ");
    sp = split(b.p, b.len, 16, 4, &ns);
    CHECK(ns > 1);
    for (size_t i = 0; i < ns; i++) CHECK(est_span(b.p, sp[i]) <= 16);
    free(sp);
    buf_free(&b);
    free(w);
}

/* ---- property test ---- */

static void random_word(buf *b, int allow_long) {
    static const char *const mb[] = {"caf\xc3\xa9", "na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                                     "\xf0\x9f\x98\x80", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
                                     "Vi\xe1\xbb\x87t", "\xe2\x80\x9cquoted\xe2\x80\x9d", "(paren)", "e.g.",
                                     "3.14", "x-ray", "\xe3\x80\x82"};
    uint32_t r = below(100);
    if (allow_long && r == 0) {
        size_t len = 100 + below(3000);
        for (size_t i = 0; i < len; i++) {
            uint32_t k = below(40);
            if (k == 0) buf_putc(b, '/');
            else if (k == 1) buf_puts(b, "\xc3\xa9");
            else if (k == 2) buf_puts(b, "\xe6\x97\xa5");
            else if (k < 5) buf_putc(b, (char)('0' + below(10)));
            else buf_putc(b, (char)((k < 12 ? 'A' : 'a') + below(26)));
        }
        return;
    }
    if (r < 8) { buf_puts(b, mb[below(sizeof mb / sizeof mb[0])]); return; }
    if (r < 14) {
        size_t d = 1 + below(7);
        for (size_t i = 0; i < d; i++) buf_putc(b, (char)('0' + below(10)));
        return;
    }
    size_t len = 1 + below(12);
    for (size_t i = 0; i < len; i++) {
        char c = (char)('a' + below(26));
        if (i == 0 && below(5) == 0) c = (char)(c - 32);
        buf_putc(b, c);
    }
    if (below(10) == 0) buf_putc(b, ",;:"[below(3)]);
}

static void random_text(buf *b, int allow_long) {
    if (below(4) == 0) buf_puts(b, below(2) ? "  \n" : "\t");
    int paras = 1 + (int)below(8);
    for (int p = 0; p < paras; p++) {
        if (p) buf_puts(b, below(3) ? "\n\n" : below(2) ? "\n \n" : "\r\n\r\n");
        int sents = 1 + (int)below(10);
        for (int s = 0; s < sents; s++) {
            if (s) buf_puts(b, below(8) ? " " : below(2) ? "\n" : "  ");
            int nw = 1 + (int)below(20);
            for (int w = 0; w < nw; w++) {
                if (w) buf_puts(b, below(30) ? " " : "\t");
                random_word(b, allow_long);
            }
            buf_puts(b, below(6) ? "." : below(2) ? "!" : "?");
        }
    }
    if (below(4) == 0) buf_puts(b, " \n");
}

static void test_property(void) {
    buf b = {0};
    int violations = 0, texts = 3000;
    size_t total_spans = 0, multi = 0;
    for (int c = 0; c < texts && violations < 5; c++) {
        buf_reset(&b);
        int allow_long = c % 3 == 0;
        random_text(&b, allow_long);
        size_t max = below(4) == 0 ? 1 + below(12) : 10 + below(300);
        size_t ov = below(3) == 0 ? below(max + 20) : below(max / 4 + 1);
        size_t ns;
        chunk_span *sp = split(b.p, b.len, max, ov, &ns);
        int v = check_split(b.p, b.len, max, ov, sp, ns, c);
        /* without over-long words, every window but the last is at least
        ** half full (a boundary always falls in the upper region) */
        if (!v && !allow_long && max >= 40) {
            for (size_t i = 0; i + 1 < ns; i++)
                if (est_span(b.p, sp[i]) < max / 2) {
                    fprintf(stderr, "[case %d] span %zu holds %zu of %zu tokens\n", c, i,
                            est_span(b.p, sp[i]), max);
                    v++;
                    break;
                }
        }
        if (ns == 0) { fprintf(stderr, "[case %d] no spans\n", c); v++; }
        violations += v;
        total_spans += ns;
        multi += ns > 1;
        free(sp);
    }
    CHECK(violations == 0);
    CHECK(multi > (size_t)texts / 3); /* the test exercises real splitting */
    buf_free(&b);
    (void)total_spans;
}

/* ---- scale: linear time on megabytes ---- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best-of-3 seconds to split b[0..n). */
static double split_time(const char *b, size_t n, size_t *ns_out, chunk_span **keep) {
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        size_t ns;
        double t0 = now();
        chunk_span *sp = split(b, n, 512, 64, &ns);
        double dt = now() - t0;
        if (dt < best) best = dt;
        if (keep && rep == 0) { *keep = sp; *ns_out = ns; }
        else free(sp);
    }
    return best;
}

/* Linear time, judged by growth from a quarter of the input to all of it
** (x4 linear, x16 quadratic) rather than by a wall-clock limit. */
static void test_scale(void) {
    buf b = {0};
    while (b.len < 4u << 20) {
        random_text(&b, 0);
        buf_puts(&b, "\n\n");
    }
    size_t ns = 0, qn = b.len / 4;
    while (qn < b.len && b.p[qn] != '\n') qn++; /* a quarter, cut between paragraphs */
    chunk_span *sp = NULL;
    double tq = 0, t = 0;
    for (int attempt = 0; attempt < 3; attempt++) { /* see test_parse.c's hostile() */
        free(sp);
        sp = NULL;
        tq = split_time(b.p, qn, &ns, NULL);
        t = split_time(b.p, b.len, &ns, &sp);
        if (t / (tq > 1e-4 ? tq : 1e-4) < 10 || t < 0.05) break;
    }
    CHECK(check_split(b.p, b.len, 512, 64, sp, ns, -300) == 0);
    printf("chunk_split: %.1f MB in %.3f s (%.0f MB/s), %zu spans; a quarter in %.3f s\n",
           (double)b.len / 1e6, t, (double)b.len / 1e6 / t, ns, tq);
    CHECK(t / (tq > 1e-4 ? tq : 1e-4) < 10 || t < 0.05);
    free(sp);

    /* one 2 MB word: still one pass */
    buf_reset(&b);
    while (b.len < 2u << 20) buf_putc(&b, (char)('a' + below(26)));
    sp = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        free(sp);
        sp = NULL;
        tq = split_time(b.p, b.len / 4, &ns, NULL);
        t = split_time(b.p, b.len, &ns, &sp);
        if (t / (tq > 1e-4 ? tq : 1e-4) < 10 || t < 0.05) break;
    }
    CHECK(ns > 100 && check_split(b.p, b.len, 512, 64, sp, ns, -301) == 0);
    printf("one 2 MB word: %.3f s; a quarter in %.3f s\n", t, tq);
    CHECK(t / (tq > 1e-4 ? tq : 1e-4) < 10 || t < 0.05);
    free(sp);
    buf_free(&b);
}

/* chunk_cuts: the boundaries trimming may cut at, with their strength */
static void test_cuts(void) {
    const char *t = "  Hello world. Next one\nthen (Dr. x) said \"Yes.\" Then\n\nPara two"
                    "\xE3\x80\x82\xE6\xAC\xA1\xE3\x81\xAE ";
    chunk_cut *c = NULL;
    size_t n = 0;
    CHECK(chunk_cuts(t, strlen(t), &c, &n) == 0);
    /* cut ends and strengths, in order */
    static const struct { const char *before; int strength; } want[] = {
        {"Hello", CHUNK_CUT_WORD},       {"world.", CHUNK_CUT_SENT},
        {"Next", CHUNK_CUT_WORD},        {"one", CHUNK_CUT_LINE},
        {"then", CHUNK_CUT_WORD},        {"(Dr.", CHUNK_CUT_WORD},
        {"x)", CHUNK_CUT_WORD},          {"said", CHUNK_CUT_WORD},
        {"\"Yes.\"", CHUNK_CUT_SENT},   {"Then", CHUNK_CUT_PARA},
        {"Para", CHUNK_CUT_WORD},        {"two", CHUNK_CUT_WORD}, /* CJK edges */
        {"\xE3\x80\x82", CHUNK_CUT_SENT}, {"\xE6\xAC\xA1", CHUNK_CUT_WORD},
        {"\xE3\x81\xAE", CHUNK_CUT_WORD}}; /* before the trailing space */
    size_t nw = sizeof want / sizeof want[0];
    CHECK(n == nw);
    size_t pos = 0;
    for (size_t i = 0; i < n && i < nw; i++) {
        const char *at = strstr(t + pos, want[i].before);
        CHECK(at != NULL);
        if (!at) break;
        size_t end = (size_t)(at - t) + strlen(want[i].before);
        if (c[i].end != end || c[i].strength != want[i].strength)
            fprintf(stderr, "cut %zu: end %zu strength %d, want %zu %d\n", i, c[i].end,
                    c[i].strength, end, want[i].strength);
        CHECK(c[i].end == end && c[i].strength == want[i].strength);
        pos = end;
    }
    free(c);
    CHECK(chunk_cuts("word", 4, &c, &n) == 0 && n == 0 && c == NULL);
    CHECK(chunk_cuts("", 0, &c, &n) == 0 && n == 0);
}

int main(void) {
    test_estimate();
    test_small();
    test_paragraph_cuts();
    test_long_words();
    test_property();
    test_scale();
    test_cuts();
    return CHECK_DONE();
}
