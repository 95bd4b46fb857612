import { BatchScheduler } from '../../lib/session/batch-scheduler';

describe('BatchScheduler', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('runs work with its state once its delay has passed, never before, at most one slot late', () => {
    const scheduler = new BatchScheduler(4);
    const ran: Array<[string | undefined, number]> = [];
    const start = scheduler.now();
    scheduler.schedule((state) => ran.push([state, scheduler.now() - start]), 10, 'a');
    jest.advanceTimersByTime(9);
    expect(ran).toEqual([]);
    jest.advanceTimersByTime(10);
    expect(ran).toHaveLength(1);
    expect(ran[0]![0]).toBe('a');
    expect(ran[0]![1]).toBeGreaterThanOrEqual(10);
    expect(ran[0]![1]).toBeLessThanOrEqual(14);
  });

  it('shares one Node timer among the actions due in one slot, and runs them in the order armed', () => {
    const scheduler = new BatchScheduler(10);
    const ran: string[] = [];
    for (const name of ['a', 'b', 'c']) scheduler.schedule(() => ran.push(name), 20);
    scheduler.schedule(() => ran.push('later'), 100);
    expect(jest.getTimerCount()).toBe(2);
    jest.advanceTimersByTime(30);
    expect(ran).toEqual(['a', 'b', 'c']);
    jest.advanceTimersByTime(100);
    expect(ran).toEqual(['a', 'b', 'c', 'later']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('forgets an action unsubscribed before it is due, and clears a slot left empty', () => {
    const scheduler = new BatchScheduler(4);
    const ran: string[] = [];
    const kept = scheduler.schedule(() => ran.push('kept'), 8);
    const dropped = scheduler.schedule(() => ran.push('dropped'), 8);
    dropped.unsubscribe();
    const alone = scheduler.schedule(() => ran.push('alone'), 50);
    alone.unsubscribe();
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(100);
    expect(ran).toEqual(['kept']);
    expect(kept.closed).toBe(true);
  });

  it('lets work schedule itself again, and an action cancel another of its slot', () => {
    const scheduler = new BatchScheduler(4);
    const ran: number[] = [];
    const repeating = scheduler.schedule<number>(
      function (count = 0) {
        ran.push(count);
        if (count < 2) this.schedule(count + 1, 10);
      },
      10,
      0,
    );
    let victim = scheduler.schedule(() => ran.push(-1), 40);
    scheduler.schedule(() => victim.unsubscribe(), 39);
    victim = scheduler.schedule(() => ran.push(-2), 40);
    jest.advanceTimersByTime(200);
    expect(ran).toEqual([0, 1, 2, -1]);
    expect(repeating.closed).toBe(true);
  });

  it('runs its work on a timer that does not keep the process alive', async () => {
    jest.useRealTimers();
    const scheduler = new BatchScheduler(4);
    const keepingAlive = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = keepingAlive();
    const ran = new Promise<string | undefined>((resolve) => scheduler.schedule(resolve, 10, 'ran'));
    expect(keepingAlive()).toBe(before);
    // A timer of the test's own keeps the process up until the work has run.
    const guard = setTimeout(() => undefined, 1000);
    await expect(ran).resolves.toBe('ran');
    clearTimeout(guard);
  });
});
