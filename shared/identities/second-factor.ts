import type { SecondFactor } from '../domain/contract.ts';
import { UnprocessableError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import { matchingStep, TOTP_DRIFT_STEPS } from '../domain/totp.ts';
import { type Dependencies, secretSealer } from '../runtime/dependencies.ts';
import type { SealedSecret } from '../signing/secret-sealer.ts';
import { findActiveTotpCredential, useTotpStep } from './totp-store.ts';

/**
 * The second factor of an MFA signature, apart from enrolment (shared/identities/totp-service.ts) so that
 * the signing route bundles neither the QR code nor the enrolment.
 */

/** The `purpose` member of a TOTP seed's encryption context, which the credential key's grants require. */
export const TOTP_SEED_PURPOSE = 'totp-seed';

/** What a sealed seed is bound to: KMS's encryption context and the AES-GCM additional data. */
export function sealContext(identityId: string, credentialId: string) {
  return { purpose: TOTP_SEED_PURPOSE, identityId, credentialId };
}

/** The step of `code` for this credential at `now` (±{@link TOTP_DRIFT_STEPS}), or 422 `invalid-otp`. */
export async function checkedStep(
  deps: Dependencies,
  credential: { identityId: string; id: string; sealed: SealedSecret },
  code: string,
  now: Date,
): Promise<number> {
  const seed = await secretSealer(deps).open(
    credential.sealed,
    sealContext(credential.identityId, credential.id),
  );
  try {
    const step = matchingStep(seed, code, now);
    if (step === null) {
      throw new UnprocessableError(
        'invalid-otp',
        'Invalid one-time code',
        `The code is not the current one of TOTP credential ${credential.id} (one 30-second step of drift either way is accepted).`,
        [{ field: 'otp', message: 'not the current code of the second factor' }],
      );
    }
    return step;
  } finally {
    seed.fill(0);
  }
}

/**
 * The second factor of an MFA signature: `code` must be the current code of the caller's confirmed TOTP
 * credential and not used before (each code, and any older one, is accepted once). Uses the code.
 * @throws UnprocessableError `mfa-not-enrolled`, `invalid-otp` or `otp-replayed` (422)
 */
export async function verifySecondFactor(
  deps: Dependencies,
  caller: Identity,
  code: string,
  /** The instant of the signature it is checked for (its code must be current then). */
  now: Date,
): Promise<SecondFactor> {
  const credential = await findActiveTotpCredential(deps.db, caller.id);
  if (!credential) {
    throw new UnprocessableError(
      'mfa-not-enrolled',
      'No second factor',
      'The signer has no confirmed TOTP credential: enrol one (POST /identities/{id}/totp) and confirm it first.',
      [{ field: 'otp', message: 'the signer has no second factor' }],
    );
  }
  const step = await checkedStep(deps, credential, code, now);
  if (!(await useTotpStep(deps.db, credential.id, step))) {
    throw new UnprocessableError(
      'otp-replayed',
      'One-time code already used',
      'This code, or a later one, was accepted already: each code is usable once. Wait for the next one.',
      [{ field: 'otp', message: 'used already' }],
    );
  }
  return { method: 'totp', credentialId: credential.id, verifiedAt: now.toISOString() };
}
