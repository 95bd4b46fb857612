import { randomUUID } from 'crypto';
import { connect } from 'net';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'http';
import { PassThrough, Writable } from 'stream';
import { toArray } from 'rxjs';
import { RawResponse } from './helpers/raw-http';
import { echo, echoServer, type EchoServer, eventually, listen, type Running } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { type CloseReason, type Connection, createServer, listen as listenSockjs } from '../lib';

const post = (port: number, path: string, body = '', headers: Record<string, string> = {}) =>
  RawResponse.open(port, { method: 'POST', path, headers, body });

describe('installing the server', () => {
  let running: Running | undefined;

  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('serves several prefixes from one server, each with its own options', async () => {
    const http = createHttpServer();
    const sockjs = createServer({ log: () => undefined, response_limit: 100 });
    sockjs.on('connection', echo);
    sockjs.installHandlers(http, { prefix: '/small' });
    sockjs.installHandlers(http, { prefix: '/large', response_limit: 100_000 });
    running = await listen(http);
    const ends = async (prefix: string) => {
      const s = `${prefix}/0/${randomUUID()}`;
      const stream = await post(running!.port, `${s}/xhr_streaming`);
      await stream.nextChunk();
      await stream.nextChunk();
      await post(running!.port, `${s}/xhr_send`, JSON.stringify(['x'.repeat(200)]));
      await stream.nextChunk();
      const ended = (await stream.nextChunk(300).catch(() => 'open')) === null;
      stream.destroy();
      return ended;
    };
    expect(await ends('/small')).toBe(true);
    expect(await ends('/large')).toBe(false);
  });

  it('keeps sessions of different prefixes apart, even under one session id', async () => {
    const http = createHttpServer();
    const sockjs = createServer({ log: () => undefined });
    sockjs.on('connection', echo);
    sockjs.installHandlers(http, { prefix: '/a' });
    sockjs.installHandlers(http, { prefix: '/b' });
    running = await listen(http);
    const id = randomUUID();
    expect(await (await post(running.port, `/a/0/${id}/xhr`)).body()).toBe('o\n');
    expect(await (await post(running.port, `/b/0/${id}/xhr`)).body()).toBe('o\n');
    expect((await post(running.port, `/a/0/${id}/xhr_send`, '["to a"]')).status).toBe(204);
    expect(await (await post(running.port, `/a/0/${id}/xhr`)).body()).toBe('a["to a"]\n');
  });

  it('detach hands requests and upgrades back to the listeners that were there before', async () => {
    const http = createHttpServer((_req: IncomingMessage, res: ServerResponse) => res.end('mine'));
    const upgrades: string[] = [];
    http.on('upgrade', (req: IncomingMessage, socket) => {
      upgrades.push(req.url ?? '');
      socket.destroy();
    });
    const sockjs = createServer({ prefix: '/echo', log: () => undefined });
    sockjs.attach(http);
    running = await listen(http);
    expect(await (await RawResponse.open(running.port, { method: 'GET', path: '/echo' })).body()).toBe('Welcome to SockJS!\n');
    sockjs.detach(http);
    expect(await (await RawResponse.open(running.port, { method: 'GET', path: '/echo' })).body()).toBe('mine');
    await connectWs(running.url.replace('http', 'ws') + '/echo/websocket').catch(() => undefined);
    expect(upgrades).toEqual(['/echo/websocket']);
    expect(http.listeners('request')).toHaveLength(1);
    expect(http.listeners('upgrade')).toHaveLength(1);
  });

  it('counts live sessions, down to zero once they have expired', async () => {
    const http = createHttpServer();
    // Long enough that a slow moment of the machine cannot expire the sessions before they are counted.
    const sockjs = createServer({ prefix: '/x', disconnect_delay: 1000, log: () => undefined });
    sockjs.attach(http);
    running = await listen(http);
    expect(sockjs.sessionCount).toBe(0);
    await (await post(running.port, `/x/0/${randomUUID()}/xhr`)).body();
    await (await post(running.port, `/x/0/${randomUUID()}/xhr`)).body();
    expect(sockjs.sessionCount).toBe(2);
    await (await post(running.port, `/x/0/${randomUUID()}/xhr_send`, '["x"]')).body();
    expect(sockjs.sessionCount).toBe(2);
    await eventually(() => sockjs.sessionCount === 0, 4000, 'the sessions to expire');
  });

  it('refuses to install one prefix twice on one HTTP server, and allows it on another', () => {
    const http = createHttpServer();
    const sockjs = createServer({ log: () => undefined, prefix: '/echo' });
    sockjs.attach(http);
    expect(() => sockjs.installHandlers(http)).toThrow(expect.objectContaining({ code: 'SOCKJS_ERR_ALREADY_ATTACHED' }));
    expect(() => sockjs.installHandlers(http, { prefix: '/echo/' })).toThrow(expect.objectContaining({ code: 'SOCKJS_ERR_ALREADY_ATTACHED' }));
    expect(() => sockjs.installHandlers(http, { prefix: '/other' })).not.toThrow();
    expect(() => sockjs.attach(createHttpServer())).not.toThrow();
    // The refused installation left the HTTP server's listeners as they were.
    expect(http.listenerCount('request')).toBe(1);
    sockjs.detach(http);
    expect(() => sockjs.attach(http)).not.toThrow();
    sockjs.close();
  });

  it('refuses to be installed again once closed, so that no connection can reach a completed connections$', () => {
    const sockjs = createServer({ log: () => undefined, prefix: '/echo' });
    sockjs.close();
    const http = createHttpServer();
    expect(() => sockjs.attach(http)).toThrow(expect.objectContaining({ code: 'SOCKJS_ERR_SERVER_CLOSED' }));
    expect(() => sockjs.installHandlers(http)).toThrow(expect.objectContaining({ code: 'SOCKJS_ERR_SERVER_CLOSED' }));
    expect(http.listenerCount('request')).toBe(0);
    expect(http.listenerCount('upgrade')).toBe(0);
  });

  it('listen() creates a server and installs it in one call', async () => {
    const http = createHttpServer();
    listenSockjs(http, { prefix: '/x', log: () => undefined });
    running = await listen(http);
    expect(await (await RawResponse.open(running.port, { method: 'GET', path: '/x' })).body()).toBe('Welcome to SockJS!\n');
  });
});

describe('connections', () => {
  let server: EchoServer;

  beforeEach(async () => {
    server = await echoServer();
  });

  afterEach(async () => {
    await server.close();
  });

  it('emits each connection both as a connection event and on connections$', async () => {
    const seen: Connection[] = [];
    const subscription = server.sockjs.connections$.subscribe((c) => seen.push(c));
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    await client.next();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(server.connections[0]);
    subscription.unsubscribe();
    client.ws.close();
  });

  it('completes connections$ when the server closes', async () => {
    const all = new Promise<Connection[]>((resolve) => server.sockjs.connections$.pipe(toArray()).subscribe(resolve));
    server.sockjs.close();
    expect(await all).toEqual([]);
  });

  it('close() closes every session with 1001, answering pending polls and open streams', async () => {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    const s = `/echo/0/${randomUUID()}`;
    await (await post(server.port, `${s}/xhr`)).body();
    const poll = RawResponse.start(server.port, { method: 'POST', path: `${s}/xhr`, body: '' });
    await eventually(() => server.requests.filter((r) => r === `POST ${s}/xhr`).length === 2, 2000, 'the poll');
    const reasons = server.connections.map((c) => new Promise<CloseReason>((resolve) => c.closed$.subscribe(resolve)));
    server.sockjs.close();
    expect(await client.next()).toBe('c[1001,"Server shutting down"]');
    expect(await poll.body()).toBe('c[1001,"Server shutting down"]\n');
    expect(await Promise.all(reasons)).toEqual([
      { code: 1001, reason: 'Server shutting down' },
      { code: 1001, reason: 'Server shutting down' },
    ]);
  });

  it('describes the request that opened the session, never with its cookie', async () => {
    const id = randomUUID();
    const r = await post(server.port, `/echo/000/${id}/xhr?t=1`, '', {
      Cookie: 'secret=1',
      'User-Agent': 'test-agent',
      'X-Forwarded-For': '10.1.2.3',
      Referer: 'http://example.com/page',
    });
    await r.body();
    const c = server.connections[0]!;
    expect(c.protocol).toBe('xhr-polling');
    expect(c.prefix).toBe('/echo');
    expect(c.url).toBe(`/echo/000/${id}/xhr?t=1`);
    expect(c.pathname).toBe(`/echo/000/${id}/xhr`);
    expect(c.headers).toEqual({
      host: '127.0.0.1',
      'user-agent': 'test-agent',
      'x-forwarded-for': '10.1.2.3',
      referer: 'http://example.com/page',
    });
    expect(c.headers.cookie).toBeUndefined();
    expect(c.remoteAddress).toBe('127.0.0.1');
    expect(c.remotePort).toBeGreaterThan(0);
    expect(c.address).toMatchObject({ address: '127.0.0.1', port: server.port });
    expect(c.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(c.readyState).toBe(1);
  });

  it.each([
    ['websocket', '/websocket', 'websocket'],
    ['raw websocket', '', 'websocket-raw'],
  ])('reports the %s transport as its protocol', async (_name, suffix, protocol) => {
    const path = suffix ? `/echo/0/${randomUUID()}${suffix}` : '/echo/websocket';
    const client = await connectWs(server.url.replace('http', 'ws') + path);
    await eventually(() => server.connections.length === 1, 2000, 'the connection');
    expect(server.connections[0]!.protocol).toBe(protocol);
    client.ws.close();
  });

  it('fires close exactly once, and closed$ tells why, when the client closes its websocket', async () => {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    await client.next();
    const c = server.connections[0]!;
    let closes = 0;
    c.on('close', () => closes++);
    const why = new Promise<CloseReason>((resolve) => c.closed$.subscribe(resolve));
    const messages = new Promise<string[]>((resolve) => c.messages$.pipe(toArray()).subscribe(resolve));
    client.ws.send('["one"]');
    expect(await client.next()).toBe('a["one"]');
    client.ws.close(4000, 'bye');
    expect(await why).toEqual({ code: 4000, reason: 'bye' });
    expect(await messages).toEqual(['one']);
    await eventually(() => closes === 1, 2000, 'the close event');
    await new Promise((resolve) => setImmediate(resolve));
    expect(closes).toBe(1);
    expect(c.readyState).toBe(3);
  });

  it('fires close once, promptly, when the application closes the session', async () => {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    await client.next();
    const c = server.connections[0]!;
    let closes = 0;
    c.on('close', () => closes++);
    expect(c.close(4001, 'done')).toBe(true);
    expect(c.close(4001, 'again')).toBe(false);
    expect(await client.next()).toBe('c[4001,"done"]');
    await eventually(() => closes === 1, 2000, 'the close event');
    expect(await new Promise((resolve) => c.closed$.subscribe(resolve))).toEqual({ code: 4001, reason: 'done' });
  });

  it('accepts a close code given as a string, as the sockjs typings allow', async () => {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    await client.next();
    server.connections[0]!.close('3001', 'text code');
    expect(await client.next()).toBe('c[3001,"text code"]');
  });

  it('ends the session and fires close when the client drops its stream', async () => {
    const s = `/echo/0/${randomUUID()}`;
    const stream = await post(server.port, `${s}/xhr_streaming`);
    await stream.nextChunk();
    await stream.nextChunk();
    const c = server.connections[0]!;
    const why = new Promise<CloseReason>((resolve) => c.closed$.subscribe(resolve));
    stream.destroy();
    expect(await why).toEqual({ code: 1002, reason: 'Connection interrupted' });
  });

  it('drops a message written after close quietly, as the sockjs package does', async () => {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    await client.next();
    const c = server.connections[0]!;
    c.close();
    await eventually(() => c.readyState === 3, 2000, 'the close');
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    expect(c.write('late')).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([]);
  });
});

describe('the Connection as a Duplex', () => {
  let server: EchoServer;

  beforeEach(async () => {
    server = await echoServer();
  });

  afterEach(async () => {
    await server.close();
  });

  async function openWebsocket() {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    return { client, connection: server.connections[0]! };
  }

  it('pipes incoming messages into a writable, one message per chunk', async () => {
    const { client, connection } = await openWebsocket();
    const received: string[] = [];
    connection.removeAllListeners('data');
    connection.pipe(
      new Writable({
        objectMode: true,
        write(chunk: string, _encoding, callback) {
          received.push(chunk);
          callback();
        },
      }),
    );
    client.ws.send('["a","b"]');
    client.ws.send('["c"]');
    await eventually(() => received.length === 3, 2000, 'three messages');
    expect(received).toEqual(['a', 'b', 'c']);
    client.ws.close();
  });

  it('sends what is piped into it, each chunk as one message', async () => {
    const { client, connection } = await openWebsocket();
    const source = new PassThrough();
    source.pipe(connection);
    source.write('first');
    expect(await client.next()).toBe('a["first"]');
    source.write(Buffer.from('second'));
    expect(await client.next()).toBe('a["second"]');
    client.ws.close();
  });

  it('returns false past the high-water mark while the session has not taken the writes, then drains', async () => {
    const { client, connection } = await openWebsocket();
    connection.removeAllListeners('data');
    const kilobyte = 'k'.repeat(1024);
    const count = Math.ceil(connection.writableHighWaterMark / 1024) + 4;
    const returned: boolean[] = [];
    const drained = new Promise<void>((resolve) => connection.once('drain', () => resolve()));
    // Writes from a data handler are taken by the session only after the message that caused
    // them has been handled, so they pile up in the stream meanwhile.
    connection.on('data', () => {
      for (let i = 0; i < count; i++) returned.push(connection.write(kilobyte + i));
    });
    client.ws.send('["go"]');
    await drained;
    expect(returned.slice(0, 4)).toEqual([true, true, true, true]);
    expect(returned[returned.length - 1]).toBe(false);
    const received: string[] = [];
    while (received.length < count) received.push(...(JSON.parse((await client.next()).slice(1)) as string[]));
    expect(received).toEqual(Array.from({ length: count }, (_, i) => kilobyte + i));
    client.ws.close();
  });

  it('holds a writer that honours backpressure while its websocket client reads nothing, then delivers all in order', async () => {
    const { client, connection } = await openWebsocket();
    const chunk = 'p'.repeat(16 * 1024);
    const most = 4000; // 64 MiB: far more than the sockets' buffers can take
    const drainedWithin = (ms: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          connection.off('drain', onDrain);
          resolve(false);
        }, ms);
        const onDrain = () => {
          clearTimeout(timer);
          resolve(true);
        };
        connection.once('drain', onDrain);
      });
    let written = 0;
    let stalled = false;
    client.ws.pause();
    while (written < most) {
      if (connection.write(chunk + written++)) continue;
      if (!(await drainedWithin(500))) {
        stalled = true;
        break;
      }
    }
    // The writer was made to wait once the client's and the server's socket buffers were full,
    // rather than having every write taken into memory.
    expect(stalled).toBe(true);
    expect(written).toBeLessThan(most);
    client.ws.resume();
    const received: string[] = [];
    while (received.length < written) received.push(...(JSON.parse((await client.next()).slice(1)) as string[]));
    expect(received.map((message) => message.slice(chunk.length))).toEqual(Array.from({ length: written }, (_, i) => String(i)));
    expect(received.every((message) => message.startsWith(chunk))).toBe(true);
    client.ws.close();
  });

  it('batches messages written together from a data handler into one frame, in order', async () => {
    const { client, connection } = await openWebsocket();
    connection.removeAllListeners('data');
    connection.on('data', () => {
      for (let i = 0; i < 5; i++) connection.write(String(i));
    });
    client.ws.send('["go"]');
    let text = '';
    while (text.split('","').length < 5) {
      const frame = await client.next();
      text += (text ? ',' : '') + frame.slice(2, -1);
    }
    expect(JSON.parse(`[${text}]`)).toEqual(['0', '1', '2', '3', '4']);
    client.ws.close();
  });

  it('end() closes the session normally', async () => {
    const { client, connection } = await openWebsocket();
    connection.end('bye');
    expect(await client.next()).toBe('a["bye"]');
    expect(await client.next()).toBe('c[1000,"Normal closure"]');
    expect((await client.closed).code).toBe(1000);
  });

  it('writes any value as its text, as the sockjs package does', async () => {
    const { client, connection } = await openWebsocket();
    connection.write(42);
    expect(await client.next()).toBe('a["42"]');
    connection.write(null);
    expect(await client.next()).toBe('a["null"]');
    client.ws.close();
  });

  it('send() delivers a message like write()', async () => {
    const { client, connection } = await openWebsocket();
    expect(connection.send('hello')).toBe(true);
    expect(await client.next()).toBe('a["hello"]');
    client.ws.close();
  });
});

describe('an xhr_streaming client that reads nothing', () => {
  let running: Running;
  const connections: Connection[] = [];

  beforeEach(async () => {
    const http = createHttpServer();
    // A limit far above what the test writes, so that one response carries the whole stream.
    const sockjs = createServer({ log: () => undefined, response_limit: 1 << 30 });
    sockjs.on('connection', (connection: Connection) => connections.push(connection));
    sockjs.installHandlers(http, { prefix: '/stream' });
    running = await listen(http);
  });

  afterEach(async () => {
    connections.length = 0;
    await running.close();
  });

  it('holds a writer that honours backpressure, then delivers all in order once it reads', async () => {
    const socket = connect(running.port, '127.0.0.1');
    socket.write(`POST /stream/0/${randomUUID()}/xhr_streaming HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    await eventually(() => connections.length === 1 && text.includes('o\n'), 2000, 'the stream to open');
    socket.pause();
    const connection = connections[0]!;
    const chunk = 'p'.repeat(16 * 1024);
    const most = 4000; // 64 MiB: far more than the sockets' buffers can take
    let written = 0;
    let stalled = false;
    while (written < most) {
      if (connection.write(`${chunk}#${written++}#`)) continue;
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          connection.off('drain', onDrain);
          resolve(false);
        }, 500);
        const onDrain = () => {
          clearTimeout(timer);
          resolve(true);
        };
        connection.once('drain', onDrain);
      });
      if (!drained) {
        stalled = true;
        break;
      }
    }
    expect(stalled).toBe(true);
    expect(written).toBeLessThan(most);
    socket.resume();
    await eventually(() => text.includes(`#${written - 1}#`), 10000, 'the last message');
    const seen = [...text.matchAll(/#(\d+)#/g)].map((match) => Number(match[1]));
    expect(seen).toEqual(Array.from({ length: written }, (_, i) => i));
    socket.destroy();
  });
});
