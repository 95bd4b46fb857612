import type { IncomingMessage, ServerResponse } from 'http';
import type { SchedulerLike } from 'rxjs';
import { BatchScheduler } from './session/batch-scheduler';
import type { Authorize } from './authorization';
import type { BroadcastBus } from './broadcast';
import { sockjsError } from './errors';
import { ALL_TRANSPORTS, type TransportName } from './transports';

/** Severities passed to the `log` option, from least to most serious. */
export type LogSeverity = 'debug' | 'info' | 'error';

/** Inbound rate limits of each session (`rate_limit`). */
export interface RateLimit {
  /** Messages per second a client may send. Default: no limit. */
  readonly messages?: number;
  /** UTF-8 bytes of messages per second a client may send. Default: no limit. */
  readonly bytes?: number;
  /** Seconds of the rates a client may send at once, after a quiet spell (the bucket's size). Default 1. */
  readonly burst?: number;
  /**
   * What becomes of messages over the limit: `drop` (each dropped and counted, a log line per
   * session and second) or `close` (the session closes with `1008 "Rate limit exceeded"`).
   * Default `drop`.
   */
  readonly policy?: 'drop' | 'close';
}

/**
 * Options of `createServer`, `installHandlers` and `attach`; the names are the sockjs package's.
 * `A` is what `authorize` returns, kept on each Connection as `auth`.
 */
export interface ServerOptions<A = unknown> {
  /** Path under which the server answers, e.g. `/echo`: `''` or a path starting with `/`. Default `''` (every path). */
  prefix?: string;
  /**
   * URL of sockjs-client loaded by the iframe page; it must start with `/` or `http`.
   * Default: the jsDelivr build of sockjs-client 1.x.
   */
  sockjs_url?: string;
  /** Bytes a streaming response carries before it is ended and the client reconnects. Default 131072. */
  response_limit?: number;
  /** Whether the websocket transports are offered. Default `true`. */
  websocket?: boolean;
  /** Set the JSESSIONID cookie for load balancers: `true`, or a function that sets it itself. Default `false`. */
  jsessionid?: boolean | ((req: IncomingMessage, res: ServerResponse) => void);
  /** Called with a severity and a line of text. Default: `error` lines go to `console.error`. */
  log?: (severity: LogSeverity | string, message: string) => void;
  /** Milliseconds of silence on a receiving connection before an `h` frame is sent. Default 25000. */
  heartbeat_delay?: number;
  /** Milliseconds a session waits for its client to come back before it is closed. Default 5000. */
  disconnect_delay?: number;
  /** Leave out every CORS header, the iframe page and `origins` in `/info`. Default `false`. */
  disable_cors?: boolean;
  /** Transports to offer. Default: all of them. */
  transports?: readonly TransportName[];
  /**
   * The RxJS scheduler of heartbeats and `disconnect_delay`; tests pass a virtual one. By default
   * timers due within the same 4 ms share one Node timer (`BatchScheduler`).
   */
  scheduler?: SchedulerLike;
  /**
   * Also accept the hixie-76 websocket handshake (draft-76, spoken by some old proxies such as
   * HAProxy setups and by the SockJS protocol test suite) on `/<server>/<session>/websocket`.
   * Default `false`.
   */
  hixie76?: boolean;
  /**
   * The largest message or request body a client may send, in bytes: a bigger websocket message
   * closes the websocket with 1009, a bigger `xhr_send` or `jsonp_send` body gets 413 and the
   * session goes on. Default 1048576 (1 MiB).
   */
  max_message_size?: number;
  /**
   * The most messages one payload may carry (one `xhr_send` or `jsonp_send` body, one websocket
   * message): a bigger `xhr_send` or `jsonp_send` gets 413 and the session goes on, a bigger
   * websocket message closes the session with 1009 "Too many messages". Default 65536.
   */
  max_payload_messages?: number;
  /**
   * The most a connection may have waiting to be sent, in bytes (written but not yet taken by a
   * slow client). Past it the session is closed with 1013 "Send queue full". Writers that
   * honour backpressure (`pipe`, waiting for `drain`) never reach it. Default 8388608 (8 MiB).
   */
  max_queue_size?: number;
  /**
   * Origins allowed to use the server: a list (`https://example.com`, or `*` for any) or a
   * function `(origin, req) => boolean`. A request or websocket handshake with an `Origin` not
   * allowed gets 403 with no CORS headers. Requests without an `Origin` header (same-origin
   * script loads, non-browser clients) are not checked. Default: every origin.
   */
  origins?: readonly string[] | ((origin: string, req: IncomingMessage) => boolean);
  /**
   * Carries `broadcast()` and channel messages to the other processes serving the same
   * application, e.g. `redisBus()` from `sockjs-rx/redis`. Taken from `createServer` only.
   * Default: a bus within this process.
   */
  bus?: BroadcastBus;
  /**
   * Serves every session from every process on `bus`, so that the load balancer needs no sticky
   * sessions: a session lives in the process that opened it, and any other process serves its
   * HTTP requests by relaying them to it over the bus. Needs a bus that relays: `redisBus()` of
   * `sockjs-rx/redis` (or `localBus()`, between the servers of one process). Taken from
   * `createServer` only. Default false: every request of a session must reach its process.
   */
  relay?: boolean;
  /**
   * Asked before a session opens, on the websocket handshake and on the request that opens an
   * HTTP session, with the request's headers, query, address and origin: a value allows it
   * (the Connection keeps it as `auth`), `false`, `null` or `undefined` refuse it with 403, and
   * `refuse(401 | 403, reason)` refuses it with that. It may return a Promise. The session's
   * later requests must carry the same query (less sockjs-client's own `t`, `c` and `i`) and
   * `Authorization` header, or get 403. `/info` and the iframe page are not asked about.
   * Default: every session opens.
   */
  authorize?: Authorize<A>;
  /**
   * Milliseconds `authorize` may take; past them the request gets 503 and a log line. Default 5000.
   */
  authorize_timeout?: number;
  /**
   * The most sessions open at once on the whole server: a new one over it gets 503 with
   * `Retry-After` (a websocket handshake too), and the open ones are untouched. Taken from
   * `createServer` only. Default: no cap.
   */
  max_sessions?: number;
  /** The most sessions open at once per client address (see `client_address`), refused as `max_sessions` refuses. Default: no cap. */
  max_sessions_per_address?: number;
  /**
   * The address a request counts against for `max_sessions_per_address`: by default the
   * address of the connection's other end, which behind a proxy is the proxy's; a function
   * `(req) => string` can read a header the proxy sets instead. Taken from `createServer` only.
   */
  client_address?: (req: IncomingMessage) => string;
  /** Inbound rate limits of each session (see `RateLimit`). Default: none. */
  rate_limit?: RateLimit;
  /**
   * Whether the server counts what it does, for `server.metrics()`. Counting costs an addition
   * per event; `false` leaves it out. Taken from `createServer` only. Default `true`.
   */
  metrics?: boolean;
  /**
   * Accepted so that options written for the sockjs package keep working, and ignored: the
   * websocket implementation here is `ws`, not faye-websocket. Default: absent.
   */
  faye_server_options?: object;
}

/** Options with every default applied. */
export interface ResolvedOptions {
  readonly prefix: string;
  readonly sockjs_url: string;
  readonly response_limit: number;
  readonly websocket: boolean;
  readonly jsessionid: boolean | ((req: IncomingMessage, res: ServerResponse) => void);
  readonly log: (severity: LogSeverity | string, message: string) => void;
  readonly heartbeat_delay: number;
  readonly disconnect_delay: number;
  readonly disable_cors: boolean;
  readonly transports: ReadonlySet<TransportName>;
  readonly scheduler: SchedulerLike;
  readonly hixie76: boolean;
  readonly max_message_size: number;
  readonly max_payload_messages: number;
  readonly max_queue_size: number;
  readonly origins: ((origin: string, req: IncomingMessage) => boolean) | null;
  readonly authorize: Authorize | null;
  readonly authorize_timeout: number;
  readonly rate_limit: Required<RateLimit> | null;
}

export const DEFAULT_SOCKJS_URL = 'https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js';

/** The default `log`: error lines to `console.error`, nothing else. */
export function defaultLog(severity: string, message: string): void {
  if (severity === 'error') console.error(message);
}

export const DEFAULTS = {
  prefix: '',
  sockjs_url: DEFAULT_SOCKJS_URL,
  response_limit: 128 * 1024,
  websocket: true,
  jsessionid: false,
  log: defaultLog,
  heartbeat_delay: 25_000,
  disconnect_delay: 5_000,
  disable_cors: false,
  transports: ALL_TRANSPORTS,
  scheduler: new BatchScheduler(),
  hixie76: false,
  max_message_size: 1024 * 1024,
  max_payload_messages: 65_536,
  max_queue_size: 8 * 1024 * 1024,
  authorize_timeout: 5000,
} as const;

/**
 * The longest delay a Node timer can wait (2^31 - 1 ms, about 24.8 days). Node runs a longer
 * one after 1 ms instead, which would turn a heartbeat into a busy loop.
 */
const MAX_DELAY = 0x7fff_ffff;

type Check = (value: unknown) => boolean;

const isBoolean: Check = (value) => typeof value === 'boolean';
const isPositiveInteger: Check = (value) => typeof value === 'number' && Number.isInteger(value) && value > 0;
const isFunction: Check = (value) => typeof value === 'function';
const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;
const isDelay: Check = (value) => typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_DELAY;
const isTransportName = (value: unknown): value is TransportName =>
  typeof value === 'string' && (ALL_TRANSPORTS as readonly string[]).includes(value);
// The iframe page puts the URL in a `src="..."` attribute; quotes and angle brackets would end it.
const isScriptUrl: Check = (value) =>
  typeof value === 'string' && (value.startsWith('/') || value.startsWith('http')) && !/["<>]/.test(value);
const isScheduler: Check = (value) => {
  if (!isObject(value)) return false;
  const { now, schedule } = value as { now?: unknown; schedule?: unknown };
  return typeof now === 'function' && typeof schedule === 'function';
};

const isPositiveNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;
const isRateLimit: Check = (value) => {
  if (!isObject(value) || Array.isArray(value)) return false;
  const limit = value as Record<string, unknown>;
  if (!Object.keys(limit).every((name) => ['messages', 'bytes', 'burst', 'policy'].includes(name))) return false;
  if (limit.messages === undefined && limit.bytes === undefined) return false;
  // A bucket that cannot hold one message would let nothing through.
  const burst = limit.burst === undefined ? 1 : limit.burst;
  if (typeof limit.messages === 'number' && typeof burst === 'number' && limit.messages * burst < 1) return false;
  return (
    ['messages', 'bytes', 'burst'].every((name) => limit[name] === undefined || isPositiveNumber(limit[name])) &&
    (limit.policy === undefined || limit.policy === 'drop' || limit.policy === 'close')
  );
};

/** Every option this package knows: what its value must be, in words for the error, and the test. */
const RULES: Readonly<Record<keyof ServerOptions, readonly [expected: string, check: Check]>> = {
  prefix: ["a string that is '' or starts with '/'", (v) => typeof v === 'string' && (v === '' || v.startsWith('/'))],
  sockjs_url: ["a string that starts with '/' or 'http' and holds no '\"', '<' or '>'", isScriptUrl],
  response_limit: ['a positive integer', (v) => typeof v === 'number' && Number.isInteger(v) && v > 0],
  websocket: ['a boolean', isBoolean],
  jsessionid: ['a boolean or a function', (v) => isBoolean(v) || isFunction(v)],
  log: ['a function', isFunction],
  heartbeat_delay: [`a positive finite number of milliseconds, at most ${MAX_DELAY}`, isDelay],
  disconnect_delay: [`a positive finite number of milliseconds, at most ${MAX_DELAY}`, isDelay],
  disable_cors: ['a boolean', isBoolean],
  transports: [
    `an array of transport names (${ALL_TRANSPORTS.join(', ')})`,
    (v) => Array.isArray(v) && v.every(isTransportName),
  ],
  scheduler: ['an RxJS scheduler: an object with `now` and `schedule` functions', isScheduler],
  hixie76: ['a boolean', isBoolean],
  max_message_size: ['a positive integer number of bytes', isPositiveInteger],
  max_payload_messages: ['a positive integer', isPositiveInteger],
  max_queue_size: ['a positive integer number of bytes', isPositiveInteger],
  origins: [
    'an array of origin strings or a function',
    (v) => isFunction(v) || (Array.isArray(v) && v.every((o) => typeof o === 'string')),
  ],
  bus: [
    'a broadcast bus: an object with `publish` and `messages` functions',
    (v) => isObject(v) && typeof (v as BroadcastBus).publish === 'function' && typeof (v as BroadcastBus).messages === 'function',
  ],
  relay: ['a boolean', isBoolean],
  metrics: ['a boolean', isBoolean],
  authorize: ['a function', isFunction],
  authorize_timeout: [`a positive finite number of milliseconds, at most ${MAX_DELAY}`, isDelay],
  max_sessions: ['a positive integer', isPositiveInteger],
  max_sessions_per_address: ['a positive integer', isPositiveInteger],
  client_address: ['a function', isFunction],
  rate_limit: ['an object with `messages` and/or `bytes` (positive numbers per second; `messages` × `burst` at least 1), `burst` (seconds, positive) and `policy` (`drop` or `close`)', isRateLimit],
  faye_server_options: ['an object', isObject],
};

function isKnown(name: string): name is keyof ServerOptions {
  return Object.hasOwn(RULES, name);
}

/**
 * The options that were given: a copy without the `undefined` entries, which count as absent.
 * Throws `SOCKJS_ERR_UNKNOWN_OPTION` for a name this package does not know and
 * `SOCKJS_ERR_INVALID_OPTION` for a value of the wrong kind.
 */
export function validateOptions<A = unknown>(options: unknown): ServerOptions<A> {
  // `null` is tolerated as "no options", as the sockjs package does.
  if (options === undefined || options === null) return {};
  if (!isObject(options) || Array.isArray(options)) throw sockjsError('SOCKJS_ERR_INVALID_OPTION', 'options', 'an object');
  const given: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!isKnown(name)) throw sockjsError('SOCKJS_ERR_UNKNOWN_OPTION', name);
    const [expected, check] = RULES[name];
    if (!check(value)) throw sockjsError('SOCKJS_ERR_INVALID_OPTION', name, expected);
    given[name] = value;
  }
  return given as ServerOptions<A>;
}

/**
 * Lines worth logging at `info` about options that were accepted but do nothing here. The server
 * logs them once per `createServer` and once per `installHandlers` that passes them.
 */
export function optionNotices(options: ServerOptions | undefined): string[] {
  if (options?.faye_server_options === undefined) return [];
  return ['The option "faye_server_options" has no effect: the websocket implementation of sockjs-rx is ws'];
}

/**
 * Validates both sets and applies defaults; `overrides` (from `installHandlers`) win over `base`
 * (from `createServer`).
 */
export function resolveOptions(base?: ServerOptions, overrides?: ServerOptions): ResolvedOptions {
  const o = { ...DEFAULTS, ...validateOptions(base), ...validateOptions(overrides) };
  const transports = new Set<TransportName>(o.transports);
  if (o.websocket === false) {
    transports.delete('websocket');
    transports.delete('websocket-raw');
  }
  return {
    // A trailing slash is dropped so that `/echo/` and `/echo` mean the same prefix.
    prefix: o.prefix.replace(/\/+$/, ''),
    sockjs_url: o.sockjs_url,
    response_limit: o.response_limit,
    websocket: transports.has('websocket') || transports.has('websocket-raw'),
    jsessionid: o.jsessionid,
    log: o.log,
    heartbeat_delay: o.heartbeat_delay,
    disconnect_delay: o.disconnect_delay,
    disable_cors: o.disable_cors,
    transports,
    scheduler: o.scheduler,
    hixie76: o.hixie76,
    max_message_size: o.max_message_size,
    max_payload_messages: o.max_payload_messages,
    max_queue_size: o.max_queue_size,
    origins: originCheck(o.origins),
    authorize: o.authorize ?? null,
    authorize_timeout: o.authorize_timeout,
    rate_limit: o.rate_limit
      ? { messages: o.rate_limit.messages ?? Infinity, bytes: o.rate_limit.bytes ?? Infinity, burst: o.rate_limit.burst ?? 1, policy: o.rate_limit.policy ?? 'drop' }
      : null,
  };
}

/** The `origins` option as one test; null when every origin is allowed. */
function originCheck(origins: ServerOptions['origins']): ResolvedOptions['origins'] {
  if (origins === undefined) return null;
  if (typeof origins === 'function') return origins;
  if (origins.includes('*')) return null;
  // Origins compare as the browser serialises them: scheme, host and port, lower-case.
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  return (origin) => allowed.has(origin.toLowerCase());
}
