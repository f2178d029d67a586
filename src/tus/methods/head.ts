import { finalFailure, isAwaitingApproval, isComplete } from '../../uploads/upload.ts';
import type { TusExchange } from '../context.ts';
import { finalFailedError, headerText, httpDate } from '../headers.ts';

/** HEAD: the upload's state. It takes the upload's lock, so an offset read after a dropped PATCH is final. */
export async function handleHead(exchange: TusExchange, id: string): Promise<void> {
  const { res } = exchange;
  const upload = await exchange.service.settle(id, exchange.describeRequest);
  const failedFinal = finalFailure(upload);
  if (failedFinal !== undefined) throw finalFailedError(failedFinal);
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
    res.setHeader('Upload-Failed', headerText(upload.failure));
  }
  // Complete, but pre-finish hooks have not approved the bytes yet: GET answers 409 until they do.
  if (isAwaitingApproval(upload)) res.setHeader('Upload-Pending', 'pre-finish');
  res.statusCode = 200;
  res.end();
}
