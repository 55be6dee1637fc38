import {
  VALIDATE_ENDPOINTS_PATH,
  VALIDATE_ENDPOINTSLICES_PATH,
  validateEndpointSlicesWebhook,
  validateEndpointsWebhook,
} from './endpoints/validate.ts';
import type { AdmissionHandler } from './handler.ts';
import {
  type PoolCache,
  VALIDATE_LOADBALANCERIPPOOLS_PATH,
  validateLoadBalancerIPPoolsWebhook,
} from './loadbalancerippools/validate.ts';
import type { ServiceAllocators } from './services/allocators.ts';
import { MUTATE_SERVICES_PATH, mutateServices } from './services/mutate.ts';
import { validationOptionsFor } from './services/options.ts';
import { VALIDATE_SERVICES_PATH, validateServices } from './services/validate.ts';
import type { ClusterIPLookup } from './validation/endpoints.ts';

/** What Portico's webhooks need from the process. */
export interface WebhookRoutesOptions {
  /** The allocators the mutating Service webhook draws from. */
  readonly allocators: ServiceAllocators;
  /** Looks addresses up among Services' ClusterIPs (a Services informer index). */
  readonly isClusterIP: ClusterIPLookup;
}

/**
 * The LoadBalancerIPPool webhook, added by the controller-manager to the server Service
 * allocation built (`WebhookServer.addRoutes`), over the LoadBalancer controller's pools
 * informer.
 */
export function poolRoutes(pools: PoolCache): Map<string, AdmissionHandler> {
  return new Map([[VALIDATE_LOADBALANCERIPPOOLS_PATH, validateLoadBalancerIPPoolsWebhook(pools)]]);
}

/** Every webhook Portico serves, by path. */
export function webhookRoutes(options: WebhookRoutesOptions): Map<string, AdmissionHandler> {
  const validation = validationOptionsFor(options.allocators.ranges);
  const endpointOptions = { isClusterIP: options.isClusterIP };
  return new Map<string, AdmissionHandler>([
    [MUTATE_SERVICES_PATH, mutateServices(options.allocators)],
    [VALIDATE_SERVICES_PATH, validateServices(validation)],
    [VALIDATE_ENDPOINTS_PATH, validateEndpointsWebhook(endpointOptions)],
    [VALIDATE_ENDPOINTSLICES_PATH, validateEndpointSlicesWebhook(endpointOptions)],
  ]);
}
