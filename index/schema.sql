-- plumb index schema, format version 2. See FORMAT.md beside this file.
-- Executed once, in one transaction, when an index is created; the
-- tokenizer arguments of chunks_fts (@LANGUAGE@, @STOPWORDS@) are filled
-- in from the creation parameters.

PRAGMA application_id = 1347177794;  -- 0x504C4D42, 'PLMB'
PRAGMA user_version = 2;             -- PLUMB_FORMAT_VERSION

-- Index-wide settings, one row per key. Keys of format 2:
--   format_version  integer, must equal PLUMB_FORMAT_VERSION
--   generation      integer, incremented by every committed write
--   language        stemmer name given to the tokenizer ("english", "none", ...)
--   stopwords       1 or 0
--   chunk_tokens    chunk window in estimated tokens (0: one chunk per document)
--   chunk_overlap   tokens shared by consecutive chunks
--   bm25_k1, bm25_b, weight_title, weight_body   stored BM25F defaults
--   tokenizer       tokenizer name and version ("plumb-1")
--   created_at      unix seconds
--   vec_epoch       the embedder row (embedder.epoch) the vectors belong to;
--                   0 while the index has no embedder (absent = 0)
--   fusion, alpha, rrf_k, k_lex, k_dense, rerank, prf_docs, prf_weight
--                   stored search defaults (absent: the library's built-in
--                   defaults: minmax, 0.5, 60, 100, 100, 30, 3, 1.0)
--   qe_docs, qe_terms, qe_weight, qe_max_df
--                   hybrid search's RM3 expansion of the BM25 query (absent:
--                   10, 30, 0.7, 0.03; qe_docs 0: off)
--   rerank_kind     stage-2 reranker: "features" or "http" (absent: "features")
--   rerank_weights  the feature reranker's weights, "bm25=1,dense=0.6,..."
--                   (absent names: the shipped defaults, src/rerank.c);
--                   written by plumb tune
--   rerank_url, rerank_model, rerank_timeout_ms
--                   the "http" reranker's service: base URL (at most 511
--                   bytes), model (127), ms per attempt (absent: "", "",
--                   10000); never an API key
-- The stored search defaults are written by plumb_config_set (src/config.c),
-- which validates them, and by plumb tune.
CREATE TABLE settings(
  key   TEXT PRIMARY KEY,
  value ANY NOT NULL
) WITHOUT ROWID;

-- Files that plumb index has read. A JSONL file holds many documents;
-- any other file holds one.
CREATE TABLE files(
  id         INTEGER PRIMARY KEY,
  path       TEXT NOT NULL UNIQUE,   -- canonical absolute path
  size       INTEGER NOT NULL,       -- bytes when last indexed
  mtime      INTEGER NOT NULL,       -- unix seconds when last indexed
  hash       TEXT NOT NULL,          -- hash64 of the whole file, 16 hex digits
  n_docs     INTEGER NOT NULL,       -- documents taken from it
  indexed_at INTEGER NOT NULL        -- unix seconds
);

CREATE TABLE documents(
  id         INTEGER PRIMARY KEY,    -- internal row id
  doc_id     TEXT NOT NULL UNIQUE,   -- the caller's id (a path, or a JSONL _id)
  title      TEXT NOT NULL DEFAULT '',
  metadata   TEXT,                   -- a JSON object, or NULL
  source     TEXT,                   -- where it came from (path[:line]), or NULL
  file_id    INTEGER REFERENCES files(id) ON DELETE SET NULL,
  hash       TEXT NOT NULL,          -- hash64 of title, text and metadata
  n_chunks   INTEGER NOT NULL,
  text_bytes INTEGER NOT NULL,       -- length of the full text in bytes
  added_at   INTEGER NOT NULL        -- unix seconds
);
CREATE INDEX documents_by_file ON documents(file_id);

-- Chunks are byte ranges of the document's text; consecutive chunks may
-- overlap. Their text is stored whole, so a hit needs no reassembly.
CREATE TABLE chunks(
  id      INTEGER PRIMARY KEY,       -- FTS5 rowid; a hit's chunk_id
  doc     INTEGER NOT NULL REFERENCES documents(id),
  seq     INTEGER NOT NULL,          -- 0-based position in the document
  start   INTEGER NOT NULL,          -- byte offset in the document text
  end     INTEGER NOT NULL,          -- byte offset one past the chunk
  text    TEXT NOT NULL,
  UNIQUE(doc, seq)
);

-- Every chunk insert (+1) and delete (-1), in commit order: readers
-- replay it to keep their in-memory BM25 index in step with this
-- snapshot (src/bm25.c). Old entries are truncated; a reader whose
-- position was truncated rebuilds from the chunks table.
CREATE TABLE lex_log(
  seq   INTEGER PRIMARY KEY AUTOINCREMENT,
  chunk INTEGER NOT NULL,            -- chunks.id
  op    INTEGER NOT NULL             -- +1 added, -1 deleted
);

-- What FTS5 indexes per chunk: the document title and the chunk text.
CREATE VIEW chunk_content(id, title, body) AS
  SELECT c.id, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.doc;

-- The lexical index: external content (no second copy of the text), fed
-- by plumb's own tokenizer. Per-row column sizes (docsize) are kept: BM25
-- length normalisation needs them.
CREATE VIRTUAL TABLE chunks_fts USING fts5(
  title, body,
  content = 'chunk_content', content_rowid = 'id',
  tokenize = 'plumb @LANGUAGE@ @STOPWORDS@'
);

-- Dense vectors: one per chunk, written by the embedder of the current
-- epoch (settings.vec_epoch); `v` is dim float32 values in little-endian
-- byte order, unit length (cosine similarity = inner product).
CREATE TABLE vectors(
  chunk INTEGER PRIMARY KEY,         -- chunks.id
  v     BLOB NOT NULL
);

-- Every vector insert (+1) and delete (-1), in commit order, written by
-- the triggers below in the same transaction: readers replay it to keep
-- their in-memory vector store in step with their snapshot (src/vec.c),
-- as lex_log does for BM25.
CREATE TABLE vec_log(
  seq   INTEGER PRIMARY KEY AUTOINCREMENT,
  chunk INTEGER NOT NULL,
  op    INTEGER NOT NULL
);
CREATE TRIGGER vectors_logged_in AFTER INSERT ON vectors BEGIN
  INSERT INTO vec_log(chunk, op) VALUES(new.chunk, 1);
END;
CREATE TRIGGER vectors_logged_out AFTER DELETE ON vectors BEGIN
  INSERT INTO vec_log(chunk, op) VALUES(old.chunk, -1);
END;
-- A chunk takes its vector with it.
CREATE TRIGGER chunks_drop_vector AFTER DELETE ON chunks BEGIN
  DELETE FROM vectors WHERE chunk = old.id;
END;

-- The embedder of each epoch: the built-in LSA model (vocabulary, idf
-- and projection) or an HTTP provider's identity. Only the row of
-- settings.vec_epoch is in use; older rows are deleted when a new epoch
-- starts.
CREATE TABLE embedder(
  epoch          INTEGER PRIMARY KEY,
  kind           TEXT NOT NULL,      -- 'lsa' or 'http'
  model          TEXT NOT NULL,      -- lsa: "lsa-<dim>"; http: the model name
  dim            INTEGER NOT NULL,
  params         TEXT NOT NULL,      -- JSON: how it was made (weights, seed, url ...)
  trained_chunks INTEGER NOT NULL,   -- lsa: chunks it was trained on; http: 0
  created_at     INTEGER NOT NULL,
  vocab          BLOB,               -- lsa: the terms, each NUL-terminated, column order
  idf            BLOB,               -- lsa: float32 per term
  basis          BLOB                -- lsa: float32, terms x dim, row-major
);

-- ---------------------------------------------------------------------
-- Query log and feedback (src/qlog.c; plumb.h "Query log and feedback").
-- Written in transactions of their own that leave `generation` alone:
-- logging a search is not a change of the collection.
--
-- Settings keys of the log (rows below; a missing row means the default):
--   log_enabled   1: searches and answers are logged (default), 0: not
--   log_keep      entries without feedback to keep (default 100000; 0: no
--                 limit); when a handle writing its queue finds more than
--                 log_keep + log_keep/16, it deletes the lowest ids down to
--                 log_keep. Entries with feedback are kept.
--   log_next_id   the next free query_log id: handles reserve blocks of ids
--                 here, so ids stay unique across processes
--   log_unjudged  entries without feedback (what log_keep bounds), kept exact
--                 by the transactions that change them
INSERT INTO settings(key, value) VALUES ('log_enabled', 1), ('log_keep', 100000),
  ('log_next_id', 1), ('log_unjudged', 0);

-- One row per logged search or answer.
CREATE TABLE query_log(
  id            INTEGER PRIMARY KEY,  -- from a block reserved via settings.log_next_id
  at            INTEGER NOT NULL,     -- unix milliseconds when the search finished
  kind          TEXT NOT NULL,        -- 'search' or 'ask'
  query         TEXT NOT NULL,        -- the query (the question, for 'ask') as given
  params        TEXT NOT NULL,        -- JSON object: k, mode, scorer and every
                                      -- parameter that was not the default; and
                                      -- "reranker", "rerank_fallback",
                                      -- "rerank_error": stage 2 as it ran (FORMAT.md)
  n_hits        INTEGER NOT NULL,     -- hits returned
  hits          TEXT NOT NULL,        -- JSON object of parallel arrays over the
                                      -- first min(n_hits, 100) hits, best first:
                                      -- "doc", "chunk", "score", "stages" (those
                                      -- that ran), and a stage's scores ("lex",
                                      -- "dense", "fused", "rerank") and ranks
                                      -- ("lex_rank" ...) only where they differ
                                      -- from "score" and the positions (FORMAT.md)
  matched       INTEGER,              -- plumb_hits.matched
  generation    INTEGER,              -- index generation the hits were read from
  latency_ms    REAL NOT NULL,        -- wall-clock time of the search (or answer)
  prompt_hash   TEXT,                 -- 'ask' only: hash of the prompt sent
  prompt_tokens INTEGER,              -- 'ask' only: its tokens
  model         TEXT,                 -- 'ask' only: the generator model
  answer        TEXT                  -- 'ask' only: the answer text
);

-- Judgments of logged entries. A row judges either the whole answer
-- (verdict, doc_id NULL) or one document (doc_id, relevance), and may carry
-- a note. Rows are never updated; a later row on the same document wins.
CREATE TABLE feedback(
  id        INTEGER PRIMARY KEY,
  log_id    INTEGER NOT NULL,         -- query_log.id
  at        INTEGER NOT NULL,         -- unix milliseconds
  verdict   TEXT,                     -- 'good', 'bad', or NULL
  doc_id    TEXT,                     -- documents.doc_id judged, or NULL
  relevance INTEGER,                  -- grade of doc_id: 0 not relevant, >= 1 relevant
  note      TEXT
);
CREATE INDEX feedback_by_log ON feedback(log_id);
