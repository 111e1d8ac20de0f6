import { memo } from 'react';
import { human, metricLabel, perSecond } from '../lib/format.js';

// The headline fits the metric: a gauge's average, an amount's total, a counter's count.
function lines(c) {
  const rate = perSecond(c.rate);
  if (c.kind === 'gauge') return [human(c.avg), `avg · max ${human(c.max)}`];
  if (c.kind === 'amount') return [human(c.sum), `sum of ${human(c.count)} · ${rate}`];
  return [human(c.count), rate];
}

/** One card per metric: the window's count / sum / average as fits the metric, and its rate. */
function CounterCards({ counters }) {
  return (
    <ul className="counters" aria-label="Live counters">
      {counters.map((c) => {
        const [value, caption] = lines(c);
        return (
          <li key={c.metric} className="card counter" data-testid={`counter-${c.metric}`}>
            <span className="counter__name">{metricLabel(c.metric)}</span>
            <span className="counter__value num" data-testid={`counter-value-${c.metric}`}>
              {value}
            </span>
            <span className="counter__caption num">{caption}</span>
          </li>
        );
      })}
    </ul>
  );
}

export default memo(CounterCards);
