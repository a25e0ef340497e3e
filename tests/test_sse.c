/* test_sse.c -- the Server-Sent Events parser: every field rule of the
** WHATWG format, the same events whatever way the bytes are sliced (every
** two-way cut, byte by byte, random cuts), the size bound, callback stops. */
#include "check.h"
#include "plumb_impl.h"


/* Events recorded as "event|id|data" lines; data's own "\n" shown as "\\n". */
typedef struct rec {
    buf out;
    sse *p;
    int stop_at; /* return PLUMB_ERROR at this event (1-based); 0 never */
    int seen;
} rec;

static plumb_status on_event(void *arg, const char *event, const char *data, size_t n) {
    rec *r = arg;
    r->seen++;
    buf_printf(&r->out, "%s|%s|", event, r->p->id.p ? r->p->id.p : "");
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') buf_puts(&r->out, "\\n");
        else if (data[i] == 0) buf_puts(&r->out, "\\0");
        else buf_putc(&r->out, data[i]);
    }
    buf_putc(&r->out, '\n');
    if (r->stop_at && r->seen == r->stop_at) return err_set(PLUMB_ERROR, "stop");
    return PLUMB_OK;
}

static const char STREAM[] =
    "\xEF\xBB\xBF: a comment first, after the BOM\n"
    "data: hello\n\n"
    "event: update\r\ndata:no space\r\ndata:  two spaces\r\n\r\n"
    "id: 42\rdata: cr only\r\r"
    "data\n\n"
    "data: a\ndata: b\ndata: c\n\n"
    ":ping\r\n"
    "retry: 1000\nfoo: bar\ndata: x: y\n\n"
    "event: lost\nid\n\n"
    "data: after\n\n"
    "data: tab\tand \xE4\xB8\xAD\xE6\x96\x87\n\n"
    "data: incomplete at the end";

static const char WANT[] =
    "message||hello\n"
    "update||no space\\n two spaces\n"
    "message|42|cr only\n"
    "message|42|\n"
    "message|42|a\\nb\\nc\n"
    "message|42|x: y\n"
    "message||after\n"
    "message||tab\tand \xE4\xB8\xAD\xE6\x96\x87\n";

/* Feed s in pieces cut at cuts[0..ncut) (ascending); return the record. */
static char *parse_cut(const char *s, size_t n, const size_t *cuts, size_t ncut) {
    sse p;
    rec r = {.p = &p};
    sse_init(&p, 1 << 20, on_event, &r);
    size_t at = 0;
    for (size_t i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cuts[i] : n;
        CHECK_OK(sse_feed(&p, s + at, end - at));
        at = end;
    }
    sse_free(&p);
    return buf_detach(&r.out);
}

static void test_fields(void) {
    size_t n = sizeof STREAM - 1;
    char *whole = parse_cut(STREAM, n, NULL, 0);
    CHECK_STR(whole, WANT);

    /* every two-way cut */
    int bad = 0;
    for (size_t c = 0; c <= n; c++) {
        char *got = parse_cut(STREAM, n, &c, 1);
        if (strcmp(got, WANT)) {
            if (!bad++) fprintf(stderr, "cut at %zu:\n%s", c, got);
        }
        free(got);
    }
    CHECK(bad == 0);

    /* byte by byte */
    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t i = 0; i < n; i++) cuts[i] = i;
    char *got = parse_cut(STREAM, n, cuts, n);
    CHECK_STR(got, WANT);
    free(got);

    /* random cuts, including empty slices */
    uint64_t x = 0x12345678;
    for (int round = 0; round < 500; round++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (x % 7 == 0) cuts[k++] = i;
            if (x % 53 == 0) cuts[k++] = i; /* an empty slice */
            if (k == n) break;
        }
        got = parse_cut(STREAM, n, cuts, k);
        if (strcmp(got, WANT)) bad++;
        free(got);
    }
    CHECK(bad == 0);
    free(cuts);
    free(whole);
}

static void test_line_ends(void) {
    /* the same two events with LF, CRLF and CR line ends */
    const char *forms[] = {"data: one\ndata: two\n\nevent: e\ndata: 3\n\n",
                           "data: one\r\ndata: two\r\n\r\nevent: e\r\ndata: 3\r\n\r\n",
                           "data: one\rdata: two\r\revent: e\rdata: 3\r\r"};
    for (int f = 0; f < 3; f++) {
        size_t n = strlen(forms[f]);
        for (size_t c = 0; c <= n; c++) {
            char *got = parse_cut(forms[f], n, &c, 1);
            CHECK_STR(got, "message||one\\ntwo\ne||3\n");
            free(got);
        }
    }
    /* CR LF split across feeds is one line end, not an empty line */
    const char *s = "data: a\r\ndata: b\r\n\r\n";
    size_t cut = 8; /* between \r and \n */
    char *got = parse_cut(s, strlen(s), &cut, 1);
    CHECK_STR(got, "message||a\\nb\n");
    free(got);
    /* NUL bytes inside data are kept, with the length */
    got = parse_cut("data: a\0b\n\n", 11, NULL, 0);
    CHECK_STR(got, "message||a\\0b\n");
    free(got);
    /* a BOM only counts at the very start */
    got = parse_cut("data: x\n\n\xEF\xBB\xBF" "data: y\n\n", 21, NULL, 0);
    CHECK_STR(got, "message||x\n");
    free(got);
}

static void test_limits(void) {
    sse p;
    rec r = {.p = &p};
    sse_init(&p, 64, on_event, &r);
    /* an event of exactly 64 bytes of line passes */
    char line[80];
    memset(line, 'a', sizeof line);
    memcpy(line, "data: ", 6);
    CHECK_OK(sse_feed(&p, line, 64));
    CHECK_OK(sse_feed(&p, "\n\n", 2));
    CHECK(r.seen == 1);
    /* a line that never ends */
    plumb_status rc = PLUMB_OK;
    for (int i = 0; i < 100 && rc == PLUMB_OK; i++) rc = sse_feed(&p, "bbbbbbbbbbbb", 12);
    CHECK(rc == PLUMB_CORRUPT);
    CHECK(strstr(plumb_errmsg(), "larger than 64 bytes") != NULL);
    CHECK(p.line.cap <= 256);
    /* sticky until reset */
    CHECK(sse_feed(&p, "\n\n", 2) == PLUMB_CORRUPT);
    sse_reset(&p);
    CHECK_OK(sse_feed(&p, "data: ok\n\n", 10));
    CHECK(r.seen == 2);
    /* many short data lines without a blank line */
    rc = PLUMB_OK;
    for (int i = 0; i < 100 && rc == PLUMB_OK; i++) rc = sse_feed(&p, "data: 0123456789\n", 17);
    CHECK(rc == PLUMB_CORRUPT);
    CHECK(p.data.cap <= 256);
    /* comments are dropped as they arrive: any length is fine */
    sse_reset(&p);
    CHECK_OK(sse_feed(&p, ":", 1));
    for (int i = 0; i < 1000; i++) CHECK_OK(sse_feed(&p, "ccccccccccccccccccccccc", 23));
    CHECK_OK(sse_feed(&p, "\ndata: z\n\n", 10));
    CHECK(r.seen == 3);
    sse_free(&p);
    buf_free(&r.out);

    /* a callback's non-OK status stops the parser and comes back */
    rec r2 = {.stop_at = 2};
    sse_init(&p, 1024, on_event, &r2);
    r2.p = &p;
    CHECK(sse_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27) == PLUMB_ERROR);
    CHECK(r2.seen == 2);
    CHECK(sse_feed(&p, "data: 4\n\n", 9) == PLUMB_ERROR);
    CHECK(r2.seen == 2);
    sse_free(&p);
    buf_free(&r2.out);
}

int main(void) {
    test_fields();
    test_line_ends();
    test_limits();
    return CHECK_DONE();
}
