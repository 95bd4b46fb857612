/**
 * The answers that need no session, built without a socket: from a route, a request's headers and
 * the options.
 */
import type { IncomingMessage } from 'http';
import { HTTP_ERRORS } from '../../lib/errors';
import { type AnswerContext, checksOrigin, isWebsocketKind, staticAnswer, upgradeAnswer } from '../../lib/http/answers';
import { iframe } from '../../lib/http/pages';
import { HttpPolicy } from '../../lib/http/policy';
import { resolveOptions, type ServerOptions } from '../../lib/options';
import { route, routeTable } from '../../lib/router';
import { RAW_WEBSOCKET, SOCKJS_WEBSOCKET } from '../../lib/transports/websocket';

const NOW = Date.UTC(2024, 1, 29, 12, 0, 0);
const YEAR = 'public, max-age=31536000';

function context(options: ServerOptions = {}): AnswerContext {
  const resolved = resolveOptions({ prefix: '/echo', ...options });
  return { options: resolved, policy: new HttpPolicy(resolved), iframe: iframe(resolved.sockjs_url) };
}

const request = (headers: IncomingMessage['headers'] = {}): IncomingMessage => ({ method: 'GET', url: '/', headers }) as IncomingMessage;

function routeOf(method: string, path: string, options: ServerOptions = {}) {
  const r = route(routeTable(resolveOptions({ prefix: '/echo', ...options })), method, path);
  if (r.kind === 'receive' || r.kind === 'send' || r.kind === 'outside') throw new Error(`${path} needs a session`);
  return r;
}

describe('staticAnswer', () => {
  it('greets', () => {
    expect(staticAnswer(routeOf('GET', '/echo'), request(), context(), NOW).response).toMatchObject({ status: 200, body: 'Welcome to SockJS!\n' });
  });

  it('describes the server in /info, with CORS unless disabled', () => {
    const { response, headers } = staticAnswer(routeOf('GET', '/echo/info'), request({ origin: 'https://a.example' }), context({ jsessionid: true }), NOW);
    expect(JSON.parse(response.body)).toMatchObject({ websocket: true, cookie_needed: true, origins: ['*:*'] });
    expect(headers).toMatchObject({ 'Access-Control-Allow-Origin': 'https://a.example', 'Access-Control-Allow-Credentials': 'true' });
    const disabled = staticAnswer(routeOf('GET', '/echo/info'), request({ origin: 'https://a.example' }), context({ disable_cors: true, websocket: false }), NOW);
    expect(JSON.parse(disabled.response.body)).toStrictEqual({ websocket: false, cookie_needed: false, entropy: expect.any(Number) });
    expect(disabled.headers).toBeUndefined();
  });

  it('answers a preflight 204 with the cookie, CORS, the year-long cache and the methods it grants', () => {
    const cookie = { 'Set-Cookie': 'JSESSIONID=x; path=/' };
    const { response, headers } = staticAnswer(routeOf('OPTIONS', '/echo/a/b/xhr_send'), request({ origin: 'null' }), context(), NOW, cookie);
    expect(response).toStrictEqual({ status: 204, headers: {}, body: '' });
    expect(headers).toMatchObject({
      'Set-Cookie': 'JSESSIONID=x; path=/',
      'Access-Control-Allow-Origin': 'null',
      'Cache-Control': YEAR,
      'Access-Control-Allow-Methods': 'OPTIONS, POST',
    });
  });

  it('grants nothing in a preflight with CORS disabled', () => {
    const { headers } = staticAnswer(routeOf('OPTIONS', '/echo/info'), request({ origin: 'null' }), context({ disable_cors: true }), NOW);
    expect(Object.keys(headers ?? {}).filter((name) => name.startsWith('Access-Control-'))).toStrictEqual([]);
    expect(headers).toMatchObject({ 'Cache-Control': YEAR });
  });

  it('serves the iframe page with its ETag, 304 when the client has it, and 404 with CORS disabled', () => {
    const page = staticAnswer(routeOf('GET', '/echo/iframe.html'), request(), context(), NOW).response;
    expect(page.status).toBe(200);
    const etag = page.headers.ETag!;
    expect(staticAnswer(routeOf('GET', '/echo/iframe.html'), request({ 'if-none-match': etag }), context(), NOW).response.status).toBe(304);
    expect(staticAnswer(routeOf('GET', '/echo/iframe.html'), request(), context({ disable_cors: true }), NOW).response.status).toBe(404);
  });

  it('answers a websocket URL asked without an upgrade 400', () => {
    expect(staticAnswer(routeOf('GET', '/echo/a/b/websocket'), request(), context(), NOW).response).toBe(HTTP_ERRORS.NOT_A_WEBSOCKET);
    expect(staticAnswer(routeOf('GET', '/echo/websocket'), request(), context(), NOW).response).toBe(HTTP_ERRORS.NOT_A_WEBSOCKET);
  });

  it('answers 404 and 405 as the route says', () => {
    expect(staticAnswer(routeOf('GET', '/echo/nothing'), request(), context(), NOW).response.status).toBe(404);
    expect(staticAnswer(routeOf('PUT', '/echo/info'), request(), context(), NOW).response).toStrictEqual({ status: 405, headers: { Allow: 'OPTIONS, GET' }, body: '' });
  });
});

describe('checksOrigin', () => {
  it('checks what a page script reads or sends, not the greeting, the iframe page or 404s', () => {
    const checked = (method: string, path: string) => checksOrigin(route(routeTable(resolveOptions({ prefix: '/echo' })), method, path));
    expect(['/echo/info', '/echo/a/b/xhr', '/echo/a/b/xhr_send', '/echo/a/b/eventsource', '/echo/a/b/websocket'].map((p) => checked(p.endsWith('info') || p.endsWith('eventsource') || p.endsWith('websocket') ? 'GET' : 'POST', p))).toStrictEqual([true, true, true, true, true]);
    expect(checked('OPTIONS', '/echo/a/b/xhr')).toBe(true);
    expect(['/echo', '/echo/iframe.html', '/echo/nothing', '/echo/websocket'].map((p) => checked('GET', p))).toStrictEqual([false, false, false, false]);
  });
});

describe('upgradeAnswer', () => {
  const upgrade = (headers: IncomingMessage['headers'] = {}) => request({ upgrade: 'websocket', 'sec-websocket-version': '13', ...headers });
  const policy = (options: ServerOptions = {}) => context(options).policy;

  it('opens a SockJS websocket on a session URL and a raw one on /websocket', () => {
    expect(upgradeAnswer(routeOf('GET', '/echo/a/b/websocket'), upgrade(), policy(), NOW)).toBe(SOCKJS_WEBSOCKET);
    expect(upgradeAnswer(routeOf('GET', '/echo/websocket'), upgrade(), policy(), NOW)).toBe(RAW_WEBSOCKET);
  });

  it('refuses an upgrade anywhere else, to anything else, from a refused origin or to an old draft on /websocket', () => {
    expect(upgradeAnswer(routeOf('GET', '/echo/info'), upgrade(), policy(), NOW)).toBe(HTTP_ERRORS.UPGRADE_NOT_WEBSOCKET);
    expect(upgradeAnswer(routeOf('GET', '/echo/a/b/websocket'), upgrade({ upgrade: 'h2c' }), policy(), NOW)).toBe(HTTP_ERRORS.NOT_A_WEBSOCKET);
    expect(upgradeAnswer(routeOf('GET', '/echo/a/b/websocket'), upgrade({ origin: 'https://evil.example' }), policy({ origins: ['https://a.example'] }), NOW)).toBe(
      HTTP_ERRORS.ORIGIN_REFUSED,
    );
    expect(upgradeAnswer(routeOf('GET', '/echo/websocket'), upgrade({ 'sec-websocket-version': '7' }), policy(), NOW)).toBe(HTTP_ERRORS.WEBSOCKET_VERSION);
    const disabled = upgradeAnswer(routeOf('GET', '/echo/a/b/websocket', { websocket: false }), upgrade(), policy({ websocket: false }), NOW);
    expect(isWebsocketKind(disabled) ? disabled : disabled.status).toBe(404);
  });
});
