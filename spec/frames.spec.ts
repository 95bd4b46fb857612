import fc from 'fast-check';
import { closeFrame, heartbeatFrame, messageFrame, openFrame, quote } from '../lib/frames';

/** The characters from `first` to `last`, both included. */
function range(first: number, last: number): string {
  let text = '';
  for (let code = first; code <= last; code++) text += String.fromCharCode(code);
  return text;
}

describe('quote', () => {
  it.each([
    ['the empty string', '', '""'],
    ['plain ASCII', 'hello', '"hello"'],
    ['a double quote with a backslash', 'a"b\\c', '"a\\"b\\\\c"'],
    ['a slash unescaped', 'a/b', '"a/b"'],
    ['two spaces, NUL, LF, CR and a space with JSON short forms', '  \u0000\n\r ', '"  \\u0000\\n\\r "'],
    ['backspace, tab and form feed with JSON short forms', '\b\t\f', '"\\b\\t\\f"'],
    ['U+0001 and U+001F with lower-case hex', '\u0001\u001f', '"\\u0001\\u001f"'],
    ['DEL raw', '\u007f', '"\u007f"'],
    ['C1 controls raw', '\u0080\u009f', '"\u0080\u009f"'],
    ['U+00AD raw', '\u00ad', '"\u00ad"'],
    ['U+00FF raw', '\u00ff', '"\u00ff"'],
  ])('writes %s', (_name, text, expected) => {
    expect(quote(text)).toBe(expected);
  });

  it.each([
    ['U+200B', '\u200b', '"\u200b"'],
    ['U+200C', '\u200c', '"\\u200c"'],
    ['U+200F', '\u200f', '"\\u200f"'],
    ['U+2010', '\u2010', '"\u2010"'],
    ['U+2027', '\u2027', '"\u2027"'],
    ['U+2028', '\u2028', '"\\u2028"'],
    ['U+2029', '\u2029', '"\\u2029"'],
    ['U+202F', '\u202f', '"\\u202f"'],
    ['U+2030', '\u2030', '"\u2030"'],
    ['U+205F', '\u205f', '"\u205f"'],
    ['U+2060', '\u2060', '"\\u2060"'],
    ['U+206F', '\u206f', '"\\u206f"'],
    ['U+2070', '\u2070', '"\u2070"'],
    ['U+FEFF', '\ufeff', '"\ufeff"'],
    ['U+FFEF', '\uffef', '"\uffef"'],
    ['U+FFF0', '\ufff0', '"\\ufff0"'],
    ['U+FFFE', '\ufffe', '"\\ufffe"'],
    ['U+FFFF', '\uffff', '"\\uffff"'],
  ])('writes %s at an escaped range boundary byte for byte', (_name, text, expected) => {
    expect(quote(text)).toBe(expected);
  });

  it('escapes every character of the protocol test string from U+00FF upward as a lower-case \\u escape', () => {
    const text = range(0x200c, 0x200f) + range(0x2028, 0x202f) + range(0x2060, 0x206f) + range(0xfff0, 0xffff);
    expect(quote(text)).toBe(
      '"' +
        '\\u200c\\u200d\\u200e\\u200f' +
        '\\u2028\\u2029\\u202a\\u202b\\u202c\\u202d\\u202e\\u202f' +
        '\\u2060\\u2061\\u2062\\u2063\\u2064\\u2065\\u2066\\u2067' +
        '\\u2068\\u2069\\u206a\\u206b\\u206c\\u206d\\u206e\\u206f' +
        '\\ufff0\\ufff1\\ufff2\\ufff3\\ufff4\\ufff5\\ufff6\\ufff7' +
        '\\ufff8\\ufff9\\ufffa\\ufffb\\ufffc\\ufffd\\ufffe\\uffff' +
        '"',
    );
  });

  it('leaves every other character from U+00FF to U+FFEF raw, surrogates aside', () => {
    const raw =
      range(0x00ff, 0x200b) + range(0x2010, 0x2027) + range(0x2030, 0x205f) + range(0x2070, 0xd7ff) + range(0xe000, 0xffef);
    expect(quote(raw)).toBe('"' + raw + '"');
  });

  it('leaves printable ASCII raw except the double quote and the backslash', () => {
    const printable = range(0x20, 0x7e);
    const expected = printable.replace('\\', '\\\\').replace('"', '\\"');
    expect(quote(printable)).toBe('"' + expected + '"');
  });

  it.each([
    ['a lone high surrogate', '\ud800', '"\\ud800"'],
    ['a lone low surrogate', '\udfff', '"\\udfff"'],
    ['both halves of a valid pair', '\ud83d\ude00', '"\\ud83d\\ude00"'],
  ])('escapes %s as the reference server does', (_name, text, expected) => {
    expect(quote(text)).toBe(expected);
  });

  it('gives the same answer when called again after a match', () => {
    expect(quote('\u2028')).toBe('"\\u2028"');
    expect(quote('\u2028')).toBe('"\\u2028"');
    expect(quote('x\u2029')).toBe('"x\\u2029"');
  });
});

describe('frames', () => {
  it('writes the open frame as o', () => {
    expect(openFrame()).toBe('o');
  });

  it('writes the heartbeat frame as h', () => {
    expect(heartbeatFrame()).toBe('h');
  });

  it.each([
    ['no message', [], 'a[]'],
    ['one message', ['x'], 'a["x"]'],
    ['many messages in order', ['x', 'y', 'z'], 'a["x","y","z"]'],
    ['the empty message', [''], 'a[""]'],
    ['messages needing escapes', ['a"b', '\u2028', '\n'], 'a["a\\"b","\\u2028","\\n"]'],
  ])('writes a message frame with %s', (_name, messages, expected) => {
    expect(messageFrame(messages)).toBe(expected);
  });

  it.each([
    [3000, 'Go away!', 'c[3000,"Go away!"]'],
    [2010, 'Another connection still open', 'c[2010,"Another connection still open"]'],
    [1002, 'Connection interrupted', 'c[1002,"Connection interrupted"]'],
    [1000, 'Normal closure', 'c[1000,"Normal closure"]'],
    [3000, 'say "\u2028"', 'c[3000,"say \\"\\u2028\\""]'],
  ])('writes the close frame for %d %j with no space after the comma', (code, reason, expected) => {
    expect(closeFrame(code, reason)).toBe(expected);
  });
});

describe('frames, for any text', () => {
  // Every UTF-16 string, lone surrogates included, as an application may send.
  const anyText = fc.string({ unit: 'binary' });

  it('quote gives a JSON string that decodes to the same text', () => {
    fc.assert(fc.property(anyText, (text) => expect(JSON.parse(quote(text))).toBe(text)));
  });

  it('quote leaves none of the escaped code points raw', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        expect(quote(text)).not.toMatch(/[\u0000-\u001f\ud800-\udfff\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/);
      }),
    );
  });

  it('quote writes every UTF-16 code unit as JSON.stringify does, then escapes the protocol\'s extras', () => {
    // The definition, spelled out the slow way: a fast path that lets a character through raw
    // must agree with it on every one of the 65,536 code units, alone and inside plain text.
    const reference = (text: string) =>
      JSON.stringify(text).replace(
        /[\u0000-\u001f\ud800-\udfff\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/g,
        (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
      );
    const wrong: string[] = [];
    for (let code = 0; code <= 0xffff; code++) {
      const text = 'ab' + String.fromCharCode(code) + 'cd';
      if (quote(text) !== reference(text) || quote(text.slice(2, 3)) !== reference(text.slice(2, 3))) wrong.push(code.toString(16));
    }
    expect(wrong).toEqual([]);
  });

  it('messageFrame carries the messages unchanged and in order', () => {
    fc.assert(
      fc.property(fc.array(anyText, { maxLength: 20 }), (messages) => {
        const frame = messageFrame(messages);
        expect(frame.startsWith('a[')).toBe(true);
        expect(JSON.parse(frame.slice(1))).toEqual(messages);
      }),
    );
  });

  it('messageFrame frames a message written to many sessions once, and every sequence right', () => {
    // The frame of the last lone message is kept: runs of one message and of others, with
    // equal texts in separate strings, must each get their own message back.
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', 'a'.repeat(2), 'é"\u2028', 'x'.repeat(20_000)), { maxLength: 30 }), (sequence) => {
        for (const message of sequence) {
          const copy = message.split('').join('');
          expect(JSON.parse(messageFrame([copy]).slice(1))).toEqual([message]);
        }
      }),
    );
    const shared = 'hello'.repeat(3);
    expect(messageFrame([shared])).toBe(messageFrame([shared]));
  });

  it('closeFrame carries the code and reason unchanged', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4999 }), anyText, (code, reason) => {
        expect(JSON.parse(closeFrame(code, reason).slice(1))).toEqual([code, reason]);
      }),
    );
  });
});
