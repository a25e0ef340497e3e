#!/usr/bin/env bash
# ask_http_test.sh PLUMB -- `plumb ask` against an OpenAI-compatible test
# server (tests/http_server.py) on 127.0.0.1 (integration): the answer
# streams to stdout and equals what the server sent, the sources follow;
# 5xx and 429 before the first token are retried; a stream cut after the
# first token fails with "cut off" and keeps what arrived; a model that
# changed since the last run is flagged; a missing URL is a usage error.
set -u
plumb=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 0; }
tmp=$(mktemp -d)
fails=0
coproc SRV { exec python3 "$here/http_server.py" --dim 16 --timeout 300; }
srv=$SRV_PID
read -r port <&"${SRV[0]}"
trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
url="http://127.0.0.1:$port/v1"
db=$tmp/a.db
"$plumb" index --db "$db" -q "$here/../data/sample" || fail "index"
q="how does reciprocal rank fusion work"

# 1. streamed answer, then the sources; JSON has the same answer
out=$("$plumb" ask --db "$db" --url "$url" --model plain --budget 900 "$q" 2>"$tmp/err")
rc=$?
[ $rc -eq 0 ] || fail "ask: exit $rc: $(cat "$tmp/err")"
case "$out" in "You said: "*"Question: $q"*"Sources:"*"[1] "*) ;; *) fail "ask output: $out";; esac
js=$("$plumb" ask --db "$db" --url "$url" --model plain --budget 900 --json "$q") || fail "ask --json"
echo "$js" | python3 -c '
import json,sys
d=json.load(sys.stdin)
assert d["answer"].startswith("You said: ") and d["answer"].rstrip().endswith("Question: '"$q"'"), d["answer"][-80:]
assert d["model"]=="plain" and d["sources"] and d["sources"][0]["n"]==1 and d["packed_tokens"]<=900
for s in d["sources"]: assert "[%d]" % s["n"] in d["answer"]
' || fail "ask --json fields: $js"

# 2. retried before the first token
"$plumb" ask --db "$db" --url "$url" --model fail-500-twice:a --budget 600 "$q" >/dev/null 2>"$tmp/err" \
  || fail "500 twice then ok: $(cat "$tmp/err")"
t0=$(date +%s%N)
"$plumb" ask --db "$db" --url "$url" --model fail-429-then-ok:a --budget 600 "$q" >/dev/null 2>"$tmp/err" \
  || fail "429 then ok: $(cat "$tmp/err")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $ms -ge 1000 ] || fail "Retry-After: 1 not honoured (${ms} ms)"

# 3. cut mid-stream: exit 1, what arrived is printed, the message says so
out=$("$plumb" ask --db "$db" --url "$url" --model drop-mid-stream:a --budget 600 "$q" 2>"$tmp/err")
rc=$?
[ $rc -eq 1 ] || fail "drop mid-stream: exit $rc"
grep -q "cut off after" "$tmp/err" || fail "drop mid-stream message: $(cat "$tmp/err")"
case "$out" in "You said"*) ;; *) fail "the part that arrived should be printed: $out";; esac
n=$(python3 -c "import json,urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:$port/stats?model=drop-mid-stream:a'))['requests'])")
[ "$n" = 1 ] || fail "a stream cut after its first token must not be retried ($n requests)"

# 4. the server's error message reaches the user; 4xx is not retried
"$plumb" ask --db "$db" --url "$url" --model 400-error:a --budget 600 "$q" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] || fail "400: exit"
grep -q "maximum context length" "$tmp/err" || fail "400 message: $(cat "$tmp/err")"

# 5. a model that changed since the last run is flagged
python3 -c "
import sqlite3; c=sqlite3.connect('$db'); c.execute(\"UPDATE settings SET value='plain-old' WHERE key='ask_model:plain'\"); c.commit()"
"$plumb" ask --db "$db" --url "$url" --model plain --budget 600 "$q" >/dev/null 2>"$tmp/err" || fail "ask"
grep -q "last time with 'plain-old'" "$tmp/err" || fail "model change not flagged: $(cat "$tmp/err")"

# 6. usage: no URL
env -u PLUMB_LLM_URL "$plumb" ask --db "$db" --model plain "$q" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --url should be a usage error"

[ $fails -eq 0 ] && echo "ask_http_test: all passed" || echo "ask_http_test: $fails failed"
exit $((fails > 0))
