import { createHash, randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import { connect } from 'net';
import { RawResponse } from './helpers/raw-http';
import { echoServer, type EchoServer, eventually, listen } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { createServer } from '../lib';

const NO_CACHE = 'no-store, no-cache, no-transform, must-revalidate, max-age=0';
const PRELUDE = 'h'.repeat(2048) + '\n';

let server: EchoServer;

beforeEach(async () => {
  server = await echoServer();
});

afterEach(async () => {
  await server.close();
});

const get = (path: string, headers: Record<string, string> = {}) =>
  RawResponse.open(server.port, { method: 'GET', path, headers });
const post = (path: string, body = '', headers: Record<string, string> = {}) =>
  RawResponse.open(server.port, { method: 'POST', path, headers, body });
const session = () => `/echo/000/${randomUUID()}`;
/** Waits until the server has handled `request` `times` times. */
const handled = (request: string, times: number) =>
  eventually(() => server.requests.filter((r) => r === request).length >= times, 2000, request);

describe('greeting', () => {
  it.each(['/echo', '/echo/'])('answers GET %s with the greeting', async (path) => {
    const r = await get(path);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(await r.body()).toBe('Welcome to SockJS!\n');
  });

  it('passes requests outside the prefix to the listeners that were there before', async () => {
    const r = await get('/echoes');
    expect(await r.body()).toBe('not sockjs');
  });
});

describe('404 and 405', () => {
  it.each(['/echo/a', '/echo/a.html', '/echo//', '/echo///', '/echo/a/a', '/echo/a/a/', '/echo/a/', '/echo///xhr', '/echo/a./a/xhr'])(
    'answers %s with 404',
    async (path) => {
      const r = await get(path);
      expect(r.status).toBe(404);
      expect(await r.body()).toBe('404 Error: Page not found\n');
    },
  );

  it('answers a POST to a websocket URL with 405, Allow: GET, no Content-Type and no body', async () => {
    const r = await post(`${session()}/websocket`);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET');
    expect(r.headers['content-type']).toBeUndefined();
    expect(await r.body()).toBe('');
  });

  it('answers a POST with upgrade headers to a websocket URL with 405 too', async () => {
    const r = await RawResponse.open(server.port, {
      method: 'POST',
      path: `${session()}/websocket`,
      headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Content-Length': '0' },
    });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET');
    expect(r.headers['content-type']).toBeUndefined();
    expect(await r.body()).toBe('');
  });

  it('lists the methods of /info in Allow', async () => {
    const r = await post('/echo/info');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('OPTIONS, GET');
  });
});

describe('/info', () => {
  it('describes the server, uncached, with CORS and no cookie', async () => {
    const r = await get('/echo/info', { Origin: 'http://example.com' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(r.headers['cache-control']).toBe(NO_CACHE);
    expect(r.headers.expires).toBeUndefined();
    expect(r.headers['last-modified']).toBeUndefined();
    expect(r.headers['access-control-allow-origin']).toBe('http://example.com');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['set-cookie']).toBeUndefined();
    const info = JSON.parse(await r.body());
    expect(info).toEqual({ websocket: true, cookie_needed: false, origins: ['*:*'], entropy: expect.any(Number) });
    expect(Number.isInteger(info.entropy)).toBe(true);
  });

  it('gives a different entropy on every call', async () => {
    const a = JSON.parse(await (await get('/echo/info')).body()).entropy;
    const b = JSON.parse(await (await get('/echo/info')).body()).entropy;
    expect(a).not.toBe(b);
  });

  it.each(['test', 'null'])('answers the preflight of /info for Origin %s', async (origin) => {
    const r = await RawResponse.open(server.port, { method: 'OPTIONS', path: '/echo/info', headers: { Origin: origin } });
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe(origin);
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['access-control-allow-methods']).toBe('OPTIONS, GET');
    expect(Number(r.headers['access-control-max-age'])).toBeGreaterThan(1_000_000);
    expect(r.headers['cache-control']).toBe('public, max-age=31536000');
    expect(new Date(r.headers.expires!).getTime()).toBeGreaterThan(Date.now() + 364 * 24 * 3600 * 1000);
    expect(await r.body()).toBe('');
  });
});

describe('iframe page', () => {
  it.each(['/echo/iframe.html', '/echo/iframe-a.html', '/echo/iframe-0.1.2.html', '/echo/iframe.html?t=1234'])(
    'serves %s cacheable, with an ETag and no Last-Modified',
    async (path) => {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=UTF-8');
      expect(r.headers['cache-control']).toBe('public, max-age=31536000');
      expect(r.headers.expires).toBeDefined();
      expect(r.headers['last-modified']).toBeUndefined();
      expect(r.headers['set-cookie']).toBeUndefined();
      const body = await r.body();
      expect(r.headers.etag).toBe('"' + createHash('md5').update(body).digest('hex') + '"');
      expect(body).toContain('<script src="https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"></script>');
    },
  );

  it('answers 304 with no body and no Content-Type when the ETag matches', async () => {
    const etag = (await get('/echo/iframe.html')).headers.etag!;
    const r = await get('/echo/iframe.html', { 'If-None-Match': etag });
    expect(r.status).toBe(304);
    expect(r.headers['content-type']).toBeUndefined();
    expect(r.rest.length).toBe(0);
  });
});

describe('xhr polling', () => {
  it('opens a session with o, then delivers what was sent, with CORS and no caching', async () => {
    const s = session();
    const open = await post(`${s}/xhr`, '', { Origin: 'test' });
    expect(open.status).toBe(200);
    expect(open.headers['content-type']).toBe('application/javascript; charset=UTF-8');
    expect(open.headers['cache-control']).toBe(NO_CACHE);
    expect(open.headers['access-control-allow-origin']).toBe('test');
    expect(open.headers['access-control-allow-credentials']).toBe('true');
    expect(await open.body()).toBe('o\n');

    const sent = await post(`${s}/xhr_send`, '["x"]', { Origin: 'test' });
    expect(sent.status).toBe(204);
    expect(sent.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(sent.headers['cache-control']).toBe(NO_CACHE);
    expect(sent.headers['access-control-allow-origin']).toBe('test');
    expect(await sent.body()).toBe('');

    expect(await (await post(`${s}/xhr`)).body()).toBe('a["x"]\n');
  });

  it('answers a second concurrent poll with 2010 and keeps the first one', async () => {
    const s = session();
    await (await post(`${s}/xhr`)).body();
    const first = RawResponse.start(server.port, { method: 'POST', path: `${s}/xhr`, body: '' });
    await handled(`POST ${s}/xhr`, 2);
    const second = await post(`${s}/xhr`);
    expect(await second.body()).toBe('c[2010,"Another connection still open"]\n');
    expect(await (await post(`${s}/xhr_send`, '["y"]')).body()).toBe('');
    expect(await first.body()).toBe('a["y"]\n');
  });

  it('delivers every message sent while no poll was pending in one frame', async () => {
    const s = session();
    await (await post(`${s}/xhr`)).body();
    const types = ['text/plain', 'T', 'application/json', 'application/xml', '', 'application/json; charset=utf-8', 'text/xml; charset=utf-8', 'text/xml'];
    for (const [i, type] of types.entries()) {
      const r = await post(`${s}/xhr_send`, JSON.stringify([String(i)]), type ? { 'Content-Type': type } : {});
      expect(r.status).toBe(204);
    }
    expect(await (await post(`${s}/xhr`)).body()).toBe('a["0","1","2","3","4","5","6","7"]\n');
  });

  it('after a poll is aborted, the next poll opens a new session', async () => {
    const s = session();
    await (await post(`${s}/xhr`)).body();
    const pending = RawResponse.start(server.port, { method: 'POST', path: `${s}/xhr`, body: '' });
    await handled(`POST ${s}/xhr`, 2);
    pending.destroy();
    await eventually(() => server.connections[0]?.readyState === 3, 2000, 'the session to close');
    expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
  });

  it('reaches one session under any server id', async () => {
    const id = randomUUID();
    expect(await (await post(`/echo/000/${id}/xhr`)).body()).toBe('o\n');
    expect((await post(`/echo/999/${id}/xhr_send`, '["z"]')).status).toBe(204);
    expect(await (await post(`/echo/abc/${id}/xhr`)).body()).toBe('a["z"]\n');
  });
});

describe('xhr_send errors', () => {
  it('answers an empty body with 500 Payload expected.', async () => {
    const s = session();
    await (await post(`${s}/xhr`)).body();
    const r = await post(`${s}/xhr_send`);
    expect(r.status).toBe(500);
    expect(await r.body()).toBe('Payload expected.');
  });

  it('answers broken JSON with 500 Broken JSON encoding., and the session keeps working', async () => {
    const s = session();
    await (await post(`${s}/xhr`)).body();
    const r = await post(`${s}/xhr_send`, '["x');
    expect(r.status).toBe(500);
    expect(await r.body()).toBe('Broken JSON encoding.');
    expect((await post(`${s}/xhr_send`, '["ok"]')).status).toBe(204);
    expect(await (await post(`${s}/xhr`)).body()).toBe('a["ok"]\n');
  });

  it('answers JSON that is not an array with 500 Payload expected.', async () => {
    const r = await post(`${session()}/xhr_send`, '{"a":1}');
    expect(r.status).toBe(500);
    expect(await r.body()).toBe('Payload expected.');
  });

  it.each(['bad_session', randomUUID()])('answers a send to the unknown session %s with 404', async (id) => {
    const r = await post(`/echo/000/${id}/xhr_send`, '["x"]');
    expect(r.status).toBe(404);
  });

  it('accepts [] as a heartbeat from the client', async () => {
    const s = session();
    await (await post(`${s}/xhr`)).body();
    expect((await post(`${s}/xhr_send`, '[]')).status).toBe(204);
    expect((await post(`${s}/xhr_send`, '["a"]')).status).toBe(204);
    expect(await (await post(`${s}/xhr`)).body()).toBe('a["a"]\n');
  });

  it('answers the preflights of xhr and xhr_send', async () => {
    for (const path of [`${session()}/xhr`, `${session()}/xhr_send`, `${session()}/xhr_streaming`]) {
      const r = await RawResponse.open(server.port, { method: 'OPTIONS', path, headers: { Origin: 'test', 'Access-Control-Request-Headers': 'a, b, c' } });
      expect(r.status).toBe(204);
      expect(r.headers['access-control-allow-methods']).toBe('OPTIONS, POST');
      expect(r.headers['access-control-allow-headers']).toBe('a, b, c');
      expect(r.headers['access-control-allow-origin']).toBe('test');
    }
  });
});

describe('xhr streaming', () => {
  it('writes the prelude, o and each frame as chunks of their own', async () => {
    const s = session();
    const stream = await post(`${s}/xhr_streaming`, '', { Origin: 'test' });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('application/javascript; charset=UTF-8');
    expect(stream.headers['cache-control']).toBe(NO_CACHE);
    expect(stream.headers['transfer-encoding']).toBe('chunked');
    expect(stream.headers['content-length']).toBeUndefined();
    expect(await stream.nextChunk()).toBe(PRELUDE);
    expect(await stream.nextChunk()).toBe('o\n');
    expect((await post(`${s}/xhr_send`, '["x"]')).status).toBe(204);
    expect(await stream.nextChunk()).toBe('a["x"]\n');
    stream.destroy();
  });

  it('ends the response once response_limit bytes are written, and the session goes on', async () => {
    const s = session();
    const stream = await post(`${s}/xhr_streaming`);
    expect(await stream.nextChunk()).toBe(PRELUDE);
    expect(await stream.nextChunk()).toBe('o\n');
    const message = 'x'.repeat(128);
    for (let i = 0; i < 31; i++) {
      expect((await post(`${s}/xhr_send`, JSON.stringify([message]))).status).toBe(204);
      expect(await stream.nextChunk()).toBe(`a["${message}"]\n`);
    }
    expect(await stream.nextChunk()).toBeNull();
    const next = await post(`${s}/xhr_streaming`);
    expect(await next.nextChunk()).toBe(PRELUDE);
    expect((await post(`${s}/xhr_send`, '["again"]')).status).toBe(204);
    expect(await next.nextChunk()).toBe('a["again"]\n');
    next.destroy();
  });

  it('tells a second stream 2010 and ends it', async () => {
    const s = session();
    const first = await post(`${s}/xhr_streaming`);
    expect(await first.nextChunk()).toBe(PRELUDE);
    expect(await first.nextChunk()).toBe('o\n');
    const second = await post(`${s}/xhr_streaming`);
    expect(await second.nextChunk()).toBe(PRELUDE);
    expect(await second.nextChunk()).toBe('c[2010,"Another connection still open"]\n');
    expect(await second.nextChunk()).toBeNull();
    first.destroy();
  });

  it('repeats the close frame of a closed session to every later stream', async () => {
    const s = `/close/000/${randomUUID()}`;
    const first = await post(`${s}/xhr_streaming`);
    expect(await first.nextChunk()).toBe(PRELUDE);
    expect(await first.nextChunk()).toBe('o\n');
    expect(await first.nextChunk()).toBe('c[3000,"Go away!"]\n');
    expect(await first.nextChunk()).toBeNull();
    const second = await post(`${s}/xhr_streaming`);
    expect(await second.nextChunk()).toBe(PRELUDE);
    expect(await second.nextChunk()).toBe('c[3000,"Go away!"]\n');
    expect(await second.nextChunk()).toBeNull();
  });

  it('over HTTP/1.0 writes the raw body and closes the connection, without chunking', async () => {
    const r = await RawResponse.open(server.port, {
      method: 'POST',
      path: `/close/000/${randomUUID()}/xhr_streaming`,
      version: '1.0',
      headers: { Connection: 'Keep-Alive' },
      body: '',
    });
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(r.headers['content-length']).toBeUndefined();
    expect(await r.body()).toBe(PRELUDE + 'o\n' + 'c[3000,"Go away!"]\n');
  });
});

describe('HTTP versions', () => {
  it('answers an HTTP/1.0 greeting without chunking', async () => {
    const r = await RawResponse.open(server.port, { method: 'GET', path: '/echo', version: '1.0', headers: { Connection: 'Keep-Alive' } });
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(await r.body()).toBe('Welcome to SockJS!\n');
  });

  it('keeps an HTTP/1.1 connection alive for a second request', async () => {
    const socket = connect(server.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    const request = 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n';
    socket.write(request);
    await eventually(() => Buffer.concat(received).toString().includes('Welcome'), 2000, 'the first answer');
    socket.write(request);
    await eventually(() => Buffer.concat(received).toString().split('Welcome to SockJS!').length === 3, 2000, 'the second answer');
    expect(Buffer.concat(received).toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    socket.destroy();
  });
});

describe('websocket', () => {
  const wsUrl = (path: string) => server.url.replace('http', 'ws') + path;

  it('opens with o and echoes a["a"] for ["a"]', async () => {
    const client = await connectWs(wsUrl(`${session()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.send('["a"]');
    expect(await client.next()).toBe('a["a"]');
    client.ws.close();
  });

  it('ignores an empty message and [], then still echoes', async () => {
    const client = await connectWs(wsUrl(`${session()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.send('');
    client.ws.send('[]');
    client.ws.send('["b"]');
    expect(await client.next()).toBe('a["b"]');
    client.ws.close();
  });

  it('sends the close frame, then closes the websocket, when the application closes', async () => {
    const client = await connectWs(wsUrl(`/close/000/${randomUUID()}/websocket`));
    expect(await client.next()).toBe('o');
    expect(await client.next()).toBe('c[3000,"Go away!"]');
    expect(await client.closed).toEqual({ code: 1000, reason: 'Normal closure' });
  });

  it('closes the websocket on broken JSON', async () => {
    const client = await connectWs(wsUrl(`${session()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.send('["a');
    expect(await client.closed).toEqual({ code: 3000, reason: 'Broken framing.' });
  });

  it('gives two websockets on one session path independent sessions', async () => {
    const path = `${session()}/websocket`;
    const a = await connectWs(wsUrl(path));
    const b = await connectWs(wsUrl(path));
    expect(await a.next()).toBe('o');
    expect(await b.next()).toBe('o');
    a.ws.send('["to a"]');
    b.ws.send('["to b"]');
    expect(await a.next()).toBe('a["to a"]');
    expect(await b.next()).toBe('a["to b"]');
    a.ws.close();
    await a.closed;
    const again = await connectWs(wsUrl(path));
    expect(await again.next()).toBe('o');
    b.ws.close();
    again.ws.close();
  });

  it('cannot be reached by the HTTP transports', async () => {
    const s = session();
    const client = await connectWs(wsUrl(`${s}/websocket`));
    expect(await client.next()).toBe('o');
    expect((await post(`${s}/xhr_send`, '["x"]')).status).toBe(404);
    client.ws.close();
  });

  it('answers a plain GET on a websocket URL with 400', async () => {
    const r = await get(`${session()}/websocket`);
    expect(r.status).toBe(400);
    expect(await r.body()).toBe('Not a valid websocket request');
  });

  it('answers an Upgrade with Connection: close with 400', async () => {
    const r = await get(`${session()}/websocket`, { Upgrade: 'WebSocket', Connection: 'close' });
    expect(r.status).toBe(400);
  });

  it('answers an upgrade to another path under the prefix and stays up', async () => {
    const r = await get('/echo/info', {
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
      'Sec-WebSocket-Version': '13',
    });
    expect(r.status).toBe(400);
    await r.closed();
    expect((await get('/echo')).status).toBe(200);
  });

  it('completes the RFC 6455 handshake with the right accept key and no Content-Length', async () => {
    const r = await get(`${session()}/websocket`, {
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Origin': 'http://example.com',
    });
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-accept']).toBe('HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
    expect(r.headers.connection!.toLowerCase()).toBe('upgrade');
    expect(r.headers.upgrade!.toLowerCase()).toBe('websocket');
    expect(r.headers['content-length']).toBeUndefined();
    r.destroy();
  });
});

describe('raw websocket', () => {
  const wsUrl = (path: string) => server.url.replace('http', 'ws') + path;

  it('echoes text verbatim, with no SockJS framing', async () => {
    const client = await connectWs(wsUrl('/echo/websocket'));
    client.ws.send('Hello world!\uffff');
    expect(await client.next()).toBe('Hello world!\uffff');
    client.ws.close();
  });

  it('closes with the application code and reason', async () => {
    const client = await connectWs(wsUrl('/close/websocket'));
    expect(await client.closed).toEqual({ code: 3000, reason: 'Go away!' });
  });

  it('refuses handshakes older than RFC 6455 with 400', async () => {
    const r = await get('/echo/websocket', {
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
      'Sec-WebSocket-Version': '7',
    });
    expect(r.status).toBe(400);
    expect(await r.body()).toBe('Only supported WebSocket protocol is RFC 6455.');
  });
});

describe('websocket: false', () => {
  it('answers both websocket URLs with 404 and says so in /info', async () => {
    const http = createHttpServer();
    createServer({ prefix: '/x', websocket: false, log: () => undefined }).attach(http);
    const running = await listen(http);
    try {
      const info = JSON.parse(await (await RawResponse.open(running.port, { method: 'GET', path: '/x/info' })).body());
      expect(info.websocket).toBe(false);
      for (const path of ['/x/websocket', `/x/000/${randomUUID()}/websocket`]) {
        const r = await RawResponse.open(running.port, {
          method: 'GET',
          path,
          headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==', 'Sec-WebSocket-Version': '13' },
        });
        expect(r.status).toBe(404);
        expect(r.headers['cache-control']).toBe('public, max-age=31536000');
      }
    } finally {
      await running.close();
    }
  });
});

describe('jsessionid as a function', () => {
  it('is called for every session response, sets the cookie itself, and never for /info', async () => {
    const calls: string[] = [];
    const http = createHttpServer();
    createServer({
      prefix: '/j',
      log: () => undefined,
      jsessionid: (req, res) => {
        calls.push(`${req.method} ${req.url}`);
        res.setHeader('Set-Cookie', 'JSESSIONID=chosen; path=/; HttpOnly');
      },
    }).attach(http);
    const running = await listen(http);
    try {
      const s = `/j/0/${randomUUID()}`;
      const open = await RawResponse.open(running.port, { method: 'POST', path: `${s}/xhr`, body: '' });
      expect(open.headers['set-cookie']).toBe('JSESSIONID=chosen; path=/; HttpOnly');
      expect(await open.body()).toBe('o\n');
      const send = await RawResponse.open(running.port, { method: 'POST', path: `${s}/xhr_send`, body: '["x"]' });
      expect(send.headers['set-cookie']).toBe('JSESSIONID=chosen; path=/; HttpOnly');
      const info = await RawResponse.open(running.port, { method: 'GET', path: '/j/info' });
      expect(info.headers['set-cookie']).toBeUndefined();
      expect(JSON.parse(await info.body()).cookie_needed).toBe(true);
      expect(calls).toEqual([`POST ${s}/xhr`, `POST ${s}/xhr_send`]);
    } finally {
      await running.close();
    }
  });
});
