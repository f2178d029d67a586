import type { FailureStage, HookFailure, UploadEventName } from './events.ts';

/**
 * The post events whose operation a failure at each stage ends. A post-create binding's operation is the
 * creation; a post-finish binding's is the whole upload (anything that stops it from finishing); a post-receive
 * binding's is one PATCH; a post-terminate binding's is a DELETE (or the expiry that removes the upload).
 * The first event is the stage's own, whose `error` string rustus-era hooks already knew.
 */
export const failureHeardBy: Readonly<Record<FailureStage, readonly UploadEventName[]>> = {
  'pre-create': ['post-create', 'post-finish'],
  creation: ['post-create', 'post-finish'],
  storage: ['post-receive', 'post-finish'],
  // A chunk with a wrong checksum is discarded and sent again: the upload can still finish.
  checksum: ['post-receive'],
  'pre-finish': ['post-finish'],
  concatenation: ['post-finish'],
  'pre-terminate': ['post-terminate'],
  termination: ['post-terminate'],
  expiration: ['post-terminate', 'post-finish'],
};

const secretKey = /(sig(nature)?|token|secret|password|passwd|pwd|key|credential|auth)/i;

/**
 * Masks what a failure's reason may carry from a store's or a hook's message: URL user info, query values whose
 * name looks secret (X-Amz-Signature, token, …), `Bearer`/`Basic` credentials and `key=value` secrets. The
 * reason is also cut to one line of at most 500 characters.
 */
export function maskSecrets(text: string): string {
  const masked = text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@')
    .replace(/([?&;]([^=&\s]+)=)([^&\s#]+)/g, (whole, head: string, name: string) =>
      secretKey.test(name) ? `${head}***` : whole,
    )
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, '$1 ***')
    .replace(/\b([A-Za-z_]*(?:secret|password|token|apikey|api_key)[A-Za-z_]*)=(\S+)/gi, '$1=***')
    .replace(/\s+/g, ' ')
    .trim();
  return masked.length <= 500 ? masked : `${masked.slice(0, 500)}…`;
}

/** The `error` line rustus-era failure hooks read (kept as it was: the table in docs/hooks.md). */
export function failureErrorLine(failure: HookFailure): string {
  switch (failure.stage) {
    case 'pre-create':
    case 'pre-finish':
    case 'pre-terminate':
      return `rejected by a ${failure.stage} hook: ${failure.reason}`;
    case 'checksum':
      return 'checksum mismatch: the chunk was discarded';
    case 'storage':
      return `storage error: ${failure.reason}`;
    case 'concatenation':
      return `concatenation failed: ${failure.reason}`;
    case 'expiration':
      return 'expired: removed by the expiration sweep';
    case 'creation':
      return `creation failed: ${failure.reason}`;
    case 'termination':
      return `termination failed: ${failure.reason}`;
  }
}
