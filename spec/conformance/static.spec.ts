/**
 * Conformance: the URLs that need no session (PROTOCOL.md sections 2, 4, 6 and 9) — the
 * official suite's BaseUrlGreeting, IframePage and InfoTest, against the standard test server
 * built with each API.
 */
import { createHash } from 'crypto';
import { APIS, Conformance, contentType, expectCachedForAYear, expectCors, expectNotCached, expectPreflight } from './support';

/** The iframe page after trimming, with the configured sockjs_url captured. */
const IFRAME_BODY = new RegExp(
  '^' +
    [
      '<!DOCTYPE html>',
      '<html>',
      '<head>',
      '  <meta http-equiv="X-UA-Compatible" content="IE=edge" />',
      '  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
      '  <script src="\u0000"></script>',
      '  <script>',
      '    document.domain = document.domain;',
      '    SockJS.bootstrap_iframe();',
      '  </script>',
      '</head>',
      '<body>',
      "  <h2>Don't panic!</h2>",
      "  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>",
      '</body>',
      '</html>',
    ]
      .join('\n')
      .replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
      .replace('\u0000', '(?<sockjs_url>[^"]*)') +
    '$',
);

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  describe('BaseUrlGreeting', () => {
    it('BaseUrlGreeting.test_greeting: answers P and P/ with 200, text/plain UTF-8 and exactly "Welcome to SockJS!\\n", without a cookie', async () => {
      for (const path of ['/echo', '/echo/']) {
        const r = await server.get(path);
        expect(r.status).toBe(200);
        expect(contentType(r.headers)).toBe('text/plain;charset=UTF-8');
        expect(r.body).toBe('Welcome to SockJS!\n');
        expect(r.headers['set-cookie']).toBeUndefined();
      }
    });

    it('BaseUrlGreeting.test_notFound: answers 404 to the junk paths under the prefix', async () => {
      for (const suffix of ['/a', '/a.html', '//', '///', '/a/a', '/a/a/', '/a', '/a/']) {
        expect({ suffix, status: (await server.get('/echo' + suffix)).status }).toEqual({ suffix, status: 404 });
      }
    });

    it('BaseUrlGreeting, as the reference: a 404 says "404 Error: Page not found" in text/plain', async () => {
      const r = await server.get('/echo/a');
      expect(r.status).toBe(404);
      expect(contentType(r.headers)).toBe('text/plain;charset=UTF-8');
      expect(r.body).toBe('404 Error: Page not found\n');
    });
  });

  describe('IframePage', () => {
    /** The suite's IframePage.verify. */
    async function expectIframePage(path: string): Promise<void> {
      const r = await server.get(path);
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('text/html;charset=UTF-8');
      expectCachedForAYear(r.headers);
      expect(r.headers['etag']).toBeTruthy();
      expect(r.headers['last-modified']).toBeUndefined();
      const match = IFRAME_BODY.exec(r.body.trim());
      expect(match).not.toBeNull();
      const sockjsUrl = match?.groups?.['sockjs_url'] ?? '';
      expect(sockjsUrl.startsWith('/') || sockjsUrl.startsWith('http')).toBe(true);
      expect(r.headers['set-cookie']).toBeUndefined();
    }

    it('IframePage.test_simpleUrl: serves iframe.html with its exact body, cacheable for a year, with an ETag and no Last-Modified', async () => {
      await expectIframePage('/echo/iframe.html');
    });

    it('IframePage.test_versionedUrl: serves the same page under the versioned names', async () => {
      for (const suffix of ['/iframe-a.html', '/iframe-.html', '/iframe-0.1.2.html', '/iframe-0.1.2abc-dirty.2144.html']) {
        await expectIframePage('/echo' + suffix);
      }
    });

    it('IframePage.test_queriedUrl: serves the same page when a query string is added', async () => {
      for (const suffix of ['/iframe-a.html?t=1234', '/iframe-0.1.2.html?t=123414', '/iframe-0.1.2abc-dirty.2144.html?t=qweqweq123']) {
        await expectIframePage('/echo' + suffix);
      }
    });

    it('IframePage.test_invalidUrl: answers 404 to malformed iframe names', async () => {
      for (const suffix of ['/iframe.htm', '/iframe', '/IFRAME.HTML', '/IFRAME', '/iframe.HTML', '/iframe.xml', '/iframe-/.html']) {
        expect({ suffix, status: (await server.get('/echo' + suffix)).status }).toEqual({ suffix, status: 404 });
      }
    });

    it('IframePage.test_cacheability: keeps the ETag stable and answers If-None-Match with 304, no Content-Type and no body', async () => {
      const r1 = await server.get('/echo/iframe.html');
      const r2 = await server.get('/echo/iframe.html');
      expect(r1.headers['etag']).toBeTruthy();
      expect(r2.headers['etag']).toBe(r1.headers['etag']);
      const r = await server.get('/echo/iframe.html', { 'If-None-Match': r1.headers['etag'] ?? '' });
      expect(r.status).toBe(304);
      expect(r.headers['content-type']).toBeUndefined();
      expect(r.body).toBe('');
    });

    it('IframePage, as the reference: the ETag is the MD5 hex digest of the page in double quotes', async () => {
      const r = await server.get('/echo/iframe.html');
      expect(r.headers['etag']).toBe('"' + createHash('md5').update(r.body).digest('hex') + '"');
    });
  });

  describe('InfoTest', () => {
    it('InfoTest.test_basic: answers /info with JSON that is not cached, has CORS and no cookie, and holds the four fields', async () => {
      const r = await server.get('/echo/info', { Origin: 'test' });
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('application/json;charset=UTF-8');
      expect(r.headers['set-cookie']).toBeUndefined();
      expectNotCached(r.headers);
      expectCors(r.headers, 'test');
      const data: unknown = JSON.parse(r.body);
      expect(data).toEqual({
        websocket: true,
        cookie_needed: expect.any(Boolean),
        origins: ['*:*'],
        entropy: expect.any(Number),
      });
      const { entropy } = data as { entropy: number };
      expect(Number.isInteger(entropy)).toBe(true);
      expect(entropy).toBeGreaterThanOrEqual(0);
      expect(entropy).toBeLessThanOrEqual(2 ** 32 - 1);
    });

    it('InfoTest.test_entropy: gives a different integer entropy on each call', async () => {
      const first = JSON.parse((await server.get('/echo/info')).body) as { entropy: unknown };
      const second = JSON.parse((await server.get('/echo/info')).body) as { entropy: unknown };
      expect(Number.isInteger(first.entropy)).toBe(true);
      expect(Number.isInteger(second.entropy)).toBe(true);
      expect(second.entropy).not.toBe(first.entropy);
    });

    it('InfoTest.test_options: answers the OPTIONS preflight of /info for the origins "test" and "null"', async () => {
      await expectPreflight(server, '/echo/info', 'OPTIONS, GET');
    });

    it('InfoTest.test_options_null_origin: echoes the origin "null" in an empty preflight answer', async () => {
      const r = await server.options('/echo/info', { Origin: 'null', 'Access-Control-Request-Method': 'POST' });
      expect([200, 204]).toContain(r.status);
      expect(r.body).toBe('');
      expect(r.headers['access-control-allow-origin']).toBe('null');
    });

    it('InfoTest.test_disabled_websocket: says websocket false on the service with websockets disabled', async () => {
      const r = await server.get('/disabled_websocket_echo/info');
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { websocket: unknown }).websocket).toBe(false);
    });

    it('InfoTest, without an Origin: answers with "*" and no credentials header', async () => {
      const r = await server.get('/echo/info');
      expectCors(r.headers);
    });

    it('InfoTest, as the reference: adds Vary: Origin to the CORS headers', async () => {
      const r = await server.get('/echo/info', { Origin: 'test' });
      expect(r.headers['vary']).toBe('Origin');
    });

    it('InfoTest, as the reference: answers POST /info with 405, Allow: OPTIONS, GET, no Content-Type and no body', async () => {
      const r = await server.post('/echo/info');
      expect(r.status).toBe(405);
      expect(r.headers['allow']).toBe('OPTIONS, GET');
      expect(r.headers['content-type']).toBeUndefined();
      expect(r.body).toBe('');
    });
  });
});
