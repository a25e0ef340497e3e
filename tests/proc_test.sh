#!/usr/bin/env bash
# proc_test.sh -- a second process searches while another indexes, edits
# and deletes: no search may fail (no "database is locked"), every answer
# must parse, and the index must pass `plumb check` afterwards.
#   bash tests/proc_test.sh PLUMB SAMPLE_DIR [SECONDS]
set -u
plumb=${1:?usage: proc_test.sh PLUMB SAMPLE_DIR [SECONDS]}
sample=${2:?}
secs=${3:-15}
tmp=$(mktemp -d /tmp/plumb-proc.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp -r "$sample" "$tmp/docs"
db="$tmp/p.db"
"$plumb" index "$tmp/docs" --db "$db" -q || { echo "initial index failed"; exit 1; }

# reader: a separate process searching in a loop until told to stop
(
  n=0; bad=0
  queries=("bm25 length normalization" "write-ahead log" "転置インデックス" "rank fusion" "stemming porter")
  while [ ! -e "$tmp/stop" ]; do
    q=${queries[$((n % 5))]}
    out=$("$plumb" search "$q" --db "$db" --json -k 5 2>&1)
    code=$?
    if [ $code -ne 0 ] || ! echo "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; then
      bad=$((bad + 1)); echo "reader: exit $code: $(echo "$out" | head -c 300)" >&2
    fi
    n=$((n + 1))
  done
  echo "$n $bad" > "$tmp/reader.out"
) &
rpid=$!

# writer: edits, re-indexes with prune, deletes, for $secs seconds
end=$(( $(date +%s) + secs )); round=0; werr=0
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  printf '\n\nround %d edit\n' "$round" >> "$tmp/docs/ir/bm25.md"
  if [ $((round % 2)) -eq 0 ]; then mv "$tmp/docs/web/sqlite-fts5.html" "$tmp/sqlite-fts5.html"
  elif [ -e "$tmp/sqlite-fts5.html" ]; then mv "$tmp/sqlite-fts5.html" "$tmp/docs/web/"; fi
  "$plumb" index "$tmp/docs" --db "$db" -q --prune || werr=$((werr + 1))
  "$plumb" delete "faq-$(( round % 16 + 1 ))" --db "$db" >/dev/null 2>&1
done
touch "$tmp/stop"
wait "$rpid"
read -r searches bad < "$tmp/reader.out"
pass=0; fail=0
[ "$werr" -eq 0 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: $werr writer runs failed"; }
[ "$bad" -eq 0 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: $bad of $searches searches failed"; }
[ "$searches" -gt 5 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: only $searches searches ran"; }
"$plumb" check --db "$db" >/dev/null && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: check"; "$plumb" check --db "$db"; }
echo "proc_test: $round writer rounds, $searches searches in the other process"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
