"""ws_clients.py PORT BIN [stop] - mdb-ws spoken to by Python's websockets
library (Debian's python3-websockets, run by /usr/bin/python3), in JSON and
in MessagePack: the snapshot then deltas chained by seq/prev_seq that
rebuild exactly the next snapshot, subscribe/unsubscribe/resync acked with
their ids, a missed delta repaired by a resync, close codes 1000 and 1003.
With "stop": connect, say so, and expect the server's 1001 on SIGTERM.
ws_clients.js does the same with Node's ws."""
import asyncio
import json
import sys

import msgpack
import websockets

import ws_feed
from ws_feed import IV

port, bindir = int(sys.argv[1]), sys.argv[2]
WAIT = 10  # seconds any one expected message may take (ASan, a loaded machine)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Feeder(ws_feed.Feeder):
    async def bars(self, sym, k, pause=0.02):
        """k new bars of sym, one every pause seconds; returns the last."""
        for _ in range(k):
            b = self.bar(sym)
            await asyncio.sleep(pause)
        return b


class Client:
    """A websockets connection and the streams it rebuilds from snapshots
    and deltas."""

    def __init__(self, ws, fmt):
        self.ws, self.fmt = ws, fmt
        self.state = {}  # sym -> {"seq": n, "f": {fields}}
        self.deltas = 0
        self.skip_next = False  # drop the next delta on purpose (a simulated loss)

    async def recv(self):
        m = await asyncio.wait_for(self.ws.recv(), WAIT)
        if isinstance(m, bytes):
            check(self.fmt == "msgpack", "binary frame on a JSON connection")
            d = msgpack.unpackb(m, raw=False)
            check(d["type"] in ("snapshot", "delta"), f"binary frame that is not data: {d}")
            return d
        d = json.loads(m)
        check(self.fmt == "json" or d["type"] not in ("snapshot", "delta"),
              f"data as text on a MessagePack connection: {d}")
        return d

    def apply(self, m):
        """Fold a snapshot or delta in; False when a delta does not follow."""
        s = m["s"]
        check(m["iv"] == IV, f"iv {m}")
        body = {k: v for k, v in m.items() if k not in ("type", "s", "iv", "seq", "prev_seq")}
        if m["type"] == "snapshot":
            self.state[s] = {"seq": m["seq"], "f": body}
            return True
        if self.skip_next:
            self.skip_next = False
            return True
        st = self.state.get(s)
        check(st is not None, f"delta before a snapshot: {m}")
        check(m["seq"] == m["prev_seq"] + 1, f"seq {m}")
        if m["prev_seq"] != st["seq"]:
            return False
        st["seq"] = m["seq"]
        for k, v in body.items():
            if v is None:
                st["f"].pop(k, None)
            else:
                st["f"][k] = v
        self.deltas += 1
        return True

    async def data_until(self, done, acks=None):
        """Read data (and acks into acks) until done(); a gap fails."""
        while not done():
            m = await self.recv()
            if m["type"] == "ack" and acks is not None:
                acks.append(m)
                continue
            check(m["type"] in ("snapshot", "delta"), f"unexpected {m}")
            check(self.apply(m), f"gap: {m} after seq {self.state[m['s']]['seq']}")

    def at(self, sym, bar):
        st = self.state.get(sym)
        return st is not None and st["f"].get("ts") == bar["ts"] and st["f"].get("c") == bar["c"]

    async def control(self, msg):
        """Send a control message; data before its answer is folded in."""
        await self.ws.send(json.dumps(msg))
        while True:
            m = await self.recv()
            if m["type"] in ("ack", "error"):
                check(m["id"] == msg["id"], f"answer to id {msg['id']}: {m}")
                return m
            check(self.apply(m), f"gap: {m}")

    async def resync_matches(self, sym, rid, equal=True):
        """resync: the ack, then a snapshot equal to what the deltas built
        (unless equal is false: after a gap)."""
        a = await self.control({"op": "resync", "symbols": [sym], "id": rid})
        check(a["type"] == "ack" and a["op"] == "resync", f"resync: {a}")
        built = json.loads(json.dumps(self.state[sym]))
        while True:
            m = await self.recv()
            if m["type"] == "snapshot" and m["s"] == sym:
                break
            check(self.apply(m), f"gap: {m}")
            built = json.loads(json.dumps(self.state[sym]))
        self.apply(m)
        check(not equal or self.state[sym] == built, f"{sym}: the deltas built {built}, the snapshot is "
              f"{self.state[sym]}")


async def live_data(fmt):
    """One symbol's stream: snapshot, deltas, resync, a lost delta, close 1000."""
    sym = "PYL" + fmt[0].upper()
    feed = Feeder(bindir)
    await feed.bars(sym, 5, 0)
    if fmt == "msgpack":  # the subprotocol asks for MessagePack
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/live_data/{sym}?iv={IV}",
                                      subprotocols=["mdb.msgpack"])
        check(ws.subprotocol == "mdb.msgpack", f"subprotocol {ws.subprotocol}")
    else:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/live_data/{sym}")
    c = Client(ws, fmt)
    m = await c.recv()
    check(m["type"] == "snapshot" and m["s"] == sym, f"first message {m}")
    c.apply(m)
    seq0 = m["seq"]
    last = await feed.bars(sym, 30)
    await c.data_until(lambda: c.at(sym, last))
    check(c.deltas >= 2, f"{c.deltas} deltas for 30 bars")
    await c.resync_matches(sym, "r1")
    # a delta lost on purpose: the next one does not follow; resync repairs
    last = await feed.bars(sym, 1)
    c.skip_next = True
    while c.skip_next:
        c.apply(await c.recv())
    last = await feed.bars(sym, 1)
    m = await c.recv()
    check(m["type"] == "delta" and not c.apply(m), f"no gap seen: {m}")
    await c.resync_matches(sym, "gap", equal=False)
    check(c.at(sym, last), f"after the resync: {c.state[sym]}")
    feed.close()
    await ws.close(1000, "bye")
    check(ws.close_code == 1000, f"close code {ws.close_code}")
    print(f"ok - python websockets {fmt}: /ws/live_data snapshot seq {seq0}, {c.deltas} deltas "
          f"chained to seq {c.state[sym]['seq']}, resync snapshot equal to the deltas' sum, "
          f"a lost delta repaired by resync, close 1000 echoed")


async def multi(fmt):
    """/ws: subscribe two streams, unsubscribe one, resync the other."""
    a, b = "PYA" + fmt[0].upper(), "PYB" + fmt[0].upper()
    feed = Feeder(bindir)
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?format={fmt}")
    c = Client(ws, fmt)
    ack = await c.control({"op": "subscribe", "symbols": [a, b], "iv": IV, "id": 11})
    check(ack == {"type": "ack", "op": "subscribe", "id": 11, "iv": IV, "symbols": [a, b]},
          f"ack {ack}")
    await c.data_until(lambda: a in c.state and b in c.state)
    for _ in range(10):
        la = await feed.bars(a, 1, 0.01)
        lb = await feed.bars(b, 1, 0.01)
    await c.data_until(lambda: c.at(a, la) and c.at(b, lb))
    n_both = c.deltas
    ack = await c.control({"op": "unsubscribe", "symbols": [b], "iv": IV, "id": 12})
    check(ack["type"] == "ack" and ack["op"] == "unsubscribe" and ack["symbols"] == [b],
          f"unsubscribe ack {ack}")
    seq_b = c.state[b]["seq"]
    for _ in range(5):
        await feed.bars(b, 1, 0.01)
        la = await feed.bars(a, 1, 0.01)
    await c.data_until(lambda: c.at(a, la))
    try:
        m = await asyncio.wait_for(c.recv(), 0.5)
        raise AssertionError(f"a frame after the last: {m}")
    except asyncio.TimeoutError:
        pass
    check(c.state[b]["seq"] == seq_b, f"{b} moved after unsubscribe")
    await c.resync_matches(a, "ra")
    e = await c.control({"op": "subscribe", "symbols": ["bad sym"], "id": 14})
    check(e["type"] == "error" and e["id"] == 14, f"error {e}")
    feed.close()
    if fmt == "json":
        # a binary control message is refused with 1003
        await ws.send(b"\x81\xa2op")
        try:
            await asyncio.wait_for(ws.recv(), WAIT)
            raise AssertionError("no close after a binary message")
        except websockets.ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 1003, f"close {e}")
        how = "binary message closed 1003"
    else:
        await ws.close(1000)
        check(ws.close_code == 1000, f"close {ws.close_code}")
        how = "close 1000"
    print(f"ok - python websockets {fmt}: /ws subscribe [{a}, {b}] id 11 acked, {n_both} deltas on "
          f"two chains, unsubscribe id 12 stops {b}, resync id ra equal, error id 14, {how}")


async def stop():
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
    await ws.send(json.dumps({"op": "subscribe", "symbols": ["PYS"], "id": 1}))
    check(json.loads(await ws.recv())["type"] == "ack", "ack")
    print("connected", flush=True)
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    except websockets.ConnectionClosed as e:
        check(e.rcvd is not None and e.rcvd.code == 1001, f"close {e}")
    print("ok - python websockets: SIGTERM closes with 1001 (going away)")


async def main():
    if sys.argv[3:] == ["stop"]:
        return await stop()
    for fmt in ("json", "msgpack"):
        await live_data(fmt)
        await multi(fmt)


asyncio.run(main())
