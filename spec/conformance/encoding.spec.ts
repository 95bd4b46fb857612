/**
 * Conformance: the JSON encoding of messages in both directions (PROTOCOL.md section 3) — the
 * official suite's JSONEncoding, with the same escaped-character strings it builds, against the
 * standard test server built with each API.
 */
import { APIS, Conformance, sessionUrl } from './support';

/**
 * What sockjs-client escapes before sending, because browsers mangle it on the way out: `"`, `\`,
 * the C0 and C1 controls, U+00AD, and code points that XHR or Unicode normalisation change. The
 * same character class as the suite's `escapable_by_client`.
 */
const ESCAPABLE_BY_CLIENT =
  /[\\"\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0604\u070f\u17b4\u17b5\u2000-\u20ff\ufeff\ufff0-\uffff\x00-\x1f\ufffe\uffff\u0300-\u0333\u033d-\u0346\u034a-\u034c\u0350-\u0352\u0357-\u0358\u035c-\u0362\u0374\u037e\u0387\u0591-\u05af\u05c4\u0610-\u0617\u0653-\u0654\u0657-\u065b\u065d-\u065e\u06df-\u06e2\u06eb-\u06ec\u0730\u0732-\u0733\u0735-\u0736\u073a\u073d\u073f-\u0741\u0743\u0745\u0747\u07eb-\u07f1\u0951\u0958-\u095f\u09dc-\u09dd\u09df\u0a33\u0a36\u0a59-\u0a5b\u0a5e\u0b5c-\u0b5d\u0e38-\u0e39\u0f43\u0f4d\u0f52\u0f57\u0f5c\u0f69\u0f72-\u0f76\u0f78\u0f80-\u0f83\u0f93\u0f9d\u0fa2\u0fa7\u0fac\u0fb9\u1939-\u193a\u1a17\u1b6b\u1cda-\u1cdb\u1dc0-\u1dcf\u1dfc\u1dfe\u1f71\u1f73\u1f75\u1f77\u1f79\u1f7b\u1f7d\u1fbb\u1fbe\u1fc9\u1fcb\u1fd3\u1fdb\u1fe3\u1feb\u1fee-\u1fef\u1ff9\u1ffb\u1ffd\u2000-\u2001\u20d0-\u20d1\u20d4-\u20d7\u20e7-\u20e9\u2126\u212a-\u212b\u2329-\u232a\u2adc\u302b-\u302c\uaab2-\uaab3\uf900-\ufa0d\ufa10\ufa12\ufa15-\ufa1e\ufa20\ufa22\ufa25-\ufa26\ufa2a-\ufa2d\ufa30-\ufa6d\ufa70-\ufad9\ufb1d\ufb1f\ufb2a-\ufb36\ufb38-\ufb3c\ufb3e\ufb40-\ufb41\ufb43-\ufb44\ufb46-\ufb4e]/;

/** What the server must escape: the suite's `escapable_by_server`. */
const ESCAPABLE_BY_SERVER = /[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/;

/** `"\uXXXX..."`: a JSON string of the code points in [from, 65536) that `pattern` matches, each as a lower-case escape. */
function escapedString(pattern: RegExp, from: number): string {
  let escapes = '';
  for (let code = from; code < 0x10000; code++) {
    if (pattern.test(String.fromCharCode(code))) escapes += '\\u' + code.toString(16).padStart(4, '0');
  }
  return '"' + escapes + '"';
}

/** The suite's `client_killer_string_esc`. */
const CLIENT_KILLER_STRING_ESC = escapedString(ESCAPABLE_BY_CLIENT, 0);
/** The suite's `server_killer_string_esc`: from U+00FF upward. */
const SERVER_KILLER_STRING_ESC = escapedString(ESCAPABLE_BY_SERVER, 0xff);

/** The text of the JSON string in a one-message `a` frame of an xhr poll: `a[` and `]\n` cut off. */
function onlyMessage(body: string): string {
  expect(body.startsWith('a[')).toBe(true);
  expect(body.endsWith(']\n')).toBe(true);
  return body.slice(2, -2);
}

describe('the strings the JSON encoding tests send', () => {
  it('escape the 266 code points of the server ranges from U+00FF upward', () => {
    // U+200C–U+200F, U+2028–U+202F, U+2060–U+206F and U+FFF0–U+FFFF: 4 + 8 + 16 + 16 escapes of 6 characters.
    expect(SERVER_KILLER_STRING_ESC.length).toBe(2 + 44 * 6);
    expect(SERVER_KILLER_STRING_ESC.startsWith('"\\u200c\\u200d\\u200e\\u200f\\u2028')).toBe(true);
    expect(SERVER_KILLER_STRING_ESC.endsWith('\\ufffe\\uffff"')).toBe(true);
  });

  it('escape the quote, the backslash, the controls and the code points browsers mangle', () => {
    expect(CLIENT_KILLER_STRING_ESC.length).toBe(6566);
    expect(CLIENT_KILLER_STRING_ESC).toContain('\\u0000\\u0001');
    expect(CLIENT_KILLER_STRING_ESC).toContain('\\u0022');
    expect(CLIENT_KILLER_STRING_ESC).toContain('\\u005c');
    expect(CLIENT_KILLER_STRING_ESC).toContain('\\u00ad');
    expect(CLIENT_KILLER_STRING_ESC).not.toContain('\\u0041');
  });
});

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  /** A new session on /echo, opened with its first poll. */
  async function openSession(): Promise<string> {
    const url = sessionUrl('/echo');
    const r = await server.post(url + '/xhr');
    expect(r.body).toBe('o\n');
    expect(r.status).toBe(200);
    return url;
  }

  describe('JSONEncoding', () => {
    it('JSONEncoding.test_xhr_server_encodes: writes every code point of the mandatory ranges as a lower-case \\uXXXX escape', async () => {
      const url = await openSession();
      // The characters themselves go out, as UTF-8; they must come back escaped.
      const payload = '["' + (JSON.parse(SERVER_KILLER_STRING_ESC) as string) + '"]';
      expect((await server.post(url + '/xhr_send', payload)).status).toBe(204);
      const r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(onlyMessage(r.body)).toBe(SERVER_KILLER_STRING_ESC);
    });

    it('JSONEncoding.test_xhr_server_decodes: decodes the escapes a client sends and echoes the same string', async () => {
      const url = await openSession();
      expect((await server.post(url + '/xhr_send', '[' + CLIENT_KILLER_STRING_ESC + ']')).status).toBe(204);
      const r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(JSON.parse(onlyMessage(r.body))).toBe(JSON.parse(CLIENT_KILLER_STRING_ESC));
    });

    it('JSONEncoding: writes control characters with the short JSON escapes where they exist', async () => {
      const url = await openSession();
      expect((await server.post(url + '/xhr_send', String.raw`["  \u0000\n\r \t\b\f\u001f"]`)).status).toBe(204);
      expect(onlyMessage((await server.post(url + '/xhr')).body)).toBe(String.raw`"  \u0000\n\r \t\b\f\u001f"`);
    });

    it('JSONEncoding, as the reference: writes every surrogate, lone or paired, as a lower-case escape and other non-ASCII characters as UTF-8', async () => {
      const url = await openSession();
      expect((await server.post(url + '/xhr_send', String.raw`["\ud800 \udfff é 😀 \u00ff"]`)).status).toBe(204);
      expect(onlyMessage((await server.post(url + '/xhr')).body)).toBe('"\\ud800 \\udfff é \\ud83d\\ude00 \u00ff"');
    });
  });
});
