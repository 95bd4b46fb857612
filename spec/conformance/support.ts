/**
 * The harness of the protocol conformance suite: the standard test server on 127.0.0.1, port 0,
 * built with either API, and clients that talk to it the way the official `sockjs-protocol.py`
 * does: HTTP/1.0 and 1.1 written by hand over `net` and read one HTTP chunk at a time, `ws` for
 * RFC 6455, and a raw socket for the hixie-76 handshake.
 */
import { randomUUID } from 'crypto';
import http, { type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'http';
import { connect, type Socket } from 'net';
import type { Duplex } from 'stream';
import WebSocket from 'ws';
import { RawResponse } from '../helpers/raw-http';
import { eventually } from '../helpers/server';

/**
 * The official suite's HTTP client gives up on every read after one second, so every frame it
 * waits for must be written within a second of what causes it (PROTOCOL.md section 1).
 */
export const SUITE_WAIT_MS = 1000;

export const APIS = ['new', 'old'] as const;
export type Api = (typeof APIS)[number];

interface RunningTestServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface TestServerModule {
  start(options: { port: number; host: string; api: Api }): Promise<RunningTestServer>;
}

const testServer: TestServerModule = require('../../examples/test-server/server');

export interface Reply {
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly version?: '1.0' | '1.1';
}

/** A request the server has taken, as seen by a `request` or `upgrade` listener after its own. */
export interface Handled {
  readonly method: string;
  readonly url: string;
  /** Settles when the server sees that request's connection close. */
  readonly closed: Promise<void>;
}

export interface WsClient {
  readonly ws: WebSocket;
  /** The next text message, within `timeoutMs`. */
  next(timeoutMs?: number): Promise<string>;
  /** Settles with the close code and reason once the connection is closed. */
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>;
}

/** Rejects when `promise` has not settled within `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The request as the suite's `httplib` client writes it: the Host with its port, and a
 * Content-Length on every POST, even an empty one.
 */
export function requestText(port: number, method: string, path: string, options: RequestOptions = {}): string {
  const { headers = {}, body, version = '1.1' } = options;
  const lines = [`${method} ${path} HTTP/${version}`, `Host: 127.0.0.1:${port}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined || method === 'POST') lines.push(`Content-Length: ${Buffer.byteLength(body ?? '')}`);
  return lines.join('\r\n') + '\r\n\r\n' + (body ?? '');
}

export interface ResponseHead {
  readonly version: string;
  readonly status: number;
  /** Header names lower-cased; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * One TCP connection read as bytes, for what RawResponse cannot do: several requests on one
 * socket, an unchunked body read by length, and the bytes after a hixie-76 handshake.
 */
export class RawConnection {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#wake();
    });
    const end = () => {
      this.#ended = true;
      this.#wake();
    };
    this.socket.on('close', end);
    this.socket.on('error', end);
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads a status line and headers, leaving what follows them unread. */
  async head(timeoutMs = SUITE_WAIT_MS): Promise<ResponseHead> {
    await this.#until(() => this.#buffer.includes('\r\n\r\n') || this.#ended, timeoutMs, 'a response head');
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end === -1) throw new Error('the connection closed before a response head');
    const [statusLine = '', ...lines] = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
    this.#buffer = this.#buffer.subarray(end + 4);
    const [protocol = '', status = ''] = statusLine.split(' ');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    return { version: protocol.replace('HTTP/', ''), status: Number(status), headers };
  }

  /** Exactly `n` bytes. */
  async read(n: number, timeoutMs = SUITE_WAIT_MS): Promise<Buffer> {
    await this.#until(() => this.#buffer.length >= n || this.#ended, timeoutMs, `${n} bytes`);
    if (this.#buffer.length < n) throw new Error(`the connection closed after ${this.#buffer.length} of ${n} bytes`);
    const bytes = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return bytes;
  }

  /** One HTTP chunk as text; null for the terminating zero-length chunk. */
  async readChunk(timeoutMs = SUITE_WAIT_MS): Promise<string | null> {
    const sizeLine = (await this.#line(timeoutMs)).toString('latin1');
    const size = Number.parseInt(sizeLine, 16);
    if (!Number.isInteger(size)) throw new Error(`not a chunk size: ${JSON.stringify(sizeLine)}`);
    const data = await this.read(size + 2, timeoutMs);
    return size === 0 ? null : data.subarray(0, size).toString('utf8');
  }

  /** Bytes received and not read yet. */
  get unread(): Buffer {
    return this.#buffer;
  }

  /** Settles once the server has closed the connection. */
  async closed(timeoutMs = SUITE_WAIT_MS): Promise<void> {
    await this.#until(() => this.#ended, timeoutMs, 'the connection to close');
  }

  destroy(): void {
    this.socket.destroy();
  }

  async #line(timeoutMs: number): Promise<Buffer> {
    await this.#until(() => this.#buffer.includes('\r\n') || this.#ended, timeoutMs, 'a line');
    const end = this.#buffer.indexOf('\r\n');
    if (end === -1) throw new Error('the connection closed before the end of a line');
    const line = this.#buffer.subarray(0, end);
    this.#buffer = this.#buffer.subarray(end + 2);
    return line;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return;
    await within(
      new Promise<void>((resolve) => {
        const check = () => {
          if (condition()) resolve();
          else this.#waiters.push(check);
        };
        this.#waiters.push(check);
      }),
      timeoutMs,
      what,
    );
  }
}

/** Opens a websocket with `ws` and queues what arrives. */
export async function openWebsocket(url: string, options: WebSocket.ClientOptions = {}): Promise<WsClient> {
  const ws = new WebSocket(url, options);
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data: WebSocket.RawData) => {
    queue.push((Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8'));
    wake?.();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code: number, reason: Buffer) => {
      resolve({ code, reason: reason.toString('utf8') });
      wake?.();
    });
  });
  // Errors after the handshake (a server that drops the socket) show up as the close above.
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.on('error', reject);
  });
  await within(opened, SUITE_WAIT_MS, `the websocket handshake of ${url}`);
  const next = async (timeoutMs = SUITE_WAIT_MS): Promise<string> => {
    const arrived = new Promise<void>((resolve) => {
      const check = () => {
        if (queue.length > 0 || ws.readyState === WebSocket.CLOSED) resolve();
        else wake = check;
      };
      check();
    });
    await within(arrived, timeoutMs, 'a websocket message');
    wake = null;
    const message = queue.shift();
    if (message === undefined) throw new Error('the websocket closed while a message was awaited');
    return message;
  };
  return { ws, next, closed };
}

/**
 * The standard test server with one API, started before the tests of the enclosing `describe`
 * and closed after them; every client socket a test opens is closed after that test.
 */
export class Conformance {
  readonly api: Api;
  #running: RunningTestServer | null = null;
  #handled: Handled[] = [];
  #sockets = new Set<{ destroy(): void }>();

  private constructor(api: Api) {
    this.api = api;
  }

  /** Registers the hooks that start and stop the server around the enclosing `describe`. */
  static use(api: Api): Conformance {
    const conformance = new Conformance(api);
    beforeAll(() => conformance.#start());
    afterEach(() => conformance.#destroyClients());
    afterAll(() => conformance.#stop());
    return conformance;
  }

  get port(): number {
    if (!this.#running) throw new Error('the test server is not running');
    return this.#running.port;
  }

  /** `ws://127.0.0.1:<port>` + path. */
  wsUrl(path: string): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** A request answered in full (the suite's GET, POST and OPTIONS): status, headers, body. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
    const response = this.start(method, path, options);
    try {
      const body = await response.body(SUITE_WAIT_MS);
      return { status: response.status, headers: response.headers, body };
    } finally {
      response.destroy();
    }
  }

  get(path: string, headers: Readonly<Record<string, string>> = {}): Promise<Reply> {
    return this.request('GET', path, { headers });
  }

  post(path: string, body = '', headers: Readonly<Record<string, string>> = {}): Promise<Reply> {
    return this.request('POST', path, { body, headers });
  }

  options(path: string, headers: Readonly<Record<string, string>>): Promise<Reply> {
    return this.request('OPTIONS', path, { headers });
  }

  /** Sends a request without waiting: for polls the server holds open. */
  start(method: string, path: string, options: RequestOptions = {}): RawResponse {
    const response = RawResponse.start(this.port, requestText(this.port, method, path, options));
    this.#sockets.add(response);
    return response;
  }

  /** A streaming request whose head has arrived, to be read with `nextChunk()`. */
  async stream(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    return this.start(method, path, options).head(SUITE_WAIT_MS);
  }

  /** A bare TCP connection to the server. */
  connection(): RawConnection {
    const connection = new RawConnection(this.port);
    this.#sockets.add(connection);
    return connection;
  }

  async websocket(path: string, options: WebSocket.ClientOptions = {}): Promise<WsClient> {
    const client = await openWebsocket(this.wsUrl(path), options);
    this.#sockets.add({ destroy: () => client.ws.terminate() });
    return client;
  }

  /** A mark to pass to `handled`: requests taken after it. */
  mark(): number {
    return this.#handled.length;
  }

  /**
   * Settles once the server has taken `method path` (after `mark`). Listeners added after the
   * SockJS handlers run after them, so a request seen here has reached its session: this is how
   * the suite's "0.25 s later" becomes "once the first request is attached".
   */
  async handled(mark: number, method: string, path: string): Promise<Handled> {
    let found: Handled | undefined;
    await eventually(
      () => {
        found = this.#handled.slice(mark).find((h) => h.method === method && h.url === path);
        return found !== undefined;
      },
      SUITE_WAIT_MS,
      `the server to take ${method} ${path}`,
    );
    return found!;
  }

  async #start(): Promise<void> {
    // The test server keeps its HTTP server to itself; the spy hands it to the listeners below.
    const createServer = jest.spyOn(http, 'createServer');
    let server: HttpServer | undefined;
    try {
      this.#running = await testServer.start({ port: 0, host: '127.0.0.1', api: this.api });
      server = createServer.mock.results.at(-1)?.value;
    } finally {
      createServer.mockRestore();
    }
    if (!server) throw new Error('the test server did not create an HTTP server');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#handled.push({ method: req.method ?? '', url: req.url ?? '', closed: new Promise((resolve) => res.once('close', () => resolve())) });
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      this.#handled.push({ method: req.method ?? '', url: req.url ?? '', closed: new Promise((resolve) => socket.once('close', () => resolve())) });
    });
  }

  #destroyClients(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  async #stop(): Promise<void> {
    this.#destroyClients();
    await this.#running?.close();
    this.#running = null;
  }
}

/** `/<prefix>/000/<fresh uuid>`: a new session URL, as nearly every test of the suite uses. */
export function sessionUrl(prefix: string): string {
  return `${prefix}/000/${randomUUID()}`;
}

/** Content-Type compared as the suite compares it: with every space removed. */
export function contentType(headers: Readonly<Record<string, string>>): string | undefined {
  return headers['content-type']?.replace(/ /g, '');
}

/** The suite's `verify_not_cached`. */
export function expectNotCached(headers: Readonly<Record<string, string>>): void {
  expect(headers['cache-control']).toBe('no-store, no-cache, no-transform, must-revalidate, max-age=0');
  expect(headers['expires']).toBeUndefined();
  expect(headers['last-modified']).toBeUndefined();
}

/** The suite's `verify_cors`: the Origin echoed with credentials, or `*` without them. */
export function expectCors(headers: Readonly<Record<string, string>>, origin?: string): void {
  if (origin !== undefined) {
    expect(headers['access-control-allow-origin']).toBe(origin);
    expect(headers['access-control-allow-credentials']).toBe('true');
  } else {
    expect(headers['access-control-allow-origin']).toBe('*');
    expect(headers['access-control-allow-credentials']).toBeUndefined();
  }
}

/** The "cache for a year" set: `public`, a max-age of at least 7 digits, and an Expires date. */
export function expectCachedForAYear(headers: Readonly<Record<string, string>>): void {
  expect(headers['cache-control']).toMatch(/public/);
  expect(headers['cache-control']).toMatch(/max-age=[1-9][0-9]{6}/);
  expect(headers['expires']).toBeTruthy();
}

/** The suite's `verify_options`: a preflight for each of the origins `test` and `null`. */
export async function expectPreflight(server: Conformance, path: string, methods: string): Promise<void> {
  for (const origin of ['test', 'null']) {
    const r = await server.options(path, { 'Access-Control-Request-Method': methods, Origin: origin });
    expect([200, 204]).toContain(r.status);
    expectCachedForAYear(r.headers);
    expect(Number(r.headers['access-control-max-age'])).toBeGreaterThan(1_000_000);
    for (const method of methods.split(',')) expect(r.headers['access-control-allow-methods']).toContain(method.trim());
    expect(r.body).toBe('');
    expectCors(r.headers, origin);
  }
}
