import path from 'node:path';
import { loadWharfFile } from '../config/config-file.ts';
import type { Config } from '../config/load.ts';
import { createHookEngine } from '../hooks/compose-hooks.ts';
import type { HookLogger } from '../hooks/engine.ts';
import { uploadEventNames } from '../hooks/events.ts';
import { loadHookModules } from '../hooks/modules/loader.ts';
import type { ModuleUploads } from '../hooks/modules/types.ts';

const quiet: HookLogger = { info() {}, warn() {}, error() {}, debug() {} };

function unavailable(): never {
  throw new Error('uploads are not available during `wharf hooks check`');
}

const noUploads: ModuleUploads = {
  get: unavailable,
  list: unavailable,
  delete: unavailable,
  read: unavailable,
};

/**
 * `wharf hooks check`: loads every hook module (running their `register`, not their init handlers) and lists
 * what each event reaches, without serving. A broken module throws, naming its path.
 */
export async function checkHooks(config: Config): Promise<string> {
  const folder = path.resolve(config.hooksModulesDir);
  const modules = await loadHookModules(
    folder,
    () => ({ logger: quiet, config, env: config.env, uploads: noUploads, args: {} }),
    quiet,
  );
  const wharfFile =
    config.configFile === undefined
      ? undefined
      : await loadWharfFile(config.configFile, config.basePath, config.hooks);
  const engine = createHookEngine(config.hooks, quiet, {
    modules,
    ...(wharfFile !== undefined ? { pipeline: wharfFile } : {}),
  });
  const lines = [`hook modules: ${folder} (${modules.modules.length} loaded)`];
  for (const file of modules.modules) lines.push(`  ${file}`);
  lines.push('registered:');
  for (const line of modules.describe()) lines.push(`  ${line}`);
  lines.push('targets per event:');
  for (const event of uploadEventNames) {
    const targets = engine.targetsFor(event);
    lines.push(`  ${event}: ${targets.length === 0 ? '(none)' : targets.join(', ')}`);
  }
  await engine.close();
  return `${lines.join('\n')}\n`;
}
