'use strict';
/**
 * Scaling example: N sockjs-rx worker processes behind HAProxy (or nginx), with broadcast across
 * them over Redis.
 *
 *   npm run build
 *   node examples/haproxy/start.js --start-redis                # http://127.0.0.1:8080/
 *   node examples/haproxy/start.js --start-redis --proxy nginx  # the same behind nginx
 *
 * Options:
 *   --proxy haproxy      the load balancer in front (default), or
 *   --proxy nginx        nginx, with examples/nginx/config.js (affinity by URL only)
 *   --workers N          worker processes (default 3), on ports 8181, 8182, ...
 *   --port P             where the load balancer listens (default 8080); 0 picks a free port
 *   --worker-port P      the first worker's port (default 8181); 0 gives each worker a free port
 *   --affinity url       stick sessions by their URL (default), or
 *   --affinity cookie    by the JSESSIONID cookie (HAProxy only), or
 *   --affinity none      not at all: round robin, the workers relay sessions over Redis
 *   --redis URL          the Redis server to use (default $REDIS_URL or redis://127.0.0.1:6379), or
 *   --start-redis        start a redis-server of its own on a free port, with no persistence
 *
 * Needs `haproxy` or `nginx` (and `redis-server` for --start-redis) on the PATH: on Debian,
 * `apt-get install haproxy nginx redis-server`. Ctrl-C or SIGTERM stops everything it started.
 *
 * Tests import `start()`.
 */
const { fork, spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { haproxyConfig } = require('./config');
const { nginxConfig } = require('../nginx/config');

/**
 * The load balancers the launcher can put in front: the file its configuration goes to, and how
 * to run it in the foreground on that file, with `dir` for its own files.
 */
const PROXIES = {
  haproxy: {
    name: 'HAProxy',
    file: 'haproxy.cfg',
    affinities: ['url', 'cookie', 'none'],
    config: (options) => haproxyConfig(options),
    args: (configFile) => ['-db', '-f', configFile],
  },
  nginx: {
    name: 'nginx',
    file: 'nginx.conf',
    affinities: ['url', 'none'],
    config: (options) => nginxConfig(options),
    args: (configFile, dir) => ['-p', dir, '-c', configFile, '-e', 'stderr', '-g', 'daemon off;'],
  },
};

/** The bound of every wait for a child to come up or go away. */
const WAIT_MS = 15_000;

/** A port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`; rejects after `timeoutMs`. */
function waitForPort(port, what, child, timeoutMs = WAIT_MS) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`));
        return;
      }
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() - started > timeoutMs) reject(new Error(`${what} is not listening on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Resolves when `child` has exited; sends SIGKILL if SIGTERM has not done it in `timeoutMs`. */
function terminate(child, timeoutMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts redis-server on a free port in a directory of its own, with no persistence. */
async function startRedis(command, dir, stderr, follow) {
  const port = await freePort();
  const child = spawn(
    command,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'ignore', stderr] },
  );
  follow('redis-server', child);
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
  });
  try {
    await waitForPort(port, 'redis-server', child);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { child, url: `redis://127.0.0.1:${port}` };
}

/** Forks one worker; resolves with its port once it listens. */
function startWorker({ id, port, redisUrl, jsessionid, relay, stderr, follow }) {
  const child = fork(path.join(__dirname, 'worker.js'), [], {
    env: {
      ...process.env,
      WORKER_ID: id,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      JSESSIONID: jsessionid ? '1' : '0',
      RELAY: relay ? '1' : '0',
    },
    stdio: ['ignore', 'inherit', stderr, 'ipc'],
  });
  follow(id, child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.removeAllListeners('exit');
      child.kill('SIGKILL');
      reject(new Error(`worker ${id} did not start within ${WAIT_MS} ms (is Redis at ${redisUrl}?)`));
    }, WAIT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker ${id} exited (${code ?? signal}) while starting`));
    });
    child.once('message', (message) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ id, port: message.port, pid: child.pid, child });
    });
  });
}

/**
 * Starts Redis (if asked), the workers and the load balancer.
 *
 * @param {object} [options]
 * @param {'haproxy' | 'nginx'} [options.proxy] default 'haproxy'
 * @param {number} [options.workers] default 3
 * @param {number} [options.port] the load balancer's port; default 8080, 0 picks a free one
 * @param {number} [options.workerPort] the first worker's port; default 8181, 0 picks free ones
 * @param {'url' | 'cookie' | 'none'} [options.affinity] default 'url'; nginx has no 'cookie'
 * @param {string} [options.redis] a Redis URL, or 'start' to start redis-server; default $REDIS_URL or redis://127.0.0.1:6379
 * @param {(name: string, line: string) => void} [options.onOutput] gets each line the children
 *   write to stderr, with the child's name; default: they write to this process's stderr
 * @param {string} [options.haproxyCommand] default 'haproxy', found on the PATH
 * @param {string} [options.nginxCommand] default 'nginx', found on the PATH
 * @param {string} [options.redisCommand] default 'redis-server', found on the PATH
 */
async function start(options = {}) {
  const count = options.workers ?? 3;
  const affinity = options.affinity ?? 'url';
  const proxyName = options.proxy ?? 'haproxy';
  const proxy = PROXIES[proxyName];
  if (!proxy) throw new Error(`proxy must be ${Object.keys(PROXIES).join(' or ')}, not ${JSON.stringify(proxyName)}`);
  if (!proxy.affinities.includes(affinity)) throw new Error(`${proxy.name} has affinity by ${proxy.affinities.join(' or ')}, not ${JSON.stringify(affinity)}`);
  const stderr = options.onOutput ? 'pipe' : 'inherit';
  /** Hands the stderr lines of `child` to onOutput, when there is one. */
  const follow = (name, child) => {
    if (!options.onOutput) return;
    let rest = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) options.onOutput(name, line);
    });
  };
  const port = options.port === 0 ? await freePort() : options.port ?? 8080;
  const workerPort = options.workerPort ?? 8181;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sockjs-rx-${proxyName}-`));
  /** What was started, in the order it must stop: the load balancer, then the workers, then Redis. */
  const started = { proxy: null, workers: [], redis: null };

  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      // The load balancer first, so that no request reaches a worker that is going; Redis last,
      // so that the workers can end their connections to it.
      if (started.proxy) await terminate(started.proxy);
      await Promise.all(started.workers.map((child) => terminate(child)));
      if (started.redis) await terminate(started.redis);
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    let redisUrl = options.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    let redisChild = null;
    if (options.redis === 'start') {
      const redis = await startRedis(options.redisCommand ?? 'redis-server', dir, stderr, follow);
      redisChild = redis.child;
      started.redis = redis.child;
      redisUrl = redis.url;
    }

    const workers = [];
    for (let n = 1; n <= count; n++) {
      const worker = await startWorker({
        id: `w${n}`,
        port: workerPort === 0 ? 0 : workerPort + n - 1,
        redisUrl,
        jsessionid: affinity === 'cookie',
        relay: affinity === 'none',
        stderr,
        follow,
      });
      started.workers.push(worker.child);
      workers.push(worker);
    }

    const configFile = path.join(dir, proxy.file);
    fs.writeFileSync(configFile, proxy.config({ port, affinity, workers, dir }));
    const command = (proxyName === 'nginx' ? options.nginxCommand : options.haproxyCommand) ?? proxyName;
    const child = spawn(command, proxy.args(configFile, dir), { stdio: ['ignore', 'ignore', stderr] });
    follow(proxyName, child);
    const spawned = new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    });
    await spawned;
    started.proxy = child;
    await waitForPort(port, proxyName, child);

    return {
      url: `http://127.0.0.1:${port}`,
      port,
      proxy: proxyName,
      affinity,
      redisUrl,
      redis: redisChild,
      configFile,
      config: fs.readFileSync(configFile, 'utf8'),
      workers: workers.map(({ id, port: p, pid, child }) => ({ id, port: p, pid, process: child })),
      balancer: child,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Parses the command line; throws on anything it does not know. */
function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    const number = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number`);
      return n;
    };
    if (flag === '--workers') options.workers = number();
    else if (flag === '--port') options.port = number();
    else if (flag === '--worker-port') options.workerPort = number();
    else if (flag === '--affinity') options.affinity = value();
    else if (flag === '--proxy') options.proxy = value();
    else if (flag === '--redis') options.redis = value();
    else if (flag === '--start-redis') options.redis = 'start';
    else throw new Error(`unknown option ${flag}`);
  }
  if (options.workers === 0) throw new Error('--workers must be at least 1');
  if (options.affinity !== undefined && !['url', 'cookie', 'none'].includes(options.affinity)) {
    throw new Error('--affinity is url, cookie or none');
  }
  if (options.proxy !== undefined && !(options.proxy in PROXIES)) throw new Error('--proxy is haproxy or nginx');
  return options;
}

/**
 * The command line: starts what `argv` asks for, on top of `defaults`, prints where it is and
 * stops it all on Ctrl-C or SIGTERM.
 */
function main(argv, defaults = {}) {
  let options;
  try {
    options = { ...defaults, ...parseArgs(argv) };
  } catch (error) {
    console.error(`${error.message}\nusage: node examples/haproxy/start.js [--proxy haproxy|nginx] [--workers N] [--port P] [--worker-port P] [--affinity url|cookie|none] [--redis URL | --start-redis]`);
    process.exit(2);
  }
  start(options).then(
    (running) => {
      console.log(`${running.workers.length} workers behind ${PROXIES[running.proxy].name} (affinity by ${running.affinity}), Redis at ${running.redisUrl}`);
      for (const w of running.workers) console.log(`  ${w.id}: http://127.0.0.1:${w.port}/ (pid ${w.pid})`);
      console.log(`open ${running.url}/   services: /echo /broadcast /whoami   Ctrl-C stops everything`);
      let stopping = false;
      const stop = () => {
        stopping = true;
        running.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A child that dies on its own is reported; the others go on, as behind a real balancer.
      for (const child of [running.balancer, running.redis, ...running.workers.map((w) => w.process)]) {
        child?.once('exit', (code, signal) => {
          if (!stopping) console.error(`pid ${child.pid} exited (${code ?? signal})`);
        });
      }
    },
    (error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}

module.exports = { start, freePort, main };

if (require.main === module) main(process.argv.slice(2));
