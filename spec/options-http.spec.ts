import { randomUUID } from 'crypto';
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  request as httpRequest,
  type Server as HttpServer,
} from 'http';
import type { AddressInfo, Socket } from 'net';
import { type Connection, createServer, type Server, type ServerOptions } from '../lib';

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The whole body, or '' when only the head was awaited. */
  readonly body: string;
}

/**
 * One request on its own connection. `headOnly` resolves at the response head, for streams that
 * stay open; every wait ends after 2 s.
 */
function send(
  port: number,
  method: string,
  path: string,
  { headers = {}, body, headOnly = false }: { headers?: Record<string, string>; body?: string; headOnly?: boolean } = {},
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false });
    const timeout = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to ${method} ${path} within 2 s`));
    }, 2000);
    req.on('error', (error) => {
      clearTimeout(timeout);
      reject(error);
    });
    req.on('response', (res) => {
      const head = { status: res.statusCode ?? 0, headers: res.headers };
      if (headOnly) {
        clearTimeout(timeout);
        req.destroy();
        resolve({ ...head, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timeout);
        resolve({ ...head, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(body);
  });
}

const corsHeaderNames = (headers: IncomingHttpHeaders) => Object.keys(headers).filter((name) => name.startsWith('access-control-'));

describe('disable_cors over HTTP', () => {
  let http: HttpServer | null = null;
  let sockjs: Server | null = null;
  const sockets: Socket[] = [];

  async function start(options: ServerOptions): Promise<number> {
    http = createHttpServer((_req, res) => res.end('not sockjs'));
    http.on('connection', (socket: Socket) => sockets.push(socket));
    sockjs = createServer({ prefix: '/echo', log: () => undefined, ...options });
    sockjs.on('connection', (connection: Connection) => {
      connection.on('data', (message: string) => connection.write(message));
    });
    sockjs.installHandlers(http);
    const server = http;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  afterEach(async () => {
    sockjs?.close();
    sockjs = null;
    // Streams left open by a test are the server's sockets to drop, so that `close` returns.
    for (const socket of sockets.splice(0)) socket.destroy();
    const server = http;
    http = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it.each(['/echo/iframe.html', '/echo/iframe-0.1.2.html', '/echo/iframe-a.html?t=1234', '/echo/iframe-.html'])(
    'answers %s with 404 when CORS is disabled',
    async (path) => {
      const port = await start({ disable_cors: true });
      const answer = await send(port, 'GET', path);
      expect(answer.status).toBe(404);
      expect(answer.body).not.toContain('SockJS.bootstrap_iframe');
    },
  );

  it('serves the iframe page when CORS is not disabled', async () => {
    const port = await start({});
    const answer = await send(port, 'GET', '/echo/iframe.html');
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('SockJS.bootstrap_iframe();');
  });

  it('leaves origins out of /info and sends no Access-Control header when CORS is disabled', async () => {
    const port = await start({ disable_cors: true });
    const answer = await send(port, 'GET', '/echo/info', { headers: { Origin: 'http://example.com' } });
    expect(answer.status).toBe(200);
    const info: Record<string, unknown> = JSON.parse(answer.body);
    expect(Object.keys(info).sort()).toEqual(['cookie_needed', 'entropy', 'websocket']);
    expect(info).toMatchObject({ websocket: true, cookie_needed: false });
    expect(corsHeaderNames(answer.headers)).toEqual([]);
  });

  it('keeps origins ["*:*"] in /info and the CORS headers when CORS is not disabled', async () => {
    const port = await start({});
    const answer = await send(port, 'GET', '/echo/info', { headers: { Origin: 'http://example.com' } });
    expect(JSON.parse(answer.body)).toMatchObject({ origins: ['*:*'] });
    expect(answer.headers['access-control-allow-origin']).toBe('http://example.com');
  });

  it('sends no Access-Control header on xhr, xhr_send and their preflights when CORS is disabled', async () => {
    const port = await start({ disable_cors: true });
    const session = `/echo/000/${randomUUID()}`;
    const origin = { Origin: 'http://example.com', 'Access-Control-Request-Headers': 'a, b' };

    const open = await send(port, 'POST', `${session}/xhr`, { headers: origin });
    expect(open).toMatchObject({ status: 200, body: 'o\n' });
    expect(corsHeaderNames(open.headers)).toEqual([]);

    const sent = await send(port, 'POST', `${session}/xhr_send`, { headers: origin, body: '["x"]' });
    expect(sent.status).toBe(204);
    expect(corsHeaderNames(sent.headers)).toEqual([]);

    const echoed = await send(port, 'POST', `${session}/xhr`, { headers: origin });
    expect(echoed).toMatchObject({ status: 200, body: 'a["x"]\n' });
    expect(corsHeaderNames(echoed.headers)).toEqual([]);

    for (const path of [`${session}/xhr`, `${session}/xhr_send`, `${session}/xhr_streaming`, '/echo/info']) {
      const preflight = await send(port, 'OPTIONS', path, { headers: { ...origin, 'Access-Control-Request-Method': 'POST' } });
      expect({ path, status: preflight.status }).toEqual({ path, status: 204 });
      expect({ path, cors: corsHeaderNames(preflight.headers) }).toEqual({ path, cors: [] });
    }
  });

  it.each([
    ['POST', 'xhr_streaming'],
    ['GET', 'eventsource'],
  ])('sends no Access-Control header on %s %s when CORS is disabled', async (method, transport) => {
    const port = await start({ disable_cors: true });
    const stream = await send(port, method, `/echo/000/${randomUUID()}/${transport}`, {
      headers: { Origin: 'http://example.com' },
      headOnly: true,
    });
    expect(stream.status).toBe(200);
    expect(corsHeaderNames(stream.headers)).toEqual([]);
  });

  it('sends the CORS headers on xhr when CORS is not disabled', async () => {
    const port = await start({});
    const open = await send(port, 'POST', `/echo/000/${randomUUID()}/xhr`, { headers: { Origin: 'http://example.com' } });
    expect(open.headers['access-control-allow-origin']).toBe('http://example.com');
    expect(open.headers['access-control-allow-credentials']).toBe('true');
  });
});
