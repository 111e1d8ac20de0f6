import { memo } from 'react';
import { sourceColor } from '../lib/colors.js';
import { clockTimeMs, human } from '../lib/format.js';
import { metricLabel } from '../lib/metricKinds.js';
import Notice, { StartHint } from './Notice.jsx';

const Row = memo(function Row({ event }) {
  const tags = Object.entries(event.tags ?? {});
  return (
    <li className="log-row" data-testid="event-row" data-event-id={event.id} data-source={event.source} data-metric={event.metric}>
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

/** The newest events first (at most 200), with pause / resume. */
function EventLog({ events, paused, onTogglePause, newSincePause, emptyTitle = 'No events yet.' }) {
  return (
    <section className="card panel log" aria-labelledby="log-title">
      <header className="panel__head">
        <div>
          <h2 id="log-title" className="card__title">
            Live events
          </h2>
          <p className="card__sub">
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
      {events.length === 0 && (
        <Notice title={emptyTitle}>
          <StartHint />
        </Notice>
      )}
      {/* Focusable so keyboard users can scroll it; not a live region (it changes 5 times a second). */}
      <ol className="log__rows" data-testid="event-log" aria-label="Events, newest first" tabIndex={0}>
        {events.map((e) => (
          <Row key={e.id ?? `${e.ts}-${e.source}-${e.metric}`} event={e} />
        ))}
      </ol>
    </section>
  );
}

export default memo(EventLog);
