# pgquery / pgfetch, the asyncpg peer (Debian python3-asyncpg) on asyncio,
# or on uvloop as the asyncpguv peer (asyncpguv.py runs this file): 10
# connections taken once from asyncpg.create_pool(min_size=10,
# max_size=10) and held for the run, 100 tasks, 10 on each connection
# through an asyncio.Lock (asyncpg forbids concurrent operations on one
# connection), each looping `await conn.fetchval(...)` (conn.fetch for
# pgfetch) for SECONDS, after WARMUP seconds not counted (or until N
# queries are done, after N / 10 not counted: smoke runs). This is the
# shape of lasync.lua (10 connections x 10 tasks) without pipelining,
# which asyncpg does not do. Held connections spare asyncpg the reset
# query its pool runs when a connection comes back (`SELECT
# pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`, one more
# round trip per pool.fetchval): set ASYNCPG_POOL=1 to measure that way
# instead. asyncpg prepares and caches each statement by itself. The
# queries and checks are those of lasync.lua in this folder. Prints the
# RESULT line (client CPU from getrusage).
import asyncio, os, resource, sys, time

import asyncpg

PEER = globals().get("PEER", "asyncpg")
W, HOST = sys.argv[1], sys.argv[2]
assert W in ("pgquery", "pgfetch"), W
T = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
WARM_T = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
N = int(sys.argv[5]) if len(sys.argv) > 5 else None
CONNS, TASKS = 10, 100
POOLED = os.environ.get("ASYNCPG_POOL") == "1"
FETCH = ("SELECT i, 'row ' || i AS s, i * 1.5::float8 AS f "
         "FROM generate_series($1::int, $1::int + 99) i")


async def one_query(pool, k):
    v = await pool.fetchval("SELECT $1::int", k)
    if v != k:
        raise AssertionError(f"pgquery: sent {k}, got {v!r}")


async def one_fetch(pool, k):
    rows = await pool.fetch(FETCH, k)
    s = 0
    for r in rows:
        s += r["i"]
    last = rows[99]
    if (len(rows) != 100 or s != 100 * k + 4950 or last["i"] != k + 99
            or last["s"] != f"row {k + 99}" or last["f"] != (k + 99) * 1.5):
        raise AssertionError(f"pgfetch: wrong rows for {k} ({len(rows)} rows)")


class Held:
    """10 held connections, 10 tasks on each through a lock"""

    def __init__(self, conns):
        self.slots = [(c, asyncio.Lock()) for c in conns]

    def slot(self, t):
        return self.slots[t % len(self.slots)]


async def batch(pool, secs, n):
    one = one_query if W == "pgquery" else one_fetch
    clock, deadline = time.perf_counter, time.perf_counter() + secs
    left, done = [n if n is not None else sys.maxsize], [0]

    async def worker(t):
        k = t * 1000000
        while left[0] > 0 and (n is not None or clock() < deadline):
            left[0] -= 1
            k += 1
            if isinstance(pool, Held):
                conn, lock = pool.slot(t)
                async with lock:
                    await one(conn, k)
            else:
                await one(pool, k)
            done[0] += 1

    await asyncio.gather(*(worker(t) for t in range(1, TASKS + 1)))
    return done[0]


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    async with asyncpg.create_pool(host=HOST, user="postgres", database="postgres",
                                   min_size=CONNS, max_size=CONNS) as pool:
        conns = [] if POOLED else [await pool.acquire() for _ in range(CONNS)]
        run = pool if POOLED else Held(conns)
        warm = await batch(run, WARM_T, N // 10 if N else None)
        c0, t0 = cpu(), time.perf_counter()
        n = await batch(run, T, N)
        t1, c1 = time.perf_counter(), cpu()
        for c in conns:
            await pool.release(c)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload={W} peer={PEER} n={n} seconds={t1 - t0:.4f} rate={n / (t1 - t0):.0f} "
          f"rss_kb={rss} cpu_s={c1 - c0:.3f} client_us_per_q={(c1 - c0) * 1e6 / n:.1f} "
          f"conns={CONNS} tasks={TASKS} warmup={warm} pooled={int(POOLED)}", flush=True)


asyncio.run(main())
