/**
 * The nginx recipe for real: Debian's nginx in front of 3 worker processes of examples/haproxy
 * (started by examples/nginx/start.js's launcher), with affinity by URL and with none (round
 * robin, the workers relaying sessions over Redis), and the real sockjs-client in Node and in
 * Chromium over every transport it offers there.
 *
 * The workers run the built package (dist/): `npm test` builds it first. nginx and redis-server
 * are Debian's, installed by `.ci/run` for CI; without them the suite is skipped with one line,
 * unless CI=true, where it fails.
 */
import { execFileSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { type Browser, chromium } from 'playwright-core';
import { findCommands, type RedisServer, startRedisServer, suiteNeeding } from '../helpers/debian-tools';
import {
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
  launcher,
  pageSession,
  parseWhoami,
  ROOT,
  servedBy,
  TEST_MS,
} from './deployment';
import { closeAll, NODE_TRANSPORTS, NodeClient, type NodeTransport } from './sockjs-node';

const EXAMPLE = join(ROOT, 'examples', 'nginx');
const configs: { exampleConfig(affinity: 'url' | 'none'): string } = require('../../examples/nginx/config');

const tools = suiteNeeding('nginx suite', findCommands({ nginx: 'nginx', 'redis-server': 'redis-server' }));

(tools.run ? describe.each(['url', 'none'] as const) : describe.skip.each(['url', 'none'] as const))('nginx in front of 3 sockjs-rx workers, affinity %s', (affinity) => {
  let redis: RedisServer;
  let deployment: Deployment;
  const clients: NodeClient[] = [];
  /** stderr of nginx, redis-server and the workers, kept for the failure messages. */
  const output: string[] = [];

  beforeAll(async () => {
    if (!tools.paths) throw new Error(`CI=true and no nginx or redis-server: ${tools.reason}`);
    if (!existsSync(join(ROOT, 'dist', 'redis.js'))) throw new Error('dist/redis.js is missing: run `npm run build` (npm test does)');
    redis = await startRedisServer(tools.paths['redis-server']);
    deployment = await launcher.start({
      proxy: 'nginx',
      affinity,
      workers: 3,
      port: 0,
      workerPort: 0,
      redis: redis.url,
      nginxCommand: tools.paths.nginx,
      onOutput: (name, line) => output.push(`${name}: ${line}`),
    });
  }, 60_000);

  afterAll(async () => {
    await deployment?.stop();
    await redis?.stop();
  });

  afterEach(async () => {
    await closeAll(clients.splice(0));
  });

  const connect = (url: string, transport: NodeTransport): NodeClient => {
    const client = new NodeClient(url, transport);
    clients.push(client);
    return client;
  };

  it('is configured by what config.js writes, in the checked-in .conf file, and nginx accepts it', () => {
    const path = join(EXAMPLE, affinity === 'url' ? 'nginx.conf' : 'nginx-none.conf');
    expect(readFileSync(path, 'utf8')).toBe(configs.exampleConfig(affinity));
    // nginx -t also checks that it can open its pid and temporary files: give it a directory.
    const dir = mkdtempSync(join(tmpdir(), 'sockjs-rx-nginx-test-'));
    try {
      expect(() => execFileSync(tools.paths!.nginx, ['-t', '-q', '-p', dir, '-e', 'stderr', '-c', path], { stdio: 'pipe' })).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(NODE_TRANSPORTS)(
    'keeps every %s session on one worker for its whole life, and spreads the sessions over the workers',
    async (transport) => {
      const before = await servedBy(deployment);
      const opened = Array.from({ length: CLIENTS_PER_TRANSPORT }, () => connect(`${deployment.url}/whoami`, transport));
      await Promise.all(opened.map((c) => c.opened()));
      for (const client of opened) expect(client.openedWith).toBe(transport);
      await expectSessionsOnOneWorkerEach(opened);
      // Without affinity each session's requests went to every worker (a websocket is one
      // connection); with it, to the one worker each.
      if (affinity === 'none' && transport !== 'websocket') {
        const after = await servedBy(deployment);
        for (const [i, n] of after.entries()) expect(n - before[i]!).toBeGreaterThan(CLIENTS_PER_TRANSPORT);
      }
    },
    TEST_MS,
  );

  it.each(['xhr-streaming', 'eventsource'] as const)(
    'passes each message of a %s response on as it comes',
    async (transport) => {
      const client = connect(`${deployment.url}/whoami`, transport);
      await client.opened();
      expect(parseWhoami(await client.ask('hello')).message).toBe('hello');
      await expectStreamNotHeldBack(client);
    },
    TEST_MS,
  );

  describe('sockjs-client in Chromium', () => {
    const chromiumFound = existsSync(CHROMIUM);
    const skipped = !chromiumFound && process.env.CI !== 'true';
    if (skipped && tools.run) process.stdout.write(`nginx suite: the Chromium tests skipped: no browser at ${CHROMIUM} (CI=true makes this a failure)\n`);
    let browser: Browser;

    beforeAll(async () => {
      if (skipped) return;
      if (!chromiumFound) throw new Error(`CI=true and no browser at ${CHROMIUM}`);
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    (skipped ? it.skip : it).each(BROWSER_TRANSPORTS)(
      affinity === 'none' ? 'serves a session over %s from every worker, 50 messages echoed in order by its owner' : 'keeps a session over %s on one worker for its whole life',
      async (transport) => {
        const context = await browser.newContext();
        try {
          const page = await context.newPage();
          await page.goto(`${deployment.url}/`, { timeout: 10_000 });
          if (affinity === 'none') await expectRelayedPageSession(page, transport, deployment);
          else expectOneWorker(await pageSession(page, transport), transport);
        } finally {
          await context.close();
        }
      },
      TEST_MS,
    );
  });

  // The launcher is one: it is run once, in the first of the two deployments.
  if (affinity === 'url') it(
    'has a launcher that stops nginx, the workers and the redis-server it started on SIGTERM, leaving no process behind',
    async () => {
      // redis-server, 3 workers and nginx's master process.
      await expectLauncherStopsEverything(join(EXAMPLE, 'start.js'), [tools.paths!.nginx, tools.paths!['redis-server']], 5, (url) =>
        connect(url, 'xhr-streaming'),
      );
    },
    TEST_MS,
  );
});
