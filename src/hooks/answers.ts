/**
 * What a blocking hook may answer (tusd 2's hook responses, in Wharf's spelling). An HTTP hook's 2xx body, an
 * executable's stdout or a module's return value may be a JSON object:
 * - `{ "reject": true, "httpResponse": { "status": 403, "body": "…", "headers": {…} } }` refuses the operation
 *   with that response;
 * - `{ "changeUpload": { "id": "…", "metadata": {…}, "path": "…" } }` (pre-create) chooses the id, rewrites
 *   the metadata or the storage path;
 * - `{ "httpResponse": {…} }` alone adds headers or a body to the normal answer.
 * An empty or non-JSON answer means "go on", so rustus-style hooks keep working.
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

/** Reads an answer from a parsed value (a module's return value, or parsed JSON text). */
export function hookAnswerFrom(value: unknown): HookAnswer | undefined {
  if (!isRecord(value)) return undefined;
  const known = 'reject' in value || 'httpResponse' in value || 'changeUpload' in value;
  if (!known) return undefined;
  if (value.reject !== undefined && typeof value.reject !== 'boolean')
    throw new HookAnswerError('reject must be a boolean');
  return {
    reject: value.reject === true,
    ...(value.httpResponse !== undefined ? { httpResponse: httpResponseOf(value.httpResponse) } : {}),
    ...(value.changeUpload !== undefined ? { changeUpload: changeOf(value.changeUpload) } : {}),
  };
}

/**
 * Parses a hook's textual answer. Empty, non-JSON, or JSON without any answer field gives undefined ("go on");
 * an answer with unusable fields throws {@link HookAnswerError}.
 */
export function parseHookAnswer(text: string | undefined): HookAnswer | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  return hookAnswerFrom(value);
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
