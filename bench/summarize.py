#!/usr/bin/env python3
"""Median-of-runs tables and target checks from bench/run.sh logs.

usage: bench/summarize.py LOG [LOG...]   (reads RESULT / SKIP / FAIL lines)

Per workload and peer: median rate, rate range, median seconds, median peak
RSS, bytes/task (sleepers) or bytes/timer (timers), and the ratio of the
peer's median rate to asyncio's and to luv's (higher = faster). Then the
issue's targets, checked on the medians, PASS / MISS (or n/a without data).
Python 3 standard library only.
"""
import re
import statistics
import sys
from collections import defaultdict

PEERS = ["lasync", "asyncio", "uvloop", "node", "luv", "bare"]
WORKLOADS = ["spawn", "pingpong", "sleepers", "timers", "qpingpong", "qthroughput", "lockcontention"]
UNIT = {"spawn": "tasks/s", "pingpong": "round trips/s", "sleepers": "tasks/s", "timers": "timers/s",
        "qpingpong": "round trips/s", "qthroughput": "items/s", "lockcontention": "acquisitions/s"}
DEFAULT_N = {"spawn": 200000, "pingpong": 500000, "sleepers": 100000, "timers": 1000000,
             "qpingpong": 500000, "qthroughput": 1000000, "lockcontention": 1000000}
PER = {"sleepers": ("bytes_per_task", "bytes/task"), "timers": ("bytes_per_timer", "bytes/timer")}
KV = re.compile(r'(\w+)=("[^"]*"|\S+)')


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


def table(w, runs, notes):
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
        row += [str(len(rs)), f"{max(float(r.get('foreign_cpu', 0)) for r in rs):.2f}"]
        print("| " + " | ".join(row) + " |")
    out = []
    for p in PEERS:
        for kind, d, line in notes.get((w, p), []):
            if kind == "SKIP":
                out.append(f"- {p}: SKIP — {d.get('reason', '')}")
                break
        for kind, d, line in notes.get((w, p), []):
            if kind == "FAIL":
                out.append(f"- {p}: **FAIL** — {line[5:][:300]}")
    if out:
        print()
        print("\n".join(out))


def targets(runs, notes):
    def m(w, p, k="rate"):
        return med(runs.get((w, p), []), k)

    def ratio(w, a, b):
        x, y = m(w, a), m(w, b)
        return x / y if x is not None and y else None

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
    ran = {w for w, _ in list(runs) + list(notes)}
    checks = [c for c in checks if c[0] in ran]
    if not checks:
        return
    print("\n### targets (medians of this log)\n")
    for w, desc, v, ok, show in checks:
        verdict = "n/a " if v is None else "PASS" if ok(v) else "MISS"
        ns = {r.get("n") for p in PEERS for r in runs.get((w, p), [])}
        warn = "" if ns <= {str(DEFAULT_N[w])} else f" (sizes n={','.join(sorted(ns))}; targets assume n={DEFAULT_N[w]})"
        print(f"- {verdict} {desc}: {'no data' if v is None else show(v)}{warn}")


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


if __name__ == "__main__":
    main()
