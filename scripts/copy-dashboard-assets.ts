// Copies the dashboard's static files (HTML, CSS, icon) next to its compiled scripts in dist (part of `npm run build`).
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const source = path.join(root, 'src/server/admin/dashboard');
const target = path.join(root, 'dist/server/admin/dashboard');

await mkdir(target, { recursive: true });
for (const name of ['index.html', 'dashboard.css', 'favicon.svg']) {
  await copyFile(path.join(source, name), path.join(target, name));
}
