import { randomUUID } from 'crypto';
import { connect, type Socket } from 'net';
import { RawResponse } from './helpers/raw-http';
import { echoServer, type EchoServer, eventually } from './helpers/server';
import { connectWs } from './helpers/ws-client';

let server: EchoServer;

beforeEach(async () => {
  server = await echoServer();
});

afterEach(async () => {
  await server.close();
});

/** The server still answers after whatever a test threw at it. */
async function stillServing(): Promise<void> {
  const r = await RawResponse.open(server.port, { method: 'GET', path: '/echo' });
  expect(await r.body()).toBe('Welcome to SockJS!\n');
}

const upgradeHeaders = (extra: Record<string, string> = {}) => ({
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
  'Sec-WebSocket-Version': '13',
  ...extra,
});

describe('hostile handshakes', () => {
  it('ignores a pathological Sec-WebSocket-Extensions and still completes the handshake', async () => {
    const r = await RawResponse.open(server.port, {
      method: 'GET',
      path: `/echo/0/${randomUUID()}/websocket`,
      headers: upgradeHeaders({ 'Sec-WebSocket-Extensions': 'permessage-deflate; ' + 'x=;'.repeat(2000) }),
    });
    expect(r.status).toBe(101);
    expect(r.headers['sec-websocket-extensions']).toBeUndefined();
    r.destroy();
    await stillServing();
  });

  it('answers a malformed Sec-WebSocket-Protocol with 400', async () => {
    const r = await RawResponse.open(server.port, {
      method: 'GET',
      path: `/echo/0/${randomUUID()}/websocket`,
      headers: upgradeHeaders({ 'Sec-WebSocket-Protocol': 'a,,b,' + ',;'.repeat(2000) }),
    });
    expect(r.status).toBe(400);
    await stillServing();
  });

  it('answers thousands of headers with 431', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) headers[`x-h${i}`] = 'v';
    const r = await RawResponse.open(server.port, { method: 'GET', path: `/echo/0/${randomUUID()}/websocket`, headers: upgradeHeaders(headers) });
    expect(r.status).toBe(431);
    await stillServing();
  });

  it.each(['/echo/info', '/echo/iframe.html', `/echo/0/s/xhr_streaming`, '/echo/nowhere'])(
    'answers an upgrade to %s and closes the socket',
    async (path) => {
      const r = await RawResponse.open(server.port, { method: 'GET', path, headers: upgradeHeaders() });
      expect([400, 404, 405]).toContain(r.status);
      await r.closed();
      await stillServing();
    },
  );
});

/** A websocket opened by hand, so that it can send frames no client library would. */
async function rawWebsocket({ allowHalfOpen = false } = {}): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen });
  let data = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => (data = Buffer.concat([data, d])));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.write(
    `GET /echo/0/${randomUUID()}/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await eventually(() => data.includes('\r\n\r\n'), 2000, 'the handshake');
  await eventually(() => data.subarray(data.indexOf('\r\n\r\n') + 4).includes('o'), 2000, 'the open frame');
  return { socket, received: () => data.subarray(data.indexOf('\r\n\r\n') + 4), closed };
}

/** A masked client frame. */
function frame(opcode: number, payload: Buffer, { fin = true, rsv = 0, masked = true } = {}): Buffer {
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  if (payload.length < 126) head.push((masked ? 0x80 : 0) | payload.length);
  else head.push((masked ? 0x80 : 0) | 126, payload.length >> 8, payload.length & 0xff);
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = masked ? Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!)) : payload;
  return Buffer.concat([Buffer.from(head), masked ? mask : Buffer.alloc(0), body]);
}

/** The close code of the first close frame the server sent, if any. */
function closeCode(data: Buffer): number | undefined {
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] === 0x88 && data[i + 1]! >= 2) return data.readUInt16BE(i + 2);
  }
  return undefined;
}

describe('hostile websocket frames', () => {
  it.each([
    ['reserved bits', () => frame(1, Buffer.from('["a"]'), { rsv: 4 }), 1002],
    ['an unknown opcode', () => frame(3, Buffer.from('x')), 1002],
    ['an unmasked frame', () => frame(1, Buffer.from('["a"]'), { masked: false }), 1002],
    ['invalid UTF-8', () => frame(1, Buffer.from([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d])), 1007],
  ])('closes the websocket on %s, and stays up', async (_name, make, code) => {
    const ws = await rawWebsocket();
    ws.socket.write(make());
    await ws.closed;
    expect(closeCode(ws.received())).toBe(code);
    await eventually(() => server.connections[0]?.readyState === 3, 2000, 'the session to close');
    await stillServing();
  });

  it('reassembles a flood of tiny fragments into one message', async () => {
    const ws = await rawWebsocket();
    const text = JSON.stringify(['f'.repeat(2000)]);
    const parts = [...text].map((c, i) => frame(i === 0 ? 1 : 0, Buffer.from(c), { fin: i === text.length - 1 }));
    ws.socket.write(Buffer.concat(parts));
    await eventually(() => ws.received().includes('f'.repeat(2000)), 2000, 'the echo');
    ws.socket.destroy();
    await stillServing();
  });

  it('answers pings, and drops a connection that floods pings faster than it reads the pongs', async () => {
    const ws = await rawWebsocket();
    ws.socket.write(Buffer.concat(Array.from({ length: 10 }, () => frame(9, Buffer.from('p')))));
    ws.socket.write(frame(1, Buffer.from('["after"]')));
    await eventually(() => ws.received().includes('a["after"]'), 2000, 'the echo after a few pings');
    expect(server.connections[0]!.readyState).toBe(1);
    // `ws` terminates a peer with more than 60 pongs waiting to be written.
    ws.socket.write(Buffer.concat(Array.from({ length: 1000 }, () => frame(9, Buffer.from('p')))));
    await ws.closed;
    const why = await new Promise((resolve) => server.connections[0]!.closed$.subscribe(resolve));
    expect(why).toEqual({ code: 1006, reason: '' });
    await stillServing();
  });
});

describe('hostile session ids and callbacks', () => {
  it.each([
    ['__proto__', '__proto__'],
    ['constructor', 'constructor'],
    ['hasOwnProperty', 'hasOwnProperty'],
    ['of 10,000 characters', 'x'.repeat(10_000)],
    ['%00 (an escaped NUL)', '%00'],
    ['%2e%2e', '%2e%2e'],
  ])('serves the session id %s like any other', async (_name, id) => {
      const path = `/echo/0/${id}`;
      expect(await (await RawResponse.open(server.port, { method: 'POST', path: `${path}/xhr`, body: '' })).body()).toBe('o\n');
      expect((await RawResponse.open(server.port, { method: 'POST', path: `${path}/xhr_send`, body: '["x"]' })).status).toBe(204);
      expect(await (await RawResponse.open(server.port, { method: 'POST', path: `${path}/xhr`, body: '' })).body()).toBe('a["x"]\n');
  });

  it('refuses a raw NUL in the URL before it reaches the server', async () => {
    const socket = connect(server.port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    socket.write('POST /echo/0/a\u0000b/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 400/);
    await stillServing();
  });

  it.each(['<script>alert(1)</script>', '"><img src=x>', 'a(b)', 'x;alert(1)//'])(
    'refuses the callback %s with 500',
    async (callback) => {
      const r = await RawResponse.open(server.port, {
        method: 'GET',
        path: `/echo/0/${randomUUID()}/jsonp?c=${encodeURIComponent(callback)}`,
      });
      expect(r.status).toBe(500);
      expect(await r.body()).toBe('invalid "callback" parameter');
    },
  );

  it('delivers non-string JSON elements as their JSON text', async () => {
    const client = await connectWs(server.url.replace('http', 'ws') + `/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send('[1, null, {"a":[true]}, "s"]');
    const echoed: string[] = [];
    while (echoed.length < 4) echoed.push(...(JSON.parse((await client.next()).slice(1)) as string[]));
    expect(echoed).toEqual(['1', 'null', '{"a":[true]}', 's']);
    client.ws.close();
  });
});

describe('the closing handshake', () => {
  it('closes the TCP connection first once it is done, without waiting for the client to', async () => {
    // A client that keeps its side open after the handshake: the server must not wait for its FIN.
    const ws = await rawWebsocket({ allowHalfOpen: true });
    const ended = new Promise<void>((resolve) => ws.socket.once('end', () => resolve()));
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    ws.socket.write(frame(8, code));
    await ended;
    expect(closeCode(ws.received())).toBe(1000);
    const why = await new Promise((resolve) => server.connections[0]!.closed$.subscribe(resolve));
    expect(why).toEqual({ code: 1000, reason: '' });
    expect(ws.socket.writableEnded).toBe(false);
    ws.socket.destroy();
    await stillServing();
  });
});
