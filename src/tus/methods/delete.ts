import type { TusExchange } from '../context.ts';
import { endWithHookResponse } from '../respond.ts';

/** DELETE (termination): removes the upload's bytes and record once pre-terminate hooks agree. */
export async function handleDelete(exchange: TusExchange, id: string): Promise<void> {
  const hookResponse = await exchange.service.terminate(id, exchange.describeRequest);
  exchange.res.statusCode = 204;
  // Answering pre-terminate hooks may add headers and a body.
  endWithHookResponse(exchange.res, hookResponse);
}
