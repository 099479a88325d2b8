import { loadCheckpointProof } from '../audit/audit-checkpoints.ts';
import { listAuditRecords } from '../audit/audit-store.ts';
import { signableContent } from '../domain/contract.ts';
import type { Identity } from '../domain/identity.ts';
import type { Reply } from '../http/reply.ts';
import { findKey } from '../identities/identity-store.ts';
import { findPasskey } from '../identities/webauthn-store.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { listPlatformKeys } from '../signing/platform-key-registry.ts';
import {
  EVIDENCE_FORMAT,
  type EvidenceBundle,
  type EvidenceCheck,
  type SignatureVerdict,
  verifyEvidence,
} from './contract-evidence.ts';
import { loadVisible } from './contract-service.ts';

/** A contract's audit chain is short (one record per change); a bundle carries all of it, up to this. */
const MAX_EVIDENCE_RECORDS = 1000;

/**
 * `GET /contracts/{id}/evidence`: the contract as a self-contained bundle (parties, admins, auditors): its
 * canonical content, every signature with its key and the key's validity window, the platform's keys, and
 * its audit chain with the latest signed checkpoint's inclusion proof.
 */
export async function getContractEvidence(
  deps: Dependencies,
  caller: Identity,
  id: string,
): Promise<Reply<EvidenceBundle>> {
  return { status: 200, body: await assembleEvidence(deps, caller, id) };
}

export interface SignatureVerification {
  readonly contractId: string;
  readonly contentDigest: string;
  readonly contentVersion: number;
  /** The content digest and every signature hold. */
  readonly valid: boolean;
  readonly signatures: SignatureVerdict[];
  readonly checks: EvidenceCheck[];
}

/**
 * `GET /contracts/{id}/signatures/verification`: every party and platform signature verified again against
 * the stored content and each key's validity window, with the platform's current keys, by the same
 * verifier a third party runs on the evidence bundle.
 */
export async function verifyContractSignatures(
  deps: Dependencies,
  caller: Identity,
  id: string,
): Promise<Reply<SignatureVerification>> {
  const bundle = await assembleEvidence(deps, caller, id);
  const verdict = verifyEvidence(bundle, { pinnedPlatformKeys: bundle.platformKeys });
  const decisive = verdict.checks.filter(
    (c) => c.check === 'content-digest' || c.check.startsWith('signature:'),
  );
  return {
    status: 200,
    body: {
      contractId: bundle.contract.id,
      contentDigest: bundle.contract.contentDigest,
      contentVersion: bundle.contract.contentVersion,
      valid: decisive.every((c) => c.ok),
      signatures: verdict.signatures,
      checks: verdict.checks,
    },
  };
}

async function assembleEvidence(deps: Dependencies, caller: Identity, id: string): Promise<EvidenceBundle> {
  const { contract } = await loadVisible(deps, caller, id);
  const [signatures, platformKeys, records, checkpoint] = await Promise.all([
    Promise.all(
      contract.signatures.map(async (s) => {
        if (s.identityId !== null && s.type === 'biometric') {
          const passkey = await findPasskey(deps.db, s.identityId, s.kid);
          return {
            ...s,
            key: passkey && {
              kid: passkey.id,
              alg: passkey.alg,
              jwk: passkey.jwk,
              createdAt: passkey.createdAt,
              notAfter: passkey.notAfter,
              revokedAt: passkey.revokedAt,
              passkey: { credentialId: passkey.credentialId, rpId: passkey.rpId, cose: passkey.cose },
            },
          };
        }
        const key = s.identityId === null ? null : await findKey(deps.db, s.identityId, s.kid);
        return {
          ...s,
          key: key && {
            kid: key.kid,
            alg: key.alg,
            jwk: key.jwk,
            createdAt: key.createdAt,
            notAfter: key.notAfter,
            revokedAt: key.revokedAt,
          },
        };
      }),
    ),
    listPlatformKeys(deps.db),
    listAuditRecords(deps.db, contract.id, 0, MAX_EVIDENCE_RECORDS),
    loadCheckpointProof(deps.db, contract.id),
  ]);
  return {
    format: EVIDENCE_FORMAT,
    contract: {
      id: contract.id,
      status: contract.status,
      contentVersion: contract.contentVersion,
      contentDigest: contract.contentDigest,
      content: signableContent(contract),
    },
    signatures,
    platformKeys,
    audit: { records, checkpoint },
  };
}
