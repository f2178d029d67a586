// Bundles the `wharf` command (dist/cli/main.js and what it imports from dist/) into dist/cli-bundle/, which
// bin/wharf.js imports (part of `npm run build`, after tsc). See docs/architecture.md, "Start cost".
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { promClientClassFiles, promClientDefaultMetricFiles } from '../src/server/prom-client-files.ts';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const outdir = path.join(dist, 'cli-bundle');

/*
 * Each bundled module keeps the location of its own dist/ file. In a bundle, `import.meta` is the chunk's, so
 * `import.meta.url` in dist/server/admin/dashboard.js would name dist/cli-bundle/<chunk>.js, and the dashboard's
 * assets, the isolated hook worker, package.json and createRequire would be looked up next to the chunk. The
 * dist/ files stay where they are (the package's library entry points use them), and every chunk is written to
 * outdir, so each module's `import.meta.url` becomes its dist/ file's URL computed from the chunk's at run time
 * (the package can be moved or installed anywhere). Any other use of `import.meta` fails the build rather than
 * silently meaning the chunk.
 */
const keepModuleLocation: Plugin = {
  name: 'keep-module-location',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist + path.sep)) return undefined;
      const code = await readFile(args.path, 'utf8');
      const fromChunk = path.relative(outdir, args.path).split(path.sep).join('/');
      const folderFromChunk = path.posix.dirname(fromChunk);
      const url = `new URL(${JSON.stringify(fromChunk)}, import.meta.url).href`;
      const rewritten = code.replace(/\bimport\.meta\.(url|dirname|filename)\b/g, (_, property: string) => {
        if (property === 'url') return url;
        const modulePath = property === 'dirname' ? folderFromChunk : fromChunk;
        return `process.getBuiltinModule('node:path').join(import.meta.dirname, ${JSON.stringify(modulePath)})`;
      });
      const unknown = /\bimport\.meta\b(?!\.dirname\b)/.exec(rewritten.replaceAll(url, ''));
      if (unknown) {
        const line = rewritten.slice(0, unknown.index).split('\n').length;
        throw new Error(`${args.path}:${line}: import.meta is only rewritten as .url, .dirname or .filename`);
      }
      return { contents: rewritten, loader: 'js' };
    });
  },
};

/*
 * The CommonJS packages every start requires (pino and its dependencies, the prom-client files of
 * src/server/prom-client.ts) go into one CommonJS file of the bundle, dist/cli-bundle/vendor.cjs, instead of about 55
 * files that Node's CommonJS loader would resolve one by one. Resolving them ran Node's path normalisation hot enough
 * for TurboFan to compile it at every start, which alone keeps about 3.5 MB of the compiler's code resident, and the
 * loader's own state for each file stays in the heap: idle RSS 57.8 -> 52.9 MB and 25 ms less CPU per start on Node
 * 20 (docs/architecture.md, "Start cost"). Each id stays the id `requirePackage` is called with; an id that is not
 * listed (another configuration's SDK, a prom-client file added later) is required from node_modules as before, so
 * the list can lag the code only in cost, and test/e2e/start-cost.test.ts fails when a default start requires any
 * file of node_modules. The library (dist/) keeps requiring the packages themselves.
 */
const vendoredPackages = [
  'pino',
  ...promClientClassFiles.map((file) => `prom-client/lib/${file}`),
  ...promClientDefaultMetricFiles.map((file) => `prom-client/lib/metrics/${file}`),
];

/*
 * dist/require-package.js, as the bundle has it: an id of vendor.cjs comes from there (each one a getter, so a
 * package is evaluated on its first use, as with require), any other from node_modules as dist/'s module does.
 */
const requirePackageFile = path.join(dist, 'require-package.js');
const requireVendored: Plugin = {
  name: 'require-vendored',
  setup(build) {
    build.onLoad({ filter: /require-package\.js$/ }, (args) => {
      if (args.path !== requirePackageFile) return undefined;
      const fromChunk = path.relative(outdir, requirePackageFile).split(path.sep).join('/');
      const contents = `import { createRequire } from 'node:module';
const fromNodeModules = createRequire(new URL(${JSON.stringify(fromChunk)}, import.meta.url).href);
const fromBundle = createRequire(import.meta.url);
let vendored;
export function requirePackage(id) {
  vendored ??= fromBundle('./vendor.cjs');
  return Object.hasOwn(vendored, id) ? vendored[id] : fromNodeModules(id);
}
`;
      return { contents, loader: 'js' };
    });
  },
};

/*
 * vendor.cjs carries other packages' code, so their licences go with it: dist/cli-bundle/vendor.cjs.LICENSES.txt
 * holds, for every package a file of vendor.cjs comes from, its name, version, licence and licence file (the MIT
 * and Apache-2.0 licences of pino, prom-client and their dependencies ask for their notices to travel with copies).
 */
async function writeVendorLicences(inputs: readonly string[]): Promise<void> {
  const packages = new Set<string>();
  for (const input of inputs) {
    const parts = input.split('/');
    const at = parts.lastIndexOf('node_modules');
    if (at === -1) continue;
    const name = parts[at + 1]?.startsWith('@') ? parts.slice(at + 1, at + 3) : parts.slice(at + 1, at + 2);
    packages.add(path.join(root, ...parts.slice(0, at + 1), ...name));
  }
  const sections: string[] = [];
  for (const folder of [...packages].sort()) {
    const manifest = JSON.parse(await readFile(path.join(folder, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      license?: string;
    };
    const licenceFile = (await readdir(folder)).find((file) => /^(licen[cs]e|copying)(\.|$)/i.test(file));
    if (licenceFile === undefined)
      throw new Error(`${manifest.name}: no licence file to ship with vendor.cjs`);
    const text = (await readFile(path.join(folder, licenceFile), 'utf8')).trim();
    sections.push(`${manifest.name} ${manifest.version} (${manifest.license ?? 'see below'})\n\n${text}\n`);
  }
  const heading = 'Packages whose code dist/cli-bundle/vendor.cjs holds, with their licences.\n';
  await writeFile(path.join(outdir, 'vendor.cjs.LICENSES.txt'), `${heading}\n${sections.join('\n---\n\n')}`);
}

await rm(outdir, { recursive: true, force: true });
const vendored = await build({
  metafile: true,
  stdin: {
    contents: `module.exports = {\n${vendoredPackages
      .map((id) => `  get ${JSON.stringify(id)}() { return require(${JSON.stringify(id)}); },\n`)
      .join('')}};\n`,
    resolveDir: root,
    sourcefile: 'vendor.cjs',
    loader: 'js',
  },
  outfile: path.join(outdir, 'vendor.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20.19',
  keepNames: false,
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});
await writeVendorLicences(Object.keys(vendored.metafile.inputs));
await build({
  entryPoints: { main: path.join(dist, 'cli/main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  packages: 'external',
  // No keepNames: it wraps every named closure in a defineProperty call each time one is made, and request paths
  // make several per request (3.5% of the main thread on small uploads). No class is renamed apart (no two modules
  // share a class name), so error and log names stay as written; only a dozen shared helper names get a suffix.
  keepNames: false,
  // A linked map back to the dist/ files, read only under --enable-source-maps (no cost otherwise): stack traces
  // then name dist/…/file.js lines, as they did before the bundle.
  sourcemap: 'linked',
  sourcesContent: false,
  chunkNames: '[name]-[hash]',
  plugins: [requireVendored, keepModuleLocation],
  logLevel: 'warning',
});
