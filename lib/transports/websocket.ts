/**
 * The websocket transports (PROTOCOL.md 5.8 and 5.9): `/<server>/<session>/websocket` with SockJS
 * framing and the raw `/websocket`. `ws` does the RFC 6455 handshake and framing; each websocket
 * becomes a stream of session events under a key of its own, so two websockets never share a
 * session, whatever their URL.
 */
import type { IncomingMessage } from 'http';
import type { Duplex } from 'stream';
import { Observable } from 'rxjs';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { errorText, type StaticResponse } from '../http/pages';
import { parseWebsocketPayload } from '../payload';
import type { CloseReason, SessionEvent, SessionKey } from '../session/reducer';
import type { Framing, Receiver, Sink } from '../session/receiver';

export interface WebsocketKind {
  readonly protocol: 'websocket' | 'websocket-raw';
  readonly framing: Framing;
}

export const SOCKJS_WEBSOCKET: WebsocketKind = { protocol: 'websocket', framing: 'sockjs' };
export const RAW_WEBSOCKET: WebsocketKind = { protocol: 'websocket-raw', framing: 'raw' };

export const NOT_A_WEBSOCKET = errorText(400, 'Not a valid websocket request');

/** Why an upgrade request cannot be a websocket, or null when it can. */
export function refuseUpgrade(req: IncomingMessage, kind: WebsocketKind): StaticResponse | null {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return NOT_A_WEBSOCKET;
  if (kind.framing === 'raw') {
    // The raw endpoint has never spoken the drafts that preceded RFC 6455.
    const version = req.headers['sec-websocket-version'];
    if (version !== '8' && version !== '13') return errorText(400, 'Only supported WebSocket protocol is RFC 6455.');
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

function uncork(socket: Duplex): void {
  socket.uncork();
}

function websocketSink(ws: WebSocket, socket: Duplex): Sink {
  return {
    write: (chunk, flushed) => {
      // An acknowledgement ignores the error argument: the close that follows ends the session.
      if (ws.readyState === ws.OPEN) ws.send(chunk, flushed);
      else flushed?.();
    },
    end: (why: CloseReason, abort?: boolean) => {
      if (abort) {
        ws.terminate();
        return;
      }
      if (ws.readyState !== ws.OPEN && ws.readyState !== ws.CONNECTING) return;
      // Codes the wire cannot carry (2010, 1006 ...) close as a normal closure with their reason.
      ws.close(isValidCloseCode(why.code) ? why.code : 1000, fitReason(why.reason));
    },
    ping: () => {
      if (ws.readyState !== ws.OPEN) return;
      // The heartbeat frame written right after the ping leaves in the same packet.
      socket.cork();
      ws.ping();
      process.nextTick(uncork, socket);
    },
  };
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
}

/**
 * The events of one websocket: `attach` once the handshake is done, `incoming` per message,
 * `detach` when the peer goes. Unsubscribing terminates the socket.
 */
export function websocketEvents(wss: WebSocketServer, upgrade: WebsocketUpgrade): Observable<SessionEvent> {
  const { req, socket, head, key, receiverId, kind, log } = upgrade;
  return new Observable<SessionEvent>((subscriber) => {
    let ws: WebSocket | undefined;
    // `ws` answers a bad handshake itself and destroys the socket, without calling back.
    const onSocketClose = () => {
      if (!ws) subscriber.complete();
    };
    socket.once('close', onSocketClose);
    wss.handleUpgrade(req, socket, head, (client) => {
      ws = client;
      const receiver: Receiver = {
        id: receiverId,
        protocol: kind.protocol,
        framing: kind.framing,
        wrap: (frame) => frame,
        limit: Infinity,
        delayDisconnect: false,
        pings: true,
        sink: websocketSink(client, socket),
      };
      subscriber.next({ type: 'attach', key, receiver, request: req });
      client.on('pong', () => subscriber.next({ type: 'pong', key }));
      client.on('message', (data) => {
        const message = text(data);
        if (kind.framing === 'raw') {
          subscriber.next({ type: 'incoming', key, messages: [message] });
          return;
        }
        const payload = parseWebsocketPayload(message);
        subscriber.next(payload.ok ? { type: 'incoming', key, messages: payload.messages } : { type: 'broken', key });
      });
      // Protocol errors (bad frames, invalid UTF-8) are answered by `ws` with a close frame; the
      // `close` event that follows ends the session.
      client.on('error', (error) => log('info', `websocket ${req.url}: ${error.message}`));
      client.on('close', (code, reason) => {
        subscriber.next({ type: 'detach', key, receiverId, why: { code, reason: reason.toString('utf8') } });
        subscriber.complete();
      });
    });
    return () => {
      socket.off('close', onSocketClose);
      if (ws && ws.readyState !== ws.CLOSED) ws.terminate();
    };
  });
}

/**
 * One `ws` server per endpoint, without a listening socket of its own. A message over
 * `maxPayload` bytes closes the websocket with 1009.
 */
export function createWebsocketServer(maxPayload: number): WebSocketServer {
  return new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload });
}
