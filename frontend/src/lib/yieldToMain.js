/**
 * Resolves in a later task, so the browser can paint and handle input in between: work split
 * with it never makes one long task. scheduler.yield() (Chromium) resumes ahead of other queued
 * tasks; elsewhere a zero timeout.
 */
export function yieldToMain() {
  const scheduler = globalThis.scheduler;
  if (typeof scheduler?.yield === 'function') return scheduler.yield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}
