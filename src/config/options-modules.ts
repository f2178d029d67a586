import type { OptionSpec } from './option-table.ts';

/** Options of programmable hooks (hook modules). Wharf's own: rustus has no equivalent. */
export const modulesOptions: readonly OptionSpec[] = [
  {
    key: 'hooksModulesDir',
    flag: 'hooks-modules-dir',
    env: ['WHARF_HOOKS_MODULES_DIR'],
    kind: 'string',
    default: './extensions/hooks',
    help: 'Folder of hook modules: each subfolder’s index.js, index.mjs or index.ts registers filters, actions, init handlers and schedules. A missing folder means no modules.',
    group: 'Hooks',
  },
  {
    key: 'config',
    flag: 'config',
    env: ['WHARF_CONFIG'],
    kind: 'string',
    help: 'YAML or JSON file declaring named hooks (critical, runOn, args), endpoints and their hook bindings with `when` conditions (see docs/hooks.md).',
    group: 'Hooks',
  },
];
