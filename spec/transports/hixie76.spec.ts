import { randomUUID } from 'crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'http';
import { type AddressInfo, connect, createServer as createNetServer, type Server as NetServer, Socket } from 'net';
import { TLSSocket } from 'tls';
import WebSocket from 'ws';
import { type Connection, createServer, type Server, type ServerOptions } from '../../lib';
import type { SessionEvent } from '../../lib/session/reducer';
import {
  HIXIE_CLOSE,
  hixie76Events,
  hixieChallengeAnswer,
  hixieFrame,
  hixieHandshake,
  type HixieInput,
  hixieKeyParts,
  hixieLocation,
  HixieParser,
  isHixie76,
  parseHixieKey,
} from '../../lib/transports/hixie76';

// The handshake of the SockJS protocol suite's Websocket.test_haproxy.
const KEY1 = '4 @1  46546xW%0l 1 5';
const KEY2 = '12998 5 Y3 1  .P00';
const KEY3 = 'aaaaaaaa';
const frame = hixieFrame;
const ANSWER = Buffer.from([0xca, 0x34, 0x00, 0xd8, 0xa5, 0x08, 0x47, 0x97, 0x2c, 0xd5, 0x71, 0x5a, 0xba, 0xbf, 0x43, 0x7b]);

describe('hixie-76 keys', () => {
  it.each([
    [KEY1, 4146546015, 5],
    [KEY2, 1299853100, 5],
    ['1 2', 12, 1],
    ['no digits at all', 0, 3],
    ['12345', 12345, 0],
  ])('reads %j as the number %d and %d spaces', (key, digits, spaces) => {
    expect(hixieKeyParts(key)).toEqual({ digits, spaces });
  });

  it.each([
    [KEY1, 829309203],
    [KEY2, 259970620],
    ['1 2', 12],
    ['4294967295 ', 4294967295],
  ])('gives %j the value %d', (key, value) => {
    expect(parseHixieKey(key)).toBe(value);
  });

  it.each([
    ['no spaces', '12345'],
    ['a quotient that is not whole', '1 0 1'],
    ['a quotient above 32 bits', '4294967296 '],
    ['more digits than a double holds exactly', '9'.repeat(20) + ' '],
  ])('refuses a key with %s', (_why, key) => {
    expect(parseHixieKey(key)).toBeNull();
  });

  it('answers the suite challenge with the exact 16 bytes', () => {
    const answer = hixieChallengeAnswer(parseHixieKey(KEY1)!, parseHixieKey(KEY2)!, Buffer.from(KEY3));
    expect(answer.toString('hex')).toBe('ca3400d8a50847972cd5715ababf437b');
  });

  it('uses only the first 8 bytes of key3', () => {
    const k1 = parseHixieKey(KEY1)!;
    const k2 = parseHixieKey(KEY2)!;
    expect(hixieChallengeAnswer(k1, k2, Buffer.from(KEY3 + '\x00x\xff'))).toEqual(ANSWER);
  });

  it('writes the 101 head with the origin and location and no Content-Length', () => {
    expect(hixieHandshake('http://example.com', 'ws://h:1/echo/0/s/websocket')).toBe(
      'HTTP/1.1 101 WebSocket Protocol Handshake\r\n' +
        'Upgrade: WebSocket\r\n' +
        'Connection: Upgrade\r\n' +
        'Sec-WebSocket-Origin: http://example.com\r\n' +
        'Sec-WebSocket-Location: ws://h:1/echo/0/s/websocket\r\n\r\n',
    );
    expect(hixieHandshake(undefined, 'wss://h/x')).not.toContain('Origin');
  });

  it.each<[string, Record<string, string>, boolean]>([
    ['both keys and no version', { 'sec-websocket-key1': KEY1, 'sec-websocket-key2': KEY2 }, true],
    ['a version', { 'sec-websocket-key1': KEY1, 'sec-websocket-key2': KEY2, 'sec-websocket-version': '13' }, false],
    ['only key1', { 'sec-websocket-key1': KEY1 }, false],
    ['an RFC 6455 key', { 'sec-websocket-key': 'x3JJHMbDL1EzLkh9GBhXDw==', 'sec-websocket-version': '13' }, false],
  ])('tells a request with %s as hixie-76: %s', (_what, headers, expected) => {
    expect(isHixie76({ headers } as IncomingMessage)).toBe(expected);
  });
});

describe('hixie-76 framing', () => {
  it.each([
    ['o', [0x00, 0x6f, 0xff]],
    ['', [0x00, 0xff]],
    ['a["é"]', [0x00, 0x61, 0x5b, 0x22, 0xc3, 0xa9, 0x22, 0x5d, 0xff]],
  ])('frames %j as 0x00, its UTF-8 and 0xFF', (text, bytes) => {
    expect([...hixieFrame(text)]).toEqual(bytes);
  });

  const wire = Buffer.concat([hixieFrame('["a"]'), hixieFrame(''), hixieFrame('["€ and 😀"]'), HIXIE_CLOSE]);
  const expected: HixieInput[] = [
    { type: 'text', text: '["a"]' },
    { type: 'text', text: '' },
    { type: 'text', text: '["€ and 😀"]' },
    { type: 'close' },
  ];

  it('reads text frames and the close pair from one chunk', () => {
    expect(new HixieParser().push(wire)).toEqual(expected);
  });

  it('reads the same frames whatever two chunks the bytes arrive in', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const parser = new HixieParser();
      const inputs = [...parser.push(wire.subarray(0, cut)), ...parser.push(wire.subarray(cut))];
      expect({ cut, inputs }).toEqual({ cut, inputs: expected });
    }
  });

  it('reads the same frames when the bytes arrive one at a time', () => {
    const parser = new HixieParser();
    const inputs: HixieInput[] = [];
    for (const byte of wire) inputs.push(...parser.push(Buffer.from([byte])));
    expect(inputs).toEqual(expected);
  });

  it('reads nothing after the close pair', () => {
    const parser = new HixieParser();
    expect(parser.push(Buffer.concat([HIXIE_CLOSE, hixieFrame('late')]))).toEqual([{ type: 'close' }]);
    expect(parser.push(hixieFrame('later'))).toEqual([]);
  });

  it.each([
    ['a frame type other than 0x00 and 0xFF', [0x01, 0x61, 0xff]],
    ['a length-prefixed frame', [0xff, 0x05, 0x61]],
  ])('reports %s as an error and stops reading', (_what, bytes) => {
    const parser = new HixieParser();
    const inputs = parser.push(Buffer.concat([hixieFrame('x'), Buffer.from(bytes), hixieFrame('y')]));
    expect(inputs).toEqual([{ type: 'text', text: 'x' }, { type: 'error', reason: expect.any(String) }]);
    expect(parser.push(hixieFrame('z'))).toEqual([]);
  });

  it('reports a message longer than the limit as an error, even across chunks', () => {
    const parser = new HixieParser(4);
    expect(parser.push(Buffer.from([0x00, 0x61, 0x62]))).toEqual([]);
    expect(parser.push(Buffer.from([0x63, 0x64, 0x65, 0xff]))).toEqual([{ type: 'error', reason: expect.any(String) }]);
  });

  it('accepts a message exactly as long as the limit', () => {
    expect(new HixieParser(4).push(hixieFrame('abcd'))).toEqual([{ type: 'text', text: 'abcd' }]);
  });
});

/** A raw TCP client that keeps every byte it received. */
class Peer {
  data = Buffer.alloc(0);
  closed = false;
  readonly socket: Socket;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
    // A reset from the server shows as `closed`; the test asserts on that, not on the error.
    this.socket.on('error', () => {
      this.closed = true;
    });
  }

  /** Resolves once `condition` holds; fails after `timeoutMs`. */
  async until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  headEnd(): number {
    const end = this.data.indexOf('\r\n\r\n');
    return end === -1 ? -1 : end + 4;
  }

  async head(): Promise<string> {
    await this.until(() => this.headEnd() !== -1 || this.closed, 'the response head');
    if (this.headEnd() === -1) throw new Error(`closed before a response head: ${JSON.stringify(this.data.toString('latin1'))}`);
    return this.data.subarray(0, this.headEnd()).toString('latin1');
  }

  /** Bytes after the head. */
  body(): Buffer {
    return this.data.subarray(this.headEnd());
  }

  async bodyContains(bytes: Buffer, what: string): Promise<void> {
    await this.until(() => this.body().includes(bytes), what);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function headers(head: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return fields;
}

interface Running {
  readonly port: number;
  readonly connections: Connection[];
  readonly closed: Connection[];
}

describe('hixie-76 over a real socket', () => {
  let http: HttpServer | null = null;
  let sockjs: Server | null = null;
  const peers: Peer[] = [];
  const accepted: Socket[] = [];

  async function start(options: ServerOptions): Promise<Running> {
    const connections: Connection[] = [];
    const closed: Connection[] = [];
    http = createHttpServer((_req, res) => res.end('not sockjs'));
    http.on('connection', (socket: Socket) => accepted.push(socket));
    sockjs = createServer({ log: () => undefined, ...options });
    sockjs.on('connection', (connection: Connection) => {
      connections.push(connection);
      connection.on('close', () => closed.push(connection));
      if (connection.prefix === '/close') connection.close(3000, 'Go away!');
      else connection.on('data', (message: string) => connection.write(message));
    });
    sockjs.installHandlers(http);
    sockjs.installHandlers(http, { prefix: '/close' });
    const server = http;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, connections, closed };
  }

  function peer(port: number): Peer {
    const p = new Peer(port);
    peers.push(p);
    return p;
  }

  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    sockjs?.close();
    sockjs = null;
    const server = http;
    http = null;
    // Upgraded sockets are no longer the HTTP server's to close; without this a socket left
    // open by a failed test would keep `close` waiting.
    for (const socket of accepted.splice(0)) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const request = (port: number, path: string, extra: Record<string, string> = {}) =>
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: WebSocket',
      'Connection: Upgrade',
      'Origin: http://example.com',
      `Sec-WebSocket-Key1: ${KEY1}`,
      `Sec-WebSocket-Key2: ${KEY2}`,
      ...Object.entries(extra).map(([name, value]) => `${name}: ${value}`),
      '',
      '',
    ].join('\r\n');


  it('sends the 101 head before key3, then the challenge answer, o, and echoes', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const path = `/echo/000/${randomUUID()}/websocket`;
    const p = peer(port);
    p.socket.write(request(port, path));

    const head = await p.head();
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 WebSocket Protocol Handshake');
    expect(headers(head)).toEqual({
      upgrade: 'WebSocket',
      connection: 'Upgrade',
      'sec-websocket-origin': 'http://example.com',
      'sec-websocket-location': `ws://127.0.0.1:${port}${path}`,
    });
    // Nothing more may come before key3: the answer depends on it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(p.body().length).toBe(0);

    p.socket.write(KEY3);
    await p.until(() => p.body().length >= 16, 'the challenge answer');
    expect(p.body().subarray(0, 16)).toEqual(ANSWER);
    await p.until(() => p.body().length >= 19, 'the open frame');
    expect(p.body().subarray(16, 19)).toEqual(Buffer.from([0x00, 0x6f, 0xff]));

    p.socket.write(frame('["a"]'));
    await p.bodyContains(frame('a["a"]'), 'the echo');
    expect(p.body().subarray(19)).toEqual(frame('a["a"]'));
  });

  it('takes key3 and frames in the same packet as the request head', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(Buffer.concat([Buffer.from(request(port, `/echo/a/b/websocket`) + KEY3), frame('["x","y"]')]));
    // The echo application writes each message back on its own, so each is a frame of its own.
    await p.bodyContains(frame('a["y"]'), 'the echo');
    expect(p.body()).toEqual(Buffer.concat([ANSWER, frame('o'), frame('a["x"]'), frame('a["y"]')]));
  });

  it('takes key3 split over two packets, with a frame split after it', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, `/echo/a/b/websocket`) + 'aaaa');
    await p.head();
    await new Promise((resolve) => setTimeout(resolve, 20));
    p.socket.write(Buffer.concat([Buffer.from('aaaa'), frame('["sp').subarray(0, 4)]));
    await p.until(() => p.body().length >= 19, 'the answer and o');
    p.socket.write(Buffer.concat([frame('["split"]').subarray(4)]));
    await p.bodyContains(frame('a["split"]'), 'the echo');
    expect(p.body()).toEqual(Buffer.concat([ANSWER, frame('o'), frame('a["split"]')]));
  });

  it('ignores an empty message and [] and keeps echoing', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, `/echo/a/b/websocket`) + KEY3);
    await p.until(() => p.body().length >= 19, 'the answer and o');
    p.socket.write(Buffer.concat([frame(''), frame('[]'), frame('["z"]')]));
    await p.bodyContains(frame('a["z"]'), 'the echo');
    expect(p.body().subarray(19)).toEqual(frame('a["z"]'));
  });

  it('gives the location the scheme wss only on a TLS socket', () => {
    const plain = new Socket();
    const secure = new TLSSocket(new Socket());
    try {
      expect(hixieLocation('h:1', '/echo/a/b/websocket', plain)).toBe('ws://h:1/echo/a/b/websocket');
      expect(hixieLocation('h:1', '/echo/a/b/websocket', secure)).toBe('wss://h:1/echo/a/b/websocket');
    } finally {
      plain.destroy();
      secure.destroy();
    }
  });

  it('gives back the Host and the path with its query as sent', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, '/echo/srv/sess/websocket?t=1').replace(`Host: 127.0.0.1:${port}`, 'Host: example.org'));
    expect(headers(await p.head())['sec-websocket-location']).toBe('ws://example.org/echo/srv/sess/websocket?t=1');
  });

  it('answers the client close pair with its own and ends the session', async () => {
    const running = await start({ prefix: '/echo', hixie76: true });
    const p = peer(running.port);
    p.socket.write(request(running.port, `/echo/a/b/websocket`) + KEY3);
    await p.until(() => running.connections.length === 1, 'the connection');
    p.socket.write(HIXIE_CLOSE);
    await p.bodyContains(HIXIE_CLOSE, 'the close pair');
    p.socket.end();
    await p.until(() => p.closed, 'the socket to close');
    await p.until(() => running.closed.length === 1, 'the connection to close');
  });

  it('sends the close frame and the close pair, then ends, when the application closes', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, `/close/a/b/websocket`) + KEY3);
    await p.bodyContains(HIXIE_CLOSE, 'the close pair');
    expect(p.body()).toEqual(Buffer.concat([ANSWER, frame('o'), frame('c[3000,"Go away!"]'), HIXIE_CLOSE]));
    p.socket.end();
    await p.until(() => p.closed, 'the socket to close');
  });

  it('sends a close frame and the close pair when the SockJS server closes', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, `/echo/a/b/websocket`) + KEY3);
    await p.until(() => p.body().length >= 19, 'the answer and o');
    sockjs?.close();
    await p.until(() => p.closed, 'the socket to close');
    expect(p.body().subarray(19)).toEqual(Buffer.concat([frame('c[1001,"Server shutting down"]'), HIXIE_CLOSE]));
  });

  it('closes the connection on a message that is not JSON', async () => {
    const running = await start({ prefix: '/echo', hixie76: true });
    const p = peer(running.port);
    p.socket.write(request(running.port, `/echo/a/b/websocket`) + KEY3);
    await p.until(() => p.body().length >= 19, 'the answer and o');
    p.socket.write(frame('["a'));
    await p.bodyContains(HIXIE_CLOSE, 'the close pair');
    await p.until(() => running.closed.length === 1, 'the connection to close');
  });

  it('sends h frames after heartbeat_delay of silence', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true, heartbeat_delay: 50 });
    const p = peer(port);
    p.socket.write(request(port, `/echo/a/b/websocket`) + KEY3);
    await p.bodyContains(frame('h'), 'a heartbeat');
    expect(p.body().subarray(16, 22)).toEqual(Buffer.concat([frame('o'), frame('h')]));
  });

  it('drops the socket unanswered when a key has no spaces', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, `/echo/a/b/websocket`).replace(KEY2, '12998'));
    await p.until(() => p.closed, 'the socket to close');
    expect(p.data.length).toBe(0);
  });

  it('drops the socket unanswered when a quotient is not whole', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, `/echo/a/b/websocket`).replace(KEY1, '1 0 1'));
    await p.until(() => p.closed, 'the socket to close');
    expect(p.data.length).toBe(0);
  });

  it('gives every hixie websocket a session of its own, even on the same path', async () => {
    const running = await start({ prefix: '/echo', hixie76: true });
    const [a, b] = [peer(running.port), peer(running.port)];
    for (const p of [a, b]) p.socket.write(request(running.port, `/echo/a/same/websocket`) + KEY3);
    await a.until(() => a.body().length >= 19 && b.body().length >= 19, 'both to open');
    a.socket.write(frame('["from a"]'));
    b.socket.write(frame('["from b"]'));
    await a.bodyContains(frame('a["from a"]'), 'a echo');
    await b.bodyContains(frame('a["from b"]'), 'b echo');
    expect(running.connections).toHaveLength(2);
  });

  it('still does RFC 6455 through ws when the option is on', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo/a/b/websocket`);
    try {
      const first = await new Promise<string>((resolve, reject) => {
        const timeout = setTimeout(() => reject(new Error('no first message within 2 s')), 2000);
        ws.once('message', (data) => {
          clearTimeout(timeout);
          resolve(String(data));
        });
        ws.once('error', reject);
      });
      expect(first).toBe('o');
    } finally {
      ws.terminate();
    }
  });

  it('refuses hixie-76 on the raw /websocket endpoint even with the option on', async () => {
    const { port } = await start({ prefix: '/echo', hixie76: true });
    const p = peer(port);
    p.socket.write(request(port, '/echo/websocket') + KEY3);
    expect((await p.head()).split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    await p.until(() => p.closed, 'the socket to close');
  });

  it('answers a hixie-76 request with 400 and closes when the option is off, and keeps serving', async () => {
    const { port } = await start({ prefix: '/echo' });
    const p = peer(port);
    p.socket.write(request(port, `/echo/000/${randomUUID()}/websocket`));
    expect((await p.head()).split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    p.socket.write(KEY3);
    await p.until(() => p.closed, 'the socket to close');

    const greeting = peer(port);
    greeting.socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    await greeting.until(() => greeting.closed, 'the greeting');
    expect(greeting.data.toString()).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*Welcome to SockJS!\n$/);
  });

});

describe('hixie76Events', () => {
  let server: NetServer | null = null;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    const closing = server;
    server = null;
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  });

  /** A connected pair of sockets on 127.0.0.1: the server's end and a Peer on the client's. */
  async function pair(): Promise<{ serverSide: Socket; client: Peer }> {
    const accepted = new Promise<Socket>((resolve) => {
      server = createNetServer((socket) => {
        sockets.push(socket);
        resolve(socket);
      });
    });
    const listening = server as NetServer | null;
    if (!listening) throw new Error('no server');
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const client = new Peer((listening.address() as AddressInfo).port);
    sockets.push(client.socket);
    return { serverSide: await accepted, client };
  }

  const upgradeRequest = {
    url: '/echo/a/b/websocket',
    headers: { host: 'example.org', origin: 'null', 'sec-websocket-key1': KEY1, 'sec-websocket-key2': KEY2 },
  } as unknown as IncomingMessage;

  it('attaches once key3 is in, delivers messages, and destroys the socket when unsubscribed', async () => {
    const { serverSide, client } = await pair();
    const events: SessionEvent[] = [];
    const subscription = hixie76Events({
      req: upgradeRequest,
      socket: serverSide,
      head: Buffer.alloc(0),
      key: 7,
      receiverId: 3,
      log: () => undefined,
      maxMessages: Infinity,
    }).subscribe((event) => events.push(event));
    try {
      const head = await client.head();
      expect(headers(head)['sec-websocket-location']).toBe('ws://example.org/echo/a/b/websocket');
      expect(headers(head)['sec-websocket-origin']).toBe('null');
      expect(events).toEqual([]);

      client.socket.write(KEY3);
      await client.until(() => events.length === 1, 'the attach event');
      const attach = events[0];
      if (attach?.type !== 'attach') throw new Error(`expected attach, got ${JSON.stringify(attach)}`);
      expect(attach).toMatchObject({ key: 7, request: upgradeRequest });
      expect(attach.receiver).toMatchObject({ id: 3, protocol: 'websocket', framing: 'sockjs', limit: Infinity, delayDisconnect: false });
      expect(attach.receiver.wrap('o')).toBe('o');

      attach.receiver.sink.write('o');
      await client.bodyContains(Buffer.concat([ANSWER, frame('o')]), 'the open frame');

      client.socket.write(Buffer.concat([frame('["a","b"]'), frame('"single"'), frame('["broken')]));
      await client.until(() => events.length === 4, 'three more events');
      expect(events.slice(1)).toEqual([
        { type: 'incoming', key: 7, messages: ['a', 'b'], source: expect.objectContaining({ pause: expect.any(Function) }) },
        { type: 'incoming', key: 7, messages: ['single'], source: expect.objectContaining({ pause: expect.any(Function) }) },
        { type: 'broken', key: 7 },
      ]);
    } finally {
      subscription.unsubscribe();
    }
    await client.until(() => client.closed, 'the socket to be destroyed');
    expect(serverSide.destroyed).toBe(true);
  });

  it('reports a detach with a normal closure after the client close pair', async () => {
    const { serverSide, client } = await pair();
    const events: SessionEvent[] = [];
    let completed = false;
    const subscription = hixie76Events({
      req: upgradeRequest,
      socket: serverSide,
      head: Buffer.from(KEY3),
      key: 1,
      receiverId: 1,
      log: () => undefined,
      maxMessages: Infinity,
    }).subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
    try {
      await client.until(() => client.body().length >= 16, 'the challenge answer');
      client.socket.write(HIXIE_CLOSE);
      await client.bodyContains(HIXIE_CLOSE, 'the close pair back');
      client.socket.end();
      await client.until(() => completed, 'the events to complete');
      expect(events.map((e) => e.type)).toEqual(['attach', 'detach']);
      expect(events[1]).toEqual({ type: 'detach', key: 1, receiverId: 1, why: { code: 1000, reason: 'Normal closure' } });
    } finally {
      subscription.unsubscribe();
    }
  });

  it('reports a detach as interrupted when the client just goes', async () => {
    const { serverSide, client } = await pair();
    const events: SessionEvent[] = [];
    let completed = false;
    const subscription = hixie76Events({
      req: upgradeRequest,
      socket: serverSide,
      head: Buffer.from(KEY3),
      key: 1,
      receiverId: 1,
      log: () => undefined,
      maxMessages: Infinity,
    }).subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
    try {
      await client.until(() => client.body().length >= 16, 'the challenge answer');
      client.socket.end();
      await client.until(() => completed, 'the events to complete');
      expect(events.map((e) => e.type)).toEqual(['attach', 'detach']);
      expect(events[1]).toMatchObject({ type: 'detach', why: { code: 1002 } });
    } finally {
      subscription.unsubscribe();
    }
  });

  it('completes without events when the client goes before key3', async () => {
    const { serverSide, client } = await pair();
    const events: SessionEvent[] = [];
    let completed = false;
    const subscription = hixie76Events({
      req: upgradeRequest,
      socket: serverSide,
      head: Buffer.from('aaaa'),
      key: 1,
      receiverId: 1,
      log: () => undefined,
      maxMessages: Infinity,
    }).subscribe({ next: (event) => events.push(event), complete: () => (completed = true) });
    try {
      await client.head();
      client.socket.end();
      await client.until(() => completed, 'the events to complete');
      expect(events).toEqual([]);
      expect(client.body().length).toBe(0);
    } finally {
      subscription.unsubscribe();
    }
  });
});
