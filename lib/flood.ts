/**
 * A session's inbound rate limit (`rate_limit`): two token buckets, one of messages and one of
 * bytes, each filled at its rate per second up to `burst` seconds of it. Time comes from the
 * server's scheduler, so tests drive it.
 */
import type { RateLimit } from './options';

/**
 * What each message counts against a byte rate beyond its UTF-8 bytes: its two quotes in the
 * payload, so that empty messages are not free.
 */
export const MESSAGE_FRAMING = 2;

export class RateLimiter {
  #messages: number;
  #bytes: number;
  #at: number;
  /** When a drop was last logged, so that a flood costs one log line per second, not one per message. */
  loggedAt = -Infinity;
  /** Messages dropped since the last log line. */
  unlogged = 0;

  constructor(
    private readonly limit: Required<RateLimit>,
    now: number,
  ) {
    this.#messages = limit.messages * limit.burst;
    this.#bytes = limit.bytes * limit.burst;
    this.#at = now;
  }

  /**
   * How many of `messages`, from the first, fit in the buckets at `now`; those are taken from
   * them. The rest are over the limit.
   */
  take(messages: readonly string[], now: number): number {
    const { limit } = this;
    const elapsed = Math.max(0, now - this.#at) / 1000;
    this.#at = now;
    this.#messages = Math.min(limit.messages * limit.burst, this.#messages + elapsed * limit.messages);
    const counting = limit.bytes !== Infinity;
    if (counting) this.#bytes = Math.min(limit.bytes * limit.burst, this.#bytes + elapsed * limit.bytes);
    let taken = 0;
    for (const message of messages) {
      if (this.#messages < 1) break;
      const bytes = counting ? Buffer.byteLength(message) + MESSAGE_FRAMING : 0;
      if (bytes > this.#bytes) break;
      this.#messages -= 1;
      this.#bytes -= bytes;
      taken++;
    }
    return taken;
  }
}
