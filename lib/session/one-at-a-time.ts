/**
 * Run to completion without a scheduler: each value is handled, with everything it causes
 * downstream, before the next one. A value that arrives while another is being handled (posted
 * back from a subscriber downstream) waits in a FIFO queue behind it, as with
 * `observeOn(queueScheduler)`, but no action is scheduled per value.
 */
import { type MonoTypeOperatorFunction, Observable } from 'rxjs';

export function oneAtATime<T>(): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const queue: T[] = [];
      let running = false;
      // A completion or error that arrived while values were queued goes out after them.
      let terminal: (() => void) | null = null;

      const drain = (): void => {
        running = true;
        try {
          for (let i = 0; i < queue.length && !subscriber.closed; i++) subscriber.next(queue[i]!);
        } finally {
          queue.length = 0;
          running = false;
        }
        terminal?.();
      };

      return source.subscribe({
        next: (value) => {
          queue.push(value);
          if (!running) drain();
        },
        error: (error: unknown) => {
          terminal = () => subscriber.error(error);
          if (!running) terminal();
        },
        complete: () => {
          terminal = () => subscriber.complete();
          if (!running) terminal();
        },
      });
    });
}
