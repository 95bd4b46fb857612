'use strict';
/**
 * Fuzzer with a crash oracle: drives a real sockjs-rx server, run in a child process
 * (scripts/fuzz-server.js), with random and mutated HTTP requests, websocket and hixie-76 sessions,
 * pipelined and slow requests, and client resets or FINs at random byte offsets; after every batch it
 * checks that the server is alive, answers, holds no socket or session its clients left, and keeps its
 * heap bounded.
 *
 *   npm run fuzz                                   # 600 s or 1,000,000 cases, a seed from the clock
 *   node scripts/fuzz.js --seed 7 --cases 2000     # the same 2,000 cases every time
 *   node scripts/fuzz.js --seed 7 --only 1234      # one case of that run, alone
 *   node scripts/fuzz.js --replay spec/fuzz-seeds  # every saved finding (a file or a directory)
 *
 * A case is a function of (seed, index) alone: a list of steps (connect, write bytes, wait, expect an
 * answer, reset, FIN) on raw TCP sockets, so that `--seed N --cases M` generates the same bytes again.
 * Timing is the machine's, so a crash that needs a race may take more than one replay.
 *
 * Options: --seconds S (600), --cases N (1e6), --concurrency C (16), --batch B (200),
 * --heap-slack-mb M (64), --save-dir D (spec/fuzz-seeds), --no-save, --verbose,
 * --target DIR (another build of the package to test, e.g. one made from an older commit).
 * Exits 0 when every check passed, 1 when any failed.
 */
const fs = require('fs');
const net = require('net');
const http = require('http');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');
const { fork } = require('child_process');

const ROOT = path.join(__dirname, '..');
const SERVER_SCRIPT = path.join(__dirname, 'fuzz-server.js');
/** Bumped when generation changes, so that a saved seed says which generator made its bytes. */
const GENERATOR = 1;

// ---------------------------------------------------------------------------------------------------
// Arguments

const argv = process.argv.slice(2);
function flag(name) {
  return argv.includes(`--${name}`);
}
function argument(name, fallback) {
  const at = argv.indexOf(`--${name}`);
  return at === -1 || at + 1 >= argv.length ? fallback : argv[at + 1];
}
const numberArgument = (name, fallback) => Number(argument(name, fallback));

const SEED = argument('seed', null) === null ? Date.now() % 2 ** 32 : numberArgument('seed') >>> 0;
const SECONDS = numberArgument('seconds', 600);
const CASES = numberArgument('cases', 1_000_000);
const CONCURRENCY = numberArgument('concurrency', 16);
const BATCH = numberArgument('batch', 200);
const HEAP_SLACK_MB = numberArgument('heap-slack-mb', 64);
const SAVE_DIR = path.resolve(ROOT, argument('save-dir', 'spec/fuzz-seeds'));
let saving = !flag('no-save');
const VERBOSE = flag('verbose');
const ONLY = argument('only', null);
const REPLAY = argument('replay', null);
const TARGET = argument('target', null) && path.resolve(argument('target'));

/** Every wait is bounded by one of these. */
const LIMITS = {
  caseMs: 6_000, // the steps of one case
  answerMs: 2_000, // a complete request gets its first byte or a close within this
  finMs: 1_500, // after the client's FIN, the server closes within this
  drainMs: 1_000, // a write waits this long for the socket to drain
  probeMs: 1_000, // each health probe
  settleMs: 3_000, // sockets and sessions back to the baseline after a batch
  statsMs: 3_000, // the child answers a stats request
  spawnMs: 10_000, // the child is listening
  triageMs: 45_000, // replays to find which case of a batch crashed the server
};

// ---------------------------------------------------------------------------------------------------
// A seeded PRNG (mulberry32) and the helpers built on it

function mulberry32(a) {
  return function next() {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator of case `index` of run `seed`: independent of every other case. */
function caseRng(seed, index) {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  const next = mulberry32(h);
  const rng = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (list) => list[Math.floor(next() * list.length)],
    /** Picks from [[weight, value], ...]. */
    weighted: (table) => {
      let total = 0;
      for (const [w] of table) total += w;
      let r = next() * total;
      for (const [w, v] of table) if ((r -= w) < 0) return v;
      return table[table.length - 1][1];
    },
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
    word: (n) => {
      const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
      let s = '';
      for (let i = 0; i < n; i++) s += abc[Math.floor(next() * abc.length)];
      return s;
    },
  };
  return rng;
}

// ---------------------------------------------------------------------------------------------------
// Inputs: JSON payloads, paths, headers, HTTP requests, websocket and hixie-76 frames

const nest = (open, close, depth, core = '') => open.repeat(depth) + core + close.repeat(depth);

/** A client message body as SockJS expects it (a JSON array of strings), and every way to get it wrong. */
function payload(rng) {
  const kind = rng.weighted([
    [10, 'strings'],
    [6, 'deep-array'],
    [4, 'deep-object'],
    [3, 'deep-mixed'],
    [4, 'wide'],
    [4, 'huge-string'],
    [5, 'non-strings'],
    [4, 'not-array'],
    [6, 'broken'],
    [3, 'bad-utf8'],
    [3, 'unicode'],
    [2, 'empty'],
    [4, 'mutated'],
  ]);
  switch (kind) {
    case 'strings': {
      const items = Array.from({ length: rng.int(0, 5) }, () => rng.word(rng.int(0, 20)));
      return { kind, bytes: Buffer.from(JSON.stringify(items)) };
    }
    case 'deep-array': {
      const depth = rng.pick([100, 1000, 5000, 10_000, 12_000, 20_000, 32_000]);
      return { kind: `${kind}-${depth}`, bytes: Buffer.from(nest('[', ']', depth)) };
    }
    case 'deep-object': {
      const depth = rng.pick([100, 1000, 5000, 10_000, 12_000]);
      const inner = nest('{"a":', '}', depth, '1');
      return { kind: `${kind}-${depth}`, bytes: Buffer.from(rng.chance(0.7) ? `[${inner}]` : inner) };
    }
    case 'deep-mixed': {
      const depth = rng.pick([1000, 10_000]);
      return { kind: `${kind}-${depth}`, bytes: Buffer.from(`["x",${nest('[{"a":', '}]', depth, 'null')}]`) };
    }
    case 'wide': {
      const n = rng.pick([1000, 20_000, 100_000]);
      const element = rng.pick(['""', '0', 'null', '[]', '{}']);
      return { kind: `${kind}-${n}`, bytes: Buffer.from(`[${Array(n).fill(element).join(',')}]`) };
    }
    case 'huge-string': {
      const n = rng.pick([65_536 - 4, 65_536 - 3, 65_536, 70_000, 300_000, 1_100_000]);
      return { kind: `${kind}-${n}`, bytes: Buffer.from(`["${'x'.repeat(n)}"]`) };
    }
    case 'non-strings':
      return {
        kind,
        bytes: Buffer.from(
          JSON.stringify(
            Array.from({ length: rng.int(1, 6) }, () =>
              rng.pick([1, -0, 1e308, null, true, false, {}, { a: [1, { b: null }] }, [], [[['x']]], 'ok', { toString: 'x' }, { __proto__: null }]),
            ),
          ),
        ),
      };
    case 'not-array':
      return { kind, bytes: Buffer.from(rng.pick(['1', '"x"', '{}', '{"a":1}', 'null', 'true', '1e999', '-', '"\\ud800"', '{"__proto__":{"x":1}}'])) };
    case 'broken': {
      const good = JSON.stringify(['abc', 'def', 'ghi']);
      return {
        kind,
        bytes: Buffer.from(
          rng.pick([good.slice(0, rng.int(0, good.length - 1)), '[', '["a', '["\\u12"]', '["\\x"]', '[,]', '["a",]', "['a']", '[1 2]', '\u0000', '[]]', '[[]', ']', `${good}junk`]),
        ),
      };
    }
    case 'bad-utf8':
      return { kind, bytes: Buffer.concat([Buffer.from('["'), rng.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), rng.bytes(rng.int(1, 30))]), Buffer.from('"]')]) };
    case 'unicode':
      return { kind, bytes: Buffer.from(rng.pick(['["\\ud800"]', '["\\udc00\\ud800"]', '["\u2028\u2029\ufeff\uffff"]', '["\\u0000"]', JSON.stringify(['\u{1f600}'.repeat(1000)])])) };
    case 'empty':
      return { kind, bytes: Buffer.alloc(0) };
    default: {
      const base = Buffer.from(JSON.stringify(['hello', 'world', { a: [1, 2] }]));
      return { kind, bytes: mutate(rng, base) };
    }
  }
}

/** A few random byte flips, insertions and deletions. */
function mutate(rng, bytes) {
  let b = Buffer.from(bytes);
  for (let n = rng.int(1, 4); n > 0; n--) {
    const at = rng.int(0, Math.max(0, b.length - 1));
    const op = rng.int(0, 2);
    if (op === 0 && b.length > 0) b[at] = rng.int(0, 255);
    else if (op === 1) b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.int(1, 8)), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + rng.int(1, 8))]);
  }
  return b;
}

const TRANSPORTS = ['xhr', 'xhr_send', 'xhr_streaming', 'eventsource', 'htmlfile', 'jsonp', 'jsonp_send', 'websocket'];
const MODES = 10; // the application modes of fuzz-server.js

/** A session id that names its case (for leak reports) and the application's mode. */
function sessionId(rng, index) {
  if (rng.chance(0.05)) return rng.pick(['__proto__', 'constructor', 'hasOwnProperty', '%00', 'a'.repeat(rng.pick([300, 10_000])), '%20', '-', '_']);
  return `m${rng.int(0, MODES - 1)}c${index}r${rng.word(4)}`;
}

function callbackQuery(rng) {
  return rng.weighted([
    [8, '?c=cb'],
    [1, '?c=a.b_c-9'],
    [1, ''],
    [1, '?c='],
    [1, '?c=%3Cscript%3E'],
    [1, `?c=${'x'.repeat(rng.pick([10, 5000]))}`],
    [1, '?c=cb&c=cb2'],
  ]);
}

/** A path inside or outside the prefix; `label` says which, for reports. */
function randomPath(rng, index) {
  const sid = () => sessionId(rng, index);
  const srv = () => rng.pick(['000', '0', 'a', rng.word(3), '', '.', '%2e']);
  const escape = () => rng.pick(['%00', '%2f', '%2e%2e', '%ff', '%', '%zz', '%c3%28', '%u1234', '..', '//', ';', '#frag']);
  return rng.weighted([
    [3, () => ({ label: 'greeting', path: rng.pick(['/echo', '/echo/', '/echo?x=1']) })],
    [3, () => ({ label: 'info', path: rng.pick(['/echo/info', '/echo/info?t=1', '/echo/info/']) })],
    [2, () => ({ label: 'iframe', path: rng.pick(['/echo/iframe.html', '/echo/iframe-1.2.3.html?x', `/echo/iframe-${rng.word(5)}.html`, '/echo/IFRAME.HTML']) })],
    [2, () => ({ label: 'raw websocket url', path: `/echo/websocket${rng.chance(0.5) ? `?m${rng.int(0, MODES - 1)}c${index}` : ''}` })],
    [12, () => {
      const transport = rng.pick(TRANSPORTS);
      const query = transport === 'htmlfile' || transport === 'jsonp' ? callbackQuery(rng) : rng.chance(0.1) ? '?x=y' : '';
      return { label: `session ${transport}`, path: `/echo/${srv()}/${sid()}/${transport}${rng.chance(0.05) ? '/' : ''}${query}` };
    }],
    [4, () => {
      const transport = rng.pick(TRANSPORTS);
      const token = rng.pick(['ok', 'ok', 'other', 'no', '401', 'throw', 'reject', 'slow', 'hang', '']);
      const query = `?token=${token}${transport === 'htmlfile' || transport === 'jsonp' ? callbackQuery(rng).replace('?', '&') : ''}`;
      return { label: `guarded ${transport}`, path: `/${rng.pick(['guard', 'guardc'])}/${srv()}/${sid()}/${transport}${rng.chance(0.9) ? query : ''}` };
    }],
    [2, () => ({ label: 'session junk transport', path: `/echo/${srv()}/${sid()}/${rng.pick(['xhr_', 'XHR', 'websocket2', 'info', rng.word(6), ''])}` })],
    [2, () => ({ label: 'junk under prefix', path: `/echo/${Array.from({ length: rng.int(1, 5) }, () => (rng.chance(0.3) ? escape() : rng.word(rng.int(0, 6)))).join('/')}` })],
    [3, () => ({ label: 'outside prefix', path: rng.pick(['/', '/other', '/echoX', '/ECHO/info', '/echo%2finfo', '/__fuzz/x', '/e', `/${rng.word(8)}/websocket`, '/echo/../echo/info', '/%2e%2e/echo']) })],
    [1, () => ({ label: 'absolute-form', path: rng.pick(['http://127.0.0.1/echo/info', 'http://x/echo/0/0/xhr', '*', 'echo/info', '']) })],
    [1, () => ({ label: 'very long path', path: `/echo/${rng.chance(0.5) ? '0/' : ''}${'a'.repeat(rng.pick([1000, 8000, 20_000, 70_000]))}${rng.chance(0.5) ? '/xhr' : ''}` })],
    [2, () => ({ label: '%-escapes', path: `/echo/${escape()}/${escape()}${rng.chance(0.5) ? `/${rng.pick(TRANSPORTS)}` : ''}` })],
  ])();
}

const METHODS = ['GET', 'POST', 'OPTIONS', 'PUT', 'DELETE', 'HEAD', 'PATCH'];
const JUNK_METHODS = ['FOO', 'get', 'CONNECT', 'TRACE', 'PRI', 'M-SEARCH', 'X'.repeat(100), '', 'G\tET', 'PROPFIND'];

function contentType(rng) {
  return rng.pick([
    'application/json',
    'application/json; charset=UTF-8',
    'text/plain',
    'text/plain;charset=UTF-8',
    'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=ISO-8859-1',
    'multipart/form-data; boundary=x',
    'application/xml',
    '',
    ';;;',
    'TEXT/PLAIN ; CHARSET=utf-8',
    'x'.repeat(3000),
  ]);
}

/** Headers of no particular request, for HTTP fuzzing; returns [name, value] pairs, duplicates allowed. */
function randomHeaders(rng) {
  const headers = [];
  const add = (p, name, values) => {
    if (rng.chance(p)) headers.push([name, typeof values === 'function' ? values() : rng.pick(values)]);
  };
  add(0.9, 'Host', ['127.0.0.1', 'localhost:1', '', 'x'.repeat(200), '[::1]']);
  add(0.15, 'Upgrade', ['websocket', 'WebSocket', 'h2c', 'junk', '']);
  add(0.3, 'Connection', ['keep-alive', 'close', 'Upgrade', 'keep-alive, Upgrade', 'upgrade, close', 'TE', '']);
  add(0.3, 'Origin', ['http://example.com', 'null', 'file://', '*', 'x'.repeat(5000), 'http://a\u00ff']);
  add(0.3, 'Content-Type', () => contentType(rng));
  add(0.15, 'Cookie', () => rng.pick(['JSESSIONID=abc', 'JSESSIONID=', 'a=b; JSESSIONID=x; JSESSIONID=y', `JSESSIONID=${'z'.repeat(4000)}`, ';;=;', 'JSESSIONID="q"']));
  add(0.1, 'Access-Control-Request-Method', ['POST', 'GET', 'FOO', '']);
  add(0.1, 'Access-Control-Request-Headers', ['x-requested-with', 'a, b, c', '', 'x'.repeat(500)]);
  add(0.1, 'Sec-WebSocket-Key', ['dGhlIHNhbXBsZSBub25jZQ==', 'short', '', 'x'.repeat(24)]);
  add(0.1, 'Sec-WebSocket-Version', ['13', '8', '7', '0', 'x', '', '13, 8']);
  add(0.05, 'Sec-WebSocket-Protocol', ['chat', 'a,,b', ',', ' ', 'a b']);
  add(0.05, 'Sec-WebSocket-Extensions', ['permessage-deflate', 'permessage-deflate; client_max_window_bits', 'x;;;', '']);
  add(0.05, 'Sec-WebSocket-Key1', ['4 @1  46546xW%0l 1 5', '123', '']);
  add(0.05, 'Sec-WebSocket-Key2', ['12998 5 Y3 1  .P00', 'x', '']);
  add(0.1, 'X-Forwarded-For', ['1.2.3.4', 'x', '1.1.1.1, 2.2.2.2']);
  add(0.05, 'Accept-Encoding', ['gzip', 'deflate, br', '*']);
  add(0.05, 'Expect', ['100-continue', 'junk']);
  add(0.05, 'If-None-Match', ['"x"', '*']);
  add(0.05, 'Range', ['bytes=0-1', 'bytes=x']);
  if (rng.chance(0.05)) for (let i = rng.int(10, 300); i > 0; i--) headers.push([`X-${rng.word(5)}`, rng.word(10)]);
  if (rng.chance(0.03)) headers.push([rng.pick(['X Bad', 'X:Colon', '', 'Ü', 'X\u0000']), 'v']);
  if (rng.chance(0.03)) headers.push(['X-Fold', 'a\r\n folded']);
  return headers;
}

/** How a request's body is framed; `complete` is false when the server may rightly wait for more bytes. */
function frameBody(rng, body, mode) {
  switch (mode) {
    case 'cl':
      return { headers: [['Content-Length', String(body.length)]], body, complete: true };
    case 'none':
      return { headers: [], body, complete: true };
    case 'cl-short':
      return { headers: [['Content-Length', String(rng.int(0, Math.max(0, body.length - 1)))]], body, complete: true };
    case 'cl-long':
      return { headers: [['Content-Length', String(body.length + rng.int(1, 1000))]], body, complete: false };
    case 'cl-negative':
      return { headers: [['Content-Length', String(-rng.int(1, 100))]], body, complete: true };
    case 'cl-huge':
      return { headers: [['Content-Length', rng.pick(['99999999999999999999', '9007199254740993', '4294967296', '1e9', '0x10'])]], body, complete: false };
    case 'cl-duplicate-same':
      return { headers: [['Content-Length', String(body.length)], ['Content-Length', String(body.length)]], body, complete: true };
    case 'cl-duplicate-different':
      return { headers: [['Content-Length', String(body.length)], ['Content-Length', String(body.length + 1)]], body, complete: true };
    case 'cl-junk':
      return { headers: [['Content-Length', rng.pick(['abc', '', ' 5', '5 5', '+5', '5,5'])]], body, complete: true };
    case 'chunked':
    case 'chunked-broken':
    case 'chunked-and-cl': {
      const parts = [];
      let at = 0;
      while (at < body.length) {
        const n = rng.int(1, Math.max(1, Math.min(body.length - at, 4096)));
        parts.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'));
        at += n;
      }
      let complete = true;
      if (mode === 'chunked-broken') {
        const breakage = rng.pick(['bad-hex', 'no-crlf', 'too-long', 'huge-size', 'no-end', 'negative', 'extension']);
        if (breakage === 'bad-hex') parts.push(Buffer.from('zz\r\nabc\r\n'));
        if (breakage === 'no-crlf') parts.push(Buffer.from('3\r\nabcdef'));
        if (breakage === 'too-long') parts.push(Buffer.from('2\r\nabcdef\r\n'));
        if (breakage === 'huge-size') parts.push(Buffer.from('ffffffffffffffffff\r\nab\r\n'));
        if (breakage === 'negative') parts.push(Buffer.from('-1\r\nab\r\n'));
        if (breakage === 'extension') parts.push(Buffer.from(`1;${'e'.repeat(rng.pick([10, 20_000]))}\r\na\r\n`));
        if (breakage === 'no-end' || breakage === 'extension' || breakage === 'no-crlf' || breakage === 'huge-size') complete = false;
        else parts.push(Buffer.from('0\r\n\r\n'));
      } else {
        parts.push(Buffer.from('0\r\n\r\n'));
      }
      const headers = [['Transfer-Encoding', rng.pick(['chunked', 'Chunked', 'gzip, chunked'])]];
      if (mode === 'chunked-and-cl') headers.push(['Content-Length', String(body.length)]);
      return { headers, body: Buffer.concat(parts), complete };
    }
    default:
      throw new Error(`no body mode ${mode}`);
  }
}

/** An HTTP/1.x request as bytes. */
function requestBytes({ method, path: target, version = 'HTTP/1.1', headers, body = Buffer.alloc(0), eol = '\r\n' }) {
  const head = `${method} ${target} ${version}${eol}${headers.map(([k, v]) => `${k}: ${v}${eol}`).join('')}${eol}`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** A well-formed request: the framing the server can read to its end. */
function goodRequest(method, target, headers, body = Buffer.alloc(0)) {
  const all = [['Host', '127.0.0.1'], ...headers];
  if (body.length > 0 || method === 'POST') all.push(['Content-Length', String(body.length)]);
  return requestBytes({ method, path: target, headers: all, body });
}

function wsKey(rng) {
  return rng.bytes(16).toString('base64');
}

/** One RFC 6455 frame; `length` lies about the payload's length when asked. */
function wsFrame(rng, { fin = true, rsv = 0, opcode, payload: data = Buffer.alloc(0), masked = true, length = 'auto' }) {
  const n = data.length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode) & 0xff];
  let declared = n;
  if (length === 'more') declared = n + rng.int(1, 100);
  if (length === 'less') declared = Math.max(0, n - rng.int(1, 10));
  let extended = Buffer.alloc(0);
  const form = length === 'ext16' ? 126 : length === 'ext64' || length === 'huge64' || length === 'msb64' ? 127 : declared < 126 ? declared : declared < 65536 ? 126 : 127;
  head.push((masked ? 0x80 : 0) | form);
  if (form === 126) {
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(Math.min(declared, 65535));
  } else if (form === 127) {
    extended = Buffer.alloc(8);
    if (length === 'huge64') extended.writeBigUInt64BE(2n ** 53n + BigInt(rng.int(0, 1000)));
    else if (length === 'msb64') extended.writeBigUInt64BE(2n ** 63n + BigInt(declared));
    else extended.writeBigUInt64BE(BigInt(declared));
  }
  let body = data;
  let key = Buffer.alloc(0);
  if (masked) {
    key = rng.bytes(4);
    body = Buffer.from(data);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  }
  return Buffer.concat([Buffer.from(head), extended, key, body]);
}

function closePayload(rng) {
  const code = rng.pick([1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1015, 999, 0, 2999, 3000, 4999, 5000, 65535]);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  const reason = rng.weighted([
    [4, Buffer.alloc(0)],
    [2, Buffer.from('bye')],
    [1, Buffer.from([0xff, 0xfe])],
    [1, Buffer.from('x'.repeat(200))],
  ]);
  return rng.chance(0.1) ? Buffer.from([rng.int(0, 255)]) : Buffer.concat([b, reason]);
}

/** A websocket message in its SockJS framing (`raw` false) or as it is (`raw` true). */
function wsText(rng, raw) {
  if (raw) {
    return rng.weighted([
      [3, () => ({ kind: 'text', bytes: Buffer.from(rng.word(rng.int(0, 40))) })],
      [1, () => ({ kind: 'big-text', bytes: Buffer.from('y'.repeat(rng.pick([65_536, 65_537, 200_000]))) })],
      [2, () => payload(rng)],
    ])();
  }
  return payload(rng);
}

/** A sequence of frames after the handshake: good messages and every way to break the framing. */
function wsFrames(rng, raw) {
  const groups = [];
  const labels = [];
  for (let n = rng.int(1, 6); n > 0; n--) {
    const kind = rng.weighted([
      [12, 'message'],
      [4, 'fragmented'],
      [2, 'bad-continuation'],
      [2, 'binary'],
      [2, 'reserved-opcode'],
      [1, 'rsv-bits'],
      [2, 'unmasked'],
      [2, 'big-control'],
      [1, 'fragmented-control'],
      [2, 'ping-flood'],
      [2, 'pong'],
      [3, 'close'],
      [2, 'bad-utf8'],
      [2, 'wrong-length'],
      [1, 'junk'],
    ]);
    labels.push(kind);
    const message = () => wsText(rng, raw);
    switch (kind) {
      case 'message': {
        const m = message();
        labels[labels.length - 1] = `message ${m.kind}`;
        groups.push(wsFrame(rng, { opcode: 1, payload: m.bytes }));
        break;
      }
      case 'fragmented': {
        const m = message();
        labels[labels.length - 1] = `fragmented ${m.kind}`;
        const pieces = rng.int(2, 6);
        const size = Math.ceil(m.bytes.length / pieces) || 1;
        for (let i = 0, at = 0; i < pieces; i++, at += size) {
          groups.push(wsFrame(rng, { fin: i === pieces - 1, opcode: i === 0 ? 1 : 0, payload: m.bytes.subarray(at, at + size) }));
          if (rng.chance(0.2)) groups.push(wsFrame(rng, { opcode: 9, payload: Buffer.from('p') }));
        }
        break;
      }
      case 'bad-continuation':
        groups.push(
          rng.pick([
            () => wsFrame(rng, { opcode: 0, payload: Buffer.from('["x"]') }),
            () => Buffer.concat([wsFrame(rng, { fin: false, opcode: 1, payload: Buffer.from('["a') }), wsFrame(rng, { opcode: 1, payload: Buffer.from('"]') })]),
            () => Buffer.concat([wsFrame(rng, { fin: false, opcode: 1, payload: Buffer.from('["a') }), wsFrame(rng, { fin: false, opcode: 0, payload: Buffer.from('"') })]),
          ])(),
        );
        break;
      case 'binary':
        groups.push(wsFrame(rng, { opcode: 2, payload: rng.chance(0.5) ? Buffer.from('["x"]') : rng.bytes(rng.int(0, 200)) }));
        break;
      case 'reserved-opcode':
        groups.push(wsFrame(rng, { opcode: rng.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: rng.bytes(rng.int(0, 10)) }));
        break;
      case 'rsv-bits':
        groups.push(wsFrame(rng, { rsv: rng.int(1, 7), opcode: 1, payload: Buffer.from('["x"]') }));
        break;
      case 'unmasked':
        groups.push(wsFrame(rng, { opcode: 1, payload: Buffer.from('["x"]'), masked: false }));
        break;
      case 'big-control':
        groups.push(wsFrame(rng, { opcode: rng.pick([8, 9, 10]), payload: rng.bytes(rng.pick([126, 200, 70_000])) }));
        break;
      case 'fragmented-control':
        groups.push(wsFrame(rng, { fin: false, opcode: 9, payload: Buffer.from('p') }));
        break;
      case 'ping-flood': {
        const count = rng.pick([30, 70, 200, 1000]);
        const ping = () => wsFrame(rng, { opcode: 9, payload: rng.bytes(rng.int(0, 125)) });
        groups.push(Buffer.concat(Array.from({ length: count }, ping)));
        break;
      }
      case 'pong':
        groups.push(wsFrame(rng, { opcode: 10, payload: rng.bytes(rng.int(0, 20)) }));
        break;
      case 'close':
        groups.push(wsFrame(rng, { opcode: 8, payload: closePayload(rng) }));
        break;
      case 'bad-utf8':
        groups.push(wsFrame(rng, { opcode: 1, payload: Buffer.concat([Buffer.from('["'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"]')]) }));
        break;
      case 'wrong-length': {
        const how = rng.pick(['more', 'less', 'ext16', 'ext64', 'huge64', 'msb64']);
        labels[labels.length - 1] = `length ${how}`;
        groups.push(wsFrame(rng, { opcode: 1, payload: Buffer.from('["x"]'), length: how }));
        break;
      }
      default:
        groups.push(rng.bytes(rng.int(1, 64)));
    }
  }
  return { groups, labels };
}

/** The two hixie-76 keys for `number`, with `spaces` spaces and junk letters in them. */
function hixieKey(rng, { valid = true } = {}) {
  const spaces = valid ? rng.int(1, 12) : rng.pick([0, 1]);
  const quotient = rng.int(0, Math.floor(4294967295 / Math.max(spaces, 1)));
  let digits = String(valid ? quotient * spaces : rng.pick(['99999999999999999999', '4294967296', '7', quotient]));
  const chars = digits.split('');
  for (let i = 0; i < spaces; i++) chars.splice(rng.int(1, chars.length), 0, ' ');
  for (let i = rng.int(0, 8); i > 0; i--) chars.splice(rng.int(0, chars.length), 0, rng.pick(['x', '%', '@', 'W', '.']));
  digits = chars.join('');
  return digits.replace(/^ +| +$/g, 'k');
}

// ---------------------------------------------------------------------------------------------------
// Cases: a case is data (steps on numbered connections), so that it can be saved and replayed as is.
//   { op: 'connect', c }       open connection c
//   { op: 'write', c, data }   write bytes (a Buffer)
//   { op: 'sleep', ms }
//   { op: 'await', c, text, ms }   wait until c has received `text` (latin1), closed, or ms passed
//   { op: 'answer', c, ms }    c must receive a byte or be closed within ms: a hang otherwise
//   { op: 'end', c } / { op: 'reset', c }   a FIN / an RST
// `cut` ends connection c by `how` (reset or end) once `offset` bytes were sent or received on it.

function generateCase(seed, index) {
  const rng = caseRng(seed, index);
  const kind = rng.weighted([
    [20, 'http'],
    [5, 'pipelined'],
    [20, 'session'],
    [22, 'websocket'],
    [8, 'hixie76'],
    [12, 'upgrade'],
    [5, 'slow'],
    [3, 'junk'],
  ]);
  const kase = GENERATORS[kind](rng, index);
  kase.kind = kind;
  kase.seed = seed;
  kase.index = index;
  if (!kase.cut && rng.chance(0.35)) {
    const c = rng.pick([...new Set(kase.steps.filter((s) => s.op === 'connect').map((s) => s.c))]);
    const sent = kase.steps.filter((s) => s.op === 'write' && s.c === c).reduce((sum, s) => sum + s.data.length, 0);
    const side = rng.chance(0.5) ? 'send' : 'recv';
    kase.cut = { c, side, offset: side === 'send' ? rng.int(0, Math.max(0, sent - 1)) : rng.int(1, rng.pick([20, 200, 3000])), how: rng.chance(0.6) ? 'reset' : 'end' };
  }
  return kase;
}

const GENERATORS = {
  /** One request of any method, path, headers and body framing. */
  http(rng, index) {
    const target = randomPath(rng, index);
    const method = rng.chance(0.9) ? rng.pick(METHODS) : rng.pick(JUNK_METHODS);
    const version = rng.weighted([
      [20, 'HTTP/1.1'],
      [3, 'HTTP/1.0'],
      [1, rng.pick(['HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 x', 'HTTP/9.9', 'http/1.1', ''])],
    ]);
    const body = method === 'GET' && rng.chance(0.7) ? { kind: 'none', bytes: Buffer.alloc(0) } : rng.chance(0.2) ? { kind: 'form', bytes: Buffer.from(`d=${encodeURIComponent(payload(rng).bytes.toString('latin1'))}`) } : payload(rng);
    const mode = body.bytes.length === 0 && rng.chance(0.5) ? 'none' : rng.weighted([
      [12, 'cl'],
      [1, 'cl-short'],
      [1, 'cl-long'],
      [1, 'cl-negative'],
      [1, 'cl-huge'],
      [1, 'cl-duplicate-same'],
      [1, 'cl-duplicate-different'],
      [1, 'cl-junk'],
      [2, 'chunked'],
      [2, 'chunked-broken'],
      [1, 'chunked-and-cl'],
    ]);
    const framed = frameBody(rng, body.bytes, mode);
    const headers = [...randomHeaders(rng), ...framed.headers];
    const eol = rng.chance(0.05) ? '\n' : '\r\n';
    let data = requestBytes({ method, path: target.path, version, headers, body: framed.body, eol });
    const mutated = rng.chance(0.1);
    if (mutated) data = mutate(rng, data);
    const steps = [{ op: 'connect', c: 0 }, { op: 'write', c: 0, data }];
    // A request the server can read to its end gets an answer or a close; it may not just sit there.
    const complete = framed.complete && !mutated && version.startsWith('HTTP/1.');
    if (complete) steps.push({ op: 'answer', c: 0, ms: LIMITS.answerMs });
    steps.push({ op: 'await', c: 0, text: null, ms: rng.int(0, 500) });
    return { label: `${method.slice(0, 10)} ${target.label} body ${body.kind} ${mode}`, family: `${METHODS.includes(method) ? method : 'junk method'} ${target.label}`, steps };
  },

  /** Several requests on one keep-alive socket, written together or one after another. */
  pipelined(rng, index) {
    const requests = [];
    for (let n = rng.int(2, 8); n > 0; n--) {
      const target = randomPath(rng, index);
      const method = rng.pick(METHODS);
      const body = method === 'POST' || rng.chance(0.2) ? payload(rng).bytes : Buffer.alloc(0);
      const headers = [['Host', '127.0.0.1'], ['Connection', rng.chance(0.9) ? 'keep-alive' : 'close']];
      if (rng.chance(0.2)) headers.push(['Upgrade', 'websocket'], ['Sec-WebSocket-Key', wsKey(rng)], ['Sec-WebSocket-Version', '13']);
      requests.push(requestBytes({ method, path: target.path, headers: [...headers, ...frameBody(rng, body, rng.chance(0.9) ? 'cl' : 'chunked').headers], body: rng.chance(0.9) ? body : frameBody(rng, body, 'chunked').body }));
    }
    const steps = [{ op: 'connect', c: 0 }];
    if (rng.chance(0.5)) steps.push({ op: 'write', c: 0, data: Buffer.concat(requests) });
    else for (const r of requests) steps.push({ op: 'write', c: 0, data: r }, { op: 'sleep', ms: rng.int(0, 30) });
    steps.push({ op: 'answer', c: 0, ms: LIMITS.answerMs }, { op: 'await', c: 0, text: null, ms: rng.int(100, 800) });
    return { label: `${requests.length} pipelined`, family: 'pipelined', steps };
  },

  /** A session on an HTTP transport: a receiver, sends with fuzzed bodies, more polls, a second receiver. */
  session(rng, index) {
    const mode = rng.int(0, MODES - 1);
    const sid = `m${mode}c${index}r${rng.word(4)}`;
    const base = `/echo/${rng.pick(['000', 'a', rng.word(3)])}/${sid}`;
    const receiver = rng.pick(['xhr', 'xhr_streaming', 'eventsource', 'htmlfile', 'jsonp']);
    const receiverRequest = () => {
      const cookie = rng.chance(0.3) ? [['Cookie', rng.pick(['JSESSIONID=abc', 'JSESSIONID=', 'x=y'])]] : [];
      if (receiver === 'xhr' || receiver === 'xhr_streaming') return goodRequest('POST', `${base}/${receiver}`, cookie);
      return goodRequest('GET', `${base}/${receiver}${receiver === 'eventsource' ? '' : callbackQuery(rng)}`, cookie);
    };
    const steps = [{ op: 'connect', c: 0 }, { op: 'write', c: 0, data: receiverRequest() }, { op: 'answer', c: 0, ms: LIMITS.answerMs }, { op: 'await', c: 0, text: 'o', ms: 1000 }];
    const labels = [receiver];
    let next = 1;
    for (let n = rng.int(1, 5); n > 0; n--) {
      const c = rng.chance(0.7) || next === 1 ? next++ : next - 1;
      if (c === next - 1 && !steps.some((s) => s.op === 'connect' && s.c === c)) steps.push({ op: 'connect', c });
      const p = payload(rng);
      labels.push(p.kind);
      const jsonp = rng.chance(0.3);
      const body = jsonp && rng.chance(0.6) ? Buffer.from(`d=${encodeURIComponent(p.bytes.toString('latin1'))}`) : p.bytes;
      const headers = [['Content-Type', jsonp ? 'application/x-www-form-urlencoded' : rng.pick(['text/plain', 'application/json', 'application/xml'])]];
      steps.push({ op: 'write', c, data: goodRequest('POST', `${base}/${jsonp ? 'jsonp_send' : 'xhr_send'}`, headers, body) });
      // A send is answered once the application has taken its messages: mode 3 takes one each 20 ms.
      if (mode !== 3) steps.push({ op: 'answer', c, ms: LIMITS.answerMs });
      if (rng.chance(0.3)) steps.push({ op: 'sleep', ms: rng.int(0, 50) });
    }
    if (rng.chance(0.3)) {
      // A second receiver while the first may still be attached: 2010 on it.
      const c = next++;
      steps.push({ op: 'connect', c }, { op: 'write', c, data: receiverRequest() }, { op: 'answer', c, ms: LIMITS.answerMs });
      labels.push('second receiver');
    }
    if (receiver === 'xhr' || receiver === 'jsonp') {
      for (let n = rng.int(0, 3); n > 0; n--) steps.push({ op: 'await', c: 0, text: null, ms: 100 }, { op: 'write', c: 0, data: receiverRequest() });
    }
    steps.push({ op: 'await', c: 0, text: null, ms: rng.int(0, 700) });
    return { label: `session ${labels.join(' ')}`, family: `session ${receiver}`, steps };
  },

  /** An RFC 6455 handshake on a raw socket, then frames of every sort. */
  websocket(rng, index) {
    const raw = rng.chance(0.25);
    const target = raw ? `/echo/websocket?m${rng.int(0, MODES - 1)}c${index}` : `/echo/${rng.pick(['000', 'a'])}/${sessionId(rng, index)}/websocket`;
    const headers = [['Host', '127.0.0.1'], ['Upgrade', rng.chance(0.9) ? 'websocket' : 'WebSocket'], ['Connection', rng.chance(0.9) ? 'Upgrade' : 'keep-alive, Upgrade'], ['Sec-WebSocket-Key', wsKey(rng)], ['Sec-WebSocket-Version', '13']];
    if (rng.chance(0.3)) headers.push(['Origin', rng.pick(['http://example.com', 'null'])]);
    if (rng.chance(0.1)) headers.push(['Sec-WebSocket-Protocol', rng.pick(['chat', 'a, b', 'a,,b'])]);
    if (rng.chance(0.1)) headers.push(['Sec-WebSocket-Extensions', rng.pick(['permessage-deflate', 'x-webkit-deflate-frame', 'permessage-deflate; server_max_window_bits=8'])]);
    if (rng.chance(0.05)) headers.push(['Sec-WebSocket-Origin', 'http://x']);
    const { groups, labels } = wsFrames(rng, raw);
    const steps = [{ op: 'connect', c: 0 }];
    const head = requestBytes({ method: 'GET', path: target, headers });
    if (rng.chance(0.2)) {
      // Frames in the same write as the handshake: they arrive as the upgrade's `head`.
      steps.push({ op: 'write', c: 0, data: Buffer.concat([head, groups[0]]) });
      groups.shift();
    } else {
      steps.push({ op: 'write', c: 0, data: head }, { op: 'answer', c: 0, ms: LIMITS.answerMs }, { op: 'await', c: 0, text: '\r\n\r\n', ms: 1000 });
    }
    for (const group of groups) {
      if (rng.chance(0.2) && group.length > 2) {
        const at = rng.int(1, group.length - 1);
        steps.push({ op: 'write', c: 0, data: group.subarray(0, at) }, { op: 'sleep', ms: rng.int(0, 20) }, { op: 'write', c: 0, data: group.subarray(at) });
      } else {
        steps.push({ op: 'write', c: 0, data: group });
      }
      if (rng.chance(0.3)) steps.push({ op: 'sleep', ms: rng.int(0, 60) });
    }
    steps.push({ op: 'await', c: 0, text: null, ms: rng.int(0, rng.chance(0.1) ? 1500 : 400) });
    return { label: `${raw ? 'raw ' : ''}websocket ${labels.join(', ')}`, family: `${raw ? 'raw ' : ''}websocket`, steps };
  },

  /** The hixie-76 handshake (headers first, key3 later, as HAProxy does), then 0x00 … 0xFF frames. */
  hixie76(rng, index) {
    const target = rng.chance(0.85) ? `/echo/000/${sessionId(rng, index)}/websocket` : `/echo/websocket?m0c${index}`;
    const validKeys = rng.chance(0.8);
    const headers = [['Host', '127.0.0.1'], ['Upgrade', 'WebSocket'], ['Connection', 'Upgrade'], ['Origin', rng.pick(['http://example.com', 'null', 'x'.repeat(3000)])]];
    if (rng.chance(0.97)) headers.push(['Sec-WebSocket-Key1', hixieKey(rng, { valid: validKeys })]);
    if (rng.chance(0.97)) headers.push(['Sec-WebSocket-Key2', hixieKey(rng, { valid: validKeys || rng.chance(0.5) })]);
    const key3 = rng.chance(0.9) ? rng.bytes(8) : rng.bytes(rng.int(0, 20));
    const frames = [];
    const labels = [validKeys ? 'valid keys' : 'bad keys'];
    for (let n = rng.int(0, 5); n > 0; n--) {
      const kind = rng.weighted([
        [8, 'message'],
        [2, 'close'],
        [2, 'binary'],
        [1, 'no-end'],
        [1, 'huge'],
        [2, 'bad-utf8'],
        [1, 'junk'],
      ]);
      const p = payload(rng);
      labels.push(kind === 'message' ? `message ${p.kind}` : kind);
      if (kind === 'message') frames.push(Buffer.concat([Buffer.from([0]), p.bytes.filter((b) => b !== 0xff), Buffer.from([0xff])]));
      if (kind === 'close') frames.push(Buffer.from([0xff, 0x00]));
      if (kind === 'binary') frames.push(Buffer.concat([Buffer.from([0x80, rng.int(0, 255), rng.int(0, 127)]), rng.bytes(rng.int(0, 100))]));
      if (kind === 'no-end') frames.push(Buffer.concat([Buffer.from([0]), Buffer.from('["x"]')]));
      if (kind === 'huge') frames.push(Buffer.concat([Buffer.from([0]), Buffer.alloc(rng.pick([70_000, 300_000]), 0x61)]));
      if (kind === 'bad-utf8') frames.push(Buffer.from([0, 0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d, 0xff]));
      if (kind === 'junk') frames.push(rng.bytes(rng.int(1, 64)));
    }
    const head = requestBytes({ method: 'GET', path: target, headers });
    const steps = [{ op: 'connect', c: 0 }];
    if (rng.chance(0.6)) {
      steps.push({ op: 'write', c: 0, data: head }, { op: 'answer', c: 0, ms: LIMITS.answerMs }, { op: 'await', c: 0, text: '\r\n\r\n', ms: 1000 }, { op: 'write', c: 0, data: key3 });
    } else {
      steps.push({ op: 'write', c: 0, data: Buffer.concat([head, key3]) });
    }
    for (const frame of frames) steps.push({ op: 'write', c: 0, data: frame }, { op: 'sleep', ms: rng.int(0, 30) });
    steps.push({ op: 'await', c: 0, text: null, ms: rng.int(0, 500) });
    return { label: `hixie76 ${labels.join(', ')}`, family: 'hixie76', steps };
  },

  /** A well-formed upgrade to any path, often reset once the answer starts. */
  upgrade(rng, index) {
    const target = rng.chance(0.5) ? randomPath(rng, index) : { label: `session ${rng.pick(TRANSPORTS)}`, path: `/echo/000/${sessionId(rng, index)}/${rng.pick(TRANSPORTS)}` };
    const method = rng.chance(0.8) ? 'GET' : rng.pick(METHODS);
    const headers = [['Host', '127.0.0.1'], ['Upgrade', rng.pick(['websocket', 'WebSocket', 'h2c', 'foo'])], ['Connection', rng.pick(['Upgrade', 'upgrade', 'keep-alive, Upgrade', 'close, Upgrade'])]];
    if (rng.chance(0.8)) headers.push(['Sec-WebSocket-Key', rng.chance(0.9) ? wsKey(rng) : 'bad']);
    if (rng.chance(0.8)) headers.push(['Sec-WebSocket-Version', rng.pick(['13', '13', '8', '12', 'x'])]);
    if (rng.chance(0.2)) headers.push(['Sec-WebSocket-Key1', '4 @1  46546xW%0l 1 5'], ['Sec-WebSocket-Key2', '12998 5 Y3 1  .P00']);
    if (rng.chance(0.2)) headers.push(['Origin', 'http://example.com']);
    const body = method === 'POST' ? payload(rng).bytes : Buffer.alloc(0);
    if (body.length) headers.push(['Content-Length', String(body.length)]);
    const steps = [{ op: 'connect', c: 0 }, { op: 'write', c: 0, data: requestBytes({ method, path: target.path, headers, body }) }, { op: 'answer', c: 0, ms: LIMITS.answerMs }, { op: 'await', c: 0, text: null, ms: rng.int(0, 300) }];
    const kase = { label: `upgrade ${method} ${target.label}`, family: `upgrade ${target.label.startsWith('session') ? 'session url' : target.label}`, steps };
    if (rng.chance(0.5)) kase.cut = { c: 0, side: 'recv', offset: rng.int(1, 150), how: rng.chance(0.8) ? 'reset' : 'end' };
    return kase;
  },

  /** A request or a websocket handshake dribbled out a few bytes at a time. */
  slow(rng, index) {
    const target = rng.chance(0.5) ? `/echo/000/m${rng.int(0, MODES - 1)}c${index}r${rng.word(3)}/xhr_send` : randomPath(rng, index).path;
    const body = payload(rng).bytes.subarray(0, 3000);
    const data = rng.chance(0.3)
      ? requestBytes({ method: 'GET', path: target, headers: [['Host', '127.0.0.1'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', wsKey(rng)], ['Sec-WebSocket-Version', '13']] })
      : goodRequest('POST', target, [['Content-Type', 'text/plain']], body);
    const steps = [{ op: 'connect', c: 0 }];
    const pieces = rng.int(5, 40);
    const size = Math.ceil(data.length / pieces);
    for (let at = 0; at < data.length; at += size) steps.push({ op: 'write', c: 0, data: data.subarray(at, at + size) }, { op: 'sleep', ms: rng.int(1, 40) });
    steps.push({ op: 'answer', c: 0, ms: LIMITS.answerMs }, { op: 'await', c: 0, text: null, ms: rng.int(0, 300) });
    return { label: `slow ${data.length} bytes in ${pieces}`, family: 'slow', steps };
  },

  /** Bytes that are no request at all. */
  junk(rng) {
    const data = rng.chance(0.5) ? rng.bytes(rng.int(1, 2000)) : Buffer.from(rng.pick(['\r\n\r\n', 'GET\r\n\r\n', 'GET / HTTP/1.1\r\n' + 'X: y\r\n'.repeat(5000) + '\r\n', '\u0000'.repeat(100), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03']));
    return { label: 'junk bytes', family: 'junk', steps: [{ op: 'connect', c: 0 }, { op: 'write', c: 0, data }, { op: 'await', c: 0, text: null, ms: rng.int(0, 300) }] };
  },
};

// ---------------------------------------------------------------------------------------------------
// Running a case against the server

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The fuzzer's own event loop: when it is blocked, its clients' waits mean nothing about the server.
const selfLag = { max: 0, last: Date.now() };
setInterval(() => {
  const now = Date.now();
  selfLag.max = Math.max(selfLag.max, now - selfLag.last - 20);
  selfLag.last = now;
}, 20).unref();

/** Runs a case's steps on raw sockets; returns the client ports it used and the problems it saw. */
async function runCase(port, kase, child = null) {
  const conns = new Map();
  const result = { ports: [], problems: [] };
  const deadline = Date.now() + LIMITS.caseMs;
  const cut = kase.cut;

  function open(c) {
    const socket = net.connect({ host: '127.0.0.1', port });
    const conn = { c, socket, sent: 0, received: 0, text: '', closed: false, cut: false, ended: false, waiters: new Set(), firstLine: '' };
    const wake = () => {
      for (const w of conn.waiters) w();
    };
    socket.setNoDelay(true);
    socket.on('connect', () => {
      result.ports.push(socket.localPort);
      wake();
    });
    socket.on('data', (chunk) => {
      conn.received += chunk.length;
      if (conn.text.length < 65536) conn.text += chunk.toString('latin1');
      if (cut && cut.c === c && cut.side === 'recv' && !conn.cut && conn.received >= cut.offset) doCut(conn);
      wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      conn.closed = true;
      wake();
    });
    conns.set(c, conn);
    return conn;
  }

  function doCut(conn) {
    conn.cut = true;
    if (cut.how === 'reset') {
      if (!conn.socket.destroyed) conn.socket.resetAndDestroy();
    } else {
      conn.ended = true;
      conn.endedAt = Date.now();
      conn.socket.end();
    }
  }

  /** Waits until `condition` holds, for `ms` at most and, unless `past`, no later than the case's deadline. */
  function waitFor(conn, condition, ms, past = false) {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value) => {
        clearTimeout(timer);
        conn.waiters.delete(check);
        resolve(value);
      };
      const check = () => {
        if (condition()) done(true);
      };
      const timer = setTimeout(() => done(false), Math.max(0, past ? ms : Math.min(ms, deadline - Date.now())));
      conn.waiters.add(check);
    });
  }

  async function write(conn, data) {
    if (conn.cut || conn.closed || conn.socket.destroyed) return;
    let chunk = data;
    let cutAfter = false;
    if (cut && cut.c === conn.c && cut.side === 'send' && conn.sent + data.length > cut.offset) {
      chunk = data.subarray(0, cut.offset - conn.sent);
      cutAfter = true;
    }
    if (!conn.firstLine) conn.firstLine = data.subarray(0, 120).toString('latin1').split('\r\n')[0];
    conn.sent += chunk.length;
    let drained = true;
    if (chunk.length > 0) drained = conn.socket.write(chunk);
    if (cutAfter) {
      // A reset right after a write may reach the server before the bytes do; let them go first.
      if (chunk.length > 0) await new Promise((resolve) => setImmediate(resolve));
      doCut(conn);
      return;
    }
    if (!drained) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.min(LIMITS.drainMs, Math.max(0, deadline - Date.now())));
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        conn.socket.once('drain', done);
        conn.socket.once('close', done);
      });
    }
  }

  /**
   * Whether the server has yet to read bytes this client sent, or has paused the socket (a slow
   * application holds its client back): then it cannot have seen the end of the request or the FIN
   * behind them, and waiting is backpressure, not a hang. Counted, not reported.
   */
  async function unread(conn) {
    if (!child || !conn.socket.localPort) return false;
    const info = await child.socket(conn.socket.localPort);
    if (info && (info.bytesRead < conn.sent || info.paused)) {
      result.unread = (result.unread ?? 0) + 1;
      return true;
    }
    return false;
  }

  try {
    for (const step of kase.steps) {
      if (Date.now() > deadline) break;
      const conn = step.c === undefined ? null : conns.get(step.c);
      switch (step.op) {
        case 'connect': {
          const opened = open(step.c);
          await waitFor(opened, () => opened.socket.readyState === 'open' || opened.closed, 1000);
          break;
        }
        case 'write':
          if (conn) await write(conn, step.data);
          break;
        case 'sleep':
          await sleep(Math.min(step.ms, Math.max(0, deadline - Date.now())));
          break;
        case 'await':
          if (conn) await waitFor(conn, () => conn.closed || conn.cut || (step.text !== null && conn.text.includes(step.text)), step.ms);
          break;
        case 'answer':
          if (conn && !conn.cut) {
            const answered = await waitFor(conn, () => conn.received > 0 || conn.closed || conn.cut, step.ms);
            if (!answered && Date.now() < deadline && !(await unread(conn))) {
              result.problems.push({ finding: 'hang', what: `no answer and no close ${step.ms} ms after a complete request`, request: conn.firstLine, at: Date.now() });
            }
          }
          break;
        case 'end':
          if (conn && !conn.cut && !conn.closed) {
            conn.cut = true;
            conn.ended = true;
            conn.endedAt = Date.now();
            conn.socket.end();
          }
          break;
        case 'reset':
          if (conn && !conn.closed) conn.socket.resetAndDestroy();
          break;
        default:
          throw new Error(`no step ${step.op}`);
      }
    }
    // The client is done: a FIN on every socket still open; the server must close each one.
    await Promise.all(
      [...conns.values()].map(async (conn) => {
        if (conn.closed) return;
        if (!conn.ended) {
          conn.ended = true;
          conn.endedAt = Date.now();
          conn.socket.end();
        }
        const left = LIMITS.finMs - (Date.now() - conn.endedAt);
        const closed = await waitFor(conn, () => conn.closed, Math.max(0, left), true);
        if (!closed && !conn.closed && !(await unread(conn))) {
          result.problems.push({ finding: 'hang', what: `socket still open ${LIMITS.finMs} ms after the client's FIN`, request: conn.firstLine, at: Date.now() });
        }
      }),
    );
  } finally {
    for (const conn of conns.values()) if (!conn.socket.destroyed) conn.socket.destroy();
    await Promise.all([...conns.values()].map((conn) => waitFor(conn, () => conn.closed, 1000, true)));
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// The child process: the server under test

class Child {
  constructor() {
    this.proc = null;
    this.port = 0;
    this.alive = false;
    this.fatal = null;
    this.exit = null;
    this.stderr = [];
    this.pending = new Map();
    this.nextId = 0;
  }

  async start() {
    const env = TARGET ? { ...process.env, FUZZ_TARGET: TARGET } : process.env;
    this.proc = fork(SERVER_SCRIPT, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
    const proc = this.proc;
    let buffered = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      buffered += chunk;
      let at;
      while ((at = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        if (line.startsWith('FUZZ-FATAL ')) {
          try {
            this.fatal = JSON.parse(line.slice('FUZZ-FATAL '.length));
          } catch {
            this.fatal = { kind: 'unparsed', stack: line };
          }
        } else if (line.trim() && this.stderr.length < 100) {
          this.stderr.push(line);
        }
      }
    });
    proc.stdout.resume();
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code, signal) => {
        this.alive = false;
        this.exit = { code, signal };
        this.diedAt = Date.now();
        for (const [, p] of this.pending) p(null);
        this.pending.clear();
        resolve();
      }),
    );
    proc.on('error', () => undefined);
    proc.on('message', (message) => {
      if ((message.type === 'stats' || message.type === 'socket') && this.pending.has(message.id)) {
        this.pending.get(message.id)(message.body);
        this.pending.delete(message.id);
      }
    });
    const ready = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), LIMITS.spawnMs);
      proc.on('message', (message) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(message);
        }
      });
      proc.on('exit', () => resolve(null));
    });
    if (!ready) throw new Error(`the fuzz server did not start: ${this.stderr.join('\n')}`);
    this.port = ready.port;
    this.options = ready.options;
    this.alive = true;
  }

  /** The child's figures, or null when it does not answer in time. */
  stats({ gc = false } = {}) {
    return this.ask({ type: 'stats', gc });
  }

  /** How far the server has read the socket of the client at `port`, or null. */
  socket(port) {
    return this.ask({ type: 'socket', port });
  }

  ask(message) {
    if (!this.alive) return Promise.resolve(null);
    const id = ++this.nextId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, LIMITS.statsMs);
      this.pending.set(id, (body) => {
        clearTimeout(timer);
        resolve(body);
      });
      try {
        this.proc.send({ ...message, id });
      } catch {
        resolve(null);
      }
    });
  }

  async stop() {
    if (!this.proc || this.exit) return;
    this.proc.kill('SIGKILL');
    await Promise.race([this.exited, sleep(2000)]);
  }
}

// ---------------------------------------------------------------------------------------------------
// The oracle

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function httpText(port, method, target, body = '') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, agent: false, headers: { 'Content-Length': Buffer.byteLength(body) } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.end(body);
  }).catch((error) => Promise.reject(error));
}

let probes = 0;
/** The greeting, then a full echo over a websocket and over xhr, each within LIMITS.probeMs. */
async function probe(port) {
  const n = ++probes;
  const requests = [];
  const track = (p) => {
    requests.push(p);
    return p;
  };
  try {
    const greeting = await withTimeout(track(httpText(port, 'GET', '/echo')), LIMITS.probeMs, 'GET /echo');
    if (greeting.text !== 'Welcome to SockJS!\n') throw new Error(`GET /echo answered ${greeting.status} ${JSON.stringify(greeting.text.slice(0, 80))}`);
    await withTimeout(wsEcho(port, `/echo/000/probe${n}/websocket`), LIMITS.probeMs, 'websocket echo');
    const base = `/echo/000/probe-xhr${n}`;
    const opened = await withTimeout(track(httpText(port, 'POST', `${base}/xhr`)), LIMITS.probeMs, 'xhr open');
    if (opened.text !== 'o\n') throw new Error(`xhr open answered ${JSON.stringify(opened.text)}`);
    const sent = await withTimeout(track(httpText(port, 'POST', `${base}/xhr_send`, '["probe"]')), LIMITS.probeMs, 'xhr_send');
    if (sent.status !== 204) throw new Error(`xhr_send answered ${sent.status}`);
    const echoed = await withTimeout(track(httpText(port, 'POST', `${base}/xhr`)), LIMITS.probeMs, 'xhr poll');
    if (echoed.text !== 'a["probe"]\n') throw new Error(`xhr poll answered ${JSON.stringify(echoed.text)}`);
    return null;
  } catch (error) {
    return error.message;
  } finally {
    await Promise.race([Promise.allSettled(requests), sleep(500)]);
  }
}

function wsEcho(port, target) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const key = crypto.randomBytes(16).toString('base64');
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let stage = 'open';
    const fail = (error) => {
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.on('close', () => (stage === 'done' ? resolve() : reject(new Error(`websocket closed at ${stage}`))));
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!buffer.subarray(0, 12).toString().includes('101')) return fail(new Error(`handshake answered ${buffer.subarray(0, 40).toString()}`));
        upgraded = true;
        buffer = buffer.subarray(end + 4);
      }
      // Server frames are unmasked and small here.
      while (buffer.length >= 2) {
        const len = buffer[1] & 0x7f;
        if (len > 125 || buffer.length < 2 + len) break;
        const opcode = buffer[0] & 0x0f;
        const text = buffer.subarray(2, 2 + len).toString();
        buffer = buffer.subarray(2 + len);
        if (opcode === 9) continue;
        if (stage === 'open' && text === 'o') {
          stage = 'echo';
          socket.write(wsFrame(caseRng(0, 0), { opcode: 1, payload: Buffer.from('["probe"]') }));
        } else if (stage === 'echo' && text === 'a["probe"]') {
          stage = 'done';
          socket.write(wsFrame(caseRng(0, 0), { opcode: 8, payload: Buffer.from([0x03, 0xe8]) }));
          socket.end();
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Findings and their seed files

const findings = new Map(); // signature -> finding
const knownSignatures = new Map(); // signature -> file, from earlier runs

function loadKnown() {
  if (!fs.existsSync(SAVE_DIR)) return;
  for (const name of fs.readdirSync(SAVE_DIR)) {
    if (!name.endsWith('.json')) continue;
    try {
      const saved = JSON.parse(fs.readFileSync(path.join(SAVE_DIR, name), 'utf8'));
      knownSignatures.set(saved.signature, { file: name, size: saved.bytes ?? Infinity, reproduced: Boolean(saved.reproduced) });
    } catch {
      // A file that is not ours is not a seed.
    }
  }
}

function normalise(text) {
  return String(text).replace(/\d+/g, 'N').replace(/0x[0-9a-f]+/gi, 'N').slice(0, 160);
}

/** The first line of an error and the first frame in this package (else Node's), as one signature. */
function crashSignature(fatal) {
  const lines = String(fatal.stack).split('\n');
  const frame = lines.find((l) => l.includes('/dist/')) || lines.find((l) => /^\s+at /.test(l)) || '';
  const where = frame.replace(/^\s+at /, '').replace(/\(?\/[^ ]*\/(dist|node_modules)\//, '$1/').replace(/:\d+:\d+\)?$/, '');
  return `crash: ${fatal.kind}: ${normalise(lines[0])} @ ${where}`;
}

const caseBytes = (kase) => kase.steps.reduce((sum, s) => sum + (s.data ? s.data.length : 0), 0);

function encodeSteps(kase) {
  const json = JSON.stringify({ steps: kase.steps.map((s) => (s.data ? { ...s, data: s.data.toString('base64') } : s)), cut: kase.cut ?? null });
  return zlib.gzipSync(json).toString('base64');
}

function decodeSteps(text) {
  const { steps, cut } = JSON.parse(zlib.gunzipSync(Buffer.from(text, 'base64')).toString());
  return { steps: steps.map((s) => (s.data !== undefined ? { ...s, data: Buffer.from(s.data, 'base64') } : s)), cut: cut ?? undefined };
}

/** A short, readable account of a case's bytes: the first line of each write. */
function describe(kase) {
  const writes = kase.steps.filter((s) => s.op === 'write');
  const shown = writes.slice(0, 4).map((s) => {
    const text = s.data.subarray(0, 200).toString('latin1');
    return `c${s.c}: ${JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text)} (${s.data.length} bytes)`;
  });
  if (writes.length > 4) shown.push(`… ${writes.length - 4} more writes`);
  if (kase.cut) shown.push(`then ${kase.cut.how} of c${kase.cut.c} after ${kase.cut.offset} bytes ${kase.cut.side === 'send' ? 'sent' : 'received'}`);
  return shown;
}

/**
 * Records a finding; the first (and any smaller) instance of each signature is saved as a seed file.
 * `cases` are the cases that reproduce it (or may, when `together`).
 */
function record(signature, { finding, symptom, stack = null, cases, together = false, reproduced = true }) {
  let entry = findings.get(signature);
  if (!entry) {
    entry = { signature, finding, symptom, stack, count: 0, cases: [], together, reproduced, file: null, size: Infinity };
    findings.set(signature, entry);
  }
  entry.count++;
  const size = cases.reduce((sum, k) => sum + caseBytes(k), 0);
  // Keep the smallest instance seen, one case alone before a batch: the closest to a minimal input.
  if (entry.cases.length === 0 || better({ reproduced, size }, entry)) {
    Object.assign(entry, { cases, together, reproduced, size, symptom, stack: stack ?? entry.stack });
    save(entry);
  }
  return entry;
}

function better(a, b) {
  return a.reproduced === b.reproduced ? a.size < b.size : a.reproduced;
}

function reproduceCommand(entry) {
  const kase = entry.cases[0];
  if (!kase) return null;
  const only = entry.cases.map((k) => k.index).join(',');
  return `node scripts/fuzz.js --seed ${kase.seed} --only ${only}${entry.together ? ' --together' : ''}`;
}

function save(entry) {
  if (!saving || entry.cases.length === 0) return;
  const known = knownSignatures.get(entry.signature);
  if (known && !better(entry, known)) {
    entry.file = known.file;
    return;
  }
  fs.mkdirSync(SAVE_DIR, { recursive: true });
  const first = entry.cases[0];
  const slug = `${entry.finding}-${normalise(entry.signature).replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`.replace(/-+$/, '').toLowerCase();
  const name = known ? known.file : `${slug}-${first.seed}-${first.index}.json`;
  const body = {
    finding: entry.finding,
    signature: entry.signature,
    symptom: entry.symptom,
    stack: entry.stack,
    generator: GENERATOR,
    together: entry.together,
    reproduced: entry.reproduced,
    reproduce: reproduceCommand(entry),
    bytes: entry.size,
    cases: entry.cases.map((k) => ({ seed: k.seed, index: k.index, kind: k.kind, family: k.family, label: k.label, input: describe(k), steps: entry.size < 4_000_000 ? encodeSteps(k) : null })),
  };
  fs.writeFileSync(path.join(SAVE_DIR, name), `${JSON.stringify(body, null, 2)}\n`);
  knownSignatures.set(entry.signature, { file: name, size: entry.size, reproduced: entry.reproduced });
  entry.file = name;
}

// ---------------------------------------------------------------------------------------------------
// Batches

const totals = { cases: 0, byKind: {}, crashes: 0, hangs: 0, leakedSockets: 0, leakedSessions: 0, probeFailures: 0, heapFailures: 0, maxHeap: 0, baseHeap: 0, heapBound: 0, respawns: 0, logged: 0, unread: 0, stalls: 0, maxLoopDelay: 0 };

function log(line) {
  process.stdout.write(`${line}\n`);
}

/** Runs cases with CONCURRENCY workers; stops taking new ones once the child has died. */
async function runCases(child, cases) {
  const results = new Map();
  let next = 0;
  async function worker() {
    while (next < cases.length && child.alive) {
      const kase = cases[next++];
      totals.cases++;
      totals.byKind[kase.kind] = (totals.byKind[kase.kind] ?? 0) + 1;
      const result = await runCase(child.port, kase, child).catch((error) => ({ ports: [], problems: [{ finding: 'fuzzer', what: error.stack }] }));
      results.set(kase, result);
      totals.unread += result.unread ?? 0;
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, cases.length) }, worker));
  return { results, started: next };
}

/** Waits until the child holds no socket and no session, within LIMITS.settleMs; returns its last figures. */
async function settle(child) {
  const until = Date.now() + LIMITS.settleMs + child.options.disconnect_delay;
  let stats = null;
  while (Date.now() < until) {
    stats = await child.stats();
    if (!stats || (stats.sockets === 0 && stats.sessions === 0)) return stats;
    await sleep(50);
  }
  return stats;
}

/** Which case each open socket or connection of the child belongs to. */
function attribute(stats, portToCase, byIndex) {
  const found = new Set();
  for (const s of stats.openSockets) if (portToCase.has(s.port)) found.add(portToCase.get(s.port));
  for (const c of stats.openConnections) {
    const m = /c(\d+)r/.exec(c.url) || /c(\d+)$/.exec(c.url);
    if (m && byIndex.has(Number(m[1]))) found.add(byIndex.get(Number(m[1])));
  }
  return [...found];
}

/**
 * Runs the cases of one batch and checks the server afterwards: alive, answering, back to no socket and no
 * session, heap bounded. Returns { ok, started, restart }; findings are recorded on the way.
 */
async function batch(child, cases, { triage = true } = {}) {
  const { results, started } = await runCases(child, cases);
  const ran = cases.slice(0, started);
  const portToCase = new Map();
  for (const [kase, r] of results) for (const p of r.ports) portToCase.set(p, kase);
  const byIndex = new Map(ran.map((k) => [k.index, k]));
  let ok = true;

  if (!child.alive || child.fatal) {
    await Promise.race([child.exited, sleep(2000)]);
    totals.crashes++;
    const fatal = child.fatal ?? { kind: 'exit', stack: `exited ${JSON.stringify(child.exit)} with stderr:\n${child.stderr.join('\n')}` };
    const signature = crashSignature(fatal);
    log(`CRASH ${signature}`);
    if (VERBOSE) log(fatal.stack);
    // The cases whose sockets the server saw last are the suspects, latest first.
    const suspects = [];
    for (const r of [...(fatal.recent ?? [])].reverse()) {
      const kase = portToCase.get(r.port);
      if (kase && !suspects.includes(kase)) suspects.push(kase);
    }
    for (const kase of ran) if (!suspects.includes(kase)) suspects.push(kase);
    // A crash first seen now is worth replays to find the one case that causes it.
    const fresh = !findings.has(signature) && !knownSignatures.has(signature);
    const crashes = async (c) => {
      await sleep(100);
      if (!c.fatal && c.alive) return false;
      await Promise.race([c.exited, sleep(1000)]);
      return Boolean(c.fatal) && crashSignature(c.fatal) === signature;
    };
    const culprit = triage && fresh ? await findCulprit(suspects.slice(0, 12), crashes) : null;
    const symptom = fatal.stack.split('\n')[0];
    record(signature, { finding: 'crash', symptom, stack: fatal.stack, cases: culprit ? [culprit] : suspects.slice(0, 8), together: !culprit, reproduced: Boolean(culprit) });
    recordHangs(results, false, child.diedAt ?? 0);
    return { ok: false, started, restart: true };
  }

  // A stall first, since it also delays every other client of the batch.
  const before = await child.stats();
  const stalls = before ? before.errors.slice(child.errorsSeen ?? 0).filter((e) => e.kind === 'stall') : [];
  const stalled = stalls.length > 0;
  if (before) totals.maxLoopDelay = Math.max(totals.maxLoopDelay, before.loopDelayMax);
  for (const stall of stalls) {
    ok = false;
    totals.stalls++;
    const suspects = [];
    for (const p of [...stall.ports].reverse()) {
      const kase = portToCase.get(p);
      if (kase && !suspects.includes(kase)) suspects.push(kase);
    }
    const signature = `stall: event loop blocked over 500 ms (${suspects[0] ? suspects[0].family : 'unattributed'})`;
    log(`STALL ${stall.text}; suspects ${suspects.slice(0, 5).map((k) => k.index).join(', ')}`);
    const fresh = !findings.has(signature) && !knownSignatures.has(signature);
    const stallsAgain = async (c) => {
      const s = await c.stats();
      return Boolean(s) && s.errors.some((e) => e.kind === 'stall');
    };
    const culprit = triage && fresh ? await findCulprit(suspects.slice(0, 8), stallsAgain) : null;
    const finalSignature = culprit ? `stall: event loop blocked over 500 ms (${culprit.family})` : signature;
    record(finalSignature, { finding: 'stall', symptom: stall.text, cases: culprit ? [culprit] : suspects.slice(0, 8), together: !culprit, reproduced: Boolean(culprit) });
  }

  // Per-case findings: hangs.
  if (VERBOSE || selfLag.max > 500) log(`    fuzzer's own longest event-loop delay in this batch: ${selfLag.max} ms`);
  selfLag.max = 0;
  if (recordHangs(results, stalled, Infinity)) ok = false;

  const probeError = await probe(child.port);
  if (probeError) {
    ok = false;
    totals.probeFailures++;
    const signature = `probe: ${normalise(probeError)}`;
    log(`PROBE FAILED ${probeError}`);
    record(signature, { finding: 'probe', symptom: probeError, cases: ran.slice(0, 50), together: true, reproduced: false });
    if (!child.alive) return batch.crashAfterProbe(child, ran, started);
    return { ok, started, restart: true };
  }

  const stats = await settle(child);
  if (!stats) {
    ok = false;
    record('stats: the child did not answer', { finding: 'probe', symptom: 'no stats', cases: ran.slice(0, 50), together: true, reproduced: false });
    return { ok, started, restart: true };
  }
  let restart = false;
  if (stats.sockets > 0 || stats.sessions > 0) {
    ok = false;
    restart = true;
    totals.leakedSockets += Math.max(0, stats.sockets);
    totals.leakedSessions += stats.sessions;
    const blamed = attribute(stats, portToCase, byIndex);
    const what = `${stats.sockets} sockets, ${stats.sessions} sessions left ${LIMITS.settleMs + child.options.disconnect_delay} ms after every client had gone`;
    log(`LEAK ${what}; cases ${blamed.map((k) => `${k.index} (${k.label})`).join('; ') || 'unknown'}`);
    for (const kase of blamed.length ? blamed.slice(0, 5) : [null]) {
      const signature = `leak: ${kase ? kase.family : 'unattributed'}`;
      record(signature, { finding: 'leak', symptom: `${what}; open sockets ${JSON.stringify(stats.openSockets.slice(0, 5))}; open connections ${JSON.stringify(stats.openConnections.slice(0, 5))}`, cases: kase ? [kase] : ran.slice(0, 50), together: !kase, reproduced: Boolean(kase) });
    }
  }

  const heap = await child.stats({ gc: true });
  if (heap) {
    totals.maxHeap = Math.max(totals.maxHeap, heap.heapUsed);
    if (heap.heapUsed > totals.heapBound) {
      ok = false;
      restart = true;
      totals.heapFailures++;
      const what = `heap ${(heap.heapUsed / 2 ** 20).toFixed(1)} MB after gc, over the bound ${(totals.heapBound / 2 ** 20).toFixed(1)} MB`;
      log(`HEAP ${what}`);
      record('heap: over the bound after a forced gc', { finding: 'heap', symptom: what, cases: ran.slice(0, 50), together: true, reproduced: false });
    }
    for (const error of heap.errors.slice(child.errorsSeen ?? 0).filter((e) => e.kind !== 'stall')) {
      ok = false;
      totals.logged++;
      const signature = `${error.kind}: ${normalise(error.text.split('\n')[0])}`;
      if (!findings.has(signature)) log(`LOGGED ${signature}`);
      record(signature, { finding: 'logged', symptom: error.text, cases: ran.slice(0, 20), together: ran.length > 1, reproduced: ran.length === 1 });
    }
    child.errorsSeen = heap.errors.length;
  }
  for (const line of child.stderr.splice(0)) {
    ok = false;
    const signature = `stderr: ${normalise(line)}`;
    if (!findings.has(signature)) log(`STDERR ${line}`);
    record(signature, { finding: 'stderr', symptom: line, cases: ran.slice(0, 20), together: true, reproduced: false });
  }
  return { ok, started, restart };
}

/** Records the hangs the cases saw before `until` (after a crash, every wait is meaningless). */
function recordHangs(results, stalled, until) {
  let any = false;
  for (const [kase, r] of results) {
    for (const problem of r.problems) {
      if (problem.at !== undefined && problem.at > until - 200) continue;
      any = true;
      if (stalled) continue; // a blocked event loop stalls every client; the stall is the finding
      if (problem.finding === 'hang') totals.hangs++;
      const signature = `${problem.finding}: ${problem.what} (${kase.family})`;
      if (!findings.has(signature)) log(`${problem.finding.toUpperCase()} ${signature}\n    ${problem.request}`);
      record(signature, { finding: problem.finding, symptom: `${problem.what}; request ${JSON.stringify(problem.request)}`, cases: [kase] });
    }
  }
  return any;
}

batch.crashAfterProbe = async (child, ran, started) => {
  await Promise.race([child.exited, sleep(2000)]);
  totals.crashes++;
  const fatal = child.fatal ?? { kind: 'exit', stack: `exited ${JSON.stringify(child.exit)}` };
  record(crashSignature(fatal), { finding: 'crash', symptom: fatal.stack.split('\n')[0], stack: fatal.stack, cases: ran.slice(0, 8), together: true, reproduced: false });
  return { ok: false, started, restart: true };
};

/** Replays suspects one at a time, each on a fresh server, until `reproduces(child)` says one did it. */
async function findCulprit(suspects, reproduces) {
  const until = Math.min(Date.now() + LIMITS.triageMs, runDeadline + 10_000);
  for (let attempt = 0; attempt < 3; attempt++) {
    for (const kase of suspects) {
      if (Date.now() > until) return null;
      const child = new Child();
      await child.start();
      try {
        await child.stats();
        await runCase(child.port, kase, child);
        if (await reproduces(child)) {
          log(`    reproduced alone by case ${kase.index} (${kase.label})`);
          return kase;
        }
      } finally {
        await child.stop();
      }
    }
  }
  log('    not reproduced by any case alone; saved the batch');
  return null;
}

async function newChild(attempt = 1) {
  const child = new Child();
  await child.start();
  const failed = await probe(child.port);
  if (failed) {
    record(`probe: a fresh server fails its probe: ${normalise(failed)}`, { finding: 'probe', symptom: failed, cases: [], reproduced: false });
    await child.stop();
    if (attempt >= 3) throw new Error(`a fresh fuzz server fails its probe: ${failed}`);
    return newChild(attempt + 1);
  }
  await settle(child);
  const stats = await child.stats({ gc: true });
  // Each server gets its own bound, from its own heap once loaded and probed.
  totals.baseHeap = stats.heapUsed;
  totals.heapBound = stats.heapUsed + HEAP_SLACK_MB * 2 ** 20;
  child.errorsSeen = stats.errors.length;
  return child;
}

// ---------------------------------------------------------------------------------------------------
// Main

const started = Date.now();
let runDeadline = started + SECONDS * 1000;

function report(mode) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MB`;
  log('');
  log(`fuzz report (${mode})`);
  log(`  seed            ${SEED}`);
  log(`  cases           ${totals.cases} in ${seconds} s (${Object.entries(totals.byKind).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  log(`  crashes         ${totals.crashes}`);
  log(`  hangs           ${totals.hangs}`);
  log(`  leaked sockets  ${totals.leakedSockets}`);
  log(`  leaked sessions ${totals.leakedSessions}`);
  log(`  probe failures  ${totals.probeFailures}`);
  log(`  logged errors   ${totals.logged}`);
  log(`  stalls          ${totals.stalls} (longest event-loop delay ${totals.maxLoopDelay} ms)`);
  log(`  max heap        ${mb(totals.maxHeap)} after gc (bound ${mb(totals.heapBound)}: baseline + ${HEAP_SLACK_MB} MB)`);
  log(`  server restarts ${totals.respawns}`);
  log(`  unread waits    ${totals.unread} (the server had paused the socket or not read all its client sent: backpressure)`);
  log(`  findings        ${findings.size}`);
  for (const entry of findings.values()) {
    log(`  - [${entry.finding}] ${entry.signature} (x${entry.count})`);
    log(`      symptom: ${String(entry.symptom).split('\n')[0].slice(0, 300)}`);
    for (const kase of entry.cases.slice(0, entry.together ? 3 : 1)) for (const line of describe(kase)) log(`      input: ${line}`);
    if (entry.together && entry.cases.length > 3) log(`      … and ${entry.cases.length - 3} more cases run together`);
    const command = reproduceCommand(entry);
    if (command) log(`      reproduce: ${command}${entry.reproduced ? '' : ' (not reproduced alone)'}`);
    if (entry.file) log(`      saved: ${path.relative(ROOT, path.join(SAVE_DIR, entry.file))}`);
  }
  log(findings.size === 0 ? 'fuzz: passed' : `fuzz: FAILED with ${findings.size} findings`);
}

async function fuzz(cases) {
  let child = await newChild();
  log(`fuzz: seed ${SEED}, up to ${SECONDS} s or ${cases ? cases.length : CASES} cases, concurrency ${CONCURRENCY}, server on port ${child.port}`);
  let next = 0;
  let batches = 0;
  const total = Array.isArray(cases) ? cases.length : CASES;
  const together = flag('together');
  while (next < total && Date.now() < runDeadline) {
    const size = Array.isArray(cases) && !together ? 1 : Math.min(BATCH, total - next);
    const list = [];
    for (let i = next; i < next + size; i++) list.push(Array.isArray(cases) ? cases[i] : generateCase(SEED, i));
    const { started: ran, restart } = await batch(child, list);
    next += Math.max(ran, 1);
    batches++;
    if (restart || !child.alive) {
      await child.stop();
      totals.respawns++;
      child = await newChild();
    }
    if (batches % 10 === 0 || VERBOSE) {
      log(`[fuzz] ${totals.cases} cases, ${((Date.now() - started) / 1000).toFixed(0)} s, crashes ${totals.crashes}, hangs ${totals.hangs}, leaks ${totals.leakedSockets}/${totals.leakedSessions}, heap ${(totals.maxHeap / 2 ** 20).toFixed(1)} MB, findings ${findings.size}`);
    }
  }
  await child.stop();
}

/** The cases a saved seed file names: its stored steps when they are there, else regenerated. */
function casesOf(file) {
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  const cases = saved.cases.map((c) => {
    const kase = c.steps ? { ...decodeSteps(c.steps) } : generateCase(c.seed, c.index);
    return Object.assign(kase, { seed: c.seed, index: c.index, kind: c.kind, family: c.family, label: c.label });
  });
  return { saved, cases };
}

async function main() {
  loadKnown();
  if (REPLAY) {
    // Replays never write seed files of their own: they are the regression tests of the saved ones.
    const files = fs.statSync(REPLAY).isDirectory() ? fs.readdirSync(REPLAY).filter((n) => n.endsWith('.json')).map((n) => path.join(REPLAY, n)) : [REPLAY];
    runDeadline = Infinity;
    saving = false;
    for (const file of files.sort()) {
      const { saved, cases } = casesOf(file);
      log(`replay ${path.relative(ROOT, file)}: ${saved.signature} (${cases.length} case${cases.length === 1 ? '' : 's'}${saved.together ? ', together' : ''})`);
      let child = await newChild();
      const groups = saved.together ? [cases] : cases.map((k) => [k]);
      for (const group of groups) {
        const { restart } = await batch(child, group, { triage: false });
        if (restart || !child.alive) {
          await child.stop();
          child = await newChild();
        }
      }
      await child.stop();
    }
    report('replay');
  } else if (ONLY !== null) {
    const indices = ONLY.split(',').map(Number);
    await fuzz(indices.map((i) => generateCase(SEED, i)));
    report(`seed ${SEED}, cases ${ONLY}`);
  } else {
    await fuzz(null);
    report(`seed ${SEED}`);
  }
  process.exit(findings.size === 0 ? 0 : 1);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(2);
  });
}

module.exports = { generateCase, caseRng, runCase };
