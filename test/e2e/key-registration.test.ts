import { randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { sql } from '../../shared/database/database.ts';
import { keyThumbprint } from '../../shared/domain/key-registration.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { keyRegistrationProof } from '../support/key-proof.ts';
import { forgeUnderUnitExponent, UNIT_EXPONENT_KEY } from '../support/weak-keys.ts';

/**
 * Party keys over HTTP: proof of possession, one identity per key material, kids per identity, unsound
 * keys refused, and who may register. Every refusal is problem+json and leaves the database as it was.
 */
const createBody = JSON.parse(
  readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'),
);
type Contract = { id: string; status: string; signingPayload: string };
type Problem = {
  type: string;
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
};

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
let outsider: ApiClient;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false });
  [provider, consumer, admin, outsider] = (await Promise.all(
    (['provider', 'consumer', 'admin', 'outsider'] as const).map((n) => ApiClient.as(stack, n)),
  )) as [ApiClient, ApiClient, ApiClient, ApiClient];
});
afterAll(async () => stack?.close());

/** What a refused registration must leave untouched: keys, identity versions, audit records, events. */
async function snapshot(): Promise<string> {
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT count(*) FROM identity_keys)::int AS keys,
    (SELECT coalesce(sum(version), 0) FROM identities)::int AS versions,
    (SELECT count(*) FROM audit_log WHERE entity_type <> 'security-refusal')::int AS audit,
    (SELECT count(*) FROM outbox)::int AS outbox`);
  return JSON.stringify(rows[0]);
}

async function expectRefused(
  request: Promise<{ status: number; headers: Headers; body: unknown }>,
  status: number,
  problem: Partial<Problem> & { type: string },
): Promise<void> {
  const before = await snapshot();
  const res = await request;
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.body).toMatchObject({ ...problem, type: expect.stringContaining(problem.type) });
  expect(await snapshot()).toBe(before);
}

const keysPath = (id: string) => `/identities/${id}/keys`;

describe('the reported attack: a consumer registers the provider key and replays its signature', () => {
  it('is refused at every step: no proof for the copied key, no key of the consumer behind the signature, no activation', async () => {
    const providerKey = new PartyKey('ES256');
    const providerKid = await providerKey.register(provider, seeded.provider);
    const contract = (await provider.post<Contract>('/contracts', createBody)).body;
    const providerSignature = providerKey.sign(contract.signingPayload);
    const signed = await provider.post<Contract>(`/contracts/${contract.id}/sign`, {
      type: 'digital',
      kid: providerKid,
      signature: providerSignature,
    });
    expect(signed.body.status).toBe('PendingSignature');

    // The published key with the provider's own proof: the proof names the provider, not the consumer.
    const providerProof = (await providerKey.registration(seeded.provider)).proof;
    for (const kid of [undefined, providerKid, 'copied']) {
      await expectRefused(
        consumer.post(keysPath(seeded.consumer), {
          alg: 'ES256',
          jwk: providerKey.publicJwk,
          proof: providerProof,
          ...(kid ? { kid } : {}),
        }),
        422,
        { type: 'invalid-proof', errors: [{ field: 'proof', message: expect.any(String) }] },
      );
    }
    // Without a proof the body is incomplete.
    await expectRefused(
      consumer.post(keysPath(seeded.consumer), { alg: 'ES256', jwk: providerKey.publicJwk }),
      400,
      { type: 'validation-failed', errors: [{ field: 'body.proof', message: expect.any(String) }] },
    );
    // The provider's signature under the provider's kid is not a signature of the consumer's.
    await expectRefused(
      consumer.post(`/contracts/${contract.id}/sign`, {
        type: 'digital',
        kid: providerKid,
        signature: providerSignature,
      }),
      422,
      { type: 'unknown-key' },
    );
    const activated = await consumer.post<Problem>(`/contracts/${contract.id}/activate`);
    expect(activated.status).toBe(422);
    expect((await provider.get<Contract>(`/contracts/${contract.id}`)).body.status).toBe('PendingSignature');
  });

  it('key material belongs to one identity: even its holder cannot bind it to a second identity (409 key-exists)', async () => {
    const key = new PartyKey('EdDSA');
    await key.register(provider, seeded.provider);
    // The holder of the private key makes a valid proof for the consumer; an admin may register for others.
    await expectRefused(admin.post(keysPath(seeded.consumer), await key.registration(seeded.consumer)), 409, {
      type: 'key-exists',
      detail: expect.stringContaining('another identity'),
    });
    await expectRefused(
      admin.post(keysPath(seeded.consumer), await key.registration(seeded.consumer, `k-${randomUUID()}`)),
      409,
      { type: 'key-exists' },
    );
  });

  it('the same material twice for one identity, under another kid, is refused and names the kid it has', async () => {
    const key = new PartyKey('ES384');
    const kid = await key.register(provider, seeded.provider);
    expect(kid).toBe(await keyThumbprint(key.publicJwk));
    await expectRefused(
      provider.post(keysPath(seeded.provider), await key.registration(seeded.provider, 'another-name')),
      409,
      { type: 'key-exists', detail: expect.stringContaining(kid) },
    );
  });
});

describe('proof of possession', () => {
  it('a proof by another key, over another statement, or DER-encoded answers 422 invalid-proof', async () => {
    const key = new PartyKey('ES256');
    const other = new PartyKey('ES256');
    const body = await key.registration(seeded.consumer);
    const wrongProofs = [
      await keyRegistrationProof(other.privateKey, 'ES256', seeded.consumer),
      key.sign(
        `{"identityId":"${seeded.consumer}","keyThumbprint":"${await keyThumbprint(key.publicJwk)}","purpose":"login"}`,
      ),
      // JWS encodes ECDSA as r‖s (RFC 7518 §3.4): a DER signature is not one
      sign('sha256', Buffer.from('x'), key.privateKey).toString('base64url'),
    ];
    for (const proof of wrongProofs) {
      await expectRefused(consumer.post(keysPath(seeded.consumer), { ...body, proof }), 422, {
        type: 'invalid-proof',
        detail: expect.stringContaining('"purpose":"key-registration"'),
      });
    }
    expect((await consumer.post(keysPath(seeded.consumer), body)).status).toBe(201);
  });

  it('names the identity in canonical lower-case form, whatever case the path is written in', async () => {
    const created = await admin.post<{ id: string; subject: string }>('/identities', {
      name: `lab-${randomUUID().slice(0, 8)}`,
      displayName: 'Lab',
      roles: ['consumer'],
    });
    const lab = await ApiClient.as(stack, { subject: created.body.subject });
    const key = new PartyKey('PS256');
    const res = await lab.post(
      keysPath(created.body.id.toUpperCase()),
      await key.registration(created.body.id),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ identityId: created.body.id });
  });
});

describe('kids belong to their identity', () => {
  it("another identity's kid does not block the owner, and a signature is looked up by (signer, kid)", async () => {
    const kid = `signing-${randomUUID().slice(0, 8)}`;
    const squatter = new PartyKey('ES256');
    const mine = new PartyKey('ES256');
    expect(
      (await outsider.post(keysPath(seeded.outsider), await squatter.registration(seeded.outsider, kid)))
        .status,
    ).toBe(201);
    expect(
      (await provider.post(keysPath(seeded.provider), await mine.registration(seeded.provider, kid))).status,
    ).toBe(201);
    const contract = (await provider.post<Contract>('/contracts', createBody)).body;
    const signed = await provider.post<Contract>(`/contracts/${contract.id}/sign`, {
      type: 'digital',
      kid,
      signature: mine.sign(contract.signingPayload),
    });
    expect(signed.status).toBe(200);
    // The outsider's key of the same kid is not the provider's
    const c2 = (await provider.post<Contract>('/contracts', createBody)).body;
    await expectRefused(
      provider.post(`/contracts/${c2.id}/sign`, {
        type: 'digital',
        kid,
        signature: squatter.sign(c2.signingPayload),
      }),
      422,
      { type: 'invalid-signature' },
    );
    // ...and a kid is unique within its identity
    await expectRefused(
      provider.post(
        keysPath(seeded.provider),
        await new PartyKey('ES256').registration(seeded.provider, kid),
      ),
      409,
      { type: 'kid-exists' },
    );
  });
});

describe('unsound keys are refused with 400 naming the member', () => {
  const proof = 'A'.repeat(86);
  it.each([
    ['PS256 with e = 1 and n = 2^2048 - 1 (the reported key)', 'PS256', UNIT_EXPONENT_KEY, 'jwk.e'],
    [
      'PS256 with e = 65537 and n = 2^2048 - 1 (divisible by 3)',
      'PS256',
      { ...UNIT_EXPONENT_KEY, e: 'AQAB' },
      'jwk.n',
    ],
    [
      'EdDSA with the small-order point y = 0',
      'EdDSA',
      { kty: 'OKP', crv: 'Ed25519', x: Buffer.alloc(32).toString('base64url') },
      'jwk.x',
    ],
  ])('%s', async (_, alg, jwk, field) => {
    await expectRefused(provider.post(keysPath(seeded.provider), { alg, jwk, proof }), 400, {
      type: 'validation-failed',
      errors: [{ field, message: expect.any(String) }],
    });
  });
});

describe('who may register', () => {
  it('another identity answers 403 (GET on the same path answers 200); an admin naming an unknown identity gets 404', async () => {
    const key = new PartyKey('ES256');
    expect((await outsider.get(keysPath(seeded.provider))).status).toBe(200);
    await expectRefused(
      outsider.post(keysPath(seeded.provider), await key.registration(seeded.provider)),
      403,
      {
        type: 'forbidden',
      },
    );
    const unknown = randomUUID();
    await expectRefused(consumer.post(keysPath(unknown), await key.registration(unknown)), 403, {
      type: 'forbidden',
    });
    await expectRefused(admin.post(keysPath(unknown), await key.registration(unknown)), 404, {
      type: 'not-found',
    });
    expect(
      (await admin.post(keysPath(seeded.provider), await key.registration(seeded.provider))).status,
    ).toBe(201);
  });
});

describe('keys registered before these checks', () => {
  it('a revoked key (as migration 0008 revokes shared material) signs nothing (422 unknown-key)', async () => {
    const key = new PartyKey('ES256');
    const kid = await key.register(provider, seeded.provider);
    await stack.deps.db.query(
      'UPDATE identity_keys SET revoked_at = now() WHERE identity_id = :identity_id AND kid = :kid',
      { identity_id: sql.uuid(seeded.provider), kid: sql.text(kid) },
    );
    const contract = (await provider.post<Contract>('/contracts', createBody)).body;
    await expectRefused(
      provider.post(`/contracts/${contract.id}/sign`, {
        type: 'digital',
        kid,
        signature: key.sign(contract.signingPayload),
      }),
      422,
      { type: 'unknown-key' },
    );
  });

  it('an unsound legacy key signs nothing, although its forged signature verifies (422 unsound-key)', async () => {
    const kid = `legacy-${randomUUID().slice(0, 8)}`;
    await stack.deps.db.query(
      `INSERT INTO identity_keys (identity_id, kid, alg, jwk, thumbprint, created_at)
       VALUES (:identity_id, :kid, 'PS256', :jwk, :thumbprint, now())`,
      {
        identity_id: sql.uuid(seeded.provider),
        kid: sql.text(kid),
        jwk: sql.json(UNIT_EXPONENT_KEY),
        thumbprint: sql.text(await keyThumbprint(UNIT_EXPONENT_KEY)),
      },
    );
    const contract = (await provider.post<Contract>('/contracts', createBody)).body;
    await expectRefused(
      provider.post(`/contracts/${contract.id}/sign`, {
        type: 'digital',
        kid,
        signature: forgeUnderUnitExponent(Buffer.from(contract.signingPayload, 'utf8')),
      }),
      422,
      { type: 'unsound-key', errors: [{ field: 'kid', message: expect.any(String) }] },
    );
  });
});
