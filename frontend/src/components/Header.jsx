import { plainCount, plainMs, plainRate } from '../lib/format.js';
import ConnectionStatus from './ConnectionStatus.jsx';
import HeaderStat from './HeaderStat.jsx';
import ThemeToggle from './ThemeToggle.jsx';

const LATENCY_TARGET_MS = 100;

/** Brand, stream state and the four live numbers: rate, latency p50/p99, events this session. */
export default function Header({ connection, now, rate, latency, total, theme, onToggleTheme, onRetryNow }) {
  const p99 = latency.p99;
  const tone = p99 === null ? 'neutral' : p99 < LATENCY_TARGET_MS ? 'good' : 'bad';
  return (
    <header className="topbar">
      <div className="brand">
        <svg className="brand__mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
          <rect width="32" height="32" rx="8" />
          <path d="M5 17h5l3-8 5 15 3-7h6" />
        </svg>
        <div>
          <h1 className="brand__name">Pulse</h1>
          <p className="brand__tag">Real-time analytics</p>
        </div>
      </div>
      <ConnectionStatus {...connection} now={now} onRetryNow={onRetryNow} />
      <div className="topbar__stats" aria-label="Live stream">
        <HeaderStat label="Events / s" value={plainRate(rate)} testId="event-rate" />
        <HeaderStat label="Latency p50" value={plainMs(latency.p50)} unit="ms" testId="latency-p50" />
        <HeaderStat
          label="Latency p99"
          value={plainMs(p99)}
          unit="ms"
          testId="latency-p99"
          tone={tone}
          hint={`target < ${LATENCY_TARGET_MS} ms`}
        />
        <HeaderStat label="Events this session" value={plainCount(total)} testId="events-total" />
      </div>
      <ThemeToggle theme={theme} onToggle={onToggleTheme} />
    </header>
  );
}
