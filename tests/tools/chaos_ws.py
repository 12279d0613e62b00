"""chaos_ws.py PORT SYMBOLS IVS STOPFILE - a WebSocket client of mdb-ws for
the chaos test: subscribes to every (symbol, iv) given (comma-separated),
follows each stream by seq, and reconnects whenever the gateway goes away
(killed and restarted), until STOPFILE exists. A gap is a delta whose
prev_seq is not the seq the client holds for its stream (or a delta before
the stream's snapshot on this connection); a resync notice is followed by
fresh snapshots, which reset the held seq. Prints one JSON line of figures;
exits 1 when it saw a gap."""
import json
import os
import socket
import sys
import time

from wsclient import WS, Closed

port, syms, ivs, stopfile = (int(sys.argv[1]), sys.argv[2].split(","),
                             [int(x) for x in sys.argv[3].split(",")], sys.argv[4])
fig = {"connections": 0, "snapshots": 0, "deltas": 0, "resync_notices": 0, "gaps": 0,
       "max_seq": 0}
gaps = []


def session():
    w = WS(port, "/ws", timeout=2)
    fig["connections"] += 1
    held = {}  # (s, iv) -> seq; seq numbers belong to one gateway process
    for k, iv in enumerate(ivs):
        w.send_json({"op": "subscribe", "symbols": syms, "iv": iv, "id": k})
    while not os.path.exists(stopfile):
        try:
            m = w.recv_json()
        except socket.timeout:
            continue
        t = m.get("type")
        key = (m.get("s"), m.get("iv"))
        if t == "snapshot":
            fig["snapshots"] += 1
            held[key] = m["seq"]
        elif t == "delta":
            fig["deltas"] += 1
            if held.get(key) != m["prev_seq"]:
                fig["gaps"] += 1
                gaps.append(f"{key}: held {held.get(key)}, delta {m['seq']} "
                            f"prev_seq {m['prev_seq']}")
            held[key] = m["seq"]
            fig["max_seq"] = max(fig["max_seq"], m["seq"])
        elif t == "resync":
            fig["resync_notices"] += 1
        elif t == "error":
            raise AssertionError(f"error from mdb-ws: {m}")
    w.close()


while not os.path.exists(stopfile):
    try:
        session()
    except (Closed, OSError):
        time.sleep(0.05)  # the gateway was killed: connect again
print(json.dumps(fig))
for g in gaps[:5]:
    print("gap:", g, file=sys.stderr)
sys.exit(1 if fig["gaps"] else 0)
