/**
 * One prefix served on one HTTP server: its pipeline from HTTP events to session effects.
 *
 *   request / upgrade ──route──▶ static answer (greeting, info, iframe, 404, 405, preflight)
 *                          └───▶ session events ──▶ session table (grouped by key) ──▶ effects
 *
 * Everything that touches a response or a socket happens here or in the small adapters it calls.
 */
import { randomInt } from 'crypto';
import type { IncomingMessage, ServerResponse } from 'http';
import type { Duplex } from 'stream';
import { EMPTY, Observable, type SchedulerLike, Subject, type Subscriber, type Subscription } from 'rxjs';
import { closeConnection, Connection, deliverTo, whenReading } from './connection';
import {
  cacheForAYear,
  corsHeaders,
  eventsourceCorsHeaders,
  type Headers,
  jsessionidHeaders,
  mergeHeaders,
  NO_CACHE,
  preflightHeaders,
} from './http/headers';
import {
  greeting,
  iframe,
  type IframePage,
  iframeResponse,
  info,
  methodNotAllowed,
  notFound,
  preflight,
  type StaticResponse,
} from './http/pages';
import { destroyAfter, FLUSH_GRACE_MS, respond, respondOnSocket, setHeaders } from './http/respond';
import { faultText } from './errors';
import type { ResolvedOptions } from './options';
import { parsePayload } from './payload';
import { type Route, route, routeTable, type RouteTable, splitUrl } from './router';
import { onFlush, type Receiver, type Sink } from './session/receiver';
import { type SessionEvent, type SessionKey } from './session/reducer';
import { mergeEach } from './session/keyed';
import { type Performed, type SessionContext, sessionTable } from './session/session';
import { isFramer, mediaType, type ReceivingTransport, type SendingTransport } from './transports/transport';
import {
  createWebsocketServer,
    RAW_WEBSOCKET,
  refuseUpgrade,
  SOCKJS_WEBSOCKET,
  websocketEvents,
  type WebsocketKind,
} from './transports/websocket';
import { hixie76Events, isHixie76 } from './transports/hixie76';
import { CLOSE_REASONS, HTTP_ERRORS } from './errors';

/**
 * What an HTTP send whose answer waits for the application to read is counted as, against
 * `max_queue_size`: its request, its response and their socket, about 5.3 KB of heap measured.
 */
const HELD_ANSWER_COST = 8192;
/** Receiving requests one connection may have waiting behind others (HTTP pipelining). */
const MAX_PIPELINED_RECEIVERS = 8;

/** An HTTP event under the endpoint's prefix, with its route. */
export type HttpEvent =
  | { readonly type: 'request'; readonly req: IncomingMessage; readonly res: ServerResponse; readonly route: Route }
  | {
      readonly type: 'upgrade';
      readonly req: IncomingMessage;
      readonly socket: Duplex;
      readonly head: Buffer;
      readonly route: Route;
    };

export interface EndpointHooks {
  readonly connection: (connection: Connection) => void;
}

export class Endpoint {
  readonly options: ResolvedOptions;
  readonly #table: RouteTable;
  readonly #iframe: IframePage;
  readonly #scheduler: SchedulerLike;
  readonly #http$ = new Subject<HttpEvent>();
  readonly #wss: ReturnType<typeof createWebsocketServer>;
  readonly #subscription: Subscription;
  #receivers = 0;
  #websockets = 0;
  /** Set when the pipeline has failed: from then on every request is answered 503 here. */
  #stopped = false;
  #sessions = 0;
  /** Per connection, the receiving requests pipelined on it that wait for their turn. */
  readonly #pipelined = new WeakMap<Duplex, Set<() => void>>();
  /** Sessions with a connection, so that closing the endpoint can close each of them. */
  readonly #open = new Set<SessionContext<Connection>>();

  constructor(options: ResolvedOptions, scheduler: SchedulerLike, hooks: EndpointHooks) {
    this.options = options;
    this.#table = routeTable(options);
    this.#iframe = iframe(options.sockjs_url);
    this.#scheduler = scheduler;
    this.#wss = createWebsocketServer(options.max_message_size);
    const events$ = this.#http$.pipe(mergeEach((event) => this.#dispatch(event)));
    this.#subscription = sessionTable<Connection>(events$, {
      scheduler,
      config: { heartbeatDelay: options.heartbeat_delay, disconnectDelay: options.disconnect_delay },
      log: (severity, message) => this.#log(severity, message),
      count: (delta) => (this.#sessions += delta),
    }).subscribe({
      next: (performed) => this.#perform(performed, hooks),
      // Every step and effect is guarded, so this is a fault of the pipeline itself. Its
      // teardown has answered every pending request and dropped every socket; the endpoint
      // serves nothing more, and the process goes on.
      error: (error: unknown) => {
        this.#stopped = true;
        this.#fault(`sockjs-rx ${JSON.stringify(options.prefix)} stopped`, error);
      },
    });
  }

  /** Sessions alive in this endpoint's table. */
  get sessionCount(): number {
    return this.#sessions;
  }

  /** The open connections of this endpoint's sessions. */
  *connections(): Iterable<Connection> {
    for (const session of this.#open) if (session.connection) yield session.connection;
  }

  /** Routes a request; false when it lies outside the prefix and belongs to someone else. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const target = this.#route(req);
    if (target.kind === 'outside') return false;
    if (this.#stopped) {
      respond(res, HTTP_ERRORS.UNAVAILABLE, { Connection: 'close' });
      return true;
    }
    try {
      this.#http$.next({ type: 'request', req, res, route: target });
    } catch (error) {
      // The last guard between the pipeline and Node's 'request' event.
      this.#fault(`${req.method} ${req.url}`, error);
      if (!res.headersSent) respond(res, HTTP_ERRORS.INTERNAL, { Connection: 'close' });
      else res.destroy();
    }
    return true;
  }

  /** Routes an `upgrade` event; false when it lies outside the prefix. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const target = this.#route(req);
    if (target.kind === 'outside') return false;
    // Node leaves the errors of an upgraded socket to its new owner: a client that resets the
    // connection must not take the process down, whatever becomes of the socket.
    socket.on('error', this.#socketError);
    if (this.#stopped) {
      respondOnSocket(socket, HTTP_ERRORS.UNAVAILABLE);
      return true;
    }
    try {
      this.#http$.next({ type: 'upgrade', req, socket, head, route: target });
    } catch (error) {
      // The last guard between the pipeline and Node's 'upgrade' event.
      this.#fault(`${req.method} ${req.url}`, error);
      socket.destroy();
    }
    return true;
  }

  /** Logs a fault that was caught, with its stack. */
  #fault(what: string, error: unknown): void {
    this.#log('error', `${what}: ${faultText(error)}`);
  }

  /** Stops the pipeline: every open stream and websocket is dropped. */
  close(): void {
    // Each session is closed as if by its application: pending polls and open streams get the
    // close frame, websockets a close frame, and every connection its close event.
    for (const session of [...this.#open]) session.post({ type: 'close', key: session.key, why: CLOSE_REASONS.SHUTTING_DOWN });
    this.#http$.complete();
    this.#subscription.unsubscribe();
  }

  #route(req: IncomingMessage): Route {
    return route(this.#table, req.method ?? 'GET', splitUrl(req.url ?? '/').pathname);
  }

  /** Logs with the application's `log`, which is called from socket listeners too: a throw there is reported, not raised. */
  #log(severity: string, message: string): void {
    try {
      this.options.log(severity, message);
    } catch (error) {
      console.error(`sockjs-rx: the log function threw on a ${severity} line: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  readonly #socketError = (error: Error): void => this.#log('debug', `upgraded socket: ${error.message}`);

  /** `#log` as a function, one per endpoint, for what outlives a request (a websocket). */
  readonly #logger = (severity: string, message: string): void => this.#log(severity, message);

  #dispatch(event: HttpEvent): Observable<SessionEvent> {
    try {
      return event.type === 'request' ? this.#request(event.req, event.res, event.route) : this.#upgrade(event);
    } catch (error) {
      // A fault in one request (a throwing jsessionid function, say) is answered with 500 and
      // logged; it must not stop the pipeline that serves every other request.
      this.#fault(`${event.req.method} ${event.req.url}`, error);
      const response = HTTP_ERRORS.INTERNAL;
      if (event.type === 'upgrade') respondOnSocket(event.socket, response);
      else if (event.res.headersSent) event.res.destroy();
      else respond(event.res, response);
      return EMPTY;
    }
  }

  /** Whether the `origins` option refuses this request's Origin; requests without one pass. */
  #refusedOrigin(req: IncomingMessage): boolean {
    const { origins } = this.options;
    const origin = req.headers.origin;
    return origins !== null && origin !== undefined && !origins(origin, req);
  }

  #request(req: IncomingMessage, res: ServerResponse, target: Route): Observable<SessionEvent> {
    const now = this.#scheduler.now();
    if (
      (target.kind === 'info' || target.kind === 'preflight' || target.kind === 'receive' || target.kind === 'send' || target.kind === 'websocket') &&
      this.#refusedOrigin(req)
    ) {
      return this.#answer(req, res, HTTP_ERRORS.ORIGIN_REFUSED);
    }
    switch (target.kind) {
      case 'greeting':
        return this.#answer(req, res, greeting());
      case 'iframe':
        // The iframe page exists for cross-domain transports only, which disable_cors forbids.
        if (this.options.disable_cors) return this.#answer(req, res, notFound(false, now));
        return this.#answer(req, res, iframeResponse(this.#iframe, req.headers['if-none-match'], now));
      case 'info':
        setHeaders(res, this.#cors(req));
        return this.#answer(
          req,
          res,
          info({
            websocket: this.options.transports.has('websocket'),
            cookie_needed: this.options.jsessionid !== false,
            ...(this.options.disable_cors ? {} : { origins: ['*:*'] }),
            entropy: randomInt(0x1_0000_0000),
          }),
        );
      case 'preflight':
        this.#cookie(req, res);
        // With CORS disabled the preflight still answers, but grants nothing: no Access-Control-*.
        setHeaders(
          res,
          mergeHeaders(this.#cors(req), cacheForAYear(now), this.options.disable_cors ? undefined : preflightHeaders(target.methods)),
        );
        return this.#answer(req, res, preflight({}));
      case 'not-found':
        return this.#answer(req, res, notFound(target.cacheable, now));
      case 'method-not-allowed':
        return this.#answer(req, res, methodNotAllowed(target.allow));
      case 'raw-websocket':
        return this.#answer(req, res, HTTP_ERRORS.NOT_A_WEBSOCKET);
      case 'websocket':
        return this.#answer(req, res, HTTP_ERRORS.NOT_A_WEBSOCKET);
      case 'receive':
        return this.#receive(req, res, target.transport, target.sessionId, this.#sessionHeaders(req, res));
      case 'send':
        return this.#send(req, res, target.transport, target.sessionId, this.#sessionHeaders(req, res));
      case 'outside':
        return EMPTY;
    }
  }

  #answer(req: IncomingMessage, res: ServerResponse, response: StaticResponse, headers?: Headers): Observable<never> {
    respond(res, response, headers);
    this.#log('info', `${req.method} ${req.url} ${response.status}`);
    return EMPTY;
  }

  #cors(req: IncomingMessage): Headers {
    return this.options.disable_cors ? {} : corsHeaders(req.headers);
  }

  #cookie(req: IncomingMessage, res: ServerResponse): void {
    const { jsessionid } = this.options;
    if (typeof jsessionid === 'function') jsessionid(req, res);
    else if (jsessionid) setHeaders(res, jsessionidHeaders(req.headers));
  }

  /**
   * The headers of every session response: never cached, and the JSESSIONID cookie when asked
   * for. They are written at once with the status line rather than set one by one.
   */
  #sessionHeaders(req: IncomingMessage, res: ServerResponse): Headers {
    const { jsessionid } = this.options;
    if (typeof jsessionid === 'function') jsessionid(req, res);
    else if (jsessionid) return mergeHeaders(NO_CACHE, jsessionidHeaders(req.headers));
    return NO_CACHE;
  }

  #receive(req: IncomingMessage, res: ServerResponse, transport: ReceivingTransport, key: string, base: Headers): Observable<SessionEvent> {
    const framer = transport.framer(splitUrl(req.url ?? '/').query);
    if (!isFramer(framer)) return this.#answer(req, res, framer, base);
    let cors: Headers | undefined;
    if (transport.cors === 'xhr') cors = this.#cors(req);
    else if (transport.cors === 'eventsource' && !this.options.disable_cors) cors = eventsourceCorsHeaders(req.headers);
    const headers = mergeHeaders(base, cors, transport.headers);
    headers['Content-Type'] = transport.contentType;
    const receiver = new ResponseReceiver(++this.#receivers, key, transport, framer.wrap, this.options.response_limit, res, headers);
    return new Observable<SessionEvent>((subscriber) => {
      const start = () => {
        // A stream's headers and prelude go out at once; a poll's wait for its one frame.
        if (transport.streaming) {
          res.writeHead(200, headers);
          if (framer.prelude) res.write(framer.prelude);
        }
        subscriber.next({ type: 'attach', key, receiver, request: req });
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
      const waiting = this.#waitingOn(req.socket);
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

  /**
   * The receivers waiting for their turn on `socket`, told when it closes (its requests' own
   * `close` does not come once the socket has been handed to an `upgrade`). Null when the
   * connection already has `MAX_PIPELINED_RECEIVERS` waiting: it is destroyed then, since each
   * costs far more to hold than its few bytes cost to send, and no SockJS client pipelines.
   */
  #waitingOn(socket: Duplex): Set<() => void> | null {
    let waiting = this.#pipelined.get(socket);
    if (!waiting) {
      const created = new Set<() => void>();
      waiting = created;
      this.#pipelined.set(socket, created);
      socket.once('close', () => {
        this.#pipelined.delete(socket);
        for (const gone of [...created]) gone();
      });
    }
    if (waiting.size >= MAX_PIPELINED_RECEIVERS) {
      this.#log('info', `a connection pipelined more than ${MAX_PIPELINED_RECEIVERS} receiving requests: dropped`);
      socket.destroy();
      return null;
    }
    return waiting;
  }

  #send(req: IncomingMessage, res: ServerResponse, transport: SendingTransport, key: string, base: Headers): Observable<SessionEvent> {
    const headers = transport.cors === 'xhr' ? mergeHeaders(base, this.#cors(req)) : base;
    const read = (body: Body): SessionEvent | undefined => {
      if (body === null) {
        // The rest of the body is not read: the connection closes after the answer.
        this.#answer(req, res, HTTP_ERRORS.PAYLOAD_TOO_LARGE, mergeHeaders(headers, { Connection: 'close' }));
        return undefined;
      }
      const payload = parsePayload(transport.payload(mediaType(req.headers['content-type']), body), this.options.max_payload_messages);
      if (!payload.ok) {
        this.#answer(req, res, HTTP_ERRORS[payload.error], headers);
        return undefined;
      }
      const reply = {
        accept: () => respond(res, transport.accepted, headers),
        unknownSession: () => respond(res, notFound(false, this.#scheduler.now()), headers),
      };
      return { type: 'incoming', key, messages: payload.messages, reply };
    };
    // Run from the request's listeners, where a throw would reach the process: a fault is
    // answered with 500 and logged.
    const guarded = (body: Body): SessionEvent | undefined => {
      try {
        return read(body);
      } catch (error) {
        this.#fault(`${req.method} ${req.url}`, error);
        respond(res, HTTP_ERRORS.INTERNAL, mergeHeaders(headers, { Connection: 'close' }));
        return undefined;
      }
    };
    return readBody(req, this.options.max_message_size, guarded, () =>
      respond(res, HTTP_ERRORS.SHUTTING_DOWN, mergeHeaders(headers, { Connection: 'close' })),
    );
  }

  #upgrade(event: Extract<HttpEvent, { type: 'upgrade' }>): Observable<SessionEvent> {
    const { req, socket, head, route: target } = event;
    const refuse = (response: StaticResponse): Observable<never> => {
      respondOnSocket(socket, response);
      this.#log('info', `${req.method} ${req.url} ${response.status}`);
      return EMPTY;
    };
    let kind: WebsocketKind;
    if (target.kind === 'raw-websocket') kind = RAW_WEBSOCKET;
    else if (target.kind === 'websocket') kind = SOCKJS_WEBSOCKET;
    else if (target.kind === 'not-found') return refuse(notFound(target.cacheable, this.#scheduler.now()));
    else if (target.kind === 'method-not-allowed') return refuse(methodNotAllowed(target.allow));
    else return refuse(HTTP_ERRORS.UPGRADE_NOT_WEBSOCKET);
    if (this.#refusedOrigin(req)) return refuse(HTTP_ERRORS.ORIGIN_REFUSED);
    const refusal = refuseUpgrade(req, kind);
    if (refusal) return refuse(refusal);
    const key = ++this.#websockets;
    const upgrade = {
      req,
      socket,
      head,
      key,
      receiverId: ++this.#receivers,
      kind,
      log: this.#logger,
      maxMessages: this.options.max_payload_messages,
    };
    // Without the option a hixie-76 request goes to `ws`, which answers it 400 and closes.
    if (kind === SOCKJS_WEBSOCKET && this.options.hixie76 && isHixie76(req)) return hixie76Events(upgrade, this.options.max_message_size);
    return websocketEvents(this.#wss, upgrade);
  }

  /**
   * Performs one effect under the guard of every call into the application (its `connection`,
   * `data` and `close` listeners, its `jsessionid` function): should one throw, the fault is
   * logged and only this session is closed, with 1011; the pipeline and every other session go on.
   */
  #perform(performed: Performed<Connection>, hooks: EndpointHooks): void {
    try {
      this.#effect(performed, hooks);
    } catch (error) {
      const { session } = performed;
      this.#fault(`session ${String(session.key)}: ${performed.effect.type}`, error);
      session.post({ type: 'close', key: session.key, why: CLOSE_REASONS.INTERNAL_ERROR });
    }
  }

  #effect({ session, effect }: Performed<Connection>, hooks: EndpointHooks): void {
    switch (effect.type) {
      case 'write': {
        const { acks } = effect;
        // One acknowledgement (a write of the application's) goes to the socket as it is.
        const taken = acks.length === 0 ? undefined : acks.length === 1 ? acks[0] : () => acks.forEach((ack) => ack());
        effect.receiver.sink.write(effect.chunk, taken);
        break;
      }
      case 'finish':
        effect.receiver.sink.end(effect.why, effect.abort);
        break;
      case 'ping':
        effect.receiver.sink.ping?.();
        break;
      case 'open': {
        const connection = Connection.open({
          key: session.key,
          prefix: this.options.prefix,
          protocol: effect.receiver.protocol,
          request: effect.request as IncomingMessage,
          post: session.post,
          maxQueueSize: this.options.max_queue_size,
          log: this.#logger,
        });
        session.connection = connection;
        this.#open.add(session);
        this.#log('debug', `session ${String(session.key)} opened over ${effect.receiver.protocol}`);
        hooks.connection(connection);
        break;
      }
      case 'deliver': {
        const { connection } = session;
        if (!connection || deliverTo(connection, effect.messages)) break;
        // The application has stopped reading: the websocket is not read either until it does.
        const { source } = effect;
        if (!source) break;
        source.pause();
        whenReading(connection, () => source.resume(), 0);
        break;
      }
      case 'dropped':
        this.#log('info', `session ${String(session.key)} is closing: ${effect.count} message(s) from its client dropped`);
        break;
      case 'reply': {
        const { reply } = effect;
        // An HTTP send is answered once the application reads again, so the client waits to send more.
        if (effect.accepted && session.connection) whenReading(session.connection, () => reply.accept(), HELD_ANSWER_COST);
        else if (effect.accepted) reply.accept();
        else reply.unknownSession();
        break;
      }
      case 'ack':
        effect.ack();
        break;
      case 'closed':
        if (session.connection) closeConnection(session.connection, effect.why);
        break;
      case 'end':
        // Every path to the end has told the connection already; this only guards against a gap.
        if (session.connection) closeConnection(session.connection, CLOSE_REASONS.INTERRUPTED);
        session.connection = null;
        this.#open.delete(session);
        break;
    }
  }
}

/**
 * One receiving HTTP response of a session (a poll or a stream): where its frames are written,
 * and the `detach` its client causes by dropping it. One object per response rather than a
 * handful of closures and operators, since a server holds one per waiting client.
 */
class ResponseReceiver implements Receiver, Sink {
  readonly protocol: string;
  readonly framing = 'sockjs';
  readonly limit: number;
  readonly delayDisconnect = true;
  readonly pings = false;
  readonly sink: Sink = this;
  #events: Subscriber<SessionEvent> | null = null;

  /** `headers`: those of a poll, whose head waits for its one frame; a stream's are sent already. */
  constructor(
    readonly id: number,
    readonly key: SessionKey,
    transport: ReceivingTransport,
    readonly wrap: (frame: string) => string,
    responseLimit: number,
    private readonly res: ServerResponse,
    /** This response's own: a poll's Content-Length is set on it. */
    private readonly headers: Headers,
  ) {
    this.protocol = transport.protocol;
    this.limit = transport.streaming ? responseLimit : 1;
  }

  write(chunk: string, taken?: () => void): void {
    const { res } = this;
    if (res.writableEnded || res.destroyed) {
      taken?.();
      return;
    }
    // A poll carries one frame, so it is answered whole: one write with a Content-Length.
    if (!res.headersSent && this.limit === 1) {
      // The headers are this response's own object, so the length is set on it, not on a copy.
      this.headers['Content-Length'] = String(Buffer.byteLength(chunk));
      res.writeHead(200, this.headers);
      res.end(chunk);
      this.#boundFlush();
      taken?.();
      return;
    }
    const flushed = onFlush(res, taken);
    res.write(chunk, flushed);
    if (!flushed) taken?.();
  }

  end(): void {
    const { res } = this;
    if (res.writableEnded) return;
    if (!res.headersSent) res.writeHead(200, this.headers);
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
    this.res.once('close', this.#closed);
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

/** A request body: its text, or `null` when it is larger than the limit. */
type Body = string | null;

/**
 * The whole body of a request as UTF-8 text, handed to `then`, whose event (if any) is emitted:
 * `null` as soon as the body passes `limit` bytes (counted as it streams in, never buffered whole
 * first); nothing when the client aborts it. Unsubscribed before the body is whole (the endpoint
 * closes), `abandoned` answers the request.
 */
function readBody<T>(req: IncomingMessage, limit: number, then: (body: Body) => T | undefined, abandoned: () => void): Observable<T> {
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
