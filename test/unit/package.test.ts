import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const root = new URL('../../', import.meta.url);
const manifest = JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as {
  name: string;
  license: string;
  bin: Record<string, string>;
  files: string[];
  exports: Record<string, unknown>;
};

test("the package has a name of its own on npm (not the unrelated 'wharf') and keeps the wharf command", () => {
  assert.equal(manifest.name, 'wharf-uploads');
  assert.equal(manifest.bin.wharf, 'bin/wharf.js');
});

test('the LICENSE file package.json promises is there', async () => {
  assert.equal(manifest.license, 'MIT');
  const license = await readFile(new URL('LICENSE', root), 'utf8');
  assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 the Wharf authors\n/);
});

test('the README links only files the published package holds, and imports only what it exports', async () => {
  const readme = await readFile(new URL('README.md', root), 'utf8');
  const links = [...readme.matchAll(/\]\(([^)#]+)[^)]*\)/g)].map((match) => match[1] ?? '');
  const local = links.filter((link) => !/^[a-z]+:/.test(link));
  assert.ok(local.length > 0, 'the README links some docs');
  for (const link of local) {
    assert.ok(
      manifest.files.some((entry) => link === entry || link.startsWith(`${entry}/`)),
      `${link} is not in the package's files (${manifest.files.join(', ')})`,
    );
  }
  for (const file of ['README.md', 'docs/hooks.md']) {
    const text = await readFile(new URL(file, root), 'utf8');
    const imports = [...text.matchAll(/from '(wharf[^']*)'/g)].map((match) => match[1] ?? '');
    assert.ok(imports.length > 0, `${file} shows an import`);
    for (const specifier of imports) {
      const subpath = specifier === manifest.name ? '.' : `.${specifier.slice(manifest.name.length)}`;
      assert.ok(specifier.startsWith(manifest.name) && subpath in manifest.exports, `${file}: ${specifier}`);
    }
  }
});
