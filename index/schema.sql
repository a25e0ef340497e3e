-- plumb index schema, format version 1. See FORMAT.md beside this file.
-- Executed once, in one transaction, when an index is created; the
-- tokenizer arguments of chunks_fts (@LANGUAGE@, @STOPWORDS@) are filled
-- in from the creation parameters.

PRAGMA application_id = 1347177794;  -- 0x504C4D42, 'PLMB'
PRAGMA user_version = 1;             -- PLUMB_FORMAT_VERSION

-- Index-wide settings, one row per key. Keys of format 1:
--   format_version  integer, must equal PLUMB_FORMAT_VERSION
--   generation      integer, incremented by every committed write
--   language        stemmer name given to the tokenizer ("english", "none", ...)
--   stopwords       1 or 0
--   chunk_tokens    chunk window in estimated tokens (0: one chunk per document)
--   chunk_overlap   tokens shared by consecutive chunks
--   bm25_k1, bm25_b, weight_title, weight_body   stored BM25F defaults
--   tokenizer       tokenizer name and version ("plumb-1")
--   created_at      unix seconds
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
