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

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$corio_root"

corio_deps
export CXX="${CXX:-g++}"
build_dir="${BUILD_DIR:-build/demo}"
corio_fresh_build_dir "$build_dir" "$CXX"
corio_extra_args

cmake -S . -B "$build_dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCORIO_BUILD_TESTS=OFF \
  -DCORIO_BUILD_EXAMPLES=ON \
  -DCORIO_BUILD_BENCH=OFF \
  -DCORIO_WARNINGS_AS_ERRORS=OFF \
  "${extra[@]}" >/dev/null
cmake --build "$build_dir" --target crawl --parallel "$(corio_jobs)"

echo "== $build_dir/examples/crawl $*"
exec "$build_dir/examples/crawl" "$@"
