/*
** embed_http.c -- embeddings from an OpenAI-compatible HTTP service.
** NOT YET BUILT: the HTTP client (http.c) lands separately; until then
** every call fails with a message saying so.
*/
#include "plumb_impl.h"

plumb_status embed_http_batch(const char *url, const char *model, int dim,
                              const plumb_embed_params *p, const char *const *texts, size_t n,
                              float *out) {
    (void)url, (void)model, (void)dim, (void)p, (void)texts, (void)n, (void)out;
    return err_set(PLUMB_ERROR, "the HTTP embedder is not built into this plumb yet");
}

plumb_status embed_http_probe(const plumb_embed_params *p, int *dim) {
    (void)p, (void)dim;
    return err_set(PLUMB_ERROR, "the HTTP embedder is not built into this plumb yet");
}

plumb_status embed_http_query(const char *url, const char *model, int dim, const char *query,
                              float *out, int *usable) {
    (void)url, (void)model, (void)dim, (void)query, (void)out, (void)usable;
    return err_set(PLUMB_ERROR, "the HTTP embedder is not built into this plumb yet");
}
