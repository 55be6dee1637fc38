/**
 * The server's TLS material: a self-signed CA and a serving certificate for 127.0.0.1 and localhost,
 * made with the openssl CLI and kept in the data directory so a restarted server keeps its identity.
 */

import { execFile } from 'node:child_process';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM-encoded CA certificate and serving key pair. */
export interface ServingCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Loads the CA and serving certificate from `dir`, creating them with openssl when absent. */
export async function ensureServingCertificates(dir: string): Promise<ServingCertificates> {
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const cert = join(dir, 'apiserver.crt');
  const key = join(dir, 'apiserver.key');
  if (!(await exists(caCert)) || !(await exists(cert)) || !(await exists(key))) {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await run('openssl', [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      caKey,
      '-out',
      caCert,
      '-days',
      '3650',
      '-subj',
      '/CN=portico-local-ca',
    ]);
    const csr = join(dir, 'apiserver.csr');
    await run('openssl', ['req', ...ec, '-keyout', key, '-out', csr, '-subj', '/CN=portico-local-apiserver']);
    const extensions = join(dir, 'apiserver.ext');
    await writeFile(
      extensions,
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n',
    );
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '3650',
      '-extfile',
      extensions,
    ]);
  }
  const [caPem, certPem, keyPem] = await Promise.all([
    readFile(caCert, 'utf8'),
    readFile(cert, 'utf8'),
    readFile(key, 'utf8'),
  ]);
  return { caPem, certPem, keyPem };
}
