import type { IncomingMessage, ServerResponse } from 'http';
import type { SchedulerLike } from 'rxjs';
import { BatchScheduler } from './session/batch-scheduler';
import type { BroadcastBus } from './broadcast';
import { sockjsError } from './errors';
import { ALL_TRANSPORTS, type TransportName } from './transports';

/** Severities passed to the `log` option, from least to most serious. */
export type LogSeverity = 'debug' | 'info' | 'error';

/** Options of `createServer`, `installHandlers` and `attach`; the names are the sockjs package's. */
export interface ServerOptions {
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
export function validateOptions(options: unknown): ServerOptions {
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
  return given as ServerOptions;
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
