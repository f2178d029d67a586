import { errorCatalogue } from './errors.ts';

/** `docs/errors.md`: every published error code with its status; a test fails when it is stale. */
export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'Error responses carry `Tus-Resumable: 1.0.0` and a `text/plain` body `CODE: message` (HEAD responses have no',
    'body). A rejecting hook may replace the body, status and headers with its own. Codes are never reused.',
    '',
    '| Code | Status | Meaning |',
    '| --- | --- | --- |',
  ];
  for (const [code, { status, message }] of Object.entries(errorCatalogue)) {
    lines.push(`| \`${code}\` | ${status} | ${message} |`);
  }
  lines.push('');
  return lines.join('\n');
}
