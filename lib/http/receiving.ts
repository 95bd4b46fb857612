/**
 * A receiving request (a poll or a stream): its response becomes the session's receiver, attached
 * when subscribed, detached when the client drops it. A request pipelined behind others on its
 * connection waits for its turn before it touches the session.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { Duplex } from 'stream';
import { Observable, type Subscriber } from 'rxjs';
import type { Grant } from '../authorization';
import type { PrefixCounters } from '../metrics';
import { type CloseReason, CLOSE_REASONS, HTTP_ERRORS } from '../errors';
import { splitUrl } from '../router';
import { onFlush, type Receiver, SharedBytes, type Sink } from '../session/receiver';
import type { SessionEvent, SessionKey } from '../session/reducer';
import { isFramer, type ReceivingTransport } from '../transports/transport';
import { type Headers, mergeHeaders } from './headers';
import type { StaticResponse } from './pages';
import type { HttpPolicy } from './policy';
import { destroyAfter, FLUSH_GRACE_MS, type Log, logAnswer, respond } from './respond';

/** A chunk as it is written: encoded once for a run of responses it is written to. */
const encoded = new SharedBytes();

/** Receiving requests one connection may have waiting behind others (HTTP pipelining). */
const MAX_PIPELINED_RECEIVERS = 8;

export interface ReceivingContext {
  readonly policy: HttpPolicy;
  readonly responseLimit: number;
  /** A receiver id unique in the endpoint. */
  readonly nextId: () => number;
  readonly pipelining: Pipelining;
  readonly log: Log;
  /** Where refused requests are counted, with metrics. */
  readonly counters?: PrefixCounters | null;
}

/**
 * The events of one receiving request: `attach` once its turn has come, then `detach` if its
 * client drops it. A request the transport refuses (a bad callback name) is answered and emits
 * nothing, and so is one that `refusal`, asked when its turn has come, refuses (the session was
 * opened with other credentials; a cap was reached meanwhile). Nothing is written before it is
 * subscribed.
 */
export function receiving(
  req: IncomingMessage,
  res: ServerResponse,
  transport: ReceivingTransport,
  key: SessionKey,
  context: ReceivingContext,
  grant?: Grant,
  refusal?: () => StaticResponse | null,
): Observable<SessionEvent> {
  return new Observable<SessionEvent>((subscriber) => {
    const { policy } = context;
    const base = policy.sessionHeaders(req, res);
    const framer = transport.framer(splitUrl(req.url ?? '/').query);
    if (!isFramer(framer)) {
      if (context.counters) context.counters.refused.bad_input++;
      respond(res, framer, base);
      logAnswer(context.log, req, framer.status);
      subscriber.complete();
      return undefined;
    }
    const headers = mergeHeaders(base, policy.cors(req, transport.cors), transport.headers);
    headers['Content-Type'] = transport.contentType;
    const receiver = new ResponseReceiver(context.nextId(), key, transport, framer.wrap, context.responseLimit, res, headers);
    const start = () => {
      // A client gone before this response's turn (or while a relay looked for its session's
      // owner) has closed it already, and its `close` has fired: it is not attached.
      if (res.destroyed || req.socket.destroyed) {
        subscriber.complete();
        return;
      }
      // Asked right before the attach, so that nothing changes between the check and the session.
      const refused = refusal?.();
      if (refused) {
        respond(res, refused, mergeHeaders(headers, { Connection: 'close' }));
        logAnswer(context.log, req, refused.status);
        subscriber.complete();
        return;
      }
      // A stream's headers and prelude go out at once; a poll's wait for its one frame.
      if (transport.streaming) {
        res.writeHead(200, headers);
        if (framer.prelude) res.write(framer.prelude);
      }
      subscriber.next(grant ? { type: 'attach', key, receiver, request: req, grant } : { type: 'attach', key, receiver, request: req });
      receiver.listen(subscriber);
    };
    if (res.socket) {
      start();
      return receiver;
    }
    // Pipelined behind requests still unanswered on its keep-alive connection, a response has
    // no socket, and Node may have stopped reading that connection, so that neither the
    // client's leaving nor anything written would ever be seen. The session is not touched
    // until the response's turn comes; a client that goes away before ends nothing.
    const waiting = context.pipelining.waitingOn(req.socket);
    if (waiting === null) {
      subscriber.complete();
      return undefined;
    }
    const turn = () => {
      waiting.delete(gone);
      start();
    };
    const gone = () => {
      res.off('socket', turn);
      subscriber.complete();
    };
    res.once('socket', turn);
    waiting.add(gone);
    return () => {
      res.off('socket', turn);
      waiting.delete(gone);
      receiver.unsubscribe();
    };
  });
}

/** The receiving requests that wait for their turn behind others on their connection. */
export class Pipelining {
  readonly #waiting = new WeakMap<Duplex, Set<() => void>>();

  constructor(private readonly log: Log) {}

  /**
   * The receivers waiting for their turn on `socket`, told when it closes (its requests' own
   * `close` does not come once the socket has been handed to an `upgrade`). Null when the
   * connection already has `MAX_PIPELINED_RECEIVERS` waiting: it is destroyed then, since each
   * costs far more to hold than its few bytes cost to send, and no SockJS client pipelines.
   */
  waitingOn(socket: Duplex): Set<() => void> | null {
    let waiting = this.#waiting.get(socket);
    if (!waiting) {
      const created = new Set<() => void>();
      waiting = created;
      this.#waiting.set(socket, created);
      socket.once('close', () => {
        this.#waiting.delete(socket);
        for (const gone of [...created]) gone();
      });
    }
    if (waiting.size >= MAX_PIPELINED_RECEIVERS) {
      this.log('info', `a connection pipelined more than ${MAX_PIPELINED_RECEIVERS} receiving requests: dropped`);
      socket.destroy();
      return null;
    }
    return waiting;
  }
}

/**
 * One receiving HTTP response of a session (a poll or a stream): where its frames are written,
 * and the `detach` its client causes by dropping it. One object per response rather than a
 * handful of closures and operators, since a server holds one per waiting client.
 */
export class ResponseReceiver implements Receiver, Sink {
  readonly protocol: string;
  readonly framing = 'sockjs';
  readonly limit: number;
  readonly delayDisconnect = true;
  readonly pings = false;
  readonly sink: Sink = this;
  #events: Subscriber<SessionEvent> | null = null;
  /** A poll's headers, kept until its one frame goes with them; a stream sends its own at once. */
  readonly #headers: Headers | null;

  /** `headers`: this response's own (a poll's Content-Length is set on it). */
  constructor(
    readonly id: number,
    readonly key: SessionKey,
    transport: ReceivingTransport,
    readonly wrap: (frame: string) => string,
    responseLimit: number,
    private readonly res: ServerResponse,
    headers: Headers,
  ) {
    this.protocol = transport.protocol;
    this.limit = transport.streaming ? responseLimit : 1;
    this.#headers = transport.streaming ? null : headers;
  }

  write(chunk: string, taken?: () => void): void {
    const { res } = this;
    if (res.writableEnded || res.destroyed) {
      taken?.();
      return;
    }
    const bytes = encoded.of(chunk);
    // A poll carries one frame, so it is answered whole: one write with a Content-Length.
    const headers = this.#headers;
    if (!res.headersSent && headers) {
      // The headers are this response's own object, so the length is set on it, not on a copy.
      headers['Content-Length'] = String(Buffer.byteLength(bytes));
      res.writeHead(200, headers);
      res.end(bytes);
      this.#boundFlush();
      taken?.();
      return;
    }
    const flushed = onFlush(res, taken);
    res.write(bytes, flushed);
    if (!flushed) taken?.();
  }

  buffered(): number {
    return this.res.writableLength;
  }

  /** Ends the response; `abort` drops it at once, with whatever still waits for its client. */
  end(_why?: CloseReason, abort?: boolean): void {
    const { res } = this;
    if (abort) {
      res.destroy();
      return;
    }
    if (res.writableEnded) return;
    if (!res.headersSent) res.writeHead(200, this.#headers ?? {});
    res.end();
    this.#boundFlush();
  }

  /**
   * An ended response whose client does not read would keep its socket, and what waits in it,
   * for ever: one that has not reached the kernel at once gets `FLUSH_GRACE_MS` to drain. (One
   * that has is finished already, and Node's `keepAliveTimeout` closes the idle connection.)
   */
  #boundFlush(): void {
    if (!this.res.writableFinished) destroyAfter(this.res, FLUSH_GRACE_MS);
  }

  /** Tells `events` when the client drops the response before the server ended it. */
  listen(events: Subscriber<SessionEvent>): void {
    this.#events = events;
    // `on`, not `once`, which would wrap the listener in one more closure: it acts only once anyway.
    this.res.on('close', this.#closed);
  }

  readonly #closed = (): void => {
    const events = this.#events;
    if (!events) return;
    this.#events = null;
    if (!this.res.writableEnded) events.next({ type: 'detach', key: this.key, receiverId: this.id, why: CLOSE_REASONS.INTERRUPTED });
    events.complete();
  };

  /** The session table let go of this response: it is ended if it is not already (the endpoint closed). */
  unsubscribe(): void {
    this.#events = null;
    const { res } = this;
    res.off('close', this.#closed);
    // Nothing to answer once the client's connection is gone (a pipelined response has none of its own).
    if (res.writableEnded || res.destroyed || res.req.socket?.destroyed !== false) return;
    if (res.headersSent) res.end();
    else respond(res, HTTP_ERRORS.SHUTTING_DOWN, { Connection: 'close' });
  }
}
