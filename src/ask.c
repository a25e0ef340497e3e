/*
** ask.c -- plumb_ask(): search, pack, and stream a generator's answer.
**
** The three steps are the public plumb_search and plumb_pack and http.c's
** streamed chat call; this file only joins them, keeps the answer as it
** arrives (so a stream broken mid-way still returns what came), and
** remembers which model the server said answered, per requested name, in
** the settings table (key "ask_model:<name>"), to flag a silent model
** change between runs.
*/
#include "plumb_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void plumb_ask_params_init(plumb_ask_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    plumb_search_params_init(&p->search);
    plumb_pack_params_init(&p->pack);
    p->timeout_ms = 60000;
    p->idle_timeout_ms = 30000;
    p->max_retries = 4;
}

void plumb_answer_free(plumb_answer *a) {
    if (!a) return;
    free(a->text);
    plumb_hits_free(a->hits);
    plumb_packed_free(a->packed);
    free(a);
}

typedef struct sink {
    buf text;
    const plumb_ask_params *p;
} sink;

static int on_piece(void *arg, const char *s, size_t n) {
    sink *k = arg;
    buf_append(&k->text, s, n);
    if (k->text.oom) return 1;
    return k->p->on_delta ? k->p->on_delta(k->p->arg, s, n) : 0;
}

/* Compare the served model with the one recorded for this name; record it. */
static void pin_model(plumb_db *db, const char *asked, plumb_answer *a) {
    if (!db->w || !a->model[0]) return;
    char key[200];
    snprintf(key, sizeof key, "ask_model:%.180s", asked);
    pthread_mutex_lock(&db->wlock);
    if (db->user_batch) { pthread_mutex_unlock(&db->wlock); return; }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->w, "SELECT value FROM settings WHERE key = ?1", -1, &st, NULL) == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *prev = (const char *)sqlite3_column_text(st, 0);
            if (prev && strcmp(prev, a->model)) {
                a->model_changed = 1;
                snprintf(a->previous_model, sizeof a->previous_model, "%s", prev);
            }
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((a->model_changed || !a->previous_model[0]) &&
        sqlite3_prepare_v2(db->w, "INSERT OR REPLACE INTO settings(key, value) VALUES(?1, ?2)",
                           -1, &st, NULL) == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->model, -1, SQLITE_STATIC);
        sqlite3_step(st); /* a busy index only loses the note, not the answer */
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->wlock);
}

plumb_status plumb_ask(plumb_db *db, const char *question, const plumb_ask_params *p,
                       plumb_answer **out) {
    err_clear();
    if (!out) return err_set(PLUMB_MISUSE, "plumb_ask: out is NULL");
    *out = NULL;
    if (!db || !question || !p) return err_set(PLUMB_MISUSE, "plumb_ask: NULL argument");
    if (!p->url || !*p->url || !p->model || !*p->model)
        return err_set(PLUMB_MISUSE, "plumb_ask: the generator's URL and model are required");
    plumb_answer *a = calloc(1, sizeof *a);
    if (!a) return err_set(PLUMB_NOMEM, "plumb_ask");
    a->prompt_tokens = a->completion_tokens = -1;
    double t0 = now_ms();
    plumb_search_params sp = p->search;
    int log = sp.log;
    sp.log = 0; /* the answer is logged once, as one entry, below */
    plumb_status rc = plumb_search(db, question, &sp, &a->hits);
    a->search_ms = now_ms() - t0;
    if (rc) { plumb_answer_free(a); return rc; }
    double t1 = now_ms();
    rc = plumb_pack(question, a->hits->hit, a->hits->n, &p->pack, &a->packed);
    a->pack_ms = now_ms() - t1;
    if (rc) { plumb_answer_free(a); return rc; }

    http_cfg c;
    http_cfg_init(&c);
    c.base_url = p->url;
    c.model = p->model;
    c.api_key = p->api_key;
    if (p->timeout_ms > 0) c.timeout_ms = p->timeout_ms;
    if (p->idle_timeout_ms > 0) c.idle_timeout_ms = p->idle_timeout_ms;
    if (p->max_retries >= 0) c.max_retries = p->max_retries;
    c.cancel = p->cancel;
    sink k = {{0}, p};
    http_chat_result res;
    memset(&res, 0, sizeof res);
    int max_tokens = p->max_tokens > 0 ? p->max_tokens : p->pack.reserve_answer;
    /* chat messages as packed; without chat framing the prompt is the user turn */
    const plumb_packed *pk = a->packed;
    rc = http_chat_stream(&c, pk->chat ? pk->system : NULL, pk->chat ? pk->user : pk->prompt,
                          max_tokens, p->temperature, on_piece, &k, &res);
    if (k.text.oom) rc = err_set(PLUMB_NOMEM, "plumb_ask: the answer");
    a->text = buf_detach(&k.text);
    if (!a->text) { a->text = malloc(1); if (a->text) a->text[0] = 0; }
    snprintf(a->model, sizeof a->model, "%s", res.model);
    snprintf(a->finish_reason, sizeof a->finish_reason, "%s", res.finish_reason);
    a->prompt_tokens = res.prompt_tokens;
    a->completion_tokens = res.completion_tokens;
    a->first_token_ms = res.ttft_ms;
    a->total_ms = now_ms() - t0;
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", plumb_errmsg());
    if (!rc || a->text[0]) pin_model(db, p->model, a);
    if (log) {
        /* the prompt's identity: hash64 of what was sent, system then user */
        uint64_t h = hash64(pk->system ? pk->system : "", pk->system ? strlen(pk->system) : 0, 0);
        const char *u = pk->chat ? pk->user : pk->prompt;
        h = hash64(u ? u : "", u ? strlen(u) : 0, h);
        char hex[17];
        hash64_hex(h, hex);
        plumb_log_ask la = {question, &p->search, a->hits, hex, (int64_t)pk->tokens,
                            a->model[0] ? a->model : p->model, a->text, a->total_ms};
        plumb_log_record_ask(db, &la, &a->log_id); /* a busy log loses the entry, not the answer */
    }
    err_set(rc, "%s", keep);
    *out = a;
    return rc;
}
