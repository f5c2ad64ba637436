# pgquery / pgfetch, the psycopg peer: psycopg 3 async (Debian
# python3-psycopg, its pure-Python implementation over libpq: Debian ships
# no psycopg_c), 10 AsyncConnections each shared by 10 tasks (100
# concurrent tasks) that loop `await conn.execute(...)` and fetch the
# result for SECONDS, after WARMUP seconds not counted (or until N queries
# are done, after N / 10 not counted: smoke runs). psycopg runs one query
# at a time per connection (a lock inside the connection), and prepares a
# query on the server by itself once it ran 5 times (prepare_threshold).
# Rows are dicts (row_factory=dict_row), keyed by column name as the other
# peers' rows are. The queries and checks are those of lasync.lua in this
# folder (with psycopg's %s placeholders). Prints the RESULT line (client
# CPU from getrusage).
# usage: python3 -P psycopg.py WORKLOAD SOCKET_DIR [SECONDS [WARMUP [N]]]
import asyncio, resource, sys, time

import psycopg
from psycopg.rows import dict_row

W, HOST = sys.argv[1], sys.argv[2]
assert W in ("pgquery", "pgfetch"), W
T = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
WARM_T = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
N = int(sys.argv[5]) if len(sys.argv) > 5 else None
CONNS, PER_CONN = 10, 10
FETCH = ("SELECT i, 'row ' || i AS s, i * 1.5::float8 AS f "
         "FROM generate_series(%s::int, %s::int + 99) i")


async def one_query(conn, k):
    cur = await conn.execute("SELECT %s::int AS v", (k,))
    v = (await cur.fetchone())["v"]
    if v != k:
        raise AssertionError(f"pgquery: sent {k}, got {v!r}")


async def one_fetch(conn, k):
    cur = await conn.execute(FETCH, (k, k))
    rows = await cur.fetchall()
    s = 0
    for r in rows:
        s += r["i"]
    last = rows[99]
    if (len(rows) != 100 or s != 100 * k + 4950 or last["i"] != k + 99
            or last["s"] != f"row {k + 99}" or last["f"] != (k + 99) * 1.5):
        raise AssertionError(f"pgfetch: wrong rows for {k} ({len(rows)} rows)")


async def batch(conns, secs, n):
    one = one_query if W == "pgquery" else one_fetch
    clock, deadline = time.perf_counter, time.perf_counter() + secs
    left, done = [n if n is not None else sys.maxsize], [0]

    async def worker(conn, t):
        k = t * 1000000
        while left[0] > 0 and (n is not None or clock() < deadline):
            left[0] -= 1
            k += 1
            await one(conn, k)
            done[0] += 1

    await asyncio.gather(*(worker(conns[c], c * PER_CONN + t + 1)
                           for c in range(CONNS) for t in range(PER_CONN)))
    return done[0]


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    conns = [await psycopg.AsyncConnection.connect(host=HOST, user="postgres", dbname="postgres",
                                                   autocommit=True, row_factory=dict_row)
             for _ in range(CONNS)]
    warm = await batch(conns, WARM_T, N // 10 if N else None)
    c0, t0 = cpu(), time.perf_counter()
    n = await batch(conns, T, N)
    t1, c1 = time.perf_counter(), cpu()
    for c in conns:
        await c.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT workload={W} peer=psycopg n={n} seconds={t1 - t0:.4f} rate={n / (t1 - t0):.0f} "
          f"rss_kb={rss} cpu_s={c1 - c0:.3f} client_us_per_q={(c1 - c0) * 1e6 / n:.1f} "
          f"conns={CONNS} tasks={CONNS * PER_CONN} warmup={warm} impl={psycopg.pq.__impl__}", flush=True)


asyncio.run(main())
