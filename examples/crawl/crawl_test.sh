#!/bin/sh
# ctest harness of examples/crawl.cpp.
#   crawl_test.sh bad-option BIN: `--bogus` and `--pages x` exit 2 with a message on stderr.
#   crawl_test.sh summary BIN: a crawl of 600 pages, 16 at a time, exits 0 and
#     prints the summary table, whose measured peak in flight equals the limit.
#   crawl_test.sh sigint BIN: SIGINT in the middle of a long crawl stops it
#     within a few seconds with exit status 130, and the summary table is still
#     printed, with the pages left undone.
set -u
mode="$1"
bin="$2"
[ -x "$bin" ] || { echo "no program: $bin"; exit 1; }
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fail=0
case "$mode" in
  bad-option)
    for args in "--bogus" "--pages x" "--concurrency 0" "--timeout"; do
      # shellcheck disable=SC2086
      "$bin" $args >"$out" 2>"$err"
      rc=$?
      cat "$err"
      [ "$rc" -eq 2 ] || { echo "FAIL: '$args' exited $rc, expected 2"; fail=1; }
      grep -q '^crawl: ' "$err" || { echo "FAIL: '$args' printed no message on stderr"; fail=1; }
      [ -s "$out" ] && { echo "FAIL: '$args' printed on stdout"; fail=1; }
    done
    "$bin" --bogus 2>&1 | grep -q "unknown option '--bogus'" || { echo "FAIL: no 'unknown option' message"; fail=1; }
    "$bin" --help | grep -q -- '--concurrency' || { echo "FAIL: --help does not list --concurrency"; fail=1; } ;;
  summary)
    "$bin" --pages 600 --concurrency 16 --seed 7 >"$out" 2>&1
    rc=$?
    cat "$out"
    [ "$rc" -eq 0 ] || { echo "FAIL: exit status $rc, expected 0"; fail=1; }
    for row in fetched "timed out" failed retried bytes "latency p50" "latency p90" "latency p99" throughput; do
      grep -q "^  $row " "$out" || { echo "FAIL: no '$row' row in the table"; fail=1; }
    done
    line=$(grep '^  peak in flight ' "$out")
    peak=$(echo "$line" | sed -n 's/^  peak in flight *\([0-9][0-9]*\) (limit \([0-9][0-9]*\))$/\1/p')
    limit=$(echo "$line" | sed -n 's/^  peak in flight *\([0-9][0-9]*\) (limit \([0-9][0-9]*\))$/\2/p')
    [ -n "$peak" ] && [ "$peak" = "16" ] && [ "$limit" = "16" ] ||
      { echo "FAIL: peak in flight '$peak' (limit '$limit'), expected 16 of 16"; fail=1; }
    fetched=$(sed -n 's/^  fetched *\([0-9][0-9]*\) pages$/\1/p' "$out")
    [ -n "$fetched" ] && [ "$fetched" -gt 500 ] || { echo "FAIL: only '$fetched' pages fetched"; fail=1; } ;;
  sigint)
    "$bin" --pages 50000 --rate 2000 --seed 3 >"$out" 2>"$err" &
    pid=$!
    i=0
    until grep -q '^progress ' "$out"; do   # the first periodic line: about 1 s in
      i=$((i + 1))
      if [ "$i" -gt 200 ]; then
        echo "FAIL: no progress line after 10 s"; cat "$out" "$err"; kill -9 "$pid"; exit 1
      fi
      sleep 0.05
    done
    kill -INT "$pid"
    t0=$(date +%s)
    wait "$pid"
    rc=$?
    took=$(( $(date +%s) - t0 ))
    cat "$out" "$err"
    [ "$rc" -eq 130 ] || { echo "FAIL: exit status $rc, expected 130"; fail=1; }
    [ "$took" -le 5 ] || { echo "FAIL: took ${took} s to stop after SIGINT"; fail=1; }
    grep -q '^crawl: signal 2: stopping' "$err" || { echo "FAIL: no 'signal 2: stopping' message"; fail=1; }
    for row in fetched "timed out" failed retried bytes "latency p99" throughput "peak in flight"; do
      grep -q "^  $row " "$out" || { echo "FAIL: no '$row' row in the table"; fail=1; }
    done
    fetched=$(sed -n 's/^  fetched *\([0-9][0-9]*\) pages$/\1/p' "$out")
    [ -n "$fetched" ] && [ "$fetched" -gt 0 ] && [ "$fetched" -lt 50000 ] ||
      { echo "FAIL: fetched '$fetched' pages, expected some but not all"; fail=1; }
    grep -q '^  not done .*(interrupted)$' "$out" || { echo "FAIL: no 'not done ... (interrupted)' row"; fail=1; } ;;
  *) echo "unknown mode $mode"; exit 1 ;;
esac
exit "$fail"
