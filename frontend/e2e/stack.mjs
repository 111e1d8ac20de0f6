// Starts the real stack for the end-to-end suite and the perf check: a private redis-server,
// the backend, the generator and `vite preview` of a fresh build, each on a free port and in
// its own process group, and stops all of them however the run ends.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(FRONTEND, '..');
export const PYTHON = process.env.E2E_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const VITE = path.join(FRONTEND, 'node_modules', 'vite', 'bin', 'vite.js');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitUntil(check, { timeoutMs = 30000, everyMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

async function httpOk(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.ok;
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function missing() {
  const out = [];
  if (!fs.existsSync(PYTHON)) out.push(`${PYTHON} (run: make install)`);
  if (!fs.existsSync(path.join(REPO, 'backend', 'app.py'))) out.push('backend/app.py');
  if (spawnSync('redis-server', ['--version']).status !== 0) out.push('redis-server (apt-get install -y redis-server)');
  return out;
}

class Proc {
  constructor(name, cmd, args, { env, cwd, logDir }) {
    this.name = name;
    this.logFile = path.join(logDir, `${name}.log`);
    const log = fs.openSync(this.logFile, 'a');
    // detached: its own process group, so stop() reaches the children too (npm, shells).
    this.child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.alive = true;
    this.exited.then(() => {
      this.alive = false;
    });
  }

  signal(sig) {
    if (!this.alive) return;
    try {
      process.kill(-this.child.pid, sig);
    } catch {
      /* already gone */
    }
  }

  async stop(graceMs = 3000) {
    if (!this.alive) return;
    this.signal('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      this.signal('SIGKILL');
      await this.exited;
    }
  }

  tail(lines = 30) {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

const live = new Set();
function killAllSync() {
  for (const p of live) p.signal('SIGKILL');
}
process.once('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

/**
 * Starts redis, backend, generator and the dashboard (`backendEnv`: more backend settings). Returns { url, backendUrl, restartBackend,
 * killBackend, startBackend, stop, logs }.
 */
export async function startStack({ rate = 200, batch = 0, build = true, batchMs = 20, backendEnv = {} } = {}) {
  const absent = missing();
  if (absent.length) throw new Error(`the e2e stack needs: ${absent.join(', ')}`);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-e2e-'));
  const procs = {};
  const start = (name, cmd, args, opts = {}) => {
    const p = new Proc(name, cmd, args, { cwd: REPO, logDir, ...opts });
    live.add(p);
    p.exited.then(() => live.delete(p));
    procs[name] = p;
    return p;
  };
  const [redisPort, backendPort, frontendPort] = [await freePort(), await freePort(), await freePort()];
  const url = `http://127.0.0.1:${frontendPort}`;
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;

  const stop = async () => {
    await Promise.all(Object.values(procs).map((p) => p.stop()));
    if (!process.env.E2E_KEEP_LOGS) fs.rmSync(logDir, { recursive: true, force: true });
  };

  const startBackend = async () => {
    const p = start('backend', PYTHON, [path.join(REPO, 'backend', 'app.py')], {
      env: {
        REDIS_URL: redisUrl,
        PORT: String(backendPort),
        HOST: '127.0.0.1',
        BATCH_MS: String(batchMs),
        LOG_LEVEL: 'WARNING',
        CORS_ORIGINS: url,
        ...backendEnv,
      },
    });
    await waitUntil(async () => {
      if (!p.alive) throw new Error(`backend exited:\n${p.tail()}`);
      return httpOk(`${backendUrl}/api/health`);
    }, { timeoutMs: 30000, what: `${backendUrl}/api/health` });
  };

  try {
    const redisDir = path.join(logDir, 'redis');
    fs.mkdirSync(redisDir);
    start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir]);
    await waitUntil(() => tcpOpen(redisPort), { timeoutMs: 10000, what: `redis-server on ${redisPort}` });

    if (build) {
      const b = spawnSync(process.execPath, [VITE, 'build', '--logLevel', 'warn'], { cwd: FRONTEND, encoding: 'utf8' });
      if (b.status !== 0) throw new Error(`vite build failed:\n${b.stdout}\n${b.stderr}`);
    }
    await startBackend();
    const genArgs = [path.join(REPO, 'backend', 'generator.py'), '--rate', String(rate)];
    if (batch) genArgs.push('--batch', String(batch));
    start('generator', PYTHON, genArgs, { env: { REDIS_URL: redisUrl, LOG_LEVEL: 'WARNING' } });
    start('frontend', process.execPath, [VITE, 'preview', '--logLevel', 'warn'], {
      cwd: FRONTEND,
      env: { PORT: String(frontendPort), HOST: '127.0.0.1', BACKEND_URL: backendUrl },
    });
    await waitUntil(() => httpOk(`${url}/api/health`), { timeoutMs: 30000, what: `${url} (vite preview)` });
  } catch (err) {
    const logs = Object.values(procs).map((p) => `--- ${p.name} ---\n${p.tail()}`).join('\n');
    await stop();
    throw new Error(`${err.message}\n${logs}`);
  }

  return {
    url,
    backendUrl,
    redisUrl,
    procs,
    stop,
    startBackend,
    /** Runs the real generator to its end (`--duration`); resolves with the events it logged. */
    generate: (args) =>
      new Promise((resolve, reject) => {
        const child = spawn(PYTHON, [path.join(REPO, 'backend', 'generator.py'), ...args], {
          cwd: REPO,
          env: { ...process.env, REDIS_URL: redisUrl, LOG_LEVEL: 'WARNING' },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.once('exit', (code) => {
          const m = /generator: published (\d+) events/.exec(out);
          if (code === 0 && m) resolve(Number(m[1]));
          else reject(new Error(`generator exited ${code}: ${out}`));
        });
      }),
    /** Kills the backend outright (SIGKILL), as a crash would. */
    killBackend: async () => {
      procs.backend.signal('SIGKILL');
      await procs.backend.exited;
    },
    logs: () => Object.values(procs).map((p) => `--- ${p.name} ---\n${p.tail()}`).join('\n'),
  };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launchChromium(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new Error(`${executablePath} is missing (apt-get install -y chromium)`);
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}
