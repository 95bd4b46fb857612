/**
 * A session's inbound rate limit (`rate_limit`): two token buckets, one of messages and one of
 * bytes, each filled at its rate per second up to `burst` seconds of it. Time comes from the
 * server's scheduler, so tests drive it.
 */
import type { Subscription } from 'rxjs';
import type { RateLimit } from './options';
import type { Source } from './session/reducer';

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
  /** Until when (scheduler time) the session rests after going over its limit: its client is not read. */
  restUntil = -Infinity;
  /** The rest's one timer, while the session rests. */
  timer: Subscription | null = null;
  /** The websocket the rest paused, until it is resumed. */
  paused: Source | null = null;
  /** Answers to HTTP sends held until the rest is over. */
  held: Array<() => void> = [];

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
    this.#refill(now);
    const { limit } = this;
    const counting = limit.bytes !== Infinity;
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

  /**
   * How long the session rests from `now`, over its limit: until both buckets are full again,
   * at most `longest` ms. A message too big for the byte bucket is over the limit with the
   * buckets full: its rest is the whole of `burst`.
   */
  rest(now: number, longest: number): number {
    const full = this.untilFull(now);
    return Math.min(full > 0 ? full : this.limit.burst * 1000, longest);
  }

  /** Milliseconds from `now` until both buckets are full again. */
  untilFull(now: number): number {
    this.#refill(now);
    const { limit } = this;
    const messages = limit.messages === Infinity ? 0 : (limit.messages * limit.burst - this.#messages) / limit.messages;
    const bytes = limit.bytes === Infinity ? 0 : (limit.bytes * limit.burst - this.#bytes) / limit.bytes;
    return Math.ceil(Math.max(messages, bytes) * 1000);
  }

  #refill(now: number): void {
    const { limit } = this;
    const elapsed = Math.max(0, now - this.#at) / 1000;
    // A clock that went back refills nothing, and is taken as the time from now on.
    this.#at = now;
    this.#messages = Math.min(limit.messages * limit.burst, this.#messages + elapsed * limit.messages);
    if (limit.bytes !== Infinity) this.#bytes = Math.min(limit.bytes * limit.burst, this.#bytes + elapsed * limit.bytes);
  }
}
