/**
 * Fan-out: named channels that connections join and leave, and a bus that carries what is
 * published on a channel to every process serving it. In one process the bus is a Subject; across
 * processes it is Redis pub/sub (`sockjs-rx/redis`), or anything else with the same two methods.
 */
import { filter, map, type Observable, share, Subject, type Subscription } from 'rxjs';
import type { Connection } from './connection';

/** Carries channel messages between processes. Each process must see every message once. */
export interface BroadcastBus {
  /** Publishes `message` on `channel`, to this process and every other one on the bus. */
  publish(channel: string, message: string): void;
  /** Every message published on `channel` by any process, in the order each publisher sent them. */
  messages(channel: string): Observable<string>;
}

/** The bus of a single process: what is published comes straight back, and nowhere else. */
export function localBus(): BroadcastBus {
  const published$ = new Subject<{ channel: string; message: string }>();
  return {
    publish: (channel, message) => published$.next({ channel, message }),
    messages: (channel) =>
      published$.pipe(
        filter((p) => p.channel === channel),
        map((p) => p.message),
      ),
  };
}

/** A named group of connections; what is published reaches every member in every process. */
export class Channel {
  readonly name: string;
  /** Every message published on this channel, by any process. */
  readonly messages$: Observable<string>;
  readonly #bus: BroadcastBus;
  /** Members here, each with the listener that makes it leave when it closes. */
  readonly #members = new Map<Connection, () => void>();
  #delivery: Subscription | null = null;

  constructor(name: string, bus: BroadcastBus) {
    this.name = name;
    this.#bus = bus;
    this.messages$ = bus.messages(name).pipe(share());
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
    if (this.#members.has(connection) || connection.readyState !== 1) return this;
    const onClose = () => this.leave(connection);
    this.#members.set(connection, onClose);
    connection.once('close', onClose);
    // The channel listens to the bus only while it has members here.
    this.#delivery ??= this.messages$.subscribe((message) => {
      for (const member of this.#members.keys()) member.write(message);
    });
    return this;
  }

  leave(connection: Connection): this {
    const onClose = this.#members.get(connection);
    if (!onClose) return this;
    connection.off('close', onClose);
    this.#members.delete(connection);
    if (this.#members.size === 0) this.stop();
    return this;
  }

  /** Sends `message` to every member, in this process and the others on the bus. */
  publish(message: string): void {
    this.#bus.publish(this.name, message);
  }

  /** Stops delivering to members in this process. */
  stop(): void {
    this.#delivery?.unsubscribe();
    this.#delivery = null;
  }
}
