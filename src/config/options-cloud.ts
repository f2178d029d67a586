import { readFileSync } from 'node:fs';
import type { AzureConnection } from '../storage/azure-container.ts';
import type { GcsConnection } from '../storage/gcs-bucket.ts';
import { ConfigError, type OptionSpec, type RawOptions } from './option-table.ts';

const gcsGroup = 'Google Cloud Storage (gcs)';
const azureGroup = 'Azure Blob Storage (azure)';

/** Options of the `gcs` storage. */
export const gcsOptions: readonly OptionSpec[] = [
  {
    key: 'gcsBucket',
    flag: 'gcs-bucket',
    env: ['WHARF_GCS_BUCKET'],
    kind: 'string',
    help: 'Bucket that holds the uploads (must exist). Required with --storage gcs.',
    group: gcsGroup,
  },
  {
    key: 'gcsPrefix',
    flag: 'gcs-prefix',
    env: ['WHARF_GCS_PREFIX'],
    kind: 'string',
    default: '',
    help: 'Prepended to every object name, e.g. uploads/ (then --dir-structure, then the upload id).',
    group: gcsGroup,
  },
  {
    key: 'gcsKeyFile',
    flag: 'gcs-key-file',
    env: ['WHARF_GCS_KEY_FILE'],
    kind: 'string',
    help: "Service-account key file (JSON). Unset: Google's client finds credentials itself (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the metadata server).",
    group: gcsGroup,
  },
  {
    key: 'gcsProject',
    flag: 'gcs-project',
    env: ['WHARF_GCS_PROJECT'],
    kind: 'string',
    help: 'Project id, when the credentials do not name one.',
    group: gcsGroup,
  },
  {
    key: 'gcsUrl',
    flag: 'gcs-url',
    env: ['WHARF_GCS_URL'],
    kind: 'string',
    help: "API endpoint, e.g. http://127.0.0.1:4443 for fake-gcs-server; unset uses Google's. No credentials are sent to a custom endpoint.",
    group: gcsGroup,
  },
  {
    key: 'gcsPartSize',
    flag: 'gcs-part-size',
    env: ['WHARF_GCS_PART_SIZE'],
    kind: 'size',
    min: 256 * 1024,
    default: '8MiB',
    help: 'Largest piece object a PATCH body is stored as before the upload finishes (each is gathered in a temporary file first).',
    group: gcsGroup,
  },
  {
    key: 'gcsPartConcurrency',
    flag: 'gcs-part-concurrency',
    env: ['WHARF_GCS_PART_CONCURRENCY'],
    kind: 'integer',
    min: 1,
    default: '2',
    help: 'Pieces of one upload sent at the same time; an upload holds at most (this + 1) pieces on disk.',
    group: gcsGroup,
  },
  {
    key: 'gcsBufferDir',
    flag: 'gcs-buffer-dir',
    env: ['WHARF_GCS_BUFFER_DIR'],
    kind: 'string',
    help: "Folder for the temporary files pieces are gathered in; unset uses the system's temporary folder.",
    group: gcsGroup,
  },
];

/** Options of the `azure` storage. */
export const azureOptions: readonly OptionSpec[] = [
  {
    key: 'azureAccount',
    flag: 'azure-account',
    env: ['WHARF_AZURE_ACCOUNT'],
    kind: 'string',
    help: 'Storage account name. Required with --storage azure unless --azure-connection-string is given.',
    group: azureGroup,
  },
  {
    key: 'azureContainer',
    flag: 'azure-container',
    env: ['WHARF_AZURE_CONTAINER'],
    kind: 'string',
    help: 'Container that holds the uploads (must exist). Required with --storage azure.',
    group: azureGroup,
  },
  {
    key: 'azurePrefix',
    flag: 'azure-prefix',
    env: ['WHARF_AZURE_PREFIX'],
    kind: 'string',
    default: '',
    help: 'Prepended to every blob name, e.g. uploads/ (then --dir-structure, then the upload id).',
    group: azureGroup,
  },
  {
    key: 'azureKey',
    flag: 'azure-key',
    env: ['WHARF_AZURE_KEY'],
    kind: 'string',
    help: 'Account key (shared key). Never logged. One of --azure-key, --azure-sas or --azure-connection-string is required.',
    group: azureGroup,
  },
  {
    key: 'azureKeyPath',
    flag: 'azure-key-path',
    env: ['WHARF_AZURE_KEY_PATH'],
    kind: 'string',
    help: 'File holding the account key (one trailing newline is ignored).',
    group: azureGroup,
  },
  {
    key: 'azureSas',
    flag: 'azure-sas',
    env: ['WHARF_AZURE_SAS'],
    kind: 'string',
    help: 'Shared access signature token (the query string, with or without its ?), with read, write, delete and list rights on the container. Never logged.',
    group: azureGroup,
  },
  {
    key: 'azureConnectionString',
    flag: 'azure-connection-string',
    env: ['WHARF_AZURE_CONNECTION_STRING'],
    kind: 'string',
    help: 'Connection string as the Azure portal shows it (account, key or SAS, endpoint). Never logged.',
    group: azureGroup,
  },
  {
    key: 'azureUrl',
    flag: 'azure-url',
    env: ['WHARF_AZURE_URL'],
    kind: 'string',
    help: 'Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite; unset uses https://<account>.blob.core.windows.net.',
    group: azureGroup,
  },
  {
    key: 'azureBlockSize',
    flag: 'azure-block-size',
    env: ['WHARF_AZURE_BLOCK_SIZE'],
    kind: 'size',
    min: 1024 * 1024,
    default: '8MiB',
    help: 'Size of the blocks an upload starts with; the size doubles as the upload grows (up to 4000 MiB) so an upload of about 150 TiB fits the 50 000 blocks Azure allows.',
    group: azureGroup,
  },
  {
    key: 'azureBlockConcurrency',
    flag: 'azure-block-concurrency',
    env: ['WHARF_AZURE_BLOCK_CONCURRENCY'],
    kind: 'integer',
    min: 1,
    default: '2',
    help: 'Blocks of one upload staged at the same time; an upload holds at most (this + 1) blocks on disk.',
    group: azureGroup,
  },
  {
    key: 'azureBufferDir',
    flag: 'azure-buffer-dir',
    env: ['WHARF_AZURE_BUFFER_DIR'],
    kind: 'string',
    help: "Folder for the temporary files blocks are gathered in; unset uses the system's temporary folder.",
    group: azureGroup,
  },
];

export interface GcsSettings extends GcsConnection {
  readonly prefix: string;
  readonly partSize: number;
  readonly partConcurrency: number;
  readonly bufferDir: string | undefined;
}

/** Everything the Azure storage needs. Nothing logs this object. */
export interface AzureSettings extends AzureConnection {
  readonly prefix: string;
  readonly blockSize: number;
  readonly blockConcurrency: number;
  readonly bufferDir: string | undefined;
}

function optional(options: RawOptions, key: string): string | undefined {
  const value = options[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function integer(options: RawOptions, key: string): number {
  const value = options[key];
  return typeof value === 'number' ? value : 0;
}

function url(options: RawOptions, key: string, flag: string): string | undefined {
  const value = optional(options, key);
  if (value !== undefined && !/^https?:\/\/[^\s/]+/.test(value)) {
    throw new ConfigError(`--${flag}: expected an http:// or https:// URL, got ${JSON.stringify(value)}`);
  }
  return value?.replace(/\/+$/, '');
}

/** A prefix is a folder: no leading slash, and a trailing one when not empty. */
function prefix(options: RawOptions, key: string): string {
  const value = (optional(options, key) ?? '').replace(/^\/+/, '');
  if (value.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new ConfigError(`--${key === 'gcsPrefix' ? 'gcs' : 'azure'}-prefix: no . or .. segments`);
  }
  return value === '' || value.endsWith('/') ? value : `${value}/`;
}

/** Shapes and checks the GCS options; called only when --storage gcs is selected. */
export function gcsSettingsFrom(options: RawOptions): GcsSettings {
  const bucket = optional(options, 'gcsBucket');
  if (bucket === undefined) throw new ConfigError('--gcs-bucket is required with --storage gcs');
  return Object.freeze({
    bucket,
    endpoint: url(options, 'gcsUrl', 'gcs-url'),
    projectId: optional(options, 'gcsProject'),
    keyFile: optional(options, 'gcsKeyFile'),
    prefix: prefix(options, 'gcsPrefix'),
    partSize: integer(options, 'gcsPartSize'),
    partConcurrency: integer(options, 'gcsPartConcurrency'),
    bufferDir: optional(options, 'gcsBufferDir'),
  });
}

/** Shapes and checks the Azure options; called only when --storage azure is selected. */
export function azureSettingsFrom(options: RawOptions): AzureSettings {
  const container = optional(options, 'azureContainer');
  if (container === undefined) throw new ConfigError('--azure-container is required with --storage azure');
  const account = optional(options, 'azureAccount');
  let key = optional(options, 'azureKey');
  const keyPath = optional(options, 'azureKeyPath');
  if (key === undefined && keyPath !== undefined) {
    try {
      key = readFileSync(keyPath, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ConfigError(`--azure-key-path: cannot read ${keyPath}: ${(error as Error).message}`);
    }
  }
  const sas = optional(options, 'azureSas');
  const connectionString = optional(options, 'azureConnectionString');
  const given = [key, sas, connectionString].filter((value) => value !== undefined).length;
  if (given !== 1) {
    throw new ConfigError(
      'with --storage azure give exactly one of --azure-key (or --azure-key-path), --azure-sas and --azure-connection-string',
    );
  }
  if (connectionString === undefined && account === undefined) {
    throw new ConfigError('--azure-account is required with --azure-key or --azure-sas');
  }
  return Object.freeze({
    container,
    endpoint: url(options, 'azureUrl', 'azure-url'),
    account,
    key,
    sas,
    connectionString,
    prefix: prefix(options, 'azurePrefix'),
    blockSize: integer(options, 'azureBlockSize'),
    blockConcurrency: integer(options, 'azureBlockConcurrency'),
    bufferDir: optional(options, 'azureBufferDir'),
  });
}
