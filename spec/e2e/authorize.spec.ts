/**
 * End to end with the real sockjs-client, one transport forced at a time, in Node (its Node
 * transports) and in Chromium (Debian's, at /usr/bin/chromium, driven by playwright-core; every
 * transport sockjs-client offers in a browser, the page and the service on one origin):
 *
 * - `authorize` reading a token from the query string of the SockJS URL, which sockjs-client
 *   repeats on every request: a good token opens a session whose Connection carries what
 *   `authorize` returned, asked once however many requests the session makes, a token that needs
 *   escaping in a URL included; a bad token never opens one.
 * - `rate_limit`: a burst over it closes the session with 1008 "Rate limit exceeded" under policy
 *   `close`, and is cut down to what the bucket allows under policy `drop`, the session going on.
 *
 * Each test has a server of its own on 127.0.0.1, port 0. Without /usr/bin/chromium the Chromium
 * part is skipped with one line, unless CI=true, where it fails.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'http';
import type { BrowserContext, Page } from 'playwright-core';
import { type Connection, createServer, type PrefixMetrics, refuse, type Server, type ServerOptions } from '../../lib';
import { call, type Chromium, chromiumSkipped, harnessCall, launchChromium, servePage } from '../helpers/chromium';
import { waitUntil } from '../helpers/debian-tools';
import { Outcomes } from '../helpers/outcomes';
import { listen } from '../helpers/server';
import { BROWSER_TRANSPORTS, NODE_TRANSPORTS, SockJS, type SockJSClient } from '../helpers/sockjs-client';

/** The bound of every wait on a client or the server: above sockjs-client's transport timeout and an iframe's start-up. */
const WAIT_MS = 15_000;
/** Jest's bound per test, above every wait it contains. */
const TEST_MS = 60_000;

/** The service's timers, short so that closed sessions go away quickly. */
const HEARTBEAT_DELAY = 2000;
const DISCONNECT_DELAY = 2000;
/** Small enough that the streaming transports reconnect several times during the echo test. */
const RESPONSE_LIMIT = 4096;

/** The echo test: sequential round trips, each message big enough to fill streams fast. */
const ECHO_COUNT = 20;
const ECHO_SIZE = 600;

/** The rate limit of the rate tests, and the burst sent at it. */
const LIMIT = { messages: 5, burst: 1 } as const;
const BURST = 40;

/** The last segment of a session URL, `/echo/<server>/<session>/<kind>`. */
const SESSION_URL = /^\/echo\/([^/?]+)\/([^/?]+)\/([a-z_]+)(?:\?|$)/;
const RECEIVING_KINDS = ['websocket', 'xhr', 'xhr_streaming', 'eventsource', 'htmlfile', 'jsonp'];
const SENDING_KINDS = ['xhr_send', 'jsonp_send'];

/** A user name whose token needs escaping: non-ASCII, a space, `+`, quotes, `/`, `%`, `&`, `=` and angle brackets. */
const ESCAPED_NAME = 'zo\u00eb a+b\'s/%2F&x="<>"';

interface User {
  readonly user: string;
}

/** One call of `authorize`: the transport the server was asked about and the token it was shown. */
interface Asked {
  readonly transport: string;
  readonly token: string | null;
}

/** A request of a session as the HTTP server saw it, with the status it was answered with once it ended. */
interface SessionRequest {
  readonly session: string;
  readonly kind: string;
  readonly token: string | null;
  /** Null while the response has not ended, and for a websocket handshake. */
  status: number | null;
}

/** A server-side connection of the service and what its application read. */
interface Tracked {
  readonly connection: Connection<User>;
  readonly received: string[];
}

interface Service {
  readonly url: string;
  readonly sockjs: Server<User>;
  readonly asked: Asked[];
  readonly connections: Tracked[];
  readonly requests: SessionRequest[];
  metrics(): PrefixMetrics;
  close(): Promise<void>;
}

/** The page sockjs-client runs in: a small API over the clients it opens. */
const HARNESS_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>sockjs-rx authorize tests</title>
<script src="/sockjs.min.js"></script></head>
<body><p>sockjs-rx authorize tests</p><script>
'use strict';
(function () {
  var clients = [];
  window.harness = {
    open: function (url, transport) {
      var c = { received: [], openedWith: null, closeEvent: null };
      var sock = c.sock = new SockJS(url, null, { transports: [transport] });
      sock.onopen = function () { c.openedWith = sock.transport; };
      sock.onmessage = function (e) { c.received.push(e.data); };
      sock.onclose = function (e) { c.closeEvent = { code: e.code, reason: e.reason }; };
      clients.push(c);
      return clients.length - 1;
    },
    state: function (id) {
      var c = clients[id];
      return { openedWith: c.openedWith, closeEvent: c.closeEvent, received: c.received.length, readyState: c.sock.readyState };
    },
    opened: function (id) { return clients[id].openedWith !== null || clients[id].closeEvent !== null; },
    holds: function (id, count) { return clients[id].received.length >= count || clients[id].closeEvent !== null; },
    closed: function (id) { return clients[id].closeEvent !== null; },
    received: function (id, count) { return clients[id].received.slice(0, count); },
    send: function (id, messages) {
      var sock = clients[id].sock;
      messages.forEach(function (m) { sock.send(m); });
    },
    closeAll: function () {
      clients.forEach(function (c) { if (c.closeEvent === null && c.sock.readyState < 2) c.sock.close(); });
    },
    allClosed: function () { return clients.every(function (c) { return c.closeEvent !== null; }); }
  };
})();
</script></body></html>
`;

/** Serves the test page and sockjs-client: every request outside the SockJS prefix. */
const serveHarness = servePage(HARNESS_PAGE);

/**
 * An echo service at `/echo` on a server of its own. With `authorized`, `authorize` allows a
 * token `good-<name>` as `{ user: <name> }` and refuses any other with 403 "Unknown token.",
 * answering on a later tick as a lookup would.
 */
async function startService(options: { authorized?: boolean; rate_limit?: ServerOptions['rate_limit'] }): Promise<Service> {
  const asked: Asked[] = [];
  const connections: Tracked[] = [];
  const requests: SessionRequest[] = [];
  const sockjs = createServer<User>({
    prefix: '/echo',
    sockjs_url: '/sockjs.min.js',
    response_limit: RESPONSE_LIMIT,
    heartbeat_delay: HEARTBEAT_DELAY,
    disconnect_delay: DISCONNECT_DELAY,
    log: () => undefined,
    rate_limit: options.rate_limit,
    authorize: options.authorized
      ? async ({ query, transport }) => {
          const token = query.get('token');
          asked.push({ transport, token });
          await new Promise((resolve) => setImmediate(resolve));
          return token?.startsWith('good-') ? { user: token.slice('good-'.length) } : refuse(403, 'Unknown token.');
        }
      : undefined,
  });
  sockjs.on('connection', (connection) => {
    const entry: Tracked = { connection, received: [] };
    connection.on('data', (message: string) => {
      entry.received.push(message);
      connection.write(message);
    });
    connections.push(entry);
  });
  const http = createHttpServer(serveHarness);
  sockjs.attach(http);
  // Listeners added after the SockJS server's run after it: every session request is seen here.
  const track = (req: IncomingMessage, res?: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = SESSION_URL.exec(url.pathname);
    if (!match) return;
    const request: SessionRequest = { session: `${match[1]}/${match[2]}`, kind: match[3]!, token: url.searchParams.get('token'), status: null };
    requests.push(request);
    res?.on('close', () => (request.status = res.statusCode));
  };
  http.on('request', track);
  http.on('upgrade', (req: IncomingMessage) => track(req));
  const running = await listen(http);
  return {
    url: running.url,
    sockjs,
    asked,
    connections,
    requests,
    metrics: () => sockjs.metrics().prefixes['/echo']!,
    close: async () => {
      sockjs.close();
      await running.close();
    },
  };
}

/** The transport the server sees for a client transport: an iframe transport receives with the one it wraps. */
function serverTransport(transport: string): string {
  return transport.replace(/^iframe-/, '');
}

interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

interface ClientState {
  readonly openedWith: string | null;
  readonly closeEvent: CloseInfo | null;
  readonly received: number;
  readonly readyState: number;
}

/** One sockjs-client connection, in Node or in a page. */
interface Client {
  state(): Promise<ClientState>;
  /** Resolves once open; rejects if it closed first. */
  opened(): Promise<void>;
  /** The first `count` messages received; rejects if it closed with fewer. */
  receive(count: number): Promise<string[]>;
  send(messages: readonly string[]): Promise<void>;
  closed(): Promise<CloseInfo>;
}

/** Where clients are opened: sockjs-client in Node or in Chromium. */
interface Environment {
  readonly name: string;
  open(url: string, transport: string): Promise<Client>;
}

/** sockjs-client in this process. */
class NodeClient implements Client {
  readonly sock: SockJSClient;
  readonly messages: string[] = [];
  openedWith: string | null = null;
  closeEvent: CloseInfo | null = null;

  constructor(url: string, transport: string) {
    this.sock = new SockJS(url, null, { transports: [transport] });
    this.sock.onopen = () => (this.openedWith = this.sock.transport);
    this.sock.onmessage = (event) => this.messages.push(event.data);
    this.sock.onclose = (event) => (this.closeEvent = { code: event.code, reason: event.reason });
  }

  async state(): Promise<ClientState> {
    return { openedWith: this.openedWith, closeEvent: this.closeEvent, received: this.messages.length, readyState: this.sock.readyState };
  }

  async opened(): Promise<void> {
    await waitUntil(() => this.openedWith !== null || this.closeEvent !== null, 'open', WAIT_MS);
    if (this.openedWith === null) throw new Error(`closed before opening: ${JSON.stringify(this.closeEvent)}`);
  }

  async receive(count: number): Promise<string[]> {
    await waitUntil(() => this.messages.length >= count || this.closeEvent !== null, `${count} messages`, WAIT_MS);
    if (this.messages.length < count) throw new Error(`closed after ${this.messages.length} of ${count} messages: ${JSON.stringify(this.closeEvent)}`);
    return this.messages.slice(0, count);
  }

  async send(messages: readonly string[]): Promise<void> {
    for (const message of messages) this.sock.send(message);
  }

  async closed(): Promise<CloseInfo> {
    await waitUntil(() => this.closeEvent !== null, 'close', WAIT_MS);
    return this.closeEvent!;
  }
}

/** sockjs-client in a page. */
class PageClient implements Client {
  constructor(
    readonly page: Page,
    readonly id: number,
    readonly pageErrors: readonly string[],
  ) {}

  state(): Promise<ClientState> {
    return call<ClientState>(this.page, 'state', this.id);
  }

  /** Waits, at most WAIT_MS, until `method` of the harness holds; a timeout names what was awaited. */
  async until(method: string, what: string, ...args: readonly unknown[]): Promise<void> {
    try {
      await this.page.waitForFunction(harnessCall(method, [this.id, ...args]), undefined, { timeout: WAIT_MS, polling: 10 });
    } catch (error) {
      const errors = this.pageErrors.length > 0 ? `; page errors: ${this.pageErrors.join(' | ')}` : '';
      throw new Error(`${String(error)}\nwhile waiting for ${what}; client: ${JSON.stringify(await this.state())}${errors}`);
    }
  }

  async opened(): Promise<void> {
    await this.until('opened', 'open');
    const state = await this.state();
    if (state.openedWith === null) throw new Error(`closed before opening: ${JSON.stringify(state.closeEvent)}`);
  }

  async receive(count: number): Promise<string[]> {
    await this.until('holds', `${count} messages`, count);
    const state = await this.state();
    if (state.received < count) throw new Error(`closed after ${state.received} of ${count} messages: ${JSON.stringify(state.closeEvent)}`);
    return call<string[]>(this.page, 'received', this.id, count);
  }

  send(messages: readonly string[]): Promise<void> {
    return call<void>(this.page, 'send', this.id, messages);
  }

  async closed(): Promise<CloseInfo> {
    await this.until('closed', 'close');
    return (await this.state()).closeEvent!;
  }
}

/** Whether `part` is `whole` with some elements left out, in the same order. */
function isSubsequence(part: readonly string[], whole: readonly string[]): boolean {
  let at = 0;
  for (const item of part) {
    while (at < whole.length && whole[at] !== item) at++;
    if (at === whole.length) return false;
    at++;
  }
  return true;
}

/** The most messages the bucket of LIMIT lets through in `ms` milliseconds from a full start. */
function allowedWithin(ms: number): number {
  return LIMIT.messages * LIMIT.burst + Math.floor((LIMIT.messages * ms) / 1000);
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The table's columns; a bad token's cell is the close the client reported rather than 'pass'.
const CHECKS = ['good token', 'escaped token', 'bad token', 'rate close', 'rate drop'] as const;
type Check = (typeof CHECKS)[number];
const outcomes = new Outcomes('authorize and rate_limit with sockjs-client, per transport:', CHECKS);

/**
 * The tests of one transport in one environment. `start` starts a service that the environment's
 * afterEach closes.
 */
function transportTests(environment: () => Environment, start: typeof startService, transport: string): void {
  const check = (name: Check, title: string, body: () => Promise<string | void>) => {
    test(
      title,
      async () => {
        const env = environment();
        outcomes.record(env.name, transport, name, 'FAIL');
        const outcome = await body();
        outcomes.record(env.name, transport, name, outcome ?? 'pass');
      },
      TEST_MS,
    );
  };

  check('good token', 'opens with a good token, echoes through many requests, and keeps what authorize returned, asking once', async () => {
    const service = await start({ authorized: true });
    const client = await environment().open(`${service.url}/echo?token=good-ann`, transport);
    await client.opened();
    expect((await client.state()).openedWith).toBe(transport);

    // One message at a time: every poll and every send is a request of its own.
    const sent = Array.from({ length: ECHO_COUNT }, (_, i) => `message ${i} `.padEnd(ECHO_SIZE, '.'));
    for (let i = 0; i < sent.length; i++) {
      await client.send([sent[i]!]);
      await client.receive(i + 1);
    }
    expect(await client.receive(sent.length)).toEqual(sent);

    expect(service.connections).toHaveLength(1);
    const [entry] = service.connections;
    expect(entry!.connection.auth).toEqual({ user: 'ann' });
    expect(entry!.received).toEqual(sent);
    expect(service.asked).toEqual([{ transport: serverTransport(transport), token: 'good-ann' }]);

    // Every request of the session carried the token and none was refused.
    const requests = service.requests;
    expect(new Set(requests.map((r) => r.session)).size).toBe(1);
    expect(requests.filter((r) => r.token !== 'good-ann')).toEqual([]);
    expect(requests.filter((r) => r.status !== null && r.status >= 400)).toEqual([]);
    const receiving = requests.filter((r) => RECEIVING_KINDS.includes(r.kind));
    const sending = requests.filter((r) => SENDING_KINDS.includes(r.kind));
    if (transport === 'websocket') {
      expect(receiving.map((r) => r.kind)).toEqual(['websocket']);
      expect(sending).toEqual([]);
    } else {
      // Polls return with each echo; streams end past RESPONSE_LIMIT and are opened again.
      expect(receiving.length).toBeGreaterThanOrEqual(3);
      expect(sending).toHaveLength(sent.length);
    }
    expect(service.metrics().refused.authorization).toBe(0);
    return `pass (${receiving.length} receiving requests)`;
  });

  check('escaped token', 'opens with a token that must be escaped in a URL, and every request of the session carries it intact', async () => {
    const service = await start({ authorized: true });
    const token = `good-${ESCAPED_NAME}`;
    const client = await environment().open(`${service.url}/echo?token=${encodeURIComponent(token)}`, transport);
    await client.opened();
    const sent = Array.from({ length: 8 }, (_, i) => `message ${i} `.padEnd(1000, '.'));
    for (let i = 0; i < sent.length; i++) {
      await client.send([sent[i]!]);
      await client.receive(i + 1);
    }
    expect(await client.receive(sent.length)).toEqual(sent);
    expect(service.connections.map((c) => c.connection.auth)).toEqual([{ user: ESCAPED_NAME }]);
    expect(service.asked).toEqual([{ transport: serverTransport(transport), token }]);
    expect(service.requests.filter((r) => r.token !== token)).toEqual([]);
    expect(service.requests.filter((r) => r.status !== null && r.status >= 400)).toEqual([]);
    const receiving = service.requests.filter((r) => RECEIVING_KINDS.includes(r.kind));
    expect(receiving.length).toBeGreaterThanOrEqual(transport === 'websocket' ? 1 : 2);
  });

  check('bad token', 'never opens with a bad token, and the server opens no session and emits no connection', async () => {
    const service = await start({ authorized: true });
    const client = await environment().open(`${service.url}/echo?token=bad-eve`, transport);
    const why = await client.closed();
    const state = await client.state();
    expect(state.openedWith).toBeNull();
    expect(state.received).toBe(0);

    expect(service.connections).toEqual([]);
    expect(service.sockjs.sessionCount).toBe(0);
    expect(service.asked.length).toBeGreaterThanOrEqual(1);
    expect(service.asked.filter((a) => a.transport !== serverTransport(transport) || a.token !== 'bad-eve')).toEqual([]);
    // Each request asked about was refused, and nothing else was.
    const metrics = service.metrics();
    expect(metrics.refused.authorization).toBeGreaterThanOrEqual(1);
    expect(metrics.refused.authorization).toBe(service.asked.length);
    expect(metrics.sessionsOpened).toEqual({});
    const answered = service.requests.filter((r) => r.status !== null);
    expect(answered.filter((r) => r.status !== 403)).toEqual([]);
    if (transport !== 'websocket') expect(answered.length).toBeGreaterThanOrEqual(1);
    // sockjs-client gives up on its only transport.
    expect(why).toEqual({ code: 2000, reason: 'All transports failed' });
    return `${why.code} ${why.reason}`;
  });

  check('rate close', 'closes the client with 1008 "Rate limit exceeded" after a burst over the limit under policy close', async () => {
    const service = await start({ rate_limit: { ...LIMIT, policy: 'close' } });
    const opening = Date.now();
    const client = await environment().open(`${service.url}/echo`, transport);
    await client.opened();
    const sent = Array.from({ length: BURST }, (_, i) => `burst ${i}`);
    await client.send(sent);
    const why = await client.closed();
    const elapsed = Date.now() - opening;
    expect(why).toEqual({ code: 1008, reason: 'Rate limit exceeded' });

    expect(service.connections).toHaveLength(1);
    const [entry] = service.connections;
    // The application read the first messages, as many as fit, and nothing after them.
    expect(entry!.received).toEqual(sent.slice(0, entry!.received.length));
    expect(entry!.received.length).toBeGreaterThanOrEqual(LIMIT.messages * LIMIT.burst);
    expect(entry!.received.length).toBeLessThanOrEqual(allowedWithin(elapsed));
    expect(entry!.connection.readyState).toBe(3);
    expect(service.metrics().refused.rate).toBeGreaterThanOrEqual(1);
  });

  check('rate drop', 'lets through at most what the bucket allows of a burst under policy drop, and the session goes on', async () => {
    const service = await start({ rate_limit: { ...LIMIT, policy: 'drop' } });
    const opening = Date.now();
    const client = await environment().open(`${service.url}/echo`, transport);
    await client.opened();
    const sent = Array.from({ length: BURST }, (_, i) => `burst ${i}`);
    await client.send(sent);
    await waitUntil(
      () => service.metrics().messagesReceived + service.metrics().refused.rate >= BURST,
      `the server to take or refuse all ${BURST} messages`,
      WAIT_MS,
    );
    const elapsed = Date.now() - opening;

    expect(service.connections).toHaveLength(1);
    const [entry] = service.connections;
    const taken = [...entry!.received];
    expect(taken.slice(0, LIMIT.messages * LIMIT.burst)).toEqual(sent.slice(0, LIMIT.messages * LIMIT.burst));
    expect(isSubsequence(taken, sent)).toBe(true);
    expect(taken.length).toBeLessThanOrEqual(allowedWithin(elapsed));
    const metrics = service.metrics();
    expect(metrics.messagesReceived).toBe(taken.length);
    expect(metrics.refused.rate).toBe(BURST - taken.length);
    expect(metrics.messagesDropped).toBe(BURST - taken.length);
    expect(await client.receive(taken.length)).toEqual(taken);

    // Once the bucket has refilled, the same session carries a message both ways.
    await delay(Math.ceil(1000 / LIMIT.messages) * 2);
    await client.send(['after the burst']);
    expect((await client.receive(taken.length + 1))[taken.length]).toBe('after the burst');
    expect((await client.state()).closeEvent).toBeNull();
    expect(entry!.connection.readyState).toBe(1);
    expect(service.sockjs.sessionCount).toBe(1);
    return `pass (${taken.length} of ${BURST} in ${elapsed} ms)`;
  });
}

describe('authorize and rate_limit with sockjs-client in Node', () => {
  const clients: NodeClient[] = [];
  const services: Service[] = [];
  const environment: Environment = {
    name: 'node',
    open: async (url, transport) => {
      const client = new NodeClient(url, transport);
      clients.push(client);
      return client;
    },
  };
  const start: typeof startService = async (options) => {
    const service = await startService(options);
    services.push(service);
    return service;
  };

  afterEach(async () => {
    const open = clients.splice(0);
    for (const client of open) if (client.closeEvent === null) client.sock.close();
    try {
      await waitUntil(() => open.every((c) => c.closeEvent !== null), 'every client of the test to close', WAIT_MS);
    } finally {
      for (const service of services.splice(0)) await service.close();
    }
  }, TEST_MS);

  describe.each(NODE_TRANSPORTS)('over %s', (transport) => {
    transportTests(() => environment, start, transport);
  });
});

const skipped = chromiumSkipped('authorize suite in Chromium');

(skipped ? describe.skip : describe)('authorize and rate_limit with sockjs-client in Chromium', () => {
  let browser: Chromium | undefined;
  let context: BrowserContext;
  const pages: Page[] = [];
  const services: Service[] = [];
  const environment: Environment = {
    name: 'chromium',
    // A page of the service's own origin, where sockjs-client offers every transport.
    open: async (url, transport) => {
      const page = await context.newPage();
      pages.push(page);
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${new URL(url).origin}/`, { timeout: WAIT_MS });
      return new PageClient(page, await call<number>(page, 'open', url, transport), pageErrors);
    },
  };
  const start: typeof startService = async (options) => {
    const service = await startService(options);
    services.push(service);
    return service;
  };

  beforeAll(async () => {
    browser = await launchChromium();
    context = browser.context;
  }, TEST_MS);

  // Closing the page also ends what sockjs-client cannot: a jsonp-polling poll it has let go of.
  afterEach(async () => {
    try {
      for (const page of pages.splice(0)) {
        await call<void>(page, 'closeAll');
        await page.waitForFunction('window.harness.allClosed()', undefined, { timeout: WAIT_MS, polling: 10 });
        await page.close();
      }
    } finally {
      for (const service of services.splice(0)) await service.close();
    }
  }, TEST_MS);

  afterAll(async () => {
    await browser?.close();
  }, TEST_MS);

  describe.each(BROWSER_TRANSPORTS)('over %s', (transport) => {
    transportTests(() => environment, start, transport);
  });
});

afterAll(() => {
  console.log(outcomes.table());
});
