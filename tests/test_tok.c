/*
** test_tok.c -- unit tests for src/tok.c, the engine's tokenizer.
**
** Expectations are written by hand: stems are worked out from the Porter
** (1980) and Porter2 (Snowball "english") algorithm definitions, CJK
** offsets from the UTF-8 byte lengths. The stem cache is checked against
** libstemmer called directly. Ends with a throughput print (no assertion).
*/
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "check.h"
#include "plumb_impl.h"

#include <libstemmer.h>
#include <stdint.h>
#include <time.h>

/* Collects "term" or "term@start-end" joined by single spaces. */
typedef struct coll {
    char out[8192];
    size_t len;
    int offsets;   /* 1: append @start-end */
    int calls;
    int stop_at;   /* > 0: return 7 from the stop_at'th call */
    int n;         /* length of the text, for range checks */
    int bad;       /* a term or range broke the contract */
} coll;

static int collect(void *arg, const char *term, int n, int start, int end) {
    coll *c = arg;
    c->calls++;
    if (n <= 0 || n > TOK_MAX_BYTES || start < 0 || end > c->n || start >= end) c->bad++;
    if (c->len + (size_t)n + 32 < sizeof c->out) {
        if (c->len) c->out[c->len++] = ' ';
        memcpy(c->out + c->len, term, (size_t)n);
        c->len += (size_t)n;
        if (c->offsets)
            c->len += (size_t)snprintf(c->out + c->len, sizeof c->out - c->len, "@%d-%d", start,
                                       end);
        c->out[c->len] = 0;
    }
    return c->stop_at && c->calls == c->stop_at ? 7 : 0;
}

/* Tokenize s[0..n) into a freshly malloc'd copy of exactly n bytes, so
** ASan catches any read past the end. */
static const char *run_n(tok_ctx *t, const char *s, int n, int offsets) {
    static coll c;
    memset(&c, 0, sizeof c);
    c.offsets = offsets;
    c.n = n;
    char *copy = malloc(n ? (size_t)n : 1);
    if (n) memcpy(copy, s, (size_t)n);
    int rc = tok_run(t, copy, n, collect, &c);
    free(copy);
    CHECK(rc == 0);
    CHECK(c.bad == 0);
    return c.out;
}

static const char *run(tok_ctx *t, const char *s) { return run_n(t, s, (int)strlen(s), 0); }
static const char *runo(tok_ctx *t, const char *s) { return run_n(t, s, (int)strlen(s), 1); }

static tok_ctx *mk(const char *lang, int stop) {
    tok_ctx *t = tok_new(lang, stop);
    if (!t) {
        fprintf(stderr, "tok_new(%s): %s\n", lang, plumb_errmsg());
        exit(1);
    }
    return t;
}

static void test_ascii(void) {
    tok_ctx *t = mk("none", 0);
    CHECK_STR(runo(t, "Hello, world!  foo"), "hello@0-5 world@7-12 foo@15-18");
    CHECK_STR(run(t, "HeLLo WORLD MiXeD123"), "hello world mixed123");
    CHECK_STR(run(t, "tab\tnew\nline\r\nend"), "tab new line end");
    CHECK_STR(run(t, "(parens) [brackets] {braces} <angle> \"quotes\""),
              "parens brackets braces angle quotes");
    CHECK_STR(run(t, "x+y=z; a/b|c#d@e"), "x y z a b c d e");
    tok_free(t);
}

static void test_folding(void) {
    tok_ctx *t = mk("english", 1);
    CHECK_STR(run(t, "Café Naïve"), "cafe naiv");
    tok_free(t);

    t = mk("none", 0);
    /* precomposed and decomposed forms fold alike; offsets cover the mark */
    CHECK_STR(runo(t, "Caf\xc3\xa9 Cafe\xcc\x81"), "cafe@0-5 cafe@6-12");
    CHECK_STR(run(t, "Ångström Ærø Œuvre ÉCOLE"), "angstrom ærø œuvre ecole");
    CHECK_STR(run(t, "Straße STRASSE stra\xc3\x9f" "e \xe1\xba\x9e"), "strasse strasse strasse ss");
    CHECK_STR(run(t, "ΣΊΣΥΦΟΣ Москва Ёлка"), "σισυφοσ москва елка");
    CHECK_STR(run(t, "\xef\xac\x81sh \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3"), "fish abc"); /* ﬁ, fullwidth */
    CHECK_STR(run(t, "İstanbul"), "istanbul");
    /* Indic vowel signs are marks but not diacritics: they stay */
    CHECK_STR(run(t, "हिन्दी"), "हिन्दी");
    /* soft hyphen joins and vanishes; a mark cannot start a word */
    CHECK_STR(runo(t, "co\xc2\xad" "operate \xcc\x81x"), "cooperate@0-11 x@14-15");
    /* non-breaking space and em space separate */
    CHECK_STR(run(t, "a\xc2\xa0" "b\xe2\x80\x83" "c"), "a b c");
    tok_free(t);
}

static void test_possessive(void) {
    tok_ctx *t = mk("none", 0);
    CHECK_STR(runo(t, "John's dog"), "john@0-6 dog@7-10");
    CHECK_STR(runo(t, "Mary\xe2\x80\x99s"), "mary@0-8");
    CHECK_STR(run(t, "boss's bosses' JAMES'S its it's"), "boss bosses james its it");
    /* a lone 's is just the letter; "'s'" keeps nothing but s */
    CHECK_STR(run(t, "'s 's'"), "s s");
    /* U+2019 inside a word is stored as an ASCII apostrophe */
    CHECK_STR(run(t, "don\xe2\x80\x99t don't"), "don't don't");
    tok_free(t);
}

static void test_stopwords(void) {
    static const char *all =
        "a an and are as at be but by for if in into is it no not of on or such that the "
        "their then there these they this to was will with";
    tok_ctx *t = mk("none", 1);
    CHECK_STR(run(t, all), "");
    CHECK_STR(run(t, "The cat AND the hat"), "cat hat");
    CHECK_STR(run(t, "would could those its thé"), "would could those its");
    tok_free(t);

    t = mk("none", 0);
    CHECK_STR(run(t, all), all);
    tok_free(t);

    /* checked on the folded word before stemming: "being" stems to "be"
    ** (Porter2 step 1b) and is kept; "its" stems to "it" and is kept */
    t = mk("english", 1);
    CHECK_STR(run(t, "The being is its"), "be it");
    tok_free(t);
    t = mk("english", 0);
    CHECK_STR(run(t, "The being"), "the be");
    tok_free(t);
}

static void test_stemming(void) {
    static const char *words =
        "running generalizations ties skies happy sized relational caresses hopping "
        "agreed motoring conflated ponies cats feed plastered troubled filing dying news";
    tok_ctx *t = mk("english", 0);
    /* Porter2: "gener" prefix rule keeps "general"; ies->ie after one
    ** letter; skies/dying/news are exceptional forms */
    CHECK_STR(run(t, words), "run general tie sky happi size relat caress hop agre motor "
                             "conflat poni cat feed plaster troubl file die news");
    tok_free(t);
    t = mk("porter", 0);
    CHECK_STR(run(t, words), "run gener ti ski happi size relat caress hop agre motor "
                             "conflat poni cat feed plaster troubl file dy new");
    tok_free(t);
    t = mk("none", 0);
    CHECK_STR(run(t, "Running Generalizations"), "running generalizations");
    tok_free(t);
    /* two contexts with different stemmers never share a cache */
    tok_ctx *a = mk("english", 0), *b = mk("porter", 0);
    for (int i = 0; i < 3; i++) {
        CHECK_STR(run(a, "generalizations"), "general");
        CHECK_STR(run(b, "generalizations"), "gener");
    }
    tok_free(a);
    tok_free(b);
}

static void test_boundaries(void) {
    tok_ctx *t = mk("none", 0);
    CHECK_STR(runo(t, "e.g. 3.14 1,000"), "e.g@0-3 3.14@5-9 1,000@10-15");
    CHECK_STR(run(t, "don't a-b foo_bar u.s.a. end. Next"), "don't a b foo_bar u.s.a end next");
    CHECK_STR(run(t, "x..y x,y 1,a a,1 3,14 1,,2 1.5.2 v1.2 a.1"),
              "x y x y 1 a a 1 3,14 1 2 1.5.2 v1.2 a.1");
    CHECK_STR(run(t, "'quoted' \"x\" x' 'x x:y x;y"), "quoted x x x x y x y");
    CHECK_STR(run(t, "___ _x_ x_ 12_34 -5 +1"), "_x_ x_ 12_34 5 1");
    CHECK_STR(run(t, "é.x x.é"), "e.x x.e");
    CHECK_STR(run(t, "a\xe2\x80\x99\xe2\x80\x99" "b"), "a b"); /* two apostrophes separate */
    tok_free(t);
}

static void test_cjk(void) {
    tok_ctx *t = mk("english", 1);
    /* 3 bytes per character */
    CHECK_STR(runo(t, "中文分词"), "中文@0-6 文分@3-9 分词@6-12");
    CHECK_STR(runo(t, "中"), "中@0-3");
    CHECK_STR(runo(t, "abc中文def"), "abc@0-3 中文@3-9 def@9-12");
    CHECK_STR(runo(t, "中，文"), "中@0-3 文@6-9"); /* fullwidth comma separates */
    CHECK_STR(run(t, "ひらがな"), "ひら らが がな");
    CHECK_STR(run(t, "カタカナ"), "カタ タカ カナ");
    CHECK_STR(run(t, "東京タワー。"), "東京 京タ タワ ワー"); /* ー is a letter, 。 is not */
    CHECK_STR(runo(t, "한국어 사전"), "한국@0-6 국어@3-9 사전@10-16");
    CHECK_STR(run(t, "日本・東京"), "日本 東京"); /* katakana middle dot separates */
    /* a 4-byte ideograph (U+20000) bigrams with its neighbour */
    CHECK_STR(runo(t, "\xf0\xa0\x80\x80中"), "\xf0\xa0\x80\x80中@0-7");
    /* no stemming or stop words inside CJK; Latin words around keep theirs */
    CHECK_STR(run(t, "The running中文"), "run 中文");
    tok_free(t);
}

static void test_invalid(void) {
    tok_ctx *t = mk("none", 0);
    CHECK_STR(runo(t, "ab\xff" "cd"), "ab@0-2 cd@3-5");
    CHECK_STR(run(t, "ab\xc0\xaf" "cd \xed\xa0\x80x \xf4\x90\x80\x80y \xe0\x80\x80z"),
              "ab cd x y z");
    CHECK_STR(run(t, "\x80\x80\x80q\xbf"), "q");
    CHECK_STR(run_n(t, "ab\0cd\0", 6, 1), "ab@0-2 cd@3-5");
    /* truncated sequences at the very end, and as a word's last bytes */
    CHECK_STR(run(t, "ab\xe4\xb8"), "ab");
    CHECK_STR(run(t, "ab\xc3"), "ab");
    CHECK_STR(run(t, "ab\xf0\x9f\x98"), "ab");
    CHECK_STR(run(t, "x.\xc3"), "x");
    CHECK_STR(run(t, "1,\xe4"), "1");
    CHECK_STR(run(t, "中\xe6\x96"), "中");
    tok_free(t);
}

static void test_long_words(void) {
    char s[600];
    tok_ctx *t = mk("none", 0);
    memset(s, 'a', TOK_MAX_BYTES);
    s[TOK_MAX_BYTES] = 0;
    CHECK(strcmp(run(t, s), s) == 0);
    memset(s, 'a', TOK_MAX_BYTES + 1);
    s[TOK_MAX_BYTES + 1] = 0;
    CHECK_STR(run(t, s), "");
    /* the limit is on folded bytes: 100 x "é" (200 bytes) folds to 100 */
    size_t k = 0;
    for (int i = 0; i < 100; i++) { s[k++] = '\xc3'; s[k++] = '\xa9'; }
    s[k] = 0;
    CHECK(strlen(run(t, s)) == 100);
    /* 64 x "ß" folds to exactly 128 bytes; 65 to 130 */
    k = 0;
    for (int i = 0; i < 64; i++) { s[k++] = '\xc3'; s[k++] = '\x9f'; }
    s[k] = 0;
    CHECK(strlen(run(t, s)) == 128);
    s[k++] = '\xc3'; s[k++] = '\x9f'; s[k] = 0;
    CHECK_STR(run(t, s), "");
    /* neighbours of a skipped word survive with their offsets */
    k = (size_t)snprintf(s, sizeof s, "x ");
    memset(s + k, 'b', 300);
    k += 300;
    snprintf(s + k, sizeof s - k, " y");
    CHECK_STR(runo(t, s), "x@0-1 y@303-304");
    tok_free(t);
}

static void test_empty_and_stop(void) {
    tok_ctx *t = mk("english", 1);
    coll c;
    memset(&c, 0, sizeof c);
    CHECK(tok_run(t, "", 0, collect, &c) == 0 && c.calls == 0);
    CHECK(tok_run(t, NULL, 0, collect, &c) == 0 && c.calls == 0);
    CHECK(tok_run(t, "abc", -1, collect, &c) == 0 && c.calls == 0);
    CHECK_STR(run(t, "   \t\n ... --- !!! "), "");
    CHECK_STR(run(t, "the of and"), "");

    /* a non-zero emit return stops at once and is returned */
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    c.n = 23;
    CHECK(tok_run(t, "one two three four five", 23, collect, &c) == 7);
    CHECK(c.calls == 2);
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    c.n = 12;
    CHECK(tok_run(t, "中文分词", 12, collect, &c) == 7);
    CHECK(c.calls == 2);
    memset(&c, 0, sizeof c);
    c.stop_at = 1;
    c.n = 3;
    CHECK(tok_run(t, "中", 3, collect, &c) == 7);
    CHECK(c.calls == 1);
    tok_free(t);
}

static uint64_t rng_state = 0x853C49E6748FEA9BULL;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Random bytes and random splices of tricky fragments: the contract
** checks in collect() (0 <= start < end <= n, 1..TOK_MAX_BYTES term
** bytes) plus ASan's view of the exact-size buffer. */
static void test_fuzz(void) {
    static const char *frag[] = {
        "a", "Z", "1", ".", ",", "'", "_", " ", "\xe2\x80\x99", "\xc3\xa9", "\xcc\x81",
        "\xc3\x9f", "中", "か", "한", "\xff", "\xc3", "\xe4\xb8", "\xf0\x9f", "\0", "\xc2\xad",
        "\xef\xb7\xba", "ー", "・", "\xf0\xa0\x80\x80", "'s",
    };
    const int nfrag = (int)(sizeof frag / sizeof frag[0]);
    tok_ctx *t = mk("english", 1);
    char s[512];
    for (int iter = 0; iter < 20000; iter++) {
        int n = 0;
        int target = (int)(rnd() % 200);
        while (n < target) {
            if (rnd() % 3 == 0) {
                s[n++] = (char)(rnd() & 0xFF);
            } else {
                const char *f = frag[rnd() % (unsigned)nfrag];
                size_t l = f[0] ? strlen(f) : 1;
                memcpy(s + n, f, l);
                n += (int)l;
            }
        }
        run_n(t, s, n, 0);
    }
    tok_free(t);
}

/* Builds a distinct lowercase word for i: "zq" + base-26 digits + suffix,
** never a stop word. */
static int gen_word(char *w, unsigned i) {
    static const char *suffix[] = {"", "ing", "ed", "s", "ness", "ational", "izations", "ly"};
    int k = 0;
    w[k++] = 'z';
    w[k++] = 'q';
    unsigned x = i / 8;
    do { w[k++] = (char)('a' + x % 26); x /= 26; } while (x);
    const char *sfx = suffix[i % 8];
    size_t l = strlen(sfx);
    memcpy(w + k, sfx, l);
    k += (int)l;
    w[k] = 0;
    return k;
}

static void test_cache(void) {
    tok_ctx *t = mk("english", 1);
    struct sb_stemmer *ref = sb_stemmer_new("english", "UTF_8");
    CHECK(ref != NULL);

    /* one word 100k times: every result identical */
    {
        static char text[100000 * 16];
        size_t k = 0;
        for (int i = 0; i < 100000; i++) { memcpy(text + k, "Generalizations ", 16); k += 16; }
        coll *c = calloc(1, sizeof *c);
        c->n = (int)k;
        int rc = tok_run(t, text, (int)k, collect, c);
        CHECK(rc == 0 && c->calls == 100000 && c->bad == 0);
        CHECK(strncmp(c->out, "general general general", 23) == 0);
        free(c);
    }

    /* 200k distinct words: several cache generations; each stem must be
    ** libstemmer's. One word per tok_run so the check sees each term. */
    char w[64];
    int mismatches = 0;
    for (unsigned i = 0; i < 200000; i++) {
        int n = gen_word(w, i);
        const char *got = run_n(t, w, n, 0);
        const sb_symbol *want = sb_stemmer_stem(ref, (const sb_symbol *)w, n);
        int wl = sb_stemmer_length(ref);
        if ((int)strlen(got) != wl || memcmp(got, want, (size_t)wl) != 0) {
            if (mismatches++ < 5) fprintf(stderr, "cache: %s -> %s, want %.*s\n", w, got, wl, want);
        }
        /* and the hot words keep their stems across generations */
        if (i % 50000 == 49999) {
            CHECK_STR(run(t, "Running generalizations the skies"), "run general sky");
        }
    }
    CHECK(mismatches == 0);
    /* second pass in another order: now partly cached, still exact */
    for (unsigned i = 0; i < 200000; i += 7) {
        int n = gen_word(w, 199999 - i);
        const char *got = run_n(t, w, n, 0);
        const sb_symbol *want = sb_stemmer_stem(ref, (const sb_symbol *)w, n);
        int wl = sb_stemmer_length(ref);
        if ((int)strlen(got) != wl || memcmp(got, want, (size_t)wl) != 0) mismatches++;
    }
    CHECK(mismatches == 0);
    sb_stemmer_delete(ref);
    tok_free(t);
}

static void test_new(void) {
    CHECK(tok_language_ok("english"));
    CHECK(tok_language_ok("porter"));
    CHECK(tok_language_ok("french"));
    CHECK(tok_language_ok("none"));
    CHECK(!tok_language_ok("klingon"));
    CHECK(!tok_language_ok(""));
    CHECK(!tok_language_ok(NULL));
    err_clear();
    CHECK(tok_new("klingon", 1) == NULL);
    CHECK(strstr(plumb_errmsg(), "klingon") != NULL);
    CHECK(strstr(plumb_errmsg(), "english") != NULL);
    CHECK(tok_new(NULL, 1) == NULL);
    tok_free(NULL);
    tok_ctx *t = mk("french", 0);
    CHECK_STR(run(t, "continuellement"), "continuel");
    tok_free(t);
}

/* ---- throughput (printed, not asserted) ---- */

static int count_emit(void *arg, const char *term, int n, int start, int end) {
    (void)term; (void)n; (void)start; (void)end;
    (*(long *)arg)++;
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_text(const char *name, const char *text, size_t len, long words, int reps) {
    tok_ctx *t = mk("english", 1);
    long emitted = 0;
    tok_run(t, text, (int)len, count_emit, &emitted); /* warm the cache */
    emitted = 0;
    double t0 = now();
    for (int r = 0; r < reps; r++) tok_run(t, text, (int)len, count_emit, &emitted);
    double dt = now() - t0;
    printf("{\"bench\":\"tok\",\"text\":\"%s\",\"words\":%ld,\"emitted\":%ld,"
           "\"words_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
           name, words * reps, emitted, (double)words * reps / dt,
           (double)len * reps / dt / 1e6);
    tok_free(t);
}

static void bench(void) {
    /* cached: Zipf-like draws from 20k words, capitalised now and then,
    ** with punctuation, as in prose */
    enum { VOCAB = 20000, WORDS = 1000000 };
    char *text = malloc((size_t)WORDS * 24);
    size_t k = 0;
    char w[64];
    for (long i = 0; i < WORDS; i++) {
        unsigned r = rnd() % VOCAB;
        unsigned id = (unsigned)((uint64_t)r * r / VOCAB); /* skewed to small ids */
        int n = gen_word(w, id) - 2;
        memcpy(text + k, w + 2, (size_t)n); /* drop "zq": shorter, more stop-like */
        if (i % 11 == 0) text[k] = (char)(text[k] - 32);
        k += (size_t)n;
        text[k++] = i % 17 == 16 ? '.' : i % 13 == 12 ? ',' : ' ';
        if (text[k - 1] != ' ') text[k++] = ' ';
    }
    bench_text("zipf-20k", text, k, WORDS, 5);

    /* uncached: every word distinct, so every word runs libstemmer */
    k = 0;
    for (long i = 0; i < WORDS; i++) {
        int n = gen_word(w, (unsigned)i + 1000000u);
        memcpy(text + k, w, (size_t)n);
        k += (size_t)n;
        text[k++] = ' ';
    }
    {
        tok_ctx *t = mk("english", 1);
        long emitted = 0;
        double t0 = now();
        tok_run(t, text, (int)k, count_emit, &emitted);
        double dt = now() - t0;
        printf("{\"bench\":\"tok\",\"text\":\"distinct\",\"words\":%d,\"emitted\":%ld,"
               "\"words_per_s\":%.0f}\n", WORDS, emitted, WORDS / dt);
        tok_free(t);
    }
    free(text);

    /* SciFact, when the shared data is present: the JSONL lines as is */
    const char *dir = getenv("PLUMB_SHARED_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/beir/scifact/corpus.jsonl", dir ? dir : "../shared/data");
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("bench: %s not found, SciFact throughput skipped\n", path);
        return;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)sz);
    if (fread(data, 1, (size_t)sz, f) == (size_t)sz) {
        long words = 0;
        for (long i = 0; i < sz; i++)
            if ((data[i] == ' ' || data[i] == '\n') && i && data[i - 1] != ' ') words++;
        bench_text("scifact-jsonl", data, (size_t)sz, words, 3);
        tok_ctx *t = mk("english", 1);
        long emitted = 0;
        double t0 = now();
        tok_run(t, data, (int)sz, count_emit, &emitted);
        double dt = now() - t0;
        printf("{\"bench\":\"tok\",\"text\":\"scifact-cold\",\"docs_per_s\":%.0f}\n", 5183 / dt);
        tok_free(t);
    }
    free(data);
    fclose(f);
}

int main(void) {
    test_ascii();
    test_folding();
    test_possessive();
    test_stopwords();
    test_stemming();
    test_boundaries();
    test_cjk();
    test_invalid();
    test_long_words();
    test_empty_and_stop();
    test_fuzz();
    test_cache();
    test_new();
    if (!getenv("PLUMB_TOK_NO_BENCH")) bench();
    return CHECK_DONE();
}
