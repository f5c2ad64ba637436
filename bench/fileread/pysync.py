# fileread, synchronous Python for reference: open(FILE, "rb") and f.read(65536)
# until b"" (reads of 64 KiB bypass the BufferedReader's buffer), checking the
# byte count; MiB/s. n = the file's size in MiB. Run: python3 -P pysync.py FILE
import os, resource, sys, time

PATH = sys.argv[1]
size = os.stat(PATH).st_size
t0 = time.perf_counter()
total = 0
with open(PATH, "rb") as f:
    while True:
        b = f.read(65536)
        if not b:
            break
        total += len(b)
dt = time.perf_counter() - t0
assert total == size, (total, size)
mib = size / 1048576
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"RESULT workload=fileread peer=pysync n={round(mib)} seconds={dt:.6f} rate={mib/dt:.1f} rss_kb={rss}"
      f" chunk=65536", flush=True)
