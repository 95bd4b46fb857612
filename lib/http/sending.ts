/**
 * A send (`xhr_send`, `jsonp_send`): its body read and checked, then handed to its session as one
 * `incoming` event whose reply answers the request once the session has taken the messages.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import { defer, type Observable } from 'rxjs';
import { HTTP_ERRORS } from '../errors';
import { parsePayload } from '../payload';
import type { SessionEvent, SessionKey } from '../session/reducer';
import { mediaType, type SendingTransport } from '../transports/transport';
import { type Body, readBody } from './body';
import { mergeHeaders } from './headers';
import { notFound, type StaticResponse } from './pages';
import type { HttpPolicy } from './policy';
import type { PrefixCounters } from '../metrics';
import { type Log, logAnswer, respond } from './respond';

/** The messages of a send's body, or the answer that refuses it. */
export function sentMessages(transport: SendingTransport, contentType: string | undefined, body: Body, maxMessages: number): readonly string[] | StaticResponse {
  if (body === null) return HTTP_ERRORS.PAYLOAD_TOO_LARGE;
  const payload = parsePayload(transport.payload(mediaType(contentType), body), maxMessages);
  return payload.ok ? payload.messages : HTTP_ERRORS[payload.error];
}

export interface SendingContext {
  readonly policy: HttpPolicy;
  readonly maxMessageSize: number;
  readonly maxMessages: number;
  readonly now: () => number;
  readonly log: Log;
  /** Logs a fault that was caught. */
  readonly fault: (what: string, error: unknown) => void;
  /** Where bodies and refusals are counted, with metrics. */
  readonly counters?: PrefixCounters | null;
}

/**
 * The session event of a send, once its body is whole and checked; a refused body is answered
 * instead, and nothing is emitted. A body over the limit is not read to its end: the connection
 * closes after the answer. `refusal` is asked once the body is whole, right before its messages
 * go to the session. Nothing is read or written before it is subscribed.
 */
export function sending(
  req: IncomingMessage,
  res: ServerResponse,
  transport: SendingTransport,
  key: SessionKey,
  context: SendingContext,
  refusal?: () => StaticResponse | null,
): Observable<SessionEvent> {
  return defer(() => send(req, res, transport, key, context, refusal));
}

function send(...[req, res, transport, key, context, refusal]: Parameters<typeof sending>): Observable<SessionEvent> {
  const { policy } = context;
  const base = policy.sessionHeaders(req, res);
  const headers = transport.cors === 'xhr' ? mergeHeaders(base, policy.cors(req)) : base;
  const read = (body: Body): SessionEvent | undefined => {
    const messages = sentMessages(transport, req.headers['content-type'], body, context.maxMessages);
    const { counters } = context;
    if (counters) {
      if (body !== null) counters.bytesReceived += Buffer.byteLength(body);
      if ('status' in messages) counters.refused[messages.status === 413 ? 'size' : 'bad_input']++;
    }
    if ('status' in messages) {
      respond(res, messages, body === null ? mergeHeaders(headers, { Connection: 'close' }) : headers);
      logAnswer(context.log, req, messages.status);
      return undefined;
    }
    // The session may have opened, with other credentials, while the body came.
    const refused = refusal?.();
    if (refused) {
      respond(res, refused, headers);
      logAnswer(context.log, req, refused.status);
      return undefined;
    }
    const reply = {
      accept: () => respond(res, transport.accepted, headers),
      unknownSession: () => respond(res, notFound(false, context.now()), headers),
      unavailable: () => {
        respond(res, HTTP_ERRORS.RELAY_UNAVAILABLE, headers);
        logAnswer(context.log, req, HTTP_ERRORS.RELAY_UNAVAILABLE.status);
      },
      refused: () => {
        respond(res, HTTP_ERRORS.NOT_AUTHORIZED, headers);
        logAnswer(context.log, req, HTTP_ERRORS.NOT_AUTHORIZED.status);
      },
    };
    return { type: 'incoming', key, messages, reply };
  };
  // Run from the request's listeners, where a throw would reach the process: a fault is
  // answered with 500 and logged.
  const guarded = (body: Body): SessionEvent | undefined => {
    try {
      return read(body);
    } catch (error) {
      context.fault(`${req.method} ${req.url}`, error);
      respond(res, HTTP_ERRORS.INTERNAL, mergeHeaders(headers, { Connection: 'close' }));
      return undefined;
    }
  };
  return readBody(req, context.maxMessageSize, guarded, () => respond(res, HTTP_ERRORS.SHUTTING_DOWN, mergeHeaders(headers, { Connection: 'close' })));
}
