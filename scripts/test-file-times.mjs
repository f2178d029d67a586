/**
 * A node:test reporter that writes, per test file, the summed time of its top-level tests, slowest first: where a
 * run's time goes (scripts/test.sh writes it to .cache/test-logs/node-<version>.times). Files run in parallel, so
 * the sum over files is more than the run's wall time; compare shares.
 */
// Plain JavaScript: Node 20 loads a reporter before `--import tsx` takes effect.
import { relative } from 'node:path';

/** @param {AsyncIterable<{ type: string, data?: { file?: string, nesting?: number, details?: { duration_ms?: number, type?: string } } }>} source */
export default async function* fileTimes(source) {
  /** @type {Map<string, { ms: number, tests: number, failed: number }>} */
  const files = new Map();
  for await (const event of source) {
    const file = event.data?.file;
    if (!file || (event.type !== 'test:pass' && event.type !== 'test:fail')) continue;
    const name = relative(process.cwd(), file);
    const entry = files.get(name) ?? { ms: 0, tests: 0, failed: 0 };
    files.set(name, entry);
    if (event.data?.nesting === 0) entry.ms += event.data.details?.duration_ms ?? 0;
    if (event.data?.details?.type !== 'suite') entry.tests++;
    if (event.type === 'test:fail') entry.failed++;
  }
  const rows = [...files].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((sum, [, entry]) => sum + entry.ms, 0);
  yield `${(total / 1000).toFixed(1)} s in top-level tests over ${rows.length} files\n`;
  for (const [name, entry] of rows) {
    const share = total > 0 ? ((100 * entry.ms) / total).toFixed(1) : '0';
    yield `${(entry.ms / 1000).toFixed(1).padStart(7)} s ${share.padStart(5)} %  ${String(entry.tests).padStart(4)} tests${entry.failed ? ` (${entry.failed} failed)` : ''}  ${name}\n`;
  }
}
