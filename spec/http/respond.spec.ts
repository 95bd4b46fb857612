import { PassThrough } from 'stream';
import { destroyAfter } from '../../lib/http/respond';

describe('destroyAfter', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('destroys a socket that has not closed within the time', () => {
    const socket = new PassThrough();
    destroyAfter(socket, 10_000);
    jest.advanceTimersByTime(9_999);
    expect(socket.destroyed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(socket.destroyed).toBe(true);
  });

  it('lets go of a socket that closed by itself, and of one it was called off for', async () => {
    const closing = new PassThrough();
    destroyAfter(closing, 10_000);
    closing.destroy();
    jest.useRealTimers();
    await new Promise((resolve) => closing.once('close', resolve));
    expect(closing.listenerCount('close')).toBe(0);
    jest.useFakeTimers();
    const kept = new PassThrough();
    const cancel = destroyAfter(kept, 10_000);
    cancel();
    jest.advanceTimersByTime(20_000);
    expect(kept.destroyed).toBe(false);
    expect(kept.listenerCount('close')).toBe(0);
  });

  it('does nothing for a socket already destroyed', () => {
    const socket = new PassThrough();
    socket.destroy();
    const cancel = destroyAfter(socket, 10);
    expect(jest.getTimerCount()).toBe(0);
    cancel();
  });
});
