"""ws_hostile.py PORT BIN PID MAXCONNS SCALE - hostile clients against a
running mdb-ws (PORT, process PID, --max-conns MAXCONNS, --max-msg 4k) fed
by mdb-feature from ring:bars, while one well-behaved client stays
subscribed: a connection flood past the cap, slowloris heads, oversized
frames, too many fragments, control-message and ping floods (read and
unread), invalid UTF-8, unmasked frames. The server must stay up, its RSS
bounded, and the good client must keep getting deltas with an unbroken seq
chain (or resync notices). SCALE (1, or less under a sanitizer) scales the
counts; RSS_PEAK_KB and RSS_FLAT_KB set the memory bounds (a sanitizer
needs looser ones). Prints the figures."""
import json
import os
import resource
import select
import socket
import struct
import sys
import threading
import time

from wsclient import WS, Closed, http_get, TEXT, CLOSE, PING, PONG
from ws_feed import Feeder

port, bindir, pid, max_conns = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
scale = float(sys.argv[5])
# what the gateway may hold: its frame pool (131072 frames of 1.1 kB, 148
# MB, kept for reuse), per connection an 8 kB receive buffer and up to 4096
# queue entries (98 kB) -- 250 connections fill theirs here -- and the rest
PEAK_KB = int(os.environ.get("RSS_PEAK_KB", 224 << 10))
# a round's transient allocations (freed queue arrays, 98 kB each) can move
# the heap by tens of MB; leaks proper are LeakSanitizer's, in the ASan pass
FLAT_KB = int(os.environ.get("RSS_FLAT_KB", 32 << 10))
FRAME_KB = 1.2  # a pool frame (1100 bytes and its header), in kB
GOOD = "GOOD"
CONT = 0
UPGRADE = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def n(x):
    return max(1, int(x * scale))


def status_kb(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}: mdb-ws is gone")


def alive():
    return os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"


def stats():
    """/api/stats; while every slot is taken (just after an attack, before
    the server has seen all its sockets end) a newcomer is refused: retry."""
    end = time.time() + 10
    while True:
        st, _, body = http_get(port, "/api/stats")
        if st == 200:
            return json.loads(body)
        check(time.time() < end, f"/api/stats {st}")
        print(f"# /api/stats refused ({st or 'closed at once'}): retrying")
        time.sleep(0.2)


class Good(threading.Thread):
    """A client subscribed to GOOD from start to end: answers pings, follows
    the seq chain; a gap without a resync notice is counted as such."""

    def __init__(self):
        super().__init__(daemon=True)
        self.w = WS(port, f"/ws/live_data/{GOOD}", timeout=0.2)
        self.seq, self.c, self.deltas, self.snaps, self.notices = None, None, 0, 0, 0
        self.gaps, self.err, self.stop, self.resyncing = [], None, False, False

    def run(self):
        try:
            while not self.stop:
                try:
                    op, p = self.w.recv_msg()
                except socket.timeout:
                    continue
                m = json.loads(p)
                if m["type"] == "resync":
                    self.notices += 1
                    self.resyncing = True
                elif m["type"] == "snapshot":
                    self.snaps += 1
                    self.seq, self.c, self.resyncing = m["seq"], m.get("c"), False
                elif m["type"] == "delta":
                    if m["prev_seq"] != self.seq and not self.resyncing:
                        self.gaps.append((self.seq, m["prev_seq"]))
                    self.seq = m["seq"]
                    self.c = m.get("c", self.c)
                    self.deltas += 1
        except Exception as e:  # reported by the main thread
            self.err = e


class Feed(threading.Thread):
    """A new GOOD bar every 20 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.f, self.stop, self.bars, self.last = Feeder(bindir), False, 0, None

    def run(self):
        while not self.stop:
            self.last = self.f.bar(GOOD)
            self.bars += 1
            time.sleep(0.02)
        self.f.close()


class _Bytes:
    """Stands in for a WS: wsclient's send_frame writes the frame here."""

    def __init__(self):
        self.s, self.out = self, b""

    def sendall(self, b):
        self.out += b


def frame(opcode, payload=b"", fin=True, mask=True):
    """A client frame's bytes, as WS.send_frame makes them."""
    w = _Bytes()
    WS.send_frame(w, opcode, payload, fin=fin, mask=mask)
    return w.out


def frame_claiming(length):
    """A masked text frame that says it carries length bytes (it has 100)."""
    return struct.pack("!BBQ", 0x81, 0x80 | 127, length) + b"\0\0\0\0" + b"x" * 100


def close_code(w, timeout=10):
    """The close code the server sends w (None: the connection just ended)."""
    try:
        return w.expect_close(timeout)
    except (ConnectionResetError, BrokenPipeError):
        return None


def attack(name, k, send, want):
    """k connections each get send(w); each must end with a close code in want."""
    ws = [WS(port, "/ws") for _ in range(k)]
    for w in ws:
        try:
            send(w)
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed before we finished: fine, the code decides
    codes = [close_code(w) for w in ws]
    for w in ws:
        w.close()
    bad = [c for c in codes if c not in want]
    check(not bad, f"{name}: close codes {sorted(set(codes), key=str)}, wanted {want}")
    print(f"ok - {name}: {k} connections closed with {sorted(set(codes), key=str)}")


def count_pongs(s, want):
    """Read server frames from s until want pongs (or the end): (pongs, why
    it stopped early). Parsed in place: the reader must keep up."""
    buf, off, pongs = bytearray(), 0, 0
    while pongs < want:
        try:
            d = s.recv(1 << 20)
        except (socket.timeout, OSError) as e:
            return pongs, repr(e)
        if not d:
            return pongs, "connection closed"
        buf += d
        while len(buf) - off >= 2:
            ln, hl = buf[off + 1] & 0x7F, 2
            if ln == 126:
                if len(buf) - off < 4:
                    break
                ln, hl = struct.unpack_from("!H", buf, off + 2)[0], 4
            if len(buf) - off < hl + ln:
                break
            op = buf[off] & 0x0F
            if op == CLOSE:
                return pongs, f"close {bytes(buf[off + hl:off + hl + 2])}"
            pongs += op == PONG
            off += hl + ln
        del buf[:off]
        off = 0
    return pongs, None


def flood_conns(total):
    """total connections at once, each asking for a WebSocket: returns how
    many got 101, 503 and nothing (closed at once), how many got no answer,
    and the sockets."""
    socks, got = [], {}
    for _ in range(total):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    pend = {s.fileno(): s for s in socks}
    wr = dict(pend)
    buf = {}
    end = time.time() + 20
    ep = select.epoll()
    for fd in pend:
        ep.register(fd, select.EPOLLOUT | select.EPOLLIN)
    while pend and time.time() < end:
        for fd, ev in ep.poll(0.5):
            s = pend.get(fd)
            if s is None:
                continue
            if fd in wr and ev & select.EPOLLOUT and not ev & (select.EPOLLERR | select.EPOLLHUP):
                try:
                    s.send(UPGRADE)
                except OSError:
                    pass
                del wr[fd]
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            buf[fd] = buf.get(fd, b"") + d
            head = buf[fd]
            if not d or b"\r\n" in head:
                code = head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "closed"
                got[code] = got.get(code, 0) + 1
                ep.unregister(fd)
                del pend[fd]
    ep.close()
    return got, len(pend), socks


def slowloris_open(k):
    """k connections that have sent the start of a request head."""
    socks = []
    for _ in range(k):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append([s, time.time()])
    return socks


def slowloris(socks, out):
    """Trickle one more byte of the heads every 0.5 s; out gets the seconds
    each stayed open before the server dropped it, then how many it did
    not drop in 25 s."""
    end = time.time() + 25
    while socks and time.time() < end:
        for e in list(socks):
            s, t0 = e
            try:
                s.send(b"a")
                r, _, _ = select.select([s], [], [], 0)
                if r and not s.recv(4096):
                    raise ConnectionResetError
            except OSError:
                out.append(time.time() - t0)
                s.close()
                socks.remove(e)
        time.sleep(0.5)
    for s, _ in socks:
        s.close()
    out.append(len(socks))


def attacks(nslow):
    """One round of every attack but slowloris; prints what each did."""
    # thousands of connections past the cap
    tried = 3 * max_conns
    t0 = time.time()
    got, unanswered, socks = flood_conns(tried)
    t_flood = time.time() - t0
    refused = tried - got.get("101", 0)
    check(unanswered == 0, f"{unanswered} of {tried} connections got no answer in 20 s: {got}")
    check(got.get("101", 0) <= max_conns, f"{got.get('101')} WebSockets past the cap {max_conns}")
    check(refused >= tried - max_conns, f"only {refused} of {tried} refused")
    check(alive(), "mdb-ws died in the connection flood")
    for s in socks:
        s.close()
    print(f"ok - connection flood: {tried} tried, {got.get('101', 0)} upgraded, {got.get('503', 0)} "
          f"refused with 503, {got.get('closed', 0)} closed at once, in {t_flood:.1f} s "
          f"(cap {max_conns}); VmRSS {status_kb('VmRSS')} kB")
    # the server frees the slots: a newcomer gets a WebSocket again
    end = time.time() + 15
    while True:
        try:
            WS(port, "/ws").close()
            break
        except Closed as e:
            check(time.time() < end, f"no WebSocket after the flood: {e}")
            time.sleep(0.2)

    k = n(20)
    attack("oversized frame (2^62 bytes declared)", k,
           lambda w: w.s.sendall(frame_claiming(1 << 62)), (1009, None))
    attack("oversized frame (64 KiB sent)", k,
           lambda w: w.s.sendall(frame(TEXT, b"x" * 65536)), (1009, None))
    nfrag = 20000
    attack(f"{nfrag} one-byte fragments", k,
           lambda w: w.s.sendall(frame(TEXT, b"[", fin=False) +
                                 frame(CONT, b" ", fin=False) * nfrag), (1009, None))
    attack("invalid UTF-8", k, lambda w: w.s.sendall(frame(TEXT, b'{"op":"\xc3\x28"}')), (1007,))
    attack("unmasked frame", k, lambda w: w.s.sendall(frame(TEXT, b'{"op":"x"}', mask=False)),
           (1002,))
    attack("control-message flood", k,
           lambda w: w.s.sendall(frame(TEXT, b'{"op":"resync","id":1}') * 2000), (1008, None))

    # empty fragments never reach the size limit: bounded all the same
    nempty = n(100000)
    w = WS(port, "/ws")
    w.s.sendall(frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) * nempty +
                frame(CONT, b"{}", fin=True))
    w.s.settimeout(10)
    try:
        m = w.recv_json()
        empty = f"answered {m}"
    except Closed as e:
        empty = f"closed ({e})"
    w.close()
    print(f"ok - {nempty} empty fragments: {empty}; VmRSS {status_kb('VmRSS')} kB")

    # pings: a flood in one burst whose pongs are read ...
    npings = n(20000)
    w = WS(port, "/ws")
    t0 = time.time()
    w.s.settimeout(10)
    sender = threading.Thread(target=w.s.sendall, args=(frame(PING, b"p" * 125) * npings,),
                              daemon=True)
    sender.start()
    pongs, why = count_pongs(w.s, npings)
    sender.join()
    w.close()
    check(pongs == npings, f"{pongs} pongs for {npings} pings: {why}")
    print(f"ok - ping flood read: {npings} pings in one burst, {pongs} pongs in "
          f"{time.time() - t0:.2f} s")
    # ... and floods whose pongs are never read
    nunread, nburst = n(250), 6
    unread = [WS(port, "/ws", rcvbuf=4096) for _ in range(nunread)]
    burst = frame(PING, b"p" * 125) * 1000
    sent = 0
    for _ in range(nburst):
        for w in unread:
            try:
                w.s.settimeout(0.2)
                w.s.sendall(burst)
                sent += 1000
            except OSError:
                pass
    time.sleep(0.5)
    rss_unread = status_kb("VmRSS")
    for w in unread:
        w.close()
    print(f"ok - ping flood unread: {nunread} clients sent {sent} pings without reading a "
          f"pong; VmRSS {rss_unread} kB while they were connected")



def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    feed = Feed()
    good = Good()
    good.start()
    feed.start()
    end = time.time() + 10
    while good.deltas < 5:
        check(time.time() < end and not good.err, f"the good client got {good.deltas} deltas: {good.err}")
        time.sleep(0.05)
    time.sleep(0.5)
    rss0 = status_kb("VmRSS")
    t_start = time.time()

    # slowloris, in the background while the rest goes on, twice
    nslow = n(200)
    slow_out = []
    slow = threading.Thread(target=slowloris, args=(slowloris_open(nslow), slow_out), daemon=True)
    slow.start()

    # every other attack, three times: the last round must not grow memory
    for r in range(3):
        attacks(nslow)
        rss1, pool1 = (rss2, pool2) if r else (0, 0)
        rss2, pool2 = status_kb("VmRSS"), stats().get("pool", 0)
        print(f"# after round {r + 1}: VmRSS {rss2} kB, {pool2} frames in the pool")

    # the slowloris heads are dropped by the request-head timeout
    slow.join(30)
    still = slow_out.pop()
    check(still == 0 and len(slow_out) == nslow,
          f"slowloris: {still} still open, {len(slow_out)} dropped of {nslow}")
    print(f"ok - slowloris: {nslow} heads trickled a byte every 0.5 s, all dropped after "
          f"{min(slow_out):.1f}-{max(slow_out):.1f} s")

    # the good client is still served: it catches up with the last bar
    feed.stop = True
    feed.join()
    end = time.time() + 15
    while good.c != feed.last["c"] or good.resyncing:
        check(time.time() < end and not good.err,
              f"the good client is at c={good.c}, the last bar {feed.last['c']}: {good.err}")
        time.sleep(0.05)
    good.stop = True
    good.join()
    check(alive(), "mdb-ws died")
    check(not good.gaps, f"the good client saw gaps without a resync notice: {good.gaps[:5]}")
    check(good.deltas >= feed.bars // 4, f"the good client got {good.deltas} deltas for {feed.bars} bars")
    time.sleep(0.5)
    rss3 = status_kb("VmRSS")
    hwm = max(status_kb("VmHWM"), rss1, rss2, rss3)  # (VmHWM may lag VmRSS)
    st = stats()
    print(f"ok - good client: {good.deltas} deltas for {feed.bars} bars in {time.time() - t_start:.1f} s, "
          f"seq chain unbroken, {good.notices} resync notices, {good.snaps} snapshots")
    print(f"# mdb-ws VmRSS {rss0} kB before, {rss3} kB at the end, peak {hwm} kB; counters: accepted {st['accepted']}, refused "
          f"{st['refused']}, upgrades {st['upgrades']}, limited {st['limited']}, connections now "
          f"{st['connections']}")
    good.w.close()
    # the bounds: what the gateway may hold (PEAK_KB); the last round of
    # the same attacks reuses what the others left, but for the pool's growth
    grew = rss2 - rss1 - (pool2 - pool1) * FRAME_KB
    check(hwm - rss0 < PEAK_KB, f"VmRSS peaked {hwm - rss0} kB above the start (bound {PEAK_KB} kB)")
    check(grew < FLAT_KB, f"VmRSS grew {rss2 - rss1} kB in round 3, {grew:.0f} kB besides the "
          f"frame pool's {pool2 - pool1} new frames (bound {FLAT_KB} kB)")
    print(f"ok - mdb-ws up throughout; VmRSS peak {hwm - rss0:+d} kB < {PEAK_KB} kB; round 3 "
          f"{rss2 - rss1:+d} kB, {grew:+.0f} kB besides the frame pool < {FLAT_KB} kB")


def fds(log):
    """The gateway has 64 descriptors: 200 connections held for 2 s must
    cost no CPU and no log flood; once they end, a newcomer is served."""
    def cpu():
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    socks = []
    for _ in range(200):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.5)
    c0 = cpu()
    time.sleep(2)
    used = cpu() - c0
    lines = sum(1 for _ in open(log))
    for s in socks:
        s.close()
    check(used < 0.3, f"out of descriptors, mdb-ws used {used:.2f} s of CPU in 2 s")
    check(lines < 50, f"out of descriptors, mdb-ws logged {lines} lines")
    end = time.time() + 10
    while True:
        try:
            WS(port, "/ws").close()
            break
        except (Closed, OSError) as e:
            check(time.time() < end, f"no WebSocket once the connections ended: {e}")
            time.sleep(0.2)
    print(f"ok - out of descriptors: 200 connections on 64 descriptors cost {used:.2f} s of CPU "
          f"in 2 s and {lines} log lines; served again once they ended")


if sys.argv[6:7] == ["fds"]:
    fds(sys.argv[7])
else:
    main()
