/*
** test_fault.c -- allocation failure, injected into every allocation of
** plumb's own code in turn (the Nth malloc/calloc/realloc/strdup fails,
** for N = 1, 2, ... until the operation completes without reaching N).
** Each operation must then return PLUMB_OK or PLUMB_NOMEM -- never crash,
** never leak (ASan/LSan in the sanitizer build) -- and leave the index as
** it was or as it should be: plumb_check passes and searches give the
** same answers as without faults.
**
** The executable is linked with -Wl,--wrap=malloc,... so only calls from
** objects linked into it (the plumb library's) are counted; SQLite, cJSON
** and libstemmer allocate normally.
*/
#include "check.h"

#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static long fail_at = 0; /* 0: never */
static long calls = 0;
static int fired = 0;

static int should_fail(void) {
    if (!fail_at) return 0;
    if (++calls == fail_at) { fired = 1; return 1; }
    return 0;
}
void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { return should_fail() ? NULL : __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }

static void arm(long n) { fail_at = n; calls = 0; fired = 0; }
static void disarm(void) { fail_at = 0; }

static char dir[256];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void rm_index(const char *p) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm' '%s.bm25'", p, p, p, p);
    if (system(cmd) != 0) CHECK(0);
}

static int whole(plumb_db *db) {
    int64_t n = 0;
    plumb_status rc = plumb_check(db, NULL, NULL, &n);
    if (rc) fprintf(stderr, "plumb_check: %s\n", plumb_errmsg());
    return rc == PLUMB_OK;
}

static const char *texts[] = {
    "Axolotls regrow limbs, hearts and parts of their brains.",
    "The mitochondria is the powerhouse of the cell; cells need energy.",
    "Tardigrades survive vacuum, radiation and decades without water.",
    "Octopuses taste with their arms and edit their own RNA.",
};

static void digest(plumb_db *db, const char *q, char *out, size_t n) {
    plumb_hits *h = NULL;
    out[0] = 0;
    if (plumb_search(db, q, NULL, &h) != PLUMB_OK) { snprintf(out, n, "error"); return; }
    for (size_t i = 0; i < h->n; i++) {
        char one[128];
        snprintf(one, sizeof one, "%s:%.9g:%s|", h->hit[i].doc_id, h->hit[i].score,
                 h->hit[i].snippet ? h->hit[i].snippet : "");
        strncat(out, one, n - strlen(out) - 1);
    }
    plumb_hits_free(h);
}

/* open (create) */
static void fault_open(void) {
    char p[512];
    path_of(p, sizeof p, "open.db");
    int done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        rm_index(p);
        plumb_db *db = NULL;
        arm(n);
        plumb_status rc = plumb_open(p, NULL, &db);
        disarm();
        if (rc != PLUMB_OK && rc != PLUMB_NOMEM) fprintf(stderr, "fault at %ld: %s: %s\n", n, plumb_status_str(rc), plumb_errmsg());
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOMEM);
        if (rc == PLUMB_OK) {
            CHECK(db != NULL && whole(db));
            done = !fired;
        } else {
            CHECK(db == NULL);
        }
        plumb_close(db);
    }
    CHECK(done);
}

/* add, delete and search on an existing index */
static void fault_writes_and_search(void) {
    char p[512], want[4096], got[4096];
    path_of(p, sizeof p, "ops.db");
    rm_index(p);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, NULL, &db));
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        plumb_doc d = {id, "Animals", texts[i], "{\"n\":1}", "/x"};
        CHECK_OK(plumb_add(db, &d, NULL));
    }
    digest(db, "cells survive water", want, sizeof want);
    plumb_close(db);

    /* search on a fresh handle: the first search builds the BM25 index */
    int done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        CHECK_OK(plumb_open(p, NULL, &db));
        plumb_hits *h = NULL;
        arm(n);
        plumb_status rc = plumb_search(db, "cells survive water", NULL, &h);
        disarm();
        if (rc != PLUMB_OK && rc != PLUMB_NOMEM) fprintf(stderr, "fault at %ld: %s: %s\n", n, plumb_status_str(rc), plumb_errmsg());
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOMEM);
        if (rc == PLUMB_OK) done = !fired;
        else CHECK(h == NULL);
        plumb_hits_free(h);
        digest(db, "cells survive water", got, sizeof got); /* recovers after the fault */
        CHECK_STR(got, want);
        plumb_close(db);
    }
    CHECK(done);

    /* add: either the document is there whole, or not at all */
    done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        CHECK_OK(plumb_open(p, NULL, &db));
        plumb_doc d = {"oct", "Octopus", texts[3], NULL, NULL};
        arm(n);
        plumb_status rc = plumb_add(db, &d, NULL);
        disarm();
        if (rc != PLUMB_OK && rc != PLUMB_NOMEM) fprintf(stderr, "fault at %ld: %s: %s\n", n, plumb_status_str(rc), plumb_errmsg());
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOMEM);
        CHECK(whole(db));
        plumb_hits *h = NULL;
        CHECK_OK(plumb_search(db, "octopuses rna", NULL, &h));
        if (h) CHECK(h->n == (rc == PLUMB_OK ? 1u : 0u));
        plumb_hits_free(h);
        if (rc == PLUMB_OK) {
            done = !fired;
            CHECK_OK(plumb_delete(db, "oct"));
        }
        plumb_close(db);
    }
    CHECK(done);

    /* delete */
    done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        CHECK_OK(plumb_open(p, NULL, &db));
        arm(n);
        plumb_status rc = plumb_delete(db, "d0");
        disarm();
        if (rc != PLUMB_OK && rc != PLUMB_NOMEM) fprintf(stderr, "fault at %ld: %s: %s\n", n, plumb_status_str(rc), plumb_errmsg());
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOMEM);
        CHECK(whole(db));
        if (rc == PLUMB_OK) {
            done = !fired;
            plumb_doc d = {"d0", "Animals", texts[0], "{\"n\":1}", "/x"};
            CHECK_OK(plumb_add(db, &d, NULL));
        }
        digest(db, "cells survive water", got, sizeof got);
        CHECK_STR(got, want);
        plumb_close(db);
    }
    CHECK(done);
    rm_index(p);
}

/* index a small directory: files, JSONL, HTML, Markdown */
static void fault_index_paths(void) {
    char p[512], docs[512], cmd[4096];
    path_of(p, sizeof p, "ingest.db");
    path_of(docs, sizeof docs, "docs");
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/sub' && printf 'Axolotls regrow limbs.\\n\\nAnd hearts.' > '%s/a.txt' && "
             "printf '# Cells\\n\\nMitochondria *power* cells.' > '%s/b.md' && "
             "printf '<title>T</title><p>Tardigrades &amp; water</p>' > '%s/sub/c.html' && "
             "printf '{\"_id\":\"j1\",\"title\":\"Oct\",\"text\":\"Octopus RNA\",\"metadata\":{\"k\":1}}\\n"
             "bad line\\n' > '%s/sub/d.jsonl'",
             docs, docs, docs, docs, docs);
    CHECK(system(cmd) == 0);
    int done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        rm_index(p);
        plumb_db *db = NULL;
        CHECK_OK(plumb_open(p, NULL, &db));
        const char *paths[1] = {docs};
        plumb_index_stats st;
        arm(n);
        plumb_status rc = plumb_index_paths(db, paths, 1, NULL, &st);
        disarm();
        if (rc != PLUMB_OK && rc != PLUMB_NOMEM) fprintf(stderr, "fault at %ld: %s: %s\n", n, plumb_status_str(rc), plumb_errmsg());
        CHECK(rc == PLUMB_OK || rc == PLUMB_NOMEM);
        CHECK(whole(db));
        /* a re-run without faults completes the job */
        CHECK_OK(plumb_index_paths(db, paths, 1, NULL, &st));
        plumb_stats s;
        CHECK_OK(plumb_stats_get(db, &s));
        CHECK(s.documents == 4);
        if (rc == PLUMB_OK) done = !fired;
        plumb_close(db);
    }
    CHECK(done);
    rm_index(p);
}

/* pack hits (merge, near-duplicate, trim) into a budget: with the
** estimate, and with cl100k_base when the shared data has it (loaded
** before the faults; its counting allocates scratch under them) */
static void fault_pack(void) {
    plumb_hit h[4];
    memset(h, 0, sizeof h);
    const char *t0 = "Axolotls regrow limbs. They are salamanders. Blastema cells rebuild bone.";
    const char *t1 = "They are salamanders. Blastema cells rebuild bone. They live in Mexico.";
    h[0].doc_id = "ax"; h[0].title = "Axolotls"; h[0].text = t0; h[0].score = 4;
    h[1].doc_id = "fr"; h[1].text = "Frogs do not regrow limbs as adults. Tadpoles can."; h[1].score = 3;
    h[2].doc_id = "ax"; h[2].chunk_seq = 1; h[2].text = t1; h[2].score = 2;
    h[3].doc_id = "fr2"; h[3].text = "Frogs do not regrow limbs as adults. Tadpoles can!"; h[3].score = 1;
    plumb_tokenizer *tok = NULL;
    const char *shared = getenv("PLUMB_SHARED_DATA");
    char tp[1024];
    snprintf(tp, sizeof tp, "%s/tokenizers/cl100k_base.tiktoken", shared ? shared : "../shared/data");
    if (access(tp, R_OK) == 0) CHECK_OK(plumb_tokenizer_load(tp, &tok));
    /* budgets that merge, trim, find a duplicate (see the fates checked) */
    static const int budgets[4] = {140, 155, 125, 155};
    for (int pass = 0; pass < (tok ? 4 : 2); pass++) {
        plumb_pack_params pp;
        plumb_pack_params_init(&pp);
        pp.tokenizer = pass >= 2 ? tok : NULL;
        pp.min_passage_tokens = 4;
        pp.budget = budgets[pass];
        plumb_packed *ref = NULL;
        CHECK_OK(plumb_pack("Do axolotls regrow limbs?", h, 4, &pp, &ref));
        if (!ref) continue;
        CHECK(pass % 2 ? ref->trimmed + ref->duplicates >= 1 : ref->merged + ref->trimmed >= 1);
        int done = 0;
        for (long n = 1; n < 100000 && !done; n++) {
            plumb_packed *pk = NULL;
            arm(n);
            plumb_status rc = plumb_pack("Do axolotls regrow limbs?", h, 4, &pp, &pk);
            disarm();
            CHECK(rc == PLUMB_OK || rc == PLUMB_NOMEM);
            CHECK((rc == PLUMB_OK) == (pk != NULL));
            if (pk) {
                CHECK_STR(pk->user, ref->user);
                CHECK(pk->tokens == ref->tokens);
                done = !fired;
                plumb_packed_free(pk);
            }
        }
        CHECK(done);
        plumb_packed_free(ref);
    }
    plumb_tokenizer_free(tok);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/plumb-test-fault-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    fault_open();
    fault_writes_and_search();
    fault_index_paths();
    fault_pack();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!check_failures && system(cmd) != 0) return 1;
    return CHECK_DONE();
}
