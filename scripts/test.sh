#!/usr/bin/env bash
# Builds corio's tests (and, to keep them compiling, the examples) and runs the
# tests with ctest. Installs missing packages first.
#
#   ./scripts/test.sh [extra ctest arguments, e.g. -R test_task]
#
# Environment:
#   CXX         compiler (default: g++)
#   BUILD_DIR   build directory (default: build/test)
#   BUILD_TYPE  CMAKE_BUILD_TYPE (default: RelWithDebInfo, see below)
#   CMAKE_ARGS  extra configure arguments (word-split), e.g.
#               "-DCORIO_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"
#   JOBS        parallel build/test jobs (default: nproc, at most 2)
#
# The default build is RelWithDebInfo with asserts kept on ("-O2 -g1", no
# NDEBUG): tests run at the optimisation users ship with, where g++ turns
# symmetric transfer into tail calls, while assertions stay. -g1 keeps line
# tables and function names (backtraces, valgrind and sanitizer reports name
# file:line) but not local variables: full -g (variable tracking through
# coroutine frames) costs about a third more compile time (test_stream: 27.5 s
# user with -g, 18.9 s with -g1); for a debugging session configure with
# -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g".
# Unoptimised code is covered by the Debug + ASan/UBSan stage of .ci/run.
# The tests and examples use precompiled headers (CORIO_PCH=ON; CMAKE_ARGS
# "-DCORIO_PCH=OFF" turns them off): Asio and Catch2 are parsed once per build.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$corio_root"

corio_deps
export CXX="${CXX:-g++}"
build_dir="${BUILD_DIR:-build/test}"
build_type="${BUILD_TYPE:-RelWithDebInfo}"
jobs=$(corio_jobs)
corio_fresh_build_dir "$build_dir" "$CXX"
corio_extra_args

echo "== configure $build_dir (CXX=$CXX, $build_type)"
cmake -S . -B "$build_dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" \
  -DCORIO_BUILD_TESTS=ON \
  -DCORIO_BUILD_EXAMPLES=ON \
  -DCORIO_BUILD_BENCH=OFF \
  -DCORIO_WARNINGS_AS_ERRORS=ON \
  -DCORIO_PCH=ON \
  "${extra[@]}"

echo "== build"
cmake --build "$build_dir" --parallel "$jobs"

echo "== test"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@"
