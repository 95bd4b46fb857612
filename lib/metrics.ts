/**
 * What a server counts: sessions by transport and close code, messages and bytes each way,
 * heartbeats, dead peers, refused requests by cause, and what its bus did. Each prefix counts in
 * plain number fields of its own `PrefixCounters`, which cost an addition each, shared by the
 * endpoints that serve it; `Server.metrics()` reads them into a `MetricsSnapshot` when asked.
 */

import { CLOSE_REASONS } from './errors';

/** Why a request, a websocket handshake or a message was refused. */
export type RefusalCause = 'origin' | 'size' | 'rate' | 'cap' | 'authorization' | 'bad_input';

export const REFUSAL_CAUSES: readonly RefusalCause[] = ['origin', 'size', 'rate', 'cap', 'authorization', 'bad_input'];

/**
 * The most close codes counted apart per prefix beside the server's own (1000 to 1015, and every
 * code of `CLOSE_REASONS`), which always are; the rest are counted as `other`.
 */
export const MAX_CLOSE_CODES = 64;

const SERVER_CODES: ReadonlySet<number> = new Set([...Array.from({ length: 16 }, (_, i) => 1000 + i), ...Object.values(CLOSE_REASONS).map((why) => why.code)]);

/** One prefix's figures in a snapshot. Counters count since the server was created. */
export interface PrefixMetrics {
  /** Sessions open now, by transport (`websocket`, `xhr-streaming`, ...). */
  readonly sessionsOpen: Readonly<Record<string, number>>;
  /** Sessions opened, by transport. */
  readonly sessionsOpened: Readonly<Record<string, number>>;
  /** Sessions closed, by the code of their close (`"1000"`, `"1002"`, `"3000"` ...; past 64 codes, `"other"`). */
  readonly sessionsClosed: Readonly<Record<string, number>>;
  /** Messages from clients handed to the application. */
  readonly messagesReceived: number;
  /** Messages the application sent. */
  readonly messagesSent: number;
  /** Messages from clients that went nowhere: over a rate limit (`drop`), or come while their session closed. */
  readonly messagesDropped: number;
  /** Bytes of the payloads clients sent: websocket messages and send bodies, as they came. */
  readonly bytesReceived: number;
  /** UTF-8 bytes of the messages the application sent. */
  readonly bytesSent: number;
  /**
   * Bytes written to open sessions and not yet taken by their clients: waiting in the
   * connection or the session for a receiver, or in a socket not yet flushed to the kernel.
   */
  readonly bytesQueued: number;
  /** Heartbeat frames sent. */
  readonly heartbeats: number;
  /** Websocket peers closed for answering no ping within a heartbeat interval. */
  readonly deadPeers: number;
  /** Requests, handshakes and messages refused, by cause. */
  readonly refused: Readonly<Record<RefusalCause, number>>;
}

/** What the bus did, as far as it counts it: every field is 0 on a bus that does not. */
export interface BusMetrics {
  /** Messages published on channels by this server (`broadcast()`, `channel().publish()`). */
  readonly published: number;
  /** Publishes the bus could not make (Redis refused them or was unreachable). */
  readonly publishFailed: number;
  /** Publishes the bus dropped, held past its limit. */
  readonly publishDropped: number;
  /** With `relay`: messages relayed to other processes. */
  readonly relayed: number;
  /** With `relay`: messages that could not be relayed. */
  readonly relayFailed: number;
}

export interface MetricsSnapshot {
  /** When it was taken, in milliseconds since the epoch (the server's scheduler's `now()`). */
  readonly time: number;
  /** By prefix, as the prefix is served (`''` for the root). */
  readonly prefixes: Readonly<Record<string, PrefixMetrics>>;
  readonly bus: BusMetrics;
}

/** The counters of one endpoint; its code adds to the fields directly. */
export class PrefixCounters {
  readonly sessionsOpen = new Map<string, number>();
  readonly sessionsOpened = new Map<string, number>();
  readonly sessionsClosed = new Map<number | 'other', number>();
  messagesReceived = 0;
  messagesSent = 0;
  messagesDropped = 0;
  bytesReceived = 0;
  bytesSent = 0;
  heartbeats = 0;
  deadPeers = 0;
  readonly refused: Record<RefusalCause, number> = { origin: 0, size: 0, rate: 0, cap: 0, authorization: 0, bad_input: 0 };

  opened(transport: string): void {
    bump(this.sessionsOpened, transport, 1);
    bump(this.sessionsOpen, transport, 1);
  }

  /**
   * A session over `transport` closed with `code`. Past `MAX_CLOSE_CODES` distinct codes (a
   * client chooses its websocket's), the others are counted together as `other`, so that the
   * label never has more values than that.
   */
  closed(transport: string, code: number): void {
    bump(this.sessionsOpen, transport, -1);
    const apart = SERVER_CODES.has(code) || this.sessionsClosed.has(code) || this.#chosen++ < MAX_CLOSE_CODES;
    bump(this.sessionsClosed, apart ? code : 'other', 1);
  }

  /** Codes counted apart that are not the server's own. */
  #chosen = 0;

  /** These counters as a snapshot's figures; `bytesQueued` is measured by the endpoint when asked. */
  snapshot(bytesQueued: number): PrefixMetrics {
    return {
      sessionsOpen: Object.fromEntries(this.sessionsOpen),
      sessionsOpened: Object.fromEntries(this.sessionsOpened),
      sessionsClosed: Object.fromEntries([...this.sessionsClosed].map(([code, n]) => [String(code), n])),
      messagesReceived: this.messagesReceived,
      messagesSent: this.messagesSent,
      messagesDropped: this.messagesDropped,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      bytesQueued,
      heartbeats: this.heartbeats,
      deadPeers: this.deadPeers,
      refused: { ...this.refused },
    };
  }
}

function bump<K>(map: Map<K, number>, key: K, delta: number): void {
  map.set(key, (map.get(key) ?? 0) + delta);
}
