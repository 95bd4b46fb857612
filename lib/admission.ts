/**
 * Caps on open sessions, for the whole server (`max_sessions`) and per client address
 * (`max_sessions_per_address`): a new session over either is refused, and the sessions already
 * open are untouched. One Admission serves every prefix and HTTP server of a Server.
 */
import type { IncomingMessage } from 'http';

export interface AdmissionOptions {
  readonly maxSessions: number;
  readonly maxPerAddress: number;
  /** The address a request counts against (`client_address`). */
  readonly addressOf: (req: IncomingMessage) => string;
}

export class Admission {
  #open = 0;
  readonly #byAddress = new Map<string, number>();

  constructor(private readonly options: AdmissionOptions) {}

  /** The address `req` counts against. */
  addressOf(req: IncomingMessage): string {
    return this.options.addressOf(req);
  }

  /** Whether one more session from `address` stays within both caps. */
  admits(address: string): boolean {
    if (this.#open >= this.options.maxSessions) return false;
    return (this.#byAddress.get(address) ?? 0) < this.options.maxPerAddress;
  }

  /** A session of `address` opened. */
  opened(address: string): void {
    this.#open++;
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
  }

  /** A session of `address` ended. */
  closed(address: string): void {
    this.#open--;
    const count = (this.#byAddress.get(address) ?? 1) - 1;
    if (count > 0) this.#byAddress.set(address, count);
    else this.#byAddress.delete(address);
  }

  /** Sessions counted now, in all. */
  get open(): number {
    return this.#open;
  }
}

/** The default `client_address`: the address of the client's end of the connection. */
export function socketAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '';
}
