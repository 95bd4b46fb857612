import { onFlush, Shared, SharedBytes } from '../../lib/session/receiver';

describe('Shared', () => {
  it('makes a value once for a run of the same frame, and anew for another', () => {
    const made: string[] = [];
    const shared = new Shared((frame: string) => {
      made.push(frame);
      return Buffer.from(frame);
    });
    const first = shared.of('a["m"]');
    expect(shared.of('a["m"]')).toBe(first);
    // The same text in another string is the same frame.
    expect(shared.of(['a["', 'm"]'].join(''))).toBe(first);
    const other = shared.of('a["n"]');
    expect(other.toString()).toBe('a["n"]');
    expect(shared.of('a["m"]')).not.toBe(first);
    expect(made).toStrictEqual(['a["m"]', 'a["n"]', 'a["m"]']);
  });

  it('keeps no frame longer than 16 Ki characters', () => {
    let calls = 0;
    const shared = new Shared((frame: string) => {
      calls++;
      return frame.length;
    });
    const long = 'x'.repeat(16 * 1024 + 1);
    expect([shared.of(long), shared.of(long)]).toStrictEqual([long.length, long.length]);
    expect(calls).toBe(2);
  });
});

describe('SharedBytes', () => {
  it('hands a chunk back as it is the first time, and as the same bytes from its second time in a row on', () => {
    const shared = new SharedBytes();
    expect(shared.of('a["é"]')).toBe('a["é"]');
    const bytes = shared.of('a["é"]');
    expect(Buffer.isBuffer(bytes) && bytes.toString('utf8')).toBe('a["é"]');
    expect(shared.of('a["é"]')).toBe(bytes);
    expect(shared.of('h')).toBe('h');
    expect(shared.of('a["é"]')).toBe('a["é"]');
  });

  it('makes the bytes with the encoder it is given, once for a run of the same chunk', () => {
    const made: string[] = [];
    const shared = new SharedBytes((chunk) => {
      made.push(chunk);
      return Buffer.from(`<${chunk}>`);
    });
    expect(shared.of('m')).toBe('m');
    const bytes = shared.of('m');
    expect(Buffer.isBuffer(bytes) && bytes.toString()).toBe('<m>');
    expect(shared.of('m')).toBe(bytes);
    expect(made).toStrictEqual(['m']);
  });

  it('never keeps a chunk longer than 16 Ki characters', () => {
    const shared = new SharedBytes();
    const long = 'x'.repeat(16 * 1024 + 1);
    expect([shared.of(long), shared.of(long)]).toStrictEqual([long, long]);
  });
});

describe('onFlush', () => {
  it('hands the acknowledgement to the write only while the stream is over its high-water mark', () => {
    const taken = () => undefined;
    expect(onFlush({ writableNeedDrain: true }, taken)).toBe(taken);
    expect(onFlush({ writableNeedDrain: false }, taken)).toBeUndefined();
  });
});
