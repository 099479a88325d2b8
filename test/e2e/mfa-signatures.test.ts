import { readFileSync } from 'node:fs';
import { URI } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { securityRefusalChainId } from '../../shared/audit/security-refusals.ts';
import { type EvidenceBundle, verifyEvidence } from '../../shared/contracts/contract-evidence.ts';
import { sql } from '../../shared/database/database.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { recordEvidenceFixture } from '../support/evidence-fixtures.ts';
import { refusalChecker } from '../support/refusals.ts';

/**
 * MFA signatures over HTTP on the local stack: a TOTP authenticator enrolled (its seed sealed under the
 * credential key, shown once as an otpauth URI and a QR code) and confirmed by its first code; then a
 * signature of `type: "mfa"` carries the party's key signature and the current code, each code usable once,
 * one step of drift either way. The countersignature and the evidence bundle carry the verified factor.
 * The clock is the stack's, moved by whole 30-second steps so that each use has a fresh code.
 */
const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));
const STEP_MS = 30_000;
type Credential = { id: string; confirmedAt: string | null; revokedAt: string | null };
type Enrolment = { credential: Credential; otpauthUri: string; qrSvg: string };
type Contract = {
  id: string;
  signingPayload: string;
  status: string;
  signatures: { role: string; type: string; secondFactor?: { credentialId: string } }[];
};

let stack: LocalStack;
let offsetMs = 0;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
const keys = { provider: new PartyKey('ES256'), consumer: new PartyKey('ES256') };
const kids = { provider: '', consumer: '' };

/**
 * The suite's clock stands still between the steps it takes, in the middle of a 30-second step: on a real
 * clock, a step boundary passing between the code's computation and its check made a code one step behind
 * two steps behind (a flake on loaded machines).
 */
const START = Math.floor(Date.now() / STEP_MS) * STEP_MS + STEP_MS / 2;
const now = () => new Date(START + offsetMs);
/** The next time step: the codes used so far are behind it. */
const nextStep = () => {
  offsetMs += STEP_MS;
};

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false, now });
  [provider, consumer, admin] = (await Promise.all(
    (['provider', 'consumer', 'admin'] as const).map((n) => ApiClient.as(stack, n)),
  )) as [ApiClient, ApiClient, ApiClient];
  kids.provider = await keys.provider.register(provider, seeded.provider);
  kids.consumer = await keys.consumer.register(consumer, seeded.consumer);
}, 60_000);
afterAll(async () => stack?.close());

const totp = (id: string) => `/identities/${id}/totp`;

/** What an authenticator app shows at `at` after scanning `uri` (otpauth parses it as an app would). */
function codeOf(uri: string, at: Date = now()): string {
  return URI.parse(uri).generate({ timestamp: at.getTime() });
}

async function snapshot(): Promise<string> {
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT json_agg(json_build_object('id', id, 'confirmed', confirmed_at, 'revoked', revoked_at, 'step', last_used_step) ORDER BY id) FROM totp_credentials) AS totp,
    (SELECT json_agg(signatures ORDER BY id) FROM contracts) AS signatures,
    (SELECT json_agg(approvals ORDER BY id) FROM measurement_sets) AS approvals,
    (SELECT coalesce(sum(version), 0) FROM identities)::int AS versions,
    (SELECT count(*) FROM audit_log WHERE entity_type <> 'security-refusal')::int AS audit,
    (SELECT count(*) FROM outbox)::int AS outbox`);
  return JSON.stringify(rows[0]);
}

const refused = refusalChecker(snapshot);

async function enrol(client: ApiClient, id: string): Promise<Enrolment> {
  const res = await client.post<Enrolment>(totp(id));
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function confirm(client: ApiClient, id: string, enrolment: Enrolment) {
  const res = await client.post<Credential>(`${totp(id)}/${enrolment.credential.id}/confirmation`, {
    code: codeOf(enrolment.otpauthUri),
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function newContract(): Promise<Contract> {
  const res = await provider.post<Contract>('/contracts', CREATE);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

function mfaSign(party: 'provider' | 'consumer', contract: Contract, otp: string, signature?: string) {
  const client = party === 'provider' ? provider : consumer;
  return client.post<Contract>(`/contracts/${contract.id}/sign`, {
    type: 'mfa',
    kid: kids[party],
    signature: signature ?? keys[party].sign(contract.signingPayload),
    otp,
  });
}

let providerTotp: Enrolment;
let activeId: string;

describe('enrolment', () => {
  it('answers an otpauth URI and its QR code once, and stores the seed sealed, never in the clear', async () => {
    const count = async () =>
      (await stack.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log')).rows[0]!.n;
    const before = await count();
    providerTotp = await enrol(provider, seeded.provider);
    const uri = new URL(providerTotp.otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(Object.fromEntries(uri.searchParams)).toMatchObject({
      issuer: 'Enclave Contracts',
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
    const secret = uri.searchParams.get('secret')!;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits, base32
    expect(providerTotp.qrSvg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*>.*<\/svg>\s*$/s);
    expect(providerTotp.credential).toMatchObject({ confirmedAt: null, revokedAt: null });

    const { rows } = await stack.deps.db.query<{ sealed: Record<string, unknown> }>(
      'SELECT sealed_secret AS sealed FROM totp_credentials WHERE id = :id',
      { id: sql.uuid(providerTotp.credential.id) },
    );
    const stored = JSON.stringify(rows[0]!.sealed);
    const seedHex = Buffer.from(URI.parse(providerTotp.otpauthUri).secret.bytes).toString('hex');
    for (const form of [secret, seedHex, Buffer.from(seedHex, 'hex').toString('base64')])
      expect(stored).not.toContain(form);
    expect(rows[0]!.sealed).toMatchObject({ v: 1, wrappedKey: expect.any(String), tag: expect.any(String) });
    const audit = await stack.deps.db.query<{ action: string; data: { credentialId: string } }>(
      `SELECT action, data FROM audit_log WHERE entity_id = :id ORDER BY seq DESC LIMIT 1`,
      { id: sql.uuid(seeded.provider) },
    );
    expect(audit.rows[0]).toEqual({
      action: 'enrol-totp',
      data: { credentialId: providerTotp.credential.id },
    });
    expect(await count()).toBe(before + 1);

    const listed = await provider.get<{ credentials: Credential[] }>(totp(seeded.provider));
    expect(listed.body.credentials.map((c) => c.id)).toContain(providerTotp.credential.id);
    expect(listed.text).not.toContain(secret);
  });

  it("is the identity's own: an admin cannot enrol for it, nor list another party; a stranger cannot confirm", async () => {
    await refused(() => admin.post(totp(seeded.provider)), 403, 'forbidden');
    await refused(() => consumer.get(totp(seeded.provider)), 403, 'forbidden');
    await refused(
      () =>
        admin.post(`${totp(seeded.provider)}/${providerTotp.credential.id}/confirmation`, {
          code: codeOf(providerTotp.otpauthUri),
        }),
      403,
      'forbidden',
    );
  });

  it('is confirmed by its first code only: a wrong code or a malformed one changes nothing', async () => {
    const path = `${totp(seeded.provider)}/${providerTotp.credential.id}/confirmation`;
    const right = codeOf(providerTotp.otpauthUri);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    await refused(() => provider.post(path, { code: wrong }), 422, 'invalid-otp');
    // Four steps away is outside the drift.
    const stale = codeOf(providerTotp.otpauthUri, new Date(now().getTime() - 4 * STEP_MS));
    if (stale !== right) await refused(() => provider.post(path, { code: stale }), 422, 'invalid-otp');
    await refused(() => provider.post(path, { code: '12345' }), 400, 'validation-failed');
    await refused(() => provider.post(path, { code: 123456 }), 400, 'validation-failed');
    await refused(
      () => provider.post(`${totp(seeded.provider)}/${crypto.randomUUID()}/confirmation`, { code: right }),
      404,
      'not-found',
    );

    const confirmed = await confirm(provider, seeded.provider, providerTotp);
    expect(confirmed.confirmedAt).not.toBeNull();
    await refused(() => provider.post(path, { code: right }), 409, 'credential-not-pending');
  });
});

describe('signing with type mfa', () => {
  it('signs with a fresh code: the signature, the countersignature and the evidence carry the factor', async () => {
    nextStep();
    const contract = await newContract();
    const signed = await mfaSign('provider', contract, codeOf(providerTotp.otpauthUri));
    expect(signed.status, signed.text).toBe(200);
    const mine = signed.body.signatures.find((s) => s.role === 'provider')!;
    expect(mine).toMatchObject({
      type: 'mfa',
      secondFactor: { method: 'totp', credentialId: providerTotp.credential.id },
    });
    const consumerSigned = await consumer.post(`/contracts/${contract.id}/sign`, {
      type: 'digital',
      kid: kids.consumer,
      signature: keys.consumer.sign(contract.signingPayload),
    });
    expect(consumerSigned.status, consumerSigned.text).toBe(200);
    const activated = await consumer.post<Contract>(`/contracts/${contract.id}/activate`);
    expect(activated.body.status).toBe('Active');
    activeId = contract.id;
    const platform = activated.body.signatures.find((s) => s.role === 'platform') as unknown as {
      signedPayload: string;
    };
    expect(JSON.parse(platform.signedPayload).signatures).toContainEqual(
      expect.objectContaining({ role: 'provider', type: 'mfa', secondFactor: mine.secondFactor }),
    );

    expect(await createCheckpoint(stack.deps)).not.toBeNull();
    const bundle = (await consumer.get<EvidenceBundle>(`/contracts/${contract.id}/evidence`)).body;
    const platformKeys = (
      await ApiClient.anonymous(stack).get<{ keys: Record<string, unknown>[] }>('/platform/keys')
    ).body.keys;
    recordEvidenceFixture('mfa', { bundle, platformKeys });
    const verdict = verifyEvidence(bundle, { pinnedPlatformKeys: platformKeys });
    expect(verdict.checks.filter((c) => !c.ok)).toEqual([]);
    expect(verdict.valid).toBe(true);
    const verification = await consumer.get<{ valid: boolean }>(
      `/contracts/${contract.id}/signatures/verification`,
    );
    expect(verification.body.valid).toBe(true);

    // The factor is part of what the platform signed and of what the audit recorded: tampered, both fail.
    const failing = (tampered: EvidenceBundle) =>
      verifyEvidence(tampered, { pinnedPlatformKeys: platformKeys })
        .checks.filter((c) => !c.ok)
        .map((c) => c.check);
    const withFactor = (secondFactor: unknown, type = 'mfa') =>
      ({
        ...bundle,
        signatures: bundle.signatures.map((s) => (s.role === 'provider' ? { ...s, type, secondFactor } : s)),
      }) as EvidenceBundle;
    const factor = mine.secondFactor as { credentialId: string; verifiedAt: string };
    expect(failing(withFactor({ ...factor, credentialId: crypto.randomUUID() }))).toEqual(
      expect.arrayContaining([
        `signature:platform:${bundle.signatures.find((s) => s.role === 'platform')!.kid}`,
        'audit-records-signatures',
      ]),
    );
    expect(failing(withFactor(undefined, 'digital'))).toEqual(
      expect.arrayContaining(['audit-records-signatures']),
    );
    // Each part of the factor is checked on its own, whatever the countersignature says.
    const providerCheck = `signature:provider:${kids.provider}`;
    const detailOf = (tampered: EvidenceBundle) =>
      verifyEvidence(tampered, { pinnedPlatformKeys: platformKeys }).checks.find(
        (c) => c.check === providerCheck,
      )!.detail;
    expect(failing(withFactor(undefined))).toContain(providerCheck);
    expect(detailOf(withFactor(undefined))).toMatch(/without its verified TOTP second factor/);
    expect(detailOf(withFactor(factor, 'digital'))).toMatch(/a digital signature with a second factor/);
    expect(detailOf(withFactor({ ...factor, method: 'sms' }))).toMatch(/without its verified TOTP/);
    expect(detailOf(withFactor({ ...factor, credentialId: 42 }))).toMatch(/without its verified TOTP/);
    expect(detailOf(withFactor(factor, 'biometric'))).toMatch(/a biometric signature with a second factor/);
    expect(detailOf(withFactor(factor, 'voice'))).toMatch(/type voice is not checked/);
    const at = (ms: number) => ({
      ...factor,
      verifiedAt: new Date(Date.parse(factor.verifiedAt) + ms).toISOString(),
    });
    // Verified after the signature, or more than a minute before it: not this signature's factor.
    expect(detailOf(withFactor(at(1)))).toMatch(/not just before the signature/);
    expect(detailOf(withFactor(at(-60_001)))).toMatch(/not just before the signature/);
    expect(detailOf(withFactor(at(-60_000)))).toBe('verifies');
    expect(detailOf(withFactor({ ...factor, verifiedAt: 'not a time' }))).toMatch(
      /not just before the signature/,
    );
    expect(
      failing(
        withFactor({
          ...factor,
          verifiedAt: new Date(Date.parse(factor.verifiedAt) - 3_600_000).toISOString(),
        }),
      ),
    ).toContain(`signature:provider:${kids.provider}`);
  });

  it('accepts each code once: the same code again, or an older one after it, is otp-replayed', async () => {
    nextStep();
    const code = codeOf(providerTotp.otpauthUri);
    const first = await newContract();
    expect((await mfaSign('provider', first, code)).status).toBe(200);
    const second = await newContract();
    await refused(() => mfaSign('provider', second, code), 422, 'otp-replayed');
    const older = codeOf(providerTotp.otpauthUri, new Date(now().getTime() - STEP_MS));
    await refused(() => mfaSign('provider', second, older), 422, 'otp-replayed');
  });

  it('accepts a code once even when two signatures race with it', async () => {
    nextStep();
    const code = codeOf(providerTotp.otpauthUri);
    const [a, b] = [await newContract(), await newContract()];
    const answers = await Promise.all([mfaSign('provider', a, code), mfaSign('provider', b, code)]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 422]);
    const loser = answers.find((r) => r.status === 422)!;
    expect((loser.body as unknown as { type: string }).type).toMatch(/\/otp-replayed$/);
  });

  it('accepts one step of drift either way, and nothing further', async () => {
    nextStep();
    nextStep();
    const ahead = codeOf(providerTotp.otpauthUri, new Date(now().getTime() + STEP_MS));
    const contract = await newContract();
    const farAhead = codeOf(providerTotp.otpauthUri, new Date(now().getTime() + 4 * STEP_MS));
    await refused(() => mfaSign('provider', contract, farAhead), 422, 'invalid-otp');
    const res = await mfaSign('provider', contract, ahead);
    expect(res.status, res.text).toBe(200);
    // Three steps on, the code one step behind is the one after that used ahead.
    nextStep();
    nextStep();
    nextStep();
    const behind = codeOf(providerTotp.otpauthUri, new Date(now().getTime() - STEP_MS));
    expect((await mfaSign('provider', await newContract(), behind)).status).toBe(200);
  });

  it('approves a measurement set with mfa as well (a digital approval still needs no type)', async () => {
    nextStep();
    type Set = { id: string; signingPayload: string; status: string; approvals: Record<string, unknown>[] };
    const proposed = await consumer.post<Set>(`/contracts/${activeId}/measurements`, {
      pcr0: 'a'.repeat(96),
      pcr1: 'b'.repeat(96),
      pcr2: 'c'.repeat(96),
    });
    expect(proposed.status, proposed.text).toBe(201);
    const path = `/contracts/${activeId}/measurements/${proposed.body.id}/approve`;
    const signature = keys.provider.sign(proposed.body.signingPayload);
    const code = codeOf(providerTotp.otpauthUri);
    const byProvider = await provider.post<Set>(path, {
      type: 'mfa',
      kid: kids.provider,
      signature,
      otp: code,
    });
    expect(byProvider.status, byProvider.text).toBe(200);
    expect(byProvider.body.approvals).toEqual([
      expect.objectContaining({
        role: 'provider',
        type: 'mfa',
        secondFactor: expect.objectContaining({ method: 'totp', credentialId: providerTotp.credential.id }),
      }),
    ]);
    const byConsumer = await consumer.post<Set>(path, {
      kid: kids.consumer,
      signature: keys.consumer.sign(proposed.body.signingPayload),
    });
    expect(byConsumer.body.status).toBe('Approved');
    // The code is used: a second set cannot be approved with it.
    const other = await consumer.post<Set>(`/contracts/${activeId}/measurements`, {
      pcr0: 'd'.repeat(96),
      pcr1: 'b'.repeat(96),
      pcr2: 'c'.repeat(96),
    });
    await refused(
      () =>
        provider.post(`/contracts/${activeId}/measurements/${other.body.id}/approve`, {
          type: 'mfa',
          kid: kids.provider,
          signature: keys.provider.sign(other.body.signingPayload),
          otp: code,
        }),
      422,
      'otp-replayed',
    );
  });

  it('refuses a bad signature before the code is looked at, so the code stays usable', async () => {
    nextStep();
    const code = codeOf(providerTotp.otpauthUri);
    const contract = await newContract();
    const forged = keys.consumer.sign(contract.signingPayload);
    await refused(() => mfaSign('provider', contract, code, forged), 422, 'invalid-signature');
    expect((await mfaSign('provider', contract, code)).status).toBe(200);
  });

  it('needs a confirmed second factor: mfa-not-enrolled, and a malformed otp is a 400', async () => {
    const contract = await newContract();
    await refused(() => mfaSign('consumer', contract, '123456'), 422, 'mfa-not-enrolled');
    const pending = await enrol(consumer, seeded.consumer);
    await refused(() => mfaSign('consumer', contract, codeOf(pending.otpauthUri)), 422, 'mfa-not-enrolled');
    for (const otp of ['12345', '1234567', 'abcdef', ' 12345']) {
      await refused(() => mfaSign('consumer', contract, otp), 400, 'validation-failed');
    }
    await refused(
      () =>
        consumer.post(`/contracts/${contract.id}/sign`, {
          type: 'mfa',
          kid: kids.consumer,
          signature: keys.consumer.sign(contract.signingPayload),
        }),
      400,
      'validation-failed',
    );
    await refused(
      () =>
        consumer.post(`/contracts/${contract.id}/sign`, {
          type: 'digital',
          kid: kids.consumer,
          signature: keys.consumer.sign(contract.signingPayload),
          otp: '123456',
        }),
      400,
      'validation-failed',
    );
  });
});

describe('failed attempts', () => {
  it("are recorded in the signer's refusal chain with the reason, and change nothing else", async () => {
    const chain = securityRefusalChainId('identity', seeded.provider);
    const records = async () =>
      (
        await stack.deps.db.query<{ data: { action: string; code: string; detail: string } }>(
          'SELECT data FROM audit_log WHERE entity_id = :id ORDER BY seq',
          { id: sql.uuid(chain) },
        )
      ).rows.map((r) => r.data);
    const before = (await records()).length;
    nextStep();
    const contract = await newContract();
    const code = codeOf(providerTotp.otpauthUri, new Date(now().getTime() + 10 * STEP_MS));
    await refused(() => mfaSign('provider', contract, code), 422, 'invalid-otp');
    await refused(
      () => mfaSign('provider', contract, codeOf(providerTotp.otpauthUri), 'A'.repeat(86)),
      422,
      'invalid-signature',
    );
    const added = (await records()).slice(before);
    expect(added).toEqual([
      expect.objectContaining({ action: 'sign-contract-mfa', code: 'invalid-otp' }),
      expect.objectContaining({ action: 'sign-contract-mfa', code: 'invalid-signature' }),
    ]);
    expect(added[0]!.detail).toContain(`contract ${contract.id}`);
    // The chain verifies like any other (an auditor reads it).
    const auditor = await ApiClient.as(stack, 'auditor');
    const trail = await auditor.get<{ verification: { valid: boolean } }>(`/audit?entityId=${chain}`);
    expect(trail.body.verification.valid).toBe(true);
  });
});

describe('lifecycle', () => {
  it('a new confirmed credential replaces the old; a revoked one signs nothing; revocation is final', async () => {
    nextStep();
    const next = await enrol(provider, seeded.provider);
    await confirm(provider, seeded.provider, next);
    const listed = (await provider.get<{ credentials: Credential[] }>(totp(seeded.provider))).body
      .credentials;
    expect(listed.find((c) => c.id === providerTotp.credential.id)!.revokedAt).not.toBeNull();
    nextStep();
    // The old authenticator's code no longer signs; the new one's does.
    const contract = await newContract();
    await refused(() => mfaSign('provider', contract, codeOf(providerTotp.otpauthUri)), 422, 'invalid-otp');
    expect((await mfaSign('provider', contract, codeOf(next.otpauthUri))).status).toBe(200);

    // An admin revokes it, audited; then the provider has no second factor.
    const revoked = await admin.delete<Credential>(`${totp(seeded.provider)}/${next.credential.id}`);
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const audit = await stack.deps.db.query<{ action: string; actor_id: string }>(
      `SELECT action, actor_id FROM audit_log WHERE entity_id = :id ORDER BY seq DESC LIMIT 1`,
      { id: sql.uuid(seeded.provider) },
    );
    expect(audit.rows[0]).toEqual({ action: 'revoke-totp', actor_id: seeded.admin });
    nextStep();
    const later = await newContract();
    await refused(() => mfaSign('provider', later, codeOf(next.otpauthUri)), 422, 'mfa-not-enrolled');
    await refused(
      () => admin.delete(`${totp(seeded.provider)}/${next.credential.id}`),
      409,
      'credential-not-active',
    );
    await refused(() => consumer.delete(`${totp(seeded.provider)}/${next.credential.id}`), 403, 'forbidden');
    // In the database itself: a revocation cannot be undone, a used step cannot go back.
    await expect(
      stack.deps.db.query('UPDATE totp_credentials SET revoked_at = NULL WHERE id = :id', {
        id: sql.uuid(next.credential.id),
      }),
    ).rejects.toThrow(/revocation is final/);
    await expect(
      stack.deps.db.query('UPDATE totp_credentials SET last_used_step = 0 WHERE id = :id', {
        id: sql.uuid(next.credential.id),
      }),
    ).rejects.toThrow(/never goes back/);
  });

  it('a sealed seed opens only for its own credential (the context binds it)', async () => {
    nextStep();
    const a = await enrol(consumer, seeded.consumer);
    const b = await enrol(consumer, seeded.consumer);
    // b's row given a's sealed seed: a's code does not confirm b, and nothing is confirmed.
    await stack.deps.db.query(
      `UPDATE totp_credentials SET sealed_secret = (SELECT sealed_secret FROM totp_credentials WHERE id = :a)
       WHERE id = :b`,
      { a: sql.uuid(a.credential.id), b: sql.uuid(b.credential.id) },
    );
    const res = await consumer.post(`${totp(seeded.consumer)}/${b.credential.id}/confirmation`, {
      code: codeOf(a.otpauthUri),
    });
    expect(res.status).toBe(500);
    expect(res.text).not.toMatch(/sealed|aes|gcm|kms/i);
    const listed = (await consumer.get<{ credentials: Credential[] }>(totp(seeded.consumer))).body
      .credentials;
    expect(listed.find((c) => c.id === b.credential.id)!.confirmedAt).toBeNull();
  });
});
