/**
 * sockjs-client 1.6.1 in Node, typed: the part of its SockJS object the suites use, and the
 * transports it offers in Node (the others need a DOM).
 */

export const NODE_TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'] as const;
export type NodeTransport = (typeof NODE_TRANSPORTS)[number];

/** Every transport sockjs-client 1.6 offers in Chromium, in its own order of preference. */
export const BROWSER_TRANSPORTS = [
  'websocket',
  'xhr-streaming',
  'eventsource',
  'iframe-eventsource',
  'htmlfile',
  'iframe-htmlfile',
  'xhr-polling',
  'iframe-xhr-polling',
  'jsonp-polling',
] as const;

export interface SockJSOptions {
  readonly transports?: string | readonly string[];
  readonly timeout?: number;
}

export interface SockJSCloseEvent {
  readonly code: number;
  readonly reason: string;
  readonly wasClean?: boolean;
}

export interface SockJSClient {
  readonly readyState: number;
  /** The transport's name once open; null before and after. */
  readonly transport: string | null;
  onopen: (() => void) | null;
  onmessage: ((event: { readonly data: string }) => void) | null;
  onclose: ((event: SockJSCloseEvent) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

type SockJSConstructor = new (url: string, reserved?: null, options?: SockJSOptions) => SockJSClient;

export const SockJS: SockJSConstructor = require('sockjs-client');
