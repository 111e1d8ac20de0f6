import { memo } from 'react';
import { metricLabel, WINDOWS } from '../lib/format.js';

function Picker({ id, label, testId, value, onChange, children }) {
  return (
    <label className="picker" htmlFor={id}>
      <span className="picker__label">{label}</span>
      <select id={id} data-testid={testId} value={value} onChange={(e) => onChange(e.target.value)}>
        {children}
      </select>
    </label>
  );
}

// A name chosen earlier (from the URL, say) stays selectable even before the stream shows it.
const withCurrent = (names, current) => (current && !names.includes(current) ? [...names, current].sort() : names);

/** Source and metric filters (they apply everywhere) and the aggregate window. */
function FilterBar({ sources, metrics, filter, onFilterChange, windowSec, onWindowChange }) {
  const filtered = Boolean(filter.source || filter.metric);
  return (
    <nav className="filters" aria-label="Filters">
      <Picker
        id="source-filter"
        label="Source"
        testId="source-filter"
        value={filter.source}
        onChange={(source) => onFilterChange({ ...filter, source })}
      >
        <option value="">All sources</option>
        {withCurrent(sources, filter.source).map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </Picker>
      <Picker
        id="metric-filter"
        label="Metric"
        testId="metric-filter"
        value={filter.metric}
        onChange={(metric) => onFilterChange({ ...filter, metric })}
      >
        <option value="">All metrics</option>
        {withCurrent(metrics, filter.metric).map((m) => (
          <option key={m} value={m}>
            {metricLabel(m)}
          </option>
        ))}
      </Picker>
      <Picker
        id="window-select"
        label="Window"
        testId="window-select"
        value={String(windowSec)}
        onChange={(v) => onWindowChange(Number(v))}
      >
        {WINDOWS.map((w) => (
          <option key={w.value} value={w.value}>
            {w.label}
          </option>
        ))}
      </Picker>
      {filtered && (
        <button type="button" className="link-button" onClick={() => onFilterChange({ source: '', metric: '' })}>
          Clear filters
        </button>
      )}
    </nav>
  );
}

export default memo(FilterBar);
