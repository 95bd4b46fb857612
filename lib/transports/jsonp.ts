/**
 * The JSONP transports: `jsonp` (polling with a script tag) and `jsonp_send` (a form post from a
 * hidden iframe), for browsers without CORS (PROTOCOL.md 5.6 and 5.7).
 */
import type { StaticResponse } from '../http/pages';
import { parseCallback, scriptString } from './callback';
import type { Framer, ReceivingTransport, SendingTransport } from './transport';

// Longer names are refused as the reference server refuses them; sockjs-client's are far shorter.
const MAX_CALLBACK_LENGTH = 32;

// The response opens with an empty comment (and carries `X-Content-Type-Options: nosniff`) against
// Rosetta Flash: a crafted callback name could otherwise make the response start like a SWF file
// that Flash would run with this site's origin.
/** One frame as one call: an empty comment, then `CALLBACK("frame");` and CR LF. */
export function jsonpFrame(callback: string, frame: string): string {
  return '/**/' + callback + '(' + scriptString(frame) + ');\r\n';
}

export function jsonpFramer(query: string): Framer | StaticResponse {
  const callback = parseCallback(new URLSearchParams(query), MAX_CALLBACK_LENGTH);
  if (typeof callback !== 'string') return callback;
  return { prelude: '', wrap: (frame) => jsonpFrame(callback, frame) };
}

export const jsonpPolling: ReceivingTransport = {
  role: 'receive',
  path: 'jsonp',
  method: 'GET',
  protocol: 'jsonp-polling',
  contentType: 'application/javascript; charset=UTF-8',
  cors: 'none',
  headers: { 'X-Content-Type-Options': 'nosniff' },
  streaming: false,
  framer: jsonpFramer,
};

/**
 * The JSON text of a `jsonp_send` body: the form field `d` of a form post (the iframe's form is
 * URL-encoded), or the raw body for `text/plain` or no type, taken as it is, never URL-decoded.
 * Undefined for other types, which the protocol answers with `Payload expected.`.
 */
export function jsonpSendPayload(contentType: string, body: string): string | undefined {
  if (contentType === 'application/x-www-form-urlencoded') return new URLSearchParams(body).get('d') ?? undefined;
  if (contentType === 'text/plain' || contentType === '') return body;
  return undefined;
}

export const jsonpSend: SendingTransport = {
  role: 'send',
  path: 'jsonp_send',
  method: 'POST',
  cors: 'none',
  payload: jsonpSendPayload,
  accepted: { status: 200, headers: { 'Content-Type': 'text/plain; charset=UTF-8' }, body: 'ok' },
};
