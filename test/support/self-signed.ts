import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A self-signed certificate for 127.0.0.1 written to `folder` (key.pem, cert.pem): an https hook target's, which
 * a wharf process trusts through `NODE_EXTRA_CA_CERTS: certFile`.
 */
export async function selfSignedCertificate(
  folder: string,
): Promise<{ readonly key: Buffer; readonly cert: Buffer; readonly certFile: string }> {
  const keyFile = path.join(folder, 'key.pem');
  const certFile = path.join(folder, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { key: await readFile(keyFile), cert: await readFile(certFile), certFile };
}
