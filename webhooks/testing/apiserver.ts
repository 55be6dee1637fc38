/**
 * What the webhook tests against the local API server set up the same way: a serving certificate
 * for 127.0.0.1, the webhook configurations registered with it, and the real kubectl.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AdmissionregistrationV1Api, type KubeConfig } from '@kubernetes/client-node';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueServingCertificate,
} from '../certificates.ts';
import { webhookConfigurations } from '../configurations.ts';

const run = promisify(execFile);

/** A CA and the serving certificate it signed for `IP:127.0.0.1`. */
export interface LoopbackCertificate {
  readonly ca: CertificateAuthority;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Creates a CA named `caName` in `directory` and issues `tls.crt`/`tls.key` there for 127.0.0.1. */
export async function loopbackServingCertificate(
  directory: string,
  caName: string,
): Promise<LoopbackCertificate> {
  const ca = await createCertificateAuthority(directory, caName);
  const certFile = join(directory, 'tls.crt');
  const keyFile = join(directory, 'tls.key');
  await issueServingCertificate(ca, 'portico-webhook', ['IP:127.0.0.1'], certFile, keyFile);
  return { ca, certFile, keyFile };
}

/**
 * Registers Portico's webhook configurations with the API server, pointing at
 * `https://127.0.0.1:<port>`. With `webhookNames`, only those webhooks are registered, so a
 * server that serves some routes only is never called for the others; a configuration left with
 * no webhook is not created.
 */
export async function registerLoopbackWebhooks(
  kubeConfig: KubeConfig,
  port: number,
  caPem: string,
  webhookNames?: readonly string[],
): Promise<void> {
  const { mutating, validating } = webhookConfigurations(
    'portico',
    { url: `https://127.0.0.1:${port}` },
    caPem,
  );
  if (webhookNames !== undefined) {
    mutating.webhooks = mutating.webhooks?.filter((webhook) => webhookNames.includes(webhook.name));
    validating.webhooks = validating.webhooks?.filter((webhook) => webhookNames.includes(webhook.name));
  }
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  if (mutating.webhooks?.length) await admission.createMutatingWebhookConfiguration({ body: mutating });
  if (validating.webhooks?.length) await admission.createValidatingWebhookConfiguration({ body: validating });
}

/** How one kubectl run ended; a failed run resolves too, with its exit code. */
export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs /usr/bin/kubectl with `KUBECONFIG` set to `kubeconfigPath`. */
export async function kubectlWith(kubeconfigPath: string, args: readonly string[]): Promise<KubectlResult> {
  try {
    const { stdout, stderr } = await run('/usr/bin/kubectl', args, {
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
