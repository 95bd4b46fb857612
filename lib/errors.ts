/**
 * Every error sockjs-rx raises, declared once. Each carries a stable `code` that callers can test
 * instead of matching message text.
 */
export const ERRORS = {
  SOCKJS_ERR_INVALID_OPTION: (name: string, expected: string) =>
    `Invalid option "${name}": expected ${expected}`,
  SOCKJS_ERR_UNKNOWN_OPTION: (name: string) => `Unknown option "${name}"`,
  SOCKJS_ERR_ALREADY_ATTACHED: (prefix: string) =>
    `This server is already attached to that HTTP server with prefix ${JSON.stringify(prefix)}`,
  SOCKJS_ERR_SERVER_CLOSED: () => 'The SockJS server is closed',
  SOCKJS_ERR_CONNECTION_CLOSED: () => 'The connection is closing or closed: the message was dropped',
} as const;

export type SockjsErrorCode = keyof typeof ERRORS;

export class SockjsError extends Error {
  readonly code: SockjsErrorCode;

  constructor(code: SockjsErrorCode, message: string) {
    super(message);
    this.name = 'SockjsError';
    this.code = code;
  }
}

export function sockjsError<C extends SockjsErrorCode>(
  code: C,
  ...args: Parameters<(typeof ERRORS)[C]>
): SockjsError {
  const format = ERRORS[code] as (...a: typeof args) => string;
  return new SockjsError(code, format(...args));
}

/** A caught fault as one log text: its stack where it has one. */
export function faultText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
