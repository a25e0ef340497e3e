/*
** rerank_llm.c -- stage 2 by a generator model as a pointwise judge: for
** each of the top few candidates one chat-completions call (http.c's
** http_chat_stream) asks for a single relevance grade 0..3 of the passage
** against the query; the grade is the candidate's rerank score.
**
** Where the model is: as for the "http" kind (rerank_http_target_of), an
** OpenAI-compatible base URL ("/chat/completions" is appended) and a
** model name; the key from $PLUMB_LLM_API_KEY, else $PLUMB_RERANK_API_KEY.
**
** The reply: temperature 0, at most RERANK_LLM_MAX_TOKENS tokens; the
** first integer in it must be 0..3. Anything else ("relevant", "5", an
** empty answer) fails that candidate, and a failure ends the stage: the
** caller keeps the stage-1 order. A partial judgement is never used,
** because grades from some candidates and stage-1 order for others do not
** compare.
**
** Workload: N <= RERANK_LLM_MAX_N (default RERANK_LLM_N) sequential calls
** per search, each a second or so on a local model. Slow by design; off
** unless asked for.
*/
#include "plumb_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed, so that grades from one run compare with the next. */
static const char SYSTEM[] =
    "You judge search results. Given a query and a passage, grade how relevant the passage "
    "is to the query: 3 = answers it fully, 2 = highly relevant, 1 = related but does not "
    "answer it, 0 = irrelevant. Reply with the single digit only.";

#define REPLY_CAP 256 /* bytes of the reply kept: the grade comes first */

typedef struct reply {
    char s[REPLY_CAP];
    size_t n;
} reply;

static int on_delta(void *arg, const char *s, size_t n) {
    reply *r = arg;
    size_t room = sizeof r->s - 1 - r->n;
    if (n > room) n = room;
    memcpy(r->s + r->n, s, n);
    r->n += n;
    r->s[r->n] = 0;
    return 0;
}

int rerank_llm_n(int p_rerank, int stored) {
    if (p_rerank >= 0) return p_rerank < RERANK_LLM_MAX_N ? p_rerank : RERANK_LLM_MAX_N;
    return stored < RERANK_LLM_N ? stored : RERANK_LLM_N;
}

int rerank_llm_parse(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && !(s[i] >= '0' && s[i] <= '9')) i++;
    if (i == n || (i > 0 && s[i - 1] == '-')) return -1; /* "-1" is an integer, not 0..3 */
    int v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (s[i] - '0');
        if (v > 3) return -1; /* "10" is no grade */
    }
    return v;
}

/* The reply as printable text for a message: control bytes as spaces. */
static void clean(const reply *r, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < r->n && k + 1 < cap; i++)
        out[k++] = (unsigned char)r->s[i] < 0x20 ? ' ' : r->s[i];
    out[k] = 0;
}

plumb_status rerank_llm_grades(reader *r, const rerank_http_target *t, const char *query,
                               const int64_t *rowid, size_t n, double *grades) {
    char **docs = NULL;
    plumb_status rc = rerank_http_docs(r, rowid, n, &docs);
    if (rc) return rc;
    http_cfg c;
    rerank_http_cfg(t, &c);
    buf user = {0};
    int url_len = (int)strlen(t->url);
    while (url_len > 0 && t->url[url_len - 1] == '/') url_len--; /* as http.c does */
    for (size_t i = 0; !rc && i < n; i++) {
        buf_reset(&user);
        buf_puts(&user, "Query: ");
        buf_puts(&user, query);
        buf_puts(&user, "\n\nPassage:\n");
        buf_puts(&user, docs[i]);
        buf_puts(&user, "\n\nGrade (0-3):");
        buf_putc(&user, 0);
        if (user.oom) { rc = err_set(PLUMB_NOMEM, "rerank"); break; }
        reply rep = {{0}, 0};
        rc = http_chat_stream(&c, SYSTEM, user.p, RERANK_LLM_MAX_TOKENS, 0.0, on_delta, &rep,
                              NULL);
        int g = rc ? -1 : rerank_llm_parse(rep.s, rep.n);
        if (rc == PLUMB_HTTP || rc == PLUMB_TIMEOUT) {
            char why[1024];
            snprintf(why, sizeof why, "%s", plumb_errmsg());
            rc = err_set(rc, "llm reranker: candidate %zu of %zu (chunk %lld): %s", i + 1, n,
                         (long long)rowid[i], why);
        } else if (!rc && g < 0) {
            char txt[64];
            clean(&rep, txt, sizeof txt);
            rc = err_set(PLUMB_HTTP,
                         "llm reranker: candidate %zu of %zu (chunk %lld): POST "
                         "%.*s/chat/completions: the reply \"%s%s\" has no grade 0-3",
                         i + 1, n, (long long)rowid[i], url_len, t->url, txt,
                         rep.n >= sizeof txt ? "..." : "");
        } else if (!rc) {
            grades[i] = g;
        }
    }
    buf_free(&user);
    rerank_http_docs_free(docs, n);
    return rc;
}
