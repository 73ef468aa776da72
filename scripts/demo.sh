#!/usr/bin/env bash
# Builds and runs corio's flagship demo, examples/crawl.cpp: an embedded web
# site on 127.0.0.1 crawled with corio::http under a concurrency limit, a rate
# limit, timeouts and retries, ending with a summary table (`--help` lists its
# options). Installs missing packages first.
#
#   ./scripts/demo.sh [arguments for crawl, e.g. --pages 5000 --concurrency 64]
#
# Environment: CXX (default g++), BUILD_DIR (default build/demo), CMAKE_ARGS.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

deps_args=()
[[ "${CXX:-g++}" == *clang* ]] && deps_args+=(--clang)
"$root/scripts/deps.sh" "${deps_args[@]}"

export CXX="${CXX:-g++}"
build_dir="${BUILD_DIR:-build/demo}"

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [[ -f "$build_dir/CMakeCache.txt" ]] &&
   ! grep -q "^CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}\$" "$build_dir/CMakeCache.txt"; then
  rm -rf "$build_dir"
fi

# shellcheck disable=SC2206
extra=(${CMAKE_ARGS:-})

cmake -S . -B "$build_dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCORIO_BUILD_TESTS=OFF \
  -DCORIO_BUILD_EXAMPLES=ON \
  -DCORIO_BUILD_BENCH=OFF \
  -DCORIO_WARNINGS_AS_ERRORS=OFF \
  "${extra[@]}" >/dev/null
cmake --build "$build_dir" --target crawl --parallel 2

echo "== $build_dir/examples/crawl $*"
exec "$build_dir/examples/crawl" "$@"
