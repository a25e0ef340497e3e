/*
** cmd_misc.c -- `plumb stats` and `plumb delete ID...`.
**
** stats opens the index read-only and prints plumb_stats_get() for people
** or as JSON. delete removes documents one by one (each commit is its own,
** so a missing id never undoes the others): a missing id is reported and
** makes the exit status 1; any other failure stops at once.
*/
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* plumb stats                                                         */
/* ------------------------------------------------------------------ */

enum { S_DB = 1, S_JSON, S_HELP };

static const cli_opt stats_opts[] = {
    {"db", 0, 1, S_DB},
    {"json", 0, 0, S_JSON},
    {"help", 'h', 0, S_HELP},
    {NULL, 0, 0, 0},
};

void cmd_stats_help(FILE *f) {
    fputs("Usage: plumb stats [OPTIONS]\n"
          "\n"
          "Show what the index holds (documents, chunks, files, indexed tokens, size on\n"
          "disk, generation) and the settings it was created with (stemmer, stop\n"
          "words, chunking, BM25 k1 and b, field weights).\n"
          "\n"
          "Options:\n"
          "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
          "  --json               print one JSON object with every field\n"
          "  -h, --help           show this help\n"
          "\n"
          "Examples:\n"
          "  plumb stats\n"
          "  plumb stats --db scifact.db --json | jq .documents\n",
          f);
}

/* The stemmer name, NUL-terminated even if the library filled all 32 bytes. */
static void lang_of(const plumb_stats *st, char out[sizeof st->language + 1]) {
    memcpy(out, st->language, sizeof st->language);
    out[sizeof st->language] = 0;
}

static void stats_json(const char *path, const plumb_stats *st) {
    char lang[sizeof st->language + 1];
    lang_of(st, lang);
    printf("{\"db\":");
    cli_json_str(stdout, path);
    printf(",\"format_version\":%d,\"generation\":%" PRId64 ",\"documents\":%" PRId64
           ",\"chunks\":%" PRId64 ",\"files\":%" PRId64 ",\"tokens_title\":%" PRId64
           ",\"tokens_body\":%" PRId64 ",\"db_bytes\":%" PRId64 ",\"language\":",
           st->format_version, st->generation, st->documents, st->chunks, st->files,
           st->tokens_title, st->tokens_body, st->db_bytes);
    cli_json_str(stdout, lang);
    printf(",\"stopwords\":%s,\"chunk_tokens\":%d,\"chunk_overlap\":%d,\"bm25_k1\":",
           st->stopwords ? "true" : "false", st->chunk_tokens, st->chunk_overlap);
    cli_json_num(stdout, st->bm25_k1);
    printf(",\"bm25_b\":");
    cli_json_num(stdout, st->bm25_b);
    printf(",\"weight_title\":");
    cli_json_num(stdout, st->weight_title);
    printf(",\"weight_body\":");
    cli_json_num(stdout, st->weight_body);
    printf(",\"rerank\":{\"kind\":");
    cli_json_str(stdout, st->rerank_kind);
    printf(",\"n\":%d,\"url\":", st->rerank);
    cli_json_str(stdout, st->rerank_url[0] ? st->rerank_url : NULL);
    printf(",\"model\":");
    cli_json_str(stdout, st->rerank_model[0] ? st->rerank_model : NULL);
    printf(",\"timeout_ms\":%d,\"trees\":%d}", st->rerank_timeout_ms, st->rerank_trees);
    printf(",\"vectors\":{\"embedder\":");
    cli_json_str(stdout, st->embedder);
    printf(",\"model\":");
    cli_json_str(stdout, st->embed_model);
    printf(",\"type\":\"%s\",\"dim\":%d,\"count\":%" PRId64 ",\"missing\":%" PRId64
           ",\"bytes\":%" PRId64 ",\"memory_bytes\":%" PRId64 ",\"trained_chunks\":%" PRId64
           ",\"added_since_training\":%" PRId64 ",\"ann\":",
           st->vec_dim ? "f32+int8+binary" : "", st->vec_dim, st->vec_count, st->vec_missing,
           st->vec_bytes, st->vec_memory_bytes, st->embed_trained_chunks, st->embed_added_since);
    if (st->ann_type[0]) {
        printf("{\"type\":");
        cli_json_str(stdout, st->ann_type);
        printf(",\"count\":%" PRId64 ",\"bytes\":%" PRId64 ",\"deleted\":%" PRId64 "}",
               st->ann_count, st->ann_bytes, st->ann_deleted);
    } else {
        printf("null");
    }
    printf("}}\n");
}

static void stats_human(const char *path, const plumb_stats *st) {
    char lang[sizeof st->language + 1], size[32];
    lang_of(st, lang);
    cli_fmt_size(size, sizeof size, st->db_bytes);
    printf("index           ");
    cli_put_clean(stdout, path, 0);
    printf("\nformat version  %d\n", st->format_version);
    printf("generation      %" PRId64 "\n", st->generation);
    printf("documents       %" PRId64 "\n", st->documents);
    printf("chunks          %" PRId64 "\n", st->chunks);
    printf("files           %" PRId64 "\n", st->files);
    printf("tokens          %" PRId64 " (title %" PRId64 ", body %" PRId64 ")\n",
           st->tokens_title + st->tokens_body, st->tokens_title, st->tokens_body);
    printf("size on disk    %s (%" PRId64 " bytes)\n", size, st->db_bytes);
    printf("stemmer         ");
    cli_put_clean(stdout, lang, 0);
    printf("\nstop words      %s\n", st->stopwords ? "dropped (English list)" : "kept");
    if (st->chunk_tokens > 0)
        printf("chunks of       %d tokens, %d overlapping\n", st->chunk_tokens, st->chunk_overlap);
    else
        printf("chunks of       whole documents\n");
    printf("bm25            k1 %g, b %g\n", st->bm25_k1, st->bm25_b);
    printf("field weights   title %g, body %g\n", st->weight_title, st->weight_body);
    if (st->rerank <= 0) {
        printf("reranker        off (stored rerank 0)\n");
    } else {
        printf("reranker        ");
        cli_put_clean(stdout, st->rerank_kind, 0);
        printf(", top %d", st->rerank);
        if (!strcmp(st->rerank_kind, "features"))
            printf(st->rerank_trees ? ", linear + %d trees (plumb tune)" : ", linear",
                   st->rerank_trees);
        if (!strcmp(st->rerank_kind, "http") || !strcmp(st->rerank_kind, "llm")) {
            printf(": ");
            cli_put_clean(stdout, st->rerank_url[0] ? st->rerank_url
                                                     : "(no URL stored: $PLUMB_RERANK_URL)", 0);
            if (st->rerank_model[0]) {
                printf(", model ");
                cli_put_clean(stdout, st->rerank_model, 0);
            }
            printf(", %d ms per attempt", st->rerank_timeout_ms);
        }
        putchar('\n');
    }
    if (!st->vec_dim) {
        printf("vectors         none (lexical only%s)\n",
               st->chunks ? "; 'plumb embed' adds them" : "");
        return;
    }
    char vb[32];
    cli_fmt_size(vb, sizeof vb, st->vec_bytes);
    printf("embedder        ");
    cli_put_clean(stdout, st->embed_model, 0);
    if (!strcmp(st->embedder, "lsa"))
        printf(" (built-in, trained on %" PRId64 " chunks; %" PRId64 " added since)\n",
               st->embed_trained_chunks, st->embed_added_since);
    else {
        printf(" (");
        cli_put_clean(stdout, st->embedder, 0);
        printf(")\n");
    }
    printf("vectors         %" PRId64 " x %d, f32 + int8 + 1-bit codes, cosine; %s on disk\n",
           st->vec_count, st->vec_dim, vb);
    if (st->vec_missing)
        printf("                %" PRId64 " chunks without a vector ('plumb embed' adds them)\n",
               st->vec_missing);
    if (st->ann_type[0]) {
        cli_fmt_size(vb, sizeof vb, st->ann_bytes);
        printf("ann index       ");
        cli_put_clean(stdout, st->ann_type, 0);
        printf(", %" PRId64 " vectors (%" PRId64 " deleted since built), %s\n", st->ann_count,
               st->ann_deleted, vb);
    }
}

int cmd_stats(int argc, char **argv) {
    const char *dbopt = NULL;
    int json = 0, code = CLI_EXIT_OK;
    plumb_db *db = NULL;
    plumb_stats st;
    cli_parser ps;

    cli_parser_init(&ps, "stats", argc, argv, stats_opts);
    for (;;) {
        int o = cli_next(&ps);
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD:
            return CLI_EXIT_USAGE;
        case CLI_ARG:
            return cli_usage("stats", "unexpected argument '%s'", ps.val);
        case S_DB:
            dbopt = ps.val;
            break;
        case S_JSON:
            json = 1;
            break;
        case S_HELP:
            cmd_stats_help(stdout);
            return CLI_EXIT_OK;
        default:
            break;
        }
    }

    const char *path = cli_db_path(dbopt);
    code = cli_open_existing(path, 1, &db);
    if (code) return code;
    plumb_status rc = plumb_stats_get(db, &st);
    if (rc != PLUMB_OK) {
        cli_fail(rc, "cannot read statistics of '%s'", path);
        code = rc == PLUMB_CORRUPT || rc == PLUMB_FORMAT ? CLI_EXIT_NOINDEX : CLI_EXIT_FAIL;
    } else if (json) {
        stats_json(path, &st);
    } else {
        stats_human(path, &st);
    }
    plumb_close(db);
    return code;
}

/* ------------------------------------------------------------------ */
/* plumb delete                                                        */
/* ------------------------------------------------------------------ */

enum { D_DB = 1, D_HELP };

static const cli_opt delete_opts[] = {
    {"db", 0, 1, D_DB},
    {"help", 'h', 0, D_HELP},
    {NULL, 0, 0, 0},
};

void cmd_delete_help(FILE *f) {
    fputs("Usage: plumb delete ID... [OPTIONS]\n"
          "\n"
          "Remove documents and all their chunks from the index, printing \"deleted ID\"\n"
          "for each. A file's id is its absolute path; when ID is not an id but names\n"
          "an existing file, that file's absolute path is tried too. A JSONL record's\n"
          "id is its \"_id\". Ids that do not exist are reported and make the exit\n"
          "status 1; the others are still deleted. To forget files that were removed\n"
          "from disk, 'plumb index --prune DIR' is usually handier.\n"
          "\n"
          "Options:\n"
          "  --db FILE            the index (default: $PLUMB_DB, else ./plumb.db)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Use '--' before ids that start with '-'.\n"
          "\n"
          "Examples:\n"
          "  plumb delete doc-42 doc-43\n"
          "  plumb delete notes/old.md\n"
          "  plumb delete -- -odd-id-\n",
          f);
}

/* Delete `id`, or else the document of the file it names. Returns the
** status; *deleted receives the id that was removed (freed by the caller
** with free() when it is not `id`). */
static plumb_status delete_one(plumb_db *db, const char *id, char **deleted) {
    *deleted = NULL;
    plumb_status rc = plumb_delete(db, id);
    if (rc != PLUMB_NOTFOUND) return rc;
    /* File ids are canonical absolute paths; accept the path as typed. */
    char *real = realpath(id, NULL);
    if (!real || strcmp(real, id) == 0) {
        free(real);
        return rc;
    }
    plumb_status rc2 = plumb_delete(db, real);
    if (rc2 == PLUMB_OK)
        *deleted = real;
    else
        free(real);
    return rc2 == PLUMB_NOTFOUND ? rc : rc2;
}

int cmd_delete(int argc, char **argv) {
    const char *dbopt = NULL;
    const char **ids = NULL;
    int nids = 0, code = CLI_EXIT_OK;
    plumb_db *db = NULL;
    cli_parser ps;

    ids = malloc(sizeof *ids * (size_t)(argc > 0 ? argc : 1));
    if (!ids) {
        fputs("plumb: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    cli_parser_init(&ps, "delete", argc, argv, delete_opts);
    for (;;) {
        int o = cli_next(&ps);
        if (o == CLI_DONE) break;
        switch (o) {
        case CLI_BAD:
            code = CLI_EXIT_USAGE;
            goto done;
        case CLI_ARG:
            ids[nids++] = ps.val;
            break;
        case D_DB:
            dbopt = ps.val;
            break;
        case D_HELP:
            cmd_delete_help(stdout);
            goto done;
        default:
            break;
        }
    }
    if (nids == 0) {
        code = cli_usage("delete", "missing ID: name the documents to delete");
        goto done;
    }

    const char *path = cli_db_path(dbopt);
    code = cli_open_existing(path, 0, &db);
    if (code) goto done;
    for (int i = 0; i < nids; i++) {
        char *real;
        plumb_status rc = delete_one(db, ids[i], &real);
        if (rc == PLUMB_OK) {
            fputs("deleted ", stdout);
            cli_put_clean(stdout, real ? real : ids[i], 0);
            putchar('\n');
            free(real);
        } else if (rc == PLUMB_NOTFOUND) {
            fputs("plumb: no document with id '", stderr);
            cli_put_clean(stderr, ids[i], 0);
            fputs("'\n", stderr);
            code = CLI_EXIT_FAIL;
        } else {
            /* the index itself is failing: the next ids would fail too */
            cli_fail(rc, "cannot delete '%s'", ids[i]);
            code = CLI_EXIT_FAIL;
            break;
        }
    }

done:
    plumb_close(db);
    free(ids);
    return code;
}
