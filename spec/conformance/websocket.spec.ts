/**
 * Conformance: the websocket transports (PROTOCOL.md sections 5.8 and 5.9) — the official suite's
 * WebsocketHttpErrors, Websocket and RawWebsocket, against the standard test server built with
 * each API. RFC 6455 through `ws`; the hixie-76 handshake written by hand, as HAProxy sends it.
 */
import { randomUUID } from 'crypto';
import WebSocket from 'ws';
import { APIS, Conformance, expectCachedForAYear, sessionUrl, SUITE_WAIT_MS, within } from './support';

const HIXIE_KEY1 = '4 @1  46546xW%0l 1 5';
const HIXIE_KEY2 = '12998 5 Y3 1  .P00';
/** MD5 of key1's and key2's numbers and the key3 `aaaaaaaa`, as the suite expects it. */
const HIXIE_ANSWER = Buffer.from([0xca, 0x34, 0x00, 0xd8, 0xa5, 0x08, 0x47, 0x97, 0x2c, 0xd5, 0x71, 0x5a, 0xba, 0xbf, 0x43, 0x7b]);

/** 0x00, the UTF-8 text, 0xFF: one hixie-76 text frame. */
const hixieFrame = (text: string) => Buffer.concat([Buffer.from([0x00]), Buffer.from(text, 'utf8'), Buffer.from([0xff])]);

const RFC6455_UPGRADE = {
  Upgrade: 'websocket',
  Connection: 'Upgrade',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Key': 'x3JJHMbDL1EzLkh9GBhXDw==',
};

describe.each(APIS)('the test server built with the %s API', (api) => {
  const server = Conformance.use(api);

  describe('WebsocketHttpErrors', () => {
    it('WebsocketHttpErrors.test_httpMethod: answers a plain GET on the websocket URL with 400', async () => {
      expect((await server.get('/echo/0/0/websocket')).status).toBe(400);
    });

    it('WebsocketHttpErrors.test_invalidConnectionHeader: answers Upgrade: WebSocket with Connection: close with 400', async () => {
      const r = await server.get('/echo/0/0/websocket', { Upgrade: 'WebSocket', Connection: 'close' });
      expect(r.status).toBe(400);
      // The suite's check of this body cannot fail; the reference's text is checked here.
      expect(r.body).toContain('Not a valid websocket request');
    });

    it('WebsocketHttpErrors.test_invalidMethod: answers POST, with and without upgrade headers, with 405, Allow, no Content-Type and no body', async () => {
      const upgrades: ReadonlyArray<Record<string, string>> = [{ Upgrade: 'WebSocket', Connection: 'Upgrade' }, {}];
      for (const headers of upgrades) {
        const r = await server.post('/echo/0/0/websocket', '', headers);
        expect(r.status).toBe(405);
        expect(r.headers['content-type']).toBeUndefined();
        expect(r.headers['allow']).toBeTruthy();
        expect(r.body).toBe('');
      }
    });

    it('WebsocketHttpErrors, as the reference: the 405 on the websocket URL says Allow: GET', async () => {
      expect((await server.post('/echo/0/0/websocket')).headers['allow']).toBe('GET');
    });
  });

  describe('Websocket', () => {
    it('Websocket.test_transport: opens with o and echoes ["a"] as a["a"]', async () => {
      const ws = await server.websocket(sessionUrl('/echo') + '/websocket');
      expect(await ws.next()).toBe('o');
      ws.ws.send('["a"]');
      expect(await ws.next()).toBe('a["a"]');
    });

    it('Websocket.test_close: on /close sends o, then c[3000,"Go away!"], then closes the connection', async () => {
      const ws = await server.websocket(sessionUrl('/close') + '/websocket');
      expect(await ws.next()).toBe('o');
      expect(await ws.next()).toBe('c[3000,"Go away!"]');
      await within(ws.closed, SUITE_WAIT_MS, 'the websocket to close');
      expect(ws.ws.readyState).toBe(WebSocket.CLOSED);
    });

    it('Websocket.test_headersSanity: answers a version 13 handshake with 101, the right accept key, upgrade headers and no Content-Length', async () => {
      const r = await server.stream('GET', sessionUrl('/echo') + '/websocket', {
        headers: { ...RFC6455_UPGRADE, 'Sec-WebSocket-Origin': 'http://asd' },
      });
      expect(r.status).toBe(101);
      expect(r.headers['sec-websocket-accept']).toBe('HSmrc0sMlYUkAGmm5OPpG2HaGWk=');
      expect(r.headers['connection']?.toLowerCase()).toBe('upgrade');
      expect(r.headers['upgrade']?.toLowerCase()).toBe('websocket');
      expect(r.headers['content-length']).toBeUndefined();
    });

    it('Websocket.test_empty_frame: ignores an empty message and [], then still echoes', async () => {
      const ws = await server.websocket(sessionUrl('/echo') + '/websocket');
      expect(await ws.next()).toBe('o');
      ws.ws.send('');
      ws.ws.send('[]');
      ws.ws.send('["a"]');
      expect(await ws.next()).toBe('a["a"]');
    });

    it('Websocket.test_reuseSessionId: serves two websockets on one session path independently, and the path again after they close', async () => {
      const path = sessionUrl('/echo') + '/websocket';
      const ws1 = await server.websocket(path);
      expect(await ws1.next()).toBe('o');
      const ws2 = await server.websocket(path);
      expect(await ws2.next()).toBe('o');
      ws1.ws.send('["a"]');
      expect(await ws1.next()).toBe('a["a"]');
      ws2.ws.send('["b"]');
      expect(await ws2.next()).toBe('a["b"]');
      // Neither was closed by the server meanwhile.
      expect(ws1.ws.readyState).toBe(WebSocket.OPEN);
      expect(ws2.ws.readyState).toBe(WebSocket.OPEN);
      ws1.ws.close();
      ws2.ws.close();
      await within(Promise.all([ws1.closed, ws2.closed]), SUITE_WAIT_MS, 'both websockets to close');

      const ws3 = await server.websocket(path);
      expect(await ws3.next()).toBe('o');
      ws3.ws.send('["a"]');
      expect(await ws3.next()).toBe('a["a"]');
    });

    it('Websocket.test_haproxy: answers a hixie-76 handshake with its headers before key3, then with the 16-byte challenge answer', async () => {
      const path = sessionUrl('/echo') + '/websocket';
      const origin = `http://127.0.0.1:${server.port}`;
      const c = server.connection();
      c.send(
        [
          `GET ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${server.port}`,
          'Connection: Upgrade',
          'Upgrade: WebSocket',
          `Origin: ${origin}`,
          `Sec-WebSocket-Key1: ${HIXIE_KEY1}`,
          `Sec-WebSocket-Key2: ${HIXIE_KEY2}`,
          '',
          '',
        ].join('\r\n'),
      );
      const head = await c.head();
      expect(head.status).toBe(101);
      expect(head.headers['connection']?.toLowerCase()).toBe('upgrade');
      expect(head.headers['upgrade']?.toLowerCase()).toBe('websocket');
      expect(head.headers['sec-websocket-location']).toBe(server.wsUrl(path));
      expect(head.headers['sec-websocket-origin']).toBe(origin);
      expect(head.headers['content-length']).toBeUndefined();
      c.send('aaaaaaaa');
      expect((await c.read(16)).equals(HIXIE_ANSWER)).toBe(true);

      // As the reference: then `o` and echo in hixie framing.
      expect((await c.read(3)).equals(hixieFrame('o'))).toBe(true);
      c.send(hixieFrame('["a"]'));
      expect((await c.read(8)).equals(hixieFrame('a["a"]'))).toBe(true);
    });

    it('Websocket.test_broken_json: closes the websocket when a message is not valid JSON', async () => {
      const ws = await server.websocket(sessionUrl('/echo') + '/websocket');
      expect(await ws.next()).toBe('o');
      ws.ws.send('["a');
      const closed = await within(ws.closed, SUITE_WAIT_MS, 'the websocket to close');
      // As the reference: 3000 "Broken framing.".
      expect(closed).toEqual({ code: 3000, reason: 'Broken framing.' });
    });

    it('Websocket, as the reference: delivers a single JSON value that is not an array as one message', async () => {
      const ws = await server.websocket(sessionUrl('/echo') + '/websocket');
      expect(await ws.next()).toBe('o');
      ws.ws.send('"a"');
      expect(await ws.next()).toBe('a["a"]');
    });

    it('Websocket, as the reference: a websocket session cannot be reached over HTTP (xhr_send answers 404)', async () => {
      const url = sessionUrl('/echo');
      const ws = await server.websocket(url + '/websocket');
      expect(await ws.next()).toBe('o');
      expect((await server.post(url + '/xhr_send', '["a"]')).status).toBe(404);
    });

    it('Websocket, as the reference: on a service with websockets disabled both websocket URLs answer an upgrade with 404, cacheable for a year', async () => {
      for (const path of [`/disabled_websocket_echo/000/${randomUUID()}/websocket`, '/disabled_websocket_echo/websocket']) {
        const r = await server.stream('GET', path, { headers: RFC6455_UPGRADE });
        expect({ path, status: r.status }).toEqual({ path, status: 404 });
        expectCachedForAYear(r.headers);
      }
    });
  });

  describe('RawWebsocket', () => {
    it('RawWebsocket.test_transport: echoes text verbatim, U+FFFF included, with no SockJS framing', async () => {
      const ws = await server.websocket('/echo/websocket', { protocolVersion: 8 });
      ws.ws.send('Hello world!\uffff');
      expect(await ws.next()).toBe('Hello world!\uffff');
    });

    it('RawWebsocket.test_close: on /close closes the websocket with the reason "Go away!"', async () => {
      const ws = await server.websocket('/close/websocket', { protocolVersion: 8 });
      const closed = await within(ws.closed, SUITE_WAIT_MS, 'the websocket to close');
      expect(closed.reason).toBe('Go away!');
      // As the reference: with the application's code.
      expect(closed.code).toBe(3000);
    });

    it('RawWebsocket, as the reference: sends no open frame and speaks RFC 6455 version 13 too', async () => {
      const ws = await server.websocket('/echo/websocket');
      ws.ws.send('first');
      // An open frame would arrive before the echo.
      expect(await ws.next()).toBe('first');
      ws.ws.send('["a"]');
      expect(await ws.next()).toBe('["a"]');
    });

    it('RawWebsocket, as the reference: refuses the hixie-76 handshake with 400', async () => {
      const r = await server.stream('GET', '/echo/websocket', {
        headers: { Connection: 'Upgrade', Upgrade: 'WebSocket', 'Sec-WebSocket-Key1': HIXIE_KEY1, 'Sec-WebSocket-Key2': HIXIE_KEY2 },
      });
      expect(r.status).toBe(400);
    });
  });
});
