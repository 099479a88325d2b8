/**
 * The rotation-age report (shared/identities/credential-rotation.ts) and its scheduled job
 * (functions/events/report-credential-rotation.ts) on every database adapter: which credentials count as
 * due (by kind, only those that can still sign), the policy's two ages, the bounded list, the
 * `CredentialsDueForRotation` event in the outbox only when something is due, and the job's metrics as
 * Embedded Metric Format lines. Signing keys are registered and revoked through the identity service (with
 * their proofs); passkeys and TOTP factors are written as rows (their ceremonies are tested in the
 * WebAuthn and MFA suites; the report reads only their lifecycle columns).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import { sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import {
  CREDENTIAL_REPORT_ID,
  REPORT_LISTED,
  reportCredentialsDueForRotation,
} from '../../shared/identities/credential-rotation.ts';
import { registerKey, revokeKey, setIdentityStatus } from '../../shared/identities/identity-service.ts';
import { findIdentityBySubject } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { countersign } from '../../shared/signing/platform-key-registry.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';
import { keyRegistrationProof } from '../support/key-proof.ts';

const T0 = Date.parse('2027-01-10T08:00:00.000Z');
const DAY = 86_400_000;

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`credential rotation report on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let clock = T0;
    const who = {} as Record<'provider' | 'consumer' | 'admin', Identity>;
    const kids = {} as Record<'old' | 'other' | 'young', string>;

    const register = async (owner: Identity) => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const res = await registerKey(deps, owner, owner.id, {
        alg: 'ES256',
        jwk: publicKey.export({ format: 'jwk' }) as never,
        proof: await keyRegistrationProof(privateKey, 'ES256', owner.id),
      });
      return res.body.kid;
    };
    const fresh = async (name: 'provider' | 'consumer' | 'admin') =>
      (await findIdentityBySubject(opened.db, `local|${name}`))!;
    const passkeyRow = (identityId: string, createdAt: number, revoked = false) =>
      opened.db.query(
        `INSERT INTO webauthn_credentials (id, identity_id, credential_id, name, alg, jwk, cose, rp_id, aaguid,
           sign_count, backup_eligible, created_at, revoked_at)
         VALUES (:id, :identity, :credential, 'laptop', 'ES256', '{}', 'pA', 'localhost',
           '00000000-0000-0000-0000-000000000000', 0, false, :at, :revoked)`,
        {
          id: sql.uuid(randomUUID()),
          identity: sql.uuid(identityId),
          credential: sql.text(randomUUID()),
          at: sql.timestamp(new Date(createdAt).toISOString()),
          revoked: revoked
            ? sql.timestamp(new Date(createdAt + DAY).toISOString())
            : { type: 'timestamp', value: null },
        },
      );
    const totpRow = (identityId: string, createdAt: number, confirmed: boolean) =>
      opened.db.query(
        `INSERT INTO totp_credentials (id, identity_id, sealed_secret, created_at, confirmed_at)
         VALUES (:id, :identity, '{}', :at, ${confirmed ? ':at' : 'NULL'})`,
        {
          id: sql.uuid(randomUUID()),
          identity: sql.uuid(identityId),
          at: sql.timestamp(new Date(createdAt).toISOString()),
        },
      );
    const events = async () =>
      (
        await opened.db.query<{ payload: Record<string, unknown>; aggregate_id: string }>(
          "SELECT payload, aggregate_id FROM outbox WHERE event_type = 'CredentialsDueForRotation' ORDER BY occurred_at",
        )
      ).rows;

    beforeAll(async () => {
      opened = await adapter.open();
      await migrate(opened.db, await loadMigrations());
      deps = {
        db: opened.db,
        signer: await LocalSigner.create(),
        now: () => new Date(clock),
        newId: randomUUID,
      };
      await seedIdentities(deps);
      for (const name of ['provider', 'consumer', 'admin'] as const) who[name] = await fresh(name);
      kids.old = await register(who.provider);
      kids.other = await register(who.consumer);
      await passkeyRow(who.provider.id, T0);
      await passkeyRow(who.provider.id, T0, true);
      await totpRow(who.consumer.id, T0, true);
      await totpRow(who.consumer.id, T0, false);
      await countersign(deps, 'a countersignature', new Date(T0).toISOString());
      clock = T0 + 100 * DAY;
      kids.young = await register(await fresh('provider'));
    });
    afterAll(async () => opened?.close());

    it('reports nothing while every credential is younger than a year: no event', async () => {
      clock = T0 + 364 * DAY;
      const { report, published } = await reportCredentialsDueForRotation(deps);
      expect(report.counts).toEqual({ 'signing-key': 0, passkey: 0, totp: 0, 'platform-key': 0 });
      expect(report).toMatchObject({ total: 0, oldest: [], maxAgeDays: 365, platformKeyMaxAgeDays: 365 });
      expect(published).toBe(false);
      expect(await events()).toEqual([]);
    });

    it('counts each kind that can still sign, lists the oldest first, and publishes the event', async () => {
      clock = T0 + 366 * DAY;
      const { report, published } = await reportCredentialsDueForRotation(deps);
      // Not the revoked passkey, the pending TOTP enrolment, nor the key registered 100 days later.
      expect(report.counts).toEqual({ 'signing-key': 2, passkey: 1, totp: 1, 'platform-key': 1 });
      expect(report.total).toBe(5);
      expect(report.oldest.map((c) => c.kind).sort()).toEqual([
        'passkey',
        'platform-key',
        'signing-key',
        'signing-key',
        'totp',
      ]);
      expect(
        report.oldest
          .filter((c) => c.kind === 'signing-key')
          .map((c) => c.credential)
          .sort(),
      ).toEqual([kids.old, kids.other].sort());
      expect(report.oldest.find((c) => c.kind === 'platform-key')).toMatchObject({ owner: null });
      expect(report.oldest.every((c) => Date.parse(c.createdAt) <= T0 + 1000)).toBe(true);
      expect(published).toBe(true);
      const [event] = await events();
      expect(event!.aggregate_id).toBe(CREDENTIAL_REPORT_ID);
      expect(event!.payload).toEqual({
        asOf: new Date(clock).toISOString(),
        maxAgeDays: 365,
        platformKeyMaxAgeDays: 365,
        counts: { 'signing-key': 2, passkey: 1, totp: 1, 'platform-key': 1 },
        total: 5,
        oldest: report.oldest,
      });
    });

    it('stops counting a revoked key, and the credentials of a revoked identity', async () => {
      await revokeKey(deps, await fresh('consumer'), who.consumer.id, kids.other);
      await setIdentityStatus(deps, await fresh('admin'), who.consumer.id, {
        status: 'revoked',
        reason: 'left',
      });
      const { report } = await reportCredentialsDueForRotation(deps);
      expect(report.counts).toEqual({ 'signing-key': 1, passkey: 1, totp: 0, 'platform-key': 1 });
    });

    it('applies the two ages of the policy apart', async () => {
      const strict = { ...deps, rotationPolicy: { maxAgeDays: 500, platformKeyMaxAgeDays: 30 } };
      const { report } = await reportCredentialsDueForRotation(strict);
      expect(report.counts).toEqual({ 'signing-key': 0, passkey: 0, totp: 0, 'platform-key': 1 });
      const lax = { ...deps, rotationPolicy: { maxAgeDays: 200, platformKeyMaxAgeDays: 400 } };
      expect((await reportCredentialsDueForRotation(lax)).report.counts).toEqual({
        'signing-key': 2,
        passkey: 1,
        totp: 0,
        'platform-key': 0,
      });
    });

    it(`lists at most ${REPORT_LISTED} credentials, and counts them all`, async () => {
      for (let i = 0; i < REPORT_LISTED + 5; i++) await passkeyRow(who.provider.id, T0 - i * 1000);
      const { report } = await reportCredentialsDueForRotation(deps);
      expect(report.counts.passkey).toBe(REPORT_LISTED + 6);
      expect(report.oldest).toHaveLength(REPORT_LISTED);
      const times = report.oldest.map((c) => Date.parse(c.createdAt));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    });

    it('the scheduled job publishes one metric per kind, in the Embedded Metric Format', async () => {
      // The handler reads its dependencies when its module loads: each adapter's suite loads it afresh.
      vi.resetModules();
      (await import('../../shared/runtime/runtime.ts')).useRuntime(deps);
      const lines: string[] = [];
      const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
      try {
        const { handler } = await import('../../functions/events/report-credential-rotation.ts');
        expect(await handler()).toMatchObject({ published: true });
      } finally {
        write.mockRestore();
      }
      const metrics = lines.map((l) => JSON.parse(l)).filter((d) => d._aws);
      expect(metrics.map((d) => [d.Kind, d.CredentialsDueForRotation])).toEqual([
        ['signing-key', 1],
        ['passkey', REPORT_LISTED + 6],
        ['totp', 0],
        ['platform-key', 1],
      ]);
      expect(metrics[0]._aws).toEqual({
        Timestamp: clock,
        CloudWatchMetrics: [
          {
            Namespace: 'EnclaveContracts',
            Dimensions: [['Kind']],
            Metrics: [{ Name: 'CredentialsDueForRotation', Unit: 'Count' }],
          },
        ],
      });
    });
  });
}
