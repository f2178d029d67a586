/**
 * The admin API as the dashboard sees it (shapes from the issue 8 contract, docs/admin.md). Declared here
 * rather than imported from the server code: the page is compiled for the browser on its own.
 * test/support/dashboard-shapes.ts makes the project's type check fail when the server's shapes drift from these.
 */

export type RunStatus =
  | 'pending'
  | 'running'
  | 'completed'
  | 'completed_with_warnings'
  | 'failed'
  | 'skipped'
  | 'timed_out';

export interface UploadSummary {
  readonly id: string;
  readonly endpoint: string;
  readonly offset: number;
  readonly length: number | null;
  /** 0..1; null while the length is deferred. */
  readonly progress: number | null;
  readonly finished: boolean;
  readonly createdAt: number | null;
  /** What the client sent in Upload-Metadata: user input, shown as text only. */
  readonly metadata: Readonly<Record<string, string | null>>;
}

export interface RunRecord {
  readonly eventId: string;
  readonly event: string;
  readonly hook: string;
  readonly target: string;
  readonly uploadId: string;
  readonly blocking: boolean;
  readonly status: RunStatus;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly error?: string;
  readonly exitCode?: number;
  readonly httpStatus?: number;
  readonly output?: string;
  readonly attempt?: number;
  readonly warning?: boolean;
}

export interface EventSummary {
  readonly eventId: string;
  readonly event: string;
  readonly uploadId: string;
  readonly at: number;
  readonly status: RunStatus;
  readonly runs: readonly RunRecord[];
}

export interface DeadLetter {
  readonly eventId: string;
  readonly event: string;
  readonly hook: string;
  readonly uploadId: string;
  readonly target: string;
  readonly attempts: number;
  readonly lastError: string;
  readonly deadAt: number;
  readonly reason: string;
}

export interface TargetState {
  readonly name: string;
  readonly kind: string;
  readonly health: 'healthy' | 'failing' | 'disabled';
  readonly disabledReason?: string;
  readonly failingSince?: number;
  readonly lastError?: string;
  readonly lastAttemptAt?: number;
  readonly lastSuccessAt?: number;
  readonly pending: number;
  readonly deadLetters: number;
  readonly signed: boolean;
  readonly addedAtRuntime: boolean;
}
