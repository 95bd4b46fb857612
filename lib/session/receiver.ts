/**
 * A receiver is where a session's frames go: one HTTP response (a poll or a stream) or a
 * websocket. To the session reducer it is data; only `sink` touches a socket.
 */
import type { CloseReason } from '../errors';

/** `sockjs`: o/h/a/c frames; `raw`: bare messages, for the raw `/websocket` URL. */
export type Framing = 'sockjs' | 'raw';

export interface Sink {
  /**
   * Writes a chunk; `taken` is called once the transport has taken it: at once while the socket
   * is below its high-water mark, else once the chunk has left for the client (or cannot anymore).
   * So a writer waits only for a client that does not keep up, and what it writes meanwhile is
   * sent together.
   */
  write(chunk: string, taken?: () => void): void;
  /** Ends the response, or closes the websocket with `why`; `abort` drops it without ceremony. */
  end(why: CloseReason, abort?: boolean): void;
  /** Sends a websocket ping, where the transport has them. */
  ping?(): void;
  /** Bytes written and not yet flushed to the kernel, for `bytesQueued` of the metrics. */
  buffered?(): number;
}

/**
 * The callback a transport hands its write, by the rule of `Sink.write`: `taken` itself while the
 * stream is over its high-water mark, so that it waits for the flush; else none, and the caller
 * calls `taken` right after the write. An acknowledgement ignores the error argument: a failed
 * write ends the socket, and the session with it.
 *
 * Each transport writes with a call of its own (`res.write`, `ws.send`, `socket.write`), so the
 * three lines around this one stay at each call site: a helper that took the write as a function
 * would cost a closure per message.
 */
export function onFlush(stream: { readonly writableNeedDrain: boolean }, taken?: () => void): (() => void) | undefined {
  return stream.writableNeedDrain ? taken : undefined;
}

/** Frames up to this many characters are kept for the next receiver, by `Shared`. */
const SHARED_LIMIT = 16 * 1024;

/**
 * The last value made from a frame, handed back while the same frame comes again: a message that
 * goes to many sessions in a row (a broadcast) is wrapped and encoded once, and every socket is
 * written the same bytes. Frames are compared as strings, so a mere repeat of the text shares too;
 * long frames are not kept, so that at most a few small ones stay alive.
 */
export class Shared<T> {
  #frame: string | null = null;
  #value: T | undefined;

  constructor(private readonly make: (frame: string) => T) {}

  of(frame: string): T {
    if (frame === this.#frame) return this.#value as T;
    const value = this.make(frame);
    if (frame.length <= SHARED_LIMIT) {
      this.#frame = frame;
      this.#value = value;
    }
    return value;
  }
}

/**
 * A chunk as a transport writes it: the string itself the first time, since Node encodes a string
 * as it writes it for less than a Buffer costs; from the second write of the same chunk in a row
 * on (a broadcast), its bytes as `encode` makes them (by default its UTF-8, a websocket adds the
 * frame's header), made once for every socket that follows.
 */
export class SharedBytes {
  #chunk: string | null = null;
  #bytes: Buffer | null = null;

  constructor(private readonly encode: (chunk: string) => Buffer = (chunk) => Buffer.from(chunk)) {}

  of(chunk: string): string | Buffer {
    if (chunk !== this.#chunk) {
      this.#chunk = chunk.length <= SHARED_LIMIT ? chunk : null;
      this.#bytes = null;
      return chunk;
    }
    this.#bytes ??= this.encode(chunk);
    return this.#bytes;
  }
}

export interface Receiver {
  /** Unique among the receivers of one endpoint. */
  readonly id: number;
  /** The transport's name as `Connection.protocol` reports it, e.g. `xhr-streaming`. */
  readonly protocol: string;
  readonly framing: Framing;
  /** Wraps one frame for the wire: `o` becomes `o\n` on xhr, `data: o\r\n\r\n` on eventsource. */
  readonly wrap: (frame: string) => string;
  /** Bytes after which the receiver is ended: 1 for polls, `response_limit` for streams. */
  readonly limit: number;
  /**
   * Whether the session outlives this receiver by `disconnect_delay` (HTTP), or ends with it
   * (websocket).
   */
  readonly delayDisconnect: boolean;
  /** Whether heartbeats also ping the peer and a missing pong closes the session (RFC 6455 websockets). */
  readonly pings: boolean;
  /**
   * Whether the receiver's socket is not being read, because the application is not reading:
   * a pong cannot arrive then, so a missing one proves nothing.
   */
  readonly paused?: boolean;
  readonly sink: Sink;
}
