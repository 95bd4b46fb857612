'use strict';
/**
 * Summaries of the rounds (median, min, max; ratios per round pair) and the three result files:
 * JSON, a Markdown table and an SVG bar chart of the ratios, written by hand.
 */
const fs = require('fs');
const path = require('path');

const METRICS = ['rate', 'p50', 'p99', 'cpuPerOp', 'ownerCpuPerOp', 'heapPerSession', 'rssPerSession'];

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function spread(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/**
 * @param {Record<string, Array<object|null>>} rounds per kind, one measurement (or null) per round
 * @returns the summary per kind and metric, and the ratios ours/<kind> per metric, each taken
 *   within a round and then summarised over the rounds
 */
function summarise(rounds) {
  const kinds = {};
  for (const [kind, runs] of Object.entries(rounds)) {
    kinds[kind] = {};
    for (const metric of METRICS) {
      const s = spread(runs.map((run) => run && run[metric]));
      if (s) kinds[kind][metric] = s;
    }
  }
  const ratios = {};
  for (const kind of Object.keys(rounds)) {
    if (kind !== 'ours') ratios[kind] = roundRatios(rounds.ours, rounds[kind]);
  }
  // The floor server over sockjs: how far below sockjs a server can get on the same wire work
  // before it does any SockJS work at all.
  const floorRatios = rounds.ws && rounds.sockjs ? roundRatios(rounds.ws, rounds.sockjs) : {};
  return { kinds, ratios, floorRatios };
}

const FLOOD_METRICS = ['rate', 'p50', 'p99', 'cpuPerOp', 'cpuShare', 'loopDelayP99', 'floodSendRate', 'floodDeliveredRate', 'floodDroppedRate'];

/**
 * The flood scenario per server: its rounds alone (`<kind>`) and flooded (`<kind>+flood`), each
 * metric summarised, and the p99 flooded ÷ alone taken within each round, then summarised.
 */
function summariseFlood(rounds, kinds) {
  const of = (runs) =>
    Object.fromEntries(
      FLOOD_METRICS.map((metric) => [metric, spread(runs.map((run) => run && run[metric]))]).filter(([, v]) => v),
    );
  const out = { kinds: {} };
  for (const kind of kinds) {
    const quiet = rounds[kind] ?? [];
    const flooded = rounds[`${kind}+flood`] ?? [];
    const perRound = quiet.map((q, i) => {
      const f = flooded[i];
      return q && f && q.p99 > 0 && typeof f.p99 === 'number' ? f.p99 / q.p99 : null;
    });
    const ratio = spread(perRound);
    out.kinds[kind] = { quiet: of(quiet), flooded: of(flooded), p99Ratio: ratio ? { ...ratio, perRound } : null };
  }
  return out;
}

/**
 * The flood targets, for ours: the p99 ratio (median of rounds) at most `targets.p99Ratio`, and
 * the flooder's messages handed to the application per second, in the worst round, at most the
 * limit plus its burst spread over the window: R × (1 + burst / window).
 */
function evaluateFloodTargets(targets, results) {
  const rows = [];
  for (const s of results.scenarios.filter((x) => x.measure === 'flood')) {
    const f = s.flood?.kinds?.ours;
    const p99Ratio = f?.p99Ratio?.median ?? null;
    rows.push({
      target: 'well-behaved p99 with the flooder ÷ without (ours, median of rounds)',
      scenario: s.id,
      max: targets.p99Ratio,
      limit: `≤ ${targets.p99Ratio}`,
      measured: p99Ratio,
      status: p99Ratio === null ? 'not measured' : p99Ratio <= targets.p99Ratio ? 'met' : 'missed',
    });
    const limit = s.serverOptions?.rate_limit;
    if (limit?.messages) {
      const windowS = s.timing.windowMs / 1000;
      const burst = limit.burst ?? 1;
      const max = limit.messages * (1 + burst / windowS);
      const delivered = f?.flooded?.floodDeliveredRate?.max ?? null;
      rows.push({
        target: "flooder's messages handed to the application per second (ours, worst round)",
        scenario: s.id,
        max,
        limit: `≤ ${num(max)}/s (R = ${limit.messages}/s, plus a ${burst} s burst over the ${windowS} s window)`,
        measured: delivered,
        status: delivered === null ? 'not measured' : delivered <= max ? 'met' : 'missed',
      });
    }
  }
  return rows;
}

/** `top ÷ bottom` per metric, taken within each round, then summarised over the rounds. */
function roundRatios(top, bottom) {
  const out = {};
  for (const metric of METRICS) {
    const perRound = top.map((a, i) => {
      const b = bottom[i];
      if (!a || !b || typeof a[metric] !== 'number' || typeof b[metric] !== 'number' || b[metric] <= 0) return null;
      return a[metric] / b[metric];
    });
    const s = spread(perRound);
    if (s) out[metric] = { ...s, perRound };
  }
  return out;
}

function evaluateTargets(targets, results) {
  const rows = [];
  for (const target of targets) {
    for (const id of target.scenarios) {
      const result = results.scenarios.find((s) => s.id === id);
      const against = target.against ?? 'sockjs';
      const ratio = result?.ratios?.[against]?.[target.metric]?.median ?? null;
      // Only CPU has a floor: a bare ws socket is no floor for a session's memory, and the floor
      // server sends no heartbeats at all. A target against the floor has it as its ratio.
      const floor =
        against === 'sockjs' && target.metric === 'cpuPerOp' && !result?.heartbeat ? (result?.floorRatios?.[target.metric]?.median ?? null) : null;
      rows.push({
        target: target.name,
        scenario: id,
        title: result?.title ?? id,
        metric: target.metric,
        against,
        max: target.max,
        ratio,
        floor,
        status: ratio === null ? 'not measured' : ratio <= target.max ? 'met' : 'missed',
      });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function num(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toPrecision(digits);
}

/** "median (min–max)" */
function cell(s, scale = 1) {
  if (!s) return '–';
  return `${num(s.median * scale)} (${num(s.min * scale)}–${num(s.max * scale)})`;
}

function ratioCell(s) {
  if (!s) return '–';
  return `**${s.median.toFixed(2)}** (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
}

function markdown(results) {
  const m = results.machine;
  const lines = [];
  lines.push(`# sockjs-rx benchmark: ${results.mode} run`);
  lines.push('');
  lines.push(`- Date: ${results.date}`);
  lines.push(`- Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}`);
  lines.push(
    `- Node ${m.node}; servers: sockjs-rx ${results.versions.ours} (commit ${results.commit}), sockjs ${results.versions.sockjs}, ws ${results.versions.ws}${results.wsMasking ? ` (unmasking: ${results.wsMasking})` : ''}`,
  );
  lines.push(
    `- Pinned: ${results.pinned ? `yes, server on core ${results.cores.server}, load generator on core ${results.cores.generator} (taskset)` : `no (${results.pinReason})`}`,
  );
  const c = results.config;
  lines.push(
    `- Rounds: ${c.rounds} (${c.idleRounds} for the idle scenarios), interleaved: ours, sockjs, ws in each round of each scenario. Each server is warmed up for ${c.prewarmMs} ms before round 1; each round warms up ${c.warmupMs} ms, then measures for ${c.windowMs} ms (idle heartbeat window ${c.idleWindowMs} ms)`,
  );
  lines.push(`- Websocket echo: ${c.inflightPerSession} messages in flight per session`);
  lines.push(`- Open files per process: ${results.files.note}`);
  lines.push(`- Rerun: \`node bench/run.js${results.mode === 'quick' ? ' --quick' : ''}\` (see bench/README.md)`);
  if (results.mode === 'quick') {
    lines.push('- Quick mode: short windows and fewer idle sessions than the targets name; the full run is the one to judge them by');
  }
  lines.push('');
  lines.push('Cells are the median over rounds, with (min–max). Ratios are taken within each round (ours ÷ other), then the median of those.');
  lines.push('Server CPU is the server process\'s user + system time over the measured window, divided by the operations done in it.');
  lines.push('');

  // The rows of ours with metrics on and off have a table of their own, below.
  const throughput = results.scenarios.filter((s) => (s.measure === 'throughput' && !s.metricsCost) || s.heartbeat);
  lines.push('## Server CPU per operation (µs)');
  lines.push('');
  lines.push('| scenario | op | ours | sockjs | ws | ours/sockjs | ours/ws |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const s of throughput) {
    const k = s.kinds;
    lines.push(
      `| ${s.title} | ${s.op} | ${cell(k.ours?.cpuPerOp)} | ${cell(k.sockjs?.cpuPerOp)} | ${cell(k.ws?.cpuPerOp)} | ${ratioCell(s.ratios.sockjs?.cpuPerOp)} | ${ratioCell(s.ratios.ws?.cpuPerOp)} |`,
    );
  }
  lines.push('');

  const relayed = results.scenarios.filter((x) => x.kinds.relayed);
  if (relayed.length > 0) {
    lines.push('## Relay (`relay: true`): requests served by the owner, and relayed to it by another process');
    lines.push('');
    lines.push('Server CPU per operation in µs (relayed: both processes, and of that the owner), latency in ms. Redis\'s own CPU is not counted.');
    lines.push('');
    lines.push('| scenario | op | CPU by the owner | CPU relayed | of it the owner | relayed ÷ by the owner | p50 by the owner | p50 relayed | p99 by the owner | p99 relayed |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const s of relayed) {
      const k = s.kinds;
      // The ratios are ours ÷ relayed, per round: relayed ÷ ours is their inverse.
      const r = s.ratios.relayed?.cpuPerOp;
      const inverse = r ? { median: 1 / r.median, min: 1 / r.max, max: 1 / r.min } : null;
      lines.push(
        `| ${s.title} | ${s.op} | ${cell(k.ours?.cpuPerOp)} | ${cell(k.relayed?.cpuPerOp)} | ${cell(k.relayed?.ownerCpuPerOp)} | ${ratioCell(inverse)} | ${cell(k.ours?.p50)} | ${cell(k.relayed?.p50)} | ${cell(k.ours?.p99)} | ${cell(k.relayed?.p99)} |`,
      );
    }
    lines.push('');
  }

  const counting = results.scenarios.filter((x) => x.metricsCost);
  if (counting.length > 0) {
    lines.push('## The cost of counting: ours with `metrics: true` and `metrics: false`');
    lines.push('');
    const windows = [...new Set(counting.map((x) => x.timing?.windowMs).filter(Boolean))].join(', ');
    lines.push(
      `Server CPU per operation in µs; on ÷ off is taken within each round, then the median of those.${windows ? ` Windows of ${windows} ms.` : ''}`,
    );
    lines.push('');
    lines.push('| scenario | op | CPU, metrics on | CPU, metrics off | on ÷ off | rate on | rate off |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const s of counting) {
      const k = s.kinds;
      lines.push(
        `| ${s.title} | ${s.op} | ${cell(k.ours?.cpuPerOp)} | ${cell(k['ours-nometrics']?.cpuPerOp)} | ${ratioCell(s.ratios['ours-nometrics']?.cpuPerOp)} | ${cell(k.ours?.rate)} | ${cell(k['ours-nometrics']?.rate)} |`,
      );
    }
    lines.push('');
  }

  for (const s of results.scenarios.filter((x) => x.measure === 'flood' && x.flood)) {
    const limit = s.serverOptions?.rate_limit;
    lines.push('## Flood: well-behaved websocket sessions beside a flooder');
    lines.push('');
    lines.push(
      `${s.title}. Ours has \`rate_limit: ${JSON.stringify(limit)}\` on every session; sockjs has no rate limit. Each round measures ${s.timing.windowMs} ms of the well-behaved load alone and ${s.timing.windowMs} ms with the flooder, on the same server, in alternating order; the flooder starts ${s.timing.warmupMs} ms before the window. The flooder runs on the generator's core under SCHED_IDLE. Median (min–max) over rounds.`,
    );
    lines.push('');
    lines.push('| server | flooder | p50 (ms) | p99 (ms) | echoes/s | server CPU (% of a core) | generator event-loop delay p99 (ms) |');
    lines.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [kind, f] of Object.entries(s.flood.kinds)) {
      for (const [label, m] of [['no', f.quiet], ['yes', f.flooded]]) {
        lines.push(`| ${kind} | ${label} | ${cell(m.p50)} | ${cell(m.p99)} | ${cell(m.rate)} | ${cell(m.cpuShare, 100)} | ${cell(m.loopDelayP99)} |`);
      }
    }
    lines.push('');
    lines.push('| server | p99 with ÷ without the flooder | flooder sent (messages/s) | handed to the application (messages/s) | dropped by the server (messages/s) |');
    lines.push('| --- | --- | --- | --- | --- |');
    for (const [kind, f] of Object.entries(s.flood.kinds)) {
      lines.push(
        `| ${kind} | ${ratioCell(f.p99Ratio)} | ${cell(f.flooded.floodSendRate)} | ${cell(f.flooded.floodDeliveredRate)} | ${cell(f.flooded.floodDroppedRate)} |`,
      );
    }
    lines.push('');
    const targets = (results.floodTargets ?? []).filter((t) => t.scenario === s.id);
    if (targets.length > 0) {
      lines.push('| target | limit | measured | |');
      lines.push('| --- | --- | --- | --- |');
      for (const t of targets) lines.push(`| ${t.target} | ${t.limit} | ${t.measured === null ? '–' : num(t.measured)} | ${t.status} |`);
      lines.push('');
    }
  }

  lines.push('## Rate (operations/s) and latency (ms)');
  lines.push('');
  lines.push('| scenario | server | rate | p50 | p99 | rate ours/other |');
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const s of results.scenarios.filter((x) => x.measure === 'throughput')) {
    for (const kind of Object.keys(s.kinds)) {
      const k = s.kinds[kind];
      lines.push(`| ${s.title} | ${kind} | ${cell(k.rate)} | ${cell(k.p50)} | ${cell(k.p99)} | ${kind === 'ours' ? '' : ratioCell(s.ratios[kind]?.rate)} |`);
    }
  }
  lines.push('');

  lines.push('## Memory per idle session (bytes, after a forced GC)');
  lines.push('');
  lines.push('| scenario | server | heap | RSS | heap ours/other | RSS ours/other |');
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const s of results.scenarios.filter((x) => x.measure === 'idle')) {
    for (const kind of Object.keys(s.kinds)) {
      const k = s.kinds[kind];
      const r = s.ratios[kind];
      lines.push(
        `| ${s.title} | ${kind} | ${cell(k.heapPerSession)} | ${cell(k.rssPerSession)} | ${kind === 'ours' ? '' : ratioCell(r?.heapPerSession)} | ${kind === 'ours' ? '' : ratioCell(r?.rssPerSession)} |`,
      );
    }
  }
  lines.push('');

  lines.push('## Targets (ours/sockjs, or ours/ws where the limit names ws; median of rounds)');
  lines.push('');
  lines.push('| target | scenario | limit | measured | floor/sockjs | |');
  lines.push('| --- | --- | --- | --- | --- | --- |');
  for (const t of results.targets) {
    const floor = t.floor === null || t.floor === undefined ? '–' : t.floor.toFixed(2);
    const limit = t.against && t.against !== 'sockjs' ? `≤ ${t.max} × ${t.against}` : `≤ ${t.max}`;
    lines.push(`| ${t.target} | ${t.title} | ${limit} | ${t.ratio === null ? '–' : t.ratio.toFixed(2)} | ${floor} | ${t.status} |`);
  }
  lines.push('');
  lines.push(
    'floor/sockjs: the floor server (the ws column) over sockjs, per round, median: what the same wire work costs with no SockJS work at all. A limit below it asks for less than `ws` or Node\'s `http` alone spend.',
  );
  const met = results.targets.filter((t) => t.status === 'met').length;
  lines.push('');
  lines.push(`${met} of ${results.targets.length} met.`);
  lines.push('');

  const notes = results.scenarios.filter((s) => s.note || s.latency);
  if (notes.length) {
    lines.push('## Notes');
    lines.push('');
    for (const s of notes) {
      if (s.note) lines.push(`- ${s.title}: ${s.note}.`);
      if (s.latency) lines.push(`- ${s.title}: latency is ${s.latency}.`);
    }
    lines.push('- The ws column is the floor: on the websocket rows a plain `ws` echo server; on the xhr_send and new xhr session rows the same process answering with Node\'s plain `http` (the body read, a fixed answer, no session behind it); on the xhr-polling row that process holding each session\'s poll in a map until an xhr_send answers it with its own body.');
    lines.push('');
  }
  if (results.warnings?.length) {
    lines.push('## Warnings');
    lines.push('');
    for (const w of results.warnings) lines.push(`- ${w.scenario} / ${w.kind} / round ${w.round + 1}: ${w.message}`);
    lines.push('');
  }
  if (results.errors.length) {
    lines.push('## Errors');
    lines.push('');
    for (const e of results.errors) lines.push(`- ${e.scenario} / ${e.kind} / round ${e.round + 1}: ${e.message.split('\n')[0]}`);
    lines.push('');
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG

function escapeXml(s) {
  return String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

/** Horizontal bars of ours/sockjs and ours/ws on a log scale, with 1× and each target marked. */
function svg(results) {
  const bars = [];
  for (const s of results.scenarios.filter((x) => x.measure !== 'flood' && !x.metricsCost)) {
    const metrics = s.measure === 'idle' ? (s.heartbeat ? ['cpuPerOp', 'heapPerSession', 'rssPerSession'] : ['heapPerSession', 'rssPerSession']) : ['cpuPerOp'];
    for (const metric of metrics) {
      const label = metric === 'cpuPerOp' ? (s.heartbeat ? `${s.title}: heartbeat CPU` : s.title) : `${s.title}: ${metric === 'heapPerSession' ? 'heap' : 'RSS'}`;
      const target = results.targets.find((t) => t.scenario === s.id && t.metric === metric);
      bars.push({ label, sockjs: s.ratios.sockjs?.[metric], ws: s.ratios.ws?.[metric], target: target?.max });
    }
  }
  const lo = 1 / 16;
  const hi = 16;
  const left = 430;
  const width = 1080;
  const plotW = width - left - 160;
  const valuesX = left + plotW + 20;
  const rowH = 22;
  const top = 70;
  const height = top + bars.length * rowH + 50;
  const x = (v) => left + ((Math.log(Math.min(Math.max(v, lo), hi)) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">sockjs-rx relative to sockjs 0.3.24 and ws: server CPU per operation and memory per session</text>`);
  out.push(
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${escapeXml(`${results.date.slice(0, 10)}, ${results.mode} run, ${results.machine.cores} cores, Node ${results.machine.node}${results.pinned ? ', pinned' : ''}; medians over rounds, whiskers min–max; lower is better; log scale`)}</text>`,
  );
  out.push(`<text x="${valuesX}" y="${top - 12}" font-weight="bold">/sockjs</text>`);
  out.push(`<text x="${valuesX + 95}" y="${top - 12}" font-weight="bold" fill="#777">/ws</text>`);
  for (const tick of [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16]) {
    const tx = x(tick);
    out.push(`<line x1="${tx}" y1="${top - 8}" x2="${tx}" y2="${top + bars.length * rowH}" stroke="${tick === 1 ? '#333' : '#ddd'}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${tx}" y="${top + bars.length * rowH + 16}" text-anchor="middle" fill="#333">${tick < 1 ? `1/${1 / tick}` : tick}×</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    if (i % 2 === 0) out.push(`<rect x="0" y="${y}" width="${width}" height="${rowH}" fill="#f6f6f6" fill-opacity="0.6"/>`);
    out.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escapeXml(b.label)}</text>`);
    const base = x(1);
    const bar = (r, dy, h, fill) => {
      if (!r) return;
      const vx = x(r.median);
      out.push(`<rect x="${Math.min(base, vx)}" y="${y + dy}" width="${Math.max(1, Math.abs(vx - base))}" height="${h}" fill="${fill}"><title>${r.median.toFixed(3)} (${r.min.toFixed(3)}–${r.max.toFixed(3)})</title></rect>`);
      out.push(`<line x1="${x(r.min)}" y1="${y + dy + h / 2}" x2="${x(r.max)}" y2="${y + dy + h / 2}" stroke="#222" stroke-width="1"/>`);
    };
    bar(b.sockjs, 3, b.ws ? 8 : 16, b.target && b.sockjs ? (b.sockjs.median <= b.target ? '#2e8b57' : '#d9534f') : '#4a78c2');
    bar(b.ws, 12, 7, '#999999');
    if (b.target) out.push(`<line x1="${x(b.target)}" y1="${y + 1}" x2="${x(b.target)}" y2="${y + rowH - 1}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/>`);
    // The numbers too: bars past the ends of the scale are cut off there.
    if (b.sockjs) out.push(`<text x="${valuesX}" y="${y + 15}">${b.sockjs.median.toFixed(2)}${b.target ? ` (≤ ${b.target})` : ''}</text>`);
    if (b.ws) out.push(`<text x="${valuesX + 95}" y="${y + 15}" fill="#777">${b.ws.median < 100 ? b.ws.median.toFixed(2) : Math.round(b.ws.median)}</text>`);
  });
  const ly = height - 18;
  out.push(`<rect x="${left}" y="${ly - 10}" width="12" height="10" fill="#2e8b57"/><text x="${left + 16}" y="${ly}">ours/sockjs, target met</text>`);
  out.push(`<rect x="${left + 170}" y="${ly - 10}" width="12" height="10" fill="#d9534f"/><text x="${left + 186}" y="${ly}">target missed</text>`);
  out.push(`<rect x="${left + 290}" y="${ly - 10}" width="12" height="10" fill="#4a78c2"/><text x="${left + 306}" y="${ly}">no target</text>`);
  out.push(`<rect x="${left + 380}" y="${ly - 10}" width="12" height="10" fill="#999"/><text x="${left + 396}" y="${ly}">ours/ws</text>`);
  out.push(`<line x1="${left - 120}" y1="${ly - 10}" x2="${left - 120}" y2="${ly}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/><text x="${left - 114}" y="${ly}">target</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/**
 * Writes latest.{json,md,svg}, and the same as <mode>.{json,md,svg} (full or quick) so that a
 * quick run does not hide the last full one. Runs of some scenarios only (--only) write
 * partial.{json,md,svg} instead, and leave the others alone.
 */
function writeResults(results, dir, { partial = false } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const texts = { json: `${JSON.stringify(results, null, 2)}\n`, md: `${markdown(results)}\n`, svg: `${svg(results)}\n` };
  const written = [];
  for (const name of partial ? ['partial'] : ['latest', results.mode]) {
    for (const [ext, text] of Object.entries(texts)) {
      const file = path.join(dir, `${name}.${ext}`);
      fs.writeFileSync(file, text);
      written.push(file);
    }
  }
  return written;
}

module.exports = { summarise, summariseFlood, evaluateTargets, evaluateFloodTargets, markdown, svg, writeResults, median, num };
