"""bench/http/fetch_with_limit_httpx.py: the asyncio fetch_with_limit pattern
with httpx.AsyncClient, for bench/http/run.sh.

    fetch_with_limit_httpx.py URL_PREFIX PAGES LIMIT FILES

Same shape as the aiohttp peer: one gather of every page, each under the
semaphore, one shared client limited to LIMIT connections.
"""
import asyncio
import sys
import time

import httpx


async def fetch(client, sem, url, lat, i):
    async with sem:
        t0 = time.perf_counter()
        r = await client.get(url)
        r.raise_for_status()
        lat[i] = (time.perf_counter() - t0) * 1e3
        return len(r.content)


async def main(prefix, pages, limit, files):
    sem = asyncio.Semaphore(limit)
    lat = [0.0] * pages
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(limits=limits) as client:
        t0 = time.perf_counter()
        sizes = await asyncio.gather(*(fetch(client, sem, f"{prefix}{i % files}", lat, i) for i in range(pages)))
        secs = time.perf_counter() - t0
    lat.sort()
    print(f"pages={pages} bytes={sum(sizes)} seconds={secs:.3f} pages_per_s={pages / secs:.0f} "
          f"p50_ms={lat[pages // 2]:.3f} p99_ms={lat[int(pages * 0.99)]:.3f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
