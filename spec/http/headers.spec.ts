import type { IncomingHttpHeaders } from 'http';
import {
  cacheForAYear,
  corsHeaders,
  type Headers,
  jsessionidHeaders,
  mergeHeaders,
  NO_CACHE,
  preflightHeaders,
  readCookie,
} from '../../lib/http/headers';

describe('NO_CACHE', () => {
  it('is exactly the Cache-Control the protocol requires, with no Expires or Last-Modified', () => {
    expect(NO_CACHE).toStrictEqual({ 'Cache-Control': 'no-store, no-cache, no-transform, must-revalidate, max-age=0' });
  });
});

describe('mergeHeaders', () => {
  it.each<[string, Array<Headers | undefined>, Headers]>([
    ['no sets', [], {}],
    ['only absent sets', [undefined, undefined], {}],
    ['one set', [{ A: '1' }], { A: '1' }],
    ['disjoint sets, in order', [{ A: '1' }, undefined, { B: '2' }], { A: '1', B: '2' }],
    ['a name in two sets, the later winning', [{ A: '1', B: '2' }, { A: '3' }], { A: '3', B: '2' }],
  ])('merges %s', (_name, sets, merged) => {
    const result = mergeHeaders(...sets);
    expect(result).toStrictEqual(merged);
    expect(Object.keys(result)).toStrictEqual(Object.keys(merged));
  });

  it('returns a new object and leaves its sets as they were', () => {
    const first = { A: '1' };
    const result = mergeHeaders(first, { B: '2' });
    result.C = '3';
    expect(first).toStrictEqual({ A: '1' });
    expect(result).not.toBe(first);
  });
});

describe('cacheForAYear', () => {
  it.each<[string, number, string]>([
    ['the epoch', 0, 'Fri, 01 Jan 1971 00:00:00 GMT'],
    ['a leap day', Date.UTC(2024, 1, 29, 12, 0, 0), 'Fri, 28 Feb 2025 12:00:00 GMT'],
    ['a time with seconds', Date.UTC(2026, 10, 22, 3, 12, 23), 'Mon, 22 Nov 2027 03:12:23 GMT'],
  ])('caches for 365 days from %s with an RFC 1123 Expires', (_name, now, expires) => {
    expect(cacheForAYear(now)).toStrictEqual({ 'Cache-Control': 'public, max-age=31536000', Expires: expires });
  });
});

describe('corsHeaders', () => {
  it.each<[string, IncomingHttpHeaders, Headers]>([
    [
      'echoes a named Origin with credentials',
      { origin: 'http://example.com' },
      { 'Access-Control-Allow-Origin': 'http://example.com', 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' },
    ],
    [
      'echoes the Origin test',
      { origin: 'test' },
      { 'Access-Control-Allow-Origin': 'test', 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' },
    ],
    [
      'echoes the literal null Origin with credentials',
      { origin: 'null' },
      { 'Access-Control-Allow-Origin': 'null', 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' },
    ],
    ['allows any origin without credentials when there is no Origin', {}, { 'Access-Control-Allow-Origin': '*', Vary: 'Origin' }],
    ['treats an empty Origin as none', { origin: '' }, { 'Access-Control-Allow-Origin': '*', Vary: 'Origin' }],
    [
      'echoes the requested headers',
      { origin: 'test', 'access-control-request-headers': 'a, b, c' },
      {
        'Access-Control-Allow-Origin': 'test',
        'Access-Control-Allow-Credentials': 'true',
        Vary: 'Origin',
        'Access-Control-Allow-Headers': 'a, b, c',
      },
    ],
    [
      'echoes the requested headers without an Origin',
      { 'access-control-request-headers': 'x-requested-with' },
      { 'Access-Control-Allow-Origin': '*', Vary: 'Origin', 'Access-Control-Allow-Headers': 'x-requested-with' },
    ],
    [
      'leaves out Allow-Headers when the requested headers are empty',
      { origin: 'test', 'access-control-request-headers': '' },
      { 'Access-Control-Allow-Origin': 'test', 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' },
    ],
  ])('%s', (_name, request, expected) => {
    expect(corsHeaders(request)).toStrictEqual(expected);
  });
});

describe('preflightHeaders', () => {
  it.each(['OPTIONS, GET', 'OPTIONS, POST'])('allows the methods %s for a year', (methods) => {
    expect(preflightHeaders(methods)).toStrictEqual({
      'Access-Control-Allow-Methods': methods,
      'Access-Control-Max-Age': '31536000',
    });
  });
});

describe('readCookie', () => {
  it.each<[string, string | undefined, string | undefined]>([
    ['no Cookie header', undefined, undefined],
    ['an empty Cookie header', '', undefined],
    ['the only cookie', 'JSESSIONID=abcdef', 'abcdef'],
    ['one cookie among several', 'a=1; JSESSIONID=abcdef; b=2', 'abcdef'],
    ['the last of several cookies', 'a=1;b=2;JSESSIONID=abcdef', 'abcdef'],
    ['a cookie with spaces around its name and value', '  JSESSIONID  =  abcdef  ; b=2', 'abcdef'],
    ['a value holding an equals sign', 'JSESSIONID=ab=cd', 'ab=cd'],
    ['a value with percent escapes undecoded', 'JSESSIONID=a%20b', 'a%20b'],
    ['an empty value', 'JSESSIONID=', ''],
    ['a cookie whose name only ends with the name', 'XJSESSIONID=abcdef', undefined],
    ['a cookie whose name differs in case', 'jsessionid=abcdef', undefined],
    ['a cookie without a value', 'JSESSIONID', undefined],
    ['other cookies only', 'a=1; b=2', undefined],
  ])('reads JSESSIONID from %s', (_name, header, value) => {
    expect(readCookie(header, 'JSESSIONID')).toBe(value);
  });
});

describe('jsessionidHeaders', () => {
  it.each<[string, IncomingHttpHeaders, string]>([
    ['sets dummy when the request has no cookie', {}, 'JSESSIONID=dummy; path=/'],
    ['echoes the request JSESSIONID', { cookie: 'JSESSIONID=abcdef' }, 'JSESSIONID=abcdef; path=/'],
    ['echoes a JSESSIONID among other cookies', { cookie: 'a=1; JSESSIONID=abcdef; b=2' }, 'JSESSIONID=abcdef; path=/'],
    ['echoes a JSESSIONID written with spaces', { cookie: ' JSESSIONID = abcdef ' }, 'JSESSIONID=abcdef; path=/'],
    ['sets dummy when only other cookies are sent', { cookie: 'a=1; b=2' }, 'JSESSIONID=dummy; path=/'],
    ['sets dummy when the JSESSIONID is empty', { cookie: 'JSESSIONID=' }, 'JSESSIONID=dummy; path=/'],
  ])('%s', (_name, request, cookie) => {
    expect(jsessionidHeaders(request)).toStrictEqual({ 'Set-Cookie': cookie });
  });
});
