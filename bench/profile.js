'use strict';
/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and ranks functions by self time, optionally
 * only over the samples of a time window (microseconds on the monotonic clock, the profile's own).
 */
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');

/** Where a function lives: our dist/, a package, Node's internals, or V8's pseudo-frames. */
function place(url, ours) {
  if (!url) return 'v8';
  const file = url.replace(/^file:\/\//, '');
  const pkg = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (pkg) return pkg[1];
  if (file.startsWith(path.join(ROOT, 'dist')) || (ours && file.startsWith(ours))) return 'sockjs-rx';
  if (file.startsWith(ROOT)) return 'bench';
  if (file.startsWith('node:')) return 'node';
  return 'other';
}

function shortUrl(url, ours) {
  const file = url.replace(/^file:\/\//, '');
  const pkg = file.match(/node_modules\/(.*)$/);
  if (pkg) return pkg[1];
  if (ours && file.startsWith(ours)) return path.join('dist', path.relative(ours, file));
  if (file.startsWith(ROOT)) return path.relative(ROOT, file);
  return file;
}

/**
 * @param {string} file a .cpuprofile
 * @param {{ from?: number, to?: number }} window µs; samples outside it are left out
 * @param {string} [ours] where the profiled copy of dist/ was, to name its files dist/…
 */
function analyse(file, window = {}, ours = null) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const places = new Map();
  let t = profile.startTime;
  let total = 0;
  let idle = 0;
  let inWindow = 0;
  const hasWindow = window.from !== undefined && window.to !== undefined;
  // Clocks that do not line up (another time base) would leave nothing: then take every sample.
  const overlaps = hasWindow && window.from < profile.endTime && window.to > profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] || 0;
    t += dt;
    const next = profile.timeDeltas[i + 1] ?? dt;
    if (overlaps && (t < window.from || t > window.to)) continue;
    inWindow++;
    const node = byId.get(profile.samples[i]);
    const frame = node.callFrame;
    const name = frame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += next;
      continue;
    }
    total += next;
    const key = frame.url ? `${name} ${shortUrl(frame.url, ours)}:${frame.lineNumber + 1}` : name;
    self.set(key, (self.get(key) || 0) + next);
    const where = frame.url ? place(frame.url, ours) : name.startsWith('(') ? name : 'v8';
    places.set(where, (places.get(where) || 0) + next);
  }
  const rank = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, percent: total ? (100 * us) / total : 0 }));
  return { file, busyMs: total / 1000, idleMs: idle / 1000, samples: inWindow, windowed: overlaps, functions: rank(self), places: rank(places) };
}

function format(analysis, top = 20) {
  const lines = [];
  lines.push(
    `  ${analysis.samples} samples${analysis.windowed ? ' in the measured window' : ''}: ${analysis.busyMs.toFixed(0)} ms busy, ${analysis.idleMs.toFixed(0)} ms idle (percentages of busy time)`,
  );
  lines.push('  by package:');
  for (const p of analysis.places.slice(0, 10)) lines.push(`    ${p.percent.toFixed(1).padStart(5)}%  ${p.name}`);
  lines.push(`  top ${top} functions by self time:`);
  for (const f of analysis.functions.slice(0, top)) lines.push(`    ${f.percent.toFixed(1).padStart(5)}%  ${f.ms.toFixed(1).padStart(8)} ms  ${f.name}`);
  return lines.join('\n');
}

module.exports = { analyse, format };

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/profile.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(format(analyse(file), Number(process.argv[3]) || 25));
}
