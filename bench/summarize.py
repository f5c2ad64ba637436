#!/usr/bin/env python3
"""Median-of-runs tables and target checks from bench/run.sh logs.

usage: bench/summarize.py LOG [LOG...]   (reads RESULT / SKIP / FAIL lines)

Per workload and peer: median rate, rate range, median seconds, median peak
RSS, bytes/task (sleepers) or bytes/timer (timers), and the ratio of the
peer's median rate to asyncio's and to luv's (higher = faster). The echo
workloads show round trips/s, p50/p99 latency, server and client CPU, server
peak RSS and the ratios to asyncio and to the C libuv server; echoidle shows
the server's RSS growth per idle connection. The TLS workloads (tlsecho,
tlshandshake: handshakes/s, tlsidle) use the same tables, with the
protocol, cipher suite and ECDHE group the load generator negotiated. The HTTP
workloads (httphello, httpjson) show wrk's requests/s, p50/p99 latency, server
CPU (cores, and CPU time per request), wrk's CPU, server peak RSS, errors and the ratios to nginx + Lua, Go and the C
libuv server; httpidle is shown as echoidle. The HTTP client workloads
(httpclient, httpsclient) show the client's requests/s, p50/p99 latency, CPU
time per request and peak RSS, nginx's CPU time per request, the connections
the client opened, errors and the ratios to aiohttp (asyncio) and Go. tothread shows gathered calls/s
and the one-at-a-time round-trip latency; fileread shows MiB/s and the ratios
to cat and to asyncio. Then the issue's targets, checked
on the medians, PASS / MISS (or n/a without data). redisops (its own peers:
lasync, lasyncpool, redispy, ioredis, redisbench) has a table and targets of
its own, after the others.
Python 3 standard library only.
"""
import re
import statistics
import sys
from collections import defaultdict

PEERS = ["lasync", "asyncio", "uvloop", "node", "nodefetch", "luv", "go", "nginx", "bare", "clibuv", "cat", "pysync"]
WORKLOADS = ["spawn", "pingpong", "sleepers", "timers", "qpingpong", "qthroughput", "lockcontention",
             "echo64", "echo4096", "echoidle", "tlsecho", "tlshandshake", "tlsidle", "httphello", "httpjson", "httpidle",
             "httpclient", "httpsclient", "tothread", "fileread"]
ECHO = ("echo64", "echo4096")
TLS = ("tlsecho", "tlshandshake")
HTTP = ("httphello", "httpjson")
CLIENT = ("httpclient", "httpsclient")
CLIENT_LABEL = {"asyncio": "aiohttp (asyncio)", "uvloop": "aiohttp (uvloop)", "node": "node http + Agent",
                "nodefetch": "node fetch (undici)", "go": "Go net/http"}
CLIENT_PEERS = ["asyncio", "uvloop", "node", "nodefetch", "go"]  # lasync must be ≥ each
CLIENT_DEFAULT = {"n": "20000", "conc": "100"}  # run.sh's CLIENT_N and CLIENT_C
HTTP_LABEL = {"asyncio": "aiohttp (asyncio)", "uvloop": "aiohttp (uvloop)", "nginx": "nginx + Lua"}
TLS_PEERS = ["asyncio", "uvloop", "node", "go"]  # lasync must be ≥ each (clibuv is the ceiling)
ECHO_PEERS = ["asyncio", "uvloop", "node", "luv", "go"]  # lasync must be ahead of each (clibuv is the ceiling)
UNIT = {"spawn": "tasks/s", "pingpong": "round trips/s", "sleepers": "tasks/s", "timers": "timers/s",
        "qpingpong": "round trips/s", "qthroughput": "items/s", "lockcontention": "acquisitions/s",
        "echo64": "round trips/s", "echo4096": "round trips/s",
        "tlsecho": "round trips/s", "tlshandshake": "handshakes/s",
        "httphello": "requests/s", "httpjson": "requests/s",
        "httpclient": "requests/s", "httpsclient": "requests/s", "tothread": "calls/s", "fileread": "MiB/s"}
DEFAULT_N = {"spawn": 200000, "pingpong": 500000, "sleepers": 100000, "timers": 1000000,
             "qpingpong": 500000, "qthroughput": 1000000, "lockcontention": 1000000, "echoidle": 1000, "tlsidle": 1000, "httpidle": 1000,
             "tothread": 10000, "fileread": 1024}
ECHO_DEFAULT = {"conns": "100", "seconds": 5.0}  # run.sh's ECHO_C and ECHO_T (HTTP_C and HTTP_T alike)
PER = {"sleepers": ("bytes_per_task", "bytes/task"), "timers": ("bytes_per_timer", "bytes/timer")}
KV = re.compile(r'(\w+)=("[^"]*"|\S+)')

# pgquery, pgfetch (bench/pgquery/): queries/s of 100 tasks on 10
# connections for PG_T seconds, the client's and the PostgreSQL server's
# CPU time per query, the client's peak RSS, the ratios to asyncpg; lasync
# must reach 1.3× asyncpg and at least every other peer.
PG = ("pgquery", "pgfetch")
PG_PEERS = ["asyncpg", "asyncpguv", "psycopg", "nodepg"]
PG_LABEL = {"asyncpg": "asyncpg (asyncio)", "asyncpguv": "asyncpg (uvloop)", "psycopg": "psycopg 3 async",
            "nodepg": "node-postgres"}
PG_SECONDS = 5.0  # run.sh's PG_T
PEERS += [p for p in PG_PEERS if p not in PEERS]
WORKLOADS += [w for w in PG if w not in WORKLOADS]
UNIT.update({w: "queries/s" for w in PG})


def pg_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head([f"{UNIT[w]} (median)", "range", "client CPU µs/query", "server CPU µs/query", "client RSS MiB",
              "× asyncpg", "runs", "max foreign CPU"])
    ref = med(runs.get((w, "asyncpg"), []), "rate")
    for p in ["lasync"] + PG_PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        label = PG_LABEL.get(p, p)
        if p == "lasync":
            modes = sorted({r.get("pipeline", "default") for r in rs})
            label = "**lasync**" + ("" if modes == ["default"] else f" (pipeline {'/'.join(modes)})")
        row = [label, f"{rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
               f"{med(rs, 'client_us_per_q'):.1f}", f"{med(rs, 'server_us_per_q'):.1f}", mib(med(rs, "rss_kb")),
               fmt_ratio(rate / ref) if ref else "", str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes)


def pg_checks(runs):
    """The pgquery / pgfetch targets, as targets() lists its checks."""
    def m(w, p):
        return med(runs.get((w, p), []), "rate")

    def vs_asyncpg(w):
        x, y = m(w, "lasync"), m(w, "asyncpg")
        return x / y if x is not None and y else None

    def at_least(w):
        have = {p: m(w, p) for p in PG_PEERS if m(w, p) is not None}
        x = m(w, "lasync")
        if x is None or not have:
            return None
        best = max(have, key=have.get)
        return (x / have[best], best, [p for p in PG_PEERS if p not in have])

    def show(v):
        r, best, missing = v
        return f"{fmt_ratio(r)} the best peer ({best})" + (f"; no data: {', '.join(missing)}" if missing else "")

    checks = []
    for w in PG:
        checks += [
            (w, f"{w}: lasync ≥ 1.3× asyncpg (queries/s)", vs_asyncpg(w), lambda v: v >= 1.3, fmt_ratio),
            (w, f"{w}: lasync ≥ every peer ({', '.join(PG_PEERS)}) (queries/s)", at_least(w),
             lambda v: v[0] >= 1, show),
        ]
    return checks


def pg_size_warning(w, runs):
    rs = [r for p in PEERS for r in runs.get((w, p), [])]
    odd = [r for r in rs if r.get("conns") != "10" or r.get("tasks") != "100"
           or abs(float(r.get("seconds", 0)) - PG_SECONDS) > 1]
    if not odd:
        return ""
    return (f" (up to {max(float(r.get('seconds', 0)) for r in rs):.1f} s measured, "
            f"{'/'.join(sorted({r.get('tasks', '?') for r in rs}))} tasks; targets assume 5 s, 100 tasks)")


def load(paths):
    runs, notes, header = defaultdict(list), defaultdict(list), []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                kind = line.split(" ", 1)[0]
                if kind == "#" and not header:
                    header.append(line)
                elif line.startswith("# versions:") and len(header) == 1:
                    header.append(line)
                if kind not in ("RESULT", "SKIP", "FAIL"):
                    continue
                d = {k: v.strip('"') for k, v in KV.findall(line)}
                key = (d.get("workload"), d.get("peer"))
                if kind == "RESULT":
                    runs[key].append(d)
                else:
                    notes[key].append((kind, d, line))
    return runs, notes, header


def med(rs, k):
    vals = [float(r[k]) for r in rs if k in r]
    return statistics.median(vals) if vals else None


def fmt_ratio(x):
    if x is None:
        return ""
    return f"{x:,.0f}×" if x >= 100 else f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def notes_lines(w, notes, runs=None):
    out = []
    tls = sorted({" ".join(r.get(k, "?") for k in ("tls", "cipher", "group")) + (", unverified" if r.get("verify") == "no" else "")
                  for p in PEERS for r in (runs or {}).get((w, p), []) if "tls" in r})
    if tls:
        out.append(f"- negotiated: {'; '.join(tls)}")
    for p in PEERS:
        for kind, d, line in notes.get((w, p), []):
            if kind == "SKIP":
                out.append(f"- {p}: SKIP — {d.get('reason', '')}")
                break
        for kind, d, line in notes.get((w, p), []):
            if kind == "FAIL":
                out.append(f"- {p}: **FAIL** — {line[5:][:400]}")
    if out:
        print()
        print("\n".join(out))


def head(cols):
    print("| peer | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")


def foreign(rs):
    return f"{max(float(r.get('foreign_cpu', 0)) for r in rs):.2f}"


def mib(kb):
    return f"{kb / 1024:.1f}" if kb is not None and kb >= 0 else "n/a"


def echo_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head([f"{UNIT[w]} (median)", "range", "p50 µs", "p99 µs", "server CPU", "client CPU",
              "server RSS MiB", "× asyncio", "× clibuv", "runs", "max foreign CPU"])
    ref = {p: med(runs.get((w, p), []), "rate") for p in ("asyncio", "clibuv")}
    for p in PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        row = [f"**{p}**" if p == "lasync" else p, f"{rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
               f"{med(rs, 'p50_us'):,.0f}", f"{med(rs, 'p99_us'):,.0f}",
               f"{med(rs, 'server_cpu'):.2f}", f"{med(rs, 'client_cpu'):.2f}", mib(med(rs, "rss_kb"))]
        row += [fmt_ratio(rate / ref[q]) if ref[q] else "" for q in ("asyncio", "clibuv")]
        row += [str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes, runs)


def http_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head([f"{UNIT[w]} (median)", "range", "p50 µs", "p99 µs", "server CPU", "server CPU µs/req", "wrk CPU",
              "server RSS MiB",
              "× nginx + Lua", "× go", "× clibuv", "errors", "runs", "max foreign CPU"])
    ref = {p: med(runs.get((w, p), []), "rate") for p in ("nginx", "go", "clibuv")}
    for p in PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        row = [f"**{p}**" if p == "lasync" else HTTP_LABEL.get(p, p), f"{rate:,.0f}",
               f"{min(rates):,.0f}–{max(rates):,.0f}", f"{med(rs, 'p50_us'):,.0f}", f"{med(rs, 'p99_us'):,.0f}",
               f"{med(rs, 'server_cpu'):.2f}", f"{med(rs, 'server_us_per_req'):.1f}",
               f"{med(rs, 'client_cpu'):.2f}", mib(med(rs, "rss_kb"))]
        row += [fmt_ratio(rate / ref[q]) if ref[q] else "" for q in ("nginx", "go", "clibuv")]
        row += [f"{sum(int(r.get('errors', 0)) for r in rs):,}", str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes, runs)


def client_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head([f"{UNIT[w]} (median)", "range", "p50 µs", "p99 µs", "client CPU µs/req", "client RSS MiB",
              "nginx CPU µs/req", "connections", "× aiohttp (asyncio)", "× go", "errors", "runs",
              "max foreign CPU"])
    ref = {p: med(runs.get((w, p), []), "rate") for p in ("asyncio", "go")}
    for p in PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        row = [f"**{p}**" if p == "lasync" else CLIENT_LABEL.get(p, p), f"{rate:,.0f}",
               f"{min(rates):,.0f}–{max(rates):,.0f}", f"{med(rs, 'p50_us'):,.0f}", f"{med(rs, 'p99_us'):,.0f}",
               f"{med(rs, 'client_us_per_req'):.1f}", mib(med(rs, "rss_kb")), f"{med(rs, 'server_us_per_req'):.1f}",
               "/".join(sorted({r.get("conns", "?") for r in rs}, key=lambda c: int(c) if c.isdigit() else 0))]
        row += [fmt_ratio(rate / ref[q]) if ref[q] else "" for q in ("asyncio", "go")]
        row += [f"{sum(int(r.get('errors', 0)) for r in rs):,}", str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes, runs)


def idle_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head(["bytes/conn (median)", "range", "connections", "server RSS before MiB", "after MiB", "runs",
              "max foreign CPU"])
    for p in PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        b = [float(r["bytes_per_conn"]) for r in rs]
        label = HTTP_LABEL.get(p, p) if w == "httpidle" else p
        row = [f"**{p}**" if p == "lasync" else label, f"{statistics.median(b):,.0f}", f"{min(b):,.0f}–{max(b):,.0f}",
               "/".join(sorted({r.get("n", "?") for r in rs})),
               mib(med(rs, "rss_before_kb")), mib(med(rs, "rss_after_kb")), str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes, runs)


def cpus(rs):  # run.sh's THREAD_CPUS (taskset list) for tothread and fileread
    return " / ".join(sorted({r.get("cpus", "0") for r in rs}))


def tothread_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head(["calls/s gathered (median)", "range", "p50 µs one at a time", "p99 µs", "calls/s one at a time",
              "peak RSS MiB", "× asyncio (gathered)", "× asyncio (p50)", "CPUs", "runs", "max foreign CPU"])
    ref_rate, ref_p50 = med(runs.get((w, "asyncio"), []), "rate"), med(runs.get((w, "asyncio"), []), "p50_us")
    for p in PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate, p50 = med(rs, "rate"), med(rs, "p50_us")
        rates = [float(r["rate"]) for r in rs]
        row = [f"**{p}**" if p == "lasync" else p, f"{rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
               f"{p50:,.1f}", f"{med(rs, 'p99_us'):,.1f}", f"{med(rs, 'seq_rate'):,.0f}", mib(med(rs, "rss_kb")),
               fmt_ratio(rate / ref_rate) if ref_rate else "", fmt_ratio(ref_p50 / p50) if ref_p50 and p50 else "",
               cpus(rs), str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes)


def fileread_table(w, runs, notes):
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        head(["MiB/s (median)", "range", "seconds", "peak RSS MiB", "× cat", "× asyncio", "reads", "CPUs", "runs",
              "max foreign CPU"])
    ref = {q: med(runs.get((w, q), []), "rate") for q in ("cat", "asyncio")}
    for p in ["cat"] + [q for q in PEERS if q != "cat"]:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        how = "/".join(sorted({{"65536": "64 KiB", "cat": "cat's (128 KiB)"}.get(r.get("chunk"), r.get("chunk", "?"))
                               + (f", {r['api']}" if r.get("api") else "") for r in rs}))
        row = [f"**{p}**" if p == "lasync" else p, f"{rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
               f"{med(rs, 'seconds'):.3f}", mib(med(rs, "rss_kb"))]
        row += [fmt_ratio(rate / ref[q]) if ref[q] else "" for q in ("cat", "asyncio")]
        row += [how, cpus(rs), str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes)


# processpool (bench/processpool/): jobs/s of a CPU-bound map over
# lasync.ProcessPool(2) against the same jobs inline; workers1 / workers2
# (bench/workers/): requests/s of a handler doing ~200 us of work, served by
# 1 and by 2 processes (lasync -w N, node cluster, Go GOMAXPROCS=N), on
# both CPUs. Targets: the pool ≥ 1.8× inline, lasync -w 2 ≥ 1.8× -w 1.
PROC = ("processpool",)
WORKERS = ("workers1", "workers2")
WORKERS_PEERS = ["lasync", "node", "go"]
WORKERS_LABEL = {"lasync": "lasync -w N", "node": "node cluster (N workers)", "go": "Go net/http (GOMAXPROCS=N)"}
WORKLOADS += [w for w in PROC + WORKERS if w not in WORKLOADS]
UNIT.update({"processpool": "jobs/s", "workers1": "requests/s", "workers2": "requests/s"})
DEFAULT_N["processpool"] = 256


def proc_table(w, runs, notes):
    print(f"\n### {w}\n")
    rs = runs.get((w, "lasync"), [])
    if not rs:
        print("(no results)")
    else:
        head(["jobs/s pool (median)", "range", "jobs/s inline", "speedup (median)", "job ms inline", "workers",
              "start ms", "CPUs", "runs", "max foreign CPU"])
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        row = ["**lasync**", f"{rate:,.1f}", f"{min(rates):,.1f}–{max(rates):,.1f}", f"{med(rs, 'inline_rate'):,.1f}",
               fmt_ratio(med(rs, "speedup")), f"{med(rs, 'job_ms'):.1f}",
               "/".join(sorted({r.get("workers", "?") for r in rs})), f"{med(rs, 'start_ms'):.0f}", cpus(rs),
               str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes)


def workers_table(w, runs, notes):
    if w == "workers2" and any(k[0] == "workers1" for k in list(runs) + list(notes)):
        return  # shown with workers1
    print("\n### workers (1 and 2 processes)\n")
    if not any(runs.get((x, p)) for x in WORKERS for p in WORKERS_PEERS):
        print("(no results)")
    else:
        head(["N=1 requests/s (median)", "N=2 requests/s (median)", "× (N=2 / N=1)", "N=2 range", "N=2 p50 µs",
              "N=2 p99 µs", "server CPU N=1 / N=2", "server CPU µs/req N=1 / N=2", "wrk CPU", "errors", "runs",
              "max foreign CPU"])
    for p in WORKERS_PEERS:
        r1, r2 = runs.get(("workers1", p), []), runs.get(("workers2", p), [])
        if not r1 and not r2:
            continue
        a, b = med(r1, "rate"), med(r2, "rate")
        rates = [float(r["rate"]) for r in r2]
        row = [f"**{WORKERS_LABEL[p]}**" if p == "lasync" else WORKERS_LABEL[p],
               f"{a:,.0f}" if a is not None else "", f"{b:,.0f}" if b is not None else "",
               fmt_ratio(b / a) if a and b is not None else "",
               f"{min(rates):,.0f}–{max(rates):,.0f}" if rates else "",
               f"{med(r2, 'p50_us'):,.0f}" if r2 else "", f"{med(r2, 'p99_us'):,.0f}" if r2 else "",
               " / ".join(f"{med(x, 'server_cpu'):.2f}" if x else "-" for x in (r1, r2)),
               " / ".join(f"{med(x, 'server_us_per_req'):.0f}" if x else "-" for x in (r1, r2)),
               f"{max(float(r.get('client_cpu', 0)) for r in r1 + r2):.2f}",
               f"{sum(int(r.get('errors', 0)) for r in r1 + r2):,}", f"{len(r1)}/{len(r2)}", foreign(r1 + r2)]
        print("| " + " | ".join(row) + " |")
    notes_lines("workers1", notes)
    notes_lines("workers2", notes)


def proc_checks(runs):
    """The processpool / workers targets, as targets() lists its checks."""
    def m(w, p, k="rate"):
        return med(runs.get((w, p), []), k)

    def scaling(p):
        a, b = m("workers1", p), m("workers2", p)
        return b / a if a and b is not None else None

    checks = [
        ("processpool", "processpool: ProcessPool(2) ≥ 1.8× inline (jobs/s, median of the runs' speedups)",
         m("processpool", "lasync", "speedup"), lambda v: v >= 1.8, fmt_ratio),
        ("workers2", "workers: lasync -w 2 ≥ 1.8× lasync -w 1 (requests/s)", scaling("lasync"),
         lambda v: v >= 1.8, fmt_ratio),
        ("workers2", "workers (reference): node cluster 2 workers / 1 worker ≥ 1.8× (requests/s)", scaling("node"),
         lambda v: v >= 1.8, fmt_ratio),
        ("workers2", "workers (reference): Go GOMAXPROCS=2 / GOMAXPROCS=1 ≥ 1.8× (requests/s)", scaling("go"),
         lambda v: v >= 1.8, fmt_ratio),
    ]
    return checks


def proc_size_warning(w, runs):
    rs = [r for p in PEERS for r in runs.get((w, p), [])]
    if w in PROC:
        ns = {r.get("n") for r in rs}
        n = str(DEFAULT_N[w])
        return "" if ns <= {n} else f" (sizes n={','.join(sorted(ns))}; the target assumes n={n})"
    rs += [r for p in PEERS for r in runs.get(("workers1", p), [])]
    odd = [r for r in rs if abs(float(r.get("seconds", 0)) - ECHO_DEFAULT["seconds"]) > 0.5]
    return f" (up to {max(float(r.get('seconds', 0)) for r in odd):.1f} s measured; targets assume 5 s)" if odd else ""



def table(w, runs, notes):
    if w in PG:
        return pg_table(w, runs, notes)
    if w == "tothread":
        return tothread_table(w, runs, notes)
    if w == "fileread":
        return fileread_table(w, runs, notes)
    if w in ECHO or w in TLS:
        return echo_table(w, runs, notes)
    if w in HTTP:
        return http_table(w, runs, notes)
    if w in CLIENT:
        return client_table(w, runs, notes)
    if w in ("echoidle", "tlsidle", "httpidle"):
        return idle_table(w, runs, notes)
    if w in PROC:
        return proc_table(w, runs, notes)
    if w in WORKERS:
        return workers_table(w, runs, notes)
    per = PER.get(w)
    cols = [f"{UNIT[w]} (median)", "range", "seconds", "peak RSS MiB"]
    if per:
        cols.append(per[1])
    cols += ["× asyncio", "× luv", "runs", "max foreign CPU"]
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in PEERS):
        print("(no results)")
    else:
        print("| peer | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
    ref = {p: med(runs.get((w, p), []), "rate") for p in ("asyncio", "luv")}
    for p in PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        rss = med(rs, "rss_kb")
        row = [f"**{p}**" if p == "lasync" else p, f"{rate:,.0f}",
               f"{min(rates):,.0f}–{max(rates):,.0f}", f"{med(rs, 'seconds'):.3f}",
               f"{rss / 1024:.1f}" if rss is not None and rss >= 0 else "n/a"]
        if per:
            b = med(rs, per[0])
            row.append(f"{b:,.0f}" if b is not None else "n/a")
        row += [fmt_ratio(rate / ref[q]) if ref[q] else "" for q in ("asyncio", "luv")]
        row += [str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    notes_lines(w, notes)


def targets(runs, notes):
    def m(w, p, k="rate"):
        return med(runs.get((w, p), []), k)

    def ratio(w, a, b):
        x, y = m(w, a), m(w, b)
        return x / y if x is not None and y else None

    def ahead(w):
        # lasync's median rate over the best median among ECHO_PEERS that ran
        have = {p: m(w, p) for p in ECHO_PEERS if m(w, p) is not None}
        x = m(w, "lasync")
        if x is None or not have:
            return None
        best = max(have, key=have.get)
        missing = [p for p in ECHO_PEERS if p not in have]
        return (x / have[best], best, missing)

    def at_least(w):
        # lasync's median rate over the best median among TLS_PEERS that ran
        have = {p: m(w, p) for p in TLS_PEERS if m(w, p) is not None}
        x = m(w, "lasync")
        if x is None or not have:
            return None
        best = max(have, key=have.get)
        return (x / have[best], best, [p for p in TLS_PEERS if p not in have])

    def client_at_least(w):
        # lasync's median rate over the best median among CLIENT_PEERS that ran
        have = {p: m(w, p) for p in CLIENT_PEERS if m(w, p) is not None}
        x = m(w, "lasync")
        if x is None or not have:
            return None
        best = max(have, key=have.get)
        return (x / have[best], best, [p for p in CLIENT_PEERS if p not in have])

    def show_ahead(v):
        r, best, missing = v
        return f"{fmt_ratio(r)} the best peer ({best})" + (f"; no data: {', '.join(missing)}" if missing else "")

    checks = [
        # (workload, description, measured value, predicate, shown as)
        ("spawn", "spawn: lasync ≥ 30× asyncio (rate)", ratio("spawn", "lasync", "asyncio"), lambda v: v >= 30, fmt_ratio),
        ("spawn", "spawn: lasync ≥ 5× luv (rate)", ratio("spawn", "lasync", "luv"), lambda v: v >= 5, fmt_ratio),
        ("spawn", "spawn: lasync within 3× of a bare coroutine (bare rate / lasync rate ≤ 3)",
         ratio("spawn", "bare", "lasync"), lambda v: v <= 3, fmt_ratio),
        ("pingpong", "pingpong: lasync ≥ node (rate)", ratio("pingpong", "lasync", "node"), lambda v: v >= 1, fmt_ratio),
        ("pingpong", "pingpong (reference): bare Lua coroutines ≥ node — if MISS, no Lua 5.4 coroutine runtime can meet the target",
         ratio("pingpong", "bare", "node"), lambda v: v >= 1, fmt_ratio),
        ("pingpong", "pingpong (reference): lasync within 3× of bare coroutines (bare rate / lasync rate ≤ 3)",
         ratio("pingpong", "bare", "lasync"), lambda v: v <= 3, fmt_ratio),
        ("sleepers", "sleepers: lasync wall ≤ 1.1 s", m("sleepers", "lasync", "seconds"), lambda v: v <= 1.1,
         lambda v: f"{v:.3f} s"),
        ("sleepers", "sleepers: lasync bytes/task ≤ 1536", m("sleepers", "lasync", "bytes_per_task"), lambda v: v <= 1536,
         lambda v: f"{v:,.0f} B"),
        ("qpingpong", "qpingpong: lasync ≥ node (rate)", ratio("qpingpong", "lasync", "node"), lambda v: v >= 1, fmt_ratio),
        ("qpingpong", "qpingpong (reference): bare Lua coroutines ≥ node — if MISS, no Lua 5.4 coroutine runtime can meet the target",
         ratio("qpingpong", "bare", "node"), lambda v: v >= 1, fmt_ratio),
        ("qpingpong", "qpingpong (reference): lasync within 3× of bare coroutines (bare rate / lasync rate ≤ 3)",
         ratio("qpingpong", "bare", "lasync"), lambda v: v <= 3, fmt_ratio),
        ("qthroughput", "qthroughput: lasync ≥ 10× asyncio (rate)", ratio("qthroughput", "lasync", "asyncio"),
         lambda v: v >= 10, fmt_ratio),
        ("lockcontention", "lockcontention: lasync ≥ 10× asyncio (rate)", ratio("lockcontention", "lasync", "asyncio"),
         lambda v: v >= 10, fmt_ratio),
    ]
    checks += proc_checks(runs)
    for w in ECHO:
        checks += [
            (w, f"{w}: lasync ≥ 0.9× the C libuv server (rate)", ratio(w, "lasync", "clibuv"), lambda v: v >= 0.9,
             fmt_ratio),
            (w, f"{w}: lasync ahead of every peer ({', '.join(ECHO_PEERS)}) (rate)", ahead(w), lambda v: v[0] > 1,
             show_ahead),
        ]
    checks.append(("echoidle", "echoidle: lasync server RSS per idle connection ≤ 4096 B",
                   m("echoidle", "lasync", "bytes_per_conn"), lambda v: v <= 4096, lambda v: f"{v:,.0f} B"))
    checks += [
        ("tlsecho", "tlsecho: lasync ≥ 0.9× the C libuv + OpenSSL server (rate)", ratio("tlsecho", "lasync", "clibuv"),
         lambda v: v >= 0.9, fmt_ratio),
        ("tlsecho", f"tlsecho: lasync ≥ every peer ({', '.join(TLS_PEERS)}) (rate)", at_least("tlsecho"),
         lambda v: v[0] >= 1, show_ahead),
        ("tlshandshake", f"tlshandshake: lasync ≥ every peer ({', '.join(TLS_PEERS)}) (handshakes/s)",
         at_least("tlshandshake"), lambda v: v[0] >= 1, show_ahead),
        ("tlsidle", "tlsidle: lasync server RSS per idle TLS connection ≤ 16 KB (16384 B)",
         m("tlsidle", "lasync", "bytes_per_conn"), lambda v: v <= 16384, lambda v: f"{v:,.0f} B"),
    ]
    checks += [
        ("httphello", "httphello: lasync ≥ 1.0× nginx + its Lua module (requests/s)",
         ratio("httphello", "lasync", "nginx"), lambda v: v >= 1.0, fmt_ratio),
        ("httphello", "httphello: lasync ≥ 1.3× Go net/http (requests/s)",
         ratio("httphello", "lasync", "go"), lambda v: v >= 1.3, fmt_ratio),
        ("httpjson", "httpjson: lasync ≥ 1.2× Go net/http (requests/s)",
         ratio("httpjson", "lasync", "go"), lambda v: v >= 1.2, fmt_ratio),
        ("httpidle", "httpidle: lasync server RSS per idle keep-alive HTTP connection ≤ 8 KB (8192 B)",
         m("httpidle", "lasync", "bytes_per_conn"), lambda v: v <= 8192, lambda v: f"{v:,.0f} B"),
    ]
    for w in CLIENT:
        checks += [
            (w, f"{w}: lasync ≥ 5× aiohttp on asyncio (requests/s)", ratio(w, "lasync", "asyncio"),
             lambda v: v >= 5, fmt_ratio),
            (w, f"{w}: lasync ≥ every peer ({', '.join(CLIENT_PEERS)}) (requests/s)", client_at_least(w),
             lambda v: v[0] >= 1, show_ahead),
        ]
    checks.append(("fileread", "fileread: lasync ≥ 0.7× cat (MiB/s, 64 KiB reads from the page cache)",
                   ratio("fileread", "lasync", "cat"), lambda v: v >= 0.7, fmt_ratio))
    checks += pg_checks(runs)
    ran = {w for w, _ in list(runs) + list(notes)}
    checks = [c for c in checks if c[0] in ran]
    if not checks:
        return
    print("\n### targets (medians of this log)\n")
    for w, desc, v, ok, show in checks:
        verdict = "n/a " if v is None else "PASS" if ok(v) else "MISS"
        warn = size_warning(w, runs)
        print(f"- {verdict} {desc}: {'no data' if v is None else show(v)}{warn}")
    for w in CLIENT:  # reported, not a target with a bound
        rss = {p: m(w, p, "rss_kb") for p in ["lasync"] + CLIENT_PEERS if m(w, p, "rss_kb") is not None}
        if w in ran and rss:
            print(f"- info {w}: client peak RSS MiB: " + ", ".join(f"{p} {mib(v)}" for p, v in rss.items()))


def size_warning(w, runs):
    if w in PG:
        return pg_size_warning(w, runs)
    rs = [r for p in PEERS for r in runs.get((w, p), [])]
    if w in CLIENT:
        odd = sorted({f"n={r.get('n')} conc={r.get('conc')}" for r in rs
                      if r.get("n") != CLIENT_DEFAULT["n"] or r.get("conc") != CLIENT_DEFAULT["conc"]})
        return f" (sizes {', '.join(odd)}; targets assume n=20000 conc=100)" if odd else ""
    if w in ECHO or w in TLS or w in HTTP:
        odd = [r for r in rs if r.get("conns") != ECHO_DEFAULT["conns"]
               or abs(float(r.get("seconds", 0)) - ECHO_DEFAULT["seconds"]) > 0.5]
        if not odd:
            return ""
        cs = sorted({r.get("conns", "?") for r in rs})
        return (f" (conns={','.join(cs)}, up to {max(float(r.get('seconds', 0)) for r in rs):.1f} s measured;"
                f" targets assume conns=100, 5 s)")
    if w in PROC or w in WORKERS:
        return proc_size_warning(w, runs)
    ns = {r.get("n") for r in rs}
    return "" if ns <= {str(DEFAULT_N[w])} else f" (sizes n={','.join(sorted(ns))}; targets assume n={DEFAULT_N[w]})"


# ---- redisops (issue 14): its own peers, table and targets
REDIS_PEERS = ["lasync", "lasyncpool", "redispy", "ioredis", "redisbench"]
REDIS_LABEL = {"lasync": "**lasync** (one connection)", "lasyncpool": "lasync (pool, a connection per task)",
               "redispy": "redis-py asyncio (pool)", "ioredis": "node ioredis",
               "redisbench": "redis-benchmark -P 1 (ceiling)"}
REDIS_DEFAULT = {"n": "200000", "conc": "50"}  # run.sh's REDIS_N and REDIS_C


def redisops(runs, notes):
    w = "redisops"
    if not any(k[0] == w for k in list(runs) + list(notes)):
        return
    print(f"\n### {w}\n")
    if not any(runs.get((w, p)) for p in REDIS_PEERS):
        print("(no results)")
    else:
        head(["ops/s (median)", "range", "× redis-py", "× ioredis", "× redis-benchmark", "client RSS MiB",
              "redis CPU µs/op", "runs", "max foreign CPU"])
    ref = {p: med(runs.get((w, p), []), "rate") for p in ("redispy", "ioredis", "redisbench")}
    for p in REDIS_PEERS:
        rs = runs.get((w, p), [])
        if not rs:
            continue
        rate = med(rs, "rate")
        rates = [float(r["rate"]) for r in rs]
        rss = med(rs, "rss_kb")
        row = [REDIS_LABEL[p], f"{rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}"]
        row += [fmt_ratio(rate / ref[q]) if ref[q] else "" for q in ("redispy", "ioredis", "redisbench")]
        row += [mib(rss) if rss is not None else "", f"{med(rs, 'server_us_per_op'):.2f}", str(len(rs)), foreign(rs)]
        print("| " + " | ".join(row) + " |")
    lines = []
    for p in REDIS_PEERS:  # SKIP and FAIL lines (notes_lines knows PEERS only)
        for kind, d, line in notes.get((w, p), []):
            lines.append(f"- {p}: SKIP — {d.get('reason', '')}" if kind == "SKIP" else f"- {p}: **FAIL** — {line[5:][:400]}")
    if lines:
        print("\n" + "\n".join(lines))
    # lasync's better variant (one connection or the pool) is the one checked
    mine = [v for v in (med(runs.get((w, p), []), "rate") for p in ("lasync", "lasyncpool")) if v is not None]
    x = max(mine) if mine else None
    others = {p: ref[p] for p in ("redispy", "ioredis") if ref[p]}
    odd = sorted({f"n={r.get('n')} conc={r.get('conc')}" for p in REDIS_PEERS for r in runs.get((w, p), [])
                  if r.get("n") != REDIS_DEFAULT["n"] or r.get("conc") != REDIS_DEFAULT["conc"]})
    warn = f" (sizes {', '.join(odd)}; targets assume n=200000 conc=50)" if odd else ""
    print("\n### redisops targets (medians of this log)\n")
    if x is None or not others:
        print(f"- n/a  redisops: lasync ≥ every peer (redis-py, ioredis): no data{warn}")
    else:
        best = max(others, key=others.get)
        missing = [p for p in ("redispy", "ioredis") if p not in others]
        verdict = "PASS" if x >= others[best] else "MISS"
        print(f"- {verdict} redisops: lasync ≥ every peer (redis-py, ioredis): {fmt_ratio(x / others[best])} the best"
              f" ({best})" + (f"; no data: {', '.join(missing)}" if missing else "") + warn)
    if x is None or not ref["redisbench"]:
        print(f"- n/a  redisops: lasync ≥ 0.8× redis-benchmark -c 50 -P 1: no data{warn}")
    else:
        r = x / ref["redisbench"]
        print(f"- {'PASS' if r >= 0.8 else 'MISS'} redisops: lasync ≥ 0.8× redis-benchmark -c 50 -P 1: "
              f"{fmt_ratio(r)}{warn}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs, notes, header = load(sys.argv[1:])
    for h in header:
        print(h)
    for w in WORKLOADS:
        if any(k[0] == w for k in list(runs) + list(notes)):
            table(w, runs, notes)
    targets(runs, notes)
    redisops(runs, notes)


if __name__ == "__main__":
    main()
