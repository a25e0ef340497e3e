#!/usr/bin/env bash
# The demo: installs dependencies, builds plumb, indexes the bundled sample
# corpus (data/sample) and runs searches. Offline; no model download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target plumb_cli >/dev/null
db=build/sample.db
./build/plumb index data/sample --db "$db" --prune
./build/plumb stats --db "$db"
for q in "${@:-how does BM25 length normalization work}"; do
  echo
  echo "\$ plumb search \"$q\" -k 5"
  ./build/plumb search "$q" -k 5 --db "$db"
done
