/**
 * The session table as one RxJS pipeline: events are grouped by session key, and each group runs
 * the reducer in one small operator that also keeps the session's two timers.
 *
 * Custom pieces that stand in for stock operators:
 *
 * | piece | stands in for | how it differs | why | spec |
 * | --- | --- | --- | --- | --- |
 * | `oneAtATime` | `observeOn(queueScheduler)` | none in order: FIFO, run to completion, a completion waits behind queued values | no scheduler action per event: 136–158 ns against 227–309 ns per event with re-entrant posts (1,000,000 events, Node 20, 5 rounds) | spec/session/one-at-a-time.spec.ts |
 * | `groupUntil` | `groupBy(key, { duration })` | no reference counting: unsubscribing its output stops every group at once | groups in a Map: in `groupBy` ending one of n sessions scans all n (`arrRemove`, a tenth of the server's CPU in the new-xhr profile) | spec/session/keyed.spec.ts |
 * | `mergeEach` | `mergeMap` | with a `failed` handler, an error met while subscribing one inner stream goes to it and the rest go on | inner subscriptions in a Set, ended in constant time, for the same reason; the endpoint answers one request's fault with 500 without a `catchError` per request | spec/session/keyed.spec.ts |
 * | `Alarm` | `timer` + `switchMap` | one scheduled action, re-armed only when the state's due time changes; still on the injected scheduler, so marble tests drive it | a server holds two per session: one small object each, not an Observable, its subscribers and a closure per arming | spec/session/session.spec.ts |
 */
import {
  type GroupedObservable,
  merge,
  Observable,
  type SchedulerAction,
  type SchedulerLike,
  Subject,
  Subscriber,
  type Subscription,
  takeUntil,
} from 'rxjs';
import { type Effect, INITIAL, type SessionConfig, type SessionEvent, type SessionKey, type SessionState, step, type Step } from './reducer';
import { CLOSE_REASONS, faultText } from '../errors';
import type { Receiver } from './receiver';
import { closeFrame } from '../frames';
import { groupUntil, mergeEach } from './keyed';
import { oneAtATime } from './one-at-a-time';

/**
 * What the effects of one session are performed against: its key, and what the performer keeps
 * for it (the endpoint: its connection's control, once open). The table never reads `handle`.
 */
export interface SessionContext<C> {
  readonly key: SessionKey;
  /** Sends an event to this session, e.g. from its connection. */
  readonly post: (event: SessionEvent) => void;
  handle: C | null;
  /** Bytes waiting in this session for its client: its queue, and what its receiver has not flushed. */
  backlog(): number;
}

export interface Performed<C> {
  readonly session: SessionContext<C>;
  readonly effect: Effect;
}

export interface SessionEnv {
  readonly scheduler: SchedulerLike;
  readonly config: SessionConfig;
  readonly log: (severity: string, message: string) => void;
  /** Told +1 when a session starts and -1 when it is gone, for `Server.sessionCount`. */
  readonly count?: (delta: 1 | -1) => void;
  /** Feeds an event back into the session table (timers, the application, the end marker). */
  readonly post: (event: SessionEvent) => void;
}

/**
 * One meaning of time in a session (its heartbeat, its expiry): at most one action on the
 * scheduler, re-armed only when the due time the state names changes, cancelled when it becomes
 * null. A timer that has fired is not re-armed for the same due time.
 */
class Alarm {
  #due: number | null = null;
  #action: Subscription | null = null;

  constructor(
    private readonly session: Session<unknown>,
    private readonly event: 'heartbeat' | 'expire',
  ) {}

  at(due: number | null): void {
    if (due === this.#due) return;
    this.#due = due;
    this.#action?.unsubscribe();
    const { scheduler } = this.session.env;
    this.#action = due === null ? null : scheduler.schedule(ring, Math.max(0, due - scheduler.now()), this);
  }

  cancel(): void {
    this.#action?.unsubscribe();
    this.#action = null;
  }

  ring(): void {
    this.#action = null;
    this.session.post({ type: this.event, key: this.session.key });
  }
}

/** The scheduled work of every alarm; the alarm rides as the action's state, so no closure per arming. */
function ring(this: SchedulerAction<Alarm>, alarm?: Alarm): void {
  alarm?.ring();
}

/**
 * The reducer, guarded: should it ever throw, the fault is logged and only this session ends,
 * closed with 1011, while every other session goes on.
 */
function safeStep(state: SessionState, event: SessionEvent, env: SessionEnv): Step {
  try {
    return step(state, event, env.scheduler.now(), env.config);
  } catch (error) {
    return faulted(state, event, error, env);
  }
}

/** The 1011 close frame as `receiver` wraps it; null when wrapping is what fails. */
function closeFrameFor(receiver: Receiver): string | null {
  try {
    return receiver.wrap(closeFrame(CLOSE_REASONS.INTERNAL_ERROR.code, CLOSE_REASONS.INTERNAL_ERROR.reason));
  } catch {
    // The receiver's own framing is at fault: it is finished without a frame.
    return null;
  }
}

/**
 * The step that ends a session after a fault: logged, the receiver and the application told
 * 1011. The event that met the fault had no effect, so what it carried is answered here: a new
 * receiver gets the close frame, a send is refused as for an unknown session, a writer released.
 */
function faulted(state: SessionState, event: SessionEvent, error: unknown, env: SessionEnv): Step {
  env.log('error', `session ${String(event.key)}: ${faultText(error)}`);
  const effects: Effect[] = [];
  if (event.type === 'attach' && event.receiver !== state.attached?.receiver) {
    const { receiver } = event;
    const frame = receiver.framing === 'raw' ? null : closeFrameFor(receiver);
    if (frame !== null) effects.push({ type: 'write', receiver, chunk: frame, acks: [] });
    effects.push({ type: 'finish', receiver, why: CLOSE_REASONS.INTERNAL_ERROR });
  }
  if (event.type === 'incoming' && event.reply) effects.push({ type: 'reply', reply: event.reply, accepted: false });
  if (event.type === 'outgoing' && event.ack) effects.push({ type: 'ack', ack: event.ack });
  if (state.phase === 'ended') return { state, effects };
  if (state.attached) effects.push({ type: 'finish', receiver: state.attached.receiver, why: CLOSE_REASONS.INTERNAL_ERROR });
  if (state.phase === 'open') effects.push({ type: 'closed', why: CLOSE_REASONS.INTERNAL_ERROR });
  effects.push({ type: 'end' });
  return { state: { ...INITIAL, phase: 'ended' }, effects };
}

/**
 * One session: the reducer over its events, its effects emitted as they are stepped, and its
 * heartbeat and expiry timers. Only the state outlives a step, never its effects (which hold the
 * request). A server holds thousands of these, so a session is one object, not closures.
 */
class Session<C> extends Subscriber<SessionEvent> implements SessionContext<C> {
  handle: C | null = null;
  #state: SessionState = INITIAL;
  readonly #heartbeat: Alarm = new Alarm(this, 'heartbeat');
  readonly #expiry: Alarm = new Alarm(this, 'expire');

  constructor(
    readonly key: SessionKey,
    readonly env: SessionEnv,
    private readonly out: Subscriber<Performed<C>>,
  ) {
    super();
    env.count?.(1);
  }

  get post(): (event: SessionEvent) => void {
    return this.env.post;
  }

  backlog(): number {
    const state = this.#state;
    return state.queuedBytes + (state.attached?.receiver.sink.buffered?.() ?? 0);
  }

  protected override _next(event: SessionEvent): void {
    const before = this.#state;
    try {
      this.#apply(safeStep(before, event, this.env));
    } catch (error) {
      // A fault outside the reducer (a timer that cannot be armed, say): the session ends as
      // after a fault of the reducer, and the event's sender never sees it.
      this.#heartbeat.cancel();
      this.#expiry.cancel();
      const { state, effects } = faulted(before, event, error, this.env);
      this.#state = state;
      this.#emit(effects);
    }
  }

  #apply({ state, effects }: Step): void {
    this.#state = state;
    // Timers first: they must see a step's state before its effects can post new events.
    this.#heartbeat.at(state.heartbeatAt);
    this.#expiry.at(state.expireAt);
    this.#emit(effects);
  }

  #emit(effects: readonly Effect[]): void {
    for (const effect of effects) {
      // The end marker goes back through the table, where it closes this group.
      if (effect.type === 'end') this.env.post({ type: 'end', key: this.key });
      this.out.next({ session: this, effect });
    }
  }

  protected override _error(error: unknown): void {
    this.unsubscribe();
    this.out.error(error);
  }

  protected override _complete(): void {
    this.unsubscribe();
    this.out.complete();
  }

  override unsubscribe(): void {
    if (this.closed) return;
    super.unsubscribe();
    this.#heartbeat.cancel();
    this.#expiry.cancel();
    this.env.count?.(-1);
  }
}

export function runSession<C>(
  events$: GroupedObservable<SessionKey, SessionEvent>,
  env: SessionEnv,
): Observable<Performed<C>> {
  return new Observable<Performed<C>>((subscriber) => {
    const session = new Session<C>(events$.key, env, subscriber);
    events$.subscribe(session);
    return session;
  });
}

/**
 * Every session of one endpoint. Events are processed one at a time, to completion: an event
 * posted while another is being handled (an application writing from its `data` handler) is
 * queued behind it, so each session sees its events in order and every effect of one step is
 * performed before the next step starts.
 */
export function sessionTable<C>(
  external$: Observable<SessionEvent>,
  env: Omit<SessionEnv, 'post'>,
): Observable<Performed<C>> {
  return new Observable<Performed<C>>((subscriber) => {
    const feedback$ = new Subject<SessionEvent>();
    const stop$ = new Subject<void>();
    const post = (event: SessionEvent) => feedback$.next(event);
    const sessionEnv: SessionEnv = { ...env, post };
    const subscription = merge(external$, feedback$)
      .pipe(
        // Stopping the source first completes every group, so each session tears down in order.
        takeUntil(stop$),
        oneAtATime(),
        // A session's group completes after its end marker.
        groupUntil((event) => event.key, (event) => event.type === 'end'),
        mergeEach((group$) => runSession<C>(group$, sessionEnv)),
      )
      .subscribe(subscriber);
    return () => {
      stop$.next();
      subscription.unsubscribe();
    };
  });
}
