import { io } from 'socket.io-client';
import { getToken, requireSignIn } from './auth.js';

// Reconnection is done here rather than by socket.io-client so the dashboard can show an
// honest countdown to the next attempt (the library keeps its backoff delay private).
export const BACKOFF = { baseMs: 250, factor: 2, maxMs: 10000, jitter: 0.2, offlineAfter: 6 };

export function retryDelay(attempt, random = Math.random, cfg = BACKOFF) {
  const raw = Math.min(cfg.maxMs, cfg.baseMs * cfg.factor ** attempt);
  return Math.round(raw * (1 - cfg.jitter + 2 * cfg.jitter * random()));
}

const SOCKET_URL = import.meta.env?.VITE_SOCKET_URL || undefined;

/**
 * Opens the Socket.IO stream (websocket only) and keeps it open.
 * Every packet carries its position in the server's durable log; a reconnect resumes from the
 * last one, so the server sends exactly what this tab missed (in order, once) before going live.
 * Sends the viewer token (api/auth.js) as auth.token; refused as unauthorized, it stops and asks for a sign-in.
 * Calls onStatus({status, retryAt, attempt, connectedOnce}) with status connected | reconnecting | offline | unauthorized,
 * onEvents(batch, receivedAt, {replay}) for each `metrics` batch (replay: sent by a resume, not live),
 * onGap({dropped, reason}) for each `gap`, onConnect({first, resumed}) after each (re)connect, once
 * the subscription has been sent (resumed: the server is sending what was missed, no backfill needed).
 */
export function connectMetricSocket({
  subscription = { sources: [], metrics: [] },
  onEvents,
  onGap,
  onStatus,
  onConnect,
  onSubscribeError,
  ioFactory = io,
  backoff = BACKOFF,
  url = SOCKET_URL,
}) {
  let sub = subscription;
  let position = null; // the log position of the last batch received
  let resuming = false; // whether the connect under way asked to resume
  const socket = ioFactory(url, {
    path: '/socket.io',
    transports: ['websocket'],
    reconnection: false,
    autoConnect: false,
    timeout: 5000,
    // Read at every (re)connect: positions on, the filter (so a resume sends only what this tab
    // shows), and where to resume from once there is a position.
    auth: (cb) => {
      resuming = position !== null;
      const token = getToken();
      cb({ ...(resuming ? { resume: position } : { positions: true }), ...sub, ...(token ? { token } : {}) });
    },
  });
  let attempt = 0;
  let timer = null;
  let closed = false;
  let everConnected = false;

  const report = (status, retryAt = null) => onStatus?.({ status, retryAt, attempt, connectedOnce: everConnected });
  const isOffline = () => typeof navigator !== 'undefined' && navigator.onLine === false;

  function open() {
    timer = null;
    if (!closed && !socket.connected) socket.connect();
  }

  function scheduleRetry() {
    if (closed || timer !== null) return;
    const delay = retryDelay(attempt, Math.random, backoff);
    attempt += 1;
    const status = attempt > backoff.offlineAfter || isOffline() ? 'offline' : 'reconnecting';
    report(status, Date.now() + delay);
    timer = setTimeout(open, delay);
  }

  function sendSubscribe() {
    socket.emit('subscribe', sub, (ack) => {
      if (ack && ack.ok === false) onSubscribeError?.(ack.error ?? { message: 'subscribe refused' });
    });
  }

  socket.on('connect', () => {
    const first = !everConnected;
    everConnected = true;
    attempt = 0;
    report('connected');
    sendSubscribe();
    onConnect?.({ first, resumed: resuming });
  });
  socket.on('disconnect', (reason) => {
    if (!closed && reason !== 'io client disconnect') scheduleRetry();
  });
  socket.on('connect_error', (err) => {
    // Refused for its token: retrying cannot help; the sign-in screen takes over.
    if (err?.data?.code === 'unauthorized') {
      closed = true;
      report('unauthorized');
      requireSignIn();
      return;
    }
    scheduleRetry();
  });
  socket.on('metrics', (batch, meta) => {
    if (typeof meta?.position === 'string') position = meta.position;
    onEvents?.(Array.isArray(batch) ? batch : [batch], Date.now(), { replay: meta?.replay === true });
  });
  socket.on('gap', (info) => onGap?.(info ?? {}));

  const retryNow = () => {
    if (timer === null) return;
    clearTimeout(timer);
    open();
  };
  if (typeof window !== 'undefined') window.addEventListener('online', retryNow);

  report('reconnecting');
  // Opened on the next tick: a component that mounts and unmounts at once (React StrictMode in
  // development) then never starts a WebSocket it would have to abort mid-handshake.
  timer = setTimeout(open, 0);

  return {
    subscribe(next) {
      sub = next;
      if (socket.connected) sendSubscribe();
    },
    retryNow,
    close() {
      closed = true;
      clearTimeout(timer);
      if (typeof window !== 'undefined') window.removeEventListener('online', retryNow);
      socket.off();
      socket.disconnect();
    },
  };
}
