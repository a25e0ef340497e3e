/* fuzz_jsonl.c -- one JSONL line through utf8 repair and the BEIR record
** reader, and the metadata validator. */
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
    buf_free(&b);
    return 0;
}
