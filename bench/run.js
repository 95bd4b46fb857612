#!/usr/bin/env node
'use strict';
/**
 * Benchmarks sockjs-rx side by side with sockjs 0.3.24 and a plain ws server.
 *
 *   node bench/run.js                  the full run (about 20 minutes)
 *   node bench/run.js --quick          fewer rounds, shorter windows (a few minutes)
 *   node bench/run.js --only=a,b       only the scenarios whose id starts with a or b
 *   node bench/run.js --profile[=a,b]  profile ours (node --cpu-prof) on the scenarios given, or on
 *                                      the worst ratios of bench/results/latest.json, and print
 *                                      the functions with the most self time
 *   --profile-server=sockjs            profile that server instead, for comparison
 *
 * Each server runs in its own process, pinned to one core, the load generator in another, pinned
 * to another core; scenarios run in interleaved rounds (ours, sockjs, ws; ours, sockjs, ws; …).
 * The flood scenario's flooder is a second generator process on the generator's core, under
 * SCHED_IDLE (or nice 19), so that it takes only the time the generator leaves.
 * The results go to bench/results/latest.{json,md,svg} and <full|quick>.{json,md,svg}; with --only
 * to partial.{json,md,svg}.
 */
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnNode, killAll, hasTaskset, fileLimits } = require('./children');
const { MODES, INFLIGHT, scenarios, TARGETS, FLOOD_TARGETS } = require('./scenarios');
const { summarise, summariseFlood, evaluateTargets, evaluateFloodTargets, writeResults, num } = require('./report');
const profile = require('./profile');

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results');
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

function parseArgs(argv) {
  const args = { quick: false, only: null, profile: null, rounds: null, profileServer: 'ours' };
  for (const arg of argv) {
    const [name, value] = arg.split('=');
    if (name === '--quick') args.quick = true;
    else if (name === '--only') args.only = value.split(',');
    else if (name === '--profile') args.profile = value ? value.split(',') : [];
    else if (name === '--rounds') args.rounds = Number(value);
    else if (name === '--profile-server') args.profileServer = value;
    else if (name === '--help' || name === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^[^]*?\/\*\*/, '').replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return args;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function cpuModel() {
  try {
    const line = fs
      .readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // Not Linux: fall back to what Node knows.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function version(pkg) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, pkg === 'ours' ? '' : `node_modules/${pkg}`, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** How `ws` unmasks the frames it receives in the servers of this run: natively or in JavaScript. */
function wsMasking() {
  if (typeof require('http').websocketUnmask === 'function') return "Node's own";
  try {
    const dir = path.dirname(require.resolve('bufferutil/package.json', { paths: [ROOT] }));
    require('node-gyp-build')(dir);
    return `bufferutil ${version('bufferutil')}, native`;
  } catch {
    return 'JavaScript (bufferutil not installed or not built)';
  }
}

class Bench {
  constructor(mode, env) {
    this.mode = mode;
    this.env = env;
    this.generator = null;
    /** The flood scenario's flooder, a second load.js, started when first needed. */
    this.flooder = null;
    this.errors = [];
    this.warnings = [];
    this.round = 0;
  }

  coreOf(role) {
    if (!this.env.pinned) return null;
    return role === 'server' ? SERVER_CORE : GENERATOR_CORE;
  }

  async startGenerator() {
    const child = spawnNode('load generator', path.join(__dirname, 'load.js'), [], { core: this.coreOf('generator'), files: this.env.files.raiseTo });
    await child.ready();
    this.generator = child;
  }

  async startFlooder() {
    const child = spawnNode('flooder', path.join(__dirname, 'load.js'), [], { core: this.coreOf('generator'), files: this.env.files.raiseTo, idle: true });
    await child.ready();
    this.flooder = child;
  }

  async stopFlooder() {
    if (this.flooder) await this.flooder.stop(2000);
    this.flooder = null;
  }

  /** The warm-up and window of `scenario`'s rounds: its own, else the mode's; at least the mode's `minWindowMs`. */
  timing(scenario) {
    return { warmupMs: scenario.warmupMs ?? this.mode.warmupMs, windowMs: Math.max(scenario.windowMs ?? this.mode.windowMs, this.mode.minWindowMs ?? 0) };
  }

  /** A few tries, a little apart: a dependency being reinstalled under the run comes back. */
  async restartGenerator() {
    if (this.generator) await this.generator.stop(2000);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startGenerator();
        return;
      } catch (err) {
        if (attempt === 5) throw err;
        await sleep(2000 * attempt);
      }
    }
  }

  async startServer(kind, options = {}, nodeFlags = []) {
    const child = spawnNode(`${kind} server`, path.join(__dirname, 'server.js'), [kind, JSON.stringify(options)], {
      env: { BENCH_OURS: this.env.ours, NODE_PATH: path.join(ROOT, 'node_modules') },
      core: this.coreOf('server'),
      files: this.env.files.raiseTo,
      nodeFlags: ['--expose-gc', ...nodeFlags],
    });
    const { port, ownerPort } = await child.ready(30000);
    child.port = port;
    child.ownerPort = ownerPort;
    return child;
  }

  /** Opens the sessions of `scenario` on `server` (at its owner, with a relay), as the load of `kind`. */
  async setup(scenario, kind, server) {
    await this.generator.request('setup', { key: kind, port: server.port, openPort: server.ownerPort, load: scenario.load(kind) }, 120000);
  }

  async teardown(kind) {
    if (this.generator && !this.generator.exited) await this.generator.request('teardown', { key: kind }, 30000);
    if (this.flooder && !this.flooder.exited) await this.flooder.request('teardown', { key: kind }, 30000);
  }

  /**
   * One round of a throughput scenario on sessions already set up: warm up, then measure a window.
   * The window is the span between the server's two CPU samples, by its own clock; the generator
   * counts the operations completed in that same span.
   */
  async throughputRound(kind, server, hooks = {}, timing = this.mode) {
    const gen = this.generator;
    const key = kind;
    let cpu0;
    let cpu1;
    let collected;
    try {
      await gen.request('start', { key });
      await sleep(timing.warmupMs);
      cpu0 = await server.request('cpu');
      await sleep(timing.windowMs);
      cpu1 = await server.request('cpu');
      collected = await gen.request('collect', { key, window: { from: cpu0.at, to: cpu1.at } });
    } finally {
      await gen.request('pause', { key }, 30000);
    }
    hooks.window?.(cpu0.at, cpu1.at);
    const r = collected.result;
    if (r.ops === 0) throw new Error(`no operation completed in the ${r.seconds.toFixed(2)} s window (${r.errors} errors)`);
    return {
      ops: r.ops,
      errors: r.errors,
      seconds: r.seconds,
      rate: r.ops / r.seconds,
      p50: r.p50,
      p99: r.p99,
      cpuUs: cpu1.cpu - cpu0.cpu,
      cpuPerOp: r.ops > 0 ? (cpu1.cpu - cpu0.cpu) / r.ops : null,
      // With a relay, the owner's share of it.
      ownerCpuPerOp: r.ops > 0 && typeof cpu1.ownerCpu === 'number' ? (cpu1.ownerCpu - cpu0.ownerCpu) / r.ops : null,
    };
  }

  /**
   * One round of the flood scenario on sessions already set up: the well-behaved load alone, or
   * with the flooder (`flooded`) sending beside it from the warm-up on. As `throughputRound`, plus
   * the server's CPU as a share of one core, the flooder's messages sent (its own count) and
   * handed to the application (the server's count), and with ours the messages it dropped. After
   * the round the server is given the time to read what the flooder left in the sockets.
   */
  async floodRound(scenario, kind, server, flooded, hooks = {}) {
    const timing = this.timing(scenario);
    const gen = this.generator;
    const key = kind;
    let cpu0;
    let cpu1;
    let collected;
    let flood = null;
    try {
      await gen.request('start', { key });
      if (flooded) await this.flooder.request('start', { key }, 15000);
      await sleep(timing.warmupMs);
      cpu0 = await server.request('cpu');
      await sleep(timing.windowMs);
      cpu1 = await server.request('cpu');
      const window = { from: cpu0.at, to: cpu1.at };
      collected = (await gen.request('collect', { key, window })).result;
      if (flooded) flood = (await this.flooder.request('collect', { key, window })).result;
    } finally {
      if (flooded) await this.flooder.request('pause', { key }, 30000);
      await gen.request('pause', { key }, 30000);
      await this.settle(scenario, kind, server);
    }
    hooks.window?.(cpu0.at, cpu1.at);
    const r = collected;
    if (r.ops === 0) throw new Error(`no operation completed in the ${r.seconds.toFixed(2)} s window (${r.errors} errors)`);
    const seconds = (cpu1.at - cpu0.at) / 1e6;
    const cpuUs = cpu1.cpu - cpu0.cpu;
    const result = {
      ops: r.ops,
      errors: r.errors,
      seconds: r.seconds,
      rate: r.ops / r.seconds,
      p50: r.p50,
      p99: r.p99,
      cpuUs,
      cpuPerOp: cpuUs / r.ops,
      cpuShare: cpuUs / (seconds * 1e6),
      loopDelayP99: r.loopDelayP99 ?? null,
    };
    if (flooded) {
      if (!flood.open) this.warn(scenario, kind, `the flooder's session was not open at the end of the window (${flood.errors} errors)`);
      result.floodSent = flood.ops;
      result.floodSendRate = flood.ops / flood.seconds;
      result.floodDelivered = cpu1.flood - cpu0.flood;
      result.floodDeliveredRate = result.floodDelivered / seconds;
      result.floodDroppedRate = typeof cpu1.dropped === 'number' ? (cpu1.dropped - cpu0.dropped) / seconds : null;
    }
    return result;
  }

  /**
   * Waits until `server` is idle (under 10% of a core over 50 ms, or the mode's `idleShare`), at
   * most 5 s: what a flooder left in its socket's buffers is read and dropped before the next
   * round starts.
   */
  async settle(scenario, kind, server) {
    const idle = this.mode.idleShare ?? 0.1;
    let a = await server.request('cpu');
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      const b = await server.request('cpu');
      if (b.cpu - a.cpu < idle * (b.at - a.at)) return;
      a = b;
    }
    this.warn(scenario, kind, 'the server was still busy 5 s after the round');
  }

  /**
   * One round of an idle scenario on a fresh server: memory after a forced GC before and after
   * opening the sessions, and with `heartbeat` the CPU they cost over a window. Stops the server.
   */
  async idleRound(scenario, kind, server, hooks = {}) {
    const before = (await server.request('mem')).mem;
    const n = scenario.sessions;
    let result;
    try {
      await this.setup(scenario, kind, server);
      await sleep(this.mode.idleSettleMs);
      const after = (await server.request('mem', {}, 30000)).mem;
      result = {
        sessions: n,
        heapPerSession: (after.heapUsed - before.heapUsed) / n,
        rssPerSession: (after.rss - before.rss) / n,
        externalPerSession: (after.external - before.external) / n,
      };
      if (scenario.heartbeat) {
        const cpu0 = await server.request('cpu');
        await sleep(this.mode.idleWindowMs);
        const cpu1 = await server.request('cpu');
        hooks.window?.(cpu0.at, cpu1.at);
        const seconds = (cpu1.at - cpu0.at) / 1e6;
        const { result: still } = await this.generator.request('collect', { key: kind });
        result.cpuUs = cpu1.cpu - cpu0.cpu;
        result.cpuPerOp = result.cpuUs / (n * seconds);
        // Sessions the server closed in the window (a heartbeat answered too late) are worth knowing.
        result.closed = n - still.open;
        if (result.closed > 0) this.warn(scenario, kind, `${result.closed} of ${n} idle sessions were closed during the window`);
      }
    } finally {
      // The server goes first: its sockets close under the generator, which then has little to do.
      await server.stop();
      await this.teardown(kind);
    }
    return result;
  }

  warn(scenario, kind, message) {
    this.warnings.push({ scenario: scenario.id, kind, round: this.round, message });
    console.error(`  ? ${scenario.id} ${kind} round ${this.round + 1}: ${message}`);
  }

  fail(scenario, kind, err) {
    this.errors.push({ scenario: scenario.id, kind, round: this.round, message: String(err.stack || err) });
    console.error(`  ! ${scenario.id} ${kind} round ${this.round + 1}: ${String(err.message || err).split('\n')[0]}`);
  }

  async runScenario(scenario) {
    const rounds = Object.fromEntries(scenario.kinds.map((k) => [k, []]));
    const rerun = () => new Array(scenario.fresh ? this.mode.idleRounds : this.mode.rounds).fill(null);
    for (const kind of scenario.kinds) rounds[kind] = rerun();
    if (scenario.fresh) {
      for (this.round = 0; this.round < this.mode.idleRounds; this.round++) {
        for (const kind of scenario.kinds) {
          let server = null;
          try {
            server = await this.startServer(kind, scenario.serverOptions);
            rounds[kind][this.round] = await this.idleRound(scenario, kind, server);
          } catch (err) {
            this.fail(scenario, kind, err);
            await this.restartGenerator();
          } finally {
            if (server) server.kill();
          }
        }
      }
      return rounds;
    }

    if (scenario.measure === 'flood') {
      await this.runFlood(scenario, rounds);
      return rounds;
    }

    // Every server keeps its sessions open through the rounds; the rounds take turns loading them.
    // An `apart` scenario holds more sessions than the generator can hold for every server at
    // once: each server's rounds run with only its own sessions open, one server after another.
    const groups = scenario.apart ? scenario.kinds.map((kind) => [kind]) : [scenario.kinds];
    for (const kinds of groups) await this.runRounds(scenario, kinds, rounds);
    return rounds;
  }

  /** The throughput rounds of `kinds`, taking turns, into `rounds`. */
  async runRounds(scenario, kinds, rounds) {
    let servers = {};
    const dispose = async () => {
      for (const kind of Object.keys(servers)) await this.teardown(kind).catch(() => {});
      await Promise.all(Object.values(servers).map((s) => s.stop()));
      servers = {};
    };
    // Nothing is measured while the servers start and the sessions open, so that goes in parallel.
    const prepare = async () => {
      const started = await Promise.allSettled(kinds.map((kind) => this.startServer(kind, scenario.serverOptions)));
      kinds.forEach((kind, i) => {
        if (started[i].status === 'fulfilled') servers[kind] = started[i].value;
      });
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      await Promise.all(kinds.map((kind) => this.setup(scenario, kind, servers[kind])));
    };
    // One unmeasured pass per server first, so that round 1 does not pay for the JIT warming up.
    const prewarm = async () => {
      for (const kind of kinds) {
        await this.generator.request('start', { key: kind });
        await sleep(this.mode.prewarmMs);
        await this.generator.request('pause', { key: kind }, 30000);
      }
    };
    this.round = 0;
    try {
      await prepare();
      await prewarm();
      for (; this.round < this.mode.rounds; this.round++) {
        for (const kind of kinds) {
          try {
            rounds[kind][this.round] = await this.throughputRound(kind, servers[kind], {}, this.timing(scenario));
            await sleep(20);
          } catch (err) {
            this.fail(scenario, kind, err);
            // Start over from clean processes: whatever state the failure left is not measured.
            for (const s of Object.values(servers)) s.kill();
            servers = {};
            await this.restartGenerator();
            await prepare();
            await prewarm();
          }
        }
      }
    } catch (err) {
      this.fail(scenario, 'setup', err);
      for (const s of Object.values(servers)) s.kill();
      servers = {};
      await this.restartGenerator();
    } finally {
      await dispose();
    }
  }

  /**
   * The rounds of the flood scenario into `rounds`: per server a window of the well-behaved load
   * alone (`<kind>`) and one with the flooder beside it (`<kind>+flood`), on the same server and
   * sessions, the order of the two swapped every round; the servers take turns.
   */
  async runFlood(scenario, rounds) {
    const kinds = scenario.kinds;
    for (const kind of kinds) rounds[`${kind}+flood`] = new Array(this.mode.rounds).fill(null);
    let servers = {};
    const dispose = async () => {
      for (const kind of Object.keys(servers)) await this.teardown(kind).catch(() => {});
      await Promise.all(Object.values(servers).map((s) => s.stop()));
      servers = {};
    };
    const prepare = async () => {
      if (!this.flooder) await this.startFlooder();
      const started = await Promise.allSettled(kinds.map((kind) => this.startServer(kind, scenario.serverOptions)));
      kinds.forEach((kind, i) => {
        if (started[i].status === 'fulfilled') servers[kind] = started[i].value;
      });
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      for (const kind of kinds) {
        await this.setup(scenario, kind, servers[kind]);
        await this.flooder.request('setup', { key: kind, port: servers[kind].port, load: scenario.flood(kind) }, 30000);
      }
    };
    // Unmeasured: one round of each kind, alone and flooded, warms up the JIT on both paths.
    const prewarm = async () => {
      for (const kind of kinds) for (const flooded of [false, true]) await this.floodRound(scenario, kind, servers[kind], flooded);
    };
    const restart = async () => {
      for (const s of Object.values(servers)) s.kill();
      servers = {};
      await this.stopFlooder();
      await this.restartGenerator();
    };
    this.round = 0;
    try {
      await prepare();
      await prewarm();
      for (; this.round < this.mode.rounds; this.round++) {
        for (const kind of kinds) {
          for (const flooded of this.round % 2 ? [true, false] : [false, true]) {
            try {
              rounds[flooded ? `${kind}+flood` : kind][this.round] = await this.floodRound(scenario, kind, servers[kind], flooded);
            } catch (err) {
              this.fail(scenario, flooded ? `${kind}+flood` : kind, err);
              await restart();
              await prepare();
              await prewarm();
            }
          }
        }
      }
    } catch (err) {
      this.fail(scenario, 'setup', err);
      await restart();
    } finally {
      await dispose();
      await this.stopFlooder();
    }
  }
}

function describeFlood(scenario, summary) {
  const lines = [];
  for (const [kind, f] of Object.entries(summary.flood.kinds)) {
    const q = f.quiet;
    const fl = f.flooded;
    lines.push(
      `    ${kind}: p99 ${num(q.p99?.median)} ms alone, ${num(fl.p99?.median)} ms flooded (× ${num(f.p99Ratio?.median)}); ` +
        `flooder sent ${num(fl.floodSendRate?.median)}/s, the application got ${num(fl.floodDeliveredRate?.median)}/s` +
        `${fl.floodDroppedRate ? `, dropped ${num(fl.floodDroppedRate.median)}/s` : ''}; ` +
        `server CPU ${num(100 * (q.cpuShare?.median ?? NaN))}% alone, ${num(100 * (fl.cpuShare?.median ?? NaN))}% flooded`,
    );
  }
  return lines.join('\n');
}

function describeRow(scenario, summary) {
  if (scenario.measure === 'flood') return describeFlood(scenario, summary);
  const k = summary.kinds;
  const show = (metric, unit) =>
    scenario.kinds.map((kind) => `${kind} ${num(k[kind]?.[metric]?.median)}`).join(', ') +
    ` ${unit}` +
    Object.entries(summary.ratios)
      .filter(([, ratios]) => ratios[metric])
      .map(([kind, ratios]) => `; ours/${kind} ${ratios[metric].median.toFixed(2)}`)
      .join('');
  const parts = [];
  if (scenario.measure === 'throughput') {
    parts.push(`CPU ${show('cpuPerOp', 'µs/op')}`);
    parts.push(`rate ${scenario.kinds.map((kind) => `${kind} ${num(k[kind]?.rate?.median)}`).join(', ')} /s`);
    parts.push(`p99 ${scenario.kinds.map((kind) => `${kind} ${num(k[kind]?.p99?.median)}`).join(', ')} ms`);
  } else {
    parts.push(`heap ${show('heapPerSession', 'B/session')}`);
    parts.push(`RSS ${show('rssPerSession', 'B/session')}`);
    if (scenario.heartbeat) parts.push(`CPU ${show('cpuPerOp', 'µs/session-s')}`);
  }
  return parts.map((p) => `    ${p}`).join('\n');
}

function environment(mode) {
  const cores = os.cpus().length;
  const taskset = hasTaskset();
  const pinned = cores >= 2 && taskset;
  const pinReason = pinned ? null : cores < 2 ? 'fewer than 2 cores' : 'taskset not found';
  const limits = fileLimits();
  // A generator or server holding N sessions needs N descriptors, and some to spare.
  const needed = Math.max(mode.idleLarge, mode.idleSmall) + 1024;
  let raiseTo = null;
  let idleCap = Infinity;
  let note = `soft limit ${limits.soft}, enough`;
  if (limits.soft < needed) {
    if (limits.hard >= needed) {
      raiseTo = needed;
      note = `soft limit ${limits.soft} raised to ${needed} in each child with \`ulimit -n\` (hard limit ${limits.hard})`;
    } else {
      raiseTo = limits.hard;
      idleCap = limits.hard - 1024;
      note = `hard limit ${limits.hard} is below ${needed}: idle session counts capped at ${idleCap}`;
    }
  }
  return {
    pinned,
    pinReason,
    taskset,
    files: { ...limits, raiseTo, idleCap, note },
    machine: {
      cores,
      cpuModel: cpuModel(),
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
    },
  };
}

/**
 * A copy of dist/ for the whole run, so that a rebuild during the run cannot change ours between
 * rounds (nor catch a server starting while files are half written). It is removed on exit.
 */
function snapshotDist() {
  // Copies left by runs killed outright are older than any run can last (see the watchdog).
  for (const name of fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('sockjs-rx-bench-dist-'))) {
    const stale = path.join(os.tmpdir(), name);
    if (Date.now() - fs.statSync(stale).mtimeMs > WATCHDOG_MS + 60000) fs.rmSync(stale, { recursive: true, force: true });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-rx-bench-dist-'));
  fs.cpSync(path.join(ROOT, 'dist'), dir, { recursive: true });
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function commit() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} (lib/ modified)` : head;
  } catch {
    return 'unknown';
  }
}

function select(list, only) {
  if (!only || only.length === 0) return list;
  return list.filter((s) => only.some((prefix) => s.id.startsWith(prefix)));
}

async function benchmark(args, mode, env) {
  const all = scenarios(mode, { idleCap: env.files.idleCap });
  // The relay rows run a redis-server of their own: without one on the PATH they are left out.
  const redisServer = onPath('redis-server');
  if (!redisServer && all.some((s) => s.needs === 'redis-server')) {
    console.log('The relay scenarios are left out: no redis-server on the PATH (apt-get install -y redis-server)');
  }
  const chosen = select(
    all.filter((s) => s.needs !== 'redis-server' || redisServer),
    args.only,
  );
  const bench = new Bench(mode, env);
  await bench.startGenerator();
  const started = Date.now();
  const summaries = [];
  for (const scenario of chosen) {
    const t0 = Date.now();
    let rounds;
    try {
      rounds = await bench.runScenario(scenario);
    } catch (err) {
      // Even a generator that cannot be restarted leaves the results so far worth writing.
      bench.fail(scenario, 'run', err);
      break;
    }
    const summary = summarise(rounds);
    if (scenario.measure === 'flood') summary.flood = summariseFlood(rounds, scenario.kinds);
    summaries.push({
      id: scenario.id,
      title: scenario.title,
      op: scenario.op,
      measure: scenario.measure,
      heartbeat: !!scenario.heartbeat,
      note: scenario.note,
      latency: scenario.latency,
      serverOptions: scenario.serverOptions ?? {},
      timing: bench.timing(scenario),
      load: scenario.load('ours'),
      ...(scenario.flood ? { flood: scenario.flood('ours') } : {}),
      ...(scenario.metricsCost ? { metricsCost: true } : {}),
      rounds,
      ...summary,
    });
    console.log(`  ${scenario.id} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${describeRow(scenario, summary)}`);
  }
  if (bench.generator) await bench.generator.stop();
  await bench.stopFlooder();
  const results = {
    date: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    durationSeconds: (Date.now() - started) / 1000,
    machine: env.machine,
    versions: { ours: version('ours'), sockjs: version('sockjs'), ws: version('ws'), 'engine.io': version('engine.io') },
    wsMasking: wsMasking(),
    commit: env.commit,
    pinned: env.pinned,
    pinReason: env.pinReason,
    cores: env.pinned ? { server: SERVER_CORE, generator: GENERATOR_CORE } : null,
    files: env.files,
    config: { ...mode, inflightPerSession: INFLIGHT },
    scenarios: summaries,
    errors: bench.errors,
    warnings: bench.warnings,
  };
  results.targets = evaluateTargets(TARGETS, results);
  results.floodTargets = evaluateFloodTargets(FLOOD_TARGETS, results);
  const files = writeResults(results, RESULTS, { partial: !!args.only });
  console.log(`\nTargets (ours/sockjs, median of rounds):`);
  for (const t of results.targets.filter((x) => x.status !== 'not measured')) {
    const limit = t.against === 'sockjs' ? `≤ ${t.max}` : `≤ ${t.max} × ${t.against}`;
    console.log(`  ${t.status.padEnd(6)} ${(t.ratio === null ? '–' : t.ratio.toFixed(2)).padStart(5)} ${limit}  ${t.target}: ${t.title}`);
  }
  for (const t of results.floodTargets.filter((x) => x.status !== 'not measured')) {
    console.log(`  ${t.status.padEnd(6)} ${num(t.measured).padStart(5)} ≤ ${num(t.max)}  ${t.target}`);
  }
  console.log(`\nDone in ${results.durationSeconds.toFixed(0)} s, ${bench.errors.length} errors. Wrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  return bench.errors.length ? 1 : 0;
}

/** The full path of `command` on the PATH, or null. */
function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** The scenarios with the worst CPU ratios in the latest results, worst first. */
function worstScenarios(all, n = 4) {
  const file = path.join(RESULTS, 'latest.json');
  if (!fs.existsSync(file)) return all.filter((s) => s.measure === 'throughput').slice(0, n).map((s) => s.id);
  const latest = JSON.parse(fs.readFileSync(file, 'utf8'));
  return latest.scenarios
    .filter((s) => s.ratios?.sockjs?.cpuPerOp && all.some((x) => x.id === s.id))
    .sort((a, b) => b.ratios.sockjs.cpuPerOp.median - a.ratios.sockjs.cpuPerOp.median)
    .slice(0, n)
    .map((s) => s.id);
}

async function profileRuns(args, mode, env) {
  const all = scenarios(mode, { idleCap: env.files.idleCap });
  const ids = args.profile.length ? select(all, args.profile).map((s) => s.id) : worstScenarios(all);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-rx-bench-profile-'));
  // A longer window than a round's, for enough samples. The profiler's own sampling keeps an idle
  // server at about 15% of a core: a server settles below 30%.
  const profileMode = { ...mode, windowMs: Math.max(3000, mode.windowMs), minWindowMs: 3000, idleWindowMs: Math.max(4000, mode.idleWindowMs), idleShare: 0.3 };
  const bench = new Bench(profileMode, env);
  await bench.startGenerator();
  const kind = args.profileServer;
  console.log(`Profiling ${kind} (node --cpu-prof) on: ${ids.join(', ')}\nProfiles under ${dir}\n`);
  for (const id of ids) {
    const scenario = all.find((s) => s.id === id);
    const sub = path.join(dir, id);
    fs.mkdirSync(sub);
    let window = {};
    if (!scenario.kinds.includes(kind)) {
      console.log(`${id}: ${kind} does not take part\n`);
      continue;
    }
    const server = await bench.startServer(kind, scenario.serverOptions, ['--cpu-prof', `--cpu-prof-dir=${sub}`, '--cpu-prof-interval=200']);
    const hooks = { window: (from, to) => (window = { from, to }) };
    try {
      let result;
      if (scenario.measure === 'idle') result = await bench.idleRound(scenario, kind, server, hooks);
      else if (scenario.measure === 'flood') {
        // The server under flood: one unmeasured flooded round warms it up, the next is profiled.
        if (!bench.flooder) await bench.startFlooder();
        await bench.setup(scenario, kind, server);
        await bench.flooder.request('setup', { key: kind, port: server.port, load: scenario.flood(kind) }, 30000);
        await bench.floodRound(scenario, kind, server, true);
        result = await bench.floodRound(scenario, kind, server, true, hooks);
        await bench.teardown(kind);
        console.log(
          `  flooded: well-behaved p99 ${num(result.p99)} ms, flooder sent ${num(result.floodSendRate)}/s, the application got ${num(result.floodDeliveredRate)}/s, server CPU ${num(100 * result.cpuShare)}%`,
        );
      } else {
        await bench.setup(scenario, kind, server);
        // Warm the JIT up first: the profile is of the steady state.
        await bench.generator.request('start', { key: kind });
        await sleep(1000);
        await bench.generator.request('pause', { key: kind }, 30000);
        result = await bench.throughputRound(kind, server, hooks, bench.timing(scenario));
        await bench.teardown(kind);
      }
      await server.stop();
      const [file] = fs.readdirSync(sub).filter((f) => f.endsWith('.cpuprofile'));
      console.log(`${scenario.title} (${id}): ${scenario.measure !== 'idle' ? `${num(result.rate)} ops/s, ` : ''}${num(result.cpuPerOp)} µs/op`);
      if (!file) console.log('  no profile was written');
      else console.log(`${profile.format(profile.analyse(path.join(sub, file), window, env.ours))}\n  ${path.join(sub, file)}\n`);
    } catch (err) {
      console.error(`  ! ${id}: ${err.message}`);
      server.kill();
      await bench.restartGenerator();
    }
  }
  await bench.generator.stop();
  await bench.stopFlooder();
  return 0;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const mode = { ...(args.quick ? MODES.quick : MODES.full) };
  if (args.rounds) mode.rounds = mode.idleRounds = args.rounds;
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const env = environment(mode);
  env.ours = snapshotDist();
  env.commit = commit();
  const m = env.machine;
  console.log(`sockjs-rx benchmark (${args.profile ? 'profile' : args.quick ? 'quick' : 'full'}): ${m.cores} cores, ${m.cpuModel}, Node ${m.node}`);
  console.log(
    env.pinned
      ? `Pinned with taskset: servers on core ${SERVER_CORE}, load generator on core ${GENERATOR_CORE}`
      : `Not pinned: ${env.pinReason}`,
  );
  console.log(`Open files: ${env.files.note}`);
  console.log(`Websocket unmasking in ws: ${wsMasking()}`);
  console.log(
    `${mode.rounds} interleaved rounds (${mode.idleRounds} of the idle scenarios), ${mode.warmupMs} ms warm-up, ${mode.windowMs} ms window\n`,
  );
  return args.profile ? profileRuns(args, mode, env) : benchmark(args, mode, env);
}

// A hung child or a lost IPC answer must not keep the run alive forever.
const WATCHDOG_MS = 30 * 60 * 1000;
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60000} minutes; giving up`);
  killAll();
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();

main().then(
  (code) => {
    killAll();
    process.exitCode = code;
  },
  (err) => {
    console.error(err.stack || err);
    killAll();
    process.exitCode = 1;
  },
);
