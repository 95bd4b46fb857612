import { createServer as createHttpServer, type Server as HttpServer } from 'http';
import { asyncScheduler } from 'rxjs';
import { BatchScheduler } from '../lib/session/batch-scheduler';
import { TestScheduler } from 'rxjs/testing';
import { createServer, type Server, type ServerOptions, SockjsError } from '../lib';
import { ALL_TRANSPORTS } from '../lib/transports';
import {
  DEFAULT_SOCKJS_URL,
  DEFAULTS,
  optionNotices,
  resolveOptions,
  validateOptions,
} from '../lib/options';

/** Options as a JavaScript caller may pass them, wrong names and types included. */
const loose = (options: Record<string, unknown>): ServerOptions => options as ServerOptions;

/** The SockjsError that `fn` throws; fails the test when it throws nothing or something else. */
function refusal(fn: () => unknown): SockjsError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SockjsError) return error;
    throw error;
  }
  throw new Error('expected a SockjsError, but nothing was thrown');
}

const noop = () => undefined;

const VALID: ReadonlyArray<[string, unknown]> = [
  ['prefix', ''],
  ['prefix', '/echo'],
  ['prefix', '/echo/'],
  ['sockjs_url', '/static/sockjs.js'],
  ['sockjs_url', 'http://example.com/sockjs.js'],
  ['sockjs_url', 'https://cdn.example.com/sockjs.min.js'],
  ['response_limit', 4096],
  ['response_limit', 1],
  ['websocket', false],
  ['websocket', true],
  ['jsessionid', true],
  ['jsessionid', false],
  ['jsessionid', noop],
  ['log', noop],
  ['heartbeat_delay', 25_000],
  ['heartbeat_delay', 0.5],
  ['disconnect_delay', 5_000],
  ['disable_cors', true],
  ['transports', ['xhr-polling', 'websocket']],
  ['transports', [...ALL_TRANSPORTS]],
  ['transports', ['xhr-polling', 'xhr-polling']],
  ['transports', []],
  ['scheduler', asyncScheduler],
  ['scheduler', new TestScheduler(() => undefined)],
  ['hixie76', true],
  ['hixie76', false],
  ['max_message_size', 1],
  ['max_payload_messages', 1],
  ['max_queue_size', 65_536],
  ['origins', ['https://example.com', '*']],
  ['origins', []],
  ['origins', () => true],
  ['faye_server_options', {}],
  ['faye_server_options', { ping: 10 }],
];

const INVALID: ReadonlyArray<[string, unknown]> = [
  ['prefix', 'echo'],
  ['prefix', 42],
  ['prefix', null],
  ['sockjs_url', 'cdn.example.com/sockjs.js'],
  ['sockjs_url', 'javascript:alert(1)'],
  ['sockjs_url', 'http://x/"><script>'],
  ['sockjs_url', 7],
  ['response_limit', 0],
  ['response_limit', -1],
  ['response_limit', 1.5],
  ['response_limit', Infinity],
  ['response_limit', NaN],
  ['response_limit', '4096'],
  ['websocket', 'false'],
  ['websocket', 0],
  ['jsessionid', 'JSESSIONID'],
  ['jsessionid', 1],
  ['log', true],
  ['log', 'console'],
  ['heartbeat_delay', 0],
  ['heartbeat_delay', -5],
  ['heartbeat_delay', Infinity],
  ['heartbeat_delay', NaN],
  ['heartbeat_delay', '25000'],
  ['heartbeat_delay', 2 ** 31],
  ['disconnect_delay', 0],
  ['disconnect_delay', Infinity],
  ['disconnect_delay', '5s'],
  ['disable_cors', 'yes'],
  ['transports', 'websocket'],
  ['transports', ['websocket', 'flash']],
  ['transports', ['xhr_polling']],
  ['transports', [1]],
  ['scheduler', {}],
  ['scheduler', { now: () => 0 }],
  ['scheduler', { now: 0, schedule: noop }],
  ['scheduler', null],
  ['hixie76', 1],
  ['max_message_size', 0],
  ['max_message_size', 1.5],
  ['max_payload_messages', 0],
  ['max_queue_size', '1mb'],
  ['origins', 'https://example.com'],
  ['origins', [1]],
  ['faye_server_options', 'x'],
  ['faye_server_options', null],
];

describe('options', () => {
  const servers: Server[] = [];
  const https: HttpServer[] = [];

  function sockjs(options?: ServerOptions): Server {
    const server = createServer(options);
    servers.push(server);
    return server;
  }

  function http(): HttpServer {
    const server = createHttpServer();
    https.push(server);
    return server;
  }

  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
    https.splice(0);
  });

  describe('rate_limit', () => {
    it.each([
      [{ messages: 0.5 }],
      [{ messages: 2, burst: 0.4 }],
      [{ burst: 1 }],
      [{ messages: 1, policy: 'wait' }],
      [{ messages: 1, extra: true }],
      [{ bytes: -1 }],
    ])('refuses %j', (limit) => {
      expect(() => validateOptions({ rate_limit: limit })).toThrow('Invalid option "rate_limit"');
    });

    it('takes a limit whose bucket holds a message, and fills in the rest', () => {
      expect(resolveOptions({ rate_limit: { messages: 0.5, burst: 2 } }).rate_limit).toEqual({ messages: 0.5, bytes: Infinity, burst: 2, policy: 'drop' });
    });
  });

  describe('defaults', () => {
    it('names in DEFAULTS the values the documentation promises', () => {
      expect(DEFAULTS).toEqual({
        prefix: '',
        sockjs_url: DEFAULT_SOCKJS_URL,
        response_limit: 131_072,
        websocket: true,
        jsessionid: false,
        log: expect.any(Function),
        heartbeat_delay: 25_000,
        disconnect_delay: 5_000,
        disable_cors: false,
        transports: ALL_TRANSPORTS,
        scheduler: expect.any(BatchScheduler),
        hixie76: false,
        max_message_size: 1_048_576,
        max_payload_messages: 65_536,
        max_queue_size: 8_388_608,
        authorize_timeout: 5_000,
      });
      expect(DEFAULT_SOCKJS_URL).toBe('https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js');
    });

    it('resolves no options to the defaults with every transport on', () => {
      const resolved = resolveOptions();
      expect(resolved).toMatchObject({
        prefix: '',
        sockjs_url: DEFAULT_SOCKJS_URL,
        response_limit: 131_072,
        websocket: true,
        jsessionid: false,
        heartbeat_delay: 25_000,
        disconnect_delay: 5_000,
        disable_cors: false,
        scheduler: expect.any(BatchScheduler),
        hixie76: false,
      });
      expect([...resolved.transports].sort()).toEqual([...ALL_TRANSPORTS].sort());
    });

    it('sends only error lines to console.error by default', () => {
      const spy = jest.spyOn(console, 'error').mockImplementation(noop);
      try {
        const { log } = resolveOptions();
        log('info', 'an info line');
        log('debug', 'a debug line');
        log('error', 'an error line');
        expect(spy.mock.calls).toEqual([['an error line']]);
      } finally {
        spy.mockRestore();
      }
    });

    it('treats options whose value is undefined as absent', () => {
      const resolved = resolveOptions(
        loose({ prefix: undefined, heartbeat_delay: undefined, hixie76: undefined, no_such_option: undefined }),
      );
      expect(resolved).toMatchObject({ prefix: '', heartbeat_delay: 25_000, hixie76: false });
      expect(() => sockjs(loose({ response_limit: undefined, misspelt: undefined }))).not.toThrow();
    });

    it('lets installHandlers overrides win over the createServer options', () => {
      const resolved = resolveOptions({ prefix: '/a', response_limit: 10 }, { prefix: '/b', response_limit: undefined });
      expect(resolved.prefix).toBe('/b');
      expect(resolved.response_limit).toBe(10);
    });

    it('drops a trailing slash of the prefix so that /echo/ and /echo are the same', () => {
      expect(resolveOptions({ prefix: '/echo/' }).prefix).toBe('/echo');
      expect(resolveOptions({ prefix: '/' }).prefix).toBe('');
    });

    it('turns both websocket transports off when websocket is false', () => {
      const resolved = resolveOptions({ websocket: false });
      expect(resolved.websocket).toBe(false);
      expect(resolved.transports.has('websocket')).toBe(false);
      expect(resolved.transports.has('websocket-raw')).toBe(false);
      expect(resolved.transports.has('xhr-polling')).toBe(true);
    });
  });

  describe('valid values', () => {
    it.each(VALID)('accepts %s = %p at createServer', (name, value) => {
      expect(() => sockjs(loose({ [name]: value }))).not.toThrow();
    });

    it.each(VALID)('accepts %s = %p as an installHandlers override', (name, value) => {
      expect(sockjs().installHandlers(http(), loose({ [name]: value }))).toBe(true);
    });

    it('accepts null and no options at all as "no options", as the sockjs package does', () => {
      expect(() => sockjs(loose(null as unknown as Record<string, unknown>))).not.toThrow();
      expect(() => sockjs()).not.toThrow();
      expect(validateOptions(null)).toEqual({});
    });

    it('keeps the given options on the server, without the undefined ones', () => {
      expect(sockjs(loose({ prefix: '/echo', log: undefined })).options).toEqual({ prefix: '/echo' });
    });
  });

  describe('invalid values', () => {
    it.each(INVALID)('refuses %s = %p at createServer with SOCKJS_ERR_INVALID_OPTION naming it', (name, value) => {
      const error = refusal(() => sockjs(loose({ [name]: value })));
      expect(error.code).toBe('SOCKJS_ERR_INVALID_OPTION');
      expect(error.message).toContain(`"${name}"`);
      expect(error.message).toMatch(/expected .+/);
    });

    it.each(INVALID)('refuses %s = %p as an installHandlers override', (name, value) => {
      const server = sockjs();
      const error = refusal(() => server.installHandlers(http(), loose({ [name]: value })));
      expect(error.code).toBe('SOCKJS_ERR_INVALID_OPTION');
      expect(error.message).toContain(`"${name}"`);
    });

    it.each([
      ['prefix', "'' or starts with '/'"],
      ['response_limit', 'a positive integer'],
      ['websocket', 'a boolean'],
      ['jsessionid', 'a boolean or a function'],
      ['log', 'a function'],
      ['heartbeat_delay', 'a positive finite number'],
      ['transports', 'an array of transport names'],
      ['scheduler', '`now` and `schedule` functions'],
    ])('says what %s expects: %s', (name, expected) => {
      expect(refusal(() => sockjs(loose({ [name]: Symbol('wrong') }))).message).toContain(expected);
    });

    it('refuses options that are not an object', () => {
      const error = refusal(() => sockjs(loose('prefix=/echo' as unknown as Record<string, unknown>)));
      expect(error.code).toBe('SOCKJS_ERR_INVALID_OPTION');
      expect(error.message).toContain('"options"');
    });
  });

  describe('unknown names', () => {
    it.each(['heartbeatDelay', 'prefx', 'allowed_origins', 'base_url', 'constructor'])(
      'refuses the unknown option %s with SOCKJS_ERR_UNKNOWN_OPTION naming it',
      (name) => {
        const error = refusal(() => sockjs(loose({ [name]: 1 })));
        expect(error.code).toBe('SOCKJS_ERR_UNKNOWN_OPTION');
        expect(error.message).toContain(`"${name}"`);
      },
    );

    it('refuses an unknown installHandlers override and leaves the HTTP server untouched', () => {
      const server = sockjs({ prefix: '/echo' });
      const target = http();
      const listener = () => undefined;
      target.on('request', listener);
      const error = refusal(() => server.installHandlers(target, loose({ prefx: '/other' })));
      expect(error.code).toBe('SOCKJS_ERR_UNKNOWN_OPTION');
      expect(error.message).toContain('"prefx"');
      expect(target.listeners('request')).toEqual([listener]);
      expect(target.listeners('upgrade')).toEqual([]);
    });
  });

  describe('faye_server_options', () => {
    it('is accepted and logged once at info as having no effect', () => {
      const log = jest.fn();
      const server = sockjs(loose({ faye_server_options: { ping: 10 }, log }));
      server.installHandlers(http(), { prefix: '/a' });
      server.attach(http());
      const notices = log.mock.calls.filter(([, message]) => String(message).includes('faye_server_options'));
      expect(notices).toEqual([['info', expect.stringContaining('has no effect')]]);
    });

    it('is logged once more when an installHandlers override carries it', () => {
      const log = jest.fn();
      const server = sockjs({ log });
      server.installHandlers(http(), loose({ prefix: '/a', faye_server_options: {} }));
      const notices = log.mock.calls.filter(([, message]) => String(message).includes('faye_server_options'));
      expect(notices).toEqual([['info', expect.stringContaining('has no effect')]]);
    });

    it('changes nothing in the resolved options', () => {
      const { log, ...withFaye } = resolveOptions(loose({ faye_server_options: { ping: 10 } }));
      const { log: defaultLog, ...without } = resolveOptions();
      expect(withFaye).toEqual(without);
      expect(log).toBe(defaultLog);
    });

    it('gives no notice for options that all take effect', () => {
      expect(optionNotices({ prefix: '/echo', hixie76: true })).toEqual([]);
      expect(optionNotices(undefined)).toEqual([]);
    });
  });
});
