/**
 * The `authorize` option: the application's word on a request that would open a session, asked
 * before any session or Connection exists, and the credentials every later request of that
 * session must repeat.
 *
 * SockJS cannot rely on cookies (the iframe transports make them misleading), so credentials
 * travel in the URL's query, `new SockJS('https://rt.example.com/echo?token=…')`, which
 * sockjs-client keeps on every request it makes. A session remembers a digest of the query it
 * was opened with (less the parameters sockjs-client adds itself) and of the `Authorization`
 * header; a request of the session that does not carry the same is refused with 403, without
 * `authorize` being asked again.
 */
import { createHash, timingSafeEqual } from 'crypto';
import { type IncomingHttpHeaders, type IncomingMessage, validateHeaderName, validateHeaderValue } from 'http';
import { catchError, defer, from, map, type Observable, of, type SchedulerLike, timeout } from 'rxjs';
import { faultText, HTTP_ERRORS } from './errors';
import type { Headers } from './http/headers';
import type { StaticResponse } from './http/pages';
import type { Log } from './http/respond';
import { splitUrl } from './router';

/** What `authorize` is asked about: the request that would open a session. */
export interface AuthorizeRequest {
  /** The request itself: a receiving request, or a websocket handshake. */
  readonly req: IncomingMessage;
  readonly headers: IncomingHttpHeaders;
  /** The URL's query, where a token is meant to travel. */
  readonly query: URLSearchParams;
  /** The address of the client's end of the connection (a proxy's, behind one). */
  readonly remoteAddress: string;
  /** The `Origin` header, when the request has one. */
  readonly origin: string | undefined;
  /** The transport the session would open over: `websocket`, `websocket-raw`, `xhr-streaming`, ... */
  readonly transport: string;
  /** The prefix the request came to. */
  readonly prefix: string;
}

/**
 * Marks a Refusal, so that one made by another copy of this package (a second install in
 * node_modules) is still taken for one, and never for a value that allows the session.
 */
const REFUSAL = Symbol.for('sockjs-rx.refusal');

/** A refusal with a status and a reason of the application's choosing: see `refuse`. */
export class Refusal {
  readonly [REFUSAL] = true;

  constructor(
    readonly status: 401 | 403,
    readonly reason: string,
    readonly headers: Readonly<Headers>,
  ) {}
}

function isRefusal(value: unknown): value is Refusal {
  return value instanceof Refusal || (typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[REFUSAL] === true);
}

/**
 * What `authorize` returns to refuse with 401 or 403 and a reason of its own, which is the body
 * of the answer. A 401 carries `WWW-Authenticate: Bearer` unless `headers` name one.
 */
export function refuse(status: 401 | 403 = 403, reason?: string, headers: Readonly<Headers> = {}): Refusal {
  if (status !== 401 && status !== 403) throw new RangeError(`refuse(): the status must be 401 or 403, not ${String(status)}`);
  const own = status === 401 && !Object.keys(headers).some((name) => name.toLowerCase() === 'www-authenticate') ? { 'WWW-Authenticate': 'Bearer', ...headers } : headers;
  return new Refusal(status, reason ?? (status === 401 ? 'Unauthorized.' : 'Not authorized.'), own);
}

/** What `authorize` may return: a value to keep (allowed), `false`, `null` or `undefined` (refused, 403), or a `refuse()`. */
export type AuthorizeResult<A> = A | Refusal | false | null | undefined;

/**
 * The `authorize` option: allows a session to open by returning a value, which the session's
 * Connection keeps as `auth`, or refuses it. It may answer at once or with a Promise.
 */
export type Authorize<A = unknown> = (request: AuthorizeRequest) => AuthorizeResult<A> | PromiseLike<AuthorizeResult<A>>;

/** What a session was opened with: the digest of its credentials, and what `authorize` returned. */
export interface Grant {
  readonly credential: string;
  readonly value: unknown;
}

/** What asking `authorize` came to: a grant, or the answer that refuses the request. */
export type Verdict =
  | { readonly granted: Grant }
  | {
      readonly refused: StaticResponse;
      /** `denied`: the application said no; `failed`: it threw, rejected or did not answer in time. */
      readonly why: 'denied' | 'failed';
    };

/** Query parameters sockjs-client adds to its own requests: `t` (a cache buster), `c` (a callback), `i` (a form id). */
const CLIENT_PARAMETERS = ['t', 'c', 'i'] as const;

/** Stands for a `authorize` that did not answer in time. */
const TIMED_OUT = Symbol('timed out');

/**
 * The digest of what a request carries as credentials: its query without sockjs-client's own
 * parameters, and its `Authorization` header.
 */
export function credentialOf(req: IncomingMessage): string {
  const params = new URLSearchParams(splitUrl(req.url ?? '/').query);
  for (const name of CLIENT_PARAMETERS) params.delete(name);
  const authorization = req.headers.authorization ?? '';
  return createHash('sha256').update(params.toString()).update('\n').update(authorization).digest('base64');
}

/** Whether two credential digests are the same, compared in constant time. */
export function sameCredential(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The answer to a `Refusal`. One that cannot be written as it is (a status other than 401 and
 * 403, a header name or value Node would refuse, such as one with a line break, which on a
 * websocket handshake would be written raw) is a fault of the application: it throws.
 */
function refusalAnswer(refusal: Refusal): StaticResponse {
  const { status, reason, headers } = refusal;
  if (status !== 401 && status !== 403) throw new RangeError(`a refusal's status must be 401 or 403, not ${String(status)}`);
  if (typeof reason !== 'string') throw new TypeError("a refusal's reason must be a string");
  const checked: Headers = { 'Content-Type': 'text/plain; charset=UTF-8' };
  for (const [name, value] of Object.entries(headers ?? {})) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    if (typeof value !== 'string') throw new TypeError(`the refusal's header ${name} must be a string`);
    checked[name] = value;
  }
  return { status, headers: checked, body: reason };
}

export interface AuthorizationContext {
  readonly authorize: Authorize;
  /** How long `authorize` may take, in milliseconds (`authorize_timeout`). */
  readonly timeout: number;
  readonly scheduler: SchedulerLike;
  readonly prefix: string;
  readonly log: Log;
}

/**
 * Asks `authorize` about `req`, which would open a session over `transport`, when subscribed:
 * one verdict, then complete. A throw, a rejection or no answer within the timeout is a refusal
 * too (500, 503), logged; it never reaches the caller.
 */
export function authorizing(req: IncomingMessage, transport: string, context: AuthorizationContext): Observable<Verdict> {
  return defer(() => {
    const request: AuthorizeRequest = {
      req,
      headers: req.headers,
      query: new URLSearchParams(splitUrl(req.url ?? '/').query),
      remoteAddress: req.socket.remoteAddress ?? '',
      origin: req.headers.origin,
      transport,
      prefix: context.prefix,
    };
    const result = context.authorize(request);
    if (!isPromiseLike(result)) return of(result);
    return from(result).pipe(timeout({ first: context.timeout, scheduler: context.scheduler, with: () => of(TIMED_OUT) }));
  }).pipe(
    map((result): Verdict => {
      if (result === TIMED_OUT) {
        context.log('error', `${req.method} ${req.url}: authorize did not answer within ${context.timeout} ms`);
        return { refused: HTTP_ERRORS.AUTHORIZATION_TIMED_OUT, why: 'failed' };
      }
      if (isRefusal(result)) return { refused: refusalAnswer(result), why: 'denied' };
      if (result === false || result === null || result === undefined) return { refused: HTTP_ERRORS.NOT_AUTHORIZED, why: 'denied' };
      return { granted: { credential: credentialOf(req), value: result } };
    }),
    catchError((error: unknown) => {
      context.log('error', `${req.method} ${req.url}: authorize failed: ${faultText(error)}`);
      return of<Verdict>({ refused: HTTP_ERRORS.INTERNAL, why: 'failed' });
    }),
  );
}
