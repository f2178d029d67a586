import { WharfError } from '../../errors.ts';
import { isValidUploadId } from '../../info/ids.ts';
import { openRequestBody, type TusExchange } from '../context.ts';
import {
  hasBody,
  httpDate,
  isOffsetStream,
  parseUploadChecksum,
  parseUploadConcat,
  parseUploadLength,
  parseUploadMetadata,
} from '../headers.ts';
import { requestOrigin } from '../request-info.ts';
import { endWithHookResponse } from '../respond.ts';

/** An absolute URL (`scheme:`) or a scheme-relative one (`//host/...`) names a host; a path alone does not. */
const namesHost = /^(?:[A-Za-z][A-Za-z0-9+.-]*:|\/\/)/;

/**
 * Turns each URL of `Upload-Concat: final;...` into an upload id of this endpoint. A URL is ours when it is a
 * path, or an absolute URL whose origin is the one this request reached (the origin of the `Location` Wharf
 * sends), and its path is `<base path>/<id>`. Another host or another path is refused rather than resolved to
 * a local upload, and so is a partial listed twice (each listing would copy its bytes again).
 */
function partIdsFrom(urls: readonly string[], basePath: string, origin: string | undefined): string[] {
  let ours: string | undefined;
  try {
    ours = origin === undefined ? undefined : new URL(origin).origin;
  } catch {
    ours = undefined;
  }
  const base = ours ?? 'http://wharf.invalid';
  const ids = urls.map((url) => {
    let parsed: URL;
    try {
      parsed = new URL(url, base);
    } catch {
      throw new WharfError('ERR_INVALID_CONCAT', {
        message: `Upload-Concat: ${JSON.stringify(url)} is not a URL`,
      });
    }
    const foreign = (): WharfError =>
      new WharfError('ERR_CONCAT_FOREIGN_URL', {
        message: `Upload-Concat: ${JSON.stringify(url)} is not an upload of this endpoint (${basePath}/<id> on ${origin ?? 'this server'})`,
      });
    // Without a Host header the request's origin is unknown: only paths can be checked.
    if (namesHost.test(url) && (ours === undefined || parsed.origin !== ours)) throw foreign();
    const prefix = `${basePath}/`;
    if (!parsed.pathname.startsWith(prefix)) throw foreign();
    let id: string;
    try {
      id = decodeURIComponent(parsed.pathname.slice(prefix.length)).replace(/\/$/, '');
    } catch {
      throw foreign();
    }
    if (!isValidUploadId(id)) throw foreign();
    return id;
  });
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) {
      throw new WharfError('ERR_CONCAT_DUPLICATE_PART', {
        message: `Upload-Concat: the partial upload ${id} is listed more than once`,
      });
    }
    seen.add(id);
  }
  return ids;
}

/** POST (creation, with the creation-with-upload, defer-length and concatenation extensions). */
export async function handlePost(exchange: TusExchange): Promise<void> {
  const { req, res, settings } = exchange;
  const extensions = settings.extensions;
  const concat = extensions.has('concatenation')
    ? parseUploadConcat(req.headers['upload-concat'])
    : undefined;
  const length = parseUploadLength(req.headers['upload-length']);
  const deferHeader = req.headers['upload-defer-length'];
  const metadata = parseUploadMetadata(req.headers['upload-metadata']);
  const withBody = hasBody(req.headers);

  if (concat?.kind === 'final') {
    if (length !== undefined) throw new WharfError('ERR_FINAL_WITH_LENGTH');
    if (deferHeader !== undefined) throw new WharfError('ERR_AMBIGUOUS_UPLOAD_LENGTH');
    if (withBody) throw new WharfError('ERR_MODIFY_FINAL', { message: 'a final upload cannot carry a body' });
  } else {
    if (deferHeader !== undefined) {
      if (!extensions.has('creation-defer-length')) {
        throw new WharfError('ERR_INVALID_UPLOAD_LENGTH_DEFER', {
          message: 'creation-defer-length is disabled',
        });
      }
      if (deferHeader !== '1') throw new WharfError('ERR_INVALID_UPLOAD_LENGTH_DEFER');
      if (length !== undefined) throw new WharfError('ERR_AMBIGUOUS_UPLOAD_LENGTH');
    } else if (length === undefined) {
      throw new WharfError('ERR_INVALID_UPLOAD_LENGTH', {
        message: 'Upload-Length or Upload-Defer-Length: 1 is required',
      });
    }
  }

  let checksum: ReturnType<typeof parseUploadChecksum>;
  const acceptBody = withBody && extensions.has('creation-with-upload') && concat?.kind !== 'final';
  if (acceptBody) {
    // A body with another content type is refused, never silently dropped (tus creation-with-upload).
    if (!isOffsetStream(req.headers['content-type'])) throw new WharfError('ERR_INVALID_CONTENT_TYPE');
    checksum = extensions.has('checksum') ? parseUploadChecksum(req.headers['upload-checksum']) : undefined;
    const declared = req.headers['content-length'];
    if (
      length !== undefined &&
      declared !== undefined &&
      /^\d+$/.test(declared) &&
      Number(declared) > length
    ) {
      throw new WharfError('ERR_UPLOAD_SIZE_EXCEEDED');
    }
  }

  let hookResponse:
    | { readonly body?: string; readonly headers: Readonly<Record<string, string>> }
    | undefined;
  const upload = await exchange.service.create({
    onHookResponse: (response) => {
      hookResponse = response;
    },
    length: concat?.kind === 'final' ? null : (length ?? null),
    deferLength: deferHeader !== undefined,
    metadataHeader: metadata?.raw ?? null,
    metadata: metadata?.values ?? {},
    concat:
      concat?.kind === 'final'
        ? {
            kind: 'final',
            header: concat.header,
            partIds: partIdsFrom(concat.urls, settings.basePath, requestOrigin(req, settings.behindProxy)),
          }
        : concat,
    describeRequest: exchange.describeRequest,
    ...(acceptBody ? { body: (limit: number) => openRequestBody(exchange, limit, checksum), checksum } : {}),
  });

  const origin = requestOrigin(req, settings.behindProxy) ?? '';
  res.statusCode = 201;
  res.setHeader('Location', `${origin}${settings.basePath}/${upload.id}`);
  if (!upload.isFinal) res.setHeader('Upload-Offset', String(upload.offset));
  if (upload.expiresAt !== null && extensions.has('expiration'))
    res.setHeader('Upload-Expires', httpDate(upload.expiresAt));
  if (!req.complete && withBody) res.setHeader('Connection', 'close');
  // Answering pre-create (and, when the body completes the upload, pre-finish) hooks may add headers and a body.
  endWithHookResponse(res, hookResponse);
}
