// The dashboard against a backend that wants viewer tokens (JWT_SECRET), in Chromium: it asks
// for a token, connects with a real one minted by manage.py, and asks again when it is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launchChromium, PYTHON, REPO, startStack, waitUntil } from './stack.mjs';

const JWT_SECRET = crypto.randomBytes(32).toString('hex');
const heading = () => page.getByRole('heading', { name: 'Sign in to Pulse' });

let stack;
let browser;
let page;

function newToken(...args) {
  const out = spawnSync(PYTHON, [path.join(REPO, 'backend', 'manage.py'), 'new-token', ...args], {
    env: { ...process.env, JWT_SECRET },
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim();
}

describe('dashboard sign-in end to end', { timeout: 180_000 }, () => {
  before(async () => {
    stack = await startStack({ rate: 50, backendEnv: { JWT_SECRET } });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(stack.url);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (stack) {
      if (process.exitCode) console.log(stack.logs());
      await stack.stop();
    }
  });

  test('the backend refuses the anonymous dashboard, which asks for a token', async () => {
    await heading().waitFor({ timeout: 20000 });
    const res = await fetch(`${stack.backendUrl}/api/metrics/recent`);
    assert.equal(res.status, 401);
  });

  test('a pasted token signs in: the stream connects and events arrive', async () => {
    await page.getByLabel('Viewer token').fill(newToken('--ttl', '600'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitUntil(async () => (await page.getByTestId('connection-status').textContent()) === 'connected', {
      timeoutMs: 20000,
      what: 'connected',
    });
    await waitUntil(async () => Number.parseFloat(await page.getByTestId('events-total').textContent()) > 0, {
      timeoutMs: 20000,
      what: 'events',
    });
    assert.equal(await heading().count(), 0);
    assert.ok(await page.evaluate(() => sessionStorage.getItem('pulse.viewerToken')));
  });

  test('a token the backend refuses is cleared and the sign-in screen comes back', async () => {
    const otherKey = newToken('--ttl', '600').replace(/\.[^.]+$/, '.bad-signature');
    await page.evaluate((t) => sessionStorage.setItem('pulse.viewerToken', t), otherKey);
    await page.reload();
    await heading().waitFor({ timeout: 20000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pulse.viewerToken')), null);
  });
});
