'use strict';
/**
 * Scaling example behind nginx: the launcher of examples/haproxy with nginx in front, which
 * sends each session to one worker by its URL (see config.js beside this file).
 *
 *   npm run build
 *   node examples/nginx/start.js --start-redis      # http://127.0.0.1:8080/
 *
 * Takes the options of examples/haproxy/start.js. Needs `nginx` (and `redis-server` for
 * --start-redis) on the PATH: on Debian, `apt-get install nginx redis-server`.
 */
require('../haproxy/start').main(process.argv.slice(2), { proxy: 'nginx' });
