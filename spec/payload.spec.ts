import fc from 'fast-check';
import { elementTexts, parsePayload, parseWebsocketPayload, type Payload } from '../lib/payload';

// The characters the protocol suite's decoding test sends escaped (JSONEncoding.test_xhr_server_decodes):
// everything sockjs-client escapes because browsers mangle it on the way out.
const ESCAPED_BY_CLIENT =
  /[\\"\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0604\u070f\u17b4\u17b5\u2000-\u20ff\ufeff\ufff0-\uffff\u0300-\u0333\u033d-\u0346\u034a-\u034c\u0350-\u0352\u0357-\u0358\u035c-\u0362\u0374\u037e\u0387\u0591-\u05af\u05c4\u0610-\u0617\u0653-\u0654\u0657-\u065b\u065d-\u065e\u06df-\u06e2\u06eb-\u06ec\u0730\u0732-\u0733\u0735-\u0736\u073a\u073d\u073f-\u0741\u0743\u0745\u0747\u07eb-\u07f1\u0951\u0958-\u095f\u09dc-\u09dd\u09df\u0a33\u0a36\u0a59-\u0a5b\u0a5e\u0b5c-\u0b5d\u0e38-\u0e39\u0f43\u0f4d\u0f52\u0f57\u0f5c\u0f69\u0f72-\u0f76\u0f78\u0f80-\u0f83\u0f93\u0f9d\u0fa2\u0fa7\u0fac\u0fb9\u1939-\u193a\u1a17\u1b6b\u1cda-\u1cdb\u1dc0-\u1dcf\u1dfc\u1dfe\u1f71\u1f73\u1f75\u1f77\u1f79\u1f7b\u1f7d\u1fbb\u1fbe\u1fc9\u1fcb\u1fd3\u1fdb\u1fe3\u1feb\u1fee-\u1fef\u1ff9\u1ffb\u1ffd\u20d0-\u20d1\u20d4-\u20d7\u20e7-\u20e9\u2126\u212a-\u212b\u2329-\u232a\u2adc\u302b-\u302c\uaab2-\uaab3\uf900-\ufa0d\ufa10\ufa12\ufa15-\ufa1e\ufa20\ufa22\ufa25-\ufa26\ufa2a-\ufa2d\ufa30-\ufa6d\ufa70-\ufad9\ufb1d\ufb1f\ufb2a-\ufb36\ufb38-\ufb3c\ufb3e\ufb40-\ufb41\ufb43-\ufb44\ufb46-\ufb4e]/;

const clientKillerCodes: number[] = [];
for (let code = 0; code <= 0xffff; code++) {
  if (ESCAPED_BY_CLIENT.test(String.fromCharCode(code))) clientKillerCodes.push(code);
}
/** The decoded test string. */
const clientKiller = String.fromCharCode(...clientKillerCodes);
/** The same string as the suite writes it: a JSON literal of `\uXXXX` escapes only. */
const clientKillerEscaped = '"' + clientKillerCodes.map((code) => '\\u' + code.toString(16).padStart(4, '0')).join('') + '"';

const messages = (...list: string[]): Payload => ({ ok: true, messages: list });
const expected: Payload = { ok: false, error: 'PAYLOAD_EXPECTED' };
const broken: Payload = { ok: false, error: 'BROKEN_JSON' };

describe('parsePayload', () => {
  it.each<[string, string | undefined, Payload]>([
    ['no body', undefined, expected],
    ['an empty body', '', expected],
    ['a truncated array', '["x', broken],
    ['text that is not JSON', 'x', broken],
    ['a blank body', ' ', broken],
    ['a JSON string', '"x"', expected],
    ['a JSON object', '{"a":"b"}', expected],
    ['a JSON number', '1', expected],
    ['JSON null', 'null', expected],
    ['JSON false', 'false', expected],
    ['the empty array', '[]', messages()],
    ['one message', '["a"]', messages('a')],
    ['two messages in order', '["a","b"]', messages('a', 'b')],
    ['an empty message', '[""]', messages('')],
    ['a padded array', ' ["a"] \n', messages('a')],
    ['escaped characters', '["\\"\\\\\\n\\u2028"]', messages('"\\\n\u2028')],
  ])('answers %s', (_name, body, payload) => {
    expect(parsePayload(body)).toStrictEqual(payload);
  });

  it.each<[string, string, Payload]>([
    ['numbers', '[1,2.5]', messages('1', '2.5')],
    ['null and booleans', '[null,true,false]', messages('null', 'true', 'false')],
    ['objects', '[{"a":"b"}]', messages('{"a":"b"}')],
    ['nested arrays', '[["a",1]]', messages('["a",1]')],
    ['strings mixed with other values', '["a",1,"b"]', messages('a', '1', 'b')],
  ])('delivers %s that are not strings as their JSON text', (_name, body, payload) => {
    expect(parsePayload(body)).toStrictEqual(payload);
  });

  it('decodes the protocol suite\'s escaped test string to the same characters', () => {
    expect(clientKiller).toContain('"');
    expect(clientKiller).toContain('\u00ad');
    expect(clientKiller).toContain('\u20ff');
    expect(parsePayload('[' + clientKillerEscaped + ']')).toStrictEqual(messages(clientKiller));
  });

  it('decodes JSON.stringify of the test string back to identical characters', () => {
    expect(parsePayload(JSON.stringify([clientKiller]))).toStrictEqual(messages(clientKiller));
  });

  it('decodes raw UTF-8 text the same as its escapes', () => {
    expect(parsePayload('["\u00e9\u2028\ufeff\uffff"]')).toStrictEqual(messages('\u00e9\u2028\ufeff\uffff'));
  });
});

describe('parseWebsocketPayload', () => {
  it.each<[string, string, Payload]>([
    ['empty text as no message', '', messages()],
    ['the empty array as no message', '[]', messages()],
    ['an array as its messages in order', '["a","b"]', messages('a', 'b')],
    ['a single string as one message', '"a"', messages('a')],
    ['a single number as its JSON text', '5', messages('5')],
    ['a single object as its JSON text', '{"a":1}', messages('{"a":1}')],
    ['non-string elements as their JSON text', '[1,null]', messages('1', 'null')],
    ['a truncated array as broken', '["x', broken],
    ['text that is not JSON as broken', 'x', broken],
    ['a blank frame as broken', ' ', broken],
  ])('reads %s', (_name, text, payload) => {
    expect(parseWebsocketPayload(text)).toStrictEqual(payload);
  });

  it('decodes the protocol suite\'s escaped test string to the same characters', () => {
    expect(parseWebsocketPayload('[' + clientKillerEscaped + ']')).toStrictEqual(messages(clientKiller));
  });
});

describe('payloads, for any input', () => {
  it('parsePayload returns the messages of any JSON array of strings', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 20 }), (messages) => {
        expect(parsePayload(JSON.stringify(messages))).toEqual({ ok: true, messages });
      }),
    );
  });

  it('parsePayload never throws and answers anything else with one of the protocol errors', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json()), (body) => {
        const payload = parsePayload(body);
        if (!payload.ok) expect(['PAYLOAD_EXPECTED', 'BROKEN_JSON']).toContain(payload.error);
        else expect(payload.messages.every((m) => typeof m === 'string')).toBe(true);
      }),
    );
  });

  it('parseWebsocketPayload never throws and always yields strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json()), (text) => {
        const payload = parseWebsocketPayload(text);
        if (payload.ok) expect(payload.messages.every((m) => typeof m === 'string')).toBe(true);
        else expect(payload.error).toBe('BROKEN_JSON');
      }),
    );
  });
});

describe('elementTexts', () => {
  it.each([
    ['an empty array', '[]', []],
    ['an empty array with spaces', ' [ ] ', []],
    ['strings with brackets, commas and escaped quotes', '["a,]", "\\"}", "\\\\"]', ['"a,]"', '"\\"}"', '"\\\\"']],
    ['nested values', '[1, [2, [3]], {"a": {"b": [4]}}, null]', ['1', '[2, [3]]', '{"a": {"b": [4]}}', 'null']],
    ['whitespace of every JSON kind around elements', '[\t1\r\n,\n 2 ]', ['1', '2']],
    ['numbers as written', '[1.0, -0, 1e3]', ['1.0', '-0', '1e3']],
  ])('cuts out %s', (_name, text, texts) => {
    expect(elementTexts(text)).toEqual(texts);
  });

  it('cuts any JSON array into texts that parse back to its elements', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 10 }), fc.constantFrom(0, 1, 2), (values, indent) => {
        const text = JSON.stringify(values, null, indent);
        expect(elementTexts(text).map((t) => JSON.parse(t) as unknown)).toEqual(JSON.parse(text));
      }),
    );
  });

  it('takes nesting of any depth without recursion', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    expect(parsePayload(`[${deep},"s"]`)).toEqual({ ok: true, messages: [deep, 's'] });
    expect(parseWebsocketPayload(`{"a":${deep}}`)).toEqual({ ok: true, messages: [`{"a":${deep}}`] });
  });
});

describe('max messages per payload', () => {
  it('refuses an array of more elements than allowed, and takes one of exactly as many', () => {
    expect(parsePayload('["a","b","c"]', 2)).toEqual({ ok: false, error: 'TOO_MANY_MESSAGES' });
    expect(parseWebsocketPayload('["a","b","c"]', 2)).toEqual({ ok: false, error: 'TOO_MANY_MESSAGES' });
    expect(parsePayload('["a","b"]', 2)).toEqual(messages('a', 'b'));
    expect(parseWebsocketPayload('"one"', 1)).toEqual(messages('one'));
  });
});
