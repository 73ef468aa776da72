#!/usr/bin/env bash
# Builds and runs corio's core benchmarks and prints one combined table:
# corio, raw Asio and Python asyncio ns/op with the ratios Asio/corio and
# asyncio/corio, heap allocations per op, RSS per live task, and operator new
# calls per spawn+join.
#
#   bench/run.sh [--quick] [--reps=R] [--skip-asio-rss] [--asio-rss-n=K]
#                [--asio-reactor] [--no-build] [--no-python] [filter ...]
#
#   --quick          every N divided by 10 (smoke run, ~1 minute)
#   --reps=R         repetitions per workload (default 5; the median is reported)
#   --skip-asio-rss  skip the 1,000,000 live raw-Asio coroutines (~1.1 GiB)
#   --asio-rss-n=K   cap that workload at K coroutines instead
#   --asio-reactor   give each raw-Asio io_context an idle timer (so it pays
#                    epoll_wait per turn, like corio's loop and real programs)
#   --no-build       use the existing build/bench/bench/bench_core
#   --no-python      skip the asyncio peer
#   filter           substring of "<workload>:<impl>" (bench_core) or of the
#                    workload name (asyncio peer), e.g. `spawn`, `await_ready`
#
# Environment: CXX (default g++) picks the compiler; BENCH_BUILD_DIR overrides
# build/bench; PYTHON (default python3) the interpreter for the peer.
# Raw outputs are kept in <build dir>/results/ (bench_core.txt, asyncio_core.txt,
# machine.txt, report.txt).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
build=${BENCH_BUILD_DIR:-$root/build/bench}
cxx=${CXX:-g++}
python=${PYTHON:-python3}

core_args=()
py_args=()
filters=()
do_build=1
do_python=1
for arg in "$@"; do
  case "$arg" in
    --quick) core_args+=(--quick); py_args+=(--quick) ;;
    --reps=*) core_args+=("$arg"); py_args+=(--reps "${arg#--reps=}") ;;
    --skip-asio-rss|--asio-rss-n=*|--asio-reactor) core_args+=("$arg") ;;
    --no-build) do_build=0 ;;
    --no-python) do_python=0 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option '$arg'" >&2; exit 2 ;;
    *) filters+=("$arg") ;;
  esac
done

# ------------------------------------------------------------------ build ---
exe=$build/bench/bench_core
if (( do_build )); then
  corio_deps
  if [[ -f $root/CMakeLists.txt ]]; then
    # A build dir configured with another compiler or generator starts afresh.
    corio_fresh_build_dir "$build" "$cxx" cache-only
    cmake -S "$root" -B "$build" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_COMPILER="$cxx" \
      -DCORIO_BUILD_BENCH=ON -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF \
      -DCORIO_INSTALL=OFF >/dev/null
    # Every bench program, not only bench_core: docs/performance.md has their
    # tables run from this directory, and a stale one would report old code.
    cmake --build "$build" -j "$(nproc)"
  else
    # No top-level build yet: compile directly, with the flags bench/CMakeLists.txt uses.
    mkdir -p "$build/bench"
    flags=(-std=c++20 -O2 -Wall -Wextra -Wpedantic -Werror)
    if "$cxx" --version | grep -qi clang; then
      flags+=(-DASIO_HAS_CO_AWAIT=1)
    else
      flags+=(-Wno-mismatched-new-delete)
    fi
    "$cxx" "${flags[@]}" -I"$root/include" "$root/bench/bench_core.cpp" -o "$exe" -lfmt -pthread
  fi
fi
[[ -x $exe ]] || { echo "run.sh: $exe not found (build it, or drop --no-build)" >&2; exit 1; }

# ---------------------------------------------------------------- machine ---
out=$build/results
mkdir -p "$out"
compiler_id=$(grep -m1 '^CMAKE_CXX_COMPILER:' "$build/CMakeCache.txt" 2>/dev/null | cut -d= -f2- || true)
{
  echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host:     $(uname -srm)"
  echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores online)"
  echo "memory:   $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "compiler: $("${compiler_id:-$cxx}" --version | head -n1)"
  echo "asio:     $(awk '/define ASIO_VERSION / {v=$3; printf "%d.%d.%d", v/100000, v/100%1000, v%100}' /usr/include/asio/version.hpp 2>/dev/null || echo '?')"
  echo "python:   $("$python" --version 2>&1)"
  echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
  echo "args:     ${core_args[*]:-} ${filters[*]:-}"
} | tee "$out/machine.txt"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  echo "warning: the machine is busy (load $load1 on $(nproc) cores): absolute numbers will be noisy;" \
       "the same-run ratios less so" | tee -a "$out/machine.txt"
fi
echo

# -------------------------------------------------------------------- run ---
echo "== bench_core"
"$exe" "${core_args[@]}" "${filters[@]}" | tee "$out/bench_core.txt" | grep -v '^RESULT '
echo

files=("$out/bench_core.txt")
if (( do_python )); then
  py_filters=()
  for f in "${filters[@]}"; do py_filters+=("${f%%:*}"); done   # "spawn:corio" -> "spawn"
  run_py=1
  if (( ${#filters[@]} )); then
    run_py=0
    for f in "${filters[@]}"; do [[ $f == *:asyncio* || $f != *:* ]] && run_py=1; done
  fi
  if (( run_py )); then
    echo "== asyncio peer"
    "$python" "$root/bench/peers/asyncio_core.py" "${py_args[@]}" "${py_filters[@]}" |
      tee "$out/asyncio_core.txt" | grep -v '^RESULT '
    echo
    files+=("$out/asyncio_core.txt")
  fi
fi

echo "== combined"
echo
"$python" "$root/bench/report.py" "${files[@]}" | tee "$out/report.txt"
echo "raw outputs: $out"
