import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpHookTransport } from '../../../src/hooks/transports/http.ts';
import {
  verifyWebhook,
  WebhookSecretError,
  WebhookVerificationError,
  webhookHeaders,
  webhookKey,
  webhookKeys,
  webhookSignature,
} from '../../../src/hooks/transports/webhook-signature.ts';

// The test vector published with Standard Webhooks (its reference libraries test against it).
const vector = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const signedAt = new Date(vector.timestamp * 1000);
const otherSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

function vectorHeaders(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    'webhook-id': vector.id,
    'webhook-timestamp': String(vector.timestamp),
    'webhook-signature': vector.signature,
    ...overrides,
  };
}

function refusal(code: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof WebhookVerificationError && error.code === code;
}

describe('signing', () => {
  test('reproduces the Standard Webhooks test vector', () => {
    const key = webhookKey(vector.secret);
    assert.equal(webhookSignature([key], vector.id, vector.timestamp, vector.body), vector.signature);
    assert.equal(
      webhookSignature([key], vector.id, vector.timestamp, Buffer.from(vector.body)),
      vector.signature,
    );
  });

  test('two secrets give two space-separated signatures, in the order given', () => {
    const keys = webhookKeys([vector.secret, otherSecret], 'test');
    const [first, second, ...rest] = webhookSignature(keys, vector.id, vector.timestamp, vector.body).split(
      ' ',
    );
    assert.equal(first, vector.signature);
    assert.match(second ?? '', /^v1,[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(second, first);
    assert.deepEqual(rest, []);
  });

  test('headers carry the id, the attempt time in Unix seconds and the signature of that time', () => {
    const headers = webhookHeaders([webhookKey(vector.secret)], vector.id, vector.body, signedAt);
    assert.deepEqual(headers, vectorHeaders());
  });

  test('secrets must be whsec_ + base64 of 24 to 64 bytes; errors never contain the secret', () => {
    const bad = [
      'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'whsec_not base64!',
      `whsec_${Buffer.alloc(16).toString('base64')}`,
      `whsec_${Buffer.alloc(65).toString('base64')}`,
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS',
    ];
    for (const secret of bad) {
      assert.throws(
        () => webhookKeys([vector.secret, secret], '--hooks-http-secret'),
        (error: unknown) =>
          error instanceof WebhookSecretError &&
          error.message.startsWith('--hooks-http-secret (secret 2 of 2): ') &&
          !error.message.includes(secret.slice(6, 20)),
      );
    }
    assert.equal(webhookKey(`whsec_${Buffer.alloc(64).toString('base64')}`).length, 64);
  });
});

describe('verifyWebhook', () => {
  test('accepts the test vector and returns the parsed body', () => {
    const payload = verifyWebhook({
      payload: vector.body,
      headers: vectorHeaders(),
      secrets: vector.secret,
      now: signedAt,
    });
    assert.deepEqual(payload, { test: 2432232314 });
  });

  test('accepts a Buffer body, Fetch Headers, mixed-case names and array values', () => {
    const now = new Date((vector.timestamp + 299) * 1000);
    const fetchHeaders = new Headers(vectorHeaders());
    assert.deepEqual(
      verifyWebhook({
        payload: Buffer.from(vector.body),
        headers: fetchHeaders,
        secrets: [vector.secret],
        now,
      }),
      { test: 2432232314 },
    );
    const nodeLike = { 'Webhook-Id': vector.id, 'WEBHOOK-TIMESTAMP': [String(vector.timestamp)] };
    assert.deepEqual(
      verifyWebhook({
        payload: new Uint8Array(Buffer.from(vector.body)),
        headers: { ...nodeLike, 'webhook-signature': vector.signature },
        secrets: [vector.secret],
        now,
      }),
      { test: 2432232314 },
    );
  });

  test('during a rotation, a request signed with either secret passes', () => {
    const now = new Date();
    for (const signer of [vector.secret, otherSecret]) {
      const headers = webhookHeaders([webhookKey(signer)], 'evt-1', '{"a":1}', now);
      assert.deepEqual(
        verifyWebhook({ payload: '{"a":1}', headers, secrets: [otherSecret, vector.secret], now }),
        { a: 1 },
      );
    }
    // And a receiver that knows only one of them accepts a request signed with both.
    const both = webhookHeaders(webhookKeys([otherSecret, vector.secret], 'test'), 'evt-2', '{}', now);
    assert.deepEqual(verifyWebhook({ payload: '{}', headers: both, secrets: vector.secret, now }), {});
  });

  test('refuses an altered body, id or timestamp, an unknown secret, and other schemes', () => {
    const base = { payload: vector.body, secrets: vector.secret, now: signedAt };
    assert.throws(
      () => verifyWebhook({ ...base, payload: '{"test": 2432232315}', headers: vectorHeaders() }),
      refusal('bad_signature'),
    );
    assert.throws(
      () => verifyWebhook({ ...base, headers: vectorHeaders({ 'webhook-id': 'msg_other' }) }),
      refusal('bad_signature'),
    );
    assert.throws(
      () =>
        verifyWebhook({
          ...base,
          headers: vectorHeaders({ 'webhook-timestamp': String(vector.timestamp + 1) }),
        }),
      refusal('bad_signature'),
    );
    assert.throws(
      () => verifyWebhook({ ...base, secrets: otherSecret, headers: vectorHeaders() }),
      refusal('bad_signature'),
    );
    const v1a = vector.signature.replace('v1,', 'v1a,');
    assert.throws(
      () => verifyWebhook({ ...base, headers: vectorHeaders({ 'webhook-signature': v1a }) }),
      refusal('bad_signature'),
    );
  });

  test('one matching signature among others is enough', () => {
    const signatures = `v1,${Buffer.alloc(32).toString('base64')} v1a,abc ${vector.signature}`;
    assert.deepEqual(
      verifyWebhook({
        payload: vector.body,
        headers: vectorHeaders({ 'webhook-signature': signatures }),
        secrets: vector.secret,
        now: signedAt,
      }),
      { test: 2432232314 },
    );
  });

  test('refuses timestamps outside the tolerance, either way', () => {
    const base = { payload: vector.body, headers: vectorHeaders(), secrets: vector.secret };
    assert.throws(
      () => verifyWebhook({ ...base, now: new Date((vector.timestamp + 301) * 1000) }),
      refusal('timestamp_too_old'),
    );
    assert.throws(
      () => verifyWebhook({ ...base, now: new Date((vector.timestamp - 301) * 1000) }),
      refusal('timestamp_too_new'),
    );
    assert.throws(
      () => verifyWebhook({ ...base, now: new Date((vector.timestamp + 11) * 1000), toleranceSeconds: 10 }),
      refusal('timestamp_too_old'),
    );
    assert.throws(
      () => verifyWebhook({ ...base, headers: vectorHeaders({ 'webhook-timestamp': '1614265330.5' }) }),
      refusal('invalid_timestamp'),
    );
  });

  test('refuses a request without the three headers', () => {
    for (const missing of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers = vectorHeaders();
      delete headers[missing];
      assert.throws(
        () => verifyWebhook({ payload: vector.body, headers, secrets: vector.secret, now: signedAt }),
        refusal('missing_headers'),
      );
    }
  });
});

describe('the HTTP transport', () => {
  test('says whether it signs, and refuses a bad secret when built', () => {
    const options = { timeoutMs: 1000, proxyHeaders: [] };
    assert.equal(new HttpHookTransport('http://127.0.0.1:1/', options).signed, false);
    assert.equal(
      new HttpHookTransport('http://127.0.0.1:1/', { ...options, secrets: [vector.secret] }).signed,
      true,
    );
    assert.throws(
      () => new HttpHookTransport('http://127.0.0.1:1/', { ...options, secrets: ['whsec_c2hvcnQ='] }),
      (error: unknown) => error instanceof WebhookSecretError && !error.message.includes('c2hvcnQ'),
    );
  });
});
