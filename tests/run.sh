#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the unit and
# integration tests, and the crash-safety (fault) tests, with ctest.
#   bash tests/run.sh              Release build in build/
#   bash tests/run.sh --sanitize   ASan + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DPLUMB_SANITIZE=ON >/dev/null
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # kill_test's 50 kills take 7-15 minutes under ASan on a loaded 2-core
  # machine (each is followed by a check and a re-run); the Release run
  # keeps the full 50, the sanitized one looks for memory errors in 20
  export PLUMB_KILL_TEST_KILLS=20
else
  dir=build
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" -L 'unit|integration|fault' --output-on-failure -j"$(nproc)"
