import { tusExtensionNames } from '../../config/options.ts';
import type { TusExchange } from '../context.ts';
import { checksumAlgorithms, tusVersion } from '../headers.ts';

/** OPTIONS: what this server supports. Tus-Resumable on the request is ignored, as the protocol asks. */
export function handleOptions(exchange: TusExchange): void {
  const { res, settings } = exchange;
  res.setHeader('Tus-Version', tusVersion);
  const enabled = tusExtensionNames.filter(
    (name) => settings.extensions.has(name) && (name !== 'expiration' || settings.uploadExpirationMs > 0),
  );
  if (enabled.length > 0) res.setHeader('Tus-Extension', enabled.join(','));
  if (settings.maxFileSize > 0) res.setHeader('Tus-Max-Size', String(settings.maxFileSize));
  if (settings.extensions.has('checksum'))
    res.setHeader('Tus-Checksum-Algorithm', checksumAlgorithms.join(','));
  res.statusCode = 204;
  res.end();
}
