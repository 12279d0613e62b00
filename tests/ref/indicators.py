#!/usr/bin/env python3
"""Reference indicators for mdb-feature's golden tests, written from the
published definitions (DESIGN.md section 4, TA-Lib's classic ones), not from
the C code: every value is recomputed from the whole history up to its bar,
with math.fsum for sums. Slow and obvious on purpose.

    indicators.py gen N SEED [--revisions] > bars.jsonl
        N bars of one series (60 s), some gap-filled, crossing a session
        start; with --revisions each closed bar is preceded by 0-3 random
        forming versions and sometimes followed by a repeat of itself.
    indicators.py expect < bars.jsonl > feat.jsonl
        the features of every closed bar (f & 1), as feat lines.
    indicators.py compare EXPECTED ACTUAL [REL]
        every closed-bar feat in EXPECTED is in ACTUAL with each value within
        REL (default 1e-9) relative; exit 1 with the worst mismatch if not.
"""
import json
import math
import random
import sys

P = dict(rsi=14, fast=12, slow=26, sig=9, bb=20, k=2.0, atr=14, vma=20, mom=10)
DAY = 86400 * 10**9
KEYS = ["rsi", "ema12", "ema26", "bbm", "bbu", "bbl", "atr", "vwap", "vma",
        "macd", "macds", "macdh", "mom"]


def gen(n, seed, revisions):
    rnd = random.Random(seed)
    # start 50 bars before a midnight UTC, so VWAP resets mid-series
    ts0 = 1700006400 * 10**9 - 50 * 60 * 10**9
    c = 100.0
    out = []
    for i in range(n):
        ts = ts0 + i * 60 * 10**9
        if i > 30 and rnd.random() < 0.05:
            out.append(dict(t="bar", s="GOLD", ts=ts, iv=60, o=c, h=c, l=c, c=c,
                            v=0.0, n=0, f=3))
            continue

        def bar(f):
            o = round(c + rnd.uniform(-1, 1), 2)
            cl = round(o + rnd.uniform(-2, 2), 2)
            h = round(max(o, cl) + rnd.uniform(0, 1), 2)
            lo = round(min(o, cl) - rnd.uniform(0, 1), 2)
            v = float(rnd.randint(0, 500))
            return dict(t="bar", s="GOLD", ts=ts, iv=60, o=o, h=h, l=lo, c=cl,
                        v=v, n=rnd.randint(1, 50), f=f)
        if revisions:
            for _ in range(rnd.randint(0, 3)):
                out.append(bar(0))
        b = bar(1)
        out.append(b)
        if revisions and rnd.random() < 0.1:
            out.append(dict(b))
        c = b["c"]
    for b in out:
        print(json.dumps(b, separators=(",", ":")))


def closed_bars(lines):
    bars = {}
    for line in lines:
        r = json.loads(line)
        if r.get("t") == "bar" and r["f"] & 1:
            bars[(r["s"], r["iv"], r["ts"])] = r  # a repeat replaces
    return [bars[k] for k in sorted(bars)]


def ema_series(x, n):
    """EMA seeded by the SMA of the first n values; None before."""
    out = [None] * len(x)
    if len(x) < n:
        return out
    e = math.fsum(x[:n]) / n
    out[n - 1] = e
    k = 2.0 / (n + 1)
    for i in range(n, len(x)):
        e = (x[i] - e) * k + e
        out[i] = e
    return out


def wilder(vals, n, first):
    """Wilder smoothing of vals[first:], seeded by the mean of the first n."""
    out = [None] * len(vals)
    if len(vals) - first < n:
        return out
    a = math.fsum(vals[first:first + n]) / n
    out[first + n - 1] = a
    for i in range(first + n, len(vals)):
        a = (a * (n - 1) + vals[i]) / n
        out[i] = a
    return out


def expect(lines):
    bars = closed_bars(lines)
    c = [b["c"] for b in bars]
    N = len(bars)
    fast, slow = ema_series(c, P["fast"]), ema_series(c, P["slow"])
    gains = [0.0] + [max(c[i] - c[i - 1], 0.0) for i in range(1, N)]
    losses = [0.0] + [max(c[i - 1] - c[i], 0.0) for i in range(1, N)]
    ag, al = wilder(gains, P["rsi"], 1), wilder(losses, P["rsi"], 1)
    tr = [0.0] + [max(bars[i]["h"] - bars[i]["l"], abs(bars[i]["h"] - c[i - 1]),
                      abs(bars[i]["l"] - c[i - 1])) for i in range(1, N)]
    atr = wilder(tr, P["atr"], 1)
    macd = [None if f is None or s is None else f - s for f, s in zip(fast, slow)]
    m0 = next((i for i, m in enumerate(macd) if m is not None), N)
    sig = [None] * m0 + ema_series(macd[m0:], P["sig"])
    for i, b in enumerate(bars):
        f = {}
        if ag[i] is not None:
            f["rsi"] = 50.0 if ag[i] + al[i] == 0 else 100.0 * ag[i] / (ag[i] + al[i])
        f["ema12"], f["ema26"] = fast[i], slow[i]
        n = P["bb"]
        if i >= n - 1:
            w = c[i - n + 1:i + 1]
            m = math.fsum(w) / n
            sd = math.sqrt(math.fsum((x - m) ** 2 for x in w) / n)
            f["bbm"], f["bbu"], f["bbl"] = m, m + P["k"] * sd, m - P["k"] * sd
        f["atr"] = atr[i]
        real = [j for j in range(i + 1) if not bars[j]["f"] & 2]
        sess = (b["ts"]) // DAY
        same = [j for j in real if bars[j]["ts"] // DAY == sess]
        vol = math.fsum(bars[j]["v"] for j in same)
        if vol > 0:
            pv = math.fsum((bars[j]["h"] + bars[j]["l"] + bars[j]["c"]) / 3 * bars[j]["v"]
                           for j in same)
            f["vwap"] = pv / vol
        if len(real) >= P["vma"]:
            f["vma"] = math.fsum(bars[j]["v"] for j in real[-P["vma"]:]) / P["vma"]
        f["macd"], f["macds"] = macd[i], sig[i]
        if sig[i] is not None:
            f["macdh"] = macd[i] - sig[i]
        if i >= P["mom"]:
            f["mom"] = c[i] - c[i - P["mom"]]
        rec = dict(t="feat", s=b["s"], ts=b["ts"], iv=b["iv"])
        rec.update({k: f[k] for k in KEYS if f.get(k) is not None})
        rec["f"] = b["f"]
        print(json.dumps(rec, separators=(",", ":")))


def compare(exp_path, act_path, rel):
    act = {}
    for line in open(act_path):
        r = json.loads(line)
        if r.get("t") == "feat" and r["f"] & 1:
            act[(r["s"], r["iv"], r["ts"])] = r
    worst, where, n = 0.0, None, 0
    for line in open(exp_path):
        e = json.loads(line)
        a = act.get((e["s"], e["iv"], e["ts"]))
        if a is None:
            sys.exit("no closed feat for ts %d" % e["ts"])
        for k in KEYS:
            if (k in e) != (k in a):
                sys.exit("ts %d: %s is %s, expected %s" % (e["ts"], k, a.get(k), e.get(k)))
            if k in e:
                n += 1
                d = abs(a[k] - e[k]) / max(abs(e[k]), 1e-300)
                if a[k] != e[k] and d > worst:
                    worst, where = d, (e["ts"], k, a[k], e[k])
    if worst > rel:
        sys.exit("worst relative error %.3g > %g at ts %d %s: %r vs %r" % ((worst, rel) + where))
    print("%d values within %.3g relative (worst %.3g)" % (n, rel, worst))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]), "--revisions" in sys.argv)
    elif cmd == "expect":
        expect(sys.stdin.readlines())
    elif cmd == "compare":
        compare(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 1e-9)
    else:
        sys.exit(__doc__)
