import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, runWharfToEnd } from '../support/wharf-process.ts';

const runWharf = (args: readonly string[]) => runWharfToEnd(args, { cwd: repoRoot });

const endpoints = `endpoints:
  - path: /files
    hooks:
      - { hook: dump, events: [pre-create] }
      - { hook: gate, events: [pre-create], args: { max: 5 }, when: { metadata.filetype: "image/*" } }
`;

describe('`wharf hooks check` with named hooks (Borgitory)', () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-check-'));
    await writeFile(path.join(scratch, 'gate.sh'), '#!/bin/sh\nexit 0\n');
    await chmod(path.join(scratch, 'gate.sh'), 0o755);
    await writeFile(path.join(scratch, 'not-executable.sh'), '#!/bin/sh\nexit 0\n');
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function check(hooks: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const file = path.join(scratch, `wharf-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, `hooks:\n${hooks}${endpoints}`);
    return runWharf(['hooks', 'check', '--config', file]);
  }

  it('prints each hook with critical, runOn, continueOnFailure, timeout, args and its bindings with when', async () => {
    const result = await check(`  dump:
    transport: file
    shell: true
    continueOnFailure: true
    timeout: 90
    command: pg_dump mydb > /tmp/db.sql
  gate:
    transport: file
    command: ./gate.sh
`);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /dump: transport=file shell=true critical=false runOn=success continueOnFailure=true timeout=90s args=\{\}/,
    );
    assert.match(
      result.stdout,
      /gate: transport=file critical=true runOn=success continueOnFailure=false timeout=default/,
    );
    assert.match(
      result.stdout,
      /\/files pre-create args=\{"max":5\} when=\{"metadata\.filetype":"image\/\*"\}/,
    );
  });

  it('exits non-zero for a missing or non-executable command, a shell line without shell: true, an unknown key', async () => {
    const missing = await check(`  dump:
    transport: file
    command: ./no-such-script.sh
  gate:
    transport: file
    command: ./not-executable.sh
`);
    assert.notEqual(missing.code, 0);
    assert.match(
      missing.stderr,
      /hooks\.dump\.command: .*no-such-script\.sh is missing or not executable \(ENOENT\)/,
    );
    assert.match(
      missing.stderr,
      /hooks\.gate\.command: .*not-executable\.sh is missing or not executable \(EACCES\)/,
    );
    const shellLine = await check(`  dump:
    transport: file
    command: pg_dump mydb > /tmp/db.sql
  gate:
    transport: file
    command: ./gate.sh
    continue_on_failure: true
`);
    assert.notEqual(shellLine.code, 0);
    assert.match(shellLine.stderr, /hooks\.dump\.command: looks like a shell line/);
    assert.match(shellLine.stderr, /hooks\.gate: unknown key "continue_on_failure"/);
  });
});
