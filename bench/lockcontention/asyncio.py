# lockcontention: 100 tasks share one asyncio.Lock; each does N/100 iterations of
#   acquire; counter += 1; every 10th iteration sleep(0) while holding the lock; release
# N acquisitions in total. Checks the final counter (N). Run with `python3 -P`.
import asyncio, resource, sys, time

PEER = globals().get("PEER", "asyncio")
T = 100
K = max(1, (int(sys.argv[1]) if len(sys.argv) > 1 else 1000000) // T)
N = T * K
counter = 0


async def worker(lock):
    global counter
    for i in range(1, K + 1):
        await lock.acquire()
        counter += 1
        if i % 10 == 0:
            await asyncio.sleep(0)
        lock.release()


async def main():
    lock = asyncio.Lock()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(lock) for _ in range(T)))
    dt = time.perf_counter() - t0
    assert counter == N and not lock.locked(), counter
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=lockcontention peer={PEER} n={N} seconds={dt:.6f} rate={N/dt:.0f} rss_kb={rss}", flush=True)


asyncio.run(main())
