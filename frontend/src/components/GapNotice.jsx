/** Shown after the server dropped events for this tab (a `gap` event) and we backfilled. */
export default function GapNotice({ gap, backfill, onDismiss }) {
  const status = backfill.running
    ? 'Backfilling from /api/metrics/recent…'
    : backfill.error
      ? `Backfill failed: ${backfill.error}`
      : `Backfilled ${backfill.added} events from /api/metrics/recent.`;
  return (
    <div className="banner banner--warn" data-testid="gap-notice" role="status">
      <p>
        {gap.dropped == null ? (
          <>
            <strong>Some events could not be replayed</strong>: this tab was away longer than the server keeps them.
          </>
        ) : (
          <>
            <strong>The stream skipped {gap.dropped} events</strong> because this tab fell behind.
          </>
        )}{' '}
        {status}
      </p>
      <button type="button" className="link-button" onClick={onDismiss} aria-label="Dismiss gap notice">
        Dismiss
      </button>
    </div>
  );
}
