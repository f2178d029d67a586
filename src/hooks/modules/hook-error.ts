/**
 * Thrown by a module's filter to cancel the operation with this status and message (Directus's exceptions).
 * `wharf` exports it; a module loaded from elsewhere may also throw any error with a numeric `status`.
 *
 * @example
 * filter('pre-create', (upload) => {
 *   if (!upload.metadata.token) throw new HookError(401, 'a token is required');
 *   return upload;
 * });
 */
export class HookError extends Error {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: { headers?: Record<string, string> } = {}) {
    super(message);
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`HookError status must be an integer from 400 to 599, got ${status}`);
    }
    this.name = 'HookError';
    this.status = status;
    this.headers = { ...options.headers };
  }
}

/** HookError, or the same shape from another copy of the package. */
export function asHookError(error: unknown): HookError | undefined {
  if (error instanceof HookError) return error;
  if (!(error instanceof Error)) return undefined;
  const { status, headers } = error as Error & { status?: unknown; headers?: unknown };
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599)
    return undefined;
  const copied: Record<string, string> = {};
  if (typeof headers === 'object' && headers !== null) {
    for (const [name, value] of Object.entries(headers)) if (typeof value === 'string') copied[name] = value;
  }
  return new HookError(status, error.message, { headers: copied });
}
