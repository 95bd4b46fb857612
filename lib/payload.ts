/**
 * Parsing what clients send: the JSON array of `xhr_send`, `jsonp_send` and websocket frames.
 */

export type Payload =
  | { readonly ok: true; readonly messages: readonly string[] }
  | { readonly ok: false; readonly error: PayloadError };

/** The protocol's error texts, answered with status 500 on the HTTP send transports. */
export type PayloadError = 'Payload expected.' | 'Broken JSON encoding.';

const expected: Payload = { ok: false, error: 'Payload expected.' };
const broken: Payload = { ok: false, error: 'Broken JSON encoding.' };

function toMessage(value: unknown): string {
  // sockjs-client only ever sends strings; anything else is delivered as its JSON text so that
  // nothing the client sent is lost or turned into "[object Object]".
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The messages of a parsed array: the array itself when it holds only strings, as clients send. */
function messagesOf(values: unknown[]): string[] {
  for (let i = 0; i < values.length; i++) if (typeof values[i] !== 'string') return values.map(toMessage);
  return values as string[];
}

/**
 * The body of `xhr_send` or `jsonp_send`: a JSON array of strings. The empty array is valid
 * (a client heartbeat) and carries no message.
 */
export function parsePayload(body: string | undefined): Payload {
  if (!body) return expected;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return broken;
  }
  if (!Array.isArray(value)) return expected;
  return { ok: true, messages: messagesOf(value) };
}

/**
 * A text message on the SockJS websocket transport: a JSON array of messages or, as the reference
 * server also accepts, a single JSON value. Empty text carries no message.
 */
export function parseWebsocketPayload(text: string): Payload {
  if (text.length === 0) return { ok: true, messages: [] };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return broken;
  }
  return { ok: true, messages: Array.isArray(value) ? messagesOf(value) : [toMessage(value)] };
}
