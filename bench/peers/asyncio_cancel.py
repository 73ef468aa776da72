"""asyncio twins of bench_cancel: asyncio.timeout() around an await that does
not suspend, and many concurrent tasks each under a timeout that never fires.
Prints `RESULT <workload> asyncio <metric> <value>` lines like bench_cancel."""
import asyncio
import sys
import time


async def leaf(i):
    return i


async def timeout_ready(n):
    total = 0
    t0 = time.perf_counter()
    for i in range(n):
        async with asyncio.timeout(1):
            total += await leaf(i)
    t1 = time.perf_counter()
    return (t1 - t0) * 1e9 / n


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def timeout_rss(n):
    async def one():
        async with asyncio.timeout(10):
            await asyncio.sleep(0.001)

    base = rss_mib()
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await asyncio.sleep(0)
    peak = rss_mib()
    await asyncio.gather(*tasks)
    return base, peak


def main():
    quick = "--quick" in sys.argv
    n = 100_000 if quick else 1_000_000
    best = min(asyncio.run(timeout_ready(n)) for _ in range(3))
    print(f"RESULT timeout_ready asyncio ns_per_op {best}")
    m = 10_000 if quick else 100_000
    base, peak = asyncio.run(timeout_rss(m))
    print(f"RESULT timeout_rss asyncio n {m}")
    print(f"RESULT timeout_rss asyncio bytes_per_task {(peak - base) * 1024 * 1024 / m}")


if __name__ == "__main__":
    main()
