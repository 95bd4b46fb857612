/**
 * The default scheduler of session timers. A server arms one heartbeat or expiry timer per
 * session; RxJS's `asyncScheduler` gives each action its own Node timer and bound function,
 * about 300 bytes per session and a timer created and cleared per heartbeat. Here actions due
 * in the same slot of `resolution` milliseconds share one Node timer, and an action is a small
 * Subscription in that slot's set. An action may run up to `resolution` ms late, never early.
 */
import { type SchedulerAction, type SchedulerLike, Subscription } from 'rxjs';

/** What a slot holds: an action, whatever its state's type. */
interface Armed {
  slot: number | null;
  run(): void;
}

class BatchAction<T> extends Subscription implements SchedulerAction<T>, Armed {
  slot: number | null = null;
  state: T | undefined = undefined;

  constructor(
    private readonly scheduler: BatchScheduler,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super();
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state = state;
    this.scheduler.arm(this, delay);
    return this;
  }

  run(): void {
    if (this.closed) return;
    this.slot = null;
    this.work(this.state);
    // Work that did not schedule itself again is done.
    if (this.slot === null) this.unsubscribe();
  }

  override unsubscribe(): void {
    if (this.closed) return;
    this.scheduler.disarm(this);
    super.unsubscribe();
  }
}

interface Slot {
  readonly actions: Set<Armed>;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class BatchScheduler implements SchedulerLike {
  readonly #slots = new Map<number, Slot>();

  constructor(private readonly resolution = 4) {}

  now(): number {
    return Date.now();
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    return new BatchAction(this, work).schedule(state, delay);
  }

  /** Puts `action` in the slot its due time falls in, creating the slot's timer if it has none. */
  arm(action: Armed, delay: number): void {
    this.disarm(action);
    const due = this.now() + Math.max(0, delay);
    const slot = Math.ceil(due / this.resolution);
    let entry = this.#slots.get(slot);
    if (!entry) {
      // Unref'd: a session's timers never keep the process alive by themselves. A session that
      // matters has a socket or a listening server that does, and once the HTTP server is
      // closed a session waiting out disconnect_delay has no client that could come back.
      const timer = setTimeout(() => this.#fire(slot), slot * this.resolution - this.now()).unref();
      entry = { actions: new Set(), timer };
      this.#slots.set(slot, entry);
    }
    entry.actions.add(action);
    action.slot = slot;
  }

  disarm(action: Armed): void {
    const { slot } = action;
    if (slot === null) return;
    action.slot = null;
    const entry = this.#slots.get(slot);
    if (!entry) return;
    entry.actions.delete(action);
    if (entry.actions.size === 0) {
      clearTimeout(entry.timer);
      this.#slots.delete(slot);
    }
  }

  /** Runs the slot's actions in the order they were armed. */
  #fire(slot: number): void {
    const entry = this.#slots.get(slot);
    if (!entry) return;
    this.#slots.delete(slot);
    for (const action of entry.actions) {
      // An action armed again by an earlier one's work has left this slot already.
      if (action.slot === slot) action.run();
    }
  }
}
