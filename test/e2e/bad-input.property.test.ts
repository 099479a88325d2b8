import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PARENT_ROLE } from '../../infra/local/local-enclaves.ts';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { seededSubject } from '../../infra/local/seed.ts';
import { LOCAL_REGION } from '../../infra/local/services/local-account.ts';
import { signApiRequest } from '../../infra/parent-agent/agent-api.ts';
import type { InstanceCredentials } from '../../infra/parent-agent/imds.ts';
import * as z from '../../shared/domain/zod.ts';
import { encodeCursor } from '../../shared/http/cursor.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { ROUTES, type RouteDefinition } from '../../shared/http/routes.ts';
import { ApiClient, seeded } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';
import { SoftwareAuthenticator } from '../support/webauthn-authenticator.ts';

/**
 * Random and malformed bodies, headers, ids and query strings against every route: never a 5xx, every
 * refusal is problem+json naming the status, and a refused request leaves the database exactly as it was.
 * Generators aimed at what a hostile review found (issue 8): ids in any case, hostile characters in any
 * string of a valid body, crafted cursors, prototype keys and non-digit counts in the query, charsets and
 * authorization schemes in the headers.
 */
const createBody = JSON.parse(
  readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'),
);
const enclaveBody = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as { configuration: { image: { pcr0: string; pcr1: string; pcr2: string } } };

/** The jwt callers, by index in the properties. */
const CALLERS = ['provider', 'admin', 'consumer'] as const;

let stack: LocalStack;
/** The jwt callers' tokens; the iam routes are called by an instance session (not the enclave's parent). */
let tokens: string[];
let instanceCredentials: InstanceCredentials;
let contractId: string;
/** An Active contract whose parties approved the enclave fixture's image, and an enclave under it. */
let activeContractId: string;
let enclaveId: string;

beforeAll(async () => {
  // The outbox is not published: a provisioning workflow started by an accepted random create would change
  // enclaves in the background, between the snapshots a refusal is compared with.
  stack = await startLocalStack({ scheduledJobs: false });
  tokens = await Promise.all(CALLERS.map((who) => stack.issuer.mint(seededSubject(who))));
  instanceCredentials = stack.enclaves.credentials.issue(
    instanceSessionArn(LOCAL_PARENT_ROLE, 'i-0123456789abcdef0'),
  );
  const provider = await ApiClient.as(stack, 'provider');
  contractId = (await provider.post<{ id: string }>('/contracts', createBody)).body.id;
  const parties = await contractParties(stack.deps);
  activeContractId = await parties.activeContract();
  const { pcr0, pcr1, pcr2 } = enclaveBody.configuration.image;
  await parties.measurementSet(activeContractId, { pcr0, pcr1, pcr2 });
  const created = await provider.post<{ id: string }>('/enclaves', {
    ...enclaveBody,
    contractId: activeContractId,
  });
  if (created.status !== 201) throw new Error(`enclave setup failed: ${created.text}`);
  enclaveId = created.body.id;
});
afterAll(async () => stack?.close());

async function snapshot(): Promise<string> {
  // Security refusals (a wrong instance on an iam route) are records by design; nothing else may change.
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT count(*) FROM contracts)::int AS contracts,
    (SELECT coalesce(sum(version), 0) FROM contracts)::int AS versions,
    (SELECT count(*) FROM audit_log WHERE entity_type <> 'security-refusal')::int AS audit,
    (SELECT count(*) FROM outbox)::int AS outbox,
    (SELECT count(*) FROM idempotency_keys)::int AS idempotency,
    (SELECT count(*) FROM identities)::int AS identities,
    (SELECT count(*) FROM identity_keys)::int AS identity_keys,
    (SELECT count(*) FROM totp_credentials)::int AS totp_credentials,
    (SELECT coalesce(sum(last_used_step), 0) FROM totp_credentials)::text AS totp_steps,
    (SELECT count(*) FROM measurement_sets)::int AS measurement_sets,
    (SELECT count(*) FROM enclaves)::int AS enclaves,
    (SELECT coalesce(sum(version), 0) FROM enclaves)::int AS enclave_versions,
    (SELECT count(*) FROM enclave_metrics)::int AS enclave_metrics`);
  return JSON.stringify(rows[0]);
}

interface Sent {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown> | null;
}

async function send(
  route: RouteDefinition,
  path: string,
  options: { token: string; scheme?: string; body?: string | undefined; headers?: Record<string, string> },
): Promise<Sent> {
  const url = `${stack.url}/api/v1${path}`;
  // fetch cannot send a body with GET; API Gateway would pass one on, so DELETE still gets one.
  const sent = options.body !== undefined && route.method !== 'GET' ? options.body : undefined;
  // The iam routes' requests are signed (SigV4, the instance session's credentials) over what is sent.
  const headers =
    route.auth === 'iam'
      ? await signApiRequest(
          {
            method: route.method,
            url: new URL(url),
            headers: { ...options.headers },
            ...(sent ? { body: sent } : {}),
          },
          instanceCredentials,
          LOCAL_REGION,
        )
      : { ...options.headers, authorization: `${options.scheme ?? 'Bearer'} ${options.token}` };
  const res = await fetch(url, {
    method: route.method,
    headers,
    ...(sent !== undefined ? { body: sent } : {}),
  });
  const text = await res.text();
  let body: Record<string, unknown> | null = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, body };
}

function expectProblem(res: Sent): void {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.body).toMatchObject({
    status: res.status,
    type: expect.any(String),
    detail: expect.any(String),
  });
}

/** A valid body with one random leaf replaced, removed, or an unknown key added. */
function mutated(base: unknown): fc.Arbitrary<unknown> {
  const paths = leafPaths(base, () => true);
  return fc
    .tuple(
      fc.constantFrom(...paths),
      fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.string({ maxLength: 300 })),
      fc.boolean(),
    )
    .map(([path, value, addKey]) => {
      const copy = structuredClone(base) as Record<string, unknown>;
      if (path.length === 0) return value;
      let target: Record<string | number, unknown> = copy;
      for (const key of path.slice(0, -1)) target = target[key] as Record<string | number, unknown>;
      const last = path.at(-1)!;
      if (value === undefined) delete target[last];
      else if (addKey && typeof target === 'object' && !Array.isArray(target))
        target[`x_${String(last)}`] = value;
      else target[last] = value;
      return copy;
    });
}

/** Every path in `value` (the root included) whose value passes `keep`. */
function leafPaths(value: unknown, keep: (v: unknown) => boolean): (string | number)[][] {
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (keep(v)) paths.push(path);
    if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...path, i]);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(value, []);
  return paths;
}

const rawBody = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  mutated(createBody).map((v) => JSON.stringify(v) ?? ''),
  // built when drawn: the enclave body names the contract made in beforeAll
  fc
    .constant(null)
    .chain(() => mutated({ ...enclaveBody, contractId: activeContractId }))
    .map((v) => JSON.stringify(v) ?? ''),
  fc.constantFrom('{"simulation":{"fault":"debug-mode"}}', '{"configuration":{}}', '{"reason":"x"}'),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('{', '{"title":', '[]', 'null', '{"type":"digital"}', '\u0000', '{"reason":""}'),
  fc.constant(JSON.stringify({ ...createBody, description: 'x'.repeat(300 * 1024) })),
);

/** Spellings of one id: the canonical lower case, upper case, and a random mix. */
const caseVariant = (id: () => string) =>
  fc
    .array(fc.boolean(), { minLength: 36, maxLength: 36 })
    .map((upper) => () => [...id()].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

const id = fc.oneof(
  fc.uuid().map((u) => () => u),
  // Not `.` or `..`: a client resolves those dot segments before it sends (RFC 3986 §5.2.4), so the
  // request would target another route (`/enclaves/./metrics` is sent as `/enclaves/metrics`).
  fc
    .string({ minLength: 1, maxLength: 60 })
    .filter((s) => s !== '.' && s !== '..')
    .map((s) => () => encodeURIComponent(s)),
  caseVariant(() => contractId),
  caseVariant(() => enclaveId),
  fc.constantFrom(...Object.values(seeded)).chain((s) => caseVariant(() => s)),
);

/** Content types, with charsets the API must refuse (415) and the spellings of UTF-8 it accepts. */
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json;charset="UTF-8"',
  'application/json; charset=iso-8859-1',
  'application/json; charset=utf-16',
  'application/problem+json; charset=latin1',
  'text/plain',
  'application/problem+json',
  'application/x-www-form-urlencoded',
  '',
] as const;
const NOT_UTF8 = /charset="?(iso-8859-1|utf-16|latin1)/i;

const headers = fc.record(
  {
    'content-type': fc.constantFrom(...CONTENT_TYPES),
    'if-match': fc.oneof(
      fc.constantFrom('"1"', '"2"', '*', 'W/"1"', '', '"999999999999999999999"'),
      fc.string({ maxLength: 40 }),
    ),
    'idempotency-key': fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom('key-1', ' ', 'é')),
  },
  { requiredKeys: [] },
);

/** The authorization scheme is case-insensitive (RFC 9110 §11.1). */
const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR');

/** Cursors no list ever issued. */
const CRAFTED_CURSORS = [
  encodeCursor({ createdAt: '+010000-01-01T00:00:00.000Z', id: seeded.provider }),
  encodeCursor({ createdAt: '0000-01-01T00:00:00.000Z', id: seeded.provider }),
  encodeCursor({ createdAt: '2026-01-01T00:00:00.000Z', id: 'not-an-id' }),
  encodeCursor({ createdAt: '2026-01-01T00:00:00.000Z', id: seeded.provider.toUpperCase(), x: '1' }),
  encodeCursor({ name: 'prov\u0000ider' }),
  encodeCursor({ reportedAt: '2026-13-01T00:00:00.000Z' }),
  Buffer.from('[]').toString('base64url'),
  Buffer.from('{"createdAt":').toString('base64url'),
];
const craftedCursor = fc.oneof(
  fc.constantFrom(...CRAFTED_CURSORS),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '').toString('base64url') || 'e30'),
);

const query = fc.dictionary(
  fc.constantFrom(
    'status',
    'role',
    'counterpartyId',
    'limit',
    'cursor',
    'contractId',
    'entityId',
    'afterSeq',
    'x',
    'limit ',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
  ),
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom(
      'Active',
      'provider',
      '0',
      '-1',
      '101',
      '1e3',
      '0x10',
      '1e2',
      ' 5',
      '+5',
      seeded.consumer,
    ),
    fc.constantFrom(seeded.consumer.toUpperCase(), seeded.provider.toUpperCase()),
    craftedCursor,
  ),
  { maxKeys: 3 },
);

/** The attestation submission has its own suite (its handler belongs to the provisioning workflow). */
const FUZZED = (ROUTES as readonly RouteDefinition[]).filter((r) => r.id !== 'submitAttestation');

const tokenFor = (route: RouteDefinition, who: number) => (route.auth === 'iam' ? '' : tokens[who]!);

function pathOf(route: RouteDefinition, pathId: string): string {
  return route.path
    .replace('/api/v1', '')
    .replace('{id}', pathId)
    .replace('{mid}', pathId)
    .replace('{credentialId}', pathId)
    .replace('{kid}', 'key-1');
}

describe.each(FUZZED.map((r) => [`${r.method} ${r.path}`, r] as const))('%s', (_name, route) => {
  it('never answers 5xx and changes nothing when it refuses', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(2),
        rawBody,
        id,
        headers,
        query,
        scheme,
        async (who, body, pathId, hdrs, q, authScheme) => {
          const qs = new URLSearchParams(q).toString();
          const cleanHeaders = Object.fromEntries(
            Object.entries(hdrs).filter(([, v]) => /^[\x20-\x7e]*$/.test(v)),
          );
          const before = await snapshot();
          const res = await send(route, `${pathOf(route, pathId())}${qs ? `?${qs}` : ''}`, {
            token: tokenFor(route, who),
            scheme: authScheme,
            body,
            headers: cleanHeaders,
          });
          expect(res.status, res.text).toBeLessThan(500);
          // Any case of the scheme is the bearer scheme: never a 401 for a valid token.
          if (route.auth !== 'none') expect(res.status, res.text).not.toBe(401);
          if (res.status >= 400) {
            expectProblem(res);
            expect(await snapshot()).toBe(before);
          }
          // A body the route reads, declared in a charset other than UTF-8, is refused as such.
          const contentType = cleanHeaders['content-type'] ?? '';
          if (
            route.request?.body &&
            body &&
            body.length < 200 * 1024 &&
            /^application\/(problem\+)?json/.test(contentType) &&
            NOT_UTF8.test(contentType)
          ) {
            expect(res.status, res.text).toBe(415);
          }
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) },
    );
  });
});

/** A registration as a browser sends it (its challenge was never issued: refused after the checks fuzzed). */
const passkeyRegistration = new SoftwareAuthenticator({
  origin: 'http://localhost:3000',
  rpId: 'localhost',
}).register('Y2hhbGxlbmdl');

/** A valid body for each route that reads one, whatever else the route will then refuse. */
function validBodies(): Partial<Record<string, unknown>> {
  const reason = { reason: 'a reason a person reads' };
  return {
    createContract: createBody,
    updateContract: { title: createBody.title, description: createBody.description, terms: createBody.terms },
    signContract: { type: 'digital', kid: 'key-1', signature: 'A'.repeat(86) },
    suspendContract: reason,
    resumeContract: reason,
    terminateContract: reason,
    proposeMeasurementSet: {
      pcr0: enclaveBody.configuration.image.pcr0,
      pcr1: enclaveBody.configuration.image.pcr1,
      pcr2: enclaveBody.configuration.image.pcr2,
    },
    approveMeasurementSet: { kid: 'key-1', signature: 'A'.repeat(86) },
    createEnclave: { ...enclaveBody, contractId: activeContractId },
    updateEnclave: { name: 'renamed', configuration: enclaveBody.configuration },
    suspendEnclave: reason,
    resumeEnclave: reason,
    terminateEnclave: reason,
    createIdentity: {
      name: 'someone-new',
      displayName: 'Someone New',
      subject: 'local|someone-new',
      email: 'someone@example.test',
      roles: ['consumer'],
    },
    registerKey: {
      alg: 'EdDSA',
      jwk: { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' },
      kid: 'key-1',
      proof: 'A'.repeat(86),
    },
    rotateKey: {
      alg: 'EdDSA',
      jwk: { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' },
      kid: 'key-2',
      proof: 'A'.repeat(86),
      graceSeconds: 60,
    },
    confirmTotp: { code: '123456' },
    registerPasskey: { response: passkeyRegistration, name: 'laptop' },
    webauthnAuthenticationOptions: { signingPayload: '{"contractId":"c","contentDigest":"d","version":1}' },
    setIdentityStatus: { status: 'suspended', reason: 'review' },
    sendAttestationHeartbeat: { phase: 'booting' },
    reportEnclaveMetrics: {
      reportedAt: '2026-12-01T00:00:00.000Z',
      cpuUtilizationPercent: 5,
      memoryUsedMiB: 10,
    },
  };
}

/** What no text field stores: NUL, lone surrogates, controls, separators, invisible bidi characters. */
const HOSTILE = [
  '\u0000',
  '\ud800',
  '\udc00',
  '\u0007',
  '\u001b',
  '\u2028',
  '\u202e',
  '\u2066',
  '\u200b',
  '\ufeff',
];

const NOWHERE = '00000000-0000-4000-8000-00000000dead';

const BODY_ROUTES = FUZZED.filter((r) => r.request?.body);

describe('a hostile character in any string of a valid body', () => {
  it('covers every route that reads a body', () => {
    expect(BODY_ROUTES.map((r) => r.id).filter((r) => validBodies()[r] === undefined)).toEqual([]);
  });

  it.each(BODY_ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s: a 400 naming that string (or what holds it), and nothing changes',
    async (_name, route) => {
      const base = validBodies()[route.id]!;
      const strings = leafPaths(base, (v) => typeof v === 'string');
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...strings),
          fc.constantFrom(...HOSTILE),
          fc.nat(),
          fc.nat(2),
          async (path, hostile, at, who) => {
            const body = structuredClone(base) as Record<string | number, unknown>;
            let target = body;
            for (const key of path.slice(0, -1)) target = target[key] as Record<string | number, unknown>;
            const last = path.at(-1)!;
            const value = target[last] as string;
            const i = at % (value.length + 1);
            target[last] = `${value.slice(0, i)}${hostile}${value.slice(i)}`;
            const before = await snapshot();
            // An identity's own routes are called on the caller's own identity, so only the body can fail;
            // others on an id that exists nowhere, so a wrongly accepted body changes nothing shared.
            const pathId = route.path.includes('/identities/{id}') ? seeded[CALLERS[who]!] : NOWHERE;
            const res = await send(route, pathOf(route, pathId), {
              token: tokenFor(route, who),
              body: JSON.stringify(body),
              headers: { 'content-type': 'application/json' },
            });
            expect(res.status, res.text).toBe(400);
            expectProblem(res);
            expect(res.body!.type).toBe('https://problems.enclave-contracts.dev/validation-failed');
            // The field named is the string itself or what holds it, with or without the `body.` prefix.
            const field = path.join('.');
            const named = (res.body!.errors as { field: string }[]).map((e) =>
              e.field.replace(/^body\.?/, ''),
            );
            expect(
              named.some((n) => n === field || (n !== '' && field.startsWith(`${n}.`))),
              `${field} in ${JSON.stringify(named)}`,
            ).toBe(true);
            expect(await snapshot()).toBe(before);
          },
        ),
        { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) / 3 },
      );
    },
  );
});

const LIST_ROUTES = FUZZED.filter(
  (r) =>
    r.method === 'GET' &&
    r.request?.query &&
    'cursor' in ((z.built(r.request.query) as unknown as { shape?: Record<string, unknown> }).shape ?? {}),
);

describe('a crafted cursor on every list', () => {
  it('covers the four lists', () => {
    expect(LIST_ROUTES.map((r) => r.id).sort()).toEqual(
      ['listContracts', 'listEnclaveMetrics', 'listEnclaves', 'listIdentities'].sort(),
    );
  });

  it.each(LIST_ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s: a 400 on query.cursor',
    async (_name, route) => {
      await fc.assert(
        fc.asyncProperty(craftedCursor, fc.nat(2), async (cursor, who) => {
          const res = await send(route, `${pathOf(route, enclaveId)}?cursor=${encodeURIComponent(cursor)}`, {
            token: tokenFor(route, who),
          });
          expect(res.status, res.text).toBe(400);
          expectProblem(res);
          expect(res.body!.errors).toEqual([{ field: 'query.cursor', message: expect.any(String) }]);
        }),
        { numRuns: 40 },
      );
    },
  );
});

describe('an id in any case', () => {
  const READS = FUZZED.filter((r) => r.method === 'GET' && r.path.includes('{id}') && r.auth === 'jwt');
  it.each(READS.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s reads exactly what the canonical id reads',
    async (_name, route) => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(
            () => contractId,
            () => enclaveId,
            () => seeded.provider,
            () => activeContractId,
          ),
          fc.array(fc.boolean(), { minLength: 36, maxLength: 36 }),
          fc.nat(2),
          async (idOf, upper, who) => {
            const canonical = idOf();
            const variant = [...canonical].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
            const [a, b] = await Promise.all(
              [canonical, variant].map((x) => send(route, pathOf(route, x), { token: tokenFor(route, who) })),
            );
            expect(b!.status, b!.text).toBe(a!.status);
            if (a!.status < 400) expect(b!.body).toEqual(a!.body);
            else expect(b!.body!.type).toBe(a!.body!.type);
            // Whatever the spelling asked, the reply only ever names the canonical id.
            if (variant !== canonical) expect(b!.text).not.toContain(variant);
          },
        ),
        { numRuns: 30 },
      );
    },
  );
});
