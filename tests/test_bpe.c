/*
** test_bpe.c -- unit tests for src/bpe.c, exact BPE token counting.
**
** Reference-model test: tests/data/bpe/<name>.jsonl holds (text, ids)
** vectors written by tests/bpe_vectors.mjs with independent
** implementations (js-tiktoken for cl100k_base and o200k_base,
** transformers.js for Qwen3). Every vector must encode to exactly its ids
** and count() must equal their number; SciFact passages, named by id in
** the fixture, are read from the shared corpus and checked by count and
** id hash. The tokenizer files come from
** $PLUMB_SHARED_DATA/tokenizers; without them those cases are skipped
** with a message. Also: the scan and heap merge paths agree, bytes round
** trip, specials are honoured only when allowed, misuse and bad files give
** the documented status codes, and threads share one tokenizer.
*/
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "check.h"
#include "plumb_impl.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    char *p = malloc(cap);
    for (;;) {
        if (!p) break;
        if (cap - n < 2) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
        size_t r = fread(p + n, 1, cap - n - 1, f);
        n += r;
        if (!r) break;
    }
    fclose(f);
    if (p) p[n] = 0;
    if (len) *len = n;
    return p;
}

static void print_text(const char *s, size_t n) {
    fputc('"', stderr);
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\r') fputs("\\r", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c < 0x20) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputs(n > 200 ? "\"..." : "\"", stderr);
}

static void print_ids(const char *what, const uint32_t *ids, size_t n) {
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %u", ids[i]);
    fputs(n > 40 ? " ...\n" : "\n", stderr);
}

/* SciFact passages (title, blank line, text), read once from the shared
** corpus; the fixture names them by id (the data may not be copied). */
typedef struct passage {
    char *id, *text;
} passage;
static passage *corpus;
static size_t ncorpus;
static int corpus_tried;

static const char *scifact_text(const char *id) {
    if (!corpus_tried) {
        corpus_tried = 1;
        const char *shared = getenv("PLUMB_SHARED_DATA");
        char path[1024];
        snprintf(path, sizeof path, "%s/beir/scifact/corpus.jsonl",
                 shared ? shared : "../shared/data");
        size_t len;
        char *data = slurp(path, &len);
        if (!data) {
            printf("skip SciFact passages: %s not found\n", path);
            return NULL;
        }
        size_t cap = 0;
        for (char *line = data; *line;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            cJSON *o = cJSON_Parse(line);
            const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, "_id");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "title");
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "text");
            if (cJSON_IsString(i) && cJSON_IsString(t) && cJSON_IsString(x)) {
                if (ncorpus == cap) {
                    cap = cap ? 2 * cap : 8192;
                    corpus = realloc(corpus, cap * sizeof *corpus);
                }
                size_t tl = strlen(t->valuestring), xl = strlen(x->valuestring);
                char *txt = malloc(tl + xl + 3);
                memcpy(txt, t->valuestring, tl);
                memcpy(txt + tl, "\n\n", 2);
                memcpy(txt + tl + 2, x->valuestring, xl + 1);
                corpus[ncorpus].id = strdup(i->valuestring);
                corpus[ncorpus++].text = txt;
            }
            cJSON_Delete(o);
            if (!nl) break;
            line = nl + 1;
        }
        free(data);
    }
    for (size_t i = 0; i < ncorpus; i++)
        if (strcmp(corpus[i].id, id) == 0) return corpus[i].text;
    return NULL;
}

static void free_corpus(void) {
    for (size_t i = 0; i < ncorpus; i++) {
        free(corpus[i].id);
        free(corpus[i].text);
    }
    free(corpus);
}

/* A passage line: {"scifact_id", "special", "ntokens", "ids_hash"}. */
static int check_passage(const plumb_tokenizer *tok, const cJSON *o, size_t *bytes) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "scifact_id");
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(o, "ntokens");
    const cJSON *hh = cJSON_GetObjectItemCaseSensitive(o, "ids_hash");
    const char *text = cJSON_IsString(id) ? scifact_text(id->valuestring) : NULL;
    if (!text || !cJSON_IsNumber(nt) || !cJSON_IsString(hh)) return 0;
    uint32_t *ids = NULL;
    size_t n = 0, cnt = 0, tl = strlen(text);
    CHECK_OK(plumb_tokenizer_encode(tok, text, tl, 1, &ids, &n));
    CHECK_OK(plumb_tokenizer_count(tok, text, tl, 1, &cnt));
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ids[i]) * 1099511628211ull;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    if (n != (size_t)nt->valuedouble || cnt != n || strcmp(hex, hh->valuestring) != 0) {
        fprintf(stderr, "%s: SciFact %s: %zu tokens (count %zu), hash %s; want %d, %s\n",
                plumb_tokenizer_name(tok), id->valuestring, n, cnt, hex, nt->valueint,
                hh->valuestring);
        check_failures++;
    }
    *bytes += tl;
    plumb_tokenizer_ids_free(ids);
    return 1;
}

/* Compare every vector of the fixture; returns the number checked. */
static size_t check_fixture(const plumb_tokenizer *tok, const char *fixture, size_t *bytes) {
    size_t len, nvec = 0, bad = 0, npassages = 0;
    char *data = slurp(fixture, &len);
    CHECK(data != NULL);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", fixture);
        return 0;
    }
    uint32_t *want = NULL;
    size_t wcap = 0;
    for (char *line = data; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "ids");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "special");
        if (cJSON_GetObjectItemCaseSensitive(o, "scifact_id")) {
            npassages += (size_t)check_passage(tok, o, bytes);
        } else if (cJSON_IsString(text) && cJSON_IsArray(ids)) {
            size_t nw = (size_t)cJSON_GetArraySize(ids), k = 0;
            if (nw > wcap) {
                wcap = nw * 2;
                want = realloc(want, wcap * sizeof *want);
            }
            const cJSON *it;
            cJSON_ArrayForEach(it, ids) want[k++] = (uint32_t)it->valuedouble;
            const char *s = text->valuestring;
            size_t sl = strlen(s), n = 99, cnt = 99;
            uint32_t *got = NULL;
            int allow = cJSON_IsTrue(sp);
            CHECK_OK(plumb_tokenizer_encode(tok, s, sl, allow, &got, &n));
            CHECK_OK(plumb_tokenizer_count(tok, s, sl, allow, &cnt));
            int same = n == nw && (nw == 0 || memcmp(got, want, nw * sizeof *want) == 0);
            if (!same || cnt != n) {
                if (bad++ < 8) {
                    fprintf(stderr, "%s: vector %zu (allow_special %d) differs: ", fixture,
                            nvec + 1, allow);
                    print_text(s, sl);
                    fprintf(stderr, "\n  count %zu\n", cnt);
                    print_ids("want", want, nw);
                    print_ids("got ", got, n);
                }
                check_failures++;
            }
            *bytes += sl;
            plumb_tokenizer_ids_free(got);
            nvec++;
        }
        cJSON_Delete(o);
        if (!nl) break;
        line = nl + 1;
    }
    if (bad) fprintf(stderr, "%s: %zu of %zu vectors differ\n", fixture, bad, nvec);
    if (npassages) printf("%s: %zu SciFact passages match\n", fixture, npassages);
    free(want);
    free(data);
    return nvec;
}

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rng(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* Pieces up to the scan limit, merged by the scan and by the heap. */
static void check_paths_agree(const plumb_tokenizer *tok) {
    static const char *alpha[] = {"a", "b", "e", "t", "h", " ", "th", "the", "in", "\xc3\xa9",
                                  "\xe4\xb8\xad", "1", "0", "!", ".", "\n", "A", "S"};
    size_t nalpha = sizeof alpha / sizeof alpha[0];
    uint32_t *a = NULL, *b = NULL;
    size_t na, nb, ca = 0, cb = 0;
    int diffs = 0;
    for (int round = 0; round < 2000; round++) {
        unsigned char piece[64];
        size_t len = 0, want = 2 + rng() % 62;
        while (len < want) {
            const char *f = alpha[rng() % nalpha];
            size_t fl = strlen(f);
            if (len + fl > sizeof piece) break;
            memcpy(piece + len, f, fl);
            len += fl;
        }
        na = nb = 0;
        CHECK_OK(bpe_encode_piece(tok, piece, len, 1, &a, &na, &ca));
        CHECK_OK(bpe_encode_piece(tok, piece, len, 2, &b, &nb, &cb));
        if (na != nb || memcmp(a, b, na * sizeof *a) != 0) diffs++;
        /* the bytes of the ids are the piece */
        size_t off = 0;
        int ok = 1;
        for (size_t i = 0; i < na; i++) {
            size_t tl;
            const char *tb = plumb_tokenizer_token_bytes(tok, a[i], &tl);
            if (!tb || off + tl > len || memcmp(tb, piece + off, tl) != 0) ok = 0;
            off += tl;
        }
        if (!ok || off != len) diffs++;
    }
    if (diffs) fprintf(stderr, "%s: scan and heap merges differ on %d pieces\n",
                       plumb_tokenizer_name(tok), diffs);
    CHECK(diffs == 0);
    free(a);
    free(b);
}

static void check_roundtrip(const plumb_tokenizer *tok, const char *s, size_t n) {
    uint32_t *ids = NULL;
    size_t k = 0, cnt = 0;
    CHECK_OK(plumb_tokenizer_encode(tok, s, n, 0, &ids, &k));
    CHECK_OK(plumb_tokenizer_count(tok, s, n, 0, &cnt));
    CHECK(cnt == k);
    size_t off = 0;
    int ok = 1;
    for (size_t i = 0; i < k; i++) {
        size_t tl;
        const char *tb = plumb_tokenizer_token_bytes(tok, ids[i], &tl);
        if (!tb || off + tl > n || memcmp(tb, s + off, tl) != 0) ok = 0;
        off += tl;
    }
    CHECK(ok && off == n);
    plumb_tokenizer_ids_free(ids);
}

typedef struct thr_arg {
    const plumb_tokenizer *tok;
    const char *text;
    size_t len, want;
    int bad;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    for (int i = 0; i < 20; i++) {
        size_t n = 0;
        if (plumb_tokenizer_count(a->tok, a->text, a->len, 1, &n) != PLUMB_OK || n != a->want)
            a->bad++;
    }
    return NULL;
}

static void check_threads(const plumb_tokenizer *tok) {
    char text[8192];
    size_t len = 0;
    while (len + 64 < sizeof text)
        len += (size_t)snprintf(text + len, sizeof text - len, "Token %u: caf\xc3\xa9 %u!\n", rng(),
                                rng() % 1000);
    size_t want = 0;
    CHECK_OK(plumb_tokenizer_count(tok, text, len, 1, &want));
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){tok, text, len, want, 0};
        CHECK(pthread_create(&th[i], NULL, thr_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].bad == 0);
    }
}

static size_t count_of(const plumb_tokenizer *tok, const char *s, int allow) {
    size_t n = 0;
    CHECK_OK(plumb_tokenizer_count(tok, s, strlen(s), allow, &n));
    return n;
}

static int has_id(const plumb_tokenizer *tok, const char *s, int allow, uint32_t id) {
    uint32_t *ids = NULL;
    size_t n = 0;
    int found = 0;
    CHECK_OK(plumb_tokenizer_encode(tok, s, strlen(s), allow, &ids, &n));
    for (size_t i = 0; i < n; i++) found |= ids[i] == id;
    plumb_tokenizer_ids_free(ids);
    return found;
}

/* The pre-tokenizer's pieces of s joined by '|'. */
static void check_split(const plumb_tokenizer *tok, const char *s, const char *want) {
    char got[512];
    size_t n = strlen(s), p = 0, o = 0;
    while (p < n && o + 8 < sizeof got) {
        int emit;
        size_t e = bpe_match(tok, (const unsigned char *)s, n, p, &emit);
        CHECK(emit && e > p && e <= n);
        if (e <= p || e > n) return;
        if (p) got[o++] = '|';
        memcpy(got + o, s + p, e - p < sizeof got - o - 8 ? e - p : 0);
        o += e - p;
        p = e;
    }
    got[o] = 0;
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s: split ", plumb_tokenizer_name(tok));
        print_text(s, n);
        fprintf(stderr, "\n  want ");
        print_text(want, strlen(want));
        fprintf(stderr, "\n  got  ");
        print_text(got, o);
        fputc('\n', stderr);
        check_failures++;
    }
}

/* Hand-derived splits (see the essay in src/bpe.c). family: 0 cl100k,
** 1 o200k, 2 Qwen. */
static void check_splits(const plumb_tokenizer *tok, int family) {
    check_split(tok, "a   b", "a|  | b");
    check_split(tok, "  \n  x", "  \n| | x");
    check_split(tok, "Hello world's", family == 1 ? "Hello| world's" : "Hello| world|'s");
    check_split(tok, "\t\tindented\n", "\t|\tindented|\n");
    check_split(tok, " !!!\n\n x", " !!!\n\n| x");
    check_split(tok, "trailing  ", "trailing|  ");
    check_split(tok, "a+\n/", family == 1 ? "a|+\n/" : "a|+\n|/");
    check_split(tok, "12345", family == 2 ? "1|2|3|4|5" : "123|45");
    /* U+0085 is White_Space, U+FEFF is not (JavaScript's \s has it the
    ** other way round, so the fixture avoids both) */
    check_split(tok, "x\xc2\x85\xc2\x85y", "x|\xc2\x85|\xc2\x85y");
    check_split(tok, "x\xef\xbb\xbf\xef\xbb\xbfy", "x|\xef\xbb\xbf\xef\xbb\xbf|y");
    if (family == 1) {
        check_split(tok, "HelloWorld", "Hello|World");
        check_split(tok, "HTMLParser ABC", "HTMLParser| ABC");
        check_split(tok, "\xcc\x81" "A", "\xcc\x81" "|A");       /* mark, then Lu */
        check_split(tok, "A\xca\xb0" "B", "A\xca\xb0" "|B");     /* Lm ends 1a's W+ */
        check_split(tok, "THEY'LL go", "THEY'LL| go");
    } else {
        check_split(tok, "HelloWorld", "HelloWorld");
        check_split(tok, "THEY'LL go", "THEY|'LL| go");
    }
}

/* Errors that need no shared data. */
static void check_errors(void) {
    plumb_tokenizer *tok = (plumb_tokenizer *)1;
    size_t n = 7;
    uint32_t *ids = (uint32_t *)1;
    CHECK_RC(plumb_tokenizer_load(NULL, &tok), PLUMB_MISUSE);
    CHECK(tok == NULL);
    CHECK_RC(plumb_tokenizer_load("/nonexistent/x.tiktoken", &tok), PLUMB_NOTFOUND);
    CHECK_RC(plumb_tokenizer_count(NULL, "x", 1, 0, &n), PLUMB_MISUSE);
    CHECK(n == 0);
    CHECK_RC(plumb_tokenizer_encode(NULL, "x", 1, 0, &ids, &n), PLUMB_MISUSE);
    CHECK(ids == NULL);
    plumb_tokenizer_free(NULL);
    CHECK(plumb_tokenizer_name(NULL) == NULL);

    char dir[] = "/tmp/plumb_bpe_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p1[256], p2[256], p3[256];
    snprintf(p1, sizeof p1, "%s/t.tiktoken", dir);
    snprintf(p2, sizeof p2, "%s/t.meta.json", dir);
    snprintf(p3, sizeof p3, "%s/tokenizer.json", dir);
    /* 256 single bytes make a complete (if useless) rank file */
    FILE *f = fopen(p1, "w");
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int b = 0; b < 256; b++)
        fprintf(f, "%c%c== %d\n", b64[b >> 2], b64[(b & 3) << 4], b);
    fclose(f);
    CHECK_RC(plumb_tokenizer_load(p1, &tok), PLUMB_FORMAT); /* no meta */
    f = fopen(p2, "w");
    fputs("{\"pat_str\": \"\\\\w+\", \"special_tokens\": {}}", f);
    fclose(f);
    CHECK_RC(plumb_tokenizer_load(p1, &tok), PLUMB_FORMAT); /* unknown regex */
    f = fopen(p2, "w");
    fputs("{\"pat_str\": \"'(?i:[sdmt]|ll|ve|re)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?+\\\\p{L}+|"
          "\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]++[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]|"
          "\\\\s+(?!\\\\S)|\\\\s+\", \"special_tokens\": {\"<|x|>\": 256}}", f);
    fclose(f);
    CHECK_OK(plumb_tokenizer_load(p1, &tok));
    if (tok) {
        CHECK_STR(plumb_tokenizer_name(tok), "t");
        CHECK(plumb_tokenizer_vocab_size(tok) == 257);
        CHECK(count_of(tok, "ab<|x|>", 1) == 3);
        CHECK(count_of(tok, "ab<|x|>", 0) == 7);
        size_t z = 9;
        uint32_t *zi = (uint32_t *)1;
        CHECK_OK(plumb_tokenizer_count(tok, NULL, 0, 1, &z));
        CHECK(z == 0);
        CHECK_OK(plumb_tokenizer_encode(tok, "", 0, 1, &zi, &z));
        CHECK(zi == NULL && z == 0);
        CHECK_RC(plumb_tokenizer_count(tok, NULL, 3, 1, &z), PLUMB_MISUSE);
        CHECK(plumb_tokenizer_token_bytes(tok, 999, &z) == NULL && z == 0);
        /* invalid UTF-8 is counted, byte for byte here */
        CHECK(count_of(tok, "\xff\xfe a\xc3", 0) == 5);
        check_roundtrip(tok, "\xff\xfe a\xc3(\xe4\xb8", 8);
        check_paths_agree(tok);
        plumb_tokenizer_free(tok);
    }
    f = fopen(p1, "a");
    fputs("not base64!! 300\n", f);
    fclose(f);
    CHECK_RC(plumb_tokenizer_load(p1, &tok), PLUMB_FORMAT);
    f = fopen(p3, "w");
    fputs("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", f);
    fclose(f);
    CHECK_RC(plumb_tokenizer_load(p3, &tok), PLUMB_FORMAT);
    f = fopen(p3, "w");
    fputs("{\"model\": ", f);
    fclose(f);
    CHECK_RC(plumb_tokenizer_load(p3, &tok), PLUMB_FORMAT);
    remove(p1);
    remove(p2);
    remove(p3);
    rmdir(dir);
}

int main(void) {
    const char *shared = getenv("PLUMB_SHARED_DATA");
    const char *tdata = getenv("PLUMB_TEST_DATA");
    static const struct {
        const char *file, *fixture;
    } cases[] = {
        {"cl100k_base.tiktoken", "cl100k_base.jsonl"},
        {"o200k_base.tiktoken", "o200k_base.jsonl"},
        {"qwen3-tokenizer.json", "qwen3.jsonl"},
    };
    check_errors();
    if (!tdata) tdata = "tests/data";
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[1024], fix[1024];
        snprintf(path, sizeof path, "%s/tokenizers/%s", shared ? shared : "../shared/data",
                 cases[c].file);
        snprintf(fix, sizeof fix, "%s/bpe/%s", tdata, cases[c].fixture);
        FILE *f = fopen(path, "rb");
        if (!f) {
            printf("skip %s: %s not found (set PLUMB_SHARED_DATA)\n", cases[c].file, path);
            continue;
        }
        fclose(f);
        plumb_tokenizer *tok = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_OK(plumb_tokenizer_load(path, &tok));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (!tok) continue;
        double load_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        size_t bytes = 0, nvec = check_fixture(tok, fix, &bytes);
        CHECK(nvec > 2000);
        check_paths_agree(tok);
        check_splits(tok, (int)c);
        check_roundtrip(tok, "Hello, world! 12345 \xe4\xb8\xad\xe6\x96\x87 <|endoftext|>\n", 37);
        check_threads(tok);
        /* random bytes, mostly invalid UTF-8: never fails, count == ids */
        for (int r = 0; r < 300; r++) {
            char junk[300];
            size_t jl = rng() % sizeof junk;
            for (size_t k = 0; k < jl; k++) {
                uint32_t v = rng();
                junk[k] = (char)(v % 4 == 0 ? "a <|\n'"[v % 5] : (char)(v >> 8));
            }
            if (c < 2) check_roundtrip(tok, junk, jl);
            else {
                size_t n1 = 0, n2 = 0;
                uint32_t *ids = NULL;
                CHECK_OK(plumb_tokenizer_count(tok, junk, jl, 1, &n1));
                CHECK_OK(plumb_tokenizer_encode(tok, junk, jl, 1, &ids, &n2));
                CHECK(n1 == n2);
                plumb_tokenizer_ids_free(ids);
            }
        }
        if (c == 2) { /* Qwen3: specials gated, non-special added tokens always */
            CHECK(has_id(tok, "a<|endoftext|>b", 1, 151643));
            CHECK(!has_id(tok, "a<|endoftext|>b", 0, 151643));
            CHECK(has_id(tok, "<think>x</think>", 0, 151667));
            CHECK(has_id(tok, "<think>x</think>", 0, 151668));
            CHECK(plumb_tokenizer_vocab_size(tok) == 151669);
            /* NFC: a decomposed e-acute counts as the composed one */
            CHECK(count_of(tok, "caf\x65\xcc\x81", 1) == count_of(tok, "caf\xc3\xa9", 1));
        } else {
            CHECK(has_id(tok, "a<|endoftext|>b", 1, c == 0 ? 100257 : 199999));
            CHECK(!has_id(tok, "a<|endoftext|>b", 0, c == 0 ? 100257 : 199999));
        }
        /* Hand-checked pre-tokenization where JavaScript's \s (the fixture's
        ** references) differs from Unicode White_Space: U+0085 is space, so
        ** "x" NEL NEL "y" splits "x" | NEL | NEL "y" (\s+(?!\S), then
        ** X?\p{L}+); U+FEFF is not, so "x" FEFF FEFF "y" splits "x" |
        ** FEFF FEFF | "y" (punctuation run). */
        CHECK(count_of(tok, "x\xc2\x85\xc2\x85y", 0) ==
              count_of(tok, "x", 0) + count_of(tok, "\xc2\x85", 0) + count_of(tok, "\xc2\x85y", 0));
        CHECK(count_of(tok, "x\xef\xbb\xbf\xef\xbb\xbfy", 0) ==
              count_of(tok, "x", 0) + count_of(tok, "\xef\xbb\xbf\xef\xbb\xbf", 0) +
                  count_of(tok, "y", 0));
        printf("%s: %zu vectors (%zu bytes) match; load %.0f ms\n", plumb_tokenizer_name(tok),
               nvec, bytes, load_ms);
        plumb_tokenizer_free(tok);
    }
    free_corpus();
    return CHECK_DONE();
}
