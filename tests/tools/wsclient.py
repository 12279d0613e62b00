"""wsclient.py - a WebSocket client from the standard library only (raw
socket, RFC 6455 handshake and framing), for mdb-ws's tool tests. It sends
frames exactly as told, including broken ones, so the tests can check how
the server answers protocol errors."""
import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


def http_get(port, path, headers=None, raw=None, timeout=5):
    """One request; returns (status, headers dict, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if raw is None:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
    s.sendall(raw)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


class Closed(Exception):
    pass


class WS:
    def __init__(self, port, path, headers=None, rcvbuf=None, timeout=5):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise Closed("closed during the handshake")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                        for l in lines[1:] if ":" in l}
        if self.status != 101:
            raise Closed(f"status {self.status}")
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise AssertionError("bad Sec-WebSocket-Accept")

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            mk = os.urandom(4)
            payload = bytes(b ^ mk[i % 4] for i, b in enumerate(payload))
            head += mk
        self.s.sendall(head + payload)

    def send_json(self, obj):
        self.send_frame(TEXT, json.dumps(obj))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise Closed("connection closed")
            self.buf += chunk

    def recv_frame(self):
        """(opcode, payload) of the next frame; server frames are never masked."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "server frame is masked"
        assert b0 & 0x70 == 0, "server frame has RSV bits"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def recv_msg(self, answer_pings=True):
        """The next data message as (opcode, payload); pings are answered."""
        while True:
            op, p = self.recv_frame()
            if op == PING and answer_pings:
                self.send_frame(PONG, p)
                continue
            if op == CLOSE:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                raise Closed(f"close {code} {p[2:].decode(errors='replace')}")
            return op, p

    def recv_json(self):
        op, p = self.recv_msg()
        assert op == TEXT, f"expected a text frame, got opcode {op}"
        return json.loads(p)

    def expect_close(self, timeout=5):
        """Read until the server's close frame; returns its code (None when
        the connection just ended)."""
        self.s.settimeout(timeout)
        end = time.time() + timeout
        while time.time() < end:
            try:
                op, p = self.recv_frame()
            except (Closed, ConnectionResetError):
                return None
            if op == CLOSE:
                return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005
        raise AssertionError("no close")

    def close(self):
        self.s.close()
