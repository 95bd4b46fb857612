/**
 * `sockjs-rx/prometheus`: the exposition of hand-made snapshots, exact to the byte, through a real
 * server whose `metrics()` is stubbed; then a real server scraped over HTTP, its exposition linted
 * by Debian's promtool and parsed by Debian's Python client (python3-prometheus-client). Without
 * those two (`.ci/run` installs them for CI) that part is skipped with one line, unless CI=true,
 * where it fails.
 */
import { spawnSync } from 'child_process';
import { randomUUID } from 'crypto';
import { existsSync } from 'fs';
import { createServer as createHttpServer } from 'http';
import { Counter, Gauge, type OpenMetricsContentType, Registry, register as defaultRegistry } from 'prom-client';
import { findCommands, suiteNeeding, type Tools } from './helpers/debian-tools';
import { listen, type Running } from './helpers/server';
import { type Client, connectWs } from './helpers/ws-client';
import { createServer, type Server } from '../lib';
import type { MetricsSnapshot, RefusalCause } from '../lib/metrics';
import { DEFAULT_METRIC_PREFIX, FAMILIES, prefixLabel, registerMetrics } from '../lib/prometheus';

/**
 * Debian's python3-prometheus-client is installed for Debian's own interpreter: a python3 found
 * earlier on PATH (pyenv, a virtualenv) would not import it.
 */
const DEBIAN_PYTHON = '/usr/bin/python3';
const PYTHON_PARSER = '/usr/lib/python3/dist-packages/prometheus_client/parser.py';

function prometheusTools(): Tools<'promtool' | 'python3'> {
  const promtool = findCommands({ promtool: 'prometheus' });
  const parser = existsSync(DEBIAN_PYTHON) && existsSync(PYTHON_PARSER);
  if (promtool.ok && parser) return { ok: true, paths: { promtool: promtool.paths.promtool, python3: DEBIAN_PYTHON } };
  const missing = [...(promtool.ok ? [] : ['promtool']), ...(parser ? [] : [`${DEBIAN_PYTHON} with prometheus_client`])];
  return { ok: false, reason: `${missing.join(', ')} not found; install it with 'apt-get install -y prometheus python3-prometheus-client'` };
}

const tools = suiteNeeding('prometheus exposition suite', prometheusTools());

/** The bound of each run of promtool or Python. */
const TOOL_MS = 10_000;

const zeroRefusals = (): Record<RefusalCause, number> => ({ origin: 0, size: 0, rate: 0, cap: 0, authorization: 0, bad_input: 0 });

/** Two prefixes, the root among them, with every figure told apart from the others. */
const SNAPSHOT: MetricsSnapshot = {
  time: 1_700_000_000_000,
  prefixes: {
    '': {
      sessionsOpen: { websocket: 2, 'xhr-streaming': 0 },
      sessionsOpened: { websocket: 5, 'xhr-streaming': 1 },
      sessionsClosed: { '1000': 3, '3000': 1 },
      messagesReceived: 10,
      messagesSent: 12,
      messagesDropped: 1,
      bytesReceived: 250,
      bytesSent: 300,
      bytesQueued: 42,
      heartbeats: 7,
      deadPeers: 1,
      refused: { origin: 2, size: 0, rate: 4, cap: 0, authorization: 1, bad_input: 3 },
    },
    '/chat': {
      sessionsOpen: { eventsource: 1 },
      sessionsOpened: { eventsource: 1 },
      sessionsClosed: {},
      messagesReceived: 0,
      messagesSent: 4,
      messagesDropped: 0,
      bytesReceived: 0,
      bytesSent: 20,
      bytesQueued: 0,
      heartbeats: 0,
      deadPeers: 0,
      refused: { ...zeroRefusals(), cap: 5 },
    },
  },
  bus: { published: 9, publishFailed: 1, publishDropped: 2, relayed: 6, relayFailed: 1 },
};

const EXPOSITION = [
  '# HELP sockjs_sessions_open Sessions open now, by transport.',
  '# TYPE sockjs_sessions_open gauge',
  'sockjs_sessions_open{prefix="/",transport="websocket"} 2',
  'sockjs_sessions_open{prefix="/",transport="xhr-streaming"} 0',
  'sockjs_sessions_open{prefix="/chat",transport="eventsource"} 1',
  '',
  '# HELP sockjs_sessions_opened_total Sessions opened, by transport.',
  '# TYPE sockjs_sessions_opened_total counter',
  'sockjs_sessions_opened_total{prefix="/",transport="websocket"} 5',
  'sockjs_sessions_opened_total{prefix="/",transport="xhr-streaming"} 1',
  'sockjs_sessions_opened_total{prefix="/chat",transport="eventsource"} 1',
  '',
  '# HELP sockjs_sessions_closed_total Sessions closed, by the code of their close.',
  '# TYPE sockjs_sessions_closed_total counter',
  'sockjs_sessions_closed_total{prefix="/",code="1000"} 3',
  'sockjs_sessions_closed_total{prefix="/",code="3000"} 1',
  '',
  '# HELP sockjs_messages_received_total Messages from clients handed to the application.',
  '# TYPE sockjs_messages_received_total counter',
  'sockjs_messages_received_total{prefix="/"} 10',
  'sockjs_messages_received_total{prefix="/chat"} 0',
  '',
  '# HELP sockjs_messages_sent_total Messages the application sent.',
  '# TYPE sockjs_messages_sent_total counter',
  'sockjs_messages_sent_total{prefix="/"} 12',
  'sockjs_messages_sent_total{prefix="/chat"} 4',
  '',
  '# HELP sockjs_messages_dropped_total Messages from clients that went nowhere: over a rate limit, or come while their session closed.',
  '# TYPE sockjs_messages_dropped_total counter',
  'sockjs_messages_dropped_total{prefix="/"} 1',
  'sockjs_messages_dropped_total{prefix="/chat"} 0',
  '',
  '# HELP sockjs_received_bytes_total Bytes of the payloads clients sent.',
  '# TYPE sockjs_received_bytes_total counter',
  'sockjs_received_bytes_total{prefix="/"} 250',
  'sockjs_received_bytes_total{prefix="/chat"} 0',
  '',
  '# HELP sockjs_sent_bytes_total UTF-8 bytes of the messages the application sent.',
  '# TYPE sockjs_sent_bytes_total counter',
  'sockjs_sent_bytes_total{prefix="/"} 300',
  'sockjs_sent_bytes_total{prefix="/chat"} 20',
  '',
  '# HELP sockjs_queued_bytes Bytes written to open sessions and not yet taken by their clients.',
  '# TYPE sockjs_queued_bytes gauge',
  'sockjs_queued_bytes{prefix="/"} 42',
  'sockjs_queued_bytes{prefix="/chat"} 0',
  '',
  '# HELP sockjs_heartbeats_total Heartbeat frames sent.',
  '# TYPE sockjs_heartbeats_total counter',
  'sockjs_heartbeats_total{prefix="/"} 7',
  'sockjs_heartbeats_total{prefix="/chat"} 0',
  '',
  '# HELP sockjs_dead_peers_total Websocket peers closed for answering no ping within a heartbeat interval.',
  '# TYPE sockjs_dead_peers_total counter',
  'sockjs_dead_peers_total{prefix="/"} 1',
  'sockjs_dead_peers_total{prefix="/chat"} 0',
  '',
  '# HELP sockjs_refused_total Requests, handshakes and messages refused, by cause.',
  '# TYPE sockjs_refused_total counter',
  'sockjs_refused_total{prefix="/",cause="origin"} 2',
  'sockjs_refused_total{prefix="/",cause="size"} 0',
  'sockjs_refused_total{prefix="/",cause="rate"} 4',
  'sockjs_refused_total{prefix="/",cause="cap"} 0',
  'sockjs_refused_total{prefix="/",cause="authorization"} 1',
  'sockjs_refused_total{prefix="/",cause="bad_input"} 3',
  'sockjs_refused_total{prefix="/chat",cause="origin"} 0',
  'sockjs_refused_total{prefix="/chat",cause="size"} 0',
  'sockjs_refused_total{prefix="/chat",cause="rate"} 0',
  'sockjs_refused_total{prefix="/chat",cause="cap"} 5',
  'sockjs_refused_total{prefix="/chat",cause="authorization"} 0',
  'sockjs_refused_total{prefix="/chat",cause="bad_input"} 0',
  '',
  '# HELP sockjs_bus_published_total Messages published on channels by this server.',
  '# TYPE sockjs_bus_published_total counter',
  'sockjs_bus_published_total 9',
  '',
  '# HELP sockjs_bus_publish_failed_total Publishes the bus could not make.',
  '# TYPE sockjs_bus_publish_failed_total counter',
  'sockjs_bus_publish_failed_total 1',
  '',
  '# HELP sockjs_bus_publish_dropped_total Publishes the bus dropped, held past its limit.',
  '# TYPE sockjs_bus_publish_dropped_total counter',
  'sockjs_bus_publish_dropped_total 2',
  '',
  '# HELP sockjs_relayed_total Messages relayed to other processes.',
  '# TYPE sockjs_relayed_total counter',
  'sockjs_relayed_total 6',
  '',
  '# HELP sockjs_relay_failed_total Messages that could not be relayed to other processes.',
  '# TYPE sockjs_relay_failed_total counter',
  'sockjs_relay_failed_total 1',
].join('\n') + '\n';

/** SNAPSHOT with other bus figures. */
const withBus = (bus: Partial<MetricsSnapshot['bus']>): MetricsSnapshot => ({ ...SNAPSHOT, bus: { ...SNAPSHOT.bus, ...bus } });

describe('registerMetrics', () => {
  let server: Server;
  let registry: Registry;
  let metrics: jest.SpyInstance<MetricsSnapshot, []>;

  beforeEach(() => {
    server = createServer({ log: () => undefined });
    metrics = jest.spyOn(server, 'metrics').mockReturnValue(SNAPSHOT);
    registry = new Registry();
  });

  afterEach(() => {
    server.close();
  });

  it('exposes a snapshot as the Prometheus text format, counters typed counter and every refusal cause listed', async () => {
    registerMetrics(server, { registry });
    expect(await registry.metrics()).toBe(EXPOSITION);
  });

  it('asks the server for one snapshot per scrape, shared by every metric', async () => {
    registerMetrics(server, { registry });
    await registry.metrics();
    expect(metrics).toHaveBeenCalledTimes(1);
    await registry.getMetricsAsJSON();
    expect(metrics).toHaveBeenCalledTimes(2);
  });

  it('sets each counter to the figure of the latest snapshot instead of adding snapshots up', async () => {
    registerMetrics(server, { registry });
    metrics.mockReturnValueOnce(withBus({ published: 5 })).mockReturnValueOnce(withBus({ published: 7 }));
    expect(await registry.getSingleMetricAsString('sockjs_bus_published_total')).toMatch(/\nsockjs_bus_published_total 5$/);
    expect(await registry.getSingleMetricAsString('sockjs_bus_published_total')).toMatch(/\nsockjs_bus_published_total 7$/);
  });

  it('drops the series of a transport or prefix the latest snapshot no longer has', async () => {
    registerMetrics(server, { registry });
    await registry.metrics();
    metrics.mockReturnValue({ ...SNAPSHOT, prefixes: { '/chat': SNAPSHOT.prefixes['/chat']! } });
    expect(await registry.getSingleMetricAsString('sockjs_sessions_open')).toBe(
      [
        '# HELP sockjs_sessions_open Sessions open now, by transport.',
        '# TYPE sockjs_sessions_open gauge',
        'sockjs_sessions_open{prefix="/chat",transport="eventsource"} 1',
      ].join('\n'),
    );
  });

  it('puts the prefix option before every metric name', () => {
    registerMetrics(server, { registry, prefix: 'chat_' });
    expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual(FAMILIES.map((family) => `chat_${family.name}`));
    expect(DEFAULT_METRIC_PREFIX).toBe('sockjs_');
  });

  it('shows the root prefix as / and every other prefix as it is served', () => {
    expect([prefixLabel(''), prefixLabel('/chat'), prefixLabel('/a/b')]).toEqual(['/', '/chat', '/a/b']);
  });

  it('registers in prom-client\'s default registry when given none', async () => {
    const unregister = registerMetrics(server);
    try {
      expect(await defaultRegistry.getSingleMetricAsString('sockjs_relayed_total')).toMatch(/\nsockjs_relayed_total 6$/);
    } finally {
      unregister();
    }
    expect(defaultRegistry.getSingleMetric('sockjs_relayed_total')).toBeUndefined();
  });

  it('takes its metrics out of the registry when unregistered, leaving the others, and asks the server no more', async () => {
    const other = new Gauge({ name: 'app_users', help: 'Users.', registers: [registry] });
    const unregister = registerMetrics(server, { registry });
    unregister();
    unregister();
    expect(registry.getMetricsAsArray()).toEqual([other]);
    await registry.metrics();
    expect(metrics).not.toHaveBeenCalled();
  });

  it('leaves a metric that took one of its names since, when unregistered', () => {
    const unregister = registerMetrics(server, { registry });
    registry.removeSingleMetric('sockjs_heartbeats_total');
    const other = new Counter({ name: 'sockjs_heartbeats_total', help: 'Someone else\'s.', registers: [registry] });
    unregister();
    expect(registry.getMetricsAsArray()).toEqual([other]);
  });

  it('throws when a name is taken and leaves the registry as it was', () => {
    const other = new Counter({ name: 'sockjs_heartbeats_total', help: 'Someone else\'s.', registers: [registry] });
    expect(() => registerMetrics(server, { registry })).toThrow('A metric with the name sockjs_heartbeats_total has already been registered.');
    expect(registry.getMetricsAsArray()).toEqual([other]);
  });

  it('throws on a prefix that makes names invalid, registering nothing', () => {
    expect(() => registerMetrics(server, { registry, prefix: 'sock-js ' })).toThrow('Invalid metric name');
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('exposes counters the OpenMetrics way in an OpenMetrics registry, and still unregisters after a scrape', async () => {
    const openMetrics = new Registry<OpenMetricsContentType>();
    openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const unregister = registerMetrics(server, { registry: openMetrics });
    const text = await openMetrics.metrics();
    expect(text).toContain(
      [
        '# HELP sockjs_bus_published Messages published on channels by this server.',
        '# TYPE sockjs_bus_published counter',
        'sockjs_bus_published_total 9',
      ].join('\n'),
    );
    expect(text.endsWith('\n# EOF\n')).toBe(true);
    unregister();
    expect(openMetrics.getMetricsAsArray()).toEqual([]);
  });
});

/** One metric family as Python's prometheus_client parses it: counters are named without `_total`. */
interface ParsedFamily {
  readonly name: string;
  readonly type: string;
  readonly samples: ReadonlyArray<[name: string, labels: Record<string, string>, value: number]>;
}

const PARSE = [
  'import json, sys',
  'from prometheus_client.parser import text_string_to_metric_families',
  'families = text_string_to_metric_families(sys.stdin.read())',
  'print(json.dumps([{"name": f.name, "type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]} for f in families]))',
].join('\n');

/** The family types Python's parser reads from the `# TYPE` lines. */
const PARSED_TYPES: Record<string, string> = {
  sockjs_sessions_open: 'gauge',
  sockjs_sessions_opened: 'counter',
  sockjs_sessions_closed: 'counter',
  sockjs_messages_received: 'counter',
  sockjs_messages_sent: 'counter',
  sockjs_messages_dropped: 'counter',
  sockjs_received_bytes: 'counter',
  sockjs_sent_bytes: 'counter',
  sockjs_queued_bytes: 'gauge',
  sockjs_heartbeats: 'counter',
  sockjs_dead_peers: 'counter',
  sockjs_refused: 'counter',
  sockjs_bus_published: 'counter',
  sockjs_bus_publish_failed: 'counter',
  sockjs_bus_publish_dropped: 'counter',
  sockjs_relayed: 'counter',
  sockjs_relay_failed: 'counter',
};

/** PrefixMetrics as it is filled in, field by field. */
interface PrefixFigures {
  sessionsOpen: Record<string, number>;
  sessionsOpened: Record<string, number>;
  sessionsClosed: Record<string, number>;
  messagesReceived: number;
  messagesSent: number;
  messagesDropped: number;
  bytesReceived: number;
  bytesSent: number;
  bytesQueued: number;
  heartbeats: number;
  deadPeers: number;
  refused: Record<RefusalCause, number>;
}

/** A snapshot (without its time) read back from parsed families: what a Prometheus server would store. */
function snapshotOf(families: readonly ParsedFamily[]): Omit<MetricsSnapshot, 'time'> {
  const prefixes: Record<string, PrefixFigures> = {};
  const bus: { -readonly [K in keyof MetricsSnapshot['bus']]: number } = { published: 0, publishFailed: 0, publishDropped: 0, relayed: 0, relayFailed: 0 };
  const of = (label: string | undefined): PrefixFigures => {
    if (label === undefined) throw new Error('a sample without a prefix label');
    return (prefixes[label === '/' ? '' : label] ??= {
      sessionsOpen: {},
      sessionsOpened: {},
      sessionsClosed: {},
      messagesReceived: 0,
      messagesSent: 0,
      messagesDropped: 0,
      bytesReceived: 0,
      bytesSent: 0,
      bytesQueued: 0,
      heartbeats: 0,
      deadPeers: 0,
      refused: {} as Record<RefusalCause, number>,
    });
  };
  for (const family of families) {
    for (const [name, labels, value] of family.samples) {
      const { prefix, transport = '', code = '', cause = '' } = labels;
      switch (name) {
        case 'sockjs_sessions_open': of(prefix).sessionsOpen[transport] = value; break;
        case 'sockjs_sessions_opened_total': of(prefix).sessionsOpened[transport] = value; break;
        case 'sockjs_sessions_closed_total': of(prefix).sessionsClosed[code] = value; break;
        case 'sockjs_messages_received_total': of(prefix).messagesReceived = value; break;
        case 'sockjs_messages_sent_total': of(prefix).messagesSent = value; break;
        case 'sockjs_messages_dropped_total': of(prefix).messagesDropped = value; break;
        case 'sockjs_received_bytes_total': of(prefix).bytesReceived = value; break;
        case 'sockjs_sent_bytes_total': of(prefix).bytesSent = value; break;
        case 'sockjs_queued_bytes': of(prefix).bytesQueued = value; break;
        case 'sockjs_heartbeats_total': of(prefix).heartbeats = value; break;
        case 'sockjs_dead_peers_total': of(prefix).deadPeers = value; break;
        case 'sockjs_refused_total': of(prefix).refused[cause as RefusalCause] = value; break;
        case 'sockjs_bus_published_total': bus.published = value; break;
        case 'sockjs_bus_publish_failed_total': bus.publishFailed = value; break;
        case 'sockjs_bus_publish_dropped_total': bus.publishDropped = value; break;
        case 'sockjs_relayed_total': bus.relayed = value; break;
        case 'sockjs_relay_failed_total': bus.relayFailed = value; break;
        default: throw new Error(`an unexpected sample ${name}`);
      }
    }
  }
  return { prefixes, bus };
}

(tools.run ? describe : describe.skip)('the exposition, read by Prometheus tools', () => {
  let paths: Record<'promtool' | 'python3', string>;

  beforeAll(() => {
    if (!tools.paths) throw new Error(`CI=true and no Prometheus tools: ${tools.reason}`);
    paths = tools.paths;
  });

  /** What promtool's linter says of `text`: nothing, with status 0, when it has no complaint. */
  const lint = (text: string) => {
    const run = spawnSync(paths.promtool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: TOOL_MS });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  };

  const parse = (text: string): ParsedFamily[] => {
    const run = spawnSync(paths.python3, ['-c', PARSE], { input: text, encoding: 'utf8', timeout: TOOL_MS });
    if (run.status !== 0) throw new Error(`the parser failed (${run.status ?? run.signal}): ${run.stderr}`);
    return JSON.parse(run.stdout) as ParsedFamily[];
  };

  it('passes promtool\'s lint and reads back as the snapshot it was made from', async () => {
    const server = createServer({ log: () => undefined });
    jest.spyOn(server, 'metrics').mockReturnValue(SNAPSHOT);
    const registry = new Registry();
    registerMetrics(server, { registry });
    const text = await registry.metrics();
    server.close();
    expect(lint(text)).toEqual({ status: 0, stdout: '', stderr: '' });
    const families = parse(text);
    expect(Object.fromEntries(families.map((family) => [family.name, family.type]))).toEqual(PARSED_TYPES);
    const { time: _time, ...figures } = SNAPSHOT;
    expect(snapshotOf(families)).toEqual(figures);
  });

  it('hears promtool object to a gauge named like a counter, so that its silence on ours means something', () => {
    const gauge = '# HELP x_total A gauge.\n# TYPE x_total gauge\nx_total 1\n';
    expect(lint(gauge)).toMatchObject({ status: 3, stderr: expect.stringContaining('x_total non-counter metrics should not have "_total" suffix') });
  });

  describe('scraped from a live server', () => {
    let sockjs: Server;
    let running: Running;
    let client: Client | null = null;
    let unregister: () => void;

    beforeEach(async () => {
      sockjs = createServer({ prefix: '/echo', log: () => undefined });
      sockjs.on('connection', (connection) => connection.on('data', (message: string) => connection.write(message)));
      const registry = new Registry();
      unregister = registerMetrics(sockjs, { registry });
      const http = createHttpServer((req, res) => {
        if (req.url !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
          (error: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(error.message),
        );
      });
      sockjs.attach(http);
      running = await listen(http);
    });

    afterEach(async () => {
      client?.ws.terminate();
      client = null;
      unregister();
      sockjs.close();
      await running.close();
    });

    it('serves what the server counted, in a text promtool and Python read', async () => {
      client = await connectWs(`${running.url.replace('http', 'ws')}/echo/000/${randomUUID()}/websocket`);
      expect(await client.next()).toBe('o');
      client.ws.send('["hello"]');
      expect(await client.next()).toBe('a["hello"]');
      for (const message of ['one', 'two', 'three']) sockjs.broadcast(message);
      for (const message of ['one', 'two', 'three']) expect(await client.next()).toBe(`a["${message}"]`);

      const response = await fetch(`${running.url}/metrics`, { signal: AbortSignal.timeout(TOOL_MS) });
      const text = await response.text();
      // Nothing happens on the server between the scrape and this: no traffic, no timer due.
      const { time: _time, ...figures } = sockjs.metrics();

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(lint(text)).toEqual({ status: 0, stdout: '', stderr: '' });
      const families = parse(text);
      expect(Object.fromEntries(families.map((family) => [family.name, family.type]))).toEqual(PARSED_TYPES);
      const read = snapshotOf(families);
      expect(read).toEqual(figures);
      expect(read.bus.published).toBe(3);
      expect(read.prefixes['/echo']?.refused).toEqual(zeroRefusals());
    });
  });
});
