import { randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import { take, toArray } from 'rxjs';
import { RawResponse } from './helpers/raw-http';
import { eventually, listen, type Running } from './helpers/server';
import { type Client, connectWs } from './helpers/ws-client';
import { type BroadcastBus, type Connection, createServer, localBus, type Server } from '../lib';

interface Node {
  readonly running: Running;
  readonly sockjs: Server;
  readonly connections: Connection[];
}

const nodes: Node[] = [];

async function node(bus?: BroadcastBus): Promise<Node> {
  const http = createHttpServer();
  const sockjs = createServer({ prefix: '/b', log: () => undefined, ...(bus ? { bus } : {}) });
  const connections: Connection[] = [];
  sockjs.on('connection', (c: Connection) => connections.push(c));
  sockjs.attach(http);
  const running = await listen(http);
  const n = { running, sockjs, connections };
  nodes.push(n);
  return n;
}

afterEach(async () => {
  for (const n of nodes.splice(0)) {
    n.sockjs.close();
    await n.running.close();
  }
});

async function websocketOn(n: Node): Promise<Client> {
  const client = await connectWs(`${n.running.url.replace('http', 'ws')}/b/0/${randomUUID()}/websocket`);
  expect(await client.next()).toBe('o');
  return client;
}

/** The messages of the next frames until `count` have come. */
async function receive(client: Client, count: number): Promise<string[]> {
  const messages: string[] = [];
  while (messages.length < count) messages.push(...(JSON.parse((await client.next()).slice(1)) as string[]));
  return messages;
}

describe('broadcast', () => {
  it('reaches every open connection once, in order, whatever its transport', async () => {
    const n = await node();
    const a = await websocketOn(n);
    const b = await websocketOn(n);
    const s = `/b/0/${randomUUID()}`;
    expect(await (await RawResponse.open(n.running.port, { method: 'POST', path: `${s}/xhr`, body: '' })).body()).toBe('o\n');
    for (let i = 0; i < 5; i++) n.sockjs.broadcast(`m${i}`);
    const expected = ['m0', 'm1', 'm2', 'm3', 'm4'];
    expect(await receive(a, 5)).toEqual(expected);
    expect(await receive(b, 5)).toEqual(expected);
    const polled = await (await RawResponse.open(n.running.port, { method: 'POST', path: `${s}/xhr`, body: '' })).body();
    expect(JSON.parse(polled.slice(1))).toEqual(expected);
  });

  it('writes one frame, made once, to websockets of both framings, in order with their own writes', async () => {
    const n = await node();
    const clients = [await websocketOn(n), await websocketOn(n), await websocketOn(n)];
    const raw = await connectWs(`${n.running.url.replace('http', 'ws')}/b/websocket`);
    await eventually(() => n.connections.length === 4, 2000, 'four connections');
    // Lengths on both sides of the 7-bit and 16-bit frame lengths, and characters of 1 to 4 bytes.
    const sent = ['', 'x'.repeat(118), 'x'.repeat(119), 'é'.repeat(70), '€🙂'.repeat(2000), 'y'.repeat(16 * 1024)];
    for (const message of sent) {
      n.sockjs.broadcast(message);
      n.connections[1]!.write(`own ${message.length}`);
    }
    const mine = sent.flatMap((m) => [m, `own ${m.length}`]);
    expect(await receive(clients[0]!, sent.length)).toEqual(sent);
    expect(await receive(clients[1]!, mine.length)).toEqual(mine);
    expect(await receive(clients[2]!, sent.length)).toEqual(sent);
    const rawMessages: string[] = [];
    for (let i = 0; i < sent.length; i++) rawMessages.push(await raw.next());
    expect(rawMessages).toEqual(sent);
  });

  it('reaches the connections of every server on a shared bus exactly once', async () => {
    const bus = localBus();
    const first = await node(bus);
    const second = await node(bus);
    const a = await websocketOn(first);
    const b = await websocketOn(second);
    first.sockjs.broadcast('from first');
    second.sockjs.broadcast('from second');
    expect(await receive(a, 2)).toEqual(['from first', 'from second']);
    expect(await receive(b, 2)).toEqual(['from first', 'from second']);
  });
});

describe('channels', () => {
  it('delivers what is published to members only, and stops at leave', async () => {
    const n = await node();
    const a = await websocketOn(n);
    const b = await websocketOn(n);
    const room = n.sockjs.channel('room');
    expect(n.sockjs.channel('room')).toBe(room);
    room.join(n.connections[0]!);
    expect(room.size).toBe(1);
    expect(room.has(n.connections[1]!)).toBe(false);
    room.publish('one');
    expect(await receive(a, 1)).toEqual(['one']);
    room.leave(n.connections[0]!).join(n.connections[1]!);
    room.publish('two');
    expect(await receive(b, 1)).toEqual(['two']);
    n.sockjs.broadcast('everyone');
    expect(await receive(a, 1)).toEqual(['everyone']);
    expect(await receive(b, 1)).toEqual(['everyone']);
  });

  it('lets a closed connection leave by itself', async () => {
    const n = await node();
    const a = await websocketOn(n);
    const room = n.sockjs.channel('room').join(n.connections[0]!);
    a.ws.close();
    await eventually(() => room.size === 0, 2000, 'the member to leave');
  });

  it('has every open connection in *, lets one leave it and join it again, and drops closed ones', async () => {
    const n = await node();
    const a = await websocketOn(n);
    const b = await websocketOn(n);
    const everyone = n.sockjs.channel('*');
    const [first, second] = n.connections as [Connection, Connection];
    expect(everyone.size).toBe(2);
    expect(everyone.has(first) && everyone.has(second)).toBe(true);
    everyone.leave(first);
    expect(everyone.has(first)).toBe(false);
    expect(everyone.size).toBe(1);
    n.sockjs.broadcast('without a');
    expect(await receive(b, 1)).toEqual(['without a']);
    everyone.join(first);
    n.sockjs.broadcast('with a');
    // a never saw the broadcast it had left for: its next message is the one after it joined.
    expect(await receive(a, 1)).toEqual(['with a']);
    expect(await receive(b, 1)).toEqual(['with a']);
    b.ws.close();
    await eventually(() => everyone.size === 1, 2000, 'the closed connection to leave *');
    expect(everyone.has(second)).toBe(false);
  });

  it('shows every published message on messages$', async () => {
    const n = await node();
    const room = n.sockjs.channel('room');
    const seen = new Promise<string[]>((resolve) => room.messages$.pipe(take(2), toArray()).subscribe(resolve));
    room.publish('x');
    room.publish('y');
    expect(await seen).toEqual(['x', 'y']);
  });

  it('refuses a bus without publish and messages', () => {
    expect(() => createServer({ bus: {} as BroadcastBus })).toThrow(/bus/);
  });
});
