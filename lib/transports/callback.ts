/**
 * What `htmlfile` and `jsonp` share: the client's callback name, checked before it is written into
 * a page or a script, and the JSON string literal a frame travels in (PROTOCOL.md 5.5 and 5.6).
 */
import { escapeChar } from '../frames';
import { HTTP_ERRORS } from '../errors';
import type { StaticResponse } from '../http/pages';

// The name is written verbatim into JavaScript (`parent.NAME`, `NAME(...)`); these characters
// cannot end the statement or the script element it stands in.
const CALLBACK_NAME = /^[a-zA-Z0-9_.-]+$/;

/**
 * The callback name in query parameter `c` (sockjs-client) or `callback` (older clients),
 * URL-decoded; an error answer when it is missing, empty, longer than `maxLength` or holds a
 * character other than letters, digits, `-`, `_` and `.`.
 */
export function parseCallback(query: URLSearchParams, maxLength = Infinity): string | StaticResponse {
  const name = query.get('c') ?? query.get('callback');
  if (!name) return HTTP_ERRORS.CALLBACK_REQUIRED;
  if (!CALLBACK_NAME.test(name) || name.length > maxLength) return HTTP_ERRORS.CALLBACK_INVALID;
  return name;
}

// The literal is JavaScript inside an HTML <script> element (htmlfile) or a script fetched by a
// <script src> tag (jsonp). `</script>` in it would end the element and `<!--` switches the HTML
// parser into its escaped-script state, so every `<` is written as \u003c. U+2028 and U+2029 are
// line terminators to JavaScript engines before ES2019 and end a string literal there. Both
// escapes leave the value of the literal unchanged.
const UNSAFE_IN_SCRIPT = /[<\u2028\u2029]/g;

/** `frame` as a JSON string literal that is safe inside a script element. */
export function scriptString(frame: string): string {
  return JSON.stringify(frame).replace(UNSAFE_IN_SCRIPT, escapeChar);
}
