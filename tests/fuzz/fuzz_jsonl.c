/* fuzz_jsonl.c -- one JSONL line through utf8 repair and the BEIR record
** reader (with its \u0000 escape removal), the metadata validator, and
** UTF-16 decoding. */
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    buf b = {0};
    size_t first;
    utf8_repair((const char *)data, size, &b, &first);
    if (b.oom) abort();
    const char *line = b.p ? b.p : "";
    if (utf8_check(line, b.len) != b.len || memchr(line, 0, b.len)) abort();
    json_rec r;
    json_rec_status st = json_rec_parse(line, &r);
    if (st == JSON_REC_OK && r.id && utf8_check(r.id, strlen(r.id)) != strlen(r.id)) abort();
    json_rec_free(&r);
    size_t off;
    (void)json_is_object(line, &off);
    /* the same bytes as UTF-16 (a text file with a byte order mark): valid
    ** UTF-8 without NUL comes out, whatever goes in */
    for (int be = 0; be < 2; be++) {
        buf_reset(&b);
        utf16_to_utf8((const char *)data, size, be, &b, &first);
        if (b.oom || utf8_check(b.p ? b.p : "", b.len) != b.len || (b.len && memchr(b.p, 0, b.len)))
            abort();
    }
    buf_free(&b);
    return 0;
}
