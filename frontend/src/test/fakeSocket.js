// A stand-in for socket.io-client's socket in unit tests: records what the client emits and
// lets a test play the server (connect, drop, push batches). The real server runs in e2e.
class FakeSocket {
  constructor(url, opts) {
    this.url = url;
    this.opts = opts;
    this.handlers = new Map();
    this.emitted = [];
    this.connected = false;
    this.connectCalls = 0;
    this.ackWith = { ok: true, room: 'all' };
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }

  off() {
    this.handlers.clear();
    return this;
  }

  emit(event, payload, ack) {
    this.emitted.push({ event, payload });
    if (ack) ack(this.ackWith);
    return this;
  }

  connect() {
    this.connectCalls += 1;
    // Like socket.io-client: the auth callback is read at every connect attempt.
    if (typeof this.opts?.auth === 'function') this.opts.auth((data) => (this.lastAuth = data));
    return this;
  }

  disconnect() {
    this.connected = false;
    return this;
  }

  fire(event, ...args) {
    for (const fn of this.handlers.get(event) ?? []) fn(...args);
  }

  // The server's side of the conversation.
  serverAccept() {
    this.connected = true;
    this.fire('connect');
  }

  serverDrop(reason = 'transport close') {
    this.connected = false;
    this.fire('disconnect', reason);
  }

  serverRefuse() {
    this.fire('connect_error', new Error('xhr poll error'));
  }

  serverSend(events) {
    this.fire('metrics', events);
  }

  subscriptions() {
    return this.emitted.filter((e) => e.event === 'subscribe').map((e) => e.payload);
  }
}

export function fakeIo() {
  const sockets = [];
  const io = (url, opts) => {
    const s = new FakeSocket(url, opts);
    sockets.push(s);
    return s;
  };
  return { io, sockets, last: () => sockets[sockets.length - 1] };
}

let seq = 0;
/** An event as the backend sends it; `ago` is how many ms before now it was produced. */
export function makeEvent({ source = 'web', metric = 'orders', value = 10, ago = 5, tags = {}, id, now = Date.now() } = {}) {
  seq += 1;
  return { id: id ?? `${source}-test-${String(seq).padStart(9, '0')}`, ts: now - ago, source, metric, value, tags };
}
