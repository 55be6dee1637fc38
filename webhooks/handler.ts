import type { AdmissionRequest, AdmissionResponse } from './admission.ts';

/**
 * One webhook: takes the request of an AdmissionReview and answers it. A thrown error becomes a
 * 500 for the API server, which then applies the webhook's failurePolicy.
 */
export type AdmissionHandler = (request: AdmissionRequest) => Promise<AdmissionResponse>;
