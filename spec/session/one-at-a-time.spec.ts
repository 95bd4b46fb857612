import { Subject } from 'rxjs';
import { oneAtATime } from '../../lib/session/one-at-a-time';

describe('oneAtATime', () => {
  it('handles a value posted while another is handled after it, fully, in the order posted', () => {
    const source = new Subject<string>();
    const log: string[] = [];
    const subscription = source.pipe(oneAtATime()).subscribe((value) => {
      log.push(`start ${value}`);
      if (value === 'a') {
        source.next('b');
        source.next('c');
      }
      if (value === 'b') source.next('d');
      log.push(`end ${value}`);
    });
    source.next('a');
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c', 'start d', 'end d']);
    subscription.unsubscribe();
  });

  it('completes after the values queued ahead of the completion', () => {
    const source = new Subject<string>();
    const log: string[] = [];
    const subscription = source.pipe(oneAtATime()).subscribe({
      next: (value) => {
        log.push(value);
        if (value === 'a') {
          source.next('b');
          source.complete();
        }
      },
      complete: () => log.push('complete'),
    });
    source.next('a');
    expect(log).toEqual(['a', 'b', 'complete']);
    subscription.unsubscribe();
  });

  it('drops what is queued once unsubscribed', () => {
    const source = new Subject<string>();
    const log: string[] = [];
    const subscription = source.pipe(oneAtATime()).subscribe((value) => {
      log.push(value);
      if (value === 'a') {
        source.next('b');
        subscription.unsubscribe();
      }
    });
    source.next('a');
    source.next('c');
    expect(log).toEqual(['a']);
  });

  it('handles values one by one when nothing is re-entrant', () => {
    const source = new Subject<number>();
    const seen: number[] = [];
    const subscription = source.pipe(oneAtATime()).subscribe((value) => seen.push(value));
    [1, 2, 3].forEach((n) => source.next(n));
    expect(seen).toEqual([1, 2, 3]);
    subscription.unsubscribe();
  });
});
