#!/usr/bin/env python3
"""asyncio twins of bench/bench_resource.cpp.

Python 3.11, standard library only. The pool is the shape aiohttp's and
asyncpg's pools use: idle connections in an asyncio.LifoQueue, a size
counter, a factory called when the queue is empty and the pool is below its
maximum, and `async with pool.acquire() as conn:` through a small
acquire-context object (asyncpg's PoolAcquireContext).

  await_ready      N = 1,000,000 (C++: 10,000,000): `await body()` of a
                   coroutine that returns at once.
  with_ready       N = 1,000,000: `async with ctx() as x:` on an
                   @asynccontextmanager that yields at once, body returns x.
  pool_uncontended N = 1,000,000 (C++: 100,000,000): `async with
                   pool.acquire():` on a pool holding one idle connection.
  pool_contended   10,000 tasks x 100 rounds of `async with pool.acquire():
                   await asyncio.sleep(0)` on Pool(max_size=10); all created,
                   then all awaited. ns/op = wall / 1,000,000 pairs.

--quick divides every N by 10. Output: '#' lines for humans and
`RESULT <workload> asyncio ns_per_op <value>` lines (bench/report.py format).
"""

import argparse
import asyncio
import contextlib
import statistics
import sys
import time


class Pool:
    def __init__(self, factory, max_size):
        self._factory = factory
        self._max = max_size
        self._size = 0
        self._idle = asyncio.LifoQueue()

    async def _get(self):
        if self._idle.empty() and self._size < self._max:
            self._size += 1
            try:
                return await self._factory()
            except BaseException:
                self._size -= 1
                raise
        return await self._idle.get()

    def _put(self, conn):
        self._idle.put_nowait(conn)

    def acquire(self):
        return _AcquireContext(self)


class _AcquireContext:
    __slots__ = ("_pool", "_conn")

    def __init__(self, pool):
        self._pool = pool
        self._conn = None

    async def __aenter__(self):
        self._conn = await self._pool._get()
        return self._conn

    async def __aexit__(self, *exc):
        self._pool._put(self._conn)


async def make_conn():
    return 1


async def ready_body(x):
    return x


async def await_ready(n):
    acc = 0
    t0 = time.perf_counter()
    for _ in range(n):
        acc += await ready_body(1)
    return time.perf_counter() - t0, acc


@contextlib.asynccontextmanager
async def ready_context():
    yield 1


async def with_ready(n):
    acc = 0
    t0 = time.perf_counter()
    for _ in range(n):
        async with ready_context() as x:
            acc += await ready_body(x)
    return time.perf_counter() - t0, acc


async def pool_uncontended(n):
    pool = Pool(make_conn, 1)
    async with pool.acquire():
        pass
    acc = 0
    t0 = time.perf_counter()
    for _ in range(n):
        async with pool.acquire() as c:
            acc += c
    return time.perf_counter() - t0, acc


async def pool_worker(pool, rounds):
    done = 0
    for _ in range(rounds):
        async with pool.acquire() as c:
            await asyncio.sleep(0)
            done += c
    return done


async def pool_contended(tasks):
    pool = Pool(make_conn, 10)
    t0 = time.perf_counter()
    ts = [asyncio.create_task(pool_worker(pool, 100)) for _ in range(tasks)]
    s = 0
    for t in ts:
        s += await t
    return time.perf_counter() - t0, s


def bench(workload, n_ops, reps, make, want):
    per_op = []
    for _ in range(reps):
        secs, check = asyncio.run(make())
        if check != want:
            sys.exit(f"asyncio_pool: {workload}: checksum {check} != {want}")
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

    n = 1_000_000 // div
    n_tasks = 10_000 // div
    if want("await_ready"):
        bench("await_ready", n, args.reps, lambda: await_ready(n), n)
    if want("with_ready"):
        bench("with_ready", n, args.reps, lambda: with_ready(n), n)
    if want("pool_uncontended"):
        bench("pool_uncontended", n, args.reps, lambda: pool_uncontended(n), n)
    if want("pool_contended"):
        bench("pool_contended", n_tasks * 100, args.reps, lambda: pool_contended(n_tasks), n_tasks * 100)


if __name__ == "__main__":
    main()
