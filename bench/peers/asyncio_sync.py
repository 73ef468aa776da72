#!/usr/bin/env python3
"""asyncio twins of bench/bench_sync.cpp.

Python 3.11, standard library only. Each workload runs --reps times (default
5), each repetition in a fresh asyncio.run(); the clock (time.perf_counter)
starts inside the main coroutine. ns/op is the median over repetitions.

  sem_uncontended  N = 1,000,000 (C++: 100,000,000; ns/op is per pair, so the
                   figures compare): `async with sem:` on asyncio.Semaphore(1),
                   never contended.
  sem_contended    10,000 tasks x 100 rounds of
                   `async with sem: await asyncio.sleep(0)` with
                   asyncio.Semaphore(10); all created, then all awaited.
                   ns/op = wall / 1,000,000 acquire+release pairs.
  queue_pc         one producer task puts 0..N-1 (N = 1,000,000) into
                   asyncio.Queue(100), one consumer gets them all and sums.
                   ns/op = wall / N.

--quick divides every N by 10. Output: '#' lines for humans and
`RESULT <workload> asyncio ns_per_op <value>` lines (bench/report.py format).
"""

import argparse
import asyncio
import statistics
import sys
import time


async def sem_uncontended(n):
    sem = asyncio.Semaphore(1)
    t0 = time.perf_counter()
    for _ in range(n):
        async with sem:
            pass
    return time.perf_counter() - t0, n


async def sem_worker(sem, rounds):
    done = 0
    for _ in range(rounds):
        async with sem:
            await asyncio.sleep(0)
            done += 1
    return done


async def sem_contended(tasks):
    sem = asyncio.Semaphore(10)
    t0 = time.perf_counter()
    ts = [asyncio.create_task(sem_worker(sem, 100)) for _ in range(tasks)]
    s = 0
    for t in ts:
        s += await t
    return time.perf_counter() - t0, s


async def producer(q, n):
    for i in range(n):
        await q.put(i)


async def consumer(q, n):
    s = 0
    for _ in range(n):
        s += await q.get()
    return s


async def queue_pc(n):
    q = asyncio.Queue(100)
    t0 = time.perf_counter()
    p = asyncio.create_task(producer(q, n))
    c = asyncio.create_task(consumer(q, n))
    await p
    s = await c
    return time.perf_counter() - t0, s


def bench(workload, n_ops, reps, make, want):
    per_op = []
    for _ in range(reps):
        secs, check = asyncio.run(make())
        if check != want:
            sys.exit(f"asyncio_sync: {workload}: checksum {check} != {want}")
        per_op.append(secs * 1e9 / n_ops)
    med = statistics.median(per_op)
    print(f"# {workload:<16} asyncio n={n_ops:<10} median {med:9.2f} ns/op  min {min(per_op):9.2f}", flush=True)
    print(f"RESULT {workload} asyncio ns_per_op {med:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="divide every N by 10")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per workload (default 5)")
    ap.add_argument("filters", nargs="*", help="substrings of workload names to run")
    args = ap.parse_args()
    div = 10 if args.quick else 1

    def want(name):
        return not args.filters or any(f in name for f in args.filters)

    n_unc = 1_000_000 // div
    n_tasks = 10_000 // div
    n_items = 1_000_000 // div
    if want("sem_uncontended"):
        bench("sem_uncontended", n_unc, args.reps, lambda: sem_uncontended(n_unc), n_unc)
    if want("sem_contended"):
        bench("sem_contended", n_tasks * 100, args.reps, lambda: sem_contended(n_tasks), n_tasks * 100)
    if want("queue_pc"):
        bench("queue_pc", n_items, args.reps, lambda: queue_pc(n_items), n_items * (n_items - 1) // 2)


if __name__ == "__main__":
    main()
