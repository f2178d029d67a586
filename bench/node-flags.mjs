// Wharf under Node/V8 start-up flags, against tusd in the same round (issue 20: does a heap flag given at
// process start close the gap on 200 concurrent uploads?). Every round starts tusd, then Wharf once per flag set,
// each fresh on its own port and data folder (A B C A B C ...), and reports for each run the throughput and its
// ratio to tusd's in that round, the peak RSS of the server's process tree and its ratio to tusd's, the server's
// CPU seconds (user + system, the whole tree: the figure load on the machine distorts least) and, for Wharf,
// the garbage collections V8 ran (--trace-gc is added to every set alike). Medians per set at the end.
//
// Usage: node bench/node-flags.mjs [FLAGS ...]    one argument per flag set, '' for Node's defaults, e.g.
//   node bench/node-flags.mjs '' --max-semi-space-size=2 '--v8-pool-size=1' 'ENV:UV_THREADPOOL_SIZE=2'
// (an ENV:NAME=VALUE word sets an environment variable for that set, and WHARF:--option with the words after it
// go to Wharf: 'WHARF:--workers 2'). BENCH_FLAGS_SCENARIO (default concurrent), BENCH_ROUNDS (default 3) and the
// sizes of bench/lib/config.mjs apply. Run it alone on the machine (flock /work/wt/bench.lock ...).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const bench = import.meta.dirname;
const root = path.resolve(bench, '..');
const scenario = process.env.BENCH_FLAGS_SCENARIO ?? 'concurrent';
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const tusd = path.join(bench, '.peers', 'bin', 'tusd');
const sets = process.argv.length > 2 ? process.argv.slice(2) : [''];

/** One flag-set argument split into Node flags, environment variables and Wharf options. */
function parseSet(text) {
  const node = [];
  const env = {};
  const wharf = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (word.startsWith('ENV:')) {
      const [name, ...value] = word.slice(4).split('=');
      env[name] = value.join('=');
    } else if (word.startsWith('WHARF:')) wharf.push(word.slice(6));
    else if (wharf.length > 0 && !word.startsWith('--')) wharf.push(word);
    else node.push(word);
  }
  return { label: text === '' ? '(defaults)' : text, node, env, wharf };
}

const servers = [
  ...(existsSync(tusd) ? [{ label: 'tusd', tusd: true }] : []),
  ...sets.map((text) => ({ ...parseSet(text), tusd: false })),
];
if (!servers[0]?.tusd) console.error('node-flags: tusd is not built (bash bench/setup.sh); no ratios');

async function listening(port) {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket.end() && true));
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port} after 15 s`);
}

/** The process and its descendants (a server's cluster workers). */
function tree(pid) {
  const pids = [pid];
  for (let index = 0; index < pids.length; index += 1) {
    for (const task of safeList(`/proc/${pids[index]}/task`)) {
      const children = safeRead(`/proc/${pids[index]}/task/${task}/children`).trim();
      if (children) pids.push(...children.split(/\s+/).map(Number));
    }
  }
  return pids;
}
function safeList(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
function safeRead(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** User + system CPU seconds of a process tree, read while it is alive. */
function cpuSeconds(pids) {
  const ticks = pids.reduce((sum, pid) => {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = safeRead(`/proc/${pid}/stat`).split(') ')[1]?.split(' ') ?? [];
    return sum + Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }, 0);
  return ticks / 100;
}

async function runOne(server, round) {
  const data = await mkdtemp(path.join(bench, 'out', 'flags-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const command = server.tusd
    ? [tusd, '-host', '127.0.0.1', '-port', String(port), '-upload-dir', data, '-base-path', '/files/',
        '-verbose=false', '-show-startup-logs=false']
    : ['node', '--trace-gc', ...server.node, path.join(root, 'bin', 'wharf.js'), '--host', '127.0.0.1', '--port',
        String(port), '--data-dir', data, '--info-dir', data, '--no-access', ...server.wharf];
  const child = spawn(command[0], command.slice(1), {
    env: { ...process.env, ...(server.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (chunk) => {
    log += chunk.toString('latin1');
  });
  child.stderr.resume();
  try {
    await listening(port);
    const load = spawn('node', [path.join(bench, 'load.mjs'), scenario, `http://127.0.0.1:${port}/files/`,
      String(child.pid)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    load.stdout.on('data', (chunk) => {
      out += chunk;
    });
    await new Promise((resolve) => load.on('close', resolve));
    const cpu = cpuSeconds(tree(child.pid));
    const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}');
    if (result.error) throw new Error(result.error);
    return {
      server: server.label,
      round,
      rate: result.mbPerSecond ?? result.uploadsPerSecond,
      rss: result.peakRssMB,
      cpu,
      markCompacts: (log.match(/Mark-Compact/g) ?? []).length,
      scavenges: (log.match(/Scavenge/g) ?? []).length,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.on('close', resolve) : resolve()));
    await rm(data, { recursive: true, force: true });
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const unit = scenario === 'small' ? 'uploads/s' : 'MB/s';
await mkdir(path.join(bench, 'out'), { recursive: true });
const runs = [];
for (let round = 1; round <= rounds; round += 1) {
  let peer;
  for (const server of servers) {
    const run = await runOne(server, round).catch((error) => ({ server: server.label, round, error: String(error) }));
    if (server.tusd) peer = run;
    runs.push({ ...run, rateRatio: run.rate / peer?.rate, rssRatio: run.rss / peer?.rss });
    const r = runs.at(-1);
    console.log(r.error ? `flags: round ${round} ${r.server}: ${r.error}`
      : `flags: round ${round} ${r.server.padEnd(44)} ${r.rate.toFixed(1)} ${unit} (${r.rateRatio.toFixed(2)}x tusd)` +
        `  peak RSS ${r.rss.toFixed(1)} MB (${r.rssRatio.toFixed(2)}x)  CPU ${r.cpu.toFixed(2)} s` +
        (server.tusd ? '' : `  GC ${r.markCompacts} mark-compact, ${r.scavenges} scavenge`));
  }
}
console.log(`flags: medians over ${rounds} rounds, ${scenario}`);
for (const server of servers) {
  const mine = runs.filter((run) => run.server === server.label && !run.error);
  if (mine.length === 0) continue;
  const m = (key) => median(mine.map((run) => run[key]));
  console.log(`flags: ${server.label.padEnd(44)} ${m('rate').toFixed(1)} ${unit} (${m('rateRatio').toFixed(2)}x tusd)` +
    `  peak RSS ${m('rss').toFixed(1)} MB (${m('rssRatio').toFixed(2)}x)  CPU ${m('cpu').toFixed(2)} s` +
    (server.tusd ? '' : `  mark-compacts ${m('markCompacts')}`));
}
