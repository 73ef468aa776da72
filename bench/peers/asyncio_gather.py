#!/usr/bin/env python3
"""asyncio twins of bench/bench_gather.cpp.

Python 3.11, standard library only. Each workload runs --reps times (default
5), each repetition in a fresh asyncio.run(); the clock starts inside the main
coroutine and stops after the last result is summed. ns/op is the median over
repetitions (the minimum is printed too). Two clocks: wall time
(time.perf_counter, metric ns_per_op) and this thread's CPU time
(time.thread_time, metric cpu_ns_per_op), which is what to compare on a
loaded machine.

  gather_1m        N = 1,000,000: `await asyncio.gather(*[trivial(i) for i in
                   range(N)])` where `async def trivial(i): return i` (gather
                   wraps every coroutine in a Task), then sum the results.
  gather_1m_yield  the same with `await asyncio.sleep(0)` in every child.
  gather_pairs     N/2 rounds of `await asyncio.gather(trivial(i), trivial(i+1))`.
  task_group_100k  M = 100,000 children in one asyncio.TaskGroup, each awaiting
                   one asyncio.Event that the body sets after a sleep(0).

--quick divides every N by 10. Output: lines starting with '#' and
machine-readable lines `RESULT <workload> asyncio <metric> <value>`.
"""

import argparse
import asyncio
import statistics
import sys
import time


async def trivial(i):
    return i


async def yielding(i):
    await asyncio.sleep(0)
    return i


def clocks():
    return time.perf_counter(), time.thread_time()


def per_op(start, n):
    w, c = clocks()
    return (w - start[0]) * 1e9 / n, (c - start[1]) * 1e9 / n


async def gather_1m(n, yield_first):
    start = clocks()
    child = yielding if yield_first else trivial
    values = await asyncio.gather(*[child(i) for i in range(n)])
    s = sum(values)
    assert s == n * (n - 1) // 2
    return per_op(start, n)


async def gather_pairs(n):
    start = clocks()
    s = 0
    for i in range(0, n, 2):
        a, b = await asyncio.gather(trivial(i), trivial(i + 1))
        s += a + b
    assert s == n * (n - 1) // 2
    return per_op(start, n)


async def waiter(ev, acc, i):
    await ev.wait()
    acc[0] += i


async def task_group(m):
    start = clocks()
    ev = asyncio.Event()
    acc = [0]
    async with asyncio.TaskGroup() as tg:
        for i in range(m):
            tg.create_task(waiter(ev, acc, i))
        await asyncio.sleep(0)
        ev.set()
    assert acc[0] == m * (m - 1) // 2
    return per_op(start, m)


def report(workload, samples):
    wall = sorted(s[0] for s in samples)
    cpu = sorted(s[1] for s in samples)
    print(f"#  {workload:<18} asyncio  {statistics.median(wall):10.1f} ns/op (min {wall[0]:.1f}), "
          f"cpu {statistics.median(cpu):.1f} ns/op")
    print(f"RESULT {workload} asyncio ns_per_op {statistics.median(wall):.2f}")
    print(f"RESULT {workload} asyncio cpu_ns_per_op {statistics.median(cpu):.2f}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    n = 1_000_000 // scale
    m = 100_000 // scale
    print(f"# asyncio_gather: N = {n}, M = {m}, reps = {args.reps}, Python {sys.version.split()[0]}")
    report("gather_1m", [asyncio.run(gather_1m(n, False)) for _ in range(args.reps)])
    report("gather_1m_yield", [asyncio.run(gather_1m(n, True)) for _ in range(args.reps)])
    report("gather_pairs", [asyncio.run(gather_pairs(n)) for _ in range(args.reps)])
    report("task_group_100k", [asyncio.run(task_group(m)) for _ in range(args.reps)])


if __name__ == "__main__":
    main()
