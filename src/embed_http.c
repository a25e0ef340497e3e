/*
** embed_http.c -- vectors from an OpenAI-compatible /v1/embeddings
** service (Ollama, llama.cpp's server, vLLM, TEI, OpenAI) through http.c.
**
** The index records the service's URL, the model name and the dimension
** (embedder row, see embed.c); the API key is never stored: it comes
** from the caller (plumb_embed_params.api_key) when embedding and from
** the environment (PLUMB_EMBED_API_KEY) when a search embeds its query.
** Every vector is normalised to unit length before it is stored, so
** similarity is cosine whatever the service returns. A service that
** answers with another dimension than the index holds is an error naming
** both, never a silently wrong vector.
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unit(float *x, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++) s += (double)x[i] * x[i];
    if (s > 0) {
        float inv = (float)(1 / sqrt(s));
        for (int i = 0; i < dim; i++) x[i] *= inv;
    }
}

static void cfg_of(http_cfg *c, const char *url, const char *model, const plumb_embed_params *p) {
    http_cfg_init(c);
    c->base_url = url;
    c->model = model;
    if (p) {
        c->api_key = p->api_key;
        if (p->batch > 0) c->batch = p->batch;
        if (p->concurrency > 0) c->concurrency = p->concurrency;
        if (p->timeout_ms > 0) c->timeout_ms = p->timeout_ms;
        c->cancel = p->cancel;
    } else {
        c->api_key = getenv("PLUMB_EMBED_API_KEY");
    }
}

plumb_status embed_http_batch(const char *url, const char *model, int dim,
                              const plumb_embed_params *p, const char *const *texts, size_t n,
                              float *out) {
    http_cfg c;
    cfg_of(&c, url, model, p);
    float *v = NULL;
    int got = 0;
    char served[128] = "";
    plumb_status rc = http_embed(&c, texts, n, dim, &v, &got, served, NULL, NULL);
    if (rc) return rc;
    if (got != dim) { /* http_embed checks expect_dim; keep the guarantee here too */
        free(v);
        return err_set(PLUMB_HTTP, "%s: model '%s' returned %d dimensions, the index holds %d",
                       url, model, got, dim);
    }
    memcpy(out, v, n * (size_t)dim * sizeof *out);
    free(v);
    for (size_t i = 0; i < n; i++) unit(out + i * (size_t)dim, dim);
    return PLUMB_OK;
}

plumb_status embed_http_probe(const plumb_embed_params *p, int *dim) {
    http_cfg c;
    cfg_of(&c, p->url, p->model, p);
    const char *probe[1] = {"plumb dimension probe"};
    float *v = NULL;
    char served[128] = "";
    plumb_status rc = http_embed(&c, probe, 1, 0, &v, dim, served, NULL, NULL);
    free(v);
    if (!rc && (*dim < 1 || *dim > 65536))
        rc = err_set(PLUMB_HTTP, "%s: model '%s' returned %d dimensions", p->url, p->model, *dim);
    return rc;
}

plumb_status embed_http_query(const char *url, const char *model, int dim, const char *query,
                              float *out, int *usable) {
    *usable = 0;
    if (!*query) return PLUMB_OK; /* nothing to embed: dense search sits out */
    const char *moved = getenv("PLUMB_EMBED_URL"); /* the service moved */
    plumb_status rc = embed_http_batch(moved && *moved ? moved : url, model, dim, NULL, &query, 1,
                                       out);
    if (rc) {
        char m[1024];
        snprintf(m, sizeof m, "%s", plumb_errmsg());
        return err_set(rc, "embedding the query: %s", m);
    }
    for (int i = 0; i < dim; i++)
        if (out[i] != 0) { *usable = 1; break; }
    return PLUMB_OK;
}
