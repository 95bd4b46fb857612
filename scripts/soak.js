'use strict';
/**
 * Soak and leak test: opens and closes many sessions across every transport, including aborted
 * streams and abandoned polls, then checks that nothing is left: no session, the same active
 * handles as before, every connection closed once, and the heap back within a few MB.
 *
 *   npm run soak                     # 20,000 sessions
 *   node scripts/soak.js --sessions 1000 --max-seconds 60
 *
 * Bounded in count (--sessions) and in time (--max-seconds); everything runs on 127.0.0.1.
 * Exits 0 when every check passes, 1 otherwise.
 */
const http = require('http');
const { spawnSync } = require('child_process');

if (typeof global.gc !== 'function') {
  // Heap figures mean something only after a full collection, which needs --expose-gc.
  const result = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

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

  for (const [name, ok, detail] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);

  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  const failed = checks.filter(([, ok]) => !ok).length;
  console.log(`soak: ${checks.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
