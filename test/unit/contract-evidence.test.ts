/**
 * The evidence verifier (shared/contracts/contract-evidence.ts) on bundles the end-to-end suites produced
 * over HTTP (test/fixtures/evidence: digital, biometric and MFA signatures, each with the platform's
 * countersignature, the audit chain and a signed checkpoint; test/support/evidence-fixtures.ts says how to
 * make them anew). Each check is held by a change that only it sees, and says what it found: the check
 * that fails and its exact detail, at the bounds of every time window.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  EVIDENCE_FORMAT,
  type EvidenceBundle,
  type EvidenceSignature,
  verifyEvidence,
} from '../../shared/contracts/contract-evidence.ts';
import { evidenceFixture } from '../support/evidence-fixtures.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };
type Bundle = Mutable<EvidenceBundle> & Record<string, unknown>;
type Signature = Mutable<EvidenceSignature> & Record<string, unknown>;

const fixtures = {
  digital: evidenceFixture('digital'),
  biometric: evidenceFixture('biometric'),
  mfa: evidenceFixture('mfa'),
};
type Kind = keyof typeof fixtures;

const copy = (kind: Kind) => structuredClone(fixtures[kind].bundle) as Bundle;
const verdict = (bundle: unknown, kind: Kind = 'digital') =>
  verifyEvidence(bundle as EvidenceBundle, { pinnedPlatformKeys: fixtures[kind].platformKeys });
/** `check: detail` of each failing check. */
const failures = (bundle: unknown, kind: Kind = 'digital') =>
  verdict(bundle, kind)
    .checks.filter((c) => !c.ok)
    .map((c) => `${c.check}: ${c.detail}`);
const role = (bundle: Bundle, name: 'provider' | 'consumer' | 'platform') =>
  bundle.signatures.find((s) => s.role === name) as Signature;
const flip = (b64url: string) => {
  const bytes = Buffer.from(b64url, 'base64url');
  bytes[bytes.length - 1]! ^= 1;
  return bytes.toString('base64url');
};
const shift = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();
/** Applies `change` to a copy of `kind`'s bundle, answers the failures. */
const tampered = (kind: Kind, change: (b: Bundle) => void) => {
  const bundle = copy(kind);
  change(bundle);
  return failures(bundle, kind);
};
const signatureCheck = (bundle: Bundle, name: 'provider' | 'consumer' | 'platform') =>
  `signature:${name}:${role(bundle, name).kid}`;

describe('a bundle produced over HTTP', () => {
  it.each(['digital', 'biometric', 'mfa'] as const)(
    '%s: every check holds, in order, and names each signature',
    (kind) => {
      const bundle = fixtures[kind].bundle;
      const result = verdict(bundle, kind);
      expect(result.checks.filter((c) => !c.ok)).toEqual([]);
      expect(result.valid).toBe(true);
      expect(result.checks.map((c) => c.check)).toEqual([
        'format',
        'structure',
        'content-digest',
        'platform-keys',
        'agreement',
        ...bundle.signatures.map((s) => `signature:${s.role}:${s.kid}`),
        'audit-chain',
        'audit-records-signatures',
        'audit-anchored',
      ]);
      expect(result.checks.find((c) => c.check === 'platform-keys')!.detail).toBe(
        `${fixtures[kind].platformKeys.length} pinned key(s)`,
      );
      expect(result.signatures.map((s) => [s.role, s.type, s.valid, s.current, s.reason])).toEqual(
        bundle.signatures.map((s) => [s.role, s.type, true, true, null]),
      );
      expect(
        result.signatures.map((s) => [s.identityId, s.kid, s.alg, s.signedAt, s.contentVersion]),
      ).toEqual(bundle.signatures.map((s) => [s.identityId, s.kid, s.alg, s.signedAt, s.contentVersion]));
    },
  );

  it("says when it checked with the bundle's own platform keys, not pinned ones", () => {
    const result = verifyEvidence(fixtures.digital.bundle);
    expect(result.valid).toBe(true);
    expect(result.checks.find((c) => c.check === 'platform-keys')!.detail).toBe(
      "the bundle's own keys (pin the platform's with --platform-keys to trust them)",
    );
  });
});

describe('the envelope and the content', () => {
  it('refuses another format, and a bundle that is not one, without reading further', () => {
    expect(tampered('digital', (b) => Object.assign(b, { format: 'enclave-contracts-evidence/0' }))).toEqual([
      `format: not ${EVIDENCE_FORMAT}`,
    ]);
    const bundle = copy('digital');
    const shapes: [unknown, string][] = [
      [null, 'not a JSON object'],
      [[], 'not a JSON object'],
      ['bundle', 'not a JSON object'],
      [{ ...bundle, contract: null }, 'no contract with its content'],
      [{ ...bundle, contract: { ...bundle.contract, content: [] } }, 'no contract with its content'],
      [{ ...bundle, signatures: {} }, 'no signatures array'],
      [{ ...bundle, signatures: [...bundle.signatures, null] }, 'no signatures array'],
      [{ ...bundle, platformKeys: null }, 'no platformKeys array'],
      [{ ...bundle, platformKeys: ['key'] }, 'no platformKeys array'],
      [{ ...bundle, audit: [] }, 'no audit records'],
      [{ ...bundle, audit: { ...bundle.audit, records: {} } }, 'no audit records'],
      [{ ...bundle, audit: { ...bundle.audit, records: [...bundle.audit.records, 7] } }, 'no audit records'],
    ];
    for (const [shape, reason] of shapes) {
      const result = verdict(shape);
      expect(result.valid).toBe(false);
      expect(result.checks.map((c) => c.check)).toEqual(['format', 'structure']);
      expect(result.checks[1]).toEqual({ check: 'structure', ok: false, detail: reason });
      expect(result.signatures).toEqual([]);
    }
  });

  it('recomputes the content digest, and refuses content of another contract', () => {
    const bundle = copy('digital');
    const digest = bundle.contract.contentDigest;
    expect(
      tampered('digital', (b) => Object.assign(b.contract.content, { title: 'Something else' })),
    ).toEqual([
      expect.stringMatching(
        new RegExp(`^content-digest: SHA-256 of the canonical content is [0-9a-f]{64}, not ${digest}$`),
      ),
    ]);
    expect(
      tampered('digital', (b) =>
        Object.assign(b.contract.content, { contractId: '00000000-0000-4000-8000-000000000000' }),
      ),
    ).toContain('content-digest: the content names another contract');
  });

  it('holds an agreement to all three signatures over the current content, unless the contract is not yet one', () => {
    expect(
      tampered('digital', (b) => {
        b.signatures = b.signatures.filter((s) => s.role !== 'consumer');
      }),
    ).toContain('agreement: no consumer signature over the current content');
    expect(
      tampered('digital', (b) => {
        b.signatures = b.signatures.filter((s) => s.role === 'provider');
      }),
    ).toContain('agreement: no consumer, platform signature over the current content');
    expect(tampered('digital', (b) => Object.assign(role(b, 'provider'), { contentVersion: 99 }))).toContain(
      'agreement: no provider signature over the current content',
    );
    for (const status of ['Draft', 'PendingSignature']) {
      const bundle = copy('digital');
      bundle.contract.status = status;
      bundle.signatures = [];
      const agreement = verdict(bundle).checks.find((c) => c.check === 'agreement')!;
      expect(agreement).toEqual({
        check: 'agreement',
        ok: true,
        detail: `not an agreement yet: the contract is ${status}`,
      });
    }
  });
});

describe("a party's signature", () => {
  it('is by the party the content names, with the key it names', () => {
    const bundle = copy('digital');
    const provider = role(bundle, 'provider');
    const check = signatureCheck(bundle, 'provider');
    expect(
      tampered('digital', (b) =>
        Object.assign(role(b, 'provider'), { identityId: b.contract.content.consumerId }),
      ),
    ).toContain(`${check}: the provider of this contract is ${bundle.contract.content.providerId}`);
    expect(tampered('digital', (b) => Object.assign(role(b, 'provider'), { key: null }))).toContain(
      `${check}: no public key in the bundle`,
    );
    expect(tampered('digital', (b) => Object.assign(role(b, 'provider').key!, { kid: 'another' }))).toContain(
      `${check}: the key is another (${provider.alg}), not ${provider.kid} (${provider.alg})`,
    );
    expect(tampered('digital', (b) => Object.assign(role(b, 'provider').key!, { alg: 'ES256' }))).toContain(
      `${check}: the key is ${provider.kid} (ES256), not ${provider.kid} (${provider.alg})`,
    );
  });

  it('is made while its key is valid: from its creation included, to its revocation and retirement excluded', () => {
    const bundle = copy('digital');
    const { signedAt } = role(bundle, 'consumer');
    const check = signatureCheck(bundle, 'consumer');
    const withKey = (fields: Record<string, string | null>) =>
      tampered('digital', (b) => Object.assign(role(b, 'consumer').key!, fields)).filter((f) =>
        f.startsWith(check),
      );
    expect(withKey({ createdAt: signedAt })).toEqual([]);
    expect(withKey({ createdAt: shift(signedAt, 1) })).toEqual([
      `${check}: signed at ${signedAt}, before the key existed`,
    ]);
    expect(withKey({ revokedAt: shift(signedAt, 1) })).toEqual([]);
    expect(withKey({ revokedAt: signedAt })).toEqual([
      `${check}: signed at ${signedAt}, after the key was revoked (${signedAt})`,
    ]);
    expect(withKey({ notAfter: shift(signedAt, 1) })).toEqual([]);
    expect(withKey({ notAfter: signedAt })).toEqual([
      `${check}: signed at ${signedAt}, after the key was retired (${signedAt})`,
    ]);
    expect(withKey({ createdAt: 'not a date' })).toEqual([
      `${check}: signed at ${signedAt}, before the key existed`,
    ]);
  });

  it('verifies over its signing payload, and only as the type it claims', () => {
    const bundle = copy('digital');
    const check = signatureCheck(bundle, 'provider');
    expect(
      tampered('digital', (b) =>
        Object.assign(role(b, 'provider'), { signature: flip(role(b, 'provider').signature) }),
      ),
    ).toContain(`${check}: the signature does not verify over its signing payload`);
    expect(
      tampered('digital', (b) =>
        Object.assign(role(b, 'provider').key!, {
          passkey: { credentialId: 'x', rpId: 'localhost', cose: '' },
        }),
      ),
    ).toEqual([`${check}: a passkey signature that is not of type biometric`]);
    expect(
      tampered('digital', (b) => {
        Object.assign(role(b, 'provider'), { alg: 'RS256' });
        Object.assign(role(b, 'provider').key!, { alg: 'RS256' });
      }),
    ).toContain(`${check}: a passkey signature that is not of type biometric`);
    expect(
      tampered('digital', (b) =>
        Object.assign(role(b, 'provider'), {
          secondFactor: { method: 'totp', credentialId: 'c', verifiedAt: '' },
        }),
      ),
    ).toContain(`${check}: a digital signature with a second factor`);
    expect(tampered('digital', (b) => Object.assign(role(b, 'provider'), { type: 'handwritten' }))).toContain(
      `${check}: signature type handwritten is not checked by this version`,
    );
  });
});

describe('a biometric signature (a WebAuthn assertion with the passkey)', () => {
  const bundle = copy('biometric');
  const check = signatureCheck(bundle, 'provider');
  const provider = (b: Bundle) => role(b, 'provider');

  it('carries its assertion and passkey, by the same credential', () => {
    expect(tampered('biometric', (b) => Object.assign(provider(b), { assertion: undefined }))).toContain(
      `${check}: a biometric signature without its assertion or passkey`,
    );
    expect(tampered('biometric', (b) => Object.assign(provider(b).key!, { passkey: undefined }))).toContain(
      `${check}: a biometric signature without its assertion or passkey`,
    );
    expect(
      tampered('biometric', (b) => Object.assign(provider(b).assertion!, { credentialId: 'another' })),
    ).toContain(`${check}: the assertion names another passkey`);
    expect(
      tampered('biometric', (b) =>
        Object.assign(provider(b), { secondFactor: { method: 'totp', credentialId: 'c', verifiedAt: '' } }),
      ),
    ).toContain(`${check}: a biometric signature with a second factor`);
  });

  it('is ES256, EdDSA or RS256, by the COSE key of the passkey', () => {
    for (const alg of ['ES384', 'PS256']) {
      expect(
        tampered('biometric', (b) => {
          Object.assign(provider(b), { alg });
          Object.assign(provider(b).key!, { alg });
        }),
      ).toContain(`${check}: passkeys do not sign with ${alg}`);
    }
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    expect(tampered('biometric', (b) => Object.assign(provider(b).key!, { jwk: other }))).toContain(
      `${check}: the passkey's COSE key is not the key given`,
    );
    expect(
      tampered('biometric', (b) =>
        Object.assign(provider(b).key!, { passkey: { ...provider(b).key!.passkey!, cose: 'AAAA' } }),
      ),
    ).toEqual([expect.stringMatching(new RegExp(`^${check}: malformed: `))]);
  });

  it('verifies: a changed signature is the assertion refused, with its reason', () => {
    const failed = tampered('biometric', (b) =>
      Object.assign(provider(b), { signature: flip(provider(b).signature) }),
    );
    expect(failed.filter((f) => f.startsWith(check))).toEqual([expect.stringMatching(/: the assertion: .+/)]);
  });
});

describe('an MFA signature (a digital signature and the TOTP check it passed)', () => {
  const bundle = copy('mfa');
  const check = signatureCheck(bundle, 'provider');
  const provider = (b: Bundle) => role(b, 'provider');
  const { signedAt } = role(bundle, 'provider');

  it('carries its verified TOTP second factor', () => {
    for (const factor of [
      undefined,
      { method: 'sms', credentialId: 'c', verifiedAt: signedAt },
      { method: 'totp', credentialId: 7, verifiedAt: signedAt },
    ]) {
      expect(tampered('mfa', (b) => Object.assign(provider(b), { secondFactor: factor }))).toContain(
        `${check}: an mfa signature without its verified TOTP second factor`,
      );
    }
  });

  it('was verified at most 60 s before the signature, and not after it', () => {
    const verifiedAt = (at: string) =>
      tampered('mfa', (b) => Object.assign(provider(b).secondFactor!, { verifiedAt: at })).filter((f) =>
        f.startsWith(check),
      );
    expect(verifiedAt(signedAt)).toEqual([]);
    expect(verifiedAt(shift(signedAt, -60_000))).toEqual([]);
    for (const at of [shift(signedAt, -60_001), shift(signedAt, 1), 'not a date']) {
      expect(verifiedAt(at)).toEqual([
        `${check}: the second factor was verified at ${at}, not just before the signature (${signedAt})`,
      ]);
    }
  });
});

describe("the platform's countersignature", () => {
  const bundle = copy('digital');
  const check = signatureCheck(bundle, 'platform');
  const platform = (b: Bundle) => role(b, 'platform');

  it("is over the parties' signatures of this content, by a platform key, in ES256, and verifies", () => {
    expect(
      tampered('digital', (b) =>
        Object.assign(platform(b), { signedPayload: `${platform(b).signedPayload} ` }),
      ),
    ).toContain(`${check}: the countersigned payload is not the parties' signatures over this content`);
    expect(tampered('digital', (b) => Object.assign(platform(b), { alg: 'ES384' }))).toContain(
      `${check}: platform signatures are ES256, not ES384`,
    );
    expect(
      tampered('digital', (b) => Object.assign(platform(b), { signature: flip(platform(b).signature) })),
    ).toEqual([`${check}: the countersignature does not verify`]);
    const unknown = tampered('digital', (b) => Object.assign(platform(b), { kid: 'unknown-key' }));
    expect(unknown).toContain('signature:platform:unknown-key: unknown platform key unknown-key');
  });

  it('counts only the parties whose signatures are over the same content', () => {
    // A party signature over another version is left out of the recomputed payload: the countersignature no
    // longer matches what the platform signed.
    expect(tampered('digital', (b) => Object.assign(role(b, 'consumer'), { contentVersion: 2 }))).toContain(
      `${check}: the countersigned payload is not the parties' signatures over this content`,
    );
  });
});

describe('the audit chain and its anchor', () => {
  it('is the contract chain, intact', () => {
    expect(
      tampered('digital', (b) =>
        Object.assign(b.audit.records[0]!, { entityId: '00000000-0000-4000-8000-000000000000' }),
      ),
    ).toContain('audit-chain: a record of another entity');
    expect(
      tampered('digital', (b) =>
        Object.assign(b.audit.records[0]!, { data: { ...(b.audit.records[0]!.data as object), title: 'x' } }),
      ),
    ).toContain(
      `audit-chain: broken at seq ${fixtures.digital.bundle.audit.records[0]!.seq}: hash does not match the record content`,
    );
  });

  it("records every signature: each field of a party's record, and the platform's activation", () => {
    const bundle = copy('digital');
    const missing = (name: 'provider' | 'consumer' | 'platform', b: Bundle) =>
      `audit-records-signatures: no audit record of the ${name}'s signature ${role(b, name).kid}`;
    const signRecord = (b: Bundle, name: string) =>
      b.audit.records.find((r) => r.action === 'sign' && (r.data as Record<string, unknown>).role === name)!
        .data as Record<string, unknown>;
    for (const field of [
      'role',
      'kid',
      'contentDigest',
      'contentVersion',
      'type',
      'secondFactor',
      'signCount',
    ]) {
      const changed = copy('digital');
      signRecord(changed, 'provider')[field] =
        field === 'contentVersion' || field === 'signCount' ? 7 : 'other';
      expect(failures(changed), field).toContain(missing('provider', changed));
    }
    const activation = (b: Bundle) =>
      b.audit.records.find((r) => r.action === 'activate')!.data as Record<string, unknown>;
    for (const field of ['countersignedBy', 'payloadDigest']) {
      const changed = copy('digital');
      activation(changed)[field] = 'other';
      expect(failures(changed), field).toContain(missing('platform', changed));
    }
    const renamed = copy('digital');
    renamed.audit.records = renamed.audit.records.map((r) =>
      r.action === 'activate' ? { ...r, action: 'resume' } : r,
    );
    expect(failures(renamed)).toContain(missing('platform', bundle));
    // An mfa signature's record names its second factor; a biometric one its passkey's counter.
    const mfa = copy('mfa');
    Object.assign(role(mfa, 'provider').secondFactor!, { credentialId: 'another' });
    expect(failures(mfa, 'mfa')).toContain(missing('provider', mfa));
    const biometric = copy('biometric');
    Object.assign(role(biometric, 'provider').assertion!, { signCount: 99 });
    expect(failures(biometric, 'biometric')).toContain(missing('provider', biometric));
  });

  it('is anchored in a signed checkpoint whose leaf is a record of this chain', () => {
    const bundle = copy('digital');
    const { seq } = bundle.audit.checkpoint!.leaf;
    expect(tampered('digital', (b) => Object.assign(b.audit, { checkpoint: null }))).toEqual([
      'audit-anchored: no signed checkpoint covers this chain yet: fetch the bundle after the next one',
    ]);
    expect(
      tampered('digital', (b) =>
        Object.assign(b.audit.checkpoint!.leaf, { entityId: '00000000-0000-4000-8000-000000000000' }),
      ),
    ).toEqual(['audit-anchored: the checkpoint leaf is of another entity']);
    expect(
      tampered('digital', (b) =>
        Object.assign(b.audit.checkpoint!, { signature: flip(b.audit.checkpoint!.signature) }),
      ),
    ).toEqual([expect.stringMatching(/^audit-anchored: .+/)]);
    const dropped = tampered('digital', (b) => {
      b.audit.records = b.audit.records.filter((r) => r.seq !== seq);
    });
    expect(dropped).toContain(`audit-anchored: the anchored record ${seq} is not in the bundle`);
    const rehashed = tampered('digital', (b) =>
      Object.assign(b.audit.records.find((r) => r.seq === seq)!, { hash: '0'.repeat(64) }),
    );
    expect(rehashed).toContain(`audit-anchored: record ${seq} differs from the signed checkpoint`);
  });
});

describe('the verdicts', () => {
  it('mark a signature over an earlier version as not current, and each invalid one with its reason', () => {
    const bundle = copy('digital');
    Object.assign(role(bundle, 'consumer'), { contentVersion: 0 });
    const result = verdict(bundle);
    const consumer = result.signatures.find((s) => s.role === 'consumer')!;
    expect(consumer.current).toBe(false);
    expect(result.signatures.find((s) => s.role === 'provider')!.current).toBe(true);
    expect(result.valid).toBe(false);
    const flipped = copy('digital');
    Object.assign(role(flipped, 'provider'), { signature: flip(role(flipped, 'provider').signature) });
    const provider = verdict(flipped).signatures.find((s) => s.role === 'provider')!;
    expect([provider.valid, provider.reason]).toEqual([
      false,
      'the signature does not verify over its signing payload',
    ]);
  });
});

describe('what each check says', () => {
  it('says "holds" of a check that holds and "verifies" of a signature that does', () => {
    const result = verdict(fixtures.digital.bundle);
    expect(result.checks.find((c) => c.check === 'format')).toEqual({
      check: 'format',
      ok: true,
      detail: 'holds',
    });
    expect(result.checks.filter((c) => c.check.startsWith('signature:')).map((c) => c.detail)).toEqual([
      'verifies',
      'verifies',
      'verifies',
    ]);
  });

  it('answers a null bundle by its format, and a check that throws as malformed, never throwing itself', () => {
    expect(verdict(null).checks[0]).toEqual({ check: 'format', ok: false, detail: `not ${EVIDENCE_FORMAT}` });
    const bundle = copy('digital');
    Object.assign(bundle.contract.content, { size: 10n });
    const digest = verdict(bundle).checks.find((c) => c.check === 'content-digest')!;
    expect(digest.ok).toBe(false);
    expect(digest.detail).toMatch(/^malformed: .+/);
  });

  it('refuses platform keys of which only some are objects', () => {
    const bundle = copy('digital');
    const result = verdict({ ...bundle, platformKeys: [...bundle.platformKeys, 'junk'] });
    expect(result.checks[1]).toEqual({ check: 'structure', ok: false, detail: 'no platformKeys array' });
  });

  it('takes a signature over other content (same version, another digest) as neither current nor agreeing', () => {
    const bundle = copy('digital');
    Object.assign(role(bundle, 'consumer'), { contentDigest: '0'.repeat(64) });
    const result = verdict(bundle);
    const failed = result.checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`);
    expect(failed).toContain('agreement: no consumer signature over the current content');
    // The countersignature is over the parties' signatures of its content: the changed one is left out.
    expect(failed).toContain(
      `${signatureCheck(bundle, 'platform')}: the countersigned payload is not the parties' signatures over this content`,
    );
    expect(result.signatures.find((s) => s.role === 'consumer')!.current).toBe(false);
  });

  it("finds a party's signature only in a sign record, and a passkey's algorithm only in its COSE key", () => {
    const bundle = copy('digital');
    const record = bundle.audit.records.find(
      (r) => r.action === 'sign' && (r.data as Record<string, unknown>).role === 'provider',
    )!;
    Object.assign(record, { action: 'edit' });
    expect(failures(bundle)).toContain(
      `audit-records-signatures: no audit record of the provider's signature ${role(bundle, 'provider').kid}`,
    );
    const biometric = copy('biometric');
    Object.assign(role(biometric, 'provider'), { alg: 'RS256' });
    Object.assign(role(biometric, 'provider').key!, { alg: 'RS256' });
    expect(failures(biometric, 'biometric')).toContain(
      `${signatureCheck(biometric, 'provider')}: the passkey's COSE key is not the key given`,
    );
  });
});
