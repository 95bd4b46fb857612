import { eventsourceCorsHeaders } from '../../lib/http/headers';
import { eventsource, EVENTSOURCE_PRELUDE, eventsourceFrame } from '../../lib/transports/eventsource';
import { isFramer } from '../../lib/transports/transport';

describe('eventsource', () => {
  it.each([
    ['o', 'data: o\r\n\r\n'],
    ['h', 'data: h\r\n\r\n'],
    ['a["x"]', 'data: a["x"]\r\n\r\n'],
    ['c[3000,"Go away!"]', 'data: c[3000,"Go away!"]\r\n\r\n'],
    ['a["  \\u0000\\n\\r "]', 'data: a["  \\u0000\\n\\r "]\r\n\r\n'],
    ['a["100%"]', 'data: a["100%25"]\r\n\r\n'],
    ['a["%61%zz%"]', 'data: a["%2561%25zz%25"]\r\n\r\n'],
    ['a\r\nb', 'data: a%0D%0Ab\r\n\r\n'],
    ['a\0b', 'data: a%00b\r\n\r\n'],
    ['a["é€😀"]', 'data: a["é€😀"]\r\n\r\n'],
  ])('wraps the frame %j as %j', (frame, wire) => {
    expect(eventsourceFrame(frame)).toBe(wire);
  });

  it.each(['a["100%"]', 'a\r\nb\0c', 'a["%%25%0A"]', 'a["é€😀 %"]'])(
    'gives back the frame %j when the event data is passed through decodeURI, as sockjs-client does',
    (frame) => {
      const data = eventsourceFrame(frame).slice('data: '.length, -'\r\n\r\n'.length);
      expect(decodeURI(data)).toBe(frame);
    },
  );

  it('puts no CR or LF inside the data line, whatever the frame holds', () => {
    const wire = eventsourceFrame('x\ry\nz\r\n');
    expect(wire.slice(0, -4)).not.toMatch(/[\r\n]/);
  });

  it('opens the stream with CR LF and uses text/event-stream without a charset', () => {
    expect(EVENTSOURCE_PRELUDE).toBe('\r\n');
    expect(eventsource.contentType).toBe('text/event-stream');
    expect(eventsource).toMatchObject({ path: 'eventsource', method: 'GET', protocol: 'eventsource', cors: 'eventsource', streaming: true });
  });

  it('needs no query parameter', () => {
    const framer = eventsource.framer('');
    expect(isFramer(framer)).toBe(true);
    if (isFramer(framer)) {
      expect(framer.prelude).toBe('\r\n');
      expect(framer.wrap('o')).toBe('data: o\r\n\r\n');
    }
  });
});

describe('eventsourceCorsHeaders', () => {
  it.each<[Record<string, string>, Record<string, string>]>([
    [{}, { 'Access-Control-Allow-Origin': '*', Vary: 'Origin' }],
    [{ origin: 'null' }, { 'Access-Control-Allow-Origin': '*', Vary: 'Origin' }],
    [
      { origin: 'https://example.com' },
      { 'Access-Control-Allow-Origin': 'https://example.com', 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' },
    ],
    [
      { origin: 'test', 'access-control-request-headers': 'a, b' },
      {
        'Access-Control-Allow-Origin': 'test',
        'Access-Control-Allow-Credentials': 'true',
        Vary: 'Origin',
        'Access-Control-Allow-Headers': 'a, b',
      },
    ],
  ])('answers the request headers %j with %j', (request, headers) => {
    expect(eventsourceCorsHeaders(request)).toEqual(headers);
  });
});
