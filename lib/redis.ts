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
import { Observable, type Subscriber } from 'rxjs';
import { createClient, type RedisClientOptions } from 'redis';
import type { BroadcastBus } from './broadcast';
import type { LogSeverity } from './options';

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
}

/** A bus over Redis pub/sub. */
export interface RedisBus extends BroadcastBus {
  /** Resolves once both Redis connections are ready; rejects if node-redis gives up connecting. */
  ready(): Promise<void>;
  /**
   * Completes every `messages()` Observable and ends both connections, after sending what was
   * already published. Safe to call twice. Close the servers on the bus first.
   */
  close(): Promise<void>;
}

/** The default `prefix` of `redisBus`. */
export const DEFAULT_REDIS_PREFIX = 'sockjs-rx:';

/** The part of a node-redis client this bus uses. */
interface PubSubClient {
  /** Connected or connecting (node-redis reconnects while this holds). */
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  unsubscribe(channel: string, listener: (message: string) => void): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  off(event: 'error' | 'ready', listener: () => void): unknown;
}

/** One Redis channel in use here: the node-redis listener and the Observable subscribers it feeds. */
interface ChannelState {
  readonly listener: (message: string) => void;
  readonly subscribers: Set<Subscriber<string>>;
}

function defaultLog(severity: LogSeverity, message: string): void {
  if (severity === 'error') console.error(message);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A `BroadcastBus` over Redis: `publish` is a Redis PUBLISH, `messages(channel)` a SUBSCRIBE. It
 * holds two connections, one that publishes and one that subscribes, shared by every channel;
 * a channel is subscribed when its first Observable subscriber comes and unsubscribed when the
 * last one leaves. Connection errors are logged and node-redis reconnects by itself; what is
 * published while Redis is unreachable is sent once it is back, but subscribers of other
 * processes miss what Redis delivered while they were away, as always with pub/sub.
 */
export function redisBus(options: RedisBusOptions = {}): RedisBus {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  const log = options.log ?? defaultLog;
  const clientOptions: RedisClientOptions = { ...options.client, ...(options.url === undefined ? {} : { url: options.url }) };

  const connect = (role: string): PubSubClient => {
    const client: PubSubClient = createClient(clientOptions);
    // node-redis emits `error` on every failed reconnection attempt; one line per outage is enough.
    let failing = false;
    client.on('error', (error) => {
      if (failing) return;
      failing = true;
      log('error', `sockjs-rx/redis: ${role} connection: ${errorText(error)}`);
    });
    client.on('ready', () => {
      if (failing) log('info', `sockjs-rx/redis: ${role} connection is back`);
      failing = false;
    });
    return client;
  };
  /** Set by close(), once; from then on nothing is sent and failures of what was under way are expected. */
  let closed = false;
  let closing: Promise<void> | null = null;
  const publisher = connect('publish');
  const subscriber = connect('subscribe');
  // connect() settles only when the connection is up or node-redis gives up; until then commands
  // wait in node-redis's offline queue, in order.
  const connected = Promise.all([publisher.connect(), subscriber.connect()]).then(() => undefined);
  connected.catch((error: unknown) => {
    // close() before the connections were up ends them on purpose.
    if (!closed) log('error', `sockjs-rx/redis: cannot connect: ${errorText(error)}`);
  });

  const channels = new Map<string, ChannelState>();
  /** SUBSCRIBE commands sent and not yet confirmed by Redis. */
  let subscribing = 0;
  /** Publishes held back until those SUBSCRIBEs are confirmed, in the order they were made. */
  const held: Array<{ readonly channel: string; readonly message: string }> = [];

  const send = (channel: string, message: string): void => {
    publisher.publish(prefix + channel, message).catch((error: unknown) => {
      log('error', `sockjs-rx/redis: PUBLISH ${prefix + channel} failed: ${errorText(error)}`);
    });
  };

  // Redis delivers a message only to the connections subscribed when it runs the PUBLISH, and the
  // PUBLISH goes out on the other connection: sent at once, it could overtake a SUBSCRIBE still on
  // its way and be lost for a subscriber that already exists here. So while a SUBSCRIBE is
  // unconfirmed every publish waits, and once none is, the held ones go out first, in order.
  const settled = (): void => {
    subscribing--;
    if (subscribing > 0) return;
    for (const { channel, message } of held.splice(0)) send(channel, message);
  };

  const subscribe = (channel: string, state: ChannelState): void => {
    subscribing++;
    subscriber.subscribe(prefix + channel, state.listener).then(settled, (error: unknown) => {
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
    subscriber.unsubscribe(prefix + channel, state.listener).catch((error: unknown) => {
      log('error', `sockjs-rx/redis: UNSUBSCRIBE ${prefix + channel} failed: ${errorText(error)}`);
    });
  };

  /**
   * Ends `client` once what is queued on it has been sent. node-redis's close() waits for the
   * replies of every queued command, which never come while Redis is unreachable: a client still
   * connecting is given until it is ready or fails once, and a failing one is destroyed, giving
   * up what it holds.
   */
  const end = async (client: PubSubClient): Promise<void> => {
    if (!client.isOpen) return;
    if (!client.isReady) {
      await new Promise<void>((resolve) => {
        const done = () => {
          client.off('ready', done);
          client.off('error', done);
          resolve();
        };
        client.on('ready', done);
        client.on('error', done);
      });
    }
    if (client.isReady) await client.close();
    else client.destroy();
  };

  return {
    publish(channel, message) {
      if (closed) {
        log('error', `sockjs-rx/redis: publish on ${JSON.stringify(channel)} after close() is dropped`);
        return;
      }
      if (subscribing > 0) held.push({ channel, message });
      else send(channel, message);
    },

    messages(channel) {
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
            listener: (message) => {
              // A copy: a subscriber that leaves while being served must not skip the next one.
              for (const s of [...subscribers]) s.next(message);
            },
          };
          channels.set(channel, state);
          subscribe(channel, state);
        }
        state.subscribers.add(who);
        const joined = state;
        return () => leave(channel, joined, who);
      });
    },

    ready: () => connected,

    close() {
      closed = true;
      closing ??= (async () => {
        for (const { channel, message } of held.splice(0)) send(channel, message);
        for (const state of [...channels.values()]) for (const s of [...state.subscribers]) s.complete();
        channels.clear();
        await Promise.all([publisher, subscriber].map(end));
      })();
      return closing;
    },
  };
}
