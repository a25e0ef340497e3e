/*
** err.c -- status texts and the thread-local error detail.
**
** Every failing path calls err_set() once with the most specific context
** it has (file, line, byte offset, SQL step); plumb_errmsg() hands it to
** the caller. The buffer is per thread, so concurrent searches never
** overwrite each other's messages.
*/
#include "plumb_impl.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char errmsg[1024];

const char *plumb_libversion(void) { return PLUMB_VERSION; }

const char *plumb_status_str(plumb_status rc) {
    switch (rc) {
    case PLUMB_OK: return "ok";
    case PLUMB_ERROR: return "error";
    case PLUMB_NOMEM: return "out of memory";
    case PLUMB_IO: return "I/O error";
    case PLUMB_CORRUPT: return "corrupt or invalid data";
    case PLUMB_MISUSE: return "API misuse";
    case PLUMB_FORMAT: return "not a plumb index or unsupported format version";
    case PLUMB_HTTP: return "HTTP error";
    case PLUMB_TIMEOUT: return "timed out";
    case PLUMB_NOTFOUND: return "not found";
    case PLUMB_BUSY: return "index is locked by another writer";
    case PLUMB_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

const char *plumb_errmsg(void) { return errmsg; }

plumb_status err_set(plumb_status rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

void err_clear(void) { errmsg[0] = 0; }
