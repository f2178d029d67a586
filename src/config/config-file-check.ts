import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { wharfFileSchema } from './config-file-schema.ts';
import { editDistance } from './unknown-env.ts';

/** One problem of a config file: where (`hooks.scan.transport`, `endpoints[0].hooks[1]`) and what. */
export interface FileProblem {
  readonly where: string;
  readonly message: string;
}

let compiled: ValidateFunction | undefined;

/**
 * The schema's validator, compiled on first use: a server started without `--config` never loads ajv. Loaded
 * with require because ajv is CommonJS and this runs inside the synchronous validateWharfFile.
 */
function validator(): ValidateFunction {
  if (compiled === undefined) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
    compiled = ajv.compile(wharfFileSchema());
  }
  return compiled;
}

/** `/endpoints/0/hooks/1/events` -> `endpoints[0].hooks[1].events`; the document itself is `(top)`. */
function placeOf(instancePath: string): string {
  if (instancePath === '') return '(top)';
  let place = '';
  for (const part of instancePath.slice(1).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    place += /^\d+$/.test(key) ? `[${key}]` : place === '' ? key : `.${key}`;
  }
  return place;
}

/** The known key nearest a misspelt one: fewest edits, case ignored. */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (best === undefined || distance < best.distance) best = { key: candidate, distance };
  }
  // A key far from every known one is no misspelling of any: list them instead.
  return best !== undefined && best.distance <= Math.max(2, Math.floor(key.length / 3))
    ? best.key
    : undefined;
}

const typeWords: Readonly<Record<string, string>> = {
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  integer: 'a whole number',
  number: 'a number',
  null: 'empty',
};

/** What a schema pattern means, in words, by the pattern. */
const patternWords: Readonly<Record<string, string>> = {
  '^[A-Za-z0-9_.-]+$': 'a hook name may use letters, digits, ".", "_" and "-"',
  '^/?[A-Za-z0-9._~/-]*$': 'may use letters, digits and ._~-/',
  '^[A-Za-z_][A-Za-z0-9_]*$': 'is not a variable name',
};

function shown(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** One ajv error in the words of Wharf's other configuration errors; undefined for one that adds nothing. */
function problemOf(error: ErrorObject): FileProblem | undefined {
  const where = placeOf(error.instancePath);
  const schema = (error.parentSchema ?? {}) as Record<string, unknown>;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((schema.properties ?? {}) as Record<string, unknown>);
      const nearest = nearestKey(key, known);
      return {
        where,
        message: `unknown key "${key}"${nearest !== undefined ? `; did you mean "${nearest}"?` : ''} (expected ${known.join(', ')})`,
      };
    }
    case 'required':
      return { where, message: `needs "${String(params.missingProperty)}"` };
    case 'enum':
      return {
        where,
        message: `expected one of ${(params.allowedValues as unknown[]).join(', ')}, got ${shown(error.data)}`,
      };
    case 'type': {
      const types = ([] as string[]).concat(params.type as string | string[]);
      const words =
        schema.description === 'bytes'
          ? 'a whole number of bytes'
          : types.map((type) => typeWords[type] ?? type).join(' or ');
      return { where, message: `must be ${words}, got ${shown(error.data)}` };
    }
    case 'minimum':
      return { where, message: `must be a number >= ${String(params.limit)}, got ${shown(error.data)}` };
    case 'minLength':
      return { where, message: 'must be a non-empty string' };
    case 'minItems':
      return { where, message: 'must list at least one item' };
    case 'pattern': {
      const words = patternWords[String(params.pattern)] ?? `must match ${String(params.pattern)}`;
      // A key that breaks its mapping's propertyNames rule: the place is that key.
      if (error.propertyName !== undefined)
        return { where: `${where === '(top)' ? '' : `${where}.`}${error.propertyName}`, message: words };
      return { where, message: `${words}, got ${shown(error.data)}` };
    }
    case 'propertyNames':
      // The pattern error above names the key.
      return undefined;
    default:
      return { where, message: error.message ?? error.keyword };
  }
}

/**
 * Checks a parsed config file against wharf.schema.json's definitions: unknown keys (with the nearest known
 * one), types, value sets and ranges, each named by its place in the file and its bad value. Values that may be
 * a list or a comma-separated string (events, extensions, secrets, brokers, retrySchedule) are left to their
 * parsers in config-file.ts, which name the bad item.
 */
export function schemaProblems(raw: unknown): FileProblem[] {
  const validate = validator();
  if (validate(raw)) return [];
  const problems: FileProblem[] = [];
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) {
    if (error.keyword === 'anyOf' || error.schemaPath.includes('/anyOf/')) continue;
    const problem = problemOf(error);
    if (problem === undefined) continue;
    const line = `${problem.where}: ${problem.message}`;
    if (seen.has(line)) continue;
    seen.add(line);
    problems.push(problem);
  }
  return problems;
}
