import fc from 'fast-check';
import { type Route, route, routeTable, splitUrl, underPrefix } from '../lib/router';
import { ALL_TRANSPORTS, type TransportName } from '../lib/transports';
import { eventsource } from '../lib/transports/eventsource';
import { htmlfile } from '../lib/transports/htmlfile';
import { jsonpPolling, jsonpSend } from '../lib/transports/jsonp';
import { xhrPolling, xhrSend, xhrStreaming } from '../lib/transports/xhr';

const echo = routeTable({ prefix: '/echo', transports: new Set(ALL_TRANSPORTS) });
const withOnly = (...transports: TransportName[]) => routeTable({ prefix: '/echo', transports: new Set(transports) });

const NOT_FOUND: Route = { kind: 'not-found', cacheable: false };
const DISABLED: Route = { kind: 'not-found', cacheable: true };
type SessionPath = 'websocket' | 'xhr' | 'xhr_streaming' | 'xhr_send' | 'eventsource' | 'htmlfile' | 'jsonp' | 'jsonp_send';

/** The route of `/echo/a/<sessionId>/<path>` when that URL is served. */
function session(path: SessionPath, sessionId = 's'): Route {
  switch (path) {
    case 'websocket':
      return { kind: 'websocket', sessionId };
    case 'xhr':
      return { kind: 'receive', transport: xhrPolling, sessionId };
    case 'xhr_streaming':
      return { kind: 'receive', transport: xhrStreaming, sessionId };
    case 'eventsource':
      return { kind: 'receive', transport: eventsource, sessionId };
    case 'htmlfile':
      return { kind: 'receive', transport: htmlfile, sessionId };
    case 'jsonp':
      return { kind: 'receive', transport: jsonpPolling, sessionId };
    case 'xhr_send':
      return { kind: 'send', transport: xhrSend, sessionId };
    case 'jsonp_send':
      return { kind: 'send', transport: jsonpSend, sessionId };
  }
}
const notAllowed = (allow: string): Route => ({ kind: 'method-not-allowed', allow });

describe('route', () => {
  it.each(['/echo', '/echo/'])('greets GET %s', (path) => {
    expect(route(echo, 'GET', path)).toStrictEqual({ kind: 'greeting' });
  });

  it.each(['/echo/a', '/echo/a.html', '/echo//', '/echo///', '/echo/a/a', '/echo/a/a/', '/echo/a/', '/echo/a/b/c/d', '/echo/a/b/unknown'])(
    'does not find GET %s',
    (path) => {
      expect(route(echo, 'GET', path)).toStrictEqual(NOT_FOUND);
    },
  );

  it.each([
    ['a', 'a'],
    ['_', '_'],
    ['1', '1'],
    ['abcdefgh_i-j%20', 'abcdefgh_i-j%20'],
    ['f2f1e1a0-7e65-4e71-93a3-3b2f4d8f6a11', 'f2f1e1a0-7e65-4e71-93a3-3b2f4d8f6a11'],
  ])('takes the session id %s undecoded from the path', (part, sessionId) => {
    expect(route(echo, 'POST', `/echo/${part}/${part}/xhr`)).toStrictEqual(session('xhr', sessionId));
  });

  it('ignores the server part of a session path', () => {
    expect(route(echo, 'POST', '/echo/000/S/xhr')).toStrictEqual(session('xhr', 'S'));
    expect(route(echo, 'POST', '/echo/999/S/xhr')).toStrictEqual(session('xhr', 'S'));
  });

  describe.each(['GET', 'POST'])('with %s', (method) => {
    it.each(['/echo///xhr', '/echo/a./a/xhr', '/echo/a/a./xhr', '/echo/././xhr', '/echo//xhr', '/echo////xhr', '/echo/a/.a/xhr'])(
      'does not find the invalid session path %s',
      (path) => {
        expect(route(echo, method, path)).toStrictEqual(NOT_FOUND);
      },
    );
  });

  it.each<[string, string, Route]>([
    ['POST', '/echo/a/s/xhr', session('xhr')],
    ['POST', '/echo/a/s/xhr_send', session('xhr_send')],
    ['POST', '/echo/a/s/xhr_streaming', session('xhr_streaming')],
    ['GET', '/echo/a/s/eventsource', session('eventsource')],
    ['GET', '/echo/a/s/htmlfile', session('htmlfile')],
    ['GET', '/echo/a/s/jsonp', session('jsonp')],
    ['POST', '/echo/a/s/jsonp_send', session('jsonp_send')],
    ['GET', '/echo/a/s/websocket', session('websocket')],
  ])('routes %s %s to its session endpoint', (method, path, expected) => {
    expect(route(echo, method, path)).toStrictEqual(expected);
  });

  it.each<[string, string, Route]>([
    ['POST', '/echo/a/s/xhr/', session('xhr')],
    ['GET', '/echo/a/s/websocket/', session('websocket')],
    ['GET', '/echo/info/', { kind: 'info' }],
    ['GET', '/echo/iframe.html/', { kind: 'iframe' }],
  ])('tolerates one trailing slash on %s %s', (method, path, expected) => {
    expect(route(echo, method, path)).toStrictEqual(expected);
  });

  it('does not tolerate two trailing slashes', () => {
    expect(route(echo, 'POST', '/echo/a/s/xhr//')).toStrictEqual(NOT_FOUND);
  });

  it.each(['iframe.html', 'iframe-a.html', 'iframe-.html', 'iframe-0.1.2.html', 'iframe-0.1.2abc-dirty.2144.html', 'iframe_x.html'])(
    'serves the iframe page as %s',
    (name) => {
      expect(route(echo, 'GET', `/echo/${name}`)).toStrictEqual({ kind: 'iframe' });
    },
  );

  it.each(['iframe.htm', 'iframe', 'IFRAME.HTML', 'IFRAME', 'iframe.HTML', 'iframe.xml', 'iframe-/.html', 'iframeX.html', 'xiframe.html'])(
    'does not find the iframe name %s',
    (name) => {
      expect(route(echo, 'GET', `/echo/${name}`)).toStrictEqual(NOT_FOUND);
    },
  );

  it.each<[string, string, Route]>([
    ['GET', '/echo/info', { kind: 'info' }],
    ['OPTIONS', '/echo/info', { kind: 'preflight', methods: 'OPTIONS, GET' }],
    ['OPTIONS', '/echo/a/s/xhr', { kind: 'preflight', methods: 'OPTIONS, POST' }],
    ['OPTIONS', '/echo/a/s/xhr_send', { kind: 'preflight', methods: 'OPTIONS, POST' }],
    ['OPTIONS', '/echo/a/s/xhr_streaming', { kind: 'preflight', methods: 'OPTIONS, POST' }],
    ['GET', '/echo/websocket', { kind: 'raw-websocket' }],
  ])('routes %s %s', (method, path, expected) => {
    expect(route(echo, method, path)).toStrictEqual(expected);
  });

  it.each<[string, string, string]>([
    ['POST', '/echo/info', 'OPTIONS, GET'],
    ['POST', '/echo/a/s/websocket', 'GET'],
    ['POST', '/echo/websocket', 'GET'],
    ['POST', '/echo', 'GET'],
    ['POST', '/echo/iframe.html', 'GET'],
    ['GET', '/echo/a/s/xhr', 'POST, OPTIONS'],
    ['GET', '/echo/a/s/xhr_send', 'POST, OPTIONS'],
    ['POST', '/echo/a/s/eventsource', 'GET'],
    ['GET', '/echo/a/s/jsonp_send', 'POST'],
    ['OPTIONS', '/echo/a/s/jsonp', 'GET'],
    ['PUT', '/echo/info', 'OPTIONS, GET'],
    ['get', '/echo/info', 'OPTIONS, GET'],
  ])('refuses %s %s with Allow %j', (method, path, allow) => {
    expect(route(echo, method, path)).toStrictEqual(notAllowed(allow));
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])(
    'never matches the method name %s inherited from Object',
    (method) => {
      expect(route(echo, method, '/echo')).toStrictEqual(notAllowed('GET'));
      expect(route(echo, method, '/echo/info')).toStrictEqual(notAllowed('OPTIONS, GET'));
      expect(route(echo, method, '/echo/a/s/xhr')).toStrictEqual(notAllowed('POST, OPTIONS'));
    },
  );

  it.each(['/', '/echoes', '/echoes/info', '/ech', '/other/echo', '', '/ECHO'])('leaves %j outside the prefix /echo', (path) => {
    expect(route(echo, 'GET', path)).toStrictEqual({ kind: 'outside' });
  });

  describe('with the empty prefix', () => {
    const root = routeTable({ prefix: '', transports: new Set(ALL_TRANSPORTS) });

    it.each<[string, string, Route]>([
      ['GET', '/', { kind: 'greeting' }],
      ['GET', '/info', { kind: 'info' }],
      ['GET', '/iframe.html', { kind: 'iframe' }],
      ['POST', '/a/s/xhr', session('xhr')],
      ['GET', '/websocket', { kind: 'raw-websocket' }],
      ['GET', '//', NOT_FOUND],
      ['GET', '/echo', NOT_FOUND],
      ['POST', '/info', notAllowed('OPTIONS, GET')],
      ['OPTIONS', '*', { kind: 'outside' }],
      ['CONNECT', 'h:443', { kind: 'outside' }],
    ])('routes %s %s', (method, path, expected) => {
      expect(route(root, method, path)).toStrictEqual(expected);
    });
  });

  describe('with a nested prefix', () => {
    const nested = routeTable({ prefix: '/a/b', transports: new Set(ALL_TRANSPORTS) });

    it.each<[string, string, Route]>([
      ['GET', '/a/b', { kind: 'greeting' }],
      ['GET', '/a/b/info', { kind: 'info' }],
      ['POST', '/a/b/x/s/xhr', session('xhr')],
      ['GET', '/a', { kind: 'outside' }],
      ['GET', '/a/bc', { kind: 'outside' }],
    ])('routes %s %s', (method, path, expected) => {
      expect(route(nested, method, path)).toStrictEqual(expected);
    });
  });

  describe('with websocket disabled', () => {
    const noWebsocket = withOnly('xhr-polling', 'xhr-streaming', 'eventsource', 'htmlfile', 'jsonp-polling');

    it.each(['/echo/websocket', '/echo/a/s/websocket', '/echo/a/s/websocket/'])(
      'answers GET %s with a cacheable not-found',
      (path) => {
        expect(route(noWebsocket, 'GET', path)).toStrictEqual(DISABLED);
      },
    );

    it('still refuses POST on the websocket path with Allow GET', () => {
      expect(route(noWebsocket, 'POST', '/echo/a/s/websocket')).toStrictEqual(notAllowed('GET'));
    });

    it('keeps the HTTP transports', () => {
      expect(route(noWebsocket, 'POST', '/echo/a/s/xhr')).toStrictEqual(session('xhr'));
    });
  });

  it('offers the raw websocket only while websocket-raw is on', () => {
    expect(route(withOnly('websocket'), 'GET', '/echo/websocket')).toStrictEqual(DISABLED);
    expect(route(withOnly('websocket'), 'GET', '/echo/a/s/websocket')).toStrictEqual(session('websocket'));
    expect(route(withOnly('websocket-raw'), 'GET', '/echo/websocket')).toStrictEqual({ kind: 'raw-websocket' });
    expect(route(withOnly('websocket-raw'), 'GET', '/echo/a/s/websocket')).toStrictEqual(DISABLED);
  });

  const SESSION_URLS: ReadonlyArray<[SessionPath, string]> = [
    ['xhr', 'POST'],
    ['xhr_send', 'POST'],
    ['xhr_streaming', 'POST'],
    ['eventsource', 'GET'],
    ['htmlfile', 'GET'],
    ['jsonp', 'GET'],
    ['jsonp_send', 'POST'],
  ];

  it.each<[TransportName, readonly SessionPath[]]>([
    ['xhr-polling', ['xhr', 'xhr_send']],
    ['xhr-streaming', ['xhr_streaming', 'xhr_send']],
    ['eventsource', ['eventsource', 'xhr_send']],
    ['htmlfile', ['htmlfile', 'jsonp_send']],
    ['jsonp-polling', ['jsonp', 'jsonp_send']],
    ['websocket', []],
    ['websocket-raw', []],
  ])('with only %s on, offers exactly the HTTP session URLs %j', (transport, offered) => {
    const table = withOnly(transport);
    for (const [path, method] of SESSION_URLS) {
      const expected = offered.includes(path) ? session(path) : NOT_FOUND;
      expect([path, route(table, method, `/echo/a/s/${path}`)]).toStrictEqual([path, expected]);
    }
  });

  it('keeps the greeting, info and iframe page with no transport at all', () => {
    const none = withOnly();
    expect(route(none, 'GET', '/echo')).toStrictEqual({ kind: 'greeting' });
    expect(route(none, 'GET', '/echo/info')).toStrictEqual({ kind: 'info' });
    expect(route(none, 'GET', '/echo/iframe.html')).toStrictEqual({ kind: 'iframe' });
    expect(route(none, 'POST', '/echo/a/s/xhr')).toStrictEqual(NOT_FOUND);
  });
});

describe('underPrefix', () => {
  const root = routeTable({ prefix: '', transports: new Set(ALL_TRANSPORTS) });

  it.each<[string, string, boolean]>([
    ['/echo', '/echo', true],
    ['/echo', '/echo/', true],
    ['/echo', '/echo/a/s/xhr', true],
    ['/echo', '/echoes', false],
    ['/echo', '/ech', false],
    ['/echo', '/', false],
    ['', '/', true],
    ['', '/anything/at/all', true],
    ['', '*', false],
    ['', 'h:443', false],
  ])('with the prefix %j says %j is under it: %s', (prefix, pathname, under) => {
    expect(underPrefix(prefix === '' ? root : echo, pathname)).toBe(under);
  });
});

describe('splitUrl', () => {
  it.each<[string, string, string]>([
    ['/echo', '/echo', ''],
    ['/echo/', '/echo/', ''],
    ['/echo/iframe.html?t=1234', '/echo/iframe.html', 't=1234'],
    ['/echo/a/s/htmlfile?c=%63allback', '/echo/a/s/htmlfile', 'c=%63allback'],
    ['/echo?', '/echo', ''],
    ['/echo?a?b', '/echo', 'a?b'],
    ['/echo/a/abcdefgh_i-j%20/xhr', '/echo/a/abcdefgh_i-j%20/xhr', ''],
    ['//echo/a', '//echo/a', ''],
    ['http://h/p?q', '/p', 'q'],
    ['http://h:8080/echo/info?t=1', '/echo/info', 't=1'],
    ['HTTPS://h/echo', '/echo', ''],
    ['http://h', '/', ''],
    ['http://h?q', '/', 'q'],
    ['http://h/echo/a/abcdefgh_i-j%20/xhr', '/echo/a/abcdefgh_i-j%20/xhr', ''],
  ])('splits %j into its path %j and query %j', (url, pathname, query) => {
    expect(splitUrl(url)).toStrictEqual({ pathname, query });
  });

  it.each<[string, string]>([
    ['http://h/echo/a/./s/xhr', '/echo/a/./s/xhr'],
    ['http://h/echo/a/../s/xhr', '/echo/a/../s/xhr'],
    ['http://h/echo/a/x{y}/xhr', '/echo/a/x{y}/xhr'],
    ['http://h/echo/a/x%7By/xhr', '/echo/a/x%7By/xhr'],
  ])('keeps the path of the absolute-form %j as sent, like the origin form', (url, pathname) => {
    expect(splitUrl(url)).toStrictEqual({ pathname, query: '' });
  });

  it('gives an absolute-form session path the same route as its origin form', () => {
    const absolute = route(echo, 'POST', splitUrl('http://h/echo/a/./s/xhr').pathname);
    const origin = route(echo, 'POST', splitUrl('/echo/a/./s/xhr').pathname);
    expect(absolute).toStrictEqual(NOT_FOUND);
    expect(origin).toStrictEqual(NOT_FOUND);
  });

  it.each(['*', 'h:443'])('leaves the target %j that is neither a path nor a URL as it is', (url) => {
    expect(splitUrl(url)).toStrictEqual({ pathname: url, query: '' });
  });
});

describe('routing, for any request', () => {
  const table = routeTable({ prefix: '/echo', transports: new Set(ALL_TRANSPORTS) });
  const method = fc.constantFrom('GET', 'POST', 'OPTIONS', 'PUT', 'DELETE', 'HEAD', 'constructor', '__proto__');
  const segment = fc.oneof(fc.string(), fc.constantFrom('', '.', '..', 'xhr', 'websocket', '__proto__', 'constructor', 'a'.repeat(10_000), '\u0000'));
  const path = fc.array(segment, { maxLength: 6 }).map((parts) => '/' + parts.join('/'));

  it('never throws, and sends only paths under the prefix to the server', () => {
    fc.assert(
      fc.property(method, fc.constantFrom('', '/echo', '/echoes', '/ech'), path, (m, start, rest) => {
        const p = start + rest;
        const r = route(table, m, p);
        expect(r.kind === 'outside').toBe(!(p === '/echo' || p.startsWith('/echo/')));
      }),
    );
  });

  it('gives session ids that hold neither a slash nor a dot', () => {
    fc.assert(
      fc.property(method, path, (m, p) => {
        const r = route(table, m, '/echo' + p);
        if (r.kind === 'receive' || r.kind === 'send' || r.kind === 'websocket') expect(r.sessionId).toMatch(/^[^/.]+$/);
      }),
    );
  });
});
