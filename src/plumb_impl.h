/*
** plumb_impl.h -- internal interfaces shared by the library's files.
**
** One banner section per .c file. Cross-file internals carry the file's
** stem as prefix (tok_, chunk_, parse_, store_ ...). Nothing here is
** exported from the shared library (-fvisibility=hidden).
*/
#ifndef PLUMB_IMPL_H
#define PLUMB_IMPL_H

#define PLUMB_BUILDING 1
#include "plumb.h"

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>

#define PLUMB_INTERNAL __attribute__((visibility("hidden")))

/* ======================================================================
** err.c -- thread-local error message and status text
** ==================================================================== */

/* Set this thread's detail message (printf-style) and return rc, so
** callers write `return err_set(PLUMB_IO, "open %s: %s", p, strerror(e));` */
plumb_status err_set(plumb_status rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void err_clear(void);

/* ======================================================================
** buf.c -- growable byte buffer (always NUL-terminated when len > 0)
** ==================================================================== */

typedef struct buf {
    char *p;    /* bytes; p[len] == 0 once anything was appended */
    size_t len; /* bytes used, excluding the terminating NUL */
    size_t cap; /* bytes allocated */
    int oom;    /* sticky: an append failed; later appends are no-ops */
} buf;

void buf_append(buf *b, const char *s, size_t n);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf *b);   /* len = 0, keeps memory */
void buf_free(buf *b);    /* releases memory; b is reusable after */
char *buf_detach(buf *b); /* returns p (or "" copy), leaves b empty; NULL on OOM */

/* ======================================================================
** hash.c -- content hashing
** ==================================================================== */

/* 64-bit non-cryptographic content hash (stable across platforms and
** versions: it is stored in the index). */
uint64_t hash64(const void *data, size_t n, uint64_t seed);
/* hash64() computed incrementally, for data too large to hold at once:
** hash64_begin() with the total length n the updates will add up to
** (hash64 mixes it in first), hash64_update() any number of times with
** pieces of any size, then hash64_end() returns what hash64() of the
** concatenation returns. Feeding other than n bytes in all is a bug
** (asserted). The state holds no pointers: copy or discard it freely. */
typedef struct hash64_state {
    uint64_t h;             /* running mix */
    uint64_t n, fed;        /* declared and fed length, bytes */
    unsigned char part[8];  /* bytes of an incomplete word */
    unsigned npart;         /* how many of part[] are held, < 8 */
} hash64_state;
void hash64_begin(hash64_state *s, uint64_t n, uint64_t seed);
void hash64_update(hash64_state *s, const void *data, size_t n);
uint64_t hash64_end(const hash64_state *s);
/* Writes 16 lowercase hex digits and a NUL into out[17]. */
void hash64_hex(uint64_t h, char out[17]);

/* ======================================================================
** utf8.c -- validation and repair
** ==================================================================== */

/* Returns the byte offset of the first invalid UTF-8 sequence in s[0..n),
** or n if s is valid. Overlong forms, surrogates and code points above
** U+10FFFF are invalid. NUL bytes are valid UTF-8 but reported by
** utf8_find_nul(). */
size_t utf8_check(const char *s, size_t n);

/* Appends s to out with every invalid sequence replaced by U+FFFD and
** every NUL byte dropped. Returns the number of replacements made;
** *first_bad (may be NULL) receives the offset of the first one, or n. */
size_t utf8_repair(const char *s, size_t n, buf *out, size_t *first_bad);

/* Appends UTF-16 s[0..n) (no byte order mark; big_endian or little) to out
** as UTF-8. Lone surrogates and an odd last byte become U+FFFD, U+0000 is
** dropped; returns how many such units there were, *first_bad (may be
** NULL) the byte offset of the first, or n. */
size_t utf16_to_utf8(const char *s, size_t n, int big_endian, buf *out, size_t *first_bad);

/* ======================================================================
** json.c -- the only file that includes cJSON
** ==================================================================== */

/* 1 when s is one JSON object (nothing after it); else 0 and *err_off
** (may be NULL) is the byte offset where parsing failed (0: valid JSON
** that is not an object). */
int json_is_object(const char *s, size_t *err_off);

typedef enum json_rec_status {
    JSON_REC_OK = 0,
    JSON_REC_MALFORMED,  /* not JSON; err_col is the 1-based column */
    JSON_REC_TRAILING,   /* text after the value; err_col where it starts */
    JSON_REC_NOT_OBJECT, /* valid JSON, but not an object */
    JSON_REC_NOMEM
} json_rec_status;

/* One BEIR JSONL record. Strings point into the parsed tree and live
** until json_rec_free(). */
typedef struct json_rec {
    const char *id;       /* "_id" (a string, or a finite number printed %.17g); NULL if absent */
    const char *title;    /* NULL if absent or null */
    const char *text;     /* NULL if absent or null */
    char *metadata;       /* "metadata" object printed compactly; NULL if absent or empty */
    int title_bad, text_bad; /* present but neither a string nor null */
    size_t err_col;
    size_t nul_escapes;   /* \u0000 escapes dropped from the line before parsing */
    char idnum[32];
    void *tree;
} json_rec;

/* Parse one NUL-terminated line. Escapes \u0000 are dropped (counted in
** nul_escapes): text in the index holds no NUL, and a decoded NUL would cut
** the C string there. Call json_rec_free() whatever it returns. */
json_rec_status json_rec_parse(const char *line, json_rec *r);
void json_rec_free(json_rec *r);

/* A read-only view of a parsed JSON document, for file loaders (bpe.c).
** Every accessor takes NULL and returns NULL/0/false for it, so lookups
** chain without checks. Nodes live until json_free(root). */
typedef struct json_val json_val;
json_val *json_parse(const char *text, const char **end); /* NULL: syntax error at *end */
void json_free(json_val *root);
json_val *json_get(const json_val *obj, const char *key);  /* member, or NULL */
json_val *json_at(const json_val *arr, int i);             /* element, or NULL */
int json_len(const json_val *v);                           /* elements or members */
json_val *json_first(const json_val *v);                   /* iterate an array/object */
json_val *json_next(const json_val *v);
const char *json_key(const json_val *member);              /* name inside an object */
int json_is_str(const json_val *v), json_is_num(const json_val *v);
int json_is_obj(const json_val *v), json_is_arr(const json_val *v);
int json_is_true(const json_val *v), json_is_null(const json_val *v);
const char *json_str(const json_val *v);                   /* NULL unless a string */
double json_num(const json_val *v);                        /* 0 unless a number */

/* Append s[0..n) as a JSON string literal, quotes included: '"', '\\'
** and control characters escaped, invalid UTF-8 replaced by U+FFFD and
** NUL bytes written as \u0000, so the result is valid JSON whatever s
** holds. */
void json_buf_str(buf *b, const char *s, size_t n);
/* Append v as a JSON number (shortest "%.17g" form that reads back, '.'
** as decimal point whatever the locale); NaN and infinities, which JSON
** cannot hold, become null. */
void json_buf_num(buf *b, double v);

/* ======================================================================
** sse.c -- incremental Server-Sent Events parser (WHATWG event stream)
**
** Feed byte slices as they arrive, split anywhere. Lines end in CRLF, LF
** or CR (a CRLF split between two slices is one line end). "name: value"
** lines drop one space after the colon ("data:x" and "data: x" are the
** same); the "data" lines of an event are joined with "\n"; "event" names
** it (up to a NUL byte; "message" when absent or empty); "id" sets the
** last event id, which lasts across events; lines starting with ':' are
** comments; "retry" and unknown fields are ignored; a leading UTF-8 BOM is
** skipped. A blank line dispatches the pending event when it had at least
** one data line.
** An event cut off by the end of the stream is never dispatched.
**
** Memory is bounded: when the current line and the pending event together
** would exceed `max` bytes, sse_feed fails with PLUMB_CORRUPT.
** ==================================================================== */

/* One event. event and data are NUL-terminated (data may also hold NUL
** bytes: n is its length) and valid only during the call. Return PLUMB_OK
** to go on; any other status stops the parser and sse_feed returns it
** (set the detail with err_set first). */
typedef plumb_status (*sse_event_fn)(void *arg, const char *event, const char *data, size_t n);

typedef struct sse {
    sse_event_fn fn;
    void *arg;
    size_t max;      /* bytes the current line plus the pending event may hold */
    buf line;        /* the current line so far, without its end */
    buf data;        /* data lines of the pending event, joined by "\n" */
    buf event;       /* event type of the pending event ("" = "message") */
    buf id;          /* last event id (id.p NULL when none); read it in fn */
    size_t ndata;    /* data lines in the pending event */
    int cr;          /* the last byte fed was CR: an LF right after it is skipped */
    int comment;     /* inside a comment line: dropped up to its end */
    int first;       /* no line has ended yet (BOM check) */
    plumb_status rc; /* sticky: the first error or callback stop */
} sse;

void sse_init(sse *p, size_t max, sse_event_fn fn, void *arg);
/* Feed n bytes. Returns PLUMB_OK, the callback's status, PLUMB_CORRUPT
** (event over max) or PLUMB_NOMEM; after a failure every feed returns the
** same status until sse_reset. */
plumb_status sse_feed(sse *p, const char *s, size_t n);
/* Forget all state (a new stream), keeping the buffers' memory. */
void sse_reset(sse *p);
void sse_free(sse *p);

/* ======================================================================
** http.c -- OpenAI-compatible services over HTTP through libcurl (the
** only file that includes curl): embeddings, streamed chat completions,
** reranking.
**
** Calls are synchronous. Each call makes and frees its own curl handles,
** so calls on different threads share nothing (curl_global_init runs once,
** under pthread_once); the config and the inputs are only read.
**
** Retries: HTTP 408, 429 and 5xx other than 501 and 505, failed, refused
** or dropped connections and timeouts are retried up to max_retries times,
** after backoff_ms doubled per retry (with jitter, capped at 20 s), or
** after the server's Retry-After (seconds or an HTTP date, capped at 60 s)
** when it sent one. Other statuses fail at once.
**
** Errors: plumb_errmsg() names the method and URL, then what went wrong:
** "HTTP 400: <the server's error message>", "connection dropped (...)",
** "malformed JSON at byte 17 of the response", plus the number of
** attempts when there was more than one. Status codes: PLUMB_HTTP for
** anything the service or the connection did wrong (error status, broken
** connection, malformed or inconsistent answer), PLUMB_TIMEOUT when a
** time limit ran out, PLUMB_CANCELLED when *cancel was set or
** a callback asked to stop, PLUMB_MISUSE for bad arguments, PLUMB_NOMEM.
** Nothing is printed. The usual proxy variables (https_proxy, no_proxy
** ...) apply, as they do for the curl tool.
** ==================================================================== */

typedef struct http_cfg {
    const char *base_url;    /* "http://127.0.0.1:8080/v1"; "/embeddings", "/chat/completions"
                                or "/rerank" is appended (a trailing '/' is ignored) */
    const char *api_key;     /* NULL or "": no Authorization header; else "Bearer KEY" */
    const char *model;       /* sent as "model"; NULL or "" leaves it out */
    /* time limits in ms, per attempt; 0 or less: none (connect: curl's 300 s) */
    long connect_timeout_ms; /* TCP (and TLS) connection set-up; default 5000 */
    long timeout_ms;         /* the whole request, or for a stream the wait for its
                                first body byte; default 60000 */
    long idle_timeout_ms;    /* streams: longest silence between body bytes; default 30000 */
    int max_retries;         /* retries after the first attempt; default 4 */
    long backoff_ms;         /* first retry delay, doubled per retry; default 500 */
    int batch;               /* embeddings: inputs per request; default 64 */
    int concurrency;         /* embeddings: requests in flight at once; default 4 */
    volatile int *cancel;    /* NULL, or set to non-zero (from any thread or a signal
                                handler) to abort within about 50 ms */
} http_cfg;

/* Defaults as above; base_url, api_key and model NULL. */
void http_cfg_init(http_cfg *c);

/* Embed texts[0..n) with POST {base_url}/embeddings, {"model", "input":
** [...]}, c->batch inputs per request and c->concurrency requests at a
** time. Every response is checked: as many embeddings as inputs, each
** "index" in range and used once, numbers only, one dimension for all
** (and equal to expect_dim when that is > 0: the message names both).
** On PLUMB_OK *out is malloc'd (free()) and holds n * *dim floats, row i
** the embedding of texts[i]; model_out (may be NULL) receives the model
** the server reported, or c->model. progress (may be NULL) is called after
** each batch with the inputs done so far. n == 0 makes no request and
** gives *out NULL, *dim expect_dim (or 0). On failure *out is NULL and
** *dim 0. */
plumb_status http_embed(const http_cfg *c, const char *const *texts, size_t n, int expect_dim,
                        float **out, int *dim, char model_out[128],
                        void (*progress)(void *arg, size_t done, size_t total), void *arg);

typedef struct http_chat_result {
    char model[128];         /* as reported by the server ("" when it did not say) */
    char finish_reason[32];  /* "stop", "length" ... ("" when the server did not say) */
    int64_t prompt_tokens;   /* from "usage"; -1 when the server sent none */
    int64_t completion_tokens;
    double ttft_ms;          /* from the call to the first content byte, retries included */
    double total_ms;         /* the whole call */
    size_t bytes;            /* content bytes handed to on_delta */
} http_chat_result;

/* POST {base_url}/chat/completions with "stream": true (and usage
** requested), a system message (skipped when NULL or "") and a user
** message; max_tokens <= 0 and temperature < 0 leave those fields out.
** on_delta receives each piece of the answer's content as it arrives
** (not NUL-terminated, UTF-8 possibly split between pieces); a non-zero
** return cancels. The stream ends at "data: [DONE]" (or, for servers that
** omit it, at a clean end after a finish_reason); a server that answers
** with a plain JSON completion instead of a stream is accepted too.
** Failures are retried only while no content has been delivered; after
** that the error says the answer was cut off after N bytes. res (may be
** NULL) is filled on success and, as far as known, on failure. */
plumb_status http_chat_stream(const http_cfg *c, const char *system, const char *user,
                              int max_tokens, double temperature,
                              int (*on_delta)(void *arg, const char *s, size_t n), void *arg,
                              http_chat_result *res);

/* POST {base_url}/rerank {"model", "query", "documents": [...], "top_n": n}
** in one request. scores[i] receives the relevance score of docs[i]
** (higher is better, the server's scale). Accepts the Cohere/Jina shape
** {"results": [{"index", "relevance_score"}]} and the TEI shape
** [{"index", "score"}]; a document without a score is an error. On
** failure every score is NaN. */
plumb_status http_rerank(const http_cfg *c, const char *query, const char *const *docs, size_t n,
                         double *scores);

/* ======================================================================
** tok.c -- the engine's tokenizer (also registered as FTS5 tokenizer)
**
** Pipeline per word: Unicode case folding, diacritic removal, possessive
** 's removal, stop words (English list, optional), Snowball stemming.
** Runs of CJK ideographs/kana/hangul become overlapping bigrams (a run of
** one character is a unigram). Word boundaries approximate UAX #29 as
** Lucene's StandardTokenizer does: letters and digits join; '.', '\''
** and U+2019 stay inside a word when letters or digits stand on both
** sides; ',' stays between digits ("1,000"). Words longer than
** TOK_MAX_BYTES after folding are skipped.
** A tok_ctx is not thread-safe: one per thread (or per FTS5 tokenizer
** instance, which SQLite uses from one connection at a time).
** ==================================================================== */

#define TOK_MAX_BYTES 128

typedef struct tok_ctx tok_ctx;

/* language: a libstemmer algorithm name ("english", "porter", ...) or
** "none". stopwords: 1 to drop the English stop word list. Returns NULL
** with err_set() on an unknown language or OOM. */
tok_ctx *tok_new(const char *language, int stopwords);
void tok_free(tok_ctx *t);

/* Receives each term (not NUL-terminated) with the byte range [start,end)
** of the text it came from. Non-zero return stops tokenization and is
** returned by tok_run(). */
typedef int (*tok_emit_fn)(void *arg, const char *term, int n, int start, int end);

/* Tokenize text[0..n). Text is assumed valid UTF-8; invalid bytes are
** treated as separators. Returns 0, the emit function's non-zero value,
** or -1 on OOM. */
int tok_run(tok_ctx *t, const char *text, int n, tok_emit_fn emit, void *arg);

/* True when language names a stemmer libstemmer has (or "none"). */
int tok_language_ok(const char *language);

/* ======================================================================
** parse.c -- turning file contents into (title, text)
** ==================================================================== */

/* Strip HTML: drops tags, comments, <script>, <style>, <head> content
** other than <title>; decodes named (common set) and numeric entities;
** block elements (p, div, br, li, h1-h6, tr, ...) become line breaks and
** paragraphs blank lines; runs of spaces collapse. The <title> (or first
** <h1> when there is no title) goes to *title. Input must be UTF-8.
** Returns 0, or -1 on OOM. */
int parse_html(const char *in, size_t n, buf *title, buf *text);

/* Strip Markdown: YAML front matter (its "title:" is used), headings'
** '#' marks (first level-1 heading becomes the title when there is no
** front-matter title), emphasis, inline code marks, links and images
** (link text kept, URL dropped), HTML tags, list and quote markers, table
** pipes; fenced code blocks keep their content. Paragraph breaks are kept
** as blank lines. Returns 0, or -1 on OOM. */
int parse_markdown(const char *in, size_t n, buf *title, buf *text);

/* ======================================================================
** chunk.c -- token-aware chunking at paragraph and sentence boundaries
** ==================================================================== */

typedef struct chunk_span {
    size_t start, end; /* byte range [start,end) of the document text */
} chunk_span;

/* Estimated generator tokens of s[0..n): a cheap, conservative stand-in
** for a BPE count (about 1.3 per English word, more for numbers, long
** words and punctuation). */
size_t chunk_estimate_tokens(const char *s, size_t n);

/* Split text[0..n) into windows of at most max_tokens estimated tokens,
** consecutive windows sharing about `overlap` tokens. Cuts prefer, in
** order: paragraph breaks (blank line), line breaks, sentence ends
** (.!? followed by space and an upper-case letter or digit, also CJK
** 。！？), then spaces; a single word longer than a window is cut
** at a UTF-8 character boundary. Windows never start or end with
** whitespace. max_tokens == 0, or a text that fits, yields one span
** covering the trimmed text. An empty or all-whitespace text yields zero
** spans. *out is malloc'd (free() it); returns 0 or -1 on OOM. */
int chunk_split(const char *text, size_t n, size_t max_tokens, size_t overlap,
                chunk_span **out, size_t *nout);

/* Boundary strengths, weakest first. A cut at CHUNK_CUT_SENT or stronger
** ends a sentence (or a line or paragraph). */
enum { CHUNK_CUT_WORD = 1, CHUNK_CUT_SENT, CHUNK_CUT_LINE, CHUNK_CUT_LINESENT, CHUNK_CUT_PARA };

typedef struct chunk_cut {
    size_t end;   /* text[0..end) is a clean prefix: it ends before whitespace
                     or at the edge of a CJK character */
    int strength; /* CHUNK_CUT_*, by the rules chunk_split() uses */
} chunk_cut;

/* Every place where text[0..n) may be cut short, ascending, with the
** strength chunk_split() gives the boundary (sentence ends: .!? before
** white space and an upper-case letter or digit, CJK 。！？). Neither 0 nor
** n is listed. *out is malloc'd (free() it; NULL when *nout is 0);
** returns 0 or -1 on OOM. For trimming prompt passages (pack.c). */
int chunk_cuts(const char *text, size_t n, chunk_cut **out, size_t *nout);


/* ======================================================================
** store.c -- the SQLite index: schema, settings, connections, writes
**
** One writer connection per handle (guarded by wlock) and a pool of
** reader connections, each used by one thread at a time. WAL mode: a
** reader's transaction is a stable snapshot that writers never block.
** ==================================================================== */

#include <pthread.h>
#include <sqlite3.h>

typedef struct idx_settings {
    int format_version;
    int64_t created_at;
    int64_t index_id;           /* random at creation: ties side files to this index */
    char language[32];
    int stopwords;
    int chunk_tokens, chunk_overlap;
    double k1, b, wt, wb;
    /* hybrid search defaults (built-in values unless stored) */
    int fusion;                 /* plumb_fusion, never PLUMB_FUSE_DEFAULT */
    double alpha, rrf_k;
    int k_lex, k_dense, rerank;
    int prf_docs;               /* dense pseudo-relevance feedback (search.c) */
    double prf_weight;
    int qe_docs, qe_terms;      /* lexical query expansion, RM3 (bm25_topk_rm3) */
    double qe_weight, qe_max_df;
    /* stage 2 (rerank.c): which reranker (settings key rerank_kind:
    ** "features" or "http"; checked where it is used, so that plumb config
    ** can still repair a bad value) and the feature model's weights
    ** (settings key rerank_weights, "name=value,..."; missing names keep
    ** the shipped defaults) */
    char rerank_kind[16];
    double rerank_w[13];        /* RERANK_NFEAT */
    /* trees added to the linear score (trees.c; settings key rerank_trees,
    ** written by plumb tune); NULL: none. Owned: freed by store_close */
    struct rerank_trees *rerank_trees;
    /* the "http" reranker (rerank_http.c): keys rerank_url, rerank_model,
    ** rerank_timeout_ms; "" / 0 when not stored */
    char rerank_url[512];
    char rerank_model[128];
    int rerank_timeout_ms;      /* per attempt */
} idx_settings;

typedef struct bm25_index bm25_index;
typedef struct rerank_trees rerank_trees;
typedef struct vec_index vec_index;
typedef struct embed_cache embed_cache;

/* Per-reader scoring scratch (bm25.c): a dense accumulator over ordinals. */
typedef struct bm25_scratch {
    double *acc;       /* score per ordinal; valid where mark is set */
    uint32_t *touched; /* ordinals with a mark, to reset them */
    uint8_t *mark;     /* all zero between queries */
    size_t cap;        /* entries allocated in each */
    double *tacc;      /* query expansion: weight per term id; -1 between queries */
    uint32_t *ttouched;
    size_t tcap;
} bm25_scratch;

typedef struct reader {
    struct reader *next;      /* free-list link in the pool */
    bm25_scratch scratch;     /* BM25 accumulators */
    sqlite3 *conn;
    tok_ctx *tok;             /* query tokenization and snippets */
    sqlite3_stmt *st_gen;     /* current generation */
    sqlite3_stmt *st_epoch;   /* settings.vec_epoch (no row: no vectors) */
    sqlite3_stmt *st_bm25;    /* BM25F by FTS5 auxiliary function (reference) */
    sqlite3_stmt *st_fts5;    /* FTS5 bm25() top-k (baseline) */
    sqlite3_stmt *st_hit;     /* chunk + document fields of one hit */
} reader;

enum {
    WS_DOC_GET, WS_DOC_INS, WS_DOC_DEL, WS_CHUNKS_OF, WS_CHUNK_INS, WS_CHUNKS_DEL,
    WS_FTS_INS, WS_FTS_DEL, WS_GEN_BUMP, WS_FILE_GET, WS_FILE_UPSERT, WS_FILE_DEL,
    WS_DOCS_OF_FILE, WS_SEEN_ADD, WS_UNSEEN_DOCS, WS_WALK_ADD, WS_FILES_UNSEEN, WS_LOG, WS_COUNT
};

struct plumb_db {
    char *path;
    int readonly;
    int busy_ms;
    idx_settings set;           /* read at open; immutable afterwards */
    pthread_mutex_t wlock;      /* one writer at a time on this handle */
    sqlite3 *w;                 /* writer connection; NULL when read-only */
    sqlite3_stmt *ws[WS_COUNT]; /* writer statements, prepared lazily */
    int in_txn;                 /* a write transaction is open */
    int user_batch;             /* ...opened by plumb_batch_begin */
    int dirty;                  /* the open transaction changed rows */
    tok_ctx *wtok;              /* writer-side tokenizer (unused by FTS5) */
    pthread_mutex_t plock;      /* guards pool */
    reader *pool;               /* idle reader connections */
    bm25_index *bm25;           /* the in-memory top-k index (bm25.c) */
    vec_index *vec;             /* the in-memory vector store (vec.c) */
    embed_cache *emb;           /* the embedder models in use (embed.c) */
    int64_t log_rows;           /* lex_log inserts since open (truncation check) */
    struct qlog *qlog;          /* query log queue (qlog.c); NULL: this handle logs nothing */
};

/* Map an SQLite result code to a status and set the message
** "<what>: <sqlite message>". */
plumb_status store_err(sqlite3 *conn, int src, const char *what);

plumb_status store_open(plumb_db *db, const char *path, const plumb_open_params *p);
void store_close(plumb_db *db);

plumb_status store_reader_get(plumb_db *db, reader **out);
void store_reader_put(plumb_db *db, reader *r);

/* Writer transactions. Callers hold db->wlock. store_commit bumps the
** generation when anything changed. */
plumb_status store_begin(plumb_db *db);
plumb_status store_commit(plumb_db *db);
void store_rollback(plumb_db *db);
/* Write settings (key, value as text; a NULL value deletes the key) in
** one transaction; takes wlock. The handle's own db->set keeps what it
** read at open. */
plumb_status store_put_settings(plumb_db *db, const char *const *keys, const char *const *vals,
                                int n);

/* Add or replace a document inside an open transaction. file_id is the
** files row it came from, or 0. */
plumb_status store_add_doc(plumb_db *db, const plumb_doc *doc, int64_t file_id,
                           plumb_add_result *result, int64_t *doc_rowid, size_t *nchunks);
/* Delete by caller id (PLUMB_NOTFOUND if absent) or by row id. */
plumb_status store_delete_doc(plumb_db *db, const char *doc_id);
plumb_status store_delete_rowid(plumb_db *db, int64_t rowid);

/* Files (ingest bookkeeping), inside an open transaction. */
typedef struct store_file {
    int64_t id;     /* 0 when the path is not known */
    int64_t size, mtime;
    char hash[17];
} store_file;
plumb_status store_file_get(plumb_db *db, const char *path, store_file *out);
plumb_status store_file_put(plumb_db *db, const char *path, int64_t size, int64_t mtime,
                            const char *hash, int64_t n_docs, int64_t *file_id);
/* Delete a file row and all documents that came from it; *ndocs counts them. */
plumb_status store_file_delete(plumb_db *db, int64_t file_id, int64_t *ndocs);

/* Per-file bookkeeping of the document ids seen while re-reading a
** JSONL file (a TEMP table on the writer connection). store_seen_add sets
** *dup when the id was already seen since the last reset. */
plumb_status store_seen_reset(plumb_db *db);
plumb_status store_seen_add(plumb_db *db, const char *doc_id, int *dup);
/* Delete the documents of file_id whose ids were not seen; *n counts them. */
plumb_status store_prune_unseen(plumb_db *db, int64_t file_id, int64_t *n);

/* Files recorded under `root` (a canonical path: the file itself or a
** directory) that are not in the walk's seen list. The callback gets
** each one's id and path; store_walk_* maintain the seen list
** (store_walk_add sets *dup when the path was in it already). */
plumb_status store_walk_reset(plumb_db *db);
plumb_status store_walk_add(plumb_db *db, const char *path, int *dup);
plumb_status store_files_unseen(plumb_db *db, const char *root,
                                int64_t **ids, char ***paths, size_t *n);

plumb_status store_stats(plumb_db *db, plumb_stats *out);

/* The first column of the first row of `sql` on conn (0 when no row).
** Does nothing when *src is already an error; sets *src to the SQLite
** error code on failure, so calls chain and are checked once. */
int64_t store_scalar(sqlite3 *c, const char *sql, int *src);
/* Side files (bm25.c, vec.c) are written to a temporary name, fsynced and
** renamed: fwrite all of p (0 on success), and fsync the directory that
** holds path so the rename itself is durable. */
int store_write_all(FILE *f, const void *p, size_t n);
void store_fsync_dir(const char *path);

/* ======================================================================
** qlog.c -- the query log and feedback (public API: plumb_log_*,
** plumb_feedback_add, plumb_export_qrels; essay at the top of qlog.c)
** ==================================================================== */

/* Set up the handle's log queue: writable handles of indexes that have the
** log tables. Called by plumb_open after store_open; PLUMB_NOMEM only. */
plumb_status qlog_open(plumb_db *db);
/* Write what is still queued (waiting for the lock as writes do), give
** back unused ids, release the queue. Called by plumb_close before
** store_close; an open batch is rolled back first. */
void qlog_close(plumb_db *db);
/* A monotonic clock in milliseconds: plumb_search's start time. */
double qlog_now_ms(void);
/* plumb_search's hook, called once per successful search: queue an entry
** when p->log is set and the handle logs. Never waits for the writer.
** Returns the entry's id, or 0 when nothing was logged or the id is given
** only when the entry is written. */
int64_t qlog_search(plumb_db *db, const char *query, const plumb_search_params *p,
                    const plumb_hits *hits, double t0_ms);
/* store_begin's hook (caller holds db->wlock, no transaction open): write
** the queue first, in a transaction of its own, without waiting for
** SQLite's lock; on failure the entries stay queued and the thread's error
** message is left as it was. */
void qlog_before_write(plumb_db *db);

/* ======================================================================
** lex.c -- lexical retrieval on FTS5: tokenizer glue and BM25F
** ==================================================================== */

/* Register the "plumb" FTS5 tokenizer and the plumb_bm25 auxiliary
** function on a connection. */
plumb_status lex_register(sqlite3 *conn);

/* The query's terms, in order, duplicates kept (a repeated query term
** counts twice, as in Lucene's BooleanQuery). */
typedef struct lex_query {
    buf match;      /* FTS5 MATCH expression: "w1" OR "w2" ... */
    buf terms;      /* the terms, each NUL-terminated, back to back */
    int nterms;
} lex_query;

/* Tokenize `query` with the reader's tokenizer into *q (zeroed by the
** caller; release with lex_query_free). nterms == 0 means no hits. */
plumb_status lex_query_parse(tok_ctx *tok, const char *query, lex_query *q);
void lex_query_free(lex_query *q);

typedef struct lex_hit {
    int64_t rowid;  /* chunk id */
    double score;   /* higher is better */
} lex_hit;

/* Top-k chunks for a parsed query. *out is malloc'd (free()), sorted by
** score descending then rowid ascending. */
plumb_status lex_search(reader *r, const lex_query *q, const plumb_search_params *p,
                        const idx_settings *set, lex_hit **out, size_t *nout,
                        int64_t *matched);

/* ======================================================================
** bm25.c -- in-memory inverted index in step with the store; exact top-k
** ==================================================================== */

/* db_path names the side file (db_path + ".bm25"); index_id ties it. */
bm25_index *bm25_new(const char *db_path, int64_t index_id);
void bm25_free(bm25_index *ix);

/* Bring the index to the reader's snapshot generation `gen` (the reader
** is inside a read transaction). On PLUMB_OK the index is at `gen` and
** its read lock is held: score, then bm25_release(). PLUMB_BUSY: the
** index is ahead of this snapshot; start a newer read transaction and
** call again. Other codes: an error (no lock held). */
plumb_status bm25_sync(bm25_index *ix, reader *r, int64_t gen);
void bm25_release(bm25_index *ix);

/* Exact BM25F top-k under the read lock. *out malloc'd (free()), sorted by
** score descending, then chunk id ascending. */
plumb_status bm25_topk(const bm25_index *ix, bm25_scratch *s, const lex_query *q, double k1,
                       double b, double wt, double wb, int k, lex_hit **out, size_t *nout,
                       int64_t *matched);

/* RM3 (Lavrenko and Croft's relevance model, interpolated with the query as
** in Abdul-Jaleel et al., UMass at TREC 2004), with BM25 in place of query
** likelihood: a first pass ranks the top `docs`; each of them weighs
** P(D|Q) = exp(score - best score), normalised; the expansion e(t) = sum
** over them of P(D|Q) tf(t, D) / |D| over title and body terms (query terms
** included, but no other term in more than max_df x the live chunks:
** its posting count, which counts chunks deleted since the in-memory
** index was built), keeping the `terms` heaviest, normalised to sum 1; the
** second pass scores the query orig * mult(t) / sum mult + (1 - orig) e(t).
** Matched counts the first pass's chunks. A chunk without a forward list
** (bm25.c keeps them up to PLUMB_FWD_MAX ids) gives no terms; when none
** of the top `docs` has one, the first pass is the result. docs <= 0,
** terms <= 0 or orig >= 1: bm25_topk. */
#define BM25_RM3_MAX_TERMS 100
typedef struct bm25_rm3 {
    int docs, terms;
    double orig;
    double max_df; /* >= 1: no limit */
} bm25_rm3;
plumb_status bm25_topk_rm3(const bm25_index *ix, bm25_scratch *s, const lex_query *q, double k1,
                           double b, double wt, double wb, int k, const bm25_rm3 *fb,
                           lex_hit **out, size_t *nout, int64_t *matched);
void bm25_scratch_free(bm25_scratch *s);

/* Side file "<index>.bm25": a snapshot of the in-memory index so a new
** handle loads it instead of rebuilding, then replays the log. Written
** to a temporary name, fsynced and renamed; ignored when its index id,
** generation or log position do not fit the database. bm25_persist
** brings the index to the current generation first; it is a no-op when
** the side file is already at that generation. */
plumb_status bm25_persist(plumb_db *db);
/* plumb_check's part for the BM25 index: the side file's header and
** checksum, and the handle's index against a fresh rebuild. */
plumb_status bm25_verify(plumb_db *db, void (*report)(void *, const char *, const char *),
                         void *arg, int64_t *problems);
/* Log entries applied since the last load or save. */
int64_t bm25_applied_since_save(bm25_index *ix);

typedef struct bm25_info_t {
    int built;
    int64_t generation, terms, ordinals, dead, postings, bytes;
} bm25_info_t;
void bm25_info(bm25_index *ix, bm25_info_t *out);
/* For the reranker, under the read lock: a term's id (-1: unknown); its
** idf and collection probability (cf / all tokens; pc may be NULL) at this snapshot; the mean field lengths; chunk cid's term ids,
** title (*ntitle) then body (*nbody), or 0 when it has no forward list. */
int64_t bm25_term_id(const bm25_index *ix, const char *t, size_t n);
void bm25_term_stats(const bm25_index *ix, uint32_t id, double *idf, double *pc);
void bm25_avg_lengths(const bm25_index *ix, double *avg_title, double *avg_body);
int bm25_forward(const bm25_index *ix, int64_t cid, const uint32_t **ids, uint32_t *ntitle,
                 uint32_t *nbody);

/* ======================================================================
** vec.c -- in-memory vector store in step with the `vectors` table;
** exact SIMD and FAISS top-k (see the file's header)
** ==================================================================== */

vec_index *vec_new(const char *db_path, int64_t index_id);
void vec_free(vec_index *v);
/* As bm25_sync: bring the store to the reader's snapshot generation; on
** PLUMB_OK its read lock is held until vec_release(). PLUMB_BUSY: the
** store is ahead of this snapshot; take a newer one. */
plumb_status vec_sync(vec_index *v, reader *r, int64_t gen);
void vec_release(vec_index *v);
/* Under the read lock: */
uint32_t vec_dim(const vec_index *v);     /* 0: no vectors in this epoch */
int64_t vec_epoch(const vec_index *v);
uint32_t vec_live(const vec_index *v);
/* Top-k chunks by inner product with q (dim floats, unit length).
** *out malloc'd, score descending then chunk id ascending. */
plumb_status vec_topk(const vec_index *v, const float *q, int k, plumb_vsearch how, int ef,
                      lex_hit **out, size_t *nout);
/* Exact similarity of one chunk's vector to q; NAN when it has none. */
double vec_score(const vec_index *v, const float *q, int64_t cid);
/* Chunk cid's f32 vector, or NULL when it has none. */
const float *vec_get(const vec_index *v, int64_t cid);
/* Write the side file "<index>.vec" when the store holds >= 20,000
** vectors (PLUMB_VEC_SIDE_MIN) and the file is missing or 5% behind;
** build the FAISS index "<index>.ann" from ann_factory when ann_force,
** or when the store holds >= 2,000,000 vectors (PLUMB_ANN_MIN) and
** ann_factory is non-empty, and the existing one is missing or stale
** (10% of slots added or 20% deleted since). ef_search <= 0: default. */
plumb_status vec_persist(plumb_db *db, const char *ann_factory, int ann_force, int ef_search,
                         int *ann_built);
int64_t vec_applied_since_save(vec_index *v);
typedef struct vec_info_t {
    int built;
    uint32_t dim, live, slots, ann_n;
    int64_t bytes, ann_bytes, ann_deleted;
    char ann_type[64];
} vec_info_t;
void vec_info(vec_index *v, vec_info_t *out);
/* plumb_check's part: the table against the store, and the side file. */
plumb_status vec_verify(plumb_db *db, void (*report)(void *, const char *, const char *),
                        void *arg, int64_t *problems);

/* ======================================================================
** embed.c -- embedders (built-in LSA, HTTP) and the embedding job
** ==================================================================== */

typedef struct embed_model embed_model;

embed_cache *embed_cache_new(void);
void embed_cache_free(embed_cache *c);
/* The model of `epoch`, read through conn when the handle's cache holds
** another; release with embed_model_put. */
plumb_status embed_model_get(plumb_db *db, sqlite3 *conn, int64_t epoch, embed_model **out);
void embed_model_put(embed_model *m);
int embed_model_dim(const embed_model *m);
const char *embed_model_kind(const embed_model *m);
/* out[dim]: the query's unit vector; *usable 0 when it has no known term. */
plumb_status embed_query(const embed_model *m, tok_ctx *tok, const char *query, float *out,
                         int *usable);
/* plumb_embed's work; the caller holds wlock and no transaction is open. */
plumb_status embed_run(plumb_db *db, const plumb_embed_params *p, plumb_embed_stats *st);
/* Embedder and vector fields of plumb_stats, read through conn (inside
** the caller's read transaction); out->chunks must be set. */
plumb_status embed_info(plumb_db *db, sqlite3 *conn, plumb_stats *out);

/* embed_http.c -- the OpenAI-compatible embedding provider over http.c */
/* Embed n texts into out (n x dim); a dimension other than dim is an error naming both. */
plumb_status embed_http_batch(const char *url, const char *model, int dim,
                              const plumb_embed_params *p, const char *const *texts, size_t n,
                              float *out);
/* Ask the service for one embedding to learn the model's dimension. */
plumb_status embed_http_probe(const plumb_embed_params *p, int *dim);
/* One query (key and timeouts from the environment: PLUMB_EMBED_API_KEY). */
plumb_status embed_http_query(const char *url, const char *model, int dim, const char *query,
                              float *out, int *usable);

/* ======================================================================
** lsa.c -- truncated SVD of a sparse weighted term-document matrix
** ==================================================================== */

typedef struct lsa_csr {
    uint32_t nrows, ncols;
    uint64_t *rowptr;  /* nrows + 1 offsets into col/val */
    uint32_t *col;     /* column (term) of each non-zero, ascending per row */
    float *val;        /* its weight */
} lsa_csr;

typedef struct lsa_model {
    int dim;
    uint32_t ncols;    /* terms the model knows */
    float *basis;      /* ncols x dim, row-major: V, so a row folds in as r V */
    float *sigma;      /* dim singular values, descending */
} lsa_model;

/* Train: dim output dimensions, oversample extra columns, power_iters
** subspace iterations, a fixed seed (deterministic). */
plumb_status lsa_train(const lsa_csr *A, int dim, int oversample, int power_iters, uint64_t seed,
                       lsa_model *out);
/* out[dim] = normalised (sum vals[i] * basis[cols[i]]). */
void lsa_fold(const lsa_model *m, const uint32_t *cols, const float *vals, size_t n, float *out);
void lsa_model_free(lsa_model *m);

/* ======================================================================
** fuse.c -- hybrid fusion of lexical and dense candidates
** ==================================================================== */

typedef struct fuse_cand {
    int64_t rowid;
    double lex, dense;          /* NAN where the source has no score */
    int rank_lex, rank_dense;   /* 1-based; 0 where the list lacks it */
    double fused;
    int pool;                   /* set by fuse_score: inside the fusion pool */
    double lex_out;             /* scratch for fuse_score */
} fuse_cand;

/* The union of two ranked lists (out needs nl + nd entries), in no
** particular order. Returns its size. */
size_t fuse_union(const lex_hit *lex, size_t nl, const lex_hit *dense, size_t nd, fuse_cand *out);
/* Set c[i].fused by `how` (not DEFAULT) and sort best first (the pool
** of the top pool_lex / pool_dense of each list first), ties by ascending
** chunk id. Definitions in fuse.c's header. */
void fuse_score(fuse_cand *c, size_t n, plumb_fusion how, double alpha, double rrf_k,
                int pool_lex, int pool_dense);

/* ======================================================================
** rerank.c -- stage 2: the built-in feature reranker
** ==================================================================== */

enum {
    RERANK_BM25 = 0, RERANK_DENSE, RERANK_FUSED, RERANK_COVER, RERANK_TITLE, RERANK_PROX,
    RERANK_WINDOW, RERANK_BIGRAM, RERANK_LEN, RERANK_DPRF, RERANK_LPRF, RERANK_QL,
    RERANK_TBM25, RERANK_NFEAT
};
#define RERANK_MAXQ 64 /* distinct query terms the features look at */

extern const char *const rerank_feature_names[RERANK_NFEAT];
extern const double rerank_default_weights[RERANK_NFEAT];

/* One query, prepared under the BM25 index's read lock. */
typedef struct rerank_qinfo {
    int nd;                    /* distinct query terms the index knows */
    uint32_t id[RERANK_MAXQ];  /* their term ids (bm25.c) */
    double idf[RERANK_MAXQ];
    double pc[RERANK_MAXQ];    /* collection probability (query likelihood) */
    int mult[RERANK_MAXQ];     /* occurrences in the query */
    int nseq;                  /* the query in order, as slots (-1: unknown) */
    int seq[RERANK_MAXQ];
    double idf_sum;            /* of the nd distinct terms */
    double k1, b, wt, wb, avg_t, avg_b;
} rerank_qinfo;

typedef struct rerank_cand {
    int64_t rowid;
    int order;                 /* stage-1 position: ties keep it */
    double dense, fused;       /* stage-1 evidence; NAN where absent */
    double feat[RERANK_NFEAT]; /* raw, then normalised by rerank_normalise */
    double score;
} rerank_cand;

void rerank_query_init(rerank_qinfo *qi, const bm25_index *ix, const lex_query *q, double k1,
                       double b, double wt, double wb);
/* The slot of term id, or -1. */
int rerank_slot(const rerank_qinfo *qi, uint32_t id);
/* Raw text features of one candidate from its term slots: title
** slot[0..nt), body slot[nt..nt+nb). Sets every feature but DENSE and
** FUSED. */
void rerank_doc_features(const rerank_qinfo *qi, const int16_t *slot, uint32_t nt, uint32_t nb,
                         double *f);
/* Raw features of c[0..n), which must be in stage-1 order (BM25 read
** lock held; r inside its read transaction, for chunks without forward
** lists; v: the vector store with its read lock held, or NULL). */
plumb_status rerank_features(const bm25_index *ix, reader *r, const vec_index *v,
                             const rerank_qinfo *qi, rerank_cand *c, size_t n);
/* Min-max normalise the per-query-scaled features over c[0..n). */
void rerank_normalise(rerank_cand *c, size_t n);
double rerank_dot(const double *w, const double *f);
/* score = w . feat + trees(feat) (t may be NULL); sort best first (ties:
** stage-1 order). */
void rerank_score(rerank_cand *c, size_t n, const double *w, const struct rerank_trees *t);
/* Sort c[0..n) by score, best first (ties: stage-1 order). */
void rerank_sort(rerank_cand *c, size_t n);
/* "bm25=1,dense=0.5": unnamed features keep the defaults. -1: malformed. */
int rerank_weights_parse(const char *s, double *w);
void rerank_weights_format(const double *w, buf *out);

/* ======================================================================
** trees.c -- a regression-tree ensemble added to the linear reranker
** (LambdaMART), learned by plumb tune
** ==================================================================== */

struct rerank_trees {
    int ntrees, rcap;
    int32_t nnodes, cap;
    int32_t *root;   /* each tree's first node */
    int16_t *feat;   /* per node: the feature split on; -1: a leaf */
    double *val;     /* per node: the threshold (f <= it: left, the next
                        node), or a leaf's output */
    int32_t *right;  /* per internal node: its right child */
};

/* The ensemble's score of normalised features f (0 for NULL). */
double trees_predict(const rerank_trees *t, const double *f);
/* Text form (trees.c's header). "" or NULL: *out = NULL (no trees). 0 on
** success, -1 malformed, -2 out of memory. */
int trees_parse(const char *s, rerank_trees **out);
void trees_format(const rerank_trees *t, buf *out);
void trees_free(rerank_trees *t);

typedef struct trees_data {
    const double *feat;  /* n x RERANK_NFEAT, normalised */
    const int *rel;      /* n judgments */
    size_t n;
    const size_t *qoff, *qn; /* query q: candidates [qoff, qoff + qn) */
    const double *idcg;  /* its ideal DCG@10 */
    size_t nq;
} trees_data;

typedef struct trees_cfg { int ntrees, leaves, minleaf; double lr; } trees_cfg;

/* Learn cfg->ntrees trees on top of the scores F (n, updated in place to
** the final scores). NULL on out of memory. */
rerank_trees *trees_fit(const trees_data *d, double *F, const trees_cfg *cfg);

/* tune.c: coordinate ascent (tune.c's header) on nq synthetic queries of
** per_q candidates each (feat: RERANK_NFEAT per candidate, rel: their
** judgments; every candidate its own document). w in/out; *before (may
** be NULL) gets the objective at the starting w. Returns mean nDCG@10
** after (NAN on OOM). For tests. */
double tune_fit(const double *feat, const int *rel, const int *ideal_unused, size_t nq,
                size_t per_q, double *w, int rounds, double *before);

/* ======================================================================
** rerank_http.c -- stage 2 over an HTTP /rerank service (http.c)
** ==================================================================== */

#define RERANK_HTTP_TIMEOUT_MS 10000 /* per attempt, when neither query nor index says */
#define RERANK_HTTP_RETRIES 2        /* after the first attempt */
#define RERANK_HTTP_DOC_BYTES 2048   /* title + text sent per candidate, at most */

/* Where and how to call the service; the strings are borrowed from the
** search parameters, the environment or db->set. */
typedef struct rerank_http_target {
    const char *url, *model, *api_key;
    int timeout_ms;
} rerank_http_target;

/* The target of this search for reranker `kind` ("http" or "llm"):
** parameter, else environment ($PLUMB_RERANK_URL, _MODEL), else the
** index's setting; the key only from $PLUMB_RERANK_API_KEY (kind "llm":
** $PLUMB_LLM_API_KEY, else that). PLUMB_MISUSE, naming the kind and every
** place looked at, when there is no URL. */
plumb_status rerank_http_target_of(const idx_settings *set, const plumb_search_params *p,
                                   const char *kind, rerank_http_target *t);
/* http.c's settings for calls to t: its URL, model, key and time limit
** (per attempt; for streams also the longest silence), RERANK_HTTP_RETRIES. */
void rerank_http_cfg(const rerank_http_target *t, http_cfg *c);
/* The texts sent for chunks rowid[0..n), read through r: title, blank
** line, text, cut to RERANK_HTTP_DOC_BYTES on a UTF-8 boundary. On
** PLUMB_OK *out holds n malloc'd strings (rerank_http_docs_free); on
** failure NULL. */
plumb_status rerank_http_docs(reader *r, const int64_t *rowid, size_t n, char ***out);
void rerank_http_docs_free(char **docs, size_t n);
/* Scores for chunks rowid[0..n) against the query text: their titles and
** texts read through r (inside its read transaction), each cut to
** RERANK_HTTP_DOC_BYTES on a UTF-8 boundary, in one request. PLUMB_HTTP
** / PLUMB_TIMEOUT when the service failed (plumb_errmsg names the URL). */
plumb_status rerank_http_scores(reader *r, const rerank_http_target *t, const char *query,
                                const int64_t *rowid, size_t n, double *scores);

/* ======================================================================
** rerank_llm.c -- stage 2 by a chat model as a pointwise judge (http.c)
** ==================================================================== */

#define RERANK_LLM_N 5        /* candidates judged when the search does not say */
#define RERANK_LLM_MAX_N 20   /* ... and at most, whatever it says: one call each */
#define RERANK_LLM_MAX_TOKENS 8

/* The candidates judged: the search's rerank (p_rerank >= 0) capped at
** RERANK_LLM_MAX_N, else the index's stored rerank capped at RERANK_LLM_N. */
int rerank_llm_n(int p_rerank, int stored);
/* Grades 0..3 (higher is better) for chunks rowid[0..n) against the
** query, one chat call per candidate in order, stopping at the first
** failure: PLUMB_HTTP / PLUMB_TIMEOUT when a call failed or its reply had
** no grade (plumb_errmsg names the candidate, the URL and why). */
plumb_status rerank_llm_grades(reader *r, const rerank_http_target *t, const char *query,
                               const int64_t *rowid, size_t n, double *grades);
/* The first integer in s[0..n) when it is 0..3 (not negative), else -1. */
int rerank_llm_parse(const char *s, size_t n);

/* config.c: the reranker kinds, "features", "http" and "llm". */
int config_rerank_kind_ok(const char *kind);

/* ======================================================================
** search.c -- the search pipeline behind plumb_search
** ==================================================================== */

/* p is validated and complete (no NULL). */
plumb_status search_run(plumb_db *db, const char *query, const plumb_search_params *p,
                        plumb_hits **out);
/* For tune.c: the search with stage 2 replaced by handing the normalised
** features of the top n_rerank candidates to the sink (sink->cand,
** malloc'd, in stage-1 order, the caller frees; the hits come in stage-1
** order). */
typedef struct search_sink {
    int n_rerank;      /* in */
    rerank_cand *cand; /* out */
    size_t n;          /* out */
} search_sink;
plumb_status search_run_ex(plumb_db *db, const char *query, const plumb_search_params *p,
                           search_sink *sink, plumb_hits **out);

/* ======================================================================
** snippet.c -- best window of a chunk with query terms highlighted
** ==================================================================== */

/* Append to *out a window of about `words` tokens of text[0..n) that
** covers the most distinct query terms (then the most occurrences),
** with each matching word wrapped in hl_open/hl_close and "…" where the
** window cuts the text. With no match: the start of the text. Returns
** 0, or -1 on OOM. */
int snippet_build(tok_ctx *tok, const char *text, size_t n, const lex_query *q, int words,
                  const char *hl_open, const char *hl_close, buf *out);

/* ======================================================================
** ingest.c -- walking paths, reading and parsing files
** ==================================================================== */

plumb_status ingest_paths(plumb_db *db, const char *const *paths, int npaths,
                          const plumb_index_params *p, plumb_index_stats *st);

/* ======================================================================
** eval.c -- metrics, judgments, runs, significance tests (eval_report.c
** writes the HTML report). Definitions: plumb.h, "Evaluation".
** ==================================================================== */

/* Every metric of one ranking: rels[i] is the judgment value of the
** document at rank i+1 (0 when not judged), in trec_eval's order; ideal
** holds the query's judgment values >= 1, highest first (nideal = R). */
void eval_measure(const int *rels, size_t n, const int *ideal, size_t nideal,
                  double out[PLUMB_METRIC_COUNT]);
/* For tune.c: query i of a queries file; a query's judgment of doc (0
** when not judged); its judgment values >= 1, highest first (NULL, 0 when
** the query is not in the qrels). */
void eval_query_at(const plumb_queries *q, size_t i, const char **id, const char **text);
int eval_judgment(const plumb_qrels *q, const char *qid, const char *doc);
void eval_ideal(const plumb_qrels *q, const char *qid, const int **ideal, size_t *n);
/* Sort into trec_eval's order: score descending, doc id descending. */
void eval_sort_ranking(plumb_run_doc *d, size_t n);
/* The q-quantile (0..1) of sorted[0..n), interpolating linearly. */
double eval_percentile(const double *sorted, size_t n, double q);
/* Two-sided paired randomization test of the differences d[0..n). */
double eval_randomization_p(const double *d, size_t n, int rounds, uint64_t seed);
/* Two-sided p-value of Student's t with df degrees of freedom. */
double eval_ttest_p(double t, double df);
/* The shortest "%.*g" form of v that reads back equal. */
void eval_fmt_double(char *out, size_t cap, double v);

/* ======================================================================
** kern.c -- vector scoring kernels with run-time ISA dispatch
**
** kern_scalar.c is the reference; kern_avx2.c (AVX2+FMA) and
** kern_avx512.c (AVX-512F/BW/VL; VNNI for int8 and VPOPCNTDQ for binary
** where present) are compiled with their own flags and called only after
** the CPU check. The ISA is chosen once, at first use: the best the CPU
** and OS support, or PLUMB_ISA=scalar|avx2|avx512 when that is supported.
** Vectors are row-major and contiguous (row i at base + i*d); no
** alignment is required. Scores are "higher is better": f32 and int8
** give the inner product, binary gives nbits - 2*hamming (the sign-code
** estimate of nbits * cosine). Rows are numbered from 0 (uint32_t).
** f32 results may differ from the scalar reference by summation order
** only, and a row's scan score never depends on how a scan groups rows;
** int8 dot products and hamming distances are exact.
** ==================================================================== */

typedef enum kern_isa { KERN_SCALAR = 0, KERN_AVX2 = 1, KERN_AVX512 = 2, KERN_ISA_COUNT } kern_isa;

const char *kern_isa_name(kern_isa isa);
/* 1 when this CPU and OS can run isa. */
int kern_isa_supported(kern_isa isa);
/* The ISA in use (chooses it on first call). */
kern_isa kern_isa_active(void);
/* Switch the ISA (tests, benchmarks); -1 when not supported. Not
** thread-safe against concurrent kernel calls. */
int kern_isa_set(kern_isa isa);
/* "avx512+vnni+vpopcntdq" and the like: what the active table uses. */
const char *kern_isa_desc(void);

float kern_dot_f32(const float *a, const float *b, size_t d);
int32_t kern_dot_i8(const int8_t *a, const int8_t *b, size_t d);
/* Differing bits of a[0..nbytes) and b[0..nbytes). */
uint64_t kern_hamming(const uint8_t *a, const uint8_t *b, size_t nbytes);

/* Symmetric int8 quantization: out[i] = round(x[i] / scale) in
** [-127, 127]; returns scale (max |x| / 127; 0 for an all-zero vector),
** so x ~ scale * out. */
float kern_quantize_i8(const float *x, size_t d, int8_t *out);
/* Sign bits: bit (i % 8) of out[i / 8] is set when x[i] > 0; padding
** bits of the last byte are 0. Writes (d + 7) / 8 bytes. */
void kern_binarize(const float *x, size_t d, uint8_t *out);

/* One query against n rows: scores[i] = score of row i.
** i8: scores[i] = qscale * scales[i] * dot (scales NULL: raw dot). */
void kern_scan_f32(const float *q, const float *base, size_t n, size_t d, float *scores);
void kern_scan_i8(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                  size_t n, size_t d, float *scores);
void kern_scan_bin(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                   float *scores);

typedef struct kern_hit {
    float score;  /* higher is better */
    uint32_t row; /* row index in the scanned array */
} kern_hit;

/* Top-k of a scan with a bounded heap: out[0..ret) sorted by score
** descending, then row ascending; ret = min(k, rows allowed). allow is a
** bitset over rows (bit i%64 of allow[i/64]) or NULL for all; it is
** applied during the scan, so filtered rows never take a slot. */
size_t kern_topk_f32(const float *q, const float *base, size_t n, size_t d,
                     const uint64_t *allow, size_t k, kern_hit *out);
size_t kern_topk_i8(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                    size_t n, size_t d, const uint64_t *allow, size_t k, kern_hit *out);
size_t kern_topk_bin(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                     const uint64_t *allow, size_t k, kern_hit *out);

/* kern_topk_f32 with the rows split across nthreads OpenMP threads
** (<= 0: OpenMP's default); same result. Returns 0 when the per-thread
** heaps cannot be allocated. */
size_t kern_topk_f32_par(const float *q, const float *base, size_t n, size_t d,
                         const uint64_t *allow, size_t k, kern_hit *out, int nthreads);
/* nq queries (row-major, dim d) in one pass over the rows: L2-sized row
** blocks are scored against every query while cached; nthreads OpenMP
** threads (<= 0: default) take disjoint row ranges. out + i*k receives
** query i's hits (as kern_topk_f32 would return them), nout[i] their
** number. */
void kern_topk_f32_batch(const float *qs, size_t nq, const float *base, size_t n, size_t d,
                         const uint64_t *allow, size_t k, kern_hit *out, size_t *nout,
                         int nthreads);

/* Rescore candidates with exact f32 inner products and keep the best k
** (same order as kern_topk_f32). cand and out may not overlap. */
size_t kern_rescore_f32(const float *q, const float *base, size_t d, const kern_hit *cand,
                        size_t ncand, size_t k, kern_hit *out);

/* Per-ISA tables (kern_scalar.c, kern_avx2.c, kern_avx512.c). */
typedef struct kern_ops {
    const char *desc;
    float (*dot_f32)(const float *a, const float *b, size_t d);
    int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t d);
    uint64_t (*hamming)(const uint8_t *a, const uint8_t *b, size_t nbytes);
    void (*scan_f32)(const float *q, const float *base, size_t n, size_t d, float *scores);
    /* nq queries (row-major) against n rows: scores + j*n for query j,
    ** bit-identical to scan_f32 of each query. */
    void (*scan_f32_multi)(const float *qs, size_t nq, const float *base, size_t n, size_t d,
                           float *scores);
    void (*scan_i8)(const int8_t *q, float qscale, const int8_t *base, const float *scales,
                    size_t n, size_t d, float *scores);
    void (*scan_bin)(const uint8_t *q, const uint8_t *base, size_t n, size_t nbytes,
                     float *scores);
} kern_ops;

void kern_scalar_ops(kern_ops *ops);
/* Fill ops for this ISA; call only when kern_isa_supported() says so.
** vnni / vpopcntdq: the CPU has those extensions. */
void kern_avx2_ops(kern_ops *ops);
void kern_avx512_ops(kern_ops *ops, int vnni, int vpopcntdq);

/* ======================================================================
** bpe.c -- exact BPE token counting (public API: plumb_tokenizer_*)
** ==================================================================== */

/* Pre-tokenization: the end of the regex match that starts at byte p of
** s[0..n) (p < n), for the tokenizer's pattern family. *emit is 0 when no
** alternative matches there (the regex engine would skip that
** character; cannot happen with the supported patterns). */
size_t bpe_match(const plumb_tokenizer *tok, const unsigned char *s, size_t n, size_t p,
                 int *emit);

/* Merge one pre-tokenized piece into token ids. path: 0 chooses, 1 forces
** the quadratic scan used for short pieces, 2 the heap used for long ones
** (tests check that both agree). Appends to *ids (realloc'd; *cap its
** capacity in entries, *n entries used). Returns PLUMB_OK or PLUMB_NOMEM. */
plumb_status bpe_encode_piece(const plumb_tokenizer *tok, const unsigned char *piece, size_t len,
                              int path, uint32_t **ids, size_t *n, size_t *cap);

/* ======================================================================
** ann.c -- approximate search through FAISS's C API (the only file that
** includes FAISS headers)
**
** An index is built from a FAISS factory string: "HNSW32,Flat",
** "IVF1024,Flat", "IVF1024,SQ8", "IVF1024,PQ48", "Flat" ... Indexes that
** cannot hold caller ids themselves (all but IVF) are wrapped in an
** IndexIDMap, so ann_add always takes ids. Scores are "higher is better":
** inner products, or negated squared L2 distances. One ann_index may be
** searched from many threads at once; adding, training, setting
** parameters and saving need exclusive use.
** ==================================================================== */

typedef struct ann_index ann_index;

typedef enum ann_metric { ANN_IP = 0, ANN_L2 = 1 } ann_metric;

/* 1 when plumb was built with FAISS (ann_* return PLUMB_ERROR otherwise). */
int ann_available(void);
plumb_status ann_new(const char *factory, size_t d, ann_metric metric, ann_index **out);
/* A bare exact IndexFlatIP (no IDMap): ids are the rows in order of
** ann_add, which must get ids == NULL. The baseline for exact search. */
plumb_status ann_new_flat_ip(size_t d, ann_index **out);
void ann_free(ann_index *ix); /* NULL is a no-op */
size_t ann_dim(const ann_index *ix);
int64_t ann_count(const ann_index *ix);
/* Train on n sample vectors when the index needs it (IVF, PQ, SQ); a
** no-op for indexes that are trained already. */
plumb_status ann_train(ann_index *ix, size_t n, const float *x);
int ann_is_trained(const ann_index *ix);
/* ids: one per vector; NULL only for ann_new_flat_ip indexes. */
plumb_status ann_add(ann_index *ix, size_t n, const float *x, const int64_t *ids);
/* Search-time parameters by FAISS name: "efSearch" (HNSW), "nprobe"
** (IVF). PLUMB_MISUSE when the index has no such parameter. */
plumb_status ann_set_param(ann_index *ix, const char *name, double value);
/* nq queries; scores and ids receive nq*k entries, best first; missing
** results have id -1 and score -INFINITY. */
plumb_status ann_search(const ann_index *ix, size_t nq, const float *q, size_t k, float *scores,
                        int64_t *ids);
/* Written to path + ".tmp", then renamed over path. */
plumb_status ann_save(const ann_index *ix, const char *path);
/* An index loaded from a file always takes ids in ann_add. */
plumb_status ann_load(const char *path, ann_index **out);

#endif /* PLUMB_IMPL_H */
