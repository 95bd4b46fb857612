/**
 * The application's side of a session: the `sockjs` package's Connection (events, `write`,
 * `close`, the request's details), the reactive surface (`messages$`, `closed$`, `send`), and a
 * Node Duplex whose writes are acknowledged only once the session has taken them.
 */
import { randomUUID } from 'crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'http';
import type { AddressInfo } from 'net';
import { Duplex } from 'stream';
import { StringDecoder } from 'string_decoder';
import { AsyncSubject, type Observable, Subject } from 'rxjs';
import { MESSAGE_OVERHEAD, messageCost, type SessionEvent, type SessionKey } from './session/reducer';
import type { PrefixCounters } from './metrics';
import { type CloseReason, CLOSE_REASONS, faultText, sockjsError } from './errors';
import type { RateLimiter } from './flood';

/** WebSocket-style ready states, as the `sockjs` package numbers them. */
export type ReadyState = 0 | 1 | 2 | 3;
export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;

/** Request headers copied to `Connection.headers`; the same list as the sockjs package, never the cookie. */
const EXPOSED_HEADERS = [
  'referer',
  'x-client-ip',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-cluster-client-ip',
  'via',
  'x-real-ip',
  'x-forwarded-proto',
  'x-ssl',
  'dnt',
  'host',
  'user-agent',
  'accept-language',
] as const;

export function exposedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const exposed: Record<string, string> = {};
  for (const name of EXPOSED_HEADERS) {
    const value = headers[name];
    if (value) exposed[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return exposed;
}

export interface ConnectionInit {
  readonly key: SessionKey;
  readonly prefix: string;
  readonly protocol: string;
  readonly request: IncomingMessage;
  readonly post: (event: SessionEvent) => void;
  /**
   * Bytes that may wait in the connection, in each direction, before the session is closed: sent
   * by the application and not yet taken by a slow client, or received and not yet read by a
   * paused application.
   */
  readonly maxQueueSize: number;
  /** Where a fault of the application's listeners is reported. */
  readonly log: (severity: string, message: string) => void;
  /** What `authorize` returned for the session (undefined without it). */
  readonly auth?: unknown;
  /** The digest of the credentials the session was opened with, which its later requests must repeat. */
  readonly credential?: string | undefined;
  /** The address the session counts against for `max_sessions_per_address`. */
  readonly client?: string;
  /** The session's inbound rate limit, with `rate_limit`. */
  readonly limiter?: RateLimiter | null;
  /** Where the messages the application sends are counted, with metrics. */
  readonly counters?: PrefixCounters | null;
}

/**
 * The session's side of a connection, which the application never sees: what the session table
 * does to it. `Connection.open` returns it; the endpoint keeps it while the session lives.
 */
export interface ConnectionControl {
  /** The application's side. */
  readonly connection: Connection;
  /** The digest of the credentials the session was opened with (with `authorize`). */
  readonly credential: string | undefined;
  /** The address the session counts against for `max_sessions_per_address`. */
  readonly client: string;
  /** The session's inbound rate limit, or null. */
  readonly limiter: RateLimiter | null;
  /** Bytes the application wrote that have not gone to the session yet (in its Writable side's buffer). */
  pending(): number;
  /** Client to application: hands it messages; false once its Readable side holds as much as it should. */
  deliver(messages: readonly string[]): boolean;
  /**
   * Runs `then` now if the application reads, else once it reads again (or the connection
   * closes); what waits meanwhile counts `cost` bytes against `max_queue_size`.
   */
  whenReading(then: () => void, cost: number): void;
  /** Session to application: the session has closed with `why`; the connection emits `close`. */
  sessionClosed(why: CloseReason): void;
}

type WriteCallback = (error?: Error | null) => void;

function toCode(code: number | string | undefined): number {
  const n = typeof code === 'string' ? Number.parseInt(code, 10) : code;
  return typeof n === 'number' && Number.isInteger(n) ? n : 1000;
}

function emitDrain(connection: Connection): void {
  if (connection.readyState === OPEN) connection.emit('drain');
}

/** `A`: what `authorize` returned for the session, kept as `auth`. */
export class Connection<A = unknown> extends Duplex {
  readonly prefix: string;
  /** What `authorize` returned when it allowed the session to open; undefined without `authorize`. */
  readonly auth: A;
  /** The transport: `websocket`, `websocket-raw`, `xhr-streaming`, `xhr-polling`, `eventsource`, `htmlfile` or `jsonp-polling`. */
  readonly protocol: string;
  /** The URL of the request that opened the session. */
  readonly url: string;
  /** A safe subset of the request headers (never `cookie`). */
  readonly headers: Record<string, string>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly address: AddressInfo | Record<string, never>;
  readonly #key: SessionKey;
  readonly #post: (event: SessionEvent) => void;
  readonly #maxQueueSize: number;
  readonly #log: (severity: string, message: string) => void;
  readonly #counters: PrefixCounters | null;
  /** Bytes written by the application and not yet taken by the session (see `messageCost`). */
  #sending = 0;
  /** Of `#sending`, what has gone to the session, waiting there (or in the socket) for the client. */
  #posted = 0;
  /** `write` returned false by the cost of what waits, where Node's count would not have. */
  #owesDrain = false;
  /** Bytes pushed to the Readable side and not yet read by the application. */
  #receiving = 0;
  /** What waits for the application to read again: held answers and paused sources. */
  #held: Array<() => void> | null = null;
  #readyState: ReadyState = OPEN;
  #id: string | null = null;
  /** Why the session closed, once it has. */
  #why: CloseReason | null = null;
  // Made on first use: most applications use either the events or the observables, and a
  // server holds thousands of idle connections.
  #messages: Subject<string> | null = null;
  #messages$: Observable<string> | null = null;
  #closed: AsyncSubject<CloseReason> | null = null;
  #closed$: Observable<CloseReason> | null = null;
  #decoder: StringDecoder | null = null;

  /** The one implementation of `ConnectionControl`: declared in here, so it reaches the private members. */
  static readonly #Control = class implements ConnectionControl {
    readonly credential: string | undefined;
    readonly client: string;
    readonly limiter: RateLimiter | null;

    constructor(
      readonly connection: Connection,
      init: ConnectionInit,
    ) {
      this.credential = init.credential;
      this.client = init.client ?? '';
      this.limiter = init.limiter ?? null;
    }

    deliver(messages: readonly string[]): boolean {
      return this.connection.#deliver(messages);
    }

    pending(): number {
      return this.connection.#sending - this.connection.#posted;
    }

    whenReading(then: () => void, cost: number): void {
      this.connection.#whenReading(then, cost);
    }

    sessionClosed(why: CloseReason): void {
      this.connection.#sessionClosed(why);
    }
  };

  /** Opens the application's connection to a session, and returns the session's side of it. */
  static open(init: ConnectionInit): ConnectionControl {
    return new Connection.#Control(new Connection(init), init);
  }

  private constructor(init: ConnectionInit) {
    super({ readableObjectMode: true, decodeStrings: false, allowHalfOpen: false });
    this.#key = init.key;
    this.#post = init.post;
    this.#maxQueueSize = init.maxQueueSize;
    this.#log = init.log;
    this.#counters = init.counters ?? null;
    this.prefix = init.prefix;
    this.auth = init.auth as A;
    this.protocol = init.protocol;
    const { request } = init;
    this.url = request.url ?? '';
    this.headers = exposedHeaders(request.headers);
    const socket = request.socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    const address = socket.address();
    this.address = 'port' in address ? address : {};
  }

  /** Each message from the client; completes when the connection closes. */
  get messages$(): Observable<string> {
    if (!this.#messages$) {
      this.#messages = new Subject<string>();
      if (this.#why) this.#messages.complete();
      this.#messages$ = this.#messages.asObservable();
    }
    return this.#messages$;
  }

  /** Emits the close code and reason once, then completes. */
  get closed$(): Observable<CloseReason> {
    if (!this.#closed$) {
      this.#closed = new AsyncSubject<CloseReason>();
      if (this.#why) {
        this.#closed.next(this.#why);
        this.#closed.complete();
      }
      this.#closed$ = this.#closed.asObservable();
    }
    return this.#closed$;
  }

  /** A random id of this connection (not the session id of the URL), made when first read. */
  get id(): string {
    this.#id ??= randomUUID();
    return this.#id;
  }

  /** The path of `url`, without its query. */
  get pathname(): string {
    return this.url.split('?')[0] ?? '';
  }

  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  get readyState(): ReadyState {
    return this.#readyState;
  }

  /**
   * Sends one message. Like the sockjs package, any value is sent as its text (`String(value)`);
   * a Buffer is read as UTF-8. Returns `false` when the caller should wait for `drain`, and when
   * the connection is closing or closed: then the message is dropped at once, and a callback is
   * called with a `SOCKJS_ERR_CONNECTION_CLOSED` error (no `error` event is emitted).
   */
  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    const given = typeof encoding === 'function' ? encoding : callback;
    // The callback runs later, from the stream's machinery or a socket's flush: guarded like a listener.
    const done = given && ((error?: Error | null) => this.#guard('write callback', () => given(error)));
    if (this.#readyState !== OPEN || this.writableEnded) {
      if (done) process.nextTick(done, sockjsError('SOCKJS_ERR_CONNECTION_CLOSED'));
      return false;
    }
    const data = typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : String(chunk);
    const cost = messageCost(data);
    this.#sending += cost;
    const counters = this.#counters;
    if (counters) {
      counters.messagesSent++;
      counters.bytesSent += cost - MESSAGE_OVERHEAD;
    }
    const accepted = typeof encoding === 'function' || encoding === undefined ? super.write(data, done) : super.write(data, encoding, done);
    // A writer that ignores backpressure would grow this buffer without bound; past the limit
    // the client is taken to be too slow for the stream it is sent.
    if (this.#sending > this.#maxQueueSize) {
      this.close(CLOSE_REASONS.SEND_QUEUE_FULL.code, CLOSE_REASONS.SEND_QUEUE_FULL.reason);
      return false;
    }
    if (!accepted) return false;
    // Node weighs a string by its length, so empty messages would never ask a writer to wait;
    // by their cost they do, and this connection then owes the writer its `drain`.
    if (this.#sending > this.writableHighWaterMark) {
      this.#owesDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Every event goes through here, those Node's stream machinery emits on later ticks included:
   * a listener of the application that throws is logged and closes this session with 1011, and
   * the process never sees it. So does an `error` event no one listens for.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'data' && typeof args[0] === 'string') this.#receiving -= messageCost(args[0]);
    // Inline rather than through #guard: this runs once per message.
    try {
      return super.emit(event, ...args);
    } catch (error) {
      this.#fault(`${String(event)} listener`, error);
      return true;
    }
  }

  /** Runs application code: a throw is logged and closes this session with 1011. */
  #guard(what: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#fault(what, error);
    }
  }

  #fault(what: string, error: unknown): void {
    this.#log('error', `connection ${String(this.#key)}: ${what}: ${faultText(error)}`);
    this.close(CLOSE_REASONS.INTERNAL_ERROR.code, CLOSE_REASONS.INTERNAL_ERROR.reason);
  }

  /**
   * Sends `chunk` if given, as `write` does (dropped on a closing connection), then closes the
   * session normally. A callback runs guarded, like a write callback.
   */
  override end(chunk?: unknown, encoding?: unknown, callback?: unknown): this {
    const given = [chunk, encoding, callback].find((arg): arg is WriteCallback => typeof arg === 'function');
    if (typeof chunk !== 'function' && chunk !== undefined && chunk !== null) {
      this.write(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined);
    }
    if (!given) return super.end();
    return super.end((error?: Error | null) => this.#guard('end callback', () => given(error)));
  }

  /** Sends one message; `false` asks the caller to wait for `drain`, as `write` does. */
  send(message: string): boolean {
    return this.write(message);
  }

  /**
   * Asks the session to close with a code and reason (default 1000, "Normal closure"); the
   * `close` event follows once it has. Returns `false` when it was not open.
   */
  close(code?: number | string, reason?: string): boolean {
    if (this.#readyState !== OPEN) return false;
    this.#readyState = CLOSING;
    this.#post({ type: 'close', key: this.#key, why: { code: toCode(code), reason: reason ?? 'Normal closure' } });
    return true;
  }

  override toString(): string {
    return `<SockJSConnection ${this.id}>`;
  }

  override _read(): void {
    // Messages are pushed as they arrive; what was held while the application did not read
    // (a client's socket, the answer to its send) goes on now.
    const held = this.#held;
    if (!held) return;
    this.#held = null;
    for (const resume of held) resume();
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    const cost = messageCost(chunk);
    this.#posted += cost;
    this.#outgoing([this.#text(chunk)], () => this.#taken(cost, callback));
  }

  override _writev(chunks: Array<{ chunk: string | Buffer }>, callback: WriteCallback): void {
    let cost = 0;
    const messages = chunks.map(({ chunk }) => {
      cost += messageCost(chunk);
      return this.#text(chunk);
    });
    this.#posted += cost;
    this.#outgoing(messages, () => this.#taken(cost, callback));
  }

  /** The session took messages of `cost`: the writer hears of it, and of `drain` once nothing waits. */
  #taken(cost: number, callback: WriteCallback): void {
    this.#sending -= cost;
    this.#posted -= cost;
    callback();
    if (this.#owesDrain && this.#sending === 0) {
      this.#owesDrain = false;
      process.nextTick(emitDrain, this);
    }
  }

  override _final(callback: WriteCallback): void {
    this.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.close();
    callback(error);
  }

  #text(chunk: string | Buffer): string {
    if (typeof chunk === 'string') return chunk;
    this.#decoder ??= new StringDecoder('utf8');
    return this.#decoder.write(chunk);
  }

  #outgoing(messages: string[], callback: WriteCallback): void {
    if (this.#readyState !== OPEN) {
      // As in the sockjs package, writing to a closed connection drops the message quietly.
      callback();
      return;
    }
    this.#post({ type: 'outgoing', key: this.#key, messages, ack: () => callback() });
  }

  /** Hands messages to the application; false once its Readable side holds as much as it should. */
  #deliver(messages: readonly string[]): boolean {
    let reading = true;
    for (const message of messages) {
      if (this.#readyState === CLOSED) return true;
      this.#messages?.next(message);
      // The Readable side buffers only once someone reads it (a `data` listener, `pipe`,
      // `pause`), so an application that uses `messages$` alone keeps nothing in memory.
      if (this.readableFlowing === null) continue;
      this.#receiving += messageCost(message);
      reading = this.push(message) && reading;
      if (this.#receiving > this.#maxQueueSize) {
        this.close(CLOSE_REASONS.RECEIVE_QUEUE_FULL.code, CLOSE_REASONS.RECEIVE_QUEUE_FULL.reason);
        return true;
      }
    }
    return reading;
  }

  /**
   * Runs `then` now if the application reads, else once it reads again (or the connection
   * closes). What waits meanwhile (`cost` bytes: a held answer keeps its request and response)
   * counts against the receive limit.
   */
  #whenReading(then: () => void, cost: number): void {
    if (this.readableFlowing === null || this.readableLength < this.readableHighWaterMark || this.#readyState === CLOSED) {
      then();
      return;
    }
    this.#receiving += cost;
    (this.#held ??= []).push(() => {
      this.#receiving -= cost;
      then();
    });
    if (this.#receiving > this.#maxQueueSize) this.close(CLOSE_REASONS.RECEIVE_QUEUE_FULL.code, CLOSE_REASONS.RECEIVE_QUEUE_FULL.reason);
  }

  #sessionClosed(why: CloseReason): void {
    if (this.#readyState === CLOSED) return;
    this.#readyState = CLOSED;
    this.#why = why;
    this.#messages?.complete();
    this.#closed?.next(why);
    this.#closed?.complete();
    const held = this.#held;
    this.#held = null;
    if (held) for (const resume of held) resume();
    // Messages the application paused on and never read go with the connection: say so.
    const unread = this.readableLength;
    if (unread > 0) this.#log('info', `connection ${String(this.#key)} closed with ${unread} received message(s) unread`);
    this.push(null);
    this.destroy();
  }
}
