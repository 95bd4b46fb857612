import { htmlfile, htmlfileFrame, htmlfilePrelude } from '../../lib/transports/htmlfile';
import { isFramer } from '../../lib/transports/transport';

/** The head PROTOCOL.md 5.5 requires, after trimming, with CALLBACK substituted. */
const expectedHead = (callback: string) =>
  [
    '<!doctype html>',
    '<html><head>',
    '  <meta http-equiv="X-UA-Compatible" content="IE=edge" />',
    '  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
    `</head><body><h2>Don't panic!</h2>`,
    '  <script>',
    '    document.domain = document.domain;',
    `    var c = parent.${callback};`,
    '    c.start();',
    '    function p(d) {c.message(d);};',
    '    window.onload = function() {c.stop();};',
    '  </script>',
  ].join('\n');

describe('htmlfile', () => {
  it.each(['callback', 'x', '_jp.a1b2c3', 'a'.repeat(100)])('writes the exact head for the callback %j', (callback) => {
    const prelude = htmlfilePrelude(callback);
    expect(prelude.trim()).toBe(expectedHead(callback));
    expect(prelude.startsWith(expectedHead(callback))).toBe(true);
  });

  it.each(['callback', 'x', 'a'.repeat(100)])('pads the head for %j with spaces to 1023 + the callback length, then a blank line', (callback) => {
    const prelude = htmlfilePrelude(callback);
    expect(prelude.length).toBe(1023 + callback.length + 4);
    expect(Buffer.byteLength(prelude)).toBeGreaterThan(1024);
    expect(prelude.endsWith('\r\n\r\n')).toBe(true);
    expect(prelude.slice(expectedHead(callback).length, -4)).toMatch(/^ +$/);
  });

  it.each([
    ['o', '<script>\np("o");\n</script>\r\n'],
    ['h', '<script>\np("h");\n</script>\r\n'],
    ['a["x"]', '<script>\np("a[\\"x\\"]");\n</script>\r\n'],
    ['c[3000,"Go away!"]', '<script>\np("c[3000,\\"Go away!\\"]");\n</script>\r\n'],
    ['a["</script>"]', '<script>\np("a[\\"\\u003c/script>\\"]");\n</script>\r\n'],
    ['a["<!--"]', '<script>\np("a[\\"\\u003c!--\\"]");\n</script>\r\n'],
    ['\u2028\u2029', '<script>\np("\\u2028\\u2029");\n</script>\r\n'],
  ])('wraps the frame %j as %j', (frame, wire) => {
    expect(htmlfileFrame(frame)).toBe(wire);
  });

  it('keeps </script> and <!-- in a message from ending or altering the script element', () => {
    const frame = 'a["</script><script>alert(1)</script><!--"]';
    const wire = htmlfileFrame(frame);
    expect(wire.match(/<\/script/gi)).toEqual(['</script']);
    expect(wire).not.toContain('<!--');
    const call = /^<script>\np\((.*)\);\n<\/script>\r\n$/s.exec(wire);
    expect(call).not.toBeNull();
    expect(JSON.parse(call![1]!)).toBe(frame);
  });

  it('is a GET stream of text/html in UTF-8 without CORS', () => {
    expect(htmlfile).toMatchObject({
      path: 'htmlfile', method: 'GET',
      protocol: 'htmlfile',
      contentType: 'text/html; charset=UTF-8',
      cors: 'none',
      streaming: true,
    });
  });

  it('builds its framer from the callback in c', () => {
    const framer = htmlfile.framer('c=%63allback');
    expect(isFramer(framer)).toBe(true);
    if (isFramer(framer)) {
      expect(framer.prelude).toBe(htmlfilePrelude('callback'));
      expect(framer.wrap('o')).toBe('<script>\np("o");\n</script>\r\n');
    }
  });

  it.each([
    ['', '"callback" parameter required'],
    ['c=%20', 'invalid "callback" parameter'],
    ['c=*', 'invalid "callback" parameter'],
    ['c=abc(', 'invalid "callback" parameter'],
    ['c=abc%28', 'invalid "callback" parameter'],
  ])('answers the query %j with 500 and %j', (query, text) => {
    expect(htmlfile.framer(query)).toEqual({ status: 500, headers: {}, body: text });
  });

  it('sets no length limit on the callback', () => {
    expect(isFramer(htmlfile.framer('c=' + 'a'.repeat(33)))).toBe(true);
  });
});
