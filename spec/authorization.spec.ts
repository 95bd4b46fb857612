import { randomUUID } from 'crypto';
import { createServer as createHttpServer, type IncomingMessage } from 'http';
import { Socket } from 'net';
import { TestScheduler } from 'rxjs/testing';
import WebSocket from 'ws';
import { authorizing, credentialOf, refuse, sameCredential, type Verdict } from '../lib/authorization';
import { RawResponse } from './helpers/raw-http';
import { echo, eventually, listen, type Running } from './helpers/server';
import { connectWs } from './helpers/ws-client';
import { type Authorize, type Connection, createServer, type Server, type ServerOptions } from '../lib';

/** A request as `authorize` and `credentialOf` read it. */
function fakeRequest(url: string, headers: Record<string, string> = {}): IncomingMessage {
  const socket = new Socket();
  return { url, method: 'GET', headers, socket } as unknown as IncomingMessage;
}

describe('credentialOf', () => {
  it('is the same for the requests sockjs-client makes with one query, whatever it adds itself', () => {
    const opened = credentialOf(fakeRequest('/echo/0/s/xhr_streaming?token=abc&t=1700000000000'));
    expect(credentialOf(fakeRequest('/echo/0/s/xhr_send?token=abc&t=1700000000001'))).toBe(opened);
    expect(credentialOf(fakeRequest('/echo/0/s/jsonp?token=abc&c=_jp.a1b2'))).toBe(opened);
    expect(credentialOf(fakeRequest('/echo/0/s/jsonp_send?token=abc&i=a1'))).toBe(opened);
    expect(credentialOf(fakeRequest('/echo/0/s/htmlfile?token=abc&c=_jp.x'))).toBe(opened);
  });

  it('differs with another token, with no token and with another Authorization header', () => {
    const opened = credentialOf(fakeRequest('/echo/0/s/xhr?token=abc', { authorization: 'Bearer 1' }));
    expect(credentialOf(fakeRequest('/echo/0/s/xhr?token=abd', { authorization: 'Bearer 1' }))).not.toBe(opened);
    expect(credentialOf(fakeRequest('/echo/0/s/xhr', { authorization: 'Bearer 1' }))).not.toBe(opened);
    expect(credentialOf(fakeRequest('/echo/0/s/xhr?token=abc', { authorization: 'Bearer 2' }))).not.toBe(opened);
    expect(credentialOf(fakeRequest('/echo/0/s/xhr?token=abc'))).not.toBe(opened);
  });

  it('is a digest: the token itself is not in it', () => {
    expect(credentialOf(fakeRequest('/x?token=secret-value'))).not.toContain('secret');
  });

  it('compares digests whole', () => {
    const a = credentialOf(fakeRequest('/x?token=1'));
    expect(sameCredential(a, a)).toBe(true);
    expect(sameCredential(a, credentialOf(fakeRequest('/x?token=2')))).toBe(false);
    expect(sameCredential(a, a.slice(1))).toBe(false);
  });
});

describe('refuse', () => {
  it('refuses with 403 and a default reason', () => {
    expect(refuse()).toMatchObject({ status: 403, reason: 'Not authorized.', headers: {} });
  });

  it('gives a 401 a WWW-Authenticate header unless the application names one', () => {
    expect(refuse(401, 'Token expired.')).toMatchObject({ status: 401, reason: 'Token expired.', headers: { 'WWW-Authenticate': 'Bearer' } });
    expect(refuse(401, undefined, { 'www-authenticate': 'Basic' }).headers).toEqual({ 'www-authenticate': 'Basic' });
  });

  it('throws for a status other than 401 and 403', () => {
    expect(() => refuse(500 as 403)).toThrow(RangeError);
  });
});

describe('authorizing', () => {
  const context = (authorize: Authorize, scheduler: TestScheduler, log: (s: string, m: string) => void = () => undefined) => ({
    authorize,
    timeout: 100,
    scheduler,
    prefix: '/echo',
    log,
  });

  const cases: Array<[string, () => unknown, string]> = [
    ['a value', () => ({ user: 'ann' }), 'granted'],
    ['true', () => true, 'granted'],
    ['0, a value like any other', () => 0, 'granted'],
    ['false', () => false, '403'],
    ['null', () => null, '403'],
    ['undefined', () => undefined, '403'],
    ['refuse(401)', () => refuse(401), '401'],
  ];
  it.each(cases)('turns %s into a verdict at once', (_name, result, expected) => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
    let verdict: Verdict | undefined;
    authorizing(fakeRequest('/echo/0/s/xhr?token=1'), 'xhr-polling', context(result as Authorize, scheduler)).subscribe((v) => (verdict = v));
    expect(verdict).toBeDefined();
    const got = 'granted' in verdict! ? 'granted' : String(verdict!.refused.status);
    expect(got).toBe(expected);
    if ('granted' in verdict!) {
      expect(verdict.granted.value).toEqual(result());
      expect(verdict.granted.credential).toBe(credentialOf(fakeRequest('/echo/0/s/xhr?token=1')));
    }
  });

  it('shows the application the request, its query, address, origin, transport and prefix', () => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
    const seen: unknown[] = [];
    const req = fakeRequest('/echo/0/s/websocket?token=abc', { origin: 'https://app.example' });
    authorizing(req, 'websocket', context((r) => void seen.push(r), scheduler)).subscribe();
    expect(seen).toEqual([
      expect.objectContaining({ req, headers: req.headers, origin: 'https://app.example', transport: 'websocket', prefix: '/echo', remoteAddress: '' }),
    ]);
    expect((seen[0] as { query: URLSearchParams }).query.get('token')).toBe('abc');
  });

  it('answers 500 for an authorize that throws, and logs it', () => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
    const lines: string[] = [];
    let verdict: Verdict | undefined;
    const throwing = () => {
      throw new Error('database down');
    };
    authorizing(fakeRequest('/x'), 'websocket', context(throwing, scheduler, (s, m) => lines.push(`${s} ${m}`))).subscribe((v) => (verdict = v));
    expect(verdict).toEqual({ refused: expect.objectContaining({ status: 500 }), why: 'failed' });
    expect(lines).toEqual([expect.stringMatching(/^error GET \/x: authorize failed: Error: database down/)]);
  });

  it('waits for a Promise, and answers 503 with Retry-After once the timeout passes', () => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
    scheduler.run(({ cold, expectObservable }) => {
      const slow = () => cold('200ms a', { a: { user: 'late' } }).toPromise() as never;
      // A Promise settles on a microtask, which the virtual clock does not run: the verdict is the timeout's.
      const verdict$ = authorizing(fakeRequest('/x'), 'websocket', context(slow, scheduler));
      expectObservable(verdict$).toBe('100ms (v|)', {
        v: { refused: expect.objectContaining({ status: 503, headers: expect.objectContaining({ 'Retry-After': '1' }) }), why: 'failed' },
      });
    });
  });
});

describe('authorize on a server', () => {
  let running: Running | undefined;
  let sockjs: Server<{ user: string }>;
  let connections: Array<Connection<{ user: string }>> = [];
  let asked: string[] = [];

  async function start(options: ServerOptions<{ user: string }> = {}): Promise<Running> {
    const http = createHttpServer();
    asked = [];
    sockjs = createServer<{ user: string }>({
      prefix: '/echo',
      log: () => undefined,
      authorize: ({ query, transport }) => {
        asked.push(transport);
        const token = query.get('token');
        if (token === 'expired') return refuse(401, 'Token expired.');
        return token?.startsWith('ok-') ? { user: token.slice(3) } : false;
      },
      ...options,
    });
    connections = [];
    sockjs.on('connection', (connection) => {
      connections.push(connection);
      echo(connection);
    });
    sockjs.attach(http);
    running = await listen(http);
    return running;
  }

  afterEach(async () => {
    sockjs?.close();
    await running?.close();
    running = undefined;
  });

  const post = (path: string, body = '', headers: Record<string, string> = {}) => RawResponse.open(running!.port, { method: 'POST', path, headers, body });
  const get = (path: string, headers: Record<string, string> = {}) => RawResponse.open(running!.port, { method: 'GET', path, headers });
  const wsUrl = (path: string) => `${running!.url.replace('http', 'ws')}${path}`;

  /** The status and body a websocket handshake is refused with. */
  function refusedHandshake(url: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('open', () => reject(new Error('the handshake was accepted')));
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      });
    });
  }

  it('opens a websocket it allows, with what it returned on the Connection', async () => {
    await start();
    const client = await connectWs(wsUrl(`/echo/0/${randomUUID()}/websocket?token=ok-ann`));
    expect(await client.next()).toBe('o');
    await eventually(() => connections.length === 1);
    expect(connections[0]!.auth).toEqual({ user: 'ann' });
    client.ws.send('["hi"]');
    expect(await client.next()).toBe('a["hi"]');
    expect(asked).toEqual(['websocket']);
    client.ws.close();
  });

  it('refuses a websocket handshake with 403, opening no session and emitting no connection', async () => {
    await start();
    const refused = await refusedHandshake(wsUrl(`/echo/0/${randomUUID()}/websocket?token=bad`));
    expect(refused).toMatchObject({ status: 403, body: 'Not authorized.' });
    const raw = await refusedHandshake(wsUrl('/echo/websocket'));
    expect(raw.status).toBe(403);
    expect(connections).toEqual([]);
    expect(sockjs.sessionCount).toBe(0);
    expect(sockjs.metrics().prefixes['/echo']!.refused.authorization).toBe(2);
  });

  it('refuses with the status, reason and headers of refuse()', async () => {
    await start();
    const refused = await refusedHandshake(wsUrl(`/echo/0/${randomUUID()}/websocket?token=expired`));
    expect(refused).toMatchObject({ status: 401, body: 'Token expired.', headers: expect.objectContaining({ 'www-authenticate': 'Bearer' }) });
    const poll = await post(`/echo/0/${randomUUID()}/xhr?token=expired`);
    expect(poll.status).toBe(401);
    expect(await poll.body()).toBe('Token expired.');
  });

  it('refuses an HTTP session with 403 and CORS headers, so that a page can read why', async () => {
    await start();
    const poll = await post(`/echo/0/${randomUUID()}/xhr_streaming`, '', { Origin: 'https://app.example' });
    expect(poll.status).toBe(403);
    expect(poll.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(await poll.body()).toBe('Not authorized.');
    expect(sockjs.sessionCount).toBe(0);
    expect(connections).toEqual([]);
  });

  it('asks once per session: its later requests are checked against the credentials it opened with', async () => {
    await start();
    const s = `/echo/0/${randomUUID()}`;
    expect(await (await post(`${s}/xhr?token=ok-bob&t=1`)).body()).toBe('o\n');
    expect((await post(`${s}/xhr_send?token=ok-bob&t=2`, '["one"]')).status).toBe(204);
    expect(await (await post(`${s}/xhr?token=ok-bob&t=3`)).body()).toBe('a["one"]\n');
    expect(asked).toEqual(['xhr-polling']);
    expect(connections.map((c) => c.auth)).toEqual([{ user: 'bob' }]);
  });

  it('refuses a request that knows the session id but not its credentials, and leaves the session be', async () => {
    await start();
    const s = `/echo/0/${randomUUID()}`;
    expect(await (await post(`${s}/xhr?token=ok-bob`)).body()).toBe('o\n');
    for (const thief of ['', '?token=ok-eve', '?token=ok-bob&extra=1']) {
      const send = await post(`${s}/xhr_send${thief}`, '["stolen"]');
      expect([thief, send.status]).toEqual([thief, 403]);
      const poll = await post(`${s}/xhr${thief}`);
      expect([thief, poll.status]).toEqual([thief, 403]);
      const stream = await get(`${s}/eventsource${thief}`);
      expect([thief, stream.status]).toEqual([thief, 403]);
    }
    // Only the first request asked; the session is still there, with nothing the thieves sent.
    expect(asked).toEqual(['xhr-polling']);
    expect((await post(`${s}/xhr_send?token=ok-bob`, '["mine"]')).status).toBe(204);
    expect(await (await post(`${s}/xhr?token=ok-bob`)).body()).toBe('a["mine"]\n');
  });

  it('refuses the second of two requests that race to open one session with other credentials', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await start({
      authorize: async ({ query }) => {
        await gate;
        return { user: query.get('token') ?? '' };
      },
    });
    const s = `/echo/0/${randomUUID()}`;
    const first = post(`${s}/xhr?token=a`);
    const second = post(`${s}/xhr?token=b`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    const statuses = await Promise.all([first, second].map(async (r) => (await r).status));
    expect(statuses.sort()).toEqual([200, 403]);
    expect(connections).toHaveLength(1);
  });

  it('refuses a pipelined request whose session opened with other credentials while it waited for its turn', async () => {
    await start();
    const y = `/echo/0/${randomUUID()}`;
    const x = `/echo/0/${randomUUID()}`;
    expect(await (await post(`${y}/xhr?token=ok-ann`)).body()).toBe('o\n');
    // A poll of y that waits for a message, and behind it on the same connection a poll that would open x.
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
    let answers = '';
    socket.on('data', (chunk: Buffer) => (answers += chunk.toString('latin1')));
    const poll = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
    socket.write(poll(`${y}/xhr?token=ok-ann`) + poll(`${x}/xhr?token=ok-eve`));
    await eventually(() => asked.length === 2, 2000, 'the pipelined request to be asked about');
    // x opens meanwhile, for someone else.
    expect(await (await post(`${x}/xhr?token=ok-bob`)).body()).toBe('o\n');
    expect((await post(`${y}/xhr_send?token=ok-ann`, '["go"]')).status).toBe(204);
    await eventually(() => answers.includes('403 Forbidden'), 2000, 'the pipelined answer');
    expect(answers).toContain('a["go"]');
    expect(connections.map((c) => c.auth)).toEqual([{ user: 'ann' }, { user: 'bob' }]);
    socket.destroy();
  });

  it('refuses a send whose body was still arriving when the session opened for someone else', async () => {
    await start();
    const s = `/echo/0/${randomUUID()}`;
    const body = '["forged"]';
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.write(`POST ${s}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 3)}`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await (await post(`${s}/xhr?token=ok-ann`)).body()).toBe('o\n');
    const received: string[] = [];
    connections[0]!.on('data', (message: string) => received.push(message));
    socket.write(body.slice(3));
    await eventually(() => answer.includes('\r\n\r\n'), 2000, 'the answer');
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(received).toEqual([]);
    socket.destroy();
  });

  it('answers the requests authorize was deciding about when the server closes, and opens nothing', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await start({
      authorize: async () => {
        await gate;
        return { user: 'late' };
      },
    });
    const poll = RawResponse.start(running!.port, { method: 'POST', path: `/echo/0/${randomUUID()}/xhr_streaming`, headers: {}, body: '' });
    const handshake = refusedHandshake(wsUrl(`/echo/0/${randomUUID()}/websocket`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    sockjs.close();
    await poll.head();
    expect(poll.status).toBe(503);
    expect(await poll.body()).toBe('Server shutting down.');
    expect((await handshake).status).toBe(503);
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(connections).toEqual([]);
  });

  it('answers 500 for a refusal whose headers cannot be written, and writes none of them', async () => {
    await start({ authorize: ({ query }) => refuse(401, 'Token expired.', { 'WWW-Authenticate': `Bearer realm="${query.get('realm') ?? ''}"` }) });
    const injected = encodeURIComponent('a"\r\nSet-Cookie: session=attacker\r\n');
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    const key = Buffer.from(randomUUID().slice(0, 16)).toString('base64');
    socket.write(`GET /echo/0/${randomUUID()}/websocket?realm=${injected} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await eventually(() => answer.includes('Internal Server Error'), 2000, 'the answer');
    expect(answer).toMatch(/^HTTP\/1\.1 500 /);
    expect(answer).not.toContain('Set-Cookie');
    expect((await post(`/echo/0/${randomUUID()}/xhr?realm=${injected}`)).status).toBe(500);
    socket.destroy();
  });

  it('takes a refusal made by another copy of the package for a refusal', async () => {
    const foreign = Object.assign(Object.create(null), { status: 403, reason: 'Elsewhere.', headers: {}, [Symbol.for('sockjs-rx.refusal')]: true });
    await start({ authorize: () => foreign });
    const poll = await post(`/echo/0/${randomUUID()}/xhr`);
    expect(poll.status).toBe(403);
    expect(await poll.body()).toBe('Elsewhere.');
    expect(connections).toEqual([]);
  });

  it('does not let a pipelined poll open again, unasked, a session that ended while it waited', async () => {
    await start({ disconnect_delay: 100 });
    const held = `/echo/0/${randomUUID()}`;
    const s = `/echo/0/${randomUUID()}`;
    expect(await (await post(`${held}/xhr?token=ok-ann`)).body()).toBe('o\n');
    expect(await (await post(`${s}/xhr?token=ok-ann`)).body()).toBe('o\n');
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
    let answers = '';
    socket.on('data', (chunk: Buffer) => (answers += chunk.toString('latin1')));
    const poll = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;
    // The poll of s waits behind one of `held`, checked against s while s lives; s then times out.
    socket.write(poll(`${held}/xhr?token=ok-ann`) + poll(`${s}/xhr?token=ok-ann`));
    await eventually(() => connections[1]!.readyState === 3, 2000, 's to time out');
    connections[0]!.write('wake');
    await eventually(() => answers.includes('Not authorized.'), 2000, 'the pipelined answer');
    expect(answers).toMatch(/HTTP\/1\.1 403 /);
    expect(connections).toHaveLength(2);
    expect(asked).toEqual(['xhr-polling', 'xhr-polling']);
    socket.destroy();
  });

  it('does not ask about /info, the iframe page or the greeting', async () => {
    await start();
    expect((await get('/echo/info')).status).toBe(200);
    expect((await get('/echo/iframe.html')).status).toBe(200);
    expect((await get('/echo')).status).toBe(200);
    expect(asked).toEqual([]);
  });

  it('answers 500 for an authorize that throws or rejects, and goes on serving', async () => {
    const lines: string[] = [];
    await start({
      log: (severity, line) => lines.push(`${severity} ${line}`),
      authorize: ({ query }) => {
        if (query.get('token') === 'throw') throw new Error('broken');
        if (query.get('token') === 'reject') return Promise.reject(new Error('rejected'));
        return { user: 'ok' };
      },
    });
    expect((await post(`/echo/0/${randomUUID()}/xhr?token=throw`)).status).toBe(500);
    expect((await post(`/echo/0/${randomUUID()}/xhr?token=reject`)).status).toBe(500);
    expect(await refusedHandshake(wsUrl(`/echo/0/${randomUUID()}/websocket?token=throw`))).toMatchObject({ status: 500 });
    expect(lines.filter((l) => l.startsWith('error') && l.includes('authorize failed'))).toHaveLength(3);
    expect(await (await post(`/echo/0/${randomUUID()}/xhr?token=fine`)).body()).toBe('o\n');
  });

  it('answers 503 with Retry-After for an authorize that never settles, past authorize_timeout', async () => {
    await start({ authorize_timeout: 150, authorize: () => new Promise(() => undefined) });
    const started = Date.now();
    const poll = await post(`/echo/0/${randomUUID()}/xhr`);
    expect(poll.status).toBe(503);
    expect(poll.headers['retry-after']).toBe('1');
    expect(await poll.body()).toBe('Authorization timed out.');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect((await refusedHandshake(wsUrl(`/echo/0/${randomUUID()}/websocket`))).status).toBe(503);
    expect(sockjs.sessionCount).toBe(0);
  });

  it('opens nothing for a client that went away while authorize was deciding', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let asked = 0;
    await start({
      authorize: async () => {
        asked++;
        await gate;
        return { user: 'late' };
      },
    });
    const socket = new Socket();
    await new Promise<void>((resolve) => socket.connect(running!.port, '127.0.0.1', resolve));
    const key = Buffer.from(randomUUID()).toString('base64');
    socket.write(`GET /echo/0/${randomUUID()}/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    const poll = RawResponse.start(running!.port, { method: 'POST', path: `/echo/0/${randomUUID()}/xhr`, headers: {}, body: '' });
    await eventually(() => asked === 2, 2000, 'both requests to be asked about');
    socket.destroy();
    poll.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connections).toEqual([]);
    expect(sockjs.sessionCount).toBe(0);
  });
});
