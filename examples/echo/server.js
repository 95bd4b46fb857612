'use strict';
/**
 * An echo service and a page to try it from, with any transport.
 *
 *   npm start                                  # http://127.0.0.1:9999/
 *   HOST=0.0.0.0 PORT=8000 node examples/echo/server.js
 *
 * The page loads sockjs-client from this server, never from a CDN, and so does the iframe the
 * iframe-* transports open. GET /metrics answers the server's metrics in Prometheus's text format
 * when prom-client is installed (it is in this repository).
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const sockjs = require('../..');
const prometheus = optional(() => ({ Registry: require('prom-client').Registry, ...require('sockjs-rx/prometheus') }));

const PAGE_FILE = path.join(__dirname, 'index.html');
const CLIENT_FILE = require.resolve('sockjs-client/dist/sockjs.min.js');

const STATIC = {
  '/': { file: PAGE_FILE, type: 'text/html; charset=UTF-8' },
  '/index.html': { file: PAGE_FILE, type: 'text/html; charset=UTF-8' },
  '/sockjs.min.js': { file: CLIENT_FILE, type: 'application/javascript; charset=UTF-8' },
};

function serveStatic(req, res) {
  const entry = req.method === 'GET' || req.method === 'HEAD' ? STATIC[(req.url ?? '/').split('?')[0]] : undefined;
  if (!entry) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
    res.end('404 Error: Page not found\n');
    return;
  }
  fs.readFile(entry.file, (error, body) => {
    if (error) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`${error.message}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': entry.type, 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

/** What `load` returns, or null when a module it requires is not installed. */
function optional(load) {
  try {
    return load();
  } catch (error) {
    if (error.code === 'MODULE_NOT_FOUND') return null;
    throw error;
  }
}

function serveMetrics(registry, res) {
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-cache' });
      res.end(text);
    },
    (error) => {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`${error.message}\n`);
    },
  );
}

/**
 * Starts the echo server.
 *
 * @param {object} [options]
 * @param {number} [options.port] default 9999; 0 picks a free port
 * @param {string} [options.host] default 127.0.0.1
 * @param {(severity: string, message: string) => void} [options.log] default: silent
 * @returns {Promise<{ url: string, port: number, close(): Promise<void> }>}
 */
function start(options = {}) {
  const port = options.port ?? 9999;
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});

  // `sockjs_url` is relative: the iframe page is served by this server, on whatever host it was reached by.
  const echo = sockjs.createServer({ prefix: '/echo', sockjs_url: '/sockjs.min.js', log });
  echo.on('connection', (connection) => {
    connection.on('data', (message) => connection.write(message));
  });
  // A registry of each start's own, so that several echo servers can run in one process.
  const registry = prometheus && new prometheus.Registry();
  if (registry) prometheus.registerMetrics(echo, { registry });

  const server = http.createServer((req, res) => {
    if (registry && req.method === 'GET' && (req.url ?? '/').split('?')[0] === '/metrics') serveMetrics(registry, res);
    else serveStatic(req, res);
  });
  echo.attach(server);

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      let closing = null;
      resolve({
        url: `http://${shown}:${address.port}/`,
        port: address.port,
        close() {
          closing ??= new Promise((done) => {
            // Closes every session with 1001, so open pages see the server go.
            echo.close();
            server.close(() => done());
            // Streaming responses and websockets would otherwise keep the server open.
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

module.exports = { start };

if (require.main === module) {
  const port = process.env.PORT === undefined ? 9999 : Number(process.env.PORT);
  const host = process.env.HOST || '127.0.0.1';
  start({ port, host }).then(
    (running) => {
      console.log(`SockJS echo example: open ${running.url}`);
      const stop = () => {
        running.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (error) => {
      console.error(`cannot listen on ${host}:${port}: ${error.message}`);
      process.exit(1);
    },
  );
}
