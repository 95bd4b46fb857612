/**
 * Chromium for the end-to-end suites (Debian's, at /usr/bin/chromium, driven by playwright-core),
 * and what they need around it: the page sockjs-client runs in, and calls into that page.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import type { IncomingMessage, ServerResponse } from 'http';
import { tmpdir } from 'os';
import { join } from 'path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * No sandbox, which needs privileges that a container or a root user does not give it, and none
 * of the background traffic (updates, sync, QUIC probes) that would mix with the tests' requests.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Whether a suite that needs Chromium is skipped: without the browser it is, with one line that
 * names `suite`, so that a machine without it still runs the rest; under CI=true it is not, and
 * launchChromium fails instead, so that CI cannot pass without the browser.
 */
export function chromiumSkipped(suite: string): boolean {
  const skipped = !existsSync(CHROMIUM) && process.env.CI !== 'true';
  if (skipped) {
    process.stdout.write(
      `${suite} skipped: ${CHROMIUM} not found; install it with 'apt-get install -y chromium' or run with CI=true\n`,
    );
  }
  return skipped;
}

export interface Chromium {
  readonly context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Launches headless Chromium with a profile of its own in a temporary directory, so that no run sees another's state. */
export async function launchChromium(): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) throw new Error(`CI=true and no browser at ${CHROMIUM}`);
  const userDataDir = mkdtempSync(join(tmpdir(), 'sockjs-rx-chromium-'));
  const removeProfile = () => rmSync(userDataDir, { recursive: true, force: true });
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  } catch (error) {
    removeProfile();
    throw error;
  }
  return {
    context,
    close: async () => {
      try {
        await context.close();
      } finally {
        removeProfile();
      }
    },
  };
}

const CLIENT_SCRIPT = readFileSync(require.resolve('sockjs-client/dist/sockjs.min.js'));

/**
 * A request handler that serves `html` at `/` and sockjs-client's browser build at
 * `/sockjs.min.js`, and answers 404 to anything else. The page loads the installed
 * sockjs-client from its own server, so the tests need no network and run the version the Node
 * suites run; a service's `sockjs_url` can point there too, for the iframe transports.
 */
export function servePage(html: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8', 'Cache-Control': 'no-store' });
      res.end(html);
    } else if (path === '/sockjs.min.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript; charset=UTF-8' });
      res.end(CLIENT_SCRIPT);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('404 Error: Page not found\n');
    }
  };
}

/** A JavaScript literal of `value` in pure ASCII, so that no code unit depends on the wire's encoding. */
function literal(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The expression that calls `method` of the page's `window.harness` with `args`: to evaluate, or to wait on. */
export function harnessCall(method: string, args: readonly unknown[]): string {
  return `window.harness.${method}(${args.map(literal).join(', ')})`;
}

/** Calls `method` of the page's `window.harness` with `args`, and resolves to what it returns. */
export function call<T>(page: Page, method: string, ...args: readonly unknown[]): Promise<T> {
  return page.evaluate<T>(harnessCall(method, args));
}
