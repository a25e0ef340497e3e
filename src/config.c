/*
** config.c -- the index's settable search defaults: plumb_config_get,
** plumb_config_set and the list of keys they accept.
**
** Each key names a settings row that store.c reads at open (read_settings)
** and the search uses when its parameters leave the field unset. The
** built-in defaults below are read_settings' (and plumb_open_params_init's
** for the four BM25 keys written at creation); a test compares them. Values
** are validated here, before anything is written, so a stored value is
** always one the search accepts; the messages name the key, the value and
** what is allowed. "fusion" is stored as its plumb_fusion number, as
** read_settings expects, and read back as its name. The four keys written
** at creation must stay present (read_settings counts them), so restoring
** their default writes it instead of deleting the row.
**
** Workload: a handful of calls from the command line; nothing is cached.
*/
#include "plumb_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_NUM, T_INT, T_FUSION, T_KIND, T_WEIGHTS, T_URL, T_TEXT };

typedef struct key_def {
    plumb_config_key pub;
    int type;
    double lo, hi;   /* T_NUM, T_INT */
    size_t max;      /* T_URL, T_TEXT: bytes at most */
    int required;    /* written at creation: unset writes the default */
} key_def;

static const key_def keys[] = {
    {{"bm25_k1", "a number from 0 to 1000", "0.9", "BM25 term-frequency saturation k1"},
     T_NUM, 0, 1000, 0, 1},
    {{"bm25_b", "a number from 0 to 1", "0.4", "BM25 length normalisation b"},
     T_NUM, 0, 1, 0, 1},
    {{"weight_title", "a number from 0 to 1000", "1", "BM25F weight of the title"},
     T_NUM, 0, 1000, 0, 1},
    {{"weight_body", "a number from 0 to 1000", "1", "BM25F weight of the body"},
     T_NUM, 0, 1000, 0, 1},
    {{"fusion", "minmax, zscore or rrf", "minmax", "how hybrid search merges its two lists"},
     T_FUSION, 0, 0, 0, 0},
    {{"alpha", "a number from 0 to 1", "0.5", "weight of the dense side in minmax/zscore fusion"},
     T_NUM, 0, 1, 0, 0},
    {{"rrf_k", "a number from 0 to 1000000", "60", "RRF constant"}, T_NUM, 0, 1e6, 0, 0},
    {{"k_lex", "an integer from 1 to 10000", "100", "BM25 candidates for fusion"},
     T_INT, 1, 10000, 0, 0},
    {{"k_dense", "an integer from 1 to 10000", "100", "dense candidates for fusion"},
     T_INT, 1, 10000, 0, 0},
    {{"prf_docs", "an integer from 0 to 100", "3",
      "lexical hits the dense query moves towards (0: off)"}, T_INT, 0, 100, 0, 0},
    {{"prf_weight", "a number from 0 to 100", "1", "weight of that move"}, T_NUM, 0, 100, 0, 0},
    {{"qe_docs", "an integer from 0 to 100", "10",
      "hybrid: lexical hits the BM25 query is expanded from (RM3; 0: off)"}, T_INT, 0, 100, 0, 0},
    {{"qe_terms", "an integer from 1 to 100", "30", "expansion terms kept"}, T_INT, 1, 100, 0, 0},
    {{"qe_weight", "a number from 0 to 1", "0.7", "weight of the original query in the expanded one"},
     T_NUM, 0, 1, 0, 0},
    {{"qe_max_df", "a number from 0 to 1", "0.03",
      "expansion terms other than the query's are in at most this share of the chunks (1: any)"},
     T_NUM, 0, 1, 0, 0},
    {{"rerank", "an integer from 0 to 10000", "30", "stage 2: candidates reranked (0: off)"},
     T_INT, 0, 10000, 0, 0},
    {{"rerank_kind", "features, http or llm", "features",
      "stage 2's reranker: built-in features, an HTTP /rerank service, or llm: a chat "
      "model (OpenAI-compatible, rerank_url + rerank_model) grading each of the top 5 "
      "(at most 20 with plumb search --rerank N) 0-3, one call each"}, T_KIND, 0, 0, 0, 0},
    {{"rerank_weights", "name=value,... with names of the feature reranker", "",
      "the feature reranker's weights (\"\": the shipped ones); setting them drops "
      "the trees plumb tune learned"}, T_WEIGHTS, 0, 0, 0, 0},
    {{"rerank_url", "an http:// or https:// URL of at most 511 bytes", "",
      "http and llm rerankers: base URL (\"/rerank\" or "
      "\"/chat/completions\" is appended)"}, T_URL, 0, 0, 511, 0},
    {{"rerank_model", "a name of at most 127 bytes", "", "http and llm rerankers: model name sent"},
     T_TEXT, 0, 0, 127, 0},
    {{"rerank_timeout_ms", "an integer from 1 to 600000", "10000",
      "http and llm rerankers: time limit per attempt, ms"}, T_INT, 1, 600000, 0, 0},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const fusion_names[] = {"", "minmax", "zscore", "rrf"}; /* plumb_fusion */

int config_rerank_kind_ok(const char *kind) {
    return kind &&
           (!strcmp(kind, "features") || !strcmp(kind, "http") || !strcmp(kind, "llm"));
}

const plumb_config_key *plumb_config_key_at(size_t i) {
    return i < NKEYS ? &keys[i].pub : NULL;
}

static const key_def *find_key(const char *fn, const char *name) {
    for (size_t i = 0; name && i < NKEYS; i++)
        if (!strcmp(keys[i].pub.name, name)) return &keys[i];
    buf all = {0};
    for (size_t i = 0; i < NKEYS; i++) buf_printf(&all, "%s%s", i ? ", " : "", keys[i].pub.name);
    err_set(PLUMB_MISUSE, "%s: unknown key '%.100s' (settable: %s)", fn, name ? name : "(null)",
            all.p ? all.p : "");
    buf_free(&all);
    return NULL;
}

/* The stored value as text into out (cap bytes); *found 0 when no row. */
static plumb_status read_value(plumb_db *db, const char *key, char *out, size_t cap, int *found) {
    reader *r;
    *found = 0;
    out[0] = 0;
    plumb_status rc = store_reader_get(db, &r);
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(r->conn, "SELECT value FROM settings WHERE key = ?1", -1, &st,
                                 NULL);
    if (!src) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            const char *v = (const char *)sqlite3_column_text(st, 0);
            snprintf(out, cap, "%s", v ? v : "");
            *found = 1;
            src = SQLITE_OK;
        } else if (src == SQLITE_DONE) {
            src = SQLITE_OK;
        }
    }
    if (src) rc = store_err(r->conn, src, "read settings");
    sqlite3_finalize(st);
    store_reader_put(db, r);
    return rc;
}

plumb_status plumb_config_get(plumb_db *db, const char *key, char *value, size_t cap,
                              int *is_set) {
    err_clear();
    if (is_set) *is_set = 0;
    if (!db || !value) return err_set(PLUMB_MISUSE, "plumb_config_get: NULL argument");
    if (cap < PLUMB_CONFIG_VALUE_MAX)
        return err_set(PLUMB_MISUSE, "plumb_config_get: cap %zu is below PLUMB_CONFIG_VALUE_MAX",
                       cap);
    value[0] = 0;
    const key_def *k = find_key("plumb_config_get", key);
    if (!k) return PLUMB_MISUSE;
    int found;
    plumb_status rc = read_value(db, key, value, cap, &found);
    if (rc) return rc;
    if (is_set) *is_set = found;
    if (found && k->type == T_FUSION) {
        int f = atoi(value);
        if (f >= PLUMB_FUSE_MINMAX && f <= PLUMB_FUSE_RRF) snprintf(value, cap, "%s", fusion_names[f]);
    } else if (!found && k->type == T_WEIGHTS) {
        buf b = {0};
        rerank_weights_format(rerank_default_weights, &b);
        if (b.oom) { buf_free(&b); return err_set(PLUMB_NOMEM, "plumb_config_get"); }
        snprintf(value, cap, "%s", b.p ? b.p : "");
        buf_free(&b);
    } else if (!found) {
        snprintf(value, cap, "%s", k->pub.def);
    }
    return PLUMB_OK;
}

static plumb_status bad(const key_def *k, const char *v) {
    return err_set(PLUMB_MISUSE, "%s = '%.200s': expected %s", k->pub.name, v, k->pub.allowed);
}

/* Validate v for k; the text to store into out (cap bytes). */
static plumb_status check_value(const key_def *k, const char *v, char *out, size_t cap) {
    char *end;
    switch (k->type) {
    case T_NUM:
    case T_INT: {
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || end == v || errno == ERANGE || !isfinite(x) || x < k->lo || x > k->hi ||
            (k->type == T_INT && x != floor(x)) || strchr(" \t\n", v[0]))
            return bad(k, v);
        if (k->type == T_INT) snprintf(out, cap, "%lld", (long long)x);
        else snprintf(out, cap, "%.17g", x);
        return PLUMB_OK;
    }
    case T_FUSION:
        for (int f = PLUMB_FUSE_MINMAX; f <= PLUMB_FUSE_RRF; f++)
            if (!strcmp(v, fusion_names[f])) {
                snprintf(out, cap, "%d", f);
                return PLUMB_OK;
            }
        return bad(k, v);
    case T_KIND:
        if (!config_rerank_kind_ok(v)) return bad(k, v);
        snprintf(out, cap, "%s", v);
        return PLUMB_OK;
    case T_WEIGHTS: {
        double w[RERANK_NFEAT];
        if (rerank_weights_parse(v, w)) {
            buf names = {0};
            for (int i = 0; i < RERANK_NFEAT; i++)
                buf_printf(&names, "%s%s", i ? ", " : "", rerank_feature_names[i]);
            plumb_status rc = err_set(PLUMB_MISUSE, "%s = '%.200s': expected %s (names: %s)",
                                      k->pub.name, v, k->pub.allowed, names.p ? names.p : "");
            buf_free(&names);
            return rc;
        }
        snprintf(out, cap, "%s", v);
        return PLUMB_OK;
    }
    case T_URL:
    case T_TEXT:
        if (strlen(v) > k->max) return bad(k, v);
        for (const unsigned char *c = (const unsigned char *)v; *c; c++)
            if (*c < 0x20 || *c == 0x7f || (k->type == T_URL && *c == ' ')) return bad(k, v);
        if (k->type == T_URL && strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
            return bad(k, v);
        snprintf(out, cap, "%s", v);
        return PLUMB_OK;
    }
    return bad(k, v);
}

plumb_status plumb_config_set(plumb_db *db, const char *key, const char *value) {
    err_clear();
    if (!db) return err_set(PLUMB_MISUSE, "plumb_config_set: db is NULL");
    const key_def *k = find_key("plumb_config_set", key);
    if (!k) return PLUMB_MISUSE;
    char norm[PLUMB_CONFIG_VALUE_MAX];
    const char *store = NULL; /* NULL: delete the row */
    plumb_status rc = PLUMB_OK;
    if (value) {
        if ((rc = check_value(k, value, norm, sizeof norm))) return rc;
        store = norm;
    } else if (k->required) {
        store = k->pub.def;
    }
    if (!strcmp(k->pub.name, "weight_title") || !strcmp(k->pub.name, "weight_body")) {
        /* BM25F needs one field with weight: both 0 is refused */
        const char *other = k->pub.name[7] == 't' ? "weight_body" : "weight_title";
        char ov[PLUMB_CONFIG_VALUE_MAX];
        int is_set;
        if ((rc = plumb_config_get(db, other, ov, sizeof ov, &is_set))) return rc;
        if (store && strtod(store, NULL) == 0 && strtod(ov, NULL) == 0)
            return err_set(PLUMB_MISUSE, "%s = '%s': %s is 0 too; one field needs a weight above 0",
                           k->pub.name, value, other);
    }
    /* trees plumb tune learned sit on top of the weights they were
    ** learned with: new weights drop them (plumb tune learns new ones) */
    const char *ks[2] = {k->pub.name, "rerank_trees"};
    const char *vs[2] = {store, NULL};
    return store_put_settings(db, ks, vs, strcmp(k->pub.name, "rerank_weights") ? 1 : 2);
}
