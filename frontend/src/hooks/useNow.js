import { useEffect, useState } from 'react';

/** The wall clock, re-read every `everyMs` while `active` (for countdowns). */
export function useNow(active, everyMs = 250) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [active, everyMs]);
  return now;
}
