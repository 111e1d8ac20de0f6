const LABELS = {
  connected: 'Live stream connected',
  reconnecting: 'Connection lost, reconnecting',
  offline: 'Backend unreachable',
};

/** The stream's state as a pill: connected / reconnecting / offline, with the retry countdown. */
export default function ConnectionStatus({ status, retryAt, now, onRetryNow }) {
  const retryIn = status !== 'connected' && retryAt ? Math.max(0, Math.ceil((retryAt - now) / 1000)) : null;
  return (
    <div className={`status status--${status}`} title={LABELS[status]}>
      <span className="status__dot" aria-hidden="true" />
      <span className="sr-only">Live stream:</span>
      {/* Only the state word is announced; the countdown would be read out every second. */}
      <span className="status__word" data-testid="connection-status" role="status">
        {status}
      </span>
      {retryIn !== null && (
        <span className="status__retry num" data-testid="retry-countdown">
          retry in {retryIn} s
        </span>
      )}
      {status !== 'connected' && onRetryNow && (
        <button type="button" className="link-button" onClick={onRetryNow}>
          Retry now
        </button>
      )}
    </div>
  );
}
