import { isComplete } from '../../uploads/upload.ts';
import type { TusExchange } from '../context.ts';
import { httpDate } from '../headers.ts';

/** HEAD: the upload's state. It takes the upload's lock, so an offset read after a dropped PATCH is final. */
export async function handleHead(exchange: TusExchange, id: string): Promise<void> {
  const { res } = exchange;
  const upload = await exchange.service.settle(id, exchange.describeRequest);
  res.setHeader('Cache-Control', 'no-store');
  // A final upload reports no offset until it has been concatenated (tus concatenation extension).
  if (!upload.isFinal || isComplete(upload)) res.setHeader('Upload-Offset', String(upload.offset));
  if (upload.length === null) res.setHeader('Upload-Defer-Length', '1');
  else res.setHeader('Upload-Length', String(upload.length));
  if (upload.metadataHeader !== null && upload.metadataHeader !== '')
    res.setHeader('Upload-Metadata', upload.metadataHeader);
  if (upload.concatHeader !== null) res.setHeader('Upload-Concat', upload.concatHeader);
  if (upload.expiresAt !== null) res.setHeader('Upload-Expires', httpDate(upload.expiresAt));
  // A pre-finish hook refused the finished upload: its bytes are kept, the reason is shown (one header line).
  if (typeof upload.failure === 'string' && upload.failure !== '') {
    res.setHeader('Upload-Failed', upload.failure.replace(/[^\t\x20-\x7e]+/g, ' ').slice(0, 1024));
  }
  res.statusCode = 200;
  res.end();
}
