/**
 * The hixie-76 websocket (draft-hixie-thewebsocketprotocol-76, also hybi-00) on
 * `/<server>/<session>/websocket`, behind the `hixie76` option. Browsers left it long ago, but
 * proxies such as HAProxy still relay it, and the SockJS protocol suite tests it
 * (PROTOCOL.md 5.8). `ws` does not speak it, so the handshake and its framing live here;
 * RFC 6455 stays with `ws`.
 *
 * The handshake answers in two parts: the 101 headers at once, and the 16-byte challenge answer
 * once the client's 8-byte key3 has arrived. HAProxy sends the request headers, waits for the
 * response headers and only then forwards key3, so waiting for key3 before answering would hang.
 */
import { createHash } from 'crypto';
import type { IncomingMessage } from 'http';
import { Socket } from 'net';
import type { Duplex } from 'stream';
import { Observable, type Subscription, timer } from 'rxjs';
import { TLSSocket } from 'tls';
import { type SessionEvent, type Source } from '../session/reducer';
import { onFlush, type Receiver } from '../session/receiver';
import { destroyAfter, SOCKET_GRACE_MS } from '../http/respond';
import { messageEvent, type WebsocketUpgrade } from './websocket';
import { type CloseReason, CLOSE_REASONS, faultText } from '../errors';

/** Whether an upgrade request asks for hixie-76 rather than RFC 6455 (which always names a version). */
export function isHixie76(req: IncomingMessage): boolean {
  const { headers } = req;
  return (
    typeof headers['sec-websocket-key1'] === 'string' &&
    typeof headers['sec-websocket-key2'] === 'string' &&
    headers['sec-websocket-version'] === undefined
  );
}

/** The two numbers hidden in a `Sec-WebSocket-Key1/2` header: its digits read as one number, and its spaces. */
export function hixieKeyParts(key: string): { readonly digits: number; readonly spaces: number } {
  const digits = key.replace(/[^0-9]/g, '');
  return { digits: digits === '' ? 0 : Number(digits), spaces: key.split(' ').length - 1 };
}

/**
 * The value a key stands for: its digits divided by its spaces, which must be a whole number
 * that fits in 32 bits. Null for a key that breaks those rules; such a client is not answered.
 */
export function parseHixieKey(key: string): number | null {
  const { digits, spaces } = hixieKeyParts(key);
  if (spaces === 0 || !Number.isSafeInteger(digits) || digits % spaces !== 0) return null;
  const value = digits / spaces;
  return value <= 0xffff_ffff ? value : null;
}

/** The 16 bytes that prove the handshake was read: MD5 of key1 and key2 as big-endian uint32, then key3. */
export function hixieChallengeAnswer(key1: number, key2: number, key3: Buffer): Buffer {
  const challenge = Buffer.alloc(16);
  challenge.writeUInt32BE(key1, 0);
  challenge.writeUInt32BE(key2, 4);
  key3.copy(challenge, 8, 0, 8);
  return createHash('md5').update(challenge).digest();
}

/** The 101 response headers; no Content-Length, as the challenge answer that follows has none. */
export function hixieHandshake(origin: string | undefined, location: string): string {
  const lines = ['HTTP/1.1 101 WebSocket Protocol Handshake', 'Upgrade: WebSocket', 'Connection: Upgrade'];
  if (origin !== undefined) lines.push(`Sec-WebSocket-Origin: ${origin}`);
  lines.push(`Sec-WebSocket-Location: ${location}`, '', '');
  return lines.join('\r\n');
}

/** The URL the client asked for, as the draft's `Sec-WebSocket-Location` must give it back. */
export function hixieLocation(host: string, url: string | undefined, socket: Duplex): string {
  return `${socket instanceof TLSSocket ? 'wss' : 'ws'}://${host}${url ?? '/'}`;
}

/** One text message on the wire: 0x00, the UTF-8 text, 0xFF (UTF-8 never holds either byte). */
export function hixieFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const frame = Buffer.alloc(length + 2);
  frame[0] = 0x00;
  frame.write(text, 1, 'utf8');
  frame[length + 1] = 0xff;
  return frame;
}

/** The closing handshake, the same bytes in both directions. */
export const HIXIE_CLOSE = Buffer.from([0xff, 0x00]);

/** The largest message accepted from a client, the same as `ws`'s default `maxPayload`. */
export const MAX_HIXIE_MESSAGE = 100 * 1024 * 1024;

export type HixieInput =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'close' }
  | { readonly type: 'error'; readonly reason: string };

type ParserState = 'frame-start' | 'text' | 'close' | 'done';

/**
 * Reads client frames from chunks cut anywhere. Only what browsers sent is understood: text
 * frames and the close pair; anything else (the draft's binary frame types were never used) is
 * an error, after which the parser reads nothing more.
 */
export class HixieParser {
  #state: ParserState = 'frame-start';
  #parts: Buffer[] = [];
  #length = 0;

  constructor(readonly maxMessage: number = MAX_HIXIE_MESSAGE) {}

  push(chunk: Buffer): HixieInput[] {
    const inputs: HixieInput[] = [];
    let at = 0;
    while (at < chunk.length && this.#state !== 'done') {
      if (this.#state === 'frame-start') at = this.#frameStart(chunk, at, inputs);
      else if (this.#state === 'text') at = this.#text(chunk, at, inputs);
      else at = this.#closeEnd(chunk, at, inputs);
    }
    return inputs;
  }

  #frameStart(chunk: Buffer, at: number, inputs: HixieInput[]): number {
    const type = chunk[at];
    if (type === 0x00) this.#state = 'text';
    else if (type === 0xff) this.#state = 'close';
    else this.#fail(inputs, `unsupported frame type 0x${(type ?? 0).toString(16)}`);
    return at + 1;
  }

  #text(chunk: Buffer, at: number, inputs: HixieInput[]): number {
    const end = chunk.indexOf(0xff, at);
    const part = chunk.subarray(at, end === -1 ? chunk.length : end);
    this.#length += part.length;
    if (this.#length > this.maxMessage) {
      this.#fail(inputs, `message longer than ${this.maxMessage} bytes`);
      return chunk.length;
    }
    this.#parts.push(part);
    if (end === -1) return chunk.length;
    inputs.push({ type: 'text', text: Buffer.concat(this.#parts, this.#length).toString('utf8') });
    this.#parts = [];
    this.#length = 0;
    this.#state = 'frame-start';
    return end + 1;
  }

  #closeEnd(chunk: Buffer, at: number, inputs: HixieInput[]): number {
    if (chunk[at] === 0x00) {
      inputs.push({ type: 'close' });
      this.#state = 'done';
    } else {
      this.#fail(inputs, 'a length-prefixed frame, which the draft reserves');
    }
    return at + 1;
  }

  #fail(inputs: HixieInput[], reason: string): void {
    inputs.push({ type: 'error', reason });
    this.#parts = [];
    this.#length = 0;
    this.#state = 'done';
  }
}

/** A header that Node may give as a list when it was sent twice; repeated keys are no keys. */
function headerText(value: string | string[] | undefined): string {
  return typeof value === 'string' ? value : '';
}

/** How long a closed connection waits for the client to close its side before it is dropped. */
const CLOSE_TIMEOUT_MS = 30_000;

/**
 * The events of one hixie-76 websocket, the same as `websocketEvents` gives for RFC 6455:
 * `attach` once the challenge is answered, `incoming` or `broken` per message, `detach` when the
 * peer goes. A request with invalid keys or no Host has its socket destroyed unanswered.
 * Unsubscribing destroys the socket.
 */
export function hixie76Events(
  upgrade: Omit<WebsocketUpgrade, 'kind'>,
  maxMessage: number = MAX_HIXIE_MESSAGE,
): Observable<SessionEvent> {
  const { req, socket, head, key, receiverId, log } = upgrade;
  return new Observable<SessionEvent>((subscriber) => {
    const key1 = parseHixieKey(headerText(req.headers['sec-websocket-key1']));
    const key2 = parseHixieKey(headerText(req.headers['sec-websocket-key2']));
    const host = req.headers.host;
    if (socket.destroyed) {
      subscriber.complete();
      return;
    }
    if (key1 === null || key2 === null || !host) {
      log('info', `hixie-76 ${req.url}: invalid handshake keys or no Host`);
      socket.destroy();
      subscriber.complete();
      return;
    }
    // After an upgrade Node leaves socket errors to us; a reset by the peer must not crash the
    // process. The listener stays after teardown, for errors of writes still under way.
    socket.on('error', (error: Error) => log('info', `hixie-76 ${req.url}: ${error.message}`));
    if (socket instanceof Socket) socket.setNoDelay(true);
    socket.write(hixieHandshake(req.headers.origin, hixieLocation(host, req.url, socket)));
    // A client that never sends its key3 is not waited for forever.
    const handshaking = destroyAfter(socket, SOCKET_GRACE_MS);

    let key3 = Buffer.alloc(0);
    let parser: HixieParser | null = null;
    let closing = false;
    let detachWhy: CloseReason = CLOSE_REASONS.INTERRUPTED;
    let closeTimer: Subscription | null = null;

    const close = () => {
      if (closing) return;
      closing = true;
      // The close pair only means something once the handshake is complete.
      if (socket.writable) socket.end(parser ? HIXIE_CLOSE : undefined);
      // The socket is destroyed by itself once both sides have ended; a client that never ends
      // its side is not waited for forever.
      closeTimer = timer(CLOSE_TIMEOUT_MS).subscribe(() => socket.destroy());
    };
    const receiver: Receiver = {
      id: receiverId,
      protocol: 'websocket',
      framing: 'sockjs',
      wrap: (frame) => frame,
      limit: Infinity,
      delayDisconnect: false,
      // The draft has no ping; its heartbeat is the SockJS `h` frame alone.
      pings: false,
      sink: {
        write: (chunk, taken) => {
          if (closing || !socket.writable) {
            taken?.();
            return;
          }
          const flushed = onFlush(socket, taken);
          socket.write(hixieFrame(chunk), flushed);
          if (!flushed) taken?.();
        },
        // The draft's close carries no code or reason: a close by the application sent the SockJS
        // close frame before; a broken message or a dead peer closes with the close pair alone.
        end: (_why, abort) => (abort ? socket.destroy() : close()),
      },
    };

    // Each pause has its resume (the application's reading, a rate limit's rest): read again once all have.
    let holds = 0;
    const source: Source = {
      pause: () => {
        if (holds++ === 0) socket.pause();
      },
      resume: () => {
        if (holds > 0 && --holds === 0) socket.resume();
      },
    };
    const onFrames = (chunk: Buffer, frames: HixieParser) => {
      for (const input of frames.push(chunk)) {
        if (input.type === 'text') {
          if (upgrade.counters) upgrade.counters.bytesReceived += Buffer.byteLength(input.text);
          subscriber.next(messageEvent(key, input.text, upgrade.maxMessages, source));
        } else if (input.type === 'close') {
          detachWhy = CLOSE_REASONS.NORMAL_CLOSURE;
          close();
        } else {
          log('info', `hixie-76 ${req.url}: ${input.reason}`);
          socket.destroy();
        }
      }
    };
    // Run from the socket's listener, where a throw would reach the process.
    const onData = (chunk: Buffer) => {
      try {
        read(chunk);
      } catch (error) {
        log('error', `hixie-76 ${req.url}: ${faultText(error)}`);
        socket.destroy();
      }
    };
    const read = (chunk: Buffer) => {
      if (parser) {
        onFrames(chunk, parser);
        return;
      }
      key3 = Buffer.concat([key3, chunk]);
      if (key3.length < 8) return;
      handshaking();
      // The session opens only now, up to 10 s after it was admitted: the caps are asked again.
      if (upgrade.refusal?.()) {
        log('info', `hixie-76 ${req.url}: refused when its key came`);
        socket.destroy();
        return;
      }
      socket.write(hixieChallengeAnswer(key1, key2, key3.subarray(0, 8)));
      parser = new HixieParser(maxMessage);
      const { grant } = upgrade;
      subscriber.next(grant ? { type: 'attach', key, receiver, request: req, grant } : { type: 'attach', key, receiver, request: req });
      // Frames may follow key3 in the same chunk.
      onFrames(key3.subarray(8), parser);
    };
    // The draft has no half-close: a client that stops sending is gone, so our side ends too.
    const onEnd = () => close();
    const onClose = () => {
      if (parser) subscriber.next({ type: 'detach', key, receiverId, why: detachWhy });
      subscriber.complete();
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    if (head.length > 0) onData(head);

    return () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      closeTimer?.unsubscribe();
      socket.destroy();
    };
  });
}
