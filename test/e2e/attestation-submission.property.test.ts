import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PARENT_ROLE } from '../../infra/local/local-enclaves.ts';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { LOCAL_REGION } from '../../infra/local/services/local-account.ts';
import { signApiRequest } from '../../infra/parent-agent/agent-api.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { ApiClient } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';
import { OpenApiConformance } from '../support/openapi-conformance.ts';

/**
 * Attestation submissions (the parent agent's route, authenticated as an instance session) with random
 * and malformed bodies, enclave ids, callers and tokens: never a 5xx, every refusal as the OpenAPI document
 * declares it (problem+json, or the IAM authorizer's own 403), and
 * nothing but refusal audit records written (the enclave, its chain, the outbox and the waits untouched).
 */
const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as Record<string, unknown> & { configuration: { image: { pcr0: string; pcr1: string; pcr2: string } } };

let stack: LocalStack;
let enclaveId: string;
let running: string;
let instanceId: string;

beforeAll(async () => {
  stack = await startLocalStack({
    enclaves: { attestationTimeoutMs: 60_000, attestationHeartbeatMs: 60_000, bootDelayMs: 20 },
  });
  const parties = await contractParties(stack.deps);
  const contractId = await parties.activeContract();
  const { pcr0, pcr1, pcr2 } = FIXTURE.configuration.image;
  await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
  const provider = await ApiClient.as(stack, 'provider');
  // One enclave the workflow is waiting for (its agent never calls back), one Running.
  const waiting = await provider.post<{ id: string }>('/enclaves', {
    ...FIXTURE,
    contractId,
    simulation: { fault: 'no-callback' },
  });
  enclaveId = waiting.body.id;
  running = (await provider.post<{ id: string }>('/enclaves', { ...FIXTURE, contractId })).body.id;
  const deadline = Date.now() + 15_000;
  for (;;) {
    await stack.publishEvents();
    const instance = stack.enclaves.ec2
      .inventory()
      .find((i) => i.tags['enclave-contracts:enclave-id'] === enclaveId);
    const other = await provider.get<{ status: string }>(`/enclaves/${running}`);
    if (instance && other.body.status === 'Running') {
      instanceId = instance.instanceId;
      break;
    }
    if (Date.now() > deadline) throw new Error('setup did not settle');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
});
afterAll(async () => stack?.close());

async function snapshot(): Promise<string> {
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT coalesce(sum(version), 0) FROM enclaves)::int AS versions,
    (SELECT count(*) FROM audit_log WHERE entity_type <> 'security-refusal')::int AS audit,
    (SELECT count(*) FROM outbox)::int AS outbox`);
  return JSON.stringify(rows[0]);
}

const document = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.base64String({ maxLength: 400 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64')),
  fc.constant('A'.repeat(87_388)),
  fc.constant(Buffer.alloc(70 * 1024, 1).toString('base64')),
);
const body = fc.oneof(
  document.map((d) => JSON.stringify({ document: d })),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  document.map((d) => JSON.stringify({ document: d, extra: 1 })),
  fc.constantFrom('', '{', 'null', '[]', '{"document":null}', '{"document":5}'),
  fc.constant(JSON.stringify({ document: 'A'.repeat(300 * 1024) })),
);
const target = fc.oneof(
  fc.constant(() => enclaveId),
  fc.constant(() => running),
  fc.uuid().map((u) => () => u),
  fc.string({ maxLength: 40 }).map((s) => () => encodeURIComponent(s) || 'x'),
);
/** How a request is authenticated: the headers to send it with. */
type Authenticate = (url: string, body: string) => Promise<Record<string, string>>;
/** Signed with SigV4 as the role session `callerArn` (temporary credentials from the local STS). */
const signedAs =
  (callerArn: () => string): Authenticate =>
  (url, body) =>
    signApiRequest(
      { method: 'POST', url: new URL(url), headers: { 'content-type': 'application/json' }, body },
      stack.enclaves.credentials.issue(callerArn()),
      LOCAL_REGION,
    );
const bearer =
  (token: () => Promise<string> | string): Authenticate =>
  async () => ({ authorization: `Bearer ${await token()}`, 'content-type': 'application/json' });
const caller = fc.oneof(
  fc.constant(signedAs(() => instanceSessionArn(LOCAL_PARENT_ROLE, instanceId))),
  fc.constant(signedAs(() => instanceSessionArn(LOCAL_PARENT_ROLE, 'i-0fedcba9876543210'))),
  fc.constant(signedAs(() => instanceSessionArn('SomeOtherRole', instanceId))),
  fc.constant(signedAs(() => `arn:aws:iam::000000000000:user/${instanceId}`)),
  // A signature over another body: the gateway recomputes it from what arrived.
  fc.constant<Authenticate>((url, body) =>
    signedAs(() => instanceSessionArn(LOCAL_PARENT_ROLE, instanceId))(url, `${body} `),
  ),
  fc.constant(bearer(() => stack.issuer.mint('local|provider'))),
  fc.constant(bearer(() => 'not-a-token')),
);

describe('POST /enclaves/{id}/attestation with bad input', () => {
  it('never answers 5xx, always as the OpenAPI document says, and changes nothing but refusal records', async () => {
    const conformance = new OpenApiConformance();
    const before = await snapshot();
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, target, caller, async (raw, to, who) => {
        const url = `${stack.url}/api/v1/enclaves/${to()}/attestation`;
        const res = await fetch(url, { method: 'POST', headers: await who(url, raw), body: raw });
        expect(res.status, await res.clone().text()).toBeLessThan(500);
        if (res.status === 202) {
          accepted++;
          return;
        }
        expect(res.status).toBeGreaterThanOrEqual(400);
        const text = await res.text();
        const path = `/api/v1/enclaves/${to()}/attestation`;
        const verdict = conformance.check({
          method: 'POST',
          path,
          status: res.status,
          headers: res.headers,
          body: text,
        });
        expect(verdict.mismatches).toEqual([]);
        // A refusal is problem+json, except the IAM authorizer's own 403 (`{"message": …}`).
        if (res.headers.get('content-type') === 'application/json') {
          expect(res.status).toBe(403);
          expect(res.headers.get('x-amzn-errortype')).toBeTruthy();
          return;
        }
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = JSON.parse(text) as { status: number; title: string };
        expect(problem.status).toBe(res.status);
        expect(problem.title).toBeTruthy();
      }),
      { numRuns: 150 },
    );
    // Nothing random is structurally an attestation document: every request was refused, and only
    // refusal records were written (the enclaves, their chains, the outbox and the wait are untouched).
    expect(accepted).toBe(0);
    expect(await snapshot()).toBe(before);
    const provider = await ApiClient.as(stack, 'provider');
    expect((await provider.get<{ status: string }>(`/enclaves/${enclaveId}`)).body.status).toBe(
      'Initializing',
    );
    expect((await provider.get<{ status: string }>(`/enclaves/${running}`)).body.status).toBe('Running');
  }, 120_000);
});
