/**
 * The answers that need no session, as data: what the greeting, `/info`, the iframe page, a
 * preflight, a refused Origin and every route that is no session's get, and which websocket an
 * upgrade opens or why it is refused. Pure functions of the route, the request's headers and the
 * options; the endpoint writes what they return.
 */
import { randomInt } from 'crypto';
import type { IncomingMessage } from 'http';
import { HTTP_ERRORS } from '../errors';
import type { ResolvedOptions } from '../options';
import type { Route } from '../router';
import { RAW_WEBSOCKET, refuseUpgrade, SOCKJS_WEBSOCKET, type WebsocketKind } from '../transports/websocket';
import { cacheForAYear, type Headers, mergeHeaders, preflightHeaders } from './headers';
import { greeting, iframeResponse, type IframePage, info, methodNotAllowed, notFound, preflight, type StaticResponse } from './pages';
import type { HttpPolicy } from './policy';

/** A response and the headers it goes out with beside its own. */
export interface Answer {
  readonly response: StaticResponse;
  readonly headers?: Headers | undefined;
}

/** The routes answered without a session. */
export type StaticRoute = Exclude<Route, { kind: 'receive' | 'send' | 'outside' }>;

export interface AnswerContext {
  readonly options: Pick<ResolvedOptions, 'disable_cors' | 'transports' | 'jsessionid'>;
  readonly policy: HttpPolicy;
  readonly iframe: IframePage;
}

/** Whether a route is checked against the `origins` option: everything a script of a page reads. */
export function checksOrigin(route: Route): boolean {
  return route.kind === 'info' || route.kind === 'preflight' || route.kind === 'receive' || route.kind === 'send' || route.kind === 'websocket';
}

/**
 * The answer to a request on a route that needs no session, at `now` (for the dates of cached
 * answers). `cookie` is the JSESSIONID cookie, which only a preflight carries.
 */
export function staticAnswer(route: StaticRoute, req: IncomingMessage, context: AnswerContext, now: number, cookie?: Headers): Answer {
  const { options, policy } = context;
  switch (route.kind) {
    case 'greeting':
      return { response: greeting() };
    case 'iframe':
      // The iframe page exists for cross-domain transports only, which disable_cors forbids.
      if (options.disable_cors) return { response: notFound(false, now) };
      return { response: iframeResponse(context.iframe, req.headers['if-none-match'], now) };
    case 'info':
      return {
        response: info({
          websocket: options.transports.has('websocket'),
          cookie_needed: options.jsessionid !== false,
          ...(options.disable_cors ? {} : { origins: ['*:*'] }),
          entropy: randomInt(0x1_0000_0000),
        }),
        headers: policy.cors(req),
      };
    case 'preflight': {
      // With CORS disabled the preflight still answers, but grants nothing: no Access-Control-*.
      const grants = options.disable_cors ? undefined : preflightHeaders(route.methods);
      return { response: preflight({}), headers: mergeHeaders(cookie, policy.cors(req), cacheForAYear(now), grants) };
    }
    case 'not-found':
      return { response: notFound(route.cacheable, now) };
    case 'method-not-allowed':
      return { response: methodNotAllowed(route.allow) };
    case 'raw-websocket':
    case 'websocket':
      // A websocket URL asked without an upgrade.
      return { response: HTTP_ERRORS.NOT_A_WEBSOCKET };
  }
}

/** What an upgrade request gets: the websocket it opens, or the answer that refuses it. */
export function upgradeAnswer(route: Route, req: IncomingMessage, policy: HttpPolicy, now: number): WebsocketKind | StaticResponse {
  let kind: WebsocketKind;
  if (route.kind === 'raw-websocket') kind = RAW_WEBSOCKET;
  else if (route.kind === 'websocket') kind = SOCKJS_WEBSOCKET;
  else if (route.kind === 'not-found') return notFound(route.cacheable, now);
  else if (route.kind === 'method-not-allowed') return methodNotAllowed(route.allow);
  else return HTTP_ERRORS.UPGRADE_NOT_WEBSOCKET;
  if (policy.refusesOrigin(req)) return HTTP_ERRORS.ORIGIN_REFUSED;
  return refuseUpgrade(req, kind) ?? kind;
}

export function isWebsocketKind(answer: WebsocketKind | StaticResponse): answer is WebsocketKind {
  return 'framing' in answer;
}
