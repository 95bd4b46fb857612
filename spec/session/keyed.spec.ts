import { catchError, groupBy, type GroupedObservable, map, mergeMap, Observable, of, Subject, Subscription, take, throwError, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { groupUntil, mergeEach } from '../../lib/session/keyed';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('groupUntil', () => {
  it('groups by key, completes a group after its last value, and starts a new group for the key after it', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // a1, b1, a2 and the end of a (a.), then a3 opens a second group for a.
      const source = cold('-a-b-c-x-d-|', { a: 'a1', b: 'b1', c: 'a2', x: 'a.', d: 'a3' });
      const groups = source.pipe(
        groupUntil(
          (value) => value[0],
          (value) => value.endsWith('.'),
        ),
        mergeMap((group$) => group$.pipe(toArray(), map((values) => `${group$.key}:${values.join(',')}`))),
      );
      expectObservable(groups).toBe('-------x---(yz|)', { x: 'a:a1,a2,a.', y: 'b:b1', z: 'a:a3' });
    });
  });

  it('stops every group when its own subscriber unsubscribes, where groupBy would keep a subscribed group fed', () => {
    const source = new Subject<string>();
    const seen: string[] = [];
    // take(1) unsubscribes from the groups' stream after the first group; groupBy's reference
    // counting would keep the source, and so that group, alive. groupUntil lets go at once.
    source.pipe(groupUntil((value) => value[0], () => false), take(1)).subscribe((group$) => group$.subscribe((value) => seen.push(value)));
    source.next('a1');
    source.next('a2');
    expect(seen).toEqual(['a1']);
    expect(source.observed).toBe(false);
    const viaGroupBy: string[] = [];
    const other = new Subject<string>();
    other.pipe(groupBy((value) => value[0]), take(1)).subscribe((group$) => group$.subscribe((value) => viaGroupBy.push(value)));
    other.next('a1');
    other.next('a2');
    expect(viaGroupBy).toEqual(['a1', 'a2']);
  });

  it('errors every open group, then the output', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-#', { a: 'a1', b: 'b1' }, new Error('boom'));
      const groups = source.pipe(
        groupUntil(
          (value) => value[0],
          () => false,
        ),
        mergeMap((group$) => group$.pipe(catchError((error: Error) => of(`${group$.key} ${error.message}`)))),
      );
      expectObservable(groups).toBe('-a-b-(xy#)', { a: 'a1', b: 'b1', x: 'a boom', y: 'b boom' }, new Error('boom'));
    });
  });

  it('multicasts a group to each of its subscribers until that one unsubscribes', () => {
    const source = new Subject<string>();
    const seen: Record<string, string[]> = { first: [], second: [], third: [] };
    const groups: Array<GroupedObservable<string, string>> = [];
    const subscription = source
      .pipe(
        groupUntil(
          (value) => value[0]!,
          () => false,
        ),
      )
      .subscribe((group$) => groups.push(group$));
    source.next('a1');
    const group$ = groups[0]!;
    const first = group$.subscribe((value) => seen.first!.push(value));
    const second = group$.subscribe((value) => seen.second!.push(value));
    source.next('a2');
    first.unsubscribe();
    source.next('a3');
    group$.subscribe((value) => seen.third!.push(value));
    second.unsubscribe();
    source.next('a4');
    subscription.unsubscribe();
    expect(groups).toHaveLength(1);
    expect(seen).toStrictEqual({ first: ['a2'], second: ['a2', 'a3'], third: ['a4'] });
  });

  it('unsubscribes its source when unsubscribed', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b-c-d-', { a: 'a1', b: 'b1', c: 'a2', d: 'b2' });
      const groups = source.pipe(
        groupUntil(
          (value) => value[0],
          () => false,
        ),
        mergeEach((group$) => group$),
      );
      expectObservable(groups, '^----!').toBe('-a-b-', { a: 'a1', b: 'b1' });
      expectSubscriptions(source.subscriptions).toBe('^----!');
    });
  });
});

describe('mergeEach', () => {
  it('merges every inner stream and completes after the source and all of them', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const inners: Record<string, Observable<string>> = {
        a: cold('--1--2|', { 1: 'a1', 2: 'a2' }),
        b: cold('-1|', { 1: 'b1' }),
      };
      const source = hot('-a-b-|');
      expectObservable(source.pipe(mergeEach((name) => inners[name]!))).toBe('---xy-z|', { x: 'a1', y: 'b1', z: 'a2' });
    });
  });

  it('passes an inner error on and unsubscribes the rest', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const a = cold('----1', { 1: 'a1' });
      const b = cold('-#', undefined, new Error('inner'));
      const source = hot('-a-b--', { a, b });
      expectObservable(source.pipe(mergeEach((inner) => inner))).toBe('----#', undefined, new Error('inner'));
      expectSubscriptions(a.subscriptions).toBe('-^--!');
    });
  });

  it('forgets inner streams that end at once, and unsubscribes the live ones when unsubscribed', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const now = cold('(1|)', { 1: 'now' });
      const later = cold('-----1', { 1: 'later' });
      const source = hot('-a-b-----', { a: now, b: later });
      expectObservable(source.pipe(mergeEach((inner) => inner)), '^-----!').toBe('-x----', { x: 'now' });
      expectSubscriptions(later.subscriptions).toBe('---^--!');
    });
  });

  it('errors when the projection throws', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const source = hot('-a-');
      const failing = mergeEach<string, string>(() => {
        throw new Error('project');
      });
      expectObservable(source.pipe(failing)).toBe('-#', undefined, new Error('project'));
    });
  });

  it('with a failed handler, hands it each error met while subscribing with its source value, ends only that inner and goes on', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions, flush }) => {
      const a = cold('----1|', { 1: 'a1' });
      const b = throwError(() => new Error('inner'));
      const c = cold('-1|', { 1: 'c1' });
      const source = hot('-a-b-t-c-|', { a, b, c, t: 'throw' });
      const failures: unknown[][] = [];
      const merged = source.pipe(
        mergeEach(
          (inner: Observable<string> | string) => {
            if (typeof inner === 'string') throw new Error('project');
            return inner;
          },
          (error, value) => failures.push([(error as Error).message, value === b ? 'b' : value]),
        ),
      );
      expectObservable(merged).toBe('-----x--y|', { x: 'a1', y: 'c1' });
      expectSubscriptions(a.subscriptions).toBe('-^----!');
      flush();
      expect(failures).toStrictEqual([
        ['inner', 'b'],
        ['project', 'throw'],
      ]);
    });
  });

  it('with a failed handler, still ends the merged stream on an inner error after its subscription, without calling it', () => {
    scheduler().run(({ cold, hot, expectObservable, flush }) => {
      const later = cold('--#', undefined, new Error('later'));
      const failures: unknown[] = [];
      const merged = hot('-a-', { a: later }).pipe(mergeEach((inner) => inner, (error) => failures.push(error)));
      expectObservable(merged).toBe('---#', undefined, new Error('later'));
      flush();
      expect(failures).toStrictEqual([]);
    });
  });

  it('with a failed handler, also takes an inner whose subscribe function throws', () => {
    const failures: unknown[] = [];
    const values: string[] = [];
    let completed = false;
    const throwing = new Observable<string>(() => {
      throw new Error('subscribe');
    });
    of(throwing, of('after'))
      .pipe(mergeEach((inner) => inner, (error) => failures.push((error as Error).message)))
      .subscribe({ next: (value) => values.push(value), complete: () => (completed = true) });
    expect([failures, values, completed]).toStrictEqual([['subscribe'], ['after'], true]);
  });
});

describe('mergeEach teardowns', () => {
  /** An inner stream that records when each of its teardowns runs. */
  const inner = (name: string, log: string[], teardowns: 'function' | 'unsubscribable' | 'two' | 'subscription') =>
    new Observable<string>((subscriber) => {
      subscriber.next(name);
      if (teardowns === 'two') subscriber.add(() => log.push(`${name} first`));
      if (teardowns === 'subscription') return new Subscription(() => log.push(`${name} child`));
      if (teardowns === 'unsubscribable') return { unsubscribe: () => log.push(`${name} unsubscribed`) };
      return () => log.push(`${name} torn down`);
    });

  it.each(['function', 'unsubscribable', 'two', 'subscription'] as const)(
    'runs every teardown of an inner stream (%s) once, when it ends or the merge is unsubscribed',
    (teardowns) => {
      const log: string[] = [];
      const ending = new Subject<string>();
      const source = new Subject<string>();
      const seen: string[] = [];
      const subscription = source
        .pipe(mergeEach((name) => (name === 'ends' ? inner(name, log, teardowns).pipe(takeUntilNext(ending)) : inner(name, log, teardowns))))
        .subscribe((value) => seen.push(value));
      source.next('ends');
      source.next('lives');
      ending.next('now');
      const afterEnd = [...log];
      subscription.unsubscribe();
      subscription.unsubscribe();
      expect(seen).toEqual(['ends', 'lives']);
      const expected = (name: string) =>
        teardowns === 'function'
          ? [`${name} torn down`]
          : teardowns === 'unsubscribable'
            ? [`${name} unsubscribed`]
            : teardowns === 'two'
              ? [`${name} first`, `${name} torn down`].sort()
              : [`${name} child`];
      expect(afterEnd.sort()).toEqual(expected('ends'));
      expect(log.slice(afterEnd.length).sort()).toEqual(expected('lives'));
    },
  );
});

/** Completes the stream at the first value of `notifier`. */
function takeUntilNext<T>(notifier: Observable<unknown>) {
  return (source: Observable<T>) =>
    new Observable<T>((subscriber) => {
      const stop = notifier.subscribe(() => subscriber.complete());
      subscriber.add(stop);
      return source.subscribe(subscriber);
    });
}
