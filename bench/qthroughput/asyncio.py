# qthroughput: 4 producers and 4 consumers share one asyncio.Queue(maxsize=100);
# N items in total (N/4 per producer, producer p puts p*N/4 .. (p+1)*N/4 - 1).
# Once every producer has finished, main puts one None sentinel per consumer;
# each consumer counts and sums what it got until its sentinel. Checks the
# total count (N) and sum (N(N-1)/2). Run with `python3 -P`.
import asyncio, resource, sys, time

PEER = globals().get("PEER", "asyncio")
P = C = 4
MAXSIZE = 100
K = (int(sys.argv[1]) if len(sys.argv) > 1 else 1000000) // P
N = P * K


async def producer(q, p):
    for i in range(p * K, (p + 1) * K):
        await q.put(i)


async def consumer(q):
    n = s = 0
    while True:
        v = await q.get()
        if v is None:
            return n, s
        n += 1
        s += v


async def main():
    q = asyncio.Queue(MAXSIZE)
    t0 = time.perf_counter()
    consumers = [asyncio.create_task(consumer(q)) for _ in range(C)]
    await asyncio.gather(*(producer(q, p) for p in range(P)))
    for _ in range(C):
        await q.put(None)
    res = await asyncio.gather(*consumers)
    dt = time.perf_counter() - t0
    n, s = sum(r[0] for r in res), sum(r[1] for r in res)
    assert n == N and s == N * (N - 1) // 2, (n, s)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=qthroughput peer={PEER} n={N} seconds={dt:.6f} rate={N/dt:.0f} rss_kb={rss} "
          f"per_consumer={'/'.join(str(r[0]) for r in res)}", flush=True)


asyncio.run(main())
