import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PARENT_ROLE } from '../../infra/local/local-enclaves.ts';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { contentDigest } from '../../shared/domain/contract.ts';
import { encodeCursor } from '../../shared/http/cursor.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { ApiClient, type ApiResponse, seeded } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';

/**
 * The hostile review's findings, each as the request that found it (issue 8): ids in any case reach every
 * use case in their one canonical form; text fields refuse what cannot be stored, signed or read as it
 * is meant; a retry with an Idempotency-Key replays whatever happened since; crafted cursors and query
 * strings are the caller's mistake (400), never a 500.
 */
const ENCLAVE = JSON.parse(readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'));

let stack: LocalStack;
let clock = Date.now();
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false, now: () => new Date(clock) });
  [provider, consumer, admin] = await Promise.all([
    ApiClient.as(stack, 'provider'),
    ApiClient.as(stack, 'consumer'),
    ApiClient.as(stack, 'admin'),
  ]);
});
afterAll(async () => stack?.close());

const upper = (id: string) => id.toUpperCase();

async function rowCounts(): Promise<string> {
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT count(*) FROM contracts)::int AS contracts,
    (SELECT coalesce(sum(version), 0) FROM contracts)::int AS versions,
    (SELECT count(*) FROM audit_log)::int AS audit,
    (SELECT count(*) FROM identities)::int AS identities,
    (SELECT count(*) FROM enclaves)::int AS enclaves,
    (SELECT count(*) FROM measurement_sets)::int AS sets,
    (SELECT count(*) FROM idempotency_keys)::int AS keys`);
  return JSON.stringify(rows[0]);
}

function expectProblem(res: ApiResponse, status: number, type?: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  if (type) expect(res.body.type).toBe(`https://problems.enclave-contracts.dev/${type}`);
}

describe('ids are canonical everywhere', () => {
  it('an upper-case consumerId is stored, digested, compared and audited in lower case', async () => {
    const created = await provider.post<{ id: string; consumerId: string; contentDigest: string }>(
      '/contracts',
      { ...CREATE_FIXTURE, consumerId: upper(seeded.consumer) },
    );
    expect(created.status, created.text).toBe(201);
    expect(created.body.consumerId).toBe(seeded.consumer);

    // Anyone can recompute the digest from what GET returns (it was taken over the canonical id).
    const read = await consumer.get<Parameters<typeof contentDigest>[0] & { contentDigest: string }>(
      `/contracts/${upper(created.body.id)}`,
    );
    expect(read.status, read.text).toBe(200);
    expect(read.body.id).toBe(created.body.id);
    expect(contentDigest(read.body)).toBe(read.body.contentDigest);

    // The consumer reads its own trail, under any spelling of the id, with the checkpoint's proof.
    await createCheckpoint(stack.deps);
    const trail = await consumer.get<{
      entityId: string;
      records: { data: { consumerId: string } }[];
      checkpoint: { leaf: { entityId: string } } | null;
      verification: { valid: boolean; anchored: boolean | null };
    }>(`/audit?entityId=${upper(created.body.id)}`);
    expect(trail.status, trail.text).toBe(200);
    expect(trail.body.entityId).toBe(created.body.id);
    expect(trail.body.records[0]!.data.consumerId).toBe(seeded.consumer);
    expect(trail.body.checkpoint?.leaf.entityId).toBe(created.body.id);
    expect(trail.body.verification).toMatchObject({ valid: true, anchored: true });
  });

  it('a contract with itself, named in another case, is a 422 invalid-parties that stores nothing', async () => {
    const before = await rowCounts();
    const self = await provider.post('/contracts', { ...CREATE_FIXTURE, consumerId: upper(seeded.provider) });
    expectProblem(self, 422, 'invalid-parties');
    const onBehalf = await admin.post('/contracts', {
      ...CREATE_FIXTURE,
      providerId: upper(seeded.provider),
      consumerId: seeded.provider,
    });
    expectProblem(onBehalf, 422, 'invalid-parties');
    expect(await rowCounts()).toBe(before);
  });

  it('query filters and path ids in any case find the same things', async () => {
    const created = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE);
    const lower = await provider.get<{ items: { id: string }[] }>(
      `/contracts?counterpartyId=${seeded.consumer}`,
    );
    const upperCase = await provider.get<{ items: { id: string }[] }>(
      `/contracts?counterpartyId=${upper(seeded.consumer)}`,
    );
    expect(upperCase.status).toBe(200);
    expect(upperCase.body.items.map((c) => c.id)).toEqual(lower.body.items.map((c) => c.id));
    expect(upperCase.body.items.map((c) => c.id)).toContain(created.body.id);
    const keys = await consumer.get<{ keys: { identityId: string }[] }>(
      `/identities/${upper(seeded.provider)}/keys`,
    );
    expect(keys.status).toBe(200);
    for (const key of keys.body.keys) expect(key.identityId).toBe(seeded.provider);
  });

  it('an enclave created under an upper-case contractId names its contract canonically', async () => {
    const parties = await contractParties(stack.deps);
    const contractId = await parties.activeContract();
    const { pcr0, pcr1, pcr2 } = ENCLAVE.configuration.image;
    await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
    const created = await provider.post<{ id: string; contractId: string }>('/enclaves', {
      ...ENCLAVE,
      contractId: upper(contractId),
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.contractId).toBe(contractId);
    const listed = await consumer.get<{ items: { id: string }[] }>(
      `/enclaves?contractId=${upper(contractId)}`,
    );
    expect(listed.body.items.map((e) => e.id)).toContain(created.body.id);
    const sets = await consumer.get<{ items: { contractId: string; signingPayload: string }[] }>(
      `/contracts/${upper(contractId)}/measurements`,
    );
    expect(sets.status).toBe(200);
    for (const set of sets.body.items) {
      expect(set.contractId).toBe(contractId);
      expect(JSON.parse(set.signingPayload).contractId).toBe(contractId);
    }
  });
});

/** Characters no text field stores; the last four only where a person reads the text as the agreement. */
const HOSTILE = {
  nul: 'a\u0000b',
  'lone high surrogate': 'a\ud800b',
  'lone low surrogate': 'a\udfffb',
  'control character': 'a\u0007b',
  'line separator': 'a\u2028b',
  'right-to-left override': 'a\u202eb',
  'zero-width space': 'a\u200bb',
  'first strong isolate': 'a\u2068b',
  'byte order mark inside': 'a\ufeffb',
  'tag character (hidden text)': 'a\u{E0041}b',
  'soft hyphen': 'a\u00adb',
  'private-use character': 'a\ue000b',
} as const;

const UNKNOWN = '00000000-0000-4000-8000-000000000001';

/** Where a text field is, and a request that carries `value` in it. */
const TEXT_FIELDS: readonly {
  readonly field: string;
  readonly send: (value: string) => Promise<ApiResponse>;
}[] = [
  { field: 'body.title', send: (v) => provider.post('/contracts', { ...CREATE_FIXTURE, title: v }) },
  {
    field: 'body.description',
    send: (v) => provider.post('/contracts', { ...CREATE_FIXTURE, description: v }),
  },
  {
    field: 'body.terms.usageRestrictions.purposes.0',
    send: (v) =>
      provider.post('/contracts', {
        ...CREATE_FIXTURE,
        terms: {
          ...CREATE_FIXTURE.terms,
          usageRestrictions: { ...CREATE_FIXTURE.terms.usageRestrictions, purposes: [v] },
        },
      }),
  },
  {
    field: 'body.terms.security.customPolicies.0.statement',
    send: (v) =>
      provider.post('/contracts', {
        ...CREATE_FIXTURE,
        terms: {
          ...CREATE_FIXTURE.terms,
          security: { ...CREATE_FIXTURE.terms.security, customPolicies: [{ name: 'p', statement: v }] },
        },
      }),
  },
  {
    field: 'body.title',
    send: (v) => provider.put(`/contracts/${UNKNOWN}`, { title: v }, { 'if-match': '"1"' }),
  },
  { field: 'body.reason', send: (v) => provider.post(`/contracts/${UNKNOWN}/suspend`, { reason: v }) },
  { field: 'body.reason', send: (v) => provider.post(`/contracts/${UNKNOWN}/terminate`, { reason: v }) },
  { field: 'body.reason', send: (v) => provider.post(`/contracts/${UNKNOWN}/resume`, { reason: v }) },
  {
    field: 'body.kid',
    send: (v) =>
      provider.post(`/contracts/${UNKNOWN}/sign`, { type: 'digital', kid: v, signature: 'A'.repeat(86) }),
  },
  { field: 'body.name', send: (v) => provider.post('/enclaves', { ...ENCLAVE, name: v }) },
  {
    field: 'body.configuration.image.name',
    send: (v) =>
      provider.post('/enclaves', {
        ...ENCLAVE,
        configuration: { ...ENCLAVE.configuration, image: { ...ENCLAVE.configuration.image, name: v } },
      }),
  },
  {
    field: 'body.configuration.networkPolicies.egress.0.description',
    send: (v) =>
      provider.post('/enclaves', {
        ...ENCLAVE,
        configuration: {
          ...ENCLAVE.configuration,
          networkPolicies: {
            ...ENCLAVE.configuration.networkPolicies,
            egress: [{ protocol: 'tcp', port: 443, host: 'models.example', description: v }],
          },
        },
      }),
  },
  { field: 'body.reason', send: (v) => provider.post(`/enclaves/${UNKNOWN}/suspend`, { reason: v }) },
  {
    field: 'body.displayName',
    send: (v) => admin.post('/identities', { name: 'newcomer', displayName: v, roles: ['consumer'] }),
  },
  {
    field: 'body.subject',
    send: (v) =>
      admin.post('/identities', { name: 'newcomer', displayName: 'N', subject: v, roles: ['consumer'] }),
  },
];

describe('text fields refuse what cannot be stored, signed or read as meant', () => {
  it.each(
    TEXT_FIELDS.flatMap(({ field, send }) =>
      Object.entries(HOSTILE).map(([what, value]) => [field, what, send, value] as const),
    ),
  )('%s with a %s: 400 naming the field, nothing stored', async (field, _what, send, value) => {
    const before = await rowCounts();
    const res = await send(value);
    expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(field);
    expect(await rowCounts()).toBe(before);
  });

  it('tab and line feed stay allowed in multi-line text, and the text is stored as sent', async () => {
    const description = 'Line one\n\tindented line two';
    const created = await provider.post<{ description: string }>('/contracts', {
      ...CREATE_FIXTURE,
      description,
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.description).toBe(description);
    // A title is one line.
    expectProblem(await provider.post('/contracts', { ...CREATE_FIXTURE, title: 'a\nb' }), 400);
  });

  it('right-to-left text without formatting characters is accepted', async () => {
    const title = 'עסקת נתונים — بيانات التدريب';
    const created = await provider.post<{ title: string }>('/contracts', { ...CREATE_FIXTURE, title });
    expect(created.status, created.text).toBe(201);
    expect(created.body.title).toBe(title);
  });
});

describe('an idempotent retry replays, whatever happened since', () => {
  it('POST /enclaves retried after the contract was suspended replays the first 201', async () => {
    const parties = await contractParties(stack.deps);
    const contractId = await parties.activeContract();
    const { pcr0, pcr1, pcr2 } = ENCLAVE.configuration.image;
    await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
    const key = { 'idempotency-key': `enclave-${contractId}` };
    const body = { ...ENCLAVE, contractId };
    const first = await provider.post<{ id: string; version: number }>('/enclaves', body, key);
    expect(first.status, first.text).toBe(201);
    expect((await consumer.post(`/contracts/${contractId}/suspend`, { reason: 'audit' })).status).toBe(200);
    const retry = await provider.post<{ id: string }>('/enclaves', body, key);
    expect(retry.status, retry.text).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('etag')).toBe(`"${first.body.version}"`);
    expect(retry.body).toEqual(first.body);
    // A new request under the suspended contract is refused.
    expectProblem(await provider.post('/enclaves', body, { 'idempotency-key': `other-${contractId}` }), 422);
  });

  it('POST /contracts retried after validity.end replays the first 201', async () => {
    const key = { 'idempotency-key': 'contract-before-the-end' };
    const first = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE, key);
    expect(first.status).toBe(201);
    const saved = clock;
    clock = Date.parse(CREATE_FIXTURE.terms.validity.end) + 1000;
    try {
      const retry = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE, key);
      expect(retry.status, retry.text).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body.id).toBe(first.body.id);
      expectProblem(await provider.post('/contracts', CREATE_FIXTURE, { 'idempotency-key': 'late' }), 422);
    } finally {
      clock = saved;
    }
  });

  it('a key belongs to its caller: two callers using one key each get their own contract', async () => {
    const key = { 'idempotency-key': 'shared-by-two-callers' };
    const mine = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE, key);
    const theirs = await admin.post<{ id: string }>(
      '/contracts',
      { ...CREATE_FIXTURE, providerId: seeded.provider },
      key,
    );
    expect(mine.status, mine.text).toBe(201);
    expect(theirs.status, theirs.text).toBe(201);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
    expect(theirs.body.id).not.toBe(mine.body.id);
  });

  it('POST /identities honours an Idempotency-Key: a retry replays, another body under it is a 422', async () => {
    const key = { 'idempotency-key': 'new-auditor' };
    const body = { name: 'second-auditor', displayName: 'Second auditor', roles: ['auditor'] };
    const first = await admin.post<{ id: string }>('/identities', body, key);
    expect(first.status, first.text).toBe(201);
    const retry = await admin.post<{ id: string }>('/identities', body, key);
    expect(retry.status, retry.text).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const before = await rowCounts();
    expectProblem(
      await admin.post('/identities', { ...body, displayName: 'Another' }, key),
      422,
      'idempotency-key-reused',
    );
    // Without the key, the same name is taken.
    expectProblem(await admin.post('/identities', body), 409, 'identity-exists');
    expectProblem(
      await admin.post('/identities', body, { 'idempotency-key': 'fresh' }),
      409,
      'identity-exists',
    );
    expect(await rowCounts()).toBe(before);
  });
});

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Cursors no list issued: each must be a 400 on `query.cursor`. */
const CRAFTED_CURSORS = {
  'year 10000': encodeCursor({ createdAt: '+010000-01-01T00:00:00.000Z', id: UNKNOWN }),
  'year 0000': encodeCursor({ createdAt: '0000-01-01T00:00:00.000Z', id: UNKNOWN }),
  'an impossible date': encodeCursor({ createdAt: '2026-02-30T00:00:00.000Z', id: UNKNOWN }),
  'a date with an offset': encodeCursor({ createdAt: '2026-01-01T00:00:00.000+01:00', id: UNKNOWN }),
  'a malformed id': encodeCursor({ createdAt: '2026-01-01T00:00:00.000Z', id: 'not-an-id' }),
  'NUL in a name': encodeCursor({ name: 'prov\u0000ider' }),
  'a name in upper case': encodeCursor({ name: 'PROVIDER' }),
  'a reportedAt in year 10000': encodeCursor({ reportedAt: '+010000-01-01T00:00:00.000Z' }),
  'an extra key': encodeCursor({ createdAt: '2026-01-01T00:00:00.000Z', id: UNKNOWN, x: '1' }),
  'an array': b64([1, 2]),
  'JSON null': b64('null'),
  'not JSON': b64('{"createdAt":'),
  'not base64url': 'abc$def',
} as const;

describe('crafted cursors are a 400 on every list', () => {
  const LISTS = ['/contracts', '/identities', '/enclaves', `/enclaves/${UNKNOWN}/metrics`] as const;
  it.each(
    LISTS.flatMap((list) =>
      Object.entries(CRAFTED_CURSORS).map(([what, cursor]) => [list, what, cursor] as const),
    ),
  )('%s with %s', async (list, _what, cursor) => {
    const res = await admin.get(`${list}?cursor=${encodeURIComponent(cursor)}`);
    if (list.endsWith('/metrics')) {
      // The enclave does not exist: the cursor is refused before anything is looked up.
      expectProblem(res, 400, 'validation-failed');
    } else expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([
      'query.cursor',
    ]);
  });

  it('a cursor a list issued pages on', async () => {
    const first = await admin.get<{ items: { name: string }[]; nextCursor: string }>('/identities?limit=1');
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const next = await admin.get<{ items: { name: string }[] }>(
      `/identities?limit=1&cursor=${first.body.nextCursor}`,
    );
    expect(next.status).toBe(200);
    expect(next.body.items[0]!.name > first.body.items[0]!.name).toBe(true);
  });
});

describe('prototype keys in a body', () => {
  it.each([
    ['body', `{"__proto__":{"admin":true},"title":"t"}`, '/contracts'],
    ['body.terms', `{"title":"t","terms":{"__proto__":{}}}`, '/contracts'],
    [
      'body.additionalPcrs',
      `{"pcr0":"${'a'.repeat(96)}","pcr1":"${'b'.repeat(96)}","pcr2":"${'c'.repeat(96)}","additionalPcrs":{"__proto__":"${'d'.repeat(96)}"}}`,
      `/contracts/${UNKNOWN}/measurements`,
    ],
  ])('a __proto__ key at %s is a 400 naming it, and nothing is stored', async (field, body, path) => {
    const before = await rowCounts();
    const res = await provider.request('POST', path, {
      rawBody: body,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: { field: string }[] }).errors).toEqual([
      { field, message: 'unrecognized key: __proto__' },
    ]);
    expect(await rowCounts()).toBe(before);
  });
});

describe('bodies no schema should see', () => {
  it('a __proto__ key spelt with JSON escapes is refused as well', async () => {
    const res = await provider.request('POST', '/contracts', {
      rawBody: '{"\\u005f_proto__":{"admin":true},"title":"t"}',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: { field: string }[] }).errors[0]!.field).toBe('body');
  });

  it('a body nested thousands of levels deep is a 400, not a stack overflow', async () => {
    const deep = `${'['.repeat(20_000)}"__proto__"${']'.repeat(20_000)}`;
    for (const rawBody of [deep, `{"title":${deep}}`]) {
      const res = await provider.request('POST', '/contracts', {
        rawBody,
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(res, 400, 'validation-failed');
    }
  });

  it('bytes that are not UTF-8 are a 400, never text with U+FFFD in place of what was sent', async () => {
    const before = await rowCounts();
    const json = Buffer.from(JSON.stringify({ ...CREATE_FIXTURE, title: 'TITLE' }));
    const at = json.indexOf('TITLE');
    json[at] = 0xc3; // a lead byte followed by ASCII: no UTF-8 sequence
    const res = await provider.request('POST', '/contracts', {
      rawBody: json,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: unknown[] }).errors).toEqual([
      { field: 'body', message: 'not valid UTF-8' },
    ]);
    expect(await rowCounts()).toBe(before);
  });
});

describe('instants beyond what a database holds', () => {
  it.each([
    ['end', '9999-12-31T23:59:59-23:59'],
    ['end', '+010000-01-01T00:00:00Z'],
    ['start', '0000-06-01T00:00:00Z'],
  ])('validity.%s %s is a 400 naming it, never a 500', async (which, instant) => {
    const before = await rowCounts();
    const res = await provider.post('/contracts', {
      ...CREATE_FIXTURE,
      terms: { ...CREATE_FIXTURE.terms, validity: { ...CREATE_FIXTURE.terms.validity, [which]: instant } },
    });
    expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(
      `body.terms.validity.${which}`,
    );
    expect(await rowCounts()).toBe(before);
  });

  it('a metrics sample from year 0 is a 400 naming reportedAt', async () => {
    const parent = ApiClient.signing(
      stack,
      stack.enclaves.credentials.issue(instanceSessionArn(LOCAL_PARENT_ROLE, 'i-0123456789abcdef0')),
    );
    const res = await parent.post(`/enclaves/${UNKNOWN}/metrics`, {
      reportedAt: '0000-01-01T00:00:00Z',
      cpuUtilizationPercent: 1,
      memoryUsedMiB: 1,
    });
    expectProblem(res, 400, 'validation-failed');
    expect((res.body as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([
      'body.reportedAt',
    ]);
  });
});

describe('query strings and media types', () => {
  it.each(['0x10', '1e2', ' 5', '+5', '5.0', '-1', '0', '101', ''])('limit=%j is a 400', async (limit) => {
    const res = await provider.get(`/contracts?limit=${encodeURIComponent(limit)}`);
    expectProblem(res, 400, 'validation-failed');
  });

  it.each(['afterSeq=0x1', 'afterSeq=1e1', 'afterSeq=%201'])('GET /audit?%s is a 400', async (query) => {
    expectProblem(await admin.get(`/audit?entityId=${seeded.provider}&${query}`), 400, 'validation-failed');
  });

  it.each([
    ['a JSON object', '{"reason":"x"}', 'application/json'],
    ['text', 'activate please', 'text/plain'],
    ['an object that is not empty, in any media type', '{"a":1}', 'text/plain'],
  ])(
    'a route that takes no body refuses %s with a 400 (not a 415) and changes nothing',
    async (_what, raw, type) => {
      const { body: draft } = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE);
      const before = await rowCounts();
      const res = await provider.request('POST', `/contracts/${draft.id}/activate`, {
        rawBody: raw,
        headers: { 'content-type': type },
      });
      expectProblem(res, 400, 'validation-failed');
      expect(res.body.detail).toBe('This endpoint takes no body.');
      expect(await rowCounts()).toBe(before);
    },
  );

  it('a route that takes no body reads an empty JSON object as none', async () => {
    const { body: draft } = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE);
    const res = await provider.request('POST', `/contracts/${draft.id}/activate`, {
      rawBody: ' { } ',
      headers: { 'content-type': 'text/plain' },
    });
    // past the body: the draft is unsigned, so the transition itself is refused
    expect(res.status, res.text).toBe(409);
  });

  it('limit=100 with digits only is fine', async () => {
    expect((await provider.get('/contracts?limit=100')).status).toBe(200);
  });

  it.each(['charset=iso-8859-1', 'charset="latin1"', 'charset=utf-16'])(
    'a body in application/json; %s is a 415 that stores nothing',
    async (charset) => {
      const before = await rowCounts();
      const res = await provider.request('POST', '/contracts', {
        rawBody: JSON.stringify(CREATE_FIXTURE),
        headers: { 'content-type': `application/json; ${charset}` },
      });
      expectProblem(res, 415, 'unsupported-media-type');
      expect(await rowCounts()).toBe(before);
    },
  );

  it.each(['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json'])(
    '%s is accepted',
    async (contentType) => {
      const res = await provider.request('POST', '/contracts', {
        rawBody: JSON.stringify(CREATE_FIXTURE),
        headers: { 'content-type': contentType },
      });
      expect(res.status, res.text).toBe(201);
    },
  );
});
