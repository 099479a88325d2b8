import { randomBytes } from 'node:crypto';
import { ConflictError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import { qrSvg } from '../domain/qr-svg.ts';
import { otpauthUri, TOTP_SECRET_BYTES, type TotpCredential } from '../domain/totp.ts';
import type { Reply } from '../http/reply.ts';
import { type Dependencies, secretSealer } from '../runtime/dependencies.ts';
import { writeIdentityChange } from './identity-service.ts';
import { sealContext } from './second-factor.ts';
import { MAX_PENDING_TOTP, requireSelf } from './totp-service.ts';
import { insertTotpMutation } from './totp-store.ts';

// Enrolment apart from the other TOTP routes: only its bundle carries the QR code drawing.

/**
 * `POST /identities/{id}/totp`: a new pending TOTP credential for the caller itself. The seed (160 random
 * bits) is sealed under the credential key before it is stored, and shown once, as an `otpauth://` URI and
 * its QR code; the credential becomes a second factor when its first code confirms it.
 */
export async function enrolTotp(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
): Promise<Reply<{ credential: TotpCredential; otpauthUri: string; qrSvg: string }>> {
  await requireSelf(deps, caller, identityId, 'enrol a second factor');
  const credential: TotpCredential = {
    id: deps.newId(),
    identityId,
    createdAt: deps.now().toISOString(),
    confirmedAt: null,
    notAfter: null,
    revokedAt: null,
  };
  const seed = randomBytes(TOTP_SECRET_BYTES);
  try {
    const sealed = await secretSealer(deps).seal(seed, sealContext(identityId, credential.id));
    await writeIdentityChange(
      deps,
      caller,
      identityId,
      {
        ...insertTotpMutation(credential, sealed, caller.version, MAX_PENDING_TOTP),
        at: credential.createdAt,
        action: 'enrol-totp',
        actorId: caller.id,
        data: { credentialId: credential.id },
        event: { type: 'TotpEnrolled', payload: { identityId, credentialId: credential.id } },
      },
      {
        refusal: (extra) =>
          Number(extra.pending_held) >= MAX_PENDING_TOTP
            ? new ConflictError(
                'too-many-pending',
                'Too many pending enrolments',
                `The identity already has ${MAX_PENDING_TOTP} enrolments waiting for their first code; confirm or revoke one.`,
              )
            : undefined,
      },
    );
    const uri = otpauthUri(seed, caller.email ?? caller.name);
    return { status: 201, body: { credential, otpauthUri: uri, qrSvg: qrSvg(uri) } };
  } finally {
    seed.fill(0);
  }
}
