import { randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import WebSocket from 'ws';
import { RawResponse } from './helpers/raw-http';
import { echo, eventually, listen, type Running } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { type CloseReason, type Connection, createServer, type ServerOptions } from '../lib';

let running: Running | undefined;
let connections: Connection[] = [];

async function start(options: ServerOptions): Promise<Running> {
  const http = createHttpServer();
  const sockjs = createServer({ prefix: '/echo', log: () => undefined, ...options });
  connections = [];
  sockjs.on('connection', (connection: Connection) => {
    connections.push(connection);
    echo(connection);
  });
  sockjs.attach(http);
  running = await listen(http);
  return running;
}

afterEach(async () => {
  await running?.close();
  running = undefined;
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  RawResponse.open(running!.port, { method: 'POST', path, headers, body });

describe('max_message_size', () => {
  it('closes a websocket that sends a bigger message with 1009', async () => {
    await start({ max_message_size: 1000 });
    const client = await connectWs(`${running!.url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    client.ws.send(JSON.stringify(['x'.repeat(1000)]));
    expect((await client.closed).code).toBe(1009);
  });

  it('answers a bigger xhr_send body with 413 and keeps the session usable', async () => {
    await start({ max_message_size: 1000 });
    const s = `/echo/0/${randomUUID()}`;
    expect(await (await post(`${s}/xhr`, '')).body()).toBe('o\n');
    const big = await post(`${s}/xhr_send`, JSON.stringify(['x'.repeat(1000)]));
    expect(big.status).toBe(413);
    expect(await big.body()).toBe('Payload too large.');
    expect((await post(`${s}/xhr_send`, '["small"]')).status).toBe(204);
    expect(await (await post(`${s}/xhr`, '')).body()).toBe('a["small"]\n');
  });

  it('counts a chunked body while it streams in', async () => {
    await start({ max_message_size: 1000 });
    const s = `/echo/0/${randomUUID()}`;
    await (await post(`${s}/xhr`, '')).body();
    const chunk = 'y'.repeat(600);
    const body = `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(2);
    // The terminating chunk is never sent: the answer must come from the count alone.
    const r = await RawResponse.open(running!.port, `POST ${s}/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
  });

  it('answers a bigger jsonp_send body with 413', async () => {
    await start({ max_message_size: 1000 });
    const s = `/echo/0/${randomUUID()}`;
    await (await RawResponse.open(running!.port, { method: 'GET', path: `${s}/jsonp?c=cb` })).body();
    const r = await post(`${s}/jsonp_send`, 'd=' + encodeURIComponent(JSON.stringify(['z'.repeat(1000)])), {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    expect(r.status).toBe(413);
  });
});

describe('origins', () => {
  const upgrade = (origin: string) => ({
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
    'Sec-WebSocket-Version': '13',
    Origin: origin,
  });

  it('refuses an origin not in the list with 403 and no CORS headers, on every transport', async () => {
    await start({ origins: ['https://good.example'] });
    const s = `/echo/0/${randomUUID()}`;
    const refused = [
      await RawResponse.open(running!.port, { method: 'GET', path: '/echo/info', headers: { Origin: 'https://evil.example' } }),
      await RawResponse.open(running!.port, { method: 'OPTIONS', path: `${s}/xhr`, headers: { Origin: 'https://evil.example' } }),
      await post(`${s}/xhr`, '', { Origin: 'https://evil.example' }),
      await post(`${s}/xhr_send`, '["x"]', { Origin: 'https://evil.example' }),
      await RawResponse.open(running!.port, { method: 'GET', path: `${s}/eventsource`, headers: { Origin: 'https://evil.example' } }),
      await RawResponse.open(running!.port, { method: 'GET', path: `${s}/websocket`, headers: upgrade('https://evil.example') }),
      await RawResponse.open(running!.port, { method: 'GET', path: '/echo/websocket', headers: upgrade('null') }),
    ];
    for (const r of refused) {
      expect(r.status).toBe(403);
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
    expect(connections).toEqual([]);
  });

  it('serves a listed origin, in any letter case, and requests without an Origin', async () => {
    await start({ origins: ['https://good.example'] });
    const s = `/echo/0/${randomUUID()}`;
    const open = await post(`${s}/xhr`, '', { Origin: 'https://GOOD.example' });
    expect(open.headers['access-control-allow-origin']).toBe('https://GOOD.example');
    expect(await open.body()).toBe('o\n');
    expect((await post(`${s}/xhr_send`, '["x"]')).status).toBe(204);
    const client = await connectWs(`${running!.url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`, {
      Origin: 'https://good.example',
    });
    expect(await client.next()).toBe('o');
    client.ws.close();
  });

  it('asks a function when one is given', async () => {
    await start({ origins: (origin) => origin.endsWith('.trusted.example') });
    expect((await RawResponse.open(running!.port, { method: 'GET', path: '/echo/info', headers: { Origin: 'https://a.trusted.example' } })).status).toBe(200);
    expect((await RawResponse.open(running!.port, { method: 'GET', path: '/echo/info', headers: { Origin: 'https://a.other.example' } })).status).toBe(403);
  });

  it('never answers Origin: null with * and credentials', async () => {
    await start({});
    const r = await post(`/echo/0/${randomUUID()}/xhr`, '', { Origin: 'null' });
    const allowOrigin = r.headers['access-control-allow-origin'];
    expect(allowOrigin === '*' && r.headers['access-control-allow-credentials'] === 'true').toBe(false);
  });
});

describe('slow consumers', () => {
  it('closes a session whose application writes past max_queue_size with 1013, and no other', async () => {
    await start({ max_queue_size: 64 * 1024 });
    const slow = `/echo/0/${randomUUID()}`;
    const other = `/echo/0/${randomUUID()}`;
    await (await post(`${slow}/xhr`, '')).body();
    await (await post(`${other}/xhr`, '')).body();
    const [conn, otherConn] = connections;
    const why = new Promise<CloseReason>((resolve) => conn!.closed$.subscribe(resolve));
    // No poll is attached: the session queues 16 KiB, then writes wait in the connection.
    for (let i = 0; i < 100 && conn!.readyState === 1; i++) conn!.write('w'.repeat(1024));
    expect(await why).toEqual({ code: 1013, reason: 'Send queue full' });
    expect(otherConn!.readyState).toBe(1);
    otherConn!.write('still here');
    expect(await (await post(`${other}/xhr`, '')).body()).toBe('a["still here"]\n');
  });
});

describe('dead peers', () => {
  it('closes a websocket whose peer stops answering pings, firing close once', async () => {
    await start({ heartbeat_delay: 100 });
    const ws = new WebSocket(`${running!.url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`, { autoPong: false });
    await new Promise((resolve) => ws.once('message', resolve));
    await eventually(() => connections.length === 1, 2000, 'the connection');
    let closes = 0;
    connections[0]!.on('close', () => closes++);
    const why = await new Promise<CloseReason>((resolve) => connections[0]!.closed$.subscribe(resolve));
    expect(why).toEqual({ code: 3000, reason: 'No response from heartbeat' });
    await eventually(() => closes === 1, 2000, 'the close event');
    await new Promise((resolve) => ws.once('close', resolve));
    expect(closes).toBe(1);
  });

  it('keeps a websocket whose peer answers pings', async () => {
    await start({ heartbeat_delay: 50 });
    const client = await connectWs(`${running!.url.replace('http', 'ws')}/echo/0/${randomUUID()}/websocket`);
    expect(await client.next()).toBe('o');
    // Three heartbeats in a row, each with a ping the client answers.
    expect(await client.next()).toBe('h');
    expect(await client.next()).toBe('h');
    expect(await client.next()).toBe('h');
    expect(connections[0]!.readyState).toBe(1);
    client.ws.close();
  });
});
