/** What the hooks need from a logger; a pino logger fits. Its own module, so that nothing imports the engine for it. */
export interface HookLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
}
