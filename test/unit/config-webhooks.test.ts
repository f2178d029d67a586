import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { validateWharfFile } from '../../src/config/config-file.ts';
import { buildConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/option-table.ts';
import { createLogger } from '../../src/logger.ts';

const secret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const older = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;

test('--hooks-http-secret: a list, newest first; the CloudEvents settings default to structured', () => {
  const config = buildConfig({ hooksHttpSecret: [secret, older] }, {});
  assert.deepEqual(config.hooks.httpSecrets, [secret, older]);
  assert.deepEqual(config.hooks.cloudEvents, { mode: 'structured' });
  const fromEnv = buildConfig(
    {},
    {
      WHARF_HOOKS_HTTP_SECRET: `${secret},${older}`,
      WHARF_HOOKS_CLOUDEVENTS_MODE: 'binary',
      WHARF_HOOKS_CLOUDEVENTS_SOURCE: 'urn:wharf:uploads',
    },
  );
  assert.deepEqual(fromEnv.hooks.httpSecrets, [secret, older]);
  assert.deepEqual(fromEnv.hooks.cloudEvents, { mode: 'binary', source: 'urn:wharf:uploads' });
  assert.equal(buildConfig({}, {}).hooks.httpSecrets, undefined);
});

test('a bad secret is a ConfigError naming its position, not its value', () => {
  const bad = 'whsec_dG9vIHNob3J0';
  assert.throws(
    () => buildConfig({ hooksHttpSecret: [secret, bad] }, {}),
    (error: unknown) =>
      error instanceof ConfigError &&
      /^--hooks-http-secret \(secret 2 of 2\): /.test(error.message) &&
      !error.message.includes('dG9vIHNob3J0'),
  );
});

test('config file: secret or secrets on http hooks only, validated', () => {
  const file = validateWharfFile(
    {
      hooks: {
        one: { transport: 'http', url: 'http://127.0.0.1:1/hooks', secret },
        two: { transport: 'http', url: 'http://127.0.0.1:1/hooks', secrets: `${secret}, ${older}` },
        three: { transport: 'http', url: 'http://127.0.0.1:1/hooks', secrets: [secret] },
      },
    },
    'wharf.yaml',
    '/files',
  );
  assert.deepEqual(
    file.hooks.map((hook) => hook.secrets),
    [[secret], [secret, older], [secret]],
  );
  assert.throws(
    () =>
      validateWharfFile(
        {
          hooks: {
            a: { transport: 'http', url: 'http://h/', secret: 'nope' },
            b: { transport: 'file', command: './x', secret },
            c: { transport: 'http', url: 'http://h/', secret, secrets: [secret] },
            d: { transport: 'http', url: 'http://h/', secrets: [secret, 42] },
          },
        },
        'wharf.yaml',
        '/files',
      ),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /hooks\.a: secret: a webhook secret must start with "whsec_"/);
      assert.match(error.message, /hooks\.b: "secret" and "secrets" sign http hooks only/);
      assert.match(error.message, /hooks\.c: give "secret" or "secrets", not both/);
      assert.match(error.message, /hooks\.d\.secrets: must list whsec_ secrets/);
      assert.ok(!error.message.includes(secret.slice(6)));
      return true;
    },
  );
});

test('the logger redacts secrets wherever a config or hook declaration would carry them', async () => {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out += chunk.toString();
      callback();
    },
  });
  const logger = createLogger('info', stream as unknown as Parameters<typeof createLogger>[1]);
  logger.info(
    {
      config: { hooks: { httpSecrets: [secret] } },
      hooks: { httpSecrets: [secret] },
      hook: { secrets: [secret] },
    },
    'startup',
  );
  logger.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(out, /startup/);
  assert.ok(!out.includes(secret.slice(6)), out);
});

test('config file: an http hook URL whose user name or password does not percent-decode is refused, named', () => {
  assert.throws(
    () =>
      validateWharfFile(
        { hooks: { crm: { transport: 'http', url: 'http://%zz@127.0.0.1:1/' } } },
        'wharf.yaml',
        '/files',
      ),
    (error: unknown) =>
      error instanceof ConfigError &&
      /hooks\.crm\.url: its user name or password is not valid percent-encoding/.test(error.message),
  );
  // Positive control: encoded as it should be, it is taken.
  const file = validateWharfFile(
    { hooks: { crm: { transport: 'http', url: 'http://a%20b:p%40ss@127.0.0.1:1/' } } },
    'wharf.yaml',
    '/files',
  );
  assert.equal(file.hooks.length, 1);
});
