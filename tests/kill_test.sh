#!/usr/bin/env bash
# kill_test.sh -- SIGKILL `plumb index` at random moments; the index must
# always open, pass `plumb check`, hold only whole documents, and a re-run
# must complete the job.
#
#   bash tests/kill_test.sh PATH_TO_PLUMB [KILLS]
#
# The corpus (generated here, deterministic): one JSONL file of 6,000
# records and 300 small text files. Each round starts `plumb index` with
# frequent commits (--commit-every 200), kills it with SIGKILL after a
# random delay within the time a full run takes, then checks the index.
# Every fifth round edits some files first, so kills also land in the
# middle of replacements. Prints "N passed, M failed".
set -u
plumb=${1:?usage: kill_test.sh PATH_TO_PLUMB [KILLS]}
kills=${PLUMB_KILL_TEST_KILLS:-${2:-50}} # the environment wins (run.sh --sanitize sets it)
tmp=$(mktemp -d /tmp/plumb-kill.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

mkdir -p "$tmp/corpus/notes"
python3 - "$tmp/corpus" <<'EOF'
import json, random, sys
root = sys.argv[1]
rnd = random.Random(7)
words = [''.join(rnd.choice('bcdfghjklmnprstvz') + rnd.choice('aeiou') for _ in range(rnd.randint(1, 4)))
         for _ in range(3000)]
with open(f'{root}/records.jsonl', 'w') as f:
    for i in range(6000):
        text = ' '.join(rnd.choice(words) for _ in range(rnd.randint(30, 400)))
        f.write(json.dumps({'_id': f'r{i}', 'title': f'record {i}', 'text': text}) + '\n')
for i in range(300):
    with open(f'{root}/notes/n{i:03d}.txt', 'w') as f:
        paras = ['. '.join(' '.join(rnd.choice(words) for _ in range(12)) for _ in range(5))
                 for _ in range(rnd.randint(1, 12))]
        f.write(f'note {i} marker{i}\n\n' + '\n\n'.join(paras) + '\n')
EOF
total=6300
db="$tmp/k.db"

# how long a full run takes: the kill window
t0=$(date +%s%N)
"$plumb" index "$tmp/corpus" --db "$tmp/full.db" -q --commit-every 200 >/dev/null 2>&1
t1=$(date +%s%N)
window_ms=$(( (t1 - t0) / 1000000 ))
[ "$window_ms" -lt 50 ] && window_ms=50
echo "kill_test: a full run takes ${window_ms} ms; $kills kills within that window"

edit_round=0
for i in $(seq 1 "$kills"); do
  if [ $((i % 5)) -eq 0 ]; then
    edit_round=$((edit_round + 1))
    for n in $(seq 0 7); do
      f=$(printf '%s/corpus/notes/n%03d.txt' "$tmp" $(( (edit_round * 37 + n * 11) % 300 )))
      printf '\n\nedited in round %d editmark%d\n' "$edit_round" "$edit_round" >> "$f"
    done
  fi
  delay_ms=$(( (RANDOM * 32768 + RANDOM) % window_ms ))
  "$plumb" index "$tmp/corpus" --db "$db" -q --commit-every 200 >/dev/null 2>"$tmp/err" &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ ! -s "$db" ]; then ok; continue; fi    # killed before the index existed
  out=$("$plumb" check --db "$db" --json 2>&1)
  code=$?
  if [ $code -eq 3 ] && echo "$out" | grep -q 'empty database'; then
    ok; continue                               # killed inside the creating transaction
  fi
  if [ $code -ne 0 ]; then bad "round $i (killed after ${delay_ms} ms): check exit $code: $out"; continue; fi
  docs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["documents"])')
  if [ "$docs" -gt "$total" ]; then bad "round $i: $docs documents > $total"; continue; fi
  "$plumb" search "marker1" --db "$db" >/dev/null 2>&1
  sc=$?
  if [ $sc -ne 0 ] && [ $sc -ne 1 ]; then bad "round $i: search exit $sc"; continue; fi
  ok
done

# a last run completes the job
"$plumb" index "$tmp/corpus" --db "$db" -q >/dev/null 2>"$tmp/err" || bad "final index: $(cat "$tmp/err")"
out=$("$plumb" check --db "$db" --json 2>&1)
[ $? -eq 0 ] && ok || bad "final check: $out"
docs=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["documents"])' 2>/dev/null)
[ "$docs" = "$total" ] && ok || bad "final: $docs documents, want $total"
hits=$("$plumb" search marker123 --db "$db" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"][0]["doc_id"])')
case "$hits" in */n123.txt) ok ;; *) bad "final search for marker123 found '$hits'" ;; esac
if [ "$edit_round" -gt 0 ]; then
  n=$("$plumb" search "editmark$edit_round" --db "$db" --json -k 100 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hits"]))')
  [ "$n" -ge 1 ] && ok || bad "final: last edits (editmark$edit_round) not indexed"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
