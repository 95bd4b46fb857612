/**
 * The four SockJS frames, as text, before a transport wraps them (PROTOCOL.md section 3).
 */
import { Shared } from './session/receiver';

// Characters that browsers or proxies mangle, beyond what JSON.stringify escapes. Surrogates are
// escaped too (including the halves of valid pairs), as the reference server does: some old
// browsers drop lone halves, and escaping every half keeps the frame pure ASCII there.
const ESCAPABLE = /[\u0000-\u001f\ud800-\udfff\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/g;

/**
 * Any character that the quoted text cannot carry raw: what JSON escapes (`"`, `\`, controls,
 * surrogates) and ESCAPABLE. Written as the characters that may pass, since V8 scans a string
 * for a negated class about twice as fast as for the equivalent class.
 */
const NOT_RAW = /[^\u0020\u0021\u0023-\u005b\u005d-\u200b\u2010-\u2027\u2030-\u205f\u2070-\ud7ff\ue000-\uffef]/;

/** One UTF-16 code unit as a lower-case `\uXXXX` escape, as JSON writes it. */
export function escapeChar(c: string): string {
  return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
}

/** JSON string literal of `text`, with the protocol's extra code points as lower-case `\uXXXX`. */
export function quote(text: string): string {
  // Most messages need no escape at all: one scan then, rather than JSON.stringify and a scan.
  if (!NOT_RAW.test(text)) return '"' + text + '"';
  const quoted = JSON.stringify(text);
  ESCAPABLE.lastIndex = 0;
  return ESCAPABLE.test(quoted) ? quoted.replace(ESCAPABLE, escapeChar) : quoted;
}

export const openFrame = (): string => 'o';

export const heartbeatFrame = (): string => 'h';

/** The frame of one message, made once for a run of sessions it is written to (a broadcast). */
const lone = new Shared((message: string) => 'a[' + quote(message) + ']');

/** `a["m1","m2"]`: one frame carrying any number of messages, in order. */
export function messageFrame(messages: readonly string[]): string {
  if (messages.length === 1) return lone.of(messages[0]!);
  let frame = 'a[';
  for (let i = 0; i < messages.length; i++) {
    if (i > 0) frame += ',';
    frame += quote(messages[i]!);
  }
  return frame + ']';
}

/** `c[3000,"Go away!"]`, with no space after the comma. */
export function closeFrame(code: number, reason: string): string {
  return 'c[' + String(code) + ',' + quote(reason) + ']';
}
