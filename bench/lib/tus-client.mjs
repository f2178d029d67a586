// Raw tus 1.0 over node:http, for the load generator and big-upload.mjs. Bodies are
// streamed from one reused 1 MiB random buffer, so no upload is ever held in memory.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

export const MiB = 1024 * 1024;
export const MB = 1e6;
const pattern = randomBytes(MiB);

export function keepAliveAgent(maxSockets) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

function waitWritable(req) {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

function flushed(req, chunk) {
  return new Promise((resolve) => {
    req.write(chunk, () => resolve());
    req.once('close', resolve);
  });
}

/** Writes `length` bytes of the pattern; with `cutAfter`, writes that many, flushes, and destroys the socket. */
async function writeBody(req, length, cutAfter) {
  const limit = cutAfter ?? length;
  let sent = 0;
  while (sent < limit && !req.destroyed) {
    const size = Math.min(pattern.length, limit - sent);
    const chunk = size === pattern.length ? pattern : pattern.subarray(0, size);
    sent += size;
    if (cutAfter !== undefined && sent >= limit) {
      await flushed(req, chunk);
      break;
    }
    if (!req.write(chunk)) await waitWritable(req);
  }
  if (req.destroyed) return;
  if (cutAfter === undefined) req.end();
  else req.destroy();
}

/**
 * One request. Resolves { status, headers } once the response has been read, or { cut: true }
 * when `cutAfter` destroyed the connection mid-body. Rejects on network errors and timeouts.
 */
export function send(url, { method, agent, headers = {}, bodyLength, cutAfter, timeoutMs = 120_000 }) {
  return new Promise((resolve, reject) => {
    const allHeaders = { 'Tus-Resumable': '1.0.0', ...headers };
    if (bodyLength !== undefined) allHeaders['Content-Length'] = String(bodyLength);
    const req = http.request(url, { method, agent, headers: allHeaders });
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => settle(resolve, { status: res.statusCode, headers: res.headers }));
      res.on('error', (error) => settle(reject, error));
    });
    req.on('error', (error) =>
      settle(cutAfter === undefined ? reject : resolve, cutAfter === undefined ? error : { cut: true }),
    );
    req.on('close', () => {
      if (cutAfter !== undefined) settle(resolve, { cut: true });
      else settle(reject, new Error(`${method} ${url}: connection closed without an answer`));
    });
    if (bodyLength) writeBody(req, bodyLength, cutAfter).catch((error) => req.destroy(error));
    else req.end();
  });
}

function expect(res, status, what) {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status ?? 'no answer'}`);
  return res;
}

/** POST (creation). Returns the absolute upload URL. */
export async function create(endpoint, agent, length) {
  const res = expect(
    await send(endpoint, {
      method: 'POST',
      agent,
      bodyLength: 0,
      headers: { 'Upload-Length': String(length) },
    }),
    201,
    'POST',
  );
  const location = res.headers.location;
  if (!location) throw new Error('POST: 201 without Location');
  return new URL(location, endpoint).href;
}

/** PATCH of `length` bytes at `offset`; checks the new offset. */
export async function patch(uploadUrl, agent, offset, length, extra = {}) {
  const res = await send(uploadUrl, {
    method: 'PATCH',
    agent,
    bodyLength: length,
    headers: { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
    ...extra,
  });
  if (res.cut) return res;
  expect(res, 204, `PATCH at ${offset}`);
  const newOffset = Number(res.headers['upload-offset']);
  if (newOffset !== offset + length)
    throw new Error(`PATCH at ${offset}: Upload-Offset ${newOffset}, want ${offset + length}`);
  return res;
}

/** HEAD; returns the server's Upload-Offset. */
export async function head(uploadUrl, agent) {
  const res = expect(await send(uploadUrl, { method: 'HEAD', agent }), 200, 'HEAD');
  return Number(res.headers['upload-offset']);
}

/** Uploads `length` bytes at `offset` in PATCHes of `chunk` bytes. */
export async function patchAll(uploadUrl, agent, length, chunk, offset = 0) {
  for (let at = offset; at < length; at += chunk)
    await patch(uploadUrl, agent, at, Math.min(chunk, length - at));
}

function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // Gone between two reads.
    }
  }
  return pids;
}

function statusField(status, key) {
  return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
}

/**
 * Samples the resident memory of a server every `everyMs`; stop() returns the peak in bytes, and `processes`
 * the most processes its tree had.
 * A lone process also reports its kernel-kept peak (VmHWM), which catches spikes between
 * samples; a process tree (a cluster) is the largest sum of VmRSS sampled.
 */
export function rssSampler(pid, everyMs = 100) {
  let peak = 0;
  let processes = 0;
  const read = () => {
    if (!pid) return;
    const pids = processTree(pid);
    processes = Math.max(processes, pids.length);
    let sum = 0;
    for (const member of pids) {
      try {
        const status = readFileSync(`/proc/${member}/status`, 'utf8');
        sum += statusField(status, 'VmRSS');
        if (pids.length === 1) sum = Math.max(sum, statusField(status, 'VmHWM'));
      } catch {
        // Gone; keep the peak seen so far.
      }
    }
    peak = Math.max(peak, sum);
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return peak;
    },
    /** The most processes seen in the tree at once (a server's workers show here). */
    get processes() {
      return processes;
    },
  };
}

let ticksPerSecond;
/**
 * The CPU time (user + system, every thread) a server's process tree has spent so far, in ms; undefined without a
 * pid. A worker that exited is no longer counted.
 */
export function treeCpuMs(pid) {
  if (!pid) return undefined;
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  let ticks = 0;
  for (const member of processTree(pid)) {
    try {
      // utime and stime are the 14th and 15th fields; the command name before them may hold spaces.
      const fields = readFileSync(`/proc/${member}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone between two reads.
    }
  }
  return (ticks * 1000) / ticksPerSecond;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}
