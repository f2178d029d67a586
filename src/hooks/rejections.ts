import type { HookAnswer, MergedAnswer } from './answers.ts';
import type { DeliveryResult } from './transports/types.ts';

/** The decision of the blocking hooks on one event. */
export type BlockingOutcome =
  /** `answer`: what answering hooks asked for (changes to the upload, extra response headers or body). */
  | {
      kind: 'continue';
      answer?: MergedAnswer;
      /** Non-critical hooks that failed: the operation "completed with warnings". */
      warnings?: readonly string[];
    }
  | { kind: 'reject'; status: number; body: string; headers: Record<string, string> };

const plainText = 'text/plain; charset=utf-8';

export function reject(status: number, body: string, contentType: string = plainText): BlockingOutcome {
  return { kind: 'reject', status, body, headers: { 'Content-Type': contentType } };
}

/**
 * What the client sees when a blocking hook fails: the one place hook results become HTTP statuses.
 * - file/dir hook exits non-zero: 400 with a fixed message naming the hook and its exit code or signal, never
 *   its stderr (scripts print paths, commands and credentials there; the engine logs it). A hook that means to
 *   choose the client's answer prints a `reject` answer on stdout (see answers.ts);
 * - file/dir hook missing or not executable: 400 naming the hook (rustus's dir-hook behaviour);
 * - file/dir hook cannot be started otherwise (e.g. payload too long for argv): 500;
 * - HTTP hook answers non-2xx: its status, body and Content-Type (a final 1xx/3xx becomes 502);
 * - HTTP hook unreachable: 502; any hook timing out: 504; the engine closing: 503.
 */
export function rejectionFor(
  hook: string,
  result: Exclude<DeliveryResult, { kind: 'delivered' }>,
): BlockingOutcome {
  switch (result.kind) {
    case 'exited': {
      if (result.exitCode !== null)
        return reject(400, `Hook "${hook}" failed with exit code ${result.exitCode}`);
      return reject(400, `Hook "${hook}" was killed by signal ${result.signal ?? 'unknown'}`);
    }
    case 'not_runnable':
      return reject(400, `Hook "${hook}" failed: its executable was not found or is not executable`);
    case 'spawn_failed':
      return reject(500, `Hook "${hook}" could not be started`);
    case 'responded':
      if (result.httpStatus >= 400 && result.httpStatus <= 599) {
        return reject(result.httpStatus, result.body, result.contentType ?? plainText);
      }
      return reject(502, `Hook "${hook}" answered with unexpected status ${result.httpStatus}`);
    case 'unreachable':
      return reject(502, `Hook "${hook}" failed: the hook endpoint could not be reached`);
    case 'timed_out':
      return reject(504, `Hook "${hook}" did not answer within ${result.timeoutMs} ms`);
    case 'aborted':
      return reject(503, 'Hooks are shutting down; retry later');
  }
}

/** A blocking hook that answered `{ "reject": true, … }`: its own response, 400 unless it says otherwise. */
export function rejectionByAnswer(hook: string, answer: HookAnswer): BlockingOutcome {
  const response = answer.httpResponse;
  const status = response?.status !== undefined && response.status >= 400 ? response.status : 400;
  // A tusd-shaped refusal (RejectUpload, RejectTermination) reads as tusd's error unless the hook said more.
  const tusd = answer.tusdRejection;
  const fallback =
    tusd !== undefined ? `${tusd.code}: ${tusd.message}\n` : `Hook "${hook}" rejected the request`;
  return {
    kind: 'reject',
    status,
    body: response?.body ?? fallback,
    headers: { 'Content-Type': plainText, ...response?.headers },
  };
}
