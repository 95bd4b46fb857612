/**
 * `sockjs-rx/redis`: a bus that carries `broadcast()` and channel messages between the processes
 * of one application over Redis pub/sub, through node-redis (the `redis` package, an optional peer
 * dependency loaded only from this entry point).
 *
 *   const bus = redisBus({ url: 'redis://127.0.0.1:6379' });
 *   const server = createServer({ prefix: '/chat', bus });
 *   ...
 *   server.close();
 *   await bus.close();
 */
import { Observable, Subject, type Subscriber } from 'rxjs';
import { createClient, type RedisClientOptions } from 'redis';
import type { RelayBus } from './relay';
import { sockjsError } from './errors';
import { defaultLog, type LogSeverity } from './options';

/** Options of `redisBus`. */
export interface RedisBusOptions {
  /** `redis[s]://[[user][:password]@]host[:port][/db]`. Default: node-redis's, `redis://localhost:6379`. */
  url?: string;
  /** Any other option of node-redis's `createClient` (socket, credentials, reconnect strategy…); `url` wins over `client.url`. Default `{}`. */
  client?: RedisClientOptions;
  /**
   * Put before every channel name on the Redis server, so that several applications (or several
   * buses of one) can share it. Default `sockjs-rx:`.
   */
  prefix?: string;
  /** Called with a severity and a line of text, like the server's `log`. Default: `error` lines go to `console.error`. */
  log?: (severity: LogSeverity, message: string) => void;
  /**
   * The most the bus holds, in bytes, of publishes waiting for Redis (while a connection is down,
   * or its subscriptions are not confirmed again). A publish counts the UTF-8 bytes of its channel
   * and message plus 64 for its entry, so that empty messages are not free. Past it the oldest
   * held publishes are dropped: when Redis is back the latest ones matter most. Default 8388608
   * (8 MiB, like the server's `max_queue_size`): several seconds of a thousand 1 KB publishes a
   * second, enough to ride out a restart of Redis, and little next to the process itself.
   */
  max_held_size?: number;
  /**
   * With `relay`: how long a session's claim lasts in Redis unless its process renews it, in
   * milliseconds. A process renews its claims every third of it, so the claims of a process that
   * died without releasing them go within it (its sessions' requests are answered at once
   * meanwhile: no one listens where they would be relayed). Default 30000.
   */
  claim_ttl?: number;
}

/** What a bus has done with the publishes made on it, since it was created. */
export interface RedisBusStats {
  /** Publishes Redis took (it answered the PUBLISH). */
  readonly published: number;
  /** Publishes sent that Redis refused, or whose connection went down before it answered: they may or may not have reached subscribers. */
  readonly failed: number;
  /** Publishes never sent: held past `max_held_size`, or still held by a `close()` that could not send them. */
  readonly dropped: number;
  /** Publishes held right now, waiting for Redis. */
  readonly held: number;
  /** What they count against `max_held_size`, in bytes. */
  readonly heldSize: number;
  /** With `relay`: messages relayed to another process (Redis took the PUBLISH). */
  readonly relayed: number;
  /** With `relay`: messages that could not be relayed (Redis unreachable, or the PUBLISH failed); each request they carried was answered at once. */
  readonly relayFailed: number;
  /** With `relay`: session claims held by this process. */
  readonly claims: number;
}

/**
 * A bus over Redis pub/sub. It also relays sessions between processes (`relay: true`): a
 * session's claim is a key that expires unless its process renews it, and relayed messages are
 * PUBLISHes to a channel of each endpoint's own.
 */
export interface RedisBus extends RelayBus {
  /** Resolves once both Redis connections are ready; rejects if node-redis gives up connecting. */
  ready(): Promise<void>;
  /** Counters of what became of the publishes. */
  stats(): RedisBusStats;
  /**
   * Completes every `messages()` Observable and ends both connections, after sending what was
   * already published; what it cannot send (Redis is still unreachable after one more
   * attempt to connect) is dropped, counted and logged in one line. Safe to call twice. Close
   * the servers on the bus first.
   */
  close(): Promise<void>;
}

/** The default `prefix` of `redisBus`. */
export const DEFAULT_REDIS_PREFIX = 'sockjs-rx:';

/** The default `max_held_size` of `redisBus`, in bytes. */
export const DEFAULT_MAX_HELD_SIZE = 8 * 1024 * 1024;

/**
 * What a held publish costs beyond the UTF-8 bytes of its channel and message: its entry object,
 * its slot in the queue and the headers of two strings, rounded up.
 */
const HELD_ENTRY_SIZE = 64;

/** The default `claim_ttl` of `redisBus`, in milliseconds. */
export const DEFAULT_CLAIM_TTL = 30_000;

/** Sets KEYS[1] to ARGV[1] for ARGV[2] ms if it is not set; returns the value it has otherwise. */
const CLAIM = `local owner = redis.call('GET', KEYS[1])
if owner then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`;

/** Deletes KEYS[1] if its value is ARGV[1]. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Renews every key of KEYS whose value is ARGV[1] for ARGV[2] ms, and sets the ones that expired
 * meanwhile again; returns those another process holds now.
 */
const RENEW = `local lost = {}
for _, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2])
  elseif not owner then redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else table.insert(lost, key) end
end
return lost`;

/** Keys renewed by one script call. */
const RENEW_BATCH = 1000;

/** How long a claim waits for its process's relay channel to be subscribed. */
const CONFIRM_WAIT_MS = 5000;

/**
 * How long a renewal waits before it asks again about a claim another process holds: longer than
 * that process takes to undo a claim made after it gave up on it.
 */
const RECHECK_MS = 500;

/**
 * How long a relay command may wait for Redis's answer before the request it serves is answered
 * without it (503, or the close frame): Redis hung rather than gone. Relayed messages carry the
 * same deadline, and the owner drops one that comes later.
 */
export const RELAY_TIMEOUT_MS = 2000;

/** The part of a node-redis client this bus uses. */
interface PubSubClient {
  /** Connected or connecting (node-redis reconnects while this holds). */
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  get(key: string): Promise<unknown>;
  pubSubNumSub(channels: string[]): Promise<Record<string, number>>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  unsubscribe(channel: string, listener: (message: string) => void): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready' | 'reconnecting', listener: () => void): unknown;
  off(event: 'error' | 'ready', listener: () => void): unknown;
}

/** One Redis channel in use here: the node-redis listener and the Observable subscribers it feeds. */
interface ChannelState {
  readonly listener: (message: string) => void;
  readonly subscribers: Set<Subscriber<string>>;
  /** Set once Redis has confirmed the SUBSCRIBE: from then on what is published there arrives. */
  confirmed: boolean;
}

/** A publish waiting for Redis, with what it counts against the bound. */
interface Held {
  readonly channel: string;
  readonly message: string;
  readonly size: number;
}

/** Publishes waiting for Redis, oldest first, within `max` bytes: past it the oldest go. */
class HeldQueue {
  /** Entries before `#head` are gone; the array is cut down now and then rather than shifted each time. */
  #entries: Array<Held | undefined> = [];
  #head = 0;
  #size = 0;

  constructor(private readonly max: number) {}

  get length(): number {
    return this.#entries.length - this.#head;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds a publish at the end; returns how many of the oldest were dropped to stay within the bound. */
  push(channel: string, message: string): number {
    const size = Buffer.byteLength(channel) + Buffer.byteLength(message) + HELD_ENTRY_SIZE;
    this.#entries.push({ channel, message, size });
    this.#size += size;
    let dropped = 0;
    while (this.#size > this.max) {
      this.shift();
      dropped++;
    }
    return dropped;
  }

  shift(): Held | undefined {
    const entry = this.#entries[this.#head];
    if (entry === undefined) return undefined;
    this.#entries[this.#head++] = undefined;
    this.#size -= entry.size;
    if (this.#head === this.#entries.length) {
      this.#entries = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  /** Empties the queue; returns how many it held. */
  clear(): number {
    const length = this.length;
    this.#entries = [];
    this.#head = 0;
    this.#size = 0;
    return length;
  }
}

/**
 * A time when publishing did not go as it should (Redis unreachable, PUBLISH failing, or the held
 * queue full): what was lost in it is said in one line when it ends, not one line per message,
 * and a full held queue once more when dropping starts.
 */
interface Trouble {
  /** What it was, for the line: "Redis unreachable", "PUBLISH failing"… */
  readonly what: string;
  readonly since: number;
  /** Dropped from the full held queue. */
  dropped: number;
  /** Sent and failed, with the reason of the first. */
  failed: number;
  failure: string;
  /** Still held when close() could not send them. */
  droppedAtClose: number;
}

/**
 * The text of an error, never empty: node-redis's TimeoutError (a command left in its offline
 * queue past `commandOptions.timeout`, 5 s by default) has no message, and neither have Node's
 * AggregateErrors for a host name with several addresses none of which answers.
 */
function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return [...new Set(error.errors.map(errorText))].join('; ');
  if (error instanceof Error) return error.message || (error as NodeJS.ErrnoException).code || error.constructor.name;
  return String(error) || 'unknown error';
}

const count = (n: number): string => n.toLocaleString('en-US');

/**
 * A `BroadcastBus` over Redis: `publish` is a Redis PUBLISH, `messages(channel)` a SUBSCRIBE. It
 * holds two connections, one that publishes and one that subscribes, shared by every channel;
 * a channel is subscribed when its first Observable subscriber comes and unsubscribed when the
 * last one leaves. Connection errors are logged and node-redis reconnects by itself. What is
 * published while Redis is unreachable is held by the bus, up to `max_held_size`, and sent in
 * order once both connections are back and the subscriptions confirmed; what is dropped or fails
 * is counted (`stats()`) and said in one line per outage (and one when dropping starts). Subscribers of other processes miss
 * what Redis delivered while they were away, as always with pub/sub.
 */
export function redisBus(options: RedisBusOptions = {}): RedisBus {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  const log = options.log ?? defaultLog;
  const maxHeldSize = options.max_held_size ?? DEFAULT_MAX_HELD_SIZE;
  if (!Number.isSafeInteger(maxHeldSize) || maxHeldSize <= 0) {
    throw sockjsError('SOCKJS_ERR_INVALID_OPTION', 'max_held_size', 'a positive integer number of bytes');
  }
  const claimTtl = options.claim_ttl ?? DEFAULT_CLAIM_TTL;
  if (!Number.isSafeInteger(claimTtl) || claimTtl < 3) {
    throw sockjsError('SOCKJS_ERR_INVALID_OPTION', 'claim_ttl', 'a whole number of milliseconds, at least 3');
  }
  const clientOptions: RedisClientOptions = { ...options.client, ...(options.url === undefined ? {} : { url: options.url }) };

  const counts = { published: 0, failed: 0, dropped: 0 };
  let trouble: Trouble | null = null;
  const troubled = (what: string): Trouble => (trouble ??= { what, since: Date.now(), dropped: 0, failed: 0, failure: '', droppedAtClose: 0 });

  /** Ends the current trouble, in one line if anything was lost in it. */
  const recovered = (): void => {
    const t = trouble;
    trouble = null;
    if (t === null || t.dropped + t.failed + t.droppedAtClose === 0) return;
    const lost: string[] = [];
    if (t.dropped > 0) lost.push(`${count(t.dropped)} publishes dropped (held queue full: max_held_size ${count(maxHeldSize)} bytes)`);
    if (t.failed > 0) lost.push(`${count(t.failed)} failed (${t.failure})`);
    if (t.droppedAtClose > 0) lost.push(`${count(t.droppedAtClose)} held ones dropped at close()`);
    log('error', `sockjs-rx/redis: ${t.what} for ${((Date.now() - t.since) / 1000).toFixed(1)} s: ${lost.join(', ')}`);
  };

  /** Outages of the subscribing connection, during which what was published to this process may have been lost. */
  const interruptions = new Subject<void>();
  const connect = (role: string, interrupted?: () => void, back?: () => void): PubSubClient => {
    const client: PubSubClient = createClient(clientOptions);
    // node-redis emits `error` on every failed reconnection attempt; one line per outage is enough.
    let failing = false;
    /** Set from an outage's first sign until the connection is ready again: it is told once. */
    let down = false;
    const lost = () => {
      if (down) return;
      down = true;
      interrupted?.();
    };
    client.on('error', (error) => {
      troubled('Redis unreachable');
      lost();
      if (failing) return;
      failing = true;
      log('error', `sockjs-rx/redis: ${role} connection: ${errorText(error)}`);
    });
    client.on('reconnecting', lost);
    client.on('ready', () => {
      if (failing) log('info', `sockjs-rx/redis: ${role} connection is back`);
      if (down) back?.();
      failing = false;
      down = false;
    });
    return client;
  };
  /** Set by close(), once; from then on nothing is sent and failures of what was under way are expected. */
  let closed = false;
  let closing: Promise<void> | null = null;
  // Back after an outage, the claims held here are asserted again at once (Redis may have lost
  // them, restarted without persistence, or let them expire while it hung).
  const publisher = connect('publish', undefined, () => renew());
  const subscriber = connect('subscribe', () => interruptions.next());
  // connect() settles only when the connection is up or node-redis gives up.
  const connected = Promise.all([publisher.connect(), subscriber.connect()]).then(() => undefined);
  /** Set once both connections have been up: from then on an outage fails relayed requests at once. */
  let everReady = false;
  connected.then(
    () => (everReady = true),
    () => undefined,
  );
  connected.catch((error: unknown) => {
    // close() before the connections were up ends them on purpose.
    if (!closed) log('error', `sockjs-rx/redis: cannot connect: ${errorText(error)}`);
  });

  const channels = new Map<string, ChannelState>();
  /** SUBSCRIBE commands sent and not yet confirmed by Redis. */
  let subscribing = 0;
  /** Publishes held back, in the order they were made. */
  const held = new HeldQueue(maxHeldSize);

  // Redis delivers a message only to the connections subscribed when it runs the PUBLISH, and the
  // PUBLISH goes out on the other connection: sent too early it would be lost for the subscribers
  // that already exist here. So a publish goes out only while the publisher is ready, every
  // SUBSCRIBE is confirmed and, if anything is subscribed here, the subscriber is ready: node-redis
  // 6 makes a reconnected client ready only once the SUBSCRIBEs it sends again for every channel
  // are confirmed (the resubscribe is part of the connection's initiator, which `ready` awaits).
  // Publishes are never left in node-redis's offline queue: it has no bound, and it would send
  // them as soon as the publisher is back, ahead of the subscriber.
  const sendable = (): boolean => publisher.isReady && subscribing === 0 && (channels.size === 0 || subscriber.isReady);

  const send = (channel: string, message: string): void => {
    publisher.publish(prefix + channel, message).then(
      () => {
        counts.published++;
        if (trouble !== null && !closed && held.length === 0 && sendable()) recovered();
      },
      (error: unknown) => {
        counts.failed++;
        // With the publisher ready, this is Redis refusing the command, which no connection line has told.
        if (trouble === null && publisher.isReady) {
          log('error', `sockjs-rx/redis: PUBLISH ${prefix + channel} failed: ${errorText(error)}; counting failures until one succeeds`);
        }
        const t = troubled('PUBLISH failing');
        if (t.failed++ === 0) t.failure = errorText(error);
      },
    );
  };

  const hold = (channel: string, message: string): void => {
    const dropped = held.push(channel, message);
    if (dropped === 0) return;
    counts.dropped += dropped;
    const t = troubled(publisher.isReady && subscriber.isReady ? 'subscriptions unconfirmed' : 'Redis unreachable');
    // Said at once, for an outage that may last: the count follows when it ends.
    if (t.dropped === 0) log('error', `sockjs-rx/redis: ${t.what}: the held queue is full (max_held_size ${count(maxHeldSize)} bytes); the oldest publishes are dropped until it drains`);
    t.dropped += dropped;
  };

  /** Sends what was held, in order, as far as the connections allow; ends the trouble once all is out. */
  const drain = (): void => {
    if (closed) return;
    while (held.length > 0 && sendable()) {
      const { channel, message } = held.shift()!;
      send(channel, message);
    }
    if (held.length === 0 && sendable()) recovered();
  };
  publisher.on('ready', drain);
  subscriber.on('ready', drain);

  const settled = (): void => {
    subscribing--;
    if (subscribing === 0) drain();
  };

  const subscribe = (channel: string, state: ChannelState): void => {
    subscriber.subscribe(prefix + channel, state.listener).then(() => {
      state.confirmed = true;
      settled();
    }, (error: unknown) => {
      // node-redis forgets a channel whose SUBSCRIBE was on its way when the connection went
      // down: ask again, to be sent once it is back (each failure is one lost connection).
      if (!closed && channels.get(channel) === state && subscriber.isOpen && !subscriber.isReady) {
        subscribe(channel, state);
        return;
      }
      if (!closed) log('error', `sockjs-rx/redis: SUBSCRIBE ${prefix + channel} failed: ${errorText(error)}`);
      settled();
    });
  };

  const leave = (channel: string, state: ChannelState, who: Subscriber<string>): void => {
    state.subscribers.delete(who);
    if (state.subscribers.size > 0 || channels.get(channel) !== state) return;
    channels.delete(channel);
    // After close() the connection is gone, and with it every subscription.
    if (closed) return;
    // With nothing subscribed here, what waited for the subscriber only can go.
    if (channels.size === 0) drain();
    subscriber.unsubscribe(prefix + channel, state.listener).catch((error: unknown) => {
      // close() ends the connection, and every subscription with it.
      if (!closed) log('error', `sockjs-rx/redis: UNSUBSCRIBE ${prefix + channel} failed: ${errorText(error)}`);
    });
  };

  /** Resolves once `client`, if open and not ready, is ready or has failed once more. */
  const attempt = async (client: PubSubClient): Promise<void> => {
    if (!client.isOpen || client.isReady) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        client.off('ready', done);
        client.off('error', done);
        resolve();
      };
      client.on('ready', done);
      client.on('error', done);
    });
  };

  /**
   * Ends the publisher once what is queued on it has been sent. node-redis's close() waits for
   * the replies of every queued command, which never come while Redis is unreachable: a client
   * still connecting is given until it is ready or fails once, and a failing one is destroyed,
   * giving up what it holds.
   */
  const endPublisher = async (): Promise<void> => {
    if (!publisher.isOpen) return;
    await attempt(publisher);
    if (publisher.isReady) await publisher.close();
    else publisher.destroy();
  };

  /**
   * Ends the subscriber at once: what it may have queued (SUBSCRIBE, UNSUBSCRIBE) is undone by
   * the end of the connection anyway, and node-redis's close() does not settle while an
   * UNSUBSCRIBE of the last channel is under way.
   */
  const endSubscriber = (): void => {
    if (subscriber.isOpen) subscriber.destroy();
  };

  /** Every message published on `channel`, while subscribed: SUBSCRIBEd with the first subscriber, UNSUBSCRIBEd after the last. */
  const messages = (channel: string): Observable<string> => {
    return new Observable<string>((who) => {
      if (closed) {
        who.complete();
        return undefined;
      }
      let state = channels.get(channel);
      if (!state) {
        const subscribers = new Set<Subscriber<string>>();
        state = {
          subscribers,
          confirmed: false,
          listener: (message) => {
            // A copy: a subscriber that leaves while being served must not skip the next one.
            for (const s of [...subscribers]) s.next(message);
          },
        };
        channels.set(channel, state);
        subscribing++;
        subscribe(channel, state);
      }
      state.subscribers.add(who);
      const joined = state;
      return () => leave(channel, joined, who);
    });
  };

  // The relay. A claim is the key `<prefix>session:<session>`, whose value is the address of the
  // endpoint that holds it; relayed messages are PUBLISHes on `<prefix>relay:<address>`, sent on
  // the publisher, so that what one process relays to another arrives in the order it was sent.
  // Nothing relayed is held while Redis is unreachable: the relay answers its requests at once.
  const sessionKey = (session: string) => `${prefix}session:${session}`;
  const relayChannel = (address: string) => `relay:${address}`;
  /** The claims made here and not released, with the address of each, for renewal. */
  const claims = new Map<string, string>();
  let renewal: ReturnType<typeof setInterval> | null = null;
  const relayCounts = { relayed: 0, relayFailed: 0 };

  /**
   * Runs `command` on the publisher if it is ready; rejects at once if it is not, except while
   * the bus makes its first connection, which it waits for (up to CONFIRM_WAIT_MS), so that a
   * process that has just started does not refuse its first requests.
   */
  const now = <T>(what: string, command: () => Promise<T>, late?: (value: T) => void): Promise<T> => {
    if (closed) return Promise.reject(new Error(`sockjs-rx/redis: ${what} after close()`));
    // Both ways must work: what is relayed is answered on the subscriber.
    if (publisher.isReady && subscriber.isReady) return within(what, command(), late);
    if (everReady) return Promise.reject(new Error(`sockjs-rx/redis: ${what}: Redis is not reachable`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sockjs-rx/redis: ${what}: Redis is not reachable yet`)), CONFIRM_WAIT_MS);
      connected.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    }).then(() => now(what, command, late));
  };

  /**
   * `promise`, or a rejection once RELAY_TIMEOUT_MS have passed without its answer (Redis hung,
   * not down); an answer that comes after that goes to `late`.
   */
  const within = <T>(what: string, promise: Promise<T>, late?: (value: T) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let gaveUp = false;
      const timer = setTimeout(() => {
        gaveUp = true;
        reject(new Error(`sockjs-rx/redis: ${what}: no answer from Redis in ${RELAY_TIMEOUT_MS} ms`));
      }, RELAY_TIMEOUT_MS);
      promise.then(
        (value) => {
          clearTimeout(timer);
          if (gaveUp) late?.(value);
          else resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });

  /** Claims another process took while Redis could not be reached (or lost them all, restarted). */
  const lostClaims = new Subject<{ readonly session: string; readonly address: string }>();

  /**
   * Renews `keys` of `address` (setting again those that expired); the ones another address
   * holds are asked about again after RECHECK_MS, since the other's claim may be one made after
   * its caller gave up, about to be undone. Held still, they are lost: said once, in one line.
   */
  const renewKeys = (address: string, keys: string[], recheck: boolean): void => {
    publisher.eval(RENEW, { keys, arguments: [address, String(claimTtl)] }).then(
      (reply) => {
        const lost = Array.isArray(reply) ? reply.map(String).filter((key) => claims.get(key) === address) : [];
        if (lost.length === 0) return;
        if (recheck) {
          const again = setTimeout(() => {
            if (!closed && publisher.isReady) renewKeys(address, lost, false);
          }, RECHECK_MS);
          again.unref?.();
          return;
        }
        log('error', `sockjs-rx/redis: ${count(lost.length)} session claims were taken by another process while Redis could not be reached: ${lost.slice(0, 3).join(', ')}${lost.length > 3 ? ', …' : ''}; their sessions here are closed`);
        for (const key of lost) {
          claims.delete(key);
          lostClaims.next({ session: key.slice(sessionKey('').length), address });
        }
      },
      (error: unknown) => {
        if (!closed) log('error', `sockjs-rx/redis: renewing session claims failed: ${errorText(error)}`);
      },
    );
  };

  const renew = (): void => {
    if (!publisher.isReady) return;
    const byAddress = new Map<string, string[]>();
    for (const [key, address] of claims) {
      const keys = byAddress.get(address);
      if (keys) keys.push(key);
      else byAddress.set(address, [key]);
    }
    for (const [address, keys] of byAddress) {
      for (let i = 0; i < keys.length; i += RENEW_BATCH) renewKeys(address, keys.slice(i, i + RENEW_BATCH), true);
    }
  };

  /** Resolves once `channel` is subscribed and confirmed here; rejects after CONFIRM_WAIT_MS or if it is not subscribed. */
  const confirmed = async (channel: string): Promise<void> => {
    const started = Date.now();
    for (;;) {
      const state = channels.get(channel);
      if (!state) throw new Error(`sockjs-rx/redis: ${channel} is not subscribed here`);
      if (state.confirmed) return;
      if (Date.now() - started > CONFIRM_WAIT_MS) throw new Error(`sockjs-rx/redis: SUBSCRIBE ${prefix + channel} is not confirmed after ${CONFIRM_WAIT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  /** Deletes `key` if `address` holds it; one that cannot be deleted now expires within claim_ttl. */
  const unclaim = (key: string, address: string): void => {
    if (closed || !publisher.isReady) return;
    publisher.eval(RELEASE, { keys: [key], arguments: [address] }).catch((error: unknown) => {
      if (!closed) log('error', `sockjs-rx/redis: releasing ${key} failed: ${errorText(error)}`);
    });
  };

  const claimed = (key: string, address: string): void => {
    claims.set(key, address);
    if (renewal === null) {
      renewal = setInterval(renew, claimTtl / 3);
      renewal.unref?.();
    }
  };

  const released = (key: string): void => {
    claims.delete(key);
    if (claims.size === 0 && renewal !== null) {
      clearInterval(renewal);
      renewal = null;
    }
  };

  return {
    claim: async (session, address) => {
      // A session is claimed only once what is relayed to its owner can arrive.
      await confirmed(relayChannel(address));
      const key = sessionKey(session);
      const owner = await now(
        'claim',
        () => publisher.eval(CLAIM, { keys: [key], arguments: [address, String(claimTtl)] }),
        // Made after the caller gave up on it (Redis hung): undone, since no session opened.
        (late) => {
          if (late === null || late === undefined) unclaim(key, address);
        },
      );
      if (owner === null || owner === undefined) {
        claimed(key, address);
        return null;
      }
      return String(owner);
    },

    owner: (session) =>
      now('owner', async () => {
        const owner = await publisher.get(sessionKey(session));
        return owner === null || owner === undefined ? null : String(owner);
      }),

    release(session, address) {
      const key = sessionKey(session);
      if (claims.get(key) !== address) return;
      released(key);
      unclaim(key, address);
    },

    deliver: (address, message) =>
      now('relay', () => publisher.publish(prefix + relayChannel(address), message)).then(
        (receivers) => {
          relayCounts.relayed++;
          return Number(receivers) > 0;
        },
        (error: unknown) => {
          relayCounts.relayFailed++;
          throw error;
        },
      ),

    inbox: (address) => messages(relayChannel(address)),

    interruptions: () => interruptions.asObservable(),

    claimsLost: () => lostClaims.asObservable(),

    listening: (address) =>
      now('listening', async () => {
        const channel = prefix + relayChannel(address);
        const counts = await publisher.pubSubNumSub([channel]);
        return Number(counts[channel] ?? 0) > 0;
      }),

    publish(channel, message) {
      if (closed) {
        log('error', `sockjs-rx/redis: publish on ${JSON.stringify(channel)} after close() is dropped`);
        return;
      }
      if (held.length === 0 && sendable()) send(channel, message);
      else hold(channel, message);
    },

    messages,

    ready: () => connected,

    stats: () => ({ ...counts, held: held.length, heldSize: held.size, ...relayCounts, claims: claims.size }),

    close() {
      closed = true;
      if (renewal !== null) clearInterval(renewal);
      renewal = null;
      closing ??= (async () => {
        // What is held goes out if the publisher can send it, without waiting for subscriptions:
        // the subscribers here are completed at once.
        if (held.length > 0) await attempt(publisher);
        if (publisher.isReady) {
          for (let h = held.shift(); h !== undefined; h = held.shift()) send(h.channel, h.message);
        } else if (held.length > 0) {
          const dropped = held.clear();
          counts.dropped += dropped;
          troubled('Redis unreachable').droppedAtClose += dropped;
        }
        for (const state of [...channels.values()]) for (const s of [...state.subscribers]) s.complete();
        channels.clear();
        endSubscriber();
        await endPublisher();
        recovered();
      })();
      return closing;
    },
  };
}
