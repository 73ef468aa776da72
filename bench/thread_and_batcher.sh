#!/usr/bin/env bash
# Re-measures the to_thread and micro_batcher targets against their peers in
# one run, and prints each figure, its peer and the verdict:
#
#   - to_thread round trip of an empty function (bench_thread): at least 10x
#     faster than asyncio.to_thread (bench/peers/asyncio_thread.py) and no
#     slower than the hand-written asio::post chain in the same binary; the
#     process CPU time per round trip of both is shown too.
#   - micro_batcher, 1,000,000 gathered submits with max_size 1000
#     (bench_stream): under 100 ns per submit; the gather of a million tasks
#     that suspend once (gather_floor) is shown beside it, and the asyncio
#     twin (bench/peers/asyncio_stream.py) for the ratio.
#
#   bench/thread_and_batcher.sh [--reps=R] [--no-build]
#
# Run it on a quiet machine: the round trip crosses cores, and wall time is
# what it measures. Builds build/bench (Release; benchmarks are always -O2)
# unless --no-build. Environment: CXX (default g++), BENCH_BUILD_DIR,
# PYTHON (default /usr/bin/python3: the Debian interpreter).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build/bench}
python=${PYTHON:-/usr/bin/python3}
reps=5
do_build=1
for arg in "$@"; do
  case "$arg" in
    --reps=*) reps=${arg#--reps=} ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "thread_and_batcher.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

if (( do_build )); then
  gen=()
  if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then gen=(-G Ninja); fi
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DCORIO_BUILD_BENCH=ON \
    -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF -DCORIO_INSTALL=OFF >/dev/null
  cmake --build "$build" --target bench_thread bench_stream -j "$(nproc)"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "# $(date -u '+%F %T UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/bench_thread" to_thread_roundtrip --reps="$reps" | tee "$out/thread.txt"
"$python" "$root/bench/peers/asyncio_thread.py" --reps "$reps" | tee "$out/asyncio_thread.txt"
"$build/bench/bench_stream" micro_batcher gather_floor --reps="$reps" | tee "$out/stream.txt"
"$python" "$root/bench/peers/asyncio_stream.py" --reps 3 | grep micro_batcher | tee "$out/asyncio_stream.txt" || true

# RESULT <workload> <impl> ns_per_op <median> ...
get() { awk -v w="$2" -v i="$3" '$1 == "RESULT" && $2 == w && $3 == i { print $5 }' "$out/$1"; }
c=$(get thread.txt to_thread_roundtrip corio)
a=$(get thread.txt to_thread_roundtrip asio)
c_cpu=$(get thread.txt to_thread_roundtrip_cpu corio)
a_cpu=$(get thread.txt to_thread_roundtrip_cpu asio)
p=$(get asyncio_thread.txt to_thread_roundtrip asyncio)
m=$(get stream.txt micro_batcher corio)
g=$(get stream.txt gather_floor corio)
pm=$(get asyncio_stream.txt micro_batcher asyncio)
echo
echo "# ---- targets (medians of $reps; same run) ----"
awk -v c="$c" -v a="$a" -v p="$p" -v cc="$c_cpu" -v ac="$a_cpu" -v m="$m" -v g="$g" -v pm="$pm" 'BEGIN {
  printf "to_thread round trip: corio %.0f ns, hand-written asio::post chain %.0f ns (%.2fx of corio), asyncio.to_thread %.0f ns (%.1fx of corio)\n", c, a, a / c, p, p / c;
  printf "  process CPU per round trip: corio %.0f ns, asio chain %.0f ns\n", cc, ac;
  printf "  >= 10x asyncio: %s; no slower than the asio chain: %s\n", (p / c >= 10 ? "met" : "NOT met"), (c <= a ? "met" : "NOT met");
  printf "micro_batcher: %.1f ns per submit (gather floor %.1f ns, batcher share %.1f ns)", m, g, m - g;
  if (pm != "") printf ", asyncio %.0f ns (%.0fx)", pm, pm / m;
  printf "\n  < 100 ns per submit: %s\n", (m < 100 ? "met" : "NOT met");
}'
