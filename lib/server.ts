/**
 * The SockJS server: the `sockjs` package's API (`installHandlers`, `attach`, `detach`, the
 * `connection` event) and the reactive one (`connections$`).
 */
import { EventEmitter } from 'events';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'http';
import type { Duplex } from 'stream';
import { EMPTY, interval, map, type Observable, Subject, takeUntil } from 'rxjs';
import { type BroadcastBus, Channel, localBus } from './broadcast';
import type { Connection } from './connection';
import { Endpoint } from './endpoint';
import { sockjsError } from './errors';
import { Admission, socketAddress } from './admission';
import { type BusMetrics, type MetricsSnapshot, PrefixCounters, type PrefixMetrics } from './metrics';
import { isRelayBus, type RelayBus } from './relay';
import { optionNotices, resolveOptions, type ServerOptions, validateOptions } from './options';

/** The channel every connection is in, which `broadcast()` publishes on. */
const EVERYONE = '*';

type Listener = (this: unknown, ...args: unknown[]) => void;

/** One endpoint installed on one HTTP server, and the listeners it stands in front of. */
interface Installation {
  readonly http: HttpServer;
  readonly endpoint: Endpoint;
  readonly onRequest: Listener;
  readonly onUpgrade: Listener;
  readonly previousRequest: readonly Listener[];
  readonly previousUpgrade: readonly Listener[];
}

/**
 * Takes over `event` on `emitter`; the listeners that were there get what is not ours, and
 * `unclaimed` what no one listens for.
 */
function overshadow(emitter: EventEmitter, event: string, handle: (args: unknown[]) => boolean, unclaimed?: (args: unknown[]) => void) {
  const previous = emitter.listeners(event) as Listener[];
  emitter.removeAllListeners(event);
  const listener: Listener = function (this: unknown, ...args: unknown[]) {
    if (handle(args)) return;
    if (previous.length === 0) unclaimed?.(args);
    for (const l of previous) l.apply(this, args);
  };
  emitter.on(event, listener);
  return { listener, previous };
}

function restore(emitter: EventEmitter, event: string, listener: Listener, previous: readonly Listener[]): void {
  emitter.removeListener(event, listener);
  for (const l of previous) emitter.on(event, l);
}

/** `A`: what the `authorize` option returns, kept on each Connection as `auth`. */
export class Server<A = unknown> extends EventEmitter {
  /** The options given to `createServer`; `installHandlers` may override them per prefix. */
  readonly options: ServerOptions<A>;
  /** Every new connection, on every prefix this server is installed on. */
  readonly connections$: Observable<Connection<A>>;
  readonly #connections = new Subject<Connection<A>>();
  #installations: Installation[] = [];
  readonly #bus: BroadcastBus;
  /** The bus sessions are relayed over, with the `relay` option. */
  readonly #relayBus: RelayBus | null = null;
  readonly #channels = new Map<string, Channel>();
  /**
   * What is counted, by prefix: kept for the server's life, so that a prefix detached and
   * installed again, or served on several HTTP servers, counts on.
   */
  readonly #counters = new Map<string, PrefixCounters>();
  /** What the channels publish on: the bus, counting each publish. */
  readonly #publishing: BroadcastBus;
  #published = 0;
  /** The caps on open sessions of every prefix (`max_sessions`, `max_sessions_per_address`), when set. */
  readonly #admission: Admission | null;
  /** Set by close(): a closed server cannot be installed again. */
  #closed = false;
  readonly #closed$ = new Subject<void>();

  constructor(options: ServerOptions<A> = {}) {
    super();
    // Bad options are refused here, where the caller made them, rather than at the first request.
    this.options = validateOptions<A>(options);
    const resolved = resolveOptions(this.options);
    for (const notice of optionNotices(this.options)) resolved.log('info', notice);
    this.connections$ = this.#connections.asObservable();
    this.#bus = this.options.bus ?? localBus();
    const { max_sessions, max_sessions_per_address, client_address } = this.options;
    this.#admission =
      max_sessions !== undefined || max_sessions_per_address !== undefined
        ? new Admission({ maxSessions: max_sessions ?? Infinity, maxPerAddress: max_sessions_per_address ?? Infinity, addressOf: client_address ?? socketAddress })
        : null;
    const bus = this.#bus;
    this.#publishing = {
      publish: (channel, message) => {
        this.#published++;
        bus.publish(channel, message);
      },
      messages: (channel) => bus.messages(channel),
    };
    if (this.options.relay) {
      // Relaying within a bus of this server's own would reach no other process.
      if (!this.options.bus || !isRelayBus(this.options.bus)) {
        throw sockjsError('SOCKJS_ERR_INVALID_OPTION', 'relay', 'true only with a `bus` that relays sessions, such as redisBus() of sockjs-rx/redis');
      }
      this.#relayBus = this.options.bus;
    }
  }

  /**
   * Serves this server's prefix on `http` (the `sockjs` package's older API). `options` override
   * the server's for this installation; call it once per prefix to serve several. Throws
   * `SOCKJS_ERR_ALREADY_ATTACHED` for a prefix it already serves on `http`, and
   * `SOCKJS_ERR_SERVER_CLOSED` after `close()`.
   */
  installHandlers(http: HttpServer, options?: ServerOptions<A>): true {
    this.#install(http, options);
    return true;
  }

  /** Serves this server's prefix on `http`; throws as `installHandlers` does. */
  attach(http: HttpServer): void {
    this.#install(http);
  }

  /** Stops serving on `http`, hands its listeners back and drops this server's sessions there. */
  detach(http: HttpServer): void {
    for (const installation of this.#installations.filter((i) => i.http === http)) this.#uninstall(installation);
  }

  /**
   * Sessions alive on every prefix and HTTP server this server serves, including those waiting
   * `disconnect_delay` for their client and closed ones still answering with their close frame.
   */
  get sessionCount(): number {
    return this.#installations.reduce((sum, installation) => sum + installation.endpoint.sessionCount, 0);
  }

  /**
   * The channel `name`: connections join and leave it, and what is published on it reaches every
   * member, in this process and in every other one on the same `bus`. `*` is the channel every
   * connection is in.
   */
  channel(name: string): Channel {
    let channel = this.#channels.get(name);
    if (!channel) {
      channel = new Channel(name, this.#publishing, name === EVERYONE ? () => this.#openConnections() : undefined);
      this.#channels.set(name, channel);
    }
    return channel;
  }

  /**
   * What this server has counted, on every prefix and HTTP server it serves, and what its bus
   * did. With the option `metrics: false` nothing is counted and every prefix is left out.
   */
  metrics(): MetricsSnapshot {
    const prefixes: Record<string, PrefixMetrics> = {};
    for (const [prefix, counters] of this.#counters) {
      let queued = 0;
      for (const { endpoint } of this.#installations) if (endpoint.options.prefix === prefix) queued += endpoint.queuedBytes();
      prefixes[prefix] = counters.snapshot(queued);
    }
    return { time: resolveOptions(this.options).scheduler.now(), prefixes, bus: this.#busMetrics() };
  }

  /**
   * `metrics()` every `period` milliseconds (default 10000), on the server's scheduler, until the
   * server closes.
   */
  metrics$(period = 10_000): Observable<MetricsSnapshot> {
    if (this.#closed) return EMPTY;
    return interval(period, resolveOptions(this.options).scheduler).pipe(
      map(() => this.metrics()),
      takeUntil(this.#closed$),
    );
  }

  /** Where `prefix` counts; null with `metrics: false`. */
  #countersOf(prefix: string): PrefixCounters | null {
    if (this.options.metrics === false) return null;
    let counters = this.#counters.get(prefix);
    if (!counters) {
      counters = new PrefixCounters();
      this.#counters.set(prefix, counters);
    }
    return counters;
  }

  #busMetrics(): BusMetrics {
    const stats = (this.#bus as { stats?: () => Record<string, unknown> }).stats?.() ?? {};
    const count = (name: string) => (typeof stats[name] === 'number' ? stats[name] : 0);
    return {
      published: this.#published,
      publishFailed: count('failed'),
      publishDropped: count('dropped'),
      relayed: count('relayed'),
      relayFailed: count('relayFailed'),
    };
  }

  /** Sends `message` to every open connection of this server, in every process on its bus. */
  broadcast(message: string): void {
    this.channel(EVERYONE).publish(message);
  }

  /**
   * Closes every session with 1001 "Server shutting down", detaches from every HTTP server and
   * completes `connections$`. The server cannot be installed again afterwards.
   */
  close(): void {
    this.#closed = true;
    for (const installation of [...this.#installations]) this.#uninstall(installation);
    for (const channel of this.#channels.values()) channel.stop();
    this.#connections.complete();
    this.#closed$.next();
  }

  *#openConnections(): Iterable<Connection> {
    for (const installation of this.#installations) yield* installation.endpoint.connections();
  }

  #install(http: HttpServer, overrides?: ServerOptions<A>): void {
    if (this.#closed) throw sockjsError('SOCKJS_ERR_SERVER_CLOSED');
    const options = resolveOptions(this.options, overrides);
    // Two installations of one prefix on one HTTP server would each take the other's requests.
    if (this.#installations.some((i) => i.http === http && i.endpoint.options.prefix === options.prefix)) {
      throw sockjsError('SOCKJS_ERR_ALREADY_ATTACHED', options.prefix);
    }
    for (const notice of optionNotices(overrides)) options.log('info', notice);
    const endpoint = new Endpoint(
      options,
      options.scheduler,
      {
        connection: (connection) => {
          // Every open connection is in `*` without joining it; the channel starts listening with the first.
          this.channel(EVERYONE).listen();
          this.emit('connection', connection);
          this.#connections.next(connection as Connection<A>);
        },
      },
      {
        relayBus: this.#relayBus,
        counters: this.#countersOf(options.prefix),
        admission: this.#admission,
      },
    );
    options.log('debug', `sockjs-rx bound to ${JSON.stringify(options.prefix)}`);
    const request = overshadow(http, 'request', ([req, res]) =>
      endpoint.handleRequest(req as IncomingMessage, res as ServerResponse),
    );
    const upgrade = overshadow(
      http,
      'upgrade',
      ([req, socket, head]) => endpoint.handleUpgrade(req as IncomingMessage, socket as Duplex, head as Buffer),
      // What Node does with an upgrade no one listens for: without it the socket would stay open.
      ([, socket]) => (socket as Duplex).destroy(),
    );
    this.#installations.push({
      http,
      endpoint,
      onRequest: request.listener,
      onUpgrade: upgrade.listener,
      previousRequest: request.previous,
      previousUpgrade: upgrade.previous,
    });
  }

  #uninstall(installation: Installation): void {
    this.#installations = this.#installations.filter((i) => i !== installation);
    restore(installation.http, 'request', installation.onRequest, installation.previousRequest);
    restore(installation.http, 'upgrade', installation.onUpgrade, installation.previousUpgrade);
    installation.endpoint.close();
  }
}

export interface Server<A = unknown> {
  on(event: 'connection', listener: (connection: Connection<A>) => void): this;
  on(event: string | symbol, listener: (...args: unknown[]) => void): this;
  once(event: 'connection', listener: (connection: Connection<A>) => void): this;
  once(event: string | symbol, listener: (...args: unknown[]) => void): this;
}

/** Creates a SockJS server; serve it with `attach(httpServer)` or `installHandlers(httpServer)`. */
export function createServer<A = unknown>(options?: ServerOptions<A>): Server<A> {
  return new Server<A>(options);
}

/** Creates a server and installs it on `http` at once. */
export function listen<A = unknown>(http: HttpServer, options?: ServerOptions<A>): Server<A> {
  const server = createServer(options);
  server.installHandlers(http);
  return server;
}
