# TLS echo server: asyncio streams with an ssl.SSLContext (start_server(ssl=),
# reader.read, writer.write + drain). The same handler as echo/asyncio.py.
# usage: python3 -P asyncio.py PORT CERTFILE KEYFILE   (-P: file name shadows asyncio)
import asyncio, socket, ssl, sys

PEER = globals().get("PEER", "asyncio")
PORT = int(sys.argv[1])
CERT, KEY = sys.argv[2], sys.argv[3]


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    writer.close()


async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERT, KEY)
    server = await asyncio.start_server(handle, "127.0.0.1", PORT, ssl=ctx, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
