import { WharfError } from '../../errors.ts';
import { openRequestBody, type TusExchange } from '../context.ts';
import {
  hasBody,
  httpDate,
  isOffsetStream,
  parseUploadChecksum,
  parseUploadLength,
  parseUploadOffset,
} from '../headers.ts';
import { endWithHookResponse, sendError } from '../respond.ts';

function contentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value)) return undefined;
  return Number(value);
}

/** PATCH: appends the body at Upload-Offset, streaming it to storage. */
export async function handlePatch(exchange: TusExchange, id: string): Promise<void> {
  const { req, res, settings } = exchange;
  if (!isOffsetStream(req.headers['content-type'])) throw new WharfError('ERR_INVALID_CONTENT_TYPE');
  const offset = parseUploadOffset(req.headers['upload-offset']);
  const checksum = settings.extensions.has('checksum')
    ? parseUploadChecksum(req.headers['upload-checksum'])
    : undefined;
  const declaredLength = settings.extensions.has('creation-defer-length')
    ? parseUploadLength(req.headers['upload-length'])
    : undefined;
  const outcome = await exchange.service.write(id, {
    offset,
    declaredLength,
    contentLength: contentLength(req.headers['content-length']),
    announcesBody: hasBody(req.headers),
    checksum,
    openBody: (limit) => openRequestBody(exchange, limit, checksum),
    describeRequest: exchange.describeRequest,
  });
  const { upload } = outcome;
  res.setHeader('Upload-Offset', String(upload.offset));
  if (upload.expiresAt !== null) res.setHeader('Upload-Expires', httpDate(upload.expiresAt));
  if (outcome.interruption) {
    // The bytes before the interruption are stored; the client (if still there) resumes from Upload-Offset.
    sendError(req, res, outcome.interruption, false);
    return;
  }
  res.statusCode = 204;
  // Answering pre-finish hooks may add headers and a body to the final PATCH's answer.
  endWithHookResponse(res, outcome.hookResponse);
}
