/**
 * Conformance: HTTP/1.0 and HTTP/1.1 framing (PROTOCOL.md section 8) — the official suite's
 * Http10 and Http11, written byte by byte on one TCP connection, against the standard test
 * server built with each API.
 */
import { APIS, Conformance, requestText, sessionUrl } from './support';

const PRELUDE = 'h'.repeat(2048) + '\n';
const GO_AWAY = 'c[3000,"Go away!"]\n';
const KEEP_ALIVE = { Connection: 'Keep-Alive' };

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  describe('Http10', () => {
    it('Http10.test_synchronous: answers an HTTP/1.0 greeting without Transfer-Encoding, closing the socket or keeping it alive with Content-Length 19', async () => {
      const c = server.connection();
      c.send(requestText(server.port, 'GET', '/echo', { version: '1.0', headers: KEEP_ALIVE }));
      const head = await c.head();
      expect(head.status).toBe(200);
      expect(['1.0', '1.1']).toContain(head.version);
      expect(head.headers['transfer-encoding']).toBeUndefined();
      if (head.headers['content-length'] === undefined) {
        expect(head.headers['connection']?.toLowerCase()).toBe('close');
        await c.closed();
        expect(c.unread.toString('utf8')).toBe('Welcome to SockJS!\n');
      } else {
        expect(head.headers['content-length']).toBe('19');
        expect((await c.read(19)).toString('utf8')).toBe('Welcome to SockJS!\n');
        const connection = (head.headers['connection'] ?? '').toLowerCase();
        if (connection === 'close' || connection === '') {
          await c.closed();
        } else {
          expect(connection).toBe('keep-alive');
          c.send(requestText(server.port, 'GET', '/echo', { version: '1.0', headers: KEEP_ALIVE }));
          expect((await c.head()).status).toBe(200);
        }
      }
    });

    it('Http10.test_streaming: streams xhr_streaming over HTTP/1.0 as raw bytes, neither chunked nor with a length, then closes the socket', async () => {
      const c = server.connection();
      c.send(requestText(server.port, 'POST', sessionUrl('/close') + '/xhr_streaming', { version: '1.0', headers: KEEP_ALIVE, body: '' }));
      const head = await c.head();
      expect(head.status).toBe(200);
      expect(head.headers['transfer-encoding']).toBeUndefined();
      expect(head.headers['content-length']).toBeUndefined();
      expect((await c.read(2048 + 1)).toString('utf8')).toBe(PRELUDE);
      expect((await c.read(2)).toString('utf8')).toBe('o\n');
      expect((await c.read(19)).toString('utf8')).toBe(GO_AWAY);
      await c.closed();
      expect(c.unread.length).toBe(0);
    });
  });

  describe('Http11', () => {
    it('Http11.test_synchronous: keeps an HTTP/1.1 connection alive after a greeting framed by Content-Length or chunks, and answers a second request on it', async () => {
      const c = server.connection();
      c.send(requestText(server.port, 'GET', '/echo', { version: '1.1', headers: KEEP_ALIVE }));
      const head = await c.head();
      expect(head.status).toBe(200);
      expect(head.version).toBe('1.1');
      expect(['keep-alive', '']).toContain((head.headers['connection'] ?? '').toLowerCase());
      if (head.headers['content-length'] !== undefined) {
        expect(head.headers['content-length']).toBe('19');
        expect((await c.read(19)).toString('utf8')).toBe('Welcome to SockJS!\n');
        expect(head.headers['transfer-encoding']).toBeUndefined();
      } else {
        expect(head.headers['transfer-encoding']?.toLowerCase()).toBe('chunked');
        expect(await c.readChunk()).toBe('Welcome to SockJS!\n');
        expect(await c.readChunk()).toBeNull();
      }
      c.send(requestText(server.port, 'GET', '/echo', { version: '1.1', headers: KEEP_ALIVE }));
      expect((await c.head()).status).toBe(200);
    });

    it('Http11.test_streaming: streams xhr_streaming over HTTP/1.1 in chunks, prelude, o and the close frame each their own, then the zero-length chunk', async () => {
      const c = server.connection();
      c.send(requestText(server.port, 'POST', sessionUrl('/close') + '/xhr_streaming', { version: '1.1', headers: KEEP_ALIVE, body: '' }));
      const head = await c.head();
      expect(head.status).toBe(200);
      expect(head.headers['transfer-encoding']?.toLowerCase()).toBe('chunked');
      expect(head.headers['content-length']).toBeUndefined();
      expect(await c.readChunk()).toBe(PRELUDE);
      expect(await c.readChunk()).toBe('o\n');
      expect(await c.readChunk()).toBe(GO_AWAY);
      expect(await c.readChunk()).toBeNull();
    });
  });
});
