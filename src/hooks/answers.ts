/**
 * What a blocking hook may answer (tusd 2's hook responses, in Wharf's spelling). An HTTP hook's 2xx body, an
 * executable's stdout or a module's return value may be a JSON object:
 * - `{ "reject": true, "httpResponse": { "status": 403, "body": "…", "headers": {…} } }` refuses the operation
 *   with that response;
 * - `{ "changeUpload": { "id": "…", "metadata": {…}, "path": "…" } }` (pre-create) chooses the id, rewrites
 *   the metadata or the storage path;
 * - `{ "httpResponse": {…} }` alone adds headers or a body to the normal answer.
 * An empty or non-JSON answer means "go on", so rustus-style hooks keep working.
 *
 * tusd 2's own shape (`RejectUpload`, `RejectTermination`, `HTTPResponse`, `ChangeFileInfo`, `StopUpload`) is read
 * into the same answer, so a tusd hook server works unchanged whatever payload format it is sent.
 */

export interface HookHttpResponse {
  readonly status?: number;
  readonly body?: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface UploadChange {
  readonly id?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly path?: string;
}

export interface HookAnswer {
  readonly reject: boolean;
  readonly httpResponse?: HookHttpResponse;
  readonly changeUpload?: UploadChange;
  /** tusd 2's `StopUpload` on post-receive: stop the upload in progress and terminate it. */
  readonly stopUpload?: boolean;
  /**
   * A tusd-shaped rejection: the tusd error (code and text) the client gets unless `httpResponse` says
   * otherwise, as tusd merges a hook's response over its own.
   */
  readonly tusdRejection?: { readonly code: string; readonly message: string };
  /** Parts of the answer that cannot be honoured on this event (unknown keys, a change on a post event). */
  readonly notHonoured?: readonly string[];
}

/** A hook answered JSON of the right kind but with fields Wharf cannot use. */
export class HookAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HookAnswerError';
  }
}

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const headerValue = /^[\t\x20-\x7e\x80-\xff]*$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(
  value: unknown,
  what: string,
  check?: (key: string, text: string) => void,
): Record<string, string> {
  if (!isRecord(value)) throw new HookAnswerError(`${what} must be an object of strings`);
  const result: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    // A plain object is what hooks and modules expect back; `__proto__` would not be an own key of it.
    if (key === '__proto__') throw new HookAnswerError(`${what}: invalid key "__proto__"`);
    if (typeof item !== 'string') throw new HookAnswerError(`${what}.${key} must be a string`);
    check?.(key, item);
    result[key] = item;
  }
  return result;
}

function httpResponseOf(value: unknown): HookHttpResponse {
  if (!isRecord(value)) throw new HookAnswerError('httpResponse must be an object');
  const { status, body, headers } = value;
  if (
    status !== undefined &&
    (!Number.isInteger(status) || (status as number) < 200 || (status as number) > 599)
  ) {
    throw new HookAnswerError('httpResponse.status must be an integer from 200 to 599');
  }
  if (body !== undefined && typeof body !== 'string')
    throw new HookAnswerError('httpResponse.body must be a string');
  const checked =
    headers === undefined
      ? {}
      : stringMap(headers, 'httpResponse.headers', (name, text) => {
          if (!headerName.test(name))
            throw new HookAnswerError(`httpResponse.headers: invalid name ${JSON.stringify(name)}`);
          if (!headerValue.test(text))
            throw new HookAnswerError(`httpResponse.headers.${name}: invalid value`);
        });
  return {
    ...(status !== undefined ? { status: status as number } : {}),
    ...(body !== undefined ? { body } : {}),
    headers: checked,
  };
}

const metadataKey = /^[^\s,]+$/;

function changeOf(value: unknown): UploadChange {
  if (!isRecord(value)) throw new HookAnswerError('changeUpload must be an object');
  const { id, metadata, path } = value;
  if (id !== undefined && typeof id !== 'string')
    throw new HookAnswerError('changeUpload.id must be a string');
  if (path !== undefined && typeof path !== 'string')
    throw new HookAnswerError('changeUpload.path must be a string');
  const checkedMetadata =
    metadata === undefined
      ? undefined
      : stringMap(metadata, 'changeUpload.metadata', (key) => {
          if (!metadataKey.test(key))
            throw new HookAnswerError(`changeUpload.metadata: invalid key ${JSON.stringify(key)}`);
        });
  return {
    ...(id !== undefined ? { id } : {}),
    ...(checkedMetadata !== undefined ? { metadata: checkedMetadata } : {}),
    ...(path !== undefined ? { path } : {}),
  };
}

/** Wharf's answer keys. */
const wharfKeys = ['reject', 'httpResponse', 'changeUpload'] as const;
/** tusd 2's HookResponse keys (pkg/hooks), honoured next to Wharf's own. */
export const tusdAnswerKeys = [
  'HTTPResponse',
  'RejectUpload',
  'RejectTermination',
  'ChangeFileInfo',
  'StopUpload',
] as const;

/** Whether a value is meant as an answer: it has at least one of Wharf's or tusd 2's answer keys. */
export function isHookAnswer(value: unknown): value is Record<string, unknown> {
  if (!isRecord(value)) return false;
  return [...wharfKeys, ...tusdAnswerKeys].some((key) => key in value);
}

function optionalBoolean(value: Record<string, unknown>, key: string): boolean {
  const item = value[key];
  if (item === undefined || item === null) return false;
  if (typeof item !== 'boolean') throw new HookAnswerError(`${key} must be a boolean`);
  return item;
}

/** tusd's `HTTPResponse {StatusCode, Body, Header}`: a zero status and an empty body mean "keep mine". */
function tusdHttpResponse(value: unknown): HookHttpResponse | undefined {
  if (value === null) return undefined;
  if (!isRecord(value)) throw new HookAnswerError('HTTPResponse must be an object');
  const { StatusCode: status, Body: body, Header: headers } = value;
  if (status !== undefined && status !== null && !Number.isInteger(status))
    throw new HookAnswerError('HTTPResponse.StatusCode must be an integer');
  return httpResponseOf({
    ...(typeof status === 'number' && status !== 0 ? { status } : {}),
    ...(body === undefined || body === null || body === '' ? {} : { body }),
    ...(headers !== undefined && headers !== null ? { headers } : {}),
  });
}

/** tusd's `ChangeFileInfo {ID, MetaData, Storage}`: an empty ID and a null MetaData keep the client's. */
function tusdChange(value: unknown, notHonoured: string[]): UploadChange | undefined {
  if (value === null) return undefined;
  if (!isRecord(value)) throw new HookAnswerError('ChangeFileInfo must be an object');
  const { ID: id, MetaData: metadata, Storage: storage } = value;
  for (const key of Object.keys(value)) {
    if (!['ID', 'MetaData', 'Storage'].includes(key)) notHonoured.push(`ChangeFileInfo.${key}: unknown key`);
  }
  let path: unknown;
  if (storage !== undefined && storage !== null) {
    if (!isRecord(storage)) throw new HookAnswerError('ChangeFileInfo.Storage must be an object');
    for (const key of Object.keys(storage)) {
      // Only filestore's Path has a meaning in Wharf (a storage location), as in tusd.
      if (key !== 'Path') notHonoured.push(`ChangeFileInfo.Storage.${key}: Wharf can only change Path`);
    }
    path = storage.Path;
  }
  const change = changeOf({
    ...(id !== undefined && id !== null && id !== '' ? { id } : {}),
    ...(metadata !== undefined && metadata !== null ? { metadata } : {}),
    ...(path !== undefined && path !== null && path !== '' ? { path } : {}),
  });
  return Object.keys(change).length === 0 ? undefined : change;
}

/** What each event can do with an answer. */
const changeEvents: ReadonlySet<string> = new Set(['pre-create']);
const responseEvents: ReadonlySet<string> = new Set(['pre-create', 'pre-finish', 'pre-terminate']);

/**
 * Reads an answer from a parsed value (a module's return value, or parsed JSON text), in Wharf's shape
 * (`reject`, `httpResponse`, `changeUpload`) or tusd 2's (`RejectUpload`, `RejectTermination`, `HTTPResponse`,
 * `ChangeFileInfo`, `StopUpload`), or both. With `event`, what that event cannot honour (a change on a post
 * event, `RejectTermination` on pre-create, an unknown key) is listed in `notHonoured` and left out.
 */
export function hookAnswerFrom(value: unknown, event?: string): HookAnswer | undefined {
  if (!isHookAnswer(value)) return undefined;
  if (value.reject !== undefined && typeof value.reject !== 'boolean')
    throw new HookAnswerError('reject must be a boolean');
  const notHonoured: string[] = [];
  for (const key of Object.keys(value)) {
    if (
      !(wharfKeys as readonly string[]).includes(key) &&
      !(tusdAnswerKeys as readonly string[]).includes(key)
    )
      notHonoured.push(`${key}: unknown key`);
  }
  let reject = value.reject === true;
  let tusdRejection: HookAnswer['tusdRejection'];
  let httpResponse = value.httpResponse !== undefined ? httpResponseOf(value.httpResponse) : undefined;
  let changeUpload = value.changeUpload !== undefined ? changeOf(value.changeUpload) : undefined;
  const tusdResponse = 'HTTPResponse' in value ? tusdHttpResponse(value.HTTPResponse) : undefined;
  if (tusdResponse !== undefined) {
    httpResponse = {
      ...httpResponse,
      ...tusdResponse,
      headers: { ...httpResponse?.headers, ...tusdResponse.headers },
    };
  }
  const tusdChanged = 'ChangeFileInfo' in value ? tusdChange(value.ChangeFileInfo, notHonoured) : undefined;
  if (tusdChanged !== undefined) changeUpload = { ...changeUpload, ...tusdChanged };
  if (optionalBoolean(value, 'RejectUpload')) {
    if (event === undefined || event === 'pre-create') {
      reject = true;
      tusdRejection = { code: 'ERR_UPLOAD_REJECTED', message: 'upload creation has been rejected by server' };
    } else notHonoured.push(`RejectUpload: only pre-create can reject an upload, not ${event}`);
  }
  if (optionalBoolean(value, 'RejectTermination')) {
    if (event === undefined || event === 'pre-terminate') {
      reject = true;
      tusdRejection = {
        code: 'ERR_UPLOAD_TERMINATION_REJECTED',
        message: 'upload termination has been rejected by server',
      };
    } else notHonoured.push(`RejectTermination: only pre-terminate can reject a termination, not ${event}`);
  }
  let stopUpload = false;
  if (optionalBoolean(value, 'StopUpload')) {
    if (event === undefined || event === 'post-receive') stopUpload = true;
    else notHonoured.push(`StopUpload: only post-receive can stop an upload, not ${event}`);
  }
  if (event !== undefined) {
    if (changeUpload !== undefined && !changeEvents.has(event)) {
      notHonoured.push(
        `${'ChangeFileInfo' in value ? 'ChangeFileInfo' : 'changeUpload'}: only pre-create can change an upload, not ${event}`,
      );
      changeUpload = undefined;
    }
    if (reject && !value.RejectUpload && !value.RejectTermination && !responseEvents.has(event)) {
      notHonoured.push(`reject: a ${event} hook cannot refuse what already happened`);
      reject = false;
    }
    if (httpResponse !== undefined && !responseEvents.has(event) && !stopUpload) {
      notHonoured.push(
        `${'HTTPResponse' in value ? 'HTTPResponse' : 'httpResponse'}: a ${event} hook's response reaches no client${event === 'post-receive' ? ' unless it stops the upload' : ''}`,
      );
      httpResponse = undefined;
    }
  }
  return {
    reject,
    ...(httpResponse !== undefined ? { httpResponse } : {}),
    ...(changeUpload !== undefined ? { changeUpload } : {}),
    ...(stopUpload ? { stopUpload } : {}),
    ...(tusdRejection !== undefined && reject ? { tusdRejection } : {}),
    ...(notHonoured.length > 0 ? { notHonoured } : {}),
  };
}

/**
 * Parses a hook's textual answer. Empty, non-JSON, or JSON without any answer field gives undefined ("go on");
 * an answer with unusable fields throws {@link HookAnswerError}.
 */
export function parseHookAnswer(text: string | undefined, event?: string): HookAnswer | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  return hookAnswerFrom(value, event);
}

/** The decision of several answering hooks of one event, merged in order (later hooks win per field). */
export interface MergedAnswer {
  readonly changeUpload?: UploadChange;
  readonly httpResponse?: HookHttpResponse;
}

export function mergeAnswers(previous: MergedAnswer | undefined, next: HookAnswer): MergedAnswer {
  const change =
    previous?.changeUpload !== undefined || next.changeUpload !== undefined
      ? { ...previous?.changeUpload, ...next.changeUpload }
      : undefined;
  const response =
    previous?.httpResponse !== undefined || next.httpResponse !== undefined
      ? {
          ...previous?.httpResponse,
          ...next.httpResponse,
          headers: { ...previous?.httpResponse?.headers, ...next.httpResponse?.headers },
        }
      : undefined;
  return {
    ...(change !== undefined ? { changeUpload: change } : {}),
    ...(response !== undefined ? { httpResponse: response } : {}),
  };
}
