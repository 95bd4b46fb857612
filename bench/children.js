'use strict';
/**
 * Child processes of the benchmark: spawned pinned to a core (taskset) with a raised descriptor
 * limit, spoken to over IPC with bounded requests, and all killed on exit, error or signal.
 */
const { spawn, execFileSync } = require('child_process');

const live = new Set();
/** BENCH_TRACE=1 prints every request to a child and how long its answer took. */
const TRACE = !!process.env.BENCH_TRACE;

function hasTaskset() {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The soft and hard limits on open files a child would start with. */
function fileLimits() {
  try {
    const [soft, hard] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).trim().split('\n');
    const parse = (v) => (v === 'unlimited' ? Infinity : Number(v));
    return { soft: parse(soft), hard: parse(hard) };
  } catch {
    return { soft: 1024, hard: 1024 };
  }
}

class Child {
  constructor(name, proc) {
    this.name = name;
    this.proc = proc;
    this.pid = proc.pid;
    this.nextId = 1;
    this.pending = new Map();
    this.exited = false;
    this.readyMessage = new Promise((resolve, reject) => {
      this.onReady = resolve;
      this.onReadyFail = reject;
    });
    proc.on('message', (message) => {
      if (message && message.type === 'ready') return this.onReady(message);
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.error) waiter.reject(new Error(`${this.name}: ${message.error}`));
      else waiter.resolve(message);
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      live.delete(this);
      const err = new Error(`${this.name} exited (${signal || code})`);
      this.onReadyFail(err);
      for (const waiter of this.pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(err);
      }
      this.pending.clear();
    });
    proc.on('error', (err) => this.onReadyFail(err));
    live.add(this);
  }

  /** Waits for the child's `ready` message, at most `ms`. */
  ready(ms = 15000) {
    return withTimeout(this.readyMessage, ms, `${this.name} to start`);
  }

  /** Sends a command and waits for its answer, at most `ms`. */
  request(cmd, extra = {}, ms = 15000) {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    if (TRACE) {
      const t0 = Date.now();
      const done = this.request2(id, cmd, extra, ms);
      done.then(() => console.error(`    [${this.name}] ${cmd}${extra.key ? ` ${extra.key}` : ''} ${Date.now() - t0} ms`), () => {});
      return done;
    }
    return this.request2(id, cmd, extra, ms);
  }

  request2(id, cmd, extra, ms) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${ms} ms`));
      }, ms);
      this.pending.set(id, { resolve, reject, timer });
      this.proc.send({ id, cmd, ...extra });
    });
  }

  /** Asks the child to exit (so that --cpu-prof writes its profile); kills it if it has not within `ms`. */
  async stop(ms = 5000) {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.request('exit', {}, ms).catch(() => {});
    const timer = setTimeout(() => this.kill(), ms);
    await exited;
    clearTimeout(timer);
  }

  kill() {
    if (!this.exited) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Whether `chrt` can run a command under SCHED_IDLE here. */
function hasIdlePolicy() {
  try {
    execFileSync('chrt', ['--idle', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `node <nodeFlags> <script> <args>` with an IPC channel. `core` pins it with taskset;
 * `idle` runs it under SCHED_IDLE (`chrt --idle 0`), or with `nice -n 19` where chrt cannot, so
 * that any other process on its core takes the core from it as soon as it wakes; `files` raises
 * the soft descriptor limit (up to the hard one) with `ulimit -n` in a shell that then execs the
 * child, so the pid is the node process itself.
 */
function spawnNode(name, script, args, { core = null, files = null, nodeFlags = [], env = {}, idle = false } = {}) {
  let command = [process.execPath, ...nodeFlags, script, ...args];
  if (idle) command = hasIdlePolicy() ? ['chrt', '--idle', '0', ...command] : ['nice', '-n', '19', ...command];
  if (core !== null) command = ['taskset', '-c', String(core), ...command];
  if (files !== null) command = ['sh', '-c', `ulimit -n ${files} && exec "$@"`, 'sh', ...command];
  const proc = spawn(command[0], command.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  return new Child(name, proc);
}

function killAll() {
  for (const child of live) child.kill();
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

module.exports = { spawnNode, killAll, hasTaskset, hasIdlePolicy, fileLimits, withTimeout };
