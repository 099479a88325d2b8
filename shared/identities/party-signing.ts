import type { ContractSignature, PasskeyAssertion, SecondFactor, SignatureType } from '../domain/contract.ts';
import type { Identity, KeySignatureSchema, OtpCodeSchema } from '../domain/identity.ts';
import type { AuthenticationResponse } from '../domain/webauthn.ts';
import type * as z from '../domain/zod.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { verifyCallerSignature } from './identity-service.ts';
import { verifyBiometric } from './passkey-signature.ts';
import { verifySecondFactor } from './second-factor.ts';

/** A party's signature as sent, of any type (a contract's, or a measurement set's approval). */
export type PartySignatureInput =
  | (z.infer<typeof KeySignatureSchema> & { type?: 'digital' })
  | (z.infer<typeof KeySignatureSchema> & { type: 'mfa'; otp: z.infer<typeof OtpCodeSchema> })
  | { type: 'biometric'; nonce: string; assertion: AuthenticationResponse };

/** A verified party signature: what a contract signature or an approval stores of it. */
export interface VerifiedPartySignature {
  readonly type: SignatureType;
  readonly kid: string;
  readonly alg: ContractSignature['alg'];
  readonly signature: string;
  readonly secondFactor?: SecondFactor;
  readonly assertion?: PasskeyAssertion;
}

/**
 * Verifies a party's signature of `payload` by the caller, of the type it says, and uses up what is usable
 * once (a TOTP code, a passkey nonce): `digital` (a key of the caller's), `mfa` (the same and a fresh TOTP
 * code, checked after the signature so that a bad one never uses the code), `biometric` (a passkey's
 * assertion over the payload's challenge). `what` names the payload in a refusal.
 * @throws UnprocessableError (422) naming what failed
 */
export async function verifyPartyInput(
  deps: Dependencies,
  caller: Identity,
  input: PartySignatureInput,
  payload: string,
  what: string,
  at: string,
): Promise<VerifiedPartySignature> {
  if (input.type === 'biometric') {
    const { passkey, assertion } = await verifyBiometric(deps, caller, input, payload, at);
    return {
      type: 'biometric',
      kid: passkey.id,
      alg: passkey.alg,
      signature: input.assertion.response.signature,
      assertion,
    };
  }
  const key = await verifyCallerSignature(deps, caller, input, payload, what);
  const base = { kid: key.kid, alg: key.alg, signature: input.signature };
  if (input.type !== 'mfa') return { type: 'digital', ...base };
  return {
    type: 'mfa',
    ...base,
    secondFactor: await verifySecondFactor(deps, caller, input.otp, new Date(at)),
  };
}

/** How a refused attempt names the credential it was made with. */
export function attemptedCredential(input: PartySignatureInput): string {
  return input.type === 'biometric' ? `passkey ${input.assertion.rawId.slice(0, 64)}` : `kid ${input.kid}`;
}

/** What the audit record of a signature says of its type beyond the kid (a digital one: nothing). */
export function signatureAuditData(s: VerifiedPartySignature): Record<string, unknown> {
  if (s.type === 'mfa') return { type: s.type, secondFactor: s.secondFactor?.credentialId };
  if (s.type === 'biometric') return { type: s.type, signCount: s.assertion?.signCount };
  return {};
}
