import { HTTP_ERRORS } from '../../lib/errors';
import { parseCallback, scriptString } from '../../lib/transports/callback';

describe('parseCallback', () => {
  it.each([
    ['c=callback', 'callback'],
    ['c=%63allback', 'callback'],
    ['c=_jp.a1b2c3-d', '_jp.a1b2c3-d'],
    ['callback=cb', 'cb'],
    ['c=first&callback=second', 'first'],
    ['t=1&c=x', 'x'],
  ])('reads %j as the callback %j', (query, name) => {
    expect(parseCallback(new URLSearchParams(query))).toBe(name);
  });

  it.each(['', 't=1', 'c=', 'callback='])('answers %j with 500 "callback" parameter required', (query) => {
    expect(parseCallback(new URLSearchParams(query))).toEqual({ status: 500, headers: {}, body: '"callback" parameter required' });
  });

  it.each(['c=%20', 'c=*', 'c=abc(', 'c=abc%28', 'c=a+b', 'c=a%3Bb', 'c=a/b', 'c=%3C/script%3E', 'c=caf%C3%A9', 'c=a%0A'])(
    'answers %j with 500 invalid "callback" parameter',
    (query) => {
      expect(parseCallback(new URLSearchParams(query))).toEqual({ status: 500, headers: {}, body: 'invalid "callback" parameter' });
    },
  );

  it('refuses names longer than the given maximum and accepts names of that length', () => {
    expect(parseCallback(new URLSearchParams('c=' + 'a'.repeat(32)), 32)).toBe('a'.repeat(32));
    expect(parseCallback(new URLSearchParams('c=' + 'a'.repeat(33)), 32)).toBe(HTTP_ERRORS.CALLBACK_INVALID);
    expect(parseCallback(new URLSearchParams('c=' + 'a'.repeat(500)))).toBe('a'.repeat(500));
    expect(parseCallback(new URLSearchParams(''), 32)).toBe(HTTP_ERRORS.CALLBACK_REQUIRED);
  });
});

describe('scriptString', () => {
  it.each([
    ['o', '"o"'],
    ['a["x"]', '"a[\\"x\\"]"'],
    ['c[3000,"Go away!"]', '"c[3000,\\"Go away!\\"]"'],
    ['a["</script>"]', '"a[\\"\\u003c/script>\\"]"'],
    ['a["<!--<script>"]', '"a[\\"\\u003c!--\\u003cscript>\\"]"'],
    ['\u2028\u2029', '"\\u2028\\u2029"'],
    ['a["\\u2028"]', '"a[\\"\\\\u2028\\"]"'],
    ['é€😀', '"é€😀"'],
  ])('writes the frame %j as the literal %j', (frame, literal) => {
    expect(scriptString(frame)).toBe(literal);
  });

  it.each(['a["</script><script>alert(1)</script>"]', '<!-- x -->', 'a\u2028b\u2029c', '</SCRIPT >', 'plain', '\\"<'])(
    'keeps the value of %j and leaves no <, U+2028 or U+2029 in the literal',
    (frame) => {
      const literal = scriptString(frame);
      expect(literal).not.toMatch(/[<\u2028\u2029]/);
      expect(JSON.parse(literal)).toBe(frame);
      expect(new Function('return ' + literal)()).toBe(frame);
    },
  );
});
