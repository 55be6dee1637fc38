import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1MutatingWebhookConfiguration,
  V1RuleWithOperations,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import {
  LOAD_BALANCER_IP_POOL_PLURAL,
  LOAD_BALANCER_IP_POOL_VERSION,
  PORTICO_GROUP,
} from '../api/loadbalancerippool.ts';
import { VALIDATE_ENDPOINTS_PATH, VALIDATE_ENDPOINTSLICES_PATH } from './endpoints/validate.ts';
import { VALIDATE_LOADBALANCERIPPOOLS_PATH } from './loadbalancerippools/validate.ts';
import { MUTATE_SERVICES_PATH } from './services/mutate.ts';
import { VALIDATE_SERVICES_PATH } from './services/validate.ts';

/** Where the API server reaches the webhook server(s). */
export type WebhookEndpoint =
  | { readonly url: string }
  | { readonly service: { readonly namespace: string; readonly name: string; readonly port?: number } };

const servicesRule: V1RuleWithOperations = {
  apiGroups: [''],
  apiVersions: ['v1'],
  operations: ['CREATE', 'UPDATE'],
  resources: ['services'],
  scope: 'Namespaced',
};

function clientConfig(
  endpoint: WebhookEndpoint,
  path: string,
  caBundle: string,
): AdmissionregistrationV1WebhookClientConfig {
  const base64 = Buffer.from(caBundle).toString('base64');
  if ('url' in endpoint) return { url: `${endpoint.url.replace(/\/$/, '')}${path}`, caBundle: base64 };
  return { service: { ...endpoint.service, path }, caBundle: base64 };
}

/**
 * The MutatingWebhookConfiguration and ValidatingWebhookConfiguration that route Services,
 * Endpoints, EndpointSlices and LoadBalancerIPPools to Portico. There is one endpoint, in a
 * cluster the Service in front of all replicas: the API server calls every mutating webhook entry
 * in turn, so one entry per replica would make the second replica try to allocate what the first
 * had just written in.
 *
 * The Service webhooks fail closed (`failurePolicy: Fail`): a Service admitted without its
 * allocation would have no ClusterIP. The mutating one declares `sideEffects: NoneOnDryRun`
 * because it writes allocations except on dry run, and `reinvocationPolicy: Never`: a second
 * call for the same CREATE would see the values the first call wrote in as requested ones and
 * be denied as already allocated. The pool webhook fails closed too: an overlapping pool that
 * slips in while the webhook is down would be marked Overlapping and hand out nothing.
 */
export function webhookConfigurations(
  name: string,
  endpoint: WebhookEndpoint,
  caBundle: string,
): { mutating: V1MutatingWebhookConfiguration; validating: V1ValidatingWebhookConfiguration } {
  const mutating: V1MutatingWebhookConfiguration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'allocate.services.portico.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(endpoint, MUTATE_SERVICES_PATH, caBundle),
        rules: [servicesRule],
        failurePolicy: 'Fail',
        sideEffects: 'NoneOnDryRun',
        reinvocationPolicy: 'Never',
        timeoutSeconds: 10,
      },
    ],
  };
  const validating: V1ValidatingWebhookConfiguration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'services.portico.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(endpoint, VALIDATE_SERVICES_PATH, caBundle),
        rules: [servicesRule],
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 10,
      },
      {
        name: 'endpoints.portico.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(endpoint, VALIDATE_ENDPOINTS_PATH, caBundle),
        rules: [{ ...servicesRule, resources: ['endpoints'] }],
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 10,
      },
      {
        name: 'endpointslices.portico.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(endpoint, VALIDATE_ENDPOINTSLICES_PATH, caBundle),
        rules: [{ ...servicesRule, apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'] }],
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 10,
      },
      {
        name: 'loadbalancerippools.portico.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(endpoint, VALIDATE_LOADBALANCERIPPOOLS_PATH, caBundle),
        rules: [
          {
            apiGroups: [PORTICO_GROUP],
            apiVersions: [LOAD_BALANCER_IP_POOL_VERSION],
            operations: ['CREATE', 'UPDATE'],
            resources: [LOAD_BALANCER_IP_POOL_PLURAL],
            scope: 'Cluster',
          },
        ],
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 10,
      },
    ],
  };
  return { mutating, validating };
}
