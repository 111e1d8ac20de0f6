// `npm run e2e:perf`: the dashboard in headless Chromium under a heavy stream (10,000 ev/s by
// default, as arrays) for 30 s. Prints a JSON summary: long tasks (> 50 ms) on the main thread,
// JS heap at start and end, React flushes per second, main-thread busy time, latency shown, and
// the first seconds after load (the p99 readout every 500 ms from the first, the long tasks of the
// warm-up before and after the load event and the stream's opening, when the first event and the
// first p99 readout were shown: `firstLook`).
// It reports; it asserts nothing (timings belong to measurements, not to unit tests).
// PERF_URL=http://localhost:3000 measures a dashboard already running (`make run` serves the
// production build, `make dev` Vite's dev server) at whatever rate its generator sends, instead
// of starting its own stack (a production build in `vite preview`).
import { launchChromium, startStack, waitUntil } from './stack.mjs';

const RATE = Number(process.env.PERF_RATE || 10000);
const BATCH = Number(process.env.PERF_BATCH || 200);
const SECONDS = Number(process.env.PERF_SECONDS || 30);
const WARMUP_S = Number(process.env.PERF_WARMUP || 5);
const TARGET = process.env.PERF_URL;
// PERF_TRACE=1: also trace the warm-up (Chromium's trace, with thread times) and report, for each
// main-thread task after load, its CPU time beside its wall time. On a shared machine a task's
// wall time includes the time other processes held the core (2-4 times its CPU time at a load
// average of 4-6 on 2 cores); its CPU time is the page's own work. Off by default: tracing adds
// its own overhead to what is measured.
const TRACE = process.env.PERF_TRACE === '1';

const observeLongTasks = () => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: Math.round(e.startTime), ms: Math.round(e.duration) });
  }).observe({ type: 'longtask', buffered: true });
  // What each long task was: the Long Animation Frames API (Chromium 123+) names the scripts of a
  // frame (who called them, which function of which file) and when its rendering started.
  window.__frames = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__frames.push({
          start: e.startTime,
          end: e.startTime + e.duration,
          renderStart: e.renderStart,
          scripts: e.scripts.map((x) => ({
            start: x.startTime,
            ms: x.duration,
            what: `${x.invoker}${x.sourceFunctionName ? ` ${x.sourceFunctionName}()` : ''} in ${(x.sourceURL || '?').split('/').pop()}`,
          })),
        });
      }
    }).observe({ type: 'long-animation-frame', buffered: true });
  } catch {
    /* not supported: tasks stay unexplained */
  }
  // The first look: when the page first shows an event (any, backfilled ones included) and a
  // p99 readout (live events only), as the DOM changes (performance.now(), ms).
  const shown = (window.__firstShown = { event: null, p99: null });
  const watch = new MutationObserver(() => {
    const total = document.querySelector('[data-testid="events-total"]')?.textContent;
    const p99 = document.querySelector('[data-testid="latency-p99"]')?.textContent;
    if (shown.event === null && /[1-9]/.test(total ?? '')) shown.event = Math.round(performance.now());
    if (shown.p99 === null && /\d/.test(p99 ?? '')) shown.p99 = Math.round(performance.now());
    if (shown.event !== null && shown.p99 !== null) watch.disconnect();
  });
  watch.observe(document, { subtree: true, childList: true, characterData: true });
};

// RunTask (a main-thread task) is in the disabled-by-default timeline category.
const TRACE_CATEGORIES = ['disabled-by-default-devtools.timeline', 'blink.user_timing'];

/** Stops the trace; the renderer main thread's tasks, from its navigationStart (ms), with wall and CPU time. */
async function endTrace(cdp, events) {
  const done = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
  await cdp.send('Tracing.end');
  await done;
  const threads = new Map(events.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]));
  const nav = events.find(
    (e) => e.name === 'navigationStart' && threads.get(`${e.pid}:${e.tid}`) === 'CrRendererMain' && /^http/.test(e.args?.data?.documentLoaderURL ?? ''),
  );
  if (!nav) return [];
  return events
    .filter((e) => e.pid === nav.pid && e.tid === nav.tid && e.ph === 'X' && e.name === 'RunTask')
    .map((e) => ({ start: Math.round((e.ts - nav.ts) / 1000), wallMs: Math.round(e.dur / 1000), cpuMs: Math.round((e.tdur ?? 0) / 1000) }));
}

async function sample(page, cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  const inPage = await page.evaluate(() => ({
    heap: performance.memory?.usedJSHeapSize ?? null,
    flushes: window.__dashboardStats?.flushes ?? 0,
    longTasks: window.__longTasks.length,
    now: performance.now(),
  }));
  return { ...inPage, task: m.TaskDuration, script: m.ScriptDuration, layout: m.LayoutDuration, style: m.RecalcStyleDuration, nodes: m.Nodes };
}

const stack = TARGET ? { url: TARGET, stop: async () => {} } : await startStack({ rate: RATE, batch: BATCH });
let browser;
try {
  browser = await launchChromium(['--enable-precise-memory-info', '--js-flags=--expose-gc']);
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.addInitScript(observeLongTasks);
  page.on('pageerror', (err) => console.error('page error:', err.message));
  page.on('console', (msg) => msg.type() === 'error' && console.error('console error:', msg.text()));
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const traceEvents = [];
  if (TRACE) {
    cdp.on('Tracing.dataCollected', ({ value }) => traceEvents.push(...value));
    await cdp.send('Tracing.start', {
      traceConfig: { includedCategories: TRACE_CATEGORIES, enableThreadTimestamps: true },
      transferMode: 'ReportEvents',
    });
  }
  await page.goto(stack.url);
  await waitUntil(async () => (await page.getByTestId('connection-status').textContent()) === 'connected', { what: 'connected' });
  // A newcomer's first look: what the p99 readout says from its first sample on.
  await waitUntil(async () => /\d/.test(await page.getByTestId('latency-p99').textContent()), { what: 'a p99 readout', everyMs: 20 });
  const firstP99 = [];
  for (let t = 0; t < WARMUP_S * 1000; t += 500) {
    const [shown, at] = await Promise.all([page.getByTestId('latency-p99').textContent(), page.evaluate(() => performance.now())]);
    firstP99.push({ atMs: Math.round(at), p99: shown });
    await page.waitForTimeout(500);
  }
  const tracedTasks = TRACE ? await endTrace(cdp, traceEvents) : null;
  await cdp.send('HeapProfiler.collectGarbage');
  const start = await sample(page, cdp);
  const totalStart = Number(await page.getByTestId('events-total').textContent());
  // Heap after a forced GC every 10 s: flat means bounded (a leak climbs steadily).
  const heapTrendMB = [+(start.heap / 1e6).toFixed(1)];
  for (let left = SECONDS; left > 0; left -= 10) {
    await page.waitForTimeout(Math.min(10, left) * 1000);
    if (left > 10) {
      await cdp.send('HeapProfiler.collectGarbage');
      heapTrendMB.push(+((await sample(page, cdp)).heap / 1e6).toFixed(1));
    }
  }
  // Read what the page shows before the forced GC below pauses it.
  const latencyMs = { p50: await page.getByTestId('latency-p50').textContent(), p99: await page.getByTestId('latency-p99').textContent() };
  const eventsPerSecondShown = Number(await page.getByTestId('event-rate').textContent());
  await cdp.send('HeapProfiler.collectGarbage');
  const end = await sample(page, cdp);
  const totalEnd = Number(await page.getByTestId('events-total').textContent());
  const longTasks = await page.evaluate(() => window.__longTasks);
  const wall = (end.now - start.now) / 1000;
  const measuredLong = longTasks.filter((t) => t.start >= start.now);
  const startup = await page.evaluate(() => ({
    loadMs: Math.round(performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? NaN),
    streamOpenedMs: Math.round(window.__dashboardStats?.streamOpenedAt ?? NaN),
    firstEventShownMs: window.__firstShown.event,
    firstP99ShownMs: window.__firstShown.p99,
  }));
  // Each long task after load, with what it was: its longest script, or the frame's rendering
  // (style, layout, paint) when that is what the task spent its time on.
  const explained = await page.evaluate((loadMs) => {
    const tasks = window.__longTasks.filter((t) => t.start >= loadMs);
    return tasks.map((t) => {
      const end = t.start + t.ms;
      const frame = window.__frames.find((f) => f.start <= t.start + 1 && t.start < f.end);
      if (!frame) return `${t.ms} ms at ${t.start}: ?`;
      const scripts = frame.scripts.filter((x) => x.start >= t.start - 1 && x.start < end);
      const top = scripts.sort((a, b) => b.ms - a.ms)[0];
      const render = frame.renderStart >= t.start && frame.renderStart < end ? Math.round(end - frame.renderStart) : 0;
      const parts = [top && `${Math.round(top.ms)} ms ${top.what}`, render && `${render} ms rendering (style, layout, paint)`];
      return `${t.ms} ms at ${t.start}: ${parts.filter(Boolean).join(', ') || '?'}`;
    });
  }, startup.loadMs);
  const readouts = firstP99.map((r) => Number.parseFloat(r.p99)).filter(Number.isFinite);
  const warmup = longTasks.filter((t) => t.start < start.now);
  const firstLook = {
    ...startup,
    // The readouts of the first WARMUP_S seconds from the first one (every 500 ms).
    readouts: readouts.length,
    readoutMaxMs: Math.max(...readouts),
    readoutsOver100ms: readouts.filter((v) => v >= 100).length,
    longTasksBeforeLoad: warmup.filter((t) => t.start < startup.loadMs).map((t) => t.ms),
    longTasksAfterLoad: warmup.filter((t) => t.start >= startup.loadMs).map((t) => t.ms),
    longTasksAfterStreamOpened: warmup.filter((t) => t.start >= startup.streamOpenedMs).map((t) => t.ms),
    longTasksAfterLoadWere: explained.slice(0, 20),
  };
  if (tracedTasks) {
    const afterLoad = tracedTasks.filter((t) => t.start >= startup.loadMs);
    // The longest by CPU time, and every task over 50 ms by wall time, as "cpu/wall ms at start".
    const shown = (t) => `${t.cpuMs}/${t.wallMs} ms at ${t.start}`;
    firstLook.tracedAfterLoad = {
      longestCpuMs: Math.max(0, ...afterLoad.map((t) => t.cpuMs)),
      topByCpu: afterLoad.sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 5).map(shown),
      over50msWall: afterLoad.filter((t) => t.wallMs > 50).map(shown),
    };
  }
  const summary = {
    url: TARGET ? stack.url : 'own stack (vite preview of a fresh build)',
    rate: TARGET ? 'the running stack\'s' : RATE,
    batch: TARGET ? null : BATCH,
    seconds: Math.round(wall),
    eventsPerSecondShown,
    eventsReceivedPerSecond: Math.round((totalEnd - totalStart) / wall),
    latencyMs,
    longTasksOver50ms: measuredLong.length,
    longestTaskMs: Math.max(0, ...measuredLong.map((t) => t.ms)),
    longTasksDuringWarmup: longTasks.length - measuredLong.length,
    warmupLongTasks: warmup,
    firstLook,
    firstP99,
    reactFlushesPerSecond: +((end.flushes - start.flushes) / wall).toFixed(1),
    mainThreadBusy: +((end.task - start.task) / wall).toFixed(3),
    scriptShare: +((end.script - start.script) / wall).toFixed(3),
    layoutAndStyleShare: +((end.layout - start.layout + end.style - start.style) / wall).toFixed(3),
    heapMB: { start: +(start.heap / 1e6).toFixed(1), end: +(end.heap / 1e6).toFixed(1) },
    heapTrendMB: [...heapTrendMB, +(end.heap / 1e6).toFixed(1)],
    domNodes: { start: start.nodes, end: end.nodes },
  };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  await browser?.close().catch(() => {});
  await stack.stop();
}
