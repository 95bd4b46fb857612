'use strict';
/**
 * What the benchmark measures: the scenarios, the two run modes and the targets.
 *
 * A scenario names the servers it runs (`kinds`), the load the generator applies to each
 * (`load(kind)`), the server options, and how it is measured:
 *   throughput  warm up, then count operations, latency and server CPU over a window
 *   idle        open sessions and leave them: memory per session after a forced GC, and with
 *               `heartbeat` the server CPU they cost over a window
 *   flood       a throughput window of `load(kind)` alone and one with a flooder beside it
 *               (`flood(kind)`, run by a process of its own), on the same server, in turn
 * `fresh` scenarios get a new server process per run, so that memory starts from the same place.
 * `warmupMs` and `windowMs` on a scenario replace the mode's for its rounds.
 */

const MODES = {
  quick: {
    rounds: 3,
    idleRounds: 2,
    prewarmMs: 150,
    warmupMs: 100,
    windowMs: 200,
    idleSettleMs: 200,
    idleWindowMs: 1000,
    idleLarge: 1000,
    idleSmall: 500,
  },
  full: {
    rounds: 5,
    idleRounds: 3,
    prewarmMs: 700,
    warmupMs: 300,
    windowMs: 1000,
    idleSettleMs: 1000,
    idleWindowMs: 3000,
    idleLarge: 10000,
    idleSmall: 1000,
  },
};

/** Messages each websocket session keeps outstanding in the echo scenarios. */
const INFLIGHT = 4;

/**
 * The flood scenario's server limit: 100 messages per second per session, a burst of 1 s, over it
 * dropped. Its well-behaved sessions send at most 50 per second each (one every 20 ms), half of it.
 */
const FLOOD_LIMIT = { messages: 100, burst: 1, policy: 'drop' };
const FLOOD_PACE_MS = 20;

const size = (bytes) => (bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`);
const count = (n) => n.toLocaleString('en-US');
const plural = (n, word) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;

/**
 * @param {typeof MODES.quick} mode
 * @param {{ idleCap: number }} limits the most sessions one process may hold open (descriptors)
 */
function scenarios(mode, limits) {
  const span = mode.warmupMs + mode.windowMs + 5000;
  const bounded = (load) => ({ maxMs: span, maxOps: 5e6, ...load });
  // Rows that look for small differences, or for a p99, measure at least a second per round.
  const long = { warmupMs: Math.max(mode.warmupMs, 300), windowMs: Math.max(mode.windowMs, 1000) };
  const boundedLong = (load) => ({ maxMs: long.warmupMs + long.windowMs + 5000, maxOps: 5e6, ...load });
  const list = [];

  for (const framed of [true, false]) {
    for (const sessions of [1, 100, 1000]) {
      for (const bytes of [32, 4096]) {
        const name = framed ? 'websocket' : 'raw websocket';
        list.push({
          id: `${framed ? 'websocket' : 'raw-websocket'}-${sessions}-${bytes}`,
          title: `${name} echo, ${plural(sessions, 'session')}, ${size(bytes)}`,
          op: 'message',
          measure: 'throughput',
          kinds: framed ? ['ours', 'sockjs'] : ['ours', 'sockjs', 'ws'],
          load: () => bounded({ type: 'wsEcho', framed, sessions, size: bytes, inflight: INFLIGHT }),
        });
      }
    }
  }

  list.push(
    {
      id: 'xhr-streaming-push',
      title: 'xhr-streaming push, 10 sessions, 32 B',
      op: 'message',
      latency: 'a batch of 100 pushed messages, from the request to the last message',
      measure: 'throughput',
      kinds: ['ours', 'sockjs'],
      load: () => bounded({ type: 'xhrStreamingPush', sessions: 10, size: 32, batch: 100, inflight: 2 }),
    },
    {
      id: 'xhr-send',
      title: 'xhr_send, 10 sessions × 4 in flight, 32 B',
      op: 'request',
      measure: 'throughput',
      kinds: ['ours', 'sockjs', 'ws'],
      load: () => bounded({ type: 'xhrSend', sessions: 10, size: 32, inflight: 4 }),
    },
    {
      id: 'xhr-polling',
      title: 'xhr-polling round trip, 100 sessions, 32 B',
      op: 'round trip',
      measure: 'throughput',
      note: 'engine.io: the same round trip over engine.io 6 long-polling (GET poll, POST message)',
      kinds: ['ours', 'sockjs', 'ws', 'engine.io'],
      serverOptions: { floorPolls: true },
      load: (kind) => bounded({ type: kind === 'engine.io' ? 'eioPolling' : 'xhrPolling', sessions: 100, size: 32 }),
    },
    {
      id: 'new-websocket',
      title: 'new sessions, websocket (open until o, close), 8 at a time',
      op: 'session',
      measure: 'throughput',
      kinds: ['ours', 'sockjs', 'ws'],
      load: (kind) => bounded({ type: 'newSessions', transport: 'websocket', framed: kind !== 'ws', concurrency: 8, maxOps: 50000 }),
    },
    {
      id: 'new-xhr',
      title: 'new sessions, xhr (poll answered o), 8 at a time',
      op: 'session',
      note: 'disconnect_delay 200 ms, so that abandoned sessions expire inside the window',
      measure: 'throughput',
      kinds: ['ours', 'sockjs', 'ws'],
      serverOptions: { disconnect_delay: 200 },
      load: () => bounded({ type: 'newSessions', transport: 'xhr', concurrency: 8, maxOps: 200000 }),
    },
  );

  // Relay: requests served by a process that does not own their session (`relay: true`, over a
  // redis-server of the scenario's own), against the same requests served by the owner.
  list.push(
    {
      id: 'relay-xhr-send',
      title: 'xhr_send with relay: true, 10 sessions × 4 in flight, 32 B',
      op: 'request',
      measure: 'throughput',
      needs: 'redis-server',
      note: 'relayed: sent to a second process, which relays each to the owner over Redis; its CPU is both processes\' (Redis\'s own is not counted)',
      kinds: ['ours', 'relayed'],
      serverOptions: { relay: true },
      load: () => bounded({ type: 'xhrSend', sessions: 10, size: 32, inflight: 4 }),
    },
    {
      id: 'relay-xhr-polling',
      title: 'xhr-polling round trip with relay: true, 100 sessions, 32 B',
      op: 'round trip',
      measure: 'throughput',
      needs: 'redis-server',
      note: 'relayed: every send and poll goes to a second process, which relays it to the owner over Redis',
      kinds: ['ours', 'relayed'],
      serverOptions: { relay: true },
      load: () => bounded({ type: 'xhrPolling', sessions: 100, size: 32 }),
    },
  );

  // Fan-out: one message to n sessions, by server.broadcast() and by the application's loop.
  // sockjs has no broadcast(): its service loops in both. 10,000 sessions per server are more
  // than the generator holds for three servers at once, so that row runs them apart.
  for (const receivers of [100, 1000, 10000].filter((n) => n <= Math.min(mode.idleLarge, limits.idleCap))) {
    for (const via of ['broadcast', 'loop']) {
      list.push({
        id: `fanout-websocket-${receivers}-${via}`,
        title: `fan-out to ${plural(receivers, 'websocket session')} through ${via === 'broadcast' ? 'broadcast()' : 'a write() loop'}, 32 B`,
        op: 'delivered message',
        latency: 'from the request to the last session',
        measure: 'throughput',
        apart: receivers > 1000,
        kinds: ['ours', 'sockjs', 'ws'],
        serverOptions: { fanout: via },
        load: (kind) => bounded({ type: 'fanout', transport: 'websocket', floor: kind === 'ws', receivers, size: 32, inflight: 2 }),
      });
    }
  }
  // A larger message, where quoting and encoding it once for every session matters most.
  for (const via of ['broadcast', 'loop']) {
    list.push({
      id: `fanout-websocket-1000-4096-${via}`,
      title: `fan-out to 1,000 websocket sessions through ${via === 'broadcast' ? 'broadcast()' : 'a write() loop'}, 4 KB`,
      op: 'delivered message',
      latency: 'from the request to the last session',
      measure: 'throughput',
      kinds: ['ours', 'sockjs', 'ws'],
      serverOptions: { fanout: via },
      load: (kind) => bounded({ type: 'fanout', transport: 'websocket', floor: kind === 'ws', receivers: 1000, size: 4096, inflight: 2 }),
    });
  }
  const streams = Math.min(1000, mode.idleLarge, limits.idleCap);
  for (const via of ['broadcast', 'loop']) {
    list.push({
      id: `fanout-xhr-streaming-${streams}-${via}`,
      title: `fan-out to ${plural(streams, 'xhr-streaming session')} through ${via === 'broadcast' ? 'broadcast()' : 'a write() loop'}, 32 B`,
      op: 'delivered message',
      latency: 'from the request to the last session',
      measure: 'throughput',
      kinds: ['ours', 'sockjs', 'ws'],
      serverOptions: { fanout: via },
      load: (kind) => bounded({ type: 'fanout', transport: 'xhr-streaming', floor: kind === 'ws', receivers: streams, size: 32, inflight: 2 }),
    });
  }

  // A busy server: new sessions while 1,000 or 10,000 others are alive (open websockets; 10,000
  // in full runs only, and apart: the generator cannot hold 30,000 sockets). New xhr sessions
  // keep the default disconnect_delay, so the abandoned ones add some thousands more.
  for (const background of [1000, 10000].filter((n) => n <= Math.min(mode.idleLarge, limits.idleCap))) {
    list.push(
      {
        id: `busy-new-websocket-${background}`,
        title: `new websocket sessions, 8 at a time, while ${count(background)} others are open`,
        op: 'session',
        measure: 'throughput',
        apart: background > 1000,
        kinds: ['ours', 'sockjs', 'ws'],
        load: (kind) => bounded({ type: 'newSessions', transport: 'websocket', framed: kind !== 'ws', concurrency: 8, maxOps: 50000, background }),
      },
      {
        id: `busy-new-xhr-${background}`,
        title: `new xhr sessions, 8 at a time, while ${count(background)} others are open, default disconnect_delay`,
        op: 'session',
        measure: 'throughput',
        apart: background > 1000,
        kinds: ['ours', 'sockjs', 'ws'],
        load: (kind) => bounded({ type: 'newSessions', transport: 'xhr', framed: kind !== 'ws', concurrency: 8, maxOps: 200000, background }),
      },
    );
  }

  // A flood: 100 well-behaved websocket sessions echoing one message at a time, paced under the
  // rate limit, alone and then beside one session that sends as fast as its socket takes it.
  // The flooder runs in a process of its own on the generator's core, under SCHED_IDLE, so that
  // it has only the time the generator leaves and does not hold the generator up.
  list.push({
    id: 'flood-websocket',
    title: `websocket echo, 100 sessions × 1 in flight, at most ${1000 / FLOOD_PACE_MS}/s each, 32 B, with and without a flooder`,
    op: 'message',
    measure: 'flood',
    kinds: ['ours', 'sockjs'],
    ...long,
    note:
      `ours with rate_limit ${JSON.stringify(FLOOD_LIMIT)} (every session); sockjs has no rate limit. The flooder is one more websocket session of the same ` +
      'server sending `["!flood…"]` (32 B) as fast as its socket takes them, 256 frames per write; the service counts the ones it is handed and drops them',
    serverOptions: { rate_limit: FLOOD_LIMIT },
    load: () => boundedLong({ type: 'wsEcho', framed: true, sessions: 100, size: 32, inflight: 1, interval: FLOOD_PACE_MS }),
    flood: () => boundedLong({ type: 'flood', size: 32, batch: 256, maxOps: 5e7 }),
  });

  // The cost of counting: ours with `metrics: true` (the default) and with `metrics: false`.
  list.push(
    {
      id: 'metrics-websocket-100-32',
      title: 'websocket echo, 100 sessions, 32 B, metrics on and off',
      op: 'message',
      measure: 'throughput',
      metricsCost: true,
      kinds: ['ours', 'ours-nometrics'],
      ...long,
      load: () => boundedLong({ type: 'wsEcho', framed: true, sessions: 100, size: 32, inflight: INFLIGHT }),
    },
    {
      id: 'metrics-fanout-websocket-1000-broadcast',
      title: 'fan-out to 1,000 websocket sessions through broadcast(), 32 B, metrics on and off',
      op: 'delivered message',
      latency: 'from the request to the last session',
      measure: 'throughput',
      metricsCost: true,
      kinds: ['ours', 'ours-nometrics'],
      ...long,
      serverOptions: { fanout: 'broadcast' },
      load: () => boundedLong({ type: 'fanout', transport: 'websocket', floor: false, receivers: 1000, size: 32, inflight: 2 }),
    },
  );

  const small = Math.min(mode.idleSmall, limits.idleCap);
  const large = Math.min(mode.idleLarge, limits.idleCap);
  list.push(
    {
      id: 'idle-websocket-small',
      title: `idle websocket sessions, ${count(small)}`,
      op: 'session',
      measure: 'idle',
      fresh: true,
      sessions: small,
      kinds: ['ours', 'sockjs', 'ws'],
      load: (kind) => ({ type: 'idleSessions', transport: 'websocket', framed: kind !== 'ws', sessions: small }),
    },
    {
      id: 'idle-websocket-large',
      title: `idle websocket sessions, ${count(large)}, heartbeat_delay 1000 ms`,
      op: 'session-second',
      note: 'CPU per operation is per session per second: one heartbeat each',
      measure: 'idle',
      heartbeat: true,
      fresh: true,
      sessions: large,
      kinds: ['ours', 'sockjs', 'ws'],
      serverOptions: { heartbeat_delay: 1000 },
      load: (kind) => ({ type: 'idleSessions', transport: 'websocket', framed: kind !== 'ws', sessions: large }),
    },
    {
      id: 'idle-xhr-streaming',
      title: `idle xhr-streaming sessions, ${count(small)}`,
      op: 'session',
      measure: 'idle',
      fresh: true,
      sessions: small,
      kinds: ['ours', 'sockjs'],
      load: () => ({ type: 'idleSessions', transport: 'xhr-streaming', sessions: small }),
    },
  );
  // The heartbeats of idle HTTP sessions: one `h` frame each per interval, on a stream or as the
  // answer to a pending poll (which the client then makes again).
  for (const transport of ['xhr-streaming', 'xhr-polling']) {
    list.push({
      id: `heartbeat-${transport}`,
      title: `idle ${transport} sessions, ${count(small)}, heartbeat_delay 1000 ms`,
      op: 'session-second',
      note: transport === 'xhr-streaming' ? 'CPU per operation is per session per second: one h frame each' : 'CPU per operation is per session per second: a poll answered h, and the next poll',
      measure: 'idle',
      heartbeat: true,
      fresh: true,
      sessions: small,
      kinds: ['ours', 'sockjs'],
      serverOptions: { heartbeat_delay: 1000 },
      load: () => ({ type: 'idleSessions', transport, sessions: small }),
    });
  }
  return list;
}

/** The targets: ours/sockjs, median over rounds, at most `max`. */
const TARGETS = [
  { name: 'websocket 32 B, server CPU per message', metric: 'cpuPerOp', max: 0.85, scenarios: ['websocket-1-32', 'websocket-100-32', 'websocket-1000-32'] },
  { name: 'websocket 4 KB, server CPU per message', metric: 'cpuPerOp', max: 0.5, scenarios: ['websocket-1-4096', 'websocket-100-4096', 'websocket-1000-4096'] },
  { name: 'raw websocket 4 KB, server CPU per message', metric: 'cpuPerOp', max: 0.4, scenarios: ['raw-websocket-1-4096', 'raw-websocket-100-4096', 'raw-websocket-1000-4096'] },
  { name: 'xhr-streaming push, server CPU per message', metric: 'cpuPerOp', max: 0.5, scenarios: ['xhr-streaming-push'] },
  { name: 'xhr_send, server CPU per request', metric: 'cpuPerOp', max: 0.6, scenarios: ['xhr-send'] },
  { name: 'xhr-polling, server CPU per round trip', metric: 'cpuPerOp', max: 0.6, scenarios: ['xhr-polling'] },
  { name: 'new sessions, websocket, server CPU per session', metric: 'cpuPerOp', max: 0.8, scenarios: ['new-websocket'] },
  { name: 'new sessions, xhr, server CPU per session', metric: 'cpuPerOp', max: 0.7, scenarios: ['new-xhr'] },
  { name: 'heap per idle websocket session', metric: 'heapPerSession', max: 0.5, scenarios: ['idle-websocket-small', 'idle-websocket-large'] },
  { name: 'RSS per idle websocket session', metric: 'rssPerSession', max: 0.6, scenarios: ['idle-websocket-small', 'idle-websocket-large'] },
  { name: 'heartbeat CPU, idle websocket sessions', metric: 'cpuPerOp', max: 0.7, scenarios: ['idle-websocket-large'] },
  { name: 'heap per idle xhr-streaming session', metric: 'heapPerSession', max: 0.6, scenarios: ['idle-xhr-streaming'] },
  { name: 'RSS per idle xhr-streaming session', metric: 'rssPerSession', max: 0.6, scenarios: ['idle-xhr-streaming'] },
  {
    name: 'new sessions on a busy server, server CPU per session',
    metric: 'cpuPerOp',
    max: 0.8,
    scenarios: ['busy-new-websocket-1000', 'busy-new-websocket-10000', 'busy-new-xhr-1000', 'busy-new-xhr-10000'],
  },
  { name: 'xhr-polling against engine.io long-polling, server CPU per round trip', metric: 'cpuPerOp', against: 'engine.io', max: 1, scenarios: ['xhr-polling'] },
  {
    name: 'fan-out through broadcast(), server CPU per delivered message',
    metric: 'cpuPerOp',
    against: 'ws',
    max: 1.15,
    scenarios: [
      'fanout-websocket-100-broadcast',
      'fanout-websocket-1000-broadcast',
      'fanout-websocket-10000-broadcast',
      'fanout-websocket-1000-4096-broadcast',
      'fanout-xhr-streaming-1000-broadcast',
    ],
  },
  {
    name: 'fan-out through a write() loop, server CPU per delivered message',
    metric: 'cpuPerOp',
    max: 0.8,
    scenarios: ['fanout-websocket-100-loop', 'fanout-websocket-1000-loop', 'fanout-websocket-10000-loop', 'fanout-websocket-1000-4096-loop', 'fanout-xhr-streaming-1000-loop'],
  },
];

/**
 * The flood scenario's targets, for ours: the well-behaved sessions' p99 with the flooder at most
 * `p99Ratio` times their p99 without; the flooder's messages handed to the application at most
 * the rate limit, plus the burst spread over the window.
 */
const FLOOD_TARGETS = { p99Ratio: 2 };

module.exports = { MODES, INFLIGHT, scenarios, TARGETS, FLOOD_TARGETS };
