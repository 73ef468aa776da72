#!/usr/bin/env python3
"""asyncio twin of bench/bench_thread.cpp's to_thread_roundtrip.

Python 3.11, standard library only. N = 50,000 sequential
`await asyncio.to_thread(empty)` in one task (the loop's default executor);
each repetition (--reps, default 5) in a fresh asyncio.run(); the clock
(time.perf_counter) starts inside the main coroutine. ns/op is the median.

--quick divides N by 10. Output: '#' lines for humans and
`RESULT to_thread_roundtrip asyncio ns_per_op <value>` (bench/report.py format).
"""

import argparse
import asyncio
import statistics
import time


def empty():
    pass


async def roundtrip(n):
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.to_thread(empty)
    return (time.perf_counter() - t0) * 1e9 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    n = 50000 // (10 if args.quick else 1)
    runs = [asyncio.run(roundtrip(n)) for _ in range(args.reps)]
    med = statistics.median(runs)
    print(f"# to_thread_roundtrip  asyncio    n={n:<8} median {med:10.1f} ns/op  min {min(runs):10.1f}")
    print(f"RESULT to_thread_roundtrip asyncio ns_per_op {med:.3f}")


if __name__ == "__main__":
    main()
