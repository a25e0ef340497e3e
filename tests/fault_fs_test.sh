#!/usr/bin/env bash
# fault_fs_test.sh -- file-system faults: a read-only index and a full disk.
#
#   bash tests/fault_fs_test.sh PATH_TO_PLUMB SAMPLE_DIR
#
# (a) Read-only: an index in a directory made read-only (chmod 555/444,
#     and as root, whom chmod does not stop, chattr +i on the directory and
#     the files) must still serve search, stats and check, both as left by
#     `plumb index` (one file at rest) and with a reader's -wal/-shm beside
#     it; `plumb index` into it must fail with exit 1 and a message saying
#     it is read-only, and leave the files byte for byte as they were.
# (b) Disk full: RLIMIT_FSIZE (ulimit -f, 1 KiB blocks; SIGXFSZ ignored so
#     writes fail with EFBIG) stops an index run mid-way. The run must fail
#     with exit 1 and a message naming the file and the I/O failure; then,
#     without the limit, the index opens, passes `plumb check`, holds every
#     batch committed before the failure (whole batches only), and a re-run
#     completes. Also a limit hit by the very first commit, and by the
#     creation of a new index.
# (c) At rest: search, stats and check on an index left as one file (and
#     on a copy of it) leave no -wal/-shm beside it; while another process
#     holds it open, they leave that process's files alone.
# Corpora: SAMPLE_DIR and a generated JSONL of 3,000 records (3.3 MB, a
# 7.5 MB index). Takes a few seconds. Prints "N passed, M failed".
set -u
plumb=${1:?usage: fault_fs_test.sh PATH_TO_PLUMB SAMPLE_DIR}
sample=${2:?usage: fault_fs_test.sh PATH_TO_PLUMB SAMPLE_DIR}
tmp=$(mktemp -d /tmp/plumb-fs.XXXXXX)
immutable=() # paths given chattr +i, released at exit whatever happens
cleanup() {
  [ ${#immutable[@]} -gt 0 ] && chattr -i "${immutable[@]}" 2>/dev/null
  chmod -R u+w "$tmp" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
export PLUMB_BM25_SIDE_MIN_CHUNKS=0 # write the BM25 side file even for small indexes
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
run() { out=$("$@" 2>&1); code=$?; } # sets $out and $code
docs() { "$plumb" check --db "$1" --json 2>/dev/null |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["documents"])' 2>/dev/null; }
# expect_check NAME DB DOCS: the index passes `plumb check` and holds DOCS documents
expect_check() {
  run "$plumb" check --db "$2"
  if [ $code -ne 0 ]; then bad "$1: check exit $code: $out"; return; fi
  local n; n=$(docs "$2")
  [ "$n" = "$3" ] && ok || bad "$1: $n documents, want $3"
}
# limited BLOCKS CMD...: run CMD with writes limited to BLOCKS KiB per file
limited() { bash -c 'trap "" XFSZ; ulimit -f "$0"; exec "$@"' "$@"; }

nsample=$(find "$sample" -type f \( -name '*.txt' -o -name '*.md' -o -name '*.html' \) | wc -l)
mkdir -p "$tmp/extra" && echo "a new note about quokkas" > "$tmp/extra/new.txt"
python3 - "$tmp/records.jsonl" <<'EOF'
import json, random, sys
rnd = random.Random(11)
words = [''.join(rnd.choice('bcdfghjklmnprstvz') + rnd.choice('aeiou') for _ in range(rnd.randint(1, 4)))
         for _ in range(3000)]
with open(sys.argv[1], 'w') as f:
    for i in range(3000):
        text = ' '.join(rnd.choice(words) for _ in range(rnd.randint(50, 300)))
        f.write(json.dumps({'_id': f'r{i}', 'title': f'record {i} recmark{i}', 'text': text}) + '\n')
EOF

# ---- (a) read-only index ----
ro_tools=1
if [ "$(id -u)" -eq 0 ]; then
  touch "$tmp/probe" && chattr +i "$tmp/probe" 2>/dev/null && chattr -i "$tmp/probe" || ro_tools=0
  rm -f "$tmp/probe"
  [ $ro_tools -eq 1 ] ||
    echo "SKIP: (a) read-only index: running as root and chattr +i is not supported on $tmp"
fi
lock_ro() { # make directory $1 and its files read-only, also for root
  chmod 444 "$1"/*; chmod 555 "$1"
  if [ "$(id -u)" -eq 0 ]; then immutable=("$1"/* "$1"); chattr +i "${immutable[@]}"; fi
}
unlock_ro() {
  [ ${#immutable[@]} -gt 0 ] && chattr -i "${immutable[@]}"
  immutable=(); chmod 755 "$1"; chmod 644 "$1"/*
}
if [ $ro_tools -eq 1 ]; then
  for state in "at rest" "with -wal/-shm"; do
    d="$tmp/ro"; rm -rf "$d"; mkdir -p "$d"; db="$d/i.db"
    "$plumb" index "$sample" --db "$db" -q || { bad "ro ($state): initial index failed"; continue; }
    want=$(docs "$db")
    # a read-only SQLite connection leaves them (plumb's readers no longer do)
    [ "$state" = "at rest" ] || python3 -c 'import sqlite3, sys
sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True).execute("SELECT count(*) FROM documents").fetchall()' "$db"
    [ "$state" = "at rest" ] || [ -e "$db-shm" ] || bad "ro ($state): no -shm was left to test with"
    sums=$(cd "$d" && sha256sum i.db i.db.bm25)
    lock_ro "$d"
    run "$plumb" search "write-ahead log" --db "$db" -k 3
    [ $code -eq 0 ] && echo "$out" | grep -q 'write-ahead-logging.html' && ok ||
      bad "ro ($state): search exit $code: $out"
    run "$plumb" stats --db "$db"
    [ $code -eq 0 ] && echo "$out" | grep -qE "^documents +$want\$" && ok ||
      bad "ro ($state): stats exit $code: $out"
    run "$plumb" check --db "$db"
    [ $code -eq 0 ] && echo "$out" | grep -q 'is whole' && ok || bad "ro ($state): check exit $code: $out"
    run "$plumb" index "$tmp/extra" --db "$db" -q
    [ $code -eq 1 ] && echo "$out" | grep -qiE 'read-?only' && ok ||
      bad "ro ($state): index into a read-only index: exit $code, want 1 and 'read-only': $out"
    [ "$(cd "$d" && sha256sum i.db i.db.bm25)" = "$sums" ] && ok || bad "ro ($state): files changed"
    unlock_ro "$d"
    expect_check "ro ($state): writable again" "$db" "$want"
    run "$plumb" index "$tmp/extra" --db "$db" -q
    [ $code -eq 0 ] && ok || bad "ro ($state): index once writable again: exit $code: $out"
  done
fi

# ---- (c) readers leave an index at rest as they found it: one file ----
d="$tmp/rest"; mkdir -p "$d"; db="$d/i.db"
"$plumb" index "$sample" --db "$db" -q || bad "rest: initial index failed"
cp "$db" "$d/copy.db" # an index copied as one file (no side file beside it)
for f in i.db copy.db; do
  before=$(ls "$d")
  for cmd in "search write-ahead log -k 3" "stats" "check"; do
    run "$plumb" $cmd --db "$d/$f"
    [ $code -eq 0 ] && ok || bad "rest: $f: plumb $cmd exit $code: $out"
    now=$(ls "$d")
    [ "$now" = "$before" ] && ok || bad "rest: $f: plumb $cmd left files beside it: $(echo $now)"
  done
done
# another process holding the index open keeps its -wal/-shm: a reader closing
# first must not remove them under it
python3 - "$db" "$plumb" <<'EOF' && ok || bad "rest: -wal/-shm of an open connection removed"
import sqlite3, subprocess, sys, os
db, plumb = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db)
c.execute("SELECT count(*) FROM documents").fetchall()
assert os.path.exists(db + "-shm"), "python's connection made no -shm"
subprocess.run([plumb, "search", "log", "--db", db], check=True, capture_output=True)
assert os.path.exists(db + "-shm") and os.path.exists(db + "-wal"), "gone"
c.close()
EOF

# ---- (b) disk full ----
d="$tmp/full"; mkdir -p "$d"; db="$d/t.db"
"$plumb" index "$sample" --db "$db" -q || bad "full: initial index failed"
base=$(docs "$db")
[ "$base" -ge "$nsample" ] && ok || bad "full: $base documents from the sample, want >= $nsample"
# 3 MB per file: the WAL outgrows it a few batches in
run limited 3000 "$plumb" index "$tmp/records.jsonl" --db "$db" -q --commit-every 200
[ $code -eq 1 ] && ok || bad "full 3 MB: exit $code, want 1: $out"
echo "$out" | grep -q "$db" && echo "$out" | grep -qiE 'I/O|disk|full|too large' && ok ||
  bad "full 3 MB: message names neither the file nor the I/O failure: $out"
run "$plumb" check --db "$db"
[ $code -eq 0 ] && ok || bad "full 3 MB: check exit $code: $out"
n=$(docs "$db")
if [ -n "$n" ] && [ "$n" -gt "$base" ] && [ "$n" -lt $((base + 3000)) ] && [ $(((n - base) % 200)) -eq 0 ]; then ok
else bad "full 3 MB: $n documents, want $base plus whole batches of 200, fewer than 3000"; fi
"$plumb" search "write-ahead log" --db "$db" -k 3 2>&1 | grep -q 'write-ahead-logging.html' && ok ||
  bad "full 3 MB: sample document lost"
"$plumb" search recmark5 --db "$db" -k 1 --json 2>/dev/null | grep -q '"doc_id":"r5"' && ok ||
  bad "full 3 MB: committed record r5 not found"
# 64 KB: below the index's size, so the very first commit fails
run limited 64 "$plumb" index "$tmp/records.jsonl" --db "$db" -q --commit-every 200
[ $code -eq 1 ] && ok || bad "full 64 KB: exit $code, want 1: $out"
expect_check "full 64 KB" "$db" "$n"
# without the limit the job completes
run "$plumb" index "$sample" "$tmp/records.jsonl" --db "$db" -q --commit-every 200
[ $code -eq 0 ] && ok || bad "full: re-run exit $code: $out"
expect_check "full: re-run" "$db" $((base + 3000))
"$plumb" search recmark2999 --db "$db" -k 1 --json 2>/dev/null | grep -q '"doc_id":"r2999"' && ok ||
  bad "full: re-run: record r2999 not found"
# a new index whose creation hits the limit
db2="$d/new.db"
run limited 64 "$plumb" index "$sample" --db "$db2" -q
[ $code -eq 1 ] && echo "$out" | grep -q "$db2" && ok || bad "full new: exit $code, want 1 naming the file: $out"
run "$plumb" index "$sample" --db "$db2" -q
[ $code -eq 0 ] && ok || bad "full new: re-run exit $code: $out"
expect_check "full new: re-run" "$db2" "$base"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
