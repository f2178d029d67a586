// Regenerates docs/configuration.md and docs/errors.md from the option table and the error catalogue, and the
// library's option type (src/config/option-types.ts) from the table, and wharf.schema.json from the config file's keys.
import { writeFile } from 'node:fs/promises';
import { renderWharfFileSchema } from '../src/config/config-file-schema.ts';
import { renderConfigurationDoc } from '../src/config/help.ts';
import { renderOptionTypes } from '../src/config/option-types-render.ts';
import { renderErrorsDoc } from '../src/errors-doc.ts';

await writeFile(new URL('../docs/configuration.md', import.meta.url), renderConfigurationDoc());
await writeFile(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
await writeFile(new URL('../src/config/option-types.ts', import.meta.url), renderOptionTypes());
await writeFile(new URL('../wharf.schema.json', import.meta.url), renderWharfFileSchema());
