/**
 * The transports, in one table: each name the `transports` option takes, and the session URLs its
 * client uses, by the last segment of `/<prefix>/<server>/<session>/<path>`: where it receives and
 * where it sends. The router serves exactly the URLs of the transports that are on.
 */
import { eventsource } from './eventsource';
import { htmlfile } from './htmlfile';
import { jsonpPolling, jsonpSend } from './jsonp';
import type { ReceivingTransport, SendingTransport } from './transport';
import { xhrPolling, xhrSend, xhrStreaming } from './xhr';

export interface TransportUse {
  /** Where the client receives: an HTTP transport, or the session's websocket (`<session>/websocket`). */
  readonly receive?: ReceivingTransport | 'websocket';
  /** Where the client sends, when it does not send on its websocket. */
  readonly send?: SendingTransport;
}

/** By the names sockjs-client and the sockjs package use. */
export const TRANSPORTS = {
  websocket: { receive: 'websocket' },
  // Served at `/<prefix>/websocket`, which is no session URL: see router.ts.
  'websocket-raw': {},
  'xhr-polling': { receive: xhrPolling, send: xhrSend },
  'xhr-streaming': { receive: xhrStreaming, send: xhrSend },
  eventsource: { receive: eventsource, send: xhrSend },
  // The iframe's transports send with a form post.
  htmlfile: { receive: htmlfile, send: jsonpSend },
  'jsonp-polling': { receive: jsonpPolling, send: jsonpSend },
} as const satisfies Record<string, TransportUse>;

/** The transports of the SockJS protocol, by the names sockjs-client and the sockjs package use. */
export type TransportName = keyof typeof TRANSPORTS;

export const ALL_TRANSPORTS = Object.keys(TRANSPORTS) as readonly TransportName[];
