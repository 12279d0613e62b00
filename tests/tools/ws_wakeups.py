"""ws_wakeups.py PORT BIN - mdb-ws's wake-ups from its input ring (see
ws_wakeups.sh): records written alone after a pause, at the end of bursts
that keep the loop busy, and at random small gaps must each reach a
subscriber promptly, in order and without a gap in seq. A wake-up lost
between the ring's watcher and the loop leaves a marker waiting for the
loop's next tick (at most a second while clients are connected): so a phase
fails when more than a quarter of its markers take over SLOW seconds."""
import json
import random
import subprocess
import sys
import time

from wsclient import WS

port, bindir = int(sys.argv[1]), sys.argv[2]
T0 = 1700000000000000000
LIMIT = 5.0  # seconds a marker may take at all
SLOW = 0.25  # a marker later than this waited for something else than its record


class Writer:
    """mdb-pipe writing feat records for W into ring:feat."""

    def __init__(self):
        self.p = subprocess.Popen([bindir + "/mdb-pipe", "--json", "-o", "ring:feat"],
                                  stdin=subprocess.PIPE)
        self.i = 0

    def records(self, n, rsi=None):
        """n records with a new vwap each; the last one's rsi set to rsi."""
        lines = []
        for k in range(n):
            self.i += 1
            r = {"t": "feat", "s": "W", "ts": T0, "iv": 60, "vwap": 100.0 + self.i * 0.25}
            if rsi is not None and k == n - 1:
                r["rsi"] = rsi
            lines.append(json.dumps(r) + "\n")
        self.p.stdin.write("".join(lines).encode())
        self.p.stdin.flush()

    def close(self):
        self.p.stdin.close()
        self.p.wait()


ws = WS(port, "/ws/live_data/W?iv=60")
w = Writer()
seq = None
worst = 0.0
delays = []


def expect(marker):
    """Read deltas until one carries rsi == marker; seq must not skip."""
    global seq, worst
    t0 = time.time()
    ws.s.settimeout(LIMIT)
    while True:
        if time.time() - t0 > LIMIT:
            raise AssertionError(f"marker {marker} not delivered in {LIMIT} s (seq {seq})")
        m = ws.recv_json()
        if m.get("type") not in ("delta", "snapshot"):
            continue
        if m["type"] == "delta" and seq is not None and m["prev_seq"] != seq:
            raise AssertionError(f"seq gap: prev_seq {m['prev_seq']} after {seq}")
        seq = m["seq"]
        if m.get("rsi") == marker:
            worst = max(worst, time.time() - t0)
            delays.append(time.time() - t0)
            return


def phase(what):
    """Report a phase; fail it when its markers were often late."""
    late = sum(d > SLOW for d in delays)
    if late * 4 > len(delays):
        raise AssertionError(f"{what}: {late} of {len(delays)} markers took over {SLOW} s")
    print(f"ok - {what} ({len(delays)} markers, {late} over {SLOW * 1000:.0f} ms, "
          f"worst {worst * 1000:.1f} ms)")
    delays.clear()


# the first record makes the stream: its snapshot or first delta
w.records(1, rsi=1.0)
expect(1.0)
n = 1
# alone after a pause: the watcher sleeps again past what it signalled
for k in range(30):
    time.sleep(0.02)
    n += 1
    w.records(1, rsi=float(n))
    expect(float(n))
phase("30 records alone after 20 ms pauses arrive")
# bursts that keep the loop reading, then a marker: a watcher that woke
# meanwhile parks, and the loop must arm it again before it sleeps
for k in range(40):
    n += 1
    w.records(random.choice((50, 300, 1500)), rsi=float(n))
    expect(float(n))
phase("the last record of 40 bursts arrives")
# random small gaps, markers written while earlier ones are in flight
rng = random.Random(6)
for k in range(200):
    n += 1
    w.records(rng.choice((1, 1, 2, 20)), rsi=float(n))
    if rng.random() < 0.5:
        time.sleep(rng.random() * 0.003)
    if k % 10 == 9:
        expect(float(n))
phase("200 records at random gaps arrive in order")
w.close()
ws.close()
