/**
 * `relay: true` within one process: three servers, each on an HTTP server of its own, on one
 * `localBus()`, and a client that sends each request of a session to whichever server it likes.
 * The Redis bus and real processes are tested in redis-relay.spec.ts and deploy/.
 */
import { randomUUID } from 'crypto';
import { RawResponse } from './helpers/raw-http';
import { echoServer, type EchoServer, eventually } from './helpers/server';
import { type Connection, localBus } from '../lib';
import type { RelayBus } from '../lib/relay';

const servers: EchoServer[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** Three echo servers relaying over `bus`. */
async function three(bus: RelayBus = localBus(), options: Record<string, unknown> = {}): Promise<EchoServer[]> {
  const started = await Promise.all([0, 1, 2].map(() => echoServer({ bus, relay: true, ...options })));
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

describe('relay: true', () => {
  it('refuses a bus that cannot relay, and relay without a bus', async () => {
    const { createServer } = await import('../lib');
    const broadcastOnly = { publish: () => undefined, messages: () => localBus().messages('x') };
    expect(() => createServer({ relay: true })).toThrow('Invalid option "relay"');
    expect(() => createServer({ relay: true, bus: broadcastOnly })).toThrow('Invalid option "relay"');
    expect(() => createServer({ relay: true, bus: localBus() })).not.toThrow();
  });

  it('serves an xhr-polling session from every server: 50 messages echoed in order, polls and sends spread over all three', async () => {
    const [a, b, c] = await three();
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
    const [a, b, c] = await three(localBus(), { heartbeat_delay: 150 });
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
    const [a, b] = await three();
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
    const [a, b] = await three();
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
    const [a, b, c] = await three();
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
    const [, b] = await three();
    const sent = await post(b!, `/echo/000/${randomUUID()}/xhr_send`, '["x"]');
    expect(sent.status).toBe(404);
  });

  it('opens a new session where its first request lands, and a closed one answers its close frame from everywhere', async () => {
    const [a, b, c] = await three();
    const session = `/close/000/${randomUUID()}`;
    // /close closes every session at once with 3000 "Go away!".
    expect(await (await post(b!, `${session}/xhr`)).body()).toBe('o\n');
    expect(b!.connections).toHaveLength(1);
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('c[3000,"Go away!"]\n');
    expect(await (await post(a!, `${session}/xhr`)).body()).toBe('c[3000,"Go away!"]\n');
    expect(a!.connections).toHaveLength(0);
  });

  it('delivers messages sent through different servers to the application in the order they were sent', async () => {
    const [a, b, c] = await three();
    const session = `/echo/000/${randomUUID()}`;
    expect(await (await post(c!, `${session}/xhr`)).body()).toBe('o\n');
    const connection: Connection = c!.connections[0]!;
    const seen: string[] = [];
    connection.on('data', (m: string) => seen.push(m));
    const ring = [a!, b!, c!];
    for (let i = 0; i < 30; i++) expect((await post(ring[i % 3]!, `${session}/xhr_send`, JSON.stringify([`s${i}`, `t${i}`]))).status).toBe(204);
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => [`s${i}`, `t${i}`]).flat());
  });

  describe('when the bus fails', () => {
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
      });
    }

    it('answers relayed sends 503 and relayed receivers with a close frame at once, while local sessions go on', async () => {
      const bus = flaky();
      const [a, b, c] = await three(bus);
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
});
