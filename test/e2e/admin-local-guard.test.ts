import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HookReceiver } from '../support/hook-receiver.ts';
import { type Reply, send } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * The admin API without a token (allowed on loopback) against what a web page in the operator's browser can
 * send: a cross-site "simple" request (text/plain, no preflight) and a DNS-rebound host name. Same-origin JSON,
 * as the dashboard sends it, is the positive control each time.
 */

interface TargetState {
  name: string;
  health: 'healthy' | 'failing' | 'disabled';
}

let receiver: HookReceiver;
let wharf: WharfProcess;

async function targets(headers: Record<string, string> = {}): Promise<TargetState[]> {
  const reply = await send('GET', `${wharf.origin}/admin/api/targets`, { headers });
  assert.equal(reply.status, 200, reply.text);
  return (JSON.parse(reply.text) as { targets: TargetState[] }).targets;
}

function post(route: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return send('POST', `${wharf.origin}/admin/api${route}`, {
    headers,
    ...(body === undefined ? {} : { body }),
  });
}

function code(reply: Reply): unknown {
  return (JSON.parse(reply.text) as { code?: unknown }).code;
}

/** What the dashboard sends: its own origin, JSON. */
function sameOrigin(): Record<string, string> {
  return { Origin: wharf.origin, 'Sec-Fetch-Site': 'same-origin', 'Content-Type': 'application/json' };
}

describe('the admin API without a token refuses what a web page can send', { timeout: 60_000 }, () => {
  before(async () => {
    receiver = new HookReceiver();
    await receiver.start();
    wharf = await startWharf({
      args: ['--admin', '--hooks-http-urls', receiver.url, '--hooks-allow-private-targets'],
      env: { WHARF_ADMIN_TOKEN: '' },
    });
  });
  after(async () => {
    await wharf.stop();
    await receiver.close();
  });

  test('warns at start that the API is open to local processes', () => {
    const warning = wharf.logs.find((line) => String(line.msg).startsWith('the admin API has no token'));
    assert.ok(warning, JSON.stringify(wharf.logs.map((line) => line.msg)));
    assert.equal(warning.level, 40);
  });

  test('a cross-origin page adding a target is refused (403) and adds none; same-origin JSON adds one', async () => {
    const before = await targets();
    const evilUrl = 'http://127.0.0.1:9/evil';
    const forged = await post(
      '/targets',
      { Origin: 'http://evil.example', 'Content-Type': 'text/plain', 'Sec-Fetch-Site': 'cross-site' },
      JSON.stringify({ url: evilUrl }),
    );
    assert.equal(forged.status, 403, forged.text);
    assert.equal(code(forged), 'ERR_ADMIN_CROSS_SITE');
    assert.deepEqual(await targets(), before);

    // Each signal alone is enough.
    const originOnly = await post(
      '/targets',
      { Origin: 'http://evil.example', 'Content-Type': 'application/json' },
      JSON.stringify({ url: evilUrl }),
    );
    assert.equal(originOnly.status, 403, originOnly.text);
    const nullOrigin = await post(
      '/targets',
      { Origin: 'null', 'Content-Type': 'application/json' },
      JSON.stringify({ url: evilUrl }),
    );
    assert.equal(nullOrigin.status, 403, nullOrigin.text);
    const fetchSiteOnly = await post(
      '/targets',
      { 'Sec-Fetch-Site': 'cross-site', 'Content-Type': 'application/json' },
      JSON.stringify({ url: evilUrl }),
    );
    assert.equal(fetchSiteOnly.status, 403, fetchSiteOnly.text);
    const sameSite = await post(
      '/targets',
      { 'Sec-Fetch-Site': 'same-site', 'Content-Type': 'application/json' },
      JSON.stringify({ url: evilUrl }),
    );
    assert.equal(sameSite.status, 403, sameSite.text);
    const plainText = await post(
      '/targets',
      { 'Content-Type': 'text/plain' },
      JSON.stringify({ url: evilUrl }),
    );
    assert.equal(plainText.status, 415, plainText.text);
    assert.equal(code(plainText), 'ERR_ADMIN_CONTENT_TYPE');
    assert.deepEqual(await targets(), before);

    const added = await post('/targets', sameOrigin(), JSON.stringify({ url: evilUrl }));
    assert.equal(added.status, 201, added.text);
    assert.equal((await targets()).length, before.length + 1);
    // A script without browser headers (curl) is a local process: JSON is all it needs.
    const local = await post(
      '/targets',
      { 'Content-Type': 'application/json; charset=utf-8' },
      JSON.stringify({ url: 'http://127.0.0.1:9/local' }),
    );
    assert.equal(local.status, 201, local.text);
    assert.equal((await targets()).length, before.length + 2);
  });

  test('disabling the configured target needs a JSON write from this origin', async () => {
    const configured = (await targets()).find((target) => target.name.includes(new URL(receiver.url).host));
    assert.ok(configured, 'the configured target is listed');
    assert.notEqual(configured.health, 'disabled');
    const route = `/targets/${encodeURIComponent(configured.name)}/disable`;
    // A form or a no-cors fetch: no body, no JSON type, another site.
    const forged = await post(route, { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' });
    assert.equal(forged.status, 403, forged.text);
    const untyped = await post(route, {});
    assert.equal(untyped.status, 415, untyped.text);
    assert.notEqual((await targets()).find((target) => target.name === configured.name)?.health, 'disabled');

    const disabled = await post(route, sameOrigin(), '{}');
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal((await targets()).find((target) => target.name === configured.name)?.health, 'disabled');
    const enabled = await post(`/targets/${encodeURIComponent(configured.name)}/enable`, sameOrigin(), '{}');
    assert.equal(enabled.status, 200, enabled.text);
  });

  test('a rebound host name is refused on the API, the stream and the dashboard; loopback names are served', async () => {
    for (const pathname of [
      '/admin/api/targets',
      '/admin/api/stream',
      '/admin/api/uploads',
      '/admin',
      '/admin/app.js',
    ]) {
      const rebound = await send('GET', `${wharf.origin}${pathname}`, {
        headers: { Host: `rebinding.example:${wharf.port}` },
      });
      assert.equal(rebound.status, 403, `${pathname}: ${rebound.text}`);
      assert.match(rebound.text, /ERR_ADMIN_HOST/, pathname);
    }
    const reboundWrite = await post(
      '/targets',
      {
        Host: `rebinding.example:${wharf.port}`,
        Origin: `http://rebinding.example:${wharf.port}`,
        'Content-Type': 'application/json',
      },
      JSON.stringify({ url: 'http://127.0.0.1:9/rebound' }),
    );
    assert.equal(reboundWrite.status, 403, reboundWrite.text);
    assert.equal((await targets()).filter((target) => target.name.includes('/rebound')).length, 0);

    for (const host of [`localhost:${wharf.port}`, `127.0.0.1:${wharf.port}`, `[::1]:${wharf.port}`]) {
      assert.equal((await targets({ Host: host })).length > 0, true, host);
      const page = await send('GET', `${wharf.origin}/admin`, { headers: { Host: host } });
      assert.equal(page.status, 200, host);
    }
  });

  test('the live stream from this origin opens; from another site it does not', async () => {
    const refused = await send('GET', `${wharf.origin}/admin/api/stream`, {
      headers: { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' },
    });
    assert.equal(refused.status, 403);
    const controller = new AbortController();
    const opened = await fetch(`${wharf.origin}/admin/api/stream`, {
      headers: { 'Sec-Fetch-Site': 'same-origin' },
      signal: controller.signal,
    });
    assert.equal(opened.status, 200);
    assert.match(opened.headers.get('content-type') ?? '', /text\/event-stream/);
    controller.abort();
  });
});

describe('with a token nothing changes but the body type', { timeout: 60_000 }, () => {
  const token = 'guard-test-token';
  const auth = { Authorization: `Bearer ${token}` };
  before(async () => {
    wharf = await startWharf({
      args: ['--admin', '--hooks-allow-private-targets'],
      env: { WHARF_ADMIN_TOKEN: token },
    });
  });
  after(async () => {
    await wharf.stop();
  });

  test('any Host and Origin are served with the token; a body not typed JSON is refused (415)', async () => {
    assert.equal(
      wharf.logs.some((line) => String(line.msg).startsWith('the admin API has no token')),
      false,
    );
    const rebound = await send('GET', `${wharf.origin}/admin/api/targets`, {
      headers: { ...auth, Host: 'wharf.internal.example', Origin: 'http://other.example' },
    });
    assert.equal(rebound.status, 200, rebound.text);
    const plain = await post(
      '/targets',
      { ...auth, 'Content-Type': 'text/plain' },
      JSON.stringify({ url: 'http://127.0.0.1:9/x' }),
    );
    assert.equal(plain.status, 415, plain.text);
    const json = await post(
      '/targets',
      { ...auth, 'Content-Type': 'application/json' },
      JSON.stringify({ url: 'http://127.0.0.1:9/x' }),
    );
    assert.equal(json.status, 201, json.text);
    // A bodyless write (curl -X POST …/disable) still needs no type with the token.
    const name = (JSON.parse(json.text) as TargetState).name;
    const disabled = await post(`/targets/${encodeURIComponent(name)}/disable`, auth);
    assert.equal(disabled.status, 200, disabled.text);
  });
});
