/** Problem details (RFC 9457) of the draft's problem types, as `{ body, headers }` for a WharfError. */

const base = 'https://iana.org/assignments/http-problem-types#';

export type ProblemType = 'mismatching-upload-offset' | 'inconsistent-upload-length' | 'completed-upload';

const titles: Record<ProblemType, string> = {
  'mismatching-upload-offset': 'offset from request does not match offset of resource',
  'inconsistent-upload-length': 'inconsistent length values for upload',
  'completed-upload': 'upload is already completed',
};

export function problem(
  type: ProblemType,
  members: Readonly<Record<string, number | string>> = {},
  detail?: string,
): { body: string; headers: Record<string, string> } {
  const document = {
    type: `${base}${type}`,
    title: titles[type],
    ...(detail !== undefined ? { detail } : {}),
    ...members,
  };
  return {
    body: `${JSON.stringify(document)}\n`,
    headers: { 'Content-Type': 'application/problem+json' },
  };
}
