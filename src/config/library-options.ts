import {
  ConfigError,
  coerceOption,
  type OptionSpec,
  type OptionValue,
  type RawOptions,
} from './option-table.ts';
import type { WharfOptions } from './option-types.ts';
import { optionTable } from './options.ts';
import { editDistance } from './unknown-env.ts';

const byKey = new Map(optionTable.map((spec) => [spec.key, spec]));

/** The known key nearest a misspelt one: fewest edits, case ignored (`maxFileSzie` -> `maxFileSize`). */
export function nearestOptionKey(key: string): string {
  let best: { key: string; distance: number } | undefined;
  for (const known of byKey.keys()) {
    const distance = editDistance(key.toLowerCase(), known.toLowerCase());
    if (best === undefined || distance < best.distance) best = { key: known, distance };
  }
  return best?.key ?? '';
}

/** `options.maxFileSize`: what an error names, followed by the option's flag as the CLI's messages do. */
const sourceOf = (key: string): string => `options.${key}`;

/**
 * Checks one value given in code and turns it into what the CLI would have parsed: text goes through the CLI's
 * own parser (so '1k' is 1024 and 'lots' is refused with the CLI's message); a number, boolean or list is held
 * to the same rules.
 */
function checkValue(spec: OptionSpec, value: unknown): OptionValue {
  const source = sourceOf(spec.key);
  if (value === undefined) return undefined;
  if (typeof value === 'string') return coerceOption(spec, value, source);
  if (typeof value === 'number' && (spec.kind === 'integer' || spec.kind === 'size')) {
    // Through the parser too, so the range checks and their messages are the CLI's (1.5 is not an integer).
    return coerceOption(spec, String(value), source);
  }
  if (typeof value === 'boolean' && spec.kind === 'boolean') return value;
  if (Array.isArray(value) && spec.kind === 'list' && value.every((item) => typeof item === 'string')) {
    return coerceOption(spec, value.join(','), source);
  }
  const expected: Record<OptionSpec['kind'], string> = {
    string: 'a string',
    integer: 'an integer',
    size: 'a size (a number of bytes, or text such as 512k)',
    boolean: 'true or false',
    enum: `one of ${spec.choices?.join(', ')}`,
    list: 'a list of strings (or one comma-separated string)',
  };
  throw new ConfigError(
    `${source} (--${spec.flag}): expected ${expected[spec.kind]}, got ${JSON.stringify(value)}`,
  );
}

/**
 * Options given in code (`createTusHandler({ options })`), checked as the CLI checks flags: an unknown key is
 * refused with the nearest known one, and each value is parsed or refused with the CLI's message.
 */
export function checkLibraryOptions(options: WharfOptions | Readonly<Record<string, unknown>>): RawOptions {
  const checked: Record<string, OptionValue> = {};
  for (const [key, value] of Object.entries(options)) {
    const spec = byKey.get(key);
    if (!spec) {
      throw new ConfigError(
        `unknown option ${sourceOf(key)}; did you mean ${nearestOptionKey(key)}? (see --help)`,
      );
    }
    const parsed = checkValue(spec, value);
    if (parsed !== undefined) checked[key] = parsed;
  }
  return checked;
}
