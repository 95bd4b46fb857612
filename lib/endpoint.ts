/**
 * One prefix served on one HTTP server: the wiring from HTTP events to session effects.
 *
 *   request / upgrade ──route──▶ answer (greeting, info, iframe, preflight, errors)   http/answers.ts
 *                         ├────▶ receiving request ──attach/detach──┐                 http/receiving.ts
 *                         ├────▶ send ──incoming──────────────────┤                   http/sending.ts
 *                         └────▶ websocket ──attach/incoming──────┤                   transports/websocket.ts
 *                                                                  ▼
 *                       session table (one reducer per session key) ──▶ effects ──▶ performed here
 *
 * What is written where lives in those files; this one routes each event to them, subscribes
 * what they return, and performs the session table's effects.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { Duplex } from 'stream';
import { defer, EMPTY, merge, mergeMap, Observable, of, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import { Admission } from './admission';
import { authorizing, type AuthorizationContext, credentialOf, type Grant, sameCredential } from './authorization';
import { CLOSED, Connection, type ConnectionControl } from './connection';
import { RateLimiter } from './flood';
import { type CloseReason, CLOSE_REASONS, faultText, HTTP_ERRORS } from './errors';
import { type AnswerContext, checksOrigin, isWebsocketKind, staticAnswer, type StaticRoute, upgradeAnswer } from './http/answers';
import { type Headers, mergeHeaders, NO_CACHE } from './http/headers';
import type { StaticResponse } from './http/pages';
import { iframe } from './http/pages';
import { HttpPolicy } from './http/policy';
import { Pipelining, receiving, type ReceivingContext } from './http/receiving';
import { answered, answeredOnSocket, type Log, logAnswer, respond, respondOnSocket } from './http/respond';
import { sending, type SendingContext } from './http/sending';
import type { PrefixCounters, RefusalCause } from './metrics';
import type { ResolvedOptions } from './options';
import { Relay, type RelayAnswers, type RelayBus } from './relay';
import { type Route, route, routeTable, type RouteTable, splitUrl } from './router';
import { mergeEach } from './session/keyed';
import type { Reply, SessionEvent, SessionKey, Source } from './session/reducer';
import { type Performed, type SessionContext, sessionTable } from './session/session';
import { hixie76Events, isHixie76 } from './transports/hixie76';
import { createWebsocketServer, SOCKJS_WEBSOCKET, websocketEvents } from './transports/websocket';

/**
 * What an HTTP send whose answer waits for the application to read is counted as, against
 * `max_queue_size`: its request, its response and their socket, about 5.3 KB of heap measured.
 */
const HELD_ANSWER_COST = 8192;

const NO_MESSAGES: readonly string[] = Object.freeze([]);

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

/** What an endpoint shares with the server and its other endpoints. */
export interface EndpointShared {
  /** The bus to relay sessions over (the `relay` option). */
  readonly relayBus?: RelayBus | null;
  /** Where this endpoint counts; absent with `metrics: false`. */
  readonly counters?: PrefixCounters | null;
  /** The server's session caps, when it has any. */
  readonly admission?: Admission | null;
}

type ReceiveRoute = Extract<Route, { kind: 'receive' }>;

type Session = SessionContext<ConnectionControl>;

export class Endpoint {
  readonly options: ResolvedOptions;
  readonly #table: RouteTable;
  readonly #scheduler: SchedulerLike;
  readonly #answers: AnswerContext;
  readonly #receiving: ReceivingContext;
  readonly #sending: SendingContext;
  readonly #http$ = new Subject<HttpEvent>();
  readonly #wss: ReturnType<typeof createWebsocketServer>;
  readonly #subscription: Subscription;
  #receivers = 0;
  #websockets = 0;
  /** Set when the pipeline has failed: from then on every request is answered 503 here. */
  #stopped = false;
  #sessions = 0;
  /**
   * The sessions that have opened and not ended, by key: `connections()` (so `broadcast()`) and
   * `close()` go over them, and a request for one of them opens nothing.
   */
  readonly #live = new Map<SessionKey, Session>();
  /** With the `relay` option: serves the requests of sessions owned by other processes, and theirs of ours. */
  readonly #relay: Relay | null;

  /** What this endpoint counts; null with `metrics: false`. */
  readonly #counters: PrefixCounters | null;
  /** With `authorize`: how a request that would open a session is asked about. */
  readonly #authorization: AuthorizationContext | null;
  readonly #admission: Admission | null;

  constructor(options: ResolvedOptions, scheduler: SchedulerLike, hooks: EndpointHooks, shared: EndpointShared = {}) {
    this.options = options;
    this.#counters = shared.counters ?? null;
    this.#admission = shared.admission ?? null;
    const relayBus = shared.relayBus ?? null;
    this.#authorization = options.authorize
      ? { authorize: options.authorize, timeout: options.authorize_timeout, scheduler, prefix: options.prefix, log: this.#logger }
      : null;
    this.#table = routeTable(options);
    this.#scheduler = scheduler;
    const policy = new HttpPolicy(options);
    this.#answers = { options, policy, iframe: iframe(options.sockjs_url) };
    this.#receiving = {
      policy,
      responseLimit: options.response_limit,
      nextId: () => ++this.#receivers,
      pipelining: new Pipelining(this.#logger),
      log: this.#logger,
      counters: this.#counters,
    };
    this.#sending = {
      policy,
      maxMessageSize: options.max_message_size,
      maxMessages: options.max_payload_messages,
      now: () => scheduler.now(),
      log: this.#logger,
      fault: (what, error) => this.#fault(what, error),
      counters: this.#counters,
    };
    this.#wss = createWebsocketServer(options.max_message_size);
    this.#relay = relayBus
      ? new Relay(relayBus, options.prefix, {
          responseLimit: options.response_limit,
          maxQueueSize: options.max_queue_size,
          heartbeatDelay: options.heartbeat_delay,
          nextId: () => ++this.#receivers,
          log: this.#logger,
          authorizes: this.#authorization !== null,
          admits: (session, credential) => this.#fits(session, credential),
          live: (session) => this.#live.has(session),
          refused: () => this.#refused('authorization'),
        })
      : null;
    const http$ = this.#http$.pipe(
      mergeEach(
        (event) => this.#dispatch(event),
        (error, event) => this.#failed(event, error),
      ),
    );
    const events$ = this.#relay ? merge(http$, this.#relay.events$) : http$;
    this.#subscription = sessionTable<ConnectionControl>(events$, {
      scheduler,
      config: { heartbeatDelay: options.heartbeat_delay, disconnectDelay: options.disconnect_delay },
      log: this.#logger,
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

  /** Bytes written to this endpoint's open sessions that their clients have not taken yet. */
  queuedBytes(): number {
    let queued = 0;
    for (const session of this.#live.values()) queued += session.backlog() + (session.handle?.pending() ?? 0);
    return queued;
  }

  /** The open connections of this endpoint's sessions. */
  *connections(): Iterable<Connection> {
    for (const session of this.#live.values()) if (session.handle) yield session.handle.connection;
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

  /** Stops the pipeline: every open stream and websocket is dropped. */
  close(): void {
    // Each session is closed as if by its application: pending polls and open streams get the
    // close frame, websockets a close frame, and every connection its close event.
    for (const session of [...this.#live.values()]) session.post({ type: 'close', key: session.key, why: CLOSE_REASONS.SHUTTING_DOWN });
    // Relayed responses get the same close frame, before their requests are torn down below.
    this.#relay?.close();
    this.#http$.complete();
    this.#subscription.unsubscribe();
    // The sessions torn down with the table never reach their end: what they count goes now.
    for (const session of [...this.#live.values()]) this.#ended(session);
  }

  #route(req: IncomingMessage): Route {
    return route(this.#table, req.method ?? 'GET', splitUrl(req.url ?? '/').pathname);
  }

  /** Logs with the application's `log`, which is called from socket listeners too: a throw there is reported, not raised. */
  readonly #logger: Log = (severity, message) => {
    try {
      this.options.log(severity, message);
    } catch (error) {
      console.error(`sockjs-rx: the log function threw on a ${severity} line: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  /** Logs a fault that was caught, with its stack. */
  #fault(what: string, error: unknown): void {
    this.#logger('error', `${what}: ${faultText(error)}`);
  }

  readonly #socketError = (error: Error): void => this.#logger('debug', `upgraded socket: ${error.message}`);

  /** The session events of one HTTP event; its I/O happens when they are subscribed. */
  #dispatch(event: HttpEvent): Observable<SessionEvent> {
    return event.type === 'request' ? this.#request(event.req, event.res, event.route) : this.#upgrade(event);
  }

  /**
   * A fault in serving one event (a throwing jsessionid function, say), from `#dispatch` or from
   * what it returned: answered with 500 and logged, while the pipeline goes on serving every
   * other request.
   */
  #failed(event: HttpEvent, error: unknown): void {
    this.#fault(`${event.req.method} ${event.req.url}`, error);
    if (event.type === 'upgrade') respondOnSocket(event.socket, HTTP_ERRORS.INTERNAL);
    else if (event.res.headersSent) event.res.destroy();
    else respond(event.res, HTTP_ERRORS.INTERNAL);
  }

  #request(req: IncomingMessage, res: ServerResponse, target: Route): Observable<SessionEvent> {
    if (checksOrigin(target) && this.#answers.policy.refusesOrigin(req)) {
      this.#refused('origin');
      return answered(req, res, HTTP_ERRORS.ORIGIN_REFUSED, undefined, this.#logger);
    }
    switch (target.kind) {
      case 'outside':
        return EMPTY;
      case 'receive': {
        const relay = this.#relay;
        // Its digest, once: checked here, again at its turn, or by the owner it is relayed to.
        const credential = this.#authorization ? credentialOf(req) : undefined;
        const here = (opening: boolean) => this.#receiveHere(req, res, target, opening, credential);
        // A session claimed here that has not opened yet goes through the relay, which keeps its
        // claim while the request is served.
        if (!relay || (relay.owns(target.sessionId) && this.#live.has(target.sessionId))) return defer(() => here(!this.#live.has(target.sessionId)));
        return relay.receive(target.sessionId, here, this.#relayAnswers(req, res, target), credential);
      }
      case 'send': {
        const { sessionId } = target;
        const credential = this.#authorization ? credentialOf(req) : undefined;
        if (!this.#fits(sessionId, credential)) return this.#refuse(req, res, HTTP_ERRORS.NOT_AUTHORIZED, 'authorization', target.transport.cors === 'xhr');
        const refusal = this.#authorization ? () => this.#credentialRefusal(sessionId, credential) : undefined;
        const events$ = sending(req, res, target.transport, sessionId, this.#sending, refusal);
        const relay = this.#relay;
        if (!relay || relay.owns(sessionId)) return events$;
        const answers = this.#relayAnswers(req, res, target);
        return events$.pipe(mergeMap((event) => (event.type === 'incoming' ? relay.send(sessionId, event, answers, credential) : of(event))));
      }
      case 'preflight':
        // A jsessionid function may write to the response: it is called when subscribed too.
        return defer(() => this.#answer(req, res, target, this.#answers.policy.cookie(req, res)));
      default:
        return this.#answer(req, res, target);
    }
  }

  /**
   * A receiving request served here: for a session here (its credentials checked), for one
   * owned elsewhere (`opening` false with `relay`: its owner checks them), or for one it opens,
   * once the caps and `authorize` allow.
   */
  #receiveHere(req: IncomingMessage, res: ServerResponse, target: ReceiveRoute, opening: boolean, credential: string | undefined): Observable<SessionEvent> {
    const { sessionId, transport } = target;
    const session = this.#live.get(sessionId);
    if (!this.#fits(sessionId, credential)) return this.#refuse(req, res, HTTP_ERRORS.NOT_AUTHORIZED, 'authorization');
    // Relayed to the session's owner, which checks it.
    if (!session && !opening) return receiving(req, res, transport, sessionId, this.#receiving);
    const address = this.#admission?.addressOf(req) ?? '';
    // Asked again when the response's turn comes (after `authorize`, or behind pipelined
    // requests), right before it attaches: see `#turnRefusal`.
    const turn = (grant: Grant | undefined) => () => this.#turnRefusal(sessionId, req, credential, grant !== undefined || !this.#authorization, address);
    if (session) return receiving(req, res, transport, sessionId, this.#receiving, undefined, turn(undefined));
    return this.#opening(
      req,
      address,
      transport.protocol,
      (grant) => receiving(req, res, transport, sessionId, this.#receiving, grant, turn(grant)),
      (response, cause) => this.#refuse(req, res, response, cause),
      () => this.#live.has(sessionId),
    );
  }

  /**
   * A request that would open a session: refused over a cap, else asked about (`authorize`),
   * then opened with what that granted. The caps are checked again once `authorize` has
   * answered, since sessions may have opened meanwhile; `exists` says whether the session has
   * opened meanwhile, which opens nothing new.
   */
  #opening(
    req: IncomingMessage,
    address: string,
    transport: string,
    open: (grant: Grant | undefined) => Observable<SessionEvent>,
    refuse: (response: StaticResponse, cause: RefusalCause | 'none') => Observable<SessionEvent>,
    exists: () => boolean = () => false,
  ): Observable<SessionEvent> {
    const admission = this.#admission;
    if (admission && !admission.admits(address)) return refuse(HTTP_ERRORS.TOO_MANY_SESSIONS, 'cap');
    const authorization = this.#authorization;
    if (!authorization) return open(undefined);
    return new Observable<SessionEvent>((subscriber) => {
      let answered = false;
      const subscription = authorizing(req, transport, authorization)
        .pipe(
          mergeMap((verdict) => {
            answered = true;
            if ('refused' in verdict) return refuse(verdict.refused, 'authorization');
            if (admission && !exists() && !admission.admits(address)) return refuse(HTTP_ERRORS.TOO_MANY_SESSIONS, 'cap');
            return open(verdict.granted);
          }),
        )
        .subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        // Torn down (the endpoint closes) while `authorize` decided: the request is answered here.
        if (answered) return;
        try {
          refuse(HTTP_ERRORS.SHUTTING_DOWN, 'none').subscribe();
        } catch (error) {
          this.#fault(`${req.method} ${req.url}`, error);
        }
      };
    });
  }

  /**
   * Whether a request with the credential digest `credential` may use the session `sessionId`:
   * the session is not here, was opened without `authorize`, or with the same credentials.
   */
  #fits(sessionId: string, credential: string | undefined): boolean {
    const expected = this.#live.get(sessionId)?.handle?.credential;
    return expected === undefined || (credential !== undefined && sameCredential(expected, credential));
  }

  /**
   * The answer to a receiving request whose turn has come, if it may not attach now (counted);
   * null when it may. Since it was first checked, the session may have opened (with other
   * credentials), ended (and the request would open it again: only with a grant, `mayOpen`,
   * within the caps, and with `relay` under a claim this process still holds).
   */
  #turnRefusal(sessionId: string, req: IncomingMessage, credential: string | undefined, mayOpen: boolean, address: string): StaticResponse | null {
    if (this.#live.has(sessionId)) return this.#credentialRefusal(sessionId, credential);
    if (!mayOpen) {
      this.#refused('authorization');
      return HTTP_ERRORS.NOT_AUTHORIZED;
    }
    if (this.#relay && !this.#relay.owns(sessionId)) {
      this.#logger('info', `${req.method} ${req.url}: the claim of session ${JSON.stringify(sessionId)} went while the request waited`);
      return HTTP_ERRORS.RELAY_UNAVAILABLE;
    }
    return this.#capRefusal(address);
  }

  /** The answer to a session of `address` that would open over a cap (counted); null when it may open. */
  #capRefusal(address: string): StaticResponse | null {
    const admission = this.#admission;
    if (!admission || admission.admits(address)) return null;
    this.#refused('cap');
    return HTTP_ERRORS.TOO_MANY_SESSIONS;
  }

  /**
   * The answer to a request with the credential digest `credential` if the session `sessionId`
   * is here and was opened with other credentials (counted); null when the request may go on.
   */
  #credentialRefusal(sessionId: string, credential: string | undefined): StaticResponse | null {
    if (this.#fits(sessionId, credential)) return null;
    this.#refused('authorization');
    return HTTP_ERRORS.NOT_AUTHORIZED;
  }

  /**
   * Refuses a request, counted under `cause`: `response` with the session responses' headers,
   * and CORS so that a page's script can read why (`cors` false: a transport that has none).
   */
  #refuse(req: IncomingMessage, res: ServerResponse, response: StaticResponse, cause: RefusalCause | 'none', cors = true): Observable<never> {
    this.#refused(cause);
    const { policy } = this.#answers;
    return answered(req, res, response, mergeHeaders(NO_CACHE, cors ? policy.cors(req) : undefined, { Connection: 'close' }), this.#logger);
  }

  #refused(cause: RefusalCause | 'none'): void {
    if (this.#counters && cause !== 'none') this.#counters.refused[cause]++;
  }

  /** How a request for a session owned elsewhere is answered when the relay cannot serve it. */
  #relayAnswers(req: IncomingMessage, res: ServerResponse, target: Route): RelayAnswers {
    return {
      unavailable: () => {
        respond(res, HTTP_ERRORS.RELAY_UNAVAILABLE, this.#answers.policy.sessionHeaders(req, res));
        logAnswer(this.#logger, req, HTTP_ERRORS.RELAY_UNAVAILABLE.status);
      },
      failed: (error) => this.#failed({ type: 'request', req, res, route: target }, error),
      abandoned: () => respond(res, HTTP_ERRORS.SHUTTING_DOWN, { Connection: 'close' }),
    };
  }

  #answer(req: IncomingMessage, res: ServerResponse, target: StaticRoute, cookie?: Headers): Observable<never> {
    const { response, headers } = staticAnswer(target, req, this.#answers, this.#scheduler.now(), cookie);
    return answered(req, res, response, headers, this.#logger);
  }

  #upgrade({ req, socket, head, route: target }: Extract<HttpEvent, { type: 'upgrade' }>): Observable<SessionEvent> {
    const kind = upgradeAnswer(target, req, this.#answers.policy, this.#scheduler.now());
    if (!isWebsocketKind(kind)) {
      if (kind === HTTP_ERRORS.ORIGIN_REFUSED) this.#refused('origin');
      else if (kind.status === 400) this.#refused('bad_input');
      return answeredOnSocket(req, socket, kind, this.#logger);
    }
    const open = (grant: Grant | undefined) => {
      const upgrade = {
        req,
        socket,
        head,
        key: ++this.#websockets,
        receiverId: ++this.#receivers,
        kind,
        log: this.#logger,
        maxMessages: this.options.max_payload_messages,
        grant,
        counters: this.#counters,
        refusal: () => this.#capRefusal(address),
      };
      // Without the option a hixie-76 request goes to `ws`, which answers it 400 and closes.
      if (kind === SOCKJS_WEBSOCKET && this.options.hixie76 && isHixie76(req)) return hixie76Events(upgrade, this.options.max_message_size);
      return websocketEvents(this.#wss, upgrade);
    };
    const address = this.#admission?.addressOf(req) ?? '';
    return this.#opening(req, address, kind.protocol, open, (response, cause) => {
      this.#refused(cause);
      return answeredOnSocket(req, socket, response, this.#logger);
    });
  }

  /**
   * Performs one effect under the guard of every call into the application (its `connection`,
   * `data` and `close` listeners, its `jsessionid` function): should one throw, the fault is
   * logged and only this session is closed, with 1011; the pipeline and every other session go on.
   */
  #perform(performed: Performed<ConnectionControl>, hooks: EndpointHooks): void {
    try {
      this.#effect(performed, hooks);
    } catch (error) {
      const { session } = performed;
      this.#fault(`session ${String(session.key)}: ${performed.effect.type}`, error);
      session.post({ type: 'close', key: session.key, why: CLOSE_REASONS.INTERNAL_ERROR });
    }
  }

  #effect({ session, effect }: Performed<ConnectionControl>, hooks: EndpointHooks): void {
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
        const { request, grant } = effect;
        const admission = this.#admission;
        const limit = this.options.rate_limit;
        const control = Connection.open({
          key: session.key,
          prefix: this.options.prefix,
          protocol: effect.receiver.protocol,
          request,
          post: session.post,
          maxQueueSize: this.options.max_queue_size,
          log: this.#logger,
          auth: grant?.value,
          credential: grant?.credential,
          client: admission?.addressOf(request) ?? '',
          limiter: limit ? new RateLimiter(limit, this.#scheduler.now()) : null,
          counters: this.#counters,
        });
        session.handle = control;
        this.#live.set(session.key, session);
        admission?.opened(control.client);
        this.#counters?.opened(control.connection.protocol);
        this.#logger('debug', `session ${String(session.key)} opened over ${effect.receiver.protocol}`);
        hooks.connection(control.connection);
        break;
      }
      case 'deliver': {
        const control = session.handle;
        if (!control) break;
        const messages = control.limiter ? this.#withinLimit(session, control, effect.messages, effect.source) : effect.messages;
        if (this.#counters) this.#counters.messagesReceived += messages.length;
        if (messages.length === 0 || control.deliver(messages)) break;
        // The application has stopped reading: the websocket is not read either until it does.
        const { source } = effect;
        if (!source) break;
        source.pause();
        control.whenReading(() => source.resume(), 0);
        break;
      }
      case 'heartbeat':
        if (this.#counters) this.#counters.heartbeats++;
        break;
      case 'dropped':
        if (this.#counters) this.#counters.messagesDropped += effect.count;
        this.#logger('info', `session ${String(session.key)} is closing or closed: ${effect.count} message(s) from its client dropped`);
        break;
      case 'reply': {
        const { reply } = effect;
        const control = session.handle;
        if (!effect.accepted) reply.unknownSession();
        else if (!control) reply.accept();
        else this.#answerSend(control, reply);
        break;
      }
      case 'ack':
        effect.ack();
        break;
      case 'closed':
        this.#closed(session, effect.why);
        break;
      case 'end':
        // Every path to the end has told the connection already; this only guards against a gap.
        this.#closed(session, CLOSE_REASONS.INTERRUPTED);
        this.#ended(session);
        if (typeof session.key === 'string') this.#relay?.ended(session.key);
        break;
    }
  }

  /** Tells the session's connection it has closed with `why`, and counts it, once. */
  #closed(session: Session, why: CloseReason): void {
    const control = session.handle;
    if (!control || control.connection.readyState === CLOSED) return;
    const counters = this.#counters;
    if (counters) {
      counters.closed(control.connection.protocol, why.code);
      if (why === CLOSE_REASONS.NO_HEARTBEAT) counters.deadPeers++;
      // A websocket message of more than max_payload_messages, or not JSON (`ws` counts the rest).
      else if (why === CLOSE_REASONS.TOO_MANY_MESSAGES) counters.refused.size++;
      else if (why === CLOSE_REASONS.BROKEN_FRAMING) counters.refused.bad_input++;
    }
    const limiter = control.limiter;
    if (limiter && limiter.unlogged > 0) this.#logDrops(session, limiter);
    // A session that closes while it rests: its socket is read again (its close handshake with
    // it), and its held answers go.
    this.#wake(control);
    control.sessionClosed(why);
  }

  /** Says what a session's rate limit dropped since it last said. */
  #logDrops(session: Session, limiter: RateLimiter): void {
    this.#logger('info', `session ${String(session.key)}: ${limiter.unlogged} message(s) over its rate limit dropped`);
    limiter.loggedAt = this.#scheduler.now();
    limiter.unlogged = 0;
  }

  /** Forgets a session that has ended, and what it counted against the caps. */
  #ended(session: Session): void {
    this.#closed(session, CLOSE_REASONS.SHUTTING_DOWN);
    const control = session.handle;
    session.handle = null;
    if (this.#live.get(session.key) === session) this.#live.delete(session.key);
    if (control) this.#admission?.closed(control.client);
  }

  /**
   * The messages of `messages` within the session's rate limit. What is over it is dropped,
   * counted and logged (a line per session and second), or closes the session with
   * `1008 "Rate limit exceeded"` (policy `close`).
   */
  #withinLimit(session: Session, control: ConnectionControl, messages: readonly string[], source: Source | undefined): readonly string[] {
    const limiter = control.limiter!;
    const now = this.#scheduler.now();
    const taken = limiter.take(messages, now);
    if (taken === messages.length) return messages;
    const over = messages.length - taken;
    if (this.#counters) this.#counters.refused.rate += over;
    if (this.options.rate_limit?.policy === 'close') {
      this.#logger('info', `session ${String(session.key)}: over its rate limit: closed`);
      control.connection.close(CLOSE_REASONS.RATE_LIMITED.code, CLOSE_REASONS.RATE_LIMITED.reason);
    } else {
      if (this.#counters) this.#counters.messagesDropped += over;
      limiter.unlogged += over;
      if (now - limiter.loggedAt >= 1000) this.#logDrops(session, limiter);
      this.#rest(control, now, source);
    }
    return taken === 0 ? NO_MESSAGES : messages.slice(0, taken);
  }

  /**
   * A session over its limit rests until its buckets are full again: its websocket is not read
   * (what the client sends waits in its own socket, held back by TCP), and the answer to its
   * HTTP send waits (sockjs-client sends the next only then). So a flooding client costs the
   * server one read per rest, not the parsing of all it can send, and gets its rate on average.
   */
  #rest(control: ConnectionControl, now: number, source: Source | undefined): void {
    const limiter = control.limiter!;
    // Never longer than a heartbeat interval: a peer not read cannot answer a ping, and is not
    // taken for dead meanwhile.
    limiter.restUntil = Math.max(limiter.restUntil, now + limiter.rest(now, this.options.heartbeat_delay));
    // Frames `ws` had read before the pause still come, and lengthen the rest; one pause is all.
    if (source && !limiter.paused) {
      limiter.paused = source;
      source.pause();
    }
    if (!limiter.timer) this.#awaitRest(control);
  }

  /** Arms the rest's timer; when it fires the rest is over, unless it was lengthened meanwhile. */
  #awaitRest(control: ConnectionControl): void {
    const limiter = control.limiter!;
    limiter.timer = this.#scheduler.schedule(() => {
      limiter.timer = null;
      if (limiter.restUntil > this.#scheduler.now()) this.#awaitRest(control);
      else this.#wake(control);
    }, Math.max(0, limiter.restUntil - this.#scheduler.now()));
  }

  /** The rest is over, or the session closed: its websocket is read again, and what waited is answered. */
  #wake(control: ConnectionControl): void {
    const limiter = control.limiter;
    if (!limiter) return;
    limiter.timer?.unsubscribe();
    limiter.timer = null;
    limiter.restUntil = -Infinity;
    const source = limiter.paused;
    limiter.paused = null;
    source?.resume();
    const held = limiter.held;
    limiter.held = [];
    for (const answer of held) answer();
  }

  /**
   * Answers an HTTP send that the session took: once the application reads again, so that the
   * client waits to send more, and not before the session's rest over its rate limit is over.
   * Answers held by a rest count against `max_queue_size` as those held for the application do.
   */
  #answerSend(control: ConnectionControl, reply: Reply): void {
    const answer = () => control.whenReading(() => reply.accept(), HELD_ANSWER_COST);
    const limiter = control.limiter;
    if (!limiter || limiter.restUntil <= this.#scheduler.now()) {
      answer();
      return;
    }
    limiter.held.push(answer);
    if (limiter.held.length * HELD_ANSWER_COST > this.options.max_queue_size) {
      control.connection.close(CLOSE_REASONS.RECEIVE_QUEUE_FULL.code, CLOSE_REASONS.RECEIVE_QUEUE_FULL.reason);
    }
  }
}
