#!/bin/sh
# ctest harness of examples/graceful_shutdown.cpp: start it, wait until it
# listens, let it serve a little, send SIGTERM, and check that it drained
# (every worker cleaned up, the connection said bye) and exited 0.
set -u
bin="$1"
[ -x "$bin" ] || { echo "no program: $bin"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" >"$out" 2>&1 &
pid=$!
i=0
until grep -q '^ready port=' "$out"; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then
    echo "graceful_shutdown never became ready"; cat "$out"; kill -9 "$pid"; exit 1
  fi
  sleep 0.05
done
sleep 0.3
kill -TERM "$pid"
wait "$pid"
rc=$?
cat "$out"
fail=0
[ "$rc" -eq 0 ] || { echo "FAIL: exit status $rc, expected 0"; fail=1; }
for line in "signal 15: draining" "worker 0 cleaned up" "worker 1 cleaned up" "worker 2 cleaned up" \
            "worker pool drained" "connection 0 drained after" "client: server said bye" "graceful exit"; do
  grep -q "$line" "$out" || { echo "FAIL: missing output: $line"; fail=1; }
done
exit "$fail"
