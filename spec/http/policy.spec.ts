import type { IncomingMessage, ServerResponse } from 'http';
import { NO_CACHE } from '../../lib/http/headers';
import { HttpPolicy, type PolicyOptions } from '../../lib/http/policy';

const policy = (options: Partial<PolicyOptions> = {}) => new HttpPolicy({ origins: null, disable_cors: false, jsessionid: false, ...options });
const request = (headers: IncomingMessage['headers'] = {}): IncomingMessage => ({ headers }) as IncomingMessage;
const RESPONSE = {} as ServerResponse;

describe('HttpPolicy', () => {
  it('refuses only an Origin the origins option refuses; requests without one pass', () => {
    const only = policy({ origins: (origin) => origin === 'https://a.example' });
    expect(only.refusesOrigin(request({ origin: 'https://a.example' }))).toBe(false);
    expect(only.refusesOrigin(request({ origin: 'https://b.example' }))).toBe(true);
    expect(only.refusesOrigin(request())).toBe(false);
    expect(policy().refusesOrigin(request({ origin: 'https://b.example' }))).toBe(false);
  });

  it('gives the CORS headers of each rule set, and none with disable_cors', () => {
    expect(policy().cors(request({ origin: 'null' }))).toMatchObject({ 'Access-Control-Allow-Origin': 'null' });
    expect(policy().cors(request({ origin: 'null' }), 'eventsource')).toMatchObject({ 'Access-Control-Allow-Origin': '*' });
    expect(policy().cors(request({ origin: 'null' }), 'none')).toBeUndefined();
    expect(policy({ disable_cors: true }).cors(request({ origin: 'null' }))).toBeUndefined();
  });

  it('echoes the JSESSIONID cookie when jsessionid is true, on every session response', () => {
    const on = policy({ jsessionid: true });
    expect(on.cookie(request({ cookie: 'a=1; JSESSIONID=abc' }), RESPONSE)).toStrictEqual({ 'Set-Cookie': 'JSESSIONID=abc; path=/' });
    expect(on.sessionHeaders(request(), RESPONSE)).toStrictEqual({ ...NO_CACHE, 'Set-Cookie': 'JSESSIONID=dummy; path=/' });
    expect(policy().cookie(request(), RESPONSE)).toBeUndefined();
    expect(policy().sessionHeaders(request(), RESPONSE)).toStrictEqual(NO_CACHE);
  });

  it('leaves the cookie to a jsessionid function, called with the request and the response', () => {
    const calls: unknown[][] = [];
    const custom = policy({ jsessionid: (req, res) => calls.push([req, res]) });
    const req = request();
    expect(custom.sessionHeaders(req, RESPONSE)).toStrictEqual(NO_CACHE);
    expect(custom.cookie(req, RESPONSE)).toBeUndefined();
    expect(calls).toStrictEqual([
      [req, RESPONSE],
      [req, RESPONSE],
    ]);
  });
});
