/**
 * Conformance: the `eventsource` and `htmlfile` streams (PROTOCOL.md sections 5.4, 5.5 and 7) —
 * the official suite's EventSource and HtmlFile, against the standard test server built with
 * each API. Streams are read one HTTP chunk at a time.
 */
import { APIS, Conformance, contentType, expectCors, expectNotCached, sessionUrl, SUITE_WAIT_MS } from './support';

/** The htmlfile head after trimming, for a callback name. */
const htmlfileHead = (callback: string) =>
  [
    '<!doctype html>',
    '<html><head>',
    '  <meta http-equiv="X-UA-Compatible" content="IE=edge" />',
    '  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
    "</head><body><h2>Don't panic!</h2>",
    '  <script>',
    '    document.domain = document.domain;',
    `    var c = parent.${callback};`,
    '    c.start();',
    '    function p(d) {c.message(d);};',
    '    window.onload = function() {c.stop();};',
    '  </script>',
  ].join('\n');

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  describe('EventSource', () => {
    it('EventSource.test_transport: streams a CRLF prelude, then data: frames, with control characters escaped by JSON', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('GET', url + '/eventsource');
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('text/event-stream');
      expectNotCached(r.headers);

      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('\r\n');
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('data: o\r\n\r\n');

      let send = await server.post(url + '/xhr_send', '["x"]');
      expect(send.body).toBe('');
      expect(send.status).toBe(204);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('data: a["x"]\r\n\r\n');

      // Two spaces, NUL, LF, CR and a space, sent as JSON escapes.
      send = await server.post(url + '/xhr_send', String.raw`["  \u0000\n\r "]`);
      expect(send.body).toBe('');
      expect(send.status).toBe(204);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe(String.raw`data: a["  \u0000\n\r "]` + '\r\n\r\n');
    });

    it('EventSource.test_response_limit: ends the stream right after one 4096-character message', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('GET', url + '/eventsource');
      expect(r.status).toBe(200);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeTruthy();
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('data: o\r\n\r\n');

      const message = '"' + 'x'.repeat(4096) + '"';
      expect((await server.post(url + '/xhr_send', '[' + message + ']')).status).toBe(204);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('data: a[' + message + ']\r\n\r\n');
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeNull();
    });

    it('EventSource, as the reference: writes % as %25 in the event data, since sockjs-client runs decodeURI on it', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('GET', url + '/eventsource');
      await r.nextChunk(SUITE_WAIT_MS);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('data: o\r\n\r\n');
      expect((await server.post(url + '/xhr_send', '["100% %41 %zz"]')).status).toBe(204);
      const chunk = await r.nextChunk(SUITE_WAIT_MS);
      expect(chunk).toBe('data: a["100%25 %2541 %25zz"]\r\n\r\n');
      expect(decodeURI(chunk?.slice('data: '.length, -4) ?? '')).toBe('a["100% %41 %zz"]');
    });

    it('EventSource, as the reference: echoes a named Origin with credentials, and answers "*" to a null or absent one', async () => {
      const named = await server.stream('GET', sessionUrl('/echo') + '/eventsource', { headers: { Origin: 'test' } });
      expectCors(named.headers, 'test');
      const nullOrigin = await server.stream('GET', sessionUrl('/echo') + '/eventsource', { headers: { Origin: 'null' } });
      expectCors(nullOrigin.headers);
      const none = await server.stream('GET', sessionUrl('/echo') + '/eventsource');
      expectCors(none.headers);
    });
  });

  describe('HtmlFile', () => {
    it('HtmlFile.test_transport: streams the exact head padded past 1024 bytes, then each frame as a <script> chunk', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('GET', url + '/htmlfile?c=%63allback');
      expect(r.status).toBe(200);
      expect(contentType(r.headers)).toBe('text/html;charset=UTF-8');
      expectNotCached(r.headers);

      const head = (await r.nextChunk(SUITE_WAIT_MS)) ?? '';
      expect(head.trim()).toBe(htmlfileHead('callback'));
      expect(head.length).toBeGreaterThan(1024);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('<script>\np("o");\n</script>\r\n');

      const send = await server.post(url + '/xhr_send', '["x"]');
      expect(send.body).toBe('');
      expect(send.status).toBe(204);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('<script>\np("a[\\"x\\"]");\n</script>\r\n');
    });

    it('HtmlFile.test_no_callback: answers 500 "callback" parameter required without c', async () => {
      const r = await server.get('/echo/a/a/htmlfile');
      expect(r.status).toBe(500);
      expect(r.body).toContain('"callback" parameter required');
    });

    it('HtmlFile.test_invalid_callback: answers 500 invalid "callback" parameter to callbacks with other characters', async () => {
      for (const callback of ['%20', '*', 'abc(', 'abc%28']) {
        const r = await server.get('/echo/a/a/htmlfile?c=' + callback);
        expect({ callback, status: r.status }).toEqual({ callback, status: 500 });
        expect(r.body).toContain('invalid "callback" parameter');
      }
    });

    it('HtmlFile.test_response_limit: ends the stream right after one 4096-character message', async () => {
      const url = sessionUrl('/echo');
      const r = await server.stream('GET', url + '/htmlfile?c=callback');
      expect(r.status).toBe(200);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeTruthy();
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('<script>\np("o");\n</script>\r\n');

      const message = 'x'.repeat(4096);
      expect((await server.post(url + '/xhr_send', '["' + message + '"]')).status).toBe(204);
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBe('<script>\np("a[\\"' + message + '\\"]");\n</script>\r\n');
      expect(await r.nextChunk(SUITE_WAIT_MS)).toBeNull();
    });

    it('HtmlFile, as the reference: carries no CORS headers', async () => {
      const r = await server.stream('GET', sessionUrl('/echo') + '/htmlfile?c=callback', { headers: { Origin: 'test' } });
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
    });
  });
});
