import { jsonpFrame, jsonpPolling, jsonpSend, jsonpSendPayload } from '../../lib/transports/jsonp';
import { isFramer } from '../../lib/transports/transport';

describe('jsonp', () => {
  it.each([
    ['callback', 'o', '/**/callback("o");\r\n'],
    ['x', 'a["b"]', '/**/x("a[\\"b\\"]");\r\n'],
    ['x', 'c[3000,"Go away!"]', '/**/x("c[3000,\\"Go away!\\"]");\r\n'],
    ['x', 'a["</script>"]', '/**/x("a[\\"\\u003c/script>\\"]");\r\n'],
    ['x', '\u2028\u2029', '/**/x("\\u2028\\u2029");\r\n'],
  ])('wraps for the callback %j the frame %j as %j', (callback, frame, wire) => {
    expect(jsonpFrame(callback, frame)).toBe(wire);
  });

  it('is a GET poll of UTF-8 JavaScript, never sniffed, without CORS', () => {
    expect(jsonpPolling).toMatchObject({
      path: 'jsonp', method: 'GET',
      protocol: 'jsonp-polling',
      contentType: 'application/javascript; charset=UTF-8',
      headers: { 'X-Content-Type-Options': 'nosniff' },
      cors: 'none',
      streaming: false,
    });
  });

  it.each([
    ['c=callback', '/**/callback("o");\r\n'],
    ['c=%63allback', '/**/callback("o");\r\n'],
    ['callback=cb', '/**/cb("o");\r\n'],
    ['c=' + 'a'.repeat(32), '/**/' + 'a'.repeat(32) + '("o");\r\n'],
  ])('builds for the query %j a framer with no prelude that wraps o as %j', (query, wire) => {
    const framer = jsonpPolling.framer(query);
    expect(isFramer(framer)).toBe(true);
    if (isFramer(framer)) {
      expect(framer.prelude).toBe('');
      expect(framer.wrap('o')).toBe(wire);
    }
  });

  it.each([
    ['', '"callback" parameter required'],
    ['t=1', '"callback" parameter required'],
    ['c=%20', 'invalid "callback" parameter'],
    ['c=*', 'invalid "callback" parameter'],
    ['c=abc(', 'invalid "callback" parameter'],
    ['c=abc%28', 'invalid "callback" parameter'],
    ['c=' + 'a'.repeat(33), 'invalid "callback" parameter'],
  ])('answers the query %j with 500 and %j', (query, text) => {
    expect(jsonpPolling.framer(query)).toEqual({ status: 500, headers: {}, body: text });
  });
});

describe('jsonp_send', () => {
  it.each<[string, string, string | undefined]>([
    ['application/x-www-form-urlencoded', 'd=%5B%22x%22%5D', '["x"]'],
    ['application/x-www-form-urlencoded', 'd=%5B%22x%22%2C%22y%22%5D', '["x","y"]'],
    ['application/x-www-form-urlencoded', 'd=%5B%22a+b%22%5D', '["a b"]'],
    ['application/x-www-form-urlencoded', 'd=%5B%22%C3%A9%22%5D', '["é"]'],
    ['application/x-www-form-urlencoded', 'p=p&d=%5B%5D', '[]'],
    ['application/x-www-form-urlencoded', 'd=%5B%22x', '["x'],
    ['application/x-www-form-urlencoded', 'd=', ''],
    ['application/x-www-form-urlencoded', 'p=p', undefined],
    ['application/x-www-form-urlencoded', '', undefined],
    ['text/plain', '["%61bc"]', '["%61bc"]'],
    ['text/plain', 'd=%5B%5D', 'd=%5B%5D'],
    ['', '["x"]', '["x"]'],
    ['', '', ''],
    ['application/json', '["x"]', undefined],
    ['text/xml', '["x"]', undefined],
  ])('reads a %j body %j as the JSON text %j', (contentType, body, json) => {
    expect(jsonpSendPayload(contentType, body)).toBe(json);
  });

  it('answers a taken payload with 200 ok in plain UTF-8 text, without CORS', () => {
    expect(jsonpSend).toMatchObject({ path: 'jsonp_send', method: 'POST', role: 'send' });
    expect(jsonpSend.cors).toBe('none');
    expect(jsonpSend.accepted).toEqual({ status: 200, headers: { 'Content-Type': 'text/plain; charset=UTF-8' }, body: 'ok' });
  });
});
