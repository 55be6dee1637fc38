/**
 * Serving certificates for the webhook server, made with the `openssl` CLI: a CA whose PEM goes
 * into the webhook configurations' `caBundle`, and leaf certificates it signs. In a cluster the
 * Helm chart (or cert-manager) provides these; tests, benchmarks and the local cluster use this.
 */
import { execFile } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A CA and where its files are. */
export interface CertificateAuthority {
  /** PEM certificate, for `caBundle`. */
  readonly caPem: string;
  /** Path of the CA certificate. */
  readonly certFile: string;
  /** Path of the CA key. */
  readonly keyFile: string;
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Creates a self-signed CA in `directory` (files `ca.crt`, `ca.key`). */
export async function createCertificateAuthority(
  directory: string,
  commonName: string,
): Promise<CertificateAuthority> {
  const certFile = join(directory, 'ca.crt');
  const keyFile = join(directory, 'ca.key');
  await run('openssl', [
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '3650',
    '-subj',
    `/CN=${commonName}`,
  ]);
  return { caPem: await readFile(certFile, 'utf8'), certFile, keyFile };
}

/**
 * Issues a serving certificate signed by `ca` for the given subject alternative names
 * (`IP:127.0.0.1`, `DNS:portico-webhook.portico-system.svc`) and writes it to `certFile` and
 * `keyFile`. Both are written next to their destination and renamed into place, so a server
 * watching them never reads half a file.
 */
export async function issueServingCertificate(
  ca: CertificateAuthority,
  commonName: string,
  subjectAltNames: readonly string[],
  certFile: string,
  keyFile: string,
): Promise<void> {
  const staging = `${certFile}.${process.pid}.${Date.now()}`;
  const csr = `${staging}.csr`;
  const extensions = `${staging}.ext`;
  await run('openssl', [
    'req',
    ...ecKey,
    '-keyout',
    `${staging}.key`,
    '-out',
    csr,
    '-subj',
    `/CN=${commonName}`,
  ]);
  await writeFile(
    extensions,
    `subjectAltName=${subjectAltNames.join(',')}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-out',
    `${staging}.crt`,
    '-days',
    '365',
    '-extfile',
    extensions,
  ]);
  await rename(`${staging}.key`, keyFile);
  await rename(`${staging}.crt`, certFile);
}
