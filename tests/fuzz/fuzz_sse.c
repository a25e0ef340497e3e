/* fuzz_sse.c -- the SSE parser on arbitrary bytes. The first byte picks a
** slice length and the size bound; the rest is parsed twice, in one feed
** and in slices, which must give the same events and the same status.
** Every event's data is NUL-terminated at its length, and the current
** line plus the pending event never hold more than the bound. */
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct events {
    buf log;    /* "len:event:" data NUL, per event */
    size_t max;
} events;

static plumb_status on_event(void *arg, const char *event, const char *d, size_t n) {
    events *e = arg;
    if (n > e->max || d[n] != 0 || !event[0]) abort();
    buf_printf(&e->log, "%zu:%s:", n, event);
    buf_append(&e->log, d, n);
    buf_putc(&e->log, 0);
    if (e->log.oom) abort();
    return PLUMB_OK;
}

static plumb_status parse(const char *s, size_t n, size_t step, events *e) {
    sse p;
    sse_init(&p, e->max, on_event, e);
    plumb_status rc = PLUMB_OK;
    for (size_t i = 0; i < n && rc == PLUMB_OK; i += step) {
        rc = sse_feed(&p, s + i, n - i < step ? n - i : step);
        if (p.line.len + p.data.len + p.event.len > e->max) abort();
    }
    sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 1 << 16) return 0;
    size_t step = 1 + data[0] % 13;
    events a = {.max = 16 + (size_t)(data[0] >> 4) * 48}, b = {.max = a.max};
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    plumb_status ra = parse(s, n, n ? n : 1, &a);
    plumb_status rb = parse(s, n, step, &b);
    if (ra != rb || ra == PLUMB_NOMEM) abort();
    if (a.log.len != b.log.len || (a.log.len && memcmp(a.log.p, b.log.p, a.log.len))) abort();
    buf_free(&a.log);
    buf_free(&b.log);
    return 0;
}
