import { CLOSE_REASONS, HTTP_ERRORS } from '../lib/errors';

const TEXT = { 'Content-Type': 'text/plain; charset=UTF-8' };

describe('HTTP_ERRORS', () => {
  it('answers our own refusals with their status and the text as UTF-8 plain text', () => {
    expect(HTTP_ERRORS.UPGRADE_NOT_WEBSOCKET).toStrictEqual({ status: 400, headers: TEXT, body: 'Can "Upgrade" only to "WebSocket".' });
    expect(HTTP_ERRORS.ORIGIN_REFUSED).toStrictEqual({ status: 403, headers: TEXT, body: 'Origin not allowed.' });
    expect(HTTP_ERRORS.PAYLOAD_TOO_LARGE).toStrictEqual({ status: 413, headers: TEXT, body: 'Payload too large.' });
    expect(HTTP_ERRORS.SHUTTING_DOWN).toStrictEqual({ status: 503, headers: TEXT, body: 'Server shutting down.' });
  });

  it.each([
    ['PAYLOAD_EXPECTED', 'Payload expected.'],
    ['BROKEN_JSON', 'Broken JSON encoding.'],
    ['CALLBACK_REQUIRED', '"callback" parameter required'],
    ['CALLBACK_INVALID', 'invalid "callback" parameter'],
  ] as const)('answers the protocol error %s with 500, exactly %j, no newline and no Content-Type', (name, text) => {
    expect(HTTP_ERRORS[name]).toStrictEqual({ status: 500, headers: {}, body: text });
  });

  it('gives every answer an error status and a body that says what went wrong', () => {
    for (const [name, response] of Object.entries(HTTP_ERRORS)) {
      expect([name, response.status >= 400 && response.status < 600]).toEqual([name, true]);
      expect([name, response.body.length > 0]).toEqual([name, true]);
    }
  });
});

describe('CLOSE_REASONS', () => {
  it('uses websocket close codes, with reasons that fit a close frame (123 bytes)', () => {
    for (const [name, { code, reason }] of Object.entries(CLOSE_REASONS)) {
      expect([name, code >= 1000 && code <= 4999, Buffer.byteLength(reason) <= 123]).toEqual([name, true, true]);
    }
  });

  it('keeps the codes and reasons the protocol and the sockjs package give', () => {
    expect(CLOSE_REASONS.NORMAL_CLOSURE).toStrictEqual({ code: 1000, reason: 'Normal closure' });
    expect(CLOSE_REASONS.INTERRUPTED).toStrictEqual({ code: 1002, reason: 'Connection interrupted' });
    expect(CLOSE_REASONS.ANOTHER_CONNECTION).toStrictEqual({ code: 2010, reason: 'Another connection still open' });
    expect(CLOSE_REASONS.BROKEN_FRAMING).toStrictEqual({ code: 3000, reason: 'Broken framing.' });
    expect(CLOSE_REASONS.NO_HEARTBEAT).toStrictEqual({ code: 3000, reason: 'No response from heartbeat' });
  });
});
