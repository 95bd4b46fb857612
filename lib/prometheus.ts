/**
 * `sockjs-rx/prometheus`: a server's `metrics()` as Prometheus metrics, through prom-client (an
 * optional peer dependency loaded only from this entry point).
 *
 *   const server = createServer({ prefix: '/chat' });
 *   const unregister = registerMetrics(server);          // in prom-client's default `register`
 *   const http = createHttpServer(async (req, res) => {
 *     if (req.url === '/metrics') res.writeHead(200, { 'Content-Type': register.contentType }).end(await register.metrics());
 *   });
 *   server.attach(http);
 *
 * Nothing runs on a timer: each metric fills itself from a snapshot in prom-client's `collect`
 * callback, and the metrics of one scrape share one snapshot, so a scrape costs one `metrics()`.
 */
import { Counter, Gauge, register as defaultRegistry, type Registry, type RegistryContentType } from 'prom-client';
import { type MetricsSnapshot, type PrefixMetrics, REFUSAL_CAUSES } from './metrics';
import type { Server } from './server';

/** Options of `registerMetrics`. */
export interface PrometheusOptions {
  /** Where the metrics are registered. Default: prom-client's default registry, `register`. */
  registry?: Registry<RegistryContentType>;
  /**
   * Put before every metric name, so that two servers can share a registry under different
   * names. It must keep the names valid (`[a-zA-Z_:][a-zA-Z0-9_:]*`). Default `sockjs_`.
   */
  prefix?: string;
}

export const DEFAULT_METRIC_PREFIX = 'sockjs_';

/**
 * The value of the `prefix` label for a SockJS prefix. The root is served as `''`, and a label
 * whose value is empty is the same to Prometheus as no label at all, so it is shown as `/`.
 */
export function prefixLabel(prefix: string): string {
  return prefix === '' ? '/' : prefix;
}

type Label = 'prefix' | 'transport' | 'code' | 'cause';

interface Sample {
  readonly labels: Partial<Record<Label, string>>;
  readonly value: number;
}

/** One metric: what it is called after the name prefix, and how its samples come out of a snapshot. */
interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly labels: readonly Label[];
  samples(snapshot: MetricsSnapshot): Sample[];
}

/** One sample per prefix. */
const perPrefix =
  (figure: (metrics: PrefixMetrics) => number) =>
  (snapshot: MetricsSnapshot): Sample[] =>
    Object.entries(snapshot.prefixes).map(([prefix, metrics]) => ({ labels: { prefix: prefixLabel(prefix) }, value: figure(metrics) }));

/** One sample per prefix and key of one of its tables (transport, close code). */
const perPrefixAnd =
  (label: 'transport' | 'code', table: (metrics: PrefixMetrics) => Readonly<Record<string, number>>) =>
  (snapshot: MetricsSnapshot): Sample[] =>
    Object.entries(snapshot.prefixes).flatMap(([prefix, metrics]) =>
      Object.entries(table(metrics)).map(([key, value]) => ({ labels: { prefix: prefixLabel(prefix), [label]: key }, value })),
    );

/** The single sample of a bus figure. */
const ofBus =
  (figure: (bus: MetricsSnapshot['bus']) => number) =>
  (snapshot: MetricsSnapshot): Sample[] => [{ labels: {}, value: figure(snapshot.bus) }];

/** Every metric, in the order of the exposition. */
export const FAMILIES: readonly Family[] = [
  {
    name: 'sessions_open',
    type: 'gauge',
    help: 'Sessions open now, by transport.',
    labels: ['prefix', 'transport'],
    samples: perPrefixAnd('transport', (m) => m.sessionsOpen),
  },
  {
    name: 'sessions_opened_total',
    type: 'counter',
    help: 'Sessions opened, by transport.',
    labels: ['prefix', 'transport'],
    samples: perPrefixAnd('transport', (m) => m.sessionsOpened),
  },
  {
    name: 'sessions_closed_total',
    type: 'counter',
    help: 'Sessions closed, by the code of their close.',
    labels: ['prefix', 'code'],
    samples: perPrefixAnd('code', (m) => m.sessionsClosed),
  },
  {
    name: 'messages_received_total',
    type: 'counter',
    help: 'Messages from clients handed to the application.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.messagesReceived),
  },
  {
    name: 'messages_sent_total',
    type: 'counter',
    help: 'Messages the application sent.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.messagesSent),
  },
  {
    name: 'messages_dropped_total',
    type: 'counter',
    help: 'Messages from clients that went nowhere: over a rate limit, or come while their session closed.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.messagesDropped),
  },
  {
    name: 'received_bytes_total',
    type: 'counter',
    help: 'Bytes of the payloads clients sent.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.bytesReceived),
  },
  {
    name: 'sent_bytes_total',
    type: 'counter',
    help: 'UTF-8 bytes of the messages the application sent.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.bytesSent),
  },
  {
    name: 'queued_bytes',
    type: 'gauge',
    help: 'Bytes written to open sessions and not yet taken by their clients.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.bytesQueued),
  },
  {
    name: 'heartbeats_total',
    type: 'counter',
    help: 'Heartbeat frames sent.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.heartbeats),
  },
  {
    name: 'dead_peers_total',
    type: 'counter',
    help: 'Websocket peers closed for answering no ping within a heartbeat interval.',
    labels: ['prefix'],
    samples: perPrefix((m) => m.deadPeers),
  },
  {
    name: 'refused_total',
    type: 'counter',
    help: 'Requests, handshakes and messages refused, by cause.',
    labels: ['prefix', 'cause'],
    // Every cause, 0 included, so that a rate over any of them has a series from the start.
    samples: (snapshot) =>
      Object.entries(snapshot.prefixes).flatMap(([prefix, metrics]) =>
        REFUSAL_CAUSES.map((cause) => ({ labels: { prefix: prefixLabel(prefix), cause }, value: metrics.refused[cause] })),
      ),
  },
  {
    name: 'bus_published_total',
    type: 'counter',
    help: 'Messages published on channels by this server.',
    labels: [],
    samples: ofBus((b) => b.published),
  },
  {
    name: 'bus_publish_failed_total',
    type: 'counter',
    help: 'Publishes the bus could not make.',
    labels: [],
    samples: ofBus((b) => b.publishFailed),
  },
  {
    name: 'bus_publish_dropped_total',
    type: 'counter',
    help: 'Publishes the bus dropped, held past its limit.',
    labels: [],
    samples: ofBus((b) => b.publishDropped),
  },
  {
    name: 'relayed_total',
    type: 'counter',
    help: 'Messages relayed to other processes.',
    labels: [],
    samples: ofBus((b) => b.relayed),
  },
  {
    name: 'relay_failed_total',
    type: 'counter',
    help: 'Messages that could not be relayed to other processes.',
    labels: [],
    samples: ofBus((b) => b.relayFailed),
  },
];

/**
 * Registers the metrics of `server` (anything with a `metrics()` like a sockjs-rx `Server`'s) in
 * a prom-client registry, and returns the function that takes them out again. Throws prom-client's
 * error if a name is taken in the registry already, and leaves the registry as it was.
 */
export function registerMetrics(server: Pick<Server, 'metrics'>, options: PrometheusOptions = {}): () => void {
  const registry = options.registry ?? defaultRegistry;
  const namePrefix = options.prefix ?? DEFAULT_METRIC_PREFIX;

  let taken: MetricsSnapshot | null = null;
  const snapshot = (): MetricsSnapshot => {
    if (taken === null) {
      taken = server.metrics();
      // prom-client calls every metric's collect in one synchronous pass of a scrape, so the
      // snapshot is kept until that pass is over and the next scrape takes a fresh one.
      queueMicrotask(() => {
        taken = null;
      });
    }
    return taken;
  };

  /** What this call registered, by the name it registered it under. */
  const registered: Array<{ readonly name: string; readonly metric: Counter<Label> | Gauge<Label> }> = [];
  const unregister = () => {
    for (const { name, metric } of registered.splice(0)) {
      // What took the name since belongs to someone else.
      if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name);
    }
  };

  try {
    for (const family of FAMILIES) {
      const name = namePrefix + family.name;
      const configuration = { name, help: family.help, labelNames: family.labels, registers: [registry] };
      if (family.type === 'counter') {
        registered.push({
          name,
          metric: new Counter<Label>({
            ...configuration,
            collect(this: Counter<Label>) {
              // A counter has no set(): it is emptied and brought up to the snapshot's figure.
              this.reset();
              for (const { labels, value } of family.samples(snapshot())) this.inc(labels, value);
            },
          }),
        });
      } else {
        registered.push({
          name,
          metric: new Gauge<Label>({
            ...configuration,
            collect(this: Gauge<Label>) {
              this.reset();
              for (const { labels, value } of family.samples(snapshot())) this.set(labels, value);
            },
          }),
        });
      }
    }
  } catch (error) {
    unregister();
    throw error;
  }
  return unregister;
}
