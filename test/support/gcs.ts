/**
 * The Google Cloud Storage emulator the tests use: fake-gcs-server started by scripts/services/fake-gcs.sh.
 * Override with WHARF_TEST_GCS_URL and WHARF_TEST_GCS_BUCKET.
 */
import { createHash, randomUUID } from 'node:crypto';

export const gcsUrl = process.env.WHARF_TEST_GCS_URL ?? 'http://127.0.0.1:19200';
export const gcsBucket = process.env.WHARF_TEST_GCS_BUCKET ?? 'wharf-test';

/** Fails (never skips) when the emulator's bucket cannot be reached: a broken setup to report. */
export async function gcsUnavailable(): Promise<undefined> {
  try {
    const response = await fetch(`${gcsUrl}/storage/v1/b/${gcsBucket}`);
    if (response.ok) return undefined;
    throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new Error(
      `GCS emulator at ${gcsUrl} (bucket ${gcsBucket}) unreachable: ${(error as Error).message}; start it with scripts/services/fake-gcs.sh start`,
    );
  }
}

/** Wharf flags for the emulator's bucket, under a fresh prefix so each run sees only its own objects. */
export function gcsArgs(extra: readonly string[] = []): { args: string[]; prefix: string } {
  const prefix = `test-${randomUUID()}/`;
  return {
    prefix,
    args: [
      '--storage',
      'gcs',
      '--gcs-url',
      gcsUrl,
      '--gcs-bucket',
      gcsBucket,
      '--gcs-prefix',
      prefix,
      ...extra,
    ],
  };
}

/** Names of the objects under a prefix, read through the JSON API directly (not through Wharf's code). */
export async function gcsObjectNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  let token: string | undefined;
  do {
    const query = new URLSearchParams({ prefix, ...(token ? { pageToken: token } : {}) });
    const response = await fetch(`${gcsUrl}/storage/v1/b/${gcsBucket}/o?${query}`);
    const page = (await response.json()) as { items?: { name: string }[]; nextPageToken?: string };
    for (const item of page.items ?? []) names.push(item.name);
    token = page.nextPageToken;
  } while (token);
  return names;
}

/** An object's sha256 and size, downloaded through the JSON API. */
export async function gcsObjectSha256(name: string): Promise<{ sha256: string; size: number }> {
  const response = await fetch(`${gcsUrl}/storage/v1/b/${gcsBucket}/o/${encodeURIComponent(name)}?alt=media`);
  if (!response.ok) throw new Error(`GCS object ${name}: HTTP ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
}
