/**
 * sockjs-client 1.6.1 in Node, typed for the deployment suites: one connection, everything it
 * received and how it closed, with bounded waits.
 */
import { waitUntil } from '../helpers/debian-tools';
import { type NodeTransport, SockJS, type SockJSClient, type SockJSCloseEvent } from '../helpers/sockjs-client';

export { NODE_TRANSPORTS, type NodeTransport } from '../helpers/sockjs-client';

export class NodeClient {
  readonly sock: SockJSClient;
  readonly transport: NodeTransport;
  readonly received: string[] = [];
  /** `sock.transport` when `open` fired. */
  openedWith: string | null = null;
  closeEvent: SockJSCloseEvent | null = null;

  constructor(url: string, transport: NodeTransport) {
    this.transport = transport;
    this.sock = new SockJS(url, null, { transports: [transport] });
    this.sock.onopen = () => {
      this.openedWith = this.sock.transport;
    };
    this.sock.onmessage = (event) => {
      this.received.push(event.data);
    };
    this.sock.onclose = (event) => {
      this.closeEvent = { code: event.code, reason: event.reason };
    };
  }

  get isClosed(): boolean {
    return this.closeEvent !== null;
  }

  async opened(timeoutMs?: number): Promise<void> {
    await waitUntil(() => this.openedWith !== null || this.closeEvent !== null, `${this.transport} to open`, timeoutMs);
    if (this.closeEvent) throw new Error(`${this.transport} closed before opening: ${this.closeEvent.code} ${this.closeEvent.reason}`);
  }

  /** Waits until `count` messages have arrived in all, and returns them. */
  async receive(count: number, timeoutMs?: number): Promise<string[]> {
    await waitUntil(() => this.received.length >= count || this.closeEvent !== null, `${count} messages over ${this.transport}`, timeoutMs);
    if (this.received.length < count) {
      throw new Error(`${this.transport} closed after ${this.received.length} of ${count} messages: ${this.closeEvent?.code} ${this.closeEvent?.reason}`);
    }
    return this.received.slice(0, count);
  }

  /** Sends `message` and resolves with the next message to arrive. */
  async ask(message: string, timeoutMs?: number): Promise<string> {
    const count = this.received.length + 1;
    this.sock.send(message);
    return (await this.receive(count, timeoutMs))[count - 1]!;
  }

  async closed(timeoutMs?: number): Promise<SockJSCloseEvent> {
    await waitUntil(() => this.closeEvent !== null, `${this.transport} to close`, timeoutMs);
    return this.closeEvent!;
  }
}

/** Closes every client still open and waits until each has seen its close. */
export async function closeAll(clients: readonly NodeClient[]): Promise<void> {
  for (const client of clients) if (!client.isClosed) client.sock.close();
  await waitUntil(() => clients.every((c) => c.isClosed), 'every client to close');
}
