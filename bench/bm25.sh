#!/usr/bin/env bash
# BM25 benchmarks, with their baselines in the same run:
#   bash bench/bm25.sh [BUILD_DIR] [--synth N]
# Runs bench/beir_bm25 on every BEIR collection under ../shared/data/beir
# (plumb's BM25 stage and whole search, the exhaustive BM25F reference,
# FTS5's bm25() ordering, two threads, and a CPU-scaling baseline), then
# the Xapian baseline when it was built (apt-get install libxapian-dev),
# then, with --synth N, the synthetic N-document collection. JSON lines on
# stdout; exits non-zero if any benchmark's verification fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
synth=0
if [ "${2:-}" = "--synth" ]; then synth=${3:-1000000}; fi
data=../shared/data/beir
if [ ! -d "$data" ]; then echo "bm25.sh: $data not found (skipped)" >&2; exit 0; fi
echo "{\"bench\":\"meta\",\"commit\":\"$(git rev-parse --short HEAD)\",\"date\":\"$(date -u +%FT%TZ)\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\",\"nproc\":$(nproc)}"
for d in "$data"/*/; do
  d=${d%/}
  "$build/bench/beir_bm25" --data "$d" --reps 5
  if [ -x "$build/bench/xapian_bm25" ]; then "$build/bench/xapian_bm25" --data "$d" --reps 5; fi
done
if [ "$synth" -gt 0 ]; then "$build/bench/synth_bm25" --docs "$synth" --queries 2000; fi
