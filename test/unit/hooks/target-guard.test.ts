import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkConfiguredTarget,
  checkRuntimeTarget,
  isPrivateAddress,
  redactTarget,
  redactTargetText,
  TargetAllowList,
  TargetRefusedError,
} from '../../../src/hooks/target-guard.ts';

const publicResolver = async (): Promise<readonly string[]> => ['93.184.215.14'];

function refusedWith(status: number): (error: unknown) => boolean {
  return (error) => error instanceof TargetRefusedError && error.status === status;
}

describe('hook target allow-list', () => {
  test('URL prefixes match at path boundaries, on the same origin only', () => {
    const list = new TargetAllowList(['https://hooks.example.com/wharf']);
    assert.equal(list.allows(new URL('https://hooks.example.com/wharf')), true);
    assert.equal(list.allows(new URL('https://hooks.example.com/wharf/post?x=1')), true);
    assert.equal(list.allows(new URL('https://hooks.example.com/wharf-evil')), false);
    assert.equal(list.allows(new URL('http://hooks.example.com/wharf')), false);
    assert.equal(list.allows(new URL('https://hooks.example.com.evil.net/wharf')), false);
    assert.equal(list.allows(new URL('https://hooks.example.com:8443/wharf')), false);
  });

  test('host patterns: exact host, *.domain for subdomains, optional port', () => {
    const list = new TargetAllowList(['example.com', '*.hooks.test', '10.0.0.5:8080']);
    assert.equal(list.allows(new URL('https://example.com/x')), true);
    assert.equal(list.allows(new URL('https://www.example.com/x')), false);
    assert.equal(list.allows(new URL('https://a.hooks.test/x')), true);
    assert.equal(list.allows(new URL('https://hooks.test/x')), false);
    assert.equal(list.allows(new URL('http://10.0.0.5:8080/x')), true);
    assert.equal(list.allows(new URL('http://10.0.0.5/x')), false);
  });

  test('an empty list allows everything; a configured URL outside a list is refused', () => {
    assert.equal(new TargetAllowList([]).allows(new URL('http://anything.test/')), true);
    const list = new TargetAllowList(['example.com']);
    assert.doesNotThrow(() => checkConfiguredTarget('https://example.com/hook', list));
    assert.throws(() => checkConfiguredTarget('https://other.test/hook', list), refusedWith(403));
    assert.throws(() => new TargetAllowList(['not a pattern!']), refusedWith(400));
  });
});

describe('private address guard', () => {
  test('IPv4 and IPv6 private, loopback and link-local addresses are private', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a9fe:a9fe',
    ]) {
      assert.equal(isPrivateAddress(address), true, address);
    }
    for (const address of ['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isPrivateAddress(address), false, address);
    }
  });

  test('runtime targets: literal private addresses and names resolving to one are refused', async () => {
    const policy = { allowList: new TargetAllowList([]), allowPrivate: false, resolve: publicResolver };
    await assert.rejects(checkRuntimeTarget('http://127.0.0.1:8080/hook', policy), refusedWith(403));
    await assert.rejects(checkRuntimeTarget('http://[::1]/hook', policy), refusedWith(403));
    await assert.rejects(checkRuntimeTarget('http://169.254.169.254/latest', policy), refusedWith(403));
    await assert.rejects(
      checkRuntimeTarget('http://sneaky.test/hook', {
        ...policy,
        resolve: async () => ['93.184.215.14', '10.0.0.1'],
      }),
      refusedWith(403),
    );
    await assert.rejects(checkRuntimeTarget('ftp://example.com/x', policy), refusedWith(400));
    await assert.rejects(checkRuntimeTarget('not a url', policy), refusedWith(400));
    const accepted = await checkRuntimeTarget('https://public.test/hook', policy);
    assert.equal(accepted.hostname, 'public.test');
  });

  test('the real resolver: localhost is refused; allowing private targets lets it in', async () => {
    const allowList = new TargetAllowList([]);
    await assert.rejects(
      checkRuntimeTarget('http://localhost:9/hook', { allowList, allowPrivate: false }),
      refusedWith(403),
    );
    const url = await checkRuntimeTarget('http://localhost:9/hook', { allowList, allowPrivate: true });
    assert.equal(url.port, '9');
  });

  test('the allow-list also applies to runtime targets', async () => {
    await assert.rejects(
      checkRuntimeTarget('https://public.test/hook', {
        allowList: new TargetAllowList(['hooks.example.com']),
        allowPrivate: true,
      }),
      refusedWith(403),
    );
  });

  test('shown target names keep scheme, host, port and hook name only', () => {
    // A digest of the whole URL tells apart targets on one host; it is stable across processes.
    assert.equal(
      redactTarget('http:https://user:hunter2@example.com/hook'),
      'http:https://example.com:443 (7eb1e302)',
    );
    assert.equal(redactTarget('http:https://example.com/hook'), 'http:https://example.com:443 (19f13522)');
    assert.equal(redactTarget('http:https://example.com'), 'http:https://example.com:443');
    assert.equal(
      redactTarget('http:http://[::1]:8080/?token=x'),
      `http:http://[::1]:8080 (${redactTarget('http:http://[::1]:8080/?token=x').slice(-9, -1)})`,
    );
    assert.notEqual(
      redactTarget('http:http://h.test/a?token=1'),
      redactTarget('http:http://h.test/a?token=2'),
    );
    assert.equal(redactTarget('file:/opt/secret-folder/notify.sh'), 'file:notify.sh');
    assert.equal(redactTarget('dir:/opt/secret-folder/hooks.d/pre-create'), 'dir:pre-create');
    assert.equal(
      redactTarget('amqp:amqps://wharf:***@mq.test/secret-vhost#wharf/wharf.post-finish'),
      'amqp:amqps://mq.test:5671#wharf/wharf.post-finish',
    );
    assert.equal(
      redactTarget('kafka:127.0.0.1:9092/wharf.post-finish'),
      'kafka:127.0.0.1:9092/wharf.post-finish',
    );
    assert.equal(redactTarget('hook:audit@/files#0'), 'hook:audit@/files#0');
    assert.equal(redactTarget('amqp'), 'amqp');
    assert.equal(redactTarget('http:not a url'), 'http:<unparsable URL>');
  });

  test('messages quoting a target show its label instead', () => {
    assert.equal(
      redactTargetText(
        'ENOENT: /opt/secret-folder/hooks.d/pre-create is missing',
        'dir:/opt/secret-folder/hooks.d/pre-create',
      ),
      'ENOENT: pre-create is missing',
    );
    assert.equal(
      redactTargetText('spawn /opt/secret-folder/notify.sh EACCES', 'file:/opt/secret-folder/notify.sh'),
      'spawn notify.sh EACCES',
    );
    assert.equal(
      redactTargetText('posting to https://h.test/x?token=t failed', 'http:https://h.test/x?token=t'),
      `posting to ${redactTarget('http:https://h.test/x?token=t').slice(5)} failed`,
    );
  });
});
