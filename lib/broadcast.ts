/**
 * Fan-out: named channels that connections join and leave, and a bus that carries what is
 * published on a channel to every process serving it. In one process the bus is a Subject; across
 * processes it is Redis pub/sub (`sockjs-rx/redis`), or anything else with the same two methods.
 */
import { filter, map, NEVER, Observable, share, Subject, type Subscription } from 'rxjs';
import type { Connection } from './connection';
import type { RelayBus } from './relay';

/** Carries channel messages between processes. Each process must see every message once. */
export interface BroadcastBus {
  /** Publishes `message` on `channel`, to this process and every other one on the bus. */
  publish(channel: string, message: string): void;
  /** Every message published on `channel` by any process, in the order each publisher sent them. */
  messages(channel: string): Observable<string>;
}

/**
 * The bus of a single process: what is published comes straight back, and nowhere else. It also
 * relays sessions between the servers of this process that share it (`relay: true`), as
 * `sockjs-rx/redis` does between processes: messages are delivered on a later microtask, in order.
 */
export function localBus(): RelayBus {
  const published$ = new Subject<{ channel: string; message: string }>();
  const claims = new Map<string, string>();
  const inboxes = new Map<string, Subject<string>>();
  return {
    publish: (channel, message) => published$.next({ channel, message }),
    messages: (channel) =>
      published$.pipe(
        filter((p) => p.channel === channel),
        map((p) => p.message),
      ),
    claim: async (session, address) => {
      const owner = claims.get(session);
      if (owner !== undefined) return owner;
      claims.set(session, address);
      return null;
    },
    owner: async (session) => claims.get(session) ?? null,
    release: (session, address) => {
      if (claims.get(session) === address) claims.delete(session);
    },
    deliver: (address, message) =>
      Promise.resolve().then(() => {
        const inbox = inboxes.get(address);
        inbox?.next(message);
        return inbox !== undefined;
      }),
    inbox: (address) =>
      new Observable<string>((subscriber) => {
        const inbox = new Subject<string>();
        inboxes.set(address, inbox);
        const subscription = inbox.subscribe(subscriber);
        return () => {
          subscription.unsubscribe();
          if (inboxes.get(address) === inbox) inboxes.delete(address);
        };
      }),
    listening: async (address) => inboxes.has(address),
    // Nothing delivered within one process is ever lost.
    interruptions: () => NEVER,
    claimsLost: () => NEVER,
  };
}

/**
 * Where a channel's members are kept: a list of its own, or, for the channel of every
 * connection, the server's open connections (so that no connection carries a membership entry
 * and a close listener only for being there), less those that left it.
 */
interface Membership {
  has(connection: Connection): boolean;
  add(connection: Connection): boolean;
  delete(connection: Connection): boolean;
  readonly size: number;
  members(): Iterable<Connection>;
}

/** Members listed one by one; a member leaves by itself when it closes. */
class Listed implements Membership {
  /** Each member with the listener that makes it leave when it closes. */
  readonly #members = new Map<Connection, () => void>();

  constructor(private readonly left: (connection: Connection) => void) {}

  has(connection: Connection): boolean {
    return this.#members.has(connection);
  }

  add(connection: Connection): boolean {
    if (this.#members.has(connection)) return false;
    const onClose = () => this.left(connection);
    this.#members.set(connection, onClose);
    connection.once('close', onClose);
    return true;
  }

  delete(connection: Connection): boolean {
    const onClose = this.#members.get(connection);
    if (!onClose) return false;
    connection.off('close', onClose);
    return this.#members.delete(connection);
  }

  get size(): number {
    return this.#members.size;
  }

  members(): Iterable<Connection> {
    return this.#members.keys();
  }
}

/** Every open connection of a server, less those that left. */
class Everyone implements Membership {
  readonly #left = new WeakSet<Connection>();

  constructor(private readonly open: () => Iterable<Connection>) {}

  has(connection: Connection): boolean {
    return connection.readyState === 1 && !this.#left.has(connection) && [...this.open()].includes(connection);
  }

  add(connection: Connection): boolean {
    return this.#left.delete(connection);
  }

  delete(connection: Connection): boolean {
    if (!this.has(connection)) return false;
    this.#left.add(connection);
    return true;
  }

  get size(): number {
    let size = 0;
    for (const _ of this.members()) size++;
    return size;
  }

  *members(): Iterable<Connection> {
    for (const connection of this.open()) if (connection.readyState === 1 && !this.#left.has(connection)) yield connection;
  }
}

/** A named group of connections; what is published reaches every member in every process. */
export class Channel {
  readonly name: string;
  /** Every message published on this channel, by any process. */
  readonly messages$: Observable<string>;
  readonly #bus: BroadcastBus;
  readonly #members: Membership;
  #delivery: Subscription | null = null;

  /** `everyone`: the channel's members are these connections, as they are at each message. */
  constructor(name: string, bus: BroadcastBus, everyone?: () => Iterable<Connection>) {
    this.name = name;
    this.#bus = bus;
    this.messages$ = bus.messages(name).pipe(share());
    this.#members = everyone ? new Everyone(everyone) : new Listed((connection) => this.leave(connection));
  }

  /** Members in this process. */
  get size(): number {
    return this.#members.size;
  }

  has(connection: Connection): boolean {
    return this.#members.has(connection);
  }

  /** Adds a connection; it leaves by itself when it closes. */
  join(connection: Connection): this {
    if (connection.readyState !== 1) return this;
    this.#members.add(connection);
    this.listen();
    return this;
  }

  leave(connection: Connection): this {
    if (!this.#members.delete(connection)) return this;
    if (this.#members.size === 0) this.stop();
    return this;
  }

  /** Sends `message` to every member, in this process and the others on the bus. */
  publish(message: string): void {
    this.#bus.publish(this.name, message);
  }

  /** Delivers what the bus carries to the members here; a channel listens only while it has some. */
  listen(): void {
    this.#delivery ??= this.messages$.subscribe((message) => {
      // A member that closes while a message is delivered leaves the list; deliver to a copy.
      for (const member of [...this.#members.members()]) member.write(message);
    });
  }

  /** Stops delivering to members in this process. */
  stop(): void {
    this.#delivery?.unsubscribe();
    this.#delivery = null;
  }
}
