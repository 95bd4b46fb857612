import { HTTP_ERRORS } from '../../lib/errors';
import { sentMessages } from '../../lib/http/sending';
import { jsonpSend } from '../../lib/transports/jsonp';
import { xhrSend } from '../../lib/transports/xhr';

describe('sentMessages', () => {
  it('reads the messages of a body its transport accepts', () => {
    expect(sentMessages(xhrSend, 'text/plain; charset=UTF-8', '["a","b"]', 10)).toStrictEqual(['a', 'b']);
    expect(sentMessages(jsonpSend, 'application/x-www-form-urlencoded', 'd=%5B%22a%22%5D', 10)).toStrictEqual(['a']);
    expect(sentMessages(xhrSend, undefined, '[]', 10)).toStrictEqual([]);
  });

  it('refuses a body over the size limit, of the wrong type, not JSON, not an array or of too many messages', () => {
    expect(sentMessages(xhrSend, 'text/plain', null, 10)).toBe(HTTP_ERRORS.PAYLOAD_TOO_LARGE);
    expect(sentMessages(xhrSend, 'image/png', '["a"]', 10)).toBe(HTTP_ERRORS.PAYLOAD_EXPECTED);
    expect(sentMessages(xhrSend, 'text/plain', '["a"', 10)).toBe(HTTP_ERRORS.BROKEN_JSON);
    expect(sentMessages(xhrSend, 'text/plain', '{"a":1}', 10)).toBe(HTTP_ERRORS.PAYLOAD_EXPECTED);
    expect(sentMessages(xhrSend, 'text/plain', '["a","b","c"]', 2)).toBe(HTTP_ERRORS.TOO_MANY_MESSAGES);
  });
});
