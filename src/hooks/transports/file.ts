import { join } from 'node:path';
import { runExecutable } from './executable.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './types.ts';

export interface ExecutableTransportOptions {
  readonly timeoutMs: number;
  /** The hook's environment before Wharf adds `WHARF_HOOK_NAME`, `WHARF_UPLOAD_ID`, `WHARF_EVENT_ID`. */
  readonly baseEnv: NodeJS.ProcessEnv;
  /** Receives what the hook wrote to stdout (capped), for debug logging. */
  readonly onStdout?: (delivery: HookDelivery, stdout: string) => void;
  /** A named hook's own `env`: added over `baseEnv`, under the `WHARF_*` context variables. */
  readonly hookEnv?: Readonly<Record<string, string>>;
  /** A named hook's `cwd`. */
  readonly cwd?: string;
  /** A named hook's `shell: true`: the command is a line for `/bin/sh -c`, not a file. */
  readonly shell?: boolean;
}

/** `$0` of a shell-string hook; `$1` is then the hook name and `$2` the JSON payload, as argv of a file hook. */
const shellArgv0 = 'wharf-hook';

function hookEnv(options: ExecutableTransportOptions, delivery: HookDelivery): NodeJS.ProcessEnv {
  return {
    ...options.baseEnv,
    ...options.hookEnv,
    WHARF_HOOK_NAME: delivery.hook,
    WHARF_UPLOAD_ID: delivery.uploadId,
    WHARF_EVENT_ID: delivery.eventId,
    ...delivery.env,
  };
}

async function runHook(
  options: ExecutableTransportOptions,
  delivery: HookDelivery,
  file: string,
  args: readonly string[],
): Promise<DeliveryResult> {
  const { result, stdout } = await runExecutable({
    file,
    args,
    input: delivery.payload,
    env: hookEnv(options, delivery),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    timeoutMs: options.timeoutMs,
    signal: delivery.signal,
  });
  if (stdout !== '') options.onStdout?.(delivery, stdout);
  return result.kind === 'delivered' && stdout !== '' ? { ...result, answer: stdout } : result;
}

/**
 * `--hooks-file`: one executable for every event; argv[1] is the hook name, argv[2] the JSON payload (as in
 * rustus); the payload is also written to stdin. A bare name is looked up in PATH.
 */
export class FileHookTransport implements HookTransport {
  constructor(
    readonly file: string,
    readonly options: ExecutableTransportOptions,
  ) {}

  describe(): string {
    return this.options.shell === true ? `shell:${this.file}` : `file:${this.file}`;
  }

  deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    if (this.options.shell === true) {
      return runHook(this.options, delivery, '/bin/sh', [
        '-c',
        this.file,
        shellArgv0,
        delivery.hook,
        delivery.payload,
      ]);
    }
    return runHook(this.options, delivery, this.file, [delivery.hook, delivery.payload]);
  }
}

/**
 * `--hooks-dir`: the executable `<dir>/<hook name>` (no extension); argv[1] is the JSON payload (as in
 * rustus); the payload is also written to stdin. A missing file fails the run.
 */
export class DirHookTransport implements HookTransport {
  constructor(
    readonly directory: string,
    readonly options: ExecutableTransportOptions,
  ) {}

  /** Hook names come from a fixed list of event names, so they cannot climb out of the directory. */
  fileFor(hook: string): string {
    return join(this.directory, hook);
  }

  describe(hook: string): string {
    return `dir:${this.fileFor(hook)}`;
  }

  deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    return runHook(this.options, delivery, this.fileFor(delivery.hook), [delivery.payload]);
  }
}
