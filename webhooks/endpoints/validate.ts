import type { V1EndpointSlice, V1Endpoints, V1Service } from '@kubernetes/client-node';
import { type AdmissionRequest, type AdmissionResponse, allow, denyInvalid } from '../admission.ts';
import type { AdmissionHandler } from '../handler.ts';
import { CLUSTER_IP_INDEX } from '../services/held.ts';
import {
  type ClusterIPLookup,
  type EndpointValidationOptions,
  validateEndpointSlice,
  validateEndpoints,
} from '../validation/endpoints.ts';

/** Path of the Endpoints webhook. */
export const VALIDATE_ENDPOINTS_PATH = '/validate-endpoints';

/** Path of the EndpointSlice webhook. */
export const VALIDATE_ENDPOINTSLICES_PATH = '/validate-endpointslices';

/**
 * A {@link ClusterIPLookup} over a Services cache indexed by {@link CLUSTER_IP_INDEX}: the owning
 * Service's `namespace/name`, so the denial names it.
 */
export function clusterIPLookup(
  byIndex: (index: string, value: string) => readonly V1Service[],
): ClusterIPLookup {
  return (ip) => {
    const owner = byIndex(CLUSTER_IP_INDEX, ip)[0];
    if (owner === undefined) return false;
    return `${owner.metadata?.namespace ?? ''}/${owner.metadata?.name ?? ''}`;
  };
}

/**
 * The validating webhook for user-written Endpoints: addresses may not be loopback, link-local,
 * unspecified or a Service's ClusterIP (kube-proxy cannot route a virtual IP to a virtual IP).
 */
export function validateEndpointsWebhook(options: EndpointValidationOptions): AdmissionHandler {
  return async (request: AdmissionRequest): Promise<AdmissionResponse> => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(request.uid);
    const endpoints = request.object as V1Endpoints;
    const errors = validateEndpoints(endpoints, options);
    if (errors.length === 0) return allow(request.uid);
    return denyInvalid(request.uid, { group: '', kind: 'Endpoints' }, endpoints.metadata?.name ?? '', errors);
  };
}

/** The validating webhook for EndpointSlices, with the same address rules. */
export function validateEndpointSlicesWebhook(options: EndpointValidationOptions): AdmissionHandler {
  return async (request: AdmissionRequest): Promise<AdmissionResponse> => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(request.uid);
    const slice = request.object as V1EndpointSlice;
    const errors = validateEndpointSlice(slice, options);
    if (errors.length === 0) return allow(request.uid);
    return denyInvalid(
      request.uid,
      { group: 'discovery.k8s.io', kind: 'EndpointSlice' },
      slice.metadata?.name ?? '',
      errors,
    );
  };
}
