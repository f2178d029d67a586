import { readFileSync } from 'node:fs';
import type { S3Connection } from '../storage/s3-bucket.ts';
import { ConfigError, type OptionSpec, type RawOptions } from './option-table.ts';

const group = 'S3 storage (s3, hybrid-s3)';
const mebibyte = 1024 * 1024;

/** S3 refuses parts below 5 MiB (except the last one). */
export const s3MinimumPartSize = 5 * mebibyte;

/** Options of the `s3` and `hybrid-s3` storages, with rustus's flag and variable names. */
export const s3Options: readonly OptionSpec[] = [
  {
    key: 's3Url',
    flag: 's3-url',
    env: ['WHARF_S3_URL', 'RUSTUS_S3_URL'],
    kind: 'string',
    help: "S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO; unset uses AWS's endpoint for the region.",
    group,
  },
  {
    key: 's3Bucket',
    flag: 's3-bucket',
    env: ['WHARF_S3_BUCKET', 'RUSTUS_S3_BUCKET'],
    kind: 'string',
    help: 'Bucket that holds the uploads (must exist). Required with --storage s3 or hybrid-s3.',
    group,
  },
  {
    key: 's3Region',
    flag: 's3-region',
    env: ['WHARF_S3_REGION', 'RUSTUS_S3_REGION'],
    kind: 'string',
    default: 'us-east-1',
    help: 'Region of the bucket (used for request signing).',
    group,
  },
  {
    key: 's3AccessKey',
    flag: 's3-access-key',
    env: ['WHARF_S3_ACCESS_KEY', 'RUSTUS_S3_ACCESS_KEY'],
    kind: 'string',
    help: "Access key id. Without it (or --s3-access-key-path) the AWS SDK's default credential chain is used.",
    group,
  },
  {
    key: 's3AccessKeyPath',
    flag: 's3-access-key-path',
    env: ['WHARF_S3_ACCESS_KEY_PATH', 'RUSTUS_S3_ACCESS_KEY_PATH'],
    kind: 'string',
    help: 'File holding the access key id (one trailing newline is ignored).',
    group,
  },
  {
    key: 's3SecretKey',
    flag: 's3-secret-key',
    env: ['WHARF_S3_SECRET_KEY', 'RUSTUS_S3_SECRET_KEY'],
    kind: 'string',
    help: 'Secret access key. Never logged.',
    group,
  },
  {
    key: 's3SecretKeyPath',
    flag: 's3-secret-key-path',
    env: ['WHARF_S3_SECRET_KEY_PATH', 'RUSTUS_S3_SECRET_KEY_PATH'],
    kind: 'string',
    help: 'File holding the secret access key (one trailing newline is ignored).',
    group,
  },
  {
    key: 's3SecurityToken',
    flag: 's3-security-token',
    env: ['WHARF_S3_SECURITY_TOKEN', 'RUSTUS_S3_SECURITY_TOKEN'],
    kind: 'string',
    help: 'Temporary-credentials token (same as --s3-session-token; rustus accepts both names).',
    group,
  },
  {
    key: 's3SessionToken',
    flag: 's3-session-token',
    env: ['WHARF_S3_SESSION_TOKEN', 'RUSTUS_S3_SESSION_TOKEN'],
    kind: 'string',
    help: 'Session token sent with temporary credentials.',
    group,
  },
  {
    key: 's3Profile',
    flag: 's3-profile',
    env: ['WHARF_S3_PROFILE', 'RUSTUS_S3_PROFILE'],
    kind: 'string',
    help: 'Profile from ~/.aws/credentials and ~/.aws/config, used when no access key is given.',
    group,
  },
  {
    key: 's3ForcePathStyle',
    flag: 's3-force-path-style',
    env: ['WHARF_S3_FORCE_PATH_STYLE', 'RUSTUS_S3_FORCE_PATH_STYLE'],
    kind: 'boolean',
    default: 'false',
    help: 'Address the bucket as <url>/<bucket>/<key> instead of <bucket>.<host> (MinIO and most self-hosted stores need it).',
    group,
  },
  {
    key: 's3Headers',
    flag: 's3-headers',
    env: ['WHARF_S3_HEADERS', 'RUSTUS_S3_HEADERS'],
    kind: 'string',
    help: 'JSON object of extra headers sent with every S3 request, e.g. {"x-amz-acl":"public-read"}.',
    group,
  },
  {
    key: 's3PartSize',
    flag: 's3-part-size',
    env: ['WHARF_S3_PART_SIZE'],
    kind: 'size',
    min: s3MinimumPartSize,
    default: '8MiB',
    help: 'Size of the first multipart-upload parts (at least 5 MiB). Parts double in size every 900 parts (up to 5 GiB), so an upload reaches the 5 TiB S3 allows within its 10 000 parts.',
    group,
  },
  {
    key: 's3PartConcurrency',
    flag: 's3-part-concurrency',
    env: ['WHARF_S3_PART_CONCURRENCY'],
    kind: 'integer',
    min: 1,
    default: '2',
    help: 'Parts of one upload sent to S3 at the same time. Each waits in its own temporary file, so an upload holds at most (this + 1) parts on disk.',
    group,
  },
  {
    key: 's3BufferDir',
    flag: 's3-buffer-dir',
    env: ['WHARF_S3_BUFFER_DIR'],
    kind: 'string',
    help: "Folder for the temporary files parts are gathered in before they are sent; unset uses the system's temporary folder.",
    group,
  },
  {
    key: 's3ConcatConcurrentDownloads',
    flag: 's3-concat-concurrent-downloads',
    env: ['WHARF_S3_CONCAT_CONCURRENT_DOWNLOADS', 'RUSTUS_S3_CONCAT_CONCURRENT_DOWNLOADS'],
    kind: 'integer',
    min: 1,
    default: '10',
    help: 'Server-side part copies running at once while concatenating uploads.',
    group,
  },
];

/** Everything the S3 storages need: how to reach the bucket, and Wharf's own tuning. Nothing logs this object. */
export interface S3Settings extends S3Connection {
  readonly partSize: number;
  readonly partConcurrency: number;
  readonly bufferDir: string | undefined;
  readonly concatConcurrency: number;
}

function optional(options: RawOptions, key: string): string | undefined {
  const value = options[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A value given directly or through a file (Docker and Kubernetes secrets end with a newline). */
function secret(options: RawOptions, key: string, pathKey: string, flag: string): string | undefined {
  const direct = optional(options, key);
  if (direct !== undefined) return direct;
  const file = optional(options, pathKey);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError(`--${flag}-path: cannot read ${file}: ${(error as Error).message}`);
  }
}

function parseHeaders(text: string | undefined): Readonly<Record<string, string>> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('--s3-headers: expected a JSON object such as {"x-amz-acl":"public-read"}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('--s3-headers: expected a JSON object of header names to string values');
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new ConfigError(
        `--s3-headers: header ${JSON.stringify(name)} needs a token name and a string value`,
      );
    }
    headers[name.toLowerCase()] = value;
  }
  return Object.freeze(headers);
}

/** Shapes and checks the S3 options; called only when an S3 storage is selected. */
export function s3SettingsFrom(options: RawOptions): S3Settings {
  const bucket = optional(options, 's3Bucket');
  if (bucket === undefined) throw new ConfigError('--s3-bucket is required with --storage s3 or hybrid-s3');
  const endpoint = optional(options, 's3Url');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    throw new ConfigError(`--s3-url: expected an http:// or https:// URL, got ${JSON.stringify(endpoint)}`);
  }
  const accessKeyId = secret(options, 's3AccessKey', 's3AccessKeyPath', 's3-access-key');
  const secretAccessKey = secret(options, 's3SecretKey', 's3SecretKeyPath', 's3-secret-key');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError('--s3-access-key and --s3-secret-key (or their -path forms) go together');
  }
  const sessionToken = optional(options, 's3SessionToken') ?? optional(options, 's3SecurityToken');
  const integer = (key: string): number => {
    const value = options[key];
    return typeof value === 'number' ? value : 0;
  };
  return Object.freeze({
    endpoint,
    bucket,
    region: optional(options, 's3Region') ?? 'us-east-1',
    credentials:
      accessKeyId !== undefined && secretAccessKey !== undefined
        ? { accessKeyId, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) }
        : undefined,
    profile: optional(options, 's3Profile'),
    forcePathStyle: options.s3ForcePathStyle === true,
    headers: parseHeaders(optional(options, 's3Headers')),
    partSize: integer('s3PartSize'),
    partConcurrency: integer('s3PartConcurrency'),
    bufferDir: optional(options, 's3BufferDir'),
    concatConcurrency: integer('s3ConcatConcurrentDownloads'),
  });
}
