import { randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import { Socket } from 'net';
import { firstValueFrom, take, toArray } from 'rxjs';
import { MAX_CLOSE_CODES, PrefixCounters } from '../lib/metrics';
import { RawResponse } from './helpers/raw-http';
import { eventually, listen, type Running } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { type Connection, createServer, type MetricsSnapshot, type Server, type ServerOptions } from '../lib';

describe('PrefixCounters', () => {
  it('keeps sessions open by transport, and closed by code', () => {
    const counters = new PrefixCounters();
    counters.opened('websocket');
    counters.opened('websocket');
    counters.opened('xhr-polling');
    counters.closed('websocket', 1000);
    counters.closed('xhr-polling', 1006);
    const figures = counters.snapshot(12);
    expect(figures.sessionsOpen).toEqual({ websocket: 1, 'xhr-polling': 0 });
    expect(figures.sessionsOpened).toEqual({ websocket: 2, 'xhr-polling': 1 });
    expect(figures.sessionsClosed).toEqual({ '1000': 1, '1006': 1 });
    expect(figures.bytesQueued).toBe(12);
    expect(figures.refused).toEqual({ origin: 0, size: 0, rate: 0, cap: 0, authorization: 0, bad_input: 0 });
  });

  it('counts at most MAX_CLOSE_CODES codes apart beside the server\'s own, and the rest as other', () => {
    const counters = new PrefixCounters();
    const close = (code: number) => {
      counters.opened('websocket-raw');
      counters.closed('websocket-raw', code);
    };
    for (let code = 4000; code < 4000 + MAX_CLOSE_CODES + 10; code++) close(code);
    close(4000);
    // The server's own codes are counted apart however many others came first.
    close(1008);
    close(3000);
    close(1011);
    const closed = counters.snapshot(0).sessionsClosed;
    expect(Object.keys(closed)).toHaveLength(MAX_CLOSE_CODES + 4);
    expect(closed.other).toBe(10);
    expect(closed['4000']).toBe(2);
    expect([closed['1008'], closed['3000'], closed['1011']]).toEqual([1, 1, 1]);
  });
});

describe('server.metrics()', () => {
  let running: Running | undefined;
  let sockjs: Server;
  let connections: Connection[] = [];

  async function start(options: ServerOptions = {}): Promise<void> {
    const http = createHttpServer();
    connections = [];
    sockjs = createServer({ log: () => undefined, ...options });
    sockjs.on('connection', (connection: Connection) => {
      connections.push(connection);
      connection.on('data', (message: string) => connection.write(message));
    });
    sockjs.installHandlers(http, { prefix: '/echo' });
    running = await listen(http);
  }

  afterEach(async () => {
    sockjs?.close();
    await running?.close();
    running = undefined;
  });

  const wsUrl = (path: string) => `${running!.url.replace('http', 'ws')}${path}`;
  const post = (path: string, body = '', headers: Record<string, string> = {}) => RawResponse.open(running!.port, { method: 'POST', path, headers, body });
  const echo = () => sockjs.metrics().prefixes['/echo']!;

  it('counts sessions by transport and close code, and messages and bytes each way', async () => {
    await start();
    const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.send(JSON.stringify(['héllo', 'x']));
    expect(await client.next()).toBe('a["héllo"]');
    expect(await client.next()).toBe('a["x"]');
    const s = `/echo/0/${randomUUID()}`;
    await (await post(`${s}/xhr`)).body();
    expect((await post(`${s}/xhr_send`, '["abc"]')).status).toBe(204);
    expect(await (await post(`${s}/xhr`)).body()).toBe('a["abc"]\n');
    expect(echo()).toMatchObject({
      sessionsOpen: { websocket: 1, 'xhr-polling': 1 },
      sessionsOpened: { websocket: 1, 'xhr-polling': 1 },
      sessionsClosed: {},
      messagesReceived: 3,
      messagesSent: 3,
      // What came: the websocket message as sent, and the send's body.
      bytesReceived: Buffer.byteLength(JSON.stringify(['héllo', 'x'])) + Buffer.byteLength('["abc"]'),
      // What went: the messages' UTF-8 bytes.
      bytesSent: Buffer.byteLength('héllo') + 1 + 3,
    });
    connections[0]!.close(4000, 'done');
    await client.closed;
    connections[1]!.close();
    await eventually(() => echo().sessionsOpen.websocket === 0 && echo().sessionsOpen['xhr-polling'] === 0);
    expect(echo().sessionsClosed).toEqual({ '4000': 1, '1000': 1 });
    expect(sockjs.metrics().time).toBeGreaterThan(Date.now() - 10_000);
  });

  it('counts a client that goes away, and a session that times out', async () => {
    await start({ disconnect_delay: 50 });
    const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.terminate();
    await (await post(`/echo/0/${randomUUID()}/xhr`)).body();
    // The websocket's close without a close frame is 1006, as the session's time out is.
    await eventually(() => echo().sessionsClosed['1006'] === 2, 2000, 'both sessions to close');
    expect(echo().sessionsClosed).toEqual({ '1006': 2 });
    expect(echo().sessionsOpen).toEqual({ websocket: 0, 'xhr-polling': 0 });
  });

  it('counts heartbeats, and the websocket peers closed for answering no ping', async () => {
    await start({ heartbeat_delay: 60 });
    // A peer that completes the handshake and then never reads: it answers no ping.
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
    socket.write(
      `GET /echo/0/${randomUUID()}/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${Buffer.from(randomUUID().slice(0, 16)).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const s = `/echo/0/${randomUUID()}`;
    await (await post(`${s}/xhr`)).body();
    expect(await (await post(`${s}/xhr`)).body(3000)).toBe('h\n');
    await eventually(() => echo().deadPeers === 1, 3000, 'the silent peer to be closed');
    expect(echo().heartbeats).toBeGreaterThanOrEqual(2);
    expect(echo().sessionsClosed['3000']).toBe(1);
    socket.destroy();
  });

  it('counts refusals by cause: origin, size and bad input', async () => {
    await start({ origins: ['https://good.example'], max_message_size: 100 });
    expect((await post(`/echo/0/${randomUUID()}/xhr`, '', { Origin: 'https://evil.example' })).status).toBe(403);
    const s = `/echo/0/${randomUUID()}`;
    await (await post(`${s}/xhr`)).body();
    expect((await post(`${s}/xhr_send`, JSON.stringify(['x'.repeat(200)]))).status).toBe(413);
    expect((await post(`${s}/xhr_send`, '[broken')).status).toBe(500);
    expect((await RawResponse.open(running!.port, { method: 'GET', path: `/echo/0/${randomUUID()}/jsonp` })).status).toBe(500);
    const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.send('not json');
    await client.closed;
    const big = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    expect(await big.next()).toBe('o');
    big.ws.send(JSON.stringify(['x'.repeat(200)]));
    expect((await big.closed).code).toBe(1009);
    await eventually(() => echo().refused.bad_input === 3 && echo().refused.size === 2);
    expect(echo().refused).toEqual({ origin: 1, size: 2, rate: 0, cap: 0, authorization: 0, bad_input: 3 });
  });

  it('measures what waits for a client that does not read', async () => {
    await start();
    const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    expect(await client.next()).toBe('o');
    client.ws.pause();
    const big = 'y'.repeat(64 * 1024);
    for (let i = 0; i < 64; i++) connections[0]!.write(big);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Four MiB written; whatever the kernel's buffers took, most of it still waits here, and
    // what waits is counted once, wherever it waits.
    const cost = 64 * (64 * 1024 + 64);
    expect(echo().bytesQueued).toBeGreaterThan(1024 * 1024);
    expect(echo().bytesQueued).toBeLessThanOrEqual(cost);
    client.ws.terminate();
  });

  it('counts what waits for an HTTP client once, and less as the client takes it', async () => {
    await start();
    const s = `/echo/0/${randomUUID()}`;
    await (await post(`${s}/xhr`)).body();
    for (let i = 0; i < 100; i++) connections[0]!.write('x'.repeat(1000));
    await new Promise((resolve) => setImmediate(resolve));
    expect(echo().bytesQueued).toBe(100 * 1064);
    await (await post(`${s}/xhr`)).body();
    const after = echo().bytesQueued;
    expect(after).toBeLessThan(100 * 1064);
    expect(after).toBeGreaterThan(0);
  });

  it('counts what the channels publish on the bus', async () => {
    await start();
    sockjs.broadcast('one');
    sockjs.channel('news').publish('two');
    expect(sockjs.metrics().bus).toEqual({ published: 2, publishFailed: 0, publishDropped: 0, relayed: 0, relayFailed: 0 });
  });

  it('counts nothing with metrics: false, and leaves the prefixes out', async () => {
    await start({ metrics: false });
    const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    expect(await client.next()).toBe('o');
    expect(sockjs.metrics().prefixes).toEqual({});
    client.ws.close();
  });

  it('counts on for a prefix that is detached and installed again', async () => {
    await start();
    const s = `/echo/0/${randomUUID()}`;
    await (await post(`${s}/xhr`)).body();
    sockjs.detach(running!.http);
    expect(echo()).toMatchObject({ sessionsOpen: { 'xhr-polling': 0 }, sessionsOpened: { 'xhr-polling': 1 }, sessionsClosed: { '1001': 1 } });
    sockjs.installHandlers(running!.http, { prefix: '/echo' });
    await (await post(`/echo/0/${randomUUID()}/xhr`)).body();
    expect(echo()).toMatchObject({ sessionsOpen: { 'xhr-polling': 1 }, sessionsOpened: { 'xhr-polling': 2 } });
  });

  it('completes metrics$ at once when the server has closed already', async () => {
    await start();
    sockjs.close();
    const got = await firstValueFrom(sockjs.metrics$(10).pipe(toArray()));
    expect(got).toEqual([]);
  });

  it('emits a snapshot every period from metrics$, until the server closes', async () => {
    await start();
    const snapshots = firstValueFrom(sockjs.metrics$(30).pipe(take(2), toArray()));
    const got: MetricsSnapshot[] = await snapshots;
    expect(got).toHaveLength(2);
    expect(got[1]!.time).toBeGreaterThanOrEqual(got[0]!.time + 25);
    let completed = false;
    sockjs.metrics$(30).subscribe({ complete: () => (completed = true) });
    sockjs.close();
    expect(completed).toBe(true);
  });
});
