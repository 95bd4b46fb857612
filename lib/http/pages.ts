/**
 * The responses that need no session: greeting, `/info`, the iframe page and the error answers.
 * Each is data (status, headers, body), written to the socket by `respond`.
 */
import { createHash } from 'crypto';
import { cacheForAYear, type Headers, mergeHeaders, NO_CACHE } from './headers';

export interface StaticResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

const TEXT = 'text/plain; charset=UTF-8';

export const greeting = (): StaticResponse => ({
  status: 200,
  headers: { 'Content-Type': TEXT },
  body: 'Welcome to SockJS!\n',
});

/** 404; disabled websocket URLs carry the year-long cache set as the reference server does. */
export function notFound(cacheable: boolean, now: number): StaticResponse {
  return {
    status: 404,
    headers: { 'Content-Type': TEXT, ...(cacheable ? cacheForAYear(now) : {}) },
    body: '404 Error: Page not found\n',
  };
}

/** 405 with `Allow`, no Content-Type and an empty body. */
export const methodNotAllowed = (allow: string): StaticResponse => ({
  status: 405,
  headers: { Allow: allow },
  body: '',
});

export interface InfoFields {
  readonly websocket: boolean;
  readonly cookie_needed: boolean;
  /** Left out when CORS is disabled, as the reference server does. */
  readonly origins?: readonly string[];
  readonly entropy: number;
}

export function info(fields: InfoFields): StaticResponse {
  return {
    status: 200,
    headers: { 'Content-Type': 'application/json; charset=UTF-8', ...NO_CACHE },
    body: JSON.stringify(fields),
  };
}

/** The iframe page that sockjs-client's iframe transports load; `sockjsUrl` is the client to load. */
export function iframeBody(sockjsUrl: string): string {
  return `<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="${sockjsUrl}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>`;
}

export interface IframePage {
  readonly body: string;
  readonly etag: string;
}

/** The page and its ETag (the MD5 of the body, quoted), computed once per prefix. */
export function iframe(sockjsUrl: string): IframePage {
  const body = iframeBody(sockjsUrl);
  return { body, etag: '"' + createHash('md5').update(body).digest('hex') + '"' };
}

/** The iframe page, or 304 when the client already has this version. */
export function iframeResponse(page: IframePage, ifNoneMatch: string | undefined, now: number): StaticResponse {
  const headers = mergeHeaders(cacheForAYear(now), { ETag: page.etag });
  if (ifNoneMatch === page.etag) return { status: 304, headers, body: '' };
  return { status: 200, headers: mergeHeaders({ 'Content-Type': 'text/html; charset=UTF-8' }, headers), body: page.body };
}

/** An empty preflight answer: 204, cacheable for a year. */
export function preflight(headers: Headers): StaticResponse {
  return { status: 204, headers, body: '' };
}
