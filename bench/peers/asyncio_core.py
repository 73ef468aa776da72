#!/usr/bin/env python3
"""asyncio twins of bench/bench_core.cpp workloads (a)-(c).

Python 3.11, standard library only. Each workload runs --reps times (default
5), each repetition in a fresh asyncio.run(); the clock (time.perf_counter)
starts inside the main coroutine and stops after the last await. ns/op is the
median over repetitions (the minimum is printed too); cpu ns/op is the median
of time.thread_time() (this thread's CPU time), less disturbed by a busy
machine.

  spawn_join_all   N = 1,000,000: asyncio.create_task(trivial(i)) for every i
                   into a list, then `s += await t` for each task.
  spawn_join_one   N = 1,000,000 times: `s += await asyncio.create_task(trivial(i))`.
  await_ready      N = 10,000,000: `s += await child(i)` where
                   `async def child(i): return i` (about 80 ns per await on
                   CPython 3.11, so the same N as C++ fits; --await-n lowers it
                   on slow machines: ns/op is per await, so the figure stays
                   comparable; the N used is printed).
  sleep_random     N = 100,000 tasks each `await asyncio.sleep(k / 1000)` with
                   k in 0..10 ms from the same 64-bit LCG (seed 42) as
                   bench_core; all created, then all awaited; ns/op = wall / N.

--quick divides every N by 10. Output: human-readable lines starting with '#'
and machine-readable lines `RESULT <workload> asyncio <metric> <value>`.
"""

import argparse
import asyncio
import statistics
import sys
import time

MASK64 = (1 << 64) - 1


def sleep_plan(n):
    """Same generator as bench_core.cpp: x = x*A + C mod 2^64, k = (x>>33) % 11."""
    x = 42
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK64
        out.append((x >> 33) % 11)
    return out


async def trivial(i):
    return i


async def child(i):
    return i


async def sleeper(ms):
    await asyncio.sleep(ms / 1000)
    return ms


async def spawn_join_all(n):
    c0, t0 = time.thread_time(), time.perf_counter()
    tasks = [asyncio.create_task(trivial(i)) for i in range(n)]
    s = 0
    for t in tasks:
        s += await t
    del tasks
    t1, c1 = time.perf_counter(), time.thread_time()
    return t1 - t0, c1 - c0, s


async def spawn_join_one(n):
    create_task = asyncio.create_task
    c0, t0 = time.thread_time(), time.perf_counter()
    s = 0
    for i in range(n):
        s += await create_task(trivial(i))
    t1, c1 = time.perf_counter(), time.thread_time()
    return t1 - t0, c1 - c0, s


async def await_ready(n):
    c0, t0 = time.thread_time(), time.perf_counter()
    s = 0
    for i in range(n):
        s += await child(i)
    t1, c1 = time.perf_counter(), time.thread_time()
    return t1 - t0, c1 - c0, s


async def sleep_random(n, plan):
    c0, t0 = time.thread_time(), time.perf_counter()
    tasks = [asyncio.create_task(sleeper(k)) for k in plan]
    s = 0
    for t in tasks:
        s += await t
    del tasks
    t1, c1 = time.perf_counter(), time.thread_time()
    return t1 - t0, c1 - c0, s


def result(workload, metric, value):
    print(f"RESULT {workload} asyncio {metric} {value}", flush=True)


def bench(workload, n, reps, make, want):
    per_op, cpu_per_op = [], []
    wall = 0.0
    for _ in range(reps):
        secs, cpu, check = asyncio.run(make(n))
        if check != want:
            sys.exit(f"asyncio_core: {workload}: checksum {check} != {want}")
        wall = secs
        per_op.append(secs * 1e9 / n)
        cpu_per_op.append(cpu * 1e9 / n)
    med = statistics.median(per_op)
    cpu_med = statistics.median(cpu_per_op)
    print(f"# {workload:<18} asyncio n={n:<9} median {med:9.1f} ns/op  "
          f"min {min(per_op):9.1f}  cpu {cpu_med:9.1f} ns/op  last wall {wall * 1e3:.1f} ms",
          flush=True)
    result(workload, "n", n)
    result(workload, "ns_per_op", med)
    result(workload, "ns_per_op_min", min(per_op))
    result(workload, "cpu_ns_per_op", cpu_med)
    result(workload, "wall_ms", wall * 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="divide every N by 10")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per workload (default 5)")
    ap.add_argument("--await-n", type=int, default=None,
                    help="N for await_ready (default 10,000,000; 1,000,000 with --quick)")
    ap.add_argument("filters", nargs="*", help="substrings of workload names to run")
    args = ap.parse_args()

    if sys.version_info[:2] != (3, 11):
        print(f"# warning: written for Python 3.11, running {sys.version.split()[0]}")

    div = 10 if args.quick else 1
    n_spawn = 1_000_000 // div
    n_ready = args.await_n if args.await_n else 10_000_000 // div
    n_sleep = 100_000 // div
    plan = sleep_plan(n_sleep)
    reps = max(1, args.reps)

    def selected(w):
        return not args.filters or any(f in w for f in args.filters)

    print(f"# asyncio_core: CPython {sys.version.split()[0]}, reps={reps}"
          f"{' (quick)' if args.quick else ''}", flush=True)

    def tri(n):
        return n * (n - 1) // 2

    if selected("spawn_join_all"):
        bench("spawn_join_all", n_spawn, reps, spawn_join_all, tri(n_spawn))
    if selected("spawn_join_one"):
        bench("spawn_join_one", n_spawn, reps, spawn_join_one, tri(n_spawn))
    if selected("await_ready"):
        if n_ready != 10_000_000 // div:
            print(f"# await_ready: asyncio uses n={n_ready} (bench_core uses {10_000_000 // div}); "
                  "ns/op is per await, so it compares directly", flush=True)
        bench("await_ready", n_ready, reps, await_ready, tri(n_ready))
    if selected("sleep_random"):
        bench("sleep_random", n_sleep, reps, lambda n: sleep_random(n, plan), sum(plan))


if __name__ == "__main__":
    main()
