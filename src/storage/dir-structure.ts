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

/** The location object stores give a new upload: its id, in the folder the --dir-structure template makes. */
export function uploadLocation(
  template: string,
  createdAt: number,
  env: Readonly<Record<string, string | undefined>>,
  id: string,
): string {
  const folder = expandDirStructure(template, createdAt, env)
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.' && segment !== '..')
    .join('/');
  return folder === '' ? id : `${folder}/${id}`;
}

/**
 * The folder every upload of a --dir-structure template lies in: its leading segments without a placeholder
 * (`uploads` for `uploads/{year}/{month}`, '' for `{year}`). Sweeps that walk the stored data stay inside it.
 */
export function fixedDirPrefix(template: string): string {
  const segments: string[] = [];
  for (const segment of template.split('/')) {
    if (segment.includes('{')) break;
    if (segment !== '' && segment !== '.' && segment !== '..') segments.push(segment);
  }
  return segments.join('/');
}

/**
 * Matches the locations the store itself gives uploads under a --dir-structure template: each folder as the
 * template makes it (date parts are digits, an environment value anything but '/'), then one safe name. Other
 * files under the same root (another endpoint's folder, records, hook history) never match.
 */
export function layoutPattern(template: string): { readonly pattern: RegExp; readonly depth: number } {
  const folders = template
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .map((segment) =>
      segment
        .split(/(\{env\[[A-Za-z_][A-Za-z0-9_]*\]\}|\{(?:year|month|day|hour|minute)\})/)
        .map((part, index) => {
          if (index % 2 === 0) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          return part.startsWith('{env') ? '[^/]*' : '\\d+';
        })
        .join(''),
    );
  const name = '[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}';
  // An environment value may be empty, which drops its folder: such a folder is optional.
  const folderPattern = folders.map((folder) => (folder === '[^/]*' ? '(?:[^/]+/)?' : `${folder}/`)).join('');
  return { pattern: new RegExp(`^${folderPattern}${name}$`), depth: folders.length + 1 };
}
