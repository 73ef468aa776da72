"""bench/http/fetch_with_limit_aiohttp.py: the asyncio fetch_with_limit pattern
with aiohttp, for bench/http/run.sh.

    fetch_with_limit_aiohttp.py URL_PREFIX PAGES LIMIT FILES

Every page is a task of one gather; each takes the semaphore, GETs
URL_PREFIX<i % FILES> on one shared ClientSession and reads the body. The
connector keeps at most LIMIT connections. Prints pages/s and latency
percentiles (ms) in the same format as corio's fetch_with_limit.
"""
import asyncio
import sys
import time

import aiohttp


async def fetch(session, sem, url, lat, i):
    async with sem:
        t0 = time.perf_counter()
        async with session.get(url) as r:
            r.raise_for_status()
            body = await r.read()
        lat[i] = (time.perf_counter() - t0) * 1e3
        return len(body)


async def main(prefix, pages, limit, files):
    sem = asyncio.Semaphore(limit)
    lat = [0.0] * pages
    conn = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
    async with aiohttp.ClientSession(connector=conn) as session:
        t0 = time.perf_counter()
        sizes = await asyncio.gather(*(fetch(session, sem, f"{prefix}{i % files}", lat, i) for i in range(pages)))
        secs = time.perf_counter() - t0
    lat.sort()
    print(f"pages={pages} bytes={sum(sizes)} seconds={secs:.3f} pages_per_s={pages / secs:.0f} "
          f"p50_ms={lat[pages // 2]:.3f} p99_ms={lat[int(pages * 0.99)]:.3f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
