/** A message in place of content that is not there yet: what is going on, what to do. */
export default function Notice({ title, children, tone = 'info', testId, action }) {
  return (
    <div className={`notice notice--${tone}`} data-testid={testId} role={tone === 'error' ? 'alert' : 'status'}>
      <div className="notice__body">
        <p className="notice__title">{title}</p>
        {children && <div className="notice__text">{children}</div>}
      </div>
      {action}
    </div>
  );
}

export function StartHint() {
  return (
    <>
      Start the generator: <code>make run</code>, or <code>python backend/generator.py</code>
    </>
  );
}
