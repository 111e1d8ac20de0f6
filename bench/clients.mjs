// Load clients: N Socket.IO connections (WebSocket transport only) in one light Node process.
//
//   node bench/clients.mjs --url http://127.0.0.1:PORT --clients N --out result.json [--impl raw|socketio]
//
// Protocol with the orchestrator (bench/run.py), line based so it needs no extra ports:
//   stdout "ready <n>"            every client is connected (and so joined the server's room)
//   stdin  "expect <E> <drainS>"  the publisher sent E events: wait until every client has E,
//                                 or drainS seconds pass, then write --out and exit
//   SIGTERM / stdin EOF           write --out with what arrived so far and exit
//
// Two client implementations, one recorder:
//   raw (default)  speaks Socket.IO v5 over Engine.IO v4 on a plain `ws` WebSocket: open ->
//                  "40" (join "/") -> answer pings "2" with "3" -> read "42[event, payload]".
//                  It takes (sequence, ts) out of each `metrics` packet with one regex pass
//                  instead of building every event object, and scans a packet once for all
//                  the clients that receive the same bytes, so the clients cost the shared two
//                  cores less than the server they measure. Every SAMPLE_EVERY-th packet (and
//                  the first ten) is also JSON-parsed and compared with the scan; any
//                  difference is counted in `scan_mismatches` and fails the run.
//   socketio       the real socket.io-client, JSON-parsing every event: the cross-check.
//
// --resume 1 (raw only): clients that track log positions and resume, as the dashboard does.
// Each connects with `40{"positions":true}`, keeps the position of every `metrics` packet
// (`42["metrics",[...],{"position":"<id>"}]`), and when its socket closes (a killed server
// drops it, a stopped one disconnects it) reconnects after 100-250 ms, again until a server
// answers, sending `40{"resume":"<last position>"}`. Duplicates and losses are counted by the
// same per-client sequence bitmap. A client is "whole" again at the first live (not replayed)
// packet after a reconnect at which it holds every event up to the newest it has seen (or all
// it was owed); the result lists when each client went down, reconnected and was whole.
//
// Per event: latency = receive time (performance.timeOrigin + performance.now(), sub-ms) - ts.
// Latencies go to a fixed histogram (0.05 ms bins), not an array: 10,000 ev/s x 100 clients
// x 60 s is 60 M samples. Duplicates are found with a bitmap per client indexed by the
// generator's sequence number (ids end in "-<seq>"), so memory stays small at any rate.
import { io } from "socket.io-client";
import WebSocket from "ws";
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const URL_ = args.url;
const CLIENTS = Number(args.clients ?? 1);
const OUT = args.out;
const IMPL = args.impl ?? "raw";
if (!["raw", "socketio"].includes(IMPL)) throw new Error(`--impl must be raw or socketio, not ${IMPL}`);
const RESUME = args.resume === "1";
if (RESUME && IMPL !== "raw") throw new Error("--resume needs --impl raw");
const SAMPLE_EVERY = 64;
const CONNECT_TIMEOUT_MS = Number(args["connect-timeout"] ?? 30) * 1000;
const HARD_TIMEOUT_MS = Number(args["max-seconds"] ?? 3600) * 1000; // never run unbounded
const BIN_MS = 0.05;
const BINS = 2_400_000; // 120 s of 0.05 ms bins; later arrivals count in `overflow`

const hist = new Uint32Array(BINS);
let overflow = 0;
let maxLatency = 0;
let negative = 0; // clock skew guard: same machine, so this should stay 0
let events = 0;
let packets = 0;
let maxBatch = 0; // events in the largest `metrics` packet: shows how far the batcher coalesced
let scanMismatches = 0; // raw client: packets where the regex scan and JSON.parse disagreed
let protocolErrors = 0; // raw client: frames it did not understand
const clients = [];
const t0Wall = Date.now();
let cpuAtReady = null;
let wallAtReady = null;
let finished = false;

const now = () => performance.timeOrigin + performance.now();

function newClient(index) {
  return {
    index, received: 0, duplicates: 0, gaps: 0, gapEvents: 0, bits: new Uint8Array(1 << 17), connected: false, errors: 0,
    // resume mode: last position, lowest sequence not yet received, newest seen, reconnect history
    position: null, next: 1, maxSeq: 0, downs: [], reconnects: [], wholes: [], awaitingWhole: false,
  };
}

// One event seen by client c at time t: histogram its latency, mark its sequence number.
function record(c, t, seq, ts) {
  let lat = t - ts;
  if (lat < 0) { negative++; lat = 0; }
  if (lat > maxLatency) maxLatency = lat;
  const bin = Math.floor(lat / BIN_MS);
  if (bin < BINS) hist[bin]++; else overflow++;
  const byte = seq >>> 3;
  if (byte >= c.bits.length) {
    const grown = new Uint8Array(Math.max(c.bits.length * 2, byte + 1));
    grown.set(c.bits);
    c.bits = grown;
  }
  const mask = 1 << (seq & 7);
  if (c.bits[byte] & mask) c.duplicates++;
  else { c.bits[byte] |= mask; c.received++; }
  if (seq > c.maxSeq) c.maxSeq = seq;
}

const hasSeq = (c, seq) => (seq >>> 3) < c.bits.length && (c.bits[seq >>> 3] & (1 << (seq & 7))) !== 0;

// Resume mode, after each packet: advance the client's hole-free prefix; after a reconnect, the
// first live packet (or the last event owed) with no hole below the newest event makes it whole.
function checkWhole(c, t, replay) {
  while (hasSeq(c, c.next)) c.next++;
  if (!c.awaitingWhole || c.next <= c.maxSeq) return;
  if (!replay || (expected !== null && c.received >= expected)) {
    c.awaitingWhole = false;
    c.wholes.push(t);
  }
}

function packetDone(n) {
  packets++;
  events += n;
  if (n > maxBatch) maxBatch = n;
  if (expected !== null) maybeDone();
}

const seqOf = (id) => Number(id.slice(id.lastIndexOf("-") + 1));

function makeSocketIoClient(index) {
  const c = newClient(index);
  const socket = io(URL_, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: CONNECT_TIMEOUT_MS });
  c.close = () => socket.disconnect();
  socket.on("metrics", (batch) => {
    const t = now();
    for (let i = 0; i < batch.length; i++) record(c, t, seqOf(batch[i].id), batch[i].ts);
    packetDone(batch.length);
  });
  socket.on("gap", (p) => { c.gaps++; c.gapEvents += (p && p.dropped) || 0; });
  socket.on("connect", () => { c.connected = true; checkReady(); });
  socket.on("connect_error", (err) => { c.errors++; c.lastError = String(err && err.message); checkReady(); });
  socket.on("disconnect", (reason) => { c.disconnectReason = reason; });
  return c;
}

// The product writes events in the schema's canonical order, id first and ts second (DESIGN.md).
const EVENT_HEAD = /"id":"((?:[^"\\]|\\.)*)","ts":(-?[0-9.eE+-]+)/g;
const METRICS_PREFIX = '42["metrics",';
const GAP_PREFIX = '42["gap",';

// Every client of a room gets the same bytes: a packet is scanned once and its (seq, ts) pairs
// are reused by the clients that receive the identical frame (Buffer.equals is a memcmp). The
// cache holds the last SCAN_CACHE packets, found by their length and first bytes (the first
// event's id and ts): when a hiccup (a pause of this process, a busy machine) leaves the clients
// of one process at different points of the stream, each still finds its packet here. With the
// last 4 packets only, a 0.5 s pause made every client scan every packet from then on (client
// CPU 2.3 -> 8 s in a 20 s run, p50 latency 15 -> 112 ms: the harness, not the server, fell behind).
const scans = new Map(); // key -> { bytes, scan }, oldest first
const SCAN_CACHE = 512;
const scanKey = (bytes) => `${bytes.length}:${bytes.toString("latin1", METRICS_PREFIX.length, 120)}`;

const POSITION_HEAD = ',{"position":"';

function scanMetrics(text) {
  EVENT_HEAD.lastIndex = METRICS_PREFIX.length;
  const check = packets < 10 || packets % SAMPLE_EVERY === 0;
  const pairs = [];
  let m;
  while ((m = EVENT_HEAD.exec(text)) !== null) pairs.push(seqOf(m[1]), Number(m[2]));
  // The optional second argument, {"position": "<id>"[, "replay": true]}, closes the packet.
  let position = null;
  let replay = false;
  const at = text.lastIndexOf(POSITION_HEAD);
  if (at > 0) {
    const from = at + POSITION_HEAD.length;
    position = text.slice(from, text.indexOf('"', from));
    replay = text.includes('"replay":true', from);
  }
  if (check) {
    const [, batch, meta] = JSON.parse(text.slice(2));
    const same = batch.length * 2 === pairs.length
      && batch.every((e, i) => seqOf(e.id) === pairs[2 * i] && e.ts === pairs[2 * i + 1])
      && (meta?.position ?? null) === position && Boolean(meta?.replay) === replay;
    if (!same) scanMismatches++;
  }
  return { pairs, position, replay };
}

function onMetrics(c, t, bytes) {
  const key = scanKey(bytes);
  const cached = scans.get(key);
  let scan;
  if (cached !== undefined && cached.bytes.equals(bytes)) scan = cached.scan;
  else {
    scan = scanMetrics(bytes.toString());
    if (cached === undefined) {
      scans.set(key, { bytes, scan });
      if (scans.size > SCAN_CACHE) scans.delete(scans.keys().next().value);
    }
  }
  const { pairs } = scan;
  for (let i = 0; i < pairs.length; i += 2) record(c, t, pairs[i], pairs[i + 1]);
  if (RESUME) {
    c.lastAt = t;
    if (scan.position !== null) c.position = scan.position;
    checkWhole(c, t, scan.replay);
  }
  packetDone(pairs.length / 2);
}

const METRICS_HEAD = Buffer.from(METRICS_PREFIX);

function makeRawClient(index) {
  const c = newClient(index);
  const url = URL_.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
  let ws = null;
  c.close = () => ws && ws.close();
  const fail = (message) => { if (!c.connected && !c.errors) { c.errors++; c.lastError = message; checkReady(); } };
  // Resume mode: the Socket.IO CONNECT asks for positions, or resumes from the last one.
  const connectPacket = () => {
    if (!RESUME) return "40";
    return "40" + JSON.stringify(c.position === null ? { positions: true } : { resume: c.position });
  };
  const reconnectLater = () => {
    if (finished) return;
    setTimeout(open, 100 + Math.random() * 150);
  };
  function open() {
    if (finished) return;
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
    ws = socket;
    let joined = false;
    socket.on("message", (data) => {
      const t = now();
      if (data.length > METRICS_HEAD.length && data.compare(METRICS_HEAD, 0, METRICS_HEAD.length, 0, METRICS_HEAD.length) === 0) {
        onMetrics(c, t, data);
        return;
      }
      const text = data.toString();
      if (text === "2") socket.send("3"); // Engine.IO ping -> pong
      else if (text.startsWith(GAP_PREFIX)) {
        c.gaps++;
        c.gapEvents += JSON.parse(text.slice(2))[1].dropped || 0;
      } else if (text[0] === "0") socket.send(connectPacket()); // Engine.IO open -> Socket.IO CONNECT to "/"
      else if (text.startsWith("40")) {
        joined = true;
        if (!c.connected) { c.connected = true; checkReady(); }
        else { c.reconnects.push(t); c.awaitingWhole = true; }
      } else if (text.startsWith("44")) fail(`connect_error ${text.slice(2)}`);
      else if (text === "1" || text === "41") c.disconnectReason = "server close";
      else protocolErrors++;
    });
    socket.on("error", (err) => { if (!RESUME || !c.connected) fail(String(err && err.message)); });
    socket.on("close", () => {
      if (c.connected && !c.disconnectReason) c.disconnectReason = "transport close";
      if (!RESUME) { fail("closed before connect"); return; }
      if (finished) return;
      if (!c.connected) fail("closed before connect");
      else {
        if (joined) c.downs.push(now());
        reconnectLater(); // the server is gone or restarting: try again until one answers
      }
    });
  }
  open();
  return c;
}

const makeClient = IMPL === "raw" ? makeRawClient : makeSocketIoClient;

let readySent = false;
function checkReady() {
  if (readySent) return;
  const settled = clients.filter((c) => c.connected || c.errors).length;
  if (clients.length === CLIENTS && settled === CLIENTS) {
    readySent = true;
    cpuAtReady = process.cpuUsage();
    wallAtReady = now();
    process.stdout.write(`ready ${clients.filter((c) => c.connected).length}\n`);
  }
}

let expected = null;
let drainTimer = null;
function maybeDone() {
  if (clients.every((c) => c.received + c.gapEvents >= expected)) {
    // A client whose catch-up brought the last events owed (no live packet followed) was whole then.
    for (const c of clients) if (c.awaitingWhole && c.received >= expected) { c.awaitingWhole = false; c.wholes.push(c.lastAt); }
    finish("complete");
  }
}

// The clients that ended short of `expected`: which sequence numbers each lacks (the first few
// runs of them), so a loss can be told apart (a hole around a restart, the tail after a resume
// that never joined the live stream, one client or all).
function shortClients(limit = 10, runs = 5) {
  if (expected === null) return [];
  const out = [];
  for (const c of clients) {
    if (c.received >= expected || out.length >= limit) continue;
    const missing = [];
    let missingTotal = 0;
    for (let seq = 1; seq <= expected; seq++) {
      if (hasSeq(c, seq)) continue;
      missingTotal++;
      const last = missing[missing.length - 1];
      if (last && last[1] === seq - 1) last[1] = seq;
      else if (missing.length < runs) missing.push([seq, seq]);
    }
    out.push({ index: c.index, received: c.received, missing: missingTotal, first_missing_runs: missing,
      gap_events: c.gapEvents, reconnects: c.reconnects.length, still_resuming: c.awaitingWhole });
  }
  return out;
}

function finish(reason) {
  if (finished) return;
  finished = true;
  clearTimeout(drainTimer);
  const cpu = process.cpuUsage(cpuAtReady ?? undefined);
  const wall = (now() - (wallAtReady ?? t0Wall)) / 1000;
  const sparse = [];
  for (let i = 0; i < BINS; i++) if (hist[i]) sparse.push([i, hist[i]]);
  const result = {
    reason,
    clients: CLIENTS,
    connected: clients.filter((c) => c.connected).length,
    connect_errors: clients.filter((c) => !c.connected).map((c) => c.lastError).slice(0, 3),
    expected_per_client: expected,
    received: clients.map((c) => c.received),
    duplicates: clients.reduce((s, c) => s + c.duplicates, 0),
    gaps: clients.reduce((s, c) => s + c.gaps, 0),
    gap_events: clients.reduce((s, c) => s + c.gapEvents, 0),
    disconnected: clients.filter((c) => c.disconnectReason).length,
    resume: RESUME,
    // resume mode, per client: epoch ms when its socket closed, when it was connected again,
    // and when it was whole again (see checkWhole); a client never whole again has null
    downs: RESUME ? clients.map((c) => c.downs) : undefined,
    reconnects: RESUME ? clients.map((c) => c.reconnects) : undefined,
    wholes: RESUME ? clients.map((c) => c.wholes) : undefined,
    still_resuming: RESUME ? clients.filter((c) => c.awaitingWhole).length : undefined,
    short_clients: shortClients(),
    events_seen: events,
    packets,
    max_batch: maxBatch,
    impl: IMPL,
    scan_mismatches: scanMismatches,
    protocol_errors: protocolErrors,
    negative_latency: negative,
    latency: { bin_ms: BIN_MS, bins: sparse, overflow, max_ms: maxLatency },
    cpu_s: (cpu.user + cpu.system) / 1e6,
    wall_s: wall,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  for (const c of clients) c.close();
  if (OUT) writeFileSync(OUT, JSON.stringify(result));
  process.stdout.write(`done ${reason}\n`);
  setTimeout(() => process.exit(0), 50);
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [cmd, a, b] = line.trim().split(/\s+/);
  if (cmd === "expect") {
    expected = Number(a);
    drainTimer = setTimeout(() => finish("drain_timeout"), Number(b ?? 10) * 1000);
    maybeDone();
  }
});
rl.on("close", () => finish("stdin_closed"));
process.on("SIGTERM", () => finish("sigterm"));
process.on("SIGINT", () => finish("sigint"));
setTimeout(() => finish("hard_timeout"), HARD_TIMEOUT_MS).unref();
setTimeout(() => { if (!readySent) { readySent = true; process.stdout.write(`ready ${clients.filter((c) => c.connected).length}\n`); } }, CONNECT_TIMEOUT_MS).unref();

// Connect in small waves: 100 simultaneous handshakes on a 2-core box otherwise time out.
for (let i = 0; i < CLIENTS; i++) {
  clients.push(makeClient(i));
  if (i % 20 === 19) await new Promise((r) => setTimeout(r, 20));
}
checkReady();
