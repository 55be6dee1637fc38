import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { testLogger, waitFor } from '../controllers/runtime/testing/harness.ts';
import { allow } from './admission.ts';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueServingCertificate,
} from './certificates.ts';
import { WebhookServer } from './server.ts';

let directory: string;
let ca: CertificateAuthority;
let server: WebhookServer;
let ready = false;
const certFile = () => join(directory, 'tls.crt');
const keyFile = () => join(directory, 'tls.key');

interface Reply {
  status: number;
  body: string;
  certificate: PeerCertificate;
}

function call(method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.address().port, path, method, ca: ca.caPem, agent: false },
      (res) => {
        const certificate = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), certificate }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'portico-webhook-server-'));
  ca = await createCertificateAuthority(directory, 'portico-server-test-ca');
  await issueServingCertificate(ca, 'first', ['IP:127.0.0.1'], certFile(), keyFile());
  server = new WebhookServer({
    address: { host: '127.0.0.1', port: 0 },
    certFile: certFile(),
    keyFile: keyFile(),
    routes: new Map([
      ['/echo', async (admissionRequest) => ({ ...allow(admissionRequest.uid), warnings: ['seen'] })],
    ]),
    logger: testLogger(),
    notReadyReason: () => (ready ? undefined : 'services cache not synced'),
    certificatePollMs: 0,
  });
  await server.start();
});

after(async () => {
  await server?.stop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe('webhook HTTPS server', () => {
  test('answers an AdmissionReview v1 with the same uid in a review envelope', async () => {
    const reply = await call(
      'POST',
      '/echo?timeout=10s',
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u-1', operation: 'CREATE' },
      }),
    );
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-1', allowed: true, warnings: ['seen'] },
    });
  });

  test('a body that is not an AdmissionReview v1 gets 400, an unknown path 404, a GET 405', async () => {
    const wrong = await call(
      'POST',
      '/echo',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview' }),
    );
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /expected apiVersion "admission.k8s.io\/v1"/);
    assert.equal((await call('POST', '/echo', '{')).status, 400);
    assert.equal((await call('POST', '/nowhere', '{}')).status, 404);
    assert.equal((await call('GET', '/echo')).status, 405);
  });

  test('/readyz reports the caches until they sync; /healthz is always ok', async () => {
    const notReady = await call('GET', '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body, 'services cache not synced');
    assert.equal((await call('GET', '/healthz')).status, 200);
    ready = true;
    assert.equal((await call('GET', '/readyz')).status, 200);
  });

  test('a rotated certificate is served to new connections without a restart', async () => {
    assert.equal((await call('GET', '/healthz')).certificate.subject.CN, 'first');
    await issueServingCertificate(ca, 'second', ['IP:127.0.0.1'], certFile(), keyFile());
    await waitFor(
      async () => (await call('GET', '/healthz')).certificate.subject.CN === 'second',
      'the new certificate',
    );
  });

  test('a broken certificate file is ignored and the previous certificate stays in use', async () => {
    await writeFile(certFile(), 'not a certificate');
    assert.equal(await server.reloadCertificates(), false);
    assert.equal((await call('GET', '/healthz')).certificate.subject.CN, 'second');
  });
});
