#!/usr/bin/env bash
# rerank_http_test.sh PLUMB -- the HTTP reranker and `plumb config` end to
# end (integration), against tests/http_server.py on 127.0.0.1: store the
# reranker's defaults with plumb config (and have bad values refused with a
# message naming key and value), see them in plumb stats, search with them
# and with the per-search options, and keep the stage-1 order -- flagged in
# --json and warned about on stderr -- when the service fails; and plumb eval
# counting the searches that fell back.
set -u
plumb=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 0; }
tmp=$(mktemp -d)
fails=0
srv_pids=()
cleanup() { for p in "${srv_pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
unset PLUMB_RERANK_URL PLUMB_RERANK_MODEL PLUMB_RERANK_API_KEY PLUMB_DB

coproc SRV { exec python3 "$here/http_server.py" --dim 32 --timeout 300; }
srv_pids+=("$SRV_PID")
read -r port <&"${SRV[0]}"
url="http://127.0.0.1:$port/v1"
db=$tmp/r.db
"$plumb" index --db "$db" -q --no-embed "$here/../data/sample" || fail "index"
q="reciprocal rank fusion"

# 1. plumb config: list, get, set, refuse, unset
out=$("$plumb" config --db "$db") || fail "config list"
for k in bm25_k1 bm25_b fusion rerank rerank_kind rerank_url rerank_model rerank_timeout_ms; do
  echo "$out" | grep -q "^$k " || fail "config list lacks $k: $out"
done
[ "$("$plumb" config --db "$db" rerank_kind)" = features ] || fail "default rerank_kind"
msg=$("$plumb" config --db "$db" rerank_kind magic 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bad rerank_kind: exit $rc (want 2)"
case "$msg" in *"rerank_kind = 'magic'"*"features, http or llm"*) ;; *) fail "bad kind message: $msg";; esac
msg=$("$plumb" config --db "$db" bm25_b 1.5 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bm25_b 1.5: exit $rc (want 2)"
case "$msg" in *"bm25_b = '1.5'"*"0 to 1"*) ;; *) fail "bm25_b message: $msg";; esac
msg=$("$plumb" config --db "$db" no_such_key 2>&1); rc=$?
[ $rc -eq 2 ] || fail "unknown key: exit $rc (want 2)"
case "$msg" in *"no_such_key"*) ;; *) fail "unknown key message: $msg";; esac
"$plumb" config --db "$db" fusion rrf 2>/dev/null || fail "set fusion"
[ "$("$plumb" config --db "$db" fusion)" = rrf ] || fail "fusion read back"
"$plumb" config --db "$db" --unset fusion 2>/dev/null || fail "unset fusion"
[ "$("$plumb" config --db "$db" fusion)" = minmax ] || fail "fusion after --unset"

# 2. baseline: stage 1 only
base=$("$plumb" search --db "$db" --no-log --json --rerank 0 "$q") || fail "stage-1 search"
ids() { python3 -c 'import json,sys; print(" ".join(h["doc_id"]+"#"+str(h["chunk_id"]) for h in json.load(sys.stdin)["hits"]))'; }
base_ids=$(echo "$base" | ids)

# 3. per-search options: reranked by the service
out=$("$plumb" search --db "$db" --no-log --json --rerank 5 --reranker http --rerank-url "$url" \
  --rerank-model plain:cli "$q" 2>"$tmp/err") || fail "http rerank search"
echo "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin); r=d["rerank"]
assert r == {"kind":"http","n":5,"fallback":False,"error":None}, r
h=d["hits"]
assert all(x["scores"]["rerank"] is not None for x in h[:5]), h[:5]
assert all(x["scores"]["rerank"] is None for x in h[5:])
s=[x["scores"]["rerank"] for x in h[:5]]; assert s == sorted(s, reverse=True), s' \
  || fail "http rerank json: $out"
[ -s "$tmp/err" ] && fail "no warning expected: $(cat "$tmp/err")"
tail_ok=$(python3 - "$base_ids" "$(echo "$out" | ids)" <<'PY'
import sys
b, h = sys.argv[1].split(), sys.argv[2].split()
print(int(sorted(h[:5]) == sorted(b[:5]) and h[5:] == b[5:]))
PY
)
[ "$tail_ok" = 1 ] || fail "top 5 should be stage 1's top 5 reordered, the rest unchanged"

# 4. the service fails: stage-1 order, flagged, a warning on stderr naming the URL
out=$("$plumb" search --db "$db" --no-log --json --rerank 5 --reranker http --rerank-url "$url" \
  --rerank-model fail-500-always:cli "$q" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || fail "fallback search: exit $rc (want 0)"
echo "$out" | python3 -c '
import json,sys
r=json.load(sys.stdin)["rerank"]
assert r["kind"]=="http" and r["fallback"] is True and "/v1/rerank" in r["error"] and "500" in r["error"], r' \
  || fail "fallback json: $out"
[ "$(echo "$out" | ids)" = "$base_ids" ] || fail "fallback should keep the stage-1 order"
grep -q "warning: the reranker failed.*127.0.0.1:$port/v1/rerank" "$tmp/err" \
  || fail "fallback warning: $(cat "$tmp/err")"
# text output warns too, and still prints the hits
out=$("$plumb" search --db "$db" --no-log --rerank 5 --reranker http --rerank-url "$url" \
  --rerank-model malformed-json:cli --rerank-timeout 2 "$q" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] && [ -n "$out" ] || fail "text fallback: exit $rc"
grep -q "warning: the reranker failed" "$tmp/err" || fail "text fallback warning: $(cat "$tmp/err")"

# 5. no URL anywhere: a usage mistake, not a fallback
msg=$("$plumb" search --db "$db" --no-log --reranker http "$q" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "http without URL: exit $rc (want 1)"
case "$msg" in *"rerank_url"*) ;; *) fail "no-URL message: $msg";; esac
msg=$("$plumb" search --db "$db" --no-log --reranker magic "$q" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "--reranker magic: exit $rc (want 2)"

# 5b. the llm kind: a chat model grades the top few (judge mode), falls back
# on a reply without a grade; and plumb config accepts the kind
out=$("$plumb" search --db "$db" --no-log --json --reranker llm --rerank-url "$url" \
  --rerank-model judge:cli "$q" 2>"$tmp/err") || fail "llm rerank search"
echo "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin); r=d["rerank"]
assert r == {"kind":"llm","n":5,"fallback":False,"error":None}, r
s=[x["scores"]["rerank"] for x in d["hits"][:5]]
assert all(g in (0,1,3) for g in s) and s == sorted(s, reverse=True), s' \
  || fail "llm rerank json: $out"
out=$("$plumb" search --db "$db" --no-log --json --reranker llm --rerank-url "$url" \
  --rerank-model judge-text:cli "$q" 2>"$tmp/err") || fail "llm fallback search"
echo "$out" | python3 -c '
import json,sys
r=json.load(sys.stdin)["rerank"]
assert r["kind"]=="llm" and r["fallback"] is True and "/v1/chat/completions" in r["error"], r' \
  || fail "llm fallback json: $out"
[ "$(echo "$out" | ids)" = "$base_ids" ] || fail "llm fallback should keep the stage-1 order"
"$plumb" config --db "$db" rerank_kind llm 2>/dev/null || fail "config rerank_kind llm"
[ "$("$plumb" config --db "$db" rerank_kind)" = llm ] || fail "rerank_kind llm read back"

# 6. stored defaults: plumb config, shown by plumb stats, used by plumb search
"$plumb" config --db "$db" rerank_kind http 2>/dev/null || fail "config rerank_kind http"
"$plumb" config --db "$db" rerank_url "$url" 2>/dev/null || fail "config rerank_url"
"$plumb" config --db "$db" rerank_model plain:stored 2>/dev/null || fail "config rerank_model"
"$plumb" config --db "$db" rerank 7 2>/dev/null || fail "config rerank 7"
st=$("$plumb" stats --db "$db") || fail "stats"
echo "$st" | grep -q "^reranker  *http, top 7: $url, model plain:stored" || fail "stats: $st"
"$plumb" stats --db "$db" --json | python3 -c '
import json,sys
r=json.load(sys.stdin)["rerank"]
assert r["kind"]=="http" and r["n"]==7 and r["model"]=="plain:stored" and r["timeout_ms"]==10000, r' \
  || fail "stats --json rerank"
out=$("$plumb" search --db "$db" --no-log --json "$q") || fail "search with stored http reranker"
echo "$out" | python3 -c '
import json,sys
r=json.load(sys.stdin)["rerank"]; assert r["kind"]=="http" and r["n"]==7 and r["fallback"] is False, r' \
  || fail "stored defaults not used: $out"
# the per-search option beats the stored kind
out=$("$plumb" search --db "$db" --no-log --json --reranker features "$q") || fail "features search"
echo "$out" | python3 -c 'import json,sys; assert json.load(sys.stdin)["rerank"]["kind"]=="features"' \
  || fail "--reranker features should win over the stored kind"
# $PLUMB_RERANK_URL overrides the stored URL (the service moved)
out=$(PLUMB_RERANK_URL=http://127.0.0.1:1/v1 "$plumb" search --db "$db" --no-log --json \
  --rerank-timeout 0.5 "$q" 2>/dev/null) || fail "search with a dead PLUMB_RERANK_URL"
echo "$out" | python3 -c '
import json,sys
r=json.load(sys.stdin)["rerank"]; assert r["fallback"] is True and "127.0.0.1:1/" in r["error"], r' \
  || fail "PLUMB_RERANK_URL should override the stored URL: $out"
# ask --dry-run passes the options through
out=$("$plumb" ask --db "$db" --dry-run --reranker http --rerank-url "$url" \
  --rerank-model fail-500-always:ask "$q" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || fail "ask --dry-run with a failing reranker: exit $rc"
grep -q "warning: the reranker failed" "$tmp/err" || fail "ask: fallback warning: $(cat "$tmp/err")"

# 7. plumb eval counts the searches that fell back (a failing service must not
# pass for a reranker that changed nothing). tests/data/eval/tiny: 3 queries
# evaluated. 400-error fails every request without retries, so this is fast.
tiny=$here/data/eval/tiny
ev() { "$plumb" eval "$tiny" --cache-dir "$tmp/cache" --threads 1 --stages bm25,rerank \
  --reranker http --rerank-url "$url" "$@"; }
out=$(ev --json --rerank-model 400-error:eval --report "$tmp/r.html" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || fail "eval with a failing reranker: exit $rc"
echo "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin); n=d["counts"]["evaluated"]; s=d["stages"]
assert n == 3, n
assert s["rerank"]["rerank_fallbacks"] == n, s["rerank"]
assert "/v1/rerank" in s["rerank"]["rerank_error"] and "400" in s["rerank"]["rerank_error"], s["rerank"]
assert s["bm25"]["rerank_fallbacks"] == 0 and s["bm25"]["rerank_error"] is None, s["bm25"]' \
  || fail "eval --json fallbacks: $out"
grep -q "warning: stage rerank: 3 of 3 searches fell back to the stage-1 order: .*/v1/rerank" \
  "$tmp/err" || fail "eval --json: no fallback warning on stderr: $(cat "$tmp/err")"
grep -q "Stage rerank: 3 of 3 searches fell back to the stage-1 order" "$tmp/r.html" \
  || fail "eval --report: no fallback note"
out=$(ev --rerank-model 400-error:eval-text 2>/dev/null) || fail "eval text with a failing reranker"
echo "$out" | grep -q "^! rerank: 3 of 3 searches fell back to the stage-1 order.*HTTP 400" \
  || fail "eval text: no fallback line under the table: $out"
# only the 3rd request fails (one per query, in order): 1 of 3
out=$(ev --json --rerank-model 400-at-3:eval 2>/dev/null) || fail "eval, one failure"
echo "$out" | python3 -c '
import json,sys; r=json.load(sys.stdin)["stages"]["rerank"]
assert r["rerank_fallbacks"] == 1 and "400" in r["rerank_error"], r' || fail "eval, 1 of 3: $out"
# a working service: no fallback, no warning
out=$(ev --json --rerank-model plain:eval --report "$tmp/r.html" 2>"$tmp/err") \
  || fail "eval with a working reranker"
grep -q "fell back" "$tmp/r.html" && fail "eval --report, working: unexpected fallback note"
echo "$out" | python3 -c '
import json,sys; r=json.load(sys.stdin)["stages"]["rerank"]
assert r["rerank_fallbacks"] == 0 and r["rerank_error"] is None, r' || fail "eval, working: $out"
grep -q "fell back" "$tmp/err" && fail "eval, working: unexpected warning: $(cat "$tmp/err")"
out=$(ev --rerank-model plain:eval-text 2>/dev/null) || fail "eval text with a working reranker"
echo "$out" | grep -q "fell back" && fail "eval text, working: unexpected fallback line: $out"

[ $fails -eq 0 ] && echo "rerank_http_test: all passed"
exit $((fails > 0))
