import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateWharfFile } from '../../src/config/config-file.ts';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/option-table.ts';
import { retryScheduleOf } from '../../src/hooks/delivery/retry-policy.ts';

/** Validates a config file whose hooks are bound on /files to the given events, with the flags' settings. */
function wharfFile(
  hooks: Record<string, unknown>,
  events: Record<string, readonly string[]>,
  args: readonly string[] = [],
) {
  const config = buildConfig(parseCommandLine(args).options, {});
  const raw = {
    hooks,
    endpoints: [
      { path: '/files', hooks: Object.entries(events).map(([hook, on]) => ({ hook, events: on })) },
    ],
  };
  return validateWharfFile(raw, '/etc/wharf/wharf.yaml', '/files', config.hooks);
}

/** The problems a config file is refused with. */
function problemsOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('the config file was accepted');
}

const url = 'http://127.0.0.1:9/hooks';

test('retryScheduleOf reads a list or a comma string of durations; [] and "" mean no retry', () => {
  assert.deepEqual(retryScheduleOf(['100ms', '1s', '2m']), [100, 1000, 120_000]);
  assert.deepEqual(retryScheduleOf('100ms, 1s,1h'), [100, 1000, 3_600_000]);
  assert.deepEqual(retryScheduleOf([5, '1.5s']), [5000, 1500]);
  assert.deepEqual(retryScheduleOf([]), []);
  assert.deepEqual(retryScheduleOf(''), []);
  assert.throws(() => retryScheduleOf(['soon']), /"soon" is not a duration/);
  assert.throws(() => retryScheduleOf([true]), /true is not a duration/);
  assert.throws(() => retryScheduleOf({ first: '1s' }), /must be a list of durations/);
});

test('an http hook keeps its own retrySchedule; one without has none (the flag applies)', () => {
  const file = wharfFile(
    {
      quick: { transport: 'http', url, retrySchedule: ['100ms', '100ms'] },
      never: { transport: 'http', url, retrySchedule: [] },
      comma: { transport: 'http', url, retrySchedule: '1s,2m' },
      plain: { transport: 'http', url },
    },
    { quick: ['post-finish'], never: ['post-finish'], comma: ['post-create'], plain: ['post-finish'] },
  );
  const schedules = Object.fromEntries(file.hooks.map((hook) => [hook.name, hook.retrySchedule]));
  assert.deepEqual(schedules, { quick: [100, 100], never: [], comma: [1000, 120_000], plain: undefined });
});

test('a bad retrySchedule is refused naming the hook', () => {
  const message = problemsOf(() =>
    wharfFile(
      { notify: { transport: 'http', url, retrySchedule: ['1s', 'later'] } },
      { notify: ['post-finish'] },
    ),
  );
  assert.match(message, /hooks\.notify\.retrySchedule: "later" is not a duration/);
});

test('retrySchedule is an http setting: file and broker hooks refuse it', () => {
  const message = problemsOf(() =>
    wharfFile(
      {
        audit: { transport: 'file', command: './audit.sh', retrySchedule: ['1s'] },
        stream: { transport: 'kafka', brokers: ['k1:9092'], retrySchedule: ['1s'] },
      },
      { audit: ['post-finish'], stream: ['post-finish'] },
    ),
  );
  assert.match(message, /hooks\.audit\.retrySchedule: is a setting of http hooks only/);
  assert.match(message, /hooks\.stream\.retrySchedule: broker hooks are retried by the outbox/);
});

test('retries on an http hook bound to post-* events only is refused: its post deliveries follow retrySchedule', () => {
  const message = problemsOf(() =>
    wharfFile({ notify: { transport: 'http', url, retries: 2 } }, { notify: ['post-finish', 'post-create'] }),
  );
  assert.match(message, /hooks\.notify\.retries: retries are immediate retries of blocking \(pre-\*\) runs/);
  assert.match(message, /set retrySchedule/);
});

test('retries and retrySchedule together on an http hook bound to pre-* and post-* events: each for its kind', () => {
  const file = wharfFile(
    { quota: { transport: 'http', url, retries: 1, retrySchedule: ['1s'] } },
    { quota: ['pre-create', 'post-finish'] },
  );
  assert.equal(file.hooks[0]?.retries, 1);
  assert.deepEqual(file.hooks[0]?.retrySchedule, [1000]);
});

test('retrySchedule on an http hook bound to pre-* events only is refused (nothing it would retry)', () => {
  const message = problemsOf(() =>
    wharfFile({ quota: { transport: 'http', url, retrySchedule: ['1s'] } }, { quota: ['pre-create'] }),
  );
  assert.match(message, /hooks\.quota\.retrySchedule: applies to post-\* deliveries/);
});

test('with --hooks-http-outbox false, retries covers post runs and retrySchedule is refused', () => {
  const file = wharfFile({ notify: { transport: 'http', url, retries: 2 } }, { notify: ['post-finish'] }, [
    '--hooks-http-outbox=false',
  ]);
  assert.equal(file.hooks[0]?.retries, 2);
  const message = problemsOf(() =>
    wharfFile({ notify: { transport: 'http', url, retrySchedule: ['1s'] } }, { notify: ['post-finish'] }, [
      '--hooks-http-outbox=false',
    ]),
  );
  assert.match(message, /hooks\.notify\.retrySchedule: needs the HTTP outbox/);
});

test('--hooks-dead-letter-limit bounds the dead letters (default 10000, at least 1)', () => {
  assert.equal(buildConfig(parseCommandLine([]).options, {}).hooks.deadLetterLimit, 10_000);
  const config = buildConfig(parseCommandLine(['--hooks-dead-letter-limit', '25']).options, {});
  assert.equal(config.hooks.deadLetterLimit, 25);
  assert.throws(() => buildConfig(parseCommandLine(['--hooks-dead-letter-limit', '0']).options, {}));
});
