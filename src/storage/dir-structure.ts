/**
 * Expands a --dir-structure template such as `{year}/{month}/{day}` for one upload. Values come from the
 * upload's creation time in UTC and are not zero-padded, as in rustus; `{env[NAME]}` reads a variable.
 * The result is checked so that neither a template nor an environment value can leave the data folder.
 */
export function expandDirStructure(
  template: string,
  createdAt: number,
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (template === '') return '';
  const date = new Date(createdAt);
  const values: Record<string, string> = {
    year: String(date.getUTCFullYear()),
    month: String(date.getUTCMonth() + 1),
    day: String(date.getUTCDate()),
    hour: String(date.getUTCHours()),
    minute: String(date.getUTCMinutes()),
  };
  const expanded = template.replace(
    /\{(env\[([A-Za-z_][A-Za-z0-9_]*)\]|[a-z]+)\}/g,
    (whole, name: string, envName?: string) => {
      if (envName !== undefined) return env[envName] ?? '';
      return values[name] ?? whole;
    },
  );
  const segments = expanded.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.some((segment) => segment === '..' || segment.includes('\\') || segment.includes('\0'))) {
    throw new Error(`--dir-structure expands to an unsafe path: ${expanded}`);
  }
  return segments.join('/');
}
