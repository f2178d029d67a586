import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { checkBodyType, LocalGuard } from '../../../src/server/admin/local-guard.ts';

/** Only the method and headers are read. */
function request(method: string, headers: Record<string, string>): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

function codeOf(guard: LocalGuard, method: string, headers: Record<string, string>): string | undefined {
  return guard.check(request(method, headers))?.code;
}

describe('the admin API guard without a token', () => {
  test('Host: the bound address and loopback names pass, any other name is refused', () => {
    const guard = new LocalGuard('127.0.0.1');
    for (const host of [
      '127.0.0.1:1081',
      '127.0.0.2',
      'LOCALHOST:1081',
      'localhost.:1081',
      'a.localhost',
      '[::1]:1081',
    ]) {
      assert.equal(codeOf(guard, 'GET', { host }), undefined, host);
    }
    for (const host of [
      'rebinding.example:1081',
      '127.0.0.1.evil.example',
      'localhost.evil.example',
      '0.0.0.0:1081',
      '',
    ]) {
      assert.equal(codeOf(guard, 'GET', { host }), 'ERR_ADMIN_HOST', host);
    }
    assert.equal(codeOf(guard, 'GET', {}), 'ERR_ADMIN_HOST');
    // An IPv6 bound address, as --host spells it, with or without brackets.
    for (const bound of ['::1', '[::1]']) {
      assert.equal(codeOf(new LocalGuard(bound), 'GET', { host: '[::1]:1081' }), undefined, bound);
    }
  });

  test('Origin must be this origin; Sec-Fetch-Site same-origin or none', () => {
    const guard = new LocalGuard('127.0.0.1');
    const host = '127.0.0.1:1081';
    assert.equal(codeOf(guard, 'GET', { host, origin: 'http://127.0.0.1:1081' }), undefined);
    assert.equal(codeOf(guard, 'GET', { host, 'sec-fetch-site': 'none' }), undefined);
    assert.equal(codeOf(guard, 'GET', { host, 'sec-fetch-site': 'same-origin' }), undefined);
    for (const origin of [
      'http://evil.example',
      'null',
      'http://localhost:1081',
      'http://127.0.0.1:3000',
      'https://127.0.0.1:1081',
      'not a url',
    ]) {
      assert.equal(codeOf(guard, 'GET', { host, origin }), 'ERR_ADMIN_CROSS_SITE', origin);
    }
    for (const site of ['cross-site', 'same-site']) {
      assert.equal(codeOf(guard, 'GET', { host, 'sec-fetch-site': site }), 'ERR_ADMIN_CROSS_SITE', site);
    }
  });

  test('writes must be typed application/json, with or without a body', () => {
    const guard = new LocalGuard('localhost');
    const host = 'localhost:1081';
    assert.equal(codeOf(guard, 'POST', { host, 'content-type': 'application/json' }), undefined);
    assert.equal(
      codeOf(guard, 'POST', { host, 'content-type': 'Application/JSON; charset=utf-8' }),
      undefined,
    );
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
    ]) {
      assert.equal(codeOf(guard, 'POST', { host, 'content-type': type }), 'ERR_ADMIN_CONTENT_TYPE', type);
    }
    assert.equal(codeOf(guard, 'POST', { host }), 'ERR_ADMIN_CONTENT_TYPE');
    assert.equal(codeOf(guard, 'DELETE', { host }), 'ERR_ADMIN_CONTENT_TYPE');
    assert.equal(codeOf(guard, 'GET', { host }), undefined);
  });
});

describe('the admin API with a token', () => {
  test('only a body not typed JSON is refused', () => {
    assert.equal(checkBodyType(request('POST', {})), undefined);
    assert.equal(checkBodyType(request('POST', { 'content-length': '0' })), undefined);
    assert.equal(
      checkBodyType(request('POST', { 'content-length': '2', 'content-type': 'text/plain' }))?.status,
      415,
    );
    assert.equal(
      checkBodyType(request('POST', { 'transfer-encoding': 'chunked' }))?.code,
      'ERR_ADMIN_CONTENT_TYPE',
    );
    assert.equal(
      checkBodyType(request('POST', { 'content-length': '2', 'content-type': 'application/json' })),
      undefined,
    );
  });
});
