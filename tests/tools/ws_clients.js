// ws_clients.js PORT BIN [stop] - mdb-ws spoken to by Node's ws library
// (Debian's node-ws, found through NODE_PATH=/usr/share/nodejs), in JSON and
// in MessagePack: the snapshot then deltas chained by seq/prev_seq that
// rebuild exactly the next snapshot, subscribe/unsubscribe/resync acked
// with their ids, a missed delta repaired by a resync, close codes 1000 and
// 1003. With "stop": connect, say so, and expect the server's 1001 on
// SIGTERM. ws_clients.py does the same with Python's websockets.
"use strict";
const WebSocket = require("ws");
const { spawn } = require("child_process");
const assert = require("assert");

const [port, bindir, mode] = process.argv.slice(2);
const T0 = 1700000000000000000n;
const IV = 60;
const WAIT = 10000; // ms any one expected message may take (ASan, a loaded machine)
const sleep = ms => new Promise(r => setTimeout(r, ms));

// The MessagePack subset the gateway sends: maps, strings, floats, ints, nil, bools.
function unpack(buf) {
  let i = 0;
  const str = n => { const s = buf.toString("utf8", i, i + n); i += n; return s; };
  const map = n => { const o = {}; for (let k = 0; k < n; k++) { const key = val(); o[key] = val(); } return o; };
  const arr = n => { const a = []; for (let k = 0; k < n; k++) a.push(val()); return a; };
  function val() {
    const b = buf[i++];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    const rd = (f, n) => { const v = buf[f](i); i += n; return v; };
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xca: return rd("readFloatBE", 4);
      case 0xcb: return rd("readDoubleBE", 8);
      case 0xcc: return rd("readUInt8", 1);
      case 0xcd: return rd("readUInt16BE", 2);
      case 0xce: return rd("readUInt32BE", 4);
      case 0xcf: return Number(rd("readBigUInt64BE", 8));
      case 0xd0: return rd("readInt8", 1);
      case 0xd1: return rd("readInt16BE", 2);
      case 0xd2: return rd("readInt32BE", 4);
      case 0xd3: return Number(rd("readBigInt64BE", 8));
      case 0xd9: return str(rd("readUInt8", 1));
      case 0xda: return str(rd("readUInt16BE", 2));
      case 0xde: return map(rd("readUInt16BE", 2));
      case 0xdc: return arr(rd("readUInt16BE", 2));
    }
    throw new Error("msgpack byte 0x" + b.toString(16) + " at " + (i - 1));
  }
  const v = val();
  assert.strictEqual(i, buf.length, "trailing bytes after the msgpack map");
  return v;
}

// One mdb-pipe writing JSON bars into ring:bars as they are given.
class Feeder {
  constructor() {
    this.p = spawn(bindir + "/mdb-pipe", ["--json", "-o", "ring:bars"], { stdio: ["pipe", "inherit", "inherit"] });
    this.n = {};
    this.done = new Promise(r => this.p.on("exit", code => r(code)));
  }
  async bars(sym, k, pause = 20) {
    let b;
    for (let j = 0; j < k; j++) {
      const i = this.n[sym] || 0;
      this.n[sym] = i + 1;
      const c = 100 + i * 0.25 + (i % 3);
      // ts as text: beyond 2^53, so not through a JS number
      const ts = (T0 + BigInt(i * IV) * 1000000000n).toString();
      b = { s: sym, ts: Number(ts), c };
      this.p.stdin.write(`{"t":"bar","s":"${sym}","ts":${ts},"iv":${IV},"o":${100 + i * 0.25},` +
                         `"h":${c + 1},"l":${c - 2},"c":${c},"v":${10 + i},"n":3,"f":1}\n`);
      await sleep(pause);
    }
    return b;
  }
  async close() {
    this.p.stdin.end();
    assert.strictEqual(await this.done, 0, "mdb-pipe failed");
  }
}

// A ws connection as a queue of decoded messages, and the streams it rebuilds.
class Client {
  constructor(url, fmt, protocols) {
    this.fmt = fmt;
    this.ws = new WebSocket(url, protocols);
    this.q = [];
    this.wake = null;
    this.closed = null;
    this.state = {};
    this.deltas = 0;
    this.skipNext = false;
    this.ws.on("message", (data, isBinary) => { this.q.push({ data, isBinary }); this.poke(); });
    this.ws.on("close", (code, reason) => { this.closed = { code, reason: reason.toString() }; this.poke(); });
    this.ws.on("error", e => { this.error = e; this.poke(); });
  }
  poke() { if (this.wake) { const w = this.wake; this.wake = null; w(); } }
  open() {
    return new Promise((res, rej) => { this.ws.once("open", res); this.ws.once("error", rej); });
  }
  async raw(timeout = WAIT) {
    const end = Date.now() + timeout;
    while (!this.q.length) {
      if (this.closed) throw Object.assign(new Error("closed " + this.closed.code), { close: this.closed });
      if (this.error) throw this.error;
      const left = end - Date.now();
      if (left <= 0) throw Object.assign(new Error("timeout"), { timeout: true });
      await new Promise(r => { this.wake = r; setTimeout(r, left); });
    }
    return this.q.shift();
  }
  async recv(timeout) {
    const { data, isBinary } = await this.raw(timeout);
    if (isBinary) {
      assert.strictEqual(this.fmt, "msgpack", "binary frame on a JSON connection");
      const d = unpack(data);
      assert.ok(["snapshot", "delta"].includes(d.type), "binary frame that is not data");
      return d;
    }
    const d = JSON.parse(data.toString());
    assert.ok(this.fmt === "json" || !["snapshot", "delta"].includes(d.type), "data as text on a MessagePack connection");
    return d;
  }
  // Fold a snapshot or delta in; false when a delta does not follow.
  apply(m) {
    assert.strictEqual(m.iv, IV);
    const body = {};
    for (const k in m) if (!["type", "s", "iv", "seq", "prev_seq"].includes(k)) body[k] = m[k];
    if (m.type === "snapshot") { this.state[m.s] = { seq: m.seq, f: body }; return true; }
    if (this.skipNext) { this.skipNext = false; return true; }
    const st = this.state[m.s];
    assert.ok(st, "delta before a snapshot: " + JSON.stringify(m));
    assert.strictEqual(m.seq, m.prev_seq + 1);
    if (m.prev_seq !== st.seq) return false;
    st.seq = m.seq;
    for (const k in body) if (body[k] === null) delete st.f[k]; else st.f[k] = body[k];
    this.deltas++;
    return true;
  }
  mustApply(m) {
    assert.ok(["snapshot", "delta"].includes(m.type), "unexpected " + JSON.stringify(m));
    assert.ok(this.apply(m), "gap: " + JSON.stringify(m) + " after seq " + (this.state[m.s] || {}).seq);
  }
  async dataUntil(done) { while (!done()) this.mustApply(await this.recv()); }
  // ts is compared to the microsecond: as a JS number it is rounded
  at(sym, bar) {
    const st = this.state[sym];
    return !!st && Math.abs(st.f.ts - bar.ts) < 1000 && st.f.c === bar.c;
  }
  // Send a control message; data before its answer is folded in.
  async control(msg) {
    this.ws.send(JSON.stringify(msg));
    for (;;) {
      const m = await this.recv();
      if (m.type === "ack" || m.type === "error") {
        assert.deepStrictEqual(m.id, msg.id, "answer to id " + msg.id + ": " + JSON.stringify(m));
        return m;
      }
      this.mustApply(m);
    }
  }
  // resync: the ack, then a snapshot equal to what the deltas built (unless after a gap)
  async resyncMatches(sym, id, equal = true) {
    const a = await this.control({ op: "resync", symbols: [sym], id });
    assert.ok(a.type === "ack" && a.op === "resync", JSON.stringify(a));
    let built = JSON.parse(JSON.stringify(this.state[sym]));
    let m;
    while (!((m = await this.recv()).type === "snapshot" && m.s === sym)) {
      this.mustApply(m);
      built = JSON.parse(JSON.stringify(this.state[sym]));
    }
    this.apply(m);
    if (equal) assert.deepStrictEqual(this.state[sym], built, sym + ": the snapshot differs from the deltas' sum");
  }
  async closeWith(code) {
    this.ws.close(code, "bye");
    const end = Date.now() + WAIT;
    while (!this.closed && Date.now() < end) await new Promise(r => { this.wake = r; setTimeout(r, 100); });
    assert.ok(this.closed, "no close");
    return this.closed.code;
  }
}

const url = p => `ws://127.0.0.1:${port}${p}`;

async function liveData(fmt) {
  const sym = "NDL" + fmt[0].toUpperCase();
  const feed = new Feeder();
  await feed.bars(sym, 5, 0);
  const c = new Client(url(`/ws/live_data/${sym}?iv=${IV}&format=${fmt}`), fmt);
  await c.open();
  let m = await c.recv();
  assert.ok(m.type === "snapshot" && m.s === sym, "first message " + JSON.stringify(m));
  c.apply(m);
  const seq0 = m.seq;
  let last = await feed.bars(sym, 30);
  await c.dataUntil(() => c.at(sym, last));
  assert.ok(c.deltas >= 2, c.deltas + " deltas for 30 bars");
  await c.resyncMatches(sym, "r1");
  // a delta lost on purpose: the next one does not follow; resync repairs
  await feed.bars(sym, 1);
  c.skipNext = true;
  while (c.skipNext) c.apply(await c.recv());
  last = await feed.bars(sym, 1);
  m = await c.recv();
  assert.ok(m.type === "delta" && !c.apply(m), "no gap seen: " + JSON.stringify(m));
  await c.resyncMatches(sym, "gap", false);
  assert.ok(c.at(sym, last), "after the resync: " + JSON.stringify(c.state[sym]));
  await feed.close();
  const code = await c.closeWith(1000);
  assert.strictEqual(code, 1000, "close code");
  console.log(`ok - node ws ${fmt}: /ws/live_data snapshot seq ${seq0}, ${c.deltas} deltas chained to seq ` +
              `${c.state[sym].seq}, resync snapshot equal to the deltas' sum, a lost delta repaired by resync, close 1000 echoed`);
}

async function multi(fmt) {
  const a = "NDA" + fmt[0].toUpperCase(), b = "NDB" + fmt[0].toUpperCase();
  const feed = new Feeder();
  // MessagePack asked for by the subprotocol here, by ?format= above
  const c = fmt === "msgpack" ? new Client(url("/ws"), fmt, ["mdb.msgpack"]) : new Client(url("/ws"), fmt);
  await c.open();
  if (fmt === "msgpack") assert.strictEqual(c.ws.protocol, "mdb.msgpack");
  let ack = await c.control({ op: "subscribe", symbols: [a, b], iv: IV, id: 11 });
  assert.deepStrictEqual(ack, { type: "ack", op: "subscribe", id: 11, iv: IV, symbols: [a, b] });
  await c.dataUntil(() => c.state[a] && c.state[b]);
  let la, lb;
  for (let k = 0; k < 10; k++) { la = await feed.bars(a, 1, 10); lb = await feed.bars(b, 1, 10); }
  await c.dataUntil(() => c.at(a, la) && c.at(b, lb));
  const nBoth = c.deltas;
  ack = await c.control({ op: "unsubscribe", symbols: [b], iv: IV, id: 12 });
  assert.ok(ack.type === "ack" && ack.op === "unsubscribe" && ack.symbols[0] === b, JSON.stringify(ack));
  const seqB = c.state[b].seq;
  for (let k = 0; k < 5; k++) { await feed.bars(b, 1, 10); la = await feed.bars(a, 1, 10); }
  await c.dataUntil(() => c.at(a, la));
  try {
    const m = await c.recv(500);
    assert.fail("a frame after the last: " + JSON.stringify(m));
  } catch (e) {
    if (!e.timeout) throw e;
  }
  assert.strictEqual(c.state[b].seq, seqB, b + " moved after unsubscribe");
  await c.resyncMatches(a, "ra");
  const e = await c.control({ op: "subscribe", symbols: ["bad sym"], id: 14 });
  assert.ok(e.type === "error" && e.id === 14, JSON.stringify(e));
  await feed.close();
  let how;
  if (fmt === "json") {
    // a binary control message is refused with 1003
    c.ws.send(Buffer.from([0x81, 0xa2, 0x6f, 0x70]));
    try {
      for (;;) await c.raw();
    } catch (err) {
      assert.ok(err.close && err.close.code === 1003, "close after a binary message: " + err.message);
    }
    how = "binary message closed 1003";
  } else {
    assert.strictEqual(await c.closeWith(1000), 1000);
    how = "close 1000";
  }
  console.log(`ok - node ws ${fmt}: /ws subscribe [${a}, ${b}] id 11 acked, ${nBoth} deltas on two chains, ` +
              `unsubscribe id 12 stops ${b}, resync id ra equal, error id 14, ${how}`);
}

async function stop() {
  const c = new Client(url("/ws"), "json");
  await c.open();
  const ack = await c.control({ op: "subscribe", symbols: ["NDS"], id: 1 });
  assert.strictEqual(ack.type, "ack");
  console.log("connected");
  try {
    for (;;) await c.raw(30000);
  } catch (e) {
    assert.ok(e.close && e.close.code === 1001, "close at stop: " + e.message);
  }
  console.log("ok - node ws: SIGTERM closes with 1001 (going away)");
}

(async () => {
  if (mode === "stop") return stop();
  for (const fmt of ["json", "msgpack"]) {
    await liveData(fmt);
    await multi(fmt);
  }
})().then(() => process.exit(0), e => { console.error("FAIL:", e.stack || e); process.exit(1); });
