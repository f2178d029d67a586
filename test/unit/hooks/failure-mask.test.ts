import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskSecrets } from '../../../src/hooks/failure.ts';

test('a failure reason keeps what says why and masks credentials', () => {
  assert.equal(
    maskSecrets('PUT https://AKIA:wJalr@s3.test/b/k?X-Amz-Signature=abc123&partNumber=2 failed'),
    'PUT https://***@s3.test/b/k?X-Amz-Signature=***&partNumber=2 failed',
  );
  assert.equal(
    maskSecrets('refused: Authorization: Bearer eyJhbGci.x.y'),
    'refused: Authorization: Bearer ***',
  );
  assert.equal(maskSecrets('db password=hunter2 and\nline two'), 'db password=*** and line two');
  // Nothing secret: unchanged (the positive control for the masks above).
  assert.equal(
    maskSecrets('ENOSPC: no space left on device, write'),
    'ENOSPC: no space left on device, write',
  );
  assert.equal(maskSecrets('x'.repeat(600)).length, 501);
});
