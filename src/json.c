/*
** json.c -- the only file that includes cJSON.
**
** Uses: validating a metadata string as a JSON object, reading one BEIR
** JSONL record ({"_id", "title", "text", "metadata"}) from a line, a
** read-only view of whole documents (tokenizer files, HTTP responses),
** and writing strings and numbers into JSON text (HTTP requests).
** Positions come from cJSON_ParseWithOpts, never from cJSON's
** process-global error pointer, so concurrent parsers do not interfere.
*/
#include "plumb_impl.h"

#include <cjson/cJSON.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int json_is_object(const char *s, size_t *err_off) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(s, &end, 1);
    int obj = j && cJSON_IsObject(j);
    if (err_off) *err_off = j ? 0 : (size_t)((end ? end : s) - s);
    cJSON_Delete(j);
    return obj;
}

static json_rec_status parse_rec(const char *line, json_rec *r);

static const char *str_of(cJSON *o, const char *key, int *bad) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (v && !cJSON_IsNull(v) && bad) *bad = 1;
    return NULL;
}

/* The escapes \u0000 in s: cJSON decodes one into a NUL inside a C string,
** which cuts the value there (the rest of a text, silently). Returns how
** many there are; with out != NULL, also writes s without them to out
** (room for strlen(s) + 1). A backslash is an escape's only when it is not
** itself escaped; outside strings JSON has no backslashes. */
static size_t nul_escapes(const char *s, char *out) {
    size_t n = 0;
    while (*s) {
        if (s[0] == '\\' && s[1] == 'u' && s[2] == '0' && s[3] == '0' && s[4] == '0' &&
            s[5] == '0') {
            n++;
            s += 6;
            continue;
        }
        size_t step = s[0] == '\\' && s[1] ? 2 : 1;
        if (out) { memcpy(out, s, step); out += step; }
        s += step;
    }
    if (out) *out = 0;
    return n;
}

json_rec_status json_rec_parse(const char *line, json_rec *r) {
    memset(r, 0, sizeof *r);
    char *clean = NULL;
    if ((r->nul_escapes = nul_escapes(line, NULL)) != 0) {
        if (!(clean = malloc(strlen(line) + 1))) return JSON_REC_NOMEM;
        nul_escapes(line, clean);
        line = clean; /* columns in messages are then the cleaned line's */
    }
    json_rec_status st = parse_rec(line, r);
    free(clean);
    return st;
}

static json_rec_status parse_rec(const char *line, json_rec *r) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(line, &end, 0);
    if (!j) {
        r->err_col = (size_t)((end ? end : line) - line) + 1;
        return JSON_REC_MALFORMED;
    }
    r->tree = j;
    const char *rest = end;
    while (rest && (*rest == ' ' || *rest == '\t' || *rest == '\r')) rest++;
    if (rest && *rest) {
        r->err_col = (size_t)(rest - line) + 1;
        return JSON_REC_TRAILING;
    }
    if (!cJSON_IsObject(j)) return JSON_REC_NOT_OBJECT;
    cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "_id");
    if (cJSON_IsString(id) && id->valuestring[0]) r->id = id->valuestring;
    else if (cJSON_IsNumber(id) && isfinite(id->valuedouble)) {
        snprintf(r->idnum, sizeof r->idnum, "%.17g", id->valuedouble);
        r->id = r->idnum;
    }
    r->title = str_of(j, "title", &r->title_bad);
    r->text = str_of(j, "text", &r->text_bad);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    if (cJSON_IsObject(m) && m->child) {
        r->metadata = cJSON_PrintUnformatted(m);
        if (!r->metadata) return JSON_REC_NOMEM;
    }
    return JSON_REC_OK;
}

void json_rec_free(json_rec *r) {
    if (r->metadata) cJSON_free(r->metadata);
    cJSON_Delete(r->tree);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- */
/* A read-only view of a parsed document, for loaders of JSON files   */
/* (tokenizer files in bpe.c): a json_val is a cJSON node.            */
/* ---------------------------------------------------------------- */

#define N(v) ((const cJSON *)(const void *)(v))

json_val *json_parse(const char *text, const char **end) {
    const char *e = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &e, 0);
    if (end) *end = e;
    return (json_val *)(void *)j;
}
void json_free(json_val *root) { cJSON_Delete((cJSON *)(void *)root); }
json_val *json_get(const json_val *obj, const char *key) {
    return (json_val *)(void *)cJSON_GetObjectItemCaseSensitive(N(obj), key);
}
json_val *json_at(const json_val *arr, int i) {
    return (json_val *)(void *)cJSON_GetArrayItem(N(arr), i);
}
int json_len(const json_val *v) { return v ? cJSON_GetArraySize(N(v)) : 0; }
json_val *json_first(const json_val *v) { return v ? (json_val *)(void *)N(v)->child : NULL; }
json_val *json_next(const json_val *v) { return v ? (json_val *)(void *)N(v)->next : NULL; }
const char *json_key(const json_val *v) { return v ? N(v)->string : NULL; }
int json_is_str(const json_val *v) { return cJSON_IsString(N(v)); }
int json_is_num(const json_val *v) { return cJSON_IsNumber(N(v)); }
int json_is_obj(const json_val *v) { return cJSON_IsObject(N(v)); }
int json_is_arr(const json_val *v) { return cJSON_IsArray(N(v)); }
int json_is_true(const json_val *v) { return cJSON_IsTrue(N(v)); }
int json_is_null(const json_val *v) { return cJSON_IsNull(N(v)); }
const char *json_str(const json_val *v) { return cJSON_IsString(N(v)) ? N(v)->valuestring : NULL; }
double json_num(const json_val *v) { return cJSON_IsNumber(N(v)) ? N(v)->valuedouble : 0; }

/* ---------------------------------------------------------------- */
/* Writing JSON text                                                  */
/* ---------------------------------------------------------------- */

static void put_escaped(buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* bytes copied as they are, in one append */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') { run++; continue; }
        buf_append(b, s + i - run, run);
        run = 0;
        switch (ch) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], 0};
            buf_puts(b, u);
        }
        }
    }
    buf_append(b, s + n - run, run);
}

void json_buf_str(buf *b, const char *s, size_t n) {
    buf_putc(b, '"');
    if (utf8_check(s, n) == n) {
        put_escaped(b, s, n);
    } else {
        /* utf8_repair drops NUL bytes; repair the pieces between them so
        ** they still come out as \u0000 */
        buf fixed = {0};
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && s[i]) continue;
            buf_reset(&fixed);
            utf8_repair(s + start, i - start, &fixed, NULL);
            if (fixed.oom) b->oom = 1;
            put_escaped(b, fixed.p ? fixed.p : "", fixed.len);
            if (i < n) buf_puts(b, "\\u0000");
            start = i + 1;
        }
        buf_free(&fixed);
    }
    buf_putc(b, '"');
}

void json_buf_num(buf *b, double v) {
    if (!isfinite(v)) { buf_puts(b, "null"); return; }
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    /* printf and strtod follow LC_NUMERIC; JSON's decimal point is '.' */
    const char *dp = localeconv()->decimal_point;
    char *at = dp && dp[0] && strcmp(dp, ".") ? strstr(t, dp) : NULL;
    if (at) {
        size_t dl = strlen(dp);
        *at = '.';
        memmove(at + 1, at + dl, strlen(at + dl) + 1);
    }
    buf_puts(b, t);
}
