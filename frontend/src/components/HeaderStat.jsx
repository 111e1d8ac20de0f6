/** One number in the header: label, value (the element tests read), unit, optional hint. */
export default function HeaderStat({ label, value, unit, testId, tone = 'neutral', hint }) {
  return (
    <div className={`hstat hstat--${tone}`}>
      <span className="hstat__label">{label}</span>
      <span className="hstat__value">
        <span className="num" data-testid={testId}>
          {value}
        </span>
        {unit && <span className="hstat__unit">{unit}</span>}
      </span>
      {hint && <span className="hstat__hint">{hint}</span>}
    </div>
  );
}
