'use strict';
/**
 * The nginx configuration of the scaling example: one server block in front of sockjs-rx
 * workers, with session affinity by URL (or none: round robin, the workers relaying sessions
 * between them over Redis), websocket upgrades passed through and streaming responses passed on
 * unbuffered.
 *
 *   node examples/nginx/config.js                   # prints nginx.conf
 *   node examples/nginx/config.js --affinity none   # prints nginx-none.conf
 *
 * The .conf files beside this one are its output for 3 workers on 127.0.0.1:8181-8183 behind
 * 127.0.0.1:8080; the launcher (`start.js --proxy nginx`) writes its own for the ports it uses,
 * with its own directory for nginx's pid and temporary files.
 */

/** sockjs-rx's default heartbeat_delay: the longest a healthy session's request stays silent. */
const HEARTBEAT_DELAY_S = 25;

/**
 * @param {object} options
 * @param {string} [options.host] where nginx listens; default 127.0.0.1
 * @param {number} options.port where nginx listens
 * @param {ReadonlyArray<{ id: string, host?: string, port: number }>} options.workers
 * @param {'url' | 'none'} [options.affinity] default 'url'
 * @param {string} [options.dir] where nginx keeps its pid and temporary files; default: nginx's own
 * @param {number} [options.heartbeatDelay] the workers' heartbeat_delay in seconds; default 25
 * @returns {string}
 */
function nginxConfig(options) {
  const host = options.host ?? '127.0.0.1';
  const affinity = options.affinity ?? 'url';
  if (affinity !== 'url' && affinity !== 'none') throw new Error(`affinity must be "url" or "none", not ${JSON.stringify(affinity)}`);
  if (options.workers.length === 0) throw new Error('at least one worker is needed');
  const affinityLines =
    affinity === 'url'
      ? [
          '    # Affinity by URL: every request of a SockJS session carries /<server_id>/<session_id>/',
          '    # just before the transport name (<prefix>/<server_id>/<session_id>/xhr, .../xhr_send,',
          '    # .../websocket ...), whatever the prefix. Those two path fields are the hash key, so',
          '    # all of them go to one worker, for every transport, with no cookie. Other URLs (/info,',
          '    # the iframe page) need no affinity: they hash as a whole.',
          '    map $uri $sockjs_session {',
          '        "~/(?<session>[^/]+/[^/]+)/[^/]+$" $session;',
          '        default $uri;',
          '    }',
          '',
        ]
      : [];
  const balanceLines =
    affinity === 'url'
      ? ['        # Consistent hashing: when a worker goes down only its sessions move.', '        hash $sockjs_session consistent;']
      : ['        # No affinity: round robin. The workers relay every session to the one that opened it,', '        # over Redis (`relay: true`).'];
  // Idle timeouts must outlast the silence between heartbeats, or nginx cuts healthy polls,
  // streams and websockets; a margin covers a loaded worker that sends its heartbeat late.
  const idle = Math.max(60, 2 * (options.heartbeatDelay ?? HEARTBEAT_DELAY_S));
  const dir = options.dir;
  // nginx's own files (pid, request bodies and responses too large for memory) go to `dir`.
  const pidLines = dir ? [`pid ${dir}/nginx.pid;`] : [];
  const tempLines = dir
    ? ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${dir}/${kind};`)
    : [];

  return [
    `# nginx in front of ${options.workers.length} sockjs-rx workers, ${affinity === 'url' ? 'affinity by URL' : 'no affinity (sessions relayed over Redis)'}.`,
    '# Written by examples/nginx/config.js; see "Deployment" in README.md.',
    'worker_processes 1;',
    'error_log stderr warn;',
    ...pidLines,
    '',
    'events {',
    '    worker_connections 4096;',
    '}',
    '',
    'http {',
    ...tempLines,
    '    access_log off;',
    '',
    ...affinityLines,
    '    # A websocket upgrade is passed on as one; any other request keeps its connection to',
    '    # the worker alive (keepalive below).',
    '    map $http_upgrade $connection_upgrade {',
    '        default upgrade;',
    "        '' '';",
    '    }',
    '',
    '    upstream workers {',
    ...balanceLines,
    ...options.workers.map((w) => `        server ${w.host ?? '127.0.0.1'}:${w.port} max_fails=1 fail_timeout=2s; # ${w.id}`),
    '        keepalive 64;',
    '    }',
    '',
    '    server {',
    `        listen ${host}:${options.port};`,
    '',
    '        location / {',
    '            proxy_pass http://workers;',
    '            proxy_http_version 1.1;',
    '            proxy_set_header Upgrade $http_upgrade;',
    '            proxy_set_header Connection $connection_upgrade;',
    '            proxy_set_header Host $host;',
    '            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '            proxy_set_header X-Forwarded-Proto $scheme;',
    '            # Streaming responses (xhr-streaming, eventsource, htmlfile) pass each chunk on as',
    '            # it comes; buffered, a message would wait for the buffer to fill.',
    '            proxy_buffering off;',
    '            # A send (xhr_send, jsonp_send) goes on to the worker as it arrives, never into a',
    "            # temporary file, and only the worker's max_message_size (1 MiB by default) bounds it.",
    '            proxy_request_buffering off;',
    '            client_max_body_size 0;',
    '            # A poll or a stream may stay silent for heartbeat_delay',
    `            # (${options.heartbeatDelay ?? HEARTBEAT_DELAY_S} s) before the worker sends "h", and so may a websocket.`,
    `            proxy_read_timeout ${idle}s;`,
    `            proxy_send_timeout ${idle}s;`,
    '        }',
    '    }',
    '}',
    '',
  ].join('\n');
}

/** The configuration the checked-in nginx.conf (or nginx-none.conf) holds. */
function exampleConfig(affinity = 'url') {
  return nginxConfig({ port: 8080, affinity, workers: [1, 2, 3].map((n) => ({ id: `w${n}`, port: 8180 + n })) });
}

module.exports = { nginxConfig, exampleConfig, HEARTBEAT_DELAY_S };

if (require.main === module) {
  const at = process.argv.indexOf('--affinity');
  process.stdout.write(exampleConfig(at === -1 ? 'url' : process.argv[at + 1]));
}
