"""ws_feed.py - bars for the mdb-ws client tests (ws_clients, ws_dashboard,
ws_hostile): one mdb-pipe writes them as JSON lines into ring:bars of
$MDB_SHM_DIR, where mdb-feature makes the feat records the gateway serves."""
import json
import subprocess

T0 = 1700000000000000000
IV = 60


class Feeder:
    """One mdb-pipe writing final bars into ring:bars as they are given;
    each symbol's bars follow one another a minute apart."""

    def __init__(self, bindir):
        self.p = subprocess.Popen([bindir + "/mdb-pipe", "--json", "-o", "ring:bars"],
                                  stdin=subprocess.PIPE)
        self.n = {}

    def bar(self, sym):
        """Write sym's next bar now; returns it."""
        i = self.n.get(sym, 0)
        self.n[sym] = i + 1
        c = 100.0 + i * 0.25 + (i % 3) - 1  # a down candle every third bar
        b = {"t": "bar", "s": sym, "ts": T0 + i * IV * 10**9, "iv": IV, "o": 100.0 + i * 0.25,
             "h": c + 1, "l": c - 2, "c": c, "v": 10.0 + i, "n": 3, "f": 1}
        self.p.stdin.write((json.dumps(b) + "\n").encode())
        self.p.stdin.flush()
        return b

    def close(self):
        self.p.stdin.close()
        if self.p.wait() != 0:
            raise AssertionError("mdb-pipe failed")
