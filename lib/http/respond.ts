/**
 * The HTTP edge: writes responses that are data to a ServerResponse, or to the raw socket of an
 * `upgrade` event (which has no ServerResponse).
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'http';
import type { Duplex } from 'stream';
import { Observable } from 'rxjs';
import { type Headers, mergeHeaders } from './headers';
import type { StaticResponse } from './pages';

/** Where the HTTP side logs: the application's `log`, guarded. */
export type Log = (severity: string, message: string) => void;

/** Logs an answer at `info`, as the HTTP side logs each one: `METHOD URL STATUS`. */
export function logAnswer(log: Log, req: IncomingMessage, status: number): void {
  log('info', `${req.method} ${req.url} ${status}`);
}

/**
 * Writes a whole response, its headers in one go with the status line: `extra` first, then the
 * response's own, which win. Headers set on `res` before stay unless these name them too.
 */
export function respond(res: ServerResponse, response: StaticResponse, extra?: Headers): void {
  if (res.headersSent) return;
  writeResponse(res, response, extra);
}

/** `respond` without its guard: throws (ERR_HTTP_HEADERS_SENT) when the headers have been sent. */
function writeResponse(res: ServerResponse, response: StaticResponse, extra?: Headers): void {
  const headers = mergeHeaders(extra, response.headers);
  if (response.body) headers['Content-Length'] = String(Buffer.byteLength(response.body));
  res.writeHead(response.status, headers);
  res.end(response.body);
}

/**
 * `respond` when subscribed, with the request logged at `info` (`METHOD URL STATUS`); it then
 * completes without a value. A response whose headers were sent already (by a `jsessionid`
 * function, say) is a fault: it throws, and the subscriber's owner answers it.
 */
export function answered(req: IncomingMessage, res: ServerResponse, response: StaticResponse, headers: Headers | undefined, log: Log): Observable<never> {
  return new Observable<never>((subscriber) => {
    writeResponse(res, response, headers);
    logAnswer(log, req, response.status);
    subscriber.complete();
  });
}

/**
 * How long a socket handed over by `upgrade` may take to finish its handshake (hixie-76's key3),
 * or to close after it was refused, before it is destroyed.
 */
export const SOCKET_GRACE_MS = 10_000;

/**
 * How long an ended response may take to reach a client that does not read before it is
 * destroyed: as long as `ws` gives a closing websocket.
 */
export const FLUSH_GRACE_MS = 30_000;

/** What `destroyAfter` needs of a socket or a response. */
interface Destroyable {
  readonly destroyed: boolean;
  destroy(): unknown;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * Destroys `socket` unless it closes within `ms`; the returned function calls that off. The timer
 * does not keep the process alive.
 */
export function destroyAfter(socket: Destroyable, ms: number): () => void {
  if (socket.destroyed) return noop;
  const destroy = () => socket.destroy();
  const timer = setTimeout(destroy, ms);
  timer.unref();
  const cancel = () => {
    clearTimeout(timer);
    socket.off('close', cancel);
  };
  socket.once('close', cancel);
  return cancel;
}

function noop(): void {}

/**
 * Answers an upgrade request that will not be upgraded, then closes its socket: at once when the
 * client has closed its side too, else after `SOCKET_GRACE_MS` at the latest, so that a client
 * that neither reads the answer nor closes holds nothing.
 */
export function respondOnSocket(socket: Duplex, response: StaticResponse): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  destroyAfter(socket, SOCKET_GRACE_MS);
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`];
  for (const [name, value] of Object.entries(response.headers)) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${Buffer.byteLength(response.body)}`, 'Connection: close', '', '');
  socket.end(lines.join('\r\n') + response.body);
  // What the client sends after its head is read and dropped, so that its end is seen and the
  // socket closes as soon as both sides are done.
  socket.resume();
}

/** `respondOnSocket` when subscribed, logged as `answered` logs; it then completes without a value. */
export function answeredOnSocket(req: IncomingMessage, socket: Duplex, response: StaticResponse, log: Log): Observable<never> {
  return new Observable<never>((subscriber) => {
    respondOnSocket(socket, response);
    logAnswer(log, req, response.status);
    subscriber.complete();
  });
}
