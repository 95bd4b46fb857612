/**
 * A session as a pure reducer: (state, event, now) -> (state, effects). Nothing here touches a
 * socket or a clock; the effects are data, performed by `session.ts`, and time arrives as `now`.
 */
import type { IncomingMessage } from 'http';
import { closeFrame, heartbeatFrame, messageFrame, openFrame } from '../frames';
import type { Framing, Receiver } from './receiver';
import { type CloseReason, CLOSE_REASONS } from '../errors';
import type { Grant } from '../authorization';

/** Keys of the session table: HTTP session ids are strings, websocket sessions numbers. */
export type SessionKey = string | number;

export type Phase = 'new' | 'open' | 'closing' | 'ended';

/** A write's acknowledgement, released once the session has taken the message. */
export type Ack = () => void;

/** How a send request (`xhr_send`, `jsonp_send`) is answered. */
export interface Reply {
  accept(): void;
  unknownSession(): void;
  /** The session's owner, another process, cannot be reached (`relay`): never called by the reducer. */
  unavailable(): void;
  /** The session's owner, another process, found the request without the session's credentials (`relay`): never called by the reducer. */
  refused(): void;
}

/** Where a client's messages are read from: paused while the application does not read them. */
export interface Source {
  pause(): void;
  resume(): void;
}

export type SessionEvent =
  /**
   * A receiving request or a websocket arrived for this session. `request` is the one that
   * opens the session; null for a receiver relayed from another process, which attaches to an
   * open session only.
   */
  | {
      readonly type: 'attach';
      readonly key: SessionKey;
      readonly receiver: Receiver;
      readonly request: IncomingMessage | null;
      /** What `authorize` granted the request that opens the session. */
      readonly grant?: Grant;
    }
  /** The client went away from a receiver before the server ended it. */
  | { readonly type: 'detach'; readonly key: SessionKey; readonly receiverId: number; readonly why: CloseReason }
  /**
   * Messages from the client; `reply` answers the HTTP request that carried them, `source` is the
   * websocket they came on, held while the application does not read.
   */
  | {
      readonly type: 'incoming';
      readonly key: SessionKey;
      readonly messages: readonly string[];
      readonly reply?: Reply;
      readonly source?: Source;
    }
  /** A websocket message that is not valid JSON (or, with `why`, breaks another rule of the payload). */
  | { readonly type: 'broken'; readonly key: SessionKey; readonly why?: CloseReason }
  /** Messages from the application. */
  | { readonly type: 'outgoing'; readonly key: SessionKey; readonly messages: readonly string[]; readonly ack?: Ack }
  /** The application closes the session. */
  | { readonly type: 'close'; readonly key: SessionKey; readonly why: CloseReason }
  | { readonly type: 'heartbeat'; readonly key: SessionKey }
  /** The websocket peer answered a ping. */
  | { readonly type: 'pong'; readonly key: SessionKey }
  | { readonly type: 'expire'; readonly key: SessionKey }
  /** Marks the end of the session's stream; the session table drops the key on it. */
  | { readonly type: 'end'; readonly key: SessionKey };

export type Effect =
  /** Writes a chunk; `acks` are released once the receiver has taken it (see `Sink.write`). */
  | { readonly type: 'write'; readonly receiver: Receiver; readonly chunk: string; readonly acks: readonly Ack[] }
  /** Ends a receiver; `abort` drops the socket without a closing handshake (a dead peer). */
  | { readonly type: 'finish'; readonly receiver: Receiver; readonly why: CloseReason; readonly abort?: boolean }
  | { readonly type: 'ping'; readonly receiver: Receiver }
  | { readonly type: 'open'; readonly receiver: Receiver; readonly request: IncomingMessage; readonly grant: Grant | undefined }
  | { readonly type: 'deliver'; readonly messages: readonly string[]; readonly source: Source | undefined }
  /** Messages from the client that arrived after the session began closing (or ended), and go nowhere. */
  | { readonly type: 'dropped'; readonly count: number }
  /** A heartbeat frame went out (for the metrics). */
  | { readonly type: 'heartbeat' }
  | { readonly type: 'reply'; readonly reply: Reply; readonly accepted: boolean }
  | { readonly type: 'ack'; readonly ack: Ack }
  | { readonly type: 'closed'; readonly why: CloseReason }
  | { readonly type: 'end' };

interface Attached {
  readonly receiver: Receiver;
  /** Bytes written on this receiver, counted against its limit. */
  readonly written: number;
}

/**
 * Messages waiting for a receiver as a list of batches, the latest first: appending one shares
 * all that came before, so a queue of many small messages is never copied once per message.
 */
export interface Queued {
  readonly messages: readonly string[];
  readonly earlier: Queued | null;
}

/** The queued messages in the order they were sent. */
function inOrder(queue: Queued): readonly string[] {
  if (queue.earlier === null) return queue.messages;
  const batches: (readonly string[])[] = [];
  for (let q: Queued | null = queue; q !== null; q = q.earlier) batches.push(q.messages);
  const messages: string[] = [];
  for (let i = batches.length - 1; i >= 0; i--) for (const message of batches[i]!) messages.push(message);
  return messages;
}

/**
 * What a message waiting in a queue costs: its UTF-8 bytes (at least what the string takes in
 * memory) and the bookkeeping of one entry, so that empty messages are not free.
 */
export function messageCost(message: string | Uint8Array): number {
  if (typeof message !== 'string') return message.length + ENTRY_COST;
  if (message.length < COSTED_LENGTH || message.length > KEPT_LENGTH) return Buffer.byteLength(message) + ENTRY_COST;
  // A longer message written to many connections in a row (a broadcast) is measured once; the
  // one kept is at most 16 Ki characters.
  if (message !== lastCosted) {
    lastCosted = message;
    lastCost = Buffer.byteLength(message) + ENTRY_COST;
  }
  return lastCost;
}

/** Messages of these lengths have their cost kept for the next call with the same message. */
const COSTED_LENGTH = 256;
const KEPT_LENGTH = 16 * 1024;
let lastCosted: string | null = null;
let lastCost = 0;

const ENTRY_COST = 64;

/** What `messageCost` adds to a message's bytes. */
export const MESSAGE_OVERHEAD = ENTRY_COST;

const HEARTBEAT_SENT: Effect = Object.freeze({ type: 'heartbeat' });

export interface SessionState {
  readonly phase: Phase;
  readonly attached: Attached | null;
  /** Messages waiting for a receiver, the latest batch first. */
  readonly queue: Queued | null;
  /** What `queue` costs (see `messageCost`). */
  readonly queuedBytes: number;
  /** Acknowledgements held back while the queue is over its high-water mark. */
  readonly heldAcks: readonly Ack[];
  /** A ping went to the websocket peer and no pong (nor any message) has come back since. */
  readonly awaitingPong: boolean;
  readonly closing: CloseReason | null;
  /** Scheduler time of the last frame written, for heartbeats. */
  readonly lastWriteAt: number;
  /** When the heartbeat timer fires next; null when no receiver is attached. */
  readonly heartbeatAt: number | null;
  /** When the session expires for want of a receiver; null while one is attached. */
  readonly expireAt: number | null;
}

export interface SessionConfig {
  readonly heartbeatDelay: number;
  readonly disconnectDelay: number;
  /**
   * What the session queues for an absent receiver (see `messageCost`) before it holds back acknowledgements, so
   * that a writer honouring backpressure (`pipe`) waits for the client. Default 16 KiB.
   */
  readonly queueHighWater?: number;
}

const QUEUE_HIGH_WATER = 16 * 1024;

/** Shared by every step that has no acknowledgements or queued messages, so none allocates one. */
const NONE: readonly never[] = Object.freeze([]);

export interface Step {
  readonly state: SessionState;
  readonly effects: readonly Effect[];
}

export const INITIAL: SessionState = {
  phase: 'new',
  attached: null,
  queue: null,
  queuedBytes: 0,
  heldAcks: NONE,
  awaitingPong: false,
  closing: null,
  lastWriteAt: 0,
  heartbeatAt: null,
  expireAt: null,
};

/** The frames of one step, per framing: SockJS framing, or raw messages for `/websocket`. */
const OPEN_FRAMES: readonly string[] = Object.freeze([openFrame()]);
const HEARTBEAT_FRAMES: readonly string[] = Object.freeze([heartbeatFrame()]);

function framesFor(framing: Framing, kind: 'open' | 'heartbeat' | 'close', state: SessionState): readonly string[] {
  if (framing === 'raw') return NONE;
  if (kind === 'open') return OPEN_FRAMES;
  if (kind === 'heartbeat') return HEARTBEAT_FRAMES;
  const why = state.closing ?? CLOSE_REASONS.NORMAL_CLOSURE;
  return [closeFrame(why.code, why.reason)];
}

function messagesFor(framing: Framing, messages: readonly string[]): readonly string[] {
  if (messages.length === 0) return NONE;
  return framing === 'raw' ? messages : [messageFrame(messages)];
}

type Draft = { -readonly [K in keyof SessionState]: SessionState[K] };

/**
 * A copy of a state, field by field. Not `{ ...state }`: every state would then be a clone of a
 * clone, which V8 (11.3, Node 20) copies by a slow path, about 140 ns against 16 for this, or
 * 2 % of a websocket echo.
 */
function copy(state: SessionState): Draft {
  return {
    phase: state.phase,
    attached: state.attached,
    queue: state.queue,
    queuedBytes: state.queuedBytes,
    heldAcks: state.heldAcks,
    awaitingPong: state.awaitingPong,
    closing: state.closing,
    lastWriteAt: state.lastWriteAt,
    heartbeatAt: state.heartbeatAt,
    expireAt: state.expireAt,
  };
}

/** A step under construction: the reducer's private, mutable scratch. */
class Builder {
  state: SessionState;
  readonly effects: Effect[] = [];
  /** This step's own copy of the state, made on its first change: one copy per step, not per change. */
  #draft: Draft | null = null;

  constructor(
    state: SessionState,
    readonly now: number,
    readonly config: SessionConfig,
  ) {
    this.state = state;
  }

  /** The state this step may change in place; the state it was given stays untouched. */
  draft(): Draft {
    if (!this.#draft) this.state = this.#draft = copy(this.state);
    return this.#draft;
  }

  set(patch: Partial<SessionState>): void {
    Object.assign(this.draft(), patch);
  }

  /**
   * Writes frames to the attached receiver until its limit is reached, when the receiver is
   * finished and detached (a poll after one frame, a stream after `response_limit` bytes).
   * Returns the frames that were not written.
   */
  write(frames: readonly string[], acks: readonly Ack[] = NONE): readonly string[] {
    for (let i = 0; i < frames.length; i++) {
      const attached = this.state.attached;
      if (!attached) {
        this.ack(acks);
        return frames.slice(i);
      }
      const { receiver } = attached;
      const chunk = receiver.wrap(frames[i]!);
      // The acknowledgements ride on the last chunk: the messages are taken once it is.
      this.effects.push({ type: 'write', receiver, chunk, acks: i === frames.length - 1 ? acks : NONE });
      const draft = this.draft();
      draft.lastWriteAt = this.now;
      // A receiver without a limit (a websocket) counts nothing, so its frames allocate no count.
      if (receiver.limit === Infinity) continue;
      const written = attached.written + Buffer.byteLength(chunk);
      draft.attached = { receiver, written };
      if (written >= receiver.limit) this.release(CLOSE_REASONS.NORMAL_CLOSURE);
    }
    return NONE;
  }

  ack(acks: readonly Ack[]): void {
    for (const ack of acks) this.effects.push({ type: 'ack', ack });
  }

  /** Ends the attached receiver; an HTTP session then waits `disconnect_delay` for the next one. */
  release(why: CloseReason): void {
    const attached = this.state.attached;
    if (!attached) return;
    this.effects.push({ type: 'finish', receiver: attached.receiver, why });
    const draft = this.draft();
    draft.attached = null;
    draft.heartbeatAt = null;
    if (attached.receiver.delayDisconnect) draft.expireAt = this.now + this.config.disconnectDelay;
    else this.end(null);
  }

  /** Ends the session; `why` is told to the application unless it closed the session itself. */
  end(why: CloseReason | null): void {
    if (this.state.phase === 'ended') return;
    if (why && this.state.phase === 'open') this.effects.push({ type: 'closed', why });
    this.dropQueue();
    const draft = this.draft();
    draft.phase = 'ended';
    draft.attached = null;
    draft.heartbeatAt = null;
    draft.expireAt = null;
    this.effects.push({ type: 'end' });
  }

  /** Forgets queued messages, releasing any writer still waiting on them. */
  dropQueue(): void {
    this.ack(this.state.heldAcks);
    this.clearQueue();
  }

  clearQueue(): void {
    const { queue, heldAcks, queuedBytes } = this.state;
    if (queue === null && heldAcks === NONE && queuedBytes === 0) return;
    const draft = this.draft();
    draft.queue = null;
    draft.queuedBytes = 0;
    draft.heldAcks = NONE;
  }

  attach(receiver: Receiver): void {
    const draft = this.draft();
    draft.attached = { receiver, written: 0 };
    draft.heartbeatAt = this.now + this.config.heartbeatDelay;
    draft.expireAt = null;
    draft.awaitingPong = false;
  }

  flushQueue(): void {
    const { attached, queue, heldAcks } = this.state;
    if (!attached || queue === null) return;
    this.clearQueue();
    this.write(messagesFor(attached.receiver.framing, inOrder(queue)), heldAcks);
  }
}

/** A second receiver while one is attached is told 2010 and ended; the first stays. */
function refuse(b: Builder, receiver: Receiver): void {
  if (receiver.framing !== 'raw') {
    b.effects.push({
      type: 'write',
      receiver,
      chunk: receiver.wrap(closeFrame(CLOSE_REASONS.ANOTHER_CONNECTION.code, CLOSE_REASONS.ANOTHER_CONNECTION.reason)),
      acks: NONE,
    });
  }
  b.effects.push({ type: 'finish', receiver, why: CLOSE_REASONS.ANOTHER_CONNECTION });
}

function onAttach(b: Builder, receiver: Receiver, request: IncomingMessage | null, grant: Grant | undefined): void {
  const { phase } = b.state;
  if (request === null && (phase === 'new' || phase === 'ended')) {
    // Relayed from another process for a session this one no longer has: that process looks again.
    b.effects.push({ type: 'finish', receiver, why: CLOSE_REASONS.UNKNOWN_SESSION });
    b.end(null);
  } else if (phase === 'ended') {
    refuse(b, receiver);
  } else if (phase === 'new' && request !== null) {
    b.draft().phase = 'open';
    b.attach(receiver);
    b.write(framesFor(receiver.framing, 'open', b.state));
    b.effects.push({ type: 'open', receiver, request, grant });
    b.flushQueue();
  } else if (b.state.attached) {
    refuse(b, receiver);
  } else if (phase === 'open') {
    b.attach(receiver);
    b.flushQueue();
  } else {
    // Closing: the close frame goes to every receiver until the session expires.
    b.attach(receiver);
    b.flushQueue();
    b.write(framesFor(receiver.framing, 'close', b.state));
    b.release(b.state.closing ?? CLOSE_REASONS.NORMAL_CLOSURE);
  }
}

function onOutgoing(b: Builder, messages: readonly string[], ack: Ack | undefined): void {
  const acks = ack ? [ack] : NONE;
  if (b.state.phase !== 'open' || messages.length === 0) {
    // Nothing to send (or no one to send it to: the session is closing): release the writer.
    b.ack(acks);
    return;
  }
  const attached = b.state.attached;
  if (attached) {
    b.write(messagesFor(attached.receiver.framing, messages), acks);
    return;
  }
  let bytes = b.state.queuedBytes;
  for (const message of messages) bytes += messageCost(message);
  b.set({ queue: { messages, earlier: b.state.queue }, queuedBytes: bytes });
  // Below the high-water mark the session takes the messages at once; above it the writer waits
  // until a receiver takes them.
  if (bytes <= (b.config.queueHighWater ?? QUEUE_HIGH_WATER)) b.ack(acks);
  else b.set({ heldAcks: [...b.state.heldAcks, ...acks] });
}

function onClose(b: Builder, why: CloseReason): void {
  if (b.state.phase !== 'open') return;
  b.effects.push({ type: 'closed', why });
  b.set({ phase: 'closing', closing: why });
  // The connection is closed: writers waiting on the queue are released (what was queued still
  // goes out ahead of the close frame).
  b.ack(b.state.heldAcks);
  b.set({ heldAcks: NONE });
  const attached = b.state.attached;
  if (!attached) return;
  b.write(framesFor(attached.receiver.framing, 'close', b.state));
  b.release(attached.receiver.framing === 'raw' ? why : CLOSE_REASONS.NORMAL_CLOSURE);
}

function onHeartbeat(b: Builder): void {
  const { attached, phase, lastWriteAt, heartbeatAt } = b.state;
  if (!attached || phase !== 'open' || heartbeatAt === null) return;
  // Traffic since the timer was armed postpones the heartbeat; deciding on that rather than on
  // the clock keeps a timer that fires a millisecond early from stalling the heartbeat.
  const armedAt = heartbeatAt - b.config.heartbeatDelay;
  if (lastWriteAt > armedAt) {
    b.draft().heartbeatAt = lastWriteAt + b.config.heartbeatDelay;
    return;
  }
  const { receiver } = attached;
  if (receiver.pings) {
    if (b.state.awaitingPong && !receiver.paused) {
      // A whole heartbeat_delay without an answer: the peer is gone, and no close frame would
      // reach it.
      b.effects.push({ type: 'closed', why: CLOSE_REASONS.NO_HEARTBEAT });
      b.effects.push({ type: 'finish', receiver, why: CLOSE_REASONS.NO_HEARTBEAT, abort: true });
      b.set({ phase: 'closing', attached: null });
      b.end(null);
      return;
    }
    b.effects.push({ type: 'ping', receiver });
    b.draft().awaitingPong = true;
  }
  if (receiver.framing !== 'raw') b.effects.push(HEARTBEAT_SENT);
  b.write(framesFor(receiver.framing, 'heartbeat', b.state));
  if (b.state.attached) b.draft().heartbeatAt = b.now + b.config.heartbeatDelay;
}

/** The session's transition function. */
export function step(state: SessionState, event: SessionEvent, now: number, config: SessionConfig): Step {
  const b = new Builder(state, now, config);
  if (state.phase === 'new' && event.type !== 'attach') {
    // Only a receiver opens a session; anything else for an unknown id is answered and dropped.
    // A send is refused (404); a websocket's messages that come after its session ended (it
    // was closed while they were on the way) are said to be dropped.
    if (event.type === 'incoming' && event.reply) b.effects.push({ type: 'reply', reply: event.reply, accepted: false });
    else if (event.type === 'incoming' && event.messages.length > 0) b.effects.push({ type: 'dropped', count: event.messages.length });
    if (event.type === 'outgoing' && event.ack) b.effects.push({ type: 'ack', ack: event.ack });
    b.end(null);
    return b;
  }
  switch (event.type) {
    case 'attach':
      onAttach(b, event.receiver, event.request, event.grant);
      break;
    case 'detach':
      if (b.state.attached?.receiver.id === event.receiverId) {
        const draft = b.draft();
        draft.attached = null;
        draft.heartbeatAt = null;
        b.end(event.why);
      }
      break;
    case 'incoming':
      if (b.state.phase === 'ended') {
        if (event.reply) b.effects.push({ type: 'reply', reply: event.reply, accepted: false });
        b.end(null);
        break;
      }
      // Anything from the peer shows it is alive.
      if (b.state.awaitingPong) b.draft().awaitingPong = false;
      if (b.state.phase === 'open' && event.messages.length > 0) {
        b.effects.push({ type: 'deliver', messages: event.messages, source: event.source });
      } else if (event.messages.length > 0) {
        // The session is closing: no one will read these, and the client is told so by the close
        // frame of its next request; the server says what it dropped.
        b.effects.push({ type: 'dropped', count: event.messages.length });
      }
      if (event.reply) b.effects.push({ type: 'reply', reply: event.reply, accepted: true });
      break;
    case 'broken': {
      // Only websockets send frames; a broken one closes the socket and ends the session.
      const why = event.why ?? CLOSE_REASONS.BROKEN_FRAMING;
      if (b.state.phase === 'open') b.effects.push({ type: 'closed', why });
      if (b.state.attached) b.effects.push({ type: 'finish', receiver: b.state.attached.receiver, why });
      b.set({ phase: 'closing', attached: null });
      b.end(null);
      break;
    }
    case 'outgoing':
      onOutgoing(b, event.messages, event.ack);
      break;
    case 'close':
      onClose(b, event.why);
      break;
    case 'heartbeat':
      onHeartbeat(b);
      break;
    case 'pong':
      if (b.state.awaitingPong) b.draft().awaitingPong = false;
      break;
    case 'expire':
      // The timer is replaced whenever expireAt changes, so one that fires is the current one.
      if (!b.state.attached && b.state.expireAt !== null) b.end(CLOSE_REASONS.TIMED_OUT);
      break;
    case 'end':
      break;
  }
  return b;
}
