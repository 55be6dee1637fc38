import type { V1Service } from '@kubernetes/client-node';
import { type AdmissionRequest, type AdmissionResponse, allow, denyInvalid } from '../admission.ts';
import type { AdmissionHandler } from '../handler.ts';
import {
  type ServiceValidationOptions,
  validateService,
  validateServiceUpdate,
} from '../validation/service.ts';
import { SERVICE_GROUP_KIND } from './mutate.ts';

/** Path the validating Service webhook is served at. */
export const VALIDATE_SERVICES_PATH = '/validate-services';

/**
 * The validating webhook for Services: Kubernetes' `ValidateService` on CREATE and
 * `ValidateServiceUpdate` on UPDATE, denied as a 422 Invalid with upstream's field paths and
 * messages. It sees the object after every mutating webhook, so it also catches a Service that
 * another mutating webhook broke after Portico's allocation.
 */
export function validateServices(options: ServiceValidationOptions): AdmissionHandler {
  return async (request: AdmissionRequest): Promise<AdmissionResponse> => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(request.uid);
    // Status updates go through the status strategy, which validates only status.
    if (request.subResource) return allow(request.uid);
    const service = request.object as V1Service;
    const errors =
      request.operation === 'CREATE'
        ? validateService(service, options)
        : validateServiceUpdate(service, request.oldObject as V1Service, options);
    if (errors.length === 0) return allow(request.uid);
    return denyInvalid(request.uid, SERVICE_GROUP_KIND, service.metadata?.name ?? request.name ?? '', errors);
  };
}
