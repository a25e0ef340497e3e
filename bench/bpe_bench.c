/*
** bpe_bench.c -- throughput of exact BPE token counting (issue 8).
**
** Counts the tokens of every SciFact document (title, blank line, text),
** one call per document as the prompt packer counts candidate passages,
** with cl100k_base, o200k_base and Qwen3; single thread, median of --reps
** runs. Also times adversarial inputs (1 MiB of one letter, of spaces, of
** digits) that would be quadratic in a naive merge.
**
** Verification (exit 1 on failure): for every document count() equals
** the length of encode(), and the tokens' bytes concatenate back to the
** document (NFC-normalised documents are compared by count only). The
** checksum hashes every id of every document so that runs compare.
**
**   ./build-bpe/bench/bpe_bench [--data ../shared/data] [--reps 5]
** One JSON line per result.
*/
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <plumb.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this process: on a shared machine it excludes the time the
** bench waits for a core, which wall time includes. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct doc {
    char *text;
    size_t len;
} doc;

static doc *read_corpus(const char *path, size_t *ndocs, size_t *nbytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 0, n = 0, bytes = 0, lcap = 0;
    doc *d = NULL;
    char *line = NULL;
    ssize_t r;
    while ((r = getline(&line, &lcap, f)) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "title");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (cJSON_IsString(t) && cJSON_IsString(x)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                doc *nd = realloc(d, cap * sizeof *d);
                if (!nd) break;
                d = nd;
            }
            size_t tl = strlen(t->valuestring), xl = strlen(x->valuestring);
            char *s = malloc(tl + xl + 3);
            if (!s) break;
            memcpy(s, t->valuestring, tl);
            memcpy(s + tl, "\n\n", 2);
            memcpy(s + tl + 2, x->valuestring, xl + 1);
            d[n].text = s;
            d[n].len = tl + 2 + xl;
            bytes += d[n].len;
            n++;
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    *ndocs = n;
    *nbytes = bytes;
    return d;
}

int main(int argc, char **argv) {
    const char *data = "../shared/data";
    int reps = 5, fail = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 100) reps = 5;
    char path[2048];
    snprintf(path, sizeof path, "%s/beir/scifact/corpus.jsonl", data);
    size_t ndocs = 0, nbytes = 0;
    doc *docs = read_corpus(path, &ndocs, &nbytes);
    if (!docs || !ndocs) {
        fprintf(stderr, "bpe_bench: cannot read %s\n", path);
        return 1;
    }
    static const char *toks[] = {"cl100k_base.tiktoken", "o200k_base.tiktoken",
                                 "qwen3-tokenizer.json"};
    const size_t big = 1 << 20;
    char *adv = malloc(big);
    for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++) {
        snprintf(path, sizeof path, "%s/tokenizers/%s", data, toks[t]);
        plumb_tokenizer *tok = NULL;
        double t0 = now();
        plumb_status rc = plumb_tokenizer_load(path, &tok);
        double load_s = now() - t0;
        if (rc) {
            fprintf(stderr, "bpe_bench: %s: %s: %s\n", path, plumb_status_str(rc), plumb_errmsg());
            fail = 1;
            continue;
        }
        /* verification pass */
        uint64_t check = 1469598103934665603ull;
        size_t total = 0, bad = 0;
        for (size_t i = 0; i < ndocs; i++) {
            uint32_t *ids = NULL;
            size_t n = 0, c = 0, off = 0;
            int ok = plumb_tokenizer_encode(tok, docs[i].text, docs[i].len, 0, &ids, &n) == 0 &&
                     plumb_tokenizer_count(tok, docs[i].text, docs[i].len, 0, &c) == 0 && c == n;
            int ascii = 1;
            for (size_t k = 0; k < docs[i].len; k++) ascii &= (unsigned char)docs[i].text[k] < 0x80;
            for (size_t k = 0; k < n; k++) {
                size_t tl;
                const char *tb = plumb_tokenizer_token_bytes(tok, ids[k], &tl);
                if (!tb || off + tl > docs[i].len || memcmp(tb, docs[i].text + off, tl)) {
                    if (t < 2 || ascii) ok = 0;
                }
                off += tl;
                check = (check ^ ids[k]) * 1099511628211ull;
            }
            if ((t < 2 || ascii) && off != docs[i].len) ok = 0;
            if (!ok) bad++;
            total += n;
            plumb_tokenizer_ids_free(ids);
        }
        if (bad) {
            fprintf(stderr, "bpe_bench: %s: %zu documents fail verification\n", toks[t], bad);
            fail = 1;
        }
        double secs[100], cpus[100];
        for (int r = 0; r < reps; r++) {
            size_t sum = 0;
            double c0 = cpu_now();
            t0 = now();
            for (size_t i = 0; i < ndocs; i++) {
                size_t c = 0;
                plumb_tokenizer_count(tok, docs[i].text, docs[i].len, 0, &c);
                sum += c;
            }
            secs[r] = now() - t0;
            cpus[r] = cpu_now() - c0;
            if (sum != total) fail = 1;
        }
        qsort(secs, (size_t)reps, sizeof secs[0], cmp_double);
        qsort(cpus, (size_t)reps, sizeof cpus[0], cmp_double);
        double s = secs[reps / 2], cs = cpus[reps / 2];
        printf("{\"bench\":\"bpe_count\",\"tokenizer\":\"%s\",\"dataset\":\"scifact\",\"docs\":%zu,"
               "\"bytes\":%zu,\"tokens\":%zu,\"threads\":1,\"reps\":%d,\"seconds_median\":%.4f,"
               "\"mb_per_s\":%.1f,\"tokens_per_s\":%.0f,\"cpu_mb_per_s\":%.1f,\"load_ms\":%.0f,\"checksum\":\"%016llx\","
               "\"verified\":%s,\"version\":\"%s\"}\n",
               plumb_tokenizer_name(tok), ndocs, nbytes, total, reps, s, (double)nbytes / s / 1e6,
               (double)total / s, (double)nbytes / cs / 1e6, load_s * 1e3, (unsigned long long)check,
               bad ? "false" : "true", plumb_libversion());
        /* adversarial single-character runs */
        static const char fill[] = {'a', ' ', '7', '!'};
        for (size_t k = 0; k < sizeof fill; k++) {
            memset(adv, fill[k], big);
            size_t c = 0;
            t0 = now();
            rc = plumb_tokenizer_count(tok, adv, big, 0, &c);
            double as = now() - t0;
            if (rc || c == 0) fail = 1;
            printf("{\"bench\":\"bpe_count_run\",\"tokenizer\":\"%s\",\"input\":\"1MiB of '%c'\","
                   "\"tokens\":%zu,\"seconds\":%.4f,\"mb_per_s\":%.1f}\n",
                   plumb_tokenizer_name(tok), fill[k], c, as, (double)big / as / 1e6);
        }
        plumb_tokenizer_free(tok);
    }
    free(adv);
    for (size_t i = 0; i < ndocs; i++) free(docs[i].text);
    free(docs);
    return fail;
}
