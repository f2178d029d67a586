import { createRequire } from 'node:module';

/**
 * Loads a CommonJS package with `require` rather than `import()`: Node's ESM-to-CommonJS translation (which scans
 * the package's files for export names, following re-exports) measured 30-70 ms more for ioredis or the AWS SDK
 * on Node 20 and 22, at every start that uses them (docs/architecture.md, "Start cost"). Only for packages that
 * are CommonJS and have no separate ESM build; the caller names the type (`as typeof import('…')`).
 */
export const requirePackage: NodeJS.Require = createRequire(import.meta.url);
