import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HookAnswerError, mergeAnswers, parseHookAnswer } from '../../../src/hooks/chain/answers.ts';

test('empty, non-JSON and JSON without answer fields mean "go on"', () => {
  assert.equal(parseHookAnswer(''), undefined);
  assert.equal(parseHookAnswer('ok\n'), undefined);
  assert.equal(parseHookAnswer('{not json'), undefined);
  assert.equal(parseHookAnswer('{"status":"fine"}'), undefined);
  assert.equal(parseHookAnswer('[1,2]'), undefined);
});

test('a reject answer carries its response', () => {
  const answer = parseHookAnswer(
    '{"reject":true,"httpResponse":{"status":403,"body":"no","headers":{"X-Why":"quota"}}}',
  );
  assert.deepEqual(answer, {
    reject: true,
    httpResponse: { status: 403, body: 'no', headers: { 'X-Why': 'quota' } },
  });
});

test('unusable fields are an error, not silently dropped', () => {
  assert.throws(() => parseHookAnswer('{"reject":"yes"}'), HookAnswerError);
  assert.throws(() => parseHookAnswer('{"httpResponse":{"status":99}}'), HookAnswerError);
  assert.throws(() => parseHookAnswer('{"httpResponse":{"headers":{"Bad Name":"x"}}}'), HookAnswerError);
  assert.throws(() => parseHookAnswer('{"changeUpload":{"metadata":{"a":1}}}'), HookAnswerError);
  assert.throws(() => parseHookAnswer('{"changeUpload":{"metadata":{"a b":"x"}}}'), HookAnswerError);
});

test('answers of several hooks merge in order, later fields winning', () => {
  const first = parseHookAnswer(
    '{"changeUpload":{"id":"a","metadata":{"x":"1"}},"httpResponse":{"headers":{"A":"1"}}}',
  );
  const second = parseHookAnswer('{"changeUpload":{"id":"b"},"httpResponse":{"headers":{"B":"2"}}}');
  assert.ok(first && second);
  assert.deepEqual(mergeAnswers(mergeAnswers(undefined, first), second), {
    changeUpload: { id: 'b', metadata: { x: '1' } },
    httpResponse: { headers: { A: '1', B: '2' } },
  });
});
