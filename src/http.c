/*
** http.c -- OpenAI-compatible embedding, chat and rerank services over
** HTTP; the only file that includes curl.
**
** HOW IT WORKS
** Every call runs one loop over a curl multi handle on the calling
** thread. The work is split into requests (one per embedding batch; one
** for a chat answer or a rerank), and up to `concurrency` slots each carry
** one request through its attempts: start, wait for curl, then judge the
** outcome -- done, retry after a delay, or fail the whole call. The loop
** wakes at least every TICK_MS to look at the cancel flag, at retry
** timers, and, for streams, at the first-byte and idle limits, which curl
** cannot express (its own timeout covers the whole transfer, wrong for an
** answer that streams for minutes). Connections stay in the multi handle's
** cache, so batches reuse them. Each operation plugs in a few hooks:
** `next` loads the next request into a free slot, `done` judges a 2xx
** answer, `reset` clears per-attempt state, `sink` takes streamed bytes.
**
** Streams: body bytes of a 2xx text/event-stream answer go through the SSE
** parser as they arrive, and each content delta straight to the caller.
** Once a delta was delivered a retry would repeat text the caller already
** has, so from then on a failure is final and says where it cut off.
**
** LIMITATIONS
** One base URL per call (no fallback hosts). Embeddings are requested as
** float arrays (no base64). Response bodies over MAX_BODY and stream
** events over MAX_EVENT are refused rather than buffered.
*/
#include "plumb_impl.h"

#include <curl/curl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BODY ((size_t)256 << 20) /* response bytes kept: a batch of embeddings is a few MB */
#define MAX_EVENT ((size_t)8 << 20)  /* bytes of one SSE event */
#define BACKOFF_CAP_MS 20000.0
#define RETRY_AFTER_CAP_MS 60000.0
#define TICK_MS 50        /* longest sleep of the loop: the cancel latency */
#define QUOTE_MAX 300     /* bytes of a server's message quoted in an error */

enum { OUT_OK, OUT_RETRY, OUT_FAIL };   /* how an attempt ended */
enum { SINK_NONE, SINK_BODY, SINK_SSE }; /* where an attempt's body bytes go */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

void http_cfg_init(http_cfg *c) {
    memset(c, 0, sizeof *c);
    c->connect_timeout_ms = 5000;
    c->timeout_ms = 60000;
    c->idle_timeout_ms = 30000;
    c->max_retries = 4;
    c->backoff_ms = 500;
    c->batch = 64;
    c->concurrency = 4;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Copy s[0..n) into out[cap] for an error message: control characters
** become spaces, runs of spaces one, cut at a UTF-8 boundary with "..."
** after QUOTE_MAX bytes. */
static void quote(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0, lim = cap - 4 < QUOTE_MAX ? cap - 4 : QUOTE_MAX;
    int cut = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
        if (ch == ' ' && (o == 0 || out[o - 1] == ' ')) continue;
        if (o == lim) { cut = 1; break; }
        out[o++] = ch;
    }
    if (cut) { /* drop a character the limit split */
        size_t lead = o;
        while (lead > 0 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80) lead--;
        unsigned char c0 = lead > 0 ? (unsigned char)out[lead - 1] : 0;
        size_t want = c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : c0 >= 0xC0 ? 2 : 1;
        if (lead > 0 && o - (lead - 1) < want) o = lead - 1;
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    if (cut) { memcpy(out + o, "...", 3); o += 3; }
    out[o] = 0;
}

/* The server's own words in an error body: OpenAI {"error": {"message"}},
** {"error": "..."}, vLLM {"message"}, FastAPI {"detail"}, or the text. */
static void server_message(const char *body, size_t n, char *out, size_t cap) {
    json_val *root = n ? json_parse(body, NULL) : NULL;
    json_val *e = json_get(root, "error");
    const char *msg = json_str(e);
    if (!msg) msg = json_str(json_get(e, "message"));
    if (!msg) msg = json_str(json_get(root, "message"));
    if (!msg) msg = json_str(json_get(root, "detail"));
    if (msg) quote(msg, strlen(msg), out, cap);
    else quote(body, n, out, cap);
    json_free(root);
}

/* Parse a whole response (or event); NULL with why set when it is not one
** JSON value followed by nothing but white space. */
static json_val *parse_json(const char *s, size_t n, const char *what, char *why, size_t cap) {
    const char *end = NULL;
    json_val *v = json_parse(s, &end);
    size_t off = end ? (size_t)(end - s) : 0;
    if (v) {
        while (off < n && (s[off] == ' ' || s[off] == '\t' || s[off] == '\n' || s[off] == '\r'))
            off++;
        if (off == n) return v;
        json_free(v);
    }
    if (off > n) off = n;
    char near[64];
    quote(s + off, n - off < 24 ? n - off : 24, near, sizeof near);
    if (off < n)
        snprintf(why, cap, "malformed JSON at byte %zu of %s (near \"%s\")", off, what, near);
    else
        snprintf(why, cap, "malformed JSON at byte %zu of %s (%s)", off, what,
                 n ? "it ends early" : "empty");
    return NULL;
}

/* ---------------------------------------------------------------- */
/* The request loop                                                   */
/* ---------------------------------------------------------------- */

typedef struct call call;

/* A slot: one request and its attempts. */
typedef struct req {
    call *k;
    CURL *e;              /* the attempt in flight; NULL between attempts */
    buf body;             /* request JSON */
    buf resp;             /* the attempt's response body (not for SSE) */
    int busy;             /* holds a request that has not succeeded yet */
    int attempts;         /* attempts started for this request */
    int sink;             /* SINK_*: decided at the first body byte */
    int got_body;         /* a body byte arrived in this attempt */
    int ended;            /* the sink saw the end of the answer and stopped the transfer */
    double t_start;       /* ms: this attempt began */
    double t_last;        /* ms: the last body byte arrived */
    double wake;          /* ms: the next attempt may start */
    size_t first, count;  /* embeddings: the batch is inputs [first, first+count) */
    plumb_status rc;      /* with why: a failure judged inside a callback */
    char why[512];        /* what went wrong, without the "POST url: " prefix */
    char errbuf[CURL_ERROR_SIZE];
} req;

struct call {
    const http_cfg *c;
    char *url;
    struct curl_slist *hdr;
    CURLM *m;
    int stream;           /* streamed answer: first-byte and idle limits apply */
    size_t delivered;     /* stream content bytes handed to the caller */
    uint64_t rng;         /* jitter */
    double t0;            /* ms: the call began */
    void *op;             /* the operation's state */
    int (*next)(call *k, req *q);                  /* 1 loaded, 0 no work left, -1 OOM */
    int (*done)(call *k, req *q);                  /* judge a 2xx: OUT_*, why on failure */
    void (*reset)(call *k, req *q);                /* before each attempt; may be NULL */
    /* streamed bytes of a 2xx text/event-stream answer (NULL: none); sets
    ** *end when the answer is complete, so a server that keeps the
    ** connection open afterwards does not hold the call */
    plumb_status (*sink)(call *k, const char *p, size_t n, int *end);
};

static int cancelled(const call *k) { return k->c->cancel && *k->c->cancel; }

static double jitter01(call *k) {
    k->rng ^= k->rng << 13;
    k->rng ^= k->rng >> 7;
    k->rng ^= k->rng << 17;
    return (double)(k->rng >> 11) / 9007199254740992.0;
}

static plumb_status call_init(call *k, const http_cfg *c, const char *path, int stream) {
    memset(k, 0, sizeof *k);
    k->c = c;
    k->stream = stream;
    k->t0 = now_ms();
    k->rng = (uint64_t)(k->t0 * 1e3) ^ (uint64_t)(uintptr_t)k ^ 0x9E3779B97F4A7C15ULL;
    if (!k->rng) k->rng = 1;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return err_set(PLUMB_ERROR, "curl_global_init: %s", curl_easy_strerror(global_rc));

    buf b = {0};
    size_t n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/') n--;
    buf_append(&b, c->base_url, n);
    buf_puts(&b, path);
    k->url = buf_detach(&b);
    if (!k->url) return err_set(PLUMB_NOMEM, "out of memory");

    const char *fixed[] = {"Content-Type: application/json",
                           stream ? "Accept: text/event-stream, application/json"
                                  : "Accept: application/json",
                           "Expect:" /* no 100-continue round trip for large bodies */};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        struct curl_slist *h = curl_slist_append(k->hdr, fixed[i]);
        if (!h) return err_set(PLUMB_NOMEM, "out of memory");
        k->hdr = h;
    }
    if (c->api_key && c->api_key[0]) {
        buf_printf(&b, "Authorization: Bearer %s", c->api_key);
        struct curl_slist *h = b.oom ? NULL : curl_slist_append(k->hdr, b.p);
        buf_free(&b);
        if (!h) return err_set(PLUMB_NOMEM, "out of memory");
        k->hdr = h;
    }
    k->m = curl_multi_init();
    if (!k->m) return err_set(PLUMB_NOMEM, "curl_multi_init failed");
    return PLUMB_OK;
}

static void call_free(call *k) {
    if (k->m) curl_multi_cleanup(k->m);
    curl_slist_free_all(k->hdr);
    free(k->url);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg) {
    req *q = arg;
    call *k = q->k;
    size_t n = size * nmemb;
    q->got_body = 1;
    q->t_last = now_ms();
    if (q->sink == SINK_NONE) {
        long status = 0;
        char *ct = NULL;
        curl_easy_getinfo(q->e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(q->e, CURLINFO_CONTENT_TYPE, &ct);
        while (ct && *ct == ' ') ct++;
        q->sink = k->sink && status / 100 == 2 && ct && !strncasecmp(ct, "text/event-stream", 17)
                      ? SINK_SSE
                      : SINK_BODY;
    }
    if (q->sink == SINK_SSE) {
        int end = 0;
        plumb_status rc = k->sink(k, p, n, &end);
        if (rc == PLUMB_OK && end) q->ended = 1;
        if (rc == PLUMB_OK) return end ? 0 : n; /* 0: curl stops the transfer */
        q->rc = rc;
        snprintf(q->why, sizeof q->why, "%s", plumb_errmsg());
        return 0; /* curl stops the transfer with CURLE_WRITE_ERROR */
    }
    if (n > MAX_BODY - q->resp.len) {
        q->rc = PLUMB_HTTP;
        snprintf(q->why, sizeof q->why, "response larger than %zu bytes", MAX_BODY);
        return 0;
    }
    buf_append(&q->resp, p, n);
    if (q->resp.oom) {
        q->rc = PLUMB_NOMEM;
        snprintf(q->why, sizeof q->why, "out of memory buffering the response");
        return 0;
    }
    return n;
}

static plumb_status start(call *k, req *q) {
    const http_cfg *c = k->c;
    CURL *e = curl_easy_init();
    if (!e) return err_set(PLUMB_NOMEM, "POST %s: curl_easy_init failed", k->url);
    q->e = e;
    q->attempts++;
    q->sink = SINK_NONE;
    q->got_body = q->ended = 0;
    q->rc = PLUMB_OK;
    q->why[0] = q->errbuf[0] = 0;
    q->t_start = q->t_last = now_ms();
    buf_reset(&q->resp);
    if (k->reset) k->reset(k, q);

    CURLcode r = CURLE_OK;
#define SET(opt, val) do { if (r == CURLE_OK) r = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, k->url);
    SET(CURLOPT_HTTPHEADER, k->hdr);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, q->body.p ? q->body.p : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body.len);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, q);
    SET(CURLOPT_ERRORBUFFER, q->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 0L);
    /* a stream's limits are enforced by the loop, per byte */
    SET(CURLOPT_TIMEOUT_MS, !k->stream && c->timeout_ms > 0 ? c->timeout_ms : 0L);
    SET(CURLOPT_USERAGENT, "plumb/" PLUMB_VERSION);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    if (!k->stream) SET(CURLOPT_ACCEPT_ENCODING, ""); /* compressed JSON, when offered */
#undef SET
    if (r != CURLE_OK)
        return err_set(PLUMB_ERROR, "POST %s: curl: %s", k->url, curl_easy_strerror(r));
    CURLMcode mr = curl_multi_add_handle(k->m, e);
    if (mr != CURLM_OK)
        return err_set(PLUMB_ERROR, "POST %s: curl: %s", k->url, curl_multi_strerror(mr));
    return PLUMB_OK;
}

/* Judge a curl failure. */
static int curl_outcome(CURLcode res, const char *errbuf, plumb_status *rc, char *why,
                        size_t cap) {
    const char *d = errbuf[0] ? errbuf : curl_easy_strerror(res);
    *rc = PLUMB_HTTP;
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        *rc = PLUMB_TIMEOUT;
        snprintf(why, cap, "timed out (%s)", d);
        return OUT_RETRY;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(why, cap, "cannot connect (%s)", d);
        return OUT_RETRY;
    case CURLE_GOT_NOTHING:
        snprintf(why, cap, "connection dropped before any response (%s)", d);
        return OUT_RETRY;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        snprintf(why, cap, "connection dropped (%s)", d);
        return OUT_RETRY;
    default:
        snprintf(why, cap, "curl: %s", d);
        return OUT_FAIL;
    }
}

static int status_retryable(long status) {
    return status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505);
}

/* The attempt in q ended (curl's result res, or the loop's own time limit
** when timeout_why is set). Returns PLUMB_OK when the call goes on. */
static plumb_status finish(call *k, req *q, CURLcode res, const char *timeout_why) {
    long status = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(q->e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(q->e, CURLINFO_RETRY_AFTER, &retry_after);
    curl_multi_remove_handle(k->m, q->e);
    curl_easy_cleanup(q->e);
    q->e = NULL;

    int out;
    plumb_status rc = PLUMB_HTTP;
    if (q->rc != PLUMB_OK) {
        out = OUT_FAIL;
        rc = q->rc;
    } else if (timeout_why) {
        out = OUT_RETRY;
        rc = PLUMB_TIMEOUT;
        snprintf(q->why, sizeof q->why, "%s", timeout_why);
    } else if (res != CURLE_OK && !q->ended) {
        out = curl_outcome(res, q->errbuf, &rc, q->why, sizeof q->why);
    } else if (status / 100 == 2) {
        q->rc = PLUMB_HTTP;
        out = k->done(k, q);
        rc = q->rc;
        q->rc = PLUMB_OK;
    } else {
        char msg[QUOTE_MAX + 8];
        server_message(q->resp.p ? q->resp.p : "", q->resp.len, msg, sizeof msg);
        snprintf(q->why, sizeof q->why, "HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
        out = status_retryable(status) ? OUT_RETRY : OUT_FAIL;
    }
    buf_reset(&q->resp);
    if (out == OUT_OK) {
        q->busy = 0;
        return PLUMB_OK;
    }
    if (out == OUT_RETRY && k->delivered == 0 && q->attempts <= k->c->max_retries) {
        double delay;
        if (retry_after > 0) {
            delay = (double)retry_after * 1000.0;
            if (delay > RETRY_AFTER_CAP_MS) delay = RETRY_AFTER_CAP_MS;
        } else {
            /* half fixed, half random: parallel requests spread out */
            delay = k->c->backoff_ms > 0 ? (double)k->c->backoff_ms : 0;
            for (int i = 1; i < q->attempts && delay < BACKOFF_CAP_MS; i++) delay *= 2;
            if (delay > BACKOFF_CAP_MS) delay = BACKOFF_CAP_MS;
            delay = delay / 2 + jitter01(k) * delay / 2;
        }
        q->wake = now_ms() + delay;
        return PLUMB_OK;
    }
    char tries[32] = "";
    if (q->attempts > 1) snprintf(tries, sizeof tries, " (%d attempts)", q->attempts);
    if (out == OUT_RETRY && k->delivered > 0)
        return err_set(rc, "POST %s: answer cut off after %zu bytes: %s", k->url, k->delivered,
                       q->why);
    return err_set(rc, "POST %s: %s%s", k->url, q->why, tries);
}

/* Carry every request through its attempts on nslots slots. */
static plumb_status run(call *k, req *slots, int nslots) {
    plumb_status rc = PLUMB_OK;
    int more = 1;
    for (int i = 0; i < nslots; i++) slots[i].k = k;
    for (;;) {
        if (cancelled(k)) {
            rc = err_set(PLUMB_CANCELLED, "POST %s: cancelled", k->url);
            goto done;
        }
        double now = now_ms(), wake = now + TICK_MS;
        int active = 0;
        for (int i = 0; i < nslots; i++) {
            req *q = &slots[i];
            if (!q->busy && more) {
                int r = k->next(k, q);
                if (r < 0) {
                    rc = err_set(PLUMB_NOMEM, "out of memory building a request");
                    goto done;
                }
                if (r == 0) more = 0;
                else {
                    q->busy = 1;
                    q->attempts = 0;
                    q->wake = now;
                }
            }
            if (!q->busy) continue;
            active++;
            if (!q->e && q->wake <= now && (rc = start(k, q)) != PLUMB_OK) goto done;
            if (!q->e && q->wake < wake) wake = q->wake;
        }
        if (!active) break;

        int running = 0;
        CURLMcode mr = curl_multi_perform(k->m, &running);
        if (mr != CURLM_OK) {
            rc = err_set(PLUMB_ERROR, "POST %s: curl: %s", k->url, curl_multi_strerror(mr));
            goto done;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(k->m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            for (int i = 0; i < nslots; i++) {
                if (slots[i].e != msg->easy_handle) continue;
                if ((rc = finish(k, &slots[i], msg->data.result, NULL)) != PLUMB_OK) goto done;
                break;
            }
        }
        if (k->stream) {
            now = now_ms();
            for (int i = 0; i < nslots; i++) {
                req *q = &slots[i];
                if (!q->e) continue;
                long lim = q->got_body ? k->c->idle_timeout_ms : k->c->timeout_ms;
                double since = q->got_body ? q->t_last : q->t_start;
                if (lim <= 0 || now - since <= (double)lim) continue;
                char why[96];
                snprintf(why, sizeof why,
                         q->got_body ? "no data for %ld ms" : "no response within %ld ms", lim);
                if ((rc = finish(k, q, CURLE_OK, why)) != PLUMB_OK) goto done;
            }
        }
        double wait = wake - now_ms();
        if (wait > TICK_MS) wait = TICK_MS;
        if (wait > 0) curl_multi_poll(k->m, NULL, 0, (int)wait + 1, NULL);
    }
done:
    for (int i = 0; i < nslots; i++) {
        req *q = &slots[i];
        if (q->e) {
            curl_multi_remove_handle(k->m, q->e);
            curl_easy_cleanup(q->e);
            q->e = NULL;
        }
    }
    return rc;
}

static void slots_free(req *slots, int n) {
    for (int i = 0; slots && i < n; i++) {
        buf_free(&slots[i].body);
        buf_free(&slots[i].resp);
    }
    free(slots);
}

static plumb_status check_cfg(const http_cfg *c) {
    if (!c || !c->base_url || !c->base_url[0])
        return err_set(PLUMB_MISUSE, "http: no base URL configured");
    if (c->max_retries < 0 || c->batch < 1 || c->concurrency < 1)
        return err_set(PLUMB_MISUSE, "http: max_retries must be >= 0, batch and concurrency >= 1");
    for (const char *p = c->api_key; p && *p; p++)
        if ((unsigned char)*p < 0x20) /* would split the header */
            return err_set(PLUMB_MISUSE, "http: the API key holds a control character");
    return PLUMB_OK;
}

/* ---------------------------------------------------------------- */
/* Embeddings                                                         */
/* ---------------------------------------------------------------- */

typedef struct embed_op {
    const http_cfg *c;
    const char *const *texts;
    size_t n, next;       /* inputs; the first not yet in a request */
    size_t done;          /* inputs embedded */
    int dim, expect_dim;  /* dim 0 until known */
    float *out;           /* n * dim, allocated once dim is known */
    char model[128];      /* as the server reported it */
    void (*progress)(void *, size_t, size_t);
    void *arg;
} embed_op;

/* A request body up to its first own field: '{' and the model, if any,
** followed by ','. */
static void body_open(buf *b, const http_cfg *c) {
    buf_putc(b, '{');
    if (c->model && c->model[0]) {
        buf_puts(b, "\"model\":");
        json_buf_str(b, c->model, strlen(c->model));
        buf_putc(b, ',');
    }
}

static int embed_next(call *k, req *q) {
    embed_op *x = k->op;
    if (x->next >= x->n) return 0;
    size_t b = (size_t)x->c->batch;
    q->first = x->next;
    q->count = x->n - x->next < b ? x->n - x->next : b;
    x->next += q->count;
    buf_reset(&q->body);
    body_open(&q->body, x->c);
    buf_puts(&q->body, "\"input\":[");
    for (size_t i = 0; i < q->count; i++) {
        const char *t = x->texts[q->first + i];
        if (i) buf_putc(&q->body, ',');
        json_buf_str(&q->body, t, strlen(t));
    }
    buf_puts(&q->body, "]}");
    return q->body.oom ? -1 : 1;
}

static int set_dim(embed_op *x, req *q, int d) {
    if (x->expect_dim > 0 && d != x->expect_dim) {
        snprintf(q->why, sizeof q->why,
                 "the server returned %d-dimensional embeddings, expected %d (model %s)", d,
                 x->expect_dim, x->model[0] ? x->model : x->c->model ? x->c->model : "?");
        return OUT_FAIL;
    }
    if (x->dim) {
        snprintf(q->why, sizeof q->why,
                 "embeddings changed dimension from %d to %d (batch at input %zu)", x->dim, d,
                 q->first);
        return OUT_FAIL;
    }
    if (d <= 0) {
        snprintf(q->why, sizeof q->why, "the server returned empty embeddings");
        return OUT_FAIL;
    }
    if (x->n > SIZE_MAX / sizeof(float) / (size_t)d ||
        !(x->out = malloc(x->n * (size_t)d * sizeof(float)))) {
        q->rc = PLUMB_NOMEM;
        snprintf(q->why, sizeof q->why, "out of memory for %zu embeddings of %d dimensions",
                 x->n, d);
        return OUT_FAIL;
    }
    x->dim = d;
    return OUT_OK;
}

static int embed_batch(embed_op *x, req *q, json_val *root) {
    json_val *data = json_get(root, "data");
    if (!json_is_arr(data)) {
        char msg[QUOTE_MAX + 8];
        server_message(q->resp.p, q->resp.len, msg, sizeof msg);
        snprintf(q->why, sizeof q->why, "the response has no \"data\" array: %s", msg);
        return OUT_FAIL;
    }
    const char *model = json_str(json_get(root, "model"));
    if (model && model[0] && !x->model[0]) snprintf(x->model, sizeof x->model, "%s", model);
    size_t cnt = (size_t)json_len(data);
    if (cnt != q->count) {
        snprintf(q->why, sizeof q->why, "the server returned %zu embeddings for %zu inputs", cnt,
                 q->count);
        return OUT_FAIL;
    }
    unsigned char seen[1024]; /* batch <= 1024 */
    unsigned char *mark = q->count <= sizeof seen ? seen : calloc(q->count, 1);
    if (!mark) {
        q->rc = PLUMB_NOMEM;
        snprintf(q->why, sizeof q->why, "out of memory");
        return OUT_FAIL;
    }
    memset(mark, 0, q->count);
    int out = OUT_OK;
    size_t i = 0;
    for (json_val *v = json_first(data); v && out == OUT_OK; v = json_next(v), i++) {
        json_val *ix = json_get(v, "index");
        double at = ix ? json_num(ix) : (double)i;
        if (ix && (!json_is_num(ix) || at < 0 || at >= (double)q->count || at != floor(at))) {
            snprintf(q->why, sizeof q->why, "data[%zu].index is not an input position 0..%zu", i,
                     q->count - 1);
            out = OUT_FAIL;
            break;
        }
        size_t row = (size_t)at;
        if (mark[row]++) {
            snprintf(q->why, sizeof q->why, "data[%zu].index %zu appears twice", i, row);
            out = OUT_FAIL;
            break;
        }
        json_val *emb = json_get(v, "embedding");
        if (!json_is_arr(emb)) {
            snprintf(q->why, sizeof q->why, "data[%zu].embedding is not an array of numbers%s", i,
                     json_is_str(emb) ? " (base64 is not supported)" : "");
            out = OUT_FAIL;
            break;
        }
        int d = json_len(emb);
        if (x->dim == 0 || d != x->dim) {
            out = set_dim(x, q, d);
            if (out != OUT_OK) break;
        }
        float *dst = x->out + (q->first + row) * (size_t)x->dim;
        int j = 0;
        for (json_val *e = json_first(emb); e; e = json_next(e), j++) {
            double f = json_num(e);
            if (!json_is_num(e) || !(fabs(f) <= FLT_MAX)) {
                snprintf(q->why, sizeof q->why, "data[%zu].embedding[%d] is not a finite number",
                         i, j);
                out = OUT_FAIL;
                break;
            }
            dst[j] = (float)f;
        }
    }
    if (mark != seen) free(mark);
    return out;
}

static int embed_done(call *k, req *q) {
    embed_op *x = k->op;
    json_val *root = parse_json(q->resp.p ? q->resp.p : "", q->resp.len, "the response", q->why,
                                sizeof q->why);
    if (!root) return OUT_FAIL;
    int out = embed_batch(x, q, root);
    json_free(root);
    if (out == OUT_OK) {
        x->done += q->count;
        if (x->progress) x->progress(x->arg, x->done, x->n);
    }
    return out;
}

plumb_status http_embed(const http_cfg *c, const char *const *texts, size_t n, int expect_dim,
                        float **out, int *dim, char model_out[128],
                        void (*progress)(void *arg, size_t done, size_t total), void *arg) {
    if (out) *out = NULL;
    if (dim) *dim = 0;
    plumb_status rc = check_cfg(c);
    if (rc != PLUMB_OK) return rc;
    if (!out || !dim || (n && !texts))
        return err_set(PLUMB_MISUSE, "http_embed: NULL texts, out or dim");
    for (size_t i = 0; i < n; i++)
        if (!texts[i]) return err_set(PLUMB_MISUSE, "http_embed: texts[%zu] is NULL", i);
    if (model_out) snprintf(model_out, 128, "%s", c->model ? c->model : "");
    if (n == 0) {
        *dim = expect_dim > 0 ? expect_dim : 0;
        return PLUMB_OK;
    }

    embed_op x = {.c = c, .texts = texts, .n = n, .expect_dim = expect_dim,
                  .progress = progress, .arg = arg};
    call k;
    req *slots = NULL;
    size_t nbatch = (n - 1) / (size_t)c->batch + 1;
    int nslots = nbatch < (size_t)c->concurrency ? (int)nbatch : c->concurrency;
    if ((rc = call_init(&k, c, "/embeddings", 0)) != PLUMB_OK) goto done;
    k.op = &x;
    k.next = embed_next;
    k.done = embed_done;
    if (!(slots = calloc((size_t)nslots, sizeof *slots))) {
        rc = err_set(PLUMB_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = run(&k, slots, nslots)) != PLUMB_OK) goto done;
    *out = x.out;
    x.out = NULL;
    *dim = x.dim;
    if (model_out && x.model[0]) snprintf(model_out, 128, "%s", x.model);
done:
    slots_free(slots, nslots);
    call_free(&k);
    free(x.out);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Streamed chat completions                                          */
/* ---------------------------------------------------------------- */

typedef struct chat_op {
    call *k;
    const http_cfg *c;
    const char *system, *user;
    int max_tokens;
    double temperature;
    int (*on_delta)(void *, const char *, size_t);
    void *arg;
    sse parser;
    int loaded;           /* the one request was handed out */
    int finished;         /* "[DONE]" arrived */
    http_chat_result r;
} chat_op;

static int chat_next(call *k, req *q) {
    chat_op *x = k->op;
    if (x->loaded) return 0;
    x->loaded = 1;
    buf *b = &q->body;
    body_open(b, x->c);
    buf_puts(b, "\"messages\":[");
    if (x->system && x->system[0]) {
        buf_puts(b, "{\"role\":\"system\",\"content\":");
        json_buf_str(b, x->system, strlen(x->system));
        buf_puts(b, "},");
    }
    buf_puts(b, "{\"role\":\"user\",\"content\":");
    json_buf_str(b, x->user, strlen(x->user));
    buf_puts(b, "}],\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    if (x->max_tokens > 0) buf_printf(b, ",\"max_tokens\":%d", x->max_tokens);
    if (x->temperature >= 0) {
        buf_puts(b, ",\"temperature\":");
        json_buf_num(b, x->temperature);
    }
    buf_putc(b, '}');
    return b->oom ? -1 : 1;
}

static void chat_reset(call *k, req *q) {
    (void)q;
    chat_op *x = k->op;
    sse_reset(&x->parser);
    x->finished = 0;
    x->r.model[0] = x->r.finish_reason[0] = 0;
    x->r.prompt_tokens = x->r.completion_tokens = -1;
}

static plumb_status deliver(chat_op *x, const char *s, size_t n) {
    if (!n) return PLUMB_OK;
    if (x->k->delivered == 0) x->r.ttft_ms = now_ms() - x->k->t0;
    x->k->delivered += n;
    if (x->on_delta(x->arg, s, n)) return err_set(PLUMB_CANCELLED, "cancelled");
    return PLUMB_OK;
}

/* The fields of a chunk or of a whole completion. */
static plumb_status chat_fields(chat_op *x, json_val *root, const char *part) {
    json_val *e = json_get(root, "error");
    if (e) {
        const char *msg = json_str(e);
        if (!msg) msg = json_str(json_get(e, "message"));
        char q[QUOTE_MAX + 8];
        quote(msg ? msg : "(no message)", strlen(msg ? msg : "(no message)"), q, sizeof q);
        return err_set(PLUMB_HTTP, "the server reported an error: %s", q);
    }
    const char *model = json_str(json_get(root, "model"));
    if (model && model[0]) snprintf(x->r.model, sizeof x->r.model, "%s", model);
    json_val *usage = json_get(root, "usage");
    if (json_is_num(json_get(usage, "prompt_tokens")))
        x->r.prompt_tokens = (int64_t)json_num(json_get(usage, "prompt_tokens"));
    if (json_is_num(json_get(usage, "completion_tokens")))
        x->r.completion_tokens = (int64_t)json_num(json_get(usage, "completion_tokens"));
    json_val *c0 = json_first(json_get(root, "choices"));
    const char *fr = json_str(json_get(c0, "finish_reason"));
    if (fr && fr[0]) snprintf(x->r.finish_reason, sizeof x->r.finish_reason, "%s", fr);
    json_val *content = json_get(json_get(c0, part), "content");
    const char *s = json_str(content);
    return s ? deliver(x, s, strlen(s)) : PLUMB_OK;
}

static plumb_status chat_event(void *arg, const char *event, const char *data, size_t n) {
    chat_op *x = arg;
    if (x->finished) return PLUMB_OK;
    if (n == 6 && !memcmp(data, "[DONE]", 6)) {
        x->finished = 1;
        return PLUMB_OK;
    }
    char why[256];
    json_val *root = parse_json(data, n, "a stream event", why, sizeof why);
    if (!root) return err_set(PLUMB_HTTP, "%s", why);
    plumb_status rc;
    if (!strcmp(event, "error") && !json_get(root, "error")) {
        char q[QUOTE_MAX + 8];
        quote(data, n, q, sizeof q);
        rc = err_set(PLUMB_HTTP, "the server reported an error: %s", q);
    } else {
        rc = chat_fields(x, root, "delta");
    }
    json_free(root);
    return rc;
}

static plumb_status chat_sink(call *k, const char *p, size_t n, int *end) {
    chat_op *x = k->op;
    plumb_status rc = sse_feed(&x->parser, p, n);
    *end = x->finished;
    return rc;
}

static int chat_done(call *k, req *q) {
    chat_op *x = k->op;
    if (q->sink == SINK_SSE) {
        if (x->finished || x->r.finish_reason[0]) return OUT_OK;
        snprintf(q->why, sizeof q->why, "connection dropped: the stream ended before [DONE]");
        return OUT_RETRY;
    }
    if (q->sink == SINK_NONE) {
        snprintf(q->why, sizeof q->why, "connection dropped: empty response");
        return OUT_RETRY;
    }
    /* a plain completion: the server ignored "stream" */
    json_val *root = parse_json(q->resp.p ? q->resp.p : "", q->resp.len, "the response", q->why,
                                sizeof q->why);
    if (!root) return OUT_FAIL;
    plumb_status rc = chat_fields(x, root, "message");
    json_free(root);
    if (rc == PLUMB_OK) return OUT_OK;
    q->rc = rc;
    snprintf(q->why, sizeof q->why, "%s", plumb_errmsg());
    return OUT_FAIL;
}

plumb_status http_chat_stream(const http_cfg *c, const char *system, const char *user,
                              int max_tokens, double temperature,
                              int (*on_delta)(void *arg, const char *s, size_t n), void *arg,
                              http_chat_result *res) {
    if (res) {
        memset(res, 0, sizeof *res);
        res->prompt_tokens = res->completion_tokens = -1;
    }
    plumb_status rc = check_cfg(c);
    if (rc != PLUMB_OK) return rc;
    if (!user || !on_delta) return err_set(PLUMB_MISUSE, "http_chat_stream: NULL user or on_delta");

    call k;
    chat_op x = {.k = &k, .c = c, .system = system, .user = user, .max_tokens = max_tokens,
                 .temperature = temperature, .on_delta = on_delta, .arg = arg};
    x.r.prompt_tokens = x.r.completion_tokens = -1;
    sse_init(&x.parser, MAX_EVENT, chat_event, &x);
    req slot;
    memset(&slot, 0, sizeof slot);
    if ((rc = call_init(&k, c, "/chat/completions", 1)) == PLUMB_OK) {
        k.op = &x;
        k.next = chat_next;
        k.done = chat_done;
        k.reset = chat_reset;
        k.sink = chat_sink;
        rc = run(&k, &slot, 1);
    }
    x.r.total_ms = now_ms() - k.t0;
    x.r.bytes = k.delivered;
    if (res) *res = x.r;
    buf_free(&slot.body);
    buf_free(&slot.resp);
    sse_free(&x.parser);
    call_free(&k);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Reranking                                                          */
/* ---------------------------------------------------------------- */

typedef struct rerank_op {
    const http_cfg *c;
    const char *query;
    const char *const *docs;
    size_t n;
    double *scores;
    int loaded;
} rerank_op;

static int rerank_next(call *k, req *q) {
    rerank_op *x = k->op;
    if (x->loaded) return 0;
    x->loaded = 1;
    buf *b = &q->body;
    body_open(b, x->c);
    buf_puts(b, "\"query\":");
    json_buf_str(b, x->query, strlen(x->query));
    buf_puts(b, ",\"documents\":[");
    for (size_t i = 0; i < x->n; i++) {
        if (i) buf_putc(b, ',');
        json_buf_str(b, x->docs[i], strlen(x->docs[i]));
    }
    buf_printf(b, "],\"top_n\":%zu}", x->n);
    return b->oom ? -1 : 1;
}

static int rerank_done(call *k, req *q) {
    rerank_op *x = k->op;
    json_val *root = parse_json(q->resp.p ? q->resp.p : "", q->resp.len, "the response", q->why,
                                sizeof q->why);
    if (!root) return OUT_FAIL;
    json_val *list = json_is_arr(root) ? root : json_get(root, "results");
    int out = OUT_OK;
    if (!json_is_arr(list)) {
        char msg[QUOTE_MAX + 8];
        server_message(q->resp.p, q->resp.len, msg, sizeof msg);
        snprintf(q->why, sizeof q->why, "the response has no \"results\" array: %s", msg);
        out = OUT_FAIL;
    }
    for (size_t i = 0; i < x->n; i++) x->scores[i] = NAN;
    size_t i = 0;
    for (json_val *v = json_first(list); v && out == OUT_OK; v = json_next(v), i++) {
        json_val *ix = json_get(v, "index");
        json_val *s = json_get(v, "relevance_score");
        if (!s) s = json_get(v, "score");
        double at = json_num(ix);
        if (!json_is_num(ix) || at < 0 || at >= (double)x->n || at != floor(at)) {
            snprintf(q->why, sizeof q->why, "result %zu: \"index\" is not a document position", i);
            out = OUT_FAIL;
        } else if (!json_is_num(s) || !isfinite(json_num(s))) {
            snprintf(q->why, sizeof q->why,
                     "result %zu: no numeric \"relevance_score\" or \"score\"", i);
            out = OUT_FAIL;
        } else if (!isnan(x->scores[(size_t)at])) {
            snprintf(q->why, sizeof q->why, "result %zu: document %zu scored twice", i, (size_t)at);
            out = OUT_FAIL;
        } else {
            x->scores[(size_t)at] = json_num(s);
        }
    }
    for (i = 0; i < x->n && out == OUT_OK; i++) {
        if (!isnan(x->scores[i])) continue;
        snprintf(q->why, sizeof q->why, "the response has no score for document %zu", i);
        out = OUT_FAIL;
    }
    json_free(root);
    return out;
}

plumb_status http_rerank(const http_cfg *c, const char *query, const char *const *docs, size_t n,
                         double *scores) {
    plumb_status rc = check_cfg(c);
    if (rc != PLUMB_OK) return rc;
    if (!query || (n && (!docs || !scores)))
        return err_set(PLUMB_MISUSE, "http_rerank: NULL query, docs or scores");
    for (size_t i = 0; i < n; i++)
        if (!docs[i]) return err_set(PLUMB_MISUSE, "http_rerank: docs[%zu] is NULL", i);
    if (n == 0) return PLUMB_OK;
    rerank_op x = {.c = c, .query = query, .docs = docs, .n = n, .scores = scores};
    call k;
    req slot;
    memset(&slot, 0, sizeof slot);
    if ((rc = call_init(&k, c, "/rerank", 0)) == PLUMB_OK) {
        k.op = &x;
        k.next = rerank_next;
        k.done = rerank_done;
        rc = run(&k, &slot, 1);
    }
    if (rc != PLUMB_OK)
        for (size_t i = 0; i < n; i++) scores[i] = NAN;
    buf_free(&slot.body);
    buf_free(&slot.resp);
    call_free(&k);
    return rc;
}
