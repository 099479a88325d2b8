import { z } from 'zod';
import { canonicalJson } from './canonical-json.ts';
import type { PartyRole } from './contract.ts';
import { KeySignatureSchema, type SignatureAlgorithm } from './identity.ts';

/** A SHA-384 PCR value as `nitro-cli describe-eif` prints it: 96 hex digits, kept lower-case. */
export const PcrHexSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{96}$/, '96 hex digits (a SHA-384 PCR value)')
  .toLowerCase();

export const ProposeMeasurementsSchema = z.strictObject({
  pcr0: PcrHexSchema,
  pcr1: PcrHexSchema,
  pcr2: PcrHexSchema,
  /** The EIF signing certificate's measurement: pins who signed the image. */
  pcr8: PcrHexSchema.optional(),
});
export type ProposeMeasurements = z.infer<typeof ProposeMeasurementsSchema>;

export const ApproveMeasurementsSchema = KeySignatureSchema;
export type ApproveMeasurements = z.infer<typeof ApproveMeasurementsSchema>;

export const MEASUREMENT_SET_STATUSES = ['Proposed', 'Approved'] as const;
export type MeasurementSetStatus = (typeof MEASUREMENT_SET_STATUSES)[number];

export interface MeasurementApproval {
  readonly role: PartyRole;
  readonly identityId: string;
  readonly kid: string;
  readonly alg: SignatureAlgorithm;
  readonly signature: string;
  readonly approvedAt: string;
}

export interface MeasurementSet {
  readonly id: string;
  readonly contractId: string;
  readonly pcr0: string;
  readonly pcr1: string;
  readonly pcr2: string;
  readonly pcr8: string | null;
  readonly status: MeasurementSetStatus;
  readonly approvals: readonly MeasurementApproval[];
  readonly proposedBy: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * What each party signs to approve a set: the UTF-8 bytes of the RFC 8785 JSON of
 * `{contractId, pcr0, pcr1, pcr2, pcr8?}` (pcr8 omitted when the set does not pin it).
 */
export function measurementSigningPayload(
  m: Pick<MeasurementSet, 'contractId' | 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8'>,
): string {
  return canonicalJson({
    contractId: m.contractId,
    pcr0: m.pcr0,
    pcr1: m.pcr1,
    pcr2: m.pcr2,
    ...(m.pcr8 ? { pcr8: m.pcr8 } : {}),
  });
}

/** Approved once both parties approved the exact set. */
export function statusAfter(approvals: readonly MeasurementApproval[]): MeasurementSetStatus {
  const roles = new Set(approvals.map((a) => a.role));
  return roles.has('provider') && roles.has('consumer') ? 'Approved' : 'Proposed';
}
