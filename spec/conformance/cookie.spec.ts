/**
 * Conformance: the JSESSIONID cookie for sticky load balancers (PROTOCOL.md section 4) — the
 * official suite's JsessionidCookie, on `/cookie_needed_echo`, against the standard test server
 * built with each API.
 */
import { APIS, Conformance, sessionUrl } from './support';

/** The suite's `verify_cookie`: `JSESSIONID=<value>` before the first `;`, then `path=/`. */
function expectCookie(headers: Readonly<Record<string, string>>, value = 'dummy'): void {
  const parts = (headers['set-cookie'] ?? '').split(';');
  expect(parts[0]?.trim()).toBe(`JSESSIONID=${value}`);
  expect(parts[1]?.toLowerCase().trim()).toBe('path=/');
}

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  describe('JsessionidCookie', () => {
    it('JsessionidCookie.test_basic: says cookie_needed true in /info and sets no cookie there', async () => {
      const r = await server.get('/cookie_needed_echo/info');
      expect(r.status).toBe(200);
      expect(r.headers['set-cookie']).toBeUndefined();
      expect((JSON.parse(r.body) as { cookie_needed: unknown }).cookie_needed).toBe(true);
    });

    it('JsessionidCookie.test_xhr: sets JSESSIONID=dummy; path=/ on xhr, and echoes the JSESSIONID the client sent', async () => {
      let r = await server.post(sessionUrl('/cookie_needed_echo') + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');
      expectCookie(r.headers);

      r = await server.post(sessionUrl('/cookie_needed_echo') + '/xhr', '', { Cookie: 'JSESSIONID=abcdef' });
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');
      expectCookie(r.headers, 'abcdef');
    });

    it('JsessionidCookie.test_xhr_streaming: sets the cookie on xhr_streaming', async () => {
      const r = await server.stream('POST', sessionUrl('/cookie_needed_echo') + '/xhr_streaming', { body: '' });
      expect(r.status).toBe(200);
      expectCookie(r.headers);
    });

    it('JsessionidCookie.test_eventsource: sets the cookie on eventsource', async () => {
      const r = await server.stream('GET', sessionUrl('/cookie_needed_echo') + '/eventsource');
      expect(r.status).toBe(200);
      expectCookie(r.headers);
    });

    it('JsessionidCookie.test_htmlfile: sets the cookie on htmlfile', async () => {
      const r = await server.stream('GET', sessionUrl('/cookie_needed_echo') + '/htmlfile?c=%63allback');
      expect(r.status).toBe(200);
      expectCookie(r.headers);
    });

    it('JsessionidCookie.test_jsonp: sets the cookie on jsonp and on jsonp_send', async () => {
      const url = sessionUrl('/cookie_needed_echo');
      let r = await server.get(url + '/jsonp?c=%63allback');
      expect(r.status).toBe(200);
      expectCookie(r.headers);
      expect(r.body).toBe('/**/callback("o");\r\n');

      r = await server.post(url + '/jsonp_send', 'd=%5B%22x%22%5D', { 'Content-Type': 'application/x-www-form-urlencoded' });
      expect(r.body).toBe('ok');
      expect(r.status).toBe(200);
      expectCookie(r.headers);
    });

    it('JsessionidCookie: sets the cookie on xhr_send too, and never on the greeting or the iframe page', async () => {
      const url = sessionUrl('/cookie_needed_echo');
      expect((await server.post(url + '/xhr')).body).toBe('o\n');
      const send = await server.post(url + '/xhr_send', '["x"]');
      expect(send.status).toBe(204);
      expectCookie(send.headers);
      expect((await server.get('/cookie_needed_echo')).headers['set-cookie']).toBeUndefined();
      expect((await server.get('/cookie_needed_echo/iframe.html')).headers['set-cookie']).toBeUndefined();
    });

    it('JsessionidCookie: sets no cookie on a service without the option', async () => {
      const url = sessionUrl('/echo');
      expect((await server.post(url + '/xhr')).headers['set-cookie']).toBeUndefined();
      expect((await server.post(url + '/xhr_send', '["x"]')).headers['set-cookie']).toBeUndefined();
      expect((await server.get(url + '/jsonp?c=x')).headers['set-cookie']).toBeUndefined();
    });

    it('JsessionidCookie, as the reference: sets the cookie on the preflights of the session URLs', async () => {
      for (const suffix of ['/xhr', '/xhr_send', '/xhr_streaming']) {
        const r = await server.options(sessionUrl('/cookie_needed_echo') + suffix, { Origin: 'test', 'Access-Control-Request-Method': 'POST' });
        expect([200, 204]).toContain(r.status);
        expectCookie(r.headers);
      }
    });

    it('JsessionidCookie, as the reference: sets no cookie on a websocket handshake', async () => {
      const r = await server.stream('GET', sessionUrl('/cookie_needed_echo') + '/websocket', {
        headers: { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==' },
      });
      expect(r.status).toBe(101);
      expect(r.headers['set-cookie']).toBeUndefined();
    });
  });
});
