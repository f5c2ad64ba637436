# tothread: N calls of a trivial function on the default executor, two ways.
# Latency: N calls one at a time (`await asyncio.to_thread(fn)`), each timed:
# p50 / p99 microseconds per round trip. Throughput: N calls submitted at once
# (N asyncio.to_thread coroutines) and gathered: calls/s. 100 gathered calls
# first warm the pool. Run with `python3 -P` (file name shadows asyncio).
import asyncio, math, resource, sys, time

PEER = globals().get("PEER", "asyncio")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000


def fn():
    return 1


async def main():
    await asyncio.gather(*[asyncio.to_thread(fn) for _ in range(100)])  # warm-up
    clock = time.perf_counter
    lat = []
    s0 = clock()
    for _ in range(N):
        t0 = clock()
        r = await asyncio.to_thread(fn)
        lat.append(clock() - t0)
        assert r == 1
    seq = clock() - s0
    lat.sort()
    pct = lambda p: lat[max(0, math.ceil(N * p) - 1)] * 1e6
    t0 = clock()
    res = await asyncio.gather(*[asyncio.to_thread(fn) for _ in range(N)])
    dt = clock() - t0
    assert sum(res) == N, sum(res)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=tothread peer={PEER} n={N} seconds={dt:.6f} rate={N/dt:.0f} rss_kb={rss}"
          f" p50_us={pct(0.5):.1f} p99_us={pct(0.99):.1f} seq_seconds={seq:.6f} seq_rate={N/seq:.0f}", flush=True)


asyncio.run(main())
