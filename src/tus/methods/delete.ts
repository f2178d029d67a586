import type { TusExchange } from '../context.ts';

/** DELETE (termination): removes the upload's bytes and record once pre-terminate hooks agree. */
export async function handleDelete(exchange: TusExchange, id: string): Promise<void> {
  await exchange.service.terminate(id, exchange.describeRequest);
  exchange.res.statusCode = 204;
  exchange.res.end();
}
