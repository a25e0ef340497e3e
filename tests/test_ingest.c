/*
** test_ingest.c -- plumb_index_paths on real files: formats, incremental
** re-index, prune, bad input that is reported and survived, symlink loops.
*/
#include "check.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static char msgs[65536];

static void on_msg(void *arg, plumb_msg_level lv, const char *m) {
    (void)arg;
    size_t l = strlen(msgs);
    snprintf(msgs + l, sizeof msgs - l, "%d|%s\n", (int)lv, m);
}

static void write_file(const char *rel, const char *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    /* make parent directories */
    for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); return; }
    fwrite(data, 1, n, f);
    fclose(f);
}
#define WRITE(rel, lit) write_file(rel, lit, sizeof(lit) - 1)

static plumb_status run_index(plumb_db *db, const char *rel, int prune, plumb_index_stats *st) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    const char *paths[1] = {p};
    plumb_index_params ip;
    plumb_index_params_init(&ip);
    ip.prune = prune;
    ip.message = on_msg;
    ip.commit_every = 3; /* exercise intermediate commits */
    msgs[0] = 0;
    return plumb_index_paths(db, paths, 1, &ip, st);
}

static int nhits(plumb_db *db, const char *q, const char *want_id) {
    plumb_hits *h = NULL;
    plumb_search_params sp;
    plumb_search_params_init(&sp);
    sp.k = 50;
    if (plumb_search(db, q, &sp, &h)) return -1;
    int n = (int)h->n;
    if (want_id && (n == 0 || !strstr(h->hit[0].doc_id, want_id))) n = -2;
    plumb_hits_free(h);
    return n;
}

static void test_formats_and_incremental(void) {
    WRITE("docs/a.txt", "Aardvarks dig burrows at night.\n\nThey eat termites.");
    WRITE("docs/b.md", "---\ntitle: Bees Guide\n---\n# Ignored heading\n\nBees make *honey* "
                       "in [hives](http://example.com/hives).\n");
    WRITE("docs/sub/c.html", "<html><head><title>Cats &amp; Dogs</title><style>.x{color:red}"
                             "</style><script>var zebra=1;</script></head><body><p>Cats "
                             "purr&nbsp;loudly.</p></body></html>");
    WRITE("docs/sub/data.jsonl",
          "{\"_id\": \"j1\", \"title\": \"Dolphins\", \"text\": \"Dolphins use echolocation.\"}\n"
          "{\"_id\": \"j2\", \"title\": \"Eagles\", \"text\": \"Eagles soar.\", "
          "\"metadata\": {\"kind\": \"bird\"}}\n"
          "this line is not json\n"
          "\n"
          "{\"title\": \"no id\", \"text\": \"missing identifier\"}\n"
          "{\"_id\": 7, \"title\": \"Ferrets\", \"text\": \"Ferrets are playful.\"}\n");
    write_file("docs/bin.txt", "GIF89a\0\0\x01binary", 15);
    write_file("docs/latin1.txt", "Caf\xe9 gnocchi recipe", 19); /* Latin-1, not UTF-8 */
    WRITE("docs/image.png", "not really a png");
    WRITE("docs/.hidden/secret.txt", "hidden platypus");
    WRITE("docs/README", "Giraffes have long necks.");

    char p[512];
    snprintf(p, sizeof p, "%s/inc.db", dir);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, NULL, &db));
    plumb_index_stats st;
    CHECK_OK(run_index(db, "docs", 0, &st));
    CHECK(st.files_indexed == 6);    /* a.txt b.md c.html data.jsonl latin1.txt README */
    CHECK(st.files_skipped == 2);    /* bin.txt (binary), image.png (type) */
    CHECK(st.docs_added == 8);       /* 5 single-doc files + 3 JSONL records */
    CHECK(st.bad_records == 2);      /* not-json line, record without _id */
    CHECK(strstr(msgs, "data.jsonl:3: malformed JSON") != NULL);
    CHECK(strstr(msgs, "data.jsonl:5: record has no \"_id\"") != NULL);
    CHECK(strstr(msgs, "bin.txt: skipped (binary file") != NULL);
    CHECK(strstr(msgs, "latin1.txt: invalid UTF-8 at byte 3") != NULL);
    CHECK(strstr(msgs, "secret") == NULL);

    CHECK(nhits(db, "aardvark termites", "a.txt") == 1);
    CHECK(nhits(db, "honey hives", "b.md") == 1);
    CHECK(nhits(db, "example.com", NULL) == 0);  /* link URL dropped */
    CHECK(nhits(db, "zebra", NULL) == 0);        /* script dropped */
    CHECK(nhits(db, "color red", NULL) == 0);    /* style dropped */
    CHECK(nhits(db, "purr loudly", "c.html") == 1);
    CHECK(nhits(db, "echolocation", "j1") == 1);
    CHECK(nhits(db, "ferrets", "7") == 1);       /* numeric _id */
    CHECK(nhits(db, "gnocchi", "latin1.txt") == 1);
    CHECK(nhits(db, "giraffes", "README") == 1);
    CHECK(nhits(db, "platypus", NULL) == 0);

    /* titles: front matter, <title>, JSONL title, file name */
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "bees", NULL, &h));
    if (h && h->n) CHECK_STR(h->hit[0].title, "Bees Guide");
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "cats", NULL, &h));
    if (h && h->n) CHECK_STR(h->hit[0].title, "Cats & Dogs");
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "aardvarks", NULL, &h));
    if (h && h->n) CHECK_STR(h->hit[0].title, "a");
    plumb_hits_free(h);
    CHECK_OK(plumb_search(db, "eagles", NULL, &h));
    if (h && h->n) {
        CHECK_STR(h->hit[0].metadata, "{\"kind\":\"bird\"}");
        CHECK(strstr(h->hit[0].source, "data.jsonl:2") != NULL);
    }
    plumb_hits_free(h);

    /* unchanged: nothing re-read into the index */
    plumb_stats s1, s2;
    CHECK_OK(plumb_stats_get(db, &s1));
    CHECK_OK(run_index(db, "docs", 0, &st));
    CHECK(st.files_unchanged == 6 && st.files_indexed == 0 && st.docs_added == 0);
    CHECK_OK(plumb_stats_get(db, &s2));
    CHECK(s2.generation == s1.generation);

    /* a changed file replaces its document; a changed JSONL file updates
    ** only the records that changed */
    WRITE("docs/a.txt", "Anteaters also eat termites.");
    WRITE("docs/sub/data.jsonl",
          "{\"_id\": \"j1\", \"title\": \"Dolphins\", \"text\": \"Dolphins use echolocation.\"}\n"
          "{\"_id\": \"j2\", \"title\": \"Eagles\", \"text\": \"Eagles glide and soar.\", "
          "\"metadata\": {\"kind\": \"bird\"}}\n"
          "{\"_id\": \"j3\", \"title\": \"Hedgehogs\", \"text\": \"Hedgehogs roll up.\"}\n");
    CHECK_OK(run_index(db, "docs", 0, &st));
    CHECK(st.files_indexed == 2 && st.files_unchanged == 4);
    CHECK(st.docs_replaced == 2);  /* a.txt, j2 */
    CHECK(st.docs_unchanged == 1); /* j1 */
    CHECK(st.docs_added == 1);     /* j3 */
    CHECK(nhits(db, "aardvarks", NULL) == 0);
    CHECK(nhits(db, "anteaters", "a.txt") == 1);
    CHECK(nhits(db, "glide", "j2") == 1);
    CHECK(nhits(db, "ferrets", "7") == 1); /* gone from the file, kept without prune */

    /* prune: a vanished file and a vanished record go */
    char rm[512];
    snprintf(rm, sizeof rm, "%s/docs/b.md", dir);
    CHECK(unlink(rm) == 0);
    WRITE("docs/sub/data.jsonl",
          "{\"_id\": \"j1\", \"title\": \"Dolphins\", \"text\": \"Dolphins use echolocation.\"}\n"
          "{\"_id\": \"j3\", \"title\": \"Hedgehogs\", \"text\": \"Hedgehogs roll up.\"}\n");
    CHECK_OK(run_index(db, "docs", 1, &st));
    CHECK(st.files_pruned == 1);
    CHECK(st.docs_deleted == 3); /* b.md, j2, 7 */
    CHECK(nhits(db, "honey", NULL) == 0);
    CHECK(nhits(db, "eagles", NULL) == 0);
    CHECK(nhits(db, "ferrets", NULL) == 0);
    CHECK(nhits(db, "hedgehogs", "j3") == 1);
    CHECK_OK(plumb_stats_get(db, &s2));
    /* a.txt c.html latin1.txt README + j1 j3 */
    CHECK(s2.documents == 6 && s2.files == 5);

    /* pruning one directory leaves files elsewhere alone */
    WRITE("other/z.txt", "Zebras are striped.");
    CHECK_OK(run_index(db, "other", 1, &st));
    CHECK(st.files_pruned == 0);
    CHECK(nhits(db, "zebras", "z.txt") == 1);
    CHECK(nhits(db, "hedgehogs", "j3") == 1);

    /* a missing path is an error, but the others are still indexed */
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/nope", dir);
    snprintf(p2, sizeof p2, "%s/more", dir);
    WRITE("more/y.txt", "Yaks live in mountains.");
    const char *two[2] = {p1, p2};
    plumb_index_params ip;
    plumb_index_params_init(&ip);
    CHECK_RC(plumb_index_paths(db, two, 2, &ip, &st), PLUMB_NOTFOUND);
    CHECK(strstr(plumb_errmsg(), "nope") != NULL);
    CHECK(nhits(db, "yaks", "y.txt") == 1);
    plumb_close(db);
}

static void test_links_and_chunks(void) {
    /* a symlink loop with follow_links on: reported, no hang */
    WRITE("loop/x/a.txt", "Kangaroos hop.");
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/loop/x/back", dir);
    snprintf(b, sizeof b, "%s/loop", dir);
    CHECK(symlink(b, a) == 0);
    char p[512];
    snprintf(p, sizeof p, "%s/links.db", dir);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, NULL, &db));
    const char *paths[1] = {b};
    plumb_index_params ip;
    plumb_index_params_init(&ip);
    ip.follow_links = 1;
    ip.message = on_msg;
    plumb_index_stats st;
    msgs[0] = 0;
    CHECK_OK(plumb_index_paths(db, paths, 1, &ip, &st));
    CHECK(st.docs_added == 1);
    CHECK(strstr(msgs, "symbolic link loop") != NULL);
    ip.follow_links = 0;
    msgs[0] = 0;
    CHECK_OK(plumb_index_paths(db, paths, 1, &ip, &st));
    CHECK(st.files_unchanged == 1);

    /* a long document becomes several chunks; each is searchable and the
    ** hit knows its position */
    char big[40000] = "";
    for (int para = 0; para < 40; para++) {
        char s[1000];
        snprintf(s, sizeof s, "Paragraph %d talks about topic%d in detail. It has several "
                 "sentences about the same thing. The weather was fine that day and the "
                 "committee met to discuss budgets, schedules and the river crossing.\n\n",
                 para, para);
        strcat(big, s);
    }
    write_file("long/long.txt", big, strlen(big));
    snprintf(b, sizeof b, "%s/long", dir);
    paths[0] = b;
    CHECK_OK(plumb_index_paths(db, paths, 1, &ip, &st));
    plumb_stats s;
    CHECK_OK(plumb_stats_get(db, &s));
    CHECK(s.chunks >= 4);
    plumb_hits *h = NULL;
    CHECK_OK(plumb_search(db, "topic37", NULL, &h));
    CHECK(h && h->n >= 1);
    if (h && h->n) {
        CHECK(h->hit[0].chunk_seq > 0);
        CHECK(strstr(h->hit[0].text, "topic37") != NULL);
        CHECK(strstr(h->hit[0].snippet, "[topic37]") != NULL);
    }
    plumb_hits_free(h);
    plumb_close(db);
}

/* PDF goes through pdftotext when it is installed; without it the file is
** skipped with a message that says how to get it. */
static void test_pdf(void) {
    const char *td = getenv("PLUMB_TEST_DATA");
    char src[512], cmd[1200], p[512];
    snprintf(src, sizeof src, "%s/quokka.pdf", td ? td : "tests/data");
    if (access(src, R_OK) != 0) { fprintf(stderr, "quokka.pdf fixture missing\n"); CHECK(0); return; }
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/pdf' && cp '%s' '%s/pdf/'", dir, src, dir);
    CHECK(system(cmd) == 0);
    snprintf(p, sizeof p, "%s/pdf.db", dir);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, NULL, &db));
    plumb_index_stats st;
    int have = system("command -v pdftotext >/dev/null 2>&1") == 0;
    CHECK_OK(run_index(db, "pdf", 0, &st));
    if (have) {
        CHECK(st.files_indexed == 1 && st.docs_added == 1);
        CHECK(nhits(db, "quokkas rottnest", "quokka.pdf") == 1);
    } else {
        fprintf(stderr, "pdftotext not installed: checking the skip message only\n");
        CHECK(st.files_skipped == 1);
        CHECK(strstr(msgs, "pdftotext") != NULL);
    }
    /* the same path with pdftotext hidden from PATH */
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    WRITE("pdf2/readme.txt", "nothing");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/pdf2/'", src, dir);
    if (old) setenv("PATH", old, 1);
    CHECK(system(cmd) == 0);
    setenv("PATH", "/nonexistent", 1);
    CHECK_OK(run_index(db, "pdf2", 0, &st));
    if (old) setenv("PATH", old, 1);
    free(old);
    CHECK(st.files_skipped == 1 && st.files_indexed == 1);
    CHECK(strstr(msgs, "apt-get install poppler-utils") != NULL);
    plumb_close(db);
}

/* A JSONL file of many 4 MiB blocks: lines cross block boundaries, some
** end in CRLF, the last has no newline. Every record must arrive whole. */
static void test_big_jsonl(void) {
    char p[512], j[512];
    snprintf(j, sizeof j, "%s/big/big.jsonl", dir);
    snprintf(p, sizeof p, "mkdir -p '%s/big'", dir);
    CHECK(system(p) == 0);
    FILE *f = fopen(j, "wb");
    if (!f) { CHECK(0); return; }
    const int n = 30000;
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"_id\": \"b%d\", \"title\": \"record %d\", \"text\": \"", i, i);
        for (int w = 0; w < 60; w++) fprintf(f, "w%d ", (i * 7 + w) % 997);
        fprintf(f, "uniq%dx\"}%s", i, i == n - 1 ? "" : (i % 3 ? "\n" : "\r\n"));
    }
    long size = ftell(f);
    fclose(f);
    CHECK(size > 2 * (4 << 20)); /* spans three blocks or more */
    snprintf(p, sizeof p, "%s/big.db", dir);
    plumb_db *db = NULL;
    CHECK_OK(plumb_open(p, NULL, &db));
    plumb_index_stats st;
    CHECK_OK(run_index(db, "big", 0, &st));
    CHECK(st.docs_added == n && st.bad_records == 0);
    /* records on both sides of a block edge, and the last one */
    int probe[] = {0, 9999, 10000, 10001, 20000, n - 1};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        char q[32], id[32];
        snprintf(q, sizeof q, "uniq%dx", probe[i]);
        snprintf(id, sizeof id, "b%d", probe[i]);
        plumb_hits *h = NULL;
        CHECK_OK(plumb_search(db, q, NULL, &h));
        CHECK(h && h->n == 1 && !strcmp(h->hit[0].doc_id, id));
        plumb_hits_free(h);
    }
    /* unchanged on a second run: the streamed hash matches */
    CHECK_OK(run_index(db, "big", 0, &st));
    CHECK(st.files_unchanged == 1 && st.docs_added == 0);
    plumb_close(db);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/plumb-test-ingest-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_formats_and_incremental();
    test_links_and_chunks();
    test_pdf();
    test_big_jsonl();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!check_failures && system(cmd) != 0) return 1;
    return CHECK_DONE();
}
