/* fuzz_index.c -- opening a damaged index. A small valid index is built
** once; each input is a list of (offset, bytes) patches applied to a copy
** of its database file (and, when the first byte is odd, of its BM25 side
** file). Open, search, stats and check must return a status, never crash. */
#include "plumb_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *dbimg, *sideimg;
static size_t dbn, siden;
static char dir[64];

static unsigned char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l);
    if (b && fread(b, 1, (size_t)l, f) != (size_t)l) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)l;
    return b;
}

static void setup(void) {
    setenv("PLUMB_BM25_SIDE_MIN_CHUNKS", "0", 1); /* a side file even for a tiny index */
    /* TMPDIR=/dev/shm keeps the fsyncs of every run off a busy disk */
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%.32s/plumb-fuzz-index-%d", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    char cmd[256], p[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd)) abort();
    snprintf(p, sizeof p, "%s/t.db", dir);
    plumb_db *db;
    if (plumb_open(p, NULL, &db)) abort();
    static const char *texts[] = {"alpha beta gamma", "beta delta", "gamma epsilon alpha alpha",
                                  "zeta eta theta beta"};
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        plumb_doc d = {id, "title words", texts[i], "{\"k\":1}", "src"};
        if (plumb_add(db, &d, NULL)) abort();
    }
    if (plumb_index_paths(db, NULL, 0, NULL, NULL)) abort(); /* writes the side file */
    plumb_close(db);
    snprintf(cmd, sizeof cmd, "%s/t.db", dir);
    dbimg = slurp(cmd, &dbn);
    snprintf(cmd, sizeof cmd, "%s/t.db.bm25", dir);
    sideimg = slurp(cmd, &siden);
    if (!dbimg || !sideimg) abort();
}

static void put(const char *p, const unsigned char *img, size_t n, const uint8_t *d, size_t sz) {
    unsigned char *c = malloc(n);
    memcpy(c, img, n);
    for (size_t i = 0; i + 4 <= sz; i += 4) { /* 3 bytes of offset, 1 byte of value */
        size_t off = ((size_t)d[i] << 16 | (size_t)d[i + 1] << 8 | d[i + 2]) % n;
        c[off] = d[i + 3];
    }
    FILE *f = fopen(p, "wb");
    fwrite(c, 1, n, f);
    fclose(f);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dbimg) setup();
    if (size < 1 || size > 4096) return 0;
    char p[128], s[160], w[160];
    snprintf(p, sizeof p, "%s/x.db", dir);
    snprintf(s, sizeof s, "%s/x.db.bm25", dir);
    snprintf(w, sizeof w, "%s/x.db-wal", dir);
    unlink(w);
    int side = data[0] & 1;
    put(p, dbimg, dbn, side ? NULL : data + 1, side ? 0 : size - 1);
    put(s, sideimg, siden, side ? data + 1 : NULL, side ? size - 1 : 0);
    plumb_open_params op;
    plumb_open_params_init(&op);
    op.create = 0;
    plumb_db *db = NULL;
    if (plumb_open(p, &op, &db) == PLUMB_OK) {
        plumb_hits *h = NULL;
        if (plumb_search(db, "alpha beta", NULL, &h) == PLUMB_OK) plumb_hits_free(h);
        plumb_stats st;
        plumb_stats_get(db, &st);
        int64_t n = 0;
        plumb_check(db, NULL, NULL, &n);
        plumb_close(db);
    }
    return 0;
}
