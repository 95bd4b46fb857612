/**
 * The eventsource, htmlfile and jsonp transports over real sockets: HTTP/1.1 responses are read
 * chunk by chunk from a raw `net` socket, so that chunk boundaries are checked as the protocol
 * suite checks them.
 */
import { randomUUID } from 'crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'http';
import { type AddressInfo, connect, type Socket } from 'net';
import { createServer, type Server } from '../../lib/index';

const WAIT_MS = 2000;
const NO_CACHE = 'no-store, no-cache, no-transform, must-revalidate, max-age=0';

interface Head {
  readonly status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
}

interface Response extends Head {
  readonly body: string;
}

/** One HTTP/1.1 exchange on its own socket, parsed as bytes arrive: the head, then each chunk. */
class Exchange {
  #buffer = Buffer.alloc(0);
  #head: Head | null = null;
  /** Parsed body pieces; null marks the end of the body (the zero-length chunk). */
  readonly #pieces: Array<string | null> = [];
  #ended = false;
  #closed = false;
  readonly #listeners = new Set<() => void>();

  constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#parse();
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  head(): Promise<Head> {
    return this.#until('the response head', () => this.#head ?? undefined);
  }

  /** The next chunk of the body, or null for the terminating zero-length chunk. */
  chunk(): Promise<string | null> {
    return this.#until('a chunk', () => (this.#pieces.length > 0 ? { piece: this.#pieces.shift()! } : undefined)).then(
      ({ piece }) => piece,
    );
  }

  /** The head and the whole body, once the response has ended. */
  async response(): Promise<Response> {
    const head = await this.head();
    const pieces: string[] = [];
    for (let piece = await this.chunk(); piece !== null; piece = await this.chunk()) pieces.push(piece);
    return { ...head, body: pieces.join('') };
  }

  #wake(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #until<T>(what: string, get: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      const check = () => {
        const value = get();
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.#closed) {
          done();
          reject(new Error(`the socket closed before ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      this.#listeners.add(check);
      check();
    });
  }

  #parse(): void {
    if (!this.#head) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
      }
      this.#head = { status: Number(statusLine!.split(' ')[1]), headers };
      this.#buffer = this.#buffer.subarray(end + 4);
    }
    if (this.#ended) return;
    const { headers } = this.#head;
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const lineEnd = this.#buffer.indexOf('\r\n');
        if (lineEnd === -1) return;
        const size = Number.parseInt(this.#buffer.subarray(0, lineEnd).toString('latin1'), 16);
        if (this.#buffer.length < lineEnd + 2 + size + 2) return;
        const data = this.#buffer.subarray(lineEnd + 2, lineEnd + 2 + size);
        this.#buffer = this.#buffer.subarray(lineEnd + 2 + size + 2);
        if (size === 0) {
          this.#ended = true;
          this.#pieces.push(null);
          return;
        }
        this.#pieces.push(data.toString('utf8'));
      }
    }
    const length = Number(headers['content-length'] ?? '0');
    if (this.#buffer.length < length) return;
    if (length > 0) this.#pieces.push(this.#buffer.subarray(0, length).toString('utf8'));
    this.#buffer = this.#buffer.subarray(length);
    this.#ended = true;
    this.#pieces.push(null);
  }
}

interface RequestInit {
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

describe('the eventsource, htmlfile and jsonp transports over HTTP/1.1', () => {
  let http: HttpServer;
  let sockjs: Server;
  let port: number;
  const sockets = new Set<Socket>();

  beforeEach(async () => {
    sockjs = createServer({ prefix: '/echo', response_limit: 4096, log: () => {} });
    sockjs.on('connection', (conn) => {
      if (conn.prefix === '/close') conn.close(3000, 'Go away!');
      else conn.on('data', (message: string) => conn.write(message));
    });
    http = createHttpServer();
    sockjs.installHandlers(http);
    sockjs.installHandlers(http, { prefix: '/close' });
    sockjs.installHandlers(http, { prefix: '/cookie_needed_echo', jsessionid: true });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    port = (http.address() as AddressInfo).port;
  });

  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    sockjs.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  function open(method: string, path: string, init: RequestInit = {}): Exchange {
    const socket = connect(port, '127.0.0.1');
    sockets.add(socket);
    const headers: Record<string, string> = { Host: `127.0.0.1:${port}`, ...init.headers };
    if (init.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(init.body));
    const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
    socket.write(lines.join('\r\n') + '\r\n\r\n' + (init.body ?? ''));
    return new Exchange(socket);
  }

  const fetchRaw = (method: string, path: string, init: RequestInit = {}): Promise<Response> => open(method, path, init).response();

  const session = (prefix = '/echo') => `${prefix}/000/${randomUUID()}`;

  /** Sends messages with xhr_send, as sockjs-client does for eventsource. */
  async function xhrSend(base: string, json: string): Promise<void> {
    const response = await fetchRaw('POST', `${base}/xhr_send`, { body: json, headers: { 'Content-Type': 'text/plain' } });
    expect(response.status).toBe(204);
  }

  function expectNotCacheable(head: Head): void {
    expect(head.headers['cache-control']).toBe(NO_CACHE);
    expect(head.headers).not.toHaveProperty('expires');
    expect(head.headers).not.toHaveProperty('last-modified');
  }

  function expectNoCors(head: Head): void {
    expect(Object.keys(head.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
  }

  describe('eventsource', () => {
    it('streams the CR LF prelude, then each frame as its own data event chunk', async () => {
      const base = session();
      const stream = open('GET', `${base}/eventsource`);
      const head = await stream.head();
      expect(head.status).toBe(200);
      expect(head.headers['content-type']).toBe('text/event-stream');
      expect(head.headers['transfer-encoding']).toBe('chunked');
      expect(head.headers).not.toHaveProperty('content-length');
      expect(head.headers).not.toHaveProperty('set-cookie');
      expectNotCacheable(head);
      expect(await stream.chunk()).toBe('\r\n');
      expect(await stream.chunk()).toBe('data: o\r\n\r\n');
      await xhrSend(base, '["x"]');
      expect(await stream.chunk()).toBe('data: a["x"]\r\n\r\n');
      await xhrSend(base, '["y"]');
      expect(await stream.chunk()).toBe('data: a["y"]\r\n\r\n');
    });

    it('escapes control characters as JSON and percent signs as %25 inside the data line', async () => {
      const base = session();
      const stream = open('GET', `${base}/eventsource`);
      expect(await stream.chunk()).toBe('\r\n');
      expect(await stream.chunk()).toBe('data: o\r\n\r\n');
      await xhrSend(base, '["  \\u0000\\n\\r "]');
      expect(await stream.chunk()).toBe('data: a["  \\u0000\\n\\r "]\r\n\r\n');
      await xhrSend(base, '["100%"]');
      expect(await stream.chunk()).toBe('data: a["100%25"]\r\n\r\n');
      await xhrSend(base, '["%61"]');
      expect(await stream.chunk()).toBe('data: a["%2561"]\r\n\r\n');
    });

    it('answers without an Origin, or with Origin null, with Allow-Origin * and no credentials', async () => {
      for (const headers of [{}, { Origin: 'null' }] as Array<Record<string, string>>) {
        const head = await open('GET', `${session()}/eventsource`, { headers }).head();
        expect(head.status).toBe(200);
        expect(head.headers['access-control-allow-origin']).toBe('*');
        expect(head.headers).not.toHaveProperty('access-control-allow-credentials');
      }
    });

    it('echoes a named Origin with credentials allowed', async () => {
      const head = await open('GET', `${session()}/eventsource`, { headers: { Origin: 'https://example.com' } }).head();
      expect(head.headers['access-control-allow-origin']).toBe('https://example.com');
      expect(head.headers['access-control-allow-credentials']).toBe('true');
    });

    it('ends the stream after one 4096-byte message under response_limit 4096, and the session goes on', async () => {
      const base = session();
      const stream = open('GET', `${base}/eventsource`);
      expect(await stream.chunk()).toBe('\r\n');
      expect(await stream.chunk()).toBe('data: o\r\n\r\n');
      const big = 'x'.repeat(4096);
      await xhrSend(base, JSON.stringify([big]));
      expect(await stream.chunk()).toBe(`data: a["${big}"]\r\n\r\n`);
      expect(await stream.chunk()).toBeNull();
      const next = open('GET', `${base}/eventsource`);
      expect(await next.chunk()).toBe('\r\n');
      await xhrSend(base, '["again"]');
      expect(await next.chunk()).toBe('data: a["again"]\r\n\r\n');
    });
  });

  describe('htmlfile', () => {
    const head = (callback: string) =>
      [
        '<!doctype html>',
        '<html><head>',
        '  <meta http-equiv="X-UA-Compatible" content="IE=edge" />',
        '  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
        `</head><body><h2>Don't panic!</h2>`,
        '  <script>',
        '    document.domain = document.domain;',
        `    var c = parent.${callback};`,
        '    c.start();',
        '    function p(d) {c.message(d);};',
        '    window.onload = function() {c.stop();};',
        '  </script>',
      ].join('\n');

    it('streams the exact head of more than 1024 bytes as one chunk, then script elements', async () => {
      const base = session();
      const stream = open('GET', `${base}/htmlfile?c=%63allback`);
      const response = await stream.head();
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('text/html; charset=UTF-8');
      expect(response.headers['transfer-encoding']).toBe('chunked');
      expect(response.headers).not.toHaveProperty('content-length');
      expect(response.headers).not.toHaveProperty('set-cookie');
      expectNotCacheable(response);
      expectNoCors(response);
      const prelude = (await stream.chunk())!;
      expect(prelude.trim()).toBe(head('callback'));
      expect(Buffer.byteLength(prelude)).toBeGreaterThan(1024);
      expect(prelude).toBe(head('callback').padEnd(1023 + 'callback'.length, ' ') + '\r\n\r\n');
      expect(await stream.chunk()).toBe('<script>\np("o");\n</script>\r\n');
      await xhrSend(base, '["x"]');
      expect(await stream.chunk()).toBe('<script>\np("a[\\"x\\"]");\n</script>\r\n');
    });

    it('keeps </script>, <!--, U+2028 and U+2029 in messages from breaking out of the script element', async () => {
      const base = session();
      const stream = open('GET', `${base}/htmlfile?c=cb`);
      await stream.chunk();
      expect(await stream.chunk()).toBe('<script>\np("o");\n</script>\r\n');
      const messages = ['</script><script>alert(1)</script>', '<!--', '\u2028', '\u2029'];
      const chunks: Array<string | null> = [];
      for (const message of messages) {
        await xhrSend(base, JSON.stringify([message]));
        chunks.push(await stream.chunk());
      }
      expect(chunks).toEqual([
        '<script>\np("a[\\"\\u003c/script>\\u003cscript>alert(1)\\u003c/script>\\"]");\n</script>\r\n',
        '<script>\np("a[\\"\\u003c!--\\"]");\n</script>\r\n',
        '<script>\np("a[\\"\\\\u2028\\"]");\n</script>\r\n',
        '<script>\np("a[\\"\\\\u2029\\"]");\n</script>\r\n',
      ]);
      // The page's p() receives the frame text, which decodes back to the message.
      for (const [i, chunk] of chunks.entries()) {
        const literal = /^<script>\np\((.*)\);\n<\/script>\r\n$/s.exec(chunk!)![1]!;
        const frame = JSON.parse(literal) as string;
        expect(JSON.parse(frame.slice(1))).toEqual([messages[i]]);
      }
    });

    it('ends the stream after one 4096-byte message under response_limit 4096', async () => {
      const base = session();
      const stream = open('GET', `${base}/htmlfile?c=callback`);
      await stream.chunk();
      expect(await stream.chunk()).toBe('<script>\np("o");\n</script>\r\n');
      const big = 'x'.repeat(4096);
      await xhrSend(base, JSON.stringify([big]));
      expect(await stream.chunk()).toBe(`<script>\np("a[\\"${big}\\"]");\n</script>\r\n`);
      expect(await stream.chunk()).toBeNull();
    });

    it('answers a missing callback with 500 "callback" parameter required', async () => {
      const response = await fetchRaw('GET', `${session()}/htmlfile`);
      expect(response.status).toBe(500);
      expect(response.body).toBe('"callback" parameter required');
      expect(response.headers).not.toHaveProperty('content-type');
    });

    it.each(['%20', '*', 'abc(', 'abc%28'])('answers the callback %j with 500 invalid "callback" parameter', async (callback) => {
      const response = await fetchRaw('GET', `${session()}/htmlfile?c=${callback}`);
      expect(response.status).toBe(500);
      expect(response.body).toBe('invalid "callback" parameter');
    });
  });

  describe('jsonp', () => {
    it('polls one frame per response and takes form-encoded messages on jsonp_send', async () => {
      const base = session();
      const poll = await fetchRaw('GET', `${base}/jsonp?c=%63allback`);
      expect(poll.status).toBe(200);
      expect(poll.headers['content-type']).toBe('application/javascript; charset=UTF-8');
      expect(poll.headers['x-content-type-options']).toBe('nosniff');
      expect(poll.headers).not.toHaveProperty('set-cookie');
      expectNotCacheable(poll);
      expectNoCors(poll);
      expect(poll.body).toBe('/**/callback("o");\r\n');

      const sent = await fetchRaw('POST', `${base}/jsonp_send`, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'd=%5B%22x%22%5D',
      });
      expect(sent.status).toBe(200);
      expect(sent.body).toBe('ok');
      expect(sent.headers['content-type']).toBe('text/plain; charset=UTF-8');
      expect(sent.headers['content-length']).toBe('2');
      expectNotCacheable(sent);
      expectNoCors(sent);

      expect((await fetchRaw('GET', `${base}/jsonp?c=callback`)).body).toBe('/**/callback("a[\\"x\\"]");\r\n');
    });

    it('escapes </script>, U+2028 and U+2029 in the polled script', async () => {
      const base = session();
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("o");\r\n');
      await xhrSend(base, JSON.stringify(['</script>\u2028\u2029']));
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("a[\\"\\u003c/script>\\\\u2028\\\\u2029\\"]");\r\n');
    });

    it('reads a text/plain or untyped jsonp_send body as raw JSON, never URL-decoded', async () => {
      const base = session();
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("o");\r\n');
      for (const headers of [{ 'Content-Type': 'text/plain' }, {}] as Array<Record<string, string>>) {
        const sent = await fetchRaw('POST', `${base}/jsonp_send`, { headers, body: '["%61bc"]' });
        expect([sent.status, sent.body]).toEqual([200, 'ok']);
        expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("a[\\"%61bc\\"]");\r\n');
      }
    });

    it('answers broken and missing payloads with 500 and the protocol texts, and the session stays usable', async () => {
      const base = session();
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("o");\r\n');
      const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
      const cases: Array<[RequestInit, number, string]> = [
        [{ headers: form, body: 'd=%5B%22x' }, 500, 'Broken JSON encoding.'],
        [{ headers: form, body: '' }, 500, 'Payload expected.'],
        [{ headers: form, body: 'd=' }, 500, 'Payload expected.'],
        [{ headers: form, body: 'p=p' }, 500, 'Payload expected.'],
        [{ headers: { 'Content-Type': 'text/plain' }, body: '["x' }, 500, 'Broken JSON encoding.'],
        [{ headers: form, body: 'd=%5B%5D' }, 200, 'ok'],
        [{ headers: form, body: 'd=%5B%22still%22%5D' }, 200, 'ok'],
      ];
      for (const [init, status, body] of cases) {
        const response = await fetchRaw('POST', `${base}/jsonp_send`, init);
        expect([response.status, response.body]).toEqual([status, body]);
      }
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("a[\\"still\\"]");\r\n');
    });

    it('answers jsonp_send to an unknown session with 404', async () => {
      const response = await fetchRaw('POST', `${session()}/jsonp_send`, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'd=%5B%22x%22%5D',
      });
      expect(response.status).toBe(404);
    });

    it.each<[string, string]>([
      ['', '"callback" parameter required'],
      ['?c=%20', 'invalid "callback" parameter'],
      ['?c=*', 'invalid "callback" parameter'],
      ['?c=abc(', 'invalid "callback" parameter'],
      ['?c=abc%28', 'invalid "callback" parameter'],
      ['?c=' + 'a'.repeat(33), 'invalid "callback" parameter'],
    ])('answers the query %j with 500 and %j', async (query, text) => {
      const response = await fetchRaw('GET', `${session()}/jsonp${query}`);
      expect(response.status).toBe(500);
      expect(response.body).toBe(text);
      expect(response.headers).not.toHaveProperty('content-type');
      expect(response.headers).not.toHaveProperty('x-content-type-options');
    });

    it('gives on /close the open frame, then the close frame to every later poll', async () => {
      const base = session('/close');
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("o");\r\n');
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("c[3000,\\"Go away!\\"]");\r\n');
      expect((await fetchRaw('GET', `${base}/jsonp?c=x`)).body).toBe('/**/x("c[3000,\\"Go away!\\"]");\r\n');
    });
  });

  describe('with jsessionid on', () => {
    it('sets JSESSIONID=dummy on eventsource, htmlfile, jsonp and jsonp_send', async () => {
      const base = session('/cookie_needed_echo');
      const es = await open('GET', `${session('/cookie_needed_echo')}/eventsource`).head();
      expect(es.headers['set-cookie']).toBe('JSESSIONID=dummy; path=/');
      const html = await open('GET', `${session('/cookie_needed_echo')}/htmlfile?c=x`).head();
      expect(html.headers['set-cookie']).toBe('JSESSIONID=dummy; path=/');
      const poll = await fetchRaw('GET', `${base}/jsonp?c=x`);
      expect(poll.headers['set-cookie']).toBe('JSESSIONID=dummy; path=/');
      const sent = await fetchRaw('POST', `${base}/jsonp_send`, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'd=%5B%5D',
      });
      expect(sent.headers['set-cookie']).toBe('JSESSIONID=dummy; path=/');
    });

    it("echoes the client's own JSESSIONID on eventsource, htmlfile, jsonp and jsonp_send", async () => {
      const cookie = { Cookie: 'JSESSIONID=abcdef' };
      const base = session('/cookie_needed_echo');
      const es = await open('GET', `${session('/cookie_needed_echo')}/eventsource`, { headers: cookie }).head();
      expect(es.headers['set-cookie']).toBe('JSESSIONID=abcdef; path=/');
      const html = await open('GET', `${session('/cookie_needed_echo')}/htmlfile?c=x`, { headers: cookie }).head();
      expect(html.headers['set-cookie']).toBe('JSESSIONID=abcdef; path=/');
      const poll = await fetchRaw('GET', `${base}/jsonp?c=x`, { headers: cookie });
      expect(poll.headers['set-cookie']).toBe('JSESSIONID=abcdef; path=/');
      const sent = await fetchRaw('POST', `${base}/jsonp_send`, {
        headers: { ...cookie, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'd=%5B%5D',
      });
      expect([sent.status, sent.body]).toEqual([200, 'ok']);
      expect(sent.headers['set-cookie']).toBe('JSESSIONID=abcdef; path=/');
    });
  });
});
