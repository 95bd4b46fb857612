/**
 * The `htmlfile` transport: a page that streams `<script>` elements into a hidden iframe, for
 * browsers with neither streaming XHR nor EventSource (PROTOCOL.md 5.5).
 */
import type { StaticResponse } from '../http/pages';
import { parseCallback, scriptString } from './callback';
import type { Framer, ReceivingTransport } from './transport';

/** The head of the page; `c` is the parent window's callback object that receives the frames. */
function head(callback: string): string {
  return `<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.${callback};
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>`;
}

// Browsers sniff the first 1024 bytes of a page before they parse it, and Safari runs none of its
// scripts until all of them have arrived; so the head is padded with spaces past 1024 bytes: to
// 1023 + the callback's length, then a blank line, as the reference server does. The callback is
// ASCII, so characters are bytes.
export function htmlfilePrelude(callback: string): string {
  return head(callback).padEnd(1023 + callback.length, ' ') + '\r\n\r\n';
}

/** One frame as one script element calling `p`; see `scriptString` for why it is safe in HTML. */
export function htmlfileFrame(frame: string): string {
  return '<script>\np(' + scriptString(frame) + ');\n</script>\r\n';
}

export function htmlfileFramer(query: string): Framer | StaticResponse {
  const callback = parseCallback(new URLSearchParams(query));
  if (typeof callback !== 'string') return callback;
  return { prelude: htmlfilePrelude(callback), wrap: htmlfileFrame };
}

export const htmlfile: ReceivingTransport = {
  role: 'receive',
  path: 'htmlfile',
  method: 'GET',
  protocol: 'htmlfile',
  contentType: 'text/html; charset=UTF-8',
  cors: 'none',
  streaming: true,
  framer: htmlfileFramer,
};
