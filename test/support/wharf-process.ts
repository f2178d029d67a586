import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout } from 'node:timers/promises';
import { gatherOutput } from './child-output.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const wharfBin = path.join(repoRoot, 'bin/wharf.js');
const compileCache = path.join(repoRoot, '.cache', 'node-compile-cache');
/**
 * An empty working folder for the `wharf` commands a test runs itself (removed when the test process exits), so
 * that nothing in the clone's folder (./extensions/hooks, ./wharf.yaml, ./data) reaches them.
 */
export const scratchCwd = mkdtempSync(path.join(tmpdir(), 'wharf-cwd-'));
process.once('exit', () => rmSync(scratchCwd, { recursive: true, force: true }));

export interface WharfProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  /** Endpoint URL with trailing slash, e.g. http://127.0.0.1:1234/files/ */
  readonly endpoint: string;
  readonly dataDir: string;
  /** Its working folder: relative defaults (./extensions/hooks, ./data) resolve there, never in the clone. */
  readonly cwd: string;
  /** Every JSON log line the process printed so far. */
  readonly logs: Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartWharfOptions {
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
  /** Reuse a data folder (otherwise a fresh temporary one, removed on stop). */
  readonly dataDir?: string;
  readonly basePath?: string;
  /** The working folder (otherwise a fresh empty temporary one, removed on stop). */
  readonly cwd?: string;
}

/** Starts the real `wharf` command on a free port and waits until it listens. */
export async function startWharf(options: StartWharfOptions = {}): Promise<WharfProcess> {
  const ownDir = options.dataDir === undefined;
  // Not the clone: a ./extensions/hooks made there by following the docs would load into every test's server.
  const ownCwd = options.cwd === undefined ? await mkdtemp(path.join(tmpdir(), 'wharf-cwd-')) : undefined;
  const cwd = options.cwd ?? ownCwd ?? tmpdir();
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'wharf-test-')));
  const args = [
    wharfBin,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--data-dir',
    dataDir,
    '--info-dir',
    dataDir,
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd,
    // Node 22.1+ keeps the code it compiled for Wharf's modules there, so the many starts of a test run compile
    // them once (Node 20 ignores it). A NODE_COMPILE_CACHE set by the caller wins.
    env: { NODE_COMPILE_CACHE: compileCache, ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (typeof entry.port === 'number' && String(entry.msg).startsWith('wharf listening'))
          resolve(entry.port);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`wharf exited with ${code} before listening: ${stderr}`)));
  });
  const origin = `http://127.0.0.1:${port}`;
  const basePath = options.basePath ?? '/files';
  return {
    child,
    port,
    origin,
    endpoint: `${origin}${basePath}/`,
    dataDir,
    cwd,
    logs,
    stop: async (signal = 'SIGTERM') => {
      const exited = new Promise<number | null>((resolve) => {
        // A process killed by a signal has no exit code but has exited all the same.
        if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
        else child.once('exit', (code) => resolve(code));
      });
      child.kill(signal);
      const code = await exited;
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
      // Only the folder made above is removed, whatever cwd was.
      if (ownCwd !== undefined) await rm(ownCwd, { recursive: true, force: true });
      return code;
    },
  };
}

/**
 * The access-log lines (health checks left out) of every request answered so far. Log lines come through a pipe
 * and can trail the responses, so a marker request of our own, logged after them, says when they are all in.
 */
export async function accessLog(wharf: WharfProcess): Promise<Record<string, unknown>[]> {
  const marker = `/health?marker=${randomUUID()}`;
  const reply = await fetch(`${wharf.origin}${marker}`);
  await reply.arrayBuffer();
  for (let waited = 0; !wharf.logs.some((line) => line.url === marker); waited += 10) {
    if (waited > 5_000) throw new Error('the access log did not show the marker request');
    await setTimeout(10);
  }
  return wharf.logs.filter((line) => line.msg === 'access' && !String(line.url).startsWith('/health'));
}

/** What a `wharf` command run to its end wrote, and how it exited. */
export interface FinishedWharf {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `wharf <args>` until it exits (from `cwd`, by default the scratch folder), gathering everything it wrote.
 * `killAfterMs` bounds a command that might never end (a loop then fails its test instead of hanging it).
 */
export function runWharfToEnd(
  args: readonly string[],
  options: { readonly cwd?: string; readonly killAfterMs?: number } = {},
): Promise<FinishedWharf> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [wharfBin, ...args], {
      cwd: options.cwd ?? scratchCwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = gatherOutput(child);
    const bound =
      options.killAfterMs === undefined
        ? undefined
        : globalThis.setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    child.once('close', (code) => {
      clearTimeout(bound);
      resolve({ code, stdout: output.stdout(), stderr: output.stderr() });
    });
  });
}

/** The log lines of `wharf` whose message includes `text`. */
export function logsWith(wharf: WharfProcess, text: string): Record<string, unknown>[] {
  return wharf.logs.filter((line) => String(line.msg).includes(text));
}
