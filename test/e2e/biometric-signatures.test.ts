import { readFileSync } from 'node:fs';
import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, localOrigin, startLocalStack } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { securityRefusalChainId } from '../../shared/audit/security-refusals.ts';
import {
  type EvidenceBundle,
  type EvidenceSignature,
  verifyEvidence,
} from '../../shared/contracts/contract-evidence.ts';
import { sql } from '../../shared/database/database.ts';
import { signatureChallenge } from '../../shared/domain/webauthn.ts';
import { ApiClient, seeded } from '../support/api-client.ts';
import { recordEvidenceFixture } from '../support/evidence-fixtures.ts';
import { refusalChecker } from '../support/refusals.ts';
import { type Ceremony, SoftwareAuthenticator } from '../support/webauthn-authenticator.ts';

/**
 * Biometric signatures over HTTP on the local stack: a passkey registered (WebAuthn registration ceremony,
 * a challenge issued and consumed once), then contracts and measurement sets signed with assertions whose
 * challenge is derived from the exact signing payload and a server nonce. The authenticator is a software
 * one (test/support/webauthn-authenticator.ts) building real authenticator data and signatures; every
 * check is the server's. The clock is the stack's, moved to expire challenges.
 */
type Sig = EvidenceSignature;
const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));
type Passkey = { id: string; credentialId: string; signCount: number; revokedAt: string | null; alg: string };
type Contract = {
  id: string;
  version: number;
  signingPayload: string;
  status: string;
  signatures: {
    role: string;
    type: string;
    kid: string;
    assertion?: Record<string, unknown>;
    signedPayload?: string;
  }[];
};
type Options = {
  nonce: string;
  expiresAt: string;
  publicKey: { challenge: string; allowCredentials: { id: string }[] };
};

let stack: LocalStack;
let offsetMs = 0;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
let origin: string;
const authenticators: Record<'provider' | 'consumer', SoftwareAuthenticator> = {} as never;
const passkeys: Record<'provider' | 'consumer', Passkey> = {} as never;
const now = () => new Date(Date.now() + offsetMs);
const ids = { provider: seeded.provider, consumer: seeded.consumer };
const client = (party: 'provider' | 'consumer') => (party === 'provider' ? provider : consumer);

async function snapshot(): Promise<string> {
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT json_agg(json_build_object('id', id, 'count', sign_count, 'revoked', revoked_at) ORDER BY id) FROM webauthn_credentials) AS passkeys,
    (SELECT json_agg(signatures ORDER BY id) FROM contracts) AS signatures,
    (SELECT json_agg(approvals ORDER BY id) FROM measurement_sets) AS approvals,
    (SELECT coalesce(sum(version), 0) FROM identities)::int AS versions,
    (SELECT count(*) FROM audit_log WHERE entity_type <> 'security-refusal')::int AS audit,
    (SELECT count(*) FROM outbox)::int AS outbox`);
  return JSON.stringify(rows[0]);
}
const refused = refusalChecker(snapshot);

async function registrationOptions(party: 'provider' | 'consumer') {
  const res = await client(party).post<{
    publicKey: { challenge: string; user: { id: string } } & Record<string, unknown>;
  }>(`/identities/${ids[party]}/webauthn/registration-options`);
  expect(res.status, res.text).toBe(200);
  return res.body.publicKey;
}

function register(party: 'provider' | 'consumer', response: unknown, name = 'laptop') {
  return client(party).post<Passkey>(`/identities/${ids[party]}/webauthn/registrations`, { response, name });
}

async function newContract(): Promise<Contract> {
  const res = await provider.post<Contract>('/contracts', CREATE);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function authenticationOptions(party: 'provider' | 'consumer', signingPayload: string) {
  const res = await client(party).post<Options>(`/identities/${ids[party]}/webauthn/authentication-options`, {
    signingPayload,
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** A biometric signature of `contract` by `party`: options, the authenticator's assertion, the sign call. */
async function bioSign(party: 'provider' | 'consumer', contract: Contract, ceremony: Ceremony = {}) {
  const options = await authenticationOptions(party, contract.signingPayload);
  const assertion = authenticators[party].assert(options.publicKey.challenge, ceremony);
  return client(party).post<Contract>(`/contracts/${contract.id}/sign`, {
    type: 'biometric',
    nonce: options.nonce,
    assertion,
  });
}

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false, now });
  origin = localOrigin(stack.url);
  [provider, consumer, admin] = (await Promise.all(
    (['provider', 'consumer', 'admin'] as const).map((n) => ApiClient.as(stack, n)),
  )) as [ApiClient, ApiClient, ApiClient];
  authenticators.provider = new SoftwareAuthenticator({ origin, rpId: 'localhost' });
  authenticators.consumer = new SoftwareAuthenticator({ origin, rpId: 'localhost' }, { alg: 'EdDSA' });
}, 60_000);
afterAll(async () => stack?.close());

describe('passkey registration', () => {
  it('offers options for a user-verifying passkey and registers the answer, audited', async () => {
    const options = await registrationOptions('provider');
    expect(options).toMatchObject({
      rp: { id: 'localhost' },
      attestation: 'none',
      authenticatorSelection: { userVerification: 'required' },
      pubKeyCredParams: [
        { type: 'public-key', alg: -8 },
        { type: 'public-key', alg: -7 },
        { type: 'public-key', alg: -257 },
      ],
      excludeCredentials: [],
    });
    expect(Buffer.from(options.user.id, 'base64url').toString('hex')).toBe(
      seeded.provider.replaceAll('-', ''),
    );
    const res = await register('provider', authenticators.provider.register(options.challenge));
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/identities/${seeded.provider}/webauthn/credentials`);
    expect(res.body).toMatchObject({
      credentialId: authenticators.provider.credentialId.toString('base64url'),
      alg: 'ES256',
      rpId: 'localhost',
      signCount: 0,
      name: 'laptop',
      revokedAt: null,
    });
    passkeys.provider = res.body;
    const listed = await provider.get<{ credentials: Passkey[] }>(
      `/identities/${seeded.provider}/webauthn/credentials`,
    );
    expect(listed.body.credentials.map((c) => c.id)).toEqual([res.body.id]);
    const { rows } = await stack.deps.db.query<{ action: string; data: Record<string, unknown> }>(
      `SELECT action, data FROM audit_log WHERE entity_id = :id ORDER BY seq DESC LIMIT 1`,
      { id: sql.uuid(seeded.provider) },
    );
    expect(rows[0]).toMatchObject({
      action: 'register-passkey',
      data: { passkeyId: res.body.id, alg: 'ES256' },
    });

    const consumerOptions = await registrationOptions('consumer');
    const consumerRes = await register(
      'consumer',
      authenticators.consumer.register(consumerOptions.challenge, { fmt: 'packed' }),
    );
    expect(consumerRes.status, consumerRes.text).toBe(201);
    expect(consumerRes.body.alg).toBe('EdDSA');
    passkeys.consumer = consumerRes.body;
    // The registered passkey is excluded from the next registration.
    expect((await registrationOptions('provider')).excludeCredentials).toEqual([
      { type: 'public-key', id: passkeys.provider.credentialId, transports: ['internal'] },
    ]);
  });

  it('refuses every bad registration with a 422 naming it, changing nothing', async () => {
    const fresh = () => new SoftwareAuthenticator({ origin, rpId: 'localhost' });
    const cbor = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });
    const cases: [string, (challenge: string) => unknown, string][] = [
      ['no user verification', (c) => fresh().register(c, { uv: false }), 'user-not-verified'],
      [
        'another origin',
        (c) => fresh().register(c, { origin: 'https://evil.example' }),
        'origin-not-allowed',
      ],
      ['another relying party', (c) => fresh().register(c, { rpId: 'evil.example' }), 'rp-id-mismatch'],
      ['an assertion', (c) => fresh().register(c, { type: 'webauthn.get' }), 'wrong-ceremony'],
      ['a challenge never issued', () => fresh().register('bm90LWlzc3VlZA'), 'challenge-unknown'],
      [
        'an ES384 key',
        (c) =>
          fresh().register(c, {
            cose: cbor.encode(
              new Map<number, unknown>([
                [1, 2],
                [3, -35],
                [-1, 2],
              ]),
            ),
          }),
        'unsupported-algorithm',
      ],
      [
        'a point off the curve',
        (c) =>
          fresh().register(c, {
            cose: cbor.encode(
              new Map<number, unknown>([
                [1, 2],
                [3, -7],
                [-1, 1],
                [-2, Buffer.alloc(32, 1)],
                [-3, Buffer.alloc(32, 2)],
              ]),
            ),
          }),
        'malformed-cose-key',
      ],
      ['a certificate chain', (c) => fresh().register(c, { fmt: 'packed-x5c' }), 'unsupported-attestation'],
    ];
    for (const [, respond, type] of cases) {
      const { challenge } = await registrationOptions('provider');
      await refused(() => register('provider', respond(challenge)), 422, type);
    }
    // The consumer's challenge answered by the provider: not issued to it.
    const { challenge: theirs } = await registrationOptions('consumer');
    await refused(() => register('provider', fresh().register(theirs)), 422, 'challenge-unknown');
    // A challenge once answered, and one answered too late.
    const { challenge } = await registrationOptions('provider');
    const used = fresh();
    expect((await register('provider', used.register(challenge))).status).toBe(201);
    await refused(() => register('provider', fresh().register(challenge)), 422, 'challenge-replayed');
    const { challenge: late } = await registrationOptions('provider');
    offsetMs += 301_000;
    await refused(() => register('provider', fresh().register(late)), 422, 'challenge-expired');
    // The same credential again (a new challenge): registered once.
    const { challenge: again } = await registrationOptions('provider');
    await refused(() => register('provider', used.register(again)), 409, 'credential-registered');
    // Nobody registers for another identity.
    await refused(
      () => consumer.post(`/identities/${seeded.provider}/webauthn/registration-options`),
      403,
      'forbidden',
    );
    // Malformed bodies never reach the verifier.
    await refused(() => register('provider', { id: 'x' }), 400, 'validation-failed');
  });
});

describe('signing with type biometric', () => {
  it('signs, activates, and the countersignature and the evidence carry the assertion', async () => {
    const contract = await newContract();
    const signed = await bioSign('provider', contract);
    expect(signed.status, signed.text).toBe(200);
    const mine = signed.body.signatures.find((s) => s.role === 'provider')!;
    expect(mine).toMatchObject({ type: 'biometric', kid: passkeys.provider.id, alg: 'ES256' });
    expect(mine.assertion).toMatchObject({ credentialId: passkeys.provider.credentialId, signCount: 1 });
    const consumerSigned = await bioSign('consumer', signed.body);
    expect(consumerSigned.status, consumerSigned.text).toBe(200);
    const activated = await consumer.post<Contract>(`/contracts/${contract.id}/activate`);
    expect(activated.status, activated.text).toBe(200);
    expect(activated.body.status).toBe('Active');
    const platform = activated.body.signatures.find((s) => s.role === 'platform')!;
    expect(JSON.parse(platform.signedPayload!).signatures).toContainEqual(
      expect.objectContaining({ role: 'provider', type: 'biometric', assertion: mine.assertion }),
    );
    const counters = await provider.get<{ credentials: Passkey[] }>(
      `/identities/${seeded.provider}/webauthn/credentials`,
    );
    expect(counters.body.credentials.find((c) => c.id === passkeys.provider.id)!.signCount).toBe(1);

    expect(await createCheckpoint(stack.deps)).not.toBeNull();
    const bundle = (await consumer.get<EvidenceBundle>(`/contracts/${contract.id}/evidence`)).body;
    const platformKeys = (
      await ApiClient.anonymous(stack).get<{ keys: Record<string, unknown>[] }>('/platform/keys')
    ).body.keys;
    recordEvidenceFixture('biometric', { bundle, platformKeys });
    const verdict = verifyEvidence(bundle, { pinnedPlatformKeys: platformKeys });
    expect(verdict.checks.filter((c) => !c.ok)).toEqual([]);
    const verification = await consumer.get<{
      valid: boolean;
      signatures: { type: string; valid: boolean }[];
    }>(`/contracts/${contract.id}/signatures/verification`);
    expect(verification.body.valid).toBe(true);
    expect(verification.body.signatures.filter((s) => s.type === 'biometric')).toHaveLength(2);

    // Each part of the assertion and of the passkey is held by the evidence check.
    const failing = (change: (s: Sig) => Sig) =>
      verifyEvidence(
        {
          ...bundle,
          signatures: bundle.signatures.map((s) => (s.role === 'provider' ? change(structuredClone(s)) : s)),
        } as EvidenceBundle,
        { pinnedPlatformKeys: platformKeys },
      )
        .checks.filter((c) => !c.ok)
        .map((c) => `${c.check}: ${c.detail}`);
    const flip = (b64: string, at: number) => {
      const bytes = Buffer.from(b64, 'base64url');
      bytes[at] = bytes[at]! ^ 1;
      return bytes.toString('base64url');
    };
    const providerCheck = `signature:provider:${passkeys.provider.id}`;
    const other = new SoftwareAuthenticator({ origin, rpId: 'localhost' });
    for (const change of [
      (s: Sig) => ({ ...s, assertion: { ...s.assertion!, nonce: 'b3RoZXI' } }),
      (s: Sig) => ({
        ...s,
        assertion: { ...s.assertion!, authenticatorData: flip(s.assertion!.authenticatorData, 36) },
      }),
      (s: Sig) => ({
        ...s,
        assertion: { ...s.assertion!, clientDataJSON: flip(s.assertion!.clientDataJSON, 20) },
      }),
      (s: Sig) => ({ ...s, signature: flip(s.signature, 10) }),
      (s: Sig) => ({
        ...s,
        key: { ...s.key!, passkey: { ...s.key!.passkey!, cose: other.coseKey().toString('base64url') } },
      }),
      (s: Sig) => ({
        ...s,
        key: { ...s.key!, passkey: { ...s.key!.passkey!, rpId: 'evil.example' } },
      }),
      (s: Sig) => ({ ...s, type: 'digital' as const, assertion: undefined as never }),
      (s: Sig) => ({ ...s, assertion: undefined as never }),
    ]) {
      expect(
        failing(change).some((f) => f.startsWith(providerCheck)),
        JSON.stringify(failing(change)),
      ).toBe(true);
    }
  });

  it('refuses every bad assertion with a 422 naming it, audited, changing nothing else', async () => {
    const chain = securityRefusalChainId('identity', seeded.provider);
    const records = async () =>
      (
        await stack.deps.db.query<{ data: { action: string; code: string } }>(
          'SELECT data FROM audit_log WHERE entity_id = :id ORDER BY seq',
          { id: sql.uuid(chain) },
        )
      ).rows.map((r) => r.data);
    const before = (await records()).length;
    const contract = await newContract();
    const signWith = async (options: Options, assertion: unknown, target = contract) =>
      provider.post(`/contracts/${target.id}/sign`, { type: 'biometric', nonce: options.nonce, assertion });
    const a = authenticators.provider;

    // An assertion for another contract.
    const elsewhere = await newContract();
    const forOther = await authenticationOptions('provider', elsewhere.signingPayload);
    await refused(
      () => signWith(forOther, a.assert(forOther.publicKey.challenge)),
      422,
      'challenge-mismatch',
    );
    // For another content version of this contract.
    const options = await authenticationOptions('provider', contract.signingPayload);
    const updated = await provider.request<Contract>('PUT', `/contracts/${contract.id}`, {
      body: { title: 'A new title' },
      headers: { 'if-match': `"${contract.version}"` },
    });
    expect(updated.status, updated.text).toBe(200);
    await refused(() => signWith(options, a.assert(options.publicKey.challenge)), 422, 'challenge-mismatch');
    const current = updated.body;
    // User verification missing, another origin, a signature that does not verify.
    for (const [ceremony, type] of [
      [{ uv: false }, 'user-not-verified'],
      [{ origin: 'https://evil.example' }, 'origin-not-allowed'],
    ] as const) {
      const o = await authenticationOptions('provider', current.signingPayload);
      await refused(() => signWith(o, a.assert(o.publicKey.challenge, ceremony), current), 422, type);
    }
    const o = await authenticationOptions('provider', current.signingPayload);
    const forged = a.assert(o.publicKey.challenge);
    forged.response.signature = Buffer.alloc(70, 1).toString('base64url');
    await refused(() => signWith(o, forged, current), 422, 'invalid-signature');
    // A nonce never issued, the consumer's, and one expired.
    const unknown = signatureChallenge(current.signingPayload, 'bm9wZQ');
    await refused(
      () => signWith({ nonce: 'bm9wZQ' } as Options, a.assert(unknown), current),
      422,
      'challenge-unknown',
    );
    const theirs = await authenticationOptions('consumer', current.signingPayload);
    await refused(
      () => signWith(theirs, a.assert(signatureChallenge(current.signingPayload, theirs.nonce)), current),
      422,
      'challenge-unknown',
    );
    const late = await authenticationOptions('provider', current.signingPayload);
    offsetMs += 301_000;
    await refused(
      () => signWith(late, a.assert(late.publicKey.challenge), current),
      422,
      'challenge-expired',
    );
    // A counter that went back: a cloned authenticator.
    const cloned = await authenticationOptions('provider', current.signingPayload);
    await refused(
      () => signWith(cloned, a.assert(cloned.publicKey.challenge, { signCount: 1 }), current),
      422,
      'counter-regressed',
    );
    // Another identity's passkey.
    const notMine = await authenticationOptions('provider', current.signingPayload);
    await refused(
      () => signWith(notMine, authenticators.consumer.assert(notMine.publicKey.challenge), current),
      422,
      'unknown-credential',
    );

    const added = (await records()).slice(before);
    expect(added.map((r) => r.code)).toEqual([
      'challenge-mismatch',
      'challenge-mismatch',
      'user-not-verified',
      'origin-not-allowed',
      'invalid-signature',
      'challenge-unknown',
      'challenge-unknown',
      'challenge-expired',
      'counter-regressed',
      'unknown-credential',
    ]);
    expect(added.every((r) => r.action === 'sign-contract-biometric')).toBe(true);

    // The same nonce twice: the second signature (of another contract) is a replay.
    const first = await authenticationOptions('provider', current.signingPayload);
    expect((await signWith(first, a.assert(first.publicKey.challenge), current)).status).toBe(200);
    const next = await newContract();
    await refused(
      () => signWith(first, a.assert(signatureChallenge(next.signingPayload, first.nonce)), next),
      422,
      'challenge-replayed',
    );
  });

  it('refuses a revoked passkey and a suspended identity', async () => {
    const contract = await newContract();
    const extra = new SoftwareAuthenticator({ origin, rpId: 'localhost' });
    const { challenge } = await registrationOptions('provider');
    const added = await register('provider', extra.register(challenge), 'phone');
    expect(added.status, added.text).toBe(201);
    const revoked = await admin.request<Passkey>(
      'DELETE',
      `/identities/${seeded.provider}/webauthn/credentials/${added.body.id}`,
    );
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const o = await authenticationOptions('provider', contract.signingPayload);
    expect(o.publicKey.allowCredentials.map((c) => c.id)).not.toContain(added.body.credentialId);
    await refused(
      () =>
        provider.post(`/contracts/${contract.id}/sign`, {
          type: 'biometric',
          nonce: o.nonce,
          assertion: extra.assert(o.publicKey.challenge),
        }),
      422,
      'unknown-credential',
    );
    await refused(
      () =>
        provider.request('DELETE', `/identities/${seeded.provider}/webauthn/credentials/${added.body.id}`),
      409,
      'credential-not-active',
    );

    // Options asked while active, the signature sent once suspended: the status is read at signing.
    const before = await authenticationOptions('provider', contract.signingPayload);
    const suspended = await admin.put(`/identities/${seeded.provider}/status`, {
      status: 'suspended',
      reason: 'test',
    });
    expect(suspended.status, suspended.text).toBe(200);
    await refused(
      () =>
        provider.post(`/contracts/${contract.id}/sign`, {
          type: 'biometric',
          nonce: before.nonce,
          assertion: authenticators.provider.assert(before.publicKey.challenge),
        }),
      403,
      'identity-suspended',
    );
    expect(
      (await admin.put(`/identities/${seeded.provider}/status`, { status: 'active', reason: 'test over' }))
        .status,
    ).toBe(200);
    expect((await bioSign('provider', contract)).status).toBe(200);
  });

  it('approves a measurement set with a passkey as well', async () => {
    const contract = await newContract();
    const p = await bioSign('provider', contract);
    const c = await bioSign('consumer', p.body);
    expect(c.status, c.text).toBe(200);
    expect((await consumer.post(`/contracts/${contract.id}/activate`)).status).toBe(200);
    type Set = { id: string; signingPayload: string; status: string; approvals: Record<string, unknown>[] };
    const proposed = await consumer.post<Set>(`/contracts/${contract.id}/measurements`, {
      pcr0: 'a'.repeat(96),
      pcr1: 'b'.repeat(96),
      pcr2: 'c'.repeat(96),
    });
    expect(proposed.status, proposed.text).toBe(201);
    const path = `/contracts/${contract.id}/measurements/${proposed.body.id}/approve`;
    let approved: Set | undefined;
    for (const party of ['provider', 'consumer'] as const) {
      const o = await authenticationOptions(party, proposed.body.signingPayload);
      const res = await client(party).post<Set>(path, {
        type: 'biometric',
        nonce: o.nonce,
        assertion: authenticators[party].assert(o.publicKey.challenge),
      });
      expect(res.status, res.text).toBe(200);
      approved = res.body;
    }
    expect(approved!.status).toBe('Approved');
    expect(approved!.approvals).toEqual([
      expect.objectContaining({ role: 'provider', type: 'biometric', kid: passkeys.provider.id }),
      expect.objectContaining({ role: 'consumer', type: 'biometric', kid: passkeys.consumer.id }),
    ]);
  });
});
