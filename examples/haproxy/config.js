'use strict';
/**
 * The HAProxy configuration of the scaling example: one frontend, one backend of sockjs-rx
 * workers, with session affinity by URL (the default), by the JSESSIONID cookie, or none at all
 * (round robin; the workers relay sessions between them over Redis).
 *
 *   node examples/haproxy/config.js                    # prints haproxy.cfg
 *   node examples/haproxy/config.js --affinity cookie  # prints haproxy-cookie.cfg
 *   node examples/haproxy/config.js --affinity none    # prints haproxy-none.cfg
 *
 * The three .cfg files beside this one are its output for 3 workers on 127.0.0.1:8181-8183 behind
 * 127.0.0.1:8080; the launcher (start.js) writes its own for the ports it uses.
 */

/** sockjs-rx's default heartbeat_delay: the longest a healthy session's request stays silent. */
const HEARTBEAT_DELAY_S = 25;

const AFFINITIES = ['url', 'cookie', 'none'];
const AFFINITY_NAMES = { url: 'affinity by URL', cookie: 'affinity by JSESSIONID cookie', none: 'no affinity (sessions relayed over Redis)' };

/**
 * @param {object} options
 * @param {string} [options.host] where HAProxy listens; default 127.0.0.1
 * @param {number} options.port where HAProxy listens
 * @param {ReadonlyArray<{ id: string, host?: string, port: number }>} options.workers
 * @param {'url' | 'cookie' | 'none'} [options.affinity] default 'url'
 * @param {number} [options.heartbeatDelay] the workers' heartbeat_delay in seconds; default 25
 * @returns {string}
 */
function haproxyConfig(options) {
  const host = options.host ?? '127.0.0.1';
  const affinity = options.affinity ?? 'url';
  if (!AFFINITIES.includes(affinity)) throw new Error(`affinity must be ${AFFINITIES.map((a) => JSON.stringify(a)).join(', ')}, not ${JSON.stringify(affinity)}`);
  if (options.workers.length === 0) throw new Error('at least one worker is needed');
  // Idle timeouts must outlast the silence between heartbeats, or HAProxy cuts healthy polls,
  // streams and websockets; a margin covers a loaded worker that sends its heartbeat late.
  const idle = Math.max(60, 2 * (options.heartbeatDelay ?? HEARTBEAT_DELAY_S));

  const affinityLines = {
    url: [
      '    # Affinity by URL: every request of a SockJS session carries /<server_id>/<session_id>/',
      '    # just before the transport name (<prefix>/<server_id>/<session_id>/xhr, .../xhr_send,',
      '    # .../websocket ...), whatever the prefix. Hashing those two path fields sends all of',
      '    # them to one worker, for every transport, with no cookie. Other URLs (/info, the',
      '    # iframe page) need no affinity: they hash on their first path fields.',
      '    balance hash path,field(-2,/,2)',
      '    # Consistent hashing: when a worker goes down only its sessions move.',
      '    hash-type consistent',
    ],
    cookie: [
      '    # Affinity by cookie: the workers set JSESSIONID (the `jsessionid: true` option) and',
      '    # HAProxy prefixes its value with the worker\'s name ("w1~dummy"); requests that carry',
      '    # it go back to that worker, with the prefix taken off. Clients must keep cookies:',
      '    # browsers do, sockjs-client in Node does not.',
      '    balance roundrobin',
      '    cookie JSESSIONID prefix nocache',
    ],
    none: [
      '    # No affinity: each request goes to the next worker. The workers relay every session',
      '    # to the one that opened it, over Redis (`relay: true`).',
      '    balance roundrobin',
    ],
  }[affinity];

  const serverLines = options.workers.map(
    (w) => `    server ${w.id} ${w.host ?? '127.0.0.1'}:${w.port}${affinity === 'cookie' ? ` cookie ${w.id}` : ''}`,
  );

  return [
    `# HAProxy in front of ${options.workers.length} sockjs-rx workers, ${AFFINITY_NAMES[affinity]}.`,
    '# Written by examples/haproxy/config.js; see "Deployment" in README.md.',
    'global',
    '    # Each connection takes two file descriptors (client and worker side): keep the ulimit',
    '    # of open files above twice this.',
    '    maxconn 4096',
    '',
    'defaults',
    '    mode http',
    '    option forwardfor',
    '    timeout connect 5s',
    `    # A poll or a stream may stay silent for heartbeat_delay (${options.heartbeatDelay ?? HEARTBEAT_DELAY_S} s) before the worker`,
    '    # sends "h": both idle timeouts must be longer.',
    `    timeout client ${idle}s`,
    `    timeout server ${idle}s`,
    '    # After a websocket upgrade only this one applies (heartbeats flow there too).',
    '    timeout tunnel 1h',
    '    timeout http-request 10s',
    '    timeout http-keep-alive 10s',
    '    # Pass each chunk of a streaming response (xhr-streaming, eventsource, htmlfile) on as',
    '    # it comes: without this HAProxy holds small chunks back, by about 200 ms each.',
    '    option http-no-delay',
    '    # A request that cannot reach its worker goes to another one; a session that lived on',
    '    # the dead worker is then unknown there, and its client sees the session close.',
    '    retries 2',
    '    option redispatch',
    '',
    'frontend sockjs',
    `    bind ${host}:${options.port}`,
    '    default_backend workers',
    '',
    'backend workers',
    ...affinityLines,
    '    # A worker that stops answering is taken out within about two seconds.',
    '    option httpchk GET /health',
    '    default-server check inter 1s fall 2 rise 2',
    ...serverLines,
    '',
  ].join('\n');
}

/** The configuration the checked-in .cfg files hold. */
function exampleConfig(affinity) {
  return haproxyConfig({
    port: 8080,
    affinity,
    workers: [1, 2, 3].map((n) => ({ id: `w${n}`, port: 8180 + n })),
  });
}

module.exports = { haproxyConfig, exampleConfig, HEARTBEAT_DELAY_S, AFFINITIES };

if (require.main === module) {
  const at = process.argv.indexOf('--affinity');
  process.stdout.write(exampleConfig(at === -1 ? 'url' : process.argv[at + 1]));
}
