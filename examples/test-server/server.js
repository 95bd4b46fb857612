'use strict';
/**
 * The standard SockJS test server (PROTOCOL.md section 1): the services the official protocol
 * suite and sockjs-client's own tests expect.
 *
 *   node examples/test-server/server.js          # http://127.0.0.1:8081
 *   HOST=0.0.0.0 PORT=9000 node examples/test-server/server.js
 *
 * Tests import `start()` and listen on port 0.
 */
const fs = require('fs');
const http = require('http');
const sockjs = require('../..');

/** sockjs-client served by this server, so that the iframe transports need no CDN. */
const CLIENT_PATH = '/sockjs.min.js';
const CLIENT_FILE = require.resolve('sockjs-client/dist/sockjs.min.js');

/** Writes every message back on the same connection. */
function echo(connection) {
  connection.on('data', (message) => connection.write(message));
}

/** Closes every session as soon as it opens. */
function close(connection) {
  connection.close(3000, 'Go away!');
}

/** Sends `tick!` every second while the connection is open. */
function ticker(connection) {
  const timer = setInterval(() => connection.write('tick!'), 1000);
  connection.on('close', () => clearInterval(timer));
}

/** Answers a number n (1 ≤ n ≤ 18, anything else means 1) with 2^n `x` characters. */
function amplify(connection) {
  connection.on('data', (message) => {
    let n = Number.parseInt(message, 10);
    if (!(n >= 1 && n <= 18)) n = 1;
    connection.write('x'.repeat(2 ** n));
  });
}

/** Sends every message to every open connection of the service; one set per server started. */
function broadcaster() {
  const open = new Set();
  return (connection) => {
    open.add(connection);
    connection.on('data', (message) => {
      for (const peer of open) peer.write(message);
    });
    connection.on('close', () => open.delete(connection));
  };
}

/** The services, their options beyond the defaults, and what each does with a new connection. */
function services() {
  return [
    { prefix: '/echo', options: { response_limit: 4096 }, handle: echo },
    { prefix: '/close', options: {}, handle: close },
    { prefix: '/disabled_websocket_echo', options: { websocket: false }, handle: echo },
    { prefix: '/cookie_needed_echo', options: { jsessionid: true }, handle: echo },
    { prefix: '/ticker', options: {}, handle: ticker },
    { prefix: '/amplify', options: {}, handle: amplify },
    { prefix: '/broadcast', options: {}, handle: broadcaster() },
  ];
}

/**
 * Starts the test server.
 *
 * @param {object} [options]
 * @param {number} [options.port] default 8081; 0 picks a free port
 * @param {string} [options.host] default 127.0.0.1
 * @param {'new' | 'old'} [options.api] `old`: one `createServer()` and `installHandlers(http, {prefix})`
 *   per service, as sockjs 0.3 applications do; `new` (default): one `createServer({prefix})` per
 *   service and `attach(http)`
 * @param {(severity: string, message: string) => void} [options.log] default: silent
 * @param {(prefix: string, connection: object) => void} [options.onConnection] called with every
 *   new connection, after the service has taken it
 * @param {(req: http.IncomingMessage, res: http.ServerResponse) => void} [options.handler] answers
 *   requests outside the services (default: 404); `/sockjs.min.js` is always served
 * @returns {Promise<{ url: string, port: number, close(): Promise<void> }>}
 */
function start(options = {}) {
  const port = options.port ?? 8081;
  const host = options.host ?? '127.0.0.1';
  const api = options.api ?? 'new';
  const log = options.log ?? (() => {});
  const onConnection = options.onConnection ?? (() => {});
  const handler = options.handler ?? notFound;

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === CLIENT_PATH) serveClient(res);
    else handler(req, res);
  });
  // The iframe page loads the client from the page's own server, whatever host name it was reached by.
  // The protocol suite still checks the hixie-76 handshake that HAProxy relays, so it is on here.
  const shared = { sockjs_url: CLIENT_PATH, log, hixie76: true };
  const table = services();
  const sockjsServers = [];
  const accept = (service, connection) => {
    service.handle(connection);
    onConnection(service.prefix, connection);
  };

  if (api === 'old') {
    const sockjsServer = sockjs.createServer(shared);
    const byPrefix = new Map(table.map((service) => [service.prefix, service]));
    sockjsServer.on('connection', (connection) => {
      const service = byPrefix.get(connection.prefix);
      if (service) accept(service, connection);
    });
    for (const service of table) sockjsServer.installHandlers(server, { prefix: service.prefix, ...service.options });
    sockjsServers.push(sockjsServer);
  } else if (api === 'new') {
    for (const service of table) {
      const sockjsServer = sockjs.createServer({ ...shared, prefix: service.prefix, ...service.options });
      sockjsServer.on('connection', (connection) => accept(service, connection));
      sockjsServer.attach(server);
      sockjsServers.push(sockjsServer);
    }
  } else {
    return Promise.reject(new TypeError(`api must be 'new' or 'old', not ${JSON.stringify(api)}`));
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      let closing = null;
      resolve({
        url: `http://${shown}:${address.port}`,
        port: address.port,
        close() {
          closing ??= new Promise((done) => {
            // Closing a SockJS server closes its sessions (1001), so each service sees its connections close.
            for (const sockjsServer of sockjsServers) sockjsServer.close();
            // Streaming responses and websockets would otherwise hold `close` open.
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

function serveClient(res) {
  fs.readFile(CLIENT_FILE, (error, body) => {
    if (error) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`${error.message}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/javascript; charset=UTF-8', 'Cache-Control': 'public, max-age=3600' });
    res.end(body);
  });
}

function notFound(_req, res) {
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
  res.end('404 Error: Page not found\n');
}

module.exports = { start, CLIENT_PATH };

if (require.main === module) {
  const port = process.env.PORT === undefined ? 8081 : Number(process.env.PORT);
  const host = process.env.HOST || '127.0.0.1';
  const verbose = process.env.VERBOSE === '1';
  const log = verbose ? (severity, message) => console.log(`[${severity}] ${message}`) : undefined;
  start({ port, host, log }).then(
    (running) => {
      console.log(`SockJS test server on ${running.url} (services: ${services().map((s) => s.prefix).join(' ')})`);
      const stop = () => {
        running.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
