import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { validateWharfFile } from '../../src/config/config-file.ts';
import { renderWharfFileSchema, wharfFileSchema } from '../../src/config/config-file-schema.ts';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';

const schemaFile = new URL('../../wharf.schema.json', import.meta.url);
const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(wharfFileSchema());
const flags = buildConfig(parseCommandLine([]).options, {});
/** What wharf says of the file at start-up: undefined when it starts, else the problems. */
function wharfSays(yamlText: string): string | undefined {
  try {
    validateWharfFile(parse(yamlText), '/etc/wharf/wharf.yaml', '/files', flags.hooks);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const valid = `# yaml-language-server: $schema=./node_modules/wharf-uploads/wharf.schema.json
hooks:
  scan:
    transport: http
    url: http://127.0.0.1:9/scan
    timeout: 5
    retries: 1
  notify:
    transport: file
    command: ./hooks/notify.sh
    runOn: always
endpoints:
  - path: /images
    maxFileSize: 1048576
    extensions: [creation, termination]
    hooks:
      - { hook: scan, events: [pre-create] }
      - { hook: notify, events: [post-finish], when: { size: '>= 10' } }
`;

test('wharf.schema.json is the schema generated from the config file checks (run `npm run docs`)', async () => {
  assert.equal(await readFile(schemaFile, 'utf8'), renderWharfFileSchema());
});

test('a file wharf starts with satisfies the schema; what the schema refuses, wharf refuses too', () => {
  assert.equal(wharfSays(valid), undefined);
  assert.equal(validate(parse(valid)), true, JSON.stringify(validate.errors));
  for (const [wrong, from, to] of [
    ['a misspelt hook key', 'transport: file', 'trasnport: file'],
    ['a runOn outside its values', 'runOn: always', 'runOn: sometimes'],
    ['an unknown event', 'events: [post-finish]', 'events: [post-finished]'],
    ['a misspelt endpoint key', 'maxFileSize: 1048576', 'maxFileSzie: 1048576'],
    ['a size that is not a number', 'maxFileSize: 1048576', 'maxFileSize: big'],
  ] as const) {
    const file = valid.replace(from, to);
    assert.notEqual(file, valid);
    assert.equal(validate(parse(file)), false, `the schema accepts ${wrong}`);
    assert.notEqual(wharfSays(file), undefined, `wharf accepts ${wrong}`);
  }
});

test('cross-references a schema cannot express are still checked by wharf', () => {
  const undeclared = valid.replace('{ hook: scan,', '{ hook: scanner,');
  assert.equal(validate(parse(undeclared)), true);
  assert.match(wharfSays(undeclared) ?? '', /names no declared hook/);
});

test('wharf checks the file through the schema: each problem names its place, the bad value, the nearest key', () => {
  const said = wharfSays(
    valid
      .replace('transport: file', 'trasnport: file')
      .replace('runOn: always', 'runOn: sometimes')
      .replace('timeout: 5', 'timeout: 0')
      .replace('maxFileSize: 1048576', 'maxFileSize: big')
      .replace('retries: 1', 'retries: 1\n    env: { 1BAD: x }'),
  );
  for (const expected of [
    'hooks.notify: unknown key "trasnport"; did you mean "transport"? (expected transport, command,',
    'hooks.notify: needs "transport"',
    'hooks.notify.runOn: expected one of success, failure, always, got "sometimes"',
    'hooks.scan.timeout: must be a number >= 0.001, got 0',
    'hooks.scan.env.1BAD: is not a variable name',
    'endpoints[0].maxFileSize: must be a whole number of bytes, got "big"',
  ]) {
    assert.ok(said?.includes(expected), `missing "${expected}" in: ${said}`);
  }
  // A key unlike every known one is listed with the known keys, not "corrected" into one of them.
  const far = wharfSays(valid.replace('    runOn: always', '    zzzzzzzzzz: 1'));
  assert.match(far ?? '', /hooks\.notify: unknown key "zzzzzzzzzz" \(expected transport, /);
  assert.doesNotMatch(far ?? '', /did you mean/);
});

test('what wharf takes in its other spellings, the schema takes too', () => {
  const other = valid
    .replace('events: [post-finish]', "events: 'post-*'")
    .replace('events: [pre-create]', 'events: [pre-*]')
    .replace('runOn: always', 'runOn: always\n    env: { RETRIES: 3, VERBOSE: true }');
  assert.notEqual(other, valid);
  assert.equal(wharfSays(other), undefined);
  assert.equal(validate(parse(other)), true, JSON.stringify(validate.errors));
  const empty = 'hooks: {}\nendpoints:\n';
  assert.equal(wharfSays(empty), undefined);
  assert.equal(validate(parse(empty)), true, JSON.stringify(validate.errors));
  assert.match(wharfSays('endpoints: 5\n') ?? '', /endpoints: must be a list or empty, got 5/);
});
