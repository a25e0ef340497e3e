#!/usr/bin/env bash
#
# cli_test.sh -- end-to-end test of the plumb command-line tool.
#
# Usage: bash tests/cli_test.sh PATH_TO_PLUMB_BINARY
#
# Builds a small corpus (.txt, .md, .html, BEIR .jsonl with a malformed line,
# a binary file, a file that is not valid UTF-8) in a temporary directory and
# drives every command through it: indexing and re-indexing (unchanged,
# replaced, pruned), search output (human and JSON), delete, stats, and the
# exit status of every kind of failure (1 operational, 2 usage, 3 no usable
# index). Expectations follow plumb.h: a file's document id is its canonical
# absolute path, a JSONL record's id is its "_id". Needs python3 (JSON).
# Prints "N passed, M failed"; exits non-zero when anything failed.

set -u

if [ $# -ne 1 ]; then
    echo "usage: bash $0 PATH_TO_PLUMB_BINARY" >&2
    exit 2
fi
case $1 in
/*) PLUMB=$1 ;;
*) PLUMB=$PWD/$1 ;;
esac
if [ ! -x "$PLUMB" ]; then
    echo "cli_test: not an executable: $PLUMB" >&2
    exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "cli_test: python3 is required for the JSON checks" >&2
    exit 2
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/plumb-cli-test.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
T=$(cd "$T" && pwd -P) # canonical, like the document ids the library makes
cd "$T" || exit 2
unset PLUMB_DB NO_COLOR
export LC_ALL=C

DB=$T/test.db
OUT=$T/out
ERR=$T/err
pass=0
fail=0
rc=0

# ---------------------------------------------------------------------------
# Helpers: run the tool, then check its status, output and JSON.
# ---------------------------------------------------------------------------

run() {
    "$PLUMB" "$@" >"$OUT" 2>"$ERR" </dev/null
    rc=$?
    last="plumb $*"
}

show() {
    echo "    command: $last"
    echo "    exit status: $rc"
    sed -n '1,12s/^/    stdout: /p' "$OUT"
    sed -n '1,12s/^/    stderr: /p' "$ERR"
}

ok() { pass=$((pass + 1)); }
no() {
    fail=$((fail + 1))
    echo "FAIL: $1"
    show
}

expect_rc() { # WANT NAME
    if [ "$rc" -eq "$1" ]; then ok; else no "$2: exit status $rc, expected $1"; fi
}
expect_out() { # ERE NAME
    if grep -Eq -- "$1" "$OUT"; then ok; else no "$2: stdout does not match /$1/"; fi
}
expect_out_fixed() { # STRING NAME
    if grep -Fq -- "$1" "$OUT"; then ok; else no "$2: stdout does not contain '$1'"; fi
}
expect_err() { # ERE NAME
    if grep -Eq -- "$1" "$ERR"; then ok; else no "$2: stderr does not match /$1/"; fi
}
expect_err_fixed() { # STRING NAME
    if grep -Fq -- "$1" "$ERR"; then ok; else no "$2: stderr does not contain '$1'"; fi
}
expect_not_err() { # ERE NAME
    if grep -Eq -- "$1" "$ERR"; then no "$2: stderr unexpectedly matches /$1/"; else ok; fi
}
expect_true() { # NAME COMMAND...
    local name=$1
    shift
    if "$@"; then ok; else no "$name"; fi
}

# Evaluate a Python expression over the JSON on stdout, bound to `d`; `ids`
# is the list of hit doc ids, `E` the environment (for paths and odd ids).
expect_json() { # EXPR NAME
    if python3 - "$OUT" "$1" 2>"$T/pyerr" <<'PY'; then ok; else no "$2: JSON check failed: $1 $(tail -n 1 "$T/pyerr")"; fi
import json, os, sys
with open(sys.argv[1], encoding="utf-8") as f:
    d = json.load(f)
ids = [h.get("doc_id") for h in d["hits"]] if isinstance(d, dict) and "hits" in d else []
E = os.environ
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

mkdir -p docs/notes docs/web docs/data empty

cat >docs/notes/axolotl.md <<'EOF'
# Axolotl limb regeneration

The **axolotl** is a salamander that can regrow whole limbs. Axolotl
regeneration starts with a blastema of dedifferentiated cells.

Keep the water of the tank cool.
EOF

cat >docs/notes/pond.txt <<'EOF'
Pond life

Frogs, newts and dragonflies share the pond. Once we even saw an axolotl in
the water near the reeds, far from the lakes of Mexico where it lives. Herons
hunt there at dawn and the lilies bloom all summer long.
EOF

cat >docs/web/page.html <<'EOF'
<!DOCTYPE html>
<html><head><title>Volcano eruptions</title>
<style>.axolotl { color: red }</style>
<script>var axolotl = "regeneration";</script>
</head><body><h1>Volcanoes</h1>
<p>Magma rises through the crust &amp; erupts as lava. Rain water seeps into the rock.</p>
</body></html>
EOF

cat >docs/data/corpus.jsonl <<'EOF'
{"_id": "doc1", "title": "Quantum chromodynamics", "text": "Quarks and gluons interact through the strong force."}
{"_id": "doc2", "title": "Baking bread", "text": "Sourdough needs flour, water and a lively starter culture."}
{"_id": "doc3", "title": "Tidal energy", "text": "Tidal turbines turn the motion of sea water into electricity.", "metadata": {"lang": "en", "year": 2020}}
{"_id": "weird \"id\"\\x", "title": "Escapes \"quoted\" caf\u00e9 \u2603", "text": "A marmoset tests escaping."}
this line is not JSON {
EOF

printf 'GIF89a\000\001\002\003\000\000binary data\000\377' >docs/binary.txt
printf 'Caf\351 cr\350me with a glass of water\n' >docs/latin1.txt # Latin-1, not UTF-8

export AX=$T/docs/notes/axolotl.md
export POND=$T/docs/notes/pond.txt
export PAGE=$T/docs/web/page.html
export WEIRD='weird "id"\x'

# ---------------------------------------------------------------------------
# Help and version
# ---------------------------------------------------------------------------

run --help
expect_rc 0 "--help"
expect_out "Usage: plumb COMMAND" "--help shows the usage"
expect_out "Exit status" "--help documents exit codes"
run -h
expect_rc 0 "-h"
run help
expect_rc 0 "help"
run --version
expect_rc 0 "--version"
expect_out "[0-9]+\.[0-9]+\.[0-9]+" "--version prints a version"
for c in index search stats delete; do
    run "$c" --help
    expect_rc 0 "$c --help"
    expect_out "Usage: plumb $c" "$c --help shows its usage"
    expect_out "Examples" "$c --help shows examples"
    run help "$c"
    expect_rc 0 "help $c"
    expect_out "Usage: plumb $c" "help $c shows its usage"
done
run
expect_rc 2 "no command"

# ---------------------------------------------------------------------------
# Usage errors (exit 2): nothing may be created
# ---------------------------------------------------------------------------

run frobnicate
expect_rc 2 "unknown command"
expect_err "frobnicate" "unknown command is named"
run help frobnicate
expect_rc 2 "help for an unknown command"
run search foo --bogus --db "$DB"
expect_rc 2 "unknown option"
expect_err "'--bogus'" "unknown option is named"
expect_err "plumb search --help" "unknown option gives a usage hint"
run search foo -k x --db "$DB"
expect_rc 2 "-k x"
expect_err_fixed "-k: expected a positive integer, got 'x'" "-k x message"
run search foo -k 0 --db "$DB"
expect_rc 2 "-k 0"
run search foo -k 99999999 --db "$DB"
expect_rc 2 "-k too large"
run search foo --db "$DB" -k
expect_rc 2 "-k without a value"
expect_err "-k" "missing value names the option"
run search foo --k1 abc --db "$DB"
expect_rc 2 "--k1 abc"
expect_err "--k1" "bad --k1 is named"
run search foo --b 2 --db "$DB"
expect_rc 2 "--b out of range"
run search foo --json=yes --db "$DB"
expect_rc 2 "--json=yes"
run search --db "$DB"
expect_rc 2 "search without a query"
run index
expect_rc 2 "index without a path"
run index docs --db "$DB" --chunk-tokens -5
expect_rc 2 "--chunk-tokens -5"
expect_err "--chunk-tokens" "bad --chunk-tokens is named"
run index docs --db "$DB" --commit-every 0
expect_rc 2 "--commit-every 0"
run index docs --db "$DB" --chunk-tokens 10 --chunk-overlap 10
expect_rc 2 "overlap not smaller than the chunk"
run delete --db "$DB"
expect_rc 2 "delete without an id"
run stats extra --db "$DB"
expect_rc 2 "stats with an argument"
run --db "$DB" stats
expect_rc 2 "option before the command"
expect_true "usage errors create no index" test ! -e "$DB"

# ---------------------------------------------------------------------------
# No usable index (exit 3)
# ---------------------------------------------------------------------------

run search foo --db "$T/nope.db"
expect_rc 3 "search, missing --db file"
expect_err "no index at '.*nope\.db'" "missing index message"
expect_true "search does not create the index" test ! -e "$T/nope.db"
run stats --db "$T/nope.db"
expect_rc 3 "stats, missing --db file"
run delete doc1 --db "$T/nope.db"
expect_rc 3 "delete, missing --db file"
expect_true "delete does not create the index" test ! -e "$T/nope.db"
(cd empty && "$PLUMB" stats >"$OUT" 2>"$ERR")
rc=$?
last="(in an empty directory) plumb stats"
expect_rc 3 "default ./plumb.db missing"
expect_err "'plumb\.db'" "default index name in the message"
PLUMB_DB=$T/from-env.db "$PLUMB" stats >"$OUT" 2>"$ERR"
rc=$?
last="PLUMB_DB=$T/from-env.db plumb stats"
expect_rc 3 "PLUMB_DB missing"
expect_err "from-env\.db" "PLUMB_DB is used"

printf 'hello, I am a text file and not an index\n' >notadb.txt
cp notadb.txt notadb.orig
run stats --db notadb.txt
expect_rc 3 "stats on a non-plumb file"
expect_err "^plumb: " "non-plumb file error message"
run search foo --db notadb.txt
expect_rc 3 "search on a non-plumb file"
run index docs --db notadb.txt
expect_rc 3 "index into a non-plumb file"
expect_true "a non-plumb file is left untouched" cmp -s notadb.txt notadb.orig
if python3 -c 'import sqlite3' 2>/dev/null; then
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' other.sqlite
    run stats --db other.sqlite
    expect_rc 3 "stats on a SQLite file that is not a plumb index"
fi

# ---------------------------------------------------------------------------
# First index
# ---------------------------------------------------------------------------

run index docs --db "$DB" --json
expect_rc 0 "first index (some files skipped is still success)"
expect_json 'd["ok"] is True' "index JSON ok"
expect_json 'd["files_seen"] == 6' "files_seen"
expect_json 'd["files_indexed"] + d["files_skipped"] == 6' "indexed + skipped"
expect_json 'd["files_indexed"] >= 4' "files_indexed"
expect_json 'd["files_skipped"] >= 1' "binary file skipped"
expect_json 'd["docs_added"] >= 7' "docs_added (3 files + 4 records)"
expect_json 'd["docs_replaced"] == 0 and d["files_unchanged"] == 0' "nothing replaced"
expect_json 'd["bad_records"] >= 1' "malformed JSONL line counted"
expect_json 'd["chunks_added"] >= d["docs_added"]' "chunks_added"
expect_json 'd["elapsed_s"] >= 0 and d["docs_per_s"] >= 0' "timings"
expect_true "index --json prints one line" test "$(wc -l <"$OUT")" -eq 1
expect_err "plumb: (warning|error): " "problems are reported on stderr"
expect_true "no progress bar when stderr is not a terminal" \
    sh -c "! grep -q \"\$(printf '\r')\" '$ERR'"

# ---------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------

run search axolotl regeneration --db "$DB" --json
expect_rc 0 "search --json"
expect_json 'd["query"] == "axolotl regeneration"' "query words joined"
expect_json 'ids == [E["AX"], E["POND"]]' "ranking of a distinctive query (scripts/styles not indexed)"
expect_json '[h["rank"] for h in d["hits"]] == [1, 2]' "ranks"
expect_json 'd["hits"][0]["score"] > d["hits"][1]["score"]' "scores descend"
expect_json 'd["hits"][0]["scores"]["lexical"] > d["hits"][1]["scores"]["lexical"] > 0' "lexical scores descend"
expect_json 'd["hits"][0]["scores"]["rerank"] is not None' "stage 2 ran (on by default)"
expect_json 'd["matched"] >= 2 and d["generation"] >= 1' "matched, generation"
expect_json '"[axolotl]" in d["hits"][0]["snippet"].lower()' "snippet highlight"
expect_json '"text" not in d["hits"][0] and d["hits"][0]["metadata"] is None' "no text without --text"
expect_json 'all(k in d["hits"][0] for k in ("chunk_id", "chunk_seq", "title", "source"))' "hit fields"

run search axolotl regeneration --db "$DB"
expect_rc 0 "search (human)"
expect_true "first line: rank, score with 4 decimals" \
    sh -c "head -n 1 '$OUT' | grep -Eq '^ *1\. [0-9]+\.[0-9]{4} '"
expect_true "first line: the best document's id" sh -c "head -n 1 '$OUT' | grep -Fq -- '$AX'"
expect_true "highlights are [ ] when not a terminal" grep -qi '\[axolotl\]' "$OUT"
expect_true "no escape sequences when not a terminal" sh -c "! grep -q \"\$(printf '\033')\" '$OUT'"

run search water -k 3 --db="$DB" --json
expect_rc 0 "options after the query, --db=FILE"
expect_json 'len(d["hits"]) == 3' "-k 3 gives 3 hits"
expect_json 'd["matched"] >= 5' "matched counts every matching chunk"
expect_json '[h["rank"] for h in d["hits"]] == [1, 2, 3]' "ranks 1..3"
expect_json 'all(a["score"] >= b["score"] for a, b in zip(d["hits"], d["hits"][1:]))' "scores non-increasing"
run search -k2 water --db "$DB" --json
expect_json 'len(d["hits"]) == 2' "-k2"

run search magma --db "$DB" --json
expect_json 'ids[:1] == [E["PAGE"]] and d["hits"][0]["title"] == "Volcano eruptions"' "HTML title"

run search quarks gluons --db "$DB" --json
expect_json 'ids[:1] == ["doc1"] and d["hits"][0]["title"] == "Quantum chromodynamics"' "JSONL _id and title"

run search tidal turbines --db "$DB" --json --text
expect_rc 0 "search --text"
expect_json 'ids[:1] == ["doc3"]' "JSONL record found"
expect_json 'd["hits"][0]["metadata"] == {"lang": "en", "year": 2020}' "metadata inserted as JSON"
expect_json '"tidal" in d["hits"][0]["text"].lower()' "--text includes the chunk text"
run search tidal turbines --db "$DB" --text
expect_out "electricity" "--text prints the chunk text"

run search tidal --db "$DB" --json --no-snippet
expect_json 'd["hits"][0]["snippet"] is None' "--no-snippet"

run search quarks --db "$DB" --json --fts5
expect_rc 0 "search --fts5"
expect_json 'ids[:1] == ["doc1"]' "--fts5 finds the document"

run search water --db "$DB" --json --k1 1.2 --b 0.75 --title-weight 2 --body-weight 1
expect_rc 0 "search with BM25 parameters"
expect_json 'len(d["hits"]) >= 5' "BM25 parameters: hits"

run search marmoset --db "$DB" --json
expect_json 'ids[:1] == [E["WEIRD"]]' "JSON escaping of an id with quotes and a backslash"
expect_json '"\"quoted\"" in d["hits"][0]["title"] and "caf\u00e9" in d["hits"][0]["title"]' "JSON escaping of a title"
run search marmoset --db "$DB"
expect_rc 0 "human output of an odd id"
expect_out_fixed "$WEIRD" "odd id printed"

run search "" --db "$DB" --json
expect_rc 0 "empty query"
expect_json 'd["hits"] == []' "empty query: no hits"
run search "" --db "$DB"
expect_rc 0 "empty query (human)"
run search the of and --db "$DB" --json
expect_rc 0 "stop words only"
expect_json 'd["hits"] == []' "stop words only: no hits"

# ---------------------------------------------------------------------------
# Re-index: unchanged, replaced, pruned
# ---------------------------------------------------------------------------

run index docs --db "$DB" --json
expect_rc 0 "re-index"
expect_json 'd["files_indexed"] == 0 and d["docs_added"] == 0 and d["docs_replaced"] == 0' "re-index: nothing new"
expect_json 'd["files_unchanged"] >= 4' "re-index: files unchanged"

run index docs --db "$DB"
expect_rc 0 "re-index (summary)"
expect_err "docs: 0 added, 0 replaced" "summary line on stderr"
expect_true "summary mode writes nothing on stdout" test ! -s "$OUT"

run index docs --db "$DB" -q
expect_rc 0 "index -q"
expect_not_err "docs: [0-9]+ added" "-q hides the summary"

echo "Later a narwhal tusk washed up on the shore." >>docs/notes/pond.txt
run index docs --db "$DB" --json
expect_rc 0 "index after a change"
expect_json 'd["files_indexed"] == 1 and d["docs_replaced"] == 1 and d["docs_added"] == 0' "changed file replaced"
run search narwhal --db "$DB" --json
expect_json 'ids == [E["POND"]]' "changed text is searchable"

rm docs/notes/axolotl.md
run index docs --db "$DB" --json
expect_json 'd["files_pruned"] == 0 and d["docs_deleted"] == 0' "no pruning without --prune"
run search axolotl regeneration --db "$DB" --json
expect_json 'E["AX"] in ids' "vanished file kept without --prune"
run index docs --db "$DB" --prune --json
expect_rc 0 "index --prune"
expect_json 'd["files_pruned"] == 1 and d["docs_deleted"] == 1' "vanished file pruned"
run search axolotl regeneration --db "$DB" --json
expect_json 'E["AX"] not in ids and ids[:1] == [E["POND"]]' "pruned document no longer found"

grep -v '"doc2"' docs/data/corpus.jsonl >corpus.tmp && mv corpus.tmp docs/data/corpus.jsonl
run index docs --db "$DB" --prune --json
expect_json 'd["files_indexed"] == 1 and d["docs_deleted"] == 1' "record removed from a JSONL file is pruned"
run search sourdough --db "$DB" --json
expect_json 'd["hits"] == []' "pruned record no longer found"

run index "$T/does-not-exist" --db "$DB"
expect_rc 1 "index of a missing path"
expect_err "does-not-exist" "missing path is named"

# ---------------------------------------------------------------------------
# Delete
# ---------------------------------------------------------------------------

run delete doc3 --db "$DB"
expect_rc 0 "delete"
expect_true "delete prints 'deleted ID'" test "$(cat "$OUT")" = "deleted doc3"
run search tidal --db "$DB" --json
expect_json 'd["hits"] == []' "deleted document no longer found"

run delete doc1 nosuchid --db "$DB"
expect_rc 1 "delete of a missing id"
expect_err_fixed "plumb: no document with id 'nosuchid'" "missing id reported"
expect_out "^deleted doc1$" "the other id is still deleted"
run search quarks --db "$DB" --json
expect_json 'd["hits"] == []' "doc1 deleted"

run delete --db "$DB" -- -nosuch
expect_rc 1 "delete after --"
expect_err_fixed "'-nosuch'" "id after -- is an id"

run delete docs/notes/pond.txt --db "$DB"
expect_rc 0 "delete by relative file path"
expect_out_fixed "deleted $POND" "relative path resolved to the document id"

# ---------------------------------------------------------------------------
# Stats
# ---------------------------------------------------------------------------

run stats --db "$DB"
expect_rc 0 "stats"
expect_out "documents" "stats lists documents"
expect_out "[KM]iB|[0-9] B" "stats shows the size for humans"
run stats --db "$DB" --json
expect_rc 0 "stats --json"
expect_json 'd["format_version"] == 2 and d["generation"] > 0' "stats: format, generation"
expect_json 'd["documents"] >= 2 and d["chunks"] >= d["documents"] and d["db_bytes"] > 0' "stats: counts"
expect_json 'd["language"] == "english" and d["stopwords"] is True' "stats: default settings"
PLUMB_DB=$DB "$PLUMB" stats --json >"$OUT" 2>"$ERR"
rc=$?
last="PLUMB_DB=$DB plumb stats --json"
expect_rc 0 "PLUMB_DB selects the index"
expect_json 'd["documents"] >= 2' "PLUMB_DB stats"

# Settings given at creation are stored; on an existing index they are kept.
C=$T/custom.db
run index docs/web --db "$C" --language none --no-stopwords --chunk-tokens 0 --k1 1.1 --b 0.5
expect_rc 0 "index with creation settings"
run stats --db "$C" --json
expect_json 'd["language"] == "none" and d["stopwords"] is False and d["chunk_tokens"] == 0' "creation settings stored"
expect_json 'abs(d["bm25_k1"] - 1.1) < 1e-9 and abs(d["bm25_b"] - 0.5) < 1e-9' "creation BM25 settings stored"
run search the --db "$C" --json
expect_json 'ids == [E["PAGE"]]' "--no-stopwords keeps stop words searchable"
run index docs/web --db "$C" --k1 2
expect_rc 0 "creation setting on an existing index"
expect_err "warning" "ignored creation setting is reported"
run stats --db "$C" --json
expect_json 'abs(d["bm25_k1"] - 1.1) < 1e-9' "existing index keeps its settings"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
