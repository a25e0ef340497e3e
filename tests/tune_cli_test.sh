#!/usr/bin/env bash
#
# tune_cli_test.sh -- `plumb tune` end to end on a generated collection.
#
# Usage: bash tests/tune_cli_test.sh PATH_TO_PLUMB
#
# A small BEIR-layout collection is generated (python3, fixed seed): 240
# documents on 12 topics, queries made of a topic's words, each judged
# relevant to a few documents of its topic; train and test splits are
# disjoint. Checks:
#   - a file named test.tsv is refused for training (exit 2) unless --force;
#   - with vectors, alpha is learned from {0.3, 0.5, 0.7}; without
#     vectors (an index built with --no-embed) it is not searched (null);
#   - the training objective of the tuned values is never below the
#     shipped weights' at the index's own settings (which are grid points,
#     and the ascent starts from the shipped weights);
#   - --store writes what was learned (read back with plumb config; the
#     index's values are first set off the grid, so only a write of the
#     learned ones passes) and --no-store writes nothing;
#   - --dump-features writes a "# query" line per judged query and one
#     LETOR line per candidate: 13 features, the split named, judgments
#     equal to the qrels' for that document, as many training and held-out
#     query lines as there are judged queries.
# Prints "N passed, M failed".

set -u
plumb=${1:?usage: tune_cli_test.sh PLUMB}
case $plumb in /*) ;; *) plumb=$PWD/$plumb ;; esac
command -v python3 >/dev/null || { echo "tune_cli_test: python3 is required" >&2; exit 2; }
T=$(mktemp -d /tmp/plumb-tune-cli.XXXXXX) || exit 2
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 2
unset PLUMB_DB NO_COLOR
export LC_ALL=C
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
run() { "$plumb" "$@" >"$T/out" 2>"$T/err" </dev/null; rc=$?; }
py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/out" "$1"; }
expect() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$3', want '$2'"; fi; }

mkdir -p data/qrels
python3 - <<'EOF'
import json, random
r = random.Random(7)
common = ["study", "result", "effect", "patient", "level", "increase", "method", "data",
          "analysis", "group", "report", "change", "factor", "model", "rate", "test"]
topics = [["t%dw%d" % (t, i) for i in range(10)] for t in range(12)]
with open("data/corpus.jsonl", "w") as f:
    for d in range(240):
        t = d % 12
        words = [r.choice(topics[t]) for _ in range(r.randint(6, 20))]
        words += [r.choice(topics[r.randrange(12)]) for _ in range(r.randint(2, 8))]
        words += [r.choice(common) for _ in range(r.randint(10, 30))]
        r.shuffle(words)
        f.write(json.dumps({"_id": "d%d" % d, "title": " ".join(words[:4]),
                            "text": " ".join(words[4:])}) + "\n")
with open("data/queries.jsonl", "w") as f, open("data/qrels/train.tsv", "w") as tr, \
        open("data/qrels/test.tsv", "w") as te:
    tr.write("query-id\tcorpus-id\tscore\n")
    te.write("query-id\tcorpus-id\tscore\n")
    for q in range(60):
        t = q % 12
        f.write(json.dumps({"_id": "q%d" % q,
                            "text": " ".join(r.sample(topics[t], 3) + [r.choice(common)])}) + "\n")
        out = tr if q < 40 else te
        for d in r.sample([d for d in range(240) if d % 12 == t], 4):
            out.write("q%d\td%d\t%d\n" % (q, d, r.choice([1, 2])))
EOF

# indexes: one with vectors, one without
run eval data --db v.db --stages bm25 --threads 1
expect "index with vectors" 0 "$rc"
run index --db n.db --no-embed data/corpus.jsonl
expect "index without vectors" 0 "$rc"

# test.tsv is refused for training
run tune --db v.db --queries data/queries.jsonl --qrels data/qrels/test.tsv --no-store
expect "test.tsv refused" 2 "$rc"
grep -q "test" "$T/err" && ok || bad "the refusal names the file: $(cat "$T/err")"

# with vectors: alpha learned, tuned >= shipped on train, stored
run tune --db v.db --data data --json --dump-features "$T/f.letor"
expect "tune with vectors" 0 "$rc"
expect "alpha from the grid" True "$(py 'd["alpha"] in (0.3, 0.5, 0.7)')"
expect "tuned >= shipped on train" True \
    "$(py 'd["sets"][0]["train"]["tuned"] >= d["sets"][0]["train"]["shipped"] - 1e-12')"
expect "trained on train" train "$(py 'd["trained_on"]')"
expect "stored" True "$(py 'd["stored"]')"
alpha=$(py 'd["alpha"]')
echo "learned alpha $alpha k1 $(py 'd["k1"]') b $(py 'd["b"]')"
k1=$(py 'd["k1"]')
run config --db v.db alpha
expect "alpha stored" "$alpha" "$(python3 -c "print(float('$(cat "$T/out" | tr -d '[:space:]' | sed 's/.*=//')'))" 2>/dev/null)"
run config --db v.db bm25_k1
expect "k1 stored" "$k1" "$(python3 -c "print(float('$(cat "$T/out" | tr -d '[:space:]' | sed 's/.*=//')'))" 2>/dev/null)"

# --store replaces values that are off the grid with the learned ones
cp v.db s.db
run config --db s.db alpha 0.6
expect "config alpha 0.6" 0 "$rc"
run config --db s.db bm25_k1 1.5
expect "config k1 1.5" 0 "$rc"
run tune --db s.db --data data --json
expect "tune --store" 0 "$rc"
alpha=$(py 'd["alpha"]')
k1=$(py 'd["k1"]')
run config --db s.db alpha
expect "learned alpha stored" "$alpha" "$(python3 -c "print(float('$(tr -d '[:space:]' <"$T/out" | sed 's/.*=//')'))" 2>/dev/null)"
run config --db s.db bm25_k1
expect "learned k1 stored" "$k1" "$(python3 -c "print(float('$(tr -d '[:space:]' <"$T/out" | sed 's/.*=//')'))" 2>/dev/null)"

# trees: kept only when cross-validation says so; what stats shows is what tune kept
expect "trees count" True "$(cd "$T" && run tune --db s.db --data data --json >/dev/null; py 'isinstance(d["trees"], int) and d["trees"] >= 0 and d["cv_linear"] is not None and d["cv_shipped"] is not None and (d["model"] == "trees") == (d["trees"] > 0)')"
ntrees=$(py 'd["trees"]')
run stats --db s.db --json
expect "stats shows the trees kept" "$ntrees" "$(py 'd["rerank"]["trees"]')"
run tune --db s.db --data data --json --no-trees
expect "--no-trees" "0 None True" "$(py 'd["trees"], d["cv_trees"], d["model"] in ("shipped", "linear")' | tr -d "(),'")"
run stats --db s.db --json
expect "--no-trees clears stored trees" 0 "$(py 'd["rerank"]["trees"]')"

# one training query: nothing to cross-validate, the learned weights are kept (tune used to fail)
head -1 data/qrels/train.tsv >data/qrels/one.tsv
grep -m1 "^q0	" data/qrels/train.tsv >>data/qrels/one.tsv
run tune --db n.db --queries data/queries.jsonl --qrels data/qrels/one.tsv --no-store --no-grid --json
expect "tune on one training query" 0 "$rc"
expect "one query: linear, not cross-validated" "linear None 0" \
    "$(py 'd["model"], d["cv_linear"], d["trees"]' | tr -d "(),'")"

# the feature dump
python3 - "$T/f.letor" data/qrels/train.tsv data/qrels/test.tsv >"$T/letor.out" <<'EOF'
import sys
path, trf, tef = sys.argv[1:4]
def qrels(p):
    m = {}
    for i, l in enumerate(open(p)):
        if i == 0: continue
        q, d, s = l.split()
        m[(q, d)] = int(s)
    return m
tr, te = qrels(trf), qrels(tef)
problems, qids = [], {"train": set(), "heldout": set()}
n = 0
headers = {"train": set(), "heldout": set()}
for line in open(path):
    if line.startswith("# query "):
        meta = dict(x.split("=", 1) for x in line.split()[3:])
        headers[meta["split"]].add(line.split()[2].split(":", 1)[1].split("_", 1)[1])
        continue
    n += 1
    body, _, comment = line.rstrip("\n").partition(" # ")
    parts = body.split()
    rel, qid, feats = int(parts[0]), parts[1], parts[2:]
    meta = dict(x.split("=", 1) for x in comment.split())
    if len(feats) != 13 or [f.split(":")[0] for f in feats] != [str(i) for i in range(1, 14)]:
        problems.append("features: " + line)
    for f in feats:
        v = float(f.split(":")[1])
        if not (-1e-9 <= v <= 1 + 1e-9) and f.split(":")[0] not in ("9",):
            problems.append("not normalised: " + line)
    q = qid.split(":", 1)[1].split("_", 1)[1]
    judged = tr if meta["split"] == "train" else te
    if judged.get((q, meta["doc"]), 0) != rel:
        problems.append("judgment: " + line)
    qids[meta["split"]].add(q)
if not qids["train"] <= headers["train"] or not qids["heldout"] <= headers["heldout"]:
    problems.append("a query with candidates has no '# query' line")
print(n, len(headers["train"]), len(headers["heldout"]), len(problems))
for p in problems[:5]: print(p, file=sys.stderr)
EOF
read -r nlines ntrain nheld nprob <"$T/letor.out"
[ "${nlines:-0}" -gt 400 ] && ok || bad "dump lines: $nlines"
expect "dump: training queries" 40 "$ntrain"
expect "dump: held-out queries" 20 "$nheld"
expect "dump: problems" 0 "$nprob"

# --no-store writes nothing
run config --db v.db alpha
before=$(cat "$T/out")
run tune --db v.db --data data --no-store --no-grid --json
expect "tune --no-store" 0 "$rc"
expect "no grid: alpha not searched" None "$(py 'd["alpha"]')"
run config --db v.db alpha
expect "--no-store left alpha" "$before" "$(cat "$T/out")"

# without vectors: alpha is not searched
run tune --db n.db --data data --json --no-store
expect "tune without vectors" 0 "$rc"
expect "no vectors: alpha not searched" None "$(py 'd["alpha"]')"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
