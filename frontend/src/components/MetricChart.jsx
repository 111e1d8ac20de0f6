import { memo, useEffect, useRef, useState } from 'react';
import { flushSync } from 'react-dom';
import { Line } from 'react-chartjs-2';
import { sourceColor } from '../lib/colors.js';
import { clockTime, human, metricLabel } from '../lib/format.js';
import { chartUnit } from '../stream/metricKinds.js';
import './chart/chartSetup.js';
import { chartTheme } from './chart/chartTheme.js';
import { cancelRedraw, redrawSoon } from './chart/redrawQueue.js';

const NICE_STEPS_S = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

function tickStepMs(windowSeconds) {
  const target = windowSeconds / 4;
  return (NICE_STEPS_S.find((s) => s >= target) ?? 3600) * 1000;
}

function chartOptions(colors, windowSeconds, until) {
  const step = tickStepMs(windowSeconds);
  return {
    animation: false,
    parsing: false,
    normalized: true,
    spanGaps: true,
    responsive: true,
    maintainAspectRatio: false,
    events: ['mousemove', 'mouseout', 'touchstart', 'touchmove'],
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    elements: {
      point: { radius: 0, hoverRadius: 3, hitRadius: 6 },
      line: { borderWidth: 1.75, tension: 0.3, fill: false },
    },
    plugins: {
      legend: { display: false },
      tooltip: {
        backgroundColor: colors.tooltipBg,
        titleColor: colors.tooltipFg,
        bodyColor: colors.tooltipFg,
        padding: 8,
        cornerRadius: 8,
        boxPadding: 4,
        usePointStyle: true,
        callbacks: {
          title: (items) => (items.length ? clockTime(items[0].parsed.x) : ''),
          label: (item) => ` ${item.dataset.label}: ${human(item.parsed.y)}`,
        },
      },
    },
    scales: {
      x: {
        type: 'linear',
        // Set from the start: with no explicit range an empty series makes Chart.js guess one.
        min: until - windowSeconds * 1000,
        max: until,
        border: { display: false },
        grid: { color: colors.grid, drawTicks: false },
        ticks: { color: colors.ticks, maxRotation: 0, padding: 6, font: { size: 11 }, callback: (v) => clockTime(v) },
        afterBuildTicks: (scale) => {
          // Clock-aligned ticks (every 15 s for a minute) instead of ones that drift with the range.
          if (!((scale.max - scale.min) / step <= 24)) return;
          const ticks = [];
          for (let v = Math.ceil(scale.min / step) * step; v <= scale.max; v += step) ticks.push({ value: v });
          scale.ticks = ticks;
        },
      },
      y: {
        beginAtZero: true,
        grace: '10%',
        border: { display: false },
        grid: { color: colors.grid, drawTicks: false },
        ticks: { color: colors.ticks, maxTicksLimit: 5, padding: 6, font: { size: 11 }, callback: (v) => human(v) },
      },
    },
  };
}

/**
 * `build()` run on mount and again only when `key` changes, not when the props it reads do:
 * react-chartjs-2 rebuilds or re-sets whatever object it is given anew, and the per-second
 * changes are applied to the chart in place instead. (State adjusted during render, as
 * https://react.dev/reference/react/useState#storing-information-from-previous-renders shows.)
 */
function useBuiltPer(key, build) {
  const [built, setBuilt] = useState(() => ({ key, value: build() }));
  if (built.key === key) return built.value;
  const next = { key, value: build() };
  setBuilt(next);
  return next.value;
}

function dataset(source, points) {
  const color = sourceColor(source);
  return { label: source, data: points, borderColor: color, backgroundColor: color, pointBackgroundColor: color };
}

/**
 * False until this chart's turn in the redraw queue, then true. Building a Chart.js chart (scales,
 * canvas sizing, the first draw) takes 20-25 ms; the first snapshot with data mounts every chart
 * at once, and built in that one commit they made the page's longest task (60-80 ms), which held
 * the first live events back. Taking turns, each chart is built in a task of its own, after the
 * next frame: the commit that mounted the cards has been laid out by then, where Chart.js reading
 * its canvas' size would otherwise force that layout into the first chart's task.
 */
function useOwnTurn() {
  const [ready, setReady] = useState(false);
  useEffect(() => {
    const turn = {};
    // flushSync: the chart is built (react-chartjs-2 does it in an effect) within this very task.
    const frame = requestAnimationFrame(() => redrawSoon(turn, () => flushSync(() => setReady(true))));
    return () => {
      cancelAnimationFrame(frame);
      cancelRedraw(turn);
    };
  }, []);
  return ready;
}

/**
 * One metric over the last `windowSeconds`, one line per source, up to `until` (ms, the end of
 * the last complete second). Chart.js owns the canvas: React builds the chart once per set of
 * sources and theme; after that each new `series` (once a second) only swaps the point arrays
 * and the x range in place and redraws without animation.
 */
function MetricChart({ metric, series, until, windowSeconds = 60, theme = 'light' }) {
  const chartRef = useRef(null);
  const built = useOwnTurn();
  // Rebuilt only when the set of sources changes; points are swapped in place below.
  const data = useBuiltPer(series.map((s) => s.source).join('\u0000'), () => ({
    datasets: series.map((s) => dataset(s.source, s.points)),
  }));
  // Rebuilt per theme and span, starting at the x range of that moment; the range then moves below.
  const options = useBuiltPer(`${theme} ${windowSeconds}`, () => chartOptions(chartTheme(theme), windowSeconds, until));

  useEffect(() => {
    const chart = chartRef.current;
    if (!chart) return undefined;
    redrawSoon(chart, () => {
      if (!chart.canvas) return; // destroyed meanwhile
      const points = new Map(series.map((s) => [s.source, s.points]));
      for (const ds of chart.data.datasets) ds.data = points.get(ds.label) ?? [];
      chart.options.scales.x.min = until - windowSeconds * 1000;
      chart.options.scales.x.max = until;
      chart.update('none');
    });
    return () => cancelRedraw(chart);
  }, [series, until, windowSeconds, data, options, built]);

  const latest = series.map((s) => ({ source: s.source, y: s.points.length ? s.points[s.points.length - 1].y : null }));
  const label = `${metricLabel(metric)}, ${chartUnit(metric)}, last ${windowSeconds} seconds: ${latest
    .map((l) => `${l.source} ${human(l.y)}`)
    .join(', ')}`;

  return (
    <figure className="card chart-card" data-testid={`chart-${metric}`} aria-labelledby={`chart-title-${metric}`}>
      <figcaption className="chart-card__head">
        <h3 id={`chart-title-${metric}`} className="card__title">
          {metricLabel(metric)}
        </h3>
        <span className="card__sub">{chartUnit(metric)}</span>
      </figcaption>
      <ul className="legend" aria-label="Latest second per source">
        {latest.map((l) => (
          <li key={l.source} className="legend__item">
            <span className="swatch" style={{ background: sourceColor(l.source) }} aria-hidden="true" />
            <span className="legend__name">{l.source}</span>
            <span className="legend__value num">{human(l.y)}</span>
          </li>
        ))}
      </ul>
      <div className="chart-card__canvas">
        {built && (
          <Line ref={chartRef} data={data} options={options} updateMode="none" datasetIdKey="label" role="img" aria-label={label}>
            {label}
          </Line>
        )}
      </div>
    </figure>
  );
}

export default memo(MetricChart);
