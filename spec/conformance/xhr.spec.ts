/**
 * Conformance: the XHR transports `xhr`, `xhr_send` and `xhr_streaming` (PROTOCOL.md sections 4,
 * 5.1 to 5.3 and 7) — the official suite's XhrPolling and XhrStreaming, against the standard test
 * server built with each API. Streams are read one HTTP chunk at a time.
 */
import { APIS, Conformance, contentType, expectCors, expectNotCached, expectPreflight, sessionUrl, SUITE_WAIT_MS } from './support';

const PRELUDE = 'h'.repeat(2048) + '\n';

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  /** A new session on /echo, opened with its first poll. */
  async function openSession(): Promise<string> {
    const url = sessionUrl('/echo');
    const r = await server.post(url + '/xhr');
    expect(r.status).toBe(200);
    expect(r.body).toBe('o\n');
    return url;
  }

  describe('XhrPolling', () => {
    it('XhrPolling.test_options: answers the preflights of xhr and xhr_send', async () => {
      for (const suffix of ['/xhr', '/xhr_send']) await expectPreflight(server, '/echo/abc/abc' + suffix, 'OPTIONS, POST');
    });

    it('XhrPolling.test_transport: polls and sends with the right statuses, types, CORS and no-cache headers, and echoes', async () => {
      const url = sessionUrl('/echo');
      let r = await server.post(url + '/xhr', '', { Origin: 'test' });
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');
      expect(contentType(r.headers)).toBe('application/javascript;charset=UTF-8');
      expectCors(r.headers, 'test');
      expectNotCached(r.headers);

      r = await server.post(url + '/xhr_send', '["x"]', { Origin: 'test' });
      expect(r.status).toBe(204);
      expect(r.body).toBe('');
      expect(contentType(r.headers)).toBe('text/plain;charset=UTF-8');
      expectCors(r.headers, 'test');
      expectNotCached(r.headers);

      r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe('a["x"]\n');
    });

    it('XhrPolling.test_invalid_session: answers xhr_send to a session that was never opened with 404', async () => {
      expect((await server.post(sessionUrl('/echo') + '/xhr_send', '["x"]')).status).toBe(404);
    });

    it('XhrPolling.test_invalid_json: answers broken JSON and an empty body with 500 and their texts, and the session goes on', async () => {
      const url = await openSession();
      let r = await server.post(url + '/xhr_send', '["x');
      expect(r.status).toBe(500);
      expect(r.body).toContain('Broken JSON encoding.');

      r = await server.post(url + '/xhr_send', '');
      expect(r.status).toBe(500);
      expect(r.body).toContain('Payload expected.');

      r = await server.post(url + '/xhr_send', '["a"]');
      expect(r.body).toBe('');
      expect(r.status).toBe(204);

      r = await server.post(url + '/xhr');
      expect(r.body).toBe('a["a"]\n');
      expect(r.status).toBe(200);
    });

    it('XhrPolling.test_content_types: reads the body as JSON whatever of eight Content-Types it has, and delivers all eight in one frame', async () => {
      const url = await openSession();
      const types = ['text/plain', 'T', 'application/json', 'application/xml', '', 'application/json; charset=utf-8', 'text/xml; charset=utf-8', 'text/xml'];
      for (const type of types) {
        const r = await server.post(url + '/xhr_send', '["a"]', { 'Content-Type': type });
        expect({ type, status: r.status, body: r.body }).toEqual({ type, status: 204, body: '' });
      }
      const r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe('a[' + types.map(() => '"a"').join(',') + ']\n');
    });

    it('XhrPolling.test_request_headers_cors: echoes Access-Control-Request-Headers, and sends none when it is empty or absent', async () => {
      let r = await server.options(sessionUrl('/echo') + '/xhr', {
        Origin: 'test',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'a, b, c',
      });
      expect([200, 204]).toContain(r.status);
      expectCors(r.headers, 'test');
      expect(r.headers['access-control-allow-headers']).toBe('a, b, c');

      r = await server.options(sessionUrl('/echo') + '/xhr', {
        Origin: 'test',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': '',
      });
      expect([200, 204]).toContain(r.status);
      expectCors(r.headers, 'test');
      expect(r.headers['access-control-allow-headers']).toBeUndefined();

      r = await server.options(sessionUrl('/echo') + '/xhr', { Origin: 'test', 'Access-Control-Request-Method': 'POST' });
      expect([200, 204]).toContain(r.status);
      expectCors(r.headers, 'test');
      expect(r.headers['access-control-allow-headers']).toBeUndefined();
    });

    it('XhrPolling.test_sending_empty_frame: accepts [] with 204 and still delivers later messages', async () => {
      const url = await openSession();
      let r = await server.post(url + '/xhr_send', '[]');
      expect(r.status).toBe(204);
      r = await server.post(url + '/xhr_send', '["a"]');
      expect(r.status).toBe(204);
      r = await server.post(url + '/xhr');
      expect(r.body).toBe('a["a"]\n');
      expect(r.status).toBe(200);
    });

    it('XhrPolling, without an Origin: answers the poll and the send with "*" and no credentials header', async () => {
      const url = sessionUrl('/echo');
      expectCors((await server.post(url + '/xhr')).headers);
      expectCors((await server.post(url + '/xhr_send', '["x"]')).headers);
    });

    it('XhrPolling, as the reference: answers with 500 "Payload expected." when the JSON is not an array, and the 500 texts come bare, without a Content-Type', async () => {
      const url = await openSession();
      for (const [body, text] of [
        ['"x"', 'Payload expected.'],
        ['{"a":1}', 'Payload expected.'],
        ['["x', 'Broken JSON encoding.'],
        ['', 'Payload expected.'],
      ]) {
        const r = await server.post(url + '/xhr_send', body);
        expect({ body, status: r.status, text: r.body, type: r.headers['content-type'] }).toEqual({ body, status: 500, text, type: undefined });
      }
    });
  });

  describe('XhrStreaming', () => {
    it('XhrStreaming.test_options: answers the preflight of xhr_streaming', async () => {
      await expectPreflight(server, '/echo/abc/abc/xhr_streaming', 'OPTIONS, POST');
    });

    it('XhrStreaming.test_transport: streams a 2048 h prelude, then o, then each frame as its own chunk, with CORS and no-cache headers', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('POST', url + '/xhr_streaming', { body: '', headers: { Origin: 'test' } });
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('application/javascript;charset=UTF-8');
      expectCors(r.headers, 'test');
      expectNotCached(r.headers);
      expect(r.headers['transfer-encoding']?.toLowerCase()).toBe('chunked');
      expect(r.headers['content-length']).toBeUndefined();

      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('o\n');

      const send = await server.post(url + '/xhr_send', '["x"]');
      expect(send.status).toBe(204);
      expect(send.body).toBe('');
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('a["x"]\n');
    });

    it('XhrStreaming.test_response_limit: keeps the stream open for 30 frames and ends it after the 31st', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(r.status).toBe(200);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeTruthy();
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('o\n');

      // Each frame `a["x…x"]` + LF is 134 bytes: 2 + 30 × 134 = 4022 < 4096 ≤ 4156 = 2 + 31 × 134.
      const message = '"' + 'x'.repeat(128) + '"';
      for (let i = 1; i <= 31; i++) {
        const send = await server.post(url + '/xhr_send', '[' + message + ']');
        expect(send.status).toBe(204);
        expect({ frame: i, chunk: await r.nextChunk(SUITE_WAIT_MS) }).toEqual({ frame: i, chunk: 'a[' + message + ']\n' });
      }
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeNull();
    });

    it('XhrStreaming, as the reference: the session outlives the response ended by the limit, and the next stream carries on', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      await r.nextChunk(SUITE_WAIT_MS);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('o\n');
      const message = '"' + 'x'.repeat(4096) + '"';
      expect((await server.post(url + '/xhr_send', '[' + message + ']')).status).toBe(204);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('a[' + message + ']\n');
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeNull();

      expect((await server.post(url + '/xhr_send', '["after"]')).status).toBe(204);
      const next = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await next.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await next.nextChunk(SUITE_WAIT_MS)).toBe('a["after"]\n');
    });
  });
});
