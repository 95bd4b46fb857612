import { createHash } from 'crypto';
import { cacheForAYear } from '../../lib/http/headers';
import {
  greeting,
  iframe,
  iframeBody,
  iframeResponse,
  info,
  methodNotAllowed,
  notFound,
  preflight,
  type StaticResponse,
} from '../../lib/http/pages';
import { DEFAULT_SOCKJS_URL } from '../../lib/options';

const NOW = Date.UTC(2024, 1, 29, 12, 0, 0);
const A_YEAR_LATER = 'Fri, 28 Feb 2025 12:00:00 GMT';

/** The iframe page of PROTOCOL.md section 9, line by line. */
const iframeLines = (sockjsUrl: string): string =>
  [
    '<!DOCTYPE html>',
    '<html>',
    '<head>',
    '  <meta http-equiv="X-UA-Compatible" content="IE=edge" />',
    '  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
    `  <script src="${sockjsUrl}"></script>`,
    '  <script>',
    '    document.domain = document.domain;',
    '    SockJS.bootstrap_iframe();',
    '  </script>',
    '</head>',
    '<body>',
    '  <h2>Don\'t panic!</h2>',
    '  <p>This is a SockJS hidden iframe. It\'s used for cross domain magic.</p>',
    '</body>',
    '</html>',
  ].join('\n');

const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

describe('greeting', () => {
  it('answers 200 with exactly Welcome to SockJS! and a LF as UTF-8 plain text', () => {
    expect(greeting()).toStrictEqual({
      status: 200,
      headers: { 'Content-Type': 'text/plain; charset=UTF-8' },
      body: 'Welcome to SockJS!\n',
    });
  });

  it('has a 19-byte body and no cookie', () => {
    const response = greeting();
    expect(Buffer.byteLength(response.body)).toBe(19);
    expect(Object.keys(response.headers)).not.toContain('Set-Cookie');
  });
});

describe('notFound', () => {
  it('answers 404 with the reference text and no caching headers', () => {
    expect(notFound(false, NOW)).toStrictEqual({
      status: 404,
      headers: { 'Content-Type': 'text/plain; charset=UTF-8' },
      body: '404 Error: Page not found\n',
    });
  });

  it('adds the year-long cache set for disabled websocket URLs', () => {
    expect(notFound(true, NOW)).toStrictEqual({
      status: 404,
      headers: {
        'Content-Type': 'text/plain; charset=UTF-8',
        'Cache-Control': 'public, max-age=31536000',
        Expires: A_YEAR_LATER,
      },
      body: '404 Error: Page not found\n',
    });
  });
});

describe('methodNotAllowed', () => {
  it.each(['GET', 'OPTIONS, GET', 'POST, OPTIONS'])('answers 405 with Allow %j, no Content-Type and an empty body', (allow) => {
    expect(methodNotAllowed(allow)).toStrictEqual({ status: 405, headers: { Allow: allow }, body: '' });
  });
});

describe('info', () => {
  it.each([
    [true, false],
    [false, true],
  ])('answers the fields with websocket %s and cookie_needed %s as uncached JSON', (websocket, cookieNeeded) => {
    const response = info({ websocket, cookie_needed: cookieNeeded, origins: ['*:*'], entropy: 123456789 });
    expect(response).toStrictEqual({
      status: 200,
      headers: {
        'Content-Type': 'application/json; charset=UTF-8',
        'Cache-Control': 'no-store, no-cache, no-transform, must-revalidate, max-age=0',
      },
      body: `{"websocket":${String(websocket)},"cookie_needed":${String(cookieNeeded)},"origins":["*:*"],"entropy":123456789}`,
    });
  });

  it('carries the four fields the client reads and no Set-Cookie', () => {
    const response = info({ websocket: true, cookie_needed: true, origins: ['*:*'], entropy: 4294967295 });
    expect(JSON.parse(response.body)).toStrictEqual({
      websocket: true,
      cookie_needed: true,
      origins: ['*:*'],
      entropy: 4294967295,
    });
    expect(Object.keys(response.headers)).not.toContain('Set-Cookie');
  });
});

describe('iframeBody', () => {
  it.each([DEFAULT_SOCKJS_URL, '/static/sockjs.js', 'http://localhost:8080/lib/sockjs.js'])(
    'is exactly the lines of the protocol with the sockjs_url %s',
    (sockjsUrl) => {
      expect(iframeBody(sockjsUrl).trim()).toBe(iframeLines(sockjsUrl));
    },
  );
});

describe('iframe', () => {
  it('tags the page with the quoted MD5 hex digest of its body', () => {
    const page = iframe(DEFAULT_SOCKJS_URL);
    expect(page.body.trim()).toBe(iframeLines(DEFAULT_SOCKJS_URL));
    expect(page.etag).toBe(`"${md5(page.body)}"`);
    expect(page.etag).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('gives the same ETag every time for the same sockjs_url', () => {
    expect(iframe(DEFAULT_SOCKJS_URL).etag).toBe(iframe(DEFAULT_SOCKJS_URL).etag);
  });

  it('gives another ETag for another sockjs_url', () => {
    expect(iframe('/a/sockjs.js').etag).not.toBe(iframe('/b/sockjs.js').etag);
  });
});

describe('iframeResponse', () => {
  const page = iframe(DEFAULT_SOCKJS_URL);

  it.each([undefined, '', '"other"', page.etag.slice(1, -1), `W/${page.etag}`])(
    'serves the page with the year-long cache set and the ETag when If-None-Match is %j',
    (ifNoneMatch) => {
      expect(iframeResponse(page, ifNoneMatch, NOW)).toStrictEqual({
        status: 200,
        headers: {
          'Content-Type': 'text/html; charset=UTF-8',
          'Cache-Control': 'public, max-age=31536000',
          Expires: A_YEAR_LATER,
          ETag: page.etag,
        },
        body: page.body,
      });
    },
  );

  it('answers 304 with no Content-Type and an empty body when If-None-Match is the ETag', () => {
    expect(iframeResponse(page, page.etag, NOW)).toStrictEqual({
      status: 304,
      headers: { 'Cache-Control': 'public, max-age=31536000', Expires: A_YEAR_LATER, ETag: page.etag },
      body: '',
    });
  });

  it('sends neither Last-Modified nor Set-Cookie', () => {
    for (const response of [iframeResponse(page, undefined, NOW), iframeResponse(page, page.etag, NOW)]) {
      expect(Object.keys(response.headers)).not.toContain('Last-Modified');
      expect(Object.keys(response.headers)).not.toContain('Set-Cookie');
    }
  });
});

describe('preflight', () => {
  it('answers 204 with the given headers and an empty body', () => {
    const headers = { ...cacheForAYear(NOW), 'Access-Control-Allow-Methods': 'OPTIONS, POST' };
    const expected: StaticResponse = { status: 204, headers, body: '' };
    expect(preflight(headers)).toStrictEqual(expected);
  });
});
