/* test_http.c -- http.c against tests/http_server.py, an OpenAI-compatible
** server started for the run. Each failure mode the server offers is
** checked for its defined outcome (result, status code, what the message
** names, how many attempts the server saw, how long it took), and every
** answer against an independent computation of the server's deterministic
** function. Skipped, with a message, when python3 is missing. */
#include "check.h"
#include "plumb_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY "sk-test-key"
#define DIM 32

static int port;
static pid_t server = -1;
static int server_in = -1; /* the server's stdin: closing it stops the server */
static char base[64];

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 1 started, 0 python3 missing, -1 failed. */
static int server_start(void) {
    if (system("python3 -c '' >/dev/null 2>&1") != 0) return 0;
    const char *src = getenv("PLUMB_SOURCE_DIR");
    char script[4096];
    snprintf(script, sizeof script, "%s/tests/http_server.py", src ? src : ".");
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return -1;
    server = fork();
    if (server < 0) return -1;
    if (server == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execlp("python3", "python3", script, "--key", KEY, "--dim", "32", "--timeout", "120",
               (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    server_in = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[64] = "";
    int ok = f && fgets(line, sizeof line, f) != NULL;
    if (f) fclose(f);
    port = atoi(line);
    if (!ok || port <= 0) return -1;
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", port);
    return 1;
}

static void server_stop(void) {
    if (server_in >= 0) close(server_in);
    if (server > 0) waitpid(server, NULL, 0);
}

/* Requests the server counted for this model (GET /stats over a plain
** socket, independent of the code under test); -1 on failure. */
static int attempts(const char *model) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    char req[256], resp[4096];
    int n = snprintf(req, sizeof req, "GET /stats?model=%s HTTP/1.0\r\n\r\n", model);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) { close(fd); return -1; }
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = 0;
    const char *p = strstr(resp, "\"requests\": ");
    return p ? atoi(p + 12) : -1;
}

static void cfg(http_cfg *c, const char *model) {
    http_cfg_init(c);
    c->base_url = base;
    c->api_key = KEY;
    c->model = model;
    c->backoff_ms = 10;
    c->max_retries = 3;
}

static int has(const char *s) { return strstr(plumb_errmsg(), s) != NULL; }

#define CHECK_MSG(s) do { if (!has(s)) { fprintf(stderr, "%s:%d: message lacks \"%s\": %s\n", \
    __FILE__, __LINE__, (s), plumb_errmsg()); check_failures++; } } while (0)

/* The server's embedding, computed independently (see http_server.py). */
static void ref_embed(const char *t, int dim, double *v) {
    for (int i = 0; i < dim; i++) v[i] = 0;
    size_t n = strlen(t);
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        uint64_t h = 0xCBF29CE484222325ULL;
        for (; j < n; j++) {
            unsigned char c = (unsigned char)t[j];
            if (c >= 'A' && c <= 'Z') c += 32;
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) break;
            h = (h ^ c) * 0x100000001B3ULL;
        }
        if (j > i) v[h % (uint64_t)dim] += (h >> 32) & 1 ? -1.0 : 1.0;
        i = j + 1;
    }
    double s = 0;
    for (int i = 0; i < dim; i++) s += v[i] * v[i];
    double norm = sqrt(s);
    if (norm > 0)
        for (int i = 0; i < dim; i++) v[i] /= norm;
}

static int rows_match(const char *const *texts, size_t n, const float *out, int dim) {
    double *v = malloc((size_t)dim * sizeof *v);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        ref_embed(texts[i], dim, v);
        for (int j = 0; j < dim; j++)
            if (fabs(v[j] - out[i * (size_t)dim + (size_t)j]) > 1e-6) bad++;
    }
    free(v);
    return bad == 0;
}

typedef struct progress_log {
    size_t calls, last, total;
    int backwards;
} progress_log;

static void on_progress(void *arg, size_t done, size_t total) {
    progress_log *p = arg;
    if (done < p->last) p->backwards = 1;
    p->calls++;
    p->last = done;
    p->total = total;
}

#define NTEXT 50
static char text_store[NTEXT][160];
static const char *texts[NTEXT];

static void make_texts(void) {
    for (int i = 0; i < NTEXT; i++) {
        if (i == 13) snprintf(text_store[i], sizeof text_store[i], "%s", ""); /* no tokens */
        else if (i % 7 == 0)
            snprintf(text_store[i], sizeof text_store[i],
                     "Doc %d: \"quoted\" back\\slash\ttab\nline \xFF invalid caf\xC3\xA9 w%d", i,
                     i);
        else
            snprintf(text_store[i], sizeof text_store[i], "document %d about topic%d and word%d",
                     i, i % 5, i * 7);
        texts[i] = text_store[i];
    }
}

static void test_embed_ok(void) {
    http_cfg c;
    float *out = NULL;
    int dim = 0;
    char model[128];
    progress_log pl = {0};

    /* 13 batches, 3 in flight, each answered in reverse order after a
    ** random delay: rows must still come back in input order */
    cfg(&c, "shuffled:order");
    c.batch = 4;
    c.concurrency = 3;
    CHECK_OK(http_embed(&c, texts, NTEXT, 0, &out, &dim, model, on_progress, &pl));
    CHECK(dim == DIM);
    CHECK_STR(model, "shuffled:order");
    CHECK(out && rows_match(texts, NTEXT, out, dim));
    CHECK(pl.calls == 13 && pl.last == NTEXT && pl.total == NTEXT && !pl.backwards);
    CHECK(attempts("shuffled:order") == 13);
    free(out);

    /* one request with the default batch; expect_dim that fits */
    cfg(&c, "plain:one");
    CHECK_OK(http_embed(&c, texts, NTEXT, DIM, &out, &dim, NULL, NULL, NULL));
    CHECK(dim == DIM && out && rows_match(texts, NTEXT, out, dim));
    CHECK(attempts("plain:one") == 1);
    free(out);

    /* nothing to embed: no request */
    CHECK_OK(http_embed(&c, texts, 0, 7, &out, &dim, model, NULL, NULL));
    CHECK(out == NULL && dim == 7);
    CHECK(attempts("plain:one") == 1);
}

static void test_embed_retries(void) {
    http_cfg c;
    float *out = NULL;
    int dim = 0;

    /* 429 with Retry-After: 1 -- the wait is the server's, not the 10 ms backoff */
    cfg(&c, "fail-429-then-ok:e");
    double t0 = now_ms();
    CHECK_OK(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL));
    double el = now_ms() - t0;
    CHECK(el >= 1000);
    CHECK(attempts("fail-429-then-ok:e") == 2);
    CHECK(out && rows_match(texts, 5, out, dim));
    free(out);

    cfg(&c, "fail-500-twice:e");
    CHECK_OK(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL));
    CHECK(attempts("fail-500-twice:e") == 3);
    free(out);

    cfg(&c, "fail-500-always:e");
    c.max_retries = 2;
    out = (float *)1;
    dim = 1;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK(out == NULL && dim == 0);
    CHECK(attempts("fail-500-always:e") == 3);
    char url[128];
    snprintf(url, sizeof url, "POST http://127.0.0.1:%d/v1/embeddings: ", port);
    CHECK_MSG(url);
    CHECK_MSG("HTTP 500: The server had an error while processing your request");
    CHECK_MSG("(3 attempts)");

    cfg(&c, "502-text:e");
    c.max_retries = 1;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("HTTP 502: Bad Gateway upstream unavailable (2 attempts)");
    CHECK(attempts("502-text:e") == 2);

    cfg(&c, "drop-before-first:e");
    CHECK_OK(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL));
    CHECK(attempts("drop-before-first:e") == 2);
    free(out);

    /* the whole request limit; not retried here (max_retries 0) */
    cfg(&c, "slow-first-byte:e");
    c.timeout_ms = 300;
    c.max_retries = 0;
    t0 = now_ms();
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_TIMEOUT);
    CHECK(now_ms() - t0 < 2000);
    CHECK_MSG("timed out");
    CHECK(attempts("slow-first-byte:e") == 1);

    /* nobody listening: a port that was just free */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/v1/", ntohs(a.sin_port));
    cfg(&c, "x");
    c.base_url = dead;
    c.max_retries = 1;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("cannot connect");
    CHECK_MSG("(2 attempts)");
    CHECK_MSG("/v1/embeddings:"); /* the trailing '/' of the base is not doubled */
}

static void test_embed_errors(void) {
    http_cfg c;
    float *out = NULL;
    int dim = 0;

    cfg(&c, "400-error:e");
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("HTTP 400: This model's maximum context length is 8192 tokens");
    CHECK(!has("attempts"));
    CHECK(attempts("400-error:e") == 1);

    cfg(&c, "400-string:e");
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("HTTP 400: Input validation error: inputs cannot be empty");
    CHECK(attempts("400-string:e") == 1);

    cfg(&c, "plain:nokey");
    c.api_key = NULL;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("HTTP 401: Incorrect API key provided");
    CHECK(attempts("plain:nokey") == 1);

    /* the broken byte is the second comma of "[0.25,,0.5]" */
    cfg(&c, "malformed-json:e");
    CHECK_RC(http_embed(&c, texts, 1, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("malformed JSON at byte 75 of the response (near \",0.5]}],");
    CHECK(attempts("malformed-json:e") == 1);

    cfg(&c, "bad-dimension:e");
    CHECK_RC(http_embed(&c, texts, 5, DIM, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("returned 33-dimensional embeddings, expected 32");
    CHECK(out == NULL && dim == 0);
    cfg(&c, "bad-dimension:free");
    CHECK_OK(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL));
    CHECK(dim == DIM + 1);
    free(out);

    cfg(&c, "mixed-dimension:e");
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_HTTP);
    CHECK_MSG("changed dimension from 32 to 31");

    cfg(&c, "x");
    c.base_url = NULL;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_MISUSE);
    cfg(&c, "x");
    c.batch = 0;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_MISUSE);
    cfg(&c, "x");
    c.api_key = "key\r\nX-Injected: 1";
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_MISUSE);
    const char *with_null[] = {"a", NULL};
    cfg(&c, "x");
    CHECK_RC(http_embed(&c, with_null, 2, 0, &out, &dim, NULL, NULL, NULL), PLUMB_MISUSE);
}

typedef struct canceller {
    volatile int *flag;
    int after_ms;
} canceller;

static void *cancel_later(void *arg) {
    canceller *k = arg;
    struct timespec ts = {k->after_ms / 1000, (long)(k->after_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *k->flag = 1;
    return NULL;
}

static void test_cancel(void) {
    http_cfg c;
    float *out = NULL;
    int dim = 0;
    volatile int flag = 0;
    canceller k = {&flag, 200};
    pthread_t th;

    /* while waiting for an answer */
    cfg(&c, "slow-first-byte:cancel");
    c.cancel = &flag;
    double t0 = now_ms();
    pthread_create(&th, NULL, cancel_later, &k);
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_CANCELLED);
    pthread_join(th, NULL);
    CHECK(now_ms() - t0 < 1000);
    CHECK_MSG("cancelled");

    /* while waiting to retry */
    flag = 0;
    cfg(&c, "fail-500-always:cancel");
    c.cancel = &flag;
    c.backoff_ms = 10000;
    t0 = now_ms();
    pthread_create(&th, NULL, cancel_later, &k);
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_CANCELLED);
    pthread_join(th, NULL);
    CHECK(now_ms() - t0 < 1000);
    CHECK_MSG("cancelled");
    CHECK(attempts("fail-500-always:cancel") == 1);

    /* set before the call: no request at all */
    flag = 1;
    cfg(&c, "plain:cancelled");
    c.cancel = &flag;
    CHECK_RC(http_embed(&c, texts, 5, 0, &out, &dim, NULL, NULL, NULL), PLUMB_CANCELLED);
    CHECK(attempts("plain:cancelled") == 0);
}

/* ---------------------------------------------------------------- */

typedef struct answer {
    buf text;
    int calls;
    int stop_at; /* return non-zero at this call (1-based); 0 never */
} answer;

static int on_delta(void *arg, const char *s, size_t n) {
    answer *a = arg;
    buf_append(&a->text, s, n);
    return ++a->calls == a->stop_at;
}

static plumb_status chat(const char *model, answer *a, http_chat_result *r,
                         void (*tweak)(http_cfg *)) {
    http_cfg c;
    cfg(&c, model);
    if (tweak) tweak(&c);
    buf_reset(&a->text);
    a->calls = 0;
    return http_chat_stream(&c, "Be brief.", "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \"quoted\"", 0,
                            0.2, on_delta, a, r);
}

static const char ANSWER[] = "You said: h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \"quoted\"";

static void short_timeouts(http_cfg *c) {
    c->timeout_ms = 300;
    c->idle_timeout_ms = 300;
    c->max_retries = 0;
}
static void no_key(http_cfg *c) { c->api_key = ""; }

static void test_chat(void) {
    answer a = {0};
    http_chat_result r;

    CHECK_OK(chat("plain:chat", &a, &r, NULL));
    CHECK_STR(a.text.p, ANSWER);
    CHECK_STR(r.model, "plain:chat");
    CHECK_STR(r.finish_reason, "stop");
    CHECK(r.prompt_tokens == 2 + 3 && r.completion_tokens == a.calls);
    CHECK(a.calls == 9); /* 27 characters, 3 per chunk */
    CHECK(r.bytes == strlen(ANSWER));
    CHECK(r.ttft_ms > 0 && r.ttft_ms <= r.total_ms);
    CHECK(attempts("plain:chat") == 1);

    /* CRLF, "data:" without space, comments, events split between writes */
    CHECK_OK(chat("sse-variants:chat", &a, &r, NULL));
    CHECK_STR(a.text.p, ANSWER);
    CHECK_STR(r.finish_reason, "stop");

    /* no [DONE], but a finish_reason and a clean end */
    CHECK_OK(chat("no-done:chat", &a, &r, NULL));
    CHECK_STR(a.text.p, ANSWER);

    /* [DONE] ends the answer even when the server holds the connection */
    double t0 = now_ms();
    CHECK_OK(chat("hang-after-done:chat", &a, &r, short_timeouts));
    CHECK_STR(a.text.p, ANSWER);
    CHECK(now_ms() - t0 < 2000);

    /* a plain completion although a stream was asked for */
    CHECK_OK(chat("not-stream:chat", &a, &r, NULL));
    CHECK_STR(a.text.p, ANSWER);
    CHECK(a.calls == 1 && r.completion_tokens == 9);

    /* max_tokens: the server counts chunks */
    http_cfg c;
    cfg(&c, "plain:max");
    buf_reset(&a.text);
    CHECK_OK(http_chat_stream(&c, NULL, "hello", 2, -1, on_delta, &a, &r));
    CHECK_STR(a.text.p, "You sa");
    CHECK_STR(r.finish_reason, "length");

    CHECK_OK(chat("fail-500-twice:chat", &a, &r, NULL));
    CHECK_STR(a.text.p, ANSWER);
    CHECK(attempts("fail-500-twice:chat") == 3);

    /* dropped before the first token: retried */
    CHECK_OK(chat("drop-before-first:chat", &a, &r, NULL));
    CHECK_STR(a.text.p, ANSWER);
    CHECK(attempts("drop-before-first:chat") == 2);

    /* dropped after three tokens: no retry, the message says where */
    CHECK_RC(chat("drop-mid-stream:chat", &a, &r, NULL), PLUMB_HTTP);
    CHECK_MSG("answer cut off after 9 bytes: connection dropped");
    CHECK_STR(a.text.p, "You said:");
    CHECK(r.bytes == 9);
    CHECK(attempts("drop-mid-stream:chat") == 1);

    CHECK_RC(chat("stream-error:chat", &a, &r, NULL), PLUMB_HTTP);
    CHECK_MSG("The model is overloaded");
    CHECK(attempts("stream-error:chat") == 1);

    t0 = now_ms();
    CHECK_RC(chat("slow-first-byte:chat", &a, &r, short_timeouts), PLUMB_TIMEOUT);
    CHECK(now_ms() - t0 < 2000);
    CHECK_MSG("no response within 300 ms");
    CHECK(a.calls == 0);

    t0 = now_ms();
    CHECK_RC(chat("slow-stream:chat", &a, &r, short_timeouts), PLUMB_TIMEOUT);
    CHECK(now_ms() - t0 < 2000);
    CHECK_MSG("answer cut off after 3 bytes: no data for 300 ms");
    CHECK(attempts("slow-stream:chat") == 1);

    CHECK_RC(chat("plain:nokey", &a, &r, no_key), PLUMB_HTTP);
    CHECK_MSG("HTTP 401: Incorrect API key");

    /* the callback stops the answer */
    a.stop_at = 2;
    CHECK_RC(chat("plain:stop", &a, &r, NULL), PLUMB_CANCELLED);
    CHECK_MSG("cancelled");
    CHECK(a.calls == 2);
    a.stop_at = 0;
    buf_free(&a.text);
}

/* ---------------------------------------------------------------- */

static void test_rerank(void) {
    const char *docs[] = {"alpha beta gamma", "nothing in common", "beta", "alpha alpha",
                          "gamma delta beta alpha"};
    const char *query = "Alpha beta";
    size_t n = sizeof docs / sizeof *docs;
    double scores[5], q[DIM], d[DIM];
    ref_embed(query, DIM, q);
    const char *shapes[] = {"plain:rerank", "tei-shape:rerank"};
    for (int s = 0; s < 2; s++) {
        http_cfg c;
        cfg(&c, shapes[s]);
        CHECK_OK(http_rerank(&c, query, docs, n, scores));
        for (size_t i = 0; i < n; i++) {
            ref_embed(docs[i], DIM, d);
            double want = 0;
            for (int j = 0; j < DIM; j++) want += q[j] * d[j];
            CHECK_NEAR(scores[i], want, 1e-9);
        }
    }
    http_cfg c;
    cfg(&c, "missing-score:rerank");
    CHECK_RC(http_rerank(&c, query, docs, n, scores), PLUMB_HTTP);
    CHECK_MSG("no score for document 4");
    CHECK(isnan(scores[0]));
    cfg(&c, "400-error:rerank");
    CHECK_RC(http_rerank(&c, query, docs, n, scores), PLUMB_HTTP);
    CHECK_MSG("/v1/rerank: HTTP 400: This model's maximum context length");
}

/* ---------------------------------------------------------------- */
/* Stage 2 over the service: plumb_search with reranker "http"         */
/* ---------------------------------------------------------------- */

#define RR_NDOC 12
#define RR_N 5

static const char *const rr_title[RR_NDOC] = {"Apple orchards", NULL, "Banana bread", NULL,
    "Fruit", NULL, "Apple banana", NULL, "Cider", NULL, "Pie", NULL};
static const char *const rr_text[RR_NDOC] = {
    "apple trees grow in orchards apple apple", "a banana and an apple in a bowl",
    "banana bread needs one apple too", "apple", "apple pie with banana custard and cream",
    "the apple of my eye", "apple banana apple banana smoothie", "green apple sour taste",
    "apple cider vinegar", "apple", "banana split with apple slices and nuts",
    "apple apple apple apple banana"};

/* The document as rerank_http.c sends it: title, blank line, text. */
static void rr_doc(int i, char *out, size_t cap) {
    snprintf(out, cap, "%s%s%s", rr_title[i] ? rr_title[i] : "", rr_title[i] ? "\n\n" : "",
             rr_text[i]);
}

/* The server's score for the document with this id ("d3") and query. */
static double rr_ref(const char *query, const char *doc_id) {
    double q[DIM], d[DIM], s = 0;
    char t[512];
    rr_doc(atoi(doc_id + 1), t, sizeof t);
    ref_embed(query, DIM, q);
    ref_embed(t, DIM, d);
    for (int j = 0; j < DIM; j++) s += q[j] * d[j];
    return s;
}

static plumb_hits *rr_search(plumb_db *db, const char *query, const char *kind, const char *url,
                             const char *model, int timeout_ms, int n, plumb_status want) {
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = RR_NDOC;
    sp.mode = PLUMB_MODE_LEXICAL;
    sp.rerank = n;
    sp.reranker = kind;
    sp.rerank_url = url;
    sp.rerank_model = model;
    sp.rerank_timeout_ms = timeout_ms;
    plumb_hits *h = NULL;
    CHECK_RC(plumb_search(db, query, &sp, &h), want);
    return h;
}

/* The hits are exactly the stage-1 hits (order, chunks and scores). */
static int same_as_stage1(const plumb_hits *h, const plumb_hits *s1) {
    if (!h || !s1 || h->n != s1->n) return 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->hit[i].chunk_id != s1->hit[i].chunk_id || h->hit[i].score != s1->hit[i].score ||
            !isnan(h->hit[i].score_rerank))
            return 0;
    return 1;
}

static void test_rerank_search(void) {
    char path[128], url[96];
    snprintf(path, sizeof path, "/tmp/plumb-test-rrhttp-%d.db", (int)getpid());
    unlink(path);
    unsetenv("PLUMB_RERANK_URL");
    unsetenv("PLUMB_RERANK_MODEL");
    setenv("PLUMB_RERANK_API_KEY", KEY, 1); /* the server wants it */
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    for (int i = 0; i < RR_NDOC; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        plumb_doc d = {.id = id, .title = rr_title[i], .text = rr_text[i]};
        CHECK_OK(plumb_add(db, &d, NULL));
    }
    const char *query = "apple banana";
    plumb_hits *s1 = rr_search(db, query, NULL, NULL, NULL, 0, 0, PLUMB_OK);
    CHECK(s1 && s1->n == RR_NDOC && s1->rerank_kind == NULL && s1->rerank_n == 0);
    if (!s1 || s1->n != RR_NDOC) { plumb_hits_free(s1); plumb_close(db); return; }

    /* (a) the top N in the order of the server's scores (ties: stage 1),
    ** (b) the rest in stage-1 order, below them */
    plumb_hits *h = rr_search(db, query, "http", base, "plain:stage", 0, RR_N,
                              PLUMB_OK);
    if (h && h->n == RR_NDOC) {
        CHECK_STR(h->rerank_kind, "http");
        CHECK(h->rerank_n == RR_N && h->rerank_fallback == 0 && h->rerank_error == NULL);
        int want[RR_N];
        double ws[RR_N];
        for (int i = 0; i < RR_N; i++) { want[i] = i; ws[i] = rr_ref(query, s1->hit[i].doc_id); }
        for (int i = 1; i < RR_N; i++) /* insertion sort: stable, so ties keep stage 1 */
            for (int j = i; j > 0 && ws[want[j]] > ws[want[j - 1]]; j--) {
                int t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
            }
        int moved = 0;
        for (int i = 0; i < RR_N; i++) {
            CHECK_STR(h->hit[i].doc_id, s1->hit[want[i]].doc_id);
            CHECK_NEAR(h->hit[i].score_rerank, ws[want[i]], 1e-9);
            CHECK(h->hit[i].score == h->hit[i].score_rerank);
            moved += want[i] != i;
        }
        CHECK(moved > 0); /* the data must make reranking visible */
        for (int i = RR_N; i < RR_NDOC; i++) {
            CHECK(h->hit[i].chunk_id == s1->hit[i].chunk_id);
            CHECK(isnan(h->hit[i].score_rerank));
            CHECK(h->hit[i].score < h->hit[i - 1].score);
        }
        CHECK(attempts("plain:stage") == 1);
    } else {
        CHECK(!"http rerank: wrong hit count");
    }
    plumb_hits_free(h);

    /* (c) a failing service: stage-1 order, flagged, the URL named */
    snprintf(url, sizeof url, "%s/rerank", base);
    const char *fail[] = {"fail-500-always:stage", "malformed-json:stage", "slow-first-byte:stage",
                          "400-error:stage"};
    for (int f = 0; f < 4; f++) {
        double t0 = now_ms();
        h = rr_search(db, query, "http", base, fail[f], f == 2 ? 300 : 0, RR_N,
                      PLUMB_OK);
        double ms = now_ms() - t0;
        CHECK(same_as_stage1(h, s1));
        CHECK(h && h->rerank_fallback == 1 && h->rerank_n == RR_N);
        CHECK(h && h->rerank_error && strstr(h->rerank_error, url));
        if (h && h->rerank_error && !strstr(h->rerank_error, url))
            fprintf(stderr, "  %s: %s\n", fail[f], h->rerank_error);
        if (f == 0) CHECK(attempts(fail[f]) == 3); /* RERANK_HTTP_RETRIES after the first */
        if (f == 0) CHECK(h && h->rerank_error && strstr(h->rerank_error, "HTTP 500"));
        if (f == 2) CHECK(ms < 2900); /* three attempts of 0.3 s and backoff, not 3 s each */
        if (f == 3) CHECK(attempts(fail[f]) == 1);
        plumb_hits_free(h);
    }
    /* nothing listening */
    h = rr_search(db, query, "http", "http://127.0.0.1:1/v1", "x", 300, RR_N, PLUMB_OK);
    CHECK(same_as_stage1(h, s1) && h->rerank_fallback == 1);
    CHECK(h && h->rerank_error && strstr(h->rerank_error, "127.0.0.1:1/v1/rerank"));
    plumb_hits_free(h);

    /* (d) misuse: no URL anywhere, an unknown kind */
    h = rr_search(db, query, "http", NULL, NULL, 0, RR_N, PLUMB_MISUSE);
    CHECK(h == NULL);
    CHECK_MSG("rerank_url");
    h = rr_search(db, query, "magic", NULL, NULL, 0, RR_N, PLUMB_MISUSE);
    CHECK_MSG("'magic'");
    /* ... but no URL is no matter when stage 2 is off */
    h = rr_search(db, query, "http", NULL, NULL, 0, 0, PLUMB_OK);
    CHECK(same_as_stage1(h, s1));
    plumb_hits_free(h);

    /* stored defaults, seen by a handle opened after; the environment
    ** overrides the stored URL (the service moved) */
    CHECK_OK(plumb_config_set(db, "rerank_kind", "http"));
    CHECK_OK(plumb_config_set(db, "rerank_url", base));
    CHECK_OK(plumb_config_set(db, "rerank_model", "plain:stored"));
    CHECK_OK(plumb_config_set(db, "rerank", "4"));
    plumb_close(db);
    db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK_STR(st.rerank_kind, "http");
    CHECK_STR(st.rerank_url, base);
    CHECK_STR(st.rerank_model, "plain:stored");
    CHECK(st.rerank == 4 && st.rerank_timeout_ms == 10000);
    h = rr_search(db, query, NULL, NULL, NULL, 0, -1, PLUMB_OK);
    CHECK(h && h->rerank_n == 4 && h->rerank_fallback == 0 && attempts("plain:stored") == 1);
    CHECK(h && h->rerank_kind && !strcmp(h->rerank_kind, "http"));
    plumb_hits_free(h);
    setenv("PLUMB_RERANK_URL", "http://127.0.0.1:1/v1", 1);
    h = rr_search(db, query, NULL, NULL, NULL, 300, -1, PLUMB_OK);
    CHECK(h && h->rerank_fallback == 1 && strstr(h->rerank_error, "127.0.0.1:1/"));
    plumb_hits_free(h);
    unsetenv("PLUMB_RERANK_URL");
    /* the per-query kind beats the stored one */
    h = rr_search(db, query, "features", NULL, NULL, 0, -1, PLUMB_OK);
    CHECK(h && h->rerank_kind && !strcmp(h->rerank_kind, "features") && !h->rerank_fallback);
    plumb_hits_free(h);
    plumb_hits_free(s1);
    plumb_close(db);
    unlink(path);
    char side[160];
    snprintf(side, sizeof side, "%s.bm25", path);
    unlink(side);
}

/* ---------------------------------------------------------------- */
/* Stage 2 by a chat model: plumb_search with reranker "llm"          */
/* ---------------------------------------------------------------- */

/* The "judge" server's grade (http_server.py judge()): 3 when the
** document as sent holds the query's first word, 1 when only its
** second, else 0. The words are lower case here. */
static double judge_ref(const char *w1, const char *w2, const char *doc_id) {
    char t[512];
    rr_doc(atoi(doc_id + 1), t, sizeof t);
    for (char *c = t; *c; c++) *c = (char)tolower((unsigned char)*c);
    return strstr(t, w1) ? 3 : strstr(t, w2) ? 1 : 0;
}

static void test_rerank_llm_parse(void) {
    static const struct { const char *s; int want; } t[] = {
        {"3", 3}, {"0", 0}, {" 2\n", 2}, {"Grade: 1.", 1}, {"2.5", 2}, {"03", 3},
        {"10", -1}, {"4", -1}, {"-1", -1}, {"", -1}, {"relevant", -1}, {"007", -1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = rerank_llm_parse(t[i].s, strlen(t[i].s));
        if (got != t[i].want) fprintf(stderr, "  parse \"%s\": %d, want %d\n", t[i].s, got, t[i].want);
        CHECK(got == t[i].want);
    }
    CHECK(rerank_llm_n(-1, 30) == 5 && rerank_llm_n(-1, 3) == 3 && rerank_llm_n(-1, 0) == 0);
    CHECK(rerank_llm_n(8, 30) == 8 && rerank_llm_n(100, 30) == 20 && rerank_llm_n(0, 30) == 0);
}

static void test_rerank_llm(void) {
    char path[128], url[96];
    snprintf(path, sizeof path, "/tmp/plumb-test-rrllm-%d.db", (int)getpid());
    unlink(path);
    unsetenv("PLUMB_RERANK_URL");
    unsetenv("PLUMB_RERANK_MODEL");
    /* the llm kind's own key wins over the rerank key (the server wants KEY) */
    setenv("PLUMB_RERANK_API_KEY", "sk-wrong", 1);
    setenv("PLUMB_LLM_API_KEY", KEY, 1);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    for (int i = 0; i < RR_NDOC; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        plumb_doc d = {.id = id, .title = rr_title[i], .text = rr_text[i]};
        CHECK_OK(plumb_add(db, &d, NULL));
    }
    /* "orchards" is rare, so stage 1 puts d0 (no banana: grade 1) first */
    const char *query = "banana orchards";
    plumb_hits *s1 = rr_search(db, query, NULL, NULL, NULL, 0, 0, PLUMB_OK);
    CHECK(s1 && s1->n > RR_N);
    if (!s1 || s1->n <= RR_N) { plumb_hits_free(s1); plumb_close(db); return; }

    /* (a) the top N by grade, ties in stage-1 order; the rest below them */
    plumb_hits *h = rr_search(db, query, "llm", base, "judge:a", 0, RR_N, PLUMB_OK);
    if (h && h->n == s1->n) {
        CHECK_STR(h->rerank_kind, "llm");
        CHECK(h->rerank_n == RR_N && h->rerank_fallback == 0 && h->rerank_error == NULL);
        int want[RR_N];
        double ws[RR_N];
        for (int i = 0; i < RR_N; i++) {
            want[i] = i;
            ws[i] = judge_ref("banana", "orchards", s1->hit[i].doc_id);
        }
        for (int i = 1; i < RR_N; i++) /* insertion sort: stable, so ties keep stage 1 */
            for (int j = i; j > 0 && ws[want[j]] > ws[want[j - 1]]; j--) {
                int t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
            }
        int moved = 0;
        for (int i = 0; i < RR_N; i++) {
            CHECK_STR(h->hit[i].doc_id, s1->hit[want[i]].doc_id);
            CHECK(h->hit[i].score_rerank == ws[want[i]]);
            CHECK(h->hit[i].score == h->hit[i].score_rerank);
            moved += want[i] != i;
        }
        CHECK(moved > 0); /* the data must make reranking visible */
        for (size_t i = RR_N; i < h->n; i++) {
            CHECK(h->hit[i].chunk_id == s1->hit[i].chunk_id);
            CHECK(isnan(h->hit[i].score_rerank));
            CHECK(h->hit[i].score < h->hit[i - 1].score);
        }
        CHECK(attempts("judge:a") == RR_N); /* one call per candidate */
    } else {
        CHECK(!"llm rerank: wrong hit count");
    }
    plumb_hits_free(h);

    /* (b) N: the search's, at most 20; without one, the stored 30 capped at 5 */
    h = rr_search(db, query, "llm", base, "judge:b", 0, 1000, PLUMB_OK);
    CHECK(h && h->rerank_n == (int)(s1->n < 20 ? s1->n : 20) && !h->rerank_fallback);
    plumb_hits_free(h);
    h = rr_search(db, query, "llm", base, "judge:c", 0, -1, PLUMB_OK);
    CHECK(h && h->rerank_n == 5 && attempts("judge:c") == 5);
    plumb_hits_free(h);

    /* (c) failures: stage-1 order, flagged, the candidate and URL named */
    snprintf(url, sizeof url, "%s/chat/completions", base);
    h = rr_search(db, query, "llm", base, "judge-text:c", 0, RR_N, PLUMB_OK);
    CHECK(same_as_stage1(h, s1));
    CHECK(h && h->rerank_fallback == 1 && h->rerank_n == RR_N && h->rerank_error);
    if (h && h->rerank_error) {
        CHECK(strstr(h->rerank_error, url) && strstr(h->rerank_error, "candidate 1 of 5") &&
              strstr(h->rerank_error, "no grade"));
        if (!strstr(h->rerank_error, "no grade")) fprintf(stderr, "  %s\n", h->rerank_error);
    }
    CHECK(attempts("judge-text:c") == 1); /* the first bad reply ends the stage */
    plumb_hits_free(h);
    h = rr_search(db, query, "llm", base, "fail-500-always:llm", 0, RR_N, PLUMB_OK);
    CHECK(same_as_stage1(h, s1));
    CHECK(h && h->rerank_fallback == 1 && h->rerank_error);
    if (h && h->rerank_error)
        CHECK(strstr(h->rerank_error, url) && strstr(h->rerank_error, "HTTP 500") &&
              strstr(h->rerank_error, "candidate 1 of 5"));
    CHECK(attempts("fail-500-always:llm") == 3); /* RERANK_HTTP_RETRIES after the first */
    plumb_hits_free(h);
    unsetenv("PLUMB_LLM_API_KEY"); /* now the wrong key: 401 */
    h = rr_search(db, query, "llm", base, "judge:d", 0, RR_N, PLUMB_OK);
    CHECK(same_as_stage1(h, s1) && h->rerank_fallback == 1);
    CHECK(h && h->rerank_error && strstr(h->rerank_error, "HTTP 401"));
    plumb_hits_free(h);

    /* (d) misuse: no URL anywhere */
    h = rr_search(db, query, "llm", NULL, NULL, 0, RR_N, PLUMB_MISUSE);
    CHECK(h == NULL);
    CHECK_MSG("'llm'");
    CHECK_MSG("rerank_url");

    /* (e) the stored kind, seen by a handle opened after */
    CHECK_OK(plumb_config_set(db, "rerank_kind", "llm"));
    CHECK_OK(plumb_config_set(db, "rerank_url", base));
    CHECK_OK(plumb_config_set(db, "rerank_model", "judge:stored"));
    plumb_close(db);
    db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    setenv("PLUMB_RERANK_API_KEY", KEY, 1);
    h = rr_search(db, query, NULL, NULL, NULL, 0, -1, PLUMB_OK);
    CHECK(h && h->rerank_kind && !strcmp(h->rerank_kind, "llm") && h->rerank_n == 5 &&
          !h->rerank_fallback && attempts("judge:stored") == 5);
    plumb_hits_free(h);
    plumb_hits_free(s1);
    plumb_close(db);
    unlink(path);
    char side[160];
    snprintf(side, sizeof side, "%s.bm25", path);
    unlink(side);
}

/* (e) plumb_config_set validation and plumb_config_get */
static void test_config(void) {
    char path[128], v[PLUMB_CONFIG_VALUE_MAX];
    snprintf(path, sizeof path, "/tmp/plumb-test-config-%d.db", (int)getpid());
    unlink(path);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    int is_set = -1;
    /* the built-in defaults are the ones the search uses (plumb_stats) */
    plumb_stats st;
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK_OK(plumb_config_get(db, "rerank", v, sizeof v, &is_set));
    CHECK(atoi(v) == st.rerank && is_set == 0);
    CHECK_OK(plumb_config_get(db, "rerank_kind", v, sizeof v, &is_set));
    CHECK_STR(v, st.rerank_kind);
    CHECK_OK(plumb_config_get(db, "rerank_timeout_ms", v, sizeof v, NULL));
    CHECK(atoi(v) == st.rerank_timeout_ms);
    CHECK_OK(plumb_config_get(db, "bm25_k1", v, sizeof v, &is_set));
    CHECK(strtod(v, NULL) == st.bm25_k1 && is_set == 1); /* written at creation */
    CHECK_OK(plumb_config_get(db, "fusion", v, sizeof v, &is_set));
    CHECK_STR(v, "minmax");
    for (size_t i = 0; plumb_config_key_at(i); i++) /* every listed key reads */
        CHECK_OK(plumb_config_get(db, plumb_config_key_at(i)->name, v, sizeof v, NULL));

    struct { const char *key, *val, *msg; } bad[] = {
        {"bm25_b", "2", "bm25_b = '2': expected a number from 0 to 1"},
        {"bm25_k1", "-1", "bm25_k1 = '-1'"},
        {"bm25_k1", "1x", "bm25_k1 = '1x'"},
        {"bm25_k1", "", "bm25_k1 = ''"},
        {"k_lex", "1.5", "k_lex = '1.5': expected an integer from 1 to 10000"},
        {"k_lex", "0", "k_lex = '0'"},
        {"rerank", "10001", "rerank = '10001'"},
        {"rerank_kind", "magic", "rerank_kind = 'magic': expected features, http or llm"},
        {"fusion", "sum", "fusion = 'sum': expected minmax, zscore or rrf"},
        {"rerank_url", "ftp://x", "rerank_url = 'ftp://x': expected an http:// or https:// URL"},
        {"rerank_url", "http://a b", "rerank_url = 'http://a b'"},
        {"rerank_timeout_ms", "0", "rerank_timeout_ms = '0'"},
        {"rerank_weights", "nonsense=1", "rerank_weights = 'nonsense=1'"},
        {"language", "french", "unknown key 'language'"},
        {"nope", "1", "unknown key 'nope' (settable: bm25_k1, bm25_b"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_RC(plumb_config_set(db, bad[i].key, bad[i].val), PLUMB_MISUSE);
        CHECK_MSG(bad[i].msg);
    }
    CHECK_RC(plumb_config_get(db, "nope", v, sizeof v, NULL), PLUMB_MISUSE);
    CHECK_RC(plumb_config_get(db, "rerank", v, 16, NULL), PLUMB_MISUSE);
    /* set, read back, unset */
    CHECK_OK(plumb_config_set(db, "fusion", "rrf"));
    CHECK_OK(plumb_config_get(db, "fusion", v, sizeof v, &is_set));
    CHECK_STR(v, "rrf");
    CHECK(is_set == 1);
    CHECK_OK(plumb_config_set(db, "alpha", "0.25"));
    CHECK_OK(plumb_config_set(db, "bm25_k1", "1.5"));
    CHECK_OK(plumb_config_set(db, "rerank_weights", "bm25=2"));
    CHECK_OK(plumb_config_set(db, "weight_title", "0"));
    CHECK_RC(plumb_config_set(db, "weight_body", "0"), PLUMB_MISUSE);
    CHECK_MSG("weight_title is 0 too");
    CHECK_OK(plumb_config_set(db, "weight_title", NULL));
    CHECK_OK(plumb_config_set(db, "fusion", NULL));
    CHECK_OK(plumb_config_get(db, "fusion", v, sizeof v, &is_set));
    CHECK_STR(v, "minmax");
    CHECK(is_set == 0);
    CHECK_OK(plumb_config_set(db, "bm25_k1", NULL)); /* written back, not deleted */
    CHECK_OK(plumb_config_get(db, "bm25_k1", v, sizeof v, &is_set));
    CHECK(strtod(v, NULL) == 0.9 && is_set == 1);
    plumb_close(db);
    /* a new handle sees the values (and the index still opens) */
    db = NULL;
    CHECK_OK(plumb_open(path, NULL, &db));
    CHECK_OK(plumb_stats_get(db, &st));
    CHECK(st.bm25_k1 == 0.9 && st.weight_title == 1);
    CHECK_OK(plumb_config_get(db, "alpha", v, sizeof v, NULL));
    CHECK(strtod(v, NULL) == 0.25);
    plumb_close(db);
    /* read-only: get works, set is refused */
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    op.readonly = 1;
    db = NULL;
    CHECK_OK(plumb_open(path, &op, &db));
    CHECK_OK(plumb_config_get(db, "alpha", v, sizeof v, NULL));
    CHECK_RC(plumb_config_set(db, "alpha", "0.5"), PLUMB_MISUSE);
    CHECK_MSG("read-only");
    plumb_close(db);
    unlink(path);
}

/* ---------------------------------------------------------------- */

typedef struct worker {
    char model[32];
    int ok;
} worker;

static void *embed_worker(void *arg) {
    worker *w = arg;
    http_cfg c;
    cfg(&c, w->model);
    c.batch = 3;
    c.concurrency = 2;
    float *out = NULL;
    int dim = 0;
    w->ok = http_embed(&c, texts, NTEXT, DIM, &out, &dim, NULL, NULL, NULL) == PLUMB_OK &&
            rows_match(texts, NTEXT, out, dim);
    free(out);
    return NULL;
}

static void test_threads(void) {
    worker w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        snprintf(w[i].model, sizeof w[i].model, "shuffled:thread%d", i);
        pthread_create(&th[i], NULL, embed_worker, &w[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].ok);
        CHECK(attempts(w[i].model) == 17);
    }
}

int main(void) {
    int st = server_start();
    if (st == 0) {
        printf("test_http: python3 not found, skipped\n");
        return 0;
    }
    if (st < 0) {
        fprintf(stderr, "test_http: cannot start tests/http_server.py\n");
        server_stop();
        return 1;
    }
    make_texts();
    test_embed_ok();
    test_embed_retries();
    test_embed_errors();
    test_cancel();
    test_chat();
    test_rerank();
    test_rerank_search();
    test_rerank_llm_parse();
    test_rerank_llm();
    test_config();
    test_threads();
    server_stop();
    return CHECK_DONE();
}
