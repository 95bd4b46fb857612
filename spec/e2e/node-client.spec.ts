/**
 * End to end with the real sockjs-client in Node, against the standard test server built with
 * both APIs (`createServer({prefix}) + attach` and `createServer() + installHandlers`), one
 * transport forced at a time.
 *
 * In Node sockjs-client offers websocket (faye-websocket), xhr-streaming and xhr-polling (its
 * `http` driver) and eventsource (the `eventsource` package, a dependency of sockjs-client).
 * htmlfile, jsonp-polling and the iframe transports need a DOM; the browser suite covers them.
 */
import type { Subscription } from 'rxjs';
import type { Connection } from '../../lib';
import { Outcomes } from '../helpers/outcomes';
import { NODE_TRANSPORTS, type NodeTransport, SockJS, type SockJSClient, type SockJSCloseEvent } from '../helpers/sockjs-client';

interface RunningServer {
  readonly url: string;
  close(): Promise<void>;
}

interface TestServerModule {
  start(options: {
    port: number;
    host: string;
    api: 'new' | 'old';
    onConnection?: (prefix: string, connection: Connection) => void;
  }): Promise<RunningServer>;
}

const testServer: TestServerModule = require('../../examples/test-server/server');

const TRANSPORTS = NODE_TRANSPORTS;
type Transport = NodeTransport;
const APIS = ['new', 'old'] as const;

/** The bound of every wait: longer than disconnect_delay (5 s), shorter than the Jest timeout. */
const WAIT_MS = 10_000;

const CHECKS = ['open', 'echo x10', 'unicode', '100 KB', 'burst x500', 'server close', 'client close'] as const;
type Check = (typeof CHECKS)[number];

/**
 * Messages that transports or browsers are known to mangle. On the way out sockjs-client's
 * `escape.quote` writes every UTF-16 surrogate, paired or lone, as a `\uXXXX` escape (and
 * JSON.stringify already escapes lone ones), so lone surrogates reach the server as the same lone
 * code units; the server escapes every surrogate half again on the way back, and JSON.parse in the
 * client rebuilds exactly the string that was sent. So everything here, lone surrogates included,
 * must come back identical on every transport. The `%` cases guard eventsource, where the client
 * runs decodeURI on each event and the server must escape `%`.
 */
const UNICODE: readonly string[] = [
  'emoji 😀🎉👍🏽 and a flag 🇫🇷',
  'line separator \u2028 paragraph separator \u2029',
  'controls \u0000\u0001\u0008\t\n\r\u000b\u000c\u001b\u001f\u007f\u0080\u009f',
  'specials \ufeff \ufff0 \ufffd \ufffe \uffff',
  'zero-width \u200b\u200c\u200d\u200e\u200f\u2060\u206f',
  'lone high \ud800, lone low \udfff, reversed pair \udc00\ud800, trailing high \udbff',
  'breakers " \\ / </script> <!-- ]]> \' `',
  'percent 100% %25 %41 %E0%A4%A %',
  'combining e\u0301 a\u0308, Hebrew \u05e9\u05dc\u05d5\u05dd, CJK 中文, Devanagari \u0958',
];

/** 100 KiB of ASCII with a numbered mark every 100 characters, so a cut or a swap shows. */
const LARGE = Array.from({ length: 1024 }, (_, i) => `[${String(i).padStart(4, '0')}]`.padEnd(100, '.')).join('');

const outcomes = new Outcomes('sockjs-client in Node, per transport and check:', CHECKS, TRANSPORTS);

/** Polls `condition` until it holds; rejects, naming `what`, once `timeoutMs` have passed. */
function waitUntil(condition: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (condition()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

/** One sockjs-client connection and everything it saw. */
class Client {
  readonly sock: SockJSClient;
  readonly received: string[] = [];
  /** `sock.transport` as it was when `open` fired. */
  openedWith: string | null = null;
  closeEvent: SockJSCloseEvent | null = null;

  constructor(url: string, transport: Transport) {
    this.sock = new SockJS(url, null, { transports: [transport] });
    this.sock.onopen = () => {
      this.openedWith = this.sock.transport;
    };
    this.sock.onmessage = (event) => {
      this.received.push(event.data);
    };
    this.sock.onclose = (event) => {
      this.closeEvent = { code: event.code, reason: event.reason, wasClean: event.wasClean };
    };
  }

  async opened(): Promise<void> {
    await waitUntil(() => this.openedWith !== null || this.closeEvent !== null, 'open');
    if (this.closeEvent) throw new Error(`closed before opening: ${this.closeEvent.code} ${this.closeEvent.reason}`);
  }

  async receive(count: number): Promise<string[]> {
    await waitUntil(() => this.received.length >= count || this.closeEvent !== null, `${count} messages`);
    if (this.received.length < count) {
      throw new Error(`closed after ${this.received.length} of ${count} messages: ${this.closeEvent?.code} ${this.closeEvent?.reason}`);
    }
    return this.received.slice(0, count);
  }

  async closed(): Promise<SockJSCloseEvent> {
    await waitUntil(() => this.closeEvent !== null, 'close');
    return this.closeEvent!;
  }
}

/** A server-side connection of `/echo`, and how often it reported its end. */
interface Tracked {
  readonly connection: Connection;
  readonly received: string[];
  closeEvents: number;
  closedEmissions: number;
}

describe.each(APIS)('sockjs-client in Node against the test server built with the %s API', (api) => {
  const environment = `node, ${api} API`;
  let server: RunningServer;
  const tracked: Tracked[] = [];
  const subscriptions: Subscription[] = [];
  const clients: Client[] = [];

  const connect = (prefix: string, transport: Transport): Client => {
    const client = new Client(server.url + prefix, transport);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await testServer.start({
      port: 0,
      host: '127.0.0.1',
      api,
      onConnection: (prefix, connection) => {
        if (prefix !== '/echo') return;
        const entry: Tracked = { connection, received: [], closeEvents: 0, closedEmissions: 0 };
        connection.on('data', (message: string) => entry.received.push(message));
        connection.on('close', () => entry.closeEvents++);
        subscriptions.push(connection.closed$.subscribe(() => entry.closedEmissions++));
        tracked.push(entry);
      },
    });
  });

  afterEach(async () => {
    const open = clients.splice(0);
    for (const client of open) if (client.closeEvent === null) client.sock.close();
    await waitUntil(() => open.every((c) => c.closeEvent !== null), 'every client of the test to close');
  });

  afterAll(async () => {
    for (const subscription of subscriptions) subscription.unsubscribe();
    await server?.close();
  });

  /** A test whose outcome goes into the results table. */
  const check = (transport: Transport, name: Check, title: string, body: () => Promise<void>) => {
    test(title, async () => {
      outcomes.record(environment, transport, name, 'FAIL');
      await body();
      outcomes.record(environment, transport, name, 'pass');
    });
  };

  describe.each(TRANSPORTS)('over %s', (transport) => {
    check(transport, 'open', 'opens with the forced transport', async () => {
      const client = connect('/echo', transport);
      await client.opened();
      expect(client.openedWith).toBe(transport);
      expect(client.sock.transport).toBe(transport);
    });

    check(transport, 'echo x10', 'echoes ten messages in order', async () => {
      const client = connect('/echo', transport);
      await client.opened();
      const sent = Array.from({ length: 10 }, (_, i) => `message ${i}`);
      for (const message of sent) client.sock.send(message);
      expect(await client.receive(10)).toEqual(sent);
    });

    check(transport, 'unicode', 'returns emoji, separators, controls, U+FFFF and lone surrogates unchanged', async () => {
      const client = connect('/echo', transport);
      await client.opened();
      for (const message of UNICODE) client.sock.send(message);
      const back = await client.receive(UNICODE.length);
      for (let i = 0; i < UNICODE.length; i++) expect(codeUnits(back[i]!)).toBe(codeUnits(UNICODE[i]!));
    });

    check(transport, '100 KB', 'echoes a 100 KB message whole', async () => {
      const client = connect('/echo', transport);
      await client.opened();
      client.sock.send(LARGE);
      const [back] = await client.receive(1);
      expect(back!.length).toBe(LARGE.length);
      expect(back === LARGE).toBe(true);
    });

    check(transport, 'burst x500', 'echoes a burst of 500 messages in order', async () => {
      const client = connect('/echo', transport);
      await client.opened();
      const sent = Array.from({ length: 500 }, (_, i) => `burst ${i}`);
      for (const message of sent) client.sock.send(message);
      expect(await client.receive(500)).toEqual(sent);
    });

    check(transport, 'server close', 'reports the server closing the session with 3000 "Go away!"', async () => {
      const client = connect('/close', transport);
      const why = await client.closed();
      expect(client.openedWith).toBe(transport);
      expect({ code: why.code, reason: why.reason }).toEqual({ code: 3000, reason: 'Go away!' });
    });

    check(transport, 'client close', 'fires the server-side close event exactly once when the client closes', async () => {
      const client = connect('/echo', transport);
      await client.opened();
      const marker = `close probe ${environment} ${transport} ${Math.random()}`;
      client.sock.send(marker);
      await client.receive(1);
      const entry = tracked.find((t) => t.received.includes(marker));
      expect(entry).toBeDefined();
      client.sock.close();
      await waitUntil(() => entry!.closeEvents > 0, 'the server-side close event');
      // A second round trip on a new connection gives a duplicate close time to show up.
      const after = connect('/echo', transport);
      await after.opened();
      after.sock.send('after');
      await after.receive(1);
      expect(entry!.closeEvents).toBe(1);
      expect(entry!.closedEmissions).toBe(1);
      expect(entry!.connection.readyState).toBe(3);
    });
  });
});

afterAll(() => {
  console.log(outcomes.table());
});

/** Code units as `\uXXXX`, so a failure shows which one differs. */
function codeUnits(text: string): string {
  return Array.from({ length: text.length }, (_, i) => {
    const unit = text.charCodeAt(i);
    return unit >= 0x20 && unit < 0x7f ? text[i] : `\\u${unit.toString(16).padStart(4, '0')}`;
  }).join('');
}
