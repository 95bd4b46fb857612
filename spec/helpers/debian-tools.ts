/**
 * System programs the deployment suites run (Debian's haproxy and redis-server): finding them
 * (`.ci/run` installs them for CI; the tests never do), and a redis-server of a test's own.
 */
import { spawn, type ChildProcess } from 'child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'fs';
import { createServer, connect } from 'net';
import { tmpdir } from 'os';
import { delimiter, join } from 'path';

/** The bound of every wait here for a program to come up or go away. */
const WAIT_MS = 10_000;

/** Where to look besides PATH: Debian puts haproxy in /usr/sbin, which a non-root PATH lacks. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The absolute path of the executable `name`, or null. */
export function findCommand(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory (or not executable there): the next one may have it.
      continue;
    }
  }
  return null;
}

export type Tools<C extends string> = { readonly ok: true; readonly paths: Record<C, string> } | { readonly ok: false; readonly reason: string };

/**
 * Finds each command (command name to the Debian package that has it). The tests never install
 * anything: `.ci/run` installs what CI needs, and elsewhere a missing command is reported with
 * the package to install.
 */
export function findCommands<C extends string>(packages: Record<C, string>): Tools<C> {
  const names = Object.keys(packages) as C[];
  const missing = names.filter((name) => findCommand(name) === null);
  if (missing.length > 0) {
    const wanted = [...new Set(missing.map((name) => packages[name]))];
    return { ok: false, reason: `${missing.join(', ')} not found; install it with 'apt-get install -y ${wanted.join(' ')}'` };
  }
  const paths = {} as Record<C, string>;
  for (const name of names) paths[name] = findCommand(name)!;
  return { ok: true, paths };
}

/**
 * Decides whether a suite that needs `tools` runs. Without them it prints one line and is skipped,
 * except under CI=true, where its first hook fails with the reason instead.
 */
export function suiteNeeding<C extends string>(
  suite: string,
  tools: Tools<C>,
): { readonly run: boolean; readonly paths: Record<C, string> | null; readonly reason: string } {
  if (tools.ok) return { run: true, paths: tools.paths, reason: '' };
  if (process.env.CI === 'true') return { run: true, paths: null, reason: tools.reason };
  process.stdout.write(`${suite} skipped: ${tools.reason} (CI=true makes this a failure)\n`);
  return { run: false, paths: null, reason: tools.reason };
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `port` accepts connections; rejects after WAIT_MS or if `child` exits first. */
function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`));
        return;
      }
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() - started > WAIT_MS) reject(new Error(`not listening on ${port} after ${WAIT_MS} ms`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts redis-server on `port` (default: a free one), in a temporary directory of its own, with no persistence. */
export async function startRedisServer(command: string, port?: number): Promise<RedisServer> {
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sockjs-rx-redis-'));
  const child = spawn(command, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
        await exited;
        clearTimeout(force);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    await waitForPort(port, child);
  } catch (error) {
    await stop();
    throw new Error(`${command}: ${(error as Error).message}`);
  }
  return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid!, stop };
}

/** Polls `condition` until it holds; rejects, naming `what`, once `timeoutMs` have passed. */
export function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      Promise.resolve(condition()).then(
        (holds) => {
          if (holds) resolve();
          else if (Date.now() - started > timeoutMs) reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
          else setTimeout(poll, 10);
        },
        (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
      );
    };
    poll();
  });
}

/** Whether a process with this id is running: it exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // ESRCH: no such process. EPERM would mean it exists but is someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // An orphan that has exited stays a zombie until its new parent reaps it, which in a container
  // whose pid 1 is not an init may be never; it is gone all the same. The state follows the
  // parenthesised command name in /proc/<pid>/stat.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (error) {
    // It went away between the two looks.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
