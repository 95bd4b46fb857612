import type { IncomingMessage, ServerResponse } from 'http';
import { asyncScheduler, type SchedulerLike } from 'rxjs';

/** Severities passed to the `log` option, from least to most serious. */
export type LogSeverity = 'debug' | 'info' | 'error';

/** The transports of the SockJS protocol, by the names sockjs-client and the sockjs package use. */
export type TransportName =
  | 'websocket'
  | 'websocket-raw'
  | 'xhr-polling'
  | 'xhr-streaming'
  | 'eventsource'
  | 'htmlfile'
  | 'jsonp-polling';

export const ALL_TRANSPORTS: readonly TransportName[] = [
  'websocket',
  'websocket-raw',
  'xhr-polling',
  'xhr-streaming',
  'eventsource',
  'htmlfile',
  'jsonp-polling',
];

/** Options of `createServer`, `installHandlers` and `attach`; the names are the sockjs package's. */
export interface ServerOptions {
  /** Path under which the server answers, e.g. `/echo`. Default `''` (every path). */
  prefix?: string;
  /** URL of sockjs-client loaded by the iframe page. Default: the jsDelivr build of sockjs-client 1.x. */
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
  /** Leave out every CORS header. Default `false`. */
  disable_cors?: boolean;
  /** Transports to offer. Default: all of them. */
  transports?: readonly TransportName[];
  /** The RxJS scheduler of heartbeats and `disconnect_delay`; tests pass a virtual one. Default `asyncScheduler`. */
  scheduler?: SchedulerLike;
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
}

export const DEFAULT_SOCKJS_URL = 'https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js';

function defaultLog(severity: string, message: string): void {
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
  scheduler: asyncScheduler,
} as const;

/** Applies defaults; `overrides` (from `installHandlers`) win over `base` (from `createServer`). */
export function resolveOptions(base: ServerOptions = {}, overrides: ServerOptions = {}): ResolvedOptions {
  const o = { ...DEFAULTS, ...base, ...overrides };
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
  };
}
