#!/usr/bin/env python3
"""asyncio twins of bench/bench_stream.cpp (run with /usr/bin/python3).

  gen_next       N ints through an async generator consumed with
                 `async for` (what next() is), ns/item.
  batch_100      N ints through the seed's AsyncBatcher(batch_size=100): an
                 async generator collecting lists of 100, ns/item.
  micro_batcher  M concurrent submits (one future each, gathered) coalesced
                 into handler calls of 1000 (a DataLoader-style batcher: the
                 1000th submit or a 1 ms timer flushes), ns/submit.

N = 1,000,000 and M = 100,000 (Python is slow; per-item cost is what is
compared); --quick divides by 10. Each runs --reps times (default 5) in a
fresh asyncio.run(); the median and minimum are printed as
`RESULT <workload> asyncio ns_per_op <median> min <min>`. The clock is
this thread's CPU time (time.thread_time), as in bench_stream.
"""

import argparse
import asyncio
import statistics
import time


async def numbers(n):
    for i in range(n):
        yield i


async def gen_next(n):
    t0 = time.thread_time()
    s = 0
    async for v in numbers(n):
        s += v
    t1 = time.thread_time()
    assert s == n * (n - 1) // 2
    return (t1 - t0) * 1e9 / n


async def batches(src, size):
    batch = []
    async for item in src:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def batch_100(n):
    t0 = time.thread_time()
    s = 0
    async for b in batches(numbers(n), 100):
        s += sum(b)
    t1 = time.thread_time()
    assert s == n * (n - 1) // 2
    return (t1 - t0) * 1e9 / n


class MicroBatcher:
    def __init__(self, handler, max_size, max_wait):
        self.handler, self.max_size, self.max_wait = handler, max_size, max_wait
        self.items, self.futures, self.timer, self.running = [], [], None, set()

    def _flush(self):
        if self.timer:
            self.timer.cancel()
            self.timer = None
        items, futures = self.items, self.futures
        self.items, self.futures = [], []
        t = asyncio.ensure_future(self._run(items, futures))
        self.running.add(t)
        t.add_done_callback(self.running.discard)

    async def _run(self, items, futures):
        try:
            outs = await self.handler(items)
            for f, o in zip(futures, outs):
                f.set_result(o)
        except Exception as e:
            for f in futures:
                f.set_exception(e)

    async def submit(self, x):
        f = asyncio.get_running_loop().create_future()
        self.items.append(x)
        self.futures.append(f)
        if len(self.items) >= self.max_size:
            self._flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.max_wait, self._flush)
        return await f

    async def close(self):
        if self.items:
            self._flush()
        while self.running:
            await asyncio.gather(*list(self.running))


async def micro(m):
    async def handler(xs):
        return [2 * x for x in xs]

    t0 = time.thread_time()
    b = MicroBatcher(handler, 1000, 0.001)
    out = await asyncio.gather(*[b.submit(i) for i in range(m)])
    await b.close()
    t1 = time.thread_time()
    assert sum(out) == m * (m - 1)
    return (t1 - t0) * 1e9 / m


def measure(name, reps, make):
    r = sorted(asyncio.run(make()) for _ in range(reps))
    print(f"{name:<16} {statistics.median(r):10.2f} ns/op (min {r[0]:.2f})")
    print(f"RESULT {name} asyncio ns_per_op {statistics.median(r):.2f} min {r[0]:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    div = 10 if a.quick else 1
    n, m = 1_000_000 // div, 100_000 // div
    measure("gen_next", a.reps, lambda: gen_next(n))
    measure("batch_100", a.reps, lambda: batch_100(n))
    measure("micro_batcher", a.reps, lambda: micro(m))


if __name__ == "__main__":
    main()
