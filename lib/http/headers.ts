/**
 * Header sets shared by many responses (PROTOCOL.md section 4), as pure functions of the request.
 */
import type { IncomingHttpHeaders } from 'http';

export type Headers = Record<string, string>;

const YEAR_SECONDS = 365 * 24 * 60 * 60;

/**
 * The header sets in order, later ones winning, as one new object that the caller may add to.
 * Not object spread: V8 (11.3, Node 20) makes an object built by `{ ...a }` slow to grow, about
 * 0.4 µs per header added afterwards, and callers add to this one (a poll's Content-Length).
 */
export function mergeHeaders(...sets: ReadonlyArray<Headers | undefined>): Headers {
  const merged: Headers = {};
  for (const set of sets) {
    if (set) for (const name in set) merged[name] = set[name]!;
  }
  return merged;
}

/** Responses that must never be cached: every session transport and `/info`. */
export const NO_CACHE: Headers = {
  'Cache-Control': 'no-store, no-cache, no-transform, must-revalidate, max-age=0',
};

/** Preflights, the iframe page and disabled websocket URLs may be cached for a year. */
export function cacheForAYear(now: number): Headers {
  return {
    'Cache-Control': `public, max-age=${YEAR_SECONDS}`,
    Expires: new Date(now + YEAR_SECONDS * 1000).toUTCString(),
  };
}

/** CORS headers echoing `origin` with credentials, or `*` without them when there is none. */
function allowOrigin(origin: string | undefined, request: IncomingHttpHeaders): Headers {
  const headers: Headers = origin
    ? { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true' }
    : { 'Access-Control-Allow-Origin': '*' };
  headers.Vary = 'Origin';
  const asked = request['access-control-request-headers'];
  if (asked) headers['Access-Control-Allow-Headers'] = asked;
  return headers;
}

/**
 * CORS for the XHR transports: the request's Origin is echoed, the literal `null` included, with
 * credentials allowed so that the JSESSIONID cookie of sticky load balancers is sent; with no
 * Origin, `*` and no credentials.
 */
export function corsHeaders(request: IncomingHttpHeaders): Headers {
  return allowOrigin(request.origin, request);
}

/**
 * CORS for `eventsource`, as the reference server answers: a named Origin is echoed with
 * credentials allowed (an EventSource opened `withCredentials` is refused a `*`); an absent or
 * `null` Origin gets `*` and no credentials, unlike the XHR rules, which echo `null`.
 */
export function eventsourceCorsHeaders(request: IncomingHttpHeaders): Headers {
  const origin = request.origin;
  return allowOrigin(origin === 'null' ? undefined : origin, request);
}

/** A preflight's own headers, on top of CORS and the year-long cache set. */
export function preflightHeaders(methods: string): Headers {
  return {
    'Access-Control-Allow-Methods': methods,
    'Access-Control-Max-Age': String(YEAR_SECONDS),
  };
}

/** Reads one cookie from a Cookie header; values are taken as they are, undecoded. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * `Set-Cookie: JSESSIONID=<v>; path=/`, echoing the client's own JSESSIONID or `dummy`: load
 * balancers that stick sessions by this cookie need it on every session response.
 */
export function jsessionidHeaders(request: IncomingHttpHeaders): Headers {
  const value = readCookie(request.cookie, 'JSESSIONID') || 'dummy';
  return { 'Set-Cookie': `JSESSIONID=${value}; path=/` };
}
