# fileread: read a file (1 GiB by default, made and cached in memory by run.sh)
# from start to end in 64 KiB chunks with aiofiles (`await f.read(65536)`: one
# loop.run_in_executor call per chunk, default executor), checking the byte
# count; MiB/s. n = the file's size in MiB. Without aiofiles (Debian:
# python3-aiofiles), each chunk is `await loop.run_in_executor(None, f.read,
# 65536)` on a plain file, as aiofiles does (extra field api=run_in_executor).
# Run with `python3 -P FILE` (file name shadows asyncio).
import asyncio, os, resource, sys, time

PEER = globals().get("PEER", "asyncio")
PATH = sys.argv[1]
try:
    import aiofiles
except ImportError:
    aiofiles = None


async def read_aiofiles():
    total = 0
    async with aiofiles.open(PATH, "rb") as f:
        while True:
            b = await f.read(65536)
            if not b:
                break
            total += len(b)
    return total


async def read_executor():
    loop = asyncio.get_running_loop()
    total = 0
    with open(PATH, "rb") as f:
        while True:
            b = await loop.run_in_executor(None, f.read, 65536)
            if not b:
                break
            total += len(b)
    return total


async def main():
    size = os.stat(PATH).st_size
    t0 = time.perf_counter()
    total = await (read_aiofiles() if aiofiles else read_executor())
    dt = time.perf_counter() - t0
    assert total == size, (total, size)
    mib = size / 1048576
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    api = "aiofiles" if aiofiles else "run_in_executor"
    print(f"RESULT workload=fileread peer={PEER} n={round(mib)} seconds={dt:.6f} rate={mib/dt:.1f} rss_kb={rss}"
          f" chunk=65536 api={api}", flush=True)


asyncio.run(main())
