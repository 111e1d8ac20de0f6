import { memo } from 'react';
import { human, metricLabel, perSecond, windowLong } from '../lib/format.js';
import Notice, { StartHint } from './Notice.jsx';
import SourceShare from './SourceShare.jsx';

const COLUMNS = [
  ['count', 'Count'],
  ['rate', 'Rate/s'],
  ['sum', 'Sum'],
  ['avg', 'Avg'],
  ['min', 'Min'],
  ['max', 'Max'],
  ['p95', 'p95'],
  ['p99', 'p99'],
];

function Body({ data, loading, error, windowSec }) {
  if (!data && error) {
    return (
      <Notice tone="error" title="Aggregates are unavailable">
        {error} It retries every 2 s; check <code>GET /api/health</code>.
      </Notice>
    );
  }
  if (!data && loading) return <p className="muted loading">Loading aggregates…</p>;
  const rows = Object.entries(data?.metrics ?? {});
  if (rows.length === 0) {
    return (
      <Notice title={`No events in the ${windowLong(windowSec)}.`}>
        <StartHint />
      </Notice>
    );
  }
  return (
    <div className="table-wrap">
      <table className="agg-table">
        <caption className="sr-only">Aggregates per metric over the {windowLong(windowSec)}</caption>
        <thead>
          <tr>
            <th scope="col">Metric</th>
            {COLUMNS.map(([key, label]) => (
              <th key={key} scope="col">
                {label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(([metric, m]) => (
            <tr key={metric} data-testid={`aggregate-row-${metric}`}>
              <th scope="row">{metricLabel(metric)}</th>
              {COLUMNS.map(([key]) => (
                <td key={key} className="num">
                  {human(m[key])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Exact window aggregates from the server: count, sum, avg, min, max and percentiles per metric. */
function AggregatePanel({ data, loading, error, windowSec }) {
  const stale = Boolean(error && data);
  const sources = Object.entries(data?.sources ?? {}).map(([name, s]) => ({ name, count: s.count, rate: s.rate }));
  return (
    <section
      className="card panel"
      data-testid="aggregate-panel"
      data-window={data?.window ?? ''}
      aria-labelledby="agg-title"
      aria-busy={loading && !data}
    >
      <header className="panel__head">
        <div>
          <h2 id="agg-title" className="card__title">
            Aggregates
          </h2>
          <p className="card__sub">
            {windowLong(windowSec)}
            {data?.total && (
              <>
                {' · '}
                <span className="num" data-testid="aggregate-total">
                  {human(data.total.count)}
                </span>{' '}
                events · <span className="num">{perSecond(data.total.rate)}</span>
              </>
            )}
          </p>
        </div>
        {stale && <span className="badge badge--warn">stale: {error}</span>}
      </header>
      <SourceShare sources={sources} />
      <Body data={data} loading={loading} error={error} windowSec={windowSec} />
    </section>
  );
}

export default memo(AggregatePanel);
