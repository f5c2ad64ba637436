"""A fixed keep-alive HTTP/1.1 load for callgrind.sh: N requests in all
over C connections, each connection one request at a time (as wrk does),
every answer checked to be a 200 with its Content-Length body.
usage: fixed_client.py PORT N C PATH"""
import selectors
import socket
import sys


def main():
    port, n, c, path = (int(sys.argv[1]), int(sys.argv[2]),
                        int(sys.argv[3]), sys.argv[4])
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
           % (path, port)).encode()
    sel = selectors.DefaultSelector()
    left, done = n, 0
    for _ in range(min(c, n)):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, {"s": s, "buf": b""})
        s.sendall(req)
        left -= 1
    while done < n:
        for key, _ in sel.select():
            st = key.data
            data = st["s"].recv(65536)
            if not data:
                sys.exit("fixed_client: the server closed a connection")
            st["buf"] += data
            while True:
                b = st["buf"]
                end = b.find(b"\r\n\r\n")
                if end < 0:
                    break
                at = b.lower().find(b"content-length: ")
                length = int(b[at + 16:b.find(b"\r\n", at)])
                if len(b) < end + 4 + length:
                    break
                if not b.startswith(b"HTTP/1.1 200"):
                    sys.exit("fixed_client: bad answer %r" % b[:80])
                st["buf"] = b[end + 4 + length:]
                done += 1
                if left > 0:
                    st["s"].sendall(req)
                    left -= 1


main()
