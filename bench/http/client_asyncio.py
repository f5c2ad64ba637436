# httpclient / httpsclient client: one aiohttp ClientSession (Debian
# python3-aiohttp, its C parser; TCPConnector limit 100, keep-alive) shared
# by CONC tasks, each looping `async with s.get(url) as r: await r.read()`
# until N requests are done, after WARMUP requests that are not counted
# (they open the connections, so the TLS handshakes are CONC, not N). A
# request counts as an error unless it answers 200 with "Hello, world\n".
# Prints one line run.sh turns into a RESULT: requests, seconds, client CPU
# seconds (getrusage), max RSS, errors, p50/p99 latency of one request.
# usage: python3 -P client_asyncio.py URL N CONC WARMUP [CAFILE]
import asyncio, resource, ssl, sys, time

import aiohttp

URL, N, CONC, WARMUP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
CAFILE = sys.argv[5] if len(sys.argv) > 5 else None
BODY = b"Hello, world\n"


async def batch(session, n, lat):
    left = [n]
    errors = [0]
    clock = time.perf_counter

    async def worker():
        while left[0] > 0:
            left[0] -= 1
            t = clock()
            try:
                async with session.get(URL) as r:
                    body = await r.read()
                    if r.status != 200 or body != BODY:
                        errors[0] += 1
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                errors[0] += 1
                if errors[0] == 1:
                    print(f"# first error: {e!r}", file=sys.stderr)
            lat.append(clock() - t)

    await asyncio.gather(*(worker() for _ in range(CONC)))
    return errors[0]


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    ctx = ssl.create_default_context(cafile=CAFILE) if CAFILE else None
    connector = aiohttp.TCPConnector(limit=CONC, ssl=ctx) if ctx else aiohttp.TCPConnector(limit=CONC)
    async with aiohttp.ClientSession(connector=connector) as s:
        await batch(s, WARMUP, [])
        lat = []
        c0, t0 = cpu(), time.perf_counter()
        errors = await batch(s, N, lat)
        t1, c1 = time.perf_counter(), cpu()
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
    print(f"requests={N} seconds={t1 - t0:.4f} cpu_s={c1 - c0:.3f} "
          f"maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} errors={errors} "
          f"p50_us={pick(0.5):.0f} p99_us={pick(0.99):.0f}")


asyncio.run(main())
