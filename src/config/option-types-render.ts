import type { OptionSpec } from './option-table.ts';
import { optionTable } from './options.ts';

/** The TypeScript type a value of `spec` takes in code: what the CLI parses, or the text it parses from. */
function typeOf(spec: OptionSpec): string {
  const choices = spec.choices?.map((choice) => `'${choice}'`).join(' | ');
  switch (spec.kind) {
    case 'string':
      return 'string';
    case 'integer':
      return 'number';
    case 'size':
      return 'number | string';
    case 'boolean':
      return 'boolean';
    case 'enum':
      return choices ?? 'string';
    case 'list':
      return choices ? `readonly (${choices})[] | string` : 'readonly string[] | string';
  }
}

/**
 * src/config/option-types.ts: the options `createTusHandler()` and `createFetchHandler()` take, one property per
 * row of the option table, with its help and default. Written by `npm run docs`; a test fails when it is stale.
 */
export function renderOptionTypes(): string {
  const lines = [
    '// Generated from the option table by `npm run docs` (scripts/gen-docs.ts); do not edit.',
    '',
    '/**',
    ' * Options of `createTusHandler()` and `createFetchHandler()`: every flag of the `wharf` command by its camelCase',
    ' * name, checked at run time as the CLI checks flags (sizes also as text such as `512k`, lists also as one',
    ' * comma-separated string).',
    ' */',
    'export interface WharfOptions {',
  ];
  for (const spec of optionTable) {
    const help = spec.help.replace(/\*\//g, '* /');
    const defaultText = spec.default !== undefined ? ` Default: \`${spec.default}\`.` : '';
    lines.push(`  /** \`--${spec.flag}\`: ${help}${defaultText} */`);
    lines.push(`  readonly ${spec.key}?: ${typeOf(spec)};`);
  }
  lines.push('}', '');
  return lines.join('\n');
}
