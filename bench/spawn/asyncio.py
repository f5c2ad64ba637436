# spawn: N tasks, each awaits sleep(0) once and returns its index; gather; check the sum.
# Run with `python3 -P` so this file's name does not shadow the asyncio module.
import asyncio, resource, sys, time

PEER = globals().get("PEER", "asyncio")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000


async def work(i):
    await asyncio.sleep(0)
    return i


async def main():
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(work(i)) for i in range(N)]
    res = await asyncio.gather(*tasks)
    dt = time.perf_counter() - t0
    s = sum(res)
    assert s == N * (N - 1) // 2, s
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=spawn peer={PEER} n={N} seconds={dt:.6f} rate={N/dt:.0f} rss_kb={rss}", flush=True)


asyncio.run(main())
