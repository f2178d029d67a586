import { randomFillSync } from 'node:crypto';

/*
 * Event ids: random (version 4) UUIDs, as crypto.randomUUID gives, from the same source (the CSPRNG, 256 ids'
 * bytes drawn at a time, as randomUUID caches 128). randomUUID builds its text by joining 20 short strings, about
 * 500 bytes of garbage per id; every post event takes one. Here the 36 characters are written into a buffer and
 * read back as one string.
 */

/** The ASCII codes of each byte's two hex digits. */
const hexDigits = new Uint8Array(512);
for (let byte = 0; byte < 256; byte++) {
  const digits = byte.toString(16).padStart(2, '0');
  hexDigits[byte * 2] = digits.charCodeAt(0);
  hexDigits[byte * 2 + 1] = digits.charCodeAt(1);
}

const idsPerDraw = 256;
const random = Buffer.allocUnsafeSlow(16 * idsPerDraw);
let drawn = random.length;
const text = Buffer.allocUnsafeSlow(36);

/** A random UUID (RFC 9562 version 4), lower case: `xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx`. */
export function newEventId(): string {
  if (drawn === random.length) {
    randomFillSync(random);
    drawn = 0;
  }
  const at = drawn;
  drawn += 16;
  // The version (4) and the variant (10xx).
  random[at + 6] = ((random[at + 6] as number) & 0x0f) | 0x40;
  random[at + 8] = ((random[at + 8] as number) & 0x3f) | 0x80;
  let out = 0;
  for (let index = 0; index < 16; index++) {
    if (index === 4 || index === 6 || index === 8 || index === 10) text[out++] = 0x2d;
    const digits = (random[at + index] as number) * 2;
    text[out++] = hexDigits[digits] as number;
    text[out++] = hexDigits[digits + 1] as number;
  }
  return text.toString('latin1', 0, 36);
}
