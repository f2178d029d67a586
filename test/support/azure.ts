/**
 * The Azure Blob Storage emulator the tests use: Azurite started by scripts/services/azurite.sh, with its
 * well-known development account. Override with WHARF_TEST_AZURE_URL, WHARF_TEST_AZURE_ACCOUNT,
 * WHARF_TEST_AZURE_KEY and WHARF_TEST_AZURE_CONTAINER.
 */
import { createHash, randomUUID } from 'node:crypto';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';

export const azureAccount = process.env.WHARF_TEST_AZURE_ACCOUNT ?? 'devstoreaccount1';
export const azureKey =
  process.env.WHARF_TEST_AZURE_KEY ??
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const azureUrl = process.env.WHARF_TEST_AZURE_URL ?? `http://127.0.0.1:19100/${azureAccount}`;
export const azureContainerName = process.env.WHARF_TEST_AZURE_CONTAINER ?? 'wharf-test';

/** An independent client, so assertions look at the container without going through Wharf's code. */
export const azureContainerClient = new BlobServiceClient(
  azureUrl,
  new StorageSharedKeyCredential(azureAccount, azureKey),
).getContainerClient(azureContainerName);

/** Fails (never skips) when the emulator's container cannot be reached: a broken setup to report. */
export async function azureUnavailable(): Promise<undefined> {
  try {
    if (await azureContainerClient.exists()) return undefined;
    throw new Error('no such container');
  } catch (error) {
    throw new Error(
      `Azure emulator at ${azureUrl} (container ${azureContainerName}) unreachable: ${(error as Error).message}; start it with scripts/services/azurite.sh start`,
    );
  }
}

/** Wharf flags for the emulator's container, under a fresh prefix so each run sees only its own blobs. */
export function azureArgs(extra: readonly string[] = []): { args: string[]; prefix: string } {
  const prefix = `test-${randomUUID()}/`;
  return {
    prefix,
    args: [
      '--storage',
      'azure',
      '--azure-url',
      azureUrl,
      '--azure-account',
      azureAccount,
      '--azure-key',
      azureKey,
      '--azure-container',
      azureContainerName,
      '--azure-prefix',
      prefix,
      ...extra,
    ],
  };
}

/** Names of the blobs under a prefix. */
export async function azureBlobNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of azureContainerClient.listBlobsFlat({ prefix })) names.push(blob.name);
  return names;
}

/** A blob's sha256 and size. */
export async function azureBlobSha256(name: string): Promise<{ sha256: string; size: number }> {
  const response = await azureContainerClient.getBlobClient(name).download();
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}
