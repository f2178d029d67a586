/** The hooks engine's own errors: no HTTP knowledge here (the core maps hook outcomes to responses). */
export class HookConfigError extends Error {
  readonly code = 'ERR_HOOKS_CONFIG';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HookConfigError';
  }
}
