import { WharfError } from '../errors.ts';

export const tusVersion = '1.0.0';
export const offsetContentType = 'application/offset+octet-stream';
export const checksumAlgorithms = ['md5', 'sha1', 'sha256', 'sha512'] as const;
export type ChecksumAlgorithm = (typeof checksumAlgorithms)[number];

/** A header value, or undefined when absent. Duplicated headers arrive joined with ', ' by Node. */
export type HeaderValue = string | string[] | undefined;

function single(value: HeaderValue): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** tus integers: plain decimal digits, within the safe-integer range (2^53 bytes is 8 PiB). */
function parseNonNegativeInteger(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

export function parseUploadOffset(value: HeaderValue): number {
  const text = single(value);
  const offset = text === undefined ? undefined : parseNonNegativeInteger(text.trim());
  if (offset === undefined) throw new WharfError('ERR_INVALID_OFFSET');
  return offset;
}

/** Upload-Length, or undefined when the header is absent. */
export function parseUploadLength(value: HeaderValue): number | undefined {
  const text = single(value);
  if (text === undefined) return undefined;
  const length = parseNonNegativeInteger(text.trim());
  if (length === undefined) throw new WharfError('ERR_INVALID_UPLOAD_LENGTH');
  return length;
}

export interface ParsedMetadata {
  readonly raw: string;
  readonly values: Record<string, string>;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A metadata key: printable ASCII (0x21-0x7E) except the comma that separates pairs. */
const metadataKeyPattern = /^[\x21-\x2b\x2d-\x7e]+$/;

/**
 * Upload-Metadata: comma-separated `key base64value` pairs; a key alone means an empty value.
 * Strict: malformed base64, keys with spaces or duplicate keys are refused (400) rather than dropped, and so
 * is a key that is not printable ASCII. The values map has no prototype: `__proto__` or `constructor` are
 * plain keys like any other.
 */
export function parseUploadMetadata(value: HeaderValue): ParsedMetadata | undefined {
  const raw = single(value);
  if (raw === undefined) return undefined;
  const values: Record<string, string> = Object.create(null) as Record<string, string>;
  if (raw.trim() === '') return { raw, values };
  for (const pair of raw.split(',')) {
    const parts = pair.trim().split(' ');
    const key = parts[0] ?? '';
    if (key === '' || parts.length > 2) {
      throw new WharfError('ERR_INVALID_METADATA', {
        message: `Upload-Metadata: malformed pair ${JSON.stringify(pair.trim())}`,
      });
    }
    if (!metadataKeyPattern.test(key)) {
      throw new WharfError('ERR_INVALID_METADATA_KEY', {
        message: `Upload-Metadata: key ${JSON.stringify(key)} is not printable ASCII without spaces or commas`,
      });
    }
    if (Object.hasOwn(values, key)) {
      throw new WharfError('ERR_INVALID_METADATA', {
        message: `Upload-Metadata: duplicate key ${JSON.stringify(key)}`,
      });
    }
    const encoded = parts[1] ?? '';
    if (!base64Pattern.test(encoded)) {
      throw new WharfError('ERR_INVALID_METADATA', {
        message: `Upload-Metadata: value of ${JSON.stringify(key)} is not base64`,
      });
    }
    values[key] = Buffer.from(encoded, 'base64').toString('utf8');
  }
  return { raw, values };
}

export type ConcatRequest =
  | { readonly kind: 'partial'; readonly header: string }
  | { readonly kind: 'final'; readonly header: string; readonly urls: readonly string[] };

/** Upload-Concat: `partial`, or `final;<url> <url> ...` (absolute or relative URLs). */
export function parseUploadConcat(value: HeaderValue): ConcatRequest | undefined {
  const header = single(value);
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (trimmed === 'partial') return { kind: 'partial', header };
  if (trimmed.startsWith('final;')) {
    const urls = trimmed
      .slice('final;'.length)
      .split(' ')
      .filter((url) => url !== '');
    if (urls.length === 0)
      throw new WharfError('ERR_INVALID_CONCAT', { message: 'Upload-Concat: final lists no uploads' });
    return { kind: 'final', header, urls };
  }
  throw new WharfError('ERR_INVALID_CONCAT');
}

export interface ChecksumRequest {
  readonly algorithm: ChecksumAlgorithm;
  readonly digest: Buffer;
}

export function parseUploadChecksum(value: HeaderValue): ChecksumRequest | undefined {
  const header = single(value);
  if (header === undefined) return undefined;
  const parts = header.trim().split(' ');
  const algorithm = parts[0]?.toLowerCase() ?? '';
  const encoded = parts[1] ?? '';
  if (parts.length !== 2) throw new WharfError('ERR_INVALID_CHECKSUM_HEADER');
  if (!(checksumAlgorithms as readonly string[]).includes(algorithm)) {
    throw new WharfError('ERR_UNSUPPORTED_CHECKSUM_ALGORITHM', {
      message: `unsupported checksum algorithm ${JSON.stringify(algorithm)}`,
    });
  }
  const typed = algorithm as ChecksumAlgorithm;
  if (!base64Pattern.test(encoded)) throw new WharfError('ERR_INVALID_CHECKSUM_HEADER');
  // A digest of the wrong length for its algorithm cannot match any chunk: it is a mismatch (460, chunk
  // discarded) once the body is read, as the tus compliance suites expect, not a malformed header.
  return { algorithm: typed, digest: Buffer.from(encoded, 'base64') };
}

/** `Content-Type` compared on its media type only (parameters and case ignored). */
export function isOffsetStream(value: HeaderValue): boolean {
  const text = single(value);
  return text !== undefined && text.split(';')[0]?.trim().toLowerCase() === offsetContentType;
}

export function hasBody(headers: {
  'content-length'?: string | undefined;
  'transfer-encoding'?: string | undefined;
}): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

/** RFC 9110 IMF-fixdate, as Upload-Expires requires. */
export function httpDate(milliseconds: number): string {
  return new Date(milliseconds).toUTCString();
}

/** Text made safe for one header line (printable ASCII and tabs), at most 1 KiB. */
export function headerText(text: string): string {
  return text.replace(/[^\t\x20-\x7e]+/g, ' ').slice(0, 1024);
}

/**
 * A final upload that can never be built (a part is gone, or the parts exceed --max-file-size): `410 Gone`,
 * which tus clients read as "start again", with the reason in `Upload-Failed` (HEAD has no body).
 */
export function finalFailedError(reason: string): WharfError {
  return new WharfError('ERR_CONCAT_FAILED', {
    message: `the final upload cannot be built: ${reason}`,
    headers: { 'Upload-Failed': headerText(reason) },
  });
}
