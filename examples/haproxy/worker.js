'use strict';
/**
 * One sockjs-rx worker of the scaling example. start.js runs several behind HAProxy; each is a
 * process of its own:
 *
 *   /echo       echoes every message
 *   /broadcast  greets each connection with "worker <id>", then sends every message to every
 *               /broadcast connection of every worker (over Redis)
 *   /whoami     answers every message with this worker's id, a space and the message
 *   GET /health answers 200 and the worker's id (HAProxy's health check)
 *   GET /requests how many requests of the three services this worker has served, as JSON
 *   GET /       a page to try the three services over any transport from a browser
 *
 * Environment: WORKER_ID (default w1), PORT (default 8181; 0 picks a free one), HOST (default
 * 127.0.0.1), REDIS_URL (default redis://127.0.0.1:6379), JSESSIONID=1 to set the cookie for
 * HAProxy's cookie affinity, RELAY=1 to serve every session from any worker (`relay: true`:
 * for a load balancer without affinity). Started by start.js it reports its port over IPC and
 * exits when start.js goes away.
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const sockjs = require('sockjs-rx');
const { redisBus } = require('sockjs-rx/redis');

const STATIC = {
  '/': { file: path.join(__dirname, 'index.html'), type: 'text/html; charset=UTF-8' },
  '/sockjs.min.js': { file: require.resolve('sockjs-client/dist/sockjs.min.js'), type: 'application/javascript; charset=UTF-8' },
};

function run() {
  const id = process.env.WORKER_ID || 'w1';
  const port = process.env.PORT === undefined ? 8181 : Number(process.env.PORT);
  const host = process.env.HOST || '127.0.0.1';
  const log = (severity, message) => {
    if (severity === 'error') console.error(`[${id}] ${message}`);
  };
  const options = { sockjs_url: '/sockjs.min.js', jsessionid: process.env.JSESSIONID === '1', log };

  const httpServer = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/health') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8', 'Cache-Control': 'no-store' });
      res.end(`${id}\n`);
      return;
    }
    if (url === '/requests') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify({ worker: id, served }));
      return;
    }
    const entry = req.method === 'GET' ? STATIC[url] : undefined;
    if (!entry) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('404 Error: Page not found\n');
      return;
    }
    fs.readFile(entry.file, (error, body) => {
      res.writeHead(error ? 500 : 200, { 'Content-Type': error ? 'text/plain; charset=UTF-8' : entry.type });
      res.end(error ? `${error.message}\n` : body);
    });
  });

  // Each service has a bus of its own (a prefix of its own in Redis), so that the broadcasts of
  // /broadcast reach its connections only. With RELAY=1 every service relays its sessions over
  // its bus; without it only /broadcast needs one.
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const relay = process.env.RELAY === '1';
  const buses = [];
  const busFor = (name) => {
    const bus = redisBus({ url: redisUrl, prefix: `sockjs-rx:${name}:`, log });
    buses.push(bus);
    return bus;
  };
  const service = (name) =>
    sockjs.createServer({ ...options, prefix: `/${name}`, ...(relay || name === 'broadcast' ? { bus: busFor(name), relay } : {}) });

  const echo = service('echo');
  echo.on('connection', (conn) => conn.on('data', (message) => conn.write(message)));
  echo.attach(httpServer);

  const whoami = service('whoami');
  whoami.on('connection', (conn) => conn.on('data', (message) => conn.write(`${id} ${message}`)));
  whoami.attach(httpServer);

  const broadcast = service('broadcast');
  broadcast.on('connection', (conn) => {
    conn.write(`worker ${id}`);
    conn.on('data', (message) => broadcast.broadcast(message));
  });
  broadcast.attach(httpServer);

  // Counted after the services have handled each request (listeners added later run later).
  let served = 0;
  httpServer.on('request', (req) => {
    if (/^\/(echo|whoami|broadcast)\//.test(req.url ?? '')) served++;
  });

  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      // Sessions get 1001 "Server shutting down"; then the bus ends its Redis connections.
      for (const server of [echo, whoami, broadcast]) server.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(() => resolve()));
      await Promise.all(buses.map((bus) => bus.close()));
    })().then(
      () => process.exit(0),
      (error) => {
        console.error(`[${id}] stopping: ${error.message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Forked by start.js: when it is gone, so is this worker.
  process.once('disconnect', stop);

  Promise.all(buses.map((bus) => bus.ready())).then(
    () =>
      httpServer.listen(port, host, () => {
        const address = httpServer.address();
        if (process.send) process.send({ type: 'listening', id, port: address.port });
        else console.log(`worker ${id} on http://${host}:${address.port}/`);
      }),
    (error) => {
      console.error(`[${id}] Redis: ${error.message}`);
      process.exit(1);
    },
  );
  httpServer.on('error', (error) => {
    console.error(`[${id}] cannot listen on ${host}:${port}: ${error.message}`);
    process.exit(1);
  });
}

run();
