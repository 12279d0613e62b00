"""e2e_peer.py SCID_FILE - the peer of bench_e2e: the kind of bridge mdb
replaces, in Python. A web server serves the directory of SCID_FILE over
HTTP (as the charting host did); the bridge GETs the whole file four times
a second, decodes the records it has not seen yet and pushes each one to
every WebSocket client as {"type":"delta","s":SYM,"c":PRICE,"v":VOLUME}
(Debian's python3-websockets). Prints "ready PORT" (the WebSocket port)
once it serves; runs until killed."""
import asyncio
import functools
import http.server
import json
import os
import struct
import sys
import threading
import urllib.request

import websockets

HEADER, RECORD = 56, 40
PERIOD = 0.25  # seconds: four polls a second


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    path = sys.argv[1]
    sym = os.path.basename(path).split(".")[0]
    handler = functools.partial(Quiet, directory=os.path.dirname(path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{os.path.basename(path)}"
    clients = set()

    def fetch():
        with urllib.request.urlopen(url) as r:
            return r.read()

    async def serve(ws, _path=None):
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def poll():
        loop = asyncio.get_running_loop()
        seen = max(0, (len(fetch()) - HEADER) // RECORD)
        due = loop.time()
        while True:
            due += PERIOD
            await asyncio.sleep(max(0.0, due - loop.time()))
            data = await loop.run_in_executor(None, fetch)
            n = max(0, (len(data) - HEADER) // RECORD)
            for i in range(seen, n):
                _, _, _, _, c, _, v, _, _ = struct.unpack_from("<q4f4I", data, HEADER + RECORD * i)
                websockets.broadcast(clients, json.dumps({"type": "delta", "s": sym, "c": c, "v": v}, separators=(",", ":")))
            seen = max(seen, n)

    async def run():
        async with websockets.serve(serve, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print("ready", port, flush=True)
            await poll()

    asyncio.run(run())


if __name__ == "__main__":
    main()
