/**
 * `relay: true`: three servers, each on an HTTP server of its own, and a client that sends each
 * request of a session to whichever server it likes. They relay over one `localBus()` (one
 * process), and over a real redis-server with a `redisBus()` each, as separate processes would.
 * Real processes behind HAProxy and nginx are tested in deploy/.
 *
 * redis-server is Debian's, installed by `.ci/run` for CI; without it the Redis half is skipped
 * with one line, unless CI=true, where it fails.
 */
import { randomUUID } from 'crypto';
import { findCommands, type RedisServer, startRedisServer, suiteNeeding } from './helpers/debian-tools';
import { RawResponse } from './helpers/raw-http';
import { echoServer, type EchoServer, eventually } from './helpers/server';
import { type Connection, createServer, localBus } from '../lib';
import type { RelayBus } from '../lib/relay';
import { type RedisBus, redisBus, type RedisBusOptions } from '../lib/redis';

const redisTools = suiteNeeding('relay over Redis', findCommands({ 'redis-server': 'redis-server' }));

const servers: EchoServer[] = [];
const buses: RedisBus[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
});

/** Three echo servers relaying over the buses `busFor` gives them. */
async function three(busFor: (n: number) => RelayBus, options: Record<string, unknown> = {}): Promise<EchoServer[]> {
  const started = await Promise.all([0, 1, 2].map((n) => echoServer({ bus: busFor(n), relay: true, ...options })));
  servers.push(...started);
  return started;
}

const post = (server: EchoServer, path: string, body = '', headers: Record<string, string> = {}) =>
  RawResponse.open(server.port, { method: 'POST', path, body, headers });

const get = (server: EchoServer, path: string) => RawResponse.open(server.port, { method: 'GET', path });

/** The messages of an `a[...]` frame, or the frame itself. */
function messagesOf(frame: string): string[] | string {
  return frame.startsWith('a') ? (JSON.parse(frame.slice(1)) as string[]) : frame;
}

it('refuses relay without a bus, or with a bus that cannot relay', () => {
  const broadcastOnly = { publish: () => undefined, messages: () => localBus().messages('x') };
  expect(() => createServer({ relay: true })).toThrow('Invalid option "relay"');
  expect(() => createServer({ relay: true, bus: broadcastOnly })).toThrow('Invalid option "relay"');
  expect(() => createServer({ relay: true, bus: localBus() })).not.toThrow();
});

let redis: RedisServer | null = null;

beforeAll(async () => {
  if (!redisTools.run) return;
  if (!redisTools.paths) throw new Error(`CI=true and no redis-server: ${redisTools.reason}`);
  redis = await startRedisServer(redisTools.paths['redis-server']);
}, 30_000);

afterAll(async () => {
  await redis?.stop();
});

/** A bus of its own for each server, on the redis-server at `url` (the test's by default). */
function redisBuses(url = redis!.url, options: RedisBusOptions = {}): (n: number) => RedisBus {
  return () => {
    const bus = redisBus({ url, log: () => undefined, ...options });
    buses.push(bus);
    return bus;
  };
}

/** Runs `check` with a client of the test's redis-server of its own, to look at the keys. */
async function inspecting(check: (inspector: { get(key: string): Promise<string | null>; set(key: string, value: string): Promise<unknown>; pTTL(key: string): Promise<number> }) => Promise<void>): Promise<void> {
  const { createClient } = await import('redis');
  const inspector = createClient({ url: redis!.url });
  await inspector.connect();
  try {
    await check(inspector);
  } finally {
    await inspector.close();
  }
}

/** `bus`, its claims answered 20 ms late, as over a Redis round trip. */
function slowClaims(bus: RelayBus): RelayBus {
  return {
    ...bus,
    claim: async (session, address) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return bus.claim(session, address);
    },
  };
}

/** One localBus shared by the three servers. */
function sharedLocalBus(): (n: number) => RelayBus {
  const bus = localBus();
  return () => bus;
}

const KINDS: Array<[string, () => (n: number) => RelayBus]> = [['one localBus', sharedLocalBus]];
if (redisTools.run) KINDS.push(['a redisBus each', redisBuses]);

describe.each(KINDS)('relay: true over %s', (_kind, busesFor) => {
  it('serves an xhr-polling session from every server: 50 messages echoed in order, polls and sends spread over all three', async () => {
    const [a, b, c] = await three(busesFor());
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const ring = [a!, b!, c!];
    const received: string[] = [];
    for (let i = 0; i < 50; i++) {
      const sent = await post(ring[i % 3]!, `${session}/xhr_send`, JSON.stringify([`m${i}`]));
      expect(sent.status).toBe(204);
      const polled = await (await post(ring[(i + 1) % 3]!, `${session}/xhr`)).body();
      expect(polled.endsWith('\n')).toBe(true);
      received.push(...(messagesOf(polled.trimEnd()) as string[]));
    }
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    // One session, on the server that opened it; the others only relayed.
    expect(a!.connections).toHaveLength(1);
    expect(b!.connections).toHaveLength(0);
    expect(c!.connections).toHaveLength(0);
    expect(a!.sockjs.sessionCount).toBe(1);
  });

  it('relays a stream: frames, heartbeats and the end at response_limit as a local stream has them', async () => {
    const [a, b, c] = await three(busesFor(), { heartbeat_delay: 150 });
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const stream = await post(b!, `${session}/xhr_streaming`);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('application/javascript; charset=UTF-8');
    expect(await stream.nextChunk()).toBe('h'.repeat(2048) + '\n');
    expect((await post(c!, `${session}/xhr_send`, '["x"]')).status).toBe(204);
    expect(await stream.nextChunk()).toBe('a["x"]\n');
    // Nothing for heartbeat_delay: the owner's heartbeat comes through the relay.
    expect(await stream.nextChunk(1000)).toBe('h\n');
    // /echo's response_limit is 4096: 2 messages of 2,100 characters end the response.
    for (let n = 0; n < 2; n++) expect((await post(c!, `${session}/xhr_send`, JSON.stringify(['y'.repeat(2100)]))).status).toBe(204);
    const rest: Array<string | null> = [];
    for (let chunk = await stream.nextChunk(); ; chunk = await stream.nextChunk()) {
      if (chunk !== 'h\n') rest.push(chunk);
      if (chunk === null) break;
    }
    expect(rest).toEqual([`a["${'y'.repeat(2100)}"]\n`, `a["${'y'.repeat(2100)}"]\n`, null]);
    // The session goes on, on the next request, wherever it lands.
    expect((await post(b!, `${session}/xhr_send`, '["z"]')).status).toBe(204);
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('a["z"]\n');
  });

  it('wraps frames for the relaying transport: eventsource, htmlfile and jsonp-polling as their local answers', async () => {
    const [a, b] = await three(busesFor());
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');

    const events = await get(b!, `${session}/eventsource`);
    expect(events.headers['content-type']).toBe('text/event-stream');
    expect(await events.nextChunk()).toBe('\r\n');
    expect((await post(a!, `${session}/xhr_send`, '["e"]')).status).toBe(204);
    expect(await events.nextChunk()).toBe('data: a["e"]\r\n\r\n');
    events.destroy();
    // The dropped stream ended that session: a new one for the polls.
    const polled = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${polled}/xhr`)).body()).toBe('o\n');
    const html = await get(b!, `${polled}/htmlfile?c=cb`);
    expect(html.headers['content-type']).toBe('text/html; charset=UTF-8');
    expect(await html.nextChunk()).toContain('<script>');
    expect((await post(a!, `${polled}/xhr_send`, '["h"]')).status).toBe(204);
    expect(await html.nextChunk()).toBe('<script>\np("a[\\"h\\"]");\n</script>\r\n');
    html.destroy();
    const jsonp = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${jsonp}/xhr`)).body()).toBe('o\n');
    const answer = RawResponse.start(b!.port, { method: 'GET', path: `${jsonp}/jsonp?c=cb.x` });
    expect((await post(a!, `${jsonp}/xhr_send`, '["j"]')).status).toBe(204);
    expect(await answer.body()).toBe('/**/cb.x("a[\\"j\\"]");\r\n');
  });

  it('tells the owner when a relayed stream is dropped: the session ends with 1002', async () => {
    const [a, b] = await three(busesFor());
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const connection = a!.connections[0]!;
    const closed = new Promise<{ code: number; reason: string }>((resolve) => connection.closed$.subscribe(resolve));
    const stream = await post(b!, `${session}/xhr_streaming`);
    await stream.nextChunk();
    stream.destroy();
    expect(await closed).toEqual({ code: 1002, reason: 'Connection interrupted' });
    await eventually(() => a!.sockjs.sessionCount === 0, 2000, 'the session to end');
  });

  it('gives a second receiver 2010 whichever servers the two are relayed from', async () => {
    const [a, b, c] = await three(busesFor());
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const first = RawResponse.start(b!.port, { method: 'POST', path: `${session}/xhr`, body: '' });
    await eventually(() => b!.requests.length > 0, 2000, 'the first poll');
    // The first poll waits on the owner; a second, relayed from elsewhere, is refused.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('c[2010,"Another connection still open"]\n');
    expect((await post(a!, `${session}/xhr_send`, '["after"]')).status).toBe(204);
    expect(await first.body()).toBe('a["after"]\n');
  });

  it('answers a send for a session no server has with 404, from any server', async () => {
    const [, b] = await three(busesFor());
    const sent = await post(b!, `/echo/000/${randomUUID()}/xhr_send`, '["x"]');
    expect(sent.status).toBe(404);
  });

  it('opens a new session where its first request lands, and a closed one answers its close frame from everywhere', async () => {
    const [a, b, c] = await three(busesFor());
    const session = `/close/000/${randomUUID()}`;
    // /close closes every session at once with 3000 "Go away!".
    expect(await (await post(b!, `${session}/xhr`)).body()).toBe('o\n');
    expect(b!.connections).toHaveLength(1);
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('c[3000,"Go away!"]\n');
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('c[3000,"Go away!"]\n');
    expect(a!.connections).toHaveLength(0);
  });

  it('with authorize, asks once where a session opens, and lets no server serve it to a request without its credentials', async () => {
    const asked: string[] = [];
    const authorize = ({ query }: { query: URLSearchParams }) => {
      asked.push(query.get('token') ?? '');
      return query.get('token') === 'ok' ? { user: 'ann' } : false;
    };
    const [a, b, c] = await three(busesFor(), { authorize });
    const session = `/echo/000/${randomUUID()}`;
    expect((await post(b!, `${session}/xhr`)).status).toBe(403);
    expect(await (await post(a!, `${session}/xhr?token=ok`)).body()).toBe('o\n');
    // Relayed with its credentials, a send and a poll reach the session; without them, neither does.
    expect((await post(b!, `${session}/xhr_send?token=ok`, '["mine"]')).status).toBe(204);
    expect((await post(c!, `${session}/xhr_send`, '["stolen"]')).status).toBe(403);
    expect((await post(c!, `${session}/xhr_send?token=other`, '["stolen"]')).status).toBe(403);
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('c[1008,"Not authorized"]\n');
    expect(await (await post(b!, `${session}/xhr?token=ok`)).body()).toBe('a["mine"]\n');
    expect(asked).toEqual(['', 'ok']);
    // The server that relayed them counts the refusals its owner made; the owner, the one it made itself.
    expect(c!.sockjs.metrics().prefixes['/echo']!.refused.authorization).toBe(3);
    expect(a!.connections.map((connection) => connection.auth)).toEqual([{ user: 'ann' }]);
  });

  it('delivers messages sent through different servers to the application in the order they were sent', async () => {
    const [a, b, c] = await three(busesFor());
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('o\n');
    const connection: Connection = c!.connections[0]!;
    const seen: string[] = [];
    connection.on('data', (m: string) => seen.push(m));
    const ring = [a!, b!, c!];
    for (let i = 0; i < 30; i++) expect((await post(ring[i % 3]!, `${session}/xhr_send`, JSON.stringify([`s${i}`, `t${i}`]))).status).toBe(204);
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => [`s${i}`, `t${i}`]).flat());
  });
});

it('answers 500 to a receiving request whose jsessionid function throws once its owner is known, and goes on serving', async () => {
  const bus = localBus();
  let throwing = false;
  const jsessionid = () => {
    if (throwing) throw new Error('boom');
  };
  const [a, b, c] = await three(() => bus, { jsessionid });
  const session = `/echo/000/${randomUUID()}`;
  expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
  throwing = true;
  // A new session (claimed where it lands) and one owned elsewhere (relayed): the function runs
  // once the owner is known, after the endpoint has subscribed the request.
  const fresh = randomUUID();
  expect((await post(b!, `/echo/000/${fresh}/xhr`)).status).toBe(500);
  expect((await post(b!, `${session}/xhr`)).status).toBe(500);
  throwing = false;
  // The claim of the session that never opened went with it: it opens where it lands next.
  expect(await (await post(c!, `/echo/000/${fresh}/xhr`)).body()).toBe('o\n');
  expect((await post(c!, `${session}/xhr_send`, '["after"]')).status).toBe(204);
  expect(await (await post(b!, `${session}/xhr`)).body()).toBe('a["after"]\n');
});

it('keeps no claim for a request that never opened its session (a jsonp poll without a callback)', async () => {
  const bus = localBus();
  const [a, b] = await three(() => bus);
  const id = randomUUID();
  const refused = await get(a!, `/echo/000/${id}/jsonp`);
  expect(refused.status).toBe(500);
  expect(await refused.body()).toBe('"callback" parameter required');
  expect(await bus.owner(`/echo/${id}`)).toBeNull();
  // The id is free: it opens where it lands next.
  expect(await (await post(b!, `/echo/000/${id}/xhr`)).body()).toBe('o\n');
  expect(await bus.owner(`/echo/${id}`)).not.toBeNull();
});

it('asks authorize for every request that would open a session here, however their claims race, and keeps the claim of the one that opens it', async () => {
  const inner = localBus();
  // A claim that takes a while, as a Redis round trip does, and an authorize slower still.
  const bus = slowClaims(inner);
  const asked: string[] = [];
  const authorize = async ({ query }: { query: URLSearchParams }) => {
    asked.push(query.get('token') ?? '');
    await new Promise((resolve) => setTimeout(resolve, 50));
    return query.get('token') === 'ok' ? { user: 'ann' } : false;
  };
  const [a] = await three(() => bus, { authorize });
  const id = randomUUID();
  const session = `/echo/000/${id}`;
  // Two requests without the token, the second while the first's claim is on its way.
  const first = post(a!, `${session}/xhr`);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const second = post(a!, `${session}/xhr`);
  expect([(await first).status, (await second).status]).toEqual([403, 403]);
  expect(asked).toEqual(['', '']);
  expect(a!.connections).toEqual([]);
  expect(await inner.owner(`/echo/${id}`)).toBeNull();
  // Two with the token: one opens the session, the other is its second receiver, and the claim stays.
  const streaming = RawResponse.start(a!.port, { method: 'POST', path: `${session}/xhr_streaming?token=ok`, headers: {}, body: '' });
  await new Promise((resolve) => setTimeout(resolve, 5));
  const polled = await (await post(a!, `${session}/xhr?token=ok`)).body();
  expect(['o\n', 'c[2010,"Another connection still open"]\n']).toContain(polled);
  expect(a!.connections.map((connection) => connection.auth)).toEqual([{ user: 'ann' }]);
  expect(await inner.owner(`/echo/${id}`)).not.toBeNull();
  expect((await post(a!, `${session}/xhr_send?token=ok`, '["hi"]')).status).toBe(204);
  streaming.destroy();
});

it('keeps the claim of a session that a second request opens after the request that claimed it was refused', async () => {
  const inner = localBus();
  const bus = slowClaims(inner);
  let asked = 0;
  const authorize = async () => {
    const mine = ++asked;
    await new Promise((resolve) => setTimeout(resolve, mine === 1 ? 100 : 300));
    return mine === 1 ? false : { user: 'ann' };
  };
  const [a, b] = await three(() => bus, { authorize });
  const id = randomUUID();
  const first = post(a!, `/echo/000/${id}/xhr?token=x`);
  await new Promise((resolve) => setTimeout(resolve, 40));
  const second = post(a!, `/echo/000/${id}/xhr?token=x`, '', {});
  expect((await first).status).toBe(403);
  expect(await (await second).body()).toBe('o\n');
  expect(await inner.owner(`/echo/${id}`)).not.toBeNull();
  // Another server relays to it rather than open a second copy.
  expect((await post(b!, `/echo/000/${id}/xhr_send?token=x`, '["hi"]')).status).toBe(204);
  expect(b!.sockjs.sessionCount).toBe(0);
  expect(a!.connections).toHaveLength(1);
});

describe('relay: true over a localBus that fails', () => {
  /** localBus, with every relay call failing while `down` is set. */
  function flaky(): RelayBus & { down: boolean } {
    const bus = localBus();
    const failing = { down: false };
    const guard =
      <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> =>
        failing.down ? Promise.reject(new Error('bus down')) : call(...args);
    return Object.assign(failing, {
      publish: bus.publish,
      messages: bus.messages,
      release: bus.release,
      inbox: bus.inbox,
      claim: guard(bus.claim),
      owner: guard(bus.owner),
      deliver: guard(bus.deliver),
      listening: guard(bus.listening),
      interruptions: bus.interruptions,
      claimsLost: bus.claimsLost,
    });
  }

  it('answers relayed sends 503 and relayed receivers with a close frame at once, while local sessions go on', async () => {
    const bus = flaky();
    const [a, b, c] = await three(() => bus);
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const stream = await post(b!, `${session}/xhr_streaming`);
    await stream.nextChunk();
    bus.down = true;
    const started = Date.now();
    const sent = await post(b!, `${session}/xhr_send`, '["x"]');
    expect(sent.status).toBe(503);
    expect(await sent.body()).toBe('Session relay unavailable.');
    expect(await (await post(b!, `${session}/xhr`)).body()).toBe('Session relay unavailable.');
    // The relayed stream hears of it within the owners' check (about a second).
    expect(await stream.nextChunk(3000)).toBe('c[1011,"Session unreachable"]\n');
    expect(Date.now() - started).toBeLessThan(3000);
    // The owner still serves its own sessions' requests. This one's receiver was the
    // relayed stream, which its next frame cannot reach: it ends as for a client gone.
    const connection = a!.connections[0]!;
    const closed = new Promise<{ code: number }>((resolve) => connection.closed$.subscribe(resolve));
    expect((await post(a!, `${session}/xhr_send`, '["local"]')).status).toBe(204);
    expect((await closed).code).toBe(1002);
    const own = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${own}/xhr`)).body()).toBe('Session relay unavailable.');
    // When the bus is back, sessions are relayed again.
    bus.down = false;
    expect(await (await post(a!, `${own}/xhr`)).body()).toBe('o\n');
    expect((await post(b!, `${own}/xhr_send`, '["again"]')).status).toBe(204);
    expect(await (await post(c!, `${own}/xhr`)).body()).toBe('a["again"]\n');
  });
});

(redisTools.run ? describe : describe.skip)('relay: true over Redis, when a process or Redis goes away', () => {
  it('answers what was relayed to a process whose bus went away: 404 for a send, the close frame for a waiting poll', async () => {
    const busFor = redisBuses();
    const owned = busFor(0);
    const [a, b] = await three((n) => (n === 0 ? owned : busFor(n)));
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const poll = RawResponse.start(b!.port, { method: 'POST', path: `${session}/xhr`, body: '' });
    await eventually(() => b!.requests.length > 0, 2000, 'the relayed poll');
    // The owner's connections to Redis end, as when its process dies: its session stays in it.
    await owned.close();
    const started = Date.now();
    expect(await poll.body(5000)).toBe('c[1011,"Session unreachable"]\n');
    expect(Date.now() - started).toBeLessThan(3000);
    // Its claim is still in Redis (it expires by itself), but no one listens there any more.
    expect((await post(b!, `${session}/xhr_send`, '["x"]')).status).toBe(404);
  });

  it('fails relayed requests at once while Redis is down, serves local sessions, and relays again once it is back', async () => {
    const server = await startRedisServer(redisTools.paths!['redis-server']);
    try {
      const [a, b, c] = await three(redisBuses(server.url));
      const session = `/echo/000/${randomUUID()}`;
      expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
      await server.stop();
      const started = Date.now();
      const sent = await post(b!, `${session}/xhr_send`, '["x"]');
      expect(sent.status).toBe(503);
      expect(await (await post(c!, `${session}/xhr`)).body()).toBe('Session relay unavailable.');
      expect(Date.now() - started).toBeLessThan(1000);
      // The owner's own requests need no Redis.
      expect((await post(a!, `${session}/xhr_send`, '["local"]')).status).toBe(204);
      expect(await (await post(a!, `${session}/xhr`)).body()).toBe('a["local"]\n');
      const back = await startRedisServer(redisTools.paths!['redis-server'], server.port);
      try {
        // Each bus reconnects on its own schedule: until all three have, a relayed request may
        // still be answered 503.
        const fresh = `/echo/000/${randomUUID()}`;
        expect(await retrying(async () => (await post(b!, `${fresh}/xhr`)).body(), 'o\n')).toBe('o\n');
        expect(await retrying(async () => (await post(c!, `${fresh}/xhr_send`, '["back"]')).status, 204)).toBe(204);
        expect(await retrying(async () => (await post(a!, `${fresh}/xhr`)).body(), 'a["back"]\n')).toBe('a["back"]\n');
      } finally {
        for (const s of servers.splice(0)) await s.close();
        await Promise.all(buses.splice(0).map((bus) => bus.close()));
        await back.stop();
      }
    } finally {
      await server.stop();
    }
  }, 30_000);

  it('keeps a claim in Redis while its session lives, renewing it, and deletes it when the session ends', async () => {
    await inspecting(async (inspector) => {
      // Claims that expire in 300 ms unless renewed (every 100 ms).
      const [a, b] = await three(redisBuses(redis!.url, { claim_ttl: 300 }));
      const id = randomUUID();
      expect(await (await post(a!, `/close/000/${id}/xhr`)).body()).toBe('o\n');
      const key = `sockjs-rx:session:/close/${id}`;
      await eventually(() => a!.sockjs.sessionCount === 1, 2000, 'the session');
      // /close closed the session at once; it ends after disconnect_delay without a receiver.
      expect(await (await post(b!, `/close/000/${id}/xhr`)).body()).toBe('c[3000,"Go away!"]\n');
      const owner = await inspector.get(key);
      expect(typeof owner).toBe('string');
      // Well past its first expiry, the claim is there: renewed.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await inspector.get(key)).toBe(owner);
      const ttl = await inspector.pTTL(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      const echoId = randomUUID();
      expect(await (await post(a!, `/echo/000/${echoId}/xhr`)).body()).toBe('o\n');
      const echoKey = `sockjs-rx:session:/echo/${echoId}`;
      expect(typeof (await inspector.get(echoKey))).toBe('string');
      // A stream dropped by its client ends the session at once (1002), and with it the claim.
      const stream = await post(b!, `/echo/000/${echoId}/xhr_streaming`);
      await stream.nextChunk();
      stream.destroy();
      await eventually(() => a!.sockjs.sessionCount === 1, 2000, 'the echo session to end');
      await waitForKey(inspector, echoKey, null);
    });
  });
});

/** Waits until `key` holds `value` (null: is gone). */
async function waitForKey(inspector: { get(key: string): Promise<unknown> }, key: string, value: string | null): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await inspector.get(key)) === value) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${key} did not become ${String(value)}`);
}

/** `attempt()` until it gives `wanted`, every 100 ms for up to 10 s; the last answer. */
async function retrying<T>(attempt: () => Promise<T>, wanted: T): Promise<T> {
  let got = await attempt();
  for (let i = 0; i < 100 && got !== wanted; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    got = await attempt();
  }
  return got;
}

it('drops a send that reaches its owner after its deadline, when its request has been answered 503 already', async () => {
  const bus = localBus();
  const logs: string[] = [];
  // A bus that takes a send's PUBLISH and answers it only after the relaying side gave up
  // (2 s), as a hung Redis does; the message arrives at 2.5 s.
  const hung: RelayBus = Object.assign(Object.create(bus) as RelayBus, {
    deliver: (address: string, message: string) =>
      message.startsWith('{"t":"send"')
        ? new Promise<boolean>((_resolve, reject) => {
            setTimeout(() => reject(new Error('no answer from Redis in 2000 ms')), 2000);
            setTimeout(() => void bus.deliver(address, message), 2500);
          })
        : bus.deliver(address, message),
  });
  const [a, b] = await three(() => hung, { log: (severity: string, line: string) => severity === 'error' && logs.push(line) });
  const session = `/echo/000/${randomUUID()}`;
  expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
  const seen: string[] = [];
  a!.connections[0]!.on('data', (m: string) => seen.push(m));
  const sent = RawResponse.start(b!.port, { method: 'POST', path: `${session}/xhr_send`, body: '["late"]' });
  expect((await sent.head(5000)).status).toBe(503);
  await eventually(() => logs.some((line) => line.includes('after its deadline')), 3000, 'the late send to be dropped');
  expect(seen).toEqual([]);
}, 10_000);

it('answers 503 a relayed send its owner took too late to handle (a busy owner), which the application never sees', async () => {
  const bus = localBus();
  // Delivered in time, as far as the bus can tell, but handled by the owner 2.5 s later.
  const slowOwner: RelayBus = Object.assign(Object.create(bus) as RelayBus, {
    deliver: (address: string, message: string) => {
      if (!message.startsWith('{"t":"send"')) return bus.deliver(address, message);
      setTimeout(() => void bus.deliver(address, message), 2500);
      return Promise.resolve(true);
    },
  });
  const [a, b] = await three(() => slowOwner);
  const session = `/echo/000/${randomUUID()}`;
  expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
  const seen: string[] = [];
  a!.connections[0]!.on('data', (m: string) => seen.push(m));
  const sent = RawResponse.start(b!.port, { method: 'POST', path: `${session}/xhr_send`, body: '["late"]' });
  expect((await sent.head(5000)).status).toBe(503);
  expect(seen).toEqual([]);
}, 10_000);

it('answers requests still looking up their owner when their server closes: 503 Server shutting down', async () => {
  const bus = localBus();
  const later = <T>(value: Promise<T>) => new Promise<T>((resolve) => setTimeout(() => resolve(value), 500));
  const slow: RelayBus = Object.assign(Object.create(bus) as RelayBus, {
    claim: (session: string, address: string) => later(bus.claim(session, address)),
    owner: (session: string) => later(bus.owner(session)),
  });
  const [a, b] = await three(() => slow);
  const session = `/echo/000/${randomUUID()}`;
  expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
  const sent = RawResponse.start(b!.port, { method: 'POST', path: `${session}/xhr_send`, body: '["x"]' });
  const polled = RawResponse.start(b!.port, { method: 'POST', path: `/echo/000/${randomUUID()}/xhr`, body: '' });
  await new Promise((resolve) => setTimeout(resolve, 100));
  b!.sockjs.close();
  for (const answer of [sent, polled]) {
    expect((await answer.head(3000)).status).toBe(503);
    expect(await answer.body()).toBe('Server shutting down.');
  }
});

describe('relay: true, when clients and servers go away mid-relay', () => {
  it('opens nothing for a client that left while its session was looked up, new or relayed', async () => {
    const bus = localBus();
    // Lookups that take 150 ms, as over a slow bus.
    const slow: RelayBus = Object.assign(Object.create(bus) as RelayBus, {
      claim: (session: string, address: string) => new Promise<string | null>((resolve) => setTimeout(() => resolve(bus.claim(session, address)), 150)),
    });
    const [a, b] = await three(() => slow);
    const owned = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${owned}/xhr`)).body()).toBe('o\n');
    const fresh = randomUUID();
    for (const path of [`/echo/000/${fresh}/xhr_streaming`, `${owned}/xhr_streaming`]) {
      const left = RawResponse.start(b!.port, { method: 'POST', path, body: '' });
      await eventually(() => b!.requests.length > 0, 2000, 'the request');
      left.destroy();
      b!.requests.length = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    // The new session never opened, and its claim went; the relayed stream never attached, so
    // the owner's session still waits for a receiver (another poll is answered, not refused).
    expect(b!.sockjs.sessionCount).toBe(0);
    expect(await bus.owner(`/echo/${fresh}`)).toBeNull();
    expect((await post(a!, `${owned}/xhr_send`, '["x"]')).status).toBe(204);
    expect(await (await post(b!, `${owned}/xhr`)).body()).toBe('a["x"]\n');
  });

  it('releases the claims of a server that closes, so its sessions are not relayed to it any more', async () => {
    const bus = localBus();
    const [a, b] = await three(() => bus);
    const id = randomUUID();
    expect(await (await post(a!, `/echo/000/${id}/xhr`)).body()).toBe('o\n');
    expect(await bus.owner(`/echo/${id}`)).not.toBeNull();
    a!.sockjs.close();
    expect(await bus.owner(`/echo/${id}`)).toBeNull();
    // The id is free: a poll elsewhere opens a new session, as after a local session's end.
    expect(await (await post(b!, `/echo/000/${id}/xhr`)).body()).toBe('o\n');
  });

  it('gives the responses a closing server relays the close frame its own get, and their owner closes the session with it', async () => {
    const bus = localBus();
    const [a, b] = await three(() => bus);
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
    const connection = a!.connections[0]!;
    const closed = new Promise<{ code: number; reason: string }>((resolve) => connection.closed$.subscribe(resolve));
    const stream = await post(b!, `${session}/xhr_streaming`);
    await stream.nextChunk();
    b!.sockjs.close();
    expect(await stream.nextChunk()).toBe('c[1001,"Server shutting down"]\n');
    expect(await closed).toEqual({ code: 1001, reason: 'Server shutting down' });
  });
});

(redisTools.run ? describe : describe.skip)('relay: true over Redis, when Redis hangs or loses claims', () => {
  it('answers a relayed send 503 when Redis does not answer in 2 s, and relays again once it does', async () => {
    const server = await startRedisServer(redisTools.paths!['redis-server']);
    try {
      const [a, b] = await three(redisBuses(server.url));
      const session = `/echo/000/${randomUUID()}`;
      expect(await (await post(a!, `${session}/xhr`)).body()).toBe('o\n');
      const seen: string[] = [];
      a!.connections[0]!.on('data', (m: string) => seen.push(m));
      process.kill(server.pid, 'SIGSTOP');
      let resumed = false;
      try {
        const started = Date.now();
        const sent = RawResponse.start(b!.port, { method: 'POST', path: `${session}/xhr_send`, body: '["while hung"]' });
        expect((await sent.head(5000)).status).toBe(503);
        expect(Date.now() - started).toBeLessThan(4000);
        // The lookup of the owner timed out: the send was never relayed, and never reaches it.
        process.kill(server.pid, 'SIGCONT');
        resumed = true;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(seen).toEqual([]);
        expect(await retrying(async () => (await post(b!, `${session}/xhr_send`, '["after"]')).status, 204)).toBe(204);
        await eventually(() => seen.length > 0, 3000, 'the message sent after');
        expect(seen).toEqual(['after']);
      } finally {
        if (!resumed) process.kill(server.pid, 'SIGCONT');
      }
    } finally {
      for (const s of servers.splice(0)) await s.close();
      await Promise.all(buses.splice(0).map((bus) => bus.close()));
      await server.stop();
    }
  }, 30_000);

  it('closes its copy of a session whose claim another process holds now, with 1011', async () => {
    await inspecting(async (inspector) => {
      const [a] = await three(redisBuses(redis!.url, { claim_ttl: 300 }));
      const id = randomUUID();
      expect(await (await post(a!, `/echo/000/${id}/xhr`)).body()).toBe('o\n');
      const closed = new Promise<{ code: number; reason: string }>((resolve) => a!.connections[0]!.closed$.subscribe(resolve));
      // As if Redis had lost the claim and another process had claimed the id meanwhile.
      await inspector.set(`sockjs-rx:session:/echo/${id}`, 'another-process');
      expect(await closed).toEqual({ code: 1011, reason: 'Session unreachable' });
      expect(await (await post(a!, `/echo/000/${id}/xhr`)).body()).toBe('c[1011,"Session unreachable"]\n');
      expect(await inspector.get(`sockjs-rx:session:/echo/${id}`)).toBe('another-process');
    });
  });
});
