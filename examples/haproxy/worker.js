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
 *   GET /       a page to try the three services over any transport from a browser
 *
 * Environment: WORKER_ID (default w1), PORT (default 8181; 0 picks a free one), HOST (default
 * 127.0.0.1), REDIS_URL (default redis://127.0.0.1:6379), JSESSIONID=1 to set the cookie for
 * HAProxy's cookie affinity. Started by start.js it reports its port over IPC and exits when
 * start.js goes away.
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

  const echo = sockjs.createServer({ ...options, prefix: '/echo' });
  echo.on('connection', (conn) => conn.on('data', (message) => conn.write(message)));
  echo.attach(httpServer);

  const whoami = sockjs.createServer({ ...options, prefix: '/whoami' });
  whoami.on('connection', (conn) => conn.on('data', (message) => conn.write(`${id} ${message}`)));
  whoami.attach(httpServer);

  // Only this server is on the bus: its broadcast() reaches the /broadcast connections of every
  // worker, and no other service's.
  const bus = redisBus({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379', log });
  const broadcast = sockjs.createServer({ ...options, prefix: '/broadcast', bus });
  broadcast.on('connection', (conn) => {
    conn.write(`worker ${id}`);
    conn.on('data', (message) => broadcast.broadcast(message));
  });
  broadcast.attach(httpServer);

  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      // Sessions get 1001 "Server shutting down"; then the bus ends its Redis connections.
      for (const server of [echo, whoami, broadcast]) server.close();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(() => resolve()));
      await bus.close();
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

  bus.ready().then(
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
