/**
 * End to end in Chromium (Debian's, at /usr/bin/chromium, driven by playwright-core): every
 * transport sockjs-client offers in a browser, forced one at a time, with the page and the SockJS
 * service on the same origin and on different ones; then the `npm start` echo page.
 *
 * Without /usr/bin/chromium the suite is skipped with one line, unless CI=true, where it fails.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'http';
import type { AddressInfo } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import type { Subscription } from 'rxjs';
import { type Connection, DEFAULTS } from '../../lib';
import { call, type Chromium, chromiumSkipped, launchChromium, servePage } from '../helpers/chromium';
import { Outcomes } from '../helpers/outcomes';
import { BROWSER_TRANSPORTS } from '../helpers/sockjs-client';

interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface TestServerModule {
  start(options: {
    port: number;
    host: string;
    api: 'new' | 'old';
    onConnection?: (prefix: string, connection: Connection) => void;
    handler?: (req: IncomingMessage, res: ServerResponse) => void;
  }): Promise<RunningServer>;
}

interface EchoExampleModule {
  start(options: { port: number; host: string }): Promise<RunningServer>;
}

const testServer: TestServerModule = require('../../examples/test-server/server');
const echoExample: EchoExampleModule = require('../../examples/echo/server');

const TRANSPORTS = BROWSER_TRANSPORTS;
type Transport = (typeof TRANSPORTS)[number];

/**
 * sockjs-client enables htmlfile only when the page and the service share an origin (the
 * receiver's iframe calls into its parent); across origins it offers iframe-htmlfile instead.
 */
const CROSS_ORIGIN_TRANSPORTS: readonly Transport[] = TRANSPORTS.filter((t) => t !== 'htmlfile');

/** The bound of every wait: longer than disconnect_delay (5 s) and than an iframe's start-up. */
const WAIT_MS = 20_000;
/**
 * How long the server may take to notice that a jsonp-polling client closed. sockjs-client
 * closes it by removing the poll's script element, but Chromium keeps fetching a removed script,
 * so the held poll ends only with the next heartbeat frame, and the session expires
 * disconnect_delay after that: the same as with the reference server.
 */
const JSONP_CLOSE_MS = DEFAULTS.heartbeat_delay + DEFAULTS.disconnect_delay + WAIT_MS;
/** Jest's bound per test, above every wait it contains. */
const TEST_MS = 60_000;

const CHECKS = ['open', 'echo x10', 'unicode', '100 KB', 'burst x500', 'server close', 'client close', 'page echo'] as const;
type Check = (typeof CHECKS)[number];

/** See the node suite: all of these must come back identical, lone surrogates included. */
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

const LARGE = Array.from({ length: 1024 }, (_, i) => `[${String(i).padStart(4, '0')}]`.padEnd(100, '.')).join('');

/**
 * The test page. Messages cross the DevTools protocol as text that must survive JSON and UTF-8
 * untouched, so the page hands them back as `codeUnits` (printable ASCII, everything else as
 * `\uXXXX`), the same function as below.
 */
const HARNESS_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>sockjs-rx browser tests</title>
<script src="/sockjs.min.js"></script></head>
<body><p>sockjs-rx browser tests</p><script>
'use strict';
(function () {
  function codeUnits(text) {
    var out = '';
    for (var i = 0; i < text.length; i++) {
      var unit = text.charCodeAt(i);
      out += unit >= 0x20 && unit < 0x7f && unit !== 0x5c ? text[i] : '\\\\u' + ('000' + unit.toString(16)).slice(-4);
    }
    return out;
  }
  var clients = [];
  window.harness = {
    open: function (url, transport) {
      var c = { received: [], openedWith: null, closeEvent: null };
      var sock = c.sock = new SockJS(url, null, { transports: [transport] });
      sock.onopen = function () { c.openedWith = sock.transport; };
      sock.onmessage = function (e) { c.received.push(e.data); };
      sock.onclose = function (e) { c.closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean }; };
      clients.push(c);
      return clients.length - 1;
    },
    /** Open (count 0) or holding count messages, or closed. */
    settled: function (id, count) {
      var c = clients[id];
      return c.closeEvent !== null || (count === 0 ? c.openedWith !== null : c.received.length >= count);
    },
    closed: function (id) { return clients[id].closeEvent !== null; },
    state: function (id) {
      var c = clients[id];
      return { openedWith: c.openedWith, transport: c.sock.transport, closeEvent: c.closeEvent, received: c.received.length };
    },
    received: function (id, from, to) { return clients[id].received.slice(from, to).map(codeUnits); },
    send: function (id, messages) {
      var sock = clients[id].sock;
      messages.forEach(function (m) { sock.send(m); });
    },
    close: function (id) {
      var c = clients[id];
      if (c.closeEvent === null && c.sock.readyState < 2) c.sock.close();
    },
    closeAll: function () { clients.forEach(function (c, id) { window.harness.close(id); }); },
    allClosed: function () { return clients.every(function (c) { return c.closeEvent !== null; }); }
  };
})();
</script></body></html>
`;

/** Serves the test page and sockjs-client; used by the page server and behind the test server. */
const serveHarness = servePage(HARNESS_PAGE);

/** Printable ASCII as is, every other code unit (and backslash) as `\uXXXX`. */
function codeUnits(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out += unit >= 0x20 && unit < 0x7f && unit !== 0x5c ? text[i] : `\\u${unit.toString(16).padStart(4, '0')}`;
  }
  return out;
}

const outcomes = new Outcomes('sockjs-client in Chromium, per transport and check:', CHECKS);

interface CloseInfo {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

interface ClientState {
  readonly openedWith: string | null;
  readonly transport: string | null;
  readonly closeEvent: CloseInfo | null;
  readonly received: number;
}

/** One sockjs-client connection living in the page. */
class PageClient {
  private constructor(
    readonly page: Page,
    readonly id: number,
    readonly pageErrors: readonly string[],
  ) {}

  static async open(page: Page, url: string, transport: Transport, pageErrors: readonly string[]): Promise<PageClient> {
    return new PageClient(page, await call<number>(page, 'open', url, transport), pageErrors);
  }

  state(): Promise<ClientState> {
    return call<ClientState>(this.page, 'state', this.id);
  }

  /** Waits, at most WAIT_MS, until the page says `expression` holds; a timeout names what was awaited. */
  async until(expression: string, what: string): Promise<void> {
    try {
      await this.page.waitForFunction(expression, undefined, { timeout: WAIT_MS, polling: 10 });
    } catch (error) {
      const state = await this.state();
      const errors = this.pageErrors.length > 0 ? `; page errors: ${this.pageErrors.join(' | ')}` : '';
      throw new Error(`${String(error)}\nwhile waiting for ${what}; client: ${JSON.stringify(state)}${errors}`);
    }
  }

  async opened(): Promise<ClientState> {
    await this.until(`window.harness.settled(${this.id}, 0)`, 'open');
    const state = await this.state();
    if (state.closeEvent) throw new Error(`closed before opening: ${state.closeEvent.code} ${state.closeEvent.reason}`);
    return state;
  }

  /** The first `count` messages, as `codeUnits`. */
  async receive(count: number): Promise<string[]> {
    await this.until(`window.harness.settled(${this.id}, ${count})`, `${count} messages`);
    const state = await this.state();
    if (state.received < count) {
      throw new Error(`closed after ${state.received} of ${count} messages: ${JSON.stringify(state.closeEvent)}`);
    }
    return call<string[]>(this.page, 'received', this.id, 0, count);
  }

  send(messages: readonly string[]): Promise<void> {
    return call<void>(this.page, 'send', this.id, messages);
  }

  close(): Promise<void> {
    return call<void>(this.page, 'close', this.id);
  }

  async closed(): Promise<CloseInfo> {
    await this.until(`window.harness.closed(${this.id})`, 'close');
    return (await this.state()).closeEvent!;
  }
}

/** A server-side connection of `/echo`, and how often it reported its end. */
interface Tracked {
  readonly connection: Connection;
  readonly received: string[];
  closeEvents: number;
  closedEmissions: number;
}

const skipped = chromiumSkipped('browser suite');

(skipped ? describe.skip : describe)('sockjs-client in Chromium', () => {
  let browser: Chromium | undefined;
  let context: BrowserContext;
  const tracked: Tracked[] = [];
  const subscriptions: Subscription[] = [];
  const onConnection = (prefix: string, connection: Connection): void => {
    if (prefix !== '/echo') return;
    const entry: Tracked = { connection, received: [], closeEvents: 0, closedEmissions: 0 };
    connection.on('data', (message: string) => entry.received.push(message));
    connection.on('close', () => entry.closeEvents++);
    subscriptions.push(connection.closed$.subscribe(() => entry.closedEmissions++));
    tracked.push(entry);
  };

  beforeAll(async () => {
    browser = await launchChromium();
    context = browser.context;
  }, TEST_MS);

  afterAll(async () => {
    await browser?.close();
    for (const subscription of subscriptions) subscription.unsubscribe();
  }, TEST_MS);

  describe.each([
    { origins: 'same origin', transports: TRANSPORTS },
    { origins: 'cross origin', transports: CROSS_ORIGIN_TRANSPORTS },
  ])('with the page and the service on the $origins', ({ origins, transports }) => {
    const environment = `chromium, ${origins}`;
    let server: RunningServer;
    let pageServer: Server | undefined;
    let pageUrl: string;
    let serviceUrl: string;

    beforeAll(async () => {
      if (origins === 'same origin') {
        // The test server serves the page itself.
        server = await testServer.start({ port: 0, host: '127.0.0.1', api: 'new', onConnection, handler: serveHarness });
        pageUrl = `${server.url}/`;
        serviceUrl = server.url;
      } else {
        // Page on 127.0.0.1:A, service on localhost:B: two servers, two ports, two host names.
        server = await testServer.start({ port: 0, host: '127.0.0.1', api: 'new', onConnection });
        const http = createServer(serveHarness);
        pageServer = http;
        await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
        pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
        serviceUrl = `http://localhost:${server.port}`;
      }
      if (origins === 'cross origin') outcomes.record(environment, 'htmlfile', 'open', 'n/a');
    });

    afterAll(async () => {
      await server?.close();
      if (pageServer) {
        const http = pageServer;
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    });

    describe.each(transports)('over %s', (transport) => {
      let page: Page;
      const pageErrors: string[] = [];

      // A fresh page per test. Closing the page also cancels what sockjs-client cannot: a closed
      // jsonp-polling client only removes its script element, and Chromium keeps that poll open
      // until the server ends it, so a few of them would fill the six connections per host.
      beforeEach(async () => {
        pageErrors.length = 0;
        page = await context.newPage();
        page.on('pageerror', (error) => pageErrors.push(error.message));
        await page.goto(pageUrl, { timeout: WAIT_MS });
      }, TEST_MS);

      afterEach(async () => {
        await call<void>(page, 'closeAll');
        await page.waitForFunction('window.harness.allClosed()', undefined, { timeout: WAIT_MS, polling: 10 });
        await page.close();
      }, TEST_MS);

      const open = (prefix: string) => PageClient.open(page, serviceUrl + prefix, transport, pageErrors);

      /** A test whose outcome goes into the results table. */
      const check = (name: Check, title: string, body: () => Promise<void>, timeout = TEST_MS) => {
        test(
          title,
          async () => {
            outcomes.record(environment, transport, name, 'FAIL');
            await body();
            outcomes.record(environment, transport, name, 'pass');
          },
          timeout,
        );
      };

      check('open', 'opens with the forced transport', async () => {
        const client = await open('/echo');
        const state = await client.opened();
        expect(state.openedWith).toBe(transport);
        expect(state.transport).toBe(transport);
      });

      check('echo x10', 'echoes ten messages in order', async () => {
        const client = await open('/echo');
        await client.opened();
        const sent = Array.from({ length: 10 }, (_, i) => `message ${i}`);
        await client.send(sent);
        expect(await client.receive(10)).toEqual(sent);
      });

      check('unicode', 'returns emoji, separators, controls, U+FFFF and lone surrogates unchanged', async () => {
        const client = await open('/echo');
        await client.opened();
        await client.send(UNICODE);
        expect(await client.receive(UNICODE.length)).toEqual(UNICODE.map(codeUnits));
      });

      check('100 KB', 'echoes a 100 KB message whole', async () => {
        const client = await open('/echo');
        await client.opened();
        await client.send([LARGE]);
        const [back] = await client.receive(1);
        expect(back!.length).toBe(LARGE.length);
        expect(back === LARGE).toBe(true);
      });

      check('burst x500', 'echoes a burst of 500 messages in order', async () => {
        const client = await open('/echo');
        await client.opened();
        const sent = Array.from({ length: 500 }, (_, i) => `burst ${i}`);
        await client.send(sent);
        expect(await client.receive(500)).toEqual(sent);
      });

      check('server close', 'reports the server closing the session with 3000 "Go away!"', async () => {
        const client = await open('/close');
        const why = await client.closed();
        expect((await client.state()).openedWith).toBe(transport);
        expect({ code: why.code, reason: why.reason }).toEqual({ code: 3000, reason: 'Go away!' });
      });

      const closeTitle =
        transport === 'jsonp-polling'
          ? 'fires the server-side close event exactly once when the client closes, after the held poll ends'
          : 'fires the server-side close event exactly once when the client closes';
      check('client close', closeTitle, async () => {
        const client = await open('/echo');
        await client.opened();
        const marker = `close probe ${environment} ${transport} ${Math.random()}`;
        await client.send([marker]);
        await client.receive(1);
        const entry = tracked.find((t) => t.received.includes(marker));
        expect(entry).toBeDefined();
        await client.close();
        const bound = transport === 'jsonp-polling' ? JSONP_CLOSE_MS : WAIT_MS;
        await waitUntil(() => entry!.closeEvents > 0, 'the server-side close event', bound);
        // A second round trip on a new connection gives a duplicate close time to show up.
        const after = await open('/echo');
        await after.opened();
        await after.send(['after']);
        await after.receive(1);
        expect(entry!.closeEvents).toBe(1);
        expect(entry!.closedEmissions).toBe(1);
        expect(entry!.connection.readyState).toBe(3);
      }, JSONP_CLOSE_MS + TEST_MS);
    });
  });

  describe('the echo example page', () => {
    let echo: RunningServer;
    let page: Page;
    const pageErrors: string[] = [];

    beforeAll(async () => {
      echo = await echoExample.start({ port: 0, host: '127.0.0.1' });
      page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
    }, TEST_MS);

    afterAll(async () => {
      await page?.close();
      await echo?.close();
    });

    /** Types `text` into the page's box, sends it and waits for it in the log. */
    async function echoThroughTheTextBox(text: string): Promise<void> {
      await page.locator('#message').fill(text);
      await page.locator('#message').press('Enter');
      await page.locator('#log .received', { hasText: text }).waitFor({ timeout: WAIT_MS });
    }

    test(
      'echoes a message typed into its text box over the transport it picks',
      async () => {
        outcomes.record('echo example', 'any', 'page echo', 'FAIL');
        await page.goto(echo.url, { timeout: WAIT_MS });
        await page.locator('#status.open').waitFor({ timeout: WAIT_MS });
        expect(await page.locator('#status').textContent()).toBe('open over websocket');
        await echoThroughTheTextBox('hello from the echo page ✓');
        expect(pageErrors).toEqual([]);
        outcomes.record('echo example', 'any', 'page echo', 'pass');
      },
      TEST_MS,
    );

    test(
      'reconnects over the transport picked in its list and echoes through it',
      async () => {
        outcomes.record('echo example', 'iframe-htmlfile', 'page echo', 'FAIL');
        await page.goto(echo.url, { timeout: WAIT_MS });
        await page.locator('#status.open').waitFor({ timeout: WAIT_MS });
        await echoThroughTheTextBox('first over the transport it picked');
        await page.locator('#transport').selectOption('iframe-htmlfile');
        await page.locator('#status.open', { hasText: 'iframe-htmlfile' }).waitFor({ timeout: WAIT_MS });
        await echoThroughTheTextBox('and again over iframe-htmlfile');
        const shot = join(tmpdir(), 'sockjs-rx-echo-page.png');
        await page.screenshot({ path: shot });
        console.log(`echo page screenshot: ${shot}`);
        expect(pageErrors).toEqual([]);
        outcomes.record('echo example', 'iframe-htmlfile', 'page echo', 'pass');
      },
      TEST_MS,
    );
  });
});

afterAll(() => {
  if (!skipped) console.log(outcomes.table());
});

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
