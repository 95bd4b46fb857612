/**
 * Test fixtures: an HTTP server on 127.0.0.1, an ephemeral port, with a SockJS echo service.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'http';
import type { AddressInfo } from 'net';
import { type Connection, createServer, type Server, type ServerOptions } from '../../lib';

export interface Running {
  readonly http: HttpServer;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function listen(http: HttpServer): Promise<Running> {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    http,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

export function echo(connection: Connection): void {
  connection.on('data', (message: string) => connection.write(message));
}

export interface EchoServer extends Running {
  readonly sockjs: Server;
  /** Every connection opened so far, in order. */
  readonly connections: Connection[];
  /** `METHOD url` of every request the SockJS server has handled, in order. */
  readonly requests: string[];
}

/** `/echo` echoes; `/close` closes every session at once with 3000 "Go away!". */
export async function echoServer(options: ServerOptions = {}): Promise<EchoServer> {
  const http = createHttpServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('not sockjs');
  });
  const sockjs = createServer({ log: () => undefined, ...options });
  const connections: Connection[] = [];
  sockjs.on('connection', (connection: Connection) => {
    connections.push(connection);
    if (connection.prefix === '/close') connection.close(3000, 'Go away!');
    else echo(connection);
  });
  sockjs.installHandlers(http, { prefix: '/echo', response_limit: 4096 });
  sockjs.installHandlers(http, { prefix: '/close' });
  // Listeners added after the SockJS server run after it, so a request seen here has been handled.
  const requests: string[] = [];
  http.on('request', (req: IncomingMessage) => requests.push(`${req.method} ${req.url}`));
  http.on('upgrade', (req: IncomingMessage) => requests.push(`${req.method} ${req.url}`));
  const running = await listen(http);
  return {
    ...running,
    sockjs,
    connections,
    requests,
    close: async () => {
      sockjs.close();
      await running.close();
    },
  };
}

/** Resolves once `condition` holds, polling; fails after `timeoutMs`. */
export async function eventually(condition: () => boolean, timeoutMs = 2000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
