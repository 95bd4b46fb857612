export { type Authorize, type AuthorizeRequest, type AuthorizeResult, Refusal, refuse } from './authorization';
export { type BroadcastBus, Channel, localBus } from './broadcast';
export { Connection, CONNECTING, OPEN, CLOSING, CLOSED, type ReadyState } from './connection';
export { SockjsError, type SockjsErrorCode } from './errors';
export type { BusMetrics, MetricsSnapshot, PrefixMetrics, RefusalCause } from './metrics';
export { DEFAULTS, type LogSeverity, type RateLimit, type ServerOptions } from './options';
export type { TransportName } from './transports';
export type { CloseReason } from './errors';
export { createServer, listen, Server } from './server';
