import { sourceColor } from '../lib/colors.js';
import { human, perSecond } from '../lib/format.js';

/** How the window's events split between sources: a stacked bar and a legend with rates. */
export default function SourceShare({ sources }) {
  const total = sources.reduce((n, s) => n + s.count, 0);
  if (total === 0) return null;
  return (
    <div className="share-block" aria-label="Events per source">
      <div className="share" aria-hidden="true">
        {sources.map((s) => (
          <span key={s.name} style={{ flexGrow: s.count, background: sourceColor(s.name) }} />
        ))}
      </div>
      <ul className="share__legend">
        {sources.map((s) => (
          <li key={s.name}>
            <span className="swatch" style={{ background: sourceColor(s.name) }} aria-hidden="true" />
            {s.name}{' '}
            <span className="num muted">
              {human(s.count)} · {Math.round((s.count / total) * 100)}% · {perSecond(s.rate)}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}
