// The browser side of test/e2e/uppy.test.ts, bundled with esbuild and loaded in headless Chromium.
// Plain JavaScript: the project's tsconfig has no DOM library, and this file only runs in the browser.
import Uppy from '@uppy/core';
import Tus from '@uppy/tus';

/** `size` random bytes (getRandomValues fills at most 64 KiB per call). */
function randomBytes(size) {
  const bytes = new Uint8Array(size);
  for (let start = 0; start < size; start += 65536) {
    crypto.getRandomValues(bytes.subarray(start, Math.min(size, start + 65536)));
  }
  return bytes;
}

/** `size` bytes from a xorshift32 generator: the same `seed` gives the same file after a page reload. */
function seededBytes(size, seed) {
  const words = new Uint32Array(Math.ceil(size / 4));
  let state = seed >>> 0 || 1;
  for (let index = 0; index < words.length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    words[index] = state >>> 0;
  }
  return new Uint8Array(words.buffer, 0, size);
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * Uploads a generated Blob of `size` bytes with Uppy's Tus plugin (random bytes, or seeded ones with `seed`).
 * With `pauseAt`, pauses the upload once that many bytes are sent and resumes it `resumeAfterMs` later. With
 * `stopAt`, pauses there and resolves at once, leaving the upload unfinished (for a page reload to pick up).
 * Resolves with what the page saw.
 */
async function uploadWithUppy({
  endpoint,
  size,
  chunkSize,
  name = 'generated.bin',
  seed,
  pauseAt,
  resumeAfterMs = 0,
  stopAt,
  retryDelays = [0, 200, 500, 1000],
}) {
  const bytes = seed === undefined ? randomBytes(size) : seededBytes(size, seed);
  const sha256 = await sha256Hex(bytes);
  const uppy = new Uppy({ autoProceed: false });
  uppy.use(Tus, { endpoint, chunkSize, retryDelays });
  const fileId = uppy.addFile({
    name,
    type: 'application/octet-stream',
    data: new Blob([bytes], { type: 'application/octet-stream' }),
  });
  const pauses = [];
  if (pauseAt !== undefined) {
    uppy.on('upload-progress', (file, progress) => {
      if (pauses.length > 0 || progress.bytesUploaded < pauseAt || progress.bytesUploaded >= size) return;
      pauses.push(progress.bytesUploaded);
      uppy.pauseResume(file.id);
      setTimeout(() => uppy.pauseResume(file.id), resumeAfterMs);
    });
  }
  const errors = [];
  uppy.on('upload-error', (_file, error) => errors.push(String(error?.message ?? error)));
  const finished = uppy.upload();
  if (stopAt !== undefined) {
    const stoppedAt = await new Promise((resolve) => {
      uppy.on('upload-progress', (file, progress) => {
        if (progress.bytesUploaded < stopAt) return;
        uppy.pauseResume(file.id);
        resolve(progress.bytesUploaded);
      });
    });
    return { sha256, stoppedAt, uploadURL: uppy.getFile(fileId).tus?.uploadUrl ?? null, errors };
  }
  const result = await finished;
  const file = uppy.getFile(fileId);
  return {
    sha256,
    successful: result.successful.length,
    failed: result.failed.length,
    uploadURL: file.response?.uploadURL ?? null,
    progress: file.progress.bytesUploaded,
    pauses,
    errors,
  };
}

window.uploadWithUppy = uploadWithUppy;
