import { textFrame } from '../../lib/transports/websocket';

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
// `ws` exports its Sender at run time; its types do not declare it.
const { Sender } = require('ws') as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

/** The frame `ws` itself sends for `text` from a server: unmasked, final, opcode 1. */
function wsFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
}

describe('textFrame', () => {
  it.each([
    ['empty', ''],
    ['short', 'a["hi"]'],
    ['125 bytes, the last 7-bit length', 'x'.repeat(125)],
    ['126 bytes, the first 16-bit length', 'x'.repeat(126)],
    ['multi-byte characters across the 7-bit limit', 'é'.repeat(63)],
    ['65,535 bytes, the last 16-bit length', 'x'.repeat(65535)],
    ['65,536 bytes, the first 64-bit length', 'x'.repeat(65536)],
    ['multi-byte characters across the 16-bit limit', '€'.repeat(21846)],
  ])('makes the frame ws would send: %s', (_name, text) => {
    expect(textFrame(text).equals(wsFrame(text))).toBe(true);
  });
});
