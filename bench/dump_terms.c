/*
** dump_terms.c -- a BEIR JSONL file's records as plumb's tokenizer sees
** them, for studies outside plumb (bench/rm3_study.py).
**
**   dump_terms FILE.jsonl > FILE.terms
**
** One line per record: _id TAB title terms TAB text terms, each terms
** list space-separated after the English stemmer and stop-word list
** (the index's defaults). Records that are not JSON objects with a
** string _id are skipped and counted on stderr.
*/
#include "plumb_impl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int emit(void *arg, const char *t, int n, int start, int end) {
    (void)start;
    (void)end;
    FILE *out = arg;
    fputc(' ', out);
    fwrite(t, 1, (size_t)n, out);
    return 0;
}

static void field(tok_ctx *tok, const cJSON *j, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, name);
    if (cJSON_IsString(f)) tok_run(tok, f->valuestring, (int)strlen(f->valuestring), emit, stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dump_terms FILE.jsonl > FILE.terms\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 1; }
    tok_ctx *tok = tok_new("english", 1);
    if (!tok) { fprintf(stderr, "dump_terms: no English tokenizer\n"); return 1; }
    char *line = NULL;
    size_t cap = 0;
    long skipped = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "_id") : NULL;
        if (!cJSON_IsString(id)) { skipped++; cJSON_Delete(j); continue; }
        fputs(id->valuestring, stdout);
        fputc('\t', stdout);
        field(tok, j, "title");
        fputc('\t', stdout);
        field(tok, j, "text");
        fputc('\n', stdout);
        cJSON_Delete(j);
    }
    if (skipped) fprintf(stderr, "dump_terms: %ld records skipped\n", skipped);
    free(line);
    fclose(f);
    tok_free(tok);
    return 0;
}
