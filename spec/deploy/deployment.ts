/**
 * What the deployment suites share: the launcher of examples/haproxy (HAProxy or nginx in front
 * of worker processes), the /whoami service's answers, and the checks that every suite makes
 * through its load balancer.
 */
import { type ChildProcess, execFileSync, spawn } from 'child_process';
import { request } from 'http';
import { dirname, join } from 'path';
import type { Page } from 'playwright-core';
import { isAlive, waitUntil } from '../helpers/debian-tools';
import type { NodeClient } from './sockjs-node';

export interface Worker {
  readonly id: string;
  readonly port: number;
  readonly pid: number;
  readonly process: ChildProcess;
}

export type Affinity = 'url' | 'cookie' | 'none';

export interface Deployment {
  readonly url: string;
  readonly port: number;
  readonly configFile: string;
  readonly workers: readonly Worker[];
  readonly balancer: ChildProcess;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  proxy?: 'haproxy' | 'nginx';
  workers?: number;
  port?: number;
  workerPort?: number;
  affinity?: Affinity;
  redis?: string;
  onOutput?: (name: string, line: string) => void;
  haproxyCommand?: string;
  nginxCommand?: string;
  redisCommand?: string;
}

export const ROOT = join(__dirname, '..', '..');
export const launcher: { start(options: LaunchOptions): Promise<Deployment> } = require('../../examples/haproxy/start');

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-sync'];

export { BROWSER_TRANSPORTS } from '../helpers/sockjs-client';

/** Longer than every bound inside a test. */
export const TEST_MS = 90_000;

/** Clients per transport in the affinity tests: enough that all of them landing on one worker is a one-in-50,000 event. */
export const CLIENTS_PER_TRANSPORT = 12;

/**
 * A message bigger than half of the workers' response_limit (128 KiB): two of them end a
 * streaming response (xhr-streaming, eventsource) and make the client open another, so the
 * session goes on over a new HTTP request.
 */
export const LARGE = 'x'.repeat(100 * 1024);

/** The worker id and the message of a /whoami answer (`<id> <message>`). */
export function parseWhoami(answer: string): { worker: string; message: string } {
  const space = answer.indexOf(' ');
  return { worker: answer.slice(0, space), message: answer.slice(space + 1) };
}

/**
 * Sends small messages one at a time (each a poll of its own over xhr-polling), then two large
 * ones that end a streaming response and make the client open another, from every client; checks
 * that each session stayed on one worker and that the sessions were spread over several.
 */
export async function expectSessionsOnOneWorkerEach(opened: readonly NodeClient[]): Promise<void> {
  const sent = ['m0', 'm1', 'm2', 'm3', 'm4', LARGE, LARGE, 'm5', 'm6'];
  const workersOf = await Promise.all(
    opened.map(async (client) => {
      const workers: string[] = [];
      for (const message of sent) {
        const answer = parseWhoami(await client.ask(message));
        expect(answer.message === message).toBe(true);
        workers.push(answer.worker);
      }
      return workers;
    }),
  );
  for (const workers of workersOf) expect(new Set(workers).size).toBe(1);
  expect(new Set(workersOf.map((w) => w[0])).size).toBeGreaterThan(1);
  for (const client of opened) expect(client.isClosed).toBe(false);
}

/**
 * Times 21 round trips of `client` (a /whoami session over a streaming transport): a load
 * balancer that holds small chunks back makes each wait about 200 ms; passed on, a round trip
 * here takes a few milliseconds (the client's wait polls every 10).
 */
export async function expectStreamNotHeldBack(client: NodeClient): Promise<void> {
  const took: number[] = [];
  for (let i = 0; i < 21; i++) {
    const started = performance.now();
    expect(parseWhoami(await client.ask(`t${i}`)).message).toBe(`t${i}`);
    took.push(performance.now() - started);
  }
  took.sort((a, b) => a - b);
  expect(took[10]).toBeLessThan(100);
}

/** What one session in the page saw. */
export interface PageSession {
  readonly transport: string | null;
  readonly answers: readonly string[];
  readonly closed: string | null;
  readonly cookie: string;
}

/**
 * Runs one /whoami session in the page over `transport`: `count` messages one after the other,
 * each sent once the answer to the one before has come, then a close.
 */
export function pageSession(page: Page, transport: string, count = 6): Promise<PageSession> {
  return page.evaluate<PageSession>(`new Promise(function (resolve) {
    var sock = new SockJS('/whoami', null, { transports: [${JSON.stringify(transport)}] });
    var answers = [];
    var done = function (closed) {
      clearTimeout(timer);
      resolve({ transport: sock.transport, answers: answers, closed: closed, cookie: document.cookie });
      sock.onclose = null;
      sock.close();
    };
    var timer = setTimeout(function () { done('timed out'); }, 30000);
    sock.onopen = function () { sock.send('m0'); };
    sock.onmessage = function (e) {
      answers.push(e.data);
      if (answers.length < ${count}) sock.send('m' + answers.length);
      else done(null);
    };
    sock.onclose = function (e) { done(e.code + ' ' + e.reason); };
  })`);
}

/** Checks what a page session saw: `count` answers in order, all from one worker; returns the worker. */
export function expectOneWorker(seen: PageSession, transport: string, count = 6): string {
  expect({ transport: seen.transport, closed: seen.closed, count: seen.answers.length }).toEqual({ transport, closed: null, count });
  const answers = seen.answers.map(parseWhoami);
  expect(answers.map((a) => a.message)).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
  const worker = answers[0]!.worker;
  expect(answers.map((a) => a.worker)).toEqual(Array(count).fill(worker));
  return worker;
}

/**
 * A page session over `transport` through a balancer without affinity: 50 messages echoed in
 * order by one owner, and (over HTTP) the session's requests served by every worker.
 */
export async function expectRelayedPageSession(page: Page, transport: string, deployment: Deployment): Promise<void> {
  const before = await servedBy(deployment);
  expectOneWorker(await pageSession(page, transport, 50), transport, 50);
  if (transport === 'websocket') return;
  const after = await servedBy(deployment);
  for (const [i, n] of after.entries()) expect({ worker: i, served: n - before[i]! > 0 }).toEqual({ worker: i, served: true });
}

/** The ids of the processes whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const text = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return text
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((n) => n > 0);
}

/**
 * Runs a launcher script as a user would, with `tools` on its PATH: checks that it serves
 * through its load balancer, that it started `children` processes, and that SIGTERM stops it
 * with status 0 and leaves none of them behind.
 */
export async function expectLauncherStopsEverything(
  script: string,
  tools: readonly string[],
  children: number,
  connect: (url: string) => NodeClient,
): Promise<void> {
  const cli = spawn(process.execPath, [script, '--start-redis', '--port', '0', '--worker-port', '0'], {
    env: { ...process.env, PATH: [process.env.PATH, ...tools.map((tool) => dirname(tool))].join(':') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  cli.stdout.setEncoding('utf8');
  cli.stdout.on('data', (chunk: string) => (out += chunk));
  cli.stderr.setEncoding('utf8');
  cli.stderr.on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
  try {
    await waitUntil(() => out.includes('Ctrl-C stops everything'), 'the launcher to print its URL', 30_000);
    const url = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)![1]!;
    const client = connect(`${url}/echo`);
    await client.opened();
    expect(await client.ask('through the launcher')).toBe('through the launcher');
    const pids = childrenOf(cli.pid!);
    expect(pids).toHaveLength(children);
    cli.kill('SIGTERM');
    await waitUntil(() => cli.exitCode !== null || cli.signalCode !== null, 'the launcher to exit', 20_000);
    expect(await exited).toBe(0);
    await waitUntil(() => pids.every((pid) => !isAlive(pid)), 'every child of the launcher to be gone');
  } finally {
    if (cli.exitCode === null) cli.kill('SIGKILL');
  }
}

/** The body of GET `path` on 127.0.0.1:`port`. */
export function getText(port: number, path: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** How many requests of the services each worker has served so far (the workers' GET /requests). */
export function servedBy(deployment: Deployment): Promise<number[]> {
  return Promise.all(deployment.workers.map(async (w) => (JSON.parse(await getText(w.port, '/requests')) as { served: number }).served));
}
