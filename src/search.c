/*
** search.c -- the search pipeline behind plumb_search().
**
** One read transaction per search, so every stage and every field of
** every hit come from the same snapshot:
**   1. lexical candidates: BM25F top-k on the in-memory index (bm25.c),
**      or FTS5's ranking for the baseline scorers (lex.c). In hybrid
**      mode the query is first expanded from its own top hits (RM3,
**      bm25_topk_rm3; settings qe_docs, qe_terms, qe_weight, qe_max_df);
**   2. dense candidates: the query embedded by the index's embedder
**      (embed.c), top-k over the vector store (vec.c). In hybrid mode the
**      query vector first moves towards the vectors of the best lexical
**      candidates (pseudo-relevance feedback: q + w * mean of the top m,
**      renormalised; m = 3, w = 1 by default, settings prf_docs and
**      prf_weight), and the exact dense score of every lexical
**      candidate is looked up too;
**   3. fusion (fuse.c) of the two lists in hybrid mode;
**   4. stage 2: the top N candidates (plumb_search_params.rerank, else the
**      index's setting) rescored, then re-sorted: by the feature reranker
**      (rerank.c) from the BM25 index's forward lists and the vector
**      store, by an HTTP /rerank service (rerank_http.c), or by a chat
**      model grading each of the top few (rerank_llm.c). When the
**      service fails the search keeps the stage-1 order and says so
**      (plumb_hits.rerank_fallback);
**   5. the hits' chunk and document fields, texts and snippets.
** Mode AUTO is hybrid when the snapshot has vectors and the query has a
** term the embedder knows, lexical otherwise. When the in-memory
** indexes are ahead of the snapshot (another thread caught them up to a
** newer one), the search starts over on a newer snapshot.
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Results are one allocation for the struct and hit array plus a string
** arena, so plumb_hits_free is two frees. */
typedef struct hits_impl {
    plumb_hits pub;
    buf arena;
    char rerank_error[1024]; /* plumb_hits.rerank_error's text */
} hits_impl;

static size_t arena_add(buf *a, const char *s, size_t n) {
    size_t off = a->len;
    buf_append(a, s ? s : "", s ? n : 0);
    buf_putc(a, 0);
    return off;
}

static int64_t read_generation(reader *r) {
    int64_t g = -1;
    if (sqlite3_step(r->st_gen) == SQLITE_ROW) g = sqlite3_column_int64(r->st_gen, 0);
    sqlite3_reset(r->st_gen);
    return g;
}

static int64_t read_epoch(reader *r, int *src) {
    int64_t e = 0;
    int s = sqlite3_step(r->st_epoch);
    if (s == SQLITE_ROW) e = sqlite3_column_int64(r->st_epoch, 0);
    *src = s == SQLITE_ROW || s == SQLITE_DONE ? SQLITE_OK : s;
    sqlite3_reset(r->st_epoch);
    return e;
}

/* One ranked candidate on its way to becoming a hit. */
typedef struct ranked {
    int64_t rowid;
    double score, lex, dense, fused, rerank;
    int rank_lex, rank_dense, rank_fused;
} ranked;

/* The stages, inside the open read transaction. *busy: an in-memory
** index is ahead of this snapshot. */
static plumb_status stages(plumb_db *db, reader *r, const lex_query *q, const float *qv,
                           int64_t gen, const plumb_search_params *p, plumb_mode mode, int *busy,
                           ranked **out, size_t *nout, int64_t *matched) {
    const idx_settings *set = &db->set;
    *busy = 0;
    *out = NULL;
    *nout = 0;
    lex_hit *lh = NULL, *dh = NULL;
    size_t nl = 0, nd = 0;
    plumb_status rc = PLUMB_OK;
    int k = p->k;
    int pool_lex = p->k_lex >= 0 ? p->k_lex : set->k_lex;
    int pool_dense = p->k_dense >= 0 ? p->k_dense : set->k_dense;
    int k_lex = pool_lex, k_dense = pool_dense;
    if (mode == PLUMB_MODE_HYBRID) {
        /* deeper lists than the pools only extend the tail (fuse.c) */
        if (k_lex < k) k_lex = k;
        if (k_dense < k) k_dense = k;
    } else {
        k_lex = k_dense = k;
    }
    if (mode != PLUMB_MODE_DENSE) {
        if (p->scorer != PLUMB_SCORER_BM25 || q->nterms == 0) {
            plumb_search_params lp = *p;
            lp.k = k_lex;
            rc = lex_search(r, q, &lp, set, &lh, &nl, matched);
        } else {
            rc = bm25_sync(db->bm25, r, gen);
            if (rc == PLUMB_BUSY) { *busy = 1; return PLUMB_OK; }
            if (rc) return rc;
            /* hybrid: the BM25 query expanded by RM3 from its own top hits */
            bm25_rm3 fb = {p->qe_docs >= 0 ? p->qe_docs : set->qe_docs, set->qe_terms,
                           set->qe_weight, set->qe_max_df};
            if (mode != PLUMB_MODE_HYBRID) fb.docs = 0;
            rc = bm25_topk_rm3(db->bm25, &r->scratch, q, p->bm25_k1 >= 0 ? p->bm25_k1 : set->k1,
                               p->bm25_b >= 0 ? p->bm25_b : set->b,
                               p->weight_title >= 0 ? p->weight_title : set->wt,
                               p->weight_body >= 0 ? p->weight_body : set->wb, k_lex, &fb, &lh,
                               &nl, matched);
            bm25_release(db->bm25);
        }
        if (rc) goto done;
    }
    if (mode != PLUMB_MODE_LEXICAL && qv) {
        rc = vec_sync(db->vec, r, gen);
        if (rc == PLUMB_BUSY) { *busy = 1; rc = PLUMB_OK; goto done; }
        if (rc) goto done;
        vec_index *v = db->vec;
        float *qq = NULL;
        if (mode == PLUMB_MODE_HYBRID && nl > 0) {
            /* pseudo-relevance feedback in the dense space: move the query
            ** towards the vectors of the best lexical candidates */
            int prf_m = set->prf_docs;
            double prf_w = set->prf_weight;
            uint32_t d = vec_dim(v);
            if (prf_m > 0 && prf_w > 0 && (qq = malloc(d * sizeof *qq))) {
                memcpy(qq, qv, d * sizeof *qq);
                for (size_t i = 0; i < nl && i < (size_t)prf_m; i++) {
                    const float *x = vec_get(v, lh[i].rowid);
                    if (x) for (uint32_t j = 0; j < d; j++) qq[j] += (float)(prf_w / prf_m) * x[j];
                }
                double nn = 0;
                for (uint32_t j = 0; j < d; j++) nn += (double)qq[j] * qq[j];
                if (nn > 0) for (uint32_t j = 0; j < d; j++) qq[j] /= (float)sqrt(nn);
                qv = qq;
            }
        }
        rc = vec_topk(v, qv, k_dense, p->vsearch, p->ef_search, &dh, &nd);
        if (!rc && mode == PLUMB_MODE_HYBRID) {
            size_t nc = nl + nd;
            fuse_cand *c = malloc((nc ? nc : 1) * sizeof *c);
            ranked *o = malloc((nc ? nc : 1) * sizeof *o);
            if (!c || !o) {
                free(c);
                free(o);
                rc = err_set(PLUMB_NOMEM, "fuse");
            } else {
                nc = fuse_union(lh, nl, dh, nd, c);
                for (size_t i = 0; i < nc; i++)
                    if (isnan(c[i].dense)) c[i].dense = vec_score(v, qv, c[i].rowid);
                plumb_fusion how = p->fusion != PLUMB_FUSE_DEFAULT ? p->fusion
                                                                   : (plumb_fusion)set->fusion;
                double alpha = p->alpha >= 0 ? p->alpha : set->alpha;
                double rrf_k = p->rrf_k >= 0 ? p->rrf_k : set->rrf_k;
                fuse_score(c, nc, how, alpha, rrf_k, pool_lex, pool_dense);
                if (nc > (size_t)k) nc = (size_t)k;
                for (size_t i = 0; i < nc; i++)
                    o[i] = (ranked){c[i].rowid, c[i].fused, c[i].lex, c[i].dense, c[i].fused,
                                    NAN, c[i].rank_lex, c[i].rank_dense, (int)i + 1};
                free(c);
                *out = o;
                *nout = nc;
            }
        }
        vec_release(v);
        free(qq);
        if (rc || mode == PLUMB_MODE_HYBRID) goto done;
    }
    {
        /* one list: lexical or dense */
        int dense = mode == PLUMB_MODE_DENSE;
        lex_hit *src = dense ? dh : lh;
        size_t n = dense ? nd : nl;
        ranked *o = malloc((n ? n : 1) * sizeof *o);
        if (!o) { rc = err_set(PLUMB_NOMEM, "search"); goto done; }
        for (size_t i = 0; i < n; i++)
            o[i] = dense ? (ranked){src[i].rowid, src[i].score, NAN, src[i].score, NAN, NAN, 0,
                                    (int)i + 1, 0}
                         : (ranked){src[i].rowid, src[i].score, src[i].score, NAN, NAN, NAN,
                                    (int)i + 1, 0, 0};
        *out = o;
        *nout = n;
    }
done:
    free(lh);
    free(dh);
    return rc;
}

/* Chunk and document fields of each ranked candidate into h. */
static plumb_status fetch_hits(reader *r, const lex_query *q, const plumb_search_params *p,
                               const ranked *rk, size_t nl, hits_impl *h) {
    plumb_status rc = PLUMB_OK;
    /* 7 string offsets per hit, resolved to pointers once the arena stops moving */
    size_t *offs = malloc(nl * 7 * sizeof *offs);
    h->pub.hit = calloc(nl, sizeof *h->pub.hit);
    if (!offs || !h->pub.hit) rc = err_set(PLUMB_NOMEM, "plumb_search");
    buf sn = {0};
    for (size_t i = 0; !rc && i < nl; i++) {
        sqlite3_stmt *st = r->st_hit;
        sqlite3_bind_int64(st, 1, rk[i].rowid);
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW) {
            rc = src == SQLITE_DONE
                     ? err_set(PLUMB_CORRUPT, "chunk %lld was retrieved but is not in the "
                               "chunks table", (long long)rk[i].rowid)
                     : store_err(r->conn, src, "read hit");
            sqlite3_reset(st);
            break;
        }
        plumb_hit *ht = &h->pub.hit[i];
        ht->chunk_id = rk[i].rowid;
        ht->score = rk[i].score;
        ht->score_lex = rk[i].lex;
        ht->score_dense = rk[i].dense;
        ht->score_fused = rk[i].fused;
        ht->score_rerank = rk[i].rerank;
        ht->rank_lex = rk[i].rank_lex;
        ht->rank_dense = rk[i].rank_dense;
        ht->rank_fused = rk[i].rank_fused;
        ht->chunk_seq = sqlite3_column_int(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        size_t tn = (size_t)sqlite3_column_bytes(st, 1);
        size_t *o = offs + i * 7;
        for (int c = 2; c <= 5; c++)
            o[c - 2] = sqlite3_column_type(st, c) == SQLITE_NULL
                           ? (size_t)-1
                           : arena_add(&h->arena, (const char *)sqlite3_column_text(st, c),
                                       (size_t)sqlite3_column_bytes(st, c));
        o[4] = p->with_text ? arena_add(&h->arena, text, tn) : (size_t)-1;
        o[5] = (size_t)-1;
        if (p->snippet_tokens > 0 && text) {
            buf_reset(&sn);
            if (snippet_build(r->tok, text, tn, q, p->snippet_tokens, p->hl_open ? p->hl_open : "",
                              p->hl_close ? p->hl_close : "", &sn))
                rc = err_set(PLUMB_NOMEM, "snippet");
            else o[5] = arena_add(&h->arena, sn.p, sn.len);
        }
        if (!rc && o[0] == (size_t)-1) /* NOT NULL in the schema: only damage gets here */
            rc = err_set(PLUMB_CORRUPT, "chunk %lld: its document has no id", (long long)rk[i].rowid);
        sqlite3_reset(st);
    }
    buf_free(&sn);
    if (!rc && h->arena.oom) rc = err_set(PLUMB_NOMEM, "plumb_search");
    if (!rc) {
        for (size_t i = 0; i < nl; i++) {
            plumb_hit *ht = &h->pub.hit[i];
            size_t *o = offs + i * 7;
            const char *a = h->arena.p;
            ht->doc_id = a + o[0];
            ht->title = o[1] == (size_t)-1 ? "" : a + o[1];
            ht->source = o[2] == (size_t)-1 ? "" : a + o[2];
            ht->metadata = o[3] == (size_t)-1 ? NULL : a + o[3];
            ht->text = o[4] == (size_t)-1 ? NULL : a + o[4];
            ht->snippet = o[5] == (size_t)-1 ? NULL : a + o[5];
        }
        h->pub.n = nl;
    }
    free(offs);
    return rc;
}

/* Put rk[0..n) in the order of c[0..n) (sorted; c[i].order indexes rk)
** with c's scores; the rest of rk[0..nr) follow in stage-1 order, each
** scored 1 below the one before it, so that a sort by score (as an
** evaluation does) keeps the order. */
static plumb_status rerank_apply(const rerank_cand *c, ranked *rk, size_t nr, size_t n) {
    ranked *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return err_set(PLUMB_NOMEM, "rerank");
    for (size_t i = 0; i < n; i++) {
        tmp[i] = rk[c[i].order];
        tmp[i].score = tmp[i].rerank = c[i].score;
    }
    memcpy(rk, tmp, n * sizeof *rk);
    for (size_t i = n; i < nr; i++) rk[i].score = rk[n - 1].score - (double)(i - n + 1);
    free(tmp);
    return PLUMB_OK;
}

/* Stage 2 by an HTTP /rerank service, or (llm) by a chat model's grades,
** one call per candidate (rerank_llm.c). LOCKS: none of the in-memory
** indexes' read locks (bm25_sync/vec_sync) is held here -- stages()
** released them -- so writers and other searches' catch-up never wait
** for the network. What the reader holds across the call is its SQLite
** read transaction: a WAL snapshot, which blocks no writer (SQLite's and
** qlog.c's checkpoints are PASSIVE; the WAL only cannot be reset past
** the snapshot until the call ends, bounded by the time limit and its
** retries). Keeping it means the hits' fields come from the snapshot
** that ranked them. A service failure is not an error: the stage-1
** order stays and h says why. */
static plumb_status rerank_http_stage(reader *r, const rerank_http_target *t, int llm,
                                      const char *query, ranked *rk, size_t nr, size_t n,
                                      hits_impl *h) {
    rerank_cand *c = malloc(n * sizeof *c);
    int64_t *ids = malloc(n * sizeof *ids);
    double *sc = malloc(n * sizeof *sc);
    plumb_status rc = c && ids && sc ? PLUMB_OK : err_set(PLUMB_NOMEM, "rerank");
    for (size_t i = 0; !rc && i < n; i++) ids[i] = rk[i].rowid;
    if (!rc) rc = llm ? rerank_llm_grades(r, t, query, ids, n, sc)
                      : rerank_http_scores(r, t, query, ids, n, sc);
    if (rc == PLUMB_HTTP || rc == PLUMB_TIMEOUT) {
        h->pub.rerank_fallback = 1;
        snprintf(h->rerank_error, sizeof h->rerank_error, "%s", plumb_errmsg());
        h->pub.rerank_error = h->rerank_error;
        err_clear();
        rc = PLUMB_OK;
    } else if (!rc) {
        for (size_t i = 0; i < n; i++)
            c[i] = (rerank_cand){.rowid = rk[i].rowid, .order = (int)i, .score = sc[i]};
        rerank_sort(c, n);
        rc = rerank_apply(c, rk, nr, n);
    }
    free(c);
    free(ids);
    free(sc);
    return rc;
}

/* Stage 2: the top n of rk[0..nr) rescored by the feature reranker
** (rerank.c) and re-sorted (rerank_apply). *busy as for stages(). With
** `sink`, the normalised features of the n candidates are handed over
** (tune.c) and the order is left alone. */
static plumb_status rerank_stage(plumb_db *db, reader *r, const lex_query *q, int64_t gen,
                                 const plumb_search_params *p, ranked *rk, size_t nr, size_t n,
                                 int *busy, search_sink *sink) {
    const idx_settings *set = &db->set;
    rerank_cand *c = malloc(n * sizeof *c);
    if (!c) return err_set(PLUMB_NOMEM, "rerank");
    plumb_status rc = bm25_sync(db->bm25, r, gen);
    if (rc == PLUMB_BUSY) { *busy = 1; free(c); return PLUMB_OK; }
    if (rc) { free(c); return rc; }
    rerank_qinfo qi;
    rerank_query_init(&qi, db->bm25, q, p->bm25_k1 >= 0 ? p->bm25_k1 : set->k1,
                      p->bm25_b >= 0 ? p->bm25_b : set->b,
                      p->weight_title >= 0 ? p->weight_title : set->wt,
                      p->weight_body >= 0 ? p->weight_body : set->wb);
    for (size_t i = 0; i < n; i++)
        c[i] = (rerank_cand){.rowid = rk[i].rowid, .order = (int)i, .dense = rk[i].dense,
                             .fused = rk[i].score};
    /* the vector store, for dense feedback, when this snapshot has vectors */
    vec_index *v = NULL;
    if (rk[0].dense == rk[0].dense || (n > 1 && rk[1].dense == rk[1].dense)) {
        rc = vec_sync(db->vec, r, gen);
        if (rc == PLUMB_BUSY) {
            bm25_release(db->bm25);
            *busy = 1;
            free(c);
            return PLUMB_OK;
        }
        if (rc) { bm25_release(db->bm25); free(c); return rc; }
        v = db->vec;
    }
    rc = rerank_features(db->bm25, r, v, &qi, c, n);
    if (v) vec_release(v);
    bm25_release(db->bm25);
    if (rc) { free(c); return rc; }
    rerank_normalise(c, n);
    if (sink) {
        sink->cand = c;
        sink->n = n;
        return PLUMB_OK;
    }
    rerank_score(c, n, set->rerank_w, set->rerank_trees);
    rc = rerank_apply(c, rk, nr, n);
    free(c);
    return rc;
}

plumb_status search_run(plumb_db *db, const char *query, const plumb_search_params *p,
                        plumb_hits **out) {
    return search_run_ex(db, query, p, NULL, out);
}

plumb_status search_run_ex(plumb_db *db, const char *query, const plumb_search_params *p,
                           search_sink *sink, plumb_hits **out) {
    hits_impl *h = calloc(1, sizeof *h);
    if (!h) return err_set(PLUMB_NOMEM, "plumb_search");
    reader *r = NULL;
    lex_query q = {0};
    ranked *rk = NULL;
    size_t nr = 0;
    float *qv = NULL;
    embed_model *em = NULL;
    int64_t qv_epoch = -1;
    int in_txn = 0;
    /* stage 2's kind (tune.c's sink wants the features), checked before
    ** any work: a misuse is never data-dependent */
    int nrr = sink ? sink->n_rerank : p->rerank >= 0 ? p->rerank : db->set.rerank;
    const char *kind = sink ? "features" : p->reranker ? p->reranker : db->set.rerank_kind;
    rerank_http_target target;
    plumb_status rc = PLUMB_OK;
    if (nrr > 0 && !config_rerank_kind_ok(kind)) {
        rc = p->reranker ? err_set(PLUMB_MISUSE, "plumb_search: unknown reranker '%s' "
                                   "(features, http or llm)", kind)
                         : err_set(PLUMB_MISUSE, "setting rerank_kind = '%s' is not a reranker "
                                   "(features, http or llm): plumb config rerank_kind features",
                                   kind);
        goto done;
    }
    int llm = nrr > 0 && !strcmp(kind, "llm");
    int http = llm || (nrr > 0 && !strcmp(kind, "http"));
    if (llm) nrr = rerank_llm_n(p->rerank, db->set.rerank); /* one call per candidate */
    if (http && (rc = rerank_http_target_of(&db->set, p, kind, &target))) goto done;
    rc = store_reader_get(db, &r);
    if (rc) goto done;
    rc = lex_query_parse(r->tok, query, &q);
    if (rc) goto done;
    for (int attempt = 0;; attempt++) {
        int src = sqlite3_exec(r->conn, "BEGIN", NULL, NULL, NULL);
        if (src) { rc = store_err(r->conn, src, "begin read"); goto done; }
        in_txn = 1;
        h->pub.generation = read_generation(r);
        plumb_mode mode = p->mode;
        if (mode != PLUMB_MODE_LEXICAL) {
            int64_t epoch = read_epoch(r, &src);
            if (src) { rc = store_err(r->conn, src, "read vector settings"); goto done; }
            if (epoch <= 0) {
                if (mode == PLUMB_MODE_DENSE || mode == PLUMB_MODE_HYBRID) {
                    rc = err_set(PLUMB_MISUSE, "the index has no vectors: run plumb index "
                                 "(which embeds by default) or plumb_embed() first");
                    goto done;
                }
            } else if (epoch != qv_epoch) {
                /* embed the query once per epoch (an HTTP embedder is slow) */
                embed_model_put(em);
                em = NULL;
                free(qv);
                qv = NULL;
                qv_epoch = -1;
                rc = embed_model_get(db, r->conn, epoch, &em);
                if (!rc && !(qv = malloc((size_t)embed_model_dim(em) * sizeof *qv)))
                    rc = err_set(PLUMB_NOMEM, "plumb_search");
                int usable = 0;
                if (!rc) rc = embed_query(em, r->tok, query, qv, &usable);
                if (rc) goto done;
                if (!usable) { free(qv); qv = NULL; }
                qv_epoch = epoch;
            }
            if (mode == PLUMB_MODE_AUTO) mode = qv ? PLUMB_MODE_HYBRID : PLUMB_MODE_LEXICAL;
            else if (mode == PLUMB_MODE_HYBRID && !qv) mode = PLUMB_MODE_LEXICAL;
        }
        int busy = 0;
        h->pub.matched = 0;
        rc = stages(db, r, &q, qv, h->pub.generation, p, mode, &busy, &rk, &nr, &h->pub.matched);
        if (rc) goto done;
        size_t n2 = nrr > 0 && q.nterms > 0 ? (size_t)nrr < nr ? (size_t)nrr : nr : 0;
        if (!busy && n2 > 0) {
            h->pub.rerank_kind = llm ? "llm" : http ? "http" : "features";
            h->pub.rerank_n = (int)n2;
            if (http) rc = rerank_http_stage(r, &target, llm, query, rk, nr, n2, h);
            else rc = rerank_stage(db, r, &q, h->pub.generation, p, rk, nr, n2, &busy, sink);
            if (rc) goto done;
            if (busy) {
                free(rk);
                rk = NULL;
                nr = 0;
                h->pub.rerank_kind = NULL;
                h->pub.rerank_n = 0;
            }
        }
        if (busy && attempt < 1000) {
            /* an in-memory index moved past this snapshot: read a newer one */
            sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
            in_txn = 0;
            continue;
        }
        if (busy) { rc = err_set(PLUMB_BUSY, "plumb_search: the index kept changing"); goto done; }
        break;
    }
    if (nr) rc = fetch_hits(r, &q, p, rk, nr, h);
done:
    if (in_txn) sqlite3_exec(r->conn, "COMMIT", NULL, NULL, NULL);
    free(rk);
    free(qv);
    embed_model_put(em);
    lex_query_free(&q);
    if (r) store_reader_put(db, r);
    if (rc) {
        free(h->pub.hit);
        buf_free(&h->arena);
        free(h);
        return rc;
    }
    *out = &h->pub;
    return PLUMB_OK;
}

void plumb_hits_free(plumb_hits *hits) {
    if (!hits) return;
    hits_impl *h = (hits_impl *)hits;
    free(h->pub.hit);
    buf_free(&h->arena);
    free(h);
}
