# httphello / httpjson / httpidle server: aiohttp (Debian python3-aiohttp,
# its C parser), keep-alive, access log off. GET / answers the 13-byte text
# "Hello, world\n"; GET /json a small JSON object encoded per request by
# aiohttp's json_response (the json module).
# usage: python3 -P asyncio.py PORT  (-P: the file's name shadows asyncio)
import asyncio, sys
from aiohttp import web

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
count = 0


async def hello(request):
    return web.Response(text="Hello, world\n")


async def json(request):
    global count
    count += 1
    return web.json_response({"message": "Hello, world", "n": count})


async def main():
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/json", json)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", PORT, backlog=1024)
    await site.start()
    await asyncio.Event().wait()


asyncio.run(main())
