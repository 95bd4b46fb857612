/**
 * The XHR transports: `xhr` (polling), `xhr_streaming` and `xhr_send` (PROTOCOL.md 5.1 to 5.3).
 */
import { Shared } from '../session/receiver';
import type { Framer, ReceivingTransport, SendingTransport } from './transport';

const JAVASCRIPT = 'application/javascript; charset=UTF-8';
/** A frame and its newline, made once for a run of sessions it is written to. */
const lines = new Shared((frame: string) => frame + '\n');
const newline = (frame: string) => lines.of(frame);
const POLL_FRAMER: Framer = { prelude: '', wrap: newline };

export const xhrPolling: ReceivingTransport = {
  role: 'receive',
  path: 'xhr',
  method: 'POST',
  protocol: 'xhr-polling',
  contentType: JAVASCRIPT,
  cors: 'xhr',
  streaming: false,
  framer: () => POLL_FRAMER,
};

// Browsers (IE, old WebKit) hand a streaming XHR's data to the page only after a first 2 KB have
// arrived, so the stream opens with 2048 `h` and a newline.
const XHR_STREAMING_PRELUDE = 'h'.repeat(2048) + '\n';
const STREAMING_FRAMER: Framer = { prelude: XHR_STREAMING_PRELUDE, wrap: newline };

export const xhrStreaming: ReceivingTransport = {
  role: 'receive',
  path: 'xhr_streaming',
  method: 'POST',
  protocol: 'xhr-streaming',
  contentType: JAVASCRIPT,
  cors: 'xhr',
  streaming: true,
  framer: () => STREAMING_FRAMER,
};

// Old clients and proxies send the JSON body under many media types; all of these are read as JSON.
const XHR_SEND_TYPES = new Set(['', 'text/plain', 't', 'application/json', 'application/xml', 'text/xml']);

export const xhrSend: SendingTransport = {
  role: 'send',
  path: 'xhr_send',
  method: 'POST',
  cors: 'xhr',
  payload: (contentType, body) => (XHR_SEND_TYPES.has(contentType) ? body : undefined),
  accepted: { status: 204, headers: { 'Content-Type': 'text/plain; charset=UTF-8' }, body: '' },
};
