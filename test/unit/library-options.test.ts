import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { renderOptionTypes } from '../../src/config/option-types-render.ts';
import { ConfigError, createFetchHandler, createTusHandler, type WharfOptions } from '../../src/index.ts';

/** The CLI's message for a flag, as `wharf` prints it. */
function cliMessage(args: readonly string[]): string {
  try {
    buildConfig(parseCommandLine(args).options, {});
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`the CLI accepted ${args.join(' ')}`);
}

describe('createTusHandler options, typed from the option table and checked as the CLI checks flags', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-options-'));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });
  const handler = (options: WharfOptions) => {
    const tus = createTusHandler({ options: { dataDir, infoDir: dataDir, logLevel: 'error', ...options } });
    void tus.close();
    return tus;
  };

  test("a size as text is read as the CLI reads it: '1k' is 1024 bytes, as --max-file-size 1k", () => {
    assert.equal(buildConfig(parseCommandLine(['--max-file-size', '1k']).options, {}).maxFileSize, 1024);
    assert.equal(handler({ maxFileSize: '1k' }).config.maxFileSize, 1024);
    assert.equal(handler({ maxFileSize: 2048 }).config.maxFileSize, 2048);
    assert.equal(
      handler({ tusExtensions: 'creation,termination' }).config.extensions.has('termination'),
      true,
    );
  });

  test('a misspelt key throws, naming it and the nearest known one', () => {
    const misspelt = { maxFileSzie: 10 } as unknown as WharfOptions;
    assert.throws(
      () => handler(misspelt),
      (error: unknown) =>
        error instanceof ConfigError &&
        /unknown option options\.maxFileSzie; did you mean maxFileSize\?/.test(error.message),
    );
    // createFetchHandler takes the same options and checks them the same way.
    assert.throws(() => createFetchHandler({ options: misspelt }), /did you mean maxFileSize\?/);
  });

  test("a bad value is refused with the CLI's message for the flag", () => {
    const cases: [WharfOptions, string[]][] = [
      [{ maxFileSize: '1x' }, ['--max-file-size', '1x']],
      [{ port: 70000 }, ['--port', '70000']],
      [{ storage: 'ftp' } as unknown as WharfOptions, ['--storage', 'ftp']],
      [{ port: 1.5 }, ['--port', '1.5']],
    ];
    for (const [options, args] of cases) {
      const cli = cliMessage(args);
      const flag = args[0] ?? '';
      assert.ok(cli.startsWith(`${flag}: `), cli);
      assert.throws(
        () => handler(options),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message === `options.${Object.keys(options)[0]} (${flag})${cli.slice(flag.length)}`,
        cli,
      );
    }
    // A value of the wrong type for its option is refused too (it was read as unset).
    assert.throws(
      () => handler({ maxFileSize: true } as unknown as WharfOptions),
      /options\.maxFileSize \(--max-file-size\): expected a size/,
    );
  });

  test('the type names every option: a misspelt key does not compile', () => {
    // @ts-expect-error maxFileSzie is not an option (tsc, which the lint step runs, fails if this compiles)
    const options: WharfOptions = { maxFileSzie: 1 };
    assert.ok(options);
  });

  test('src/config/option-types.ts matches the option table (run `npm run docs`)', async () => {
    const committed = await readFile(new URL('../../src/config/option-types.ts', import.meta.url), 'utf8');
    assert.equal(committed, renderOptionTypes());
  });
});
