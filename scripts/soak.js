'use strict';
/**
 * Soak and leak test: opens and closes many sessions across every transport, including aborted
 * streams and abandoned polls, then checks that nothing is left: no session, the same active
 * handles as before, every connection closed once, and the heap back within a few MB.
 *
 * Then three memory bounds, on a server in a child process (so that its heap is the server's
 * alone) with `max_queue_size` at 4 MiB. Heap is `heapUsed` after full collections, right after
 * the write loop or every 100 ms during a flood; the figure is the peak over a baseline taken
 * just before. Each bound allows 8 MB over the queues for what is not a queue: code compiled on
 * first use of these paths, the sockets' and sessions' objects, the chunk in flight on a socket,
 * and the noise between two full collections (the leak check above allows 4 MB for that alone).
 *
 * - A writer that ignores backpressure: 50,000 `conn.write()` of distinct 4 KB strings in one
 *   synchronous loop (200 MB if nothing stopped it), to a websocket and an xhr-streaming
 *   response whose clients do not read. The session must close with 1013 "Send queue full" once
 *   max_queue_size is passed, and refuse every later write at once. Bound: 4 MiB + 8 MB.
 * - A flood of tiny messages to `conn.pipe(conn)`: two websocket clients sending 200,000 `["x"]`,
 *   an xhr client sending bodies of 10,000 empty strings while it polls, and one that never
 *   polls; every session must end once the clients go. The echo keeps its receiving side near
 *   empty (the server stops reading while the pipe waits), so a session holds at most its send
 *   queue. Bound: (most sessions at once) x 4 MiB + 8 MB.
 * - A stalled inbound pipe: `conn.pipe()` into a Writable that takes one message per 50 ms, and
 *   `conn.pause()` for good, while websocket clients flood them. The server must stop reading
 *   them (the clients' `bufferedAmount` fills and stays) and keep the sessions open; an xhr
 *   client gets no answer to its send, and one that sends on without answers gets 1013 "Receive
 *   queue full". Bound: 4 MiB + 8 MB.
 *
 *   npm run soak                     # 20,000 sessions
 *   node scripts/soak.js --sessions 1000 --max-seconds 60
 *
 * Bounded in count (--sessions) and in time (--max-seconds for the sessions, at most 10 s for
 * each flood); everything runs on 127.0.0.1. Exits 0 when every check passes, 1 otherwise.
 */
const http = require('http');
const net = require('net');
const { Writable } = require('stream');
const { fork, spawnSync } = require('child_process');

if (typeof global.gc !== 'function') {
  // Heap figures mean something only after a full collection, which needs --expose-gc.
  const result = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

const { firstValueFrom } = require('rxjs');
const WebSocket = require('ws');
const sockjs = require('..');

function argument(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

const SESSIONS = argument('sessions', 20_000);
const MAX_SECONDS = argument('max-seconds', 300);
const CONCURRENCY = argument('concurrency', 32);
const HEAP_SLACK_MB = argument('heap-slack-mb', 4);
const DISCONNECT_DELAY = 200;
const STEP_TIMEOUT = 5_000;

const deadline = Date.now() + MAX_SECONDS * 1000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An HTTP request whose response is read until `until(text)` holds or it ends; then `abort` drops it. */
function request(port, method, path, { body = '', until = null, abort = false } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: { 'Content-Length': Buffer.byteLength(body) } });
      req.on('error', (error) => (abort ? resolve('') : reject(error)));
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
          if (until && until(text)) {
            if (abort) req.destroy();
            resolve(text);
          }
        });
        res.on('end', () => resolve(text));
        res.on('error', () => resolve(text));
      });
      req.end(body);
    }),
    `${method} ${path}`,
  );
}

/** A websocket that echoes once and closes, or with `stay`, stays open until the server closes it. */
function websocket(url, { raw = false, stay = false } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('error', reject);
      ws.on('open', () => {
        if (raw) ws.send('x');
      });
      ws.on('message', (data) => {
        const text = data.toString();
        if (stay) return;
        if (text === 'o') ws.send('["x"]');
        else if (text === 'x' || text === 'a["x"]' || text.startsWith('c[')) ws.close();
      });
      ws.on('close', () => resolve());
    }),
    url,
  );
}

let sessionIds = 0;
const newSession = (prefix) => `${prefix}/0/soak-${++sessionIds}`;

/** One session of each kind, in turn: clean closes, server closes, aborts and abandoned polls. */
const KINDS = [
  ['websocket', (port) => websocket(`ws://127.0.0.1:${port}${newSession('/echo')}/websocket`)],
  ['raw websocket', (port) => websocket(`ws://127.0.0.1:${port}/echo/websocket`, { raw: true })],
  ['websocket closed by the server', (port) => websocket(`ws://127.0.0.1:${port}${newSession('/close')}/websocket`)],
  [
    'xhr-polling, abandoned',
    async (port) => {
      const s = newSession('/echo');
      await request(port, 'POST', `${s}/xhr`);
      await request(port, 'POST', `${s}/xhr_send`, { body: '["x"]' });
      await request(port, 'POST', `${s}/xhr`);
    },
  ],
  [
    'xhr-polling, pending poll aborted',
    async (port) => {
      const s = newSession('/echo');
      await request(port, 'POST', `${s}/xhr`);
      await request(port, 'POST', `${s}/xhr_send`, { body: '["x"]' });
      await request(port, 'POST', `${s}/xhr`);
      const pending = http.request({ host: '127.0.0.1', port, method: 'POST', path: `${s}/xhr`, agent: false });
      pending.on('error', () => undefined);
      pending.end();
      await new Promise((resolve) => setTimeout(resolve, 5));
      pending.destroy();
    },
  ],
  ['xhr-streaming, aborted', (port) => request(port, 'POST', `${newSession('/echo')}/xhr_streaming`, { until: (t) => t.includes('\no\n'), abort: true })],
  ['eventsource, aborted', (port) => request(port, 'GET', `${newSession('/echo')}/eventsource`, { until: (t) => t.includes('data: o'), abort: true })],
  ['htmlfile, aborted', (port) => request(port, 'GET', `${newSession('/echo')}/htmlfile?c=cb`, { until: (t) => t.includes('p("o")'), abort: true })],
  [
    'jsonp, closed by the server',
    async (port) => {
      const s = newSession('/close');
      await request(port, 'GET', `${s}/jsonp?c=cb`);
      await request(port, 'GET', `${s}/jsonp?c=cb`);
    },
  ],
  ['xhr_send to no session', (port) => request(port, 'POST', `${newSession('/echo')}/xhr_send`, { body: '["x"]' })],
];

function handles() {
  const counts = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

function heapMB() {
  for (let i = 0; i < 4; i++) global.gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

async function until(condition, timeoutMs) {
  const end = Math.min(Date.now() + timeoutMs, deadline);
  while (!condition()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

async function load(port, count) {
  let next = 0;
  const failures = [];
  async function worker() {
    while (next < count && Date.now() < deadline) {
      const [name, run] = KINDS[next++ % KINDS.length];
      await run(port).catch((error) => failures.push(`${name}: ${error.message}`));
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { done: Math.min(next, count), failures };
}

// ---- Memory bounds ---------------------------------------------------------------------------

const BOUNDS_SERVER = '--bounds-server';
const MiB = 1024 * 1024;
const MB = 1000 * 1000;
/** max_queue_size of the bounds server: half the default, so that a miss shows sooner. */
const QUEUE_LIMIT = 4 * MiB;
const SLACK = 8 * MB;
const BOUNDS_DISCONNECT_DELAY = 2_000;
const BOUNDS_HEARTBEAT_DELAY = 1_000;
const WRITES = 50_000;
const WRITE_SIZE = 4096;
const FLOOD_MESSAGES = 200_000;
const FLOOD_MS = 10_000;
const STALL_MS = 3_000;
/** What a flooding websocket client lets wait in its own socket before it waits too. */
const CLIENT_CAP = 1 * MiB;

/** `heapUsed` after full collections, in bytes: what is alive, not what is yet to be collected. */
function liveHeap(collections = 4) {
  for (let i = 0; i < collections; i++) global.gc();
  return process.memoryUsage().heapUsed;
}

const mb = (bytes) => `${bytes < 0 ? '-' : '+'}${(Math.abs(bytes) / MB).toFixed(1)} MB`;

/**
 * The server the bounds are measured on, in a child process so that its heap holds no client.
 * It answers the parent's commands over IPC: `heap`, `watch` / `peak` (sample the heap every
 * 100 ms), `write-loop` (the writer that ignores backpressure), `state` and `stop`.
 */
async function boundsServer() {
  const server = http.createServer();
  // A short heartbeat: a websocket the server does not read learns that its client has gone
  // only when a write to it fails.
  const sockjsServer = sockjs.createServer({
    max_queue_size: QUEUE_LIMIT,
    disconnect_delay: BOUNDS_DISCONNECT_DELAY,
    heartbeat_delay: BOUNDS_HEARTBEAT_DELAY,
    log: () => undefined,
  });
  const connections = new Map();
  const closes = [];
  let opened = 0;
  let piped = 0;
  sockjsServer.on('connection', (conn) => {
    opened++;
    // The session id: /<prefix>/<server>/<session>/<transport>.
    const id = conn.pathname.split('/')[3];
    connections.set(id, conn);
    firstValueFrom(conn.closed$).then((why) => closes.push({ id, code: why.code, reason: why.reason }));
    conn.on('close', () => connections.delete(id));
    // The README's echo, which honours backpressure both ways.
    if (conn.prefix === '/echo') conn.pipe(conn);
    if (conn.prefix === '/paused') conn.pause();
    if (conn.prefix === '/piped') {
      // An application slower than its client: one message per 50 ms.
      const slow = new Writable({
        objectMode: true,
        highWaterMark: 4,
        write(_message, _encoding, done) {
          piped++;
          setTimeout(done, 50);
        },
      });
      conn.pipe(slow);
    }
  });
  for (const prefix of ['/writer', '/echo', '/paused', '/piped']) sockjsServer.installHandlers(server, { prefix });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

  let watching = null;
  const commands = {
    heap: () => ({ heap: liveHeap() }),
    watch: () => {
      const sampler = { peak: liveHeap(), sessions: sockjsServer.sessionCount, timer: null };
      sampler.timer = setInterval(() => {
        sampler.peak = Math.max(sampler.peak, liveHeap(2));
        sampler.sessions = Math.max(sampler.sessions, sockjsServer.sessionCount);
      }, 100);
      watching = sampler;
      return { heap: sampler.peak };
    },
    peak: () => {
      clearInterval(watching.timer);
      const { sessions } = watching;
      const peak = Math.max(watching.peak, liveHeap());
      watching = null;
      return { peak, sessions };
    },
    'write-loop': async ({ id }) => {
      const conn = connections.get(id);
      if (!conn) return { error: `no connection ${id}` };
      // Distinct strings, as an application's messages are: one string written 50,000 times
      // would be held once however often it is queued.
      const text = Buffer.alloc(WRITE_SIZE, 'x');
      let whileOpen = 0;
      let acceptedAfterClose = 0;
      const started = process.hrtime.bigint();
      for (let i = 0; i < WRITES; i++) {
        text.write(String(i).padStart(8, '0'));
        const open = conn.readyState === 1;
        const accepted = conn.write(text.toString('latin1'));
        if (open) whileOpen++;
        else if (accepted) acceptedAfterClose++;
      }
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const afterLoop = liveHeap();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const settled = liveHeap();
      return { afterLoop, settled, ms, whileOpen, acceptedAfterClose, closed: closes.find((c) => c.id === id) ?? null };
    },
    state: () => ({ sessions: sockjsServer.sessionCount, opened, closes, open: connections.size, piped }),
    stop: () => {
      sockjsServer.close();
      server.closeAllConnections();
      server.close();
      return {};
    },
  };
  process.on('message', async (message) => {
    const reply = await commands[message.cmd](message);
    process.send({ ...reply, seq: message.seq });
    if (message.cmd === 'stop') process.disconnect();
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ port: server.address().port });
}

/** Starts the bounds server; `call(command)` sends it one command and resolves with its answer. */
async function startBoundsServer() {
  const child = fork(__filename, [BOUNDS_SERVER], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  let seq = 0;
  const ready = new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`bounds server exited with ${code}`)));
  });
  const { port } = await withTimeout(ready, 'bounds server start');
  child.on('message', (message) => {
    waiting.get(message.seq)?.(message);
    waiting.delete(message.seq);
  });
  const call = (command) =>
    withTimeout(
      new Promise((resolve) => {
        waiting.set(++seq, resolve);
        child.send({ ...command, seq });
      }),
      `bounds server: ${command.cmd}`,
    );
  return { port, call, child };
}

/** A websocket session that has opened and whose client then stops reading its socket. */
function pausedWebsocket(url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('error', reject);
      ws.on('message', (data) => {
        if (data.toString() !== 'o') return;
        ws.off('error', reject);
        ws.on('error', () => undefined);
        ws.pause();
        resolve(ws);
      });
    }),
    url,
  );
}

/** An xhr-streaming response on a raw socket that stops reading once the open frame is in. */
function pausedStream(port, path) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let text = '';
      socket.on('error', reject);
      socket.setEncoding('latin1');
      socket.on('data', (chunk) => {
        text += chunk;
        if (!text.includes('\no\n')) return;
        socket.removeAllListeners('data');
        socket.off('error', reject);
        socket.on('error', () => undefined);
        socket.pause();
        resolve(socket);
      });
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\n\r\n`);
    }),
    path,
  );
}

/** Opens a websocket session and resolves once its open frame has come. */
function openWebsocket(url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('error', reject);
      ws.once('message', () => {
        ws.off('error', reject);
        ws.on('error', () => undefined);
        resolve(ws);
      });
    }),
    url,
  );
}

/** How many times each value occurs, e.g. `{ "204": 20, "404": 1 }`. */
function tally(values) {
  const counts = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** Asks the bounds server for its state until it has no session left, or `ms` have passed. */
async function untilQuiet(call, ms) {
  const end = Date.now() + ms;
  let state = await call({ cmd: 'state' });
  while ((state.sessions > 0 || state.open > 0) && Date.now() < end) {
    await sleep(50);
    state = await call({ cmd: 'state' });
  }
  return state;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `frame` as fast as the socket takes it, a batch per turn of the event loop, never with
 * more than `cap` bytes waiting in the client (past that it would only measure the client),
 * until `count` frames are sent, `endAt`, or the socket closes. Resolves with the frames sent.
 */
async function floodWebsocket(ws, frame, { count, endAt, cap = 64 * 1024 }) {
  let sent = 0;
  while (sent < count && Date.now() < endAt && ws.readyState === WebSocket.OPEN) {
    for (let batch = 0; batch < 1000 && sent < count && ws.bufferedAmount < cap; batch++) {
      ws.send(frame);
      sent++;
    }
    await turn();
  }
  return { sent };
}

/** POSTs `body` and resolves with the status (0 when the request failed), or `null` if no answer came within `waitMs`. */
function post(port, path, body, waitMs = STEP_TIMEOUT) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { 'Content-Length': Buffer.byteLength(body) } });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(null);
    }, waitMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(0);
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve(res.statusCode);
      });
    });
    req.end(body);
  });
}

/** Polls `/xhr` of a session until `stop()` or a close frame; the poll pending then is dropped. */
async function pollUntil(port, session, stop) {
  while (!stop()) {
    const controller = new AbortController();
    const aborter = setInterval(() => stop() && controller.abort(), 20);
    const text = await new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `${session}/xhr`, agent: false, signal: controller.signal });
      req.on('error', () => resolve(''));
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', () => resolve(''));
      });
      req.end();
    });
    clearInterval(aborter);
    if (text.startsWith('c')) return;
  }
}

/** 50,000 writes of 4 KB in one loop, to a websocket and to an xhr-streaming response that are not read. */
async function backpressureIgnoringWriter(port, call) {
  const results = [];
  const clients = [
    ['websocket', (id) => pausedWebsocket(`ws://127.0.0.1:${port}/writer/0/${id}/websocket`)],
    ['xhr-streaming', (id) => pausedStream(port, `/writer/0/${id}/xhr_streaming`)],
  ];
  for (const [transport, open] of clients) {
    const id = `writer-${transport}`;
    const client = await open(id);
    const { heap: before } = await call({ cmd: 'heap' });
    const loop = await call({ cmd: 'write-loop', id });
    if (client.terminate) client.terminate();
    else client.destroy();
    if (loop.error) throw new Error(loop.error);
    results.push({ transport, growth: Math.max(loop.afterLoop, loop.settled) - before, ...loop });
  }
  const growth = Math.max(...results.map((r) => r.growth));
  const closedRight = results.every((r) => r.closed?.code === 1013 && r.closed?.reason === 'Send queue full');
  // Closed once the queue passed the limit, not before, and every write after that refused.
  const fits = Math.floor(QUEUE_LIMIT / (WRITE_SIZE + 64));
  const refusedRight = results.every((r) => r.whileOpen > fits && r.whileOpen < WRITES && r.acceptedAfterClose === 0);
  const ok = growth <= QUEUE_LIMIT + SLACK && closedRight && refusedRight;
  const detail = results
    .map(
      (r) =>
        `${r.transport} ${mb(r.growth)}, closed ${r.closed ? `${r.closed.code} "${r.closed.reason}"` : 'not'} at write ${r.whileOpen}, ` +
        `${WRITES - r.whileOpen - r.acceptedAfterClose} later writes refused, ${r.acceptedAfterClose} accepted (loop ${r.ms.toFixed(0)} ms)`,
    )
    .join('; ');
  return { growth, ok, detail };
}

/** Tiny websocket messages and xhr_sends of empty strings, as fast as they go, to an echo. */
async function tinyMessageFlood(port, call) {
  const start = await call({ cmd: 'state' });
  const { heap: before } = await call({ cmd: 'watch' });
  const started = Date.now();
  const endAt = started + FLOOD_MS;
  const sockets = await Promise.all([0, 1].map((i) => openWebsocket(`ws://127.0.0.1:${port}/echo/0/flood-ws-${i}/websocket`)));
  let echoFrames = 0;
  for (const ws of sockets) ws.on('message', () => echoFrames++);
  const websockets = Promise.all(sockets.map((ws) => floodWebsocket(ws, '["x"]', { count: FLOOD_MESSAGES / sockets.length, endAt })));

  // Bodies of 10,000 empty strings: 30 KB on the wire, 640 KB by the queue's count.
  const empties = `[${'"",'.repeat(9_999)}""]`;
  let sessions = 0;
  async function sendEmpties(poll) {
    const kind = poll ? 'polled' : 'unpolled';
    let session = `/echo/0/flood-${kind}-${++sessions}`;
    await post(port, `${session}/xhr`, '');
    let done = false;
    const polls = poll ? pollUntil(port, session, () => done) : Promise.resolve(0);
    let sent = 0;
    const statuses = [];
    while (sent < FLOOD_MESSAGES && Date.now() < endAt) {
      const status = await post(port, `${session}/xhr_send`, empties);
      statuses.push(status);
      if (status === 204) sent += 10_000;
      else if (status !== 404 || poll) break;
      else {
        // The session that is never polled times out after disconnect_delay: open another.
        session = `/echo/0/flood-${kind}-${++sessions}`;
        await post(port, `${session}/xhr`, '');
      }
    }
    done = true;
    await polls;
    return { sent, statuses: tally(statuses) };
  }
  const [wsResults, polled, unpolled] = await Promise.all([websockets, sendEmpties(true), sendEmpties(false)]);
  const seconds = (Date.now() - started) / 1000;
  for (const ws of sockets) ws.close();
  const state = await untilQuiet(call, BOUNDS_DISCONNECT_DELAY * 4 + 2_000);
  const { peak, sessions: most } = await call({ cmd: 'peak' });
  const growth = peak - before;
  // The echo keeps its receiving side near empty, so a session holds at most its send queue.
  const bound = most * QUEUE_LIMIT + SLACK;
  const opened = state.opened - start.opened;
  const closes = state.closes.slice(start.closes.length);
  // Which clients' sessions closed how, e.g. "polled 1006 Session timed out".
  const codes = tally(closes.map((c) => `${c.id.split('-')[1]} ${c.code} ${c.reason}`));
  const wsSent = wsResults.reduce((sum, r) => sum + r.sent, 0);
  const ok = growth <= bound && state.sessions === 0 && state.open === 0 && closes.length === opened;
  const detail =
    `at most ${most} sessions at once; ${wsSent} websocket messages (${echoFrames} echo frames back), ${polled.sent + unpolled.sent} empty strings over xhr_send ` +
    `(${JSON.stringify(polled.statuses)} polled, ${JSON.stringify(unpolled.statuses)} never polled) in ${seconds.toFixed(1)} s; ` +
    `${opened} sessions opened, ${closes.length} closed ${JSON.stringify(codes)}, ${state.sessions} left`;
  return { growth, limit: `${most} sessions x 4 MiB + 8 MB`, ok, detail };
}

/** Websocket and xhr floods to an application that pipes into a slow Writable, or paused for good. */
async function stalledInboundPipe(port, call) {
  const start = await call({ cmd: 'state' });
  const { heap: before } = await call({ cmd: 'watch' });
  const endAt = Date.now() + STALL_MS;
  // 100 messages of 100 bytes a frame, so that the flood fills the socket buffers in a few seconds.
  const frame = JSON.stringify(Array.from({ length: 100 }, () => 'x'.repeat(100)));
  const piped = await openWebsocket(`ws://127.0.0.1:${port}/piped/0/stall-piped/websocket`);
  const paused = await openWebsocket(`ws://127.0.0.1:${port}/paused/0/stall-paused/websocket`);
  const floods = Promise.all([piped, paused].map((ws) => floodWebsocket(ws, frame, { count: Infinity, endAt, cap: CLIENT_CAP })));

  // An xhr client of a paused application, with a poll pending as sockjs-client keeps one: its
  // first send is not answered ...
  const session = '/paused/0/stall-xhr';
  await post(port, `${session}/xhr`, '');
  let polling = true;
  const poll = pollUntil(port, session, () => !polling);
  const body = JSON.stringify(Array.from({ length: 2_000 }, () => 'y'.repeat(60)));
  const firstAnswer = await post(port, `${session}/xhr_send`, body, 1_000);
  // ... and one that sends on regardless outruns max_queue_size: 32 sends of 248 KB by its count.
  const burst = await Promise.all(Array.from({ length: 32 }, () => post(port, `${session}/xhr_send`, body)));
  const [pipedFlood, pausedFlood] = await floods;
  // Still stalled half a second later: the server is not reading these sockets.
  await sleep(500);
  const waiting = [piped.bufferedAmount, paused.bufferedAmount];
  const state = await call({ cmd: 'state' });
  const closes = state.closes.slice(start.closes.length);
  const closeOf = (id) => closes.find((c) => c.id === id);
  for (const ws of [piped, paused]) ws.terminate();
  polling = false;
  await poll;
  // A socket the server does not read tells of its client's going only when a heartbeat fails.
  const end = await untilQuiet(call, BOUNDS_HEARTBEAT_DELAY * 4 + 2_000);
  const { peak } = await call({ cmd: 'peak' });
  const growth = peak - before;
  const xhrClose = closeOf('stall-xhr');
  const stalled = waiting.every((amount) => amount >= CLIENT_CAP * 0.9);
  const stillOpen = !closeOf('stall-piped') && !closeOf('stall-paused');
  const ok =
    growth <= QUEUE_LIMIT + SLACK &&
    stalled &&
    stillOpen &&
    state.piped > 0 &&
    firstAnswer === null &&
    xhrClose?.code === 1013 &&
    xhrClose?.reason === 'Receive queue full' &&
    end.sessions === 0;
  const detail =
    `websocket clients sent ${pipedFlood.sent} and ${pausedFlood.sent} frames of 100 messages, then had ` +
    `${(waiting[0] / MiB).toFixed(2)} and ${(waiting[1] / MiB).toFixed(2)} MiB waiting (piped, paused); ` +
    `the slow pipe took ${state.piped}; websocket sessions ${stillOpen ? 'still open' : `closed ${JSON.stringify(closes)}`}; ` +
    `first xhr_send to the paused one ${firstAnswer === null ? 'held' : `answered ${firstAnswer}`}, then ` +
    `${xhrClose ? `closed ${xhrClose.code} "${xhrClose.reason}"` : 'not closed'} (burst answers ${JSON.stringify(tally(burst))}); ${end.sessions} sessions left`;
  return { growth, ok, detail };
}

const SCENARIOS = [
  ['backpressure-ignoring writer', backpressureIgnoringWriter],
  ['flood of tiny messages', tinyMessageFlood],
  ['stalled inbound pipe', stalledInboundPipe],
];

/** Runs the three memory-bound scenarios on a bounds server; one check each. */
async function memoryBounds() {
  const { port, call, child } = await startBoundsServer();
  const checks = [];
  try {
    for (const [name, scenario] of SCENARIOS) {
      const result = await scenario(port, call).catch((error) => ({ growth: NaN, ok: false, detail: error.message }));
      const limit = result.limit ?? '4 MiB + 8 MB';
      const growth = Number.isNaN(result.growth) ? 'not measured' : mb(result.growth);
      console.log(`soak: ${name}: heap ${growth} (limit ${limit}): ${result.ok ? 'pass' : 'FAIL'}`);
      checks.push([`${name}: heap ${growth} within ${limit}`, result.ok, result.detail]);
    }
    await call({ cmd: 'stop' });
  } finally {
    if (child.exitCode === null) child.kill();
  }
  return checks;
}

async function main() {
  const server = http.createServer();
  const sockjsServer = sockjs.createServer({ disconnect_delay: DISCONNECT_DELAY, log: () => undefined });
  let opened = 0;
  let closeEvents = 0;
  sockjsServer.on('connection', (connection) => {
    opened++;
    connection.on('close', () => closeEvents++);
    if (connection.prefix === '/close') connection.close(3000, 'Go away!');
    else connection.on('data', (message) => connection.write(message));
  });
  sockjsServer.installHandlers(server, { prefix: '/echo' });
  sockjsServer.installHandlers(server, { prefix: '/close' });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();

  // A warm-up round loads and compiles everything first, so that it does not count as growth.
  await load(port, Math.min(500, SESSIONS));
  await until(() => sockjsServer.sessionCount === 0, DISCONNECT_DELAY * 10 + 5_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = { heap: heapMB(), handles: handles(), opened, closeEvents };

  const started = Date.now();
  const { done, failures } = await load(port, SESSIONS);
  const seconds = (Date.now() - started) / 1000;
  const drained = await until(() => sockjsServer.sessionCount === 0 && closeEvents === opened, DISCONNECT_DELAY * 10 + 10_000);
  // Sockets closed by either side leave their handles on the next turns of the event loop.
  await until(() => JSON.stringify(handles()) === JSON.stringify(before.handles), 5_000);
  const after = { heap: heapMB(), handles: handles() };

  const checks = [
    [`ran ${SESSIONS} sessions`, done === SESSIONS, `${done} in ${seconds.toFixed(1)} s`],
    ['no request failed', failures.length === 0, failures.slice(0, 5).join('; ') || 'none'],
    ['no session left', drained && sockjsServer.sessionCount === 0, `${sockjsServer.sessionCount} sessions`],
    ['every connection closed once', closeEvents === opened, `${opened} opened, ${closeEvents} close events`],
    ['the same active handles', JSON.stringify(after.handles) === JSON.stringify(before.handles), `${JSON.stringify(before.handles)} -> ${JSON.stringify(after.handles)}`],
    [`heap within ${HEAP_SLACK_MB} MB`, after.heap - before.heap < HEAP_SLACK_MB, `${before.heap.toFixed(1)} MB -> ${after.heap.toFixed(1)} MB`],
  ];
  // Graceful shutdown with sessions open: streams, pending polls and websockets are all closed.
  const open = [];
  for (let i = 0; i < 20; i++) {
    open.push(websocket(`ws://127.0.0.1:${port}${newSession('/echo')}/websocket`, { stay: true }));
    open.push(request(port, 'POST', `${newSession('/echo')}/xhr_streaming`, { until: null }));
  }
  await until(() => sockjsServer.sessionCount === 40, 5_000);
  const openBefore = sockjsServer.sessionCount;
  sockjsServer.close();
  const shutdownErrors = (await Promise.allSettled(open)).filter((r) => r.status === 'rejected').length;
  await until(() => JSON.stringify(handles()) === JSON.stringify(before.handles), 5_000);
  checks.push([
    'close() ends every open session and leaves no handle',
    openBefore === 40 && sockjsServer.sessionCount === 0 && shutdownErrors === 0 && JSON.stringify(handles()) === JSON.stringify(before.handles),
    `${openBefore} open -> ${sockjsServer.sessionCount}, ${shutdownErrors} clients not closed, handles ${JSON.stringify(handles())}`,
  ]);

  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));

  checks.push(...(await memoryBounds()));

  for (const [name, ok, detail] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  const failed = checks.filter(([, ok]) => !ok).length;
  console.log(`soak: ${checks.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

(process.argv[2] === BOUNDS_SERVER ? boundsServer : main)().catch((error) => {
  console.error(error);
  process.exit(1);
});
