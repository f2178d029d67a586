import type { ChildProcess } from 'node:child_process';

/** What a child process has written so far to its piped stdout and stderr, as text. */
export interface ChildOutput {
  stdout(): string;
  stderr(): string;
}

/** Gathers everything `child` writes to its stdout and stderr (each must be a pipe) from now on. */
export function gatherOutput(child: ChildProcess): ChildOutput {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { stdout: () => stdout, stderr: () => stderr };
}
