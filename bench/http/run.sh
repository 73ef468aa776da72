#!/usr/bin/env bash
# bench/http/run.sh: HTTP client throughput against a local nginx, in one run.
#
#   bench/http/run.sh [--pages=N] [--reps=R] [--python-reps=P] [--no-build] [--serve]
#
# Starts nginx (Debian nginx-light; 1 worker, keep-alive, access log off) on a
# free 127.0.0.1 port, with its config and a docroot of 5,000 files of
# 0.5-32 KiB (sizes fixed by a seed) in a temporary directory, and stops it
# and removes the directory at the end, whatever happens. Then it measures,
# each R times (default 3; the Python peers P times, default 1: httpx takes
# minutes; the best pages/s is kept, with that run's latencies):
#   wrk          1 thread, 64 connections, 5 s (the machine's ceiling)
#   curl_multi   a plain C program on libcurl's multi interface, 64 in flight,
#                dropping the bodies (libcurl's own ceiling)
#   curl_socket  the same program on libcurl's multi-socket API (an epoll set
#                and libcurl's timer, as an event loop must drive libcurl; the
#                ceiling of any client on an event loop, corio's included)
#   curl_keep    the first program keeping each body in memory until its page
#                is done (one allocation of the announced length, one copy per
#                chunk), as a client that returns pages must
#   corio        examples/fetch_with_limit: semaphore(64) + gather on http::client
#   aiohttp      the same pattern in Python (asyncio + aiohttp)
#   httpx        the same pattern in Python (asyncio + httpx.AsyncClient)
# The clients fetch N pages (default 20,000) round-robin over the files, and
# it prints pages/s, p50/p99 latency and the ratios corio/curl_multi,
# corio/curl_socket, corio/curl_keep, corio/aiohttp, corio/httpx. The native
# clients' repetitions are interleaved (wrk, curl, curl_socket, curl_keep,
# corio, then again), so a machine whose speed drifts during the run favours
# none of them; each row is the best of its runs, with that run's latencies,
# and the median pages/s of its runs is printed next to it. Python is
# /usr/bin/python3 (Debian's python3-aiohttp and python3-httpx). corio is
# built -O2 in build/bench-http (CXX picks the compiler); --no-build reuses it.
# --serve only starts nginx, prints the URL prefix and waits (Ctrl-C stops
# it): for profiling a client by hand
# (valgrind --tool=callgrind build/.../fetch_with_limit PREFIX N 64 5000).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/bench/http"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"  # generator
build="${BENCH_BUILD_DIR:-$root/build/bench-http}"
pages=20000
reps=3
py_reps=1
do_build=1
serve=0
for arg in "$@"; do
  case "$arg" in
    --pages=*) pages="${arg#--pages=}" ;;
    --reps=*) reps="${arg#--reps=}" ;;
    --python-reps=*) py_reps="${arg#--python-reps=}" ;;
    --no-build) do_build=0 ;;
    --serve) serve=1; do_build=0 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
python=/usr/bin/python3
conc=64
files=5000

for tool in nginx wrk cc; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
    { echo "run.sh: $tool not found (Debian: nginx-light wrk gcc)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
# shellcheck source=bench/http/nginx.sh
source "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"

# ------------------------------------------------------------------ build ---
if (( do_build )); then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=ON \
    -DCORIO_BUILD_BENCH=OFF -DCORIO_INSTALL=OFF ${CXX:+-DCMAKE_CXX_COMPILER=$CXX} >/dev/null
  cmake --build "$build" --target fetch_with_limit -j1 >/dev/null
  mkdir -p "$build/bench-http"
  cc -O2 -o "$build/bench-http/curl_multi" "$here/curl_multi.c" $(pkg-config --cflags --libs libcurl 2>/dev/null || echo -lcurl)
fi
corio_bin="$build/examples/fetch_with_limit"
curl_bin="$build/bench-http/curl_multi"

# ------------------------------------------------------------------ nginx ---
tmp=$(mktemp -d /tmp/corio-bench-http.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  if [[ -f "$tmp/nginx.pid" ]]; then
    kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [[ -f "$tmp/nginx.pid" ]] || break; sleep 0.1; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

nginx_serve "$tmp" "$files"
prefix="http://127.0.0.1:$port/f"
if (( serve )); then
  echo "serving $files files: $prefix<0..$((files - 1))> (Ctrl-C stops nginx)"
  while sleep 3600; do :; done
fi

# ---------------------------------------------------------------- measure ---
cat > "$tmp/rotate.lua" <<LUA
local i = 0
request = function()
  i = (i + 1) % $files
  return wrk.format("GET", "/f" .. i)
end
LUA

# wrk's latency "1.23ms" / "456.00us" / "1.01s" -> ms
to_ms() { "$python" -c "import sys; v=sys.argv[1]; u=v.lstrip('0123456789.'); x=float(v[:len(v)-len(u)]); print(x*{'us':1e-3,'ms':1,'s':1e3}[u])" "$1"; }

run_wrk() {
  local out
  out=$(wrk -t1 -c$conc -d5s --latency -s "$tmp/rotate.lua" "http://127.0.0.1:$port/")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  echo "pages_per_s=${rps%.*} p50_ms=$p50 p99_ms=$p99"
}
run_curl() { "$curl_bin" "$prefix" "$pages" "$conc" "$files"; }
run_curl_socket() { "$curl_bin" "$prefix" "$pages" "$conc" "$files" socket; }
run_curl_keep() { "$curl_bin" "$prefix" "$pages" "$conc" "$files" keep; }
run_corio() { "$corio_bin" "$prefix" "$pages" "$conc" "$files"; }
run_aiohttp() { "$python" "$here/fetch_with_limit_aiohttp.py" "$prefix" "$pages" "$conc" "$files"; }
run_httpx() { "$python" "$here/fetch_with_limit_httpx.py" "$prefix" "$pages" "$conc" "$files"; }

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
declare -A best rates
measure() {  # measure NAME: one run, kept when it is NAME's best so far
  local line
  line=$("run_$1")
  echo "$1: $line" >&2
  rates[$1]="${rates[$1]:-} $(field pages_per_s "$line")"
  if [[ -z "${best[$1]:-}" ]] || (( $(field pages_per_s "$line") > $(field pages_per_s "${best[$1]}") )); then
    best[$1]=$line
  fi
}
for ((r = 0; r < reps; r++)); do
  for name in wrk curl curl_socket curl_keep corio; do measure "$name"; done
done
for name in aiohttp httpx; do
  for ((r = 0; r < py_reps; r++)); do measure "$name"; done
done

# ----------------------------------------------------------------- report ---
echo
echo "HTTP GET of $pages pages (0.5-32 KiB, $files files) from nginx on 127.0.0.1, $conc in flight; best of $reps"
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-12s %10s %9s %9s %10s\n' client pages/s p50_ms p99_ms median
for name in wrk curl curl_socket curl_keep corio aiohttp httpx; do
  l=${best[$name]}
  printf '%-12s %10s %9.3f %9.3f %10s\n' "$name" "$(field pages_per_s "$l")" "$(field p50_ms "$l")" "$(field p99_ms "$l")" \
    "$(median "${rates[$name]}")"
done
ratio() { "$python" -c "print(f'{$1/$2:.2f}')"; }
c=$(field pages_per_s "${best[corio]}")
echo
echo "corio / curl_multi  = $(ratio "$c" "$(field pages_per_s "${best[curl]}")")x   (target >= 0.9)"
echo "corio / curl_socket = $(ratio "$c" "$(field pages_per_s "${best[curl_socket]}")")x   (libcurl on the multi-socket API)"
echo "corio / curl_keep   = $(ratio "$c" "$(field pages_per_s "${best[curl_keep]}")")x   (libcurl keeping the bodies too)"
echo "medians: corio / curl_multi = $(ratio "$(median "${rates[corio]}")" "$(median "${rates[curl]}")")x," \
  "corio / curl_socket = $(ratio "$(median "${rates[corio]}")" "$(median "${rates[curl_socket]}")")x"
echo "corio / aiohttp     = $(ratio "$c" "$(field pages_per_s "${best[aiohttp]}")")x   (target >= 4)"
echo "corio / httpx       = $(ratio "$c" "$(field pages_per_s "${best[httpx]}")")x"
echo "corio / wrk         = $(ratio "$c" "$(field pages_per_s "${best[wrk]}")")x"
echo "p99 corio / aiohttp = $(ratio "$(field p99_ms "${best[corio]}")" "$(field p99_ms "${best[aiohttp]}")")   (target < 1)"
