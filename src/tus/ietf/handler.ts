import { WharfError } from '../../errors.ts';
import type { UploadRecord } from '../../info/upload-record.ts';
import { finalFailure, isComplete } from '../../info/upload-record.ts';
import { openRequestBody, type TusExchange } from '../context.ts';
import { hasBody, parseUploadMetadata } from '../headers.ts';
import { handleGet } from '../methods/get.ts';
import { requestOrigin } from '../request-info.ts';
import { endWithHookResponse, sendError } from '../respond.ts';
import { contentDigest } from './digests.ts';
import { parseSfBoolean, parseSfInteger, sfBoolean } from './fields.ts';
import { sendInformational } from './informational.ts';
import type { DraftRules } from './interop.ts';
import { uploadLimit } from './limits.ts';
import { problem } from './problems.ts';

const partialUploadType = 'application/partial-upload';

/** `Upload-Complete` of the request (interop 3: the inverse `Upload-Incomplete`); undefined when absent. */
function requestCompletes(exchange: TusExchange, rules: DraftRules): boolean | undefined {
  const value = parseSfBoolean(exchange.req.headers[rules.completeField]);
  if (value === undefined) return undefined;
  return rules.completeField === 'upload-incomplete' ? !value : value;
}

function requireCompleteField(exchange: TusExchange, rules: DraftRules): boolean {
  const completes = requestCompletes(exchange, rules);
  if (completes === undefined) throw new WharfError('ERR_IETF_UPLOAD_COMPLETE_REQUIRED');
  return completes;
}

function setComplete(exchange: TusExchange, rules: DraftRules, complete: boolean): void {
  exchange.res.setHeader(
    rules.completeField === 'upload-incomplete' ? 'Upload-Incomplete' : 'Upload-Complete',
    sfBoolean(rules.completeField === 'upload-incomplete' ? !complete : complete),
  );
}

/**
 * The length of the request's content: its Content-Length, 0 for a request with no framing at all (neither
 * Content-Length nor Transfer-Encoding: no content, RFC 9112 6.3), undefined when only its end will tell (chunked).
 */
function contentLength(exchange: TusExchange): number | undefined {
  const { headers } = exchange.req;
  const value = headers['content-length'];
  if (value === undefined) return headers['transfer-encoding'] === undefined ? 0 : undefined;
  return /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

function inconsistentLength(detail: string): WharfError {
  return new WharfError('ERR_IETF_INCONSISTENT_LENGTH', {
    message: detail,
    ...problem('inconsistent-upload-length', {}, detail),
  });
}

/**
 * The length a creation or append indicates (draft "Length"): `Upload-Length`, or with `Upload-Complete: ?1`
 * and a Content-Length the offset plus that length. Both present and different is inconsistent.
 */
function indicatedLength(exchange: TusExchange, completes: boolean, offset: number): number | undefined {
  const declared = parseSfInteger(exchange.req.headers['upload-length']);
  const bodyLength = contentLength(exchange);
  const implied = completes && bodyLength !== undefined ? offset + bodyLength : undefined;
  if (declared !== undefined && implied !== undefined && declared !== implied) {
    throw inconsistentLength(
      `Upload-Length ${declared} differs from the ${implied} bytes implied by Upload-Complete: ?1 and Content-Length`,
    );
  }
  return declared ?? implied;
}

function uploadUrl(exchange: TusExchange, id: string): string {
  const { req, settings } = exchange;
  return `${requestOrigin(req, settings.behindProxy) ?? ''}${settings.basePath}/${id}`;
}

/** Representation metadata: tus's Upload-Metadata if sent (tus-js-client does), else Content-Type and filename. */
function metadataOf(exchange: TusExchange): { header: string | null; values: Record<string, string> } {
  const { headers } = exchange.req;
  const tus = parseUploadMetadata(headers['upload-metadata']);
  if (tus !== undefined) return { header: tus.raw, values: tus.values };
  const values: Record<string, string> = Object.create(null) as Record<string, string>;
  const type = headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
  if (type && type !== partialUploadType && type !== 'application/offset+octet-stream')
    values.filetype = type;
  const disposition = headers['content-disposition'];
  const filename =
    disposition === undefined
      ? undefined
      : (/filename\*=UTF-8''([^;]+)/i.exec(disposition)?.[1] ?? /filename="([^"]*)"/i.exec(disposition)?.[1]);
  if (filename !== undefined) {
    try {
      values.filename = decodeURIComponent(filename);
    } catch {
      values.filename = filename;
    }
  }
  const entries = Object.entries(values);
  const header =
    entries.length === 0
      ? null
      : entries.map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`).join(',');
  return { header, values };
}

/** Upload creation (draft "Upload Creation"): any method with content on the endpoint, plus Upload-Complete. */
async function create(exchange: TusExchange, rules: DraftRules): Promise<void> {
  const { req, res, settings } = exchange;
  const completes = requireCompleteField(exchange, rules);
  const length = indicatedLength(exchange, completes, 0);
  const withBody = hasBody(req.headers);
  const metadata = metadataOf(exchange);
  const digest = contentDigest(req.headers['content-digest']);
  let created: UploadRecord | undefined;
  let hookResponse:
    | { readonly body?: string; readonly headers: Readonly<Record<string, string>> }
    | undefined;
  try {
    const upload = await exchange.service.create({
      length: length ?? null,
      deferLength: length === undefined,
      metadataHeader: metadata.header,
      metadata: metadata.values,
      concat: undefined,
      describeRequest: exchange.describeRequest,
      completesAtEnd: completes,
      onHookResponse: (response) => {
        hookResponse = response;
      },
      onCreated: (record) => {
        created = record;
        // Announced before a byte of the body is read, so an interrupted creation can be resumed.
        const headers: Record<string, string> = {
          Location: uploadUrl(exchange, record.id),
          'Upload-Draft-Interop-Version': String(rules.version),
        };
        if (rules.announcesLimits) headers['Upload-Limit'] = uploadLimit(settings, rules, record, Date.now());
        sendInformational(res, 104, 'Upload Resumption Supported', headers);
      },
      ...(withBody
        ? { body: (limit: number) => openRequestBody(exchange, limit, digest), checksum: digest }
        : {}),
    });
    created = upload;
  } catch (error) {
    // Once the upload exists its URL stays in every answer (draft: identical Location in interim and final).
    if (created !== undefined && !res.headersSent) res.setHeader('Location', uploadUrl(exchange, created.id));
    throw error;
  }
  const upload = created;
  res.statusCode = 201;
  res.setHeader('Location', uploadUrl(exchange, upload.id));
  res.setHeader('Upload-Offset', String(upload.offset));
  if (upload.length !== null) res.setHeader('Upload-Length', String(upload.length));
  setComplete(exchange, rules, isComplete(upload));
  if (rules.announcesLimits) res.setHeader('Upload-Limit', uploadLimit(settings, rules, upload, Date.now()));
  if (!req.complete && withBody) res.setHeader('Connection', 'close');
  // A body that ended before Upload-Complete's promise was kept (resumable), but it did not complete the upload.
  if (completes && !isComplete(upload) && req.complete) {
    throw inconsistentLength(`the body ended at ${upload.offset} bytes, short of the upload length`);
  }
  endWithHookResponse(res, hookResponse);
}

/** Offset retrieval (draft "Offset Retrieval"): HEAD on the upload resource. */
async function retrieveOffset(exchange: TusExchange, rules: DraftRules, id: string): Promise<void> {
  const { res, settings } = exchange;
  const upload = await exchange.service.settle(id);
  const failedFinal = finalFailure(upload);
  if (failedFinal !== undefined) throw new WharfError('ERR_CONCAT_FAILED', { message: failedFinal });
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Upload-Offset', String(upload.offset));
  setComplete(exchange, rules, isComplete(upload));
  if (upload.length !== null) res.setHeader('Upload-Length', String(upload.length));
  if (rules.announcesLimits) res.setHeader('Upload-Limit', uploadLimit(settings, rules, upload, Date.now()));
  res.statusCode = 204;
  res.end();
}

/** Upload append (draft "Upload Append"): PATCH with application/partial-upload at Upload-Offset. */
async function append(exchange: TusExchange, rules: DraftRules, id: string): Promise<void> {
  const { req, res } = exchange;
  const type = req.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
  if (rules.requiresPartialUploadType && type !== partialUploadType) {
    throw new WharfError('ERR_IETF_PARTIAL_UPLOAD_TYPE');
  }
  const offset = parseSfInteger(req.headers['upload-offset']);
  if (offset === undefined) throw new WharfError('ERR_INVALID_OFFSET');
  const completes = requireCompleteField(exchange, rules);
  const length = indicatedLength(exchange, completes, offset);
  // Read without the lock: completeness and a known length never change back. The offset is compared by the
  // service under the lock, after a stale append still in flight was interrupted (draft "Concurrency").
  const current = await exchange.service.get(id);
  if (isComplete(current) && rules.completedAppend === 'completed-upload') {
    throw new WharfError('ERR_IETF_COMPLETED_UPLOAD', { ...problem('completed-upload') });
  }
  // A wrong offset is the 409 the service answers under the lock; only a matching one is checked for length.
  if (
    current.offset === offset &&
    current.length !== null &&
    length !== undefined &&
    length !== current.length
  ) {
    throw inconsistentLength(`the upload's length is ${current.length}, this request indicates ${length}`);
  }
  const digest = contentDigest(req.headers['content-digest']);
  const outcome = await exchange.service.write(id, {
    offset,
    declaredLength: length,
    contentLength: contentLength(exchange),
    announcesBody: hasBody(req.headers),
    checksum: digest,
    completesAtEnd: completes,
    openBody: (limit) => openRequestBody(exchange, limit, digest),
    describeRequest: exchange.describeRequest,
  });
  const { upload } = outcome;
  res.setHeader('Upload-Offset', String(upload.offset));
  setComplete(exchange, rules, isComplete(upload));
  if (outcome.interruption) {
    sendError(req, res, outcome.interruption, false);
    return;
  }
  if (completes && !isComplete(upload)) {
    throw inconsistentLength(`the body ended at ${upload.offset} bytes, short of the upload length`);
  }
  res.statusCode = 204;
  endWithHookResponse(res, outcome.hookResponse);
}

function mismatchedOffset(expected: number, provided: number): WharfError {
  return new WharfError('ERR_MISMATCHED_OFFSET', {
    ...problem('mismatching-upload-offset', { 'expected-offset': expected, 'provided-offset': provided }),
    headers: { 'Content-Type': 'application/problem+json', 'Upload-Offset': String(expected) },
  });
}

/** `OPTIONS`: the limits a new upload gets (draft "Limits": MUST on a resource that creates uploads). */
function options(exchange: TusExchange, rules: DraftRules): void {
  const { res, settings } = exchange;
  if (rules.announcesLimits)
    res.setHeader('Upload-Limit', uploadLimit(settings, rules, undefined, Date.now()));
  res.setHeader('Accept-Patch', partialUploadType);
  res.statusCode = 204;
  res.end();
}

async function dispatch(exchange: TusExchange, rules: DraftRules): Promise<void> {
  const { method, uploadId, settings } = exchange;
  if (method === 'OPTIONS') return options(exchange, rules);
  if (uploadId === undefined) {
    if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && settings.extensions.has('creation'))
      return create(exchange, rules);
    throw new WharfError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: 'OPTIONS, POST, PUT, PATCH' } });
  }
  switch (method) {
    case 'HEAD':
      return retrieveOffset(exchange, rules, uploadId);
    case 'PATCH':
      return append(exchange, rules, uploadId);
    case 'DELETE': {
      if (!settings.extensions.has('termination')) throw new WharfError('ERR_EXTENSION_DISABLED');
      const hookResponse = await exchange.service.terminate(uploadId, exchange.describeRequest);
      exchange.res.statusCode = 204;
      endWithHookResponse(exchange.res, hookResponse);
      return;
    }
    case 'GET':
      if (!settings.extensions.has('getting')) throw new WharfError('ERR_EXTENSION_DISABLED');
      return handleGet(exchange, uploadId);
    default:
      throw new WharfError('ERR_METHOD_NOT_ALLOWED', {
        headers: { Allow: 'OPTIONS, HEAD, PATCH, GET, DELETE' },
      });
  }
}

/**
 * A request of "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload), told apart by its
 * Upload-Draft-Interop-Version. Everything goes through the same UploadService as tus 1.0 (stores, locks,
 * hooks, limits); this layer only speaks the draft's fields. Failures get the draft's fields added here and
 * are answered by the common `sendError`.
 */
export async function handleDraftRequest(exchange: TusExchange, rules: DraftRules): Promise<void> {
  exchange.res.removeHeader('Tus-Resumable');
  try {
    await dispatch(exchange, rules);
  } catch (error) {
    throw withDraftFields(exchange, rules, error);
  }
}

/** Adds what the draft asks of error answers: Upload-Complete, Upload-Limit on 413, the 409 problem. */
function withDraftFields(exchange: TusExchange, rules: DraftRules, error: unknown): unknown {
  if (!(error instanceof WharfError) || exchange.res.headersSent) return error;
  const { res, settings } = exchange;
  if (!res.hasHeader(rules.completeField)) setComplete(exchange, rules, false);
  if (error.status === 413 && rules.announcesLimits) {
    res.setHeader('Upload-Limit', uploadLimit(settings, rules, undefined, Date.now()));
  }
  if (error.code === 'ERR_MISMATCHED_OFFSET' && error.body === undefined) {
    // Raised by the service (under the lock): the expected offset is in its Upload-Offset header.
    const expected = Number(error.headers['Upload-Offset']);
    const provided = parseSfInteger(exchange.req.headers['upload-offset']) ?? -1;
    return mismatchedOffset(expected, provided);
  }
  if (error.code === 'ERR_UPLOAD_ALREADY_COMPLETE') {
    return rules.completedAppend === 'completed-upload'
      ? new WharfError('ERR_IETF_COMPLETED_UPLOAD', { ...problem('completed-upload') })
      : inconsistentLength('the upload is complete: no more data can be appended');
  }
  if (error.code === 'ERR_CHECKSUM_MISMATCH') {
    // 460 is tus's own status; the draft ("Content Digests") asks only that the content is not appended.
    return new WharfError('ERR_IETF_CONTENT_DIGEST_MISMATCH', { headers: error.headers });
  }
  if (error.code === 'ERR_UPLOAD_LENGTH_ALREADY_SET') {
    return inconsistentLength(error.message);
  }
  return error;
}
