#!/usr/bin/env bash
# check_test.sh -- `plumb check` finds deliberate damage in each file of an
# index and names the part.  bash tests/check_test.sh PLUMB SAMPLE_DIR
set -u
plumb=${1:?usage: check_test.sh PLUMB SAMPLE_DIR}
sample=${2:?usage: check_test.sh PLUMB SAMPLE_DIR}
tmp=$(mktemp -d /tmp/plumb-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() { # expect NAME WANT_EXIT PATTERN DB
  out=$("$plumb" check --db "$4" 2>&1); code=$?
  if [ "$code" -ne "$2" ]; then bad "$1: exit $code, want $2: $out"; return; fi
  if [ -n "$3" ] && ! echo "$out" | grep -q "$3"; then bad "$1: output lacks '$3': $out"; return; fi
  ok
}
db="$tmp/i.db"
"$plumb" index "$sample" --db "$db" -q || { echo "index failed"; exit 1; }
[ -s "$db.bm25" ] && ok || bad "no side file written"
[ -s "$db.vec" ] && ok || bad "no vector side file written (PLUMB_VEC_SIDE_MIN=0)"
expect "whole index" 0 "is whole" "$db"

# the side file: a flipped byte in its body, a truncated copy, another index's
cp "$db" "$tmp/a.db"; cp "$db.bm25" "$tmp/a.db.bm25"
printf '\x5a\xa5' | dd of="$tmp/a.db.bm25" bs=1 seek=4000 conv=notrunc 2>/dev/null
expect "side file flipped" 1 "bm25 side file: checksum mismatch" "$tmp/a.db"
"$plumb" search bm25 --db "$tmp/a.db" >/dev/null && ok || bad "search with a damaged side file"
cp "$db" "$tmp/b.db"; head -c 3000 "$db.bm25" > "$tmp/b.db.bm25"
expect "side file truncated" 1 "bm25 side file: .*truncated" "$tmp/b.db"
"$plumb" index "$sample/faq.jsonl" --db "$tmp/other.db" -q
cp "$db" "$tmp/c.db"; cp "$tmp/other.db.bm25" "$tmp/c.db.bm25"
expect "foreign side file" 1 "bm25 side file: belongs to another index" "$tmp/c.db"
# the forward lists (the last two sections, index/FORMAT.md): a flipped
# has-list flag, flipped term ids; a file from before them (version 1)
# is no damage: reported, not counted, and searches still answer
sec() { # sec SIDE has|fwd: the byte offset of that section in the file
  python3 - "$1" "$2" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(112)
nterms, nord = struct.unpack_from('<II', d, 40)
npost, narena = struct.unpack_from('<QQ', d, 48)
up8 = lambda x: (x + 7) & ~7
o = up8(narena) + up8(nterms * 16) + up8(npost * 8) + up8(nord * 8) + 2 * up8(nord * 4) + up8(nord)
print(112 + (o if sys.argv[2] == 'has' else o + up8(nord)))
PY
}
cp "$db" "$tmp/e.db"; cp "$db.bm25" "$tmp/e.db.bm25"
printf '\x02' | dd of="$tmp/e.db.bm25" bs=1 seek=$(( $(sec "$db.bm25" has) + 3 )) conv=notrunc 2>/dev/null
expect "forward flag flipped" 1 "bm25 side file: checksum mismatch" "$tmp/e.db"
cp "$db" "$tmp/f.db"; cp "$db.bm25" "$tmp/f.db.bm25"
printf '\x5a\xa5\x5a\xa5' | dd of="$tmp/f.db.bm25" bs=1 seek=$(( $(sec "$db.bm25" fwd) + 400 )) conv=notrunc 2>/dev/null
expect "forward ids flipped" 1 "bm25 side file: checksum mismatch" "$tmp/f.db"
"$plumb" search bm25 --db "$tmp/f.db" >/dev/null && ok || bad "search with damaged forward lists"
cp "$db" "$tmp/g.db"; cp "$db.bm25" "$tmp/g.db.bm25"
printf '\x01' | dd of="$tmp/g.db.bm25" bs=1 seek=8 conv=notrunc 2>/dev/null
expect "version 1 side file" 0 "bm25 side file: version 1, from an older plumb" "$tmp/g.db"
"$plumb" search bm25 --db "$tmp/g.db" >/dev/null && ok || bad "search with a version 1 side file"

# the database file: bytes flipped across its pages
cp "$db" "$tmp/d.db"
python3 - "$tmp/d.db" <<'PY'
import os, sys
p = sys.argv[1]; n = os.path.getsize(p)
with open(p, 'r+b') as f:
    for off in range(4096 * 3, n, 4096 * 5):
        f.seek(off + 100); f.write(b'\x13\x37\x13\x37\x00\xff')
PY
out=$("$plumb" check --db "$tmp/d.db" 2>&1); code=$?
if [ $code -ne 0 ] && echo "$out" | grep -qE '^(sqlite|fts5|documents|chunks|bm25 index):|not a plumb index|damaged|malformed'; then ok
else bad "database flipped: exit $code: $out"; fi

# the vector side file: a flipped byte in its body; a truncated copy
cp "$db" "$tmp/v.db"; cp "$db.vec" "$tmp/v.db.vec"
printf '\x5a\xa5' | dd of="$tmp/v.db.vec" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect "vector side file flipped" 1 "vectors: .*checksum mismatch" "$tmp/v.db"
"$plumb" search --mode dense vectors --db "$tmp/v.db" >/dev/null && ok || bad "dense search with a damaged vector side file"
cp "$db" "$tmp/w.db"; head -c 3000 "$db.vec" > "$tmp/w.db.vec"
expect "vector side file truncated" 1 "vectors: .*truncated" "$tmp/w.db"
# the vectors table: a blob of the wrong size, a vector without its chunk
cp "$db" "$tmp/x.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE vectors SET v=x\'0011\' WHERE chunk=(SELECT min(chunk) FROM vectors)'); c.commit()" "$tmp/x.db"
expect "vector blob damaged" 1 "vectors: vector of chunk [0-9]* has 2 bytes" "$tmp/x.db"
cp "$db" "$tmp/y.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); v=c.execute('SELECT v FROM vectors LIMIT 1').fetchone()[0]; c.execute('INSERT INTO vectors(chunk, v) VALUES(999999, ?)', (v,)); c.commit()" "$tmp/y.db"
expect "orphan vector" 1 "vectors: 1 vectors belong to no chunk" "$tmp/y.db"

# a chunk row removed behind plumb's back
cp "$db" "$tmp/e.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM chunks WHERE id=(SELECT max(id) FROM chunks)'); c.commit()" "$tmp/e.db"
expect "chunk deleted" 1 "documents: document" "$tmp/e.db"

# not an index at all
echo "hello" > "$tmp/f.db"
expect "not an index" 3 "" "$tmp/f.db"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
