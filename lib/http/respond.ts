/**
 * The HTTP edge: writes responses that are data to a ServerResponse, or to the raw socket of an
 * `upgrade` event (which has no ServerResponse).
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'http';
import type { Duplex } from 'stream';
import { type Headers, mergeHeaders } from './headers';
import type { StaticResponse } from './pages';

export function setHeaders(res: ServerResponse, headers: Headers): void {
  for (const name in headers) res.setHeader(name, headers[name]!);
}

/**
 * Writes a whole response, its headers in one go with the status line: `extra` first, then the
 * response's own, which win. Headers set on `res` before stay unless these name them too.
 */
export function respond(res: ServerResponse, response: StaticResponse, extra?: Headers): void {
  if (res.headersSent) return;
  const headers = mergeHeaders(extra, response.headers);
  if (response.body) headers['Content-Length'] = String(Buffer.byteLength(response.body));
  res.writeHead(response.status, headers);
  res.end(response.body);
}

/** Answers an upgrade request that will not be upgraded, then closes its socket. */
export function respondOnSocket(req: IncomingMessage, socket: Duplex, response: StaticResponse): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`];
  for (const [name, value] of Object.entries(response.headers)) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${Buffer.byteLength(response.body)}`, 'Connection: close', '', '');
  socket.end(lines.join('\r\n') + response.body);
  // The request is not read further; let its body go rather than keep the socket for it.
  req.resume();
}
