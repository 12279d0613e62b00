#!/usr/bin/env python3
"""fetch_server.py - a fake market-data API server for the mdb-fetch tests.

Serves the response shapes of Yahoo Finance v8 chart, Alpha Vantage
TIME_SERIES_INTRADAY, Twelve Data time_series and Polygon aggregates v2
(the recorded shapes are in tests/data/fetch/) from a deterministic bar
series, on 127.0.0.1 and a free port written to PORT_FILE.

Every source is a path prefix: http://127.0.0.1:PORT/NAME/... where NAME is
the source's name in the test's config; the API is told by the rest of the
path. Control and statistics (never counted as requests):

  GET /_mode/NAME/MODE   how NAME answers from now on: ok, 500, 429,
                         ratelimit (the API's own rate-limit answer: AV Note,
                         TD code 429 in an HTTP 200, 429 elsewhere), timeout
                         (no answer for 30 s), hang (the headers and half
                         the body, then nothing for 30 s), truncated
                         (Content-Length longer than the body), garbage
                         (random bytes, 200)
  GET /_unknown/NAME/T   NAME does not know ticker T from now on: it answers
                         with the API's own "unknown symbol" answer (Yahoo
                         404 + chart.error, Alpha Vantage "Error Message",
                         Twelve Data code 400, Polygon status NOT_FOUND)
  GET /_stats            JSON: per source, requests, the most requests seen
                         in any 60 s window, bad keys, the periods asked,
                         requests per ticker; and the number of TCP
                         connections accepted

Bars: price of bar k (k = ts / iv) of ticker T is 100 + len(T) + (k % 40) /
4; a bar is served only once its open time has come; the bar forming now
changes its close every second. Yahoo answers null for every bar with
k % 11 == 5 (no data there, as Yahoo does). Keys must equal $FETCH_TEST_KEY.
"""
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import zoneinfo
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NY = zoneinfo.ZoneInfo("America/New_York")
KEY = os.environ.get("FETCH_TEST_KEY", "")
lock = threading.Lock()
modes = {}
unknown = set()  # (source, ticker)
stats = {}
conns = 0


def stat(src):
    return stats.setdefault(src, {"requests": 0, "times": [], "bad_keys": 0, "periods": [],
                                  "tickers": {}})


def bar(ticker, ts, iv, now):
    k = ts // iv
    o = 100 + len(ticker) + (k % 40) / 4
    if ts + iv > now:  # forming: the close moves every second
        c = o + ((int(now) - ts) % 4) / 4
    else:
        c = o + 0.5
    return {"o": o, "h": max(o, c) + 0.25, "l": min(o, c) - 0.25, "c": c, "v": 100 + k % 7}


def bars(ticker, start, end, iv):
    """Bars with open time in [start, end), up to the one forming now."""
    now = time.time()
    first = -(-int(start) // iv) * iv
    out = []
    ts = first
    while ts < end and ts <= now:
        out.append((ts, bar(ticker, ts, iv, now)))
        ts += iv
    return out


def ny(ts):
    return datetime.fromtimestamp(ts, NY).strftime("%Y-%m-%d %H:%M:%S")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: connections are reused

    def setup(self):
        global conns
        super().setup()
        with lock:
            conns += 1

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="application/json", extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        parts = u.path.split("/")
        if len(parts) >= 4 and parts[1] == "_mode":
            with lock:
                modes[parts[2]] = parts[3]
            return self.send(200, "{}")
        if len(parts) >= 4 and parts[1] == "_unknown":
            with lock:
                unknown.add((parts[2], urllib.parse.unquote(parts[3])))
            return self.send(200, "{}")
        if parts[1:] == ["_stats"]:
            with lock:
                out = {"conns": conns, "sources": {}}
                for s, st in stats.items():
                    t = st["times"]
                    j, best = 0, 0
                    for i in range(len(t)):
                        while t[i] - t[j] >= 60:
                            j += 1
                        best = max(best, i - j + 1)
                    out["sources"][s] = {"requests": st["requests"], "max_per_min": best,
                                         "bad_keys": st["bad_keys"],
                                         "periods": st["periods"][-50:],
                                         "tickers": st["tickers"]}
            return self.send(200, json.dumps(out))
        src = parts[1] if len(parts) > 1 else ""
        rest = "/" + "/".join(parts[2:])
        with lock:
            st = stat(src)
            st["requests"] += 1
            st["times"].append(time.time())
            mode = modes.get(src, "ok")
        api = ("yahoo" if rest.startswith("/v8/finance/chart/") else
               "alphavantage" if rest == "/query" else
               "twelvedata" if rest == "/time_series" else
               "polygon" if rest.startswith("/v2/aggs/ticker/") else None)
        if api is None:
            return self.send(404, '{"error":"not found"}')
        ticker = urllib.parse.unquote(
            rest.split("/")[-1] if api == "yahoo" else
            rest.split("/")[4] if api == "polygon" else q.get("symbol", ""))
        with lock:
            st["tickers"][ticker] = st["tickers"].get(ticker, 0) + 1
            is_unknown = (src, ticker) in unknown
        key = q.get("apikey", q.get("apiKey"))
        if api != "yahoo" and key != KEY:
            with lock:
                st["bad_keys"] += 1
            return self.send(401, '{"status":"ERROR","error":"bad key"}')
        if is_unknown:
            if api == "yahoo":
                return self.send(404, json.dumps({"chart": {"result": None, "error": {
                    "code": "Not Found", "description": "No data found, symbol may be delisted"}}}))
            if api == "alphavantage":
                return self.send(200, json.dumps({"Error Message": "Invalid API call. Please retry "
                                                  "or visit the documentation for "
                                                  "TIME_SERIES_INTRADAY."}))
            if api == "twelvedata":
                return self.send(200, json.dumps({"code": 400, "status": "error", "message":
                                                  "**symbol** not found: %s." % ticker}))
            return self.send(200, json.dumps({"status": "NOT_FOUND", "request_id": "x",
                                              "message": "Ticker not found."}))
        if mode == "500":
            return self.send(500, "<html>Internal Server Error</html>", "text/html")
        if mode == "429":
            return self.send(429, "Too Many Requests", "text/plain", {"Retry-After": "1"})
        if mode == "timeout":
            time.sleep(30)
            return self.send(500, "late")
        if mode == "garbage":
            return self.send(200, bytes(random.getrandbits(8) for _ in range(300)))
        if mode == "ratelimit":
            if api == "alphavantage":
                return self.send(200, json.dumps({"Note": "Thank you for using Alpha Vantage! "
                                                  "Our standard API call frequency is 5 calls "
                                                  "per minute and 500 calls per day."}))
            if api == "twelvedata":
                return self.send(200, json.dumps({"code": 429, "status": "error",
                                                  "message": "You have run out of API credits "
                                                  "for the current minute."}))
            return self.send(429, json.dumps({"status": "ERROR", "error": "You've exceeded the "
                                              "maximum requests per minute."}))
        body = getattr(self, api)(rest, q)
        with lock:
            st["periods"].append(self.asked)
        if mode == "hang":
            raw = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw[: len(raw) // 2])
            self.wfile.flush()
            time.sleep(30)
            self.close_connection = True
            return
        if mode == "truncated":
            raw = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw) + 100))
            self.end_headers()
            self.wfile.write(raw[: len(raw) // 2])
            self.close_connection = True
            return
        self.send(200, body)

    IV = {"1m": 60, "5m": 300, "60m": 3600, "1min": 60, "5min": 300, "60min": 3600, "1h": 3600}

    def yahoo(self, rest, q):
        ticker = urllib.parse.unquote(rest.split("/")[-1])
        iv = self.IV[q["interval"]]
        p1, p2 = int(q["period1"]), int(q["period2"])
        self.asked = [ticker, p1]
        bs = bars(ticker, p1, p2, iv)
        if not bs:
            return json.dumps({"chart": {"result": [{"meta": {"symbol": ticker},
                                                     "indicators": {"quote": [{}]}}],
                                         "error": None}})
        ts = [t for t, _ in bs]
        quote = {f: [] for f in ("open", "high", "low", "close", "volume")}
        for t, b in bs:
            null = (t // iv) % 11 == 5
            for f, k in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"),
                         ("volume", "v")):
                quote[f].append(None if null else b[k])
        return json.dumps({"chart": {"result": [{
            "meta": {"currency": "USD", "symbol": ticker, "exchangeTimezoneName": "America/New_York",
                     "gmtoffset": -18000, "dataGranularity": q["interval"]},
            "timestamp": ts, "indicators": {"quote": [quote]}}], "error": None}})

    def alphavantage(self, rest, q):
        ticker, iv = q["symbol"], self.IV[q["interval"]]
        now = time.time()
        if q.get("month"):
            y, m = map(int, q["month"].split("-"))
            start = datetime(y, m, 1, tzinfo=NY).timestamp()
            end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=NY).timestamp()
            bs = bars(ticker, start, end, iv)
        else:
            bs = bars(ticker, now - 100 * iv, now + iv, iv)[-100:]
        self.asked = [ticker, q.get("month", "compact")]
        series = {}
        for t, b in reversed(bs):  # newest first, as Alpha Vantage sends them
            series[ny(t)] = {"1. open": "%.4f" % b["o"], "2. high": "%.4f" % b["h"],
                             "3. low": "%.4f" % b["l"], "4. close": "%.4f" % b["c"],
                             "5. volume": str(b["v"])}
        return json.dumps({"Meta Data": {"1. Information": "Intraday open, high, low, close "
                                         "prices and volume", "2. Symbol": ticker,
                                         "4. Interval": q["interval"], "6. Time Zone": "US/Eastern"},
                           "Time Series (%s)" % q["interval"]: series})

    def twelvedata(self, rest, q):
        ticker, iv = q["symbol"], self.IV[q["interval"]]
        start = datetime.strptime(q["start_date"], "%Y-%m-%d").replace(tzinfo=NY).timestamp()
        end = datetime.strptime(q["end_date"], "%Y-%m-%d").replace(tzinfo=NY).timestamp()
        self.asked = [ticker, q["start_date"]]
        bs = bars(ticker, start, end, iv)[-5000:]
        if not bs:
            return json.dumps({"code": 400, "status": "error", "message": "No data is available "
                               "on the specified dates. Try setting different start/end dates."})
        return json.dumps({"meta": {"symbol": ticker, "interval": q["interval"],
                                    "exchange_timezone": "America/New_York"},
                           "values": [{"datetime": ny(t), "open": "%.5f" % b["o"],
                                       "high": "%.5f" % b["h"], "low": "%.5f" % b["l"],
                                       "close": "%.5f" % b["c"], "volume": str(b["v"])}
                                      for t, b in bs], "status": "ok"})

    def polygon(self, rest, q):
        p = rest.split("/")  # /v2/aggs/ticker/T/range/M/SPAN/FROM/TO
        ticker, mult, span = urllib.parse.unquote(p[4]), int(p[6]), p[7]
        iv = mult * {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[span]
        f, t = int(p[8]) / 1000, int(p[9]) / 1000
        self.asked = [ticker, int(f)]
        bs = bars(ticker, f, t + 0.001, iv)
        out = {"ticker": ticker, "queryCount": len(bs), "resultsCount": len(bs), "adjusted": True,
               "status": "OK", "request_id": "%032x" % random.getrandbits(128), "count": len(bs)}
        if bs:  # no data: Polygon leaves "results" out
            out["results"] = [{"v": b["v"], "o": b["o"], "c": b["c"], "h": b["h"], "l": b["l"],
                               "t": ts * 1000, "n": 5} for ts, b in bs]
        return json.dumps(out)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that hangs up mid-answer (mdb-fetch stopped, a time-out)
        # is expected here, not a server fault
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    port_file = sys.argv[1]
    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
