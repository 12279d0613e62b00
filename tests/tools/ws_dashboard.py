"""ws_dashboard.py PORT BIN OUTDIR - mdb-ws's dashboard in headless Chromium
(Debian's chromium), driven over the DevTools protocol with Python's
websockets: the page at / draws the history from /api/bars, subscribes,
shows the latest close and changes it as each new bar's delta arrives; its
candles are drawn on the canvas; no script error. A screenshot goes to OUTDIR/dashboard.png."""
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import websockets

from ws_feed import Feeder

port, bindir, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SYM = "DASH"
HISTORY = 40
WAIT = 20  # seconds for the page to show an expected value (ASan, a loaded machine)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def shown(x):
    """How the dashboard's table shows a number: +x.toFixed(4) in JS."""
    r = round(x, 4)
    return str(int(r)) if r == int(r) else repr(r)


def page_seq(status):
    """The seq the status line shows: "SYM IVs seq N at TIME UTC"."""
    m = re.match(SYM + r" 60s seq (\d+) at \d{4}-", status)
    check(m, f"status {status!r}")
    return int(m.group(1))


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws):
        self.ws, self.id, self.errors = ws, 0, []

    async def call(self, method, **params):
        self.id += 1
        me = self.id
        await self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
            if m.get("method") == "Runtime.exceptionThrown":
                self.errors.append(m["params"]["exceptionDetails"])
            if m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] == "error":
                self.errors.append(m["params"]["args"])
            if m.get("id") == me:
                check("error" not in m, f"{method}: {m.get('error')}")
                return m["result"]

    async def js(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        check("exceptionDetails" not in r, f"{expr}: {r.get('exceptionDetails')}")
        return r["result"].get("value")

    async def until(self, expr, what):
        """Poll expr until it is truthy; returns its value."""
        end = time.time() + WAIT
        while time.time() < end:
            v = await self.js(expr)
            if v:
                return v
            await asyncio.sleep(0.05)
        status = await self.js("document.getElementById('status').textContent")
        raise AssertionError(f"the page never showed {what}; status: {status}")


def chromium(profile):
    """Start headless Chromium; returns (process, DevTools HTTP port)."""
    p = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", "--no-default-browser-check", "--mute-audio",
                          "--disable-extensions", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync",
                          "--window-size=1280,720", "--remote-debugging-address=127.0.0.1",
                          "--remote-debugging-port=0", "--user-data-dir=" + profile,
                          "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    f = os.path.join(profile, "DevToolsActivePort")
    end = time.time() + 30
    while time.time() < end:
        if os.path.exists(f):
            lines = open(f).read().split()
            if lines:
                return p, int(lines[0])
        check(p.poll() is None, f"chromium exited {p.returncode}")
        time.sleep(0.05)
    raise AssertionError("chromium gave no DevTools port")


async def main():
    feed = Feeder(bindir)
    for _ in range(HISTORY):  # the indicators get defined; mdb-write stores them
        feed.bar(SYM)
    end = time.time() + WAIT
    while True:
        rows = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/bars/{SYM}?limit=1000", timeout=10).read())
        if len(rows) == HISTORY:
            break
        check(time.time() < end, f"{len(rows)} bars of {HISTORY} in the database")
        await asyncio.sleep(0.1)
    chrome, dport = chromium(os.path.join(outdir, "profile"))
    try:
        tabs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{dport}/json/list", timeout=10).read())
        tab = next(t for t in tabs if t["type"] == "page")
        async with websockets.connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
            page = Page(ws)
            await page.call("Runtime.enable")
            await page.call("Page.enable")
            await page.call("Page.navigate", url=f"http://127.0.0.1:{port}/?s={SYM}")
            last = feed.bar(SYM)
            await page.until(f'document.getElementById("v_c")?.textContent === "{shown(last["c"])}"',
                             f"c = {shown(last['c'])} after loading")
            seq0 = page_seq(await page.js('document.getElementById("status").textContent'))
            # each new bar's close, as its delta arrives
            seen = []
            for _ in range(8):
                last = feed.bar(SYM)
                want = shown(last["c"])
                got = await page.until(
                    f'(s => s === "{want}" && s)(document.getElementById("v_c")?.textContent)',
                    f"c = {want}")
                seen.append(got)
                await asyncio.sleep(0.1)
            check(len(set(seen)) >= 3, f"the close did not change: {seen}")
            status = await page.js('document.getElementById("status").textContent')
            check(page_seq(status) >= seq0 + 8, f"status {status!r} after seq {seq0}")
            nbars = await page.js("bars.length")
            check(nbars == HISTORY + 9, f"{nbars} candles, wanted {HISTORY} stored + 9 live")
            rsi = await page.js('document.getElementById("v_rsi")?.textContent')
            check(rsi and 0 <= float(rsi) <= 100, f"rsi {rsi!r}")
            # the candles: pixels of the up and down colours on the canvas
            painted = await page.js("""(() => {
                const g = document.getElementById("cv").getContext("2d");
                const d = g.getImageData(0, 0, g.canvas.width, g.canvas.height).data;
                let up = 0, down = 0;
                for (let i = 0; i < d.length; i += 4) {
                    if (d[i] === 0x33 && d[i + 1] === 0xcc && d[i + 2] === 0x66) up++;
                    if (d[i] === 0xee && d[i + 1] === 0x44 && d[i + 2] === 0x44) down++;
                }
                return [up, down];
            })()""")
            check(painted[0] > 50 and painted[1] > 50, f"candle pixels up/down: {painted}")
            check(not page.errors, f"script errors: {page.errors}")
            shot = await page.call("Page.captureScreenshot", format="png")
            png = base64.b64decode(shot["data"])
            check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, f"screenshot {len(png)} B")
            path = os.path.join(outdir, "dashboard.png")
            with open(path, "wb") as f:
                f.write(png)
            w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            print(f"ok - dashboard in headless Chromium: close {' -> '.join(seen)} as deltas "
                  f"arrived, status {status!r}, {nbars} candles ({painted[0]} up / {painted[1]} "
                  f"down pixels), rsi {rsi}, no script error")
            print(f"ok - screenshot {path} ({len(png)} B, {w}x{h})")
    finally:
        chrome.terminate()
        try:
            chrome.wait(10)
        except subprocess.TimeoutExpired:
            chrome.kill()
            chrome.wait()
        feed.close()


asyncio.run(main())
