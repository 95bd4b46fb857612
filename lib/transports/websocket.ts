/**
 * The websocket transports (PROTOCOL.md 5.8 and 5.9): `/<server>/<session>/websocket` with SockJS
 * framing and the raw `/websocket`. `ws` does the RFC 6455 handshake and framing; each websocket
 * becomes a stream of session events under a key of its own, so two websockets never share a
 * session, whatever their URL.
 */
import type { IncomingMessage } from 'http';
import type { Duplex } from 'stream';
import { Observable, type Subscriber } from 'rxjs';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { StaticResponse } from '../http/pages';
import { parseWebsocketPayload } from '../payload';
import { type SessionEvent, type SessionKey, type Source } from '../session/reducer';
import { type Framing, onFlush, type Receiver, SharedBytes, type Sink } from '../session/receiver';
import { type CloseReason, CLOSE_REASONS, faultText, HTTP_ERRORS } from '../errors';
import type { Grant } from '../authorization';
import type { PrefixCounters } from '../metrics';

export interface WebsocketKind {
  readonly protocol: 'websocket' | 'websocket-raw';
  readonly framing: Framing;
}

export const SOCKJS_WEBSOCKET: WebsocketKind = { protocol: 'websocket', framing: 'sockjs' };
export const RAW_WEBSOCKET: WebsocketKind = { protocol: 'websocket-raw', framing: 'raw' };

/** Why an upgrade request cannot be a websocket, or null when it can. */
export function refuseUpgrade(req: IncomingMessage, kind: WebsocketKind): StaticResponse | null {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return HTTP_ERRORS.NOT_A_WEBSOCKET;
  if (kind.framing === 'raw') {
    // The raw `/websocket` URL speaks RFC 6455 only, not the drafts before it.
    const version = req.headers['sec-websocket-version'];
    if (version !== '8' && version !== '13') return HTTP_ERRORS.WEBSOCKET_VERSION;
  }
  return null;
}

function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** Close reasons longer than a control frame allows (123 bytes) are cut at a character boundary. */
function fitReason(reason: string): string {
  let fitted = reason;
  while (Buffer.byteLength(fitted) > 123) fitted = fitted.slice(0, -1);
  return fitted;
}

/** The receivers written to in this tick, settled together at its end by one `nextTick`. */
const unsettled: WebsocketReceiver[] = [];

function settleAll(): void {
  // A settle that writes adds its receiver again; the loop reaches it before the list is emptied.
  try {
    for (let i = 0; i < unsettled.length; i++) unsettled[i]!.settle();
  } finally {
    unsettled.length = 0;
  }
}

function settleAtEndOfTick(receiver: WebsocketReceiver): void {
  if (unsettled.push(receiver) === 1) process.nextTick(settleAll);
}

/** Where a socket stands in the current tick: nothing written yet, one frame sent at once, or corked. */
const IDLE = 0;
const SENT_ONE = 1;
const CORKED = 2;

/** How `ws` sends a frame's bytes: as a text message. */
const TEXT = { binary: false } as const;

/**
 * `text` as one whole server-to-client text frame (RFC 6455 5.2: FIN and opcode 1, no mask, the
 * payload's length in 7, 16 or 64 bits), ready to be written to the socket as it is.
 */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, header, 'utf8');
  return frame;
}

/**
 * A frame as it is sent: from its second socket in a row on (a broadcast), one whole websocket
 * frame, made once and written to each socket as the same bytes.
 */
const framed = new SharedBytes(textFrame);

function byteLength(data: RawData): number {
  if (!Array.isArray(data)) return data.byteLength;
  let length = 0;
  for (const part of data) length += part.length;
  return length;
}

function text(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

export interface WebsocketUpgrade {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly key: SessionKey;
  readonly receiverId: number;
  readonly kind: WebsocketKind;
  readonly log: (severity: string, message: string) => void;
  /** The most messages one SockJS-framed websocket message may carry (`max_payload_messages`). */
  readonly maxMessages: number;
  /** What `authorize` granted the handshake. */
  readonly grant?: Grant | undefined;
  /** Where the bytes of its messages are counted, with metrics. */
  readonly counters?: PrefixCounters | null;
  /**
   * Asked right before a handshake that completes later than it was admitted (hixie-76's key3)
   * opens its session: a refusal drops it.
   */
  readonly refusal?: () => StaticResponse | null;
}

/**
 * The session event of one text message on a SockJS-framed websocket: its messages, or the
 * rule it breaks (not JSON: 3000; more messages than allowed: 1009).
 */
export function messageEvent(key: SessionKey, text: string, maxMessages: number, source: Source): SessionEvent {
  const payload = parseWebsocketPayload(text, maxMessages);
  if (payload.ok) return { type: 'incoming', key, messages: payload.messages, source };
  return payload.error === 'TOO_MANY_MESSAGES' ? { type: 'broken', key, why: CLOSE_REASONS.TOO_MANY_MESSAGES } : { type: 'broken', key };
}

/** A `ws` socket that knows the receiver it feeds, so that one set of listeners serves every socket. */
class SessionWebSocket extends WebSocket {
  receiver: WebsocketReceiver | null = null;
}

/** The receiver of a socket of this module's `ws` server, which only ever makes SessionWebSockets. */
function receiverOf(ws: WebSocket): WebsocketReceiver | null {
  return (ws as SessionWebSocket).receiver;
}

function onMessage(this: WebSocket, data: RawData): void {
  receiverOf(this)?.message(data);
}

function onPong(this: WebSocket): void {
  receiverOf(this)?.pong();
}

function onError(this: WebSocket, error: Error): void {
  receiverOf(this)?.error(error);
}

/**
 * `ws` ends the socket once the closing handshake is done (or the connection has failed), then
 * waits for the client's FIN, up to 30 s. The server closes the TCP connection first instead, as
 * RFC 6455 (7.1.1) asks: the socket is destroyed once its last frame has been flushed. This also
 * spares the two `end()` calls `ws` makes on streams that have finished when that FIN arrives,
 * each of which builds an ERR_STREAM_ALREADY_FINISHED error with its stack trace.
 */
function closeFirst(this: Duplex): void {
  this.destroy();
}

function onClose(this: WebSocket, code: number, reason: Buffer): void {
  const receiver = receiverOf(this);
  (this as SessionWebSocket).receiver = null;
  receiver?.detached({ code, reason: reason.toString('utf8') });
}

/**
 * One websocket of a session: the receiver its frames go to, and the source of its events. A
 * session holds one per open websocket for as long as it lives, so it is one object with
 * methods rather than a handful of closures, and keeps nothing of the upgrade request.
 */
class WebsocketReceiver implements Receiver, Sink, Source {
  readonly protocol: WebsocketKind['protocol'];
  readonly framing: Framing;
  readonly limit = Infinity;
  readonly delayDisconnect = false;
  readonly pings = true;
  readonly sink: Sink = this;
  readonly url: string;
  readonly log: (severity: string, message: string) => void;
  readonly #maxMessages: number;
  readonly #grant: Grant | undefined;
  readonly #counters: PrefixCounters | null;
  #ws: SessionWebSocket | null = null;
  #tick: typeof IDLE | typeof SENT_ONE | typeof CORKED = IDLE;
  /** Pauses not yet resumed. */
  #holds = 0;

  constructor(
    readonly id: number,
    readonly key: SessionKey,
    kind: WebsocketKind,
    upgrade: WebsocketUpgrade,
    private readonly socket: Duplex,
    private readonly events: Subscriber<SessionEvent>,
  ) {
    this.protocol = kind.protocol;
    this.framing = kind.framing;
    this.url = upgrade.req.url ?? '';
    this.log = upgrade.log;
    this.#maxMessages = upgrade.maxMessages;
    this.#grant = upgrade.grant;
    this.#counters = upgrade.counters ?? null;
  }

  wrap(frame: string): string {
    return frame;
  }

  /** The handshake is done: the session attaches this receiver. */
  opened(ws: SessionWebSocket, request: IncomingMessage): void {
    this.#ws = ws;
    ws.receiver = this;
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    // Protocol errors (bad frames, invalid UTF-8) are answered by `ws` with a close frame; the
    // `close` event that follows ends the session.
    ws.on('error', onError);
    ws.on('close', onClose);
    this.socket.once('finish', closeFirst);
    const grant = this.#grant;
    this.emit(grant ? { type: 'attach', key: this.key, receiver: this, request, grant } : { type: 'attach', key: this.key, receiver: this, request });
  }

  emit(event: SessionEvent): void {
    this.events.next(event);
  }

  pong(): void {
    this.emit({ type: 'pong', key: this.key });
  }

  error(error: Error): void {
    this.log('info', `websocket ${this.url}: ${error.message}`);
    // `ws` refuses a frame and closes: a message over max_message_size, or a frame that breaks RFC 6455.
    const counters = this.#counters;
    if (counters) counters.refused[(error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'size' : 'bad_input']++;
  }

  message(data: RawData): void {
    // Run from `ws`'s socket listeners, where a throw would reach the process.
    try {
      this.#message(data);
    } catch (error) {
      this.log('error', `websocket ${this.url}: ${faultText(error)}`);
      this.emit({ type: 'broken', key: this.key, why: CLOSE_REASONS.INTERNAL_ERROR });
    }
  }

  #message(data: RawData): void {
    if (this.#counters) this.#counters.bytesReceived += byteLength(data);
    const message = text(data);
    if (this.framing === 'raw') {
      this.emit({ type: 'incoming', key: this.key, messages: [message], source: this });
      return;
    }
    this.emit(messageEvent(this.key, message, this.#maxMessages, this));
  }

  detached(why: CloseReason): void {
    this.emit({ type: 'detach', key: this.key, receiverId: this.id, why });
    this.events.complete();
  }

  write(chunk: string, taken?: () => void): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== ws.OPEN) {
      taken?.();
      return;
    }
    this.#beforeWrite();
    const flushed = onFlush(this.socket, taken);
    const bytes = framed.of(chunk);
    // Without compression `ws` writes every frame to the socket as it is sent and queues none,
    // so a frame written straight to the socket keeps its place among them.
    if (typeof bytes === 'string') ws.send(bytes, TEXT, flushed);
    else this.socket.write(bytes, flushed);
    if (!flushed) taken?.();
  }

  /**
   * The first frame of a tick goes out at once; from the second on, the socket is corked until
   * the end of the tick, so that the rest of a burst (the echoes of messages that arrived in one
   * read) leaves in one system call instead of one each. A lone frame is never held back, so a
   * client with a few messages in flight gets each answer as soon as it is made, and the two
   * ends do not fall into answering each other in whole batches, each waiting for the other.
   */
  #beforeWrite(): void {
    if (this.#tick === IDLE) {
      this.#tick = SENT_ONE;
      settleAtEndOfTick(this);
    } else if (this.#tick === SENT_ONE) {
      this.#tick = CORKED;
      this.socket.cork();
    }
  }

  /** Holds every write of the rest of this tick, the next one included, for one system call. */
  cork(): void {
    if (this.#tick === CORKED) return;
    if (this.#tick === IDLE) settleAtEndOfTick(this);
    this.#tick = CORKED;
    this.socket.cork();
  }

  /** The end of the tick: what was held leaves. */
  settle(): void {
    if (this.#tick === CORKED) this.socket.uncork();
    this.#tick = IDLE;
  }

  end(why: CloseReason, abort?: boolean): void {
    const ws = this.#ws;
    if (!ws) return;
    if (abort) {
      ws.terminate();
      return;
    }
    if (ws.readyState !== ws.OPEN && ws.readyState !== ws.CONNECTING) return;
    // Codes the wire cannot carry (2010, 1006 ...) close as a normal closure with their reason.
    ws.close(isValidCloseCode(why.code) ? why.code : 1000, fitReason(why.reason));
  }

  buffered(): number {
    return this.socket.writableLength;
  }

  /**
   * Stops reading the socket while the application does not read, or while the session rests
   * over its rate limit: each pause has its resume, and the socket is read again once every
   * pause has had it.
   */
  pause(): void {
    if (this.#holds++ === 0) this.#ws?.pause();
  }

  resume(): void {
    if (this.#holds === 0) return;
    if (--this.#holds === 0) this.#ws?.resume();
  }

  get paused(): boolean {
    return this.#ws?.isPaused ?? false;
  }

  ping(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    // The heartbeat frame written right after the ping leaves in the same packet.
    this.cork();
    ws.ping();
  }

  /** The session table let go of this websocket: drop it. */
  unsubscribe(): void {
    const ws = this.#ws;
    // What was written this tick (a close frame, say) goes out before the socket is dropped.
    this.settle();
    if (ws && ws.readyState !== ws.CLOSED) ws.terminate();
  }
}

/**
 * The events of one websocket: `attach` once the handshake is done, `incoming` per message,
 * `detach` when the peer goes. Unsubscribing terminates the socket.
 */
export function websocketEvents(wss: WebSocketServer, upgrade: WebsocketUpgrade): Observable<SessionEvent> {
  return new Observable<SessionEvent>((subscriber) => {
    const { req, socket, head } = upgrade;
    // Gone while it waited (for `authorize`, say): its `close` has fired, and would not again.
    if (socket.destroyed) {
      subscriber.complete();
      return undefined;
    }
    const receiver = new WebsocketReceiver(upgrade.receiverId, upgrade.key, upgrade.kind, upgrade, socket, subscriber);
    // `ws` answers a bad handshake itself and destroys the socket, without calling back.
    const refused = () => subscriber.complete();
    socket.once('close', refused);
    // The handshake's answer and the open frame written right after it leave in one system
    // call. A refused handshake ends the socket, which flushes it at once.
    receiver.cork();
    wss.handleUpgrade(req, socket, head, (client, request) => {
      socket.off('close', refused);
      receiver.opened(client as SessionWebSocket, request);
    });
    return receiver;
  });
}

/**
 * One `ws` server per endpoint, without a listening socket of its own. A message over
 * `maxPayload` bytes closes the websocket with 1009.
 */
export function createWebsocketServer(maxPayload: number): WebSocketServer {
  return new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload, WebSocket: SessionWebSocket });
}
