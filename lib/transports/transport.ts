/**
 * The contract every HTTP transport fulfils, so that adding a transport is one small file of data:
 * how its responses look and how frames are wrapped on it.
 */
import type { Headers } from '../http/headers';
import type { StaticResponse } from '../http/pages';

/** How one receiving response writes frames, once its request has been checked. */
export interface Framer {
  /** Written before any frame, as its own chunk; not counted against `response_limit`. */
  readonly prelude: string;
  readonly wrap: (frame: string) => string;
}

/** What every HTTP transport has: its session URL and the method its client uses. */
interface HttpTransport {
  /** The last segment of its session URL, `/<prefix>/<server>/<session>/<path>`, e.g. `xhr_send`. */
  readonly path: string;
  readonly method: 'GET' | 'POST';
  /**
   * `xhr`: the XHR CORS rules, with a preflight (`OPTIONS`) answered on the same URL;
   * `eventsource`: its own rules (PROTOCOL.md 5.4); `none`: no CORS headers.
   */
  readonly cors: 'xhr' | 'eventsource' | 'none';
}

/** A transport the client receives on: a poll (one frame per response) or a stream. */
export interface ReceivingTransport extends HttpTransport {
  readonly role: 'receive';
  /** The name sockjs-client and `Connection.protocol` use, e.g. `xhr-streaming`. */
  readonly protocol: string;
  readonly contentType: string;
  /** Further headers of a response that was accepted, e.g. `X-Content-Type-Options`. */
  readonly headers?: Headers;
  readonly streaming: boolean;
  /**
   * Checks the request's query string, without its `?` (e.g. for a callback name), and returns
   * the framer or an error. Transports that read no query return one shared framer.
   */
  readonly framer: (query: string) => Framer | StaticResponse;
}

/** A transport the client sends on: the body carries a JSON array of messages. */
export interface SendingTransport extends HttpTransport {
  readonly role: 'send';
  readonly cors: 'xhr' | 'none';
  /** The JSON text in a body of the given Content-Type, or undefined when the type is not accepted. */
  readonly payload: (contentType: string, body: string) => string | undefined;
  /** The answer once the session has taken the messages. */
  readonly accepted: StaticResponse;
}

export function isFramer(value: Framer | StaticResponse): value is Framer {
  return 'wrap' in value;
}

/** The media type of a Content-Type header, without parameters: `text/plain; charset=x` is `text/plain`. */
export function mediaType(contentType: string | undefined): string {
  if (!contentType) return '';
  const end = contentType.indexOf(';');
  return (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}
