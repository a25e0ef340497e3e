/* fuzz_tok.c -- the tokenizer on arbitrary bytes: offsets stay inside the
** input, ranges are non-empty, terms are short and valid UTF-8. */
#include "plumb_impl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ctx { int n; } ctx;

static int emit(void *arg, const char *t, int n, int s, int e) {
    ctx *c = arg;
    if (n <= 0 || n > TOK_MAX_BYTES * 4 || s < 0 || e <= s || e > c->n) abort();
    if (utf8_check(t, (size_t)n) != (size_t)n) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tok_ctx *t[3];
    static const char *lang[3] = {"english", "porter", "none"};
    if (size > 1 << 20) return 0;
    for (int i = 0; i < 3; i++) {
        if (!t[i] && !(t[i] = tok_new(lang[i], i != 2))) abort();
        ctx c = {(int)size};
        if (tok_run(t[i], (const char *)data, (int)size, emit, &c) < 0) abort();
    }
    return 0;
}
