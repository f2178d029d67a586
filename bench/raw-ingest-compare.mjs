// Node without node:http's body path against tusd, the Go sink and the node:http pipe (issue 20, the concurrent
// row): each round starts every server in turn (fresh process, port and folder; A B C ... A B C ...) and drives
// one scenario (concurrent by default) with bench/load.mjs, then reports per run and as medians: MB/s and its
// ratio to tusd's in the same round, the server's peak RSS and its ratio to tusd's, its RSS before the first
// request (idle) and 2 s after the last answer (at rest), its CPU seconds (user and system apart, read from
// /proc) and, for Node servers, the garbage collections V8 ran (--trace-gc, given to every Node server alike).
//
// Usage: node bench/raw-ingest-compare.mjs [SERVER ...]   (default: tusd sink pipe raw-alloc raw-reuse
//        raw-reuse-sync raw-hijack wharf). raw-* is bench/raw-ingest.mjs in that mode; RAW_NODE=<node binary> runs the Node
//        servers under another Node; BENCH_RAW_SCENARIO (default concurrent), BENCH_ROUNDS (default 3) and the
//        sizes of bench/lib/config.mjs apply. Run it alone: flock /work/wt/bench.lock ... after `sync; sleep 65`.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const bench = import.meta.dirname;
const root = path.resolve(bench, '..');
const scenario = process.env.BENCH_RAW_SCENARIO ?? 'concurrent';
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const node = process.env.RAW_NODE ?? 'node';
const peers = path.join(bench, '.peers', 'bin');
const names =
  process.argv.length > 2
    ? process.argv.slice(2)
    : ['tusd', 'sink', 'pipe', 'raw-alloc', 'raw-reuse', 'raw-reuse-sync', 'raw-hijack', 'wharf'];

/** `raw-reuse-sync+RAW_BUFFER_BYTES=262144+NODE=/path/to/node`: a server with environment variables of its own. */
function parseName(label) {
  const [name, ...settings] = label.split('+');
  const env = Object.fromEntries(settings.map((setting) => [setting.split('=')[0], setting.split('=').slice(1).join('=')]));
  return { name, env, node: env.NODE ?? node };
}

function command(label, port, data) {
  const { name, node } = parseName(label);
  const p = String(port);
  if (name === 'tusd')
    return [path.join(peers, 'tusd'), '-host', '127.0.0.1', '-port', p, '-upload-dir', data, '-base-path', '/files/',
      '-verbose=false', '-show-startup-logs=false'];
  if (name === 'sink') return [path.join(peers, 'sink'), '-host', '127.0.0.1', '-port', p, '-dir', data];
  if (name === 'pipe') return [node, '--trace-gc', path.join(bench, 'baseline-pipe.mjs'), p, data];
  if (name === 'wharf')
    return [node, '--trace-gc', path.join(root, 'bin', 'wharf.js'), '--host', '127.0.0.1', '--port', p,
      '--data-dir', data, '--info-dir', data, '--no-access'];
  if (name.startsWith('raw-')) return [node, '--trace-gc', path.join(bench, 'raw-ingest.mjs'), p, data, name.slice(4)];
  throw new Error(`unknown server ${name}`);
}

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

function safeRead(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
/** The process and its descendants (Wharf's workers, if any). */
function tree(pid) {
  const pids = [pid];
  for (let index = 0; index < pids.length; index += 1) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${pids[index]}/task`);
    } catch {}
    for (const task of tasks) {
      const children = safeRead(`/proc/${pids[index]}/task/${task}/children`).trim();
      if (children) pids.push(...children.split(/\s+/).map(Number));
    }
  }
  return pids;
}
const rssMB = (pids) =>
  pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(safeRead(`/proc/${pid}/status`))?.[1] ?? 0), 0) / 1024;
/** User and system CPU seconds of a process tree, read while it is alive (fields 14 and 15 of stat). */
function cpu(pids) {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    const fields = safeRead(`/proc/${pid}/stat`).split(') ')[1]?.split(' ') ?? [];
    user += Number(fields[11] ?? 0);
    system += Number(fields[12] ?? 0);
  }
  return { user: user / 100, system: system / 100 };
}

async function runOne(name, round) {
  const data = await mkdtemp(path.join(bench, 'out', 'raw-'));
  // Below Linux's ephemeral range (32768-60999), where the load generator's own connections take ports.
  const port = 20000 + Math.floor(Math.random() * 12000);
  const argv = command(name, port, data);
  const child = spawn(argv[0], argv.slice(1), {
    cwd: root,
    env: { ...process.env, ...parseName(name).env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let errors = '';
  child.stderr.on('data', (chunk) => {
    errors += chunk;
  });
  const failed = new Promise((_, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${errors.slice(-300)}`)));
  });
  failed.catch(() => {});
  child.stdout.on('data', (chunk) => {
    log += chunk.toString('latin1');
  });
  try {
    await Promise.race([listening(port), failed]);
    await sleep(300);
    const idle = rssMB(tree(child.pid));
    const load = spawn(node === 'node' ? 'node' : process.execPath,
      [path.join(bench, 'load.mjs'), scenario, `http://127.0.0.1:${port}/files/`, String(child.pid)],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    load.stdout.on('data', (chunk) => {
      out += chunk;
    });
    await new Promise((resolve) => load.on('close', resolve));
    const pids = tree(child.pid);
    const used = cpu(pids);
    await sleep(2000);
    const rest = rssMB(pids);
    const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}');
    if (result.error) throw new Error(result.error);
    return {
      server: name,
      round,
      rate: result.mbPerSecond ?? result.uploadsPerSecond,
      rss: result.peakRssMB,
      idle,
      rest,
      user: used.user,
      system: used.system,
      cpu: used.user + used.system,
      markCompacts: (log.match(/Mark-Compact/g) ?? []).length,
      scavenges: (log.match(/Scavenge/g) ?? []).length,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null && child.pid ? child.on('close', resolve) : resolve()));
    // Emptied now, deleted at the end: deleting hundreds of files between runs makes the next server's file
    // creations dearer on this disk (ext4 without a journal; bench/lib/spent-data.mjs).
    for (const file of await readdir(data).catch(() => [])) await truncate(path.join(data, file), 0).catch(() => {});
    spent.push(data);
  }
}

const spent = [];
const median = (values) => {
  // A round whose tusd failed has no ratio (NaN): it is left out, not sorted in.
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const unit = scenario === 'small' ? 'uploads/s' : 'MB/s';
const line = (r, peerLabel = 'tusd') =>
  `${r.server.padEnd(15)} ${r.rate.toFixed(1).padStart(7)} ${unit} (${r.rateRatio.toFixed(2)}x ${peerLabel})` +
  `  peak RSS ${r.rss.toFixed(1).padStart(6)} MB (${r.rssRatio.toFixed(2)}x)  idle ${r.idle.toFixed(1)}  rest ${r.rest.toFixed(1)}` +
  `  CPU ${r.cpu.toFixed(2)} s (user ${r.user.toFixed(2)}, sys ${r.system.toFixed(2)})` +
  (r.server === 'tusd' || r.server === 'sink' ? '' : `  GC ${r.markCompacts} mark-compact ${r.scavenges} scavenge`);

await mkdir(path.join(bench, 'out'), { recursive: true });
const nodeVersion = await new Promise((resolve) => {
  const child = spawn(node, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout.on('data', (chunk) => {
    text += chunk;
  });
  child.on('close', () => resolve(text.trim()));
});
console.log(`raw: ${scenario}, ${rounds} rounds, Node ${nodeVersion} for the Node servers, loadavg ${safeRead('/proc/loadavg').split(' ').slice(0, 3).join(' ')}`);
const runs = [];
try {
  for (let round = 1; round <= rounds; round += 1) {
    let peer;
    for (const name of names) {
      const run = await runOne(name, round).catch((error) => ({ server: name, round, error: String(error) }));
      if (name === 'tusd') peer = run;
      const r = { ...run, rateRatio: run.rate / peer?.rate, rssRatio: run.rss / peer?.rss };
      runs.push(r);
      console.log(r.error ? `raw: round ${round} ${name}: ${r.error}` : `raw: round ${round} ${line(r)}`);
    }
  }
} finally {
  for (const data of spent) await rm(data, { recursive: true, force: true });
}
console.log(`raw: medians over ${rounds} rounds, ${scenario}, loadavg ${safeRead('/proc/loadavg').split(' ').slice(0, 3).join(' ')}`);
for (const name of names) {
  const mine = runs.filter((run) => run.server === name && !run.error);
  if (mine.length === 0) continue;
  const m = (key) => median(mine.map((run) => run[key]));
  const keys = ['rate', 'rateRatio', 'rss', 'rssRatio', 'idle', 'rest', 'cpu', 'user', 'system', 'markCompacts', 'scavenges'];
  console.log(`raw: ${line({ server: name, ...Object.fromEntries(keys.map((key) => [key, m(key)])) })}`);
}
