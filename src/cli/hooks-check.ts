import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { loadWharfFile, type WharfFile } from '../config/config-file.ts';
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
  if (wharfFile !== undefined) {
    lines.push(...describeNamedHooks(wharfFile));
    const problems = await commandProblems(wharfFile);
    if (problems.length > 0) {
      throw new Error(
        `${lines.join('\n')}\n${wharfFile.file} has hooks that cannot run:\n  ${problems.join('\n  ')}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Each named hook's settings and bindings, as `wharf hooks check` prints them. */
function describeNamedHooks(file: WharfFile): string[] {
  const lines = ['named hooks:'];
  for (const hook of file.hooks) {
    const bindings = file.bindings.filter((binding) => binding.hook === hook.name);
    const blocking = bindings.some((binding) => binding.events.some((event) => event.startsWith('pre-')));
    const critical = hook.continueOnFailure === true ? false : (hook.critical ?? blocking);
    lines.push(
      `  ${hook.name}: transport=${hook.transport}${hook.shell === true ? ' shell=true' : ''} critical=${critical} ` +
        `runOn=${hook.runOn} continueOnFailure=${hook.continueOnFailure === true} ` +
        `timeout=${hook.timeoutMs !== undefined ? `${hook.timeoutMs / 1000}s` : 'default'} args=${JSON.stringify(hook.args)}`,
    );
    for (const binding of bindings) {
      lines.push(
        `    ${binding.endpoint} ${binding.events.join(',')} args=${JSON.stringify(binding.args)}` +
          ` when=${binding.when === undefined ? '(always)' : JSON.stringify(binding.when)}` +
          (binding.priority === undefined ? '' : ` priority=${binding.priority}`),
      );
    }
  }
  for (const endpoint of file.endpoints) {
    if (endpoint.globalHooks === false)
      lines.push(`  endpoint ${endpoint.path}: globalHooks=false (runs only the hooks bound to it)`);
  }
  return lines;
}

/** File hooks whose command is missing or not executable (a shell line is run by /bin/sh: not checked). */
async function commandProblems(file: WharfFile): Promise<string[]> {
  const problems: string[] = [];
  for (const hook of file.hooks) {
    if (hook.transport !== 'file' || hook.shell === true || hook.command === undefined) continue;
    try {
      await access(hook.command, constants.X_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      problems.push(`hooks.${hook.name}.command: ${hook.command} is missing or not executable (${code})`);
    }
  }
  return problems;
}
