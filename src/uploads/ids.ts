import { randomUUID } from 'node:crypto';

/**
 * Upload ids end up in file names and storage keys, so only a conservative alphabet is accepted: letters,
 * digits, '-', '_' and '.', not starting with '.', at most 128 characters. That rules out '/', '\\', '..',
 * NUL and every other way to leave the data folder.
 */
const safeId = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function isValidUploadId(id: string): boolean {
  return safeId.test(id);
}

const generatedId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` has the shape of an id Wharf generates (a UUID), as opposed to one a hook chose. */
export function isGeneratedUploadId(id: string): boolean {
  return generatedId.test(id);
}

export function newUploadId(): string {
  return randomUUID();
}

/** A storage location chosen by a hook: relative, '/'-separated segments that are each a safe id. */
export function isValidLocation(location: string): boolean {
  const segments = location.split('/');
  return segments.length <= 16 && segments.every((segment) => safeId.test(segment));
}
