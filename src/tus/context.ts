import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TusExtensionName } from '../config/options.ts';
import { WharfError } from '../errors.ts';
import { BodyMeter } from '../uploads/body-meter.ts';
import type { DescribeRequest } from '../uploads/events.ts';
import type { UploadService } from '../uploads/service.ts';
import type { ChecksumRequest } from './headers.ts';

/** What the protocol layer needs from the configuration. */
export interface TusSettings {
  readonly basePath: string;
  readonly extensions: ReadonlySet<TusExtensionName>;
  readonly behindProxy: boolean;
  readonly maxFileSize: number;
  readonly networkTimeoutMs: number;
  /** Bytes per second a body must bring over each network-timeout window; 0 = no minimum. */
  readonly minBodyRate: number;
  /** 0 = uploads never expire (then `expiration` is not advertised). */
  readonly uploadExpirationMs: number;
  /** Bytes per request body; 0 or absent = unlimited (the IETF draft's `max-append-size`). */
  readonly maxBodySize?: number;
  /** Serve the IETF draft (Resumable Uploads for HTTP) next to tus 1.0; absent = on. */
  readonly ietfDraft?: boolean;
}

/** One request on its way through the tus layer. */
export interface TusExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** After X-HTTP-Method-Override. */
  readonly method: string;
  /** Undefined for the collection (POST/OPTIONS on the base path). */
  readonly uploadId: string | undefined;
  readonly settings: TusSettings;
  readonly service: UploadService;
  readonly describeRequest: DescribeRequest;
  /** Bodies being read now; the server interrupts them all on shutdown (they keep their bytes). */
  readonly activeBodies: Set<BodyMeter>;
  /** True once the server is shutting down: new bodies are interrupted at once. */
  readonly shuttingDown: () => boolean;
}

/**
 * Starts reading the request body through a BodyMeter: sends 100 Continue when the client waits for it,
 * and interrupts the body (keeping what arrived) when the client goes away, stalls, or the server stops.
 */
export function openRequestBody(
  exchange: TusExchange,
  limit: number,
  checksum: ChecksumRequest | undefined,
): BodyMeter {
  const { req, res } = exchange;
  const meter = new BodyMeter({
    limit,
    limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
    checksumAlgorithm: checksum?.algorithm,
    // A trickle keeps the socket's idle timer from firing: the meter ends a body too slow over the same window.
    minimumRate: {
      bytesPerSecond: exchange.settings.minBodyRate,
      windowMs: exchange.settings.networkTimeoutMs,
      error: () => new WharfError('ERR_BODY_TOO_SLOW'),
    },
  });
  const gone = (): void => {
    if (!req.complete) meter.interrupt(new WharfError('ERR_UNEXPECTED_EOF'));
  };
  // `on`, not `once`: each fires at most once per request here (gone is idempotent anyway), and `once` wraps the
  // listener in a closure and removes it again, per request.
  req.on('close', gone);
  req.on('error', gone);
  req.setTimeout(exchange.settings.networkTimeoutMs, () =>
    meter.interrupt(new WharfError('ERR_READ_TIMEOUT')),
  );
  exchange.activeBodies.add(meter);
  meter.on('close', () => {
    req.setTimeout(0);
    exchange.activeBodies.delete(meter);
  });
  if (exchange.shuttingDown()) meter.interrupt(new WharfError('ERR_SERVER_SHUTDOWN'));
  if (req.headers.expect?.toLowerCase() === '100-continue' && !res.headersSent) res.writeContinue();
  meter.drawFrom(req);
  return meter;
}
