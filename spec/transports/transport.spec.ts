import { mediaType } from '../../lib/transports/transport';

describe('mediaType', () => {
  it.each<[string | undefined, string]>([
    [undefined, ''],
    ['', ''],
    ['text/plain', 'text/plain'],
    ['text/plain;charset=UTF-8', 'text/plain'],
    ['Application/X-WWW-Form-Urlencoded; charset=utf-8', 'application/x-www-form-urlencoded'],
    ['  text/plain  ; a=b; c=d', 'text/plain'],
    [';charset=UTF-8', ''],
  ])('reads %j as %j, without its parameters', (contentType, expected) => {
    expect(mediaType(contentType)).toBe(expected);
  });
});
