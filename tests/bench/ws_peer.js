// ws_peer.js - the peer of bench_ws: a broadcast server written with Node's
// `ws` package doing mdb-ws's job the usual way. Clients connect to
// /ws/live_data/SYMBOL; updates arrive as JSON lines on a TCP feed port
// ({"s":..,"ts":..,"c":..,"rsi":..}); each becomes one delta message,
// serialized once and sent to every subscriber of its symbol.
// usage: node ws_peer.js WS_PORT FEED_PORT   (prints "ready" when listening)
"use strict";
const net = require("net");
const { WebSocketServer } = require("ws");
const [wsPort, feedPort] = process.argv.slice(2).map(Number);
const subs = new Map(), seq = new Map();
const wss = new WebSocketServer({ host: "127.0.0.1", port: wsPort, perMessageDeflate: false });
wss.on("connection", (ws, req) => {
  const s = decodeURIComponent(req.url.split("?")[0].replace("/ws/live_data/", ""));
  if (!subs.has(s)) subs.set(s, new Set());
  subs.get(s).add(ws);
  ws.send(JSON.stringify({ type: "snapshot", s, iv: 60, seq: seq.get(s) || 0 }));
  ws.on("close", () => subs.get(s).delete(ws));
});
const feed = net.createServer(sock => {
  let buf = "";
  sock.on("data", d => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const u = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      const prev = seq.get(u.s) || 0;
      seq.set(u.s, prev + 1);
      const msg = JSON.stringify({ type: "delta", s: u.s, iv: 60, seq: prev + 1, prev_seq: prev, ts: u.ts, c: u.c, rsi: u.rsi });
      const set = subs.get(u.s);
      if (set) for (const ws of set) ws.send(msg);
    }
  });
});
let up = 0;
const ready = () => { if (++up === 2) console.log("ready"); };
wss.on("listening", ready);
feed.listen(feedPort, "127.0.0.1", ready);
