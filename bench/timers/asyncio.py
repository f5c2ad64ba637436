# timers (timer churn): create N timers with loop.call_later (delays 1..1000 s,
# Park-Miller LCG seed 42: delay = 1 + x mod 1000 s), then cancel every handle in
# creation order, then yield to the loop once (sleep(0)) so that work the loop
# does for cancelled timers on its next turn is counted. None may fire.
# Run with `python3 -P` (file name shadows asyncio).
import asyncio, resource, sys, time

PEER = globals().get("PEER", "asyncio")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
fired = 0


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def cb():
    global fired
    fired += 1


async def main():
    loop = asyncio.get_running_loop()
    x = 42
    delays = []
    for _ in range(N):
        x = x * 16807 % 2147483647
        delays.append(1 + x % 1000)
    base = rss_kb()
    t0 = time.perf_counter()
    handles = [loop.call_later(d, cb) for d in delays]
    t1 = time.perf_counter()
    for h in handles:
        h.cancel()
    t2 = time.perf_counter()
    await asyncio.sleep(0)
    dt = time.perf_counter() - t0
    assert fired == 0, fired
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=timers peer={PEER} n={N} seconds={dt:.6f} rate={N/dt:.0f} rss_kb={peak} "
          f"base_kb={base} bytes_per_timer={(peak-base)*1024/N:.0f} create_s={t1-t0:.6f} cancel_s={t2-t1:.6f}",
          flush=True)


asyncio.run(main())
