#!/usr/bin/python3
# ws_peer.py - the second peer of bench_ws: a broadcast server written with
# Python's `websockets` package (Debian python3-websockets) doing mdb-ws's
# job the usual way, like ws_peer.js. Clients connect to
# /ws/live_data/SYMBOL; updates arrive as JSON lines on a TCP feed port
# ({"s":..,"ts":..,"c":..,"rsi":..}); each becomes one delta message,
# serialized once and handed to websockets.broadcast() for every subscriber
# of its symbol (the package's fast path: no per-client coroutine).
# usage: /usr/bin/python3 ws_peer.py WS_PORT FEED_PORT   (prints "ready")
import asyncio
import json
import sys
from urllib.parse import unquote

import websockets

subs = {}
seq = {}


async def client(ws, path=None):
    path = path if path is not None else ws.path
    s = unquote(path.split("?")[0].replace("/ws/live_data/", ""))
    subs.setdefault(s, set()).add(ws)
    try:
        await ws.send(json.dumps({"type": "snapshot", "s": s, "iv": 60, "seq": seq.get(s, 0)},
                                 separators=(",", ":")))
        await ws.wait_closed()
    finally:
        subs[s].discard(ws)


async def feed(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        u = json.loads(line)
        s = u["s"]
        prev = seq.get(s, 0)
        seq[s] = prev + 1
        msg = json.dumps({"type": "delta", "s": s, "iv": 60, "seq": prev + 1, "prev_seq": prev,
                          "ts": u["ts"], "c": u["c"], "rsi": u["rsi"]}, separators=(",", ":"))
        group = subs.get(s)
        if group:
            websockets.broadcast(group, msg)


async def main():
    ws_port, feed_port = int(sys.argv[1]), int(sys.argv[2])
    async with websockets.serve(client, "127.0.0.1", ws_port, compression=None,
                                ping_interval=None, max_queue=None, backlog=8192):
        server = await asyncio.start_server(feed, "127.0.0.1", feed_port)
        print("ready", flush=True)
        async with server:
            await asyncio.Future()


asyncio.run(main())
