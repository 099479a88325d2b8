import { type AuditRecord, verifyChain } from '../audit/audit-chain.ts';
import { type CheckpointProof, verifyCheckpointProof } from '../audit/audit-checkpoints.ts';
import { canonicalJson, sha256Hex } from '../domain/canonical-json.ts';
import {
  type ContractSignature,
  countersignPayload,
  type signableContent,
  signingPayload,
} from '../domain/contract.ts';
import { signatureChallenge } from '../domain/webauthn.ts';
import { verifyPartySignature } from '../signing/party-signatures.ts';
import { platformKeyAt } from '../signing/signer.ts';
import { coseToJwk, originIssue, verifyAssertion } from '../signing/webauthn.ts';

/**
 * A signed contract as evidence a third party can check without trusting the server (and without it: no
 * network, no database): the canonical content and its digest, every signature with the public key that
 * verifies it and that key's validity window, the platform's countersignature, and the contract's audit
 * chain with the inclusion proof of its head in a checkpoint the platform signed. `verifyEvidence` is the
 * one verifier: `npm run verify-evidence`, and the server's `GET /contracts/{id}/signatures/verification`.
 */
export const EVIDENCE_FORMAT = 'enclave-contracts-evidence/1';

/** A party's public key as it was registered, with its validity window. */
export interface EvidenceKey {
  readonly kid: string;
  readonly alg: ContractSignature['alg'];
  readonly jwk: Record<string, unknown>;
  readonly createdAt: string;
  /** When a rotation retired it (null: never rotated). */
  readonly notAfter: string | null;
  readonly revokedAt: string | null;
  /** A passkey's (biometric signatures): its WebAuthn credential id, relying party and COSE public key. */
  readonly passkey?: { readonly credentialId: string; readonly rpId: string; readonly cose: string };
}

export type EvidenceSignature = ContractSignature & {
  /** The party's key (null for the platform's countersignature, whose key is in `platformKeys`). */
  readonly key: EvidenceKey | null;
};

export interface EvidenceBundle {
  readonly format: typeof EVIDENCE_FORMAT;
  readonly contract: {
    readonly id: string;
    readonly status: string;
    readonly contentVersion: number;
    readonly contentDigest: string;
    /** The signable content (RFC 8785 canonical JSON of it hashes to `contentDigest`). */
    readonly content: ReturnType<typeof signableContent>;
  };
  readonly signatures: readonly EvidenceSignature[];
  /** The platform's public keys (JWKs with `kid`) as the server published them: pin them to trust them. */
  readonly platformKeys: readonly Record<string, unknown>[];
  readonly audit: {
    readonly records: readonly AuditRecord[];
    readonly checkpoint: CheckpointProof | null;
  };
}

/** One check of a bundle: what was checked, whether it holds, and why not. */
export interface EvidenceCheck {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The verdict on one signature (what `GET /contracts/{id}/signatures/verification` lists). */
export interface SignatureVerdict {
  readonly role: ContractSignature['role'];
  readonly identityId: string | null;
  readonly kid: string;
  readonly alg: string;
  readonly type: string;
  readonly signedAt: string;
  readonly contentVersion: number;
  /** Over the contract's current content (digest and version). */
  readonly current: boolean;
  readonly valid: boolean;
  readonly reason: string | null;
}

export interface EvidenceVerification {
  readonly valid: boolean;
  readonly signatures: SignatureVerdict[];
  readonly checks: EvidenceCheck[];
}

/**
 * Checks every part of a bundle against the others. Never throws: a malformed part fails its check.
 * `pinnedPlatformKeys`: the platform keys the checker trusts (from `GET /platform/keys`, fetched apart);
 * without them the bundle's own are used, and the `platform-keys` check says so.
 */
export function verifyEvidence(
  bundle: EvidenceBundle,
  options: { readonly pinnedPlatformKeys?: readonly Record<string, unknown>[] } = {},
): EvidenceVerification {
  const checks: EvidenceCheck[] = [];
  const signatures: SignatureVerdict[] = [];
  const run = (check: string, test: () => string | null | { ok: true; detail: string }) => {
    let outcome: string | null | { ok: true; detail: string };
    try {
      outcome = test();
    } catch (error) {
      outcome = `malformed: ${(error as Error).message}`;
    }
    const entry =
      outcome === null
        ? { check, ok: true, detail: 'holds' }
        : typeof outcome === 'string'
          ? { check, ok: false, detail: outcome }
          : { check, ok: true, detail: outcome.detail };
    checks.push(entry);
    return entry.ok;
  };

  run('format', () => (bundle?.format === EVIDENCE_FORMAT ? null : `not ${EVIDENCE_FORMAT}`));
  const shaped = run('structure', () => structureIssue(bundle));
  if (!shaped) return { valid: false, signatures, checks };
  const { contract } = bundle;
  run('content-digest', () => {
    if (contract.content.contractId !== contract.id) return 'the content names another contract';
    const digest = sha256Hex(canonicalJson(contract.content));
    return digest === contract.contentDigest
      ? null
      : `SHA-256 of the canonical content is ${digest}, not ${contract.contentDigest}`;
  });
  const pinned = options.pinnedPlatformKeys !== undefined;
  const platformKeys = options.pinnedPlatformKeys ?? bundle.platformKeys;
  run('platform-keys', () =>
    pinned
      ? { ok: true, detail: `${platformKeys.length} pinned key(s)` }
      : {
          ok: true,
          detail: "the bundle's own keys (pin the platform's with --platform-keys to trust them)",
        },
  );

  run('agreement', () => {
    if (contract.status === 'Draft' || contract.status === 'PendingSignature') {
      return { ok: true, detail: `not an agreement yet: the contract is ${contract.status}` };
    }
    const missing = (['provider', 'consumer', 'platform'] as const).filter(
      (role) =>
        !bundle.signatures.some(
          (s) =>
            s.role === role &&
            s.contentDigest === contract.contentDigest &&
            s.contentVersion === contract.contentVersion,
        ),
    );
    return missing.length === 0 ? null : `no ${missing.join(', ')} signature over the current content`;
  });
  const parties = bundle.signatures.filter((s) => s.role !== 'platform');
  for (const s of bundle.signatures) {
    const current =
      s.contentDigest === contract.contentDigest && s.contentVersion === contract.contentVersion;
    let reason: string | null;
    try {
      reason =
        s.role === 'platform'
          ? platformSignatureIssue(s, contract.id, parties, platformKeys)
          : partySignatureIssue(s, contract);
    } catch (error) {
      reason = `malformed: ${(error as Error).message}`;
    }
    checks.push({ check: `signature:${s.role}:${s.kid}`, ok: reason === null, detail: reason ?? 'verifies' });
    signatures.push({
      role: s.role,
      identityId: s.identityId,
      kid: s.kid,
      alg: s.alg,
      type: s.type,
      signedAt: s.signedAt,
      contentVersion: s.contentVersion,
      current,
      valid: reason === null,
      reason,
    });
  }

  const { records, checkpoint } = bundle.audit;
  run('audit-chain', () => {
    if (records.some((r) => r.entityId !== contract.id)) return 'a record of another entity';
    const chain = verifyChain(records);
    return chain.valid ? null : `broken at seq ${chain.brokenAtSeq}: ${chain.reason}`;
  });
  run('audit-records-signatures', () => {
    for (const s of bundle.signatures) {
      const recorded =
        s.role === 'platform'
          ? records.some(
              (r) =>
                r.action === 'activate' &&
                field(r, 'countersignedBy') === s.kid &&
                // Without a payload, no record's digest can match, whatever stands in for it.
                // Stryker disable next-line StringLiteral: equivalent (above)
                field(r, 'payloadDigest') === sha256Hex(s.signedPayload ?? ''),
            )
          : records.some(
              (r) =>
                r.action === 'sign' &&
                field(r, 'role') === s.role &&
                field(r, 'kid') === s.kid &&
                field(r, 'contentDigest') === s.contentDigest &&
                field(r, 'contentVersion') === s.contentVersion &&
                // An mfa signature's record names the type and the second factor, a biometric one the type
                // and the passkey's counter (a digital one neither).
                (field(r, 'type') ?? 'digital') === s.type &&
                field(r, 'secondFactor') === s.secondFactor?.credentialId &&
                field(r, 'signCount') === s.assertion?.signCount,
            );
      if (!recorded) return `no audit record of the ${s.role}'s signature ${s.kid}`;
    }
    return null;
  });
  run('audit-anchored', () => {
    if (!checkpoint) return 'no signed checkpoint covers this chain yet: fetch the bundle after the next one';
    if (checkpoint.leaf.entityId !== contract.id) return 'the checkpoint leaf is of another entity';
    const failure = verifyCheckpointProof(checkpoint, platformKeys);
    if (failure) return failure;
    const record = records.find((r) => r.seq === checkpoint.leaf.seq);
    if (!record) return `the anchored record ${checkpoint.leaf.seq} is not in the bundle`;
    return record.hash === checkpoint.leaf.hash
      ? null
      : `record ${record.seq} differs from the signed checkpoint`;
  });

  return { valid: checks.every((c) => c.ok), signatures, checks };
}

/** What a bundle must be for its parts to be checked at all: the objects and arrays in their places. */
function structureIssue(bundle: EvidenceBundle): string | null {
  const object = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!object(bundle)) return 'not a JSON object';
  if (!object(bundle.contract) || !object(bundle.contract.content)) return 'no contract with its content';
  if (!Array.isArray(bundle.signatures) || !bundle.signatures.every(object)) return 'no signatures array';
  if (!Array.isArray(bundle.platformKeys) || !bundle.platformKeys.every(object))
    return 'no platformKeys array';
  if (!object(bundle.audit) || !Array.isArray(bundle.audit.records) || !bundle.audit.records.every(object)) {
    return 'no audit records';
  }
  return null;
}

function partySignatureIssue(s: EvidenceSignature, contract: EvidenceBundle['contract']): string | null {
  const factorIssue = secondFactorIssue(s);
  if (factorIssue) return factorIssue;
  const expectedIdentity = s.role === 'provider' ? contract.content.providerId : contract.content.consumerId;
  if (s.identityId !== expectedIdentity) return `the ${s.role} of this contract is ${expectedIdentity}`;
  const key = s.key;
  if (!key) return 'no public key in the bundle';
  if (key.kid !== s.kid || key.alg !== s.alg)
    return `the key is ${key.kid} (${key.alg}), not ${s.kid} (${s.alg})`;
  const signedAt = Date.parse(s.signedAt);
  if (!(Date.parse(key.createdAt) <= signedAt)) return `signed at ${s.signedAt}, before the key existed`;
  if (key.revokedAt !== null && !(signedAt < Date.parse(key.revokedAt))) {
    return `signed at ${s.signedAt}, after the key was revoked (${key.revokedAt})`;
  }
  if (key.notAfter !== null && !(signedAt < Date.parse(key.notAfter))) {
    return `signed at ${s.signedAt}, after the key was retired (${key.notAfter})`;
  }
  const payload = signingPayload({
    id: contract.id,
    contentDigest: s.contentDigest,
    contentVersion: s.contentVersion,
  });
  if (s.type === 'biometric') return assertionIssue(s, key, payload);
  if (s.alg === 'RS256' || key.passkey) return 'a passkey signature that is not of type biometric';
  return verifyPartySignature(s.alg, key.jwk, Buffer.from(payload, 'utf8'), s.signature)
    ? null
    : 'the signature does not verify over its signing payload';
}

/**
 * A biometric signature: its WebAuthn assertion verifies with the passkey (whose COSE key is the JWK it is
 * checked with) over the challenge of this signing payload and its nonce, at an origin of the passkey's
 * relying party, with the user verified.
 */
function assertionIssue(s: EvidenceSignature, key: EvidenceKey, payload: string): string | null {
  const { assertion } = s;
  if (!assertion || !key.passkey) return 'a biometric signature without its assertion or passkey';
  if (assertion.credentialId !== key.passkey.credentialId) return 'the assertion names another passkey';
  if (s.alg === 'ES384' || s.alg === 'PS256') return `passkeys do not sign with ${s.alg}`;
  const cose = coseToJwk(Buffer.from(key.passkey.cose, 'base64url'));
  if (cose.alg !== s.alg || canonicalJson(cose.jwk) !== canonicalJson(key.jwk))
    return "the passkey's COSE key is not the key given";
  const { rpId } = key.passkey;
  try {
    verifyAssertion(
      {
        id: assertion.credentialId,
        rawId: assertion.credentialId,
        type: 'public-key',
        response: {
          clientDataJSON: assertion.clientDataJSON,
          authenticatorData: assertion.authenticatorData,
          signature: s.signature,
        },
      },
      signatureChallenge(payload, assertion.nonce),
      { credentialId: key.passkey.credentialId, rpId, alg: s.alg, jwk: key.jwk },
      { origins: (origin) => originIssue(origin, rpId) },
    );
  } catch (error) {
    return `the assertion: ${(error as Error).message}`;
  }
  return null;
}

/** How long a second factor may be verified before its signature is recorded. */
const SECOND_FACTOR_SKEW_MS = 60_000;

/** A `digital` signature carries no second factor; an `mfa` one carries the TOTP check it passed. */
function secondFactorIssue(s: EvidenceSignature): string | null {
  if (s.type === 'digital' || s.type === 'biometric')
    return s.secondFactor === undefined ? null : `a ${s.type} signature with a second factor`;
  if (s.type !== 'mfa') return `signature type ${String(s.type)} is not checked by this version`;
  const factor = s.secondFactor;
  if (factor?.method !== 'totp' || typeof factor.credentialId !== 'string')
    return 'an mfa signature without its verified TOTP second factor';
  const gap = Date.parse(s.signedAt) - Date.parse(factor.verifiedAt);
  if (!(gap >= 0 && gap <= SECOND_FACTOR_SKEW_MS))
    return `the second factor was verified at ${factor.verifiedAt}, not just before the signature (${s.signedAt})`;
  return null;
}

function platformSignatureIssue(
  s: EvidenceSignature,
  contractId: string,
  parties: readonly EvidenceSignature[],
  platformKeys: readonly Record<string, unknown>[],
): string | null {
  // The payload is recomputed from the bundle: the content version and the parties' signatures over it.
  const over = parties.filter(
    (p) => p.contentDigest === s.contentDigest && p.contentVersion === s.contentVersion,
  );
  const expected = countersignPayload(
    { id: contractId, contentDigest: s.contentDigest, contentVersion: s.contentVersion },
    over,
  );
  if (s.signedPayload !== expected)
    return "the countersigned payload is not the parties' signatures over this content";
  const key = platformKeyAt(platformKeys, s.kid, s.signedAt);
  if ('issue' in key) return key.issue;
  if (s.alg !== 'ES256') return `platform signatures are ES256, not ${s.alg}`;
  // ES256 as JWS encodes it (r‖s), the encoding the platform's KMS signatures are stored in.
  const valid = verifyPartySignature('ES256', key.jwk, Buffer.from(expected, 'utf8'), s.signature);
  return valid ? null : 'the countersignature does not verify';
}

function field(record: AuditRecord, name: string): unknown {
  return (record.data as Record<string, unknown> | null)?.[name];
}
