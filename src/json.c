/*
** json.c -- the only file that includes cJSON.
**
** Two uses: validating a metadata string as a JSON object, and reading
** one BEIR JSONL record ({"_id", "title", "text", "metadata"}) from a
** line. Positions come from cJSON_ParseWithOpts, never from cJSON's
** process-global error pointer, so concurrent parsers do not interfere.
*/
#include "plumb_impl.h"

#include <cjson/cJSON.h>
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

static const char *str_of(cJSON *o, const char *key, int *bad) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (v && !cJSON_IsNull(v) && bad) *bad = 1;
    return NULL;
}

json_rec_status json_rec_parse(const char *line, json_rec *r) {
    memset(r, 0, sizeof *r);
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
