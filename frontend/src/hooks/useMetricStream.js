import { startTransition, useCallback, useEffect, useRef, useState } from 'react';
import * as api from '../api/client.js';
import { connectMetricSocket } from '../api/socket.js';
import { afterStartup } from '../lib/afterStartup.js';
import { yieldToMain } from '../lib/yieldToMain.js';
import { toQuery, toSubscription } from '../stream/filter.js';
import { StreamStore } from '../stream/StreamStore.js';

const FLUSH_MS = 50; // React sees the stream at most 20 times a second
const IDLE_MS = 500; // and twice a second when nothing arrives (clocks, countdowns, axes)
const PREFILL_WAIT_MS = 3000; // the most the live stream waits for the first backfill
// A backfill (up to RECENT_MAX events, 1,000 by default) is folded into the store this many at a
// time, each slice in a task of its own: the first one, with the store's code not yet compiled,
// took 40-55 ms on the 2-core machine in one go.
const BACKFILL_SLICE = 200;

/** Resolves when `promise` settles or after `ms`, whichever is first; `cancel()` drops the timer. */
function settledWithin(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  const done = Promise.race([promise.catch(() => {}), timeout]).finally(() => clearTimeout(timer));
  return { done, cancel: () => clearTimeout(timer) };
}

/**
 * The live stream: one socket, one bounded store, one throttled snapshot for React.
 * Events are folded into the store as they arrive (never a setState per event); a timer
 * publishes a snapshot when something changed, so React renders at <= 1000/FLUSH_MS Hz.
 * First look: the page shows the last events over REST first (building the charts, the dearest
 * one-off work of the page), and opens the socket after that, through `startAfter` (by default
 * once the page has loaded and gone idle). Live events are then received when they arrive, not
 * behind the page's own start-up, and the backfill of the fresh connect brings what was
 * published in between (the store drops what it already has, by id).
 */
export function useMetricStream({
  filter,
  tailSince = null,
  chartSeconds = 60,
  connect = connectMetricSocket,
  client = api,
  startAfter = afterStartup,
}) {
  // One store for the component's life (a lazy initial state is built once, on mount).
  const [store] = useState(() => new StreamStore({ chartSeconds, filter }));
  const [snapshot, setSnapshot] = useState(() => store.snapshot(filter, Date.now()));
  const [connection, setConnection] = useState({ status: 'reconnecting', retryAt: null, attempt: 0, connectedOnce: false });
  const [gap, setGap] = useState(null);
  const [backfill, setBackfill] = useState({ running: false, added: 0, error: null, at: null });
  const filterRef = useRef(filter);
  const tailRef = useRef(tailSince);
  const connRef = useRef(null);
  const backfillAbort = useRef(null);

  useEffect(() => {
    tailRef.current = tailSince;
  }, [tailSince]);

  const runBackfill = useCallback(async () => {
    backfillAbort.current?.abort();
    const ctrl = new AbortController();
    backfillAbort.current = ctrl;
    setBackfill((b) => ({ ...b, running: true }));
    const { signal } = ctrl;
    try {
      // As much as the server keeps; asked each time, as a restarted server may keep another amount.
      const limit = await client.getRecentMax({ signal });
      const events = await client.getRecent({ limit, ...toQuery(filterRef.current), signal });
      const oldestFirst = events.slice().reverse();
      // Sliced: what the store keeps does not depend on the order batches arrive in (ids dedupe,
      // buckets and the log go by ts), so live events ingested between two slices change nothing.
      let added = 0;
      for (let i = 0; i < oldestFirst.length; i += BACKFILL_SLICE) {
        if (i > 0) await yieldToMain();
        if (signal.aborted) return;
        added += store.ingest(oldestFirst.slice(i, i + BACKFILL_SLICE), { live: false });
      }
      setBackfill({ running: false, added, error: null, at: Date.now() });
    } catch (err) {
      if (!signal.aborted) setBackfill({ running: false, added: 0, error: err.message, at: Date.now() });
    }
  }, [client, store]);

  useEffect(() => {
    const openStream = () => connect({
      subscription: toSubscription(filterRef.current),
      // A resume's replayed events fill the log and counters but are not live: their age is the
      // outage, not the pipeline's latency.
      onEvents: (events, receivedAt, { replay = false } = {}) => store.ingest(events, { live: !replay, receivedAt }),
      onStatus: (next) => {
        store.setConnected(next.status === 'connected');
        setConnection(next);
      },
      // A resumed connection is sent what it missed by the server; only a fresh one backfills.
      onConnect: ({ resumed = false } = {}) => {
        if (!resumed) runBackfill();
      },
      onGap: (info) => {
        // dropped is null when unknown (a resume from further back than the server's log keeps)
        setGap({ dropped: info.dropped == null ? null : Number(info.dropped) || 0, reason: info.reason, at: Date.now() });
        runBackfill();
      },
    });
    // streamOpenedAt: when the socket was opened (performance.now()), for e2e/perf.mjs.
    const stats = { flushes: 0, startedAt: performance.now(), streamOpenedAt: null };
    if (typeof window !== 'undefined') window.__dashboardStats = stats;

    let lastPublish = 0;
    const publish = (now) => {
      store.dirty = false;
      lastPublish = now;
      stats.flushes += 1;
      const next = store.snapshot(filterRef.current, now, { tailSince: tailRef.current });
      // Until the stream opens, a snapshot is rendered as a transition, in slices that yield to the
      // browser: the first one with data (the log's rows, the counters, every chart's card) was a
      // 40-100 ms task as one ordinary render. Live, each render is small and goes out at once.
      if (stats.streamOpenedAt === null) startTransition(() => setSnapshot(next));
      else setSnapshot(next);
    };
    const timer = setInterval(() => {
      const now = Date.now();
      if (store.dirty || now - lastPublish >= IDLE_MS) publish(now);
    }, FLUSH_MS);

    let conn = null;
    let stopped = false;
    let cancelStart = () => {};
    // The first backfill starts with the dashboard; the one state it sets at once is its own
    // `running` flag (a single extra render at mount, not a cascade).
    // eslint-disable-next-line react-hooks/set-state-in-effect
    const prefill = settledWithin(runBackfill(), PREFILL_WAIT_MS);
    prefill.done.then(() => {
      if (stopped) return;
      publish(Date.now()); // rendered now, so the idle moment awaited next comes after it
      cancelStart = startAfter(() => {
        conn = openStream();
        connRef.current = conn;
        stats.streamOpenedAt = performance.now();
      });
    });

    return () => {
      stopped = true;
      clearInterval(timer);
      prefill.cancel();
      cancelStart();
      backfillAbort.current?.abort();
      conn?.close();
      connRef.current = null;
    };
  }, [connect, runBackfill, startAfter, store]);

  // A new filter narrows (or widens) the server's subscription, prunes the log and refills it.
  const firstFilter = useRef(true);
  useEffect(() => {
    filterRef.current = filter;
    if (firstFilter.current) {
      firstFilter.current = false;
      return;
    }
    store.setFilter(filter);
    connRef.current?.subscribe(toSubscription(filter));
    runBackfill();
  }, [filter, runBackfill, store]);

  const retryNow = useCallback(() => connRef.current?.retryNow(), []);
  const dismissGap = useCallback(() => setGap(null), []);

  return { snapshot, connection, gap, dismissGap, backfill, retryNow };
}
