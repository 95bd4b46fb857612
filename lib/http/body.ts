/**
 * Reading a request's body as it streams in, bounded by `max_message_size`.
 */
import type { IncomingMessage } from 'http';
import { Observable } from 'rxjs';

/** A request body: its text, or `null` when it is larger than the limit. */
export type Body = string | null;

/**
 * The whole body of a request as UTF-8 text, handed to `then`, whose event (if any) is emitted:
 * `null` as soon as the body passes `limit` bytes (counted as it streams in, never buffered whole
 * first); nothing when the client aborts it. Unsubscribed before the body is whole (the endpoint
 * closes), `abandoned` answers the request.
 */
export function readBody<T>(req: IncomingMessage, limit: number, then: (body: Body) => T | undefined, abandoned: () => void): Observable<T> {
  return new Observable<T>((subscriber) => {
    let settled = false;
    const done = (body: Body) => {
      settled = true;
      const value = then(body);
      if (value !== undefined) subscriber.next(value);
      subscriber.complete();
    };
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      done(null);
      return undefined;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      done(null);
    };
    const onEnd = () => done(Buffer.concat(chunks).toString('utf8'));
    const onClose = () => {
      settled = true;
      subscriber.complete();
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.once('error', onClose);
    return () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      if (!settled) abandoned();
    };
  });
}
