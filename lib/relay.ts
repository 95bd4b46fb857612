/**
 * Sessions reachable from every process (`relay: true`): a session lives in the process that
 * claimed it when it opened, and any other process on the bus serves its HTTP requests by
 * relaying them there.
 *
 *   client ─▶ process B (not the owner)                       process A (the owner)
 *             receiving request: attach ───── bus ─────────▶  proxy receiver in A's session table
 *             its response ◀── write / end ── bus ◀─────────  frames as A's session writes them
 *             send: messages ──────────────── bus ─────────▶  `incoming`, answered ─▶ reply ─▶ 204
 *
 * A claim is atomic (two processes never hold one) and is released when the session ends; should
 * the bus lose its claims, a process that finds its claim held by another closes its own copy.
 * Frames, replies and detaches go over one connection between two processes, so they arrive in
 * the order they were sent. A relay that breaks (the owner gone, the bus unreachable) ends what
 * it carried, visibly: a send is answered 404 or 503, a receiving response gets a close frame.
 */
import { randomUUID } from 'crypto';
import { EMPTY, merge, mergeMap, Observable, of, Subject, type Subscription } from 'rxjs';
import type { BroadcastBus } from './broadcast';
import { CLOSE_REASONS, type CloseReason, faultText } from './errors';
import { closeFrame } from './frames';
import type { Log } from './http/respond';
import type { Receiver, Sink } from './session/receiver';
import type { Reply, SessionEvent } from './session/reducer';
import { TRANSPORTS } from './transports';
import { isFramer, type ReceivingTransport } from './transports/transport';

/** What a bus does beyond broadcast, so that the processes on it can relay sessions. */
export interface RelayBus extends BroadcastBus {
  /**
   * Claims `session` for `address` if no one has it: resolves null once it is `address`'s, or
   * with the address that has it. Rejects when the bus cannot be asked now.
   */
  claim(session: string, address: string): Promise<string | null>;
  /** The address that has `session`, or null. Rejects when the bus cannot be asked now. */
  owner(session: string): Promise<string | null>;
  /** Gives up `address`'s claim on `session`; a claim of another address stays. */
  release(session: string, address: string): void;
  /**
   * Sends `message` to whoever listens on `address`, after every message sent to it before:
   * resolves true once delivered, false when no one listens there. Rejects at once when the bus
   * cannot send now: nothing is held back for later.
   */
  deliver(address: string, message: string): Promise<boolean>;
  /** What is delivered to `address`, while subscribed. */
  inbox(address: string): Observable<string>;
  /** Whether anyone listens on `address` now. Rejects when the bus cannot be asked now. */
  listening(address: string): Promise<boolean>;
  /** Emits whenever what was delivered to this process's inboxes may have been lost (its connection to the bus went down). */
  interruptions(): Observable<void>;
  /**
   * Claims of `address` the bus found held by another address when it asserted them again
   * (after an outage in which it lost them, or they expired): that session is no longer this
   * process's to serve.
   */
  claimsLost(): Observable<{ readonly session: string; readonly address: string }>;
}

export function isRelayBus(bus: BroadcastBus): bus is RelayBus {
  const relay = bus as Partial<RelayBus>;
  return ['claim', 'owner', 'release', 'deliver', 'inbox', 'listening', 'interruptions', 'claimsLost'].every((name) => typeof relay[name as keyof RelayBus] === 'function');
}

/**
 * To the owner of a session. An attach or a send carries its deadline `d` (ms since the epoch):
 * the process that relays it has answered its request by then, so the owner drops it after.
 */
type ToOwner =
  /**
   * Receiver `r` of process `f` is a `p` (protocol) response with query `q`; `k`, with
   * `authorize`, the digest of its credentials.
   */
  | { readonly t: 'attach'; readonly s: string; readonly r: number; readonly f: string; readonly p: string; readonly q: string; readonly d: number; readonly k?: string }
  | { readonly t: 'detach'; readonly s: string; readonly r: number; readonly f: string; readonly why: CloseReason }
  /** Send `q` of process `f` carries messages `m`; `k` as for an attach. */
  | { readonly t: 'send'; readonly s: string; readonly q: number; readonly f: string; readonly m: readonly string[]; readonly d: number; readonly k?: string };

/** From the owner `o` of session `s`, to the process that relays. */
type ToRelay =
  | { readonly t: 'write'; readonly r: number; readonly c: string; readonly s: string; readonly o: string }
  /** Receiver `r` is ended; `gone`: the owner has no such session (any more). */
  /** `late`: the owner dropped the attach, come after its deadline. */
  /** `denied`: the attach did not carry the credentials the session was opened with. */
  | { readonly t: 'end'; readonly r: number; readonly gone?: true; readonly late?: true; readonly denied?: true }
  /** `late`: the owner dropped the send, come after its deadline; `denied` as for an end. */
  | { readonly t: 'reply'; readonly q: number; readonly ok: boolean; readonly late?: true; readonly denied?: true };

/** How often the owners of what is relayed are checked for, while anything is. */
const WATCH_MS = 1000;

/** How often one receiving request looks for its session's owner before it gives up. */
const MAX_LOCATES = 3;

/**
 * How long an attach or a send may take to reach its owner: as long as a relay command may wait
 * for Redis (`RELAY_TIMEOUT_MS` of sockjs-rx/redis), after which its request has been answered.
 */
const DELIVERY_DEADLINE_MS = 2000;

/**
 * A message that reached no one is sent again this many times, this far apart, before its owner
 * is taken to be gone: an owner whose connection to the bus has just come back listens again
 * within moments.
 */
const REDELIVERIES = 4;
const REDELIVERY_MS = 250;

/** The receiving transports, by protocol name, for the owner to wrap frames as the relay's response does. */
const RECEIVING = new Map<string, ReceivingTransport>();
for (const use of Object.values(TRANSPORTS) as Array<{ receive?: ReceivingTransport | 'websocket' }>) {
  if (use.receive && use.receive !== 'websocket') RECEIVING.set(use.receive.protocol, use.receive);
}

/** A receiving response of this process whose session is owned by another. */
interface Relayed {
  readonly receiver: Receiver;
  readonly owner: string;
  readonly key: string;
  /** Characters written to the response and not yet taken by its client. */
  backlog: number;
  /** When the owner was last heard of for it (its attach sent, a frame come). */
  heard: number;
  /** The owner has no such session: look again, maybe opening it here. */
  gone(): void;
  /** The owner ended the receiver, or it cannot be reached: the relay is over. */
  done(): void;
}

interface PendingSend {
  readonly owner: string;
  readonly reply: Reply;
}

/** How the endpoint answers a request the relay cannot serve. */
export interface RelayAnswers {
  /** The bus cannot be asked (503 Session relay unavailable.). */
  unavailable(): void;
  /** A fault met once the owner is known, as the endpoint answers one met while it subscribes (500). */
  failed(error: unknown): void;
  /** The endpoint closes while the request waits for its owner's lookup (503 Server shutting down.). */
  abandoned(): void;
}

export interface RelayContext {
  readonly responseLimit: number;
  /** What a relayed response may have waiting for a slow client before it is dropped (`max_queue_size`). */
  readonly maxQueueSize: number;
  /**
   * The owner's `heartbeat_delay` (the processes share their options): a relayed response that
   * hears nothing for twice that, and 5 s more, is taken to be lost.
   */
  readonly heartbeatDelay: number;
  /** A receiver id unique in the endpoint. */
  readonly nextId: () => number;
  readonly log: Log;
  /** Whether sessions open only once `authorize` allows them. */
  readonly authorizes?: boolean;
  /** Whether a request with the credential digest `credential` may use `session`, a session here. */
  readonly admits?: (session: string, credential: string | undefined) => boolean;
  /** Whether `session` has opened here and not ended. */
  readonly live?: (session: string) => boolean;
  /** Counts a relayed request its owner refused for want of the session's credentials. */
  readonly refused?: () => void;
}

/**
 * One endpoint's side of the relay: it claims the sessions opened here, serves requests for
 * sessions owned elsewhere by relaying them, and turns what other processes relay to it into
 * session events.
 */
export class Relay {
  /** Where other processes reach this endpoint. */
  readonly address = randomUUID();
  /** Session events relayed to this endpoint, for its session table; subscribing opens its inbox. */
  readonly events$: Observable<SessionEvent>;
  /** Sessions claimed here and not yet ended. */
  readonly #owned = new Set<string>();
  /** Receiving responses here whose session is elsewhere, by receiver id. */
  readonly #relayed = new Map<number, Relayed>();
  /** Sends here waiting for their owner's answer, by number. */
  readonly #sends = new Map<number, PendingSend>();
  /** Requests being served here for sessions claimed here, by session: a claim is kept while any is. */
  readonly #served = new Map<string, number>();
  /** Receivers of other processes attached to sessions here, by `<address> <receiver id>`. */
  readonly #proxies = new Map<string, Receiver>();
  /** Detaches of proxy receivers whose process cannot be reached. */
  readonly #lostProxies = new Subject<SessionEvent>();
  #sendCount = 0;
  #watch: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly bus: RelayBus,
    private readonly prefix: string,
    private readonly context: RelayContext,
  ) {
    const interrupted$ = bus.interruptions().pipe(mergeMap(() => this.#interrupted()));
    const taken$ = bus.claimsLost().pipe(mergeMap(({ session, address }) => this.#taken(session, address)));
    this.events$ = merge(bus.inbox(this.address).pipe(mergeMap((text) => this.#received(text))), this.#lostProxies, interrupted$, taken$);
  }

  /** Whether `session` was opened here and has not ended. */
  owns(session: string): boolean {
    return this.#owned.has(session);
  }

  /**
   * The session opened here has ended: its claim goes, unless a request served here still uses
   * it (it may open the session again; `#leave` lets the claim go if it does not).
   */
  ended(session: string): void {
    if ((this.#served.get(session) ?? 0) > 0) return;
    this.#release(session);
  }

  #release(session: string): void {
    if (this.#owned.delete(session)) this.bus.release(this.#name(session), this.address);
  }

  /**
   * The events of a receiving request for a session not opened here: claimed (or claimed here
   * already), it is served here, and `local(true)` goes to this endpoint's table as it would
   * without a relay; owned elsewhere, the attach of `local(false)` makes its response the owner's receiver, and
   * `credential` goes with it for the owner to check. What the relay cannot serve, `answers`
   * answers (a `jsessionid` function that throws when the response starts is one of its faults).
   */
  receive(session: string, local: (opening: boolean) => Observable<SessionEvent>, answers: RelayAnswers, credential?: string): Observable<SessionEvent> {
    return new Observable<SessionEvent>((subscriber) => {
      /** Until the owner is known nothing is read or written; then the events go to the table (`local`) or over the bus. */
      let mode: 'locating' | 'relay' | 'local' = 'locating';
      let inner: Subscription | null = null;
      /** The response's attach, kept while it is relayed, in case its session must open here after all. */
      let attach: Extract<SessionEvent, { type: 'attach' }> | null = null;
      let relayed: Relayed | null = null;
      let locates = 0;
      let closed = false;
      /** Set once the first lookup has come back: from then on the request is answered by what follows it. */
      let looked = false;

      const relay = (owner: string, event: Extract<SessionEvent, { type: 'attach' }>) => {
        attach = event;
        const { receiver } = event;
        const entry: Relayed = {
          receiver,
          owner,
          key: session,
          backlog: 0,
          heard: Date.now(),
          gone: () => {
            this.#relayed.delete(receiver.id);
            relayed = null;
            if (locates < MAX_LOCATES) {
              locate();
              return;
            }
            end(receiver, CLOSE_REASONS.SESSION_UNREACHABLE);
            subscriber.complete();
          },
          done: () => {
            this.#relayed.delete(receiver.id);
            relayed = null;
            subscriber.complete();
          },
        };
        relayed = entry;
        this.#relayed.set(receiver.id, entry);
        this.#watchOwners();
        const query = splitQuery(event.request?.url);
        const message: ToOwner = { t: 'attach', s: session, r: receiver.id, f: this.address, p: receiver.protocol, q: query, d: Date.now() + DELIVERY_DEADLINE_MS };
        this.#deliver(
          owner,
          credential === undefined ? message : { ...message, k: credential },
          () => this.#lost(receiver.id),
          () => this.#relayed.get(receiver.id) === entry,
        );
      };

      /** The response's client went away (or the endpoint closes): the owner's session hears it as from a local one. */
      const detach = (why: CloseReason) => {
        const entry = relayed;
        if (!entry) return;
        this.#relayed.delete(entry.receiver.id);
        relayed = null;
        this.#deliver(entry.owner, { t: 'detach', s: session, r: entry.receiver.id, f: this.address, why }, () => undefined);
      };

      const onEvent = (event: SessionEvent) => {
        if (mode === 'local') {
          subscriber.next(event);
        } else if (event.type === 'attach') {
          relay(owner!, event);
        } else if (event.type === 'detach') {
          detach(event.why);
        }
      };
      let owner: string | null = null;

      /** Set while this request is served here (`#served`), until it is over. */
      let served = false;
      const leave = () => {
        if (served) this.#leave(session);
        served = false;
      };
      /** Runs what follows a lookup: a fault in it is this request's alone, never the endpoint's. */
      const guarded = (run: () => void) => {
        try {
          run();
        } catch (error) {
          inner?.unsubscribe();
          leave();
          if (!closed) answers.failed(error);
          subscriber.complete();
        }
      };

      /** Looks for the owner, claiming the session when there is none. */
      const locate = () => {
        locates++;
        let claimed: Promise<string | null>;
        try {
          claimed = this.bus.claim(this.#name(session), this.address);
        } catch (error) {
          claimed = Promise.reject(error);
        }
        claimed.then(
          (found) => guarded(() => {
            looked = true;
            if (closed) {
              if (found === null) this.bus.release(this.#name(session), this.address);
              return;
            }
            owner = found;
            if (attach && this.context.authorizes && (found === null || found === this.address)) {
              // Its owner is gone, and this response, relayed to it, was never asked about
              // (nor checked against a session here): its client is told, and opens a new session.
              if (found === null) this.bus.release(this.#name(session), this.address);
              end(attach.receiver, CLOSE_REASONS.SESSION_UNREACHABLE);
              inner?.unsubscribe();
              subscriber.complete();
              return;
            }
            if (found === null || (found === this.address && this.#owned.has(session))) {
              // The session opens here, or is here already: the table takes the response.
              this.#owned.add(session);
              mode = 'local';
              served = true;
              this.#served.set(session, (this.#served.get(session) ?? 0) + 1);
              if (attach) subscriber.next(attach);
            } else if (attach) {
              mode = 'relay';
              relay(found, attach);
            } else {
              mode = 'relay';
            }
            inner ??= local(mode === 'local').subscribe({
              next: (event) => guarded(() => onEvent(event)),
              error: (error: unknown) => guarded(() => {
                throw error;
              }),
              complete: () => {
                leave();
                subscriber.complete();
              },
            });
          }),
          (error: unknown) => guarded(() => {
            looked = true;
            if (closed) return;
            this.context.log('error', `sockjs-rx relay: cannot look up session ${JSON.stringify(session)}: ${errorText(error)}`);
            if (attach) end(attach.receiver, CLOSE_REASONS.SESSION_UNREACHABLE);
            else answers.unavailable();
            subscriber.complete();
          }),
        );
      };

      locate();
      return () => {
        closed = true;
        detach(CLOSE_REASONS.INTERRUPTED);
        // Torn down (the endpoint closes) while its owner was first looked up: answered here.
        if (!looked) answers.abandoned();
        inner?.unsubscribe();
        leave();
      };
    });
  }

  /**
   * A request served here for `session` is over. When it was the last, and the session has not
   * opened (answered without attaching: refused, a bad callback name, a client gone before its
   * turn), the claim made for it goes.
   */
  #leave(session: string): void {
    const left = (this.#served.get(session) ?? 1) - 1;
    if (left > 0) {
      this.#served.set(session, left);
      return;
    }
    this.#served.delete(session);
    if (this.#owned.has(session) && !this.context.live?.(session)) this.#release(session);
  }

  /**
   * The answer to a send for a session not opened here: its messages go to the owner, and the
   * request is answered once the owner has (404 when no process has the session, 503 when the
   * bus cannot be reached). A session opened here meanwhile takes it as a local send.
   */
  send(session: string, event: Extract<SessionEvent, { type: 'incoming' }>, answers: RelayAnswers, credential?: string): Observable<SessionEvent> {
    const { reply } = event;
    if (!reply) return EMPTY;
    if (this.#owned.has(session)) return of(event);
    return new Observable<SessionEvent>((subscriber) => {
      let closed = false;
      let looked = false;
      /** A fault here is this request's alone: answered as the endpoint answers one, never the endpoint's. */
      const guarded = (run: () => void) => {
        try {
          run();
        } catch (error) {
          if (!closed) answers.failed(error);
          subscriber.complete();
        }
      };
      let lookup: Promise<string | null>;
      try {
        lookup = this.bus.owner(this.#name(session));
      } catch (error) {
        lookup = Promise.reject(error);
      }
      lookup.then(
        (owner) =>
          guarded(() => {
            looked = true;
            if (closed) return;
            if (owner === this.address && this.#owned.has(session)) {
              // Opened here meanwhile: a local send.
              subscriber.next(event);
              subscriber.complete();
              return;
            }
            if (owner === null || owner === this.address) reply.unknownSession();
            else this.#relaySend(owner, session, event.messages, reply, credential);
            subscriber.complete();
          }),
        (error: unknown) =>
          guarded(() => {
            looked = true;
            if (closed) return;
            this.context.log('error', `sockjs-rx relay: cannot look up session ${JSON.stringify(session)}: ${errorText(error)}`);
            reply.unavailable();
            subscriber.complete();
          }),
      );
      return () => {
        // Torn down (the endpoint closes) while its owner was looked up: answered here.
        if (!looked) answers.abandoned();
        closed = true;
      };
    });
  }

  /** Relays a send's messages to the owner; the request is answered when the owner answers, or its relay fails. */
  #relaySend(owner: string, session: string, messages: readonly string[], reply: Reply, credential: string | undefined): void {
    const q = ++this.#sendCount;
    this.#sends.set(q, { owner, reply });
    this.#watchOwners();
    const message: ToOwner = { t: 'send', s: session, q, f: this.address, m: messages, d: Date.now() + DELIVERY_DEADLINE_MS };
    this.#deliver(
      owner,
      credential === undefined ? message : { ...message, k: credential },
      (delivered) => {
        if (!this.#sends.delete(q)) return;
        if (delivered === false) reply.unknownSession();
        else reply.unavailable();
        this.#unwatchIfIdle();
      },
      () => this.#sends.has(q),
    );
  }

  /**
   * What was delivered to this process may have been lost: what it relays ends as if the bus
   * could not be reached (a close frame, 503), rather than wait for what may never come.
   */
  #interrupted(): Observable<never> {
    if (this.#relayed.size + this.#sends.size > 0) this.context.log('error', `sockjs-rx relay: the bus was interrupted: ${this.#relayed.size} relayed response(s) and ${this.#sends.size} send(s) ended`);
    this.#endRelayed();
    return EMPTY;
  }

  /**
   * A session of this endpoint whose claim another process holds now (it was lost while the bus
   * could not be reached): both would serve it, so this one closes its own, which its clients
   * hear as `1011 "Session unreachable"`.
   */
  #taken(name: string, address: string): Observable<SessionEvent> {
    const prefix = `${this.prefix}/`;
    if (address !== this.address || !name.startsWith(prefix)) return EMPTY;
    const session = name.slice(prefix.length);
    if (!this.#owned.delete(session)) return EMPTY;
    return of({ type: 'close', key: session, why: CLOSE_REASONS.SESSION_UNREACHABLE });
  }

  /** Ends what is relayed from here: receivers get the close frame of `why`, sends 503. */
  #endRelayed(why: CloseReason = CLOSE_REASONS.SESSION_UNREACHABLE): void {
    for (const id of [...this.#relayed.keys()]) this.#lost(id, why);
    for (const [q, pending] of [...this.#sends]) {
      this.#sends.delete(q);
      this.#safely('a send at close', () => pending.reply.unavailable());
    }
    this.#unwatch();
  }

  /**
   * The endpoint closes: what it relays ends as its own sessions do, with 1001 "Server shutting
   * down" (their owners hear the same, and close those sessions with it), and the claims of its
   * sessions go, so that the other processes do not relay to an endpoint that is gone.
   */
  close(): void {
    this.#endRelayed(CLOSE_REASONS.SHUTTING_DOWN);
    for (const session of [...this.#owned]) this.#release(session);
  }

  #name(session: string): string {
    return `${this.prefix}/${session}`;
  }

  /** Sends one message; `failed` hears of it when it was not delivered (false: no one listens there). */
  /**
   * Sends one message; `failed` hears of it when it was not delivered (false: no one listens
   * there). A request that reached no one goes again while `wanted` says its request still waits.
   */
  #deliver(address: string, message: ToOwner | ToRelay, failed: (delivered: false | null) => void, wanted?: () => boolean, attempt = 0): void {
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (error) {
      this.context.log('error', `sockjs-rx relay: cannot encode a ${message.t}: ${errorText(error)}`);
      failed(null);
      return;
    }
    let delivered: Promise<boolean>;
    try {
      delivered = this.bus.deliver(address, text);
    } catch (error) {
      delivered = Promise.reject(error);
    }
    delivered.then(
      (delivered) => {
        if (delivered) return;
        // A request to an owner that may be coming back goes again, while its deadline allows;
        // a frame from the owner does not (its response's process is gone, or will be told).
        const deadline = 'd' in message ? message.d : 0;
        if (wanted && attempt < REDELIVERIES && Date.now() + REDELIVERY_MS < deadline) {
          // Not once its request has been answered some other way (its owner found gone, the bus interrupted).
          const again = setTimeout(() => {
            if (wanted()) this.#deliver(address, message, failed, wanted, attempt + 1);
          }, REDELIVERY_MS);
          again.unref?.();
          return;
        }
        this.#safely(`a ${message.t} no one took`, () => failed(false));
      },
      (error: unknown) => {
        this.context.log('error', `sockjs-rx relay: ${message.t} to ${address} failed: ${errorText(error)}`);
        this.#safely(`a ${message.t} that failed`, () => failed(null));
      },
    );
  }

  /** Runs `run` from a Promise's callback, where a throw would be an unhandled rejection: it is logged instead. */
  #safely(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.context.log('error', `sockjs-rx relay: ${what}: ${faultText(error)}`);
    }
  }

  /**
   * Writes a frame the owner sent to the response here. Nothing over the bus waits for a slow
   * client: past `max_queue_size` waiting, the response is dropped, and the owner's session
   * closes with 1013 "Send queue full", as it would for a local one.
   */
  #write(relayed: Relayed, chunk: string): void {
    relayed.heard = Date.now();
    relayed.backlog += chunk.length;
    relayed.receiver.sink.write(chunk, () => (relayed.backlog -= chunk.length));
    if (relayed.backlog <= this.context.maxQueueSize) return;
    this.context.log('info', `sockjs-rx relay: a relayed response of session ${JSON.stringify(relayed.key)} fell ${relayed.backlog} characters behind: dropped`);
    this.#relayed.delete(relayed.receiver.id);
    this.#deliver(relayed.owner, { t: 'detach', s: relayed.key, r: relayed.receiver.id, f: this.address, why: CLOSE_REASONS.SEND_QUEUE_FULL }, () => undefined);
    relayed.receiver.sink.end(CLOSE_REASONS.SEND_QUEUE_FULL, true);
    relayed.done();
  }

  /** A relayed receiver here whose owner cannot be reached: its client gets the close frame. */
  #lost(id: number, why: CloseReason = CLOSE_REASONS.SESSION_UNREACHABLE): void {
    const relayed = this.#relayed.get(id);
    if (!relayed) return;
    // Shut down here, the owner still has the session: it hears why its receiver went.
    if (why !== CLOSE_REASONS.SESSION_UNREACHABLE) {
      this.#deliver(relayed.owner, { t: 'detach', s: relayed.key, r: id, f: this.address, why }, () => undefined);
    }
    this.#safely('ending a relayed response', () => end(relayed.receiver, why));
    relayed.done();
  }

  /** What other processes relay to this one; a fault in handling one message is logged, and the relay goes on. */
  #received(text: string): Observable<SessionEvent> {
    try {
      return this.#handle(text);
    } catch (error) {
      this.context.log('error', `sockjs-rx relay: handling ${text.slice(0, 80)}: ${faultText(error)}`);
      return EMPTY;
    }
  }

  #handle(text: string): Observable<SessionEvent> {
    let message: ToOwner | ToRelay;
    try {
      message = JSON.parse(text) as ToOwner | ToRelay;
    } catch {
      this.context.log('error', `sockjs-rx relay: a message that is not JSON: ${text.slice(0, 80)}`);
      return EMPTY;
    }
    switch (message.t) {
      case 'write': {
        const relayed = this.#relayed.get(message.r);
        if (relayed) this.#write(relayed, message.c);
        // A frame for a response this process no longer relays (ended here while the bus was
        // interrupted): the owner's session hears its receiver is gone.
        else this.#deliver(message.o, { t: 'detach', s: message.s, r: message.r, f: this.address, why: CLOSE_REASONS.INTERRUPTED }, () => undefined);
        return EMPTY;
      }
      case 'end': {
        const relayed = this.#relayed.get(message.r);
        if (!relayed) return EMPTY;
        if (message.gone) {
          relayed.gone();
          return EMPTY;
        }
        if (message.late) {
          this.#lost(message.r);
          return EMPTY;
        }
        if (message.denied) {
          this.context.refused?.();
          this.#lost(message.r, CLOSE_REASONS.NOT_AUTHORIZED);
          return EMPTY;
        }
        relayed.receiver.sink.end(CLOSE_REASONS.NORMAL_CLOSURE);
        relayed.done();
        return EMPTY;
      }
      case 'reply': {
        const pending = this.#sends.get(message.q);
        if (!pending) return EMPTY;
        this.#sends.delete(message.q);
        if (message.ok) pending.reply.accept();
        else if (message.denied) {
          this.context.refused?.();
          pending.reply.refused();
        }
        else if (message.late) pending.reply.unavailable();
        else pending.reply.unknownSession();
        this.#unwatchIfIdle();
        return EMPTY;
      }
      case 'attach':
        if (this.#late(message)) return EMPTY;
        return this.#attach(message);
      case 'detach': {
        const proxy = this.#proxies.get(`${message.f} ${message.r}`);
        if (!proxy) return EMPTY;
        this.#proxies.delete(`${message.f} ${message.r}`);
        return of({ type: 'detach', key: message.s, receiverId: proxy.id, why: message.why ?? CLOSE_REASONS.INTERRUPTED });
      }
      case 'send': {
        if (this.#late(message)) return EMPTY;
        const { f, q } = message;
        const answer = (ok: boolean) => this.#deliver(f, { t: 'reply', q, ok }, () => undefined);
        if (!this.#owned.has(message.s)) {
          answer(false);
          return EMPTY;
        }
        if (this.context.admits && !this.context.admits(message.s, message.k)) {
          this.context.log('info', `sockjs-rx relay: a send for session ${JSON.stringify(message.s)} without its credentials: refused`);
          this.#deliver(f, { t: 'reply', q, ok: false, denied: true }, () => undefined);
          return EMPTY;
        }
        const reply: Reply = { accept: () => answer(true), unknownSession: () => answer(false), unavailable: () => answer(false), refused: () => answer(false) };
        return of({ type: 'incoming', key: message.s, messages: message.m, reply });
      }
      default:
        this.context.log('error', `sockjs-rx relay: a message of unknown type: ${text.slice(0, 80)}`);
        return EMPTY;
    }
  }

  /**
   * Whether an attach or a send came after its deadline: its request has been answered already
   * (503, or the close frame), so its messages must not reach the application now. Logged.
   */
  #late(message: Extract<ToOwner, { t: 'attach' | 'send' }>): boolean {
    const late = typeof message.d === 'number' ? Date.now() - message.d : 0;
    if (!(late > 0)) return false;
    const what = message.t === 'send' ? `a send of ${message.m.length} message(s)` : 'a receiving request';
    this.context.log('error', `sockjs-rx relay: ${what} for session ${JSON.stringify(message.s)} came ${late} ms after its deadline: dropped`);
    // Its process may not have answered it (this process was slow, not Redis): it is told, and
    // answers it now if it has not (a send 503, a receiving request the close frame).
    if (message.t === 'send') this.#deliver(message.f, { t: 'reply', q: message.q, ok: false, late: true }, () => undefined);
    else this.#deliver(message.f, { t: 'end', r: message.r, late: true }, () => undefined);
    return true;
  }

  /** A receiver of another process for a session here: its frames go back over the bus. */
  #attach(message: Extract<ToOwner, { t: 'attach' }>): Observable<SessionEvent> {
    const { s: key, r, f } = message;
    const transport = RECEIVING.get(message.p);
    const framer = transport?.framer(message.q);
    if (!this.#owned.has(key) || !transport || !framer || !isFramer(framer)) {
      this.#deliver(f, { t: 'end', r, gone: true }, () => undefined);
      return EMPTY;
    }
    if (this.context.admits && !this.context.admits(key, message.k)) {
      this.context.log('info', `sockjs-rx relay: a receiving request for session ${JSON.stringify(key)} without its credentials: refused`);
      this.#deliver(f, { t: 'end', r, denied: true }, () => undefined);
      return EMPTY;
    }
    const slot = `${f} ${r}`;
    const proxies = this.#proxies;
    const sink: Sink = {
      write: (chunk, taken) => {
        this.#deliver(f, { t: 'write', r, c: chunk, s: key, o: this.address }, () => this.#proxyLost(slot, key, receiver.id, f, r));
        taken?.();
      },
      end: (why) => {
        if (proxies.get(slot) !== receiver) return;
        proxies.delete(slot);
        this.#deliver(f, why === CLOSE_REASONS.UNKNOWN_SESSION ? { t: 'end', r, gone: true } : { t: 'end', r }, () => undefined);
      },
    };
    const receiver: Receiver = {
      id: this.context.nextId(),
      protocol: transport.protocol,
      framing: 'sockjs',
      wrap: framer.wrap,
      limit: transport.streaming ? this.context.responseLimit : 1,
      delayDisconnect: true,
      pings: false,
      sink,
    };
    proxies.set(slot, receiver);
    return of({ type: 'attach', key, receiver, request: null });
  }

  /** A proxy receiver whose process cannot be reached: its session hears it as a client gone. */
  #proxyLost(slot: string, key: string, receiverId: number, relaying: string, r: number): void {
    if (!this.#proxies.delete(slot)) return;
    this.#lostProxies.next({ type: 'detach', key, receiverId, why: CLOSE_REASONS.INTERRUPTED });
    // A frame that timed out may still reach it once the bus answers again: so may this end,
    // after it. (If not, the relaying process finds its response silent, and ends it.)
    this.#deliver(relaying, { t: 'end', r, late: true }, () => undefined);
  }

  /** Checks, while anything is relayed, that the owners it waits on still listen. */
  #watchOwners(): void {
    this.#watch ??= setInterval(() => this.#checkOwners(), WATCH_MS);
    this.#watch.unref?.();
  }

  #unwatchIfIdle(): void {
    if (this.#relayed.size === 0 && this.#sends.size === 0) this.#unwatch();
  }

  #unwatch(): void {
    if (this.#watch) clearInterval(this.#watch);
    this.#watch = null;
  }

  #checkOwners(): void {
    this.#unwatchIfIdle();
    // A relayed response its owner has not written to (not even a heartbeat) for that long has
    // lost its owner somewhere along the bus.
    const silent = Date.now() - (2 * this.context.heartbeatDelay + 5000);
    for (const [id, relayed] of [...this.#relayed]) {
      if (relayed.heard >= silent) continue;
      this.context.log('error', `sockjs-rx relay: a relayed response of session ${JSON.stringify(relayed.key)} heard nothing from its owner for ${Math.round((Date.now() - relayed.heard) / 1000)} s: ended`);
      this.#lost(id);
    }
    const owners = new Set<string>();
    for (const relayed of this.#relayed.values()) owners.add(relayed.owner);
    for (const pending of this.#sends.values()) owners.add(pending.owner);
    for (const owner of owners) {
      let listening: Promise<boolean>;
      try {
        listening = this.bus.listening(owner);
      } catch (error) {
        listening = Promise.reject(error);
      }
      listening.then(
        (yes) => {
          if (!yes) this.#safely(`the end of ${owner}`, () => this.#ownerGone(owner, false));
        },
        (error: unknown) => {
          this.context.log('error', `sockjs-rx relay: cannot check on ${owner}: ${errorText(error)}`);
          this.#safely(`the end of ${owner}`, () => this.#ownerGone(owner, true));
        },
      );
    }
  }

  /** Ends what waits on `owner`: it is gone (404, close frame), or the bus cannot be reached (503). */
  #ownerGone(owner: string, unreachable: boolean): void {
    for (const [id, relayed] of [...this.#relayed]) if (relayed.owner === owner) this.#lost(id);
    for (const [q, pending] of [...this.#sends]) {
      if (pending.owner !== owner) continue;
      this.#sends.delete(q);
      if (unreachable) pending.reply.unavailable();
      else pending.reply.unknownSession();
    }
    this.#unwatchIfIdle();
  }
}

/** Writes the close frame of `why` to a receiver here, and ends it. */
function end(receiver: Receiver, why: CloseReason): void {
  receiver.sink.write(receiver.wrap(closeFrame(why.code, why.reason)));
  receiver.sink.end(why);
}

function splitQuery(url: string | undefined): string {
  const at = url?.indexOf('?') ?? -1;
  return at === -1 ? '' : url!.slice(at + 1);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message || error.constructor.name : String(error);
}
