/**
 * What the options say about a request, as headers and checks: its Origin (`origins`), its CORS
 * headers (`disable_cors`) and the JSESSIONID cookie (`jsessionid`), each rule written once.
 */
import type { IncomingMessage, ServerResponse } from 'http';
import type { ResolvedOptions } from '../options';
import { corsHeaders, eventsourceCorsHeaders, type Headers, jsessionidHeaders, mergeHeaders, NO_CACHE } from './headers';

export type PolicyOptions = Pick<ResolvedOptions, 'origins' | 'disable_cors' | 'jsessionid'>;

export class HttpPolicy {
  constructor(private readonly options: PolicyOptions) {}

  /** Whether the `origins` option refuses this request's Origin; requests without one pass. */
  refusesOrigin(req: IncomingMessage): boolean {
    const { origins } = this.options;
    const origin = req.headers.origin;
    return origins !== null && origin !== undefined && !origins(origin, req);
  }

  /** The CORS headers of a response by `rules` (a transport's `cors`); none with `disable_cors`. */
  cors(req: IncomingMessage, rules: 'xhr' | 'eventsource' | 'none' = 'xhr'): Headers | undefined {
    if (this.options.disable_cors || rules === 'none') return undefined;
    return rules === 'xhr' ? corsHeaders(req.headers) : eventsourceCorsHeaders(req.headers);
  }

  /**
   * The JSESSIONID cookie of a session response or a preflight, as `jsessionid` asks: its
   * `Set-Cookie` header when it is `true`; when it is a function, that function is called with the
   * request and the response and sets what it wants itself.
   */
  cookie(req: IncomingMessage, res: ServerResponse): Headers | undefined {
    const { jsessionid } = this.options;
    if (typeof jsessionid === 'function') jsessionid(req, res);
    else if (jsessionid) return jsessionidHeaders(req.headers);
    return undefined;
  }

  /** The headers of every session response: never cached, and the cookie as `cookie` gives it. */
  sessionHeaders(req: IncomingMessage, res: ServerResponse): Headers {
    const cookie = this.cookie(req, res);
    return cookie ? mergeHeaders(NO_CACHE, cookie) : NO_CACHE;
  }
}
