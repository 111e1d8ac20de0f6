import { useEffect, useState } from 'react';

/** The wall clock, re-read every `everyMs` while `active` (for countdowns). */
export function useNow(active, everyMs = 250) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const tick = () => setNow(Date.now());
    // The clock may have stood still while inactive: read it at once, not a period later.
    const first = setTimeout(tick, 0);
    const t = setInterval(tick, everyMs);
    return () => {
      clearTimeout(first);
      clearInterval(t);
    };
  }, [active, everyMs]);
  return now;
}
