/**
 * `sockjs-rx/redis` against a real redis-server (Debian's), started on a free port for this file.
 * Without redis-server (`.ci/run` installs it for CI) the suite is skipped with one line, unless
 * CI=true, where it fails.
 */
import { randomUUID } from 'crypto';
import { createServer as createHttpServer } from 'http';
import { connect, createServer as createNetServer, type Socket } from 'net';
import { createClient } from 'redis';
import type { Subscription } from 'rxjs';
import { findCommands, type RedisServer, startRedisServer, suiteNeeding, waitUntil } from './helpers/debian-tools';
import { listen, type Running } from './helpers/server';
import { type Client, connectWs } from './helpers/ws-client';
import { createServer, type Server } from '../lib';
import { DEFAULT_MAX_HELD_SIZE, DEFAULT_REDIS_PREFIX, type RedisBus, redisBus, type RedisBusOptions } from '../lib/redis';

const tools = suiteNeeding('redis suite', findCommands({ 'redis-server': 'redis-server' }));

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

/**
 * A TCP relay to a Redis server on 127.0.0.1, which refuses connections while `open` is false:
 * a client behind it comes back from an outage only when the test lets it.
 */
async function relay(port: number): Promise<{ readonly url: string; open: boolean; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const gate = { open: true };
  const server = createNetServer((client) => {
    track(client);
    client.on('error', () => client.destroy());
    if (!gate.open) {
      client.destroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    track(upstream);
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const url = `redis://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  return Object.assign(gate, {
    url,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
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

  describe('while Redis is down', () => {
    const redisServer = () => tools.paths!['redis-server'];
    /** The Redis servers and relays a test started, stopped after it. */
    const started: Array<{ stop(): Promise<void> }> = [];

    /** The buses of a test, closed after it before its servers stop. */
    const own: RedisBus[] = [];

    afterEach(async () => {
      for (const s of subscriptions.splice(0)) s.unsubscribe();
      await Promise.all(own.splice(0).map((b) => b.close()));
      for (const s of started.splice(0).reverse()) await s.stop();
    });

    const startRedis = async (port?: number): Promise<RedisServer> => {
      const server = await startRedisServer(redisServer(), port);
      started.push(server);
      return server;
    };

    /** A bus on `url` whose every log line is kept, severity first; closed after the test. */
    const loggedBus = (url: string, options: RedisBusOptions = {}) => {
      const lines: string[] = [];
      const b = redisBus({ url, log: (severity, message) => lines.push(`${severity} ${message}`), ...options });
      own.push(b);
      return { b, lines };
    };

    it('holds what is published through a restart of Redis and sends it, once and in order, here and in another process', async () => {
      const own = await startRedis();
      const gate = await relay(own.port);
      started.push(gate);
      // The other process reconnects directly and quickly; this one comes back through the relay
      // once the other is subscribed again, since pub/sub gives nothing to whoever is not.
      const { b: here, lines } = loggedBus(gate.url);
      const { b: there } = loggedBus(own.url, { client: { socket: { reconnectStrategy: () => 20 } } });
      const channel = randomUUID();
      const onHere = collect(here, channel);
      const onThere = collect(there, channel);
      await Promise.all([here.ready(), there.ready()]);
      await waitUntil(async () => (await subscriberCount(own.url, DEFAULT_REDIS_PREFIX + channel)) === 2, 'both buses subscribed');

      const sent: string[] = [];
      /** The first publish the bus held rather than sent. */
      let firstHeld = -1;
      const stream = setInterval(() => {
        const message = `m${sent.length}`;
        here.publish(channel, message);
        if (firstHeld < 0 && here.stats().held > 0) firstHeld = sent.length;
        sent.push(message);
      }, 2);
      try {
        await waitUntil(() => onHere.length >= 50 && onThere.length >= 50, 'the stream to flow');
        gate.open = false;
        process.kill(own.pid, 'SIGKILL');
        await own.stop();
        await waitUntil(() => here.stats().held >= 200, '200 publishes held');
        const again = await startRedis(own.port);
        await waitUntil(async () => (await subscriberCount(again.url, DEFAULT_REDIS_PREFIX + channel)) === 1, 'the other bus subscribed again', 15_000);
        gate.open = true;
        await waitUntil(() => here.stats().held === 0, 'the held publishes sent', 15_000);
        const resumed = sent.length;
        await waitUntil(() => sent.length >= resumed + 50, '50 more publishes');
      } finally {
        clearInterval(stream);
      }
      const last = sent[sent.length - 1];
      await waitUntil(() => onHere.at(-1) === last && onThere.at(-1) === last, 'the last publish on both buses');
      await waitUntil(() => here.stats().published + here.stats().failed === sent.length, 'an answer to every PUBLISH');
      await sleep(SETTLE_MS);

      const stats = here.stats();
      expect(stats).toMatchObject({ dropped: 0, held: 0, heldSize: 0 });
      expect(firstHeld).toBeGreaterThan(0);
      for (const received of [onHere, onThere]) {
        const numbers = received.map((m) => Number(m.slice(1)));
        // Once each and in order.
        expect(numbers.every((n, i) => i === 0 || n > numbers[i - 1]!)).toBe(true);
        // Everything from the first held publish on.
        expect(received.slice(received.indexOf(sent[firstHeld]!))).toEqual(sent.slice(firstHeld));
        // Before it, only what was on its way when Redis died can be missing, and it was counted.
        expect(sent.length - received.length).toBeLessThanOrEqual(stats.failed);
      }
      // What failed on its way, if anything, is said in one line, with the count.
      const lost = lines.filter((line) => / failed \(/.test(line));
      expect(lost).toEqual(stats.failed === 0 ? [] : [expect.stringContaining(`: ${stats.failed} failed (`)]);
      expect(lines.filter((line) => / dropped/.test(line))).toEqual([]);
    }, 60_000);

    it('drops the oldest publishes past max_held_size, counts them, and says so when it starts and, with the count, once Redis is back', async () => {
      const own = await startRedis();
      const { b, lines } = loggedBus(own.url, { max_held_size: 10_000 });
      const channel = randomUUID();
      const received = collect(b, channel);
      await b.ready();
      await waitUntil(async () => (await subscriberCount(own.url, DEFAULT_REDIS_PREFIX + channel)) === 1, 'the SUBSCRIBE');
      await own.stop();
      await waitUntil(() => lines.filter((line) => line.startsWith('error ')).length >= 2, 'both connections to report the outage');

      // Each costs 36 (channel) + 100 (message) + 64 (entry) = 200 bytes: 50 fit in 10,000.
      const sent = Array.from({ length: 2000 }, (_, i) => String(i).padStart(100, '.'));
      let most = 0;
      for (const message of sent) {
        b.publish(channel, message);
        most = Math.max(most, b.stats().heldSize);
      }
      expect(most).toBe(10_000);
      expect(b.stats()).toEqual({ published: 0, failed: 0, dropped: 1950, held: 50, heldSize: 10_000, relayed: 0, relayFailed: 0, claims: 0 });

      await startRedis(own.port);
      await waitUntil(() => received.length >= 50, 'the held publishes', 15_000);
      await sleep(SETTLE_MS);
      expect(received).toEqual(sent.slice(1950));
      expect(b.stats()).toEqual({ published: 50, failed: 0, dropped: 1950, held: 0, heldSize: 0, relayed: 0, relayFailed: 0, claims: 0 });
      const errors = lines.filter((line) => line.startsWith('error '));
      // One line when dropping starts, one with the count when the outage ends.
      expect(errors.filter((line) => line.includes('dropped'))).toEqual([
        'error sockjs-rx/redis: Redis unreachable: the held queue is full (max_held_size 10,000 bytes); the oldest publishes are dropped until it drains',
        expect.stringMatching(/^error sockjs-rx\/redis: Redis unreachable for \d+\.\d s: 1,950 publishes dropped \(held queue full: max_held_size 10,000 bytes\)$/),
      ]);
      expect(errors).toHaveLength(4);
    }, 60_000);

    it('keeps what it holds within max_held_size, and close() says in one line what it could not send', async () => {
      // A port nothing listens on: a bus that never connects.
      const http = createHttpServer();
      const running = await listen(http);
      await running.close();
      const { b, lines } = loggedBus(`redis://127.0.0.1:${running.port}`);
      subscriptions.push(b.messages('x').subscribe(() => undefined));
      const kilobyte = 'k'.repeat(1024);
      let most = 0;
      for (let i = 0; i < 100_000; i++) {
        b.publish('x', kilobyte);
        most = Math.max(most, b.stats().heldSize);
      }
      // 1 (channel) + 1,024 + 64 = 1,089 bytes each: 7,703 of them fit in 8 MiB.
      expect(DEFAULT_MAX_HELD_SIZE).toBe(8 * 1024 * 1024);
      expect(most).toBeLessThanOrEqual(DEFAULT_MAX_HELD_SIZE);
      expect(b.stats()).toEqual({ published: 0, failed: 0, dropped: 100_000 - 7703, held: 7703, heldSize: 7703 * 1089, relayed: 0, relayFailed: 0, claims: 0 });
      await b.close();
      expect(b.stats()).toEqual({ published: 0, failed: 0, dropped: 100_000, held: 0, heldSize: 0, relayed: 0, relayFailed: 0, claims: 0 });
      const errors = lines.filter((line) => line.startsWith('error '));
      expect(errors.filter((line) => line.includes('dropped'))).toEqual([
        'error sockjs-rx/redis: Redis unreachable: the held queue is full (max_held_size 8,388,608 bytes); the oldest publishes are dropped until it drains',
        expect.stringMatching(
          /^error sockjs-rx\/redis: Redis unreachable for \d+\.\d s: 92,297 publishes dropped \(held queue full: max_held_size 8,388,608 bytes\), 7,703 held ones dropped at close\(\)$/,
        ),
      ]);
      expect(errors.every((line) => !/:\s*$/.test(line))).toBe(true);
    }, 30_000);

    it('rejects a max_held_size that is not a positive integer', () => {
      for (const max_held_size of [0, -1, 1.5, Number.NaN, Infinity]) {
        expect(() => redisBus({ url: redis.url, max_held_size })).toThrow(expect.objectContaining({ code: 'SOCKJS_ERR_INVALID_OPTION' }));
      }
    });
  });

  describe('when Redis refuses a publish', () => {
    it('counts each failure and logs the first at once, with its reason, and the count once publishing works again', async () => {
      const user = `nopub-${randomUUID()}`;
      await inspector.sendCommand(['ACL', 'SETUSER', user, 'on', 'nopass', '~*', '&*', '+@all', '-publish']);
      try {
        const lines: string[] = [];
        // node-redis sends AUTH only with a password; the user has none to check.
        const url = redis.url.replace('redis://', `redis://${user}:any@`);
        const b = redisBus({ url, log: (severity, message) => lines.push(`${severity} ${message}`) });
        buses.push(b);
        await b.ready();
        for (let i = 0; i < 3; i++) b.publish('x', `m${i}`);
        await waitUntil(() => b.stats().failed === 3, 'three failures');
        expect(lines).toEqual([
          expect.stringMatching(/^error sockjs-rx\/redis: PUBLISH sockjs-rx:x failed: NOPERM .*publish.*; counting failures until one succeeds$/),
        ]);
        await inspector.sendCommand(['ACL', 'SETUSER', user, '+publish']);
        b.publish('x', 'm3');
        await waitUntil(() => b.stats().published === 1, 'the publish after the grant');
        expect(b.stats()).toEqual({ published: 1, failed: 3, dropped: 0, held: 0, heldSize: 0, relayed: 0, relayFailed: 0, claims: 0 });
        expect(lines).toHaveLength(2);
        expect(lines[1]).toMatch(/^error sockjs-rx\/redis: PUBLISH failing for \d+\.\d s: 3 failed \(NOPERM .*\)$/);
      } finally {
        await inspector.sendCommand(['ACL', 'DELUSER', user]);
      }
    });

  });

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
