/**
 * The one declarative table every option of Wharf is read from. The CLI parser, environment reading,
 * validation, `--help` and `docs/configuration.md` are all generated from it, so an option is declared
 * exactly once.
 */

export type OptionKind = 'string' | 'integer' | 'boolean' | 'list' | 'enum' | 'size';

export interface OptionSpec {
  /** Key in the parsed {@link RawOptions} map (camelCase). */
  readonly key: string;
  /** Long flag without the leading dashes, e.g. `data-dir`. */
  readonly flag: string;
  /** Extra accepted flag spellings (rustus's underscore forms, short aliases without dashes). */
  readonly aliases?: readonly string[];
  /** One-letter short flag, as rustus has for a few options. */
  readonly short?: string;
  /** Environment variables read, in priority order; the first is Wharf's own name. */
  readonly env: readonly string[];
  readonly kind: OptionKind;
  /** Allowed values for `enum` and for each element of an enum-valued `list`. */
  readonly choices?: readonly string[];
  /** The default, written as a user would type it on the command line; undefined means unset. */
  readonly default?: string;
  readonly help: string;
  readonly group: string;
  /** Lowest accepted value for integer and size options. */
  readonly min?: number;
  /** Highest accepted value for integer options (e.g. 65535 for a port). */
  readonly max?: number;
}

/** Values after parsing, before they are shaped into the typed Config. */
export type OptionValue = string | number | boolean | readonly string[] | undefined;
export type RawOptions = Readonly<Record<string, OptionValue>>;

export class ConfigError extends Error {
  readonly code = 'ERR_INVALID_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * How an error names where a value came from: the flag or variable as the user gave it (`--data_dir`, `-p`,
 * `RUSTUS_SERVER_PORT`), with the option's flag when that is another name; `default` for the table's default.
 */
function originOf(spec: OptionSpec, source: string): string {
  const flag = `--${spec.flag}`;
  if (source === 'default') return `${flag} (default)`;
  return source === flag ? flag : `${source} (${flag})`;
}

/**
 * Turns the text a user typed into the option's typed value. `source` is the flag or environment variable as
 * the user gave it, or `default`; errors name it and the value.
 */
export function coerceOption(spec: OptionSpec, text: string, source: string): OptionValue {
  const where = originOf(spec, source);
  switch (spec.kind) {
    case 'string':
      return text;
    case 'boolean': {
      const lowered = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on', ''].includes(lowered)) return true;
      if (['false', '0', 'no', 'off'].includes(lowered)) return false;
      throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(text)}`);
    }
    case 'integer': {
      if (!/^-?\d+$/.test(text.trim())) {
        throw new ConfigError(`${where}: expected an integer, got ${JSON.stringify(text)}`);
      }
      const value = Number(text.trim());
      const tooHigh = spec.max !== undefined && value > spec.max;
      if (!Number.isSafeInteger(value) || (spec.min !== undefined && value < spec.min) || tooHigh) {
        const range = spec.max !== undefined ? `from ${spec.min ?? 0} to ${spec.max}` : `>= ${spec.min ?? 0}`;
        throw new ConfigError(`${where}: expected an integer ${range}, got ${JSON.stringify(text)}`);
      }
      return value;
    }
    case 'size': {
      const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
      const multiplier = match ? sizeUnits[(match[2] ?? '').toLowerCase()] : undefined;
      if (!match || multiplier === undefined) {
        throw new ConfigError(
          `${where}: expected a size such as 1048576, 512k or 2GiB, got ${JSON.stringify(text)}`,
        );
      }
      const value = Number(match[1]) * multiplier;
      if (!Number.isSafeInteger(value) || (spec.min !== undefined && value < spec.min)) {
        throw new ConfigError(`${where}: size out of range, got ${JSON.stringify(text)}`);
      }
      return value;
    }
    case 'enum': {
      if (!spec.choices?.includes(text)) {
        throw new ConfigError(
          `${where}: expected one of ${spec.choices?.join(', ')}, got ${JSON.stringify(text)}`,
        );
      }
      return text;
    }
    case 'list': {
      const items = text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0);
      if (spec.choices) {
        for (const item of items) {
          if (!spec.choices.includes(item)) {
            throw new ConfigError(
              `${where}: unknown value ${JSON.stringify(item)}; allowed: ${spec.choices.join(', ')}`,
            );
          }
        }
      }
      return items;
    }
  }
}
