import type { V1Service } from '@kubernetes/client-node';
import {
  type AdmissionRequest,
  type AdmissionResponse,
  allow,
  allowWithPatch,
  denyInternal,
  denyInvalid,
  specPatch,
} from '../admission.ts';
import type { AdmissionHandler } from '../handler.ts';
import type { FieldError, GroupKind } from '../validation/field-errors.ts';
import { validateService, validateServiceUpdate } from '../validation/service.ts';
import { allocatePlan } from './allocate.ts';
import type { ServiceAllocators } from './allocators.ts';
import { validationOptionsFor } from './options.ts';
import { initIPFamilyFields, needsHealthCheck, planAllocations, prepareService } from './plan.ts';

/** The group and kind denials name: `Service "web" is invalid: …`. */
export const SERVICE_GROUP_KIND: GroupKind = { group: '', kind: 'Service' };

/** Path the mutating Service webhook is served at. */
export const MUTATE_SERVICES_PATH = '/mutate-services';

/**
 * Validation runs before allocation here, while kube-apiserver validates after it; the one
 * error that only means "not allocated yet" is the missing healthCheckNodePort.
 */
function resolvedByAllocation(error: FieldError, service: V1Service): boolean {
  return (
    error.type === 'Required' &&
    error.field === 'spec.healthCheckNodePort' &&
    needsHealthCheck(service) &&
    !service.spec?.healthCheckNodePort
  );
}

/**
 * The mutating webhook for Services (CREATE and UPDATE): applies the API server's defaults,
 * fills ipFamilyPolicy and ipFamilies, and allocates the ClusterIPs and node ports the Service
 * lacks, answering with a JSONPatch that writes them in.
 *
 * The Service is validated before anything is allocated, so a request the validating webhook
 * would reject anyway does not take (and leak) values first.
 *
 * Values the update no longer holds are deliberately not released here: the update may still
 * fail to be stored (another webhook denies it, a resourceVersion conflict), and a value released
 * now could be handed to another Service while the old one still uses it. The release controller
 * frees them once the informer shows the update stored (as upstream frees them after the commit);
 * the repair loop is the backstop.
 */
export function mutateServices(allocators: ServiceAllocators): AdmissionHandler {
  const options = validationOptionsFor(allocators.ranges);
  return async (request: AdmissionRequest): Promise<AdmissionResponse> => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(request.uid);
    if (request.subResource) return allow(request.uid);
    const service = request.object as V1Service;
    const old = request.operation === 'UPDATE' ? (request.oldObject as V1Service) : undefined;
    const name = service.metadata?.name ?? request.name ?? '';
    const prepared = prepareService(service, old);
    const errors = (
      old === undefined ? validateService(prepared, options) : validateServiceUpdate(prepared, old, options)
    ).filter((error) => !resolvedByAllocation(error, prepared));
    if (errors.length > 0) return denyInvalid(request.uid, SERVICE_GROUP_KIND, name, errors);
    initIPFamilyFields(prepared, old, allocators.families);
    const plan = planAllocations(prepared, old);
    const failure = await allocatePlan(plan, allocators, request.dryRun === true);
    if (failure?.kind === 'invalid')
      return denyInvalid(request.uid, SERVICE_GROUP_KIND, name, failure.errors);
    if (failure?.kind === 'internal') return denyInternal(request.uid, failure.message);
    return allowWithPatch(request.uid, specPatch(service, plan.service));
  };
}
