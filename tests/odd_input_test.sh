#!/usr/bin/env bash
# odd_input_test.sh -- hostile and odd input through the CLI (issue 9).
#
#   bash tests/odd_input_test.sh PATH_TO_PLUMB
#
# Every case ends in a defined outcome: the run exits 0, each problem is
# reported naming the file (and the line, byte or directory), the index
# passes `plumb check`, and nothing else is lost.
#   tiny      ODD_TINY_FILES files (default 20000) in 100 directories: all
#             indexed, a re-run skips every one by hash, a sample is found.
#   deep      1,000 nested directories: indexed to depth 256, deeper ones
#             skipped with a message naming the directory; a tree whose
#             paths pass PATH_MAX: what fits indexed, the rest named with
#             "File name too long"; files beside both still indexed.
#   links     a -> b -> a, a link to an ancestor, a second link to a
#             directory and to a file: the run ends, each file indexed
#             once (with and without --follow-links), loops reported.
#   changing  a 16 MB text file rewritten in a loop (old and new version
#             alternately) while it is indexed: its document is the old or
#             the new text whole, never a mix, or the file is skipped with
#             "changed while being read"; a JSONL file likewise keeps whole
#             records. Once the writer stops, a re-run indexes it whole.
#             A listed file replaced by a FIFO before it is read: reported
#             ("no longer a regular file"), the run does not hang.
#   nul       NUL bytes in a .txt after its first 8 KiB (dropped, named by
#             byte offset), in the first 8 KiB (binary: skipped), raw in a
#             JSONL line and as a \u0000 escape (dropped, named by line).
#   long      one line of ODD_LONG_MB MiB (default 64) in a .txt and in a
#             .jsonl: indexed, the words at their ends found.
#   encoding  Latin-1 / Windows-1252 bytes (U+FFFD, "invalid UTF-8 at byte
#             N"), UTF-16LE/BE with a byte order mark (decoded), a UTF-8
#             byte order mark (dropped), invalid UTF-8 in a JSONL line
#             (repaired, named by line), a UTF-16 JSONL file (skipped).
#   big       only with ODD_BIG=1 (minutes, 4 GB of disk): a 2 GB .txt
#             (skipped: over the 1 GiB limit of a whole-file read), a
#             1000 MiB .txt (the largest read whole: indexed), a 2 GB
#             sparse .jsonl with no newline (streamed, its one line skipped
#             as over 256 MiB), a 2 GB .jsonl of records (streamed, all
#             indexed); peak RSS printed from /usr/bin/time when present.
# Prints "N passed, M failed".
set -u
plumb=${1:?usage: odd_input_test.sh PATH_TO_PLUMB}
tiny=${ODD_TINY_FILES:-20000}
long_mb=${ODD_LONG_MB:-64}
tmp=$(mktemp -d /tmp/plumb-odd.XXXXXX)
writer=
cleanup() {
  [ -n "$writer" ] && kill "$writer" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
export PLUMB_BM25_SIDE_MIN_CHUNKS=0
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
run() { out=$("$@" 2>&1); code=$?; } # sets $out and $code
# jfield JSON KEY: one top-level field of a JSON object
jfield() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2" 2>/dev/null; }
# index NAME DB ARGS...: `plumb index --json`; sets $res (the JSON) and $msgs
# (stderr); a failure unless it exits 0
index() {
  local name=$1 db=$2; shift 2
  res=$("$plumb" index "$@" --db "$db" --json 2>"$tmp/stderr"); code=$?
  msgs=$(cat "$tmp/stderr")
  [ $code -eq 0 ] && ok || bad "$name: index exit $code: $msgs"
}
# field NAME KEY WANT: a field of the last index result
field() {
  local v; v=$(jfield "$res" "$2")
  [ "$v" = "$3" ] && ok || bad "$1: $2 = $v, want $3"
}
# said NAME PATTERN: the last index run's messages match PATTERN (grep -E)
said() { echo "$msgs" | grep -qE -- "$2" && ok || bad "$1: no message matching '$2' in: $(echo "$msgs" | head -c 2000)"; }
# checked NAME DB DOCS: the index passes `plumb check` and holds DOCS documents
checked() {
  local j; j=$("$plumb" check --db "$2" --json 2>&1); local c=$?
  [ $c -eq 0 ] && ok || bad "$1: check exit $c: $j"
  local n; n=$(jfield "$j" documents)
  [ "$n" = "$3" ] && ok || bad "$1: $n documents, want $3"
}
# found NAME DB QUERY WANT: the top hit's doc_id (or source) contains WANT
found() {
  local j; j=$("$plumb" search "$3" --db "$2" -k 1 --json 2>&1)
  echo "$j" | grep -qF -- "$4" && ok || bad "$1: search '$3' did not find '$4': $(echo "$j" | head -c 400)"
}
# section NAME: prints the time the previous section took
t_sec=$SECONDS; s_name=
section() { [ -n "$s_name" ] && echo "$s_name: $((SECONDS - t_sec)) s"; s_name=$1; t_sec=$SECONDS; }
# hits DB QUERY: number of matching chunks
hits() { jfield "$("$plumb" search "$2" --db "$1" -k 1 --json 2>/dev/null)" matched; }

section tiny
# ---- tiny: many small files ----
d="$tmp/tiny"; db="$tmp/tiny.db"
python3 - "$d" "$tiny" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
def word(i):  # a word of its own per file: letters only, so no stemming or number rules touch it
    s = ''
    for _ in range(5):
        s += 'bcdfghjklmnpqrstvwxz'[i % 20]; i //= 20
    return 'tq' + s
for i in range(n):
    sub = os.path.join(root, 'd%03d' % (i % 100), 'e%d' % (i % 7))
    if i < 700: os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, 'f%07d.txt' % i), 'w') as f:
        f.write('tiny file %s number %d\n' % (word(i), i))
EOF
index "tiny" "$db" "$d" -q
field "tiny" files_indexed "$tiny"
field "tiny" docs_added "$tiny"
checked "tiny" "$db" "$tiny"
index "tiny: re-run" "$db" "$d" -q
field "tiny: re-run" files_unchanged "$tiny"
field "tiny: re-run" files_indexed 0
field "tiny: re-run" docs_added 0
for i in $(python3 -c "import random; r = random.Random(3); print(*r.sample(range($tiny), 12))"); do
  w=$(python3 -c "
i = $i; s = ''
for _ in range(5):
    s += 'bcdfghjklmnpqrstvwxz'[i % 20]; i //= 20
print('tq' + s)")
  found "tiny: file $i" "$db" "$w" "$(printf 'f%07d.txt' "$i")"
done
rm -rf "$d"

section deep
# ---- deep: nested directories ----
d="$tmp/deep"; db="$tmp/deep.db"
python3 - "$d" <<'EOF'
import os, sys
root = sys.argv[1]
os.makedirs(root)
os.chdir(root)
open('zz-after.txt', 'w').write('deepafter beside the deep trees\n')
base = os.getcwd()
os.mkdir('n'); os.chdir('n')              # 1,000 levels n/d/d/...: 2 KB of path
for level in range(1, 1001):
    open('f.txt', 'w').write('deep level deeplevel%s\n' % ''.join('abcdefghij'[int(c)] for c in str(level)))
    os.mkdir('d'); os.chdir('d')
os.chdir(base)
os.mkdir('w'); os.chdir('w')              # 40 levels of 200-byte names: 8 KB of path
for level in range(1, 41):
    open('f.txt', 'w').write('wide level widelevel%s\n' % ''.join('abcdefghij'[int(c)] for c in str(level)))
    name = 'x' * 199 + str(level % 10)
    os.mkdir(name); os.chdir(name)
EOF
index "deep" "$db" "$d" -q
said "deep" 'skipped \(directories nested deeper than 256\)'
said "deep" "$d/n(/d){256}: skipped"
said "deep" "File name too long"
# level L's f.txt is in a directory at depth L (n is at depth 1): the walk
# enters directories to depth 256. w: the levels whose f.txt path fits in
# PATH_MAX (4096 bytes with its NUL)
nwide=$(python3 -c "
import os; r = len(os.path.realpath('$d')) + 2  # + '/w'
print(sum(1 for L in range(1, 41) if r + 201 * (L - 1) + len('/f.txt') <= 4095))")
field "deep" files_indexed $((1 + 256 + nwide))
checked "deep" "$db" $((1 + 256 + nwide))
found "deep: beside" "$db" deepafter "zz-after.txt"
found "deep: level 256" "$db" deeplevelcfg "/f.txt"
[ "$(hits "$db" deeplevelcfh)" = 0 ] && ok || bad "deep: level 257 indexed past the limit"
found "deep: wide level $nwide" "$db" "widelevel$(echo $nwide | tr 0-9 a-j)" "/f.txt"
rm -rf "$d"

section links
# ---- links: symbolic link loops ----
d="$tmp/links"; db="$tmp/links.db"
mkdir -p "$d/real/sub"
echo "linkword in the one real file" > "$d/real/sub/file.txt"
ln -s b "$d/a"; ln -s a "$d/b"               # a -> b -> a
ln -s .. "$d/real/sub/up"                    # a link to an ancestor
ln -s real/sub "$d/alias"                    # a second way to a directory
ln -s real/sub/file.txt "$d/flink.txt"       # a second way to a file
for follow in "" "--follow-links"; do
  rm -f "$db"*
  index "links $follow" "$db" "$d" -v $follow
  field "links $follow" files_indexed 1
  checked "links $follow" "$db" 1
  said "links $follow" "$d/a: skipped \(symbolic link loop"
  [ -n "$follow" ] && said "links $follow" "$d/real/sub/up: skipped \(symbolic link loop"
  [ "$(hits "$db" linkword)" = 1 ] && ok || bad "links $follow: linkword in $(hits "$db" linkword) chunks, want 1"
done

section changing
# ---- changing: files rewritten while they are read ----
# A writer rewrites a file in place (truncate, then 1 MiB writes), the old
# and the new version in turn, pausing 0-30 ms between versions. Each state
# the file passes through is a prefix of one version, so a document holding
# words of both was torn by the reader. Several rounds: a reader that can
# tear does so in some, not every one (the old read_all did in 1 of 4-8).
# f.txt and r.jsonl go to indexes of their own, so a word's hits are one
# file's; r.jsonl with --prune, so the records are those of the last pass.
d="$tmp/chg"; db="$tmp/chg.db"; dbj="$tmp/chgj.db"; mkdir -p "$d"
nrec=10000
python3 - "$tmp" "$nrec" <<'EOF'
import sys
t, n = sys.argv[1], int(sys.argv[2])
open(t + '/A', 'w').write(('alphaword ' * 99 + '\n') * 16000)  # 16 MB, one word
open(t + '/B', 'w').write(('omegaword ' * 99 + '\n') * 16000)
with open(t + '/JA', 'w') as a, open(t + '/JB', 'w') as b:
    for i in range(n):
        a.write('{"_id":"r%d","text":"%s"}\n' % (i, 'alphaword ' * 60))
        b.write('{"_id":"r%d","text":"%s"}\n' % (i, 'omegaword ' * 60))
EOF
cat > "$tmp/writer.py" <<'EOF'
import os, random, sys, time
a, b, f = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), sys.argv[3]
fd, r = os.open(f, os.O_RDWR | os.O_CREAT), random.Random(1)
while True:
    for v in (a, b):
        os.ftruncate(fd, 0); os.lseek(fd, 0, 0)
        for i in range(0, len(v), 1 << 20): os.write(fd, v[i:i + (1 << 20)])
        time.sleep(r.random() * 0.03)
EOF
changing() { # changing NAME DB SRC_A SRC_B FILE ROUNDS INDEX_OPTIONS...
  local name=$1 db=$2 va=$3 vb=$4 f=$5 rounds=$6; shift 6
  cp "$va" "$f"
  python3 "$tmp/writer.py" "$va" "$vb" "$f" & writer=$!
  for r in $(seq "$rounds"); do
    rm -f "$db"*
    index "$name, round $r" "$db" "$f" "$@"
    local a o; a=$(hits "$db" alphaword); o=$(hits "$db" omegaword)
    echo "$name, round $r: $a chunks of the old text, $o of the new$(echo "$msgs" | grep -q 'changed while' && echo ', "changed while being read"')"
    # a JSONL file still changing after the last try keeps each record whole,
    # from whichever pass read it, and says so
    if ! echo "$msgs" | grep -q "r.jsonl: changed while being read"; then
      { [ "$a" -gt 0 ] && [ "$o" -gt 0 ]; } && bad "$name, round $r: torn: $a chunks of the old text, $o of the new" || ok
    fi
    if echo "$msgs" | grep -q "f.txt: skipped (changed while being read"; then
      [ "$a" = 0 ] && [ "$o" = 0 ] && ok || bad "$name, round $r: skipped yet $a/$o chunks indexed"
    fi
    local c; c=$("$plumb" check --db "$db" 2>&1) && ok || bad "$name, round $r: check: $c"
  done
  kill "$writer"; wait "$writer" 2>/dev/null; writer=
}
changing "changing .txt" "$db" "$tmp/A" "$tmp/B" "$d/f.txt" 4 -q
changing "changing .jsonl" "$dbj" "$tmp/JA" "$tmp/JB" "$d/r.jsonl" 2 -q --prune
# the writer stopped: a re-run reads what is there, whole
cp "$tmp/B" "$d/f.txt"; cp "$tmp/JB" "$d/r.jsonl"
index "changing .txt: re-run" "$db" "$d/f.txt" -q
index "changing .jsonl: re-run" "$dbj" "$d/r.jsonl" -q --prune
[ "$(hits "$db" alphaword)" = 0 ] && [ "$(hits "$db" omegaword)" -gt 0 ] && ok ||
  bad "changing: re-run: f.txt not the new text"
[ "$(hits "$dbj" alphaword)" = 0 ] && [ "$(hits "$dbj" omegaword)" = $nrec ] && ok ||
  bad "changing: re-run: r.jsonl not the new records"
checked "changing: re-run" "$db" 1
checked "changing: re-run" "$dbj" $nrec
rm -f "$tmp"/A "$tmp"/B "$tmp"/JA "$tmp"/JB; rm -rf "$d"

# a FIFO put in a listed file's place between the walk and the read: a plain
# open() would wait for a writer forever (the run hung); now it is reported
d="$tmp/fifo"; db="$tmp/fifo.db"; mkdir -p "$d"
python3 -c "open('$d/a.txt', 'w').write(('word ' * 199 + 'fifoaword\n') * 30000)" # 30 MB, indexed first
echo "fifozword" > "$d/z.txt"
"$plumb" index "$d" --db "$db" --json -v >"$tmp/res" 2>"$tmp/stderr" & ip=$!
sleep 0.3 # the walk of two names is done long before a.txt is indexed
rm "$d/z.txt"; mkfifo "$d/z.txt"
( sleep 60; kill "$ip" 2>/dev/null ) & guard=$!
wait "$ip"; code=$?
kill "$guard" 2>/dev/null; wait "$guard" 2>/dev/null
msgs=$(cat "$tmp/stderr")
[ $code -eq 0 ] && ok || bad "fifo: index exit $code (143: hung on the FIFO and killed): $msgs"
if grep -q "z.txt: cannot read: no longer a regular file" "$tmp/stderr"; then ok
else # the walk was slow enough to see the FIFO itself: also defined
  said "fifo" "z.txt: skipped \(not a regular file\)"
fi
checked "fifo" "$db" 1
rm -rf "$d"

section nul
# ---- nul: NUL bytes ----
d="$tmp/nul"; db="$tmp/nul.db"; mkdir -p "$d"
python3 - "$d" <<'EOF'
import sys
d = sys.argv[1]
open(d + '/late.txt', 'wb').write(b'filler ' * 2000 + b'\0' + b' nulafterword\n')  # NUL at 14000
open(d + '/early.txt', 'wb').write(b'head \0 binarynulword\n')
open(d + '/n.jsonl', 'wb').write(
    b'{"_id":"raw","text":"before\0 rawnulword"}\n'                      # NUL at byte 27
    b'{"_id":"esc","text":"before\\u0000 escnulword \\\\u0000 kept"}\n'   # one escape, one literal
    b'{"_id":"next","text":"nextrecword"}\n')
EOF
index "nul" "$db" "$d"
said "nul" "late.txt: NUL byte at byte 14000 \(1 NUL byte dropped\)"
said "nul" "early.txt: skipped \(binary file"
said "nul" "n.jsonl:1: NUL byte at byte 27 of the line"
said "nul" 'n.jsonl:2: 1 \\u0000 escape dropped'
checked "nul" "$db" 4
found "nul: after a NUL in a .txt" "$db" nulafterword "late.txt"
found "nul: after a raw NUL in JSONL" "$db" rawnulword '"doc_id":"raw"'
found "nul: after a \\u0000 escape" "$db" escnulword '"doc_id":"esc"'
found "nul: next record" "$db" nextrecword '"doc_id":"next"'
[ "$(hits "$db" binarynulword)" = 0 ] && ok || bad "nul: binary file indexed"
# a new index of nothing but a skipped file: empty, with its (empty) BM25
# side file written (PLUMB_BM25_SIDE_MIN_CHUNKS=0; UBSan once caught
# memcpy from the empty index's NULL arrays there)
index "nul: only a binary file" "$tmp/empty.db" "$d/early.txt"
checked "nul: only a binary file" "$tmp/empty.db" 0
[ -e "$tmp/empty.db.bm25" ] && ok || bad "nul: only a binary file: no side file"
rm -rf "$d"

section long
# ---- long: one overlong line ----
d="$tmp/long"; db="$tmp/long.db"; mkdir -p "$d"
python3 - "$d" "$long_mb" <<'EOF'
import sys
d, mb = sys.argv[1], int(sys.argv[2])
words = ' '.join('w%s' % ''.join('abcdefghij'[int(c)] for c in str(i)) for i in range(4000)) + ' '
body = (words * (mb * 1048576 // len(words) + 1))[:mb * 1048576]
open(d + '/line.txt', 'w').write('longstartword ' + body + ' longendword')
open(d + '/line.jsonl', 'w').write('{"_id":"long","text":"jsonstartword %s jsonendword"}\n'
                                   '{"_id":"after","text":"afterlongword"}\n' % body)
EOF
index "long" "$db" "$d" -q
field "long" files_indexed 2
checked "long" "$db" 3
found "long: .txt start" "$db" longstartword "line.txt"
found "long: .txt end" "$db" longendword "line.txt"
found "long: .jsonl end" "$db" jsonendword '"doc_id":"long"'
found "long: .jsonl next record" "$db" afterlongword '"doc_id":"after"'
rm -rf "$d"

section encoding
# ---- encoding: mixed and foreign encodings ----
d="$tmp/enc"; db="$tmp/enc.db"; mkdir -p "$d"
python3 - "$d" <<'EOF'
import sys
d = sys.argv[1]
open(d + '/latin1.txt', 'wb').write('latinword caf\u00e9 na\u00efve'.encode('latin-1'))  # 0xE9 at 13, 0xEF
open(d + '/cp1252.txt', 'wb').write('cpword \u201cquoted\u201d'.encode('cp1252'))         # 0x93 at byte 7
open(d + '/u16le.txt', 'wb').write('\ufeffutfsixteenword r\u00e9sum\u00e9 \U0001d11e'.encode('utf-16-le'))
open(d + '/u16be.md', 'wb').write('\ufeff# Bigendian title\n\nbigendword\n'.encode('utf-16-be'))
open(d + '/bom8.md', 'wb').write(b'\xef\xbb\xbf# Bomtitle\n\nbomeightword\n')
open(d + '/bad.jsonl', 'wb').write(b'{"_id":"ok","text":"fine"}\n'
                                   b'{"_id":"lat","text":"jsonlatinword caf\xe9"}\n')  # 0xE9 at byte 38
open(d + '/u16.jsonl', 'wb').write('\ufeff{"_id":"x","text":"never"}\n'.encode('utf-16-le'))
EOF
index "encoding" "$db" "$d"
said "encoding" "latin1.txt: invalid UTF-8 at byte 13 \(2 sequences replaced with U\+FFFD\)"
said "encoding" "cp1252.txt: invalid UTF-8 at byte 7 \(2 sequences"
said "encoding" "bad.jsonl:2: invalid UTF-8 at byte 38 of the line"
said "encoding" "u16.jsonl: skipped \(UTF-16"
field "encoding" files_indexed 6
checked "encoding" "$db" 7
found "encoding: Latin-1" "$db" latinword "latin1.txt"
found "encoding: UTF-16LE" "$db" utfsixteenword "u16le.txt"
found "encoding: UTF-16LE, accents folded" "$db" resume "u16le.txt"
found "encoding: UTF-16BE title" "$db" bigendian "u16be.md"
found "encoding: UTF-8 BOM" "$db" bomtitle '"title":"Bomtitle"'
found "encoding: JSONL repaired" "$db" jsonlatinword '"doc_id":"lat"'
[ "$(hits "$db" never)" = 0 ] && ok || bad "encoding: UTF-16 JSONL indexed"
rm -rf "$d"

section big
# ---- big: 2 GB files (opt-in) ----
if [ "${ODD_BIG:-0}" = 1 ]; then
  d="$tmp/big"; db="$tmp/big.db"; mkdir -p "$d"
  timed() { # timed NAME CMD...: run CMD, print its wall time and peak RSS
    local name=$1; shift
    if [ -x /usr/bin/time ]; then
      /usr/bin/time -v -o "$tmp/time" "$@"; local c=$?
      echo "big: $name: $(grep -E 'Elapsed|Maximum resident' "$tmp/time" | tr -s ' \t' ' ' | paste -sd';')"
      return $c
    fi
    "$@"
  }
  truncate -s 2G "$d/sparse.txt"
  index "big: 2 GB .txt" "$db" "$d/sparse.txt"
  said "big: 2 GB .txt" "sparse.txt: skipped \(2147483648 bytes; files over 1 GiB"
  rm -f "$d/sparse.txt"
  # the largest text file read whole: 1000 MiB, one document
  python3 - "$d/gig.txt" <<'EOF'
import sys
words = ' '.join('g%s' % ''.join('abcdefghij'[int(c)] for c in str(i)) for i in range(5000)) + '\n'
with open(sys.argv[1], 'w') as f:
    f.write('gigstartword\n')
    for _ in range(1000 * 1048576 // len(words)): f.write(words)
    f.write('gigendword\n')
EOF
  timed "1000 MiB .txt" "$plumb" index "$d/gig.txt" --db "$tmp/gig.db" --json >"$tmp/res" 2>"$tmp/stderr" &&
    ok || bad "big: 1000 MiB .txt: exit $?: $(cat "$tmp/stderr")"
  found "big: 1000 MiB .txt, its end" "$tmp/gig.db" gigendword "gig.txt"
  rm -f "$d/gig.txt" "$tmp/gig.db"*
  truncate -s 2G "$d/sparse.jsonl"
  timed "2 GB sparse .jsonl" "$plumb" index "$d/sparse.jsonl" --db "$db" --json >"$tmp/res" 2>"$tmp/stderr" &&
    ok || bad "big: sparse .jsonl: exit $?: $(cat "$tmp/stderr")"
  msgs=$(cat "$tmp/stderr")
  said "big: sparse .jsonl" "sparse.jsonl:1: line longer than 256 MiB; skipped"
  rm -f "$d/sparse.jsonl"
  python3 - "$d/records.jsonl" <<'EOF'
import sys, random
r = random.Random(5)
vocab = [''.join(r.choice('bcdfghjklmnprstvz') + r.choice('aeiou') for _ in range(r.randint(1, 4)))
         for _ in range(50000)]
with open(sys.argv[1], 'w') as f:
    i, size = 0, 0
    while size < 2 << 30:
        line = '{"_id":"b%d","title":"big %d","text":"%s"}\n' % (i, i, ' '.join(r.choices(vocab, k=300)))
        f.write(line); size += len(line); i += 1
    f.write('{"_id":"last","text":"bigfilelastword"}\n')
print(i + 1, file=open(sys.argv[1] + '.n', 'w'))
EOF
  n=$(cat "$d/records.jsonl.n")
  timed "2 GB .jsonl of $n records" "$plumb" index "$d/records.jsonl" --db "$db" --json >"$tmp/res" 2>"$tmp/stderr" &&
    ok || bad "big: records: exit $?: $(cat "$tmp/stderr")"
  res=$(cat "$tmp/res")
  field "big: records" docs_added "$n"
  checked "big: records" "$db" "$n"
  found "big: last record" "$db" bigfilelastword '"doc_id":"last"'
  rm -rf "$d" "$db"*
fi

section end
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
