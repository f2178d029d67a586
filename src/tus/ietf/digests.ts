import type { ChecksumRequest } from '../headers.ts';

/** RFC 9530 algorithm names Wharf verifies, strongest first, and the BodyMeter's name for each. */
const verified = [
  ['sha-512', 'sha512'],
  ['sha-256', 'sha256'],
] as const;

/**
 * `Content-Digest` (RFC 9530; draft "Content Digests"): a Dictionary of byte sequences, e.g.
 * `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`. Returns the strongest digest Wharf can verify, or
 * undefined when there is none it knows (RFC 9530 lets a recipient ignore algorithms it does not support) or the
 * field is not a Dictionary of byte sequences (then the whole field is ignored).
 */
export function contentDigest(value: string | readonly string[] | undefined): ChecksumRequest | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.join(', ');
  const members = new Map<string, string>();
  for (const member of text.split(',')) {
    const match = /^\s*([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):\s*$/.exec(member);
    if (!match?.[1] || match[2] === undefined) return undefined;
    members.set(match[1], match[2]);
  }
  for (const [name, algorithm] of verified) {
    const encoded = members.get(name);
    if (encoded !== undefined) return { algorithm, digest: Buffer.from(encoded, 'base64') };
  }
  return undefined;
}
