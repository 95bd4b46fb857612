/**
 * Fault injection against a real server: clients that reset or leave at every stage, pipelined
 * requests, applications that throw, ignore backpressure or stop reading, and teardown with
 * requests in flight. The crash oracle of the test environment fails the suite if any of it
 * reaches the process.
 */
import { randomUUID } from 'crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'http';
import { connect } from 'net';
import { Readable, Writable } from 'stream';
import { RawResponse } from './helpers/raw-http';
import { echo, eventually, listen, type Running } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { type CloseReason, type Connection, createServer, type Server, type ServerOptions } from '../lib';

interface Started extends Running {
  readonly sockjs: Server;
  readonly connections: Connection[];
  readonly logged: string[];
}

let running: Started | undefined;

async function start(options: ServerOptions = {}, onConnection: (c: Connection) => void = echo, http: HttpServer = createHttpServer()): Promise<Started> {
  const logged: string[] = [];
  const sockjs = createServer({ prefix: '/echo', log: (severity, line) => logged.push(`${severity} ${line}`), ...options });
  const connections: Connection[] = [];
  sockjs.on('connection', (connection: Connection) => {
    connections.push(connection);
    onConnection(connection);
  });
  sockjs.attach(http);
  const listening = await listen(http);
  running = { ...listening, sockjs, connections, logged, close: async () => (sockjs.close(), listening.close()) };
  return running;
}

afterEach(async () => {
  await running?.close();
  running = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const openConnections = (http: HttpServer) =>
  new Promise<number>((resolve, reject) => http.getConnections((error, n) => (error ? reject(error) : resolve(n))));

async function stillServing(port: number): Promise<void> {
  const r = await RawResponse.open(port, { method: 'GET', path: '/echo' });
  expect(await r.body()).toBe('Welcome to SockJS!\n');
}

const upgradeHead = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** Sends `text`, then resets the connection as soon as the first byte of the answer arrives. */
function resetOnAnswer(port: number, text: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.once('data', () => socket.resetAndDestroy());
    socket.once('close', () => resolve());
    socket.write(text);
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}

describe('sockets handed over by upgrade', () => {
  it.each([
    ['an unknown path', '/echo/foo', ''],
    ['the info path', '/echo/info', ''],
    ['a refused origin', `/echo/0/${randomUUID()}/websocket`, 'Origin: http://evil.example\r\n'],
    ['a websocket path', `/echo/0/${randomUUID()}/websocket`, ''],
    ['the raw websocket path', '/echo/websocket', ''],
    ['a hixie-76 handshake', `/echo/0/${randomUUID()}/websocket`, 'Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n'],
  ])('survive a client that resets once the answer to %s starts', async (_name, path, extra) => {
    const { port } = await start({ origins: ['http://good.example'], hixie76: true });
    const head = extra.includes('Key1') ? upgradeHead(path, extra).replace('Sec-WebSocket-Version: 13\r\n', '') + 'abcdefgh' : upgradeHead(path, extra);
    for (let i = 0; i < 20; i++) await resetOnAnswer(port, head);
    await stillServing(port);
    await eventually(() => running!.sockjs.sessionCount === 0, 3000, 'every session to end');
  });

  it('destroys an upgrade outside the prefix when no one else listens for upgrades', async () => {
    const { port } = await start();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(upgradeHead('/elsewhere/websocket'));
    await closed;
    expect(await openConnections(running!.http)).toBe(0);
  });

  it('leaves an upgrade outside the prefix to an earlier listener', async () => {
    const http = createHttpServer();
    const seen: string[] = [];
    http.on('upgrade', (req, socket) => {
      seen.push(req.url ?? '');
      socket.end('HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n');
    });
    const { port } = await start({}, echo, http);
    const r = await RawResponse.open(port, upgradeHead('/elsewhere/websocket'));
    expect(r.status).toBe(418);
    expect(seen).toEqual(['/elsewhere/websocket']);
  });

  it('closes a refused upgrade as soon as the client has closed its side', async () => {
    const { port } = await start();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(upgradeHead('/echo/nowhere/at/all/x'));
    await eventually(() => answer.includes('\r\n\r\n'), 2000, 'the refusal');
    socket.end();
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 404/);
  });
});

describe('clients that go away', () => {
  it('ends what a connection of pipelined receivers started when it closes', async () => {
    const { port, sockjs } = await start({ disconnect_delay: 100 });
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const post = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
    const a = `/echo/0/${randomUUID()}`;
    const b = `/echo/0/${randomUUID()}`;
    // The second poll waits, and the stream behind it waits for its turn.
    socket.write(post(`${a}/xhr`) + post(`${a}/xhr`) + post(`${b}/xhr_streaming`));
    await eventually(() => sockjs.sessionCount === 1, 2000, 'the first session');
    await sleep(50);
    expect(sockjs.sessionCount).toBe(1);
    socket.destroy();
    await eventually(() => sockjs.sessionCount === 0, 3000, 'the session to end');
  });

  it('opens no session for receivers pipelined behind a request that is never answered, and keeps nothing once the client goes', async () => {
    const { port, sockjs, http } = await start({ disconnect_delay: 100 });
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    // Outside the prefix, with no handler of the application's: no one answers it.
    let text = 'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n';
    for (let i = 0; i < 40; i++) text += `POST /echo/0/${randomUUID()}/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
    socket.write(text);
    await sleep(200);
    expect(sockjs.sessionCount).toBe(0);
    socket.resetAndDestroy();
    const deadline = Date.now() + 3000;
    while ((await openConnections(http)) > 0) {
      if (Date.now() > deadline) throw new Error('the connection is still open 3 s after the client reset it');
      await sleep(10);
    }
    expect(sockjs.sessionCount).toBe(0);
  });

  it('drops a connection that pipelines more than 8 receivers behind an unanswered request', async () => {
    const { port, sockjs, logged } = await start({ disconnect_delay: 100 });
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let text = 'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n';
    for (let i = 0; i < 9; i++) text += `POST /echo/0/${randomUUID()}/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
    socket.write(text);
    await closed;
    expect(sockjs.sessionCount).toBe(0);
    expect(logged).toContain('info a connection pipelined more than 8 receiving requests: dropped');
  });

  it('serves pipelined receivers in turn once the requests before them are answered', async () => {
    const { port, sockjs } = await start({ disconnect_delay: 100 });
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const post = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    socket.write(ids.map((id) => post(`/echo/0/${id}/xhr`)).join(''));
    await eventually(() => (received.match(/\r\n\r\no\n/g) ?? []).length === 3, 2000, 'three open frames');
    expect(sockjs.sessionCount).toBe(3);
    socket.destroy();
  });

  it('ends a session whose client half-closes a stream', async () => {
    const { port, sockjs } = await start({ disconnect_delay: 100 });
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    socket.write(`POST /echo/0/${randomUUID()}/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    await eventually(() => sockjs.sessionCount === 1, 2000, 'the session');
    socket.end();
    await eventually(() => sockjs.sessionCount === 0, 3000, 'the session to end');
    socket.destroy();
  });

  it('forgets a send whose body the client abandons halfway', async () => {
    const { port, sockjs, connections } = await start({ disconnect_delay: 100 });
    const s = `/echo/0/${randomUUID()}`;
    expect(await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body()).toBe('o\n');
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(`POST ${s}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n["ab`);
    await sleep(50);
    socket.resetAndDestroy();
    const received: string[] = [];
    connections[0]!.on('data', (m: string) => received.push(m));
    await eventually(() => sockjs.sessionCount === 0, 3000, 'the session to expire');
    expect(received).toEqual([]);
  });
});

describe('a client that resets or closes at every stage of every transport', () => {
  const id = () => `/echo/0/${randomUUID()}`;
  const post = (path: string, body = '') => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
  const exchanges: Array<[string, () => string]> = [
    ['xhr', () => post(`${id()}/xhr`)],
    [
      'xhr, a poll that waits behind the one that opened',
      () => {
        const session = id();
        return post(`${session}/xhr`) + post(`${session}/xhr`);
      },
    ],
    ['xhr_streaming', () => post(`${id()}/xhr_streaming`)],
    ['eventsource', () => get(`${id()}/eventsource`)],
    ['htmlfile', () => get(`${id()}/htmlfile?c=cb`)],
    ['jsonp', () => get(`${id()}/jsonp?c=cb`)],
    ['xhr_send', () => post(`${id()}/xhr_send`, '["a","b"]')],
    ['jsonp_send', () => post(`${id()}/jsonp_send`, 'd=%5B%22a%22%5D').replace('\r\n\r\n', '\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n')],
    ['websocket', () => upgradeHead(`${id()}/websocket`) + '\x81\x85\x00\x00\x00\x00["ab"]'],
    ['raw websocket', () => upgradeHead('/echo/websocket') + '\x81\x82\x00\x00\x00\x00ab'],
    ['info', () => get('/echo/info')],
  ];

  /**
   * Sends `text` up to `cut` bytes, then resets or closes its side; or, with cut -1, all of it,
   * leaving on the first byte back or after 100 ms without one (a poll that waits). Resolves
   * whether the connection closed within 2 s: after a FIN it is the server that must close it.
   */
  function cutAt(port: number, text: string, cut: number, how: 'reset' | 'fin'): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: how === 'fin' });
      socket.on('error', () => undefined);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 2000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
      const leave = () => (how === 'reset' ? socket.resetAndDestroy() : socket.end());
      if (cut === -1) {
        const waiting = setTimeout(leave, 100);
        socket.once('data', () => {
          clearTimeout(waiting);
          leave();
        });
        socket.write(text);
      } else {
        socket.write(text.slice(0, cut), leave);
      }
      // What the server answers is read and dropped, so that its closing is seen.
      socket.resume();
    });
  }

  it.each(exchanges)('%s: leaves no session and no socket behind, whatever the cut', async (_name, make) => {
    const { port, sockjs, http } = await start({ disconnect_delay: 100, hixie76: true });
    const sample = make();
    const head = sample.indexOf('\r\n\r\n') + 4;
    const cuts = [1, Math.floor(head / 2), head - 2, head, Math.floor((head + sample.length) / 2), sample.length, -1];
    const lingering: string[] = [];
    for (const cut of [...new Set(cuts)]) {
      // A session of its own for each cut: one already open would make a poll wait instead.
      for (const how of ['reset', 'fin'] as const) if (!(await cutAt(port, make(), cut, how))) lingering.push(`${how} at ${cut}`);
    }
    expect(lingering).toEqual([]);
    await eventually(() => sockjs.sessionCount === 0, 3000, 'every session to end');
    const deadline = Date.now() + 3000;
    while ((await openConnections(http)) > 0) {
      if (Date.now() > deadline) throw new Error('a socket is still open 3 s after its client left');
      await sleep(10);
    }
    await stillServing(port);
  });
});

describe('client input that could recurse', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

  it('delivers a websocket message nested 10,000 deep as the JSON text the client sent', async () => {
    const received: string[] = [];
    const { url } = await start({}, (c) => c.on('data', (m: string) => received.push(m)));
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send(`[${deep(10_000)}, {"a": ${deep(10_000)}}]`);
    client.ws.send(deep(10_000));
    await eventually(() => received.length === 3, 2000, 'three messages');
    expect(received).toEqual([deep(10_000), `{"a": ${deep(10_000)}}`, deep(9_999)]);
    client.ws.close();
  });

  it('delivers an xhr_send element nested 100,000 deep as its text', async () => {
    const received: string[] = [];
    const { port } = await start({}, (c) => c.on('data', (m: string) => received.push(m)));
    const s = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
    const r = await RawResponse.open(port, { method: 'POST', path: `${s}/xhr_send`, body: `["x",${deep(100_000)}]` });
    expect(r.status).toBe(204);
    expect(received).toEqual(['x', deep(100_000)]);
  });
});

describe('max_payload_messages', () => {
  it('answers an xhr_send of more messages with 413 and keeps the session', async () => {
    const { port } = await start({ max_payload_messages: 3 });
    const s = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
    const r = await RawResponse.open(port, { method: 'POST', path: `${s}/xhr_send`, body: '["","","",""]' });
    expect(r.status).toBe(413);
    expect(await r.body()).toBe('Too many messages.');
    expect((await RawResponse.open(port, { method: 'POST', path: `${s}/xhr_send`, body: '["a","b","c"]' })).status).toBe(204);
    expect(await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body()).toBe('a["a","b","c"]\n');
  });

  it('closes a websocket whose message carries more with 1009', async () => {
    const { url } = await start({ max_payload_messages: 3 });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send('["","","",""]');
    expect(await client.closed).toEqual({ code: 1009, reason: 'Too many messages' });
  });
});

describe('applications that throw', () => {
  it('closes only the session whose data listener throws, with 1011', async () => {
    const { url, logged } = await start({}, (c) => {
      c.on('data', (m: string) => {
        if (m === 'boom') throw new Error('listener fault');
        c.write(m);
      });
    });
    const ws = (id: string) => connectWs(`${url.replace('http', 'ws')}/echo/0/${id}/websocket`);
    const good = await ws(randomUUID());
    const bad = await ws(randomUUID());
    expect(await good.next()).toBe('o');
    expect(await bad.next()).toBe('o');
    bad.ws.send('["boom"]');
    expect(await bad.next()).toBe('c[1011,"Internal error"]');
    good.ws.send('["still here"]');
    expect(await good.next()).toBe('a["still here"]');
    expect(logged.some((line) => line.startsWith('error') && line.includes('listener fault'))).toBe(true);
    good.ws.close();
  });

  it('guards write callbacks that throw, on an open connection and after close', async () => {
    const { url, logged } = await start({}, (c) => {
      c.on('data', (m: string) => {
        c.write(m, () => {
          throw new Error('callback fault');
        });
      });
      c.on('close', () =>
        c.write('late', (error) => {
          if (error) throw error;
        }),
      );
    });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send('["a"]');
    expect(await client.next()).toBe('a["a"]');
    expect(await client.next()).toBe('c[1011,"Internal error"]');
    await eventually(() => logged.some((line) => line.includes('SOCKJS_ERR_CONNECTION_CLOSED') || line.includes('The connection is closing')), 2000, 'the late callback fault');
    expect(logged.some((line) => line.includes('callback fault'))).toBe(true);
    await stillServing(running!.port);
  });

  it('guards an end() callback that throws', async () => {
    const { url, logged } = await start({}, (c) =>
      c.end(() => {
        throw new Error('end callback fault');
      }),
    );
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    expect(await client.next()).toBe('c[1000,"Normal closure"]');
    await eventually(() => logged.some((line) => line.includes('end callback fault')), 2000, 'the fault to be logged');
    await stillServing(running!.port);
  });

  it('survives a close listener and a connection listener that throw', async () => {
    const { url, logged } = await start({}, (c) => {
      c.on('close', () => {
        throw new Error('close fault');
      });
      echo(c);
    });
    running!.sockjs.on('connection', () => {
      throw new Error('connection fault');
    });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    expect(await client.next()).toBe('c[1011,"Internal error"]');
    await eventually(() => logged.some((line) => line.includes('close fault')), 2000, 'the close fault to be logged');
    expect(logged.some((line) => line.includes('connection fault'))).toBe(true);
    await stillServing(running!.port);
  });

  it.each([
    ['a poll', 'POST', 'xhr', undefined],
    ['a stream', 'POST', 'xhr_streaming', undefined],
    ['an eventsource', 'GET', 'eventsource', undefined],
    ['an htmlfile', 'GET', 'htmlfile?c=cb', undefined],
    ['a jsonp poll', 'GET', 'jsonp?c=cb', undefined],
    ['an xhr_send', 'POST', 'xhr_send', '["a"]'],
    ['a jsonp_send', 'POST', 'jsonp_send', 'd=%5B%22a%22%5D'],
    ['a preflight', 'OPTIONS', 'xhr', undefined],
  ])('answers %s 500 when the jsessionid function throws, and goes on serving', async (_name, method, path, body) => {
    let calls = 0;
    const { port, logged } = await start({
      jsessionid: () => {
        if (calls++ % 2 === 0) throw new Error('cookie fault');
      },
    });
    const session = randomUUID();
    const headers: Record<string, string> = body?.startsWith('d=') ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {};
    const r = await RawResponse.open(port, { method, path: `/echo/0/${session}/${path}`, headers, body });
    expect([r.status, await r.body()]).toStrictEqual([500, 'Internal Server Error']);
    expect(logged.filter((line) => line.startsWith('error ') && line.includes('cookie fault'))).toHaveLength(1);
    // The next request of the same kind gets the function's second call, which does not throw.
    const next = await RawResponse.open(port, { method: 'POST', path: `/echo/0/${session}/xhr` });
    expect([next.status, await next.body()]).toStrictEqual([200, 'o\n']);
    await stillServing(port);
  });

  it('drops a preflight whose jsessionid function sent the headers itself, logs it, and goes on serving', async () => {
    const { port, logged } = await start({
      jsessionid: (_req, res) => {
        res.writeHead(200);
      },
    });
    const started = Date.now();
    const text = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(received));
      socket.write('OPTIONS /echo/info HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => socket.destroy(), 5000).unref();
    });
    // The server closes the connection at once: no 204 after the function's own head (which
    // Node had not flushed yet, so nothing arrives at all).
    expect(Date.now() - started).toBeLessThan(2000);
    expect(text).toBe('');
    expect(logged.filter((line) => line.startsWith('error OPTIONS /echo/info'))).toHaveLength(1);
    expect(logged.some((line) => line.startsWith('info OPTIONS /echo/info 204'))).toBe(false);
    await stillServing(port);
  });

  it('answers 500 when the origins function throws, on a request and on an upgrade, and goes on serving', async () => {
    const { port, logged } = await start({
      origins: (origin) => {
        if (origin === 'http://throws.example') throw new Error('origin fault');
        return true;
      },
    });
    const info = await RawResponse.open(port, { method: 'GET', path: '/echo/info', headers: { Origin: 'http://throws.example' } });
    expect([info.status, await info.body()]).toStrictEqual([500, 'Internal Server Error']);
    const upgrade = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.write(upgradeHead(`/echo/0/${randomUUID()}/websocket`, 'Origin: http://throws.example\r\n'));
    });
    expect(upgrade.split('\r\n')[0]).toBe('HTTP/1.1 500 Internal Server Error');
    expect(logged.filter((line) => line.includes('origin fault'))).toHaveLength(2);
    const ok = await RawResponse.open(port, { method: 'GET', path: '/echo/info', headers: { Origin: 'http://fine.example' } });
    expect(ok.status).toBe(200);
    await stillServing(port);
  });
});

describe('writes to a connection that cannot take them', () => {
  it('bounds what a writer that ignores backpressure queues, and drops writes once closing', async () => {
    let connection: Connection | undefined;
    const { port } = await start({ max_queue_size: 1024 * 1024 }, (c) => (connection = c));
    // A streaming client that never reads: the kernel buffers fill, then the session's queue.
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause();
    socket.write(`POST /echo/0/${randomUUID()}/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    await eventually(() => connection !== undefined, 2000, 'the connection');
    const message = 'x'.repeat(4096);
    let refused = 0;
    let closedAt = -1;
    for (let i = 0; i < 50_000; i++) {
      if (!connection!.write(message)) refused++;
      if (closedAt === -1 && connection!.readyState !== 1) closedAt = i;
      // What waits in the Duplex never passes the limit by more than one message.
      expect(connection!.writableLength).toBeLessThanOrEqual(1024 * 1024 + 4096);
    }
    expect(closedAt).toBeGreaterThan(0);
    expect(refused).toBeGreaterThanOrEqual(50_000 - closedAt);
    const why = await new Promise<CloseReason>((resolve) => connection!.closed$.subscribe(resolve));
    expect(why).toEqual({ code: 1013, reason: 'Send queue full' });
    socket.destroy();
  });

  it('closes with 1013 a websocket that does not read a broadcast flood, and keeps the others', async () => {
    const { url, sockjs } = await start({ max_queue_size: 256 * 1024 }, () => undefined);
    const stalled = connect(Number(new URL(url).port), '127.0.0.1');
    stalled.on('error', () => undefined);
    stalled.write(upgradeHead(`/echo/0/${randomUUID()}/websocket`));
    // This client reads nothing from the start.
    stalled.pause();
    const reader = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await reader.next()).toBe('o');
    await eventually(() => running!.connections.length === 2, 2000, 'both connections');
    const slow = running!.connections.find((c) => c.remotePort === stalled.localPort)!;
    const other = running!.connections.find((c) => c !== slow)!;
    const message = 'b'.repeat(4096);
    for (let i = 0; i < 5_000 && slow.readyState === 1; i++) {
      sockjs.broadcast(message);
      if (i % 50 === 0) await sleep(1);
    }
    const why = await new Promise<CloseReason>((resolve) => slow.closed$.subscribe(resolve));
    expect(why).toEqual({ code: 1013, reason: 'Send queue full' });
    expect(other.readyState).toBe(1);
    stalled.destroy();
    reader.ws.close();
  });

  it('slows a piped source down to a client that does not read, without closing it', async () => {
    let connection: Connection | undefined;
    let produced = 0;
    const { port } = await start({ max_queue_size: 256 * 1024 }, (c) => {
      connection = c;
      new Readable({
        read() {
          if (produced >= 100_000) this.push(null);
          else this.push(`p${produced++}`.padEnd(1024, '.'));
        },
      }).pipe(c);
    });
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(`POST /echo/0/${randomUUID()}/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    socket.pause();
    await eventually(() => connection !== undefined, 2000, 'the connection');
    await sleep(500);
    const stalledAt = produced;
    await sleep(300);
    // The source waits for the client: it has stopped, far short of its 100,000 chunks.
    expect(produced).toBe(stalledAt);
    expect(produced).toBeLessThan(100_000);
    expect(connection!.readyState).toBe(1);
    expect(connection!.writableLength).toBeLessThanOrEqual(256 * 1024);
    socket.destroy();
  });

  it('counts empty messages against max_queue_size too', async () => {
    let connection: Connection | undefined;
    const { port } = await start({ max_queue_size: 64 * 1024 }, (c) => (connection = c));
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause();
    socket.write(`POST /echo/0/${randomUUID()}/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    await eventually(() => connection !== undefined, 2000, 'the connection');
    // Fill the socket first, so that the writes after wait in the connection.
    while (connection!.readyState === 1 && connection!.write('y'.repeat(65_536))) await sleep(1);
    let writes = 0;
    while (connection!.readyState === 1 && writes < 1_000_000) {
      connection!.write('');
      writes++;
    }
    expect(connection!.readyState).not.toBe(1);
    expect(writes).toBeLessThan(1_000_000);
    socket.destroy();
  });

  it('asks a writer of empty messages to wait, so that one that honours backpressure never reaches the limit', async () => {
    let connection: Connection | undefined;
    const total = 5_000;
    let written = 0;
    const { port } = await start({ max_queue_size: 64 * 1024 }, (c) => {
      connection = c;
      void (async () => {
        while (written < total && c.readyState === 1) {
          written++;
          if (!c.write('')) await new Promise((resolve) => c.once('drain', resolve));
        }
      })();
    });
    const s = `/echo/0/${randomUUID()}`;
    expect(await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body()).toBe('o\n');
    // The client is slow: the writer gets ahead of it until write() says to wait.
    await sleep(100);
    expect(written).toBeLessThan(total);
    let received = 0;
    while (received < total) {
      const body = await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
      expect(body.startsWith('a[')).toBe(true);
      received += (JSON.parse(body.slice(1)) as string[]).length;
    }
    expect(received).toBe(total);
    expect(connection!.readyState).toBe(1);
  });

  it('returns false at once for a write after end() or close(), emits no error, and calls back with one', async () => {
    let connection: Connection | undefined;
    const { url } = await start({}, (c) => (connection = c));
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    await eventually(() => connection !== undefined, 2000, 'the connection');
    const errors: unknown[] = [];
    connection!.on('error', (e) => errors.push(e));
    connection!.end();
    const calledBack = new Promise<unknown>((resolve) => connection!.write('late', (error) => resolve(error)));
    expect(connection!.write('later')).toBe(false);
    expect(connection!.close()).toBe(false);
    expect((await calledBack as { code?: string }).code).toBe('SOCKJS_ERR_CONNECTION_CLOSED');
    await client.closed;
    await sleep(20);
    expect(connection!.write('after close')).toBe(false);
    expect(errors).toEqual([]);
  });
});

describe('an application that stops reading', () => {
  it('stops reading the websocket while paused, then delivers everything in order', async () => {
    let connection: Connection | undefined;
    const { url } = await start({}, (c) => {
      connection = c;
      c.pause();
    });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    const messages = Array.from({ length: 2000 }, (_, i) => `m${i}`);
    // In batches, so that they arrive in many reads: what one read brings is delivered whole.
    for (let i = 0; i < messages.length; i += 50) {
      for (const m of messages.slice(i, i + 50)) client.ws.send(JSON.stringify([m]));
      await sleep(5);
    }
    await sleep(100);
    // Held back at the socket, not queued in the connection: far fewer than were sent wait there.
    expect(connection!.readableLength).toBeLessThan(200);
    const received: string[] = [];
    connection!.on('data', (m: string) => received.push(m));
    connection!.resume();
    await eventually(() => received.length === messages.length, 5000, 'every message');
    expect(received).toEqual(messages);
    client.ws.close();
  });

  it('holds the answer to an xhr_send while paused', async () => {
    let connection: Connection | undefined;
    const { port } = await start({}, (c) => {
      connection = c;
      c.pause();
    });
    const s = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
    const many = JSON.stringify(Array.from({ length: 100 }, (_, i) => `m${i}`));
    const send = RawResponse.start(port, { method: 'POST', path: `${s}/xhr_send`, body: many });
    await sleep(200);
    expect(send.status).toBe(0);
    const received: string[] = [];
    connection!.on('data', (m: string) => received.push(m));
    connection!.resume();
    await send.head();
    expect(send.status).toBe(204);
    expect(received).toHaveLength(100);
  });

  it('counts held answers against max_queue_size, so that sends to a paused application cannot pile up', async () => {
    let connection: Connection | undefined;
    const { port } = await start({ max_queue_size: 64 * 1024 }, (c) => {
      connection = c;
      c.on('data', () => undefined);
      c.pause();
    });
    const s = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
    // Fill the readable side past its mark: from now on every send's answer is held.
    const first = RawResponse.start(port, { method: 'POST', path: `${s}/xhr_send`, body: JSON.stringify(Array.from({ length: 20 }, () => 'x')) });
    await sleep(50);
    expect(first.status).toBe(0);
    const sends: RawResponse[] = [];
    for (let i = 0; i < 40 && connection!.readyState === 1; i++) {
      sends.push(RawResponse.start(port, { method: 'POST', path: `${s}/xhr_send`, body: '[]' }));
      await sleep(5);
    }
    // 64 KiB holds 8 answers of 8 KiB: the session closes long before the 40th.
    const why = await new Promise<CloseReason>((resolve) => connection!.closed$.subscribe(resolve));
    expect(why).toEqual({ code: 1013, reason: 'Receive queue full' });
    expect(sends.length).toBeLessThan(40);
    // Every held answer is released when the session closes.
    for (const send of [first, ...sends]) expect((await send.head()).status).toBe(204);
  });

  it('closes with 1013 when a paused application lets more than max_queue_size pile up', async () => {
    let connection: Connection | undefined;
    const { url } = await start({ max_queue_size: 2000 }, (c) => {
      connection = c;
      c.pause();
    });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send(JSON.stringify(Array.from({ length: 100 }, () => 'z'.repeat(50))));
    expect(await client.next()).toBe('c[1013,"Receive queue full"]');
    expect(connection!.readyState).toBe(3);
  });

  it('keeps a pipe to a slow writable bounded', async () => {
    let sink: Writable | undefined;
    const written: string[] = [];
    const { url } = await start({}, (c) => {
      sink = new Writable({
        objectMode: true,
        highWaterMark: 4,
        write(chunk: string, _encoding, callback) {
          written.push(chunk);
          setTimeout(callback, 1);
        },
      });
      c.pipe(sink);
    });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    for (let i = 0; i < 500; i++) client.ws.send(JSON.stringify([`p${i}`]));
    await eventually(() => written.length === 500, 10_000, 'every message through the pipe');
    expect(written[499]).toBe('p499');
    expect(sink).toBeDefined();
    client.ws.close();
  });
});

describe('teardown', () => {
  it('answers a send whose body is still arriving when the server closes', async () => {
    const { port, sockjs } = await start();
    const s = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
    const slow = RawResponse.start(port, `POST ${s}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n["a`);
    await sleep(50);
    sockjs.close();
    await slow.head();
    expect(slow.status).toBe(503);
    expect(await slow.body()).toBe('Server shutting down.');
  });

  it('answers a waiting poll and a stream with the close frame when the server closes', async () => {
    const { port, sockjs } = await start();
    const poll = RawResponse.start(port, { method: 'POST', path: `/echo/0/${randomUUID()}/xhr`, body: '' });
    expect(await poll.body()).toBe('o\n');
    const id = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(port, { method: 'POST', path: `${id}/xhr`, body: '' })).body();
    const waiting = RawResponse.start(port, { method: 'POST', path: `${id}/xhr`, body: '' });
    const stream = await RawResponse.open(port, { method: 'POST', path: `/echo/0/${randomUUID()}/xhr_streaming`, body: '' });
    await stream.nextChunk();
    expect(await stream.nextChunk()).toBe('o\n');
    await sleep(20);
    sockjs.close();
    expect(await waiting.body()).toBe('c[1001,"Server shutting down"]\n');
    expect(await stream.nextChunk()).toBe('c[1001,"Server shutting down"]\n');
  });
});

describe('the Readable side', () => {
  it('is a stream that can be consumed with for await', async () => {
    const received: string[] = [];
    const { url } = await start({}, (c) => {
      void (async () => {
        for await (const m of c as unknown as Readable) received.push(m as string);
      })();
    });
    const client = await connectWs(`${url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send('["a","b"]');
    await eventually(() => received.length === 2, 2000, 'two messages');
    client.ws.close();
    expect(received).toEqual(['a', 'b']);
  });
});

describe('a fault inside the session table', () => {
  it('ends only the session concerned with 1011, answers what it carried, and never reaches the process', async () => {
    // A scheduler that cannot arm a timer: nothing a client can cause, but a fault outside the
    // reducer, met by every session at its first step.
    const failing = {
      now: () => Date.now(),
      schedule: () => {
        throw new Error('scheduler fault');
      },
    };
    const { port, logged, sockjs } = await start({ scheduler: failing });
    for (let i = 0; i < 3; i++) {
      const poll = await RawResponse.open(port, { method: 'POST', path: `/echo/0/${randomUUID()}/xhr`, body: '' });
      expect(await poll.body()).toBe('c[1011,"Internal error"]\n');
    }
    const send = await RawResponse.open(port, { method: 'POST', path: `/echo/0/${randomUUID()}/xhr_send`, body: '["x"]' });
    expect(send.status).toBe(404);
    const upgrade = await RawResponse.open(port, upgradeHead(`/echo/0/${randomUUID()}/websocket`));
    expect(upgrade.status).toBe(101);
    await eventually(() => upgrade.rest.includes('c[1011,"Internal error"]'), 2000, 'the close frame');
    upgrade.destroy();
    expect(logged.filter((line) => line.startsWith('error') && line.includes('scheduler fault')).length).toBeGreaterThanOrEqual(3);
    expect(sockjs.sessionCount).toBe(0);
    await stillServing(port);
  });
});
