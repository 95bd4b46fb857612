'use strict';
/**
 * One server under test, run as a child of bench/run.js:
 *
 *   node --expose-gc bench/server.js <ours|ours-nometrics|sockjs|ws|engine.io|relayed> '<json options>'
 *
 * Serves an echo service on 127.0.0.1, port 0, under /echo. The SockJS servers (ours from dist/
 * and sockjs 0.3.24) get the same code through the sockjs API; `ws` is a plain WebSocket echo on
 * /echo/websocket, the floor for the websocket path; `engine.io` is engine.io 6's long-polling
 * echo under /engine.io/, what socket.io users have where websockets are blocked.
 *
 * The echo service also takes four commands, so that one service covers every scenario:
 *   `!push <n> <size>`  writes n messages of size bytes back (server push)
 *   `!fanout <text>`    writes text to every open connection: with the option `fanout: 'broadcast'`
 *                       through `server.broadcast()` (sockjs-rx; sockjs has none and loops), else
 *                       with a loop of `conn.write()` in the application
 *   `!sink...`          is dropped (the cost of receiving alone)
 *   `!flood...`         is counted (the flooder's messages that reached the application) and
 *                       dropped
 *
 * The kind `ours-nometrics` is ours created with `metrics: false`. The option `rate_limit` is
 * given to ours (every kind of it) as it is; sockjs has no such option.
 *
 * With the option `relay`, sockjs-rx runs with `relay: true` over a redis-server it starts (no
 * persistence), or over `redisUrl`. The kind `relayed` is that too, and also starts a second
 * server process on the same Redis, the owner: the load opens its sessions there (`ownerPort`)
 * and sends every later request here, which relays it; `cpu` then counts both processes, and
 * says the owner's share (`ownerCpu`).
 *
 * It talks to the parent over IPC: `ready` with the port once listening, then answers
 * `cpu` (process.cpuUsage(), with the `!flood` messages the application has had so far, and with
 * `rate_limit` the messages ours has dropped, from `server.metrics()`), `mem` (memoryUsage() after
 * a forced GC), `stats` (open connections) and `exit` (a clean exit, so that --cpu-prof writes its
 * profile).
 */
const { fork, spawn } = require('child_process');
const net = require('net');
const http = require('http');
const path = require('path');

const kind = process.argv[2];
const options = JSON.parse(process.argv[3] || '{}');

let open = 0;
/** `!flood` messages handed to the application. */
let floodDelivered = 0;
const pushPayloads = new Map();
/** The open connections of the SockJS servers, for `!fanout`. */
const conns = new Set();
/** The SockJS server, for `broadcast()`. */
let service = null;

function payloadOf(size) {
  let payload = pushPayloads.get(size);
  if (payload === undefined) {
    payload = 'y'.repeat(size);
    pushPayloads.set(size, payload);
  }
  return payload;
}

function command(conn, message) {
  if (message.startsWith('!push ')) {
    const [, n, size] = message.split(' ');
    const count = Math.min(Number(n) || 0, 100000);
    const payload = payloadOf(Math.min(Number(size) || 1, 1 << 20));
    for (let i = 0; i < count; i++) conn.write(payload);
  } else if (message.startsWith('!fanout ')) {
    const text = message.slice('!fanout '.length);
    if (options.fanout === 'broadcast' && typeof service.broadcast === 'function') service.broadcast(text);
    else for (const c of conns) c.write(text);
  } else if (message.startsWith('!flood')) {
    floodDelivered++;
  }
  // `!sink`, `!flood` and unknown commands are dropped.
}

function sockjsEcho(conn) {
  open++;
  conns.add(conn);
  conn.on('data', (message) => {
    if (message.charCodeAt(0) === 0x21) command(conn, message);
    else conn.write(message);
  });
  conn.on('close', () => {
    open--;
    conns.delete(conn);
  });
}

/**
 * sockjs-rx from the run's copy of dist/ (BENCH_OURS), else from dist/. The copy lives outside
 * the repository; NODE_PATH points its own dependencies at the repository's node_modules.
 */
function loadOurs() {
  return require(process.env.BENCH_OURS || path.join(__dirname, '..', 'dist'));
}

/** The relay's bus, with `relay`. */
let bus = null;

function serve(server) {
  if (kind === 'ours' || kind === 'ours-nometrics' || kind === 'relayed' || kind === 'sockjs') {
    const sockjs = kind === 'sockjs' ? require('sockjs') : loadOurs();
    if (options.relay) {
      const { redisBus } = require(path.join(process.env.BENCH_OURS || path.join(__dirname, '..', 'dist'), 'redis'));
      bus = redisBus({ url: options.redisUrl, log: () => {} });
    }
    service = sockjs.createServer({
      log: () => {},
      heartbeat_delay: options.heartbeat_delay ?? 25000,
      disconnect_delay: options.disconnect_delay ?? 5000,
      response_limit: options.response_limit ?? 128 * 1024,
      ...(bus ? { bus, relay: true } : {}),
      ...(kind !== 'sockjs' && options.rate_limit ? { rate_limit: options.rate_limit } : {}),
      ...(kind === 'ours-nometrics' ? { metrics: false } : {}),
    });
    service.on('connection', sockjsEcho);
    service.installHandlers(server, { prefix: '/echo' });
    return;
  }
  if (kind === 'ws') {
    const { WebSocketServer } = require('ws');
    const wss = new WebSocketServer({ server, path: '/echo/websocket', perMessageDeflate: false, clientTracking: false });
    const sockets = new Set();
    wss.on('connection', (ws) => {
      open++;
      sockets.add(ws);
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString('latin1', 0, 8) === '!fanout ') fanoutFloor(sockets, data.toString('utf8', 8));
        else ws.send(data, { binary: isBinary });
      });
      ws.on('close', () => {
        open--;
        sockets.delete(ws);
      });
    });
    // The fan-out floor on xhr_streaming: the open streams, which an `xhr_send` of `["!fanout …"]` writes to.
    const streams = new Set();
    // The HTTP floor: Node's own http answering the session URLs with fixed frames, with no
    // session behind them, so the HTTP rows show what Node's HTTP costs before any SockJS work.
    // With `floorPolls` (the xhr-polling scenario) it also keeps the least a poll round trip
    // needs: per session id a held poll, answered with the body of the next xhr_send as it came.
    const polls = options.floorPolls ? new Map() : null;
    const answerPoll = (res, frame) => {
      res.writeHead(200, { 'Content-Type': 'application/javascript; charset=UTF-8', 'Content-Length': String(Buffer.byteLength(frame)) });
      res.end(frame);
    };
    server.on('request', (req, res) => {
      const parts = req.method === 'POST' ? req.url.split('?')[0].split('/') : [];
      const endpoint = parts[4];
      if (endpoint === 'xhr_send') {
        const chunks = [];
        req.on('data', (chunk) => chunks.push(chunk));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (body.startsWith('["!fanout ')) {
            // Quoted and framed once; the same bytes go to every stream.
            const frame = Buffer.from(`a${JSON.stringify([JSON.parse(body)[0].slice('!fanout '.length)])}\n`);
            for (const stream of streams) stream.write(frame);
          }
          const session = polls?.get(parts[3]);
          if (session) {
            // `["m"]` carries `"m"`: the frame is `a["m"]`.
            const items = Buffer.concat(chunks).toString('utf8').slice(1, -1);
            if (session.res) answerPoll(session.res, `a[${items}]\n`);
            else session.queued.push(items);
            session.res = null;
          }
          res.writeHead(204, { 'Content-Type': 'text/plain; charset=UTF-8' });
          res.end();
        });
      } else if (endpoint === 'xhr') {
        const session = polls?.get(parts[3]);
        if (!session) {
          polls?.set(parts[3], { res: null, queued: [] });
          answerPoll(res, 'o\n');
        } else if (session.queued.length > 0) {
          answerPoll(res, `a[${session.queued.join(',')}]\n`);
          session.queued = [];
        } else {
          session.res = res;
          res.on('close', () => {
            if (session.res === res) session.res = null;
          });
        }
      } else if (endpoint === 'xhr_streaming') {
        res.writeHead(200, { 'Content-Type': 'application/javascript; charset=UTF-8' });
        res.write('h'.repeat(2048) + '\n');
        res.write('o\n');
        streams.add(res);
        res.on('close', () => streams.delete(res));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    return;
  }
  if (kind === 'engine.io') {
    // engine.io 6 with long-polling only (what socket.io falls back to), echoing each message.
    const engine = require('engine.io').attach(server, { transports: ['polling'], pingInterval: options.heartbeat_delay ?? 25000 });
    engine.on('connection', (socket) => {
      open++;
      socket.on('message', (data) => socket.send(data));
      socket.on('close', () => open--);
    });
    return;
  }
  throw new Error(`unknown server kind ${kind}`);
}

/**
 * The fan-out floor on websockets: `text` quoted and framed once (a SockJS `a[...]` frame in one
 * unmasked websocket text frame), and the same bytes written to every socket, one write each.
 */
function fanoutFloor(sockets, text) {
  const { Sender } = require('ws');
  const frame = Buffer.concat(Sender.frame(Buffer.from(`a${JSON.stringify([text])}`), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
  for (const ws of sockets) ws._socket.write(frame);
}

/** With `rate_limit`, the messages ours has dropped (every prefix), from `server.metrics()`; else undefined. */
function dropped() {
  if (!options.rate_limit || typeof service?.metrics !== 'function') return undefined;
  const prefixes = Object.values(service.metrics().prefixes);
  if (prefixes.length === 0) return undefined;
  return prefixes.reduce((sum, p) => sum + p.messagesDropped, 0);
}

function memory() {
  if (typeof global.gc !== 'function') return null;
  // Twice: the first pass finalises what the second frees.
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** The redis-server and the owner this process started, with `relay`. */
const started = { redis: null, owner: null };

/** A port free on 127.0.0.1 now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts a redis-server with no persistence; resolves with its URL once it accepts connections. */
async function startRedis() {
  const port = await freePort();
  started.redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => (socket.destroy(), resolve(false)));
    });
    if (up) return `redis://127.0.0.1:${port}`;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('redis-server did not start');
}

/** Starts the owner: this server's code as kind `ours`, on the same Redis; resolves with its port. */
function startOwner() {
  const owner = fork(__filename, ['ours', JSON.stringify({ ...options, redisUrl: options.redisUrl })], { stdio: 'inherit', execArgv: ['--expose-gc'] });
  started.owner = owner;
  owner.pending = new Map();
  owner.nextId = 1;
  return new Promise((resolve, reject) => {
    owner.once('exit', (code) => reject(new Error(`the owner exited (${code})`)));
    owner.on('message', (message) => {
      if (message.type === 'ready') return resolve(message.port);
      const waiter = owner.pending.get(message.id);
      owner.pending.delete(message.id);
      waiter?.(message);
    });
  });
}

/** What the owner answers to `cmd`. */
function askOwner(cmd) {
  const owner = started.owner;
  return new Promise((resolve) => {
    const id = owner.nextId++;
    owner.pending.set(id, resolve);
    owner.send({ id, cmd });
  });
}

function stopStarted() {
  started.owner?.kill('SIGKILL');
  started.redis?.kill('SIGKILL');
}
process.on('exit', stopStarted);

async function answer(message) {
  switch (message.cmd) {
    case 'cpu': {
      const ownerCpu = started.owner ? (await askOwner('cpu')).cpu : undefined;
      const cpu = process.cpuUsage();
      const own = cpu.user + cpu.system;
      return { cpu: own + (ownerCpu ?? 0), ownerCpu, at: Number(process.hrtime.bigint() / 1000n), flood: floodDelivered, dropped: dropped() };
    }
    case 'mem':
      return { mem: memory() };
    case 'stats':
      return { open };
    default:
      return { error: `unknown command ${message.cmd}` };
  }
}

process.on('message', (message) => {
  if (message.cmd === 'exit') {
    stopStarted();
    process.send({ id: message.id }, () => process.exit(0));
    return;
  }
  answer(message).then((reply) => process.send({ id: message.id, ...reply }));
});
// The parent going away ends the server too: no strays.
process.on('disconnect', () => process.exit(0));

(async () => {
  if (options.relay && !options.redisUrl) options.redisUrl = await startRedis();
  const ownerPort = kind === 'relayed' ? await startOwner() : undefined;
  const server = http.createServer();
  server.keepAliveTimeout = 60000;
  serve(server);
  if (bus) await bus.ready();
  server.listen(0, '127.0.0.1', () => {
    process.send({ type: 'ready', port: server.address().port, ownerPort, pid: process.pid });
  });
})().catch((err) => {
  console.error(`bench server ${kind}: ${err.stack || err}`);
  stopStarted();
  process.exit(1);
});
