import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cancelRedraw, redrawSoon } from './redrawQueue.js';

describe('redrawQueue', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs each chart in a task of its own, the newest redraw per chart only', () => {
    const ran = [];
    redrawSoon('a', () => ran.push('a1'));
    redrawSoon('b', () => ran.push('b'));
    redrawSoon('a', () => ran.push('a2'));
    expect(ran).toEqual([]); // nothing in the caller's task
    vi.advanceTimersToNextTimer();
    expect(ran).toEqual(['a2']);
    vi.advanceTimersToNextTimer();
    expect(ran).toEqual(['a2', 'b']);
    vi.runAllTimers();
    expect(ran).toEqual(['a2', 'b']);
  });

  it('drops a cancelled redraw and keeps going after one that throws', () => {
    const ran = [];
    redrawSoon('gone', () => ran.push('gone'));
    redrawSoon('bad', () => {
      throw new Error('boom');
    });
    redrawSoon('ok', () => ran.push('ok'));
    cancelRedraw('gone');
    expect(() => vi.advanceTimersToNextTimer()).toThrow('boom');
    vi.runAllTimers();
    expect(ran).toEqual(['ok']);
    redrawSoon('later', () => ran.push('later')); // the queue is idle again, and restarts
    vi.runAllTimers();
    expect(ran).toEqual(['ok', 'later']);
  });
});
