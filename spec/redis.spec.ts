/**
 * `sockjs-rx/redis` against a real redis-server (Debian's), started on a free port for this file.
 * Without redis-server (and no way to install it) the suite is skipped with one line, unless
 * CI=true, where it fails.
 */
import { randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import { createClient } from 'redis';
import type { Subscription } from 'rxjs';
import { ensureCommands, type RedisServer, startRedisServer, suiteNeeding, waitUntil } from './helpers/debian-tools';
import { listen, type Running } from './helpers/server';
import { type Client, connectWs } from './helpers/ws-client';
import { createServer, type Server } from '../lib';
import { DEFAULT_REDIS_PREFIX, type RedisBus, redisBus, type RedisBusOptions } from '../lib/redis';

const tools = suiteNeeding('redis suite', ensureCommands({ 'redis-server': 'redis-server' }));

/** How long to keep listening after the expected messages, for a duplicate to show up. */
const SETTLE_MS = 200;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Subscribers of a Redis channel on the server at `url`, asked on a connection of its own. */
async function subscriberCount(url: string, redisChannel: string): Promise<number> {
  const client = createClient({ url });
  // A failure shows as the rejection of connect() or of the command; without a listener the
  // 'error' event would be thrown instead.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return Number((await client.pubSubNumSub(redisChannel))[redisChannel] ?? 0);
  } finally {
    await client.close();
  }
}

(tools.run ? describe : describe.skip)('redisBus', () => {
  let redis: RedisServer;
  /** A plain node-redis connection that looks at the server from outside the buses. */
  let inspector: ReturnType<typeof createClient>;
  const buses: RedisBus[] = [];
  const subscriptions: Subscription[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    if (!tools.paths) throw new Error(`CI=true and no redis-server: ${tools.reason}`);
    redis = await startRedisServer(tools.paths['redis-server']);
    inspector = createClient({ url: redis.url });
    inspector.on('error', (error: Error) => errors.push(`inspector: ${error.message}`));
    await inspector.connect();
  }, 600_000);

  afterAll(async () => {
    if (inspector?.isOpen) await inspector.close();
    await redis?.stop();
  });

  /** A bus on the test's server whose error lines are collected; closed after the test. */
  const bus = (options: RedisBusOptions = {}): RedisBus => {
    const b = redisBus({
      url: redis.url,
      log: (severity, message) => {
        if (severity === 'error') errors.push(message);
      },
      ...options,
    });
    buses.push(b);
    return b;
  };

  /** Collects what `b` delivers on `channel`, until the test ends. */
  const collect = (b: RedisBus, channel: string): string[] => {
    const received: string[] = [];
    subscriptions.push(b.messages(channel).subscribe((message) => received.push(message)));
    return received;
  };

  /** Subscribers of a Redis channel, as the server counts them. */
  const subscribers = async (redisChannel: string): Promise<number> => Number((await inspector.pubSubNumSub(redisChannel))[redisChannel] ?? 0);

  afterEach(async () => {
    for (const s of subscriptions.splice(0)) s.unsubscribe();
    await Promise.all(buses.splice(0).map((b) => b.close()));
    const seen = errors.splice(0);
    expect(seen).toEqual([]);
  });

  it('delivers what is published to every subscriber of the channel, once and in order', async () => {
    const b = bus();
    const channel = randomUUID();
    const first = collect(b, channel);
    const second = collect(b, channel);
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    for (const message of sent) b.publish(channel, message);
    await waitUntil(() => first.length >= sent.length && second.length >= sent.length, '200 messages on both subscribers');
    await sleep(SETTLE_MS);
    expect(first).toEqual(sent);
    expect(second).toEqual(sent);
  });

  it('does not lose what is published while its subscription is still on its way to Redis', async () => {
    // Each round starts from a bus that has not connected yet, subscribes and publishes at once:
    // the PUBLISH must not overtake the SUBSCRIBE, which travels on the other connection.
    for (let round = 0; round < 20; round++) {
      const b = bus();
      const channel = randomUUID();
      const received = collect(b, channel);
      const sent = Array.from({ length: 10 }, (_, i) => `r${round} m${i}`);
      for (const message of sent) b.publish(channel, message);
      await waitUntil(() => received.length >= sent.length, `round ${round}: 10 messages`);
      expect(received).toEqual(sent);
    }
  });

  it('keeps the publisher order across a subscription made between two publishes', async () => {
    const b = bus();
    await b.ready();
    const early = randomUUID();
    const late = randomUUID();
    const earlyReceived = collect(b, early);
    await waitUntil(async () => (await subscribers(DEFAULT_REDIS_PREFIX + early)) === 1, 'the first SUBSCRIBE');
    const order: string[] = [];
    subscriptions.push(b.messages(early).subscribe((m) => order.push(m)));
    b.publish(early, 'before');
    subscriptions.push(b.messages(late).subscribe((m) => order.push(m)));
    b.publish(late, 'during');
    b.publish(early, 'after');
    await waitUntil(() => order.length >= 3, 'three messages');
    expect(order).toEqual(['before', 'during', 'after']);
    expect(earlyReceived).toEqual(['before', 'after']);
  });

  it('carries messages between two buses on one server, each exactly once, in order per publisher', async () => {
    const a = bus();
    const b = bus();
    const channel = randomUUID();
    const onA = collect(a, channel);
    const onB = collect(b, channel);
    await Promise.all([a.ready(), b.ready()]);
    await waitUntil(async () => (await subscribers(DEFAULT_REDIS_PREFIX + channel)) === 2, 'both buses subscribed');
    for (let i = 0; i < 100; i++) {
      a.publish(channel, `a${i}`);
      b.publish(channel, `b${i}`);
    }
    await waitUntil(() => onA.length >= 200 && onB.length >= 200, '200 messages on each bus');
    await sleep(SETTLE_MS);
    for (const received of [onA, onB]) {
      expect(received).toHaveLength(200);
      expect(received.filter((m) => m.startsWith('a'))).toEqual(Array.from({ length: 100 }, (_, i) => `a${i}`));
      expect(received.filter((m) => m.startsWith('b'))).toEqual(Array.from({ length: 100 }, (_, i) => `b${i}`));
    }
  });

  it('subscribes a channel on first use and unsubscribes it when its last subscriber leaves', async () => {
    const b = bus();
    const channel = randomUUID();
    const name = DEFAULT_REDIS_PREFIX + channel;
    expect(await subscribers(name)).toBe(0);
    const first = b.messages(channel).subscribe(() => undefined);
    const second = b.messages(channel).subscribe(() => undefined);
    await waitUntil(async () => (await subscribers(name)) === 1, 'the channel to be subscribed');
    first.unsubscribe();
    await sleep(SETTLE_MS);
    expect(await subscribers(name)).toBe(1);
    second.unsubscribe();
    await waitUntil(async () => (await subscribers(name)) === 0, 'the channel to be unsubscribed');
  });

  it('delivers again to a subscriber that comes right after the last one left', async () => {
    const b = bus();
    const channel = randomUUID();
    const gone = b.messages(channel).subscribe(() => undefined);
    await waitUntil(async () => (await subscribers(DEFAULT_REDIS_PREFIX + channel)) === 1, 'the first SUBSCRIBE');
    // UNSUBSCRIBE and SUBSCRIBE of one channel back to back on one connection.
    gone.unsubscribe();
    const received = collect(b, channel);
    b.publish(channel, 'still here');
    await waitUntil(() => received.length >= 1, 'the message');
    expect(received).toEqual(['still here']);
  });

  it('holds one subscribing connection for every channel and one publishing connection', async () => {
    const clientName = `bus-${randomUUID()}`;
    const b = bus({ client: { name: clientName } });
    const channels = [randomUUID(), randomUUID(), randomUUID()];
    for (const channel of channels) subscriptions.push(b.messages(channel).subscribe(() => undefined));
    b.publish(channels[0]!, 'x');
    await waitUntil(async () => {
      const mine = (await inspector.clientList()).filter((c) => c.name === clientName);
      return mine.length === 2 && mine.some((c) => c.sub === 3);
    }, 'two connections named for the bus, one with 3 subscriptions');
    const mine = (await inspector.clientList()).filter((c) => c.name === clientName);
    expect(mine.map((c) => c.sub).sort()).toEqual([0, 3]);
  });

  it('puts the prefix before every channel name on the server, sockjs-rx: by default', async () => {
    const channel = randomUUID();
    const seen: Array<{ channel: string; message: string }> = [];
    const listener = inspector.duplicate();
    listener.on('error', (error: Error) => errors.push(`listener: ${error.message}`));
    await listener.connect();
    try {
      const record = (message: string, name: string) => seen.push({ channel: name, message });
      await listener.subscribe([`sockjs-rx:${channel}`, `app1:${channel}`, channel], record);
      const plain = bus();
      const app1 = bus({ prefix: 'app1:' });
      const app2 = bus({ prefix: 'app2:' });
      const onApp2 = collect(app2, channel);
      await app2.ready();
      await waitUntil(async () => (await subscribers(`app2:${channel}`)) === 1, 'the app2 bus subscribed');
      plain.publish(channel, 'default');
      app1.publish(channel, 'app1');
      await waitUntil(() => seen.length >= 2, 'both messages on the prefixed channels');
      await sleep(SETTLE_MS);
      expect(seen.sort((x, y) => x.channel.localeCompare(y.channel))).toEqual([
        { channel: `app1:${channel}`, message: 'app1' },
        { channel: `sockjs-rx:${channel}`, message: 'default' },
      ]);
      // A bus with another prefix is another namespace.
      expect(onApp2).toEqual([]);
    } finally {
      await listener.close();
    }
  });

  it('completes every messages() Observable at close(), ends both connections, and closes twice safely', async () => {
    const clientName = `bus-${randomUUID()}`;
    const b = bus({ client: { name: clientName } });
    const channel = randomUUID();
    let completed = 0;
    subscriptions.push(b.messages(channel).subscribe({ complete: () => completed++ }));
    await b.ready();
    await waitUntil(async () => (await subscribers(DEFAULT_REDIS_PREFIX + channel)) === 1, 'the SUBSCRIBE');
    await b.close();
    await b.close();
    expect(completed).toBe(1);
    await waitUntil(
      async () => (await inspector.clientList()).every((c) => c.name !== clientName),
      'both connections of the bus to be gone',
    );
    expect(await subscribers(DEFAULT_REDIS_PREFIX + channel)).toBe(0);
  });

  it('sends what was published before close() and logs, without throwing, what is published after', async () => {
    const listener = inspector.duplicate();
    listener.on('error', (error: Error) => errors.push(`listener: ${error.message}`));
    await listener.connect();
    try {
      const channel = randomUUID();
      const seen: string[] = [];
      await listener.subscribe(DEFAULT_REDIS_PREFIX + channel, (message: string) => seen.push(message));
      const b = bus();
      b.publish(channel, 'before close');
      await b.close();
      expect(() => b.publish(channel, 'after close')).not.toThrow();
      let completed = false;
      b.messages(channel).subscribe({ complete: () => (completed = true) });
      expect(completed).toBe(true);
      await waitUntil(() => seen.length >= 1, 'the message published before close()');
      await sleep(SETTLE_MS);
      expect(seen).toEqual(['before close']);
      expect(errors.splice(0)).toEqual([`sockjs-rx/redis: publish on ${JSON.stringify(channel)} after close() is dropped`]);
    } finally {
      await listener.close();
    }
  });

  it('logs an unreachable server once per connection and never throws', async () => {
    const lines: Array<[string, string]> = [];
    // A port nothing listens on: the test server's, once it is stopped, is not known to be free,
    // so take one from a server of our own that is closed at once.
    const http = createHttpServer();
    const running = await listen(http);
    await running.close();
    const b = redisBus({ url: `redis://127.0.0.1:${running.port}`, log: (severity, message) => lines.push([severity, message]) });
    const completed: boolean[] = [];
    b.messages('x').subscribe({ complete: () => completed.push(true) });
    expect(() => b.publish('x', 'lost')).not.toThrow();
    await waitUntil(() => lines.filter(([s]) => s === 'error').length >= 2, 'the connection errors');
    // node-redis keeps retrying; a retry must not log again.
    await sleep(500);
    await b.close();
    const errorLines = lines.filter(([severity]) => severity === 'error').map(([, m]) => m);
    expect(errorLines.filter((m) => m.startsWith('sockjs-rx/redis: publish connection:'))).toHaveLength(1);
    expect(errorLines.filter((m) => m.startsWith('sockjs-rx/redis: subscribe connection:'))).toHaveLength(1);
    expect(completed).toEqual([true]);
  });

  it('logs an outage once per connection, then delivers again once Redis is back', async () => {
    const own = await startRedisServer(tools.paths!['redis-server']);
    const lines: Array<[string, string]> = [];
    const b = redisBus({ url: own.url, log: (severity, message) => lines.push([severity, message]) });
    try {
      const channel = randomUUID();
      const received: string[] = [];
      subscriptions.push(b.messages(channel).subscribe((m) => received.push(m)));
      b.publish(channel, 'before');
      await waitUntil(() => received.length >= 1, 'the first message');
      await own.stop();
      await waitUntil(() => lines.filter(([s]) => s === 'error').length >= 2, 'both connections to report the outage');
      const again = await startRedisServer(tools.paths!['redis-server'], own.port);
      try {
        await waitUntil(() => lines.filter(([s]) => s === 'info').length >= 2, 'both connections to be back', 15_000);
        // Resubscribed by node-redis on its own: what is published now arrives.
        await waitUntil(async () => (await subscriberCount(own.url, DEFAULT_REDIS_PREFIX + channel)) === 1, 'the channel to be subscribed again');
        b.publish(channel, 'after');
        await waitUntil(() => received.length >= 2, 'the message after the outage');
        expect(received).toEqual(['before', 'after']);
        const errorLines = lines.filter(([severity]) => severity === 'error').map(([, m]) => m);
        expect(errorLines).toHaveLength(2);
        expect(errorLines.filter((m) => m.startsWith('sockjs-rx/redis: publish connection:'))).toHaveLength(1);
        expect(errorLines.filter((m) => m.startsWith('sockjs-rx/redis: subscribe connection:'))).toHaveLength(1);
        expect(lines.filter(([s]) => s === 'info').map(([, m]) => m).sort()).toEqual([
          'sockjs-rx/redis: publish connection is back',
          'sockjs-rx/redis: subscribe connection is back',
        ]);
      } finally {
        await b.close();
        await again.stop();
      }
    } finally {
      await b.close();
      await own.stop();
    }
  }, 60_000);

  describe('under createServer({ bus })', () => {
    const servers: Array<{ sockjs: Server; running: Running }> = [];

    afterEach(async () => {
      for (const s of servers.splice(0)) {
        s.sockjs.close();
        await s.running.close();
      }
    });

    const node = async (b: RedisBus) => {
      const http = createHttpServer();
      const sockjs = createServer({ prefix: '/b', log: () => undefined, bus: b });
      sockjs.attach(http);
      const running = await listen(http);
      servers.push({ sockjs, running });
      return { sockjs, running };
    };

    const websocketOn = async (running: Running): Promise<Client> => {
      const client = await connectWs(`${running.url.replace('http', 'ws')}/b/0/${randomUUID()}/websocket`);
      expect(await client.next()).toBe('o');
      return client;
    };

    const receive = async (client: Client, count: number): Promise<string[]> => {
      const messages: string[] = [];
      while (messages.length < count) messages.push(...(JSON.parse((await client.next()).slice(1)) as string[]));
      return messages;
    };

    it('carries broadcast() between two servers on their own buses, once to each connection', async () => {
      const prefix = `test-${randomUUID()}:`;
      const first = await node(bus({ prefix }));
      const second = await node(bus({ prefix }));
      const a = await websocketOn(first.running);
      const b = await websocketOn(second.running);
      await waitUntil(async () => (await subscribers(`${prefix}*`)) === 2, 'both servers subscribed to "*"');
      first.sockjs.broadcast('from first');
      second.sockjs.broadcast('from second');
      for (const client of [a, b]) {
        const got = await receive(client, 2);
        expect(got.sort()).toEqual(['from first', 'from second']);
      }
    });
  });
});
