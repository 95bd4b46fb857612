export { type BroadcastBus, Channel, localBus } from './broadcast';
export { Connection, CONNECTING, OPEN, CLOSING, CLOSED, type ReadyState } from './connection';
export { SockjsError, type SockjsErrorCode } from './errors';
export { DEFAULTS, type LogSeverity, type ServerOptions, type TransportName } from './options';
export type { CloseReason } from './errors';
export { createServer, listen, Server } from './server';
