/**
 * The HTTP edge: writes responses that are data to a ServerResponse, or to the raw socket of an
 * `upgrade` event (which has no ServerResponse).
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'http';
import type { Duplex } from 'stream';
import type { Headers } from './headers';
import type { StaticResponse } from './pages';

export function setHeaders(res: ServerResponse, headers: Headers): void {
  for (const name in headers) res.setHeader(name, headers[name]!);
}

/** Writes a whole response; headers set on `res` before stay, the response's own win. */
export function respond(res: ServerResponse, response: StaticResponse): void {
  if (res.headersSent) return;
  setHeaders(res, response.headers);
  if (response.body) res.setHeader('Content-Length', Buffer.byteLength(response.body));
  res.writeHead(response.status);
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
