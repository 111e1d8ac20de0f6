import { useCallback, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useAggregates } from '../hooks/useAggregates.js';
import { useHealth } from '../hooks/useHealth.js';
import { useMetricStream } from '../hooks/useMetricStream.js';
import { useNow } from '../hooks/useNow.js';
import { useUrlState } from '../hooks/useUrlState.js';
import { windowLong } from '../lib/format.js';
import { liveAggregate } from '../stream/liveAggregate.js';
import AggregatePanel from './AggregatePanel.jsx';
import CounterCards from './CounterCards.jsx';
import EventLog from './EventLog.jsx';
import FilterBar from './FilterBar.jsx';
import GapNotice from './GapNotice.jsx';
import Header from './Header.jsx';
import MetricChart from './MetricChart.jsx';
import Notice, { StartHint } from './Notice.jsx';

const union = (a, b) => [...new Set([...a, ...b])].sort();

function describe(filter) {
  const parts = [filter.source && `source ${filter.source}`, filter.metric && `metric ${filter.metric}`].filter(Boolean);
  return parts.length ? ` for ${parts.join(' and ')}` : '';
}

/** The page: wires the live stream, the polled aggregates and health into the panels. */
export default function Dashboard({ theme, onToggleTheme, chartSeconds = 60 }) {
  const { filter, windowSec, setFilter, setWindowSec } = useUrlState();
  const aggregates = useAggregates({ windowSec, filter });
  const stream = useMetricStream({ filter, tailSince: aggregates.data?.to ?? null, chartSeconds });
  const health = useHealth();
  const { snapshot, connection } = stream;
  const clock = useNow(connection.status !== 'connected');
  const now = Math.max(clock, snapshot.now);
  const [paused, setPaused] = useState(null); // { log, total } frozen at pause time

  // The pause button freezes what is on screen; a ref (kept current after each render) lets
  // its handler read that without changing identity 20 times a second.
  const snapshotRef = useRef(snapshot);
  useLayoutEffect(() => {
    snapshotRef.current = snapshot;
  }, [snapshot]);
  const togglePause = useCallback(() => {
    const { log, total } = snapshotRef.current;
    setPaused((p) => (p ? null : { log, total }));
  }, []);

  const counters = useMemo(() => liveAggregate(aggregates.data, snapshot.tail, snapshot.now), [aggregates.data, snapshot]);
  const aggSources = aggregates.data?.sources;
  const sources = useMemo(() => union(snapshot.sources, Object.keys(aggSources ?? {})), [snapshot.sources, aggSources]);
  const metrics = useMemo(
    () => union(snapshot.metrics, Object.keys(aggregates.data?.metrics ?? {})),
    [snapshot.metrics, aggregates.data],
  );
  const chartMetrics = Object.keys(snapshot.charts).sort();
  // Only once an attempt has failed: the stream opens after start-up, and until then it has not
  // been tried (the error banner used to flash on every page load, for as long as start-up took).
  const unreachable = connection.status !== 'connected' && !connection.connectedOnce && connection.attempt > 0;
  const waiting = connection.status === 'connected' && snapshot.total === 0;
  const noStream = (
    <Notice title={`No events yet${describe(filter)}.`}>
      <StartHint />
    </Notice>
  );

  return (
    <div className="app">
      <Header
        connection={connection}
        now={now}
        rate={snapshot.rate}
        latency={snapshot.latency}
        total={snapshot.total}
        theme={theme}
        onToggleTheme={onToggleTheme}
        onRetryNow={stream.retryNow}
      />
      <FilterBar
        sources={sources}
        metrics={metrics}
        filter={filter}
        onFilterChange={setFilter}
        windowSec={windowSec}
        onWindowChange={setWindowSec}
      />
      <div className="banners">
        {unreachable && (
          <Notice tone="error" title="Can't reach the backend.">
            Start it with <code>make run</code> (or <code>python backend/app.py</code>); the dashboard keeps retrying on its
            own.
          </Notice>
        )}
        {health.status === 'degraded' && (
          <Notice tone="warn" title="Redis is unreachable.">
            The backend is up but cannot read or store events; it reconnects by itself. Check that redis-server is running.
          </Notice>
        )}
        {stream.gap && <GapNotice gap={stream.gap} backfill={stream.backfill} onDismiss={stream.dismissGap} />}
      </div>
      <main className="layout">
        <div className="layout__main">
          <section aria-labelledby="counters-title">
            <h2 id="counters-title" className="section-title">
              Live counters <span className="muted">· {windowLong(windowSec)}</span>
            </h2>
            {counters.length > 0 ? (
              <CounterCards counters={counters} />
            ) : aggregates.error && !aggregates.data && !unreachable ? (
              <Notice tone="error" title="Counters are unavailable">
                {aggregates.error}
              </Notice>
            ) : aggregates.loading || unreachable ? (
              <p className="muted loading">Loading counters…</p>
            ) : (
              noStream
            )}
          </section>
          <section aria-labelledby="charts-title">
            <h2 id="charts-title" className="section-title">
              Live charts <span className="muted">· last {chartSeconds} s, per second</span>
            </h2>
            {chartMetrics.length > 0 ? (
              <div className="charts">
                {chartMetrics.map((m) => (
                  <MetricChart
                    key={m}
                    metric={m}
                    series={snapshot.charts[m]}
                    until={snapshot.chartsUntil}
                    windowSeconds={chartSeconds}
                    theme={theme}
                  />
                ))}
              </div>
            ) : waiting || connection.connectedOnce ? (
              noStream
            ) : (
              <p className="muted loading">Connecting to the live stream…</p>
            )}
          </section>
          <AggregatePanel windowSec={windowSec} {...aggregates} />
        </div>
        <aside className="layout__side">
          <EventLog
            events={paused ? paused.log : snapshot.log}
            paused={Boolean(paused)}
            onTogglePause={togglePause}
            newSincePause={paused ? snapshot.total - paused.total : 0}
            emptyTitle={`No events yet${describe(filter)}.`}
            loading={stream.backfill.at === null}
          />
        </aside>
      </main>
    </div>
  );
}
