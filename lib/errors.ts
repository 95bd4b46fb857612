/**
 * Every error sockjs-rx raises or answers with, declared once, in three tables:
 *
 * - `ERRORS`: thrown to the application, each with a stable `code` to test instead of its text.
 * - `HTTP_ERRORS`: the answers to requests that will not be served, by name: status and body.
 *   (404 and 405 depend on the route: `notFound` and `methodNotAllowed` in http/pages.ts.)
 * - `CLOSE_REASONS`: the code and reason of every close the server itself makes, in close frames,
 *   websocket close frames and `Connection`'s `close` event, beside the application's own.
 */
import type { StaticResponse } from './http/pages';

export const ERRORS = {
  SOCKJS_ERR_INVALID_OPTION: (name: string, expected: string) =>
    `Invalid option "${name}": expected ${expected}`,
  SOCKJS_ERR_UNKNOWN_OPTION: (name: string) => `Unknown option "${name}"`,
  SOCKJS_ERR_ALREADY_ATTACHED: (prefix: string) =>
    `This server is already attached to that HTTP server with prefix ${JSON.stringify(prefix)}`,
  SOCKJS_ERR_SERVER_CLOSED: () => 'The SockJS server is closed',
  SOCKJS_ERR_CONNECTION_CLOSED: () => 'The connection is closing or closed: the message was dropped',
} as const;

export type SockjsErrorCode = keyof typeof ERRORS;

export class SockjsError extends Error {
  readonly code: SockjsErrorCode;

  constructor(code: SockjsErrorCode, message: string) {
    super(message);
    this.name = 'SockjsError';
    this.code = code;
  }
}

export function sockjsError<C extends SockjsErrorCode>(
  code: C,
  ...args: Parameters<(typeof ERRORS)[C]>
): SockjsError {
  const format = ERRORS[code] as (...a: typeof args) => string;
  return new SockjsError(code, format(...args));
}

/** A caught fault as one log text: its stack where it has one. */
export function faultText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** A plain-text error answer. */
const plain = (status: number, body: string): StaticResponse => ({ status, headers: { 'Content-Type': 'text/plain; charset=UTF-8' }, body });

/** A 503 that asks the client to come back in a second. */
const retryLater = (body: string): StaticResponse => ({
  status: 503,
  headers: { 'Content-Type': 'text/plain; charset=UTF-8', 'Retry-After': String(RETRY_AFTER_SECONDS) },
  body,
});

/** The `Retry-After` of a refusal that may pass later (a cap, a slow `authorize`), in seconds. */
export const RETRY_AFTER_SECONDS = 1;

/** One of the protocol's own errors: 500 with its exact text and no Content-Type, as the reference server answers. */
const protocol = (body: string): StaticResponse => ({ status: 500, headers: {}, body });

export const HTTP_ERRORS = {
  /** The `origins` option refused the request's Origin. */
  ORIGIN_REFUSED: plain(403, 'Origin not allowed.'),
  /** A send's body is over `max_message_size`; the connection closes after the answer. */
  PAYLOAD_TOO_LARGE: plain(413, 'Payload too large.'),
  /** A send carries more messages than `max_payload_messages`. */
  TOO_MANY_MESSAGES: plain(413, 'Too many messages.'),
  /** A send's body is empty, not a JSON array, or of a media type its transport does not read. */
  PAYLOAD_EXPECTED: protocol('Payload expected.'),
  /** A send's body is not JSON. */
  BROKEN_JSON: protocol('Broken JSON encoding.'),
  /** `htmlfile` or `jsonp` without a callback name. */
  CALLBACK_REQUIRED: protocol('"callback" parameter required'),
  /** A callback name with a character other than letters, digits, `-`, `_` and `.`, or too long. */
  CALLBACK_INVALID: protocol('invalid "callback" parameter'),
  /** A plain GET, or an upgrade to something else, on a websocket URL. */
  NOT_A_WEBSOCKET: plain(400, 'Not a valid websocket request'),
  /** The raw `/websocket` URL was asked for a draft older than RFC 6455. */
  WEBSOCKET_VERSION: plain(400, 'Only supported WebSocket protocol is RFC 6455.'),
  /** An upgrade on a URL that is no websocket. */
  UPGRADE_NOT_WEBSOCKET: plain(400, 'Can "Upgrade" only to "WebSocket".'),
  /** A fault of the server or of the application's code while serving the request (logged). */
  INTERNAL: plain(500, 'Internal Server Error'),
  /** The server closed while the request waited. */
  SHUTTING_DOWN: plain(503, 'Server shutting down.'),
  /** The endpoint's pipeline failed (logged); it serves nothing more. */
  UNAVAILABLE: plain(503, 'Service unavailable.'),
  /** With `relay`, a request for a session owned elsewhere, while the bus cannot be reached (logged). */
  RELAY_UNAVAILABLE: plain(503, 'Session relay unavailable.'),
  /**
   * `authorize` refused to open a session (it returned false, null or undefined), or a request
   * for a session came without the credentials the session was opened with.
   */
  NOT_AUTHORIZED: plain(403, 'Not authorized.'),
  /** `authorize` did not answer within `authorize_timeout` (logged). */
  AUTHORIZATION_TIMED_OUT: retryLater('Authorization timed out.'),
  /** A new session over `max_sessions` or `max_sessions_per_address`; open sessions are untouched. */
  TOO_MANY_SESSIONS: retryLater('Too many sessions.'),
} as const satisfies Record<string, StaticResponse>;

export type HttpErrorName = keyof typeof HTTP_ERRORS;

/** How a session closes: the code and reason of its close frame and of the `close` event. */
export interface CloseReason {
  readonly code: number;
  readonly reason: string;
}

export const CLOSE_REASONS = {
  /** `close()` without arguments. */
  NORMAL_CLOSURE: { code: 1000, reason: 'Normal closure' },
  /** The server is closing. */
  SHUTTING_DOWN: { code: 1001, reason: 'Server shutting down' },
  /** The client went away: its websocket closed, or its stream ended before the server ended it. */
  INTERRUPTED: { code: 1002, reason: 'Connection interrupted' },
  /** No receiver for `disconnect_delay`. */
  TIMED_OUT: { code: 1006, reason: 'Session timed out' },
  /** One message carried more messages than `max_payload_messages`. */
  TOO_MANY_MESSAGES: { code: 1009, reason: 'Too many messages' },
  /** A fault in the session or in an application listener (logged). */
  INTERNAL_ERROR: { code: 1011, reason: 'Internal error' },
  /** What the application sent and the client has not taken passed `max_queue_size`. */
  SEND_QUEUE_FULL: { code: 1013, reason: 'Send queue full' },
  /** What the client sent and the application has not read passed `max_queue_size`. */
  RECEIVE_QUEUE_FULL: { code: 1013, reason: 'Receive queue full' },
  /** A second receiver while one is attached: said to the second only (the protocol's rule). */
  ANOTHER_CONNECTION: { code: 2010, reason: 'Another connection still open' },
  /** A websocket message that is not JSON. */
  BROKEN_FRAMING: { code: 3000, reason: 'Broken framing.' },
  /** With `relay`, a relayed request for a session came without the credentials it was opened with. */
  NOT_AUTHORIZED: { code: 1008, reason: 'Not authorized' },
  /** The client sent faster than `rate_limit` allows, under its policy `close`. */
  RATE_LIMITED: { code: 1008, reason: 'Rate limit exceeded' },
  /** A websocket peer that answered no ping within a heartbeat interval. */
  NO_HEARTBEAT: { code: 3000, reason: 'No response from heartbeat' },
  /**
   * With `relay`, a response relayed to a session whose owner, another process, is gone or
   * cannot be reached over the bus (logged).
   */
  SESSION_UNREACHABLE: { code: 1011, reason: 'Session unreachable' },
  /**
   * Never sent: with `relay`, the owner no longer has the session a response was relayed to,
   * and the process that relayed it looks again (it may open the session itself).
   */
  UNKNOWN_SESSION: { code: 1002, reason: 'Unknown session' },
} as const satisfies Record<string, CloseReason>;
