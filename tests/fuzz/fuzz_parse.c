/* fuzz_parse.c -- HTML and Markdown stripping on arbitrary bytes: never
** crash, output valid UTF-8 when the input is, and the snippet builder
** on the result. */
#include "plumb_impl.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    const char *in = (const char *)data;
    int valid = utf8_check(in, size) == size;
    buf t = {0}, x = {0};
    if (parse_html(in, size, &t, &x) != 0) abort();
    if (valid && (utf8_check(x.p ? x.p : "", x.len) != x.len || utf8_check(t.p ? t.p : "", t.len) != t.len))
        abort();
    buf_free(&t);
    buf_free(&x);
    if (parse_markdown(in, size, &t, &x) != 0) abort();
    if (valid && (utf8_check(x.p ? x.p : "", x.len) != x.len || utf8_check(t.p ? t.p : "", t.len) != t.len))
        abort();
    buf_free(&t);
    buf_free(&x);
    return 0;
}
