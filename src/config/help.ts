import type { OptionSpec } from './option-table.ts';
import { optionTable } from './options.ts';
import { renderTusdFlagsDoc } from './options-tusd.ts';

function valueHint(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'boolean':
      return '';
    case 'integer':
      return ' <n>';
    case 'size':
      return ' <bytes>';
    case 'list':
      return ' <a,b,...>';
    case 'enum':
      return ` <${spec.choices?.filter((choice) => choice === choice.toLowerCase() || !spec.choices?.includes(choice.toLowerCase())).join('|')}>`;
    case 'string':
      return ' <text>';
  }
}

function groups(): Map<string, OptionSpec[]> {
  const byGroup = new Map<string, OptionSpec[]>();
  for (const spec of optionTable) {
    const members = byGroup.get(spec.group) ?? [];
    members.push(spec);
    byGroup.set(spec.group, members);
  }
  return byGroup;
}

/** The text `wharf --help` prints. */
export function renderHelp(): string {
  const lines = [
    'wharf: resumable-upload (tus 1.0) server with hooks',
    '',
    'Usage: wharf [options]',
    '       wharf hooks check [options]   load the hook modules and list every hook, without serving',
    '',
    'Every option can also be set by environment variable (shown in brackets).',
  ];
  for (const [group, specs] of groups()) {
    lines.push('', `${group}:`);
    for (const spec of specs) {
      const short = spec.short ? `-${spec.short}, ` : '';
      const fallback = spec.default !== undefined && spec.default !== '' ? ` (default: ${spec.default})` : '';
      lines.push(`  ${short}--${spec.flag}${valueHint(spec)}`);
      lines.push(`      ${spec.help}${fallback} [${spec.env.join(', ')}]`);
    }
  }
  lines.push('', '  -h, --help     print this help', '  -V, --version  print the version', '');
  return lines.join('\n');
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

/** `docs/configuration.md`, generated from the option table (`npm run docs`); a test fails when stale. */
export function renderConfigurationDoc(): string {
  const lines = [
    '# Configuration',
    '',
    '<!-- Generated from src/config/options.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'Every option is a command-line flag and an environment variable. The command line wins over the',
    "environment, which wins over the default. `WHARF_*` is the primary variable; rustus's `RUSTUS_*` name is",
    'read too, so an existing rustus deployment keeps working. Booleans accept `--flag`, `--flag=true|false`,',
    'and `true/false/1/0/yes/no` in the environment. Sizes accept plain bytes or a unit (`512k`, `8MiB`, `2G`).',
    "rustus's underscore spellings (`--data_dir`) are accepted as well.",
    '',
    'A flag that takes a value takes the next argument, unless that looks like a flag (`--name`, `-x`):',
    '`--data-dir --no-access` stops with `--data-dir needs a value` instead of making a folder named `--no-access`.',
    'Write `--flag=value` for a value that starts with `-` (a negative number such as `-1` is taken as it is).',
    'A value Wharf cannot use stops it with exit code 2 and one line naming the flag or variable as given and',
    'the value (`wharf: --port: expected an integer from 0 to 65535, got "70000"`).',
    'A `WHARF_*` or `RUSTUS_*` variable that is not an option is ignored with a warning in the log at start naming',
    'the nearest known variable (`RUSTUS_PORT` → `RUSTUS_SERVER_PORT`); the variables Wharf sets for hooks',
    "(`WHARF_HOOK_NAME`, `WHARF_UPLOAD_ID`, …) and the test suite's `WHARF_TEST_*` are not warned about.",
  ];
  for (const [group, specs] of groups()) {
    lines.push(
      '',
      `## ${group}`,
      '',
      '| Flag | Environment | Default | Description |',
      '| --- | --- | --- | --- |',
    );
    for (const spec of specs) {
      const flagText = `\`--${spec.flag}\`${spec.short ? ` (\`-${spec.short}\`)` : ''}`;
      const envText = spec.env.map((name) => `\`${name}\``).join(', ');
      const fallback = spec.default === undefined || spec.default === '' ? '(unset)' : `\`${spec.default}\``;
      const choices =
        spec.kind === 'enum' || spec.choices
          ? ` Values: ${spec.choices
              ?.filter((c) => c === c.toLowerCase() || !spec.choices?.includes(c.toLowerCase()))
              .map((c) => `\`${c}\``)
              .join(', ')}.`
          : '';
      lines.push(`| ${flagText} | ${envText} | ${cell(fallback)} | ${cell(spec.help + choices)} |`);
    }
  }
  lines.push(...renderTusdFlagsDoc());
  lines.push('');
  return lines.join('\n');
}
