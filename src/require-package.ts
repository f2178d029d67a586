import { createRequire } from 'node:module';

/**
 * Loads a CommonJS package with `require` rather than `import()`: an import of a CommonJS package first reads its
 * files for their export names, following every re-export, which costs 30-70 ms more for ioredis or the AWS SDK
 * on Node 20 and 22, at every start that uses them (docs/architecture.md, "Start cost"). Only for packages that
 * are CommonJS; the caller names the type (`as typeof import('…')`).
 */
export const requirePackage: NodeJS.Require = createRequire(import.meta.url);
