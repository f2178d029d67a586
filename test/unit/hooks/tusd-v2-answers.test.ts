import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HookAnswerError, hookAnswerFrom, parseHookAnswer } from '../../../src/hooks/answers.ts';
import { rejectionByAnswer } from '../../../src/hooks/rejections.ts';

describe("tusd 2's hook answers", () => {
  test('RejectUpload on pre-create rejects; its HTTPResponse is merged over tusd’s error', () => {
    const answer = hookAnswerFrom(
      { RejectUpload: true, HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'X-A': '1' } } },
      'pre-create',
    );
    assert.equal(answer?.reject, true);
    assert.deepEqual(rejectionByAnswer('pre-create', answer as NonNullable<typeof answer>), {
      kind: 'reject',
      status: 403,
      body: 'no',
      headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-A': '1' },
    });
    const bare = hookAnswerFrom(
      { RejectUpload: true, HTTPResponse: { StatusCode: 0, Body: '', Header: null } },
      'pre-create',
    );
    assert.deepEqual(rejectionByAnswer('pre-create', bare as NonNullable<typeof bare>), {
      kind: 'reject',
      status: 400,
      body: 'ERR_UPLOAD_REJECTED: upload creation has been rejected by server\n',
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
  });

  test('RejectTermination on pre-terminate rejects with tusd’s error', () => {
    const answer = hookAnswerFrom({ RejectTermination: true }, 'pre-terminate');
    assert.ok(answer);
    const rejection = rejectionByAnswer('pre-terminate', answer);
    assert.equal(
      rejection.kind === 'reject' ? rejection.body : '',
      'ERR_UPLOAD_TERMINATION_REJECTED: upload termination has been rejected by server\n',
    );
  });

  test('ChangeFileInfo: ID, MetaData and Storage.Path become Wharf’s change; empty ID and null MetaData keep', () => {
    assert.deepEqual(
      hookAnswerFrom(
        { ChangeFileInfo: { ID: 'abc', MetaData: { a: 'b' }, Storage: { Path: 'x/y' } } },
        'pre-create',
      ),
      { reject: false, changeUpload: { id: 'abc', metadata: { a: 'b' }, path: 'x/y' } },
    );
    assert.deepEqual(
      hookAnswerFrom({ ChangeFileInfo: { ID: '', MetaData: null, Storage: null } }, 'pre-create'),
      {
        reject: false,
      },
    );
    // {} clears the metadata, as in tusd.
    assert.deepEqual(hookAnswerFrom({ ChangeFileInfo: { MetaData: {} } }, 'pre-create')?.changeUpload, {
      metadata: {},
    });
  });

  test('what an event cannot honour is listed, not applied', () => {
    const answer = hookAnswerFrom(
      {
        ChangeFileInfo: { ID: 'x', Storage: { Bucket: 'b' } },
        RejectUpload: true,
        HTTPResponse: { Body: 'late' },
        Extra: 1,
      },
      'post-create',
    );
    assert.equal(answer?.reject, false);
    assert.equal(answer?.changeUpload, undefined);
    assert.equal(answer?.httpResponse, undefined);
    assert.deepEqual(answer?.notHonoured, [
      'Extra: unknown key',
      'ChangeFileInfo.Storage.Bucket: Wharf can only change Path',
      'RejectUpload: only pre-create can reject an upload, not post-create',
      'ChangeFileInfo: only pre-create can change an upload, not post-create',
      "HTTPResponse: a post-create hook's response reaches no client",
    ]);
    assert.deepEqual(hookAnswerFrom({ RejectTermination: true }, 'pre-create')?.notHonoured, [
      'RejectTermination: only pre-terminate can reject a termination, not pre-create',
    ]);
  });

  test('StopUpload counts on post-receive only, with its HTTPResponse', () => {
    assert.deepEqual(
      hookAnswerFrom({ StopUpload: true, HTTPResponse: { StatusCode: 400, Body: 's' } }, 'post-receive'),
      {
        reject: false,
        stopUpload: true,
        httpResponse: { status: 400, body: 's', headers: {} },
      },
    );
    assert.deepEqual(hookAnswerFrom({ StopUpload: true }, 'post-finish'), {
      reject: false,
      notHonoured: ['StopUpload: only post-receive can stop an upload, not post-finish'],
    });
  });

  test('Wharf’s own shape keeps working; wrong types are errors; non-answers mean go on', () => {
    assert.deepEqual(parseHookAnswer('{"reject":true}', 'pre-create'), { reject: true });
    assert.equal(parseHookAnswer('{"unrelated":true}', 'pre-create'), undefined);
    assert.equal(parseHookAnswer('ok', 'pre-create'), undefined);
    assert.throws(() => hookAnswerFrom({ RejectUpload: 'yes' }, 'pre-create'), HookAnswerError);
    assert.throws(() => hookAnswerFrom({ HTTPResponse: { StatusCode: 'x' } }, 'pre-create'), HookAnswerError);
  });
});
