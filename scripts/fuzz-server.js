'use strict';
/**
 * The server under test of scripts/fuzz.js: a real sockjs-rx echo server at /echo on 127.0.0.1, port 0,
 * run in a child process of its own so that a crash, a hang or a leak is seen from outside.
 *
 *   node --expose-gc scripts/fuzz-server.js      # forked by scripts/fuzz.js, with an IPC channel
 *
 * Limits are small so that the fuzzer reaches them quickly. The application side varies with the session
 * id: `m<digit>` in the URL picks how the connection is used (see MODES), so that a case decides it and a
 * replay gets the same. `GET /__fuzz/stats` (outside the prefix) and the IPC message `stats` answer
 * { sockets, sessions, heapUsed, rss, uptime, errors, openSockets, openConnections }.
 *
 * An uncaught exception or unhandled rejection is written to stderr as one `FUZZ-FATAL {json}` line
 * (synchronously, so that it survives the exit) and the process exits 70.
 */
const fs = require('fs');
const http = require('http');
const { Writable } = require('stream');
// FUZZ_TARGET names another build of the package to test, e.g. one of an older commit.
const sockjs = require(process.env.FUZZ_TARGET || '..');

const OPTIONS = {
  prefix: '/echo',
  max_message_size: 64 * 1024,
  max_queue_size: 256 * 1024,
  response_limit: 4096,
  heartbeat_delay: 300,
  disconnect_delay: 200,
  hixie76: true,
  jsessionid: true,
};

const started = Date.now();
/** Faults the server logged, and anything else worth the fuzzer's eye; the newest last. */
const errors = [];
const note = (kind, text, extra = {}) => {
  if (errors.length < 200) errors.push({ kind, text: String(text).slice(0, 2000), at: Date.now() - started, ...extra });
};
/** The latest requests and upgrades, by the client's port, so that a crash can be traced to its case. */
const recent = [];
const remember = (kind, req) => {
  recent.push({ kind, port: req.socket.remotePort, method: req.method, url: String(req.url).slice(0, 200), at: Date.now() - started });
  if (recent.length > 400) recent.splice(0, recent.length - 400);
};

// A blocked event loop is a hang of every client at once: note each stall past STALL_MS, with the
// requests that came just before it, and the longest delay since the last stats request.
const STALL_MS = 500;
let loopDelayMax = 0;
let lastTick = Date.now();
setInterval(() => {
  const now = Date.now();
  const delay = now - lastTick - 20;
  lastTick = now;
  loopDelayMax = Math.max(loopDelayMax, delay);
  if (delay > STALL_MS) {
    const at = now - started;
    const before = recent.filter((r) => r.at >= at - delay - 200).map((r) => r.port);
    note('stall', `event loop blocked ${delay} ms`, { ms: delay, ports: [...new Set(before)].slice(-40) });
  }
}, 20).unref();

function fatal(kind, error) {
  const report = { kind, stack: error && error.stack ? error.stack : String(error), recent: recent.slice(-100), uptime: Date.now() - started };
  try {
    fs.writeSync(2, `FUZZ-FATAL ${JSON.stringify(report)}\n`);
  } finally {
    process.exit(70);
  }
}
process.on('uncaughtException', (error) => fatal('uncaughtException', error));
process.on('unhandledRejection', (error) => fatal('unhandledRejection', error));
process.on('warning', (warning) => note('warning', warning.stack || warning.message));
// The fuzzer owns this process: when it goes, so does the server.
process.on('disconnect', () => process.exit(0));

/**
 * A Writable that takes one message every 20 ms and holds 4: it pushes back on its source. It
 * counts messages, not bytes: a byte-counting sink takes empty messages as free and never pushes
 * back, so a flood of them would wait in the sink itself for minutes.
 */
function slowSink() {
  return new Writable({
    objectMode: true,
    highWaterMark: 4,
    write(_chunk, _encoding, done) {
      setTimeout(done, 20).unref();
    },
  });
}

/** How the application uses a connection, by the digit after `m` in its URL; echo when there is none. */
const MODES = {
  0: function echo(conn) {
    conn.on('data', (message) => conn.write(message));
  },
  1: function writesAfterClose(conn) {
    conn.on('data', (message) => conn.write(message));
    conn.on('close', () => {
      conn.write('after close');
      conn.end('after end');
      conn.close(3000, 'again');
      conn.destroy();
    });
  },
  2: function paused(conn) {
    conn.on('data', (message) => conn.write(message));
    conn.pause();
    setTimeout(() => conn.resume(), 400).unref();
  },
  3: function pipedToSlowSink(conn) {
    conn.pipe(slowSink());
    conn.on('data', (message) => conn.write(message));
  },
  4: function writesMany(conn) {
    // 200 writes for each of the first 5 messages: a client that sends 20,000 at once must not make the
    // application, rather than the server, burn the CPU.
    let left = 5;
    conn.on('data', (message) => {
      if (left-- > 0) for (let i = 0; i < 200; i++) conn.write(`${i}:${message}`.slice(0, 2000));
    });
    for (let i = 0; i < 50; i++) conn.write('x'.repeat(i * 100));
  },
  5: function endsAtOnce(conn) {
    conn.end('bye');
    conn.write('after end');
  },
  6: function closesAtOnce(conn) {
    conn.close(3000, 'Go away!');
    conn.on('data', (message) => conn.write(message));
  },
  7: function destroysOnData(conn) {
    conn.on('data', () => conn.destroy());
  },
  8: function writesOddValues(conn) {
    conn.on('data', (message) => {
      conn.write(Buffer.from(message));
      conn.write(42);
      conn.write({ toString: () => 'object' });
      conn.write('');
      conn.write('\u2028\ud800\u0000');
    });
  },
  9: function readsWithObservables(conn) {
    const messages = conn.messages$.subscribe((message) => conn.send(message));
    conn.closed$.subscribe(() => messages.unsubscribe());
  },
};

const openConnections = new Map();
const sockets = new Map();
const socketsByPort = new Map();

const httpServer = http.createServer();
// Listeners added before attach() get what is outside the prefix.
httpServer.on('request', (req, res) => {
  if (req.url === '/__fuzz/stats') {
    stats({ gc: false }, (body) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    return;
  }
  req.resume();
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('outside\n');
});
httpServer.on('connection', (socket) => {
  const entry = { port: socket.remotePort, at: Date.now() - started };
  sockets.set(socket, entry);
  socketsByPort.set(entry.port, socket);
  socket.on('close', () => {
    sockets.delete(socket);
    if (socketsByPort.get(entry.port) === socket) socketsByPort.delete(entry.port);
  });
});

const server = sockjs.createServer({
  ...OPTIONS,
  log: (severity, message) => {
    if (severity === 'error') note('logged', message);
  },
});
server.on('connection', (conn) => {
  const mode = /m(\d)/.exec(String(conn.url));
  openConnections.set(conn, { url: String(conn.url).slice(0, 200), protocol: conn.protocol, at: Date.now() - started });
  conn.on('close', () => openConnections.delete(conn));
  conn.on('error', (error) => note('connection error', error.stack || error.message));
  (MODES[mode ? mode[1] : 0] || MODES[0])(conn);
});
server.attach(httpServer);

/**
 * `/guard` and `/guardc`: the same application behind `authorize`, session caps and a rate limit
 * (`drop` and `close`). The query's `token` picks what `authorize` does, so that a case decides it.
 */
const AUTHORIZE = {
  no: () => false,
  401: () => sockjs.refuse(401, 'Token expired.'),
  throw: () => {
    throw new Error('authorize threw');
  },
  reject: () => Promise.reject(new Error('authorize rejected')),
  slow: () => new Promise((resolve) => setTimeout(resolve, 100, { user: 'slow' }).unref()),
  hang: () => new Promise(() => undefined),
};
const guard = sockjs.createServer({
  ...OPTIONS,
  authorize: ({ query }) => (AUTHORIZE[query.get('token')] || (() => ({ user: query.get('token') })))(),
  authorize_timeout: 300,
  max_sessions: 200,
  max_sessions_per_address: 150,
  log: (severity, message) => {
    // authorize's own faults are logged as errors by design; the fuzzer looks for the server's.
    if (severity === 'error' && !/authorize (failed|did not answer)/.test(message)) note('logged', message);
  },
});
guard.on('connection', (conn) => {
  openConnections.set(conn, { url: String(conn.url).slice(0, 200), protocol: conn.protocol, at: Date.now() - started });
  conn.on('close', () => openConnections.delete(conn));
  conn.on('error', (error) => note('connection error', error.stack || error.message));
  MODES[0](conn);
});
guard.installHandlers(httpServer, { prefix: '/guard', rate_limit: { messages: 20, bytes: 8192, policy: 'drop' } });
guard.installHandlers(httpServer, { prefix: '/guardc', rate_limit: { messages: 20, policy: 'close' } });
// Added after attach() so that they see every request and upgrade, inside the prefix too.
httpServer.prependListener('request', (req) => {
  if (!String(req.url).startsWith('/__fuzz/')) remember('request', req);
});
httpServer.prependListener('upgrade', (req) => remember('upgrade', req));

function stats({ gc }, answer) {
  if (gc && typeof global.gc === 'function') for (let i = 0; i < 3; i++) global.gc();
  httpServer.getConnections((error, count) => {
    const now = Date.now() - started;
    const memory = process.memoryUsage();
    const delayMax = loopDelayMax;
    loopDelayMax = 0;
    answer({
      sockets: error ? -1 : count,
      sessions: server.sessionCount + guard.sessionCount,
      heapUsed: memory.heapUsed,
      rss: memory.rss,
      uptime: now,
      loopDelayMax: delayMax,
      errors,
      openSockets: [...sockets.values()].slice(0, 100).map((s) => ({ port: s.port, age: now - s.at })),
      openConnections: [...openConnections.values()].slice(0, 100).map((c) => ({ ...c, age: now - c.at })),
      recent: recent.slice(-50),
    });
  });
}

process.on('message', (message) => {
  if (message && message.type === 'stats') stats(message, (body) => process.send({ type: 'stats', id: message.id, body }));
  if (message && message.type === 'socket') {
    // How far the server has read a client's socket: a FIN behind unread bytes is not seen yet.
    const socket = socketsByPort.get(message.port);
    const body = socket ? { bytesRead: socket.bytesRead, paused: socket.isPaused(), readableEnded: socket.readableEnded, writableLength: socket.writableLength } : null;
    process.send({ type: 'socket', id: message.id, body });
  }
});

httpServer.listen(0, '127.0.0.1', () => {
  const { port } = httpServer.address();
  if (process.send) process.send({ type: 'ready', port, options: OPTIONS });
  else console.log(`fuzz server on http://127.0.0.1:${port}/echo`);
});
