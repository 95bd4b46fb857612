import { ALL_TRANSPORTS, TRANSPORTS, type TransportUse } from '../../lib/transports';

const uses = Object.entries(TRANSPORTS) as Array<[string, TransportUse]>;

describe('TRANSPORTS', () => {
  it('names every transport of the protocol once, in the order the sockjs package lists them', () => {
    expect(ALL_TRANSPORTS).toStrictEqual(['websocket', 'websocket-raw', 'xhr-polling', 'xhr-streaming', 'eventsource', 'htmlfile', 'jsonp-polling']);
  });

  it('receives each HTTP transport under its own name, as Connection.protocol reports it', () => {
    for (const [name, use] of uses) {
      if (use.receive && use.receive !== 'websocket') expect([name, use.receive.protocol]).toStrictEqual([name, name]);
    }
  });

  it('gives each session URL one transport, whichever names use it', () => {
    const byPath = new Map<string, unknown>();
    for (const [, use] of uses) {
      for (const transport of [use.receive, use.send]) {
        if (!transport || transport === 'websocket') continue;
        expect(byPath.get(transport.path) ?? transport).toBe(transport);
        byPath.set(transport.path, transport);
      }
    }
    expect([...byPath.keys()].sort()).toStrictEqual(['eventsource', 'htmlfile', 'jsonp', 'jsonp_send', 'xhr', 'xhr_send', 'xhr_streaming']);
  });
});
