import { useCallback, useEffect, useState } from 'react';
import { WINDOWS } from '../lib/format.js';

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const DEFAULT_WINDOW = 60;

function read() {
  const q = new URLSearchParams(window.location.search);
  const win = Number(q.get('window'));
  const pick = (v) => (v && NAME.test(v) ? v : '');
  return {
    filter: { source: pick(q.get('source')), metric: pick(q.get('metric')) },
    windowSec: WINDOWS.some((w) => w.value === win) ? win : DEFAULT_WINDOW,
  };
}

/** Filter and window live in the URL (?source=web&metric=orders&window=300): shareable views. */
export function useUrlState() {
  const [state, setState] = useState(read);

  useEffect(() => {
    const q = new URLSearchParams();
    if (state.filter.source) q.set('source', state.filter.source);
    if (state.filter.metric) q.set('metric', state.filter.metric);
    if (state.windowSec !== DEFAULT_WINDOW) q.set('window', String(state.windowSec));
    const qs = q.toString();
    window.history.replaceState(null, '', `${window.location.pathname}${qs ? `?${qs}` : ''}`);
  }, [state]);

  const setFilter = useCallback((filter) => setState((s) => ({ ...s, filter })), []);
  const setWindowSec = useCallback((windowSec) => setState((s) => ({ ...s, windowSec })), []);
  return { ...state, setFilter, setWindowSec };
}
