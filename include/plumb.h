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
#define PLUMB_FORMAT_VERSION 2

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
    PLUMB_BUSY,     /* the index stayed locked by another writer */
    PLUMB_CANCELLED /* stopped on request (a cancel flag, Ctrl-C) */
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
    /* After the files: embed the chunks that have no vector yet with
    ** plumb_embed() (training the built-in embedder first when the index
    ** has none). 1 by default; 0 leaves the index lexical-only. */
    int embed;
    const struct plumb_embed_params *embed_params; /* NULL: defaults */
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
    int embed_trained;       /* the embedder was (re)trained in this run */
    int64_t vectors_added;   /* chunks embedded in this run */
    int64_t vectors_missing; /* chunks left without a vector */
    double embed_s;          /* time spent training and embedding */
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
** p->message and counted in *stats; they do not stop the run (what each
** odd input becomes -- encodings, NUL bytes, overlong lines, deep trees,
** link loops, files changing while read -- is listed at the top of
** src/ingest.c and in `plumb index --help`). Returns an
** error only when the index itself cannot be written or a path given
** explicitly does not exist (after indexing the others). `stats` may be NULL;
** when given it is filled in on success and on failure alike (it counts
** what was done before the failure). The callbacks are called from the
** calling thread only, never concurrently. */
PLUMB_API plumb_status plumb_index_paths(plumb_db *db, const char *const *paths, int npaths,
                                         const plumb_index_params *p, plumb_index_stats *stats);

/* ------------------------------------------------------------------ */
/* Embedding                                                           */
/* ------------------------------------------------------------------ */
/*
** Dense vectors, one per chunk, come from the index's embedder. An index
** has at most one at a time (an "epoch"); the vectors of a new epoch
** replace all vectors of the old one, so the store never mixes models.
**
** "lsa", the built-in default, needs no model file: it learns from the
** collection itself. Chunks are bags of the index's terms weighted
** (1 + ln tf) * ln(N / df), terms in at least 2 chunks; a randomized
** truncated SVD of that chunk-term matrix (src/lsa.c) gives a projection
** of the vocabulary to `dim` dimensions. Every chunk, and every query, is
** folded in through it and normalised to unit length (cosine similarity).
** Chunks added later are folded in with the same projection; terms it
** never saw do not count. When the collection has grown to more than
** twice what the model was trained on, plumb_embed retrains on its own
** (a new epoch), and plumb_stats_get shows how many chunks came since.
**
** "http" calls an OpenAI-compatible /v1/embeddings service.
*/

typedef struct plumb_embed_params {
    const char *embedder; /* "lsa" or "http"; NULL: the index's current
                             embedder, or "lsa" when it has none */
    int dim;              /* lsa: dimensions (default 256; smaller
                             collections get fewer, see plumb_embed) */
    int retrain;          /* 1: start a new epoch: train (lsa) or switch
                             model (http), and re-embed every chunk */
    int min_chunks;       /* lsa: do not train below this many chunks
                             (default 64): dense search stays off */
    const char *url;      /* http: base URL ("http://127.0.0.1:11434/v1") */
    const char *model;    /* http: model name */
    const char *api_key;  /* http: NULL or "": none (never stored) */
    int batch;            /* http: inputs per request (default 64) */
    int concurrency;      /* http: requests in flight (default 4) */
    long timeout_ms;      /* http: per request (default 60000) */
    int commit_every;     /* vectors per transaction (default 2000): an
                             interrupted run keeps what it committed and
                             the next one continues from there */
    /* phase "train" or "embed"; may be NULL */
    void (*progress)(void *arg, const char *phase, int64_t done, int64_t total);
    void (*message)(void *arg, plumb_msg_level level, const char *msg);
    void *arg;
    volatile int *cancel; /* set to 1 to stop at the next commit (PLUMB_CANCELLED) */
    /* Approximate search index (FAISS), saved beside the index as
    ** <index>.ann: NULL or "auto": "HNSW32,Flat" once the index holds
    ** 2,000,000 vectors (environment PLUMB_ANN_MIN overrides); "none": never;
    ** any other FAISS factory string ("HNSW32,Flat", "IVF1024,SQ8" ...):
    ** build it now whatever the size. It is rebuilt when 10% of the
    ** vectors were added or 20% deleted since. */
    const char *ann;
    int ann_ef;           /* default efSearch (HNSW) / nprobe (IVF); 0: 64 / 16 */
} plumb_embed_params;

typedef struct plumb_embed_stats {
    int trained;            /* a new epoch began (trained or switched) */
    int64_t trained_chunks; /* lsa: chunks the model learned from */
    int dim;
    int64_t embedded;       /* vectors written by this call */
    int64_t missing;        /* chunks still without a vector afterwards */
    double train_s, embed_s;
} plumb_embed_stats;

PLUMB_API void plumb_embed_params_init(plumb_embed_params *p);

/* Give every chunk without a vector one, training the built-in embedder
** first when the index has no embedder (or p->retrain, or it drifted).
** With embedder "http" on an index whose vectors came from another
** embedder, model or dimension: PLUMB_MISUSE naming both, unless
** p->retrain. Too few chunks for "lsa": PLUMB_OK, nothing trained, a
** message says so. `st` may be NULL. Takes the writer lock throughout. */
PLUMB_API plumb_status plumb_embed(plumb_db *db, const plumb_embed_params *p,
                                   plumb_embed_stats *st);

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

/* Which first-stage retrievers run. */
typedef enum plumb_mode {
    PLUMB_MODE_AUTO = 0, /* hybrid when the index has vectors, else lexical */
    PLUMB_MODE_LEXICAL,  /* BM25 only (with `scorer`) */
    PLUMB_MODE_DENSE,    /* vector search only */
    PLUMB_MODE_HYBRID    /* BM25 top k_lex and dense top k_dense, fused */
} plumb_mode;

/* How hybrid search merges its two candidate lists. */
typedef enum plumb_fusion {
    PLUMB_FUSE_DEFAULT = 0, /* the index's stored default */
    PLUMB_FUSE_MINMAX,      /* alpha*dense + (1-alpha)*lexical, each min-max
                               normalised over its candidates */
    PLUMB_FUSE_ZSCORE,      /* the same with z-score normalisation */
    PLUMB_FUSE_RRF          /* sum of w/(rrf_k + rank) per source */
} plumb_fusion;

/* How dense candidates are found. */
typedef enum plumb_vsearch {
    PLUMB_VSEARCH_AUTO = 0, /* ANN when the index has one, else exact int8 +
                               f32 rescoring */
    PLUMB_VSEARCH_F32,      /* exact scan of the f32 vectors */
    PLUMB_VSEARCH_INT8,     /* exact int8 scan, top candidates rescored in f32 */
    PLUMB_VSEARCH_BINARY,   /* 1-bit scan, top candidates rescored in f32 */
    PLUMB_VSEARCH_ANN       /* the index's FAISS index (PLUMB_MISUSE if none) */
} plumb_vsearch;

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
    /* ---- dense and hybrid retrieval ---- */
    plumb_mode mode;     /* default PLUMB_MODE_AUTO */
    int k_lex, k_dense;  /* candidates from each retriever in hybrid mode;
                            < 0: the index's stored default */
    plumb_fusion fusion; /* default PLUMB_FUSE_DEFAULT */
    double alpha;        /* dense weight for MINMAX/ZSCORE, 0..1; < 0: stored */
    double rrf_k;        /* RRF constant; < 0: stored */
    plumb_vsearch vsearch; /* default PLUMB_VSEARCH_AUTO */
    int ef_search;       /* HNSW efSearch / IVF nprobe; <= 0: the index's default */
    int qe_docs;         /* hybrid: expand the BM25 query from the top N lexical
                            hits (RM3: terms weighted by their share of those
                            hits, the hits by exp(score - best score); settings
                            qe_terms, qe_weight); the dense query's feedback then
                            follows the expanded list; 0: off; < 0: the index's
                            stored default (10). Lexical mode never expands,
                            nor the FTS5 scorers, nor a hybrid search that runs
                            lexical for want of vectors */
    int rerank;          /* stage 2: rerank the top N candidates (see
                            "Tuning" below); 0: off; < 0: the index's stored
                            default (30 unless plumb tune changed it) */
    int log;             /* 1: record this search in the index's query log
                            when logging is on for the index (default 1);
                            evaluation searches set 0 */
    /* ---- stage 2's reranker (see "Tuning" below); NULL / <= 0: the
    ** index's stored default (settings rerank_kind, rerank_url,
    ** rerank_model, rerank_timeout_ms; see plumb_config_set) ---- */
    const char *reranker;      /* "features" (built in), "http": a
                                  /rerank service (Cohere/Jina/TEI shape), or
                                  "llm": a chat model (OpenAI-compatible
                                  /chat/completions) as a pointwise judge. llm
                                  makes one call per candidate, so N is
                                  capped: `rerank` when >= 0, at most 20;
                                  else the stored N, at most 5. Each call
                                  sends a fixed system prompt, the query and
                                  the candidate's title and text (2 KiB),
                                  temperature 0, max_tokens 8; the first
                                  integer of the reply must be 0..3 and is
                                  score_rerank. Ties keep the stage-1 order.
                                  Any failed call or reply without a grade
                                  falls back as http does */
    const char *rerank_url;    /* http: base URL, e.g. "http://127.0.0.1:8080/v1"
                                  ("/rerank" is appended; llm: e.g.
                                  "http://127.0.0.1:11434/v1", "/chat/completions"
                                  is appended); else $PLUMB_RERANK_URL,
                                  else the stored one */
    const char *rerank_model;  /* http, llm: model name sent; else $PLUMB_RERANK_MODEL,
                                  else the stored one ("" sends none) */
    int rerank_timeout_ms;     /* http, llm: time limit per attempt (default
                                  10000; llm: per call, and the longest
                                  silence in its stream); a call is retried
                                  twice on timeouts, 408, 429 and 5xx. The API
                                  key is never stored: $PLUMB_RERANK_API_KEY
                                  (llm: $PLUMB_LLM_API_KEY, else that) */
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
    /* per-stage evidence; NAN where the stage did not run or did not
    ** return this chunk; ranks are 1-based, 0 when absent */
    double score_lex;     /* BM25F (in hybrid mode, of the expanded query
                             unless qe_docs is 0) */
    double score_dense;   /* vector similarity (cosine for normalised vectors) */
    double score_fused;   /* after fusion (hybrid) */
    double score_rerank;  /* the reranker's score (top N only); with stage 2
                             on, `score` is this for the top N and lower
                             than all of them for the rest */
    int rank_lex, rank_dense, rank_fused;
} plumb_hit;

typedef struct plumb_hits {
    size_t n;         /* number of hits, best first */
    plumb_hit *hit;   /* n entries; strings live as long as the plumb_hits */
    int64_t matched;  /* chunks that matched at least one query term (-1 with
                         PLUMB_SCORER_FTS5, which does not count them) */
    int64_t generation; /* index generation the results were read from */
    int64_t log_id;   /* this search's query log entry (see "Query log and
                         feedback"); 0 when it was not logged, or when its id
                         is given only as the entry is written (the index
                         stayed locked by writers) */
    /* stage 2, as it ran */
    const char *rerank_kind; /* "features", "http" or "llm" (static text); NULL when
                                stage 2 did not run (N = 0, no query terms or
                                no candidates) */
    int rerank_n;            /* candidates handed to the reranker; 0: none */
    int rerank_fallback;     /* 1: the "http" or "llm" reranker failed
                                (after its retries: error status, timeout,
                                refused connection, malformed answer, llm: a
                                reply without a grade 0..3) and the hits
                                are in stage-1 order with stage-1 scores
                                (score_rerank NAN); the search itself
                                succeeded */
    const char *rerank_error; /* with rerank_fallback: why, naming the URL (llm:
                                 and the candidate, "candidate 2 of 5 (chunk 17)") and
                                 the status or the server's message; else
                                 NULL. Lives as long as the plumb_hits */
} plumb_hits;

/* Search the index. An empty query, or one with only stop words, returns
** zero hits and PLUMB_OK. Ties in score are broken by ascending chunk id.
** The first search on a handle loads the in-memory BM25 index from the
** side file <index>.bm25 that plumb_index_paths leaves for indexes of
** 50,000 chunks or more, or builds it from the chunks table (about 0.1 s
** for SciFact's 5,772 chunks, seconds per million);
** later searches replay only what writers changed since.
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
    /* the in-memory BM25 index of this handle; all 0 before its first search */
    int64_t lex_terms, lex_postings, lex_memory_bytes;
    /* the vector store: all 0 / "" when the index has no vectors */
    char embedder[64];     /* "lsa", "http" ... */
    char embed_model[128]; /* model name (for "lsa": its parameters) */
    int vec_dim;
    int64_t vec_count;     /* chunks with a vector */
    int64_t vec_missing;   /* chunks still waiting for one */
    int64_t vec_bytes;     /* bytes of vectors on disk (f32 + int8 + binary) */
    int64_t vec_memory_bytes; /* this handle's in-memory copy (0 before its first dense search) */
    int64_t embed_trained_chunks; /* chunks the built-in embedder was trained on */
    int64_t embed_added_since;    /* chunks embedded by folding in since then */
    char ann_type[64];     /* FAISS factory string, or "" without an ANN index */
    int64_t ann_count, ann_bytes, ann_deleted;
    /* stage 2's stored defaults (settings; see plumb_config_set) */
    char rerank_kind[16];  /* "features", "http" or "llm" */
    int rerank;            /* N: candidates reranked; 0: off */
    char rerank_url[512];  /* "http", "llm": the stored base URL ("" when none) */
    char rerank_model[128];/* "http", "llm": the stored model ("" when none) */
    int rerank_timeout_ms; /* "http", "llm": per attempt */
    int rerank_trees;      /* "features": regression trees added to the
                              linear model by plumb tune (0: linear only) */
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

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */
/* ------------------------------------------------------------------ */
/*
** Retrieval quality measured as trec_eval measures it, for every stage of
** the search pipeline, on BEIR-layout data: corpus.jsonl, queries.jsonl and
** qrels/SPLIT.tsv. The pieces: judgments (plumb_qrels) and queries
** (plumb_queries) loaded from files; rankings (plumb_run), produced by
** searching an index (plumb_eval_run) or read from TREC run files
** (plumb_run_load); per-query metrics and their means (plumb_eval_result);
** paired comparisons of two stages or runs (plumb_eval_compare); and a
** self-contained HTML report (plumb_eval_report_html).
**
** DEFINITIONS -- checked against trec_eval 9.0's source (usnistgov/trec_eval:
** form_res_rels.c, m_ndcg_cut.c, m_recall.c, m_P.c, m_recip_rank.c,
** m_map_cut.c, get_qrels.c, trec_eval.c):
**   Order.    A query's documents are sorted by score, highest first; equal
**             scores are broken by document id in DESCENDING strcmp() order
**             (form_res_rels.c, comp_sim_docno). The rank column of a run
**             file is ignored, as trec_eval ignores it. Ranks start at 1.
**   Relevant. A judgment with value >= 1. Values <= 0 and documents absent
**             from the qrels are not relevant. A relevant document that was
**             never retrieved counts in R and in the ideal DCG only.
**   nDCG@10   DCG@10 / IDCG@10 with DCG@k = sum over ranks r <= k of
**             rel(r) / log2(r + 1): linear gains (the judgment value, not
**             2^rel - 1) and rank 1 undiscounted. IDCG@k is the same sum
**             over the ideal ranking of ALL the query's judged documents
**             with value > 0, retrieved or not, highest value first.
**             (trec_eval -m ndcg_cut.10)
**   R@k       relevant documents in the top k / R, where R counts the
**             query's judgments >= 1. (recall.k; k = 10, 100, 1000)
**   P@10      relevant documents in the top 10 / 10, also when fewer than
**             10 were retrieved. (P.10)
**   MRR@10    1 / rank of the first relevant document when it is within
**             the top 10, else 0. (recip_rank on a run cut at 10 documents:
**             trec_eval -M 10 -m recip_rank)
**   MAP@100   sum over the relevant documents at ranks r <= 100 of
**             (relevant documents in the top r) / r, divided by R.
**             (map_cut.100)
**   Means     are taken over the queries that have at least one relevant
**             judgment; queries without judgments, and queries whose
**             judgments are all 0, are skipped and counted. A query that
**             retrieved nothing counts, with zeros.
** Where trec_eval differs: by default it averages over the queries present
** in both the qrels and the run (a judged query with no retrieved document
** is left out; -c keeps it with zeros, as plumb does), and it keeps a query
** whose judgments are all 0 in the mean with a score of 0 (plumb skips it;
** trec_eval's changelog of 2006 notes that only queries with no relevance
** information at all are ignored). So plumb's means equal trec_eval -c's
** on the run files it writes whenever every query of the qrels is in the
** queries file and has a relevant judgment, as in the BEIR test splits.
**
** CHUNKS AND DOCUMENTS. Judgments name documents while searches return
** chunks: a document's score is its best chunk's (MaxP). plumb_eval_run
** asks each stage for enough chunks to fill `depth` distinct documents
** (asking again with a larger k when the first answer falls short), so
** R@1000 is measured on 1000 documents, not 1000 chunks.
**
** FILES.
**   qrels     BEIR TSV "query-id<TAB>corpus-id<TAB>score" (a header line is
**             recognised and skipped) or TREC "qid iter docid rel"; fields
**             separated by tabs or spaces; '#' starts a comment line.
**   queries   JSONL, one object per line with string "_id" and "text".
**   run       TREC "qid Q0 docid rank score tag", one line per document.
** A malformed line is reported through the message callback as
** "FILE:LINE: what is wrong", counted, and skipped; it never stops the
** load. A repeated (query, document) judgment keeps the later line; a
** repeated query id or a document listed twice for a query in a run keeps
** the first. Those are reported and counted too.
**
** THREADS. The loaded objects and results are immutable: any number of
** threads may read them. plumb_eval_run searches from the calling thread
** and, for the parallel timing pass, from OpenMP worker threads; its
** callbacks are called from the calling thread only.
*/

/* Metrics, in the order of plumb_eval_query.metric[]. Append only. */
typedef enum plumb_metric {
    PLUMB_METRIC_NDCG10 = 0, /* nDCG@10 */
    PLUMB_METRIC_RECALL10,   /* R@10 */
    PLUMB_METRIC_RECALL100,  /* R@100 */
    PLUMB_METRIC_RECALL1000, /* R@1000 */
    PLUMB_METRIC_MRR10,      /* MRR@10 */
    PLUMB_METRIC_MAP100,     /* MAP@100 */
    PLUMB_METRIC_P10,        /* P@10 */
    PLUMB_METRIC_COUNT
} plumb_metric;

/* The metric's short name ("ndcg@10", "recall@100", "mrr@10", "map@100",
** "p@10"), used as its JSON key. Static text; NULL when m is out of range. */
PLUMB_API const char *plumb_metric_name(plumb_metric m);

/* The metric with this short name (case-insensitive), or -1. */
PLUMB_API int plumb_metric_from_name(const char *name);

/* Called for every malformed or suspicious input line and every summary
** worth a person's attention; `msg` starts with "FILE:LINE: " when a line
** is at fault and is valid during the call only. */
typedef void (*plumb_message_fn)(void *arg, plumb_msg_level level, const char *msg);

/* What a load read. */
typedef struct plumb_load_stats {
    int64_t lines;      /* lines in the file, blank, comment and header included */
    int64_t records;    /* valid records kept */
    int64_t malformed;  /* lines reported and skipped */
    int64_t duplicates; /* repeated records (see FILES above) */
} plumb_load_stats;

/* ---- judgments ---- */

typedef struct plumb_qrels plumb_qrels; /* opaque, immutable once loaded */

/* Read a qrels file. `message` may be NULL; `stats` may be NULL. Fails
** with PLUMB_NOTFOUND or PLUMB_IO when the file cannot be read, and with
** PLUMB_CORRUPT when it holds no valid judgment at all; malformed lines
** alone are not an error. On success release *out with plumb_qrels_free. */
PLUMB_API plumb_status plumb_qrels_load(const char *path, plumb_message_fn message, void *arg,
                                        plumb_qrels **out, plumb_load_stats *stats);
PLUMB_API void plumb_qrels_free(plumb_qrels *q);

/* Distinct query ids; judgments kept; judgments with value >= 1. */
PLUMB_API size_t plumb_qrels_queries(const plumb_qrels *q);
PLUMB_API size_t plumb_qrels_judgments(const plumb_qrels *q);
PLUMB_API size_t plumb_qrels_relevant(const plumb_qrels *q);

/* ---- queries ---- */

typedef struct plumb_queries plumb_queries; /* opaque, immutable once loaded */

/* Read a BEIR queries.jsonl file; conventions as plumb_qrels_load. */
PLUMB_API plumb_status plumb_queries_load(const char *path, plumb_message_fn message, void *arg,
                                          plumb_queries **out, plumb_load_stats *stats);
PLUMB_API void plumb_queries_free(plumb_queries *q);
PLUMB_API size_t plumb_queries_count(const plumb_queries *q);

/* ---- runs: ranked documents per query ---- */

typedef struct plumb_run_doc {
    const char *doc_id;
    double score; /* higher is better */
} plumb_run_doc;

typedef struct plumb_run_query {
    const char *query_id;
    size_t n;           /* documents */
    plumb_run_doc *doc; /* n entries */
} plumb_run_query;

/* A run built by the library is sorted in trec_eval's order (see
** DEFINITIONS) and holds no document twice per query. A run built by the
** caller may be in any order: the library sorts a copy. */
typedef struct plumb_run {
    const char *tag; /* the run's name: TREC run tag and column 6 of run files */
    size_t nq;       /* queries */
    plumb_run_query *q;
} plumb_run;

/* Read a TREC run file. Scores must be finite numbers. A query's lines
** need not be adjacent. When the tag column differs between lines the
** first one is kept. Conventions as plumb_qrels_load; release *out with
** plumb_run_free. */
PLUMB_API plumb_status plumb_run_load(const char *path, plumb_message_fn message, void *arg,
                                      plumb_run **out, plumb_load_stats *stats);

/* Write `run` as a TREC run file ("qid Q0 docid rank score tag", ranks
** from 1 in trec_eval's order, scores printed so that they read back
** exactly, tag = run->tag or "plumb"). Ids containing white space cannot
** be written (PLUMB_MISUSE). The file is replaced atomically. */
PLUMB_API plumb_status plumb_run_write(const plumb_run *run, const char *path);

/* Release a run returned by plumb_run_load. NULL is a harmless no-op.
** (Runs inside a plumb_eval_result belong to the result.) */
PLUMB_API void plumb_run_free(plumb_run *run);

/* ---- evaluating ---- */

/* One stage of the pipeline to evaluate: a name and the search that
** produces it. Today every stage is lexical (BM25 / FTS5 bm25()); dense,
** fused and reranked stages will be selected through their search params
** as they land, and show up here side by side. `search` is the stage as a
** user runs it: its latency is measured with exactly these params (k,
** texts, snippets). The evaluation searches use the same params with k
** raised to fill `depth` documents and without texts or snippets. */
typedef struct plumb_eval_stage {
    const char *name;           /* "bm25"; the JSON key and run tag (copied) */
    plumb_search_params search; /* e.g. from plumb_search_params_init: k = 10 */
} plumb_eval_stage;

typedef struct plumb_eval_params {
    int depth;     /* documents ranked per query, 10..10000 (default 1000) */
    int drop_self; /* 1: drop a retrieved document whose id equals the query
                      id, as BEIR does (matters for ArguAna, Quora) (default 1) */
    int threads;   /* threads for the parallel timing pass: 0 = all cores
                      (OpenMP's default), 1 = no parallel pass (default 0) */
    const plumb_eval_stage *stages; /* NULL: one stage "bm25" with plumb_search_params_init */
    int nstages;
    /* Called about every 1% of the queries of each stage; may be NULL. */
    void (*progress)(void *arg, const char *stage, size_t done, size_t total);
    plumb_message_fn message; /* unknown ids and other findings; may be NULL */
    void *arg;                /* passed to both callbacks */
} plumb_eval_params;

PLUMB_API void plumb_eval_params_init(plumb_eval_params *p);

/* One query's figures for one stage. */
typedef struct plumb_eval_query {
    const char *query_id;
    int nrel;          /* relevant judgments (value >= 1): R */
    int nret;          /* documents ranked (after drop_self), at most depth */
    int chunks;        /* chunks the searches returned (0 for run files) */
    double metric[PLUMB_METRIC_COUNT];
    double latency_ms; /* single-threaded time of the stage's own search
                          (plumb_eval_stage.search); -1 for run files */
} plumb_eval_query;

/* Timing of the stage's own search (plumb_eval_stage.search), each query
** once on the calling thread, then all queries again on `threads`
** threads; only plumb_search() is timed. */
typedef struct plumb_eval_latency {
    int measured;        /* 0: no timing (a run file); the rest is 0 */
    double mean_ms, p50_ms, p95_ms, p99_ms; /* one thread; percentiles
                            interpolate linearly between order statistics */
    double qps;          /* queries / second, one thread */
    int threads;         /* threads of the parallel pass; 0 when not run */
    double qps_parallel; /* queries / wall-clock second with `threads` threads */
    double p50_parallel_ms, p95_parallel_ms, p99_parallel_ms;
    int parallel_identical; /* 1: every query returned the same chunks and
                               scores in the parallel pass as on one thread */
    int k_eval;          /* chunks asked by each evaluation search (first try) */
    double qps_eval;     /* evaluation searches per second, one thread,
                            retries included */
} plumb_eval_latency;

/* The evaluation of one stage (or one run file). */
typedef struct plumb_eval_stage_result {
    const char *name;
    plumb_search_params search; /* the stage's own search, as timed (strings
                                   set to NULL); zeros for run files */
    double mean[PLUMB_METRIC_COUNT]; /* over q[0..nq) */
    size_t nq;                       /* queries evaluated */
    plumb_eval_query *q;             /* nq entries, in evaluation order (the
                                        same for every stage of a result) */
    plumb_eval_latency latency;
    const plumb_run *run; /* the rankings, trec_eval order, one entry per
                             evaluated query, in q's order */
    int64_t no_hits;      /* evaluated queries that ranked no document */
    int64_t rerank_fallbacks; /* evaluated queries whose ranking came from a
                                 search that fell back to the stage-1 order
                                 because its "http" reranker failed
                                 (plumb_hits.rerank_fallback): for them the
                                 stage was measured as stage 1. 0 for run
                                 files. The timing passes are not counted
                                 (their latency includes the failed calls) */
    const char *rerank_error; /* the first such search's plumb_hits.rerank_error;
                                 NULL when rerank_fallbacks is 0. Lives as
                                 long as the result */
} plumb_eval_stage_result;

/* What went in and what was left out. */
typedef struct plumb_eval_counts {
    int64_t queries;             /* in the queries file (0 for run files) */
    int64_t qrels_queries;       /* distinct query ids in the qrels */
    int64_t judgments;           /* judgments in the qrels */
    int64_t relevant;            /* ...with value >= 1 */
    int64_t evaluated;           /* queries averaged over */
    int64_t skipped_unjudged;    /* queries-file queries absent from the qrels
                                    (run files: run queries absent from it) */
    int64_t skipped_no_relevant; /* judged queries with no judgment >= 1 */
    int64_t unknown_queries;     /* qrels query ids absent from the queries
                                    file (run files: judged queries that no
                                    run has; they score 0) */
    int64_t judged_docs;         /* distinct judged document ids */
    int64_t unknown_docs;        /* ...absent from the index (-1: not checked) */
    int64_t self_hits_dropped;   /* hits dropped by drop_self, all stages */
} plumb_eval_counts;

typedef struct plumb_eval_result {
    plumb_eval_counts counts;
    int depth;
    int drop_self;
    double elapsed_s;              /* wall-clock time of the evaluation */
    size_t nstages;
    plumb_eval_stage_result *stage; /* nstages entries, in the order given */
} plumb_eval_result;

/* Search `db` with every stage for every query of `queries` that has a
** relevant judgment in `qrels`, in queries-file order, and measure the
** rankings (DEFINITIONS above). Then each stage's own search is timed per
** query on the calling thread and, unless p->threads is 1 or only one core
** is available, once more over all queries with `threads` threads, to
** measure throughput and check that the parallel answers are identical
** (plumb_eval_latency). Unknown
** query and document ids are counted and reported through p->message.
** `p` may be NULL. On success release *out with plumb_eval_result_free. */
PLUMB_API plumb_status plumb_eval_run(plumb_db *db, const plumb_queries *queries,
                                      const plumb_qrels *qrels, const plumb_eval_params *p,
                                      plumb_eval_result **out);

/* Measure existing runs (one stage per run, named by names[i] when names
** is not NULL, else by the run's tag) against `qrels`: every qrels query
** with a relevant judgment is evaluated; a query missing from a run scores
** 0 (trec_eval -c). Qrels queries found in no run are counted as
** unknown_queries. No latency. `p` may be NULL (only depth and message
** are used: documents past `depth` are ignored). */
PLUMB_API plumb_status plumb_eval_runs(const plumb_qrels *qrels, const plumb_run *const *runs,
                                       const char *const *names, int nruns,
                                       const plumb_eval_params *p, plumb_eval_result **out);

/* Release a result. NULL is a harmless no-op. */
PLUMB_API void plumb_eval_result_free(plumb_eval_result *r);

/* ---- comparing two stages or runs ---- */

typedef struct plumb_compare_params {
    plumb_metric metric; /* compared per query (default PLUMB_METRIC_NDCG10) */
    int permutations;    /* randomization test rounds, >= 1000 (default 10000) */
    uint64_t seed;       /* of the test's generator: fixed, so p is
                            reproducible (default 42) */
    double tie_eps;      /* |b - a| <= tie_eps is a tie (default 1e-9) */
} plumb_compare_params;

PLUMB_API void plumb_compare_params_init(plumb_compare_params *p);

typedef struct plumb_compare_query {
    const char *query_id;
    double a, b; /* the metric for A and for B; B - A is the difference */
} plumb_compare_query;

typedef struct plumb_comparison {
    const char *name_a, *name_b;
    plumb_metric metric;
    size_t n;                   /* queries evaluated in both */
    plumb_compare_query *q;     /* n entries, in A's order */
    int64_t only_a, only_b;     /* queries evaluated in one only: left out */
    int64_t wins, losses, ties; /* B better, worse, equal (tie_eps) */
    double mean_a, mean_b, mean_diff; /* over the n queries; diff = B - A */
    /* Paired two-sided randomization test (Fisher; Smucker, Allan and
    ** Carterette, CIKM 2007): each round flips the sign of every query's
    ** difference with probability 1/2; p = (rounds with |mean| >= the
    ** observed |mean| + 1) / (rounds + 1). Identical inputs give p = 1. */
    double p_randomization;
    int permutations;
    uint64_t seed;
    /* Paired two-sided t-test on the differences, n - 1 degrees of
    ** freedom (p = 1 when every difference is 0, p = 0 when they are all
    ** equal and not 0; NaN when n < 2). */
    double t, p_ttest;
} plumb_comparison;

/* Compare stage B against stage A query by query (queries matched by id).
** The stages may come from different results. `p` may be NULL. On
** success release *out with plumb_comparison_free. */
PLUMB_API plumb_status plumb_eval_compare(const plumb_eval_stage_result *a,
                                          const plumb_eval_stage_result *b,
                                          const plumb_compare_params *p, plumb_comparison **out);
PLUMB_API void plumb_comparison_free(plumb_comparison *c);

/* ---- report ---- */

/* Write a self-contained HTML page (inline SVG and CSS, no script, no
** network) to `path`: the counts and parameters, a bar chart of every
** metric per stage, the per-query win/loss plot of `cmp` (may be NULL),
** and the per-stage latency distribution (when measured). `title` may be
** NULL. The file is replaced atomically. */
PLUMB_API plumb_status plumb_eval_report_html(const char *path, const char *title,
                                              const plumb_eval_result *r,
                                              const plumb_comparison *cmp);

/* ------------------------------------------------------------------ */
/* Query log and feedback                                              */
/* ------------------------------------------------------------------ */
/*
** Every search and every answer is recorded in the index: the query, the
** parameters, the hits with their per-stage scores and ranks, the latency,
** and for answers the prompt's hash and token count, the model and the
** answer. People then judge entries (plumb_feedback_add): a good or bad
** answer, a relevant or irrelevant document. plumb_export_qrels writes the
** judgments as a qrels file and a queries file that plumb_eval_run (plumb
** eval) and plumb tune take, so what users tell the engine becomes its next
** test set. Tables and settings: index/schema.sql, index/FORMAT.md.
**
** WHAT IS LOGGED. plumb_search calls with params.log = 1 (the default)
** that succeed, and plumb_log_record_ask calls. Nothing is logged by a
** handle opened read-only, nor for params.log = 0 (plumb_eval_run's
** searches), nor while the log is switched off for the index
** (plumb_log_set_enabled; on by default). Logging never changes the
** index generation: it is not a change of the collection.
**
** COST AND THREADS. A search never waits for the log. It copies a compact
** entry (the query, the parameters, the first 100 hits' ids and scores)
** into a queue in the handle, under a mutex held for an append. The queue
** is written to the index in one transaction: by a thread of the handle's
** own, which the search that brings the queue to 256 entries wakes (the
** thread starts the first time that happens, has every signal blocked and
** is joined by plumb_close), when SQLite's write lock can be had without
** waiting (else it tries again 32 entries later); before every write
** transaction of the handle (256 entries at most, without waiting); by
** plumb_log_flush and plumb_feedback_add (waiting, as writes do); and at
** plumb_close. Now and then (every 16 MB of WAL) the write also
** checkpoints (fsyncs; index/FORMAT.md). A search pays under a microsecond
** of CPU for its entry; the writer about 4 microseconds per entry on its
** own thread (bench/qlog_bench.c). At most 65,536 entries (and
** 64 MB) wait in a handle; when the index stays locked that long, or
** searches outrun the log, further entries are dropped and counted
** (plumb_log_info.dropped).
** Entries still queued when the process dies are lost.
**
** IDS. Entry ids are positive, below 2^53, unique in the index also when
** several processes log into it, and handed out when the entry is queued
** (plumb_hits.log_id) so a program can show them and take feedback on
** them. Handles reserve blocks of consecutive ids through the index
** (settings.log_next_id) and give back what they did not use when they
** close, so a tool that runs one search per process numbers its entries
** 1, 2, 3 ... A search that finds its handle out of ids gets log_id 0
** when the index is locked at that moment; its entry is numbered when it
** is written.
**
** RETENTION. The index keeps at most `keep` entries without feedback
** (settings.log_keep, default 100,000; 0: no limit): when a handle writing
** its queue finds more than keep + keep/16, it deletes the lowest ids (ids
** grow with time within a handle) down to keep. Entries with feedback are
** never deleted: their judgments need their queries.
**
** FEEDBACK TO QRELS. A query's id in the exported files is "q-" and 16 hex
** digits of a hash of its text with white space trimmed and collapsed and
** ASCII letters in lower case (plumb_log_query_id), so repeated queries
** merge into one query. For each (query, document), the latest explicit
** judgment wins (plumb_feedback_add with a doc_id; grade 0: judged not
** relevant). A verdict on a whole entry ("good", "bad") is recorded but
** exported only when asked: with good_top = N, a "good" entry that has no
** document judgment of its own marks its first N logged documents
** relevant (grade 1), and any explicit judgment of the same query and
** document overrides that. A "bad" verdict never writes a judgment: a bad
** answer does not say which documents were at fault. Only grades that
** were given are written.
*/

/* An answer to record: the ask path (search, pack, generate). When the
** search behind it is made with plumb_search, give it params.log = 0 and
** pass its hits here, so the answer is logged once, as one entry. */
typedef struct plumb_log_ask {
    const char *question;              /* required, UTF-8 */
    const plumb_search_params *search; /* the search's parameters, or NULL */
    const plumb_hits *hits;   /* the passages retrieved, best first (the first
                                 100 are kept), or NULL */
    const char *prompt_hash;  /* a hash of the prompt sent (any text, e.g. hex),
                                 or NULL */
    int64_t prompt_tokens;    /* tokens of that prompt; < 0: unknown */
    const char *model;        /* the generator model, or NULL */
    const char *answer;       /* the answer, or NULL */
    double latency_ms;        /* wall-clock time of the whole answer */
} plumb_log_ask;

/* Queue an answer for the log. *id (may be NULL) receives its entry id, or
** 0 when nothing was logged (read-only handle, log switched off, queue
** full) or the id is given only when written. Never waits for the writer.
** PLUMB_MISUSE for a NULL question or text that is not UTF-8. */
PLUMB_API plumb_status plumb_log_record_ask(plumb_db *db, const plumb_log_ask *a, int64_t *id);

/* Write this handle's queued entries now, waiting for the index's write
** lock like any write (up to busy_timeout_ms: PLUMB_BUSY, and the entries
** stay queued). PLUMB_OK with nothing to do for read-only handles;
** PLUMB_MISUSE while a batch is open (the log is written when the next
** transaction starts after it). */
PLUMB_API plumb_status plumb_log_flush(plumb_db *db);

/* Switch the index's log on (1) or off (0), for every handle and process:
** persisted in settings.log_enabled. Switching off drops this handle's
** queued entries; other handles drop theirs when they next write their
** queue, and stop logging (a handle reads the setting when it opens and
** when it writes its queue). Entries already written stay. Writable
** handles only (PLUMB_MISUSE). */
PLUMB_API plumb_status plumb_log_set_enabled(plumb_db *db, int on);

/* Keep at most `keep` entries without feedback (0: no limit); persisted in
** settings.log_keep. Entries beyond it are deleted at once, lowest ids
** first. Writable handles only. */
PLUMB_API plumb_status plumb_log_set_keep(plumb_db *db, int64_t keep);

typedef struct plumb_log_info {
    int available;         /* 0: the index has no log tables (it was made by
                              an older plumb); the rest is 0 */
    int enabled;           /* settings.log_enabled */
    int64_t keep;          /* settings.log_keep (0: no limit) */
    int64_t entries;       /* entries in the index */
    int64_t with_feedback; /* ...that have feedback */
    int64_t feedback;      /* feedback rows */
    int64_t queued;        /* this handle's entries not written yet */
    int64_t dropped;       /* entries this handle could not log: queue full,
                              out of memory */
} plumb_log_info;

/* Read the log's settings and counts. Works on read-only handles. A
** writable handle first writes its queue if the index is not locked at
** that moment (reading never waits for a writer). */
PLUMB_API plumb_status plumb_log_info_get(plumb_db *db, plumb_log_info *out);

typedef enum plumb_verdict {
    PLUMB_VERDICT_NONE = 0, /* no verdict: a document judgment or a note */
    PLUMB_VERDICT_GOOD,     /* the answer (the hits) served the query */
    PLUMB_VERDICT_BAD       /* it did not */
} plumb_verdict;

typedef struct plumb_feedback {
    int64_t id;            /* the feedback row's own id */
    int64_t log_id;        /* the entry judged */
    int64_t at_ms;         /* unix milliseconds */
    plumb_verdict verdict;
    const char *doc_id;    /* the document judged, or NULL (a verdict or note
                              on the whole entry) */
    int relevance;         /* doc_id's grade: 0 not relevant, >= 1 relevant;
                              -1 when doc_id is NULL */
    const char *note;      /* or NULL */
} plumb_feedback;

/* Judge a logged entry: a verdict on the whole entry, or one document
** (doc_id with its grade `relevance`, 0 for not relevant, 1 relevant, 2
** highly relevant ...), or a note alone; `note` may accompany either.
** One call writes one feedback row; call it several times (in a batch to
** make them atomic) to judge several documents. The document must be in
** the index or among the entry's logged hits. Entries this handle has
** still queued can be judged (the queue is written first). Writable handles
** only. Returns PLUMB_NOTFOUND naming the id when no entry has log_id or
** no document doc_id; PLUMB_MISUSE when nothing is given, relevance < 0
** with a doc_id, or a text is not UTF-8. *id (may be NULL) receives the
** feedback row's id. */
PLUMB_API plumb_status plumb_feedback_add(plumb_db *db, int64_t log_id, plumb_verdict verdict,
                                          const char *doc_id, int relevance, const char *note,
                                          int64_t *id);

typedef struct plumb_log_entry {
    int64_t id;
    int64_t at_ms;          /* unix milliseconds when the search finished */
    const char *kind;       /* "search" or "ask" */
    const char *query;      /* the query, or the question */
    const char *params;     /* JSON object: k, mode, scorer and every
                               parameter that was not the default; and
                               how stage 2 ran (rerank_kind below) */
    int64_t n_hits;         /* hits returned */
    const char *hits;       /* JSON object of parallel arrays over the first
                               100 hits: "doc", "chunk", "score", "stages"
                               (those that ran), and a stage's scores and
                               ranks ("lex", "lex_rank" ...) where they differ
                               from "score" and the positions
                               (index/FORMAT.md) */
    int64_t matched;        /* plumb_hits.matched */
    int64_t generation;     /* plumb_hits.generation */
    double latency_ms;
    const char *prompt_hash; /* "ask" entries; NULL otherwise and when not given */
    int64_t prompt_tokens;  /* -1 when not given */
    const char *model;
    const char *answer;
    char query_id[20];      /* the query's id in exported qrels (plumb_log_query_id) */
    size_t nfeedback;
    const plumb_feedback *feedback; /* nfeedback rows, oldest first */
    /* stage 2 as it ran (plumb_hits), read from `params` ("reranker",
    ** "rerank_fallback", "rerank_error"; index/FORMAT.md) */
    const char *rerank_kind;  /* "features", "http" or "llm"; NULL when stage 2 did
                                 not run or the entry predates these keys */
    int rerank_fallback;      /* 1: the reranker failed and the hits logged
                                 are in stage-1 order */
    const char *rerank_error; /* with rerank_fallback: why (at most 511
                                 bytes, invalid UTF-8 as '?'); else NULL */
} plumb_log_entry;

typedef struct plumb_log_entries {
    size_t n;
    plumb_log_entry *entry; /* newest first; strings live as long as this */
} plumb_log_entries;

typedef struct plumb_log_filter {
    int limit;            /* at most this many entries, newest first (default
                             20; 0: all) */
    int64_t id;           /* > 0: only this entry (default 0) */
    const char *kind;     /* "search" or "ask"; NULL: both (default) */
    const char *contains; /* only queries containing this text (byte-exact);
                             NULL: any */
    int64_t since_ms;     /* only entries at or after this unix time in ms (0) */
    int with_feedback;    /* 1: only entries that have feedback (default 0) */
} plumb_log_filter;

PLUMB_API void plumb_log_filter_init(plumb_log_filter *f);

/* Recent entries with their feedback, newest first (by time, then id).
** `f` may be NULL for the defaults. Works on read-only handles; a writable
** handle writes its queue first as plumb_log_info_get does (call
** plumb_log_flush to wait for a locked index). Reading sorts the matching entries by
** time: tens of milliseconds per 100,000 entries. On success release *out
** with plumb_log_entries_free. */
PLUMB_API plumb_status plumb_log_list(plumb_db *db, const plumb_log_filter *f,
                                      plumb_log_entries **out);
PLUMB_API void plumb_log_entries_free(plumb_log_entries *e);

/* The query id that exports give `query` (FEEDBACK TO QRELS above): "q-"
** and 16 lowercase hex digits, NUL-terminated, into out[20]. */
PLUMB_API void plumb_log_query_id(const char *query, char out[20]);

typedef struct plumb_export_params {
    const char *queries_path; /* also write the judged queries here as BEIR
                                 queries JSONL ({"_id", "text"}), which plumb
                                 eval needs beside the qrels; NULL: do not */
    int good_top;             /* 0: "good" verdicts write nothing (default);
                                 N > 0: see FEEDBACK TO QRELS above */
} plumb_export_params;

PLUMB_API void plumb_export_params_init(plumb_export_params *p);

typedef struct plumb_export_stats {
    int64_t feedback;     /* feedback rows read */
    int64_t entries;      /* entries they judge */
    int64_t queries;      /* query ids written (entries merged by query) */
    int64_t judgments;    /* qrels lines written */
    int64_t relevant;     /* ...with grade >= 1 */
    int64_t implied;      /* ...from "good" verdicts (good_top) */
    int64_t overridden;   /* judgments replaced by a later or explicit one of
                             the same query and document */
    int64_t verdict_only; /* entries with a verdict and no document judgment
                             (written only through good_top) */
    int64_t unwritable;   /* judgments of document ids with white space, which
                             qrels files cannot hold: left out */
    int64_t orphaned;     /* feedback rows whose entry is gone: left out */
} plumb_export_stats;

/* Write the judgments as a BEIR qrels file ("query-id<TAB>corpus-id<TAB>
** score" with that header line; sorted by query id, then document id) at
** `qrels_path`, and the judged queries at p->queries_path when given (only
** queries with at least one judgment written, each with the text of its
** latest entry; sorted by id). plumb eval --db INDEX --queries Q --qrels R
** evaluates the index on them. Files are replaced atomically. Works on
** read-only handles; a writable handle writes its queue first as
** plumb_log_info_get does. `p` and `stats` may be NULL; stats is filled on
** success. */
PLUMB_API plumb_status plumb_export_qrels(plumb_db *db, const char *qrels_path,
                                          const plumb_export_params *p,
                                          plumb_export_stats *stats);

/* ------------------------------------------------------------------ */
/* Tuning: learning search parameters from judgments (src/tune.c)      */
/* ------------------------------------------------------------------ */
/*
** STAGE 2. plumb_search reranks the top N candidates of stage 1 (the
** fused list, or the lexical one without vectors) when N > 0
** (plumb_search_params.rerank; the index's stored default is 30). The
** index's reranker kind (setting "rerank_kind") is "features", the
** built-in feature reranker: for each candidate, features of its indexed
** terms against the query's -- BM25F, the dense similarity, the stage-1
** score, idf-weighted query-term coverage in the chunk and in the title,
** term proximity (BM25TP), the smallest window holding the matched terms,
** ordered query bigrams, length -- some min-max normalised over the N
** candidates, combined linearly with weights stored in the index
** (setting "rerank_weights", "bm25=1,dense=0.6,..."; src/rerank.c
** defines each feature and the shipped weights). Hits past N follow in
** stage-1 order. hit.score is the reranker's score for the top N, and
** below the lowest of them for the rest; hit.score_rerank is NAN there.
** Kind "http" (plumb_search_params.reranker, or the stored rerank_kind)
** sends the query and the N candidates' title and text (each cut at 2
** KiB on a character boundary) in one POST {rerank_url}/rerank, the
** Cohere/Jina/TEI request shape, and sorts them by the service's
** relevance scores (ties: stage-1 order); plumb tune learns only the
** feature reranker. When the service fails after its retries the search
** still succeeds, in stage-1 order, with plumb_hits.rerank_fallback set.
** Kind "llm" (off by default) uses a generator model as a pointwise
** judge: one POST {rerank_url}/chat/completions per candidate (OpenAI
** shape; a fixed system prompt, the query and the candidate's title and
** text, temperature 0, max_tokens 8), and the first integer of the reply,
** which must be 0..3, is the candidate's score_rerank; they are sorted by
** it, ties in stage-1 order. Because each candidate costs a call, N is
** the stored one capped at 5, or plumb_search_params.rerank capped at 20.
** Any failed call or reply without a grade ends the stage and falls back
** as for "http"; rerank_error names the candidate, the URL and the reason.
** No in-memory index lock is held during the calls of either kind.
**
** TUNING. plumb_tune learns, for one or more indexes at once, BM25's k1
** and b and the fusion weight alpha (a small grid, when asked; the point
** kept is where the shipped reranker does best on the TRAINING
** judgments), then chooses by 5-fold cross-validation over the training
** queries between the shipped weights, the weights coordinate ascent
** learns on mean nDCG@10, and those plus a small LambdaMART ensemble of
** regression trees (settings "rerank_trees", added to the linear score):
** the features of each training query's top N are computed once per
** grid point and the models are learned on them. Held-out judgments, when given,
** are only measured, never learned from. With several sets, the
** objective is the mean over sets of each set's mean nDCG@10, and the
** learned values are common to all. Chunks count as their documents
** (MaxP), as in plumb_eval_run; nDCG@10 is computed over the reranked top
** N (N >= 10 documents).
*/

typedef struct plumb_tune_set {
    plumb_db *db;                 /* written to when plumb_tune_params.store */
    const plumb_queries *queries;
    const plumb_qrels *train;     /* judgments learned from */
    const plumb_qrels *heldout;   /* judgments only measured, or NULL */
    const char *name;             /* for messages; may be NULL */
} plumb_tune_set;

typedef struct plumb_tune_params {
    int rerank;   /* candidates reranked, 10..1000 (default 30) */
    int grid;     /* 1: search k1 in {0.6, 0.9, 1.2} x b in {0.3, 0.4, 0.6},
                     and, when every index has vectors, the fusion weight
                     alpha in {0.3, 0.5, 0.7} (default 1); 0: keep each
                     index's k1, b and alpha */
    int rounds;   /* coordinate ascent passes at most (default 8) */
    int store;    /* 1: write bm25_k1, bm25_b, rerank, rerank_kind
                     ("features"), rerank_weights and rerank_trees ("" when
                     no trees were kept, which clears earlier ones), and
                     alpha when it was learned, into each index's settings,
                     for handles opened after (default 0) */
    void (*progress)(void *arg, const char *what); /* may be NULL */
    void *arg;
    const char *features_out; /* when not NULL: write the reranker's features
                     of every judged query's top N at the learned parameters,
                     training and held-out, to this file as LETOR/SVMlight
                     lines: "REL qid:SET_QID 1:F1 ... 13:F13 # set=S
                     split=train|heldout doc=DOC idcg=X" (X: the query's
                     ideal DCG@10 over all its judgments), after a line
                     "# query qid:SET_QID split=S idcg=X" for every judged
                     query (also one without candidates), features normalised as
                     the reranker sees them, numbered in the order of
                     weight_names (for learners outside plumb) */
    int trees;    /* 1: also try a small ensemble of regression trees
                     (LambdaMART) added to the linear score (default 1); 0:
                     linear models only. The model kept -- the shipped
                     weights, learned weights, or learned weights + trees --
                     is the best by 5-fold cross-validation on the training
                     queries */
} plumb_tune_params;

PLUMB_API void plumb_tune_params_init(plumb_tune_params *p);

#define PLUMB_TUNE_MAX_SETS 8
#define PLUMB_TUNE_MAX_WEIGHTS 16

typedef struct plumb_tune_figures {
    size_t queries;  /* judged queries measured */
    double stage1;   /* mean nDCG@10 of stage 1 (no reranking), the
                        index's k1 and b */
    double shipped;  /* ... of the pipeline with the shipped weights */
    double tuned;    /* ... with the learned k1, b and weights */
} plumb_tune_figures;

typedef struct plumb_tune_result {
    double k1, b;                 /* learned (or kept) BM25 parameters */
    int rerank;                   /* N */
    int nweights;
    const char *weight_names[PLUMB_TUNE_MAX_WEIGHTS]; /* static text */
    double weights[PLUMB_TUNE_MAX_WEIGHTS];
    char weights_text[512];       /* as stored in "rerank_weights" */
    plumb_tune_figures train;     /* mean over sets of the per-set means */
    plumb_tune_figures heldout;   /* NAN figures when no set has held-out judgments */
    plumb_tune_figures set_train[PLUMB_TUNE_MAX_SETS], set_heldout[PLUMB_TUNE_MAX_SETS];
    int stored;                   /* the settings were written */
    double elapsed_s;
    double alpha;                 /* learned fusion weight; NAN when not
                                     searched (no grid, or an index without
                                     vectors) */
    int ntrees;                   /* trees kept (0: the linear model alone) */
    /* 5-fold cross-validated nDCG@10 on the training queries (each fold
    ** scored by a model learned on the other four): the shipped weights,
    ** the learned weights, and the learned weights + the trees kept (NAN
    ** when none were); all NAN when the training queries all fall into
    ** one fold (one or a few queries): the learned weights are then kept
    ** without comparison, and no trees */
    double cv_shipped, cv_linear, cv_trees;
    const char *model;            /* what was kept: "shipped" (learning did
                                     not beat the shipped weights), "linear"
                                     or "trees" (static text) */
} plumb_tune_result;

/* Learn (see TUNING above). 1 <= nsets <= PLUMB_TUNE_MAX_SETS; every set
** needs db, queries and train. `p` may be NULL. PLUMB_MISUSE when a
** training qrels has no query with a relevant judgment in its queries,
** or store is set on a read-only handle. */
PLUMB_API plumb_status plumb_tune(const plumb_tune_set *sets, int nsets,
                                  const plumb_tune_params *p, plumb_tune_result *out);

/* ------------------------------------------------------------------ */
/* Exact BPE token counting (src/bpe.c)                                */
/* ------------------------------------------------------------------ */

/* A byte-level BPE tokenizer that counts and encodes text exactly as a
** generator model does, so that a packed prompt can be held to a token
** budget without slack. Two file formats are read:
**   - tiktoken rank files ("<base64 token> <rank>" per line, e.g.
**     cl100k_base.tiktoken, o200k_base.tiktoken) with a JSON file beside
**     them named like the rank file with ".tiktoken" replaced by
**     ".meta.json": {"pat_str": "...", "special_tokens": {"<|endoftext|>":
**     100257, ...}};
**   - Hugging Face tokenizer.json files of byte-level BPE models (e.g.
**     Qwen3): vocab, merges, added tokens, an optional NFC normalizer and
**     a Split + ByteLevel pre-tokenizer.
** The pre-tokenization regex is not interpreted: it must be one of the
** families the library implements by hand (cl100k_base, o200k_base and
** the Qwen2/Qwen3 pattern, each in the spellings tiktoken, js-tiktoken
** and tokenizer.json use); any other is refused with PLUMB_FORMAT.
**
** Text is UTF-8. Its \s is Unicode White_Space (as in the Rust regex and
** Oniguruma engines the real tokenizers use); letter, number and mark
** classes come from the linked utf8proc's Unicode version (characters
** assigned after it count as punctuation). Invalid UTF-8 bytes are
** each taken as one character of no letter, number or space class (the
** reference tokenizers refuse such text; plumb still counts it).
**
** THREADS: a loaded tokenizer is immutable. Any number of threads may
** count and encode with the same handle at once; each call allocates its
** own scratch memory. Only plumb_tokenizer_free() must not overlap with
** other use of the handle. */
typedef struct plumb_tokenizer plumb_tokenizer;

/* Load a tokenizer from `path` (a .tiktoken rank file with its .meta.json
** beside it, or a tokenizer.json; the format is recognised by content).
** Returns PLUMB_IO when a file cannot be read, PLUMB_FORMAT when its
** content is not a supported tokenizer (unknown regex, not byte-level
** BPE, malformed line or JSON). On success release *out with
** plumb_tokenizer_free. Loading takes tens of milliseconds for
** cl100k_base and o200k_base and about 0.3 s for Qwen3's 11 MB
** tokenizer.json: load once and share the handle. */
PLUMB_API plumb_status plumb_tokenizer_load(const char *path, plumb_tokenizer **out);

/* NULL is a harmless no-op. */
PLUMB_API void plumb_tokenizer_free(plumb_tokenizer *tok);

/* A short name: the file's base name without ".tiktoken" or ".json"
** ("cl100k_base", "qwen3-tokenizer"). Valid until plumb_tokenizer_free;
** NULL only for a NULL handle. */
PLUMB_API const char *plumb_tokenizer_name(const plumb_tokenizer *tok);

/* One more than the largest token id (ordinary and special). */
PLUMB_API uint32_t plumb_tokenizer_vocab_size(const plumb_tokenizer *tok);

/* The number of tokens text[0..len) encodes to: always equal to the
** length of plumb_tokenizer_encode()'s output, computed without storing
** ids. `text` need not be NUL-terminated and may contain NUL bytes.
** allow_special: non-zero to recognise special tokens written in the
** text ("<|endoftext|>" becomes one token, as tiktoken's
** allowed_special="all"); zero to encode them as ordinary text (as
** tiktoken's encode_ordinary). A Hugging Face added token that is not
** marked "special" (Qwen3's <think>, <tool_call> ...) is always
** recognised, as the Hugging Face tokenizer does. */
PLUMB_API plumb_status plumb_tokenizer_count(const plumb_tokenizer *tok, const char *text,
                                             size_t len, int allow_special, size_t *n);

/* Encode text[0..len) to token ids. On success *ids (NULL when *n is 0)
** is released with plumb_tokenizer_ids_free. */
PLUMB_API plumb_status plumb_tokenizer_encode(const plumb_tokenizer *tok, const char *text,
                                              size_t len, int allow_special, uint32_t **ids,
                                              size_t *n);
PLUMB_API void plumb_tokenizer_ids_free(uint32_t *ids);

/* The bytes of token `id` (not NUL-terminated; *len receives their
** count). Concatenating the bytes of an encoding gives back the text
** (NFC-normalised for tokenizers that normalise). Valid until
** plumb_tokenizer_free; NULL with *len = 0 for an unknown id. */
PLUMB_API const char *plumb_tokenizer_token_bytes(const plumb_tokenizer *tok, uint32_t id,
                                                  size_t *len);

/* ------------------------------------------------------------------ */
/* Packing: a prompt held to a token budget (src/pack.c)               */
/* ------------------------------------------------------------------ */
/*
** plumb_pack() turns a question and ranked hits into what a generator
** receives: a system message, a user message with numbered passages and
** the question, and the two joined as one string for completion APIs.
** The prompt never exceeds the budget, not even by one token, and the
** result says what became of every hit.
**
** THE HITS are taken in the order given, best first (plumb_search's
** order; a caller with its own ranking passes it in that order). Each is:
**   NO_TEXT    skipped: hit.text is NULL or blank;
**   MERGED     joined to a passage already taken from the same document
**              whose chunks it continues (chunk_seq one past its last or
**              one before its first), when merge_adjacent is set.
**              Consecutive chunks share text (the index's chunk overlap):
**              the longest suffix of the earlier chunk that is a prefix of
**              the later one is written once. It must start at a word
**              boundary, or be 32 bytes or longer (CJK);
**   DUPLICATE  the same chunk as one taken (same doc_id and chunk_seq), or
**              a near-duplicate: the containment of word 3-shingles,
**              |A and B| / min(|A|, |B|) over lower-cased words (each CJK
**              character a word), reaches `dedup` against a hit taken.
**              Near-duplicates are looked for only while the budget has
**              room for the passage template; after that a hit is LEFT_OUT
**              without the (costly) comparison;
**   INCLUDED   written whole as a new passage, when its block fits in
**              what is left of the budget;
**   TRIMMED    cut short to fill what is left: at the last sentence end
**              that fits (the text then ends in " …"), or at the last
**              word boundary that fits (ending in "…") when the sentence
**              end would keep less than half as many bytes. A cut keeping
**              fewer than min_passage_tokens tokens of text is not made;
**              the hit is then
**   LEFT_OUT   no room (or max_passages reached). Later, shorter hits are
**              still tried. A chunk that continues a passage but does not
**              fit whole is cut the same way (MERGED, kept_bytes short of
**              its text); a chunk that would go before one must fit whole.
** Sentence ends follow the chunker's rules (.!? before white space and an
** upper-case letter or digit, CJK 。！？; line and paragraph breaks count
** too). Text is used as it is (no normalisation); only white space at
** either end of a hit's text is dropped.
**
** ORDER of the passages in the prompt: best first (BEST_FIRST), or the
** best at both ends, where long-context models attend most (Liu et al.,
** "Lost in the Middle", 2023): 1st, 3rd, 5th ... 6th, 4th, 2nd
** (BEST_AT_ENDS). Citation numbers follow the order of writing: the
** prompt holds [1] .. [n] from top to bottom, and citation[i].n == i + 1.
**
** TEMPLATES. Placeholders are replaced where they appear; other text,
** braces included, is copied as it is. Values are inserted verbatim.
**   system_template   {question}
**   user_template     {context} exactly once (the passages joined by
**                     `separator`; "" when none fits), {question}
**   passage_template  {text} exactly once, {n}, {title}, {source},
**                     {doc_id}; {title} and {source} fall back to the
**                     doc_id when the hit has none.
** The defaults (PLUMB_PACK_SYSTEM, _USER, _PASSAGE below) ask the model to
** answer from the sources only and cite them as [n].
**
** COUNTING. `tokens` is what the budget holds:
**   chat = 1  count(system) + count(user) + msg_overhead per message +
**             reply_overhead (no system message when its text is "");
**   chat = 0  count(prompt), prompt being system, a blank line, and user
**             (user alone when the system text is "").
** With a tokenizer every count is exact: plumb_tokenizer_count() with
** allow_special = 0 (text that spells a special token counts as plain
** text, as chat APIs encode message content) of the very strings
** returned. The overheads are the chat format's framing tokens, which the
** model's template adds around the content: OpenAI chat models take 3 per
** message plus 1 for the role and 3 to prime the reply (the counting
** OpenAI documents for tiktoken; the defaults 4 and 3); ChatML (Qwen) takes
** "<|im_start|>role\n" and "<|im_end|>\n", 5 per message, and 3 to prime.
** Names, tools, images and a model's hidden system text are not counted.
** Without a tokenizer every count is an estimate (exact = 0): the
** chunker's estimate (chunk.c) times 1.25, rounded up, capped at the byte
** length. Against cl100k_base, o200k_base and Qwen3 on the files of
** data/sample and every tenth SciFact document the true count never
** exceeded 1.17x the chunker's estimate;
** text in rarer scripts, emoji or symbols can exceed even 1.25x: load a
** tokenizer to be sure.
** HOW THE BUDGET IS KEPT. Selection counts each passage's block on its own
** (trimming by binary search over the cut points, each probe one count of
** the block). BPE counts do not add exactly where two strings meet, so
** the final strings are then counted whole; when they exceed the budget,
** selection is redone with the budget lowered by the excess, until they
** fit. `retries` says how often that happened (almost always 0).
**
** THREADS. plumb_pack only reads its inputs and the tokenizer: any number
** of threads may pack at once, sharing one tokenizer. The profile table is
** static and immutable.
*/

/* The default templates. */
#define PLUMB_PACK_SYSTEM                                                              \
    "Answer the question using only the numbered sources below. Cite the sources " \
    "that support each statement by their numbers in square brackets, like [1] or " \
    "[2][3]. If the sources do not contain the answer, say that you do not know."
#define PLUMB_PACK_USER "Sources:\n\n{context}\n\nQuestion: {question}"
#define PLUMB_PACK_PASSAGE "[{n}] {title}\nSource: {source}\n{text}"

typedef enum plumb_pack_order {
    PLUMB_ORDER_BEST_FIRST = 0, /* best passage first */
    PLUMB_ORDER_BEST_AT_ENDS    /* best first, second best last, ... */
} plumb_pack_order;

typedef struct plumb_pack_params {
    const plumb_tokenizer *tokenizer; /* exact counts; NULL: estimate (default NULL).
                                         Borrowed for the call. */
    int budget;          /* tokens the prompt may take; <= 0: context_window -
                            reserve_answer (default 0) */
    int context_window;  /* the model's context in tokens (default 8192) */
    int reserve_answer;  /* tokens kept free for the answer (default 1024) */
    int chat;            /* 1: count as chat messages; 0: as one prompt (default 1) */
    int msg_overhead;    /* framing tokens per chat message (default 4) */
    int reply_overhead;  /* tokens priming the reply (default 3) */
    const char *system_template;  /* NULL: PLUMB_PACK_SYSTEM; "" for none */
    const char *user_template;    /* NULL: PLUMB_PACK_USER */
    const char *passage_template; /* NULL: PLUMB_PACK_PASSAGE */
    const char *separator;        /* between passages; NULL: "\n\n" */
    double dedup;        /* near-duplicate containment threshold in (0, 1];
                            0: only the same chunk twice (default 0.7) */
    int merge_adjacent;  /* 1: merge consecutive chunks of a document (default 1) */
    plumb_pack_order order; /* default PLUMB_ORDER_BEST_FIRST */
    int min_passage_tokens; /* a trimmed passage keeps at least this many
                               tokens of text (default 32) */
    int max_passages;    /* 0: no limit (default 0) */
} plumb_pack_params;

PLUMB_API void plumb_pack_params_init(plumb_pack_params *p);

/* A model profile: what packing needs to know about a generator. */
typedef struct plumb_model_profile {
    const char *name;           /* "gpt-4o", "qwen3" ... */
    const char *tokenizer_file; /* the file to load with plumb_tokenizer_load()
                                   from the caller's tokenizer directory
                                   ("o200k_base.tiktoken"); NULL: none is
                                   public, the estimate is used. Tokenizer
                                   files are not bundled with plumb. */
    int context_window;         /* tokens */
    int reserve_answer;         /* tokens kept for the answer */
    int msg_overhead, reply_overhead; /* chat framing (see COUNTING) */
    const char *note;           /* where the figures come from */
} plumb_model_profile;

/* The built-in profiles, i = 0, 1, ...; NULL past the last. Static. */
PLUMB_API const plumb_model_profile *plumb_model_profile_at(size_t i);

/* Look up the profile `name` (case-insensitive) and set p's
** context_window, reserve_answer, msg_overhead and reply_overhead from it
** (budget is set to 0 so that they apply). p->tokenizer is not touched:
** load (*out)->tokenizer_file yourself when it is not NULL. `out` may be
** NULL. PLUMB_NOTFOUND for an unknown name (the message lists the known
** ones); p is then unchanged. */
PLUMB_API plumb_status plumb_pack_profile(const char *name, plumb_pack_params *p,
                                          const plumb_model_profile **out);

/* What became of a hit (THE HITS above). Append only. */
typedef enum plumb_pack_fate {
    PLUMB_PACK_INCLUDED = 0, /* whole, as the first hit of a passage */
    PLUMB_PACK_TRIMMED,      /* the first hit of a passage, cut short */
    PLUMB_PACK_MERGED,       /* joined to the passage of an adjacent chunk */
    PLUMB_PACK_DUPLICATE,    /* repeats hit dup_of */
    PLUMB_PACK_LEFT_OUT,     /* no room */
    PLUMB_PACK_NO_TEXT       /* hit.text NULL or blank */
} plumb_pack_fate;

/* "included", "trimmed", "merged", "duplicate", "left out", "no text";
** static text, NULL when out of range. */
PLUMB_API const char *plumb_pack_fate_name(plumb_pack_fate f);

/* One per input hit, in input order. */
typedef struct plumb_pack_item {
    plumb_pack_fate fate;
    int citation;      /* INCLUDED, TRIMMED, MERGED: the [n] of its passage; else 0 */
    size_t dup_of;     /* DUPLICATE: the index of the hit taken that it repeats */
    double overlap;    /* DUPLICATE: the containment measured (1 for the same chunk) */
    size_t kept_bytes; /* bytes at the start of hit.text (less leading white
                          space) that are in the prompt: all for INCLUDED and
                          whole merges, fewer when cut, 0 when not taken */
} plumb_pack_item;

/* One passage of the prompt. Strings are copies, valid until plumb_packed_free. */
typedef struct plumb_citation {
    int n;                /* its number in the prompt, [n], 1-based */
    int rank;             /* 1-based order of selection: 1 is the best passage */
    const char *doc_id;
    const char *title;    /* "" when none */
    const char *source;   /* "" when none */
    double score;         /* the score of its first (best) hit */
    size_t nchunks;       /* hits it holds, in document order: */
    size_t *hits;         /* their indexes in the input */
    int64_t *chunk_ids;   /* their chunk ids */
    int first_seq, last_seq; /* chunk_seq range covered */
    int trimmed;          /* 1: its text was cut short */
    const char *text;     /* the passage text as written ({text}) */
    size_t tokens;        /* its block (template and separator) counted alone
                             during selection */
} plumb_citation;

typedef struct plumb_packed {
    char *system;         /* the system message ("" when none) */
    char *user;           /* the user message */
    char *prompt;         /* system, blank line, user: for completion APIs */
    size_t tokens;        /* the count the budget holds (COUNTING); <= budget */
    size_t budget;        /* the budget applied */
    int exact;            /* 1: counted with the tokenizer; 0: estimated */
    char counter[96];     /* the tokenizer's name, or "estimate" */
    int chat;             /* the mode counted (params.chat) */
    size_t tokens_system, tokens_user; /* chat mode: each message's content
                             alone; tokens - both = the framing overhead.
                             0 in prompt mode. */
    size_t ncitations;    /* passages written */
    plumb_citation *citation; /* ncitations entries, citation[i].n == i + 1 */
    size_t nitems;        /* = the number of hits given */
    plumb_pack_item *item;
    size_t included, trimmed, merged, duplicates, left_out, no_text; /* items per fate */
    int retries;          /* selections redone because the whole was over budget */
} plumb_packed;

/* Pack `question` and hits[0..nhits) into a prompt (see above). `p` may
** be NULL for the defaults. `hits` may be NULL when nhits is 0; hit.doc_id
** must not be NULL for a hit with text. Returns PLUMB_MISUSE for a bad
** parameter (a template without its required placeholder, dedup outside
** [0, 1], a negative overhead, no positive budget); PLUMB_ERROR when the
** templates and the question alone do not fit in the budget (the message
** gives both counts); PLUMB_NOMEM. On success release *out with
** plumb_packed_free(). Cost: about one count of each hit that still finds
** room, a few more for the one trimmed, and one of the final strings;
** 100 SciFact passages into 8,192 tokens take about 7 ms with cl100k_base
** (bench/pack_bench.c). */
PLUMB_API plumb_status plumb_pack(const char *question, const plumb_hit *hits, size_t nhits,
                                  const plumb_pack_params *p, plumb_packed **out);

/* NULL is a harmless no-op. */
PLUMB_API void plumb_packed_free(plumb_packed *pk);

/* ------------------------------------------------------------------ */
/* Asking a generator (src/ask.c)                                      */
/* ------------------------------------------------------------------ */
/*
** plumb_ask = plumb_search + plumb_pack + an OpenAI-compatible
** /v1/chat/completions call (Ollama, llama.cpp's server, vLLM, OpenAI),
** streamed: each piece of the answer goes to on_delta as it arrives.
** Failures before the first piece (429, 5xx, refused connections,
** timeouts) are retried with backoff (Retry-After honoured); after it, a
** broken stream is an error that says how much arrived (the part that did
** is in the answer). The model name the server reports is kept per
** requested model in the index's settings (when the handle is writable):
** when it changes between runs, the answer says so (model_changed) --
** pin the exact version to keep answers comparable.
*/

typedef struct plumb_ask_params {
    plumb_search_params search; /* from plumb_search_params_init (k = 10) */
    plumb_pack_params pack;     /* from plumb_pack_params_init */
    const char *url;            /* base URL, e.g. "http://127.0.0.1:11434/v1" */
    const char *model;          /* model name to ask for */
    const char *api_key;        /* NULL or "": none; never stored */
    int max_tokens;             /* answer limit; <= 0: pack.reserve_answer */
    double temperature;         /* default 0 */
    long timeout_ms;            /* wait for the first byte (default 60000) */
    long idle_timeout_ms;       /* silence allowed mid-stream (default 30000) */
    int max_retries;            /* before the first token (default 4) */
    /* Each piece of the answer as it arrives (may be NULL); non-zero stops. */
    int (*on_delta)(void *arg, const char *text, size_t n);
    void *arg;
    volatile int *cancel;       /* set to 1 (e.g. from SIGINT) to stop: PLUMB_CANCELLED */
} plumb_ask_params;

PLUMB_API void plumb_ask_params_init(plumb_ask_params *p);

typedef struct plumb_answer {
    char *text;              /* the answer (what arrived, also on failure) */
    plumb_hits *hits;        /* what the search returned */
    plumb_packed *packed;    /* the prompt sent; citations [n] refer to it */
    char model[128];         /* the model the server says answered */
    int model_changed;       /* 1: another than last time for this name */
    char previous_model[128];
    char finish_reason[32];
    int64_t prompt_tokens, completion_tokens; /* as the server counted; -1 if not sent */
    double search_ms, pack_ms, first_token_ms, total_ms;
    int64_t log_id;          /* the query-log entry (0 when not logged) */
} plumb_answer;

/* Ask. *out is set whenever the search and packing succeeded (also when
** the generator then failed: the answer holds what arrived), and is
** released with plumb_answer_free. Status: PLUMB_HTTP / PLUMB_TIMEOUT for
** the service (the message names the URL, the status and the server's
** own message), PLUMB_CANCELLED, or what search and packing return. */
PLUMB_API plumb_status plumb_ask(plumb_db *db, const char *question, const plumb_ask_params *p,
                                 plumb_answer **out);
PLUMB_API void plumb_answer_free(plumb_answer *a);

/* ------------------------------------------------------------------ */
/* Integrity                                                           */
/* ------------------------------------------------------------------ */

/* Check every part of the index: SQLite's integrity check, FTS5's own
** integrity check (writable handles only), documents against their chunks,
** settings, the BM25 side file (header, index id, generation, checksum)
** and the in-memory BM25 index (postings, and the reranker's forward
** lists) against a rebuild from the chunks table.
** `report` (may be NULL) receives each problem with the part it concerns
** ("sqlite", "fts5", "documents", "chunks", "settings", "bm25 index",
** "bm25 side file"); both strings are valid during the call. *problems
** (may be NULL) gets the count. Returns PLUMB_OK when nothing is wrong,
** PLUMB_CORRUPT when something is, other codes when the check could not
** run. Reads everything: seconds for a million chunks. */
PLUMB_API plumb_status plumb_check(plumb_db *db,
                                   void (*report)(void *arg, const char *part,
                                                  const char *problem),
                                   void *arg, int64_t *problems);

/* ------------------------------------------------------------------ */
/* Index settings (src/config.c)                                       */
/* ------------------------------------------------------------------ */
/*
** The defaults a search uses when its plumb_search_params leave a field
** unset are stored in the index, as settings keys. plumb_config_set
** validates a value and stores it; plumb_config_get reads it back. Only
** the keys plumb_config_key_at lists may be read or written this way
** (the others -- language, chunking, the embedder -- are fixed when the
** index or its vectors are made). A handle reads the settings once, when
** it opens: a change is seen by handles opened after it, not by the one
** that made it nor by others already open.
*/

typedef struct plumb_config_key {
    const char *name;    /* "bm25_k1" */
    const char *allowed; /* the values accepted, for messages: "a number from 0 to 1000" */
    const char *def;     /* the built-in default as text ("" for none) */
    const char *what;    /* one line: what it does */
} plumb_config_key;

/* The i-th settable key (static data), or NULL past the last one. */
PLUMB_API const plumb_config_key *plumb_config_key_at(size_t i);

#define PLUMB_CONFIG_VALUE_MAX 1024 /* bytes, NUL included, of any value */

/* Copy the value stored for `key` (or, when none is, its built-in
** default) into value[0..cap), NUL-terminated; "fusion" reads as its
** name. *is_set (may be NULL) is 1 when the index stores a value.
** PLUMB_MISUSE for a key not in the list (the message lists them) or a
** cap below PLUMB_CONFIG_VALUE_MAX. Works on read-only handles. */
PLUMB_API plumb_status plumb_config_get(plumb_db *db, const char *key, char *value, size_t cap,
                                        int *is_set);

/* Validate `value` for `key` and store it; value NULL restores the
** built-in default. PLUMB_MISUSE, naming the key, the value and what is
** allowed, for a value out of range or a key not in the list, on a
** read-only handle, and inside a batch. */
PLUMB_API plumb_status plumb_config_set(plumb_db *db, const char *key, const char *value);

#ifdef __cplusplus
}
#endif
#endif /* PLUMB_H */
