import { describe, expect, it, vi } from 'vitest';
import { afterStartup } from './afterStartup.js';

// A window whose load event, idle callbacks and animation frames the test fires by hand.
function fakeWindow({ readyState = 'loading', idle = true } = {}) {
  const listeners = new Map();
  const idles = new Map();
  const frames = new Map();
  let next = 1;
  const win = {
    document: { readyState },
    addEventListener: (type, fn) => listeners.set(type, fn),
    removeEventListener: (type, fn) => listeners.get(type) === fn && listeners.delete(type),
    requestAnimationFrame: (fn) => (frames.set(next, fn), next++),
    cancelAnimationFrame: (id) => frames.delete(id),
    setTimeout: (fn) => (frames.set(next, fn), next++),
    clearTimeout: (id) => frames.delete(id),
  };
  if (idle) {
    win.requestIdleCallback = vi.fn((fn) => (idles.set(next, fn), next++));
    win.cancelIdleCallback = (id) => idles.delete(id);
  }
  const fireAll = (queue) => {
    const due = [...queue.values()];
    queue.clear();
    for (const fn of due) fn();
  };
  return {
    win,
    load: () => {
      win.document.readyState = 'complete';
      listeners.get('load')?.();
    },
    idle: () => fireAll(idles),
    frame: () => fireAll(frames),
    pending: () => listeners.size + idles.size + frames.size,
  };
}

describe('afterStartup', () => {
  it('runs after the load event, at the first idle moment after it, once', () => {
    const page = fakeWindow();
    const run = vi.fn();
    afterStartup(run, { win: page.win, timeoutMs: 750 });
    page.idle();
    expect(run).not.toHaveBeenCalled(); // idle before load does not count: nothing was asked yet
    page.load();
    expect(run).not.toHaveBeenCalled();
    expect(page.win.requestIdleCallback).toHaveBeenCalledWith(expect.any(Function), { timeout: 750 });
    page.idle();
    expect(run).toHaveBeenCalledTimes(1);
    page.idle();
    page.load();
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('waits only for idle when the page has loaded already', () => {
    const page = fakeWindow({ readyState: 'complete' });
    const run = vi.fn();
    afterStartup(run, { win: page.win });
    expect(run).not.toHaveBeenCalled();
    page.idle();
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('without requestIdleCallback, runs at the second animation frame after load', () => {
    const page = fakeWindow({ idle: false });
    const run = vi.fn();
    afterStartup(run, { win: page.win });
    page.load();
    page.frame();
    expect(run).not.toHaveBeenCalled();
    page.frame();
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('never runs once cancelled, before or after load', () => {
    const early = fakeWindow();
    const late = fakeWindow();
    const run = vi.fn();
    afterStartup(run, { win: early.win })();
    const cancelLate = afterStartup(run, { win: late.win });
    late.load();
    cancelLate();
    for (const page of [early, late]) {
      page.load();
      page.idle();
      expect(page.pending()).toBe(0);
    }
    expect(run).not.toHaveBeenCalled();
  });
});
