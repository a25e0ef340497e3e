/* test_util.c -- utf8 validation/repair, UTF-16 decoding, JSONL records'
** \u0000 escapes, the content hash, buf, json.c's writers. */
#include "check.h"
#include "plumb_impl.h"

#include <locale.h>
#include <math.h>

static void test_utf8(void) {
    CHECK(utf8_check("", 0) == 0);
    CHECK(utf8_check("abc", 3) == 3);
    CHECK(utf8_check("caf\xC3\xA9", 5) == 5);
    CHECK(utf8_check("\xE4\xB8\xAD\xE6\x96\x87", 6) == 6);     /* 中文 */
    CHECK(utf8_check("\xF0\x9F\x98\x80", 4) == 4);             /* emoji */
    CHECK(utf8_check("ab\xFFzz", 5) == 2);                     /* invalid byte */
    CHECK(utf8_check("ab\xC3", 3) == 2);                       /* truncated */
    CHECK(utf8_check("\xC0\xAF", 2) == 0);                     /* overlong '/' */
    CHECK(utf8_check("\xE0\x80\xAF", 3) == 0);                 /* overlong 3-byte */
    CHECK(utf8_check("\xED\xA0\x80", 3) == 0);                 /* surrogate D800 */
    CHECK(utf8_check("\xF4\x90\x80\x80", 4) == 0);             /* above U+10FFFF */
    CHECK(utf8_check("\xF0\x8F\xBF\xBF", 4) == 0);             /* overlong 4-byte */
    CHECK(utf8_check("x\x80", 2) == 1);                        /* lone continuation */

    buf b = {0};
    size_t first = 0;
    CHECK(utf8_repair("ok", 2, &b, &first) == 0 && first == 2);
    CHECK_STR(b.p, "ok");
    buf_reset(&b);
    CHECK(utf8_repair("a\xFF" "b\xC3", 4, &b, &first) == 2);
    CHECK(first == 1);
    CHECK_STR(b.p, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    CHECK(utf8_check(b.p, b.len) == b.len);
    buf_reset(&b);
    /* NUL bytes are dropped, not replaced */
    CHECK(utf8_repair("a\0b", 3, &b, &first) == 1 && first == 1);
    CHECK(b.len == 2 && !memcmp(b.p, "ab", 2));
    buf_reset(&b);
    /* a broken 3-byte sequence: lead + one continuation -> one U+FFFD */
    CHECK(utf8_repair("\xE4\xB8z", 3, &b, &first) == 1);
    CHECK_STR(b.p, "\xEF\xBF\xBDz");
    buf_free(&b);
}

static void test_utf16(void) {
    buf b = {0};
    size_t first = 0;
    /* "a\u00e9\u4e2d" + U+1F600 (a surrogate pair), little and big endian */
    const char le[] = "a\0\xE9\0\x2D\x4E\x3D\xD8\x00\xDE";
    const char be[] = "\0a\0\xE9\x4E\x2D\xD8\x3D\xDE\x00";
    const char *want = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
    CHECK(utf16_to_utf8(le, 10, 0, &b, &first) == 0 && first == 10);
    CHECK_STR(b.p, want);
    buf_reset(&b);
    CHECK(utf16_to_utf8(be, 10, 1, &b, &first) == 0);
    CHECK_STR(b.p, want);
    buf_reset(&b);
    /* a lone high surrogate, a lone low one, U+0000 and an odd last byte */
    const char bad[] = "\x00\xD8x\0\x00\xDC\0\0y\0z";
    CHECK(utf16_to_utf8(bad, 11, 0, &b, &first) == 4 && first == 0);
    CHECK_STR(b.p, "\xEF\xBF\xBDx\xEF\xBF\xBDy\xEF\xBF\xBD");
    CHECK(utf8_check(b.p, b.len) == b.len);
    buf_reset(&b);
    /* a real U+FFFD is not a repair */
    CHECK(utf16_to_utf8("\xFD\xFF", 2, 0, &b, &first) == 0);
    CHECK_STR(b.p, "\xEF\xBF\xBD");
    buf_free(&b);
}

/* cJSON would decode \u0000 into a NUL that cuts the string there */
static void test_json_nul(void) {
    json_rec r;
    CHECK(json_rec_parse("{\"_id\":\"a\\u0000b\",\"text\":\"x\\u0000 yz \\\\u0000\"}", &r) ==
          JSON_REC_OK);
    CHECK(r.nul_escapes == 2);
    CHECK_STR(r.id, "ab");
    CHECK_STR(r.text, "x yz \\u0000"); /* an escaped backslash, then the letters */
    json_rec_free(&r);
    CHECK(json_rec_parse("{\"_id\":\"a\",\"text\":\"\\u00001\"}", &r) == JSON_REC_OK);
    CHECK(r.nul_escapes == 1);
    CHECK_STR(r.text, "1");
    json_rec_free(&r);
    CHECK(json_rec_parse("{\"_id\":\"a\",\"text\":\"\\u0001\"}", &r) == JSON_REC_OK);
    CHECK(r.nul_escapes == 0);
    CHECK_STR(r.text, "\x01");
    json_rec_free(&r);
}

static void test_hash(void) {
    /* frozen definition: these values are stored in indexes */
    char hx[17];
    uint64_t a = hash64("", 0, 0), b = hash64("a", 1, 0), c = hash64("b", 1, 0);
    CHECK(a != b && b != c);
    CHECK(hash64("abcdefghij", 10, 1) != hash64("abcdefghij", 10, 2));
    CHECK(hash64("abcdefghij", 10, 1) == hash64("abcdefghij", 10, 1));
    /* every single-bit flip of a 64-byte input changes the hash */
    char m[64];
    for (int i = 0; i < 64; i++) m[i] = (char)i;
    uint64_t h0 = hash64(m, 64, 7);
    int same = 0;
    for (int bit = 0; bit < 512; bit++) {
        m[bit / 8] ^= (char)(1 << (bit % 8));
        same += hash64(m, 64, 7) == h0;
        m[bit / 8] ^= (char)(1 << (bit % 8));
    }
    CHECK(same == 0);
    hash64_hex(0x0123456789abcdefULL, hx);
    CHECK_STR(hx, "0123456789abcdef");
    /* tail lengths 0..7 all differ from each other */
    uint64_t hs[9];
    for (int n = 0; n <= 8; n++) hs[n] = hash64("zzzzzzzz", (size_t)n, 0);
    for (int i = 0; i <= 8; i++)
        for (int j = i + 1; j <= 8; j++) CHECK(hs[i] != hs[j]);
}

/* hash64_begin/update/end against hash64 itself: every length 0..200,
** fed whole, byte by byte, and in random pieces (pieces that straddle
** words, pieces of 0 bytes); and a 1 MB input in uneven pieces. */
static void test_hash_stream(void) {
    static unsigned char m[1 << 20];
    uint64_t r = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < sizeof m; i++) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        m[i] = (unsigned char)r;
    }
    int bad = 0;
    for (size_t n = 0; n <= 200; n++) {
        uint64_t want = hash64(m, n, n * 31);
        hash64_state a, b, c;
        hash64_begin(&a, n, n * 31);
        hash64_update(&a, m, n);
        hash64_begin(&b, n, n * 31);
        for (size_t i = 0; i < n; i++) hash64_update(&b, m + i, 1);
        hash64_begin(&c, n, n * 31);
        for (size_t i = 0; i < n;) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            size_t k = (size_t)(r % 20);
            if (k > n - i) k = n - i;
            hash64_update(&c, m + i, k);
            i += k;
        }
        bad += hash64_end(&a) != want || hash64_end(&b) != want || hash64_end(&c) != want;
    }
    CHECK(bad == 0);
    hash64_state s;
    hash64_begin(&s, sizeof m, 0);
    for (size_t i = 0, k = 1; i < sizeof m; i += k, k = k * 3 % 65537 + 1) {
        if (k > sizeof m - i) k = sizeof m - i;
        hash64_update(&s, m + i, k);
    }
    CHECK(hash64_end(&s) == hash64(m, sizeof m, 0));
}

static void test_buf(void) {
    buf b = {0};
    for (int i = 0; i < 1000; i++) buf_printf(&b, "%d,", i);
    CHECK(!b.oom);
    CHECK(b.len == strlen(b.p));
    CHECK(!strncmp(b.p, "0,1,2,", 6));
    buf_reset(&b);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[999] = 0;
    buf_printf(&b, "<%s>", big); /* longer than the fast path */
    CHECK(b.len == 1001 && b.p[0] == '<' && b.p[1000] == '>');
    char *d = buf_detach(&b);
    CHECK(d && strlen(d) == 1001 && b.p == NULL && b.len == 0);
    free(d);
    d = buf_detach(&b); /* empty: an empty string, not NULL */
    CHECK(d && d[0] == 0);
    free(d);
}

static void test_status(void) {
    for (int s = PLUMB_OK; s <= PLUMB_BUSY; s++) CHECK(plumb_status_str((plumb_status)s)[0]);
    CHECK_STR(plumb_status_str(PLUMB_OK), "ok");
    CHECK(plumb_status_str((plumb_status)999) != NULL);
    CHECK_STR(plumb_libversion(), PLUMB_VERSION);
    CHECK(err_set(PLUMB_IO, "file %s line %d", "x.txt", 3) == PLUMB_IO);
    CHECK_STR(plumb_errmsg(), "file x.txt line 3");
}

/* json_buf_str / json_buf_num give JSON that reads back to the input. */
static void test_json_writers(void) {
    const char *cases[] = {"plain", "quote \" backslash \\ slash /", "tab\tnl\ncr\rbell\x07",
                           "\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80", ""};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf b = {0};
        json_buf_str(&b, cases[i], strlen(cases[i]));
        json_val *v = json_parse(b.p, NULL);
        CHECK_STR(json_str(v), cases[i]);
        json_free(v);
        buf_free(&b);
    }
    /* invalid UTF-8 becomes U+FFFD; NUL stays as \u0000 */
    buf b = {0};
    json_buf_str(&b, "a\xFF" "b\0c", 5);
    CHECK_STR(b.p, "\"a\xEF\xBF\xBD" "b\\u0000c\"");
    buf_reset(&b);
    json_buf_str(&b, "x\0y", 3);
    CHECK_STR(b.p, "\"x\\u0000y\"");
    buf_reset(&b);
    double nums[] = {0, 0.7, -1.5, 1e-300, 123456789.125, 0.1 + 0.2};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        buf_reset(&b);
        json_buf_num(&b, nums[i]);
        json_val *v = json_parse(b.p, NULL);
        CHECK(json_is_num(v) && json_num(v) == nums[i]);
        json_free(v);
    }
    buf_reset(&b);
    json_buf_num(&b, 0.7);
    CHECK_STR(b.p, "0.7");
    buf_reset(&b);
    json_buf_num(&b, NAN);
    CHECK_STR(b.p, "null");
    /* a decimal comma locale does not leak into JSON */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
        buf_reset(&b);
        json_buf_num(&b, 2.5);
        CHECK_STR(b.p, "2.5");
        setlocale(LC_NUMERIC, "C");
    }
    buf_free(&b);
}

int main(void) {
    test_utf8();
    test_utf16();
    test_json_nul();
    test_hash();
    test_hash_stream();
    test_buf();
    test_status();
    test_json_writers();
    return CHECK_DONE();
}
