/*
** plumb.h -- the public interface of the plumb retrieval engine.
**
** This header is the manual. plumb indexes a local document collection in
** one SQLite file (documents, chunks, metadata, content hashes and an FTS5
** lexical index fed by plumb's own tokenizer), and answers queries with
** BM25 whose k1, b and per-field weights are the engine's own.
**
** CONVENTIONS
**   - Every function that can fail returns a plumb_status. On failure a
**     detail message for the calling thread is available from
**     plumb_errmsg() until the next plumb call on that thread.
**   - Inputs are borrowed for the duration of the call; what the library
**     keeps, it copies.
**   - Memory returned by the library is freed with the matching _free
**     function. Out-parameters are set to NULL/0 on failure.
**   - Scores are "higher is better".
**   - The library never aborts or exits the process.
**
** THREADS
**   One plumb_db handle may be used by many threads at once. Searches run
**   concurrently, each on its own read snapshot (SQLite WAL): a search
**   never sees a half-applied write and is never blocked by a writer.
**   Writes (add, delete, index, batches) are serialised: one writer at a
**   time per handle, and SQLite's locking serialises writers across
**   processes (waiting up to busy_timeout_ms).
*/
#ifndef PLUMB_H
#define PLUMB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PLUMB_BUILDING) && defined(__GNUC__)
#define PLUMB_API __attribute__((visibility("default")))
#else
#define PLUMB_API
#endif

#define PLUMB_VERSION "0.1.0"
#define PLUMB_VERSION_NUMBER 1000 /* major*1000000 + minor*1000 + patch */
/* The on-disk format this library reads and writes; plumb_open() refuses
** any other with PLUMB_FORMAT. See index/FORMAT.md. */
#define PLUMB_FORMAT_VERSION 1

/* The library's PLUMB_VERSION (may differ from the header you compiled
** against). Static text. */
PLUMB_API const char *plumb_libversion(void);

/* Status codes. Values are never renumbered; new ones are appended. */
typedef enum plumb_status {
    PLUMB_OK = 0,
    PLUMB_ERROR,    /* generic failure; see plumb_errmsg() */
    PLUMB_NOMEM,    /* an allocation failed */
    PLUMB_IO,       /* a file could not be read or written */
    PLUMB_CORRUPT,  /* the index or an input is damaged */
    PLUMB_MISUSE,   /* an API contract was broken (NULL handle, bad param) */
    PLUMB_FORMAT,   /* not a plumb index, or another format version */
    PLUMB_HTTP,     /* an HTTP service answered with an error */
    PLUMB_TIMEOUT,  /* an operation ran out of time */
    PLUMB_NOTFOUND, /* the named document or file does not exist */
    PLUMB_BUSY      /* the index stayed locked by another writer */
} plumb_status;

/* A short static description of a status code, never NULL. */
PLUMB_API const char *plumb_status_str(plumb_status rc);

/* The calling thread's detail message for the last failed call: which
** file, line, field or SQL step was at fault. Never NULL ("" when none).
** Valid until the next plumb call on the same thread; plumb_status_str()
** and plumb_errmsg() themselves do not clear it. */
PLUMB_API const char *plumb_errmsg(void);

/* ------------------------------------------------------------------ */
/* Opening an index                                                    */
/* ------------------------------------------------------------------ */

typedef struct plumb_db plumb_db;

typedef struct plumb_open_params {
    int create;          /* 1: create the index if the file is missing (default 1) */
    int readonly;        /* 1: open read-only; writes return PLUMB_MISUSE (default 0) */
    int busy_timeout_ms; /* wait this long for another writer's lock (default 5000) */
    /* The fields below apply only when a new index is created; an existing
    ** index keeps the values stored in it (see plumb_stats). */
    const char *language; /* Snowball stemmer: "english" (default), "porter",
                             "french", ... or "none" for no stemming */
    int stopwords;        /* 1: drop English stop words (default 1) */
    int chunk_tokens;     /* chunk window in estimated tokens (default 512);
                             0 makes every document a single chunk */
    int chunk_overlap;    /* tokens shared by consecutive chunks (default 64) */
    double bm25_k1;       /* stored default (0.9) */
    double bm25_b;        /* stored default (0.4) */
    double weight_title;  /* stored BM25F field weight of the title (1.0) */
    double weight_body;   /* stored BM25F field weight of the body (1.0) */
} plumb_open_params;

/* Fill *p with the defaults documented above. */
PLUMB_API void plumb_open_params_init(plumb_open_params *p);

/* Open (or create) the index at `path`. `p` may be NULL for defaults.
** Returns PLUMB_NOTFOUND when the file is missing and p->create is 0,
** PLUMB_FORMAT when the file is not a plumb index or has another format
** version, PLUMB_CORRUPT when SQLite reports damage. On success *out is a
** handle to release with plumb_close(). */
PLUMB_API plumb_status plumb_open(const char *path, const plumb_open_params *p,
                                  plumb_db **out);

/* Close the handle. Waits for nothing: the caller must have finished all
** calls on it. NULL is a harmless no-op. An open batch is rolled back. */
PLUMB_API void plumb_close(plumb_db *db);

/* ------------------------------------------------------------------ */
/* Documents                                                           */
/* ------------------------------------------------------------------ */

typedef struct plumb_doc {
    const char *id;       /* required, unique, non-empty UTF-8 */
    const char *title;    /* may be NULL */
    const char *text;     /* body; may be NULL or empty */
    const char *metadata; /* a JSON object as text, or NULL */
    const char *source;   /* where the document came from (path, URL), or NULL */
} plumb_doc;

/* What plumb_add did with a document. */
typedef enum plumb_add_result {
    PLUMB_ADDED = 0,   /* the id was new */
    PLUMB_REPLACED,    /* the id existed with other content: replaced */
    PLUMB_UNCHANGED    /* the id existed with the same content: nothing written */
} plumb_add_result;

/* Add or replace one document: its text is chunked, tokenized and
** indexed. Text must be valid UTF-8 (PLUMB_CORRUPT with the byte offset
** otherwise); metadata must be a JSON object (PLUMB_CORRUPT naming the
** position otherwise). Outside a batch the change is committed at once.
** `result` may be NULL. */
PLUMB_API plumb_status plumb_add(plumb_db *db, const plumb_doc *doc,
                                 plumb_add_result *result);

/* Delete the document with this id and all its chunks. PLUMB_NOTFOUND
** when no document has that id. */
PLUMB_API plumb_status plumb_delete(plumb_db *db, const char *id);

/* Group many writes into one transaction: much faster for bulk loads, and
** atomic. Readers see none of a batch until plumb_batch_commit(). Only one
** batch per handle at a time (PLUMB_MISUSE otherwise); the calling thread
** should be the only writer while it is open. */
PLUMB_API plumb_status plumb_batch_begin(plumb_db *db);
PLUMB_API plumb_status plumb_batch_commit(plumb_db *db);
PLUMB_API plumb_status plumb_batch_rollback(plumb_db *db);

/* ------------------------------------------------------------------ */
/* Ingest: files and directories                                       */
/* ------------------------------------------------------------------ */

typedef struct plumb_progress {
    int64_t files_done, files_total;
    int64_t bytes_done, bytes_total;
    int64_t docs_done;       /* documents examined so far */
    double elapsed_s;
    const char *current;     /* path being read; valid during the callback */
} plumb_progress;

typedef enum plumb_msg_level { PLUMB_MSG_INFO = 0, PLUMB_MSG_WARN, PLUMB_MSG_ERROR } plumb_msg_level;

typedef struct plumb_index_params {
    int prune;        /* 1: remove documents whose file has vanished from under
                         the given directories, or from a changed JSONL file */
    int follow_links; /* 1: follow symbolic links to directories (loops are
                         detected and skipped) (default 0) */
    int commit_every; /* commit after this many documents (default 2000), so
                         an interrupted run keeps what it had indexed */
    /* Called now and then (at most ~10 times a second) with progress. */
    void (*progress)(void *arg, const plumb_progress *p);
    /* Called for every skipped file, repaired input, malformed line...
    ** `msg` names the file and the line or byte offset; valid during the call. */
    void (*message)(void *arg, plumb_msg_level level, const char *msg);
    void *arg; /* passed to both callbacks */
} plumb_index_params;

typedef struct plumb_index_stats {
    int64_t files_seen;      /* regular files considered */
    int64_t files_unchanged; /* skipped: same content hash as last time */
    int64_t files_indexed;   /* read and indexed (new or changed) */
    int64_t files_skipped;   /* unsupported type, binary, unreadable */
    int64_t files_pruned;    /* vanished files whose documents were removed */
    int64_t docs_added, docs_replaced, docs_unchanged, docs_deleted;
    int64_t chunks_added;
    int64_t bad_records;     /* malformed JSONL lines, invalid documents */
    int64_t bytes_read;
    double elapsed_s;
} plumb_index_stats;

PLUMB_API void plumb_index_params_init(plumb_index_params *p);

/* Index files and directories (recursively). Supported: .txt, .md and
** .markdown (markup stripped), .html/.htm (tags, scripts and styles
** stripped, entities decoded, <title> taken), .jsonl (BEIR: one object per
** line with "_id", "title", "text", optional "metadata"), .pdf (through the
** pdftotext program when it is installed). A file's document id is its
** canonical absolute path; a JSONL record's id is its "_id".
** Unchanged files are skipped by content hash; changed files replace their
** documents. Problems with single files or records are reported through
** p->message and counted in *stats; they do not stop the run. Returns an
** error only when the index itself cannot be written or a path given
** explicitly does not exist (after indexing the others). `stats` may be NULL;
** when given it is filled in on success and on failure alike (it counts
** what was done before the failure). The callbacks are called from the
** calling thread only, never concurrently. */
PLUMB_API plumb_status plumb_index_paths(plumb_db *db, const char *const *paths, int npaths,
                                         const plumb_index_params *p, plumb_index_stats *stats);

/* ------------------------------------------------------------------ */
/* Search                                                              */
/* ------------------------------------------------------------------ */

typedef enum plumb_scorer {
    PLUMB_SCORER_BM25 = 0, /* plumb's BM25F (k1, b and field weights below) on
                              the engine's own in-memory top-k index */
    PLUMB_SCORER_FTS5,     /* SQLite FTS5's built-in bm25() (k1=1.2, b=0.75,
                              fixed, field weights 1); a baseline for
                              measurements: ignores the four fields below */
    PLUMB_SCORER_BM25_SQL  /* the same BM25F as PLUMB_SCORER_BM25, computed by
                              an FTS5 auxiliary function over every matching
                              row: the slow exhaustive reference */
} plumb_scorer;

typedef struct plumb_search_params {
    int k;               /* hits to return (default 10; at most 10000) */
    plumb_scorer scorer; /* default PLUMB_SCORER_BM25 */
    double bm25_k1;      /* < 0: the index's stored default */
    double bm25_b;       /* < 0: the index's stored default */
    double weight_title; /* < 0: the index's stored default */
    double weight_body;  /* < 0: the index's stored default */
    int with_text;       /* 1: fill hit.text with the chunk's text (default 1) */
    int snippet_tokens;  /* snippet length in words; 0: no snippet (default 24) */
    const char *hl_open, *hl_close; /* snippet highlight markers ("[" and "]") */
} plumb_search_params;

PLUMB_API void plumb_search_params_init(plumb_search_params *p);

typedef struct plumb_hit {
    const char *doc_id;   /* the document's id */
    int64_t chunk_id;     /* stable row id of the chunk in this index */
    int chunk_seq;        /* 0-based position of the chunk in its document */
    double score;         /* higher is better */
    const char *title;    /* "" when none */
    const char *text;     /* the chunk's text, or NULL without with_text */
    const char *snippet;  /* the best window with query terms highlighted, or NULL */
    const char *source;   /* "" when none */
    const char *metadata; /* JSON text, or NULL */
} plumb_hit;

typedef struct plumb_hits {
    size_t n;         /* number of hits, best first */
    plumb_hit *hit;   /* n entries; strings live as long as the plumb_hits */
    int64_t matched;  /* chunks that matched at least one query term (-1 with
                         PLUMB_SCORER_FTS5, which does not count them) */
    int64_t generation; /* index generation the results were read from */
} plumb_hits;

/* Search the index. An empty query, or one with only stop words, returns
** zero hits and PLUMB_OK. Ties in score are broken by ascending chunk id.
** The first search on a handle builds the in-memory BM25 index from the
** file (about a second per million short chunks); later searches replay
** only what other writers changed since.
** On success *out must be released with plumb_hits_free(). */
PLUMB_API plumb_status plumb_search(plumb_db *db, const char *query,
                                    const plumb_search_params *p, plumb_hits **out);

/* Release search results. NULL is a harmless no-op. */
PLUMB_API void plumb_hits_free(plumb_hits *hits);

/* ------------------------------------------------------------------ */
/* Statistics and settings                                             */
/* ------------------------------------------------------------------ */

typedef struct plumb_stats {
    int format_version;
    int64_t generation;    /* incremented by every committed write */
    int64_t documents, chunks, files;
    int64_t tokens_title, tokens_body; /* indexed tokens per field */
    int64_t db_bytes;      /* size of the index file(s) on disk */
    char language[32];     /* NUL-terminated */
    int stopwords;
    int chunk_tokens, chunk_overlap;
    double bm25_k1, bm25_b, weight_title, weight_body;
} plumb_stats;

PLUMB_API plumb_status plumb_stats_get(plumb_db *db, plumb_stats *out);

/* Tokenize text exactly as the index does (fold, strip diacritics, stop
** words, stem, CJK bigrams) with the index's settings, calling `emit` for
** each term with its byte range in `text`. Returns the status; a non-zero
** return from `emit` stops early with PLUMB_OK. For tools and tests. */
PLUMB_API plumb_status plumb_tokenize(plumb_db *db, const char *text, size_t len,
                                      int (*emit)(void *arg, const char *term, size_t n,
                                                  size_t start, size_t end),
                                      void *arg);

#ifdef __cplusplus
}
#endif
#endif /* PLUMB_H */
