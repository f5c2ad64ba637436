# redisops: C tasks (default 50) each alternate SET k v / GET k over 1000
# keys with 100-byte values through redis-py's asyncio client and its
# connection pool (python3-redis). WARM operations first (not timed),
# then N operations timed. usage: redispy.py SOCKET [N] [C] [WARM]
import asyncio, resource, sys, time

import redis.asyncio as aioredis

SOCK = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
C = int(sys.argv[3]) if len(sys.argv) > 3 else 50
WARM = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
VALUE = b"v" * 100
KEYS = [f"key:{i}" for i in range(1, 1001)]


async def work(r, t, ops):
    k = (t * 20) % 1000
    for _ in range(ops // 2):
        key = KEYS[k]
        await r.set(key, VALUE)
        v = await r.get(key)
        assert len(v) == 100, v
        k = (k + 1) % 1000


async def round_(r, ops):
    await asyncio.gather(*(work(r, t, ops // C) for t in range(1, C + 1)))


async def main():
    r = aioredis.Redis(unix_socket_path=SOCK, max_connections=C)
    await round_(r, WARM)
    t0 = time.perf_counter()
    await round_(r, N)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload=redisops peer=redispy n={N} seconds={dt:.6f} "
          f"rate={N / dt:.0f} rss_kb={rss} conc={C}", flush=True)
    await r.close()


asyncio.run(main())
