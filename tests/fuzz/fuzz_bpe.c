/* fuzz_bpe.c -- the BPE tokenizer (src/bpe.c) on arbitrary bytes, with and
** without special tokens: count and encode succeed and agree on the number
** of tokens, every id is a token the tokenizer knows, and for valid UTF-8
** the ids' bytes concatenate back to the input (cl100k_base does not
** normalise). The tokenizer is loaded once from
** $PLUMB_SHARED_DATA/tokenizers (default ../shared/data, from the repository
** root); without the file every input is accepted and ignored, so the
** regression replay passes on machines without the shared data. */
#include "plumb_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static plumb_tokenizer *load(void) {
    const char *shared = getenv("PLUMB_SHARED_DATA");
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizers/cl100k_base.tiktoken", shared ? shared : "../shared/data");
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fclose(f);
    plumb_tokenizer *t = NULL;
    if (plumb_tokenizer_load(p, &t) != PLUMB_OK) abort(); /* present but unreadable */
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static plumb_tokenizer *tok;
    static int tried;
    if (!tried) {
        tried = 1;
        tok = load();
        if (!tok) fprintf(stderr, "fuzz_bpe: cl100k_base.tiktoken not found; inputs ignored\n");
    }
    if (!tok || size > 1 << 20) return 0;
    const char *text = (const char *)data;
    int valid = utf8_check(text, size) == size;
    char *back = malloc(size + 1);
    if (!back) abort();
    for (int special = 0; special < 2; special++) {
        size_t n = 0, m = 0;
        uint32_t *ids = NULL;
        if (plumb_tokenizer_count(tok, text, size, special, &n) != PLUMB_OK) abort();
        if (plumb_tokenizer_encode(tok, text, size, special, &ids, &m) != PLUMB_OK) abort();
        if (n != m || (m == 0) != (ids == NULL) || (size > 0) != (m > 0)) abort();
        size_t at = 0;
        for (size_t i = 0; i < m; i++) {
            size_t len = 0;
            const char *b = plumb_tokenizer_token_bytes(tok, ids[i], &len);
            if (!b || len == 0 || len > size - at) abort();
            memcpy(back + at, b, len);
            at += len;
        }
        if (valid && (at != size || memcmp(back, text, size) != 0)) abort();
        plumb_tokenizer_ids_free(ids);
    }
    free(back);
    return 0;
}
