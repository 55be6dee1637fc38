import type { ServiceValidationOptions } from '../validation/service.ts';
import type { ServiceRanges } from './allocators.ts';

/** The validation options that follow from the configured ranges (`--service-*-range` flags). */
export function validationOptionsFor(ranges: ServiceRanges): ServiceValidationOptions {
  return {
    nodePortRange: { base: ranges.nodePortRange.base, size: ranges.nodePortRange.size },
    serviceCIDRs: ranges.serviceCIDRs.map((range) => range.spec),
  };
}
