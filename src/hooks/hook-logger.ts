/** What the hooks need from a logger; a pino logger fits. Its own module, so that nothing imports the engine for it. */
export interface HookLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
  /**
   * Whether a line at this level would be written (pino has it): a debug line for every delivery is then not
   * built only to be dropped. A logger without it gets every line.
   */
  isLevelEnabled?(level: 'debug'): boolean;
}
