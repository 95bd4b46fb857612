/**
 * A receiver is where a session's frames go: one HTTP response (a poll or a stream) or a
 * websocket. To the session reducer it is data; only `sink` touches a socket.
 */
import type { CloseReason } from './reducer';

/** `sockjs`: o/h/a/c frames; `raw`: bare messages, for the raw `/websocket` endpoint. */
export type Framing = 'sockjs' | 'raw';

export interface Sink {
  write(chunk: string): void;
  /** Ends the response, or closes the websocket with `why`. */
  end(why: CloseReason): void;
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
  readonly sink: Sink;
}
