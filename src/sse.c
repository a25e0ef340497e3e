/*
** sse.c -- an incremental Server-Sent Events parser (the WHATWG "event
** stream" format), for streamed chat completions.
**
** Bytes are fed as the network delivers them, cut anywhere: inside a
** field name, between the CR and LF of a line end, inside a UTF-8
** sequence. Only the current line and the pending event are buffered, and
** their total is bounded by sse.max, so a stream that never sends a blank
** line fails with PLUMB_CORRUPT instead of growing without limit. Comment
** lines (keep-alive pings) are skipped as they arrive and never buffered.
**
** Workload: an LLM answer is a few hundred small events of 100-300 bytes
** each; the line scan is a byte loop and appends go to reused buffers, so
** the steady state allocates nothing.
*/
#include "plumb_impl.h"

#include <string.h>

void sse_init(sse *p, size_t max, sse_event_fn fn, void *arg) {
    memset(p, 0, sizeof *p);
    p->max = max;
    p->fn = fn;
    p->arg = arg;
    p->first = 1;
}

void sse_reset(sse *p) {
    buf_reset(&p->line);
    buf_reset(&p->data);
    buf_reset(&p->event);
    buf_reset(&p->id);
    p->ndata = 0;
    p->cr = p->comment = 0;
    p->first = 1;
    p->rc = PLUMB_OK;
}

void sse_free(sse *p) {
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->event);
    buf_free(&p->id);
}

static plumb_status fail(sse *p, plumb_status rc) {
    p->rc = rc;
    if (rc == PLUMB_NOMEM) err_set(rc, "out of memory buffering an SSE event");
    else if (rc == PLUMB_CORRUPT) err_set(rc, "SSE event larger than %zu bytes", p->max);
    return rc;
}

static plumb_status dispatch(sse *p) {
    plumb_status rc = PLUMB_OK;
    /* the spec dispatches only events that had a data line; a name is a C
    ** string here, so one cut empty by a NUL byte is the default too */
    if (p->ndata) rc = p->fn(p->arg, p->event.len && p->event.p[0] ? p->event.p : "message",
                             p->data.p ? p->data.p : "", p->data.len);
    buf_reset(&p->data);
    buf_reset(&p->event);
    p->ndata = 0;
    return rc;
}

/* One complete line (its end removed) is in p->line. */
static plumb_status end_line(sse *p) {
    const char *l = p->line.p ? p->line.p : "";
    size_t n = p->line.len;
    if (p->first) {
        p->first = 0;
        if (n >= 3 && !memcmp(l, "\xEF\xBB\xBF", 3)) { l += 3; n -= 3; }
    }
    plumb_status rc = PLUMB_OK;
    if (n == 0) {
        rc = dispatch(p);
    } else if (l[0] != ':') {
        const char *colon = memchr(l, ':', n);
        size_t fn = colon ? (size_t)(colon - l) : n;
        const char *v = colon ? colon + 1 : l + n;
        size_t vn = (size_t)(l + n - v);
        if (vn && *v == ' ') { v++; vn--; }
        if (fn == 4 && !memcmp(l, "data", 4)) {
            if (p->ndata++) buf_putc(&p->data, '\n');
            buf_append(&p->data, v, vn);
            if (p->data.oom) rc = PLUMB_NOMEM;
        } else if (fn == 5 && !memcmp(l, "event", 5)) {
            buf_reset(&p->event);
            buf_append(&p->event, v, vn);
            if (p->event.oom) rc = PLUMB_NOMEM;
        } else if (fn == 2 && !memcmp(l, "id", 2) && !memchr(v, 0, vn)) {
            buf_reset(&p->id);
            buf_append(&p->id, v, vn);
            if (p->id.oom) rc = PLUMB_NOMEM;
        }
        /* "retry" and unknown fields are ignored, as the spec says */
    }
    buf_reset(&p->line);
    if (rc == PLUMB_NOMEM) return fail(p, rc);
    return rc;
}

plumb_status sse_feed(sse *p, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && p->rc == PLUMB_OK) {
        if (p->cr) {
            p->cr = 0;
            if (s[i] == '\n') { i++; continue; } /* the LF of a CRLF */
        }
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r') j++;
        if (j > i && p->line.len == 0 && !p->comment && s[i] == ':') p->comment = 1;
        if (!p->comment && j > i) {
            size_t pending = p->line.len + p->data.len + p->event.len;
            if (j - i > p->max || pending > p->max - (j - i)) return fail(p, PLUMB_CORRUPT);
            buf_append(&p->line, s + i, j - i);
            if (p->line.oom) return fail(p, PLUMB_NOMEM);
        }
        if (j == n) break; /* the line goes on in the next slice */
        p->cr = s[j] == '\r';
        i = j + 1;
        if (p->comment) {
            p->comment = 0;
            p->first = 0;
            continue;
        }
        plumb_status rc = end_line(p);
        if (rc != PLUMB_OK) p->rc = rc;
    }
    return p->rc;
}
