/*
** ann.c -- approximate nearest-neighbour indexes through FAISS's C API.
**
** What: a thin layer over <faiss/c_api/...>: build an index from a factory
** string (HNSW, IVF with flat, SQ or PQ codes, or flat), train, add
** vectors with caller ids, search, set efSearch/nprobe, save and load.
** This is the only file that includes FAISS headers; where the installed
** FAISS lacks the compiled C API, src/ann_capi.cpp provides the functions
** used here (see CMakeLists.txt).
** Invariant: ids are the caller's (IVF stores them; other indexes are
** wrapped in an IndexIDMap by prefixing "IDMap," to the factory string);
** scores leave this file "higher is better" (IP as is, L2 negated), and a
** missing result is id -1, score -INFINITY. FAISS errors become
** PLUMB_ERROR (PLUMB_MISUSE for an unknown factory string or parameter,
** PLUMB_IO for file errors) with FAISS's message.
** Workload: building once per index generation, then many concurrent
** single-query searches (FAISS's const search is thread-safe).
*/
#include "plumb_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PLUMB_HAVE_FAISS

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

struct ann_index {
    FaissIndex *fx;
    size_t d;
    ann_metric metric;
    int rows; /* ids are row numbers (bare flat index) */
};

static plumb_status ferr(plumb_status rc, int frc, const char *what) {
    const char *m = faiss_get_last_error();
    return err_set(rc, "faiss %s: %s (%d)", what, m ? m : "error", frc);
}

int ann_available(void) { return 1; }

/* IVF indexes keep ids themselves; everything else needs an IDMap. */
static int needs_idmap(const char *factory) {
    return strncmp(factory, "IDMap", 5) != 0 && strstr(factory, "IVF") == NULL;
}

plumb_status ann_new(const char *factory, size_t d, ann_metric metric, ann_index **out) {
    *out = NULL;
    if (!factory || !*factory || d == 0 || d > 65536) return err_set(PLUMB_MISUSE, "ann_new: bad arguments");
    char desc[256];
    int n = snprintf(desc, sizeof desc, "%s%s", needs_idmap(factory) ? "IDMap," : "", factory);
    if (n < 0 || (size_t)n >= sizeof desc) return err_set(PLUMB_MISUSE, "ann_new: factory string too long");
    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix) return err_set(PLUMB_NOMEM, "ann_new: out of memory");
    int frc = faiss_index_factory(&ix->fx, (int)d, desc,
                                  metric == ANN_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT);
    if (frc) {
        free(ix);
        return ferr(PLUMB_MISUSE, frc, desc);
    }
    ix->d = d;
    ix->metric = metric;
    *out = ix;
    return PLUMB_OK;
}

plumb_status ann_new_flat_ip(size_t d, ann_index **out) {
    *out = NULL;
    if (d == 0 || d > 65536) return err_set(PLUMB_MISUSE, "ann_new_flat_ip: bad dimension");
    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix) return err_set(PLUMB_NOMEM, "ann_new_flat_ip: out of memory");
    FaissIndexFlatIP *f = NULL;
    int frc = faiss_IndexFlatIP_new_with(&f, (idx_t)d);
    if (frc) {
        free(ix);
        return ferr(PLUMB_ERROR, frc, "IndexFlatIP");
    }
    ix->fx = f;
    ix->d = d;
    ix->metric = ANN_IP;
    ix->rows = 1;
    *out = ix;
    return PLUMB_OK;
}

void ann_free(ann_index *ix) {
    if (!ix) return;
    faiss_Index_free(ix->fx);
    free(ix);
}

size_t ann_dim(const ann_index *ix) { return ix->d; }
int64_t ann_count(const ann_index *ix) { return faiss_Index_ntotal(ix->fx); }
int ann_is_trained(const ann_index *ix) { return faiss_Index_is_trained(ix->fx); }

plumb_status ann_train(ann_index *ix, size_t n, const float *x) {
    if (faiss_Index_is_trained(ix->fx)) return PLUMB_OK;
    int frc = faiss_Index_train(ix->fx, (idx_t)n, x);
    return frc ? ferr(PLUMB_ERROR, frc, "train") : PLUMB_OK;
}

plumb_status ann_add(ann_index *ix, size_t n, const float *x, const int64_t *ids) {
    if (!faiss_Index_is_trained(ix->fx)) return err_set(PLUMB_MISUSE, "ann_add: index not trained");
    if ((ids == NULL) != (ix->rows != 0)) return err_set(PLUMB_MISUSE, "ann_add: ids must be given unless the index is a bare flat one");
    int frc = ids ? faiss_Index_add_with_ids(ix->fx, (idx_t)n, x, ids) : faiss_Index_add(ix->fx, (idx_t)n, x);
    return frc ? ferr(PLUMB_ERROR, frc, "add") : PLUMB_OK;
}

plumb_status ann_set_param(ann_index *ix, const char *name, double value) {
    FaissParameterSpace *ps = NULL;
    int frc = faiss_ParameterSpace_new(&ps);
    if (frc) return ferr(PLUMB_NOMEM, frc, "ParameterSpace");
    frc = faiss_ParameterSpace_set_index_parameter(ps, ix->fx, name, value);
    faiss_ParameterSpace_free(ps);
    return frc ? ferr(PLUMB_MISUSE, frc, name) : PLUMB_OK;
}

plumb_status ann_search(const ann_index *ix, size_t nq, const float *q, size_t k, float *scores,
                        int64_t *ids) {
    if (k == 0 || nq == 0) return PLUMB_OK;
    int frc = faiss_Index_search(ix->fx, (idx_t)nq, q, (idx_t)k, scores, ids);
    if (frc) return ferr(PLUMB_ERROR, frc, "search");
    for (size_t i = 0; i < nq * k; i++) {
        if (ids[i] < 0) scores[i] = -INFINITY;
        else if (ix->metric == ANN_L2) scores[i] = -scores[i];
    }
    return PLUMB_OK;
}

plumb_status ann_save(const ann_index *ix, const char *path) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (!tmp) return err_set(PLUMB_NOMEM, "ann_save: out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    plumb_status rc = PLUMB_OK;
    int frc = faiss_write_index_fname(ix->fx, tmp);
    if (frc) {
        rc = ferr(PLUMB_IO, frc, "write_index");
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = err_set(PLUMB_IO, "ann_save: rename %s: failed", tmp);
        remove(tmp);
    }
done:
    free(tmp);
    return rc;
}

plumb_status ann_load(const char *path, ann_index **out) {
    *out = NULL;
    ann_index *ix = calloc(1, sizeof *ix);
    if (!ix) return err_set(PLUMB_NOMEM, "ann_load: out of memory");
    int frc = faiss_read_index_fname(path, 0, &ix->fx);
    if (frc) {
        free(ix);
        return ferr(PLUMB_IO, frc, path);
    }
    ix->d = (size_t)faiss_Index_d(ix->fx);
    ix->metric = faiss_Index_metric_type(ix->fx) == METRIC_L2 ? ANN_L2 : ANN_IP;
    *out = ix;
    return PLUMB_OK;
}

#else /* !PLUMB_HAVE_FAISS: every call reports that FAISS is missing. */

struct ann_index {
    int unused;
};

static plumb_status nofaiss(void) { return err_set(PLUMB_ERROR, "plumb was built without FAISS"); }
int ann_available(void) { return 0; }
plumb_status ann_new(const char *factory, size_t d, ann_metric metric, ann_index **out) {
    (void)factory, (void)d, (void)metric;
    *out = NULL;
    return nofaiss();
}
plumb_status ann_new_flat_ip(size_t d, ann_index **out) {
    (void)d;
    *out = NULL;
    return nofaiss();
}
void ann_free(ann_index *ix) { free(ix); }
size_t ann_dim(const ann_index *ix) { (void)ix; return 0; }
int64_t ann_count(const ann_index *ix) { (void)ix; return 0; }
int ann_is_trained(const ann_index *ix) { (void)ix; return 0; }
plumb_status ann_train(ann_index *ix, size_t n, const float *x) { (void)ix, (void)n, (void)x; return nofaiss(); }
plumb_status ann_add(ann_index *ix, size_t n, const float *x, const int64_t *ids) {
    (void)ix, (void)n, (void)x, (void)ids;
    return nofaiss();
}
plumb_status ann_set_param(ann_index *ix, const char *name, double value) {
    (void)ix, (void)name, (void)value;
    return nofaiss();
}
plumb_status ann_search(const ann_index *ix, size_t nq, const float *q, size_t k, float *scores,
                        int64_t *ids) {
    (void)ix, (void)nq, (void)q, (void)k, (void)scores, (void)ids;
    return nofaiss();
}
plumb_status ann_save(const ann_index *ix, const char *path) { (void)ix, (void)path; return nofaiss(); }
plumb_status ann_load(const char *path, ann_index **out) {
    (void)path;
    *out = NULL;
    return nofaiss();
}

#endif
