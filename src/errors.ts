/**
 * The catalogue of coded errors a client can receive. Each code is published (docs/errors.md) and never
 * reused for another meaning; the HTTP mapping happens in one place (tus/respond.ts).
 */
export const errorCatalogue = {
  ERR_UNSUPPORTED_VERSION: { status: 412, message: 'Tus-Resumable must be 1.0.0' },
  ERR_INVALID_CONTENT_TYPE: { status: 415, message: 'Content-Type must be application/offset+octet-stream' },
  ERR_INVALID_OFFSET: { status: 400, message: 'Upload-Offset must be a non-negative integer' },
  ERR_INVALID_UPLOAD_LENGTH: { status: 400, message: 'Upload-Length must be a non-negative integer' },
  ERR_AMBIGUOUS_UPLOAD_LENGTH: {
    status: 400,
    message: 'send either Upload-Length or Upload-Defer-Length: 1',
  },
  ERR_INVALID_UPLOAD_LENGTH_DEFER: { status: 400, message: 'Upload-Defer-Length must be 1' },
  ERR_EMPTY_UPLOAD_REFUSED: { status: 400, message: 'Upload-Length must be greater than zero' },
  ERR_UPLOAD_LENGTH_ALREADY_SET: { status: 400, message: 'Upload-Length is already known and cannot change' },
  ERR_INVALID_METADATA: { status: 400, message: 'Upload-Metadata is malformed' },
  ERR_INVALID_METADATA_KEY: {
    status: 400,
    message: 'an Upload-Metadata key must be printable ASCII without spaces or commas',
  },
  ERR_INVALID_CONCAT: { status: 400, message: 'Upload-Concat is malformed' },
  ERR_FINAL_WITH_LENGTH: { status: 400, message: 'a final upload must not carry Upload-Length' },
  ERR_UPLOAD_NOT_PARTIAL: { status: 400, message: 'only partial uploads can be concatenated' },
  ERR_UPLOAD_NOT_FINISHED: { status: 400, message: 'a partial upload is not finished' },
  ERR_CONCAT_DUPLICATE_PART: {
    status: 400,
    message: 'Upload-Concat lists the same partial upload more than once',
  },
  ERR_CONCAT_FOREIGN_URL: {
    status: 400,
    message: 'Upload-Concat lists a URL that is not an upload of this endpoint',
  },
  ERR_CONCAT_FAILED: {
    status: 410,
    message: 'the final upload cannot be built (a partial is gone or the parts exceed the maximum size)',
  },
  ERR_INVALID_CHECKSUM_HEADER: {
    status: 400,
    message: 'Upload-Checksum must be "<algorithm> <base64 digest>"',
  },
  ERR_UNSUPPORTED_CHECKSUM_ALGORITHM: { status: 400, message: 'unsupported checksum algorithm' },
  ERR_CHECKSUM_MISMATCH: { status: 460, message: 'checksum mismatch; the chunk was discarded' },
  ERR_MISMATCHED_OFFSET: { status: 409, message: 'Upload-Offset does not match the upload offset' },
  ERR_UPLOAD_ALREADY_COMPLETE: {
    status: 409,
    message: 'the upload is complete; a PATCH to it may carry no body',
  },
  ERR_MAX_SIZE_EXCEEDED: { status: 413, message: 'upload is larger than the maximum size' },
  ERR_UPLOAD_SIZE_EXCEEDED: { status: 413, message: 'body goes past Upload-Length' },
  ERR_BODY_TOO_LARGE: { status: 413, message: 'request body is larger than --max-body-size' },
  ERR_MODIFY_FINAL: { status: 403, message: 'a final upload cannot be modified' },
  ERR_UPLOAD_NOT_FOUND: { status: 404, message: 'upload not found' },
  ERR_UPLOAD_EXPIRED: { status: 410, message: 'upload expired' },
  ERR_NOT_DOWNLOADABLE: { status: 409, message: 'upload is not finished yet' },
  ERR_AWAITING_APPROVAL: {
    status: 409,
    message: 'the upload is complete but a pre-finish hook has not approved it yet; retry later',
  },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, message: 'requested range not satisfiable' },
  ERR_EXTENSION_DISABLED: { status: 405, message: 'this tus extension is disabled' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  ERR_NOT_FOUND: { status: 404, message: 'not found' },
  ERR_UPLOAD_INTERRUPTED: {
    status: 400,
    message: 'upload interrupted by a newer request for the same upload',
  },
  ERR_READ_TIMEOUT: { status: 500, message: 'timed out reading the request body; bytes received were kept' },
  ERR_BODY_TOO_SLOW: {
    status: 500,
    message: 'request body arrived slower than --min-body-rate; bytes received were kept',
  },
  ERR_UNEXPECTED_EOF: { status: 400, message: 'request body ended early; bytes received were kept' },
  ERR_LOCK_TIMEOUT: { status: 503, message: 'upload is busy; retry' },
  ERR_SERVER_SHUTDOWN: { status: 503, message: 'server is shutting down; bytes received were kept' },
  ERR_INFO_CONFLICT: { status: 409, message: 'upload was changed concurrently; retry' },
  ERR_HOOK_REJECTED: { status: 400, message: 'rejected by a hook' },
  ERR_HOOK_ANSWER_INVALID: { status: 502, message: 'a hook asked for a change that cannot be applied' },
  ERR_UPLOAD_FAILED: {
    status: 409,
    message: 'a pre-finish hook refused this upload; it cannot be resumed or downloaded',
  },
  ERR_UPLOAD_ID_TAKEN: { status: 409, message: 'a hook chose an upload id that is already in use' },
  ERR_INTERNAL: { status: 500, message: 'internal server error' },
  ERR_MALFORMED_REQUEST: { status: 400, message: 'the request is not valid HTTP/1.1' },
  ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request headers are larger than --max-header-size' },
  ERR_BACKEND_UNAVAILABLE: {
    status: 503,
    message:
      'the shared record store (Redis or PostgreSQL) is down or not answering; nothing was lost, retry after Retry-After (HEAD answers 423)',
  },
  ERR_STORAGE_FULL: {
    status: 507,
    message:
      'the server has no storage space left; bytes that fit were kept (see Upload-Offset), retry later',
  },
  ERR_ADMIN_CONTENT_TYPE: {
    status: 415,
    message: 'admin API writes must be sent with Content-Type: application/json',
  },
  ERR_ADMIN_CROSS_SITE: {
    status: 403,
    message: 'the admin API has no token and refuses requests from another site (Origin, Sec-Fetch-Site)',
  },
  ERR_ADMIN_HOST: {
    status: 403,
    message: 'the admin API has no token and answers only to the bound address or a loopback name in Host',
  },
  ERR_UPLOAD_STOPPED: {
    status: 400,
    message: 'upload has been stopped by a post-receive hook (StopUpload) and was terminated',
  },
  ERR_IETF_INTEROP_VERSION: {
    status: 400,
    message: 'Upload-Draft-Interop-Version names a draft this server does not speak (it speaks 3 to 8)',
  },
  ERR_IETF_UPLOAD_COMPLETE_REQUIRED: {
    status: 400,
    message: 'Upload-Complete (?1 or ?0; Upload-Incomplete in interop version 3) is required',
  },
  ERR_IETF_PARTIAL_UPLOAD_TYPE: {
    status: 415,
    message: 'an upload append must be Content-Type: application/partial-upload',
  },
  ERR_IETF_INCONSISTENT_LENGTH: {
    status: 400,
    message: 'the request indicates an upload length that differs from the one known (problem type)',
  },
  ERR_IETF_COMPLETED_UPLOAD: {
    status: 400,
    message: 'the upload is already complete and takes no more data (problem type)',
  },
  ERR_IETF_CONTENT_DIGEST_MISMATCH: {
    status: 400,
    message: 'the content does not match its Content-Digest; it was not appended',
  },
  ERR_ADMIN_TARGET_EVENT: {
    status: 400,
    message:
      'a target added through the admin API receives post-* events only; pre-* (blocking) hooks are declared by flags or the config file',
  },
  ERR_ADMIN_HOOK_INVALID: {
    status: 422,
    message: 'the named hook or binding is not valid (problems lists each, as --config would)',
  },
  ERR_ADMIN_HOOK_TRANSPORT: {
    status: 422,
    message:
      'a hook declared through the admin API uses transport http or notify; file, dir, module, amqp and kafka hooks are declared in the config file, then bound through the API',
  },
  ERR_ADMIN_HOOK_CONFIGURED: {
    status: 409,
    message: 'this hook is declared in the config file: change it there and reload (SIGHUP)',
  },
  ERR_ADMIN_HOOK_IN_USE: { status: 409, message: 'bindings still name this hook: delete them first' },
  ERR_ADMIN_HOOK_NOT_FOUND: {
    status: 404,
    message: 'no hook of this name was declared through the admin API',
  },
  ERR_ADMIN_BINDING_NOT_FOUND: { status: 404, message: 'no binding with this id' },
  ERR_ADMIN_HOOKS_BUSY: {
    status: 409,
    message: 'the named hooks kept changing while this change was written; send it again',
  },
  ERR_NAMED_HOOKS_UNAVAILABLE: {
    status: 503,
    message:
      'the named hooks stored through the admin API could not be loaded yet (their store is not answering), so no request that may run hooks is served; nothing was done, retry after Retry-After',
  },
  ERR_NAMED_HOOKS_UNFIT: {
    status: 503,
    message:
      'the named hooks stored through the admin API do not fit the running configuration, so no request that may run hooks is served rather than run without them; nothing was done: an operator repairs them through the admin API (GET /admin/api/hooks lists the problems, as does the server log) or fixes the config file and reloads it',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class WharfError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers (e.g. Upload-Offset on 409, Tus-Version on 412, a hook's own headers). */
  readonly headers: Readonly<Record<string, string>>;
  /** When set, sent as the body instead of "CODE: message" (a rejecting hook's own body). */
  readonly body: string | undefined;

  constructor(
    code: ErrorCode,
    options: {
      message?: string;
      status?: number;
      headers?: Record<string, string>;
      body?: string;
      cause?: unknown;
    } = {},
  ) {
    super(options.message ?? errorCatalogue[code].message, { cause: options.cause });
    this.name = 'WharfError';
    this.code = code;
    this.status = options.status ?? errorCatalogue[code].status;
    this.headers = options.headers ?? {};
    this.body = options.body;
  }
}
