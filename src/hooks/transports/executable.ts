import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { DeliveryResult } from './types.ts';

/** How much of a hook's stderr Wharf keeps for its log and run record; it is never sent to the client. */
export const stderrLimitBytes = 4096;
/** stdout is read (so the hook never blocks on a full pipe) but only this much is kept: it may be an answer. */
export const stdoutLimitBytes = 64 * 1024;
/** After the hook exits, how long to wait for its pipes to close (a background child may hold them). */
const pipeGraceMs = 1000;

export interface ExecutableRun {
  readonly file: string;
  readonly args: readonly string[];
  /** Written to the hook's stdin; a hook that does not read it is fine. */
  readonly input: string;
  readonly env: NodeJS.ProcessEnv;
  /** The hook's working directory; default: Wharf's. */
  readonly cwd?: string;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

export interface ExecutableResult {
  readonly result: DeliveryResult;
  readonly stdout: string;
}

/** Keeps the first `limit` bytes of a stream and drops the rest. */
class CappedBuffer {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  constructor(readonly limit: number) {}

  push(chunk: Buffer): void {
    if (this.#size >= this.limit) return;
    const kept = chunk.subarray(0, this.limit - this.#size);
    this.#chunks.push(kept);
    this.#size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

const posix = process.platform !== 'win32';

/**
 * Runs one hook executable without a shell. On POSIX it gets its own process group, so a timeout or shutdown
 * kills the hook and everything it started (a `sleep` in a shell script would otherwise keep running and keep
 * the pipes open). Resolves, never rejects.
 */
export function runExecutable(run: ExecutableRun): Promise<ExecutableResult> {
  const stdout = new CappedBuffer(stdoutLimitBytes);
  const stderr = new CappedBuffer(stderrLimitBytes);
  if (run.signal.aborted) return Promise.resolve({ result: { kind: 'aborted' }, stdout: '' });

  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(run.file, run.args, {
        env: run.env,
        ...(run.cwd !== undefined ? { cwd: run.cwd } : {}),
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: posix,
        windowsHide: true,
      });
    } catch (error) {
      // Some spawn failures throw synchronously, e.g. E2BIG when the payload is too long for argv.
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      resolve({ result: { kind: 'spawn_failed', detail: `${code}: ${String(error)}` }, stdout: '' });
      return;
    }

    const finish = (result: DeliveryResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      run.signal.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      child.stdin.destroy();
      resolve({ result, stdout: stdout.text() });
    };

    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        if (posix) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    };

    const resultOfExit = (): DeliveryResult => {
      if (exit === undefined)
        return { kind: 'spawn_failed', detail: 'the hook ended without an exit status' };
      if (exit.code === 0) return { kind: 'delivered', exitCode: 0 };
      return { kind: 'exited', exitCode: exit.code, signal: exit.signal, stderr: stderr.text() };
    };

    function onAbort(): void {
      killGroup();
      finish({ kind: 'aborted' });
    }

    child.on('error', (error: NodeJS.ErrnoException) => {
      // Emitted when the spawn fails (the 'exit' event never comes then) or, rarely, when killing fails.
      if (child.pid !== undefined) return;
      if (error.code === 'ENOENT' || error.code === 'EACCES' || error.code === 'ENOTDIR') {
        finish({ kind: 'not_runnable', detail: `${error.code}: ${run.file} is missing or not executable` });
      } else {
        finish({ kind: 'spawn_failed', detail: `${error.code ?? 'error'}: ${error.message}` });
      }
    });

    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // A hook that exits without reading its stdin makes this write fail with EPIPE: that is not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(run.input);

    child.on('exit', (code, signal) => {
      exit = { code, signal };
      if (settled) return;
      graceTimer = setTimeout(() => finish(resultOfExit()), pipeGraceMs);
    });
    child.on('close', () => finish(resultOfExit()));

    timer = setTimeout(() => {
      killGroup();
      finish({ kind: 'timed_out', timeoutMs: run.timeoutMs });
    }, run.timeoutMs);
    run.signal.addEventListener('abort', onAbort, { once: true });
  });
}
