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
# every library file but the FAISS shim (ann.c builds its no-FAISS
# variant); the ISA kernels with their own flags, as CMakeLists.txt does
srcs=$(ls src/*.c | grep -v -e kern_avx2.c -e kern_avx512.c)
cflags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fopenmp
        -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -Iinclude -I$b/gen"
mkdir -p "$b/obj"
objs=""
for f in $srcs src/kern_avx2.c src/kern_avx512.c; do
  o="$b/obj/$(basename "$f" .c).o"
  extra=""
  case "$f" in
    *kern_avx2.c) extra="-mavx2 -mfma -mpopcnt" ;;
    *kern_avx512.c) extra="-mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mpopcnt" ;;
  esac
  # shellcheck disable=SC2086
  clang $cflags $extra -c "$f" -o "$o"
  objs="$objs $o"
done
for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -Iinclude -I"$b/gen" $objs \
    "tests/fuzz/fuzz_$t.c" -lsqlite3 -lcjson -lstemmer -lutf8proc -lcurl -lopenblas -lm \
    -lpthread -o "$b/fuzz_$t"
  mkdir -p "$b/corpus/$t" "tests/fuzz/crashes/$t"
  echo "== $t ($secs s)"
  "./$b/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 \
    -artifact_prefix="tests/fuzz/crashes/$t/" "$b/corpus/$t" "tests/fuzz/seeds/$t" 2>&1 |
    grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|Done|ERROR|SUMMARY|corp:' | tail -6
done
