// Load clients: N Socket.IO connections (WebSocket transport only) in one light Node process.
//
//   node bench/clients.mjs --url http://127.0.0.1:PORT --clients N --out result.json
//
// Protocol with the orchestrator (bench/run.py), line based so it needs no extra ports:
//   stdout "ready <n>"            every client is connected (and so joined the server's room)
//   stdin  "expect <E> <drainS>"  the publisher sent E events: wait until every client has E,
//                                 or drainS seconds pass, then write --out and exit
//   SIGTERM / stdin EOF           write --out with what arrived so far and exit
//
// Per event: latency = receive time (performance.timeOrigin + performance.now(), sub-ms) - ts.
// Latencies go to a fixed histogram (0.05 ms bins), not an array: 10,000 ev/s x 100 clients
// x 60 s is 60 M samples. Duplicates are found with a bitmap per client indexed by the
// generator's sequence number (ids end in "-<seq>"), so memory stays small at any rate.
import { io } from "socket.io-client";
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const URL_ = args.url;
const CLIENTS = Number(args.clients ?? 1);
const OUT = args.out;
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
const clients = [];
const t0Wall = Date.now();
let cpuAtReady = null;
let wallAtReady = null;
let finished = false;

const now = () => performance.timeOrigin + performance.now();

function makeClient(index) {
  const c = { index, received: 0, duplicates: 0, gaps: 0, gapEvents: 0, bits: new Uint8Array(1 << 17), connected: false, errors: 0 };
  const socket = io(URL_, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: CONNECT_TIMEOUT_MS });
  c.socket = socket;
  socket.on("metrics", (batch) => {
    const t = now();
    packets++;
    if (batch.length > maxBatch) maxBatch = batch.length;
    for (let i = 0; i < batch.length; i++) {
      const ev = batch[i];
      let lat = t - ev.ts;
      if (lat < 0) { negative++; lat = 0; }
      if (lat > maxLatency) maxLatency = lat;
      const bin = Math.floor(lat / BIN_MS);
      if (bin < BINS) hist[bin]++; else overflow++;
      const seq = Number(ev.id.slice(ev.id.lastIndexOf("-") + 1));
      const byte = seq >>> 3;
      if (byte >= c.bits.length) {
        const grown = new Uint8Array(Math.max(c.bits.length * 2, byte + 1));
        grown.set(c.bits);
        c.bits = grown;
      }
      const mask = 1 << (seq & 7);
      if (c.bits[byte] & mask) c.duplicates++;
      else { c.bits[byte] |= mask; c.received++; }
    }
    events += batch.length;
    if (expected !== null) maybeDone();
  });
  socket.on("gap", (p) => { c.gaps++; c.gapEvents += (p && p.dropped) || 0; });
  socket.on("connect", () => { c.connected = true; checkReady(); });
  socket.on("connect_error", (err) => { c.errors++; c.lastError = String(err && err.message); checkReady(); });
  socket.on("disconnect", (reason) => { c.disconnectReason = reason; });
  return c;
}

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
  if (clients.every((c) => c.received + c.gapEvents >= expected)) finish("complete");
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
    events_seen: events,
    packets,
    max_batch: maxBatch,
    negative_latency: negative,
    latency: { bin_ms: BIN_MS, bins: sparse, overflow, max_ms: maxLatency },
    cpu_s: (cpu.user + cpu.system) / 1e6,
    wall_s: wall,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  for (const c of clients) c.socket.disconnect();
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
