'use strict';
/**
 * The load generator, run as a child of bench/run.js. It holds one load per server under test
 * (named by `key`), so that the sessions of every server stay open while the rounds alternate
 * between them, and drives them as the parent commands over IPC:
 *
 *   setup     open the sessions of the load (resolves once every session is open)
 *   start     start sending; counters and latency samples start afresh (a flooder opens its
 *             session first)
 *   collect   operations done and latency percentiles within a window [from, to]
 *   pause     stop sending and let what is in flight land (bounded); sessions stay open
 *   teardown  pause, then close every socket
 *
 * Every loop stops on its own after `maxMs` or `maxOps`, whatever the parent does. Latency is
 * taken from send to echo with process.hrtime.bigint().
 *
 * The window is given in microseconds of the monotonic clock, as the server read it when it
 * sampled its CPU time: the server answers late when it is busy, so the generator counts the
 * operations of exactly the span the server's CPU time covers, not the span between two messages.
 */
const http = require('http');
const { monitorEventLoopDelay } = require('perf_hooks');
const { WebSocket } = require('ws');

const BASE = process.hrtime.bigint();
/** Nanoseconds since this process started, as a Number (exact to well below a microsecond). */
const now = () => Number(process.hrtime.bigint() - BASE);

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `done()` is true, checking every 10 ms; rejects after `ms`. */
async function until(done, ms, what) {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Runs `count` tasks, at most `concurrency` at a time. */
async function pool(count, concurrency, task) {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, worker));
}

let sessionCounter = 0;
function sessionId() {
  sessionCounter++;
  return `b${process.pid.toString(36)}x${sessionCounter.toString(36)}`;
}

/** The generator's clock in nanoseconds, for a time in microseconds of process.hrtime (any process). */
const fromMicros = (us) => Number(BigInt(Math.round(us)) * 1000n - BASE);

const SLOT_NS = 100000;

/**
 * Counts operations in 100 µs slots and keeps latency samples (nanoseconds) with the slot they
 * completed in, so that any window can be taken afterwards.
 */
class Meter {
  constructor(maxMs, capacity = 1 << 21) {
    this.slots = new Uint32Array(Math.ceil((maxMs * 1e6) / SLOT_NS) + 100);
    this.samples = new Float64Array(capacity);
    this.sampleSlots = new Uint32Array(capacity);
    this.reset();
  }
  reset() {
    this.slots.fill(0);
    this.n = 0;
    this.errors = 0;
    this.t0 = now();
  }
  slot(t) {
    const i = Math.floor((t - this.t0) / SLOT_NS);
    return i < 0 ? 0 : i >= this.slots.length ? this.slots.length - 1 : i;
  }
  /** `k` operations completed now, the first `latencies` of them with these latencies. */
  op(k = 1) {
    this.slots[this.slot(now())] += k;
  }
  latency(ns) {
    if (this.n < this.samples.length) {
      this.samples[this.n] = ns;
      this.sampleSlots[this.n] = this.slot(now());
      this.n++;
    }
  }
  /** @param {{ from: number, to: number }} window µs on the monotonic clock */
  collect({ from, to }) {
    const a = this.slot(fromMicros(from));
    const b = this.slot(fromMicros(to));
    let ops = 0;
    for (let i = a; i < b; i++) ops += this.slots[i];
    const inWindow = [];
    for (let i = 0; i < this.n; i++) if (this.sampleSlots[i] >= a && this.sampleSlots[i] < b) inWindow.push(this.samples[i]);
    const sorted = Float64Array.from(inWindow).sort();
    const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1e6 : null);
    return { ops, errors: this.errors, seconds: ((b - a) * SLOT_NS) / 1e9, p50: at(0.5), p99: at(0.99), samples: sorted.length };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/**
 * Where a load opens its sessions: `target` itself, or with a relay the process that owns them
 * (`openPort`), so that every later request of the session goes through another process.
 */
function opener(target) {
  return target.openPort ? { ...target, port: target.openPort } : target;
}

function agent(maxSockets = Infinity) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: 2048 });
}

/** A POST whose whole response body is returned as a latin1 string (the frames are ASCII). */
function post(target, path, body, onDone) {
  const req = http.request(
    {
      host: '127.0.0.1',
      port: target.port,
      method: 'POST',
      path,
      agent: target.agent,
      headers: { 'content-type': 'text/plain;charset=UTF-8', 'content-length': body ? Buffer.byteLength(body) : 0 },
    },
    (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => onDone(null, res.statusCode, text));
      res.on('error', (err) => onDone(err));
    },
  );
  req.on('error', (err) => onDone(err));
  req.end(body || undefined);
  return req;
}

function postAsync(target, path, body) {
  return new Promise((resolve, reject) => {
    post(target, path, body, (err, status, text) => (err ? reject(err) : resolve({ status, text })));
  });
}

/**
 * A streaming receiver (xhr_streaming) of one session: calls `onFrame(line)` per frame and opens a
 * new response whenever one ends (response_limit), as sockjs-client does.
 */
class Stream {
  constructor(target, sid, onFrame, onError) {
    this.target = target;
    this.sid = sid;
    this.onFrame = onFrame;
    this.onError = onError;
    this.open = true;
    this.req = null;
    this.connect();
  }
  connect() {
    if (!this.open) return;
    let rest = '';
    this.req = http.request(
      { host: '127.0.0.1', port: this.target.port, method: 'POST', path: `/echo/000/${this.sid}/xhr_streaming`, agent: this.target.agent, headers: { 'content-length': 0 } },
      (res) => {
        res.setEncoding('latin1');
        res.on('data', (chunk) => {
          rest += chunk;
          let nl;
          while ((nl = rest.indexOf('\n')) !== -1) {
            const line = rest.slice(0, nl);
            rest = rest.slice(nl + 1);
            this.onFrame(line);
          }
        });
        res.on('end', () => this.connect());
        res.on('error', () => {});
      },
    );
    this.req.on('error', (err) => {
      if (this.open) this.onError(err);
    });
    this.req.end();
  }
  close() {
    this.open = false;
    if (this.req) this.req.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// WebSocket

const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true };

function wsUrl(target, framed) {
  return framed ? `ws://127.0.0.1:${target.port}/echo/000/${sessionId()}/websocket` : `ws://127.0.0.1:${target.port}/echo/websocket`;
}

/**
 * `size` ASCII bytes, one of 16 texts by `i`: messages that follow each other differ, as real
 * ones do, so that no server gains from sending the same text twice in a row.
 */
function varied(size, i) {
  return String.fromCharCode(97 + (i % 16)) + 'x'.repeat(Math.max(0, size - 1));
}

/** Messages in an `a[...]` frame of equal messages of `size` ASCII bytes: `a[` + k × `"…"` + commas + `]`. */
function countFrame(data, size) {
  const k = (data.length - 2) / (size + 3);
  if (Number.isInteger(k) && k > 0) return k;
  return JSON.parse(data.toString('utf8').slice(1)).length;
}

/** Opens a websocket; resolves once it is open and, with SockJS framing, once `o` has arrived. */
function openWebsocket(target, framed, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(target, framed), WS_OPTIONS);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('websocket open timed out'));
    }, timeoutMs);
    const done = (err) => {
      clearTimeout(timer);
      ws.removeAllListeners('message');
      ws.removeAllListeners('open');
      if (err) reject(err);
      else resolve(ws);
    };
    ws.on('error', (err) => done(err));
    if (framed) {
      ws.on('message', (data) => {
        if (data[0] === 0x6f /* o */) done();
        else done(new Error(`expected o, got ${String(data).slice(0, 40)}`));
      });
    } else {
      ws.on('open', () => done());
    }
  });
}

async function closeWebsockets(sockets, ms = 3000) {
  let open = 0;
  for (const ws of sockets) {
    if (ws.readyState === WebSocket.CLOSED) continue;
    open++;
    ws.once('close', () => open--);
    ws.close();
  }
  try {
    await until(() => open === 0, ms, 'websockets to close');
  } catch {
    // A peer that does not answer the close handshake in time is cut off.
    for (const ws of sockets) ws.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// Loads. Each returns { setup(), start(), collect(window), pause(), teardown() }.

/**
 * Echo over websockets: `sessions` sockets, `inflight` messages of `size` bytes outstanding on
 * each. With `interval` (ms), a session sends its next message once the echo has come and no
 * sooner than `interval` after its last send (at most 1000 / interval messages per second each);
 * the sessions start spread over one interval, so that they do not send in step. A paced load
 * also records the generator's event-loop delay (`loopDelayP99`, ms), which shows whether
 * anything else on its core held it up.
 */
function wsEcho(target, p) {
  const meter = new Meter(p.maxMs);
  const outs = Array.from({ length: 16 }, (_, i) => Buffer.from(p.framed ? JSON.stringify([varied(p.size, i)]) : varied(p.size, i)));
  const sessions = [];
  const intervalNs = (p.interval ?? 0) * 1e6;
  const loopDelay = intervalNs > 0 ? monitorEventLoopDelay({ resolution: 1 }) : null;
  let running = false;
  let sent = 0;
  let stopTimer = null;

  function send(s) {
    if (!running || sent >= p.maxOps) return;
    if (intervalNs > 0) {
      const wait = s.last + intervalNs - now();
      if (wait > 0) {
        if (s.timer === null) s.timer = setTimeout(paced, wait / 1e6, s);
        return;
      }
      s.last = now();
    }
    sent++;
    s.times.push(now());
    s.ws.send(outs[sent % 16], { binary: false });
  }
  function paced(s) {
    s.timer = null;
    send(s);
  }
  function received(s, k) {
    const t = now();
    meter.op(k);
    for (let i = 0; i < k; i++) {
      const t0 = s.times.shift();
      if (t0 !== undefined) meter.latency(t - t0);
      send(s);
    }
  }

  return {
    async setup() {
      await pool(p.sessions, 100, async () => {
        const ws = await openWebsocket(target, p.framed);
        const s = { ws, times: [], last: 0, timer: null };
        ws.on('message', (data) => {
          if (!p.framed) return received(s, 1);
          const type = data[0];
          if (type === 0x61 /* a */) received(s, countFrame(data, p.size));
          else if (type === 0x63 /* c */) meter.errors++;
        });
        ws.on('error', () => meter.errors++);
        sessions.push(s);
      });
    },
    start() {
      meter.reset();
      // Budgets are per round: the sessions stay, the counts start again.
      sent = 0;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      if (loopDelay) {
        loopDelay.reset();
        loopDelay.enable();
      }
      if (intervalNs > 0) {
        // The first sends spread over one interval.
        const t = now();
        sessions.forEach((s, i) => (s.last = t - intervalNs + (intervalNs * i) / sessions.length));
      }
      for (let i = 0; i < p.inflight; i++) for (const s of sessions) send(s);
    },
    collect(window) {
      const result = meter.collect(window);
      if (loopDelay) result.loopDelayP99 = loopDelay.percentile(99) / 1e6;
      return result;
    },
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      loopDelay?.disable();
      for (const s of sessions) {
        clearTimeout(s.timer);
        s.timer = null;
      }
      await until(() => sessions.every((s) => s.times.length === 0), 3000, 'echoes in flight').catch(() => {});
      for (const s of sessions) s.times.length = 0;
    },
    async teardown() {
      await this.pause();
      await closeWebsockets(sessions.map((s) => s.ws));
    },
  };
}

/**
 * A flooder: one SockJS websocket session sending messages (`["!flood…"]`, `size` bytes of text)
 * as fast as its socket takes them: `batch` frames in one corked write, the next batch once the
 * last frame of this one has been written out (so at most one batch waits in this process), on
 * the next turn of the event loop. The echo service counts and drops them. A new session each
 * round (opened in `start`), cut off with a TCP reset in `pause`, so that nothing it left in its
 * socket reaches the server after the round. One operation is one message handed to the socket.
 */
function flood(target, p) {
  const meter = new Meter(p.maxMs);
  const frames = Array.from({ length: 16 }, (_, i) => Buffer.from(JSON.stringify([`!flood${varied(Math.max(1, p.size - 6), i)}`])));
  const TEXT = { binary: false };
  let ws = null;
  let running = false;
  let sent = 0;
  let stopTimer = null;

  function pump() {
    if (!running || ws === null || ws.readyState !== WebSocket.OPEN) return;
    const n = Math.min(p.batch, p.maxOps - sent);
    if (n <= 0) return;
    const socket = ws._socket;
    socket.cork();
    for (let i = 0; i < n - 1; i++) ws.send(frames[(sent + i) & 15], TEXT);
    ws.send(frames[(sent + n - 1) & 15], TEXT, written);
    socket.uncork();
    sent += n;
    meter.op(n);
  }
  function written(err) {
    if (err) meter.errors++;
    else setImmediate(pump);
  }

  return {
    async setup() {},
    async start() {
      meter.reset();
      sent = 0;
      const socket = await openWebsocket(target, true);
      socket.on('error', () => meter.errors++);
      // The server closing the flooder (policy `close`) is counted; nothing else is expected.
      socket.on('close', () => running && meter.errors++);
      ws = socket;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      pump();
    },
    collect: (window) => ({ ...meter.collect(window), open: ws !== null && ws.readyState === WebSocket.OPEN }),
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      if (ws === null) return;
      const socket = ws._socket;
      if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      else ws.terminate();
      ws = null;
    },
    async teardown() {
      await this.pause();
    },
  };
}

/** Server push over xhr_streaming: each session asks for batches of `batch` messages, `inflight` batches ahead. */
function xhrStreamingPush(target, p) {
  const meter = new Meter(p.maxMs);
  const sessions = [];
  const command = JSON.stringify([`!push ${p.batch} ${p.size}`]);
  let running = false;
  let requested = 0;
  let stopTimer = null;

  function ask(s) {
    if (!running || requested >= p.maxOps) return;
    requested += p.batch;
    s.times.push(now());
    s.asked++;
    post(target, `/echo/000/${s.sid}/xhr_send`, command, (err, status) => {
      if (err || status !== 204) meter.errors++;
    });
  }
  function onFrame(s, line) {
    const type = line.charCodeAt(0);
    if (type === 0x6f /* o */) s.opened = true;
    else if (type === 0x61 /* a */) {
      const k = countFrame(line, p.size);
      meter.op(k);
      s.got += k;
      while (s.got >= p.batch) {
        s.got -= p.batch;
        s.asked--;
        const t0 = s.times.shift();
        if (t0 !== undefined) meter.latency(now() - t0);
        ask(s);
      }
    } else if (type === 0x63 /* c */) meter.errors++;
  }

  return {
    async setup() {
      for (let i = 0; i < p.sessions; i++) {
        const s = { sid: sessionId(), times: [], got: 0, asked: 0, opened: false, stream: null };
        s.stream = new Stream(target, s.sid, (line) => onFrame(s, line), () => meter.errors++);
        sessions.push(s);
      }
      await until(() => sessions.every((s) => s.opened), 10000, 'xhr_streaming sessions to open');
    },
    start() {
      meter.reset();
      // Budgets are per round: the sessions stay, the counts start again.
      requested = 0;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      for (let i = 0; i < p.inflight; i++) for (const s of sessions) ask(s);
    },
    collect: (window) => meter.collect(window),
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      await until(() => sessions.every((s) => s.asked === 0), 3000, 'pushes in flight').catch(() => {});
      for (const s of sessions) {
        s.times.length = 0;
        s.asked = 0;
        s.got = 0;
      }
    },
    async teardown() {
      await this.pause();
      for (const s of sessions) s.stream.close();
    },
  };
}

/** xhr_send requests: `sessions` sessions held open by a stream, `inflight` sends outstanding on each. */
function xhrSend(target, p) {
  const meter = new Meter(p.maxMs);
  const sessions = [];
  // A message the echo service drops: this measures receiving alone.
  const body = JSON.stringify([`!sink${'x'.repeat(Math.max(0, p.size - 5))}`]);
  let running = false;
  let sent = 0;
  let inflight = 0;
  let stopTimer = null;

  function send(s) {
    if (!running || sent >= p.maxOps) return;
    sent++;
    inflight++;
    const t0 = now();
    post(target, `/echo/000/${s.sid}/xhr_send`, body, (err, status) => {
      inflight--;
      if (err || status !== 204) meter.errors++;
      else {
        meter.latency(now() - t0);
        meter.op();
      }
      send(s);
    });
  }

  return {
    async setup() {
      for (let i = 0; i < p.sessions; i++) {
        const s = { sid: sessionId(), opened: false, stream: null };
        // Opened where sessions open (with a relay, at their owner); the sends go to `target`.
        s.stream = new Stream(opener(target), s.sid, (line) => line[0] === 'o' && (s.opened = true), () => meter.errors++);
        sessions.push(s);
      }
      await until(() => sessions.every((s) => s.opened), 10000, 'xhr_streaming sessions to open');
    },
    start() {
      meter.reset();
      // Budgets are per round: the sessions stay, the counts start again.
      sent = 0;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      for (let i = 0; i < p.inflight; i++) for (const s of sessions) send(s);
    },
    collect: (window) => meter.collect(window),
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      await until(() => inflight === 0, 3000, 'xhr_send in flight').catch(() => {});
    },
    async teardown() {
      await this.pause();
      for (const s of sessions) s.stream.close();
    },
  };
}

/**
 * Polling round trips: per session a poll is always pending and one message is in flight. The
 * protocol's own part: `open()` a session (its id), `send(s, i, done)` message i, `poll(s, done)`
 * for what waits, and `received(s, text)`, the messages in a poll's answer (-1: the session is gone).
 */
function roundTrips(p, protocol) {
  const meter = new Meter(p.maxMs);
  const sessions = [];
  let running = false;
  let sent = 0;
  let stopTimer = null;

  function send(s) {
    if (!running || sent >= p.maxOps) return;
    sent++;
    s.times.push(now());
    protocol.send(s, sent, (err, ok) => {
      if (err || !ok) meter.errors++;
    });
  }
  function poll(s) {
    if (!s.polling) return;
    s.req = protocol.poll(s, (err, status, text) => {
      s.req = null;
      if (err || status !== 200) {
        if (s.polling) meter.errors++;
        return;
      }
      const k = protocol.received(s, text);
      if (k < 0) {
        meter.errors++;
        return;
      }
      if (k > 0) {
        const t = now();
        meter.op(k);
        for (let i = 0; i < k; i++) {
          const t0 = s.times.shift();
          if (t0 !== undefined) meter.latency(t - t0);
        }
        if (s.times.length === 0) send(s);
      }
      // The poll goes on between rounds too: a session without a pending poll would expire.
      poll(s);
    });
  }

  return {
    async setup() {
      await pool(p.sessions, 50, async () => {
        const s = { sid: await protocol.open(), times: [], polling: true, req: null };
        sessions.push(s);
        poll(s);
      });
    },
    start() {
      meter.reset();
      // Budgets are per round: the sessions stay, the counts start again.
      sent = 0;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      for (const s of sessions) send(s);
    },
    collect: (window) => meter.collect(window),
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      await until(() => sessions.every((s) => s.times.length === 0), 3000, 'polls in flight').catch(() => {});
      for (const s of sessions) s.times.length = 0;
    },
    async teardown() {
      await this.pause();
      for (const s of sessions) {
        s.polling = false;
        if (s.req) s.req.destroy();
      }
    },
  };
}

/** SockJS xhr-polling round trips: a poll to `xhr`, messages sent to `xhr_send`. */
function xhrPolling(target, p) {
  const bodies = Array.from({ length: 16 }, (_, i) => JSON.stringify([varied(p.size, i)]));
  return roundTrips(p, {
    async open() {
      const sid = sessionId();
      const { text } = await postAsync(opener(target), `/echo/000/${sid}/xhr`, '');
      if (text !== 'o\n') throw new Error(`expected o, got ${text.slice(0, 40)}`);
      return sid;
    },
    send: (s, i, done) => post(target, `/echo/000/${s.sid}/xhr_send`, bodies[i % 16], (err, status) => done(err, status === 204)),
    poll: (s, done) => post(target, `/echo/000/${s.sid}/xhr`, '', done),
    received(_s, text) {
      const type = text.charCodeAt(0);
      if (type === 0x61 /* a */) return countFrame(text.trimEnd(), p.size);
      return type === 0x63 /* c */ ? -1 : 0;
    },
  });
}

/**
 * engine.io 6 long-polling round trips, the same load as `xhrPolling`: per session a GET poll is
 * always pending and one message is in flight, sent with a POST. Packets are `4<text>` (message),
 * `2` (ping, answered `3`), several in one body separated by the record separator.
 */
function eioPolling(target, p) {
  const request = (method, sid, body, onDone) => {
    const path = `/engine.io/?EIO=4&transport=polling${sid ? `&sid=${sid}` : ''}`;
    const req = http.request({ host: '127.0.0.1', port: target.port, method, path, agent: target.agent, headers: { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => onDone(null, res.statusCode, text));
      res.on('error', (err) => onDone(err));
    });
    req.on('error', (err) => onDone(err));
    req.end(body);
    return req;
  };
  return roundTrips(p, {
    async open() {
      const opened = await new Promise((resolve, reject) =>
        request('GET', '', undefined, (err, status, text) => (err || status !== 200 ? reject(err ?? new Error(`status ${status}`)) : resolve(text))),
      );
      if (opened[0] !== '0') throw new Error(`expected an open packet, got ${opened.slice(0, 40)}`);
      return JSON.parse(opened.slice(1)).sid;
    },
    send: (s, i, done) => request('POST', s.sid, `4${varied(p.size, i)}`, (err, status) => done(err, status === 200)),
    poll: (s, done) => request('GET', s.sid, undefined, done),
    received(s, text) {
      let messages = 0;
      for (const packet of text.split('\x1e')) {
        if (packet[0] === '4') messages++;
        else if (packet === '2') request('POST', s.sid, '3', () => {});
      }
      return messages;
    },
  });
}

/**
 * New sessions, `concurrency` at a time: a websocket opened until `o` and closed, or an xhr poll
 * answered `o`; with `background`, while that many other websocket sessions stay open.
 */
function newSessions(target, p) {
  const meter = new Meter(p.maxMs);
  let running = false;
  let started = 0;
  let active = 0;
  let stopTimer = null;

  async function one() {
    const t0 = now();
    if (p.transport === 'websocket') {
      const ws = await openWebsocket(target, p.framed);
      meter.latency(now() - t0);
      await new Promise((resolve) => {
        ws.once('close', resolve);
        ws.close();
      });
    } else {
      const { text } = await postAsync(target, `/echo/000/${sessionId()}/xhr`, '');
      if (text !== 'o\n') throw new Error(`expected o, got ${text.slice(0, 40)}`);
      meter.latency(now() - t0);
    }
    meter.op();
  }
  async function loop() {
    active++;
    while (running && started < p.maxOps) {
      started++;
      try {
        await one();
      } catch {
        meter.errors++;
      }
    }
    active--;
  }

  // A busy server: `background` websocket sessions stay open (and alive) all along.
  const background = [];

  return {
    async setup() {
      await pool(p.background ?? 0, 200, async () => {
        const ws = await openWebsocket(target, p.framed, 30000);
        ws.on('error', () => meter.errors++);
        background.push(ws);
      });
    },
    start() {
      meter.reset();
      // Budgets are per round: the sessions stay, the counts start again.
      started = 0;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      for (let i = 0; i < p.concurrency; i++) loop();
    },
    collect: (window) => meter.collect(window),
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      await until(() => active === 0, 12000, 'new sessions in flight').catch(() => {});
    },
    async teardown() {
      await this.pause();
      await closeWebsockets(background, 10000);
    },
  };
}

/** Idle sessions: opened, then left alone (memory, heartbeats). `collect` says how many are still open. */
function idleSessions(target, p) {
  const sockets = [];
  const streams = [];
  const polls = [];
  let closed = 0;
  let errors = 0;

  function poll(s) {
    if (!s.polling) return;
    s.req = post(target, `/echo/000/${s.sid}/xhr`, '', (err, status, text) => {
      s.req = null;
      if (!s.polling) return;
      if (err || status !== 200) errors++;
      else if (text[0] === 'c') {
        // The server closed the session: it is no longer open.
        closed++;
        s.polling = false;
        return;
      }
      poll(s);
    });
  }

  return {
    async setup() {
      if (p.transport === 'websocket') {
        await pool(p.sessions, 200, async () => {
          const ws = await openWebsocket(target, p.framed, 30000);
          ws.on('close', () => closed++);
          ws.on('error', () => errors++);
          sockets.push(ws);
        });
      } else if (p.transport === 'xhr-polling') {
        // A poll always pending, as sockjs-client keeps one: answered at each heartbeat (`h`),
        // then made again at once.
        await pool(p.sessions, 50, async () => {
          const s = { sid: sessionId(), polling: true, req: null };
          const { text } = await postAsync(target, `/echo/000/${s.sid}/xhr`, '');
          if (text !== 'o\n') throw new Error(`expected o, got ${text.slice(0, 40)}`);
          polls.push(s);
          poll(s);
        });
      } else {
        const opened = new Set();
        for (let i = 0; i < p.sessions; i++) {
          const sid = sessionId();
          const stream = new Stream(target, sid, (line) => line[0] === 'o' && opened.add(sid), () => errors++);
          streams.push(stream);
        }
        await until(() => opened.size === p.sessions, 30000, 'xhr_streaming sessions to open');
      }
    },
    start() {},
    async pause() {},
    collect: () => ({ open: sockets.length + streams.length + polls.length - closed, errors }),
    async teardown() {
      for (const stream of streams) stream.close();
      for (const s of polls) {
        s.polling = false;
        if (s.req) s.req.destroy();
      }
      await closeWebsockets(sockets, 5000);
    },
  };
}

/**
 * Fan-out: `receivers` sessions (websockets, or xhr_streaming streams) all receive every message
 * that the first of them asks the server to send to everyone (`!fanout <payload>`), `inflight`
 * messages at a time. One operation is one message delivered to one session; the latency is from
 * the request to the last session's receipt. `floor`: the plain server, on its raw URLs.
 */
function fanout(target, p) {
  const meter = new Meter(p.maxMs);
  const payload = 'y'.repeat(p.size);
  const command = `!fanout ${payload}`;
  const receivers = [];
  /** Per message sent (by its sequence number): when it was sent and how many sessions still wait for it. */
  const pending = new Map();
  let sequence = 0;
  let running = false;
  let sent = 0;
  let stopTimer = null;

  function send() {
    if (!running || sent >= p.maxOps) return;
    sent++;
    pending.set(sequence++, { t0: now(), waiting: receivers.length });
    const first = receivers[0];
    if (p.transport === 'websocket') first.ws.send(p.floor ? command : JSON.stringify([command]));
    else {
      post(target, `/echo/000/${first.sid}/xhr_send`, JSON.stringify([command]), (err, status) => {
        if (err || status !== 204) meter.errors++;
      });
    }
  }
  /** `k` messages arrived at receiver `r`, in the order they were sent. */
  function received(r, k) {
    meter.op(k);
    for (let i = 0; i < k; i++) {
      const message = pending.get(r.got++);
      if (!message) continue;
      if (--message.waiting === 0) {
        pending.delete(r.got - 1);
        meter.latency(now() - message.t0);
        send();
      }
    }
  }
  function onFrame(r, type, frame) {
    if (type === 0x61 /* a */) received(r, countFrame(frame, p.size));
    else if (type === 0x6f /* o */) r.opened = true;
    else if (type === 0x63 /* c */) meter.errors++;
  }

  return {
    async setup() {
      if (p.transport === 'websocket') {
        await pool(p.receivers, 100, async () => {
          const ws = await openWebsocket(target, !p.floor);
          const r = { ws, got: sequence, opened: true };
          ws.on('message', (data) => onFrame(r, data[0], data));
          ws.on('error', () => meter.errors++);
          receivers.push(r);
        });
      } else {
        for (let i = 0; i < p.receivers; i++) {
          const r = { sid: sessionId(), got: sequence, opened: false, stream: null };
          r.stream = new Stream(target, r.sid, (line) => onFrame(r, line.charCodeAt(0), line), () => meter.errors++);
          receivers.push(r);
          // Opened in batches, so that the server is not handed thousands of connections at once.
          if (i % 200 === 199) await until(() => receivers.every((x) => x.opened), 30000, 'xhr_streaming sessions to open');
        }
        await until(() => receivers.every((x) => x.opened), 30000, 'xhr_streaming sessions to open');
      }
    },
    start() {
      meter.reset();
      // Budgets are per round: the sessions stay, the counts start again.
      sent = 0;
      running = true;
      stopTimer = setTimeout(() => (running = false), p.maxMs);
      for (let i = 0; i < p.inflight; i++) send();
    },
    collect: (window) => meter.collect(window),
    async pause() {
      running = false;
      clearTimeout(stopTimer);
      await until(() => pending.size === 0, 10000, 'fan-out messages in flight').catch(() => {});
      // What never arrived is not waited for in the next round.
      for (const r of receivers) r.got = sequence;
      pending.clear();
    },
    async teardown() {
      await this.pause();
      if (p.transport === 'websocket') await closeWebsockets(receivers.map((r) => r.ws), 10000);
      else for (const r of receivers) r.stream.close();
    },
  };
}

const LOADS = { wsEcho, flood, xhrStreamingPush, xhrSend, xhrPolling, eioPolling, newSessions, idleSessions, fanout };

// ---------------------------------------------------------------------------------------------

/** The loads set up, by key: one per server under test. */
const loads = new Map();

function loadOf(key) {
  const entry = loads.get(key);
  if (!entry) throw new Error(`no load ${key}`);
  return entry.load;
}

async function handle(message) {
  const { key } = message;
  switch (message.cmd) {
    case 'setup': {
      if (loads.has(key)) throw new Error(`load ${key} is already set up`);
      const make = LOADS[message.load.type];
      if (!make) throw new Error(`unknown load ${message.load.type}`);
      const target = { port: message.port, openPort: message.openPort, agent: agent() };
      const entry = { target, load: make(target, message.load) };
      loads.set(key, entry);
      await entry.load.setup();
      return {};
    }
    case 'start':
      await loadOf(key).start();
      return {};
    case 'collect':
      return { result: loadOf(key).collect(message.window) };
    case 'pause':
      await loadOf(key).pause();
      return {};
    case 'teardown': {
      const entry = loads.get(key);
      if (!entry) return {};
      loads.delete(key);
      try {
        await entry.load.teardown();
      } finally {
        entry.target.agent.destroy();
      }
      return {};
    }
    default:
      throw new Error(`unknown command ${message.cmd}`);
  }
}

process.on('message', (message) => {
  handle(message).then(
    (reply) => process.send({ id: message.id, ...reply }),
    (err) => process.send({ id: message.id, error: String((err && err.stack) || err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', pid: process.pid });
