/**
 * Two operators for streams that hold many long-lived inner streams (one per session, one per
 * open request). RxJS's `groupBy` with a `duration` and `mergeMap` keep each inner subscription
 * in an array on their parent subscription, so ending one of n sessions scans all n: with
 * thousands of sessions that scan is a tenth of the server's time. These keep them in a Map
 * or a Set, so a session starts and ends in constant time. They behave as those operators do,
 * with one difference: `groupUntil` has no reference counting. Unsubscribing from its output
 * (a `take(1)` after it, say) unsubscribes from the source at once, and every group stops
 * receiving, where `groupBy` would keep the source while a group is subscribed. The session
 * table never unsubscribes from it but to stop every session.
 */
import { from, type GroupedObservable, Observable, type ObservableInput, type OperatorFunction, Subscriber, type TeardownLogic } from 'rxjs';

/**
 * One group of `groupUntil`: a multicast stream of the values with its key. Most groups have
 * exactly one subscriber (their session), so that one is held in a field and only further
 * subscribers get a list. A server holds one group per session, so a group is one object: its
 * subscribe function is shared by all groups, and a subscriber that unsubscribes is dropped at
 * the next value or subscription rather than by a teardown closure of its own.
 */
class Group<K, T> extends Observable<T> implements GroupedObservable<K, T> {
  #first: Subscriber<T> | null = null;
  #others: Subscriber<T>[] | null = null;
  #ended: { readonly error: unknown } | null = null;

  static readonly #subscribe = function (this: Observable<unknown>, subscriber: Subscriber<unknown>): TeardownLogic {
    (this as Group<unknown, unknown>).#add(subscriber);
  };

  constructor(readonly key: K) {
    super(Group.#subscribe);
  }

  #add(subscriber: Subscriber<T>): void {
    if (this.#ended) {
      const { error } = this.#ended;
      if (error === undefined) subscriber.complete();
      else subscriber.error(error);
      return;
    }
    this.#prune();
    if (!this.#first) this.#first = subscriber;
    else (this.#others ??= []).push(subscriber);
  }

  /** Forgets the subscribers that have unsubscribed. */
  #prune(): void {
    if (this.#others) {
      const open = this.#each().filter((subscriber) => !subscriber.closed);
      this.#first = open.shift() ?? null;
      this.#others = open.length > 0 ? open : null;
    } else if (this.#first?.closed) {
      this.#first = null;
    }
  }

  #each(): Subscriber<T>[] {
    if (!this.#first) return [];
    return this.#others ? [this.#first, ...this.#others] : [this.#first];
  }

  push(value: T): void {
    this.#prune();
    if (this.#others) for (const subscriber of this.#each()) subscriber.next(value);
    else this.#first?.next(value);
  }

  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = { error };
    const subscribers = this.#each();
    this.#first = null;
    this.#others = null;
    for (const subscriber of subscribers) {
      if (error === undefined) subscriber.complete();
      else subscriber.error(error);
    }
  }
}

/**
 * `groupBy(keyOf)` whose group for a key completes right after the value `isLast` picks: the
 * next value with that key starts a new group. Errors and completion of the source reach every
 * open group.
 */
export function groupUntil<T, K>(keyOf: (value: T) => K, isLast: (value: T) => boolean): OperatorFunction<T, GroupedObservable<K, T>> {
  return (source) =>
    new Observable<GroupedObservable<K, T>>((subscriber) => {
      const groups = new Map<K, Group<K, T>>();
      const endAll = (error?: unknown) => {
        const open = [...groups.values()];
        groups.clear();
        for (const group of open) group.end(error);
      };
      const subscription = source.subscribe({
        next: (value) => {
          const key = keyOf(value);
          let group = groups.get(key);
          if (!group) {
            group = new Group<K, T>(key);
            groups.set(key, group);
            subscriber.next(group);
          }
          group.push(value);
          if (isLast(value) && groups.get(key) === group) {
            groups.delete(key);
            group.end();
          }
        },
        error: (error: unknown) => {
          endAll(error ?? new Error('undefined error'));
          subscriber.error(error);
        },
        complete: () => {
          endAll();
          subscriber.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        groups.clear();
      };
    });
}

/**
 * One inner stream of `mergeEach`, which forgets itself when it ends. A Subscriber itself, so
 * that RxJS wraps it in nothing more. `source` is the value it was projected from, held only
 * while it is being subscribed: an inner stream lives as long as its session, and its value (an
 * HTTP event) must not.
 */
class Inner<T, R> extends Subscriber<R> {
  done = false;
  source: { readonly value: T } | null = null;
  /**
   * The one teardown its stream gives it, in a field: RxJS would keep it in an array of its own,
   * 184 bytes per inner stream, and a server holds two per session (one for its request, one for
   * the session). A teardown that is a Subscription is not made its child: should it end first,
   * it stays here, ended, until this inner stream does.
   */
  #teardown: TeardownLogic = undefined;

  constructor(private readonly outer: { next(value: R): void; error(error: unknown, source: { readonly value: T } | null): void; finished(inner: Inner<T, R>): void }) {
    super();
  }

  override add(teardown: TeardownLogic): void {
    if (this.closed || this.#teardown || !teardown || teardown === this) super.add(teardown);
    else this.#teardown = teardown;
  }

  override remove(teardown: Exclude<TeardownLogic, void>): void {
    if (teardown === this.#teardown) this.#teardown = undefined;
    else super.remove(teardown);
  }

  override unsubscribe(): void {
    if (this.closed) return;
    super.unsubscribe();
    const teardown = this.#teardown;
    this.#teardown = undefined;
    if (typeof teardown === 'function') teardown();
    else teardown?.unsubscribe();
  }

  protected override _next(value: R): void {
    this.outer.next(value);
  }

  protected override _error(error: unknown): void {
    this.done = true;
    const { source } = this;
    this.source = null;
    this.unsubscribe();
    this.outer.error(error, source);
    this.outer.finished(this);
  }

  protected override _complete(): void {
    this.done = true;
    this.unsubscribe();
    this.outer.finished(this);
  }
}

/**
 * `mergeMap(project)` without a concurrency limit: every inner stream is subscribed at once and
 * their values are merged. Completes once the source and every inner stream have.
 *
 * With `failed`, an error of `project`, or of an inner stream while it is being subscribed (its
 * subscribe function throwing, say), goes to `failed` with the source value it came from; only
 * that inner stream ends, and the merged stream goes on. Any other error ends the merged stream,
 * as in `mergeMap`.
 */
export function mergeEach<T, R>(project: (value: T) => ObservableInput<R>, failed?: (error: unknown, value: T) => void): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const open = new Set<Inner<T, R>>();
      let sourceDone = false;
      const outer = {
        next: (value: R) => subscriber.next(value),
        error: (error: unknown, from: { readonly value: T } | null) => {
          if (failed && from) failed(error, from.value);
          else subscriber.error(error);
        },
        finished: (inner: Inner<T, R>) => {
          open.delete(inner);
          if (sourceDone && open.size === 0) subscriber.complete();
        },
      };
      const subscription = source.subscribe({
        next: (value) => {
          let input: ObservableInput<R>;
          try {
            input = project(value);
          } catch (error) {
            if (failed) failed(error, value);
            else subscriber.error(error);
            return;
          }
          const inner = new Inner<T, R>(outer);
          open.add(inner);
          inner.source = { value };
          from(input).subscribe(inner);
          inner.source = null;
          // An inner stream that ended while it was subscribed has forgotten itself already.
          if (inner.done) open.delete(inner);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          if (open.size === 0) subscriber.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        const inners = [...open];
        open.clear();
        for (const inner of inners) inner.unsubscribe();
      };
    });
}
