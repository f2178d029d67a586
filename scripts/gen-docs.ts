// Regenerates docs/configuration.md and docs/errors.md from the option table and the error catalogue.
import { writeFile } from 'node:fs/promises';
import { renderConfigurationDoc } from '../src/config/help.ts';
import { renderErrorsDoc } from '../src/errors-doc.ts';

await writeFile(new URL('../docs/configuration.md', import.meta.url), renderConfigurationDoc());
await writeFile(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
