/**
 * The session table as one RxJS pipeline: events are grouped by session key, each group runs the
 * reducer with `scan`, and the two timers of a session are operators derived from its state.
 */
import {
  defer,
  Observable,
  distinctUntilChanged,
  EMPTY,
  filter,
  finalize,
  groupBy,
  type GroupedObservable,
  ignoreElements,
  map,
  merge,
  mergeMap,
  observeOn,
  queueScheduler,
  type SchedulerLike,
  scan,
  share,
  Subject,
  switchMap,
  takeUntil,
  tap,
  timer,
} from 'rxjs';
import {
  type CloseReason,
  type Effect,
  INITIAL,
  type SessionConfig,
  type SessionEvent,
  type SessionKey,
  type SessionState,
  step,
  type Step,
} from './reducer';

/** What the effects of one session are performed against: its key and, once open, its connection. */
export interface SessionContext<C> {
  readonly key: SessionKey;
  /** Sends an event to this session, e.g. from its connection. */
  readonly post: (event: SessionEvent) => void;
  connection: C | null;
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
 * Fires `event` at the scheduler time the state names, re-armed whenever that time changes and
 * cancelled when it becomes null.
 */
function timerAt(
  state$: Observable<SessionState>,
  at: (state: SessionState) => number | null,
  event: SessionEvent,
  scheduler: SchedulerLike,
): Observable<SessionEvent> {
  return state$.pipe(
    map(at),
    distinctUntilChanged(),
    switchMap((due) => (due === null ? EMPTY : timer(Math.max(0, due - scheduler.now()), scheduler))),
    map(() => event),
  );
}

const INTERNAL_ERROR: CloseReason = { code: 1011, reason: 'Internal error' };

/**
 * The reducer, guarded: should it ever throw, the fault is logged and only this session ends,
 * closed with 1011, while every other session goes on.
 */
function safeStep(state: SessionState, event: SessionEvent, env: SessionEnv): Step {
  try {
    return step(state, event, env.scheduler.now(), env.config);
  } catch (error) {
    env.log('error', `session ${String(event.key)}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (state.phase === 'ended') return { state, effects: [] };
    const effects: Effect[] = [];
    if (state.attached) effects.push({ type: 'finish', receiver: state.attached.receiver, why: INTERNAL_ERROR });
    if (state.phase === 'open') effects.push({ type: 'closed', why: INTERNAL_ERROR });
    effects.push({ type: 'end' });
    return { state: { ...INITIAL, phase: 'ended' }, effects };
  }
}

/** One session: the reducer over its events, and its heartbeat and disconnect timers. */
export function runSession<C>(
  events$: GroupedObservable<SessionKey, SessionEvent>,
  env: SessionEnv,
): Observable<Performed<C>> {
  return defer(() => {
    const key = events$.key;
    const session: SessionContext<C> = { key, post: env.post, connection: null };
    env.count?.(1);
    const steps$ = events$.pipe(
      scan((previous: Step, event) => safeStep(previous.state, event, env), { state: INITIAL, effects: [] }),
      share(),
    );
    const state$ = steps$.pipe(map((s) => s.state));
    const heartbeat$ = timerAt(state$, (s) => s.heartbeatAt, { type: 'heartbeat', key }, env.scheduler);
    const expiry$ = timerAt(state$, (s) => s.expireAt, { type: 'expire', key }, env.scheduler);
    return merge(
      // Timers first: they must see a step's state before its effects can post new events.
      merge(heartbeat$, expiry$).pipe(tap(env.post), ignoreElements()),
      steps$.pipe(
        mergeMap((s) => s.effects),
        // The end marker goes back through the table, where it closes this group.
        tap((effect) => effect.type === 'end' && env.post({ type: 'end', key })),
        map((effect) => ({ session, effect })),
      ),
    ).pipe(finalize(() => env.count?.(-1)));
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
    const subscription = merge(external$, feedback$)
      .pipe(
        // groupBy keeps its source while any group lives, and each group's duration subscribes
        // to the group itself, so unsubscribing downstream alone would never reach the source
        // (websockets mid-handshake, requests mid-body). Stopping the source first ends it all.
        takeUntil(stop$),
        observeOn(queueScheduler),
        groupBy((event) => event.key, {
          duration: (group$) => group$.pipe(filter((event) => event.type === 'end')),
        }),
        mergeMap((group$) => runSession<C>(group$, { ...env, post })),
      )
      .subscribe(subscriber);
    return () => {
      stop$.next();
      subscription.unsubscribe();
    };
  });
}
