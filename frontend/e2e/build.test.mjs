// The production build keeps what keeps the page's start-up free of long tasks (frontend/README.md,
// "First look"). Each of these is a build setting that an upgrade of Vite or of a package can drop
// without any test noticing, and the cost only shows as long tasks in `npm run e2e:perf`; so they
// are checked here, in the build's output, with no timing involved.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FRONTEND } from './stack.mjs';

const VITE = path.join(FRONTEND, 'node_modules', 'vite', 'bin', 'vite.js');
let out;
const read = (file) => fs.readFileSync(path.join(out, file), 'utf8');
const assets = (ext) => fs.readdirSync(path.join(out, 'assets')).filter((f) => f.endsWith(ext));

describe('the production build', { timeout: 120_000 }, () => {
  before(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-build-'));
    const b = spawnSync(process.execPath, [VITE, 'build', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], {
      cwd: FRONTEND,
      encoding: 'utf8',
    });
    assert.equal(b.status, 0, `vite build failed:\n${b.stdout}\n${b.stderr}`);
  });

  after(() => fs.rmSync(out, { recursive: true, force: true }));

  test('Chart.js is a file of its own, marked for eager compilation on its first line', () => {
    const charts = assets('.js').filter((f) => f.startsWith('charts-'));
    assert.equal(charts.length, 1, `one charts-*.js among ${assets('.js')}`);
    const code = read(`assets/${charts[0]}`);
    assert.ok(code.startsWith('//# allFunctionsCalledOnLoad\n'), 'the compile hint is the first line');
    assert.match(code, /borderWidth/, 'it holds Chart.js');
    const app = assets('.js').filter((f) => f.startsWith('index-'));
    assert.equal(app.length, 1);
    assert.ok(!read(`assets/${app[0]}`).includes('allFunctionsCalledOnLoad'), 'the rest is compiled lazily');
    assert.match(read('index.html'), new RegExp(`<link rel="modulepreload"[^>]*href="/assets/${charts[0]}"`));
  });

  test('the page declares one web font face, and index.html preloads its file', () => {
    const css = assets('.css').map((f) => read(`assets/${f}`)).join('\n');
    const faces = css.match(/@font-face\s*{[^}]*}/g) ?? [];
    assert.equal(faces.length, 1, `one @font-face (each unloaded subset costs system-font lookups), found:\n${faces.join('\n')}`);
    const file = /url\(["']?(\/assets\/[^"')]+\.woff2)/.exec(faces[0])?.[1];
    assert.ok(file, faces[0]);
    const preload = /<link rel="preload"[^>]*>/.exec(read('index.html'))?.[0] ?? '';
    assert.ok(preload.includes(`href="${file}"`), `index.html preloads ${file}: ${preload || 'no preload'}`);
    assert.match(preload, /as="font"/);
    assert.match(preload, /crossorigin/, 'a font preload without crossorigin is fetched twice');
  });
});
