#!/usr/bin/env bash
# embed_http_test.sh PLUMB -- the HTTP embedder end to end (integration):
# an OpenAI-compatible test server (tests/http_server.py) on 127.0.0.1;
# index with it, search densely (the query is embedded by the service),
# resume an embedding run that the service broke off, refuse another model
# or dimension with a message naming both, and keep the lexical index when
# the service is down.
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

start_server() { # DIM -> sets port
  coproc SRV { exec python3 "$here/http_server.py" --dim "$1" --timeout 300; }
  srv_pids+=("$SRV_PID")
  read -r port <&"${SRV[0]}"
}
start_server 32
url="http://127.0.0.1:$port/v1"
db=$tmp/h.db

# 1. index with the HTTP embedder
"$plumb" index --db "$db" -q --embedder http --embed-url "$url" --embed-model plain \
  "$here/../data/sample" || fail "index with the http embedder"
js=$("$plumb" stats --db "$db" --json)
echo "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin)["vectors"]; assert d["embedder"]=="http" and d["model"]=="plain" and d["dim"]==32 and d["missing"]==0 and d["count"]>100, d' \
  || fail "stats: http embedder, model, dim 32, every chunk embedded: $js"

# 2. dense search: the query goes to the service
out=$("$plumb" search --db "$db" --mode dense --json "reciprocal rank fusion") || fail "dense search"
echo "$out" | python3 -c 'import json,sys; h=json.load(sys.stdin)["hits"]; assert h and h[0]["scores"]["dense"] is not None and h[0]["scores"]["lexical"] is None' \
  || fail "dense hits carry dense scores"

# 3. another model on the same index: refused, naming both
msg=$("$plumb" embed --db "$db" --embedder http --embed-url "$url" --embed-model other 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "another model: exit $rc (want 1)"
case "$msg" in *"'plain'"*"'other'"*) ;; *) fail "another model: message should name both: $msg";; esac

# 4. the service answers with another dimension: the query is refused
start_server 16 2>/dev/null
msg=$(PLUMB_EMBED_URL="http://127.0.0.1:$port/v1" "$plumb" search --db "$db" --mode dense x 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "16-dimensional answer accepted for a 32-dimensional index"
case "$msg" in *16*32*|*32*16*) ;; *) fail "dimension mismatch should name both: $msg";; esac

# 5. an interrupted run continues where it stopped
db2=$tmp/r.db
"$plumb" index --db "$db2" -q --no-embed "$here/../data/sample" || fail "index --no-embed"
msg=$("$plumb" embed --db "$db2" -q --embedder http --embed-url "$url" --embed-model 400-at-3:r \
  --embed-batch 4 --embed-concurrency 1 --commit-every 4 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "broken-off embedding: exit $rc (want 1)"
case "$msg" in *"input 3 rejected"*) ;; *) fail "the server's message should be shown: $msg";; esac
n1=$("$plumb" stats --db "$db2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vectors"]["count"])')
# request 1 probes the dimension, 2 embeds (and commits) 4 chunks, 3 is refused
[ "$n1" = 4 ] || fail "after the break: $n1 vectors committed (want 4)"
"$plumb" embed --db "$db2" -q --embed-batch 4 --embed-concurrency 1 --embedder http \
  --embed-url "$url" --embed-model 400-at-3:r || fail "resumed run"
js=$("$plumb" stats --db "$db2" --json)
total=$(echo "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["chunks"])')
n2=$(echo "$js" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vectors"]["count"])')
[ "$n2" = "$total" ] || fail "resumed: $n2 of $total chunks have vectors"
reqs=$(python3 -c "import json,urllib.request; print(json.load(urllib.request.urlopen('$url'.rsplit('/v1',1)[0]+'/stats?model=400-at-3:r'))['requests'])")
want=$(( 3 + (total - 4 + 3) / 4 ))
[ "$reqs" = "$want" ] || fail "the resumed run re-embedded committed chunks: $reqs requests (want $want)"
"$plumb" check --db "$db2" >"$tmp/check.out" 2>&1 || fail "check after the resumed run: $(cat "$tmp/check.out")"

# 6. the service down: indexing keeps the lexical index and says why
kill "${srv_pids[@]}" 2>/dev/null; wait 2>/dev/null
for i in 1 2 3; do
  echo "{\"_id\":\"new-$i\",\"title\":\"fusion $i\",\"text\":\"score fusion of lexical and dense lists, note $i\"}"
done > "$tmp/more.jsonl"
msg=$("$plumb" index --db "$db" -q "$tmp/more.jsonl" 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "service down: exit $rc (want 1)"
out=$("$plumb" search --db "$db" --mode lexical --json "fusion") || fail "lexical search after a failed embedding"
js=$("$plumb" stats --db "$db" --json)
echo "$js" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["vectors"]["missing"]>0 and d["documents"]>0' \
  || fail "the new documents are indexed and wait for vectors: $js"

[ $fails -eq 0 ] && echo "embed_http_test: all passed" || echo "embed_http_test: $fails failed"
exit $((fails > 0))
