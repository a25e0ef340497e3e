#!/usr/bin/env bash
#
# quality.sh -- retrieval quality of every stage on every BEIR collection at
# hand, through `plumb eval`, and the table in bench/RESULTS.md.
#
# Usage: bash bench/quality.sh [--plumb PATH] [--data DIR] [--split NAME]
#                              [--no-update] [-- EXTRA plumb eval OPTIONS]
#
#   --plumb PATH   the plumb tool (default: $PLUMB, else build/plumb, else the
#                  newest build*/plumb under the repository)
#   --data DIR     a directory of BEIR-layout collections (default
#                  ../shared/data/beir beside the repository)
#   --split NAME   qrels split (default test)
#   --no-update    print the table, leave bench/RESULTS.md alone
#
# Every collection is indexed afresh (a temporary index cache), so the
# times include indexing. Each `plumb eval --json` report is kept in
# $OUT (default a temporary directory, printed at the end) and checked: it
# must parse, evaluate at least one query, give every metric in [0, 1],
# and, when a parallel timing pass ran, return the same rankings as the
# single-threaded one. A failed check fails the script: a fast wrong answer
# never counts. The section "## Quality (plumb eval)" of bench/RESULTS.md
# is replaced (or appended); other sections are left as they are.
#
# Exits 0 when every collection passed, 1 when one failed, 2 on usage
# errors, and 0 with a message when the data directory is absent (skip).
# Needs python3 (JSON and the Markdown edit).

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLUMB=${PLUMB:-}
DATA=$ROOT/../shared/data/beir
SPLIT=test
UPDATE=1
EXTRA=()

while [ $# -gt 0 ]; do
    case $1 in
    --plumb) PLUMB=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --split) SPLIT=$2; shift 2 ;;
    --no-update) UPDATE=0; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quality.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

if [ -z "$PLUMB" ]; then
    if [ -x "$ROOT/build/plumb" ]; then
        PLUMB=$ROOT/build/plumb
    else
        PLUMB=$(ls -t "$ROOT"/build*/plumb 2>/dev/null | head -n 1)
    fi
fi
if [ -z "$PLUMB" ] || [ ! -x "$PLUMB" ]; then
    echo "quality.sh: no plumb binary; build it (cmake --build build) or pass --plumb" >&2
    exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "quality.sh: python3 is required" >&2
    exit 2
fi
if [ ! -d "$DATA" ]; then
    echo "quality.sh: no data directory '$DATA' (skipped)"
    exit 0
fi
DATA=$(cd "$DATA" && pwd)

OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/plumb-quality.XXXXXX")}
mkdir -p "$OUT"
CACHE=$(mktemp -d "${TMPDIR:-/tmp}/plumb-quality-cache.XXXXXX")
trap 'rm -rf "$CACHE"' EXIT

COMMIT=$(git -C "$ROOT" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
export PLUMB_COMMIT=$COMMIT

fail=0
ran=()
for dir in "$DATA"/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    if [ ! -f "$dir/corpus.jsonl" ] || [ ! -f "$dir/queries.jsonl" ] ||
        [ ! -f "$dir/qrels/$SPLIT.tsv" ]; then
        echo "quality.sh: $name: no corpus.jsonl, queries.jsonl or qrels/$SPLIT.tsv (skipped)"
        continue
    fi
    echo "quality.sh: $name ..." >&2
    start=$(date +%s.%N)
    if ! XDG_CACHE_HOME=$CACHE "$PLUMB" eval "$dir" --split "$SPLIT" --json -q \
        --run-dir "$OUT/$name-runs" "${EXTRA[@]}" >"$OUT/$name.json" 2>"$OUT/$name.err"; then
        echo "quality.sh: $name: plumb eval failed:" >&2
        cat "$OUT/$name.err" >&2
        fail=1
        continue
    fi
    end=$(date +%s.%N)
    python3 - "$OUT/$name.json" "$start" "$end" <<'EOF' || fail=1
import json, sys
path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
d = json.load(open(path))
d["wall_s"] = end - start
bad = []
if d["counts"]["evaluated"] < 1:
    bad.append("no query evaluated")
for name, st in d["stages"].items():
    for m, v in st["metrics"].items():
        if not (isinstance(v, (int, float)) and 0 <= v <= 1):
            bad.append("%s %s = %r" % (name, m, v))
    lat = st.get("latency", {})
    if lat.get("threads", 0) and not lat.get("parallel_identical", False):
        bad.append("%s: the parallel pass returned other rankings" % name)
json.dump(d, open(path, "w"))
if bad:
    print("quality.sh: %s: verification failed: %s" % (path, "; ".join(bad)), file=sys.stderr)
    sys.exit(1)
EOF
    ran+=("$name")
done

if [ ${#ran[@]} -eq 0 ]; then
    echo "quality.sh: no collection found under $DATA (skipped)"
    exit $fail
fi

# The table, printed and (unless --no-update) written into RESULTS.md.
python3 - "$OUT" "$ROOT/bench/RESULTS.md" "$UPDATE" "$COMMIT" "$SPLIT" "${EXTRA[*]:-}" \
    "${ran[@]}" <<'EOF'
import datetime, json, os, sys
out, results, update, commit, split, extra = sys.argv[1:7]
names = sys.argv[7:]
reports = [(n, json.load(open(os.path.join(out, n + ".json")))) for n in names]
metrics = ["ndcg@10", "recall@10", "recall@100", "recall@1000", "mrr@10", "map@100", "p@10"]
heads = ["nDCG@10", "R@10", "R@100", "R@1000", "MRR@10", "MAP@100", "P@10"]
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
cmd = "bash bench/quality.sh" + (" -- " + extra if extra else "")
L = []
L.append("## Quality (plumb eval)")
L.append("")
L.append("Command: `%s` (runs `plumb eval DIR --split %s --json` on every collection under "
         "`../shared/data/beir`, each indexed afresh into a temporary cache, and checks every "
         "report). %s, commit %s." % (cmd, split, date, commit))
L.append("")
L.append("Metrics as trec_eval computes them (`ndcg_cut.10` with linear gains, `recall.k`, "
         "`recip_rank` cut at 10, `map_cut.100`, `P.10`; ties by document id descending), means "
         "over the queries with at least one relevant judgment. A document scores its best "
         "chunk (MaxP); each query ranks 1,000 documents; a hit whose id equals the query id is "
         "dropped (BEIR). Definitions and where they differ from trec_eval's defaults: "
         "`include/plumb.h`, \"Evaluation\".")
L.append("")
L.append("| collection | stage | queries | docs | chunks | " + " | ".join(heads) +
         " | index s | eval s | wall s |")
L.append("|---|---|---|---|---|" + "---|" * len(heads) + "---|---|---|")
for n, d in reports:
    for s, st in d["stages"].items():
        row = [n, s, str(d["counts"]["evaluated"]), "{:,}".format(d["index"]["documents"]),
               "{:,}".format(d["index"]["chunks"])]
        row += ["%.4f" % st["metrics"][m] for m in metrics]
        row += ["%.2f" % d["elapsed_s"]["index"], "%.2f" % d["elapsed_s"]["eval"],
                "%.2f" % d["wall_s"]]
        L.append("| " + " | ".join(row) + " |")
L.append("")
threads = max([st.get("latency", {}).get("threads", 0) for _, d in reports
               for st in d["stages"].values()] + [0])
k = [st["search"].get("k") for _, d in reports for st in d["stages"].values()][0]
L.append("Latency of each stage's search as a user runs it (`plumb_search`, k = %d, chunk texts "
         "and snippets), each query timed alone on one thread; then all queries on %d threads "
         "(same answers checked). \"eval q/s\": the deeper searches that rank 1,000 documents "
         "per query for the metrics. The machine is shared and other jobs may hold a core "
         "while this runs, so the multi-thread column is not yet a clean measure of "
         "scaling." % (k, threads))
L.append("")
L.append("| collection | stage | p50 ms | p95 ms | p99 ms | q/s, 1 thread | q/s, %d threads | "
         "eval q/s |" % threads)
L.append("|---|---|---|---|---|---|---|---|")
for n, d in reports:
    for s, st in d["stages"].items():
        l = st.get("latency", {})
        par = "%.0f" % l["qps_parallel"] if l.get("threads") else "-"
        L.append("| %s | %s | %.2f | %.2f | %.2f | %.0f | %s | %.0f |" % (
            n, s, l.get("p50_ms", 0), l.get("p95_ms", 0), l.get("p99_ms", 0), l.get("qps", 0),
            par, l.get("qps_eval", 0)))
L.append("")
section = "\n".join(L).rstrip("\n") + "\n"
print(section)
if update != "1":
    sys.exit(0)
text = open(results).read() if os.path.exists(results) else "# Benchmark results\n"
lines = text.split("\n")
try:
    i = lines.index("## Quality (plumb eval)")
    j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
    new = "\n".join(lines[:i]) + ("\n" if i else "") + section
    rest = "\n".join(lines[j:])
    if rest.strip():
        new += "\n" + rest
except ValueError:
    new = text.rstrip("\n") + "\n\n" + section
if not new.endswith("\n"):
    new += "\n"
open(results + ".tmp", "w").write(new)
os.replace(results + ".tmp", results)
print("quality.sh: updated %s" % results, file=sys.stderr)
EOF
echo "quality.sh: reports in $OUT" >&2
exit $fail
