/**
 * The `eventsource` transport: a Server-Sent Events stream (PROTOCOL.md 5.4).
 */
import { Shared } from '../session/receiver';
import type { Framer, ReceivingTransport } from './transport';

// sockjs-client 1.x runs decodeURI on every event's data, so a bare `%` would be taken for an
// escape and corrupt the message (or throw on `%zz`): it goes out as `%25`. CR, LF and NUL would end
// the `data:` line or the event early; JSON already escapes them inside messages, and any that
// reach the frame text are percent-escaped the same way so that decodeURI restores them.
const EVENT_DATA_ESCAPES: Readonly<Record<string, string>> = { '%': '%25', '\r': '%0D', '\n': '%0A', '\0': '%00' };
const NEEDS_ESCAPE = /[%\r\n\0]/g;

/** One frame as one event: `data: ` + the escaped frame + a blank line. */
export function eventsourceFrame(frame: string): string {
  return 'data: ' + frame.replace(NEEDS_ESCAPE, (c) => EVENT_DATA_ESCAPES[c]!) + '\r\n\r\n';
}

// The CRLF prelude gets the response's headers and first bytes out at once, so that the browser
// fires `open` before the first frame and proxies see a live stream.
export const EVENTSOURCE_PRELUDE = '\r\n';

/** Each frame's event, made once for a run of sessions it is written to. */
const events = new Shared(eventsourceFrame);
const EVENTSOURCE_FRAMER: Framer = { prelude: EVENTSOURCE_PRELUDE, wrap: (frame) => events.of(frame) };

export const eventsource: ReceivingTransport = {
  role: 'receive',
  path: 'eventsource',
  method: 'GET',
  protocol: 'eventsource',
  // Exactly this, with no charset: the SSE media type is always UTF-8.
  contentType: 'text/event-stream',
  cors: 'eventsource',
  streaming: true,
  framer: () => EVENTSOURCE_FRAMER,
};
