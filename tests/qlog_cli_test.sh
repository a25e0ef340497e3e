#!/usr/bin/env bash
#
# qlog_cli_test.sh -- the query log end to end: what users tell the engine
# becomes its next test set.
#
# Usage: bash tests/qlog_cli_test.sh PATH_TO_PLUMB SAMPLE_DIR
#
# Indexes SAMPLE_DIR (data/sample), runs searches (`plumb search --json`
# gives each its log id), judges them with `plumb feedback`, exports the
# judgments with `plumb export-qrels`, and evaluates the index on them with
# `plumb eval --db`: the figures it prints must be the hand-expected ones.
# A document judged relevant at rank 1 gives nDCG@10 = MRR@10 = 1; one at
# document rank 3 gives nDCG@10 = 1/log2(4) = 0.5 and MRR@10 = 1/3; the same
# query typed differently merges into one query id; a --good verdict writes
# a judgment only with --good-top. Also: errors name the unknown entry or
# document (exit 1), usage errors exit 2, the log can be switched off and
# bounded, --no-log and `plumb eval` add no entries, and the human output of
# `plumb search` is unchanged; entries record stage 2's reranker and a
# fallback to the stage-1 order. Needs python3. Prints "N passed, M failed".

set -u
plumb=${1:?usage: qlog_cli_test.sh PLUMB SAMPLE_DIR}
sample=${2:?usage: qlog_cli_test.sh PLUMB SAMPLE_DIR}
case $plumb in /*) ;; *) plumb=$PWD/$plumb ;; esac
case $sample in /*) ;; *) sample=$PWD/$sample ;; esac
command -v python3 >/dev/null || { echo "qlog_cli_test: python3 is required" >&2; exit 2; }
T=$(mktemp -d /tmp/plumb-qlog-cli.XXXXXX) || exit 2
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 2
unset PLUMB_DB NO_COLOR
export LC_ALL=C
db=$T/s.db
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
run() { "$plumb" "$@" >"$T/out" 2>"$T/err" </dev/null; rc=$?; } # sets $rc
# py EXPR: evaluate a Python expression over the JSON in $T/out (bound to d)
py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/out" "$1"; }
expect() { # NAME WANT GOT
    if [ "$2" = "$3" ]; then ok; else bad "$1: got '$3', want '$2'"; fi
}

"$plumb" index "$sample" --db "$db" -q || { echo "qlog_cli_test: indexing failed"; exit 1; }

# ---- searches: each logged, its id in --json -------------------------------
q1="write-ahead log checkpoint"
q2="bm25 length normalization"
q3="reciprocal rank fusion"
run search "$q1" --db "$db" --json -k 100 --mode lexical --rerank 0
expect "search 1 exit" 0 "$rc"
id1=$(py 'd["log_id"]')
cp "$T/out" "$T/q1.json"
run search "$q2" --db "$db" --json -k 100 --mode lexical --rerank 0
id2=$(py 'd["log_id"]')
cp "$T/out" "$T/q2.json"
run search "$q3" --db "$db" --json -k 10 --mode lexical --rerank 0
id3=$(py 'd["log_id"]')
run search "  Write-Ahead   LOG checkpoint " --db "$db" --json -k 10 --mode lexical --rerank 0
id4=$(py 'd["log_id"]')
expect "log ids 1..4 in order" "1 2 3 4" "$id1 $id2 $id3 $id4"

# the documents in ranked order (a document ranks by its best chunk), and
# for the judgments: q1's first and second, q2's third (scores strictly
# decreasing around it, so no tie can reorder them in plumb eval)
docs() {
    python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
seen, out = set(), []
for h in d["hits"]:
    if h["doc_id"] not in seen:
        seen.add(h["doc_id"])
        out.append((h["doc_id"], h["score"]))
ok = len(out) >= 4 and out[0][1] > out[1][1] > out[2][1] > out[3][1]
print(" ".join(x[0] for x in out[:3]) if ok else "TIES")
PY
}
read -r d1a d1b _ <<<"$(docs "$T/q1.json")"
read -r _ _ d2c <<<"$(docs "$T/q2.json")"
[ "$d1a" != TIES ] && [ -n "$d2c" ] && ok || bad "rankings without ties: '$d1a' '$d2c'"

# ---- feedback ------------------------------------------------------------
run feedback "$id1" --db "$db" --relevant "$d1a" --good --note "the WAL page"
expect "feedback 1 exit" 0 "$rc"
grep -q "entry $id1: good, relevant" "$T/out" && ok || bad "feedback 1 confirmation: $(cat "$T/out")"
run feedback "$id2" --db "$db" --relevant "$d2c"
expect "feedback 2 exit" 0 "$rc"
run feedback "$id3" --db "$db" --good
expect "feedback 3 (verdict only) exit" 0 "$rc"
# the same query as entry 1, another wording: the second document judged 0
run feedback "$id4" --db "$db" --irrelevant "$d1b"
expect "feedback 4 exit" 0 "$rc"
# a relative path is taken in its canonical form (file ids are absolute)
rel=$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1]))' "$d1a")
run feedback "$id4" --db "$db" --relevant "$rel" --grade 2
expect "feedback by relative path" 0 "$rc"
grep -qF "relevant $d1a (grade 2)" "$T/out" && ok || bad "relative path resolved: $(cat "$T/out")"

# errors: named, nothing recorded
run feedback 999 --db "$db" --good
expect "unknown entry exit" 1 "$rc"
grep -q "no query log entry with id 999" "$T/err" && ok || bad "unknown entry message: $(cat "$T/err")"
run feedback "$id2" --db "$db" --relevant "$d2c" --relevant /no/such/doc.md
expect "unknown document exit" 1 "$rc"
grep -qF "no document '/no/such/doc.md'" "$T/err" && ok || bad "unknown document message: $(cat "$T/err")"
run feedback "$id2" --db "$db"
expect "nothing to record: usage" 2 "$rc"
run feedback --db "$db" --good
expect "missing ID: usage" 2 "$rc"
run feedback "$id1" --good --bad --db "$db"
expect "--good --bad: usage" 2 "$rc"
run feedback abc --good --db "$db"
expect "non-numeric ID: usage" 2 "$rc"
run feedback "$id1" --relevant x --grade 0 --db "$db"
expect "--grade 0: usage" 2 "$rc"

# ---- plumb log -------------------------------------------------------------
run log --db "$db" --json
expect "log --json exit" 0 "$rc"
expect "log lists 4 entries, newest first" "[4, 3, 2, 1]" "$(py '[e["id"] for e in d["entries"]]')"
expect "entry 2's feedback (the failed call recorded nothing)" "1" \
    "$(py '[len(e["feedback"]) for e in d["entries"] if e["id"] == '"$id2"'][0]')"
e1='[e for e in d["entries"] if e["id"] == 1][0]["feedback"]'
expect "entry 1: a verdict with its note, and a document" "good the WAL page $d1a 1" \
    "$(py '" ".join(["%s %s" % (f["verdict"], f["note"]) for f in '"$e1"' if f["verdict"]] + ["%s %s" % (f["doc_id"], f["relevance"]) for f in '"$e1"' if f["doc_id"]])')"
expect "repeated query, one query id" "True" \
    "$(py '[e["query_id"] for e in d["entries"] if e["id"] == 1] == [e["query_id"] for e in d["entries"] if e["id"] == 4]')"
expect "hits JSON: lexical stage" "['lex']" "$(py '[e["hits"]["stages"] for e in d["entries"] if e["id"] == 1][0]')"
run log --db "$db" -n 1
expect "log (human) exit" 0 "$rc"
grep -qF "\"  Write-Ahead   LOG checkpoint \"" "$T/out" && ok || bad "log human output: $(head -3 "$T/out")"
run log --db "$db" --id 77
expect "log --id unknown" 1 "$rc"
run log --db "$db" --status --json
expect "status" "True 4 4 6" "$(py 'd["enabled"], d["entries"], d["with_feedback"], d["feedback"]' | tr -d '(),')"

# ---- export and evaluate -------------------------------------------------
run export-qrels "$T/fb.tsv" --queries "$T/fb-queries.jsonl" --db "$db" --json
expect "export exit" 0 "$rc"
expect "export counts" "2 3 2 1 1" \
    "$(py 'd["queries"], d["judgments"], d["relevant"], d["overridden"], d["verdict_only"]' | tr -d '(),')"
qid1=$(python3 -c 'import json; print([json.loads(l)["_id"] for l in open("'"$T"'/fb-queries.jsonl") if json.loads(l)["text"].strip().lower().startswith("write")][0])')
want=$(printf 'query-id\tcorpus-id\tscore\n')
lines=$(python3 - "$T/fb.tsv" "$qid1" "$d1a" "$d1b" "$d2c" <<'PY'
import sys
path, q1, a, b, c = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path)][1:]
want = sorted([[q1, a, "2"], [q1, b, "0"]])
got1 = sorted(r for r in rows if r[0] == q1)
got2 = [r[1:] for r in rows if r[0] != q1]
print("ok" if got1 == want and got2 == [[c, "1"]] else "bad %r" % rows)
PY
)
expect "qrels lines: latest grade wins, explicit 0 kept" ok "$lines"
expect "qrels header" "$want" "$(head -n 1 "$T/fb.tsv")"

before=$("$plumb" log --status --json --db "$db" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
run eval --db "$db" --queries "$T/fb-queries.jsonl" --qrels "$T/fb.tsv" --json --per-query --threads 1 -q
expect "eval exit" 0 "$rc"
expect "eval: 2 queries evaluated" 2 "$(py 'd["counts"]["evaluated"]')"
expect "eval: nDCG@10 per query (rank 1 -> 1, rank 3 -> 0.5)" "1.0000 0.5000" \
    "$(py '" ".join("%.4f" % q["metrics"]["ndcg@10"] for q in sorted(d["stages"]["bm25"]["per_query"], key=lambda q: -q["metrics"]["ndcg@10"]))')"
expect "eval: mean nDCG@10" "0.7500" "$(py '"%.4f" % d["stages"]["bm25"]["metrics"]["ndcg@10"]')"
expect "eval: mean MRR@10 (1 + 1/3) / 2" "0.6667" "$(py '"%.4f" % d["stages"]["bm25"]["metrics"]["mrr@10"]')"
expect "eval: mean P@10 (1/10 each; grade 0 is not relevant)" "0.1000" "$(py '"%.4f" % d["stages"]["bm25"]["metrics"]["p@10"]')"
after=$("$plumb" log --status --json --db "$db" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
expect "eval adds no log entries" "$before" "$after"
run eval --db "$db" --queries "$T/fb-queries.jsonl" --qrels "$T/fb.tsv" --threads 1 -q
grep -Eq '^bm25 +0\.7500 ' "$T/out" && ok || bad "eval table: $(cat "$T/out")"

# --good-top 1: entry 3's first document becomes relevant: a third query at 1
run export-qrels "$T/fb2.tsv" --queries "$T/fb2-queries.jsonl" --good-top 1 --db "$db" --json
expect "export --good-top: implied" "1 3" "$(py 'd["implied"], d["queries"]' | tr -d '(),')"
run eval --db "$db" --queries "$T/fb2-queries.jsonl" --qrels "$T/fb2.tsv" --json --threads 1 -q
expect "eval --good-top: 3 queries, mean nDCG@10 (1 + 0.5 + 1) / 3" "3 0.8333" \
    "$(py 'd["counts"]["evaluated"], "%.4f" % d["stages"]["bm25"]["metrics"]["ndcg@10"]' | tr -d "(),'")"

# ---- switches ---------------------------------------------------------------
run search "$q3" --db "$db" --json --no-log
expect "--no-log: no id" None "$(py 'd["log_id"]')"
run search "$q3" --db "$db"
expect "human search exit" 0 "$rc"
grep -qiE "logged as|log.id" "$T/out" && bad "human search stdout mentions the log id" || ok
[ -s "$T/err" ] && bad "human search writes to stderr when not a terminal: $(cat "$T/err")" || ok
run log --off --db "$db"
expect "log --off" 0 "$rc"
run search "$q3" --db "$db" --json
expect "log off: no id" None "$(py 'd["log_id"]')"
run log --status --db "$db"
grep -q "query log      off" "$T/out" && ok || bad "status off: $(cat "$T/out")"
run log --on --keep 2 --db "$db"
expect "log --on --keep 2" 0 "$rc"
grep -q "keeping 2 entries without feedback" "$T/err" && ok || bad "keep confirmation: $(cat "$T/err")"
for i in 1 2 3; do "$plumb" search "stemming $i" --db "$db" >/dev/null 2>&1; done
run log --json -n 0 --db "$db"
# the four judged entries are kept; of the rest, the newest two remain
expect "retention keeps judged entries and the newest 2" "2 4" \
    "$(py 'len([e for e in d["entries"] if not e["feedback"]]), len([e for e in d["entries"] if e["feedback"]])' | tr -d '(),')"
expect "retention: the oldest unjudged entries went first" "['stemming 3', 'stemming 2']" \
    "$(py '[e["query"] for e in d["entries"] if not e["feedback"]]')"
run log --keep -1 --db "$db"
expect "--keep -1: usage" 2 "$rc"
run log --on --off --db "$db"
expect "--on --off: usage" 2 "$rc"
run export-qrels --db "$db"
expect "export without OUT: usage" 2 "$rc"

# ---- stage 2 as it ran: the reranker, and a fallback when it failed ------------
run log --keep 0 --db "$db"
expect "log --keep 0" 0 "$rc"
run search "$q3" --db "$db" --json --rerank 5 --reranker features
idf=$(py 'd["log_id"]')
run search "$q3" --db "$db" --json --rerank 0
id0=$(py 'd["log_id"]')
# nothing listens on port 1: refused at once (3 attempts, about a second)
run search "$q3" --db "$db" --json --rerank 5 --reranker http \
    --rerank-url http://127.0.0.1:1/v1 --rerank-timeout 0.5
expect "search with a dead reranker exit" 0 "$rc"
expect "search with a dead reranker: fallback" True "$(py 'd["rerank"]["fallback"]')"
idh=$(py 'd["log_id"]')
run log --json --id "$idh" --db "$db"
e='d["entries"][0]'
expect "log: the http reranker" "http True True" \
    "$(py "$e[\"reranker\"], $e[\"rerank_fallback\"], '127.0.0.1:1/v1/rerank' in $e[\"rerank_error\"]" | tr -d "(),'")"
expect "log: params carry it" "http True True" \
    "$(py "$e[\"params\"][\"reranker\"], $e[\"params\"][\"rerank_fallback\"], $e[\"params\"][\"rerank_error\"] == $e[\"rerank_error\"]" | tr -d "(),'")"
run log --id "$idh" --db "$db"
grep -q "^    rerank: http failed, hits in stage-1 order: POST http://127.0.0.1:1/v1/rerank" "$T/out" \
    && ok || bad "log: no fallback line: $(cat "$T/out")"
run log --json --id "$idf" --db "$db"
expect "log: the features reranker" "features False None" \
    "$(py "$e[\"reranker\"], $e[\"rerank_fallback\"], $e[\"rerank_error\"]" | tr -d "(),'")"
expect "log: features params" "features False" \
    "$(py "$e[\"params\"][\"reranker\"], 'rerank_fallback' in $e[\"params\"]" | tr -d "(),'")"
run log --id "$idf" --db "$db"
grep -q "rerank:" "$T/out" && bad "log: a fallback line without a fallback: $(cat "$T/out")" || ok
run log --json --id "$id0" --db "$db"
expect "log: stage 2 off" "None False False" \
    "$(py "$e[\"reranker\"], $e[\"rerank_fallback\"], 'reranker' in $e[\"params\"]" | tr -d "(),'")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
