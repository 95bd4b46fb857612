import { randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import { Socket } from 'net';
import { RateLimiter } from '../lib/flood';
import { RawResponse } from './helpers/raw-http';
import { eventually, listen, type Running } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { type Connection, createServer, type Server, type ServerOptions } from '../lib';

describe('RateLimiter', () => {
  const limit = (messages: number, bytes = Infinity, burst = 1) => ({ messages, bytes, burst, policy: 'drop' as const });

  it('lets a burst of the rate through at once, then what the rate refills', () => {
    const limiter = new RateLimiter(limit(5), 0);
    expect(limiter.take(['a', 'b', 'c', 'd', 'e', 'f', 'g'], 0)).toBe(5);
    expect(limiter.take(['h'], 100)).toBe(0);
    expect(limiter.take(['i', 'j', 'k'], 400)).toBe(2);
    // A quiet spell fills the bucket to its size, and no further.
    expect(limiter.take(Array.from({ length: 9 }, () => 'x'), 60_000)).toBe(5);
  });

  it('holds burst seconds of the rate', () => {
    const limiter = new RateLimiter(limit(2, Infinity, 3), 0);
    expect(limiter.take(Array.from({ length: 10 }, () => 'x'), 0)).toBe(6);
  });

  it('counts UTF-8 bytes against a byte rate, and takes messages in order until one does not fit', () => {
    const limiter = new RateLimiter(limit(100, 12), 0);
    // 'é' is two bytes, and each message counts 2 more (its quotes): 6 + 6 fit in 12, the next
    // 6 do not, and the one after is not taken either.
    expect(limiter.take(['éé', 'éé', 'éé', 'a'], 0)).toBe(2);
    expect(limiter.take(['aaaa'], 500)).toBe(1);
  });

  it('counts empty messages against a byte rate too', () => {
    const limiter = new RateLimiter(limit(1_000_000, 10), 0);
    expect(limiter.take(Array.from({ length: 100 }, () => ''), 0)).toBe(5);
  });

  it('never lets a message bigger than the byte bucket through', () => {
    const limiter = new RateLimiter(limit(100, 10), 0);
    expect(limiter.take(['x'.repeat(11)], 10_000)).toBe(0);
  });

  it('does not go back in time when the clock does', () => {
    const limiter = new RateLimiter(limit(1), 1000);
    expect(limiter.take(['a'], 1000)).toBe(1);
    expect(limiter.take(['b'], 500)).toBe(0);
  });
});

describe('on a server', () => {
  let running: Running | undefined;
  let sockjs: Server;
  let received: string[] = [];
  let connections: Connection[] = [];
  let lines: string[] = [];

  async function start(options: ServerOptions): Promise<void> {
    const http = createHttpServer();
    received = [];
    connections = [];
    lines = [];
    sockjs = createServer({ prefix: '/echo', log: (severity, line) => lines.push(`${severity} ${line}`), ...options });
    sockjs.on('connection', (connection: Connection) => {
      connections.push(connection);
      connection.on('data', (message: string) => {
        received.push(message);
        connection.write(message);
      });
    });
    sockjs.attach(http);
    running = await listen(http);
  }

  afterEach(async () => {
    sockjs?.close();
    await running?.close();
    running = undefined;
  });

  /** The next `count` messages of SockJS array frames, whichever frames they come in. */
  async function messages(client: { next(): Promise<string> }, count: number): Promise<string[]> {
    const got: string[] = [];
    while (got.length < count) {
      const frame = await client.next();
      if (!frame.startsWith('a')) throw new Error(`expected an array frame, got ${frame}`);
      got.push(...(JSON.parse(frame.slice(1)) as string[]));
    }
    return got;
  }

  const wsUrl = (path: string) => `${running!.url.replace('http', 'ws')}${path}`;
  const post = (path: string, body = '', headers: Record<string, string> = {}, timeoutMs = 2000) =>
    RawResponse.open(running!.port, { method: 'POST', path, headers, body }, timeoutMs);

  describe('rate_limit', () => {
    it('drops what a websocket sends over the limit, counts it and logs one line, and the session goes on', async () => {
      await start({ rate_limit: { messages: 3, burst: 1 } });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      client.ws.send(JSON.stringify(['1', '2', '3', '4', '5']));
      client.ws.send(JSON.stringify(['6']));
      expect(await messages(client, 3)).toEqual(['1', '2', '3']);
      await eventually(() => sockjs.metrics().prefixes['/echo']!.messagesDropped === 3);
      expect(received).toEqual(['1', '2', '3']);
      expect(sockjs.metrics().prefixes['/echo']!.refused.rate).toBe(3);
      expect(lines.filter((l) => l.includes('over its rate limit'))).toEqual([expect.stringMatching(/^info session \d+: 2 message\(s\) over its rate limit dropped$/)]);
      // Once the session's rest is over, it reads again.
      client.ws.send(JSON.stringify(['7']));
      expect(await client.next()).toBe('a["7"]');
      expect(connections[0]!.readyState).toBe(1);
      client.ws.close();
    });

    it('does not read a websocket over its limit until its bucket is full again, and drops nothing it had not read', async () => {
      await start({ rate_limit: { messages: 2 } });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      client.ws.send(JSON.stringify(['1', '2', '3']));
      expect(await messages(client, 2)).toEqual(['1', '2']);
      const over = Date.now();
      client.ws.send(JSON.stringify(['4']));
      // 2 messages a second: the bucket of 2 is full again a second after it was emptied.
      expect(await client.next(3000)).toBe('a["4"]');
      expect(Date.now() - over).toBeGreaterThanOrEqual(800);
      expect(received).toEqual(['1', '2', '4']);
      expect(sockjs.metrics().prefixes['/echo']!.messagesDropped).toBe(1);
      client.ws.close();
    });

    it('holds the answer to an HTTP send over the limit until its bucket is full again', async () => {
      await start({ rate_limit: { messages: 2 } });
      const s = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
      const started = Date.now();
      expect((await post(`${s}/xhr_send`, '["1","2","3"]', {}, 3000)).status).toBe(204);
      expect(Date.now() - started).toBeGreaterThanOrEqual(800);
      expect((await post(`${s}/xhr_send`, '["4"]')).status).toBe(204);
      expect(await (await post(`${s}/xhr`)).body()).toBe('a["1","2","4"]\n');
    });

    it('reads a steady flood once per rest, however long it lasts', async () => {
      await start({ rate_limit: { messages: 100 } });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      const frame = JSON.stringify(['x']);
      const until = Date.now() + 2500;
      let sent = 0;
      while (Date.now() < until) {
        if (client.ws.bufferedAmount < 1024 * 1024) {
          for (let i = 0; i < 500; i++) client.ws.send(frame);
          sent += 500;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      const echo = sockjs.metrics().prefixes['/echo']!;
      // Each rest lets one read through (at most 64 KiB, some 8,000 frames) and a second's worth.
      expect(echo.messagesReceived).toBeLessThanOrEqual(100 * 4);
      expect(echo.messagesReceived + echo.messagesDropped).toBeLessThan(60_000);
      expect(sent).toBeGreaterThan(60_000);
      client.ws.terminate();
    });

    it('rests a session whose message is too big for its byte bucket, too', async () => {
      await start({ rate_limit: { bytes: 1000 } });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      const frame = JSON.stringify(['y'.repeat(1000)]);
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        if (client.ws.bufferedAmount < 1024 * 1024) for (let i = 0; i < 50; i++) client.ws.send(frame);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const echo = sockjs.metrics().prefixes['/echo']!;
      expect(echo.messagesReceived).toBe(0);
      expect(echo.messagesDropped).toBeLessThan(1000);
      client.ws.terminate();
    });

    it('answers a send held by a rest at once when its session closes', async () => {
      await start({ rate_limit: { messages: 1, burst: 5 } });
      const s = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
      const started = Date.now();
      // A bucket of 5 messages: the 6th to 8th are over, and the session rests 5 s.
      const send = post(`${s}/xhr_send`, '["1","2","3","4","5","6","7","8"]', {}, 6000);
      await eventually(() => received.length === 5);
      await new Promise((resolve) => setTimeout(resolve, 50));
      connections[0]!.close(4000, 'bye');
      expect((await send).status).toBe(204);
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it('closes a session whose held answers pass max_queue_size, as for a paused application', async () => {
      await start({ rate_limit: { messages: 1, burst: 5 }, max_queue_size: 64 * 1024 });
      const s = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
      const over = post(`${s}/xhr_send`, '["1","2","3","4","5","6"]', {}, 6000);
      await eventually(() => received.length === 5);
      // Each answer held counts 8 KiB: the 8th passes 64 KiB.
      const sends = Array.from({ length: 10 }, () => post(`${s}/xhr_send`, '[]', {}, 6000));
      sends.push(over);
      await eventually(() => connections[0]!.readyState === 3, 3000, 'the session to close');
      expect((await Promise.all(sends)).every((r) => r.status === 204 || r.status === 404)).toBe(true);
      expect(sockjs.metrics().prefixes['/echo']!.sessionsClosed).toEqual({ '1013': 1 });
    });

    it('closes a dead peer within a heartbeat interval, rest or not', async () => {
      await start({ rate_limit: { messages: 1, burst: 5 }, heartbeat_delay: 200 });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      client.ws.send(JSON.stringify(['1', '2', '3', '4', '5', '6', '7', '8']));
      await eventually(() => received.length === 5);
      // The client stops reading: it answers no ping.
      const socket = (client.ws as unknown as { _socket: { pause(): void } })._socket;
      socket.pause();
      const started = Date.now();
      await eventually(() => connections[0]!.readyState === 3, 3000, 'the dead peer to be closed');
      expect(Date.now() - started).toBeLessThan(1500);
      expect(sockjs.metrics().prefixes['/echo']!.deadPeers).toBe(1);
      client.ws.terminate();
    });

    it('closes a session over the limit with 1008 "Rate limit exceeded" under policy close, after what fit', async () => {
      await start({ rate_limit: { messages: 2, policy: 'close' } });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      client.ws.send(JSON.stringify(['1', '2', '3']));
      // The session closes at once: the application reads what fit, and its answers come too late.
      expect(await client.next()).toBe('c[1008,"Rate limit exceeded"]');
      await eventually(() => received.length === 2);
      expect(received).toEqual(['1', '2']);
      expect(sockjs.metrics().prefixes['/echo']!.refused.rate).toBe(1);
      // As for every close of a SockJS-framed websocket, the code is in the close frame.
      expect((await client.closed).code).toBe(1000);
      expect(connections[0]!.readyState).toBe(3);
    });

    it('accounts for every message of a flood that closes its session: read, refused or dropped', async () => {
      await start({ rate_limit: { messages: 5, policy: 'close' } });
      const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await client.next()).toBe('o');
      for (let frame = 0; frame < 10; frame++) client.ws.send(JSON.stringify(Array.from({ length: 20 }, (_, i) => `${frame}.${i}`)));
      await client.closed;
      const echo = () => sockjs.metrics().prefixes['/echo']!;
      await eventually(() => echo().messagesReceived + echo().refused.rate + echo().messagesDropped === 200, 2000, 'all 200 to be accounted for');
      expect(echo().messagesReceived).toBe(5);
      expect(lines.filter((l) => l.includes('dropped')).length).toBeGreaterThan(0);
    });

    it('limits the bytes an HTTP session sends, and still answers its sends', async () => {
      // Each message counts its bytes and 2: 7 + 7 fit in 14, 5 more do not.
      await start({ rate_limit: { bytes: 14 } });
      const s = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
      expect((await post(`${s}/xhr_send`, JSON.stringify(['12345', '67890', 'abc']))).status).toBe(204);
      expect(await (await post(`${s}/xhr`)).body()).toBe('a["12345","67890"]\n');
      expect(received).toEqual(['12345', '67890']);
      expect(sockjs.metrics().prefixes['/echo']!.messagesDropped).toBe(1);
    });
  });

  describe('max_sessions and max_sessions_per_address', () => {
    /** The status of a websocket handshake that was refused, or 101. */
    function handshake(url: string, headers: Record<string, string> = {}): Promise<{ status: number; retryAfter?: string; close: () => void }> {
      return connectWs(url, headers).then(
        (client) => ({ status: 101, close: () => client.ws.close() }),
        (error: Error) => {
          const status = Number(/Unexpected server response: (\d+)/.exec(error.message)?.[1] ?? 0);
          return { status, close: () => undefined };
        },
      );
    }

    it('refuses a session over max_sessions with 503 and Retry-After, over every transport, and leaves the open ones be', async () => {
      await start({ max_sessions: 2 });
      const a = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await a.next()).toBe('o');
      const s = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
      expect((await handshake(wsUrl(`/echo/0/${randomUUID()}/websocket`))).status).toBe(503);
      expect((await handshake(wsUrl('/echo/websocket'))).status).toBe(503);
      const poll = await post(`/echo/0/${randomUUID()}/xhr_streaming`);
      expect(poll.status).toBe(503);
      expect(poll.headers['retry-after']).toBe('1');
      expect(await poll.body()).toBe('Too many sessions.');
      // The open ones are untouched: the websocket echoes, the HTTP session takes a send.
      a.ws.send('["still here"]');
      expect(await a.next()).toBe('a["still here"]');
      expect((await post(`${s}/xhr_send`, '["x"]')).status).toBe(204);
      expect(sockjs.metrics().prefixes['/echo']!.refused.cap).toBe(3);
      // Once one closes, a new one opens.
      a.ws.close();
      await eventually(() => connections[0]!.readyState === 3);
      const b = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await b.next()).toBe('o');
      b.ws.close();
    });

    it('counts sessions per address, as client_address names it', async () => {
      await start({ max_sessions_per_address: 1, client_address: (req) => String(req.headers['x-client'] ?? 'none') });
      const a = await handshake(wsUrl(`/echo/0/${randomUUID()}/websocket`), { 'X-Client': 'ann' });
      expect(a.status).toBe(101);
      expect((await handshake(wsUrl(`/echo/0/${randomUUID()}/websocket`), { 'X-Client': 'ann' })).status).toBe(503);
      const b = await handshake(wsUrl(`/echo/0/${randomUUID()}/websocket`), { 'X-Client': 'bob' });
      expect(b.status).toBe(101);
      a.close();
      b.close();
    });

    it('counts an HTTP session until it ends, not while its client is between polls', async () => {
      await start({ max_sessions: 1, disconnect_delay: 100 });
      const s = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${s}/xhr`)).body()).toBe('o\n');
      expect((await post(`/echo/0/${randomUUID()}/xhr`)).status).toBe(503);
      // Its own next poll is no new session.
      expect((await post(`${s}/xhr_send`, '["x"]')).status).toBe(204);
      expect(await (await post(`${s}/xhr`)).body()).toBe('a["x"]\n');
      // Gone for disconnect_delay, it ends, and its place is free.
      await eventually(() => sockjs.sessionCount === 0, 2000, 'the session to time out');
      expect(await (await post(`/echo/0/${randomUUID()}/xhr`)).body()).toBe('o\n');
    });

    it('holds requests pipelined behind another to the caps when their turn comes', async () => {
      await start({ max_sessions: 2 });
      const held = `/echo/0/${randomUUID()}`;
      expect(await (await post(`${held}/xhr`)).body()).toBe('o\n');
      // A poll of that session waits for a message; four polls for new sessions wait behind it.
      const socket = new Socket();
      await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
      let answers = '';
      socket.on('data', (chunk: Buffer) => (answers += chunk.toString('latin1')));
      const poll = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
      socket.write([held, ...Array.from({ length: 4 }, () => `/echo/0/${randomUUID()}`)].map((s) => poll(`${s}/xhr`)).join(''));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await post(`${held}/xhr_send`, '["go"]')).status).toBe(204);
      // The held poll's answer, the one new session that fits, then a refusal that closes the connection.
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      expect((answers.match(/HTTP\/1\.1 \d+/g) ?? []).map((line) => line.slice(9))).toEqual(['200', '200', '503']);
      expect(sockjs.metrics().prefixes['/echo']!.sessionsOpen['xhr-polling']).toBe(2);
      expect(sockjs.metrics().prefixes['/echo']!.refused.cap).toBe(1);
      socket.destroy();
    });

    it('holds a hixie-76 handshake to the caps when its key comes, not only when it arrives', async () => {
      await start({ hixie76: true, max_sessions: 2 });
      const sockets = Array.from({ length: 4 }, () => new Socket());
      await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve))));
      for (const [i, socket] of sockets.entries()) {
        socket.on('error', () => undefined);
        socket.write(
          `GET /echo/0/h${i}/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nOrigin: http://x\r\n` +
            'Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const socket of sockets) socket.write('^n:ds[4U');
      await eventually(() => sockjs.metrics().prefixes['/echo']!.refused.cap === 2, 2000, 'two refusals');
      expect(sockjs.sessionCount).toBe(2);
      for (const socket of sockets) socket.destroy();
    });

    it('frees what a server counted when it is detached', async () => {
      await start({ max_sessions: 1 });
      const http = running!.http;
      const a = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await a.next()).toBe('o');
      sockjs.detach(http);
      await a.closed;
      sockjs.attach(http);
      const b = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket`));
      expect(await b.next()).toBe('o');
      b.ws.close();
    });
  });
});
