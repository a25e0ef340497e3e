#!/usr/bin/env bash
# Fuzz the parsers and the index with libFuzzer (clang), each target for
# a bounded time:  bash tests/fuzz/run.sh [SECONDS] [TARGET...]
# Targets: tok parse jsonl chunk evalfiles index bpe sse (default: all), 60 s each.
# Crashes land in tests/fuzz/crashes/TARGET/ (commit them: the
# fuzz_regress_TARGET tests replay them in every ctest run); the growing
# corpus stays in build-fuzz/corpus/TARGET. Prints libFuzzer's final stats
# (executions/s, corpus size) per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(tok parse jsonl chunk evalfiles index bpe sse)
command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install clang libclang-rt-14-dev)"; exit 2; }
b=build-fuzz; mkdir -p "$b/gen"
cmake -DIN=index/schema.sql -DOUT="$b/gen/schema_sql.h" -DNAME=schema_sql -P cmake/embed.cmake
srcs="src/err.c src/buf.c src/hash.c src/utf8.c src/json.c src/tok.c src/parse.c src/chunk.c
      src/store.c src/lex.c src/bm25.c src/snippet.c src/ingest.c src/api.c src/check.c
      src/eval.c src/eval_report.c src/bpe.c src/sse.c"
for t in "${targets[@]}"; do
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -Iinclude -I"$b/gen" $srcs \
    "tests/fuzz/fuzz_$t.c" -lsqlite3 -lcjson -lstemmer -lutf8proc -lm -lpthread -o "$b/fuzz_$t"
  mkdir -p "$b/corpus/$t" "tests/fuzz/crashes/$t"
  echo "== $t ($secs s)"
  "./$b/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 \
    -artifact_prefix="tests/fuzz/crashes/$t/" "$b/corpus/$t" "tests/fuzz/seeds/$t" 2>&1 |
    grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|Done|ERROR|SUMMARY|corp:' | tail -6
done
