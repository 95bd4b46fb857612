/**
 * Conformance: session URLs, the session life cycle and closing (PROTOCOL.md sections 2 and 7) —
 * the official suite's SessionURLs, Protocol and HandlingClose, over xhr polling and xhr
 * streaming, against the standard test server built with each API.
 */
import { randomInt, randomUUID } from 'crypto';
import { APIS, Conformance, sessionUrl, SUITE_WAIT_MS, within } from './support';

const PRELUDE = 'h'.repeat(2048) + '\n';
const ANOTHER_CONNECTION = 'c[2010,"Another connection still open"]\n';
const GO_AWAY = 'c[3000,"Go away!"]\n';

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  describe('SessionURLs', () => {
    it('SessionURLs.test_anyValue: opens a session whatever the server and session strings are', async () => {
      const r = String(randomInt(0, 1025));
      for (const sessionPart of ['/a/a' + r, '/_/_' + r, '/1/' + r, '/abcdefgh_i-j%20/abcdefg_i-j%20' + r]) {
        const reply = await server.post('/echo' + sessionPart + '/xhr');
        expect({ sessionPart, status: reply.status, body: reply.body }).toEqual({ sessionPart, status: 200, body: 'o\n' });
      }
    });

    it('SessionURLs.test_invalidPaths: answers 404 to GET and POST when a part is empty or holds a dot', async () => {
      for (const suffix of ['//', '/a./a', '/a/a.', '/./.', '/', '///']) {
        const path = '/echo' + suffix + '/xhr';
        expect({ path, status: (await server.get(path)).status }).toEqual({ path, status: 404 });
        expect({ path, status: (await server.post(path)).status }).toEqual({ path, status: 404 });
      }
    });

    it('SessionURLs.test_ignoringServerId: reaches the same session under another server id', async () => {
      const sessionId = randomUUID();
      let r = await server.post(`/echo/000/${sessionId}/xhr`);
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');
      r = await server.post(`/echo/000/${sessionId}/xhr_send`, '["a"]');
      expect(r.status).toBe(204);
      expect(r.body).toBe('');
      r = await server.post(`/echo/999/${sessionId}/xhr`);
      expect(r.status).toBe(200);
      expect(r.body).toBe('a["a"]\n');
    });

    it('SessionURLs, as the reference: tolerates one trailing slash after the transport name', async () => {
      const url = sessionUrl('/echo');
      const r = await server.post(url + '/xhr/');
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');
    });
  });

  describe('Protocol', () => {
    it('Protocol.test_simpleSession: opens with o, echoes a sent message, refuses an unknown session and answers a second poll with 2010', async () => {
      const url = sessionUrl('/echo');
      let r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');

      r = await server.post(url + '/xhr_send', '["a"]');
      expect(r.status).toBe(204);
      expect(r.body).toBe('');

      r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe('a["a"]\n');

      r = await server.post('/echo/000/bad_session/xhr_send', '["a"]');
      expect(r.status).toBe(404);

      // The first poll waits; once the server has attached it, a second one is refused.
      const mark = server.mark();
      const first = server.start('POST', url + '/xhr', { body: '' });
      await server.handled(mark, 'POST', url + '/xhr');
      r = await server.post(url + '/xhr');
      expect(r.body).toBe(ANOTHER_CONNECTION);
      expect(r.status).toBe(200);
      first.destroy();
    });

    it('Protocol.test_closeSession: on /close opens with o, then answers every later poll with c[3000,"Go away!"]', async () => {
      const url = sessionUrl('/close');
      let r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe('o\n');
      r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe(GO_AWAY);
      r = await server.post(url + '/xhr');
      expect(r.status).toBe(200);
      expect(r.body).toBe(GO_AWAY);
    });

    it('Protocol: delivers the messages queued while no request was attached together in one a frame', async () => {
      const url = sessionUrl('/echo');
      expect((await server.post(url + '/xhr')).body).toBe('o\n');
      for (const message of ['x', 'y', 'z']) expect((await server.post(url + '/xhr_send', JSON.stringify([message]))).status).toBe(204);
      expect((await server.post(url + '/xhr')).body).toBe('a["x","y","z"]\n');
    });
  });

  describe('HandlingClose', () => {
    it('HandlingClose.test_close_frame: sends the close frame on the open stream and on a second stream, and ends both', async () => {
      const url = sessionUrl('/close');
      const r1 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe('o\n');
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe(GO_AWAY);

      const r2 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBe(GO_AWAY);

      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBeNull();
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBeNull();
    });

    it('HandlingClose.test_close_request: answers a second stream with 2010 and ends it', async () => {
      const url = sessionUrl('/echo');
      const r1 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe('o\n');

      const r2 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBe(ANOTHER_CONNECTION);
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBeNull();
    });

    it('HandlingClose.test_abort_xhr_streaming: after the client drops the stream, the next stream gets o or c[1002,...]', async () => {
      const url = sessionUrl('/echo');
      const mark = server.mark();
      const r1 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r1.nextChunk(SUITE_WAIT_MS)).toBe('o\n');

      const r2 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBe(ANOTHER_CONNECTION);
      expect(await r2.nextChunk(SUITE_WAIT_MS)).toBeNull();

      const first = await server.handled(mark, 'POST', url + '/xhr_streaming');
      r1.destroy();
      // The suite goes on at once; here the server is first seen to notice the abort.
      await within(first.closed, SUITE_WAIT_MS, 'the server to see the stream dropped');

      const r3 = await server.stream('POST', url + '/xhr_streaming', { body: '' });
      expect(await r3.nextChunk(SUITE_WAIT_MS)).toBe(PRELUDE);
      expect(['o\n', 'c[1002,"Connection interrupted"]\n']).toContain(await r3.nextChunk(SUITE_WAIT_MS));
    });

    it('HandlingClose.test_abort_xhr_polling: after the client drops a pending poll, the next poll gets o or c[1002,...]', async () => {
      const url = sessionUrl('/echo');
      expect((await server.post(url + '/xhr')).body).toBe('o\n');

      const mark = server.mark();
      const r1 = server.start('POST', url + '/xhr', { body: '' });
      const first = await server.handled(mark, 'POST', url + '/xhr');

      const r2 = await server.post(url + '/xhr');
      expect(r2.body).toBe(ANOTHER_CONNECTION);

      r1.destroy();
      await within(first.closed, SUITE_WAIT_MS, 'the server to see the poll dropped');

      const r3 = await server.post(url + '/xhr');
      expect(['o\n', 'c[1002,"Connection interrupted"]\n']).toContain(r3.body);
    });
  });
});
