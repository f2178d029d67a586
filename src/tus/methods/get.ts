import { pipeline } from 'node:stream/promises';
import { WharfError } from '../../errors.ts';
import { finalFailure, isAwaitingApproval, isComplete } from '../../info/upload-record.ts';
import type { TusExchange } from '../context.ts';
import { finalFailedError } from '../headers.ts';

/** Types a browser may render inline; anything else is served as an attachment (as tusd does). */
const inlineTypes = new Set([
  'text/plain',
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/bmp',
  'image/webp',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/webm',
  'audio/ogg',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'application/ogg',
  'application/pdf',
]);

const mediaType = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** Lone UTF-16 surrogates: a high one not followed by a low one, a low one not after a high one. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The Content-Disposition of a download: an ASCII `filename` for old clients and the exact name as `filename*`
 * (RFC 8187). Its value may hold only attr-chars, which encodeURIComponent's output is but for `'`, `(`, `)` and
 * `*`, so those are encoded too. A lone surrogate (a name only a hook's change of the metadata can give, since
 * metadata is decoded from UTF-8) becomes U+FFFD: encodeURIComponent would throw, and the download answer 500.
 */
export function contentDisposition(kind: 'inline' | 'attachment', filename: string | undefined): string {
  if (!filename) return kind;
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const exact = encodeURIComponent(filename.replace(loneSurrogate, '\uFFFD')).replace(
    /['()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/** Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range; multiple or invalid ranges are served whole. */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'whole' | 'unsatisfiable' {
  if (!header) return 'whole';
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return 'whole';
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return 'whole';
  let start: number;
  let end: number;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    // A last byte before the first is an invalid range, which is ignored (RFC 9110 14.1.1, 14.2), not unsatisfiable.
    if (last !== '' && Number(last) < start) return 'whole';
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** GET (Wharf's and rustus's `getting` extension): download a finished upload, with Range support. */
export async function handleGet(exchange: TusExchange, id: string): Promise<void> {
  const { req, res } = exchange;
  const upload = await exchange.service.getForDownload(id, exchange.describeRequest);
  const failedFinal = finalFailure(upload);
  if (failedFinal !== undefined) throw finalFailedError(failedFinal);
  if (!isComplete(upload)) throw new WharfError('ERR_NOT_DOWNLOADABLE');
  // Quarantine: bytes pre-finish hooks (a virus scanner) have not approved are not served.
  if (isAwaitingApproval(upload)) throw new WharfError('ERR_AWAITING_APPROVAL');
  // A refused upload keeps its bytes for inspection (hook modules can read them), not for clients.
  if (typeof upload.failure === 'string' && upload.failure !== '') throw new WharfError('ERR_UPLOAD_FAILED');
  const size = upload.length ?? 0;
  // Refused, and the bytes opened, before the upload's headers are set: an error's text must not go out labelled
  // with the upload's type and disposition (a PDF viewer handed an error, a download named after the file).
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    throw new WharfError('ERR_RANGE_NOT_SATISFIABLE', { headers: { 'Content-Range': `bytes */${size}` } });
  }
  const filetype = upload.metadata.filetype ?? upload.metadata.type;
  const type = filetype && mediaType.test(filetype) ? filetype.toLowerCase() : 'application/octet-stream';
  const filename = upload.metadata.filename ?? upload.metadata.name;
  const disposition = contentDisposition(inlineTypes.has(type) ? 'inline' : 'attachment', filename);
  // The whole upload is asked for as a range too, so a store never even reads past the recorded length.
  const bytes = range === 'whole' ? { start: 0, end: size - 1 } : range;
  const stream = size === 0 ? undefined : await exchange.service.download(id, bytes);
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Disposition', disposition);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Last-Modified', new Date(upload.createdAt).toUTCString());
  if (range === 'whole') {
    res.statusCode = 200;
    res.setHeader('Content-Length', String(size));
  } else {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  }
  if (stream === undefined) {
    res.end();
    return;
  }
  await pipeline(stream, atMost(bytes.end - bytes.start + 1), res);
}

/**
 * Passes on exactly `length` bytes, the announced Content-Length, whatever the store's stream holds: bytes
 * past it would be read on a kept-alive connection as the next response, one the uploader wrote. A stream
 * that ends short fails, so the connection is closed instead of leaving the client waiting for the rest.
 */
function atMost(length: number): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* bounded(source) {
    let remaining = length;
    for await (const chunk of source) {
      if (chunk.length >= remaining) {
        yield chunk.subarray(0, remaining);
        // Returning ends the pipeline's read of the store (its stream is destroyed, its file closed).
        return;
      }
      remaining -= chunk.length;
      yield chunk;
    }
    throw new Error(`the stored upload ended ${remaining} bytes short of its length`);
  };
}
