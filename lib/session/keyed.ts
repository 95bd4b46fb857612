/**
 * Two operators for streams that hold many long-lived inner streams (one per session, one per
 * open request). RxJS's `groupBy` with a `duration` and `mergeMap` keep each inner subscription
 * in an array on their parent subscription, so ending one of n sessions scans all n: with
 * thousands of sessions that scan was a tenth of the server's time. These keep them in a Map
 * or a Set, so a session starts and ends in constant time, and behave as those operators
 * otherwise do.
 */
import {
  type GroupedObservable,
  from,
  type ObservableInput,
  Observable,
  type Observer,
  type OperatorFunction,
  Subject,
  type Subscription,
} from 'rxjs';

/**
 * `groupBy(keyOf)` whose group for a key completes right after the value `isLast` picks: the
 * next value with that key starts a new group. Errors and completion of the source reach every
 * open group.
 */
export function groupUntil<T, K>(keyOf: (value: T) => K, isLast: (value: T) => boolean): OperatorFunction<T, GroupedObservable<K, T>> {
  return (source) =>
    new Observable<GroupedObservable<K, T>>((subscriber) => {
      const groups = new Map<K, Subject<T>>();
      const closeAll = (close: (group: Subject<T>) => void) => {
        const open = [...groups.values()];
        groups.clear();
        open.forEach(close);
      };
      const subscription = source.subscribe({
        next: (value) => {
          const key = keyOf(value);
          let group = groups.get(key);
          if (!group) {
            group = new Subject<T>();
            groups.set(key, group);
            subscriber.next(Object.assign(group.asObservable(), { key }));
          }
          group.next(value);
          if (isLast(value) && groups.get(key) === group) {
            groups.delete(key);
            group.complete();
          }
        },
        error: (error: unknown) => {
          closeAll((group) => group.error(error));
          subscriber.error(error);
        },
        complete: () => {
          closeAll((group) => group.complete());
          subscriber.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        groups.clear();
      };
    });
}

/** One inner stream of `mergeEach`, which forgets itself when it ends. */
class Inner<R> implements Observer<R> {
  subscription: Subscription | null = null;
  done = false;

  constructor(
    private readonly outer: { next(value: R): void; error(error: unknown): void; finished(inner: Inner<R>): void },
  ) {}

  next(value: R): void {
    this.outer.next(value);
  }

  error(error: unknown): void {
    this.done = true;
    this.outer.error(error);
  }

  complete(): void {
    this.done = true;
    this.outer.finished(this);
  }
}

/**
 * `mergeMap(project)` without a concurrency limit: every inner stream is subscribed at once and
 * their values are merged. Completes once the source and every inner stream have.
 */
export function mergeEach<T, R>(project: (value: T) => ObservableInput<R>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const open = new Set<Inner<R>>();
      let sourceDone = false;
      const outer = {
        next: (value: R) => subscriber.next(value),
        error: (error: unknown) => subscriber.error(error),
        finished: (inner: Inner<R>) => {
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
            subscriber.error(error);
            return;
          }
          const inner = new Inner<R>(outer);
          open.add(inner);
          inner.subscription = from(input).subscribe(inner);
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
        for (const inner of inners) inner.subscription?.unsubscribe();
      };
    });
}
