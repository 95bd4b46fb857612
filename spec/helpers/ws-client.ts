/**
 * A `ws` client that queues what it receives, so tests can await the next message or the close.
 */
import WebSocket from 'ws';

export interface Client {
  readonly ws: WebSocket;
  next(timeoutMs?: number): Promise<string>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

export async function connectWs(url: string, headers: Record<string, string> = {}, timeoutMs = 2000): Promise<Client> {
  const ws = new WebSocket(url, { headers });
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data) => {
    queue.push(data.toString());
    wake?.();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      wake?.();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('websocket did not open')), timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  const next = async (waitMs = 2000): Promise<string> => {
    const deadline = Date.now() + waitMs;
    while (queue.length === 0) {
      if (ws.readyState === WebSocket.CLOSED) throw new Error('websocket closed while waiting for a message');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no websocket message within ${waitMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
    return queue.shift()!;
  };
  return { ws, next, closed };
}
