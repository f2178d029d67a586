import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a hook module (`<modulesDir>/hold/index.mjs`) whose top-level code keeps the --workers worker of slot 2
 * from starting until the file `release` exists: that worker is still starting while the test acts.
 */
export async function writeHoldingModule(modulesDir: string, release: string): Promise<void> {
  await mkdir(path.join(modulesDir, 'hold'), { recursive: true });
  await writeFile(
    path.join(modulesDir, 'hold', 'index.mjs'),
    `import { access } from 'node:fs/promises';
if (process.env.WHARF_WORKER_SLOT === '2') {
  while (!(await access(${JSON.stringify(release)}).then(() => true, () => false)))
    await new Promise((resolve) => setTimeout(resolve, 50));
}
export default () => {};
`,
  );
}
