/**
 * Conformance: `jsonp` polling and `jsonp_send` (PROTOCOL.md sections 5.6 and 5.7) — the official
 * suite's JsonPolling, against the standard test server built with each API.
 */
import { APIS, Conformance, contentType, expectNotCached, sessionUrl } from './support';

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  /** A new session on `prefix`, opened with its first jsonp poll with the callback `x`. */
  async function openSession(prefix = '/echo'): Promise<string> {
    const url = sessionUrl(prefix);
    expect((await server.get(url + '/jsonp?c=x')).body).toBe('/**/x("o");\r\n');
    return url;
  }

  describe('JsonPolling', () => {
    it('JsonPolling.test_transport: polls with /**/callback("o");, sends with ok (200, text/plain, no-cache) and echoes', async () => {
      const url = sessionUrl('/echo');
      let r = await server.get(url + '/jsonp?c=%63allback');
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('application/javascript;charset=UTF-8');
      expectNotCached(r.headers);
      expect(r.body).toBe('/**/callback("o");\r\n');

      r = await server.post(url + '/jsonp_send', 'd=%5B%22x%22%5D', FORM);
      expect(r.body).toBe('ok');
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('text/plain;charset=UTF-8');
      expectNotCached(r.headers);

      r = await server.get(url + '/jsonp?c=%63allback');
      expect(r.status).toBe(200);
      expect(r.body).toBe('/**/callback("a[\\"x\\"]");\r\n');
    });

    it('JsonPolling.test_no_callback: answers 500 "callback" parameter required without c', async () => {
      const r = await server.get('/echo/a/a/jsonp');
      expect(r.status).toBe(500);
      expect(r.body).toContain('"callback" parameter required');
    });

    it('JsonPolling.test_invalid_callback: answers 500 invalid "callback" parameter to callbacks with other characters', async () => {
      for (const callback of ['%20', '*', 'abc(', 'abc%28']) {
        const r = await server.get('/echo/a/a/jsonp?c=' + callback);
        expect({ callback, status: r.status }).toEqual({ callback, status: 500 });
        expect(r.body).toContain('invalid "callback" parameter');
      }
    });

    it('JsonPolling.test_invalid_json: answers broken JSON and three empty payloads with 500 and their texts, and the session goes on', async () => {
      const url = await openSession();
      let r = await server.post(url + '/jsonp_send', 'd=%5B%22x', FORM);
      expect(r.status).toBe(500);
      expect(r.body).toContain('Broken JSON encoding.');

      for (const data of ['', 'd=', 'p=p']) {
        r = await server.post(url + '/jsonp_send', data, FORM);
        expect({ data, status: r.status }).toEqual({ data, status: 500 });
        expect(r.body).toContain('Payload expected.');
      }

      r = await server.post(url + '/jsonp_send', 'd=%5B%22b%22%5D', FORM);
      expect(r.body).toBe('ok');

      r = await server.get(url + '/jsonp?c=x');
      expect(r.status).toBe(200);
      expect(r.body).toBe('/**/x("a[\\"b\\"]");\r\n');
    });

    it('JsonPolling.test_content_types: reads form-encoded d= and a raw text/plain body, the latter without URL-decoding', async () => {
      const url = await openSession();
      let r = await server.post(url + '/jsonp_send', 'd=%5B%22abc%22%5D', FORM);
      expect(r.body).toBe('ok');
      r = await server.post(url + '/jsonp_send', '["%61bc"]', { 'Content-Type': 'text/plain' });
      expect(r.body).toBe('ok');

      r = await server.get(url + '/jsonp?c=x');
      expect(r.status).toBe(200);
      expect(r.body).toBe('/**/x("a[\\"abc\\",\\"%61bc\\"]");\r\n');
    });

    it('JsonPolling.test_close: on /close answers o, then the close frame to every later poll', async () => {
      const url = await openSession('/close');
      let r = await server.get(url + '/jsonp?c=x');
      expect(r.body).toBe('/**/x("c[3000,\\"Go away!\\"]");\r\n');
      r = await server.get(url + '/jsonp?c=x');
      expect(r.body).toBe('/**/x("c[3000,\\"Go away!\\"]");\r\n');
    });

    it('JsonPolling.test_sending_empty_frame: accepts d=[] with ok and still delivers later messages', async () => {
      const url = await openSession();
      let r = await server.post(url + '/jsonp_send', 'd=%5B%5D', FORM);
      expect(r.body).toBe('ok');
      r = await server.post(url + '/jsonp_send', 'd=%5B%22x%22%5D', FORM);
      expect(r.body).toBe('ok');
      r = await server.get(url + '/jsonp?c=x');
      expect(r.status).toBe(200);
      expect(r.body).toBe('/**/x("a[\\"x\\"]");\r\n');
    });

    it('JsonPolling, as the reference: answers with X-Content-Type-Options: nosniff and no CORS headers', async () => {
      const url = sessionUrl('/echo');
      const r = await server.get(url + '/jsonp?c=x', { Origin: 'test' });
      expect(r.status).toBe(200);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('JsonPolling, as the reference: takes the callback from "callback" too, and refuses names longer than 32 characters', async () => {
      let r = await server.get(sessionUrl('/echo') + '/jsonp?callback=cb');
      expect(r.status).toBe(200);
      expect(r.body).toBe('/**/cb("o");\r\n');
      r = await server.get(sessionUrl('/echo') + '/jsonp?c=' + 'x'.repeat(32));
      expect(r.status).toBe(200);
      r = await server.get(sessionUrl('/echo') + '/jsonp?c=' + 'x'.repeat(33));
      expect(r.status).toBe(500);
      expect(r.body).toContain('invalid "callback" parameter');
    });

    it('JsonPolling, as the reference: answers ok with Content-Length 2, reads a body without Content-Type raw, and answers 404 for an unknown session', async () => {
      const url = await openSession();
      let r = await server.post(url + '/jsonp_send', '["raw"]');
      expect(r.status).toBe(200);
      expect(r.body).toBe('ok');
      expect(r.headers['content-length']).toBe('2');
      expect((await server.get(url + '/jsonp?c=x')).body).toBe('/**/x("a[\\"raw\\"]");\r\n');

      r = await server.post(sessionUrl('/echo') + '/jsonp_send', 'd=%5B%22x%22%5D', FORM);
      expect(r.status).toBe(404);
    });
  });
});
