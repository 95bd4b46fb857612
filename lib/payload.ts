/**
 * Parsing what clients send: the JSON array of `xhr_send`, `jsonp_send` and websocket frames.
 *
 * Nothing here recurses on the client's nesting: V8's `JSON.parse` is iterative, and an element
 * that is not a string is delivered as the JSON text the client sent, cut out by one flat scan,
 * never re-serialised (`JSON.stringify` recurses, and 10,000 nested arrays overflow its stack).
 */
import type { HttpErrorName } from './errors';

export type Payload =
  | { readonly ok: true; readonly messages: readonly string[] }
  | { readonly ok: false; readonly error: PayloadError };

/**
 * What is wrong with a payload, by its answer in `HTTP_ERRORS`: the protocol's two errors, and ours
 * for more messages than `max_payload_messages` (1009 `TOO_MANY_MESSAGES` on a websocket).
 */
export type PayloadError = Extract<HttpErrorName, 'PAYLOAD_EXPECTED' | 'BROKEN_JSON' | 'TOO_MANY_MESSAGES'>;

const expected: Payload = { ok: false, error: 'PAYLOAD_EXPECTED' };
const broken: Payload = { ok: false, error: 'BROKEN_JSON' };
const tooMany: Payload = { ok: false, error: 'TOO_MANY_MESSAGES' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * The text of each element of `text`, a JSON array that `JSON.parse` has accepted, trimmed of
 * the whitespace around it. One pass with a depth counter: strings are skipped whole, so their
 * brackets and commas do not count.
 */
export function elementTexts(text: string): string[] {
  const texts: string[] = [];
  let i = text.indexOf('[') + 1;
  let start = i;
  let depth = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      depth++;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      if (depth === 0) break;
      depth--;
    } else if (c === COMMA && depth === 0) {
      texts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start, i).trim();
  if (last !== '' || texts.length > 0) texts.push(last);
  return texts;
}

/**
 * The messages of a parsed array: the array itself when it holds only strings, as clients send;
 * else each element that is not a string as the client's text of it.
 */
function messagesOf(values: unknown[], text: string): string[] {
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'string') {
      const texts = elementTexts(text);
      return values.map((value, at) => (typeof value === 'string' ? value : texts[at]!));
    }
  }
  return values as string[];
}

/** Parses `text` as JSON; `broken` when it is not. */
function parse(text: string): { readonly value: unknown } | null {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return null;
  }
}

/**
 * The body of `xhr_send` or `jsonp_send`: a JSON array of strings. The empty array is valid
 * (a client heartbeat) and carries no message. An array of more than `maxMessages` elements is
 * refused whole.
 */
export function parsePayload(body: string | undefined, maxMessages = Infinity): Payload {
  if (!body) return expected;
  const parsed = parse(body);
  if (!parsed) return broken;
  const { value } = parsed;
  if (!Array.isArray(value)) return expected;
  if (value.length > maxMessages) return tooMany;
  return { ok: true, messages: messagesOf(value, body) };
}

/**
 * A text message on the SockJS websocket transport: a JSON array of messages or, as the reference
 * server also accepts, a single JSON value. Empty text carries no message.
 */
export function parseWebsocketPayload(text: string, maxMessages = Infinity): Payload {
  if (text.length === 0) return { ok: true, messages: [] };
  const parsed = parse(text);
  if (!parsed) return broken;
  const { value } = parsed;
  if (!Array.isArray(value)) return { ok: true, messages: [typeof value === 'string' ? value : text.trim()] };
  if (value.length > maxMessages) return tooMany;
  return { ok: true, messages: messagesOf(value, text) };
}
