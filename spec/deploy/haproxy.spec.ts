/**
 * The scaling recipe for real: Debian's HAProxy in front of 3 worker processes of
 * examples/haproxy (started by its launcher), broadcast between them over a redis-server of the
 * test's own, and the real sockjs-client in Node over every transport it offers there.
 *
 * The workers run the built package (dist/): `npm test` builds it first.
 *
 * haproxy and redis-server are Debian's, installed by `.ci/run` for CI; without them the suite is
 * skipped with one line, unless CI=true, where it fails.
 */
import { execFileSync } from 'child_process';
import { randomUUID } from 'crypto';
import { existsSync, readFileSync } from 'fs';
import { request } from 'http';
import { join } from 'path';
import { type Browser, chromium } from 'playwright-core';
import { createClient } from 'redis';
import { findCommands, isAlive, type RedisServer, startRedisServer, suiteNeeding, waitUntil } from '../helpers/debian-tools';
import {
  type Affinity,
  BROWSER_TRANSPORTS,
  CHROMIUM,
  CHROMIUM_ARGS,
  CLIENTS_PER_TRANSPORT,
  type Deployment,
  expectLauncherStopsEverything,
  expectOneWorker,
  expectRelayedPageSession,
  expectSessionsOnOneWorkerEach,
  expectStreamNotHeldBack,
  getText,
  launcher,
  pageSession,
  parseWhoami,
  ROOT,
  servedBy,
  TEST_MS,
} from './deployment';
import { closeAll, NODE_TRANSPORTS, NodeClient, type NodeTransport } from './sockjs-node';

interface ConfigModule {
  exampleConfig(affinity: Affinity): string;
}

const EXAMPLE = join(ROOT, 'examples', 'haproxy');
const configs: ConfigModule = require('../../examples/haproxy/config');

const tools = suiteNeeding('haproxy suite', findCommands({ haproxy: 'haproxy', 'redis-server': 'redis-server' }));

/** How long to keep listening after the expected messages, for a duplicate to show up. */
const SETTLE_MS = 300;

(tools.run ? describe : describe.skip)('HAProxy in front of 3 sockjs-rx workers, with Redis between them', () => {
  let redis: RedisServer;
  let inspector: ReturnType<typeof createClient>;
  const clients: NodeClient[] = [];
  /** stderr of HAProxy, redis-server and the workers, kept for the failure messages. */
  const output: string[] = [];

  beforeAll(async () => {
    if (!tools.paths) throw new Error(`CI=true and no haproxy or redis-server: ${tools.reason}`);
    if (!existsSync(join(ROOT, 'dist', 'redis.js'))) throw new Error('dist/redis.js is missing: run `npm run build` (npm test does)');
    redis = await startRedisServer(tools.paths['redis-server']);
    inspector = createClient({ url: redis.url });
    inspector.on('error', (error: Error) => output.push(`inspector: ${error.message}`));
    await inspector.connect();
  }, 600_000);

  afterAll(async () => {
    if (inspector?.isOpen) await inspector.close();
    await redis?.stop();
  });

  afterEach(async () => {
    await closeAll(clients.splice(0));
  });

  const deploy = async (affinity: Affinity): Promise<Deployment> =>
    launcher.start({
      workers: 3,
      port: 0,
      workerPort: 0,
      affinity,
      redis: redis.url,
      haproxyCommand: tools.paths!.haproxy,
      onOutput: (name, line) => output.push(`${name}: ${line}`),
    });

  const connect = (url: string, transport: NodeTransport): NodeClient => {
    const client = new NodeClient(url, transport);
    clients.push(client);
    return client;
  };

  /** Opens a /whoami client and learns its worker. */
  const whoami = async (deployment: Deployment, transport: NodeTransport): Promise<{ client: NodeClient; worker: string }> => {
    const client = connect(`${deployment.url}/whoami`, transport);
    await client.opened();
    const { worker, message } = parseWhoami(await client.ask('hello'));
    expect(message).toBe('hello');
    return { client, worker };
  };

  /**
   * Clients of /broadcast over every transport, until each worker has some, each send 10
   * messages: every client gets every message exactly once, in order per sender.
   */
  const expectBroadcastExactlyOnce = async (deployment: Deployment): Promise<void> => {
    // Clients over every transport, until each worker has some.
    const members: Array<{ client: NodeClient; worker: string }> = [];
    for (let i = 0; members.length < 48 && (i < 16 || new Set(members.map((m) => m.worker)).size < 3); i++) {
      const client = connect(`${deployment.url}/broadcast`, NODE_TRANSPORTS[i % NODE_TRANSPORTS.length]!);
      await client.opened();
      const [greeting] = await client.receive(1);
      expect(greeting).toMatch(/^worker w\d$/);
      members.push({ client, worker: greeting!.slice('worker '.length) });
    }
    expect(new Set(members.map((m) => m.worker))).toEqual(new Set(['w1', 'w2', 'w3']));
    // A worker subscribes to the broadcast channel when its first connection comes; wait for
    // all three, or a broadcast may go out before a worker listens.
    await waitUntil(
      async () => Number((await inspector.pubSubNumSub('sockjs-rx:broadcast:*'))['sockjs-rx:broadcast:*'] ?? 0) === 3,
      'the three workers to subscribe to the broadcast channel',
    );
    const PER_SENDER = 10;
    for (let k = 0; k < PER_SENDER; k++) members.forEach((m, s) => m.client.sock.send(`s${s} ${k}`));
    const total = members.length * PER_SENDER;
    // The greeting comes first, then the broadcasts.
    await Promise.all(members.map((m) => m.client.receive(1 + total, 30_000)));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    for (const { client, worker } of members) {
      const broadcasts = client.received.slice(1);
      expect({ worker, transport: client.transport, count: broadcasts.length }).toEqual({ worker, transport: client.transport, count: total });
      members.forEach((_, s) => {
        const fromSender = broadcasts.filter((b) => b.startsWith(`s${s} `));
        expect(fromSender).toEqual(Array.from({ length: PER_SENDER }, (_, k) => `s${s} ${k}`));
      });
    }
  };

  describe('the configuration', () => {
    it('is what config.js writes, in the checked-in haproxy.cfg, haproxy-cookie.cfg and haproxy-none.cfg, and HAProxy accepts each', () => {
      for (const [file, affinity] of [['haproxy.cfg', 'url'], ['haproxy-cookie.cfg', 'cookie'], ['haproxy-none.cfg', 'none']] as const) {
        const path = join(EXAMPLE, file);
        expect(readFileSync(path, 'utf8')).toBe(configs.exampleConfig(affinity));
        expect(() => execFileSync(tools.paths!.haproxy, ['-c', '-q', '-f', path], { stdio: 'pipe' })).not.toThrow();
      }
    });
  });

  describe('with affinity by URL', () => {
    let deployment: Deployment;

    beforeAll(async () => {
      deployment = await deploy('url');
    }, 60_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    it.each(NODE_TRANSPORTS)(
      'keeps every %s session on one worker for its whole life, and spreads the sessions over the workers',
      async (transport) => {
        const opened = Array.from({ length: CLIENTS_PER_TRANSPORT }, () => connect(`${deployment.url}/whoami`, transport));
        await Promise.all(opened.map((c) => c.opened()));
        for (const client of opened) expect(client.openedWith).toBe(transport);
        await expectSessionsOnOneWorkerEach(opened);
      },
      TEST_MS,
    );

    it.each(['xhr-streaming', 'eventsource'] as const)(
      'passes each message of a %s response on as it comes (option http-no-delay), not held back by HAProxy',
      async (transport) => {
        const { client } = await whoami(deployment, transport);
        await expectStreamNotHeldBack(client);
      },
      TEST_MS,
    );

    it(
      'delivers every broadcast to the clients of every worker exactly once, in order per sender',
      async () => {
        await expectBroadcastExactlyOnce(deployment);
      },
      TEST_MS,
    );
  });

  describe('when a worker dies', () => {
    let deployment: Deployment;

    beforeAll(async () => {
      deployment = await deploy('url');
    }, 60_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    it(
      'closes the sessions of that worker only: its clients see the close, the others go on echoing on their own worker',
      async () => {
        const victim = deployment.workers[0]!;
        // For each transport, clients until one is on the victim and one on another worker.
        const onVictim: NodeClient[] = [];
        const survivors: Array<{ client: NodeClient; worker: string }> = [];
        for (const transport of NODE_TRANSPORTS) {
          let here = 0;
          let elsewhere = 0;
          for (let i = 0; i < 30 && (here === 0 || elsewhere === 0); i++) {
            const { client, worker } = await whoami(deployment, transport);
            if (worker === victim.id) {
              onVictim.push(client);
              here++;
            } else {
              survivors.push({ client, worker });
              elsewhere++;
            }
          }
          expect({ transport, here: here > 0, elsewhere: elsewhere > 0 }).toEqual({ transport, here: true, elsewhere: true });
        }

        victim.process.kill('SIGKILL');
        // Websocket, xhr-polling and eventsource clients of the dead worker see their session
        // close without doing anything: their connection or pending poll fails.
        const streaming = onVictim.filter((c) => c.transport === 'xhr-streaming');
        const others = onVictim.filter((c) => c.transport !== 'xhr-streaming');
        await waitUntil(() => others.every((c) => c.isClosed), `the ${others.length} clients of ${victim.id} to see the close`, 20_000);
        // sockjs-client 1.6.1's Node HTTP driver waits for 'end' on its response, which a cut
        // response never emits, so an xhr-streaming client in Node that only listens never learns
        // that its stream is gone (a browser's XHR reports it). The first message it sends finds
        // the session gone and closes it.
        for (const client of streaming) client.sock.send('anyone there?');
        await waitUntil(() => streaming.every((c) => c.isClosed), `the xhr-streaming clients of ${victim.id} to see the close once they send`, 20_000);
        for (const client of onVictim) {
          expect({ transport: client.transport, normalClosure: client.closeEvent!.code === 1000 }).toEqual({ transport: client.transport, normalClosure: false });
        }

        // HAProxy takes the dead worker out after its failed health checks; with consistent
        // hashing that moves none of the other sessions.
        await waitUntil(() => output.some((line) => line.includes(`workers/${victim.id} is DOWN`)), `HAProxy to mark ${victim.id} down`, 20_000);
        for (let round = 0; round < 3; round++) {
          await Promise.all(
            survivors.map(async ({ client, worker }) => {
              const answer = parseWhoami(await client.ask(`after ${round}`));
              expect({ transport: client.transport, worker: answer.worker, message: answer.message }).toEqual({
                transport: client.transport,
                worker,
                message: `after ${round}`,
              });
            }),
          );
        }
        for (const { client } of survivors) expect(client.isClosed).toBe(false);
        expect(isAlive(victim.pid)).toBe(false);
      },
      TEST_MS,
    );
  });

  describe('with no affinity: round robin, every session relayed over Redis', () => {
    let deployment: Deployment;

    beforeAll(async () => {
      deployment = await deploy('none');
    }, 60_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    const served = () => servedBy(deployment);

    it.each(NODE_TRANSPORTS)(
      'serves %s sessions from every worker: 50 messages echoed in order by the owner, then a clean close',
      async (transport) => {
        const before = await served();
        const opened = Array.from({ length: 3 }, () => connect(`${deployment.url}/whoami`, transport));
        await Promise.all(opened.map((c) => c.opened()));
        await Promise.all(
          opened.map(async (client) => {
            const answers: Array<{ worker: string; message: string }> = [];
            for (let i = 0; i < 50; i++) answers.push(parseWhoami(await client.ask(`m${i}`)));
            expect(answers.map((a) => a.message)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
            // Every answer comes from the session's one owner, whichever worker took the request.
            expect(new Set(answers.map((a) => a.worker)).size).toBe(1);
          }),
        );
        const after = await served();
        // Over HTTP each message is a send and a poll (or a frame on a stream): round robin
        // spreads them over all three workers. A websocket is one connection to one worker.
        if (transport !== 'websocket') for (const [i, n] of after.entries()) expect(n - before[i]!).toBeGreaterThan(10);
        for (const client of opened) client.sock.close();
        for (const client of opened) expect((await client.closed()).code).toBe(1000);
      },
      TEST_MS,
    );

    it(
      'delivers every broadcast to the clients of every worker exactly once, in order per sender',
      async () => {
        await expectBroadcastExactlyOnce(deployment);
      },
      TEST_MS,
    );

    it(
      'closes the sessions of a worker that dies; websocket sessions of the others go on, and HTTP ones whose requests were elsewhere',
      async () => {
        const victim = deployment.workers[2]!;
        const onVictim: NodeClient[] = [];
        const survivors: Array<{ client: NodeClient; worker: string }> = [];
        for (const transport of NODE_TRANSPORTS) {
          let here = 0;
          let elsewhere = 0;
          for (let i = 0; i < 30 && (here === 0 || elsewhere < 3); i++) {
            // Each client makes the same requests in the same order, so that round robin would
            // open them all on the same workers: 0 to 2 more requests through the balancer, at
            // random, move it on (all 30 missing one worker: (2/3)^30, 5 in a million).
            for (let extra = Math.floor(Math.random() * 3); extra > 0; extra--) await getText(deployment.port, '/health');
            const { client, worker } = await whoami(deployment, transport);
            if (worker === victim.id) {
              if (here++ === 0) onVictim.push(client);
            } else if (elsewhere++ < 3) {
              survivors.push({ client, worker });
            }
          }
          expect({ transport, here: here > 0, elsewhere: elsewhere >= 3 }).toEqual({ transport, here: true, elsewhere: true });
        }
        victim.process.kill('SIGKILL');
        // Requests relayed to the dead owner are answered by the worker that took them: a
        // waiting poll or stream gets the close frame once the relay finds no one listening.
        for (const client of onVictim) if (client.transport === 'xhr-streaming') client.sock.send('anyone there?');
        await waitUntil(() => onVictim.every((c) => c.isClosed), `the clients of ${victim.id} to see their session close`, 20_000);
        for (const client of onVictim) expect({ transport: client.transport, normal: client.closeEvent!.code === 1000 }).toEqual({ transport: client.transport, normal: false });
        // A session elsewhere whose request was in flight through the dead worker lost that
        // request, and with it the session, as over any proxy; the others go on.
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const open = survivors.filter((s) => !s.client.isClosed);
        for (const { client } of survivors) if (client.transport === 'websocket') expect(client.isClosed).toBe(false);
        expect(open.filter((s) => s.client.transport !== 'websocket').length).toBeGreaterThan(0);
        for (let round = 0; round < 3; round++) {
          await Promise.all(
            open.map(async ({ client, worker }) => {
              const answer = parseWhoami(await client.ask(`after ${round}`, 20_000));
              expect({ transport: client.transport, worker: answer.worker, message: answer.message }).toEqual({ transport: client.transport, worker, message: `after ${round}` });
            }),
          );
        }
        expect(isAlive(victim.pid)).toBe(false);
      },
      TEST_MS,
    );

    it(
      'fails relayed requests at once while Redis is down, and serves new sessions again once it is back',
      async () => {
        const client = connect(`${deployment.url}/echo`, 'xhr-polling');
        await client.opened();
        expect(await client.ask('before')).toBe('before');
        const port = redis.port;
        await redis.stop();
        const stopped = Date.now();
        // Two of every three requests reach a worker that is not the owner: the client hears
        // 503 at once and closes.
        for (let i = 0; i < 6 && !client.isClosed; i++) client.sock.send(`during ${i}`);
        await waitUntil(() => client.isClosed, 'the client to see its relayed requests fail', 10_000);
        expect(Date.now() - stopped).toBeLessThan(5000);
        expect(client.closeEvent!.code).not.toBe(1000);
        redis = await startRedisServer(tools.paths!['redis-server'], port);
        // Each worker reconnects on its own schedule; then every transport works again.
        for (const transport of NODE_TRANSPORTS) {
          await waitUntil(
            async () => {
              const probe = connect(`${deployment.url}/echo`, transport);
              try {
                await probe.opened(5000);
                return (await probe.ask('back', 5000)) === 'back' && (await probe.ask('again', 5000)) === 'again';
              } catch {
                return false;
              }
            },
            `${transport} sessions to work again`,
            30_000,
          );
        }
      },
      TEST_MS,
    );
  });

  describe('with affinity by the JSESSIONID cookie', () => {
    let deployment: Deployment;

    beforeAll(async () => {
      deployment = await deploy('cookie');
    }, 60_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    /** One HTTP request through HAProxy. */
    const send = (method: string, path: string, headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; setCookie: string[]; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: deployment.port, method, path, headers, agent: false, timeout: 10_000 }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [], body: text }));
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
        req.on('error', reject);
        req.end(body);
      });

    it(
      'sends every request of an xhr-polling session to the worker its cookie names',
      async () => {
        const session = `/whoami/000/${randomUUID()}`;
        const open = await send('POST', `${session}/xhr`, {});
        expect(open.body).toBe('o\n');
        // HAProxy put the worker's name before the value the worker set.
        const cookie = open.setCookie.find((c) => c.startsWith('JSESSIONID='));
        expect(cookie).toMatch(/^JSESSIONID=w\d~dummy; path=\//);
        const pair = cookie!.split(';')[0]!;
        const worker = pair.slice('JSESSIONID='.length, pair.indexOf('~'));
        for (let round = 0; round < 10; round++) {
          const sent = await send('POST', `${session}/xhr_send`, { Cookie: pair, 'Content-Type': 'text/plain' }, JSON.stringify([`r${round}`]));
          expect(sent.status).toBe(204);
          const polled = await send('POST', `${session}/xhr`, { Cookie: pair });
          expect(polled.body).toBe(`a${JSON.stringify([`${worker} r${round}`])}\n`);
        }
      },
      TEST_MS,
    );

    it(
      'opens a session on whichever worker the cookie names, and spreads requests without one',
      async () => {
        for (const { id } of deployment.workers) {
          const session = `/whoami/000/${randomUUID()}`;
          const pair = `JSESSIONID=${id}~dummy`;
          expect((await send('POST', `${session}/xhr`, { Cookie: pair })).body).toBe('o\n');
          expect((await send('POST', `${session}/xhr_send`, { Cookie: pair }, '["who"]')).status).toBe(204);
          expect((await send('POST', `${session}/xhr`, { Cookie: pair })).body).toBe(`a${JSON.stringify([`${id} who`])}\n`);
        }
        // Without the cookie nothing pins a request: round robin takes each to the next worker.
        const answers = new Set<string>();
        for (let i = 0; i < 6; i++) answers.add((await send('GET', '/health', {})).body.trim());
        expect(answers).toEqual(new Set(deployment.workers.map((w) => w.id)));
      },
      TEST_MS,
    );
  });

  describe('sockjs-client in Chromium', () => {
    const chromiumFound = existsSync(CHROMIUM);
    const skipped = !chromiumFound && process.env.CI !== 'true';
    if (skipped && tools.run) process.stdout.write(`haproxy suite: the Chromium tests skipped: no browser at ${CHROMIUM} (CI=true makes this a failure)\n`);

    describe.each(['url', 'cookie', 'none'] as const)('with affinity by %s', (affinity) => {
      let deployment: Deployment;
      let browser: Browser;

      beforeAll(async () => {
        if (skipped) return;
        if (!chromiumFound) throw new Error(`CI=true and no browser at ${CHROMIUM}`);
        deployment = await deploy(affinity);
        browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      }, 60_000);

      afterAll(async () => {
        await browser?.close();
        await deployment?.stop();
      });

      (skipped ? it.skip : it).each(BROWSER_TRANSPORTS)(
        affinity === 'none' ? 'serves a session over %s from every worker, 50 messages echoed in order by its owner' : 'keeps a session over %s on one worker for its whole life',
        async (transport) => {
          // A fresh context for each transport: no cookie from an earlier session.
          const context = await browser.newContext();
          try {
            const page = await context.newPage();
            await page.goto(`${deployment.url}/`, { timeout: 10_000 });
            if (affinity === 'none') {
              await expectRelayedPageSession(page, transport, deployment);
              return;
            }
            const seen = await pageSession(page, transport);
            const worker = expectOneWorker(seen, transport);
            // Over HTTP the browser kept the cookie HAProxy set, naming the worker of the session.
            // A websocket is one connection, which needs no cookie and gets none.
            if (affinity === 'cookie' && transport !== 'websocket') expect(seen.cookie).toContain(`JSESSIONID=${worker}~`);
          } finally {
            await context.close();
          }
        },
        TEST_MS,
      );
    });
  });

  describe('the launcher', () => {
    it(
      'stops HAProxy, the workers and the redis-server it started on SIGTERM, leaving no process behind',
      async () => {
        // redis-server, 3 workers and HAProxy.
        await expectLauncherStopsEverything(join(EXAMPLE, 'start.js'), [tools.paths!.haproxy, tools.paths!['redis-server']], 5, (url) =>
          connect(url, 'xhr-polling'),
        );
      },
      TEST_MS,
    );
  });
});
