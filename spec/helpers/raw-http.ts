/**
 * A minimal HTTP/1.x client over a raw socket, for tests that check exact bytes: the status, the
 * headers as sent, and a chunked body one HTTP chunk at a time.
 */
import { connect, type Socket } from 'net';

export interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly version?: '1.0' | '1.1';
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export function requestText({ method, path, version = '1.1', headers = {}, body }: RawRequest): string {
  const lines = [`${method} ${path} HTTP/${version}`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  }
  return lines.join('\r\n') + '\r\n\r\n' + (body ?? '');
}

type Waiter = () => void;

export class RawResponse {
  status = 0;
  /** Header names lower-cased; repeated headers joined with `, `. */
  readonly headers: Record<string, string> = {};
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #headDone = false;
  #chunked = false;
  #chunks: Array<string | null> = [];
  #ended = false;
  #waiters: Waiter[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#parse();
      this.#wake();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** Sends `request` (text or parts) on a new connection and resolves once the head has arrived. */
  static async open(port: number, request: RawRequest | string, timeoutMs = 2000): Promise<RawResponse> {
    const response = RawResponse.start(port, request);
    await response.head(timeoutMs);
    return response;
  }

  /** Sends `request` without waiting for anything: for requests the server holds open. */
  static start(port: number, request: RawRequest | string): RawResponse {
    const socket = connect(port, '127.0.0.1');
    const response = new RawResponse(socket);
    socket.write(typeof request === 'string' ? request : requestText(request));
    return response;
  }

  /** Resolves once the status line and headers have arrived. */
  async head(timeoutMs = 2000): Promise<this> {
    await this.#until(() => this.#headDone || this.#ended, timeoutMs, 'the response head');
    if (!this.#headDone) throw new Error('the connection closed before a response head');
    return this;
  }

  get chunked(): boolean {
    return this.#chunked;
  }

  /** The next HTTP chunk as text; null for the terminating zero-length chunk. */
  async nextChunk(timeoutMs = 2000): Promise<string | null> {
    if (!this.#chunked) throw new Error('the response is not chunked');
    await this.#until(() => this.#chunks.length > 0 || this.#ended, timeoutMs, 'a chunk');
    if (this.#chunks.length === 0) throw new Error('the connection closed before the next chunk');
    return this.#chunks.shift()!;
  }

  /** The whole body: chunks up to the terminating one, Content-Length bytes, or all until close. */
  async body(timeoutMs = 2000): Promise<string> {
    await this.head(timeoutMs);
    // These statuses never carry a body (RFC 9110).
    if (this.status === 204 || this.status === 304 || this.status < 200) return '';
    if (this.#chunked) {
      let text = '';
      for (;;) {
        const chunk = await this.nextChunk(timeoutMs);
        if (chunk === null) return text;
        text += chunk;
      }
    }
    const length = this.headers['content-length'];
    if (length !== undefined) {
      const n = Number(length);
      await this.#until(() => this.#buffer.length >= n || this.#ended, timeoutMs, 'the body');
      return this.#buffer.subarray(0, n).toString('utf8');
    }
    await this.#until(() => this.#ended, timeoutMs, 'the end of the body');
    return this.#buffer.toString('utf8');
  }

  /** Bytes received after the head and not consumed as chunks (for unchunked bodies). */
  get rest(): Buffer {
    return this.#buffer;
  }

  /** Resolves when the server has closed the connection. */
  async closed(timeoutMs = 2000): Promise<void> {
    await this.#until(() => this.#ended, timeoutMs, 'the connection to close');
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(): void {
    if (!this.#headDone) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine, ...lines] = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
      this.status = Number(statusLine!.split(' ')[1]);
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        this.headers[name] = name in this.headers ? `${this.headers[name]}, ${value}` : value;
      }
      this.#headDone = true;
      this.#chunked = (this.headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked';
      this.#buffer = this.#buffer.subarray(end + 4);
    }
    while (this.#chunked) {
      const lineEnd = this.#buffer.indexOf('\r\n');
      if (lineEnd === -1) return;
      const size = Number.parseInt(this.#buffer.subarray(0, lineEnd).toString('latin1'), 16);
      if (this.#buffer.length < lineEnd + 2 + size + 2) return;
      const data = this.#buffer.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8');
      this.#buffer = this.#buffer.subarray(lineEnd + 2 + size + 2);
      this.#chunks.push(size === 0 ? null : data);
      if (size === 0) return;
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  async #until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const check = () => {
        if (condition()) {
          clearTimeout(timer);
          resolve();
        } else {
          this.#waiters.push(check);
        }
      };
      this.#waiters.push(check);
    });
  }
}
