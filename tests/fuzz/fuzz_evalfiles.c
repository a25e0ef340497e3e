/* fuzz_evalfiles.c -- qrels, run and queries files with arbitrary content:
** the loaders report bad lines and never crash. */
#include "plumb_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *arg, plumb_msg_level lv, const char *m) { (void)arg; (void)lv; (void)m; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/plumb-fuzz-eval-%d", (int)getpid());
    if (size > 1 << 20) return 0;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    plumb_qrels *q = NULL;
    plumb_run *r = NULL;
    plumb_queries *qs = NULL;
    plumb_load_stats st;
    plumb_qrels_load(path, quiet, NULL, &q, &st);
    plumb_run_load(path, quiet, NULL, &r, &st);
    plumb_queries_load(path, quiet, NULL, &qs, &st);
    plumb_qrels_free(q);
    plumb_run_free(r);
    plumb_queries_free(qs);
    return 0;
}
