import { elementScroll, useVirtualizer } from '@tanstack/react-virtual';
import { memo, useRef } from 'react';
import { sourceColor } from '../lib/colors.js';
import { clockTimeMs, human, metricLabel } from '../lib/format.js';
import Notice, { StartHint } from './Notice.jsx';

// Rows have a fixed height (.log-row in app.css), so the list renders only the rows in view
// (plus a few either side) and spacers for the rest: at 10,000 ev/s every row changes five
// times a second, and building 200 rows' DOM each time was most of the page's main-thread work.
const ROW_PX = 29;
const OVERSCAN = 8;
const rowKey = (e) => e.id ?? `${e.ts}-${e.source}-${e.metric}`;
// A list that is not laid out (hidden, or a DOM without layout such as the tests' jsdom)
// measures 0 x 0: render a list's worth of rows then, rather than none.
const UNMEASURED = { width: 400, height: 520 };
// The list's size comes from a ResizeObserver only, whose first report follows the page's first
// layout. The library's observeElementRect reads it at once, in React's commit, which forced that
// first layout (30-60 ms here) into the first render's task.
const observeRect = (instance, onChange) => {
  const list = instance.scrollElement;
  const Observer = instance.targetWindow?.ResizeObserver;
  if (!list || !Observer) return undefined;
  const observer = new Observer(() => {
    const rect = { width: list.clientWidth, height: list.clientHeight };
    onChange(rect.height > 0 ? rect : UNMEASURED);
  });
  observer.observe(list);
  return () => observer.disconnect();
};

// As it mounts, the virtualizer scrolls the list to where it already is (the top); that scrollTo
// too forced the first layout into React's commit. A move to 0 while the virtualizer knows the
// list is at 0 is left out; every other scroll is the library's own.
const scrollList = (offset, options, instance) => {
  if (offset + (options.adjustments ?? 0) === 0 && instance.scrollOffset === 0) return;
  elementScroll(offset, options, instance);
};

const Row = memo(function Row({ event, position, total }) {
  const tags = Object.entries(event.tags ?? {});
  return (
    <li
      className="log-row"
      data-testid="event-row"
      data-event-id={event.id}
      data-source={event.source}
      data-metric={event.metric}
      aria-posinset={position}
      aria-setsize={total}
    >
      <time className="log-row__time num" dateTime={new Date(event.ts).toISOString()}>
        {clockTimeMs(event.ts)}
      </time>
      <span className="log-row__source">
        <span className="swatch" style={{ background: sourceColor(event.source) }} aria-hidden="true" />
        {event.source}
      </span>
      <span className="log-row__what">
        <span className="log-row__metric">{metricLabel(event.metric)}</span>
        {tags.map(([k, v]) => (
          <span key={k} className="tag">
            {k}={v}
          </span>
        ))}
      </span>
      <span className="log-row__value num">{human(event.value)}</span>
    </li>
  );
});

/**
 * The newest events first (at most 200), with pause / resume. `loading`: the first events are
 * still being fetched, so an empty log is not yet news (and the start hint, set in a monospace
 * font, stays out of the page's first layout, where looking that font up cost 5-10 ms).
 */
function EventLog({ events, paused, onTogglePause, newSincePause, emptyTitle = 'No events yet.', loading = false }) {
  const listRef = useRef(null);
  // This app is not built with the React Compiler, whose memoization the rule protects; nothing
  // the virtualizer returns is passed to a memoized child (Row gets plain events and numbers).
  // eslint-disable-next-line react-hooks/incompatible-library
  const virtualizer = useVirtualizer({
    count: events.length,
    getScrollElement: () => listRef.current,
    estimateSize: () => ROW_PX,
    getItemKey: (i) => rowKey(events[i]),
    overscan: OVERSCAN,
    initialRect: UNMEASURED,
    observeElementRect: observeRect,
    scrollToFn: scrollList,
  });
  const rows = virtualizer.getVirtualItems();
  const above = rows.length ? rows[0].start : 0;
  const below = rows.length ? virtualizer.getTotalSize() - rows[rows.length - 1].end : 0;
  return (
    <section className="card panel log" aria-labelledby="log-title">
      <header className="panel__head">
        <div>
          <h2 id="log-title" className="card__title">
            Live events
          </h2>
          <p className="card__sub" data-testid="log-shown">
            newest first · {events.length} shown
            {paused && newSincePause > 0 && <span className="num"> · {newSincePause} new while paused</span>}
          </p>
        </div>
        <button
          type="button"
          className={`button ${paused ? 'button--primary' : ''}`}
          data-testid="pause-button"
          aria-pressed={paused}
          onClick={onTogglePause}
        >
          {paused ? 'Resume' : 'Pause'}
        </button>
      </header>
      {events.length === 0 &&
        (loading ? (
          <p className="muted loading">Loading events…</p>
        ) : (
          <Notice title={emptyTitle}>
            <StartHint />
          </Notice>
        ))}
      {/* Focusable so keyboard users can scroll it; not a live region (it changes 5 times a second). */}
      <ol ref={listRef} className="log__rows" data-testid="event-log" aria-label="Events, newest first" tabIndex={0}>
        {above > 0 && <li className="log__spacer" aria-hidden="true" style={{ height: above }} />}
        {rows.map((row) => (
          <Row key={row.key} event={events[row.index]} position={row.index + 1} total={events.length} />
        ))}
        {below > 0 && <li className="log__spacer" aria-hidden="true" style={{ height: below }} />}
      </ol>
    </section>
  );
}

export default memo(EventLog);
