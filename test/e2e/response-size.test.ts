import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { sql } from '../../shared/database/database.ts';
import { storedJsonBytes } from '../../shared/domain/canonical-json.ts';
import { MAX_CONTRACT_CONTENT_BYTES } from '../../shared/domain/contract.ts';
import { MAX_ENCLAVE_CONFIGURATION_BYTES } from '../../shared/domain/enclave.ts';
import { MAX_KEYS_PER_IDENTITY } from '../../shared/domain/identity.ts';
import {
  ADDITIONAL_PCR_INDEXES,
  MAX_MEASUREMENT_SETS_PER_CONTRACT,
} from '../../shared/domain/measurement-set.ts';
import { MAX_AUDIT_PAGE } from '../../shared/http/api-schemas.ts';
import { ApiClient, PartyKey } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';
import { CREATE_FIXTURE, contractOfStoredSize } from '../support/contracts.ts';

/**
 * Everything a client may store can be read back, and every reply stays within what the platform can carry,
 * at the maximum sizes, through the production Data API adapter against the emulator that enforces the
 * service's limits (64 KB per row, 1 MiB per response): a contract or an enclave is one row, so its size
 * is bounded at write time; lists return summaries, so a page of 100 is bounded whatever the items hold;
 * an audit page holds at most `MAX_AUDIT_PAGE` records.
 */
const ENCLAVE = JSON.parse(readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'));
/** Lambda's synchronous reply limit; a page must also stay far below the Data API's 1 MiB. */
const MIB = 1024 * 1024;

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;

beforeAll(async () => {
  stack = await startLocalStack({ viaDataApi: true, scheduledJobs: false });
  provider = await ApiClient.as(stack, 'provider');
  consumer = await ApiClient.as(stack, 'consumer');
});
afterAll(async () => stack?.close());

async function count(table: string): Promise<number> {
  const { rows } = await stack.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

/** An enclave configuration that takes exactly `bytes` stored: quote-filled rule descriptions. */
function configurationOfStoredSize(bytes: number) {
  const configuration = structuredClone(ENCLAVE.configuration);
  const { ingress, egress } = configuration.networkPolicies;
  const rules: { description?: string }[] = [];
  while (egress.length < 50) egress.push({ protocol: 'tcp', port: 443, host: `h${egress.length}.example` });
  while (ingress.length < 50) ingress.push({ protocol: 'tcp', port: 8443, cidr: '10.0.0.0/16' });
  rules.push(...egress, ...ingress);
  rules.forEach((rule) => {
    rule.description = '';
  });
  for (const rule of rules) {
    let low = 0;
    let high = 200;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      rule.description = '"'.repeat(mid);
      if (storedJsonBytes(configuration) <= bytes) low = mid;
      else high = mid - 1;
    }
    rule.description = '"'.repeat(low);
    if (low < 200) break;
  }
  // Pad to the byte with the image's name (ASCII, one byte each).
  const missing = bytes - storedJsonBytes(configuration);
  configuration.image.name = `${configuration.image.name}${'x'.repeat(missing)}`;
  expect(storedJsonBytes(configuration)).toBe(bytes);
  return configuration;
}

describe('a contract is one readable row', () => {
  it('is created, read back whole and listed at exactly the maximum size; one byte more is a 400 that stores nothing', async () => {
    const largest = contractOfStoredSize(MAX_CONTRACT_CONTENT_BYTES);
    const key = { 'idempotency-key': 'largest-contract' };
    const created = await provider.post<{ id: string; terms: unknown }>('/contracts', largest, key);
    expect(created.status, created.text).toBe(201);
    // Its stored response (a row of idempotency_keys) is readable too: a retry replays it.
    const retried = await provider.post<{ id: string }>('/contracts', largest, key);
    expect(retried.status, retried.text).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(retried.body.id).toBe(created.body.id);
    const read = await provider.get<{ terms: unknown; title: string }>(`/contracts/${created.body.id}`);
    expect(read.status, read.text).toBe(200);
    expect(read.body.terms).toEqual(created.body.terms);
    expect(read.body.title).toBe(largest.title);

    const before = await count('contracts');
    const over = await provider.post<{ errors: { field: string; message: string }[] }>(
      '/contracts',
      contractOfStoredSize(MAX_CONTRACT_CONTENT_BYTES + 1),
    );
    expect(over.status, over.text).toBe(400);
    expect(over.body.errors).toEqual([
      { field: 'body', message: expect.stringContaining(`at most ${MAX_CONTRACT_CONTENT_BYTES}`) },
    ]);
    expect(await count('contracts')).toBe(before);
  });

  it('an edit that would outgrow the row is refused, and the contract stays as it was', async () => {
    const created = await provider.post<{ id: string; version: number }>(
      '/contracts',
      contractOfStoredSize(MAX_CONTRACT_CONTENT_BYTES - 10),
    );
    expect(created.status).toBe(201);
    const edit = await provider.put(
      `/contracts/${created.body.id}`,
      { description: 'a description longer than ten bytes' },
      { 'if-match': `"${created.body.version}"` },
    );
    expect(edit.status, edit.text).toBe(400);
    const read = await provider.get<{ version: number; description: string }>(
      `/contracts/${created.body.id}`,
    );
    expect(read.body).toMatchObject({ version: created.body.version, description: '' });
  });

  it('a page of 100 of the largest contracts is a page of summaries far below 1 MiB', async () => {
    const largest = contractOfStoredSize(MAX_CONTRACT_CONTENT_BYTES);
    for (let i = await count('contracts'); i < 101; i++) {
      expect((await provider.post('/contracts', largest)).status).toBe(201);
    }
    const page = await provider.get<{ items: Record<string, unknown>[]; nextCursor: string | null }>(
      '/contracts?limit=100',
    );
    expect(page.status, page.text.slice(0, 300)).toBe(200);
    expect(page.body.items).toHaveLength(100);
    expect(page.body.nextCursor).not.toBeNull();
    expect(Buffer.byteLength(page.text)).toBeLessThan(MIB / 4);
    const [item] = page.body.items;
    expect(item).not.toHaveProperty('terms');
    expect(item).not.toHaveProperty('description');
    expect(item).toMatchObject({
      validity: CREATE_FIXTURE.terms.validity,
      signedBy: [],
      availableActions: expect.arrayContaining(['sign', 'edit']),
    });
  });
});

describe('an enclave is one readable row', () => {
  let contractId: string;
  beforeAll(async () => {
    const parties = await contractParties(stack.deps);
    contractId = await parties.activeContract();
    const { pcr0, pcr1, pcr2 } = ENCLAVE.configuration.image;
    await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
  });

  it('is created and read back at exactly the maximum configuration size; one byte more is a 400', async () => {
    const configuration = configurationOfStoredSize(MAX_ENCLAVE_CONFIGURATION_BYTES);
    const created = await provider.post<{ id: string }>('/enclaves', {
      ...ENCLAVE,
      contractId,
      configuration,
    });
    expect(created.status, created.text).toBe(201);
    const read = await consumer.get<{ configuration: unknown }>(`/enclaves/${created.body.id}`);
    expect(read.status, read.text).toBe(200);
    expect(read.body.configuration).toEqual(configuration);

    const before = await count('enclaves');
    const over = await provider.post<{ errors: { field: string; message: string }[] }>('/enclaves', {
      ...ENCLAVE,
      contractId,
      configuration: configurationOfStoredSize(MAX_ENCLAVE_CONFIGURATION_BYTES + 1),
    });
    expect(over.status, over.text).toBe(400);
    expect(over.body.errors).toEqual([
      {
        field: 'body.configuration',
        message: expect.stringContaining(`at most ${MAX_ENCLAVE_CONFIGURATION_BYTES}`),
      },
    ]);
    expect(await count('enclaves')).toBe(before);
  });

  it('a page of 100 of the largest enclaves is a page of summaries far below 1 MiB', async () => {
    const configuration = configurationOfStoredSize(MAX_ENCLAVE_CONFIGURATION_BYTES);
    for (let i = await count('enclaves'); i < 101; i++) {
      const res = await provider.post('/enclaves', { ...ENCLAVE, contractId, configuration });
      expect(res.status, res.text).toBe(201);
    }
    const page = await consumer.get<{ items: Record<string, unknown>[] }>(
      `/enclaves?contractId=${contractId}&limit=100`,
    );
    expect(page.status, page.text.slice(0, 300)).toBe(200);
    expect(page.body.items).toHaveLength(100);
    expect(Buffer.byteLength(page.text)).toBeLessThan(MIB / 4);
    expect(page.body.items[0]).not.toHaveProperty('configuration');
    expect(page.body.items[0]).toMatchObject({
      image: { pcr0: ENCLAVE.configuration.image.pcr0, name: configuration.image.name },
      attestationVerdict: null,
      provisioningId: null,
    });
  });
});

describe('the measurement sets of a contract', () => {
  it(`hold at most ${MAX_MEASUREMENT_SETS_PER_CONTRACT}, and all of the largest list within 1 MiB`, async () => {
    const parties = await contractParties(stack.deps);
    const id = await parties.activeContract();
    // Every further register pinned, and both parties' approvals: the largest set there is.
    const additionalPcrs = Object.fromEntries(ADDITIONAL_PCR_INDEXES.map((i) => [String(i), 'f'.repeat(96)]));
    for (let n = 0; n < MAX_MEASUREMENT_SETS_PER_CONTRACT; n++) {
      const hex = n.toString(16).padStart(96, 'f');
      await parties.measurementSet(id, { pcr0: hex, pcr1: hex, pcr2: hex, pcr8: hex, additionalPcrs });
    }
    const before = await count('measurement_sets');
    const one = 'e'.repeat(96);
    const refused = await provider.post(`/contracts/${id}/measurements`, { pcr0: one, pcr1: one, pcr2: one });
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body.type).toBe('https://problems.enclave-contracts.dev/too-many-measurement-sets');
    expect(await count('measurement_sets')).toBe(before);
    const list = await consumer.get<{ items: { status: string }[] }>(`/contracts/${id}/measurements`);
    expect(list.status, list.text.slice(0, 300)).toBe(200);
    expect(list.body.items).toHaveLength(MAX_MEASUREMENT_SETS_PER_CONTRACT);
    expect(list.body.items.every((m) => m.status === 'Approved')).toBe(true);
    expect(Buffer.byteLength(list.text)).toBeLessThan(MIB / 2);
  });
});

describe("an identity's keys", () => {
  it(`are at most ${MAX_KEYS_PER_IDENTITY}, and all of the largest list within 1 MiB`, async () => {
    const auditor = await ApiClient.as(stack, 'auditor');
    const { id } = (await auditor.get<{ id: string }>('/identities/me')).body;
    // The largest keys there are: RSA-4096 under 128-character kids. Generating a hundred 4096-bit keys
    // takes minutes, so one key pair is registered under its own proof, and the other rows are inserted
    // as the registration would write them (this test is about what the list carries, not about proofs).
    const key = new PartyKey('PS256', 4096);
    const first = await auditor.post(`/identities/${id}/keys`, await key.registration(id, 'k'.repeat(128)));
    expect(first.status, first.text).toBe(201);
    const { rows } = await stack.deps.db.query<{ jwk: unknown }>(
      'SELECT jwk FROM identity_keys WHERE identity_id = :id',
      { id: sql.uuid(id) },
    );
    for (let n = 1; n < MAX_KEYS_PER_IDENTITY; n++) {
      await stack.deps.db.query(
        `INSERT INTO identity_keys (kid, identity_id, alg, jwk, thumbprint, created_at)
         VALUES (:kid, :id, 'PS256', :jwk, :thumbprint, now())`,
        {
          kid: sql.text(`${n}`.padStart(128, 'k')),
          id: sql.uuid(id),
          jwk: sql.json(rows[0]!.jwk),
          thumbprint: sql.text(`legacy-${n}`),
        },
      );
    }
    const before = await count('identity_keys');
    const another = new PartyKey('EdDSA');
    const refused = await auditor.post(`/identities/${id}/keys`, await another.registration(id));
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body.type).toBe('https://problems.enclave-contracts.dev/too-many-keys');
    expect(await count('identity_keys')).toBe(before);
    const list = await consumer.get<{ keys: unknown[] }>(`/identities/${id}/keys`);
    expect(list.status, list.text.slice(0, 300)).toBe(200);
    expect(list.body.keys).toHaveLength(MAX_KEYS_PER_IDENTITY);
    expect(Buffer.byteLength(list.text)).toBeLessThan(MIB / 2);
  });
});

describe('an audit page', () => {
  it(`holds ${MAX_AUDIT_PAGE} of the largest records within the Data API's 1 MiB`, async () => {
    const parties = await contractParties(stack.deps);
    const id = await parties.activeContract();
    // The longest reason, of quotes, which the Data API's JSON-in-JSON carries in four bytes each: the
    // largest record a party can make.
    const reason = '"'.repeat(1000);
    const records = async () =>
      (
        await stack.deps.db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM audit_log WHERE entity_id = :id',
          { id: sql.uuid(id) },
        )
      ).rows[0]!.n;
    while ((await records()) < MAX_AUDIT_PAGE + 4) {
      expect((await provider.post(`/contracts/${id}/suspend`, { reason })).status).toBe(200);
      expect((await provider.post(`/contracts/${id}/resume`, { reason })).status).toBe(200);
    }
    const page = await consumer.get<{ records: unknown[]; verification: { valid: boolean } }>(
      `/audit?entityId=${id}&limit=${MAX_AUDIT_PAGE}&afterSeq=4`,
    );
    expect(page.status, page.text.slice(0, 300)).toBe(200);
    expect(page.body.records).toHaveLength(MAX_AUDIT_PAGE);
    expect(page.body.verification.valid).toBe(true);
    expect((await consumer.get(`/audit?entityId=${id}&limit=${MAX_AUDIT_PAGE + 1}`)).status).toBe(400);
  });
});
