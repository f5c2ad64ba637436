# qpingpong: two tasks pass a counter back and forth through two asyncio.Queue
# objects, N round trips. Run with `python3 -P` (file name shadows asyncio).
# (A copy of ../pingpong/asyncio.py with the workload name changed.)
import asyncio, resource, sys, time

PEER = globals().get("PEER", "asyncio")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 500000


async def ping(q1, q2):
    c = 0
    for _ in range(N):
        await q1.put(c)
        c = await q2.get() + 1
    return c


async def pong(q1, q2):
    for _ in range(N):
        v = await q1.get()
        await q2.put(v + 1)


async def main():
    q1, q2 = asyncio.Queue(), asyncio.Queue()
    t0 = time.perf_counter()
    c, _ = await asyncio.gather(ping(q1, q2), pong(q1, q2))
    dt = time.perf_counter() - t0
    assert c == 2 * N, c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=qpingpong peer={PEER} n={N} seconds={dt:.6f} rate={N/dt:.0f} rss_kb={rss}", flush=True)


asyncio.run(main())
