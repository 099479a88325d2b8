import { canonicalJson } from './canonical-json.ts';
import type { PartyRole, PasskeyAssertion, SecondFactor, SignatureType } from './contract.ts';
import { KeySignatureSchema, OtpCodeSchema, type SignatureAlgorithm } from './identity.ts';
import { BiometricSignatureShape } from './webauthn.ts';
import * as z from './zod.ts';

/** A SHA-384 PCR value as `nitro-cli describe-eif` prints it: 96 hex digits, kept lower-case. */
export const PcrHexSchema = z.lazy(() =>
  z.string().check(z.regex(/^[0-9a-fA-F]{96}$/, '96 hex digits (a SHA-384 PCR value)'), z.toLowerCase()),
);

/**
 * PCR0, PCR1 or PCR2 of an enclave image. All zeros is refused: a debug-mode enclave reports its image
 * registers as zeros, so such a pin could never admit a production enclave and would admit any debug one.
 * The one rule for every schema that names an image (measurement sets, `EnclaveImageSchema`).
 */
export const ImagePcrHexSchema = z.lazy(() =>
  PcrHexSchema.check(
    z.refine(
      (value) => !/^0+$/.test(value),
      'all zeros is what debug mode reports, not an image measurement',
    ),
  ),
);

/**
 * The PCRs a measurement set may pin beyond its own fields (PCR0/1/2, PCR8): PCR3 (the parent's IAM role),
 * the registers Nitro reserves (5–7, 9–15) and the ones an enclave extends itself (16–31). PCR4 is not
 * among them: it measures the parent instance's id, which the platform pins for each instance it launches;
 * a set pinning it would admit that one instance only.
 */
export const ADDITIONAL_PCR_INDEXES: readonly number[] = Array.from({ length: 32 }, (_, i) => i).filter(
  (i) => ![0, 1, 2, 4, 8].includes(i), // of the AWS schema's PCR0–PCR31
);

/** At most one pin per allowed index (27): the jsonb column and the signed payload stay a few KB. */
export const MAX_ADDITIONAL_PCRS = ADDITIONAL_PCR_INDEXES.length;

/** An allowed index in decimal without leading zeros ("03" would be a second spelling of PCR3). */
const ADDITIONAL_PCR_KEY = new RegExp(`^(?:${ADDITIONAL_PCR_INDEXES.join('|')})$`);

/** True when `key` names a PCR that `additionalPcrs` may pin. */
export function isAdditionalPcrKey(key: string): boolean {
  return ADDITIONAL_PCR_KEY.test(key);
}

function additionalPcrKeyMessage(key: string): string {
  if (key === '4') {
    return "PCR4 measures the parent instance's id, which the platform pins for each instance it launches: pinned in a set, it would admit one instance only";
  }
  if (['0', '1', '2', '8'].includes(key)) return `PCR${key} has its own field, pcr${key}`;
  return 'not a PCR index that may be pinned here: 3, 5 to 7 or 9 to 31, in decimal without leading zeros';
}

/**
 * Further pinned PCRs: decimal index → 96 hex digits (kept lower-case). The key pattern admits each allowed
 * index once, so the count is bounded by {@link MAX_ADDITIONAL_PCRS}.
 */
export const AdditionalPcrsSchema = z.lazy(() =>
  z.record(z.string().check(z.regex(ADDITIONAL_PCR_KEY, 'a PCR index 3, 5 to 7 or 9 to 31')), PcrHexSchema, {
    error: (issue) =>
      issue.code === 'invalid_key' ? additionalPcrKeyMessage(String(issue.input)) : undefined,
  }),
);
export type AdditionalPcrs = Readonly<Record<string, string>>;

export const ProposeMeasurementsSchema = z.lazy(() =>
  z.strictObject({
    pcr0: ImagePcrHexSchema,
    pcr1: ImagePcrHexSchema,
    pcr2: ImagePcrHexSchema,
    /** The EIF signing certificate's measurement: pins who signed the image. */
    pcr8: z.optional(PcrHexSchema),
    /** Further PCRs the enclave must report (e.g. PCR3, or PCR16 extended by the enclave itself). */
    additionalPcrs: z.optional(AdditionalPcrsSchema),
  }),
);
export type ProposeMeasurements = z.infer<typeof ProposeMeasurementsSchema>;

/**
 * An approval is a signature of either type a contract takes: `digital` (the default, as before types
 * existed), `mfa`, with `otp`, the current code of the approver's TOTP second factor, or `biometric`, a
 * passkey's assertion over the challenge of the set's signing payload and a nonce.
 */
export const ApproveMeasurementsSchema = z.lazy(() =>
  z.union([
    z.extend(KeySignatureSchema, { type: z.optional(z.literal('digital')) }),
    z.extend(KeySignatureSchema, { type: z.literal('mfa'), otp: OtpCodeSchema }),
    z.strictObject({ type: z.literal('biometric'), ...BiometricSignatureShape() }),
  ]),
);
export type ApproveMeasurements = z.infer<typeof ApproveMeasurementsSchema>;

/**
 * The most measurement sets one contract may hold: `GET /contracts/{id}/measurements` lists them all in one
 * reply, and 50 of the largest (every PCR pinned, both approvals) stay far below the Data API's 1 MiB.
 * The contract's row counts them, so concurrent proposals cannot overshoot (migration 0010).
 */
export const MAX_MEASUREMENT_SETS_PER_CONTRACT = 50;

export const MEASUREMENT_SET_STATUSES = ['Proposed', 'Approved'] as const;
export type MeasurementSetStatus = (typeof MEASUREMENT_SET_STATUSES)[number];

export interface MeasurementApproval {
  readonly role: PartyRole;
  readonly identityId: string;
  readonly kid: string;
  readonly alg: SignatureAlgorithm | 'RS256';
  readonly signature: string;
  readonly approvedAt: string;
  /** Absent for approvals made before signature types (digital). */
  readonly type?: SignatureType;
  /** `mfa` only: the second factor verified with the signature. */
  readonly secondFactor?: SecondFactor;
  /** `biometric` only: what the passkey signed. */
  readonly assertion?: PasskeyAssertion;
}

export interface MeasurementSet {
  readonly id: string;
  readonly contractId: string;
  readonly pcr0: string;
  readonly pcr1: string;
  readonly pcr2: string;
  readonly pcr8: string | null;
  /** Further pinned PCRs (`{}` when none): index in decimal → lower-case hex. */
  readonly additionalPcrs: AdditionalPcrs;
  readonly status: MeasurementSetStatus;
  readonly approvals: readonly MeasurementApproval[];
  readonly proposedBy: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * What each party signs to approve a set: the UTF-8 bytes of the RFC 8785 JSON of
 * `{contractId, pcr0, pcr1, pcr2, pcr8?, additionalPcrs?}`. pcr8 is omitted when the set does not pin it
 * and additionalPcrs when it is empty, so the payload of a set without them is what it was before they
 * existed, and approvals signed then still verify.
 */
export function measurementSigningPayload(
  m: Pick<MeasurementSet, 'contractId' | 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8' | 'additionalPcrs'>,
): string {
  return canonicalJson({
    contractId: m.contractId,
    pcr0: m.pcr0,
    pcr1: m.pcr1,
    pcr2: m.pcr2,
    ...(m.pcr8 ? { pcr8: m.pcr8 } : {}),
    ...(Object.keys(m.additionalPcrs).length > 0 ? { additionalPcrs: m.additionalPcrs } : {}),
  });
}

/** Approved once both parties approved the exact set. */
export function statusAfter(approvals: readonly MeasurementApproval[]): MeasurementSetStatus {
  const roles = new Set(approvals.map((a) => a.role));
  return roles.has('provider') && roles.has('consumer') ? 'Approved' : 'Proposed';
}
