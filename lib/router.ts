/**
 * Routing is a pure function of the options, the method and the path (PROTOCOL.md section 2).
 */
import type { ResolvedOptions } from './options';
import { TRANSPORTS, type TransportUse } from './transports';
import type { ReceivingTransport, SendingTransport } from './transports/transport';

export type Route =
  | { readonly kind: 'outside' }
  | { readonly kind: 'greeting' }
  | { readonly kind: 'iframe' }
  | { readonly kind: 'info' }
  | { readonly kind: 'preflight'; readonly methods: string }
  | { readonly kind: 'raw-websocket' }
  /** `<session>/websocket`. */
  | { readonly kind: 'websocket'; readonly sessionId: string }
  /** A session URL the client receives on: a poll or a stream. */
  | { readonly kind: 'receive'; readonly transport: ReceivingTransport; readonly sessionId: string }
  /** A session URL the client sends on. */
  | { readonly kind: 'send'; readonly transport: SendingTransport; readonly sessionId: string }
  | { readonly kind: 'not-found'; readonly cacheable: boolean }
  | { readonly kind: 'method-not-allowed'; readonly allow: string };

type Method = 'GET' | 'POST' | 'OPTIONS';
type Handler = (sessionId: string) => Route;

type Methods = Partial<Record<Method, Handler>>;

interface Row {
  readonly path: RegExp;
  readonly methods: Methods;
}

export interface RouteTable {
  readonly prefix: string;
  /** The paths of one segment: the greeting, the iframe page, `/info` and `/websocket`. */
  readonly rows: readonly Row[];
  /** The session URLs served, by the last segment of `/<server>/<session>/<path>`. */
  readonly sessions: ReadonlyMap<string, Methods>;
}

const always = (route: Route): Handler => () => route;
// `/<server>/<session>/<path>`: each one or more characters that are neither `/` nor `.`, kept
// undecoded. One pattern for every session URL, so that it is matched once.
const SESSION_PATH = /^\/[^/.]+\/([^/.]+)\/([^/.]+)\/?$/;

const DISABLED = always({ kind: 'not-found', cacheable: true });

/** The methods of an HTTP transport's URL: its own, and the preflight of those that use XHR. */
function httpMethods(transport: ReceivingTransport | SendingTransport): Methods {
  const methods: Methods = {};
  if (transport.role === 'receive') methods[transport.method] = (sessionId) => ({ kind: 'receive', transport, sessionId });
  else methods[transport.method] = (sessionId) => ({ kind: 'send', transport, sessionId });
  if (transport.cors === 'xhr') methods.OPTIONS = always({ kind: 'preflight', methods: `OPTIONS, ${transport.method}` });
  return methods;
}

/**
 * Builds the route table of one prefix once, so that routing a request is a few regex tests. The
 * session URLs are those the transports that are on use (`TRANSPORTS`); `<session>/websocket`
 * answers a cacheable 404 when the websocket transport is off, other URLs a plain 404.
 */
export function routeTable(options: Pick<ResolvedOptions, 'prefix' | 'transports'>): RouteTable {
  const rows: Row[] = [
    { path: /^\/?$/, methods: { GET: always({ kind: 'greeting' }) } },
    { path: /^\/iframe[0-9a-z._-]*\.html\/?$/, methods: { GET: always({ kind: 'iframe' }) } },
    {
      path: /^\/info\/?$/,
      methods: { OPTIONS: always({ kind: 'preflight', methods: 'OPTIONS, GET' }), GET: always({ kind: 'info' }) },
    },
    {
      path: /^\/websocket\/?$/,
      methods: { GET: options.transports.has('websocket-raw') ? always({ kind: 'raw-websocket' }) : DISABLED },
    },
  ];
  const sessions = new Map<string, Methods>([['websocket', { GET: DISABLED }]]);
  for (const name of options.transports) {
    const use: TransportUse = TRANSPORTS[name];
    if (use.receive === 'websocket') sessions.set('websocket', { GET: (sessionId) => ({ kind: 'websocket', sessionId }) });
    else if (use.receive) sessions.set(use.receive.path, httpMethods(use.receive));
    if (use.send) sessions.set(use.send.path, httpMethods(use.send));
  }
  return { prefix: options.prefix, rows, sessions };
}

// `scheme://authority` of an absolute-form request target (what proxies send).
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * Splits a request target into its path and query string. Absolute-form targets lose their
 * scheme and authority only: the path is kept byte for byte, never normalised (no dot segments
 * removed, nothing percent-encoded), so that it routes exactly as the same origin-form path would.
 */
export function splitUrl(url: string): { pathname: string; query: string } {
  let target = url;
  const authority = ABSOLUTE_FORM.exec(url);
  if (authority) {
    target = url.slice(authority[0].length);
    if (!target.startsWith('/')) target = '/' + target;
  }
  const q = target.indexOf('?');
  return q === -1 ? { pathname: target, query: '' } : { pathname: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * Whether `pathname` lies under the table's prefix: the prefix itself or anything below it. The
 * empty prefix takes every path, but not the targets that are no path (`*` of `OPTIONS *`, the
 * `host:port` of CONNECT): those stay with the rest of the application.
 */
export function underPrefix(table: RouteTable, pathname: string): boolean {
  const { prefix } = table;
  return pathname === prefix || pathname.startsWith(prefix + '/');
}

const NOT_FOUND: Route = { kind: 'not-found', cacheable: false };

/** The route of a path that matched: its handler for `method`, or 405 with the methods it has. */
function handle(methods: Methods, method: string, sessionId: string): Route {
  const handler = Object.hasOwn(methods, method) ? methods[method as Method] : undefined;
  if (handler) return handler(sessionId);
  return { kind: 'method-not-allowed', allow: Object.keys(methods).join(', ') };
}

export function route(table: RouteTable, method: string, pathname: string): Route {
  if (!underPrefix(table, pathname)) return { kind: 'outside' };
  const rest = pathname.slice(table.prefix.length);
  const session = SESSION_PATH.exec(rest);
  if (session) {
    const methods = table.sessions.get(session[2]!);
    return methods ? handle(methods, method, session[1]!) : NOT_FOUND;
  }
  for (const row of table.rows) {
    if (row.path.test(rest)) return handle(row.methods, method, '');
  }
  return NOT_FOUND;
}
