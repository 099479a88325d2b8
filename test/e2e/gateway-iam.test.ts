import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContractsStack } from '../../infra/contracts-stack.ts';
import {
  LOCAL_ARTIFACTS,
  LOCAL_PARENT_ROLE,
  type LocalEnclaves,
  startLocalEnclaves,
} from '../../infra/local/local-enclaves.ts';
import type { LocalStack } from '../../infra/local/local-stack.ts';
import { LOCAL_REGION } from '../../infra/local/services/local-account.ts';
import { signApiRequest } from '../../infra/parent-agent/agent-api.ts';
import type { InstanceCredentials } from '../../infra/parent-agent/imds.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import type { ApiClient } from '../support/api-client.ts';
import { type Enclave, provisioningHarness, startProvisioningStack } from '../support/provisioning.ts';

/**
 * The local gateway's IAM authorizer on the parents' routes, as API Gateway's `AWS_IAM` authorizer acts
 * before any function runs: the SigV4 signature recomputed from what arrived with the signer's secret (the
 * local STS stand-in's temporary credentials), then `execute-api:Invoke` on the method and path decided by
 * the synthesized stack's policies of the signer's role. Each refusal is API Gateway's 403 with its message
 * and `x-amzn-errortype`; the request never reaches the function, and nothing changes.
 */

let stack: LocalStack;
let provider: ApiClient;
let contractId: string;
let enclave: Enclave;

beforeAll(async () => {
  ({ stack, provider, contractId } = await startProvisioningStack({
    enclaves: { bootDelayMs: 20, attestationTimeoutMs: 5_000, metricsIntervalMs: 200 },
  }));
  const id = await create();
  enclave = await settle(id, ['Running', 'Failed']);
  expect(enclave.status, enclave.statusReason ?? '').toBe('Running');
}, 120_000);
afterAll(async () => stack?.close());

const { create, settle, attestAsParent, asSession } = provisioningHarness(() => ({
  stack,
  provider,
  contractId,
}));

const parentSession = () => instanceSessionArn(LOCAL_PARENT_ROLE, enclave.instanceId!);
const heartbeatUrl = () => `${stack.url}/api/v1/enclaves/${enclave.id}/attestation/heartbeat`;
const BODY = JSON.stringify({ phase: 'attesting' });

/** A heartbeat sent with these headers (what a caller signed, or tampered with). */
async function send(headers: Record<string, string>, body = BODY, url = heartbeatUrl()) {
  const res = await fetch(url, { method: 'POST', headers, body });
  const answer = (await res.json()) as { message?: string; type?: string };
  return { status: res.status, errorType: res.headers.get('x-amzn-errortype'), body: answer };
}

async function signed(credentials: InstanceCredentials, body = BODY, url = heartbeatUrl()) {
  return signApiRequest(
    { method: 'POST', url: new URL(url), headers: { 'content-type': 'application/json' }, body },
    credentials,
    LOCAL_REGION,
  );
}

async function versionOf(id: string): Promise<number> {
  return (await provider.get<Enclave>(`/enclaves/${id}`)).body.version;
}

describe("the IAM authorizer of the parents' routes", () => {
  it('lets the real agent through: the enclave was provisioned by requests it signed', async () => {
    const lines = stack.enclaves.parents.logsOf(enclave.instanceId!).map((l) => l.message);
    expect(lines).toContain('document accepted: the platform verifies it');
    const run = stack.enclaves.parents.runs.find((r) => r.instanceId === enclave.instanceId);
    expect(run?.exit).toBeUndefined(); // still running: its instance runs
  });

  it("the parent's agent reports its enclave's runtime metrics, read inside the enclave, through it", async () => {
    const deadline = Date.now() + 10_000;
    let items: { cpuUtilizationPercent: number; memoryUsedMiB: number; reportedAt: string }[] = [];
    while (items.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      items = (await provider.get<{ items: typeof items }>(`/enclaves/${enclave.id}/metrics`)).body.items;
    }
    expect(items.length).toBeGreaterThanOrEqual(2);
    for (const sample of items) {
      expect(sample.cpuUtilizationPercent).toBeGreaterThanOrEqual(0);
      expect(sample.memoryUsedMiB).toBeGreaterThan(0);
    }
    const latest = (await provider.get<Enclave>(`/enclaves/${enclave.id}`)).body.metrics as {
      reportedAt: string;
    };
    expect(latest.reportedAt).toBe(items[0]!.reportedAt);
  });

  it("a signature verified for the parent's session reaches the function, which names the instance", async () => {
    const credentials = stack.enclaves.credentials.issue(parentSession());
    const answer = await send(await signed(credentials));
    // The function answered (problem+json): the wait is over for a Running enclave.
    expect(answer.status).toBe(409);
    expect(answer.errorType).toBeNull();
    expect(answer.body.type).toMatch(/attestation-not-awaited$/);
  });

  it('refuses a request without a signature, or with a bearer token, as API Gateway does', async () => {
    const before = await versionOf(enclave.id);
    expect(await send({ 'content-type': 'application/json' })).toEqual({
      status: 403,
      errorType: 'MissingAuthenticationTokenException',
      body: { message: 'Missing Authentication Token' },
    });
    const token = await stack.issuer.mint('local|provider');
    const bearer = await send({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
    expect(bearer.status).toBe(403);
    expect(bearer.errorType).toBe('IncompleteSignatureException');
    expect(await versionOf(enclave.id)).toBe(before);
  });

  it('refuses a wrong secret, a body changed after signing, an unknown or expired key, and a missing token', async () => {
    const credentials = stack.enclaves.credentials.issue(parentSession());
    const mismatch = {
      status: 403,
      errorType: 'InvalidSignatureException',
      body: { message: expect.stringMatching(/^The request signature we calculated does not match/) },
    };
    expect(await send(await signed({ ...credentials, secretAccessKey: 'not-the-secret' }))).toEqual(mismatch);
    expect(await send(await signed(credentials), JSON.stringify({ phase: 'booting' }))).toEqual(mismatch);
    const invalid = {
      status: 403,
      errorType: 'AccessDeniedException',
      body: { message: 'The security token included in the request is invalid.' },
    };
    expect(await send(await signed({ ...credentials, accessKeyId: 'ASIAUNKNOWNKEY000000' }))).toEqual(
      invalid,
    );
    const headers = await signed(credentials);
    delete headers['x-amz-security-token'];
    expect(await send(headers)).toEqual(invalid);
    stack.enclaves.credentials.revoke(credentials.accessKeyId);
    expect(await send(await signed(credentials))).toEqual(invalid);
  });

  it('refuses a captured request replayed after the 5-minute window, and a replay within it changes nothing', async () => {
    const credentials = stack.enclaves.credentials.issue(parentSession());
    // A request signed six minutes ago (as captured then), sent now.
    const url = new URL(heartbeatUrl());
    const stale = await new SignatureV4({
      service: 'execute-api',
      region: LOCAL_REGION,
      credentials,
      sha256: Sha256,
    }).sign(
      new HttpRequest({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        port: Number(url.port),
        path: url.pathname,
        headers: { host: url.host, 'content-type': 'application/json' },
        body: BODY,
      }),
      { signingDate: new Date(Date.now() - 6 * 60_000) },
    );
    const { host: _host, ...headers } = stale.headers;
    const answer = await send(headers);
    expect(answer).toMatchObject({ status: 403, errorType: 'InvalidSignatureException' });
    expect(answer.body.message).toMatch(
      /^Signature expired: \d{8}T\d{6}Z is now earlier than the 5-minute window/,
    );

    // Within the window a signature verifies again (as in AWS): what stops a replayed document is the
    // platform's nonce, consumed by the first verification.
    const document = Buffer.from(await attestAsParent(enclave.id)).toString('base64');
    const body = JSON.stringify({ document });
    const attestation = `${stack.url}/api/v1/enclaves/${enclave.id}/attestation`;
    const captured = await signed(credentials, body, attestation);
    const before = await versionOf(enclave.id);
    const first = await send(captured, body, attestation);
    const replay = await send(captured, body, attestation);
    for (const res of [first, replay]) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.errorType).toBeNull(); // past the authorizer: the function refused it
    }
    expect(await versionOf(enclave.id)).toBe(before);
  });

  it("another instance's credentials pass the authorizer but not the function: they name another caller", async () => {
    const other = asSession(instanceSessionArn(LOCAL_PARENT_ROLE, 'i-0fedcba9876543210'));
    const res = await other.post(`/enclaves/${enclave.id}/attestation/heartbeat`, { phase: 'attesting' });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('refuses a role without execute-api:Invoke on the route, naming the session and the resource', async () => {
    const stranger = stack.enclaves.credentials.issue(
      instanceSessionArn('SomeOtherRole', enclave.instanceId!),
    );
    const answer = await send(await signed(stranger));
    expect(answer.status).toBe(403);
    expect(answer.errorType).toBe('AccessDeniedException');
    expect(answer.body.message).toBe(
      `User: ${instanceSessionArn('SomeOtherRole', enclave.instanceId!)} is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:eu-central-1:000000000000:local0api0/$default/POST/api/v1/enclaves/${enclave.id}/attestation/heartbeat`,
    );
  });

  it('verifies query parameters named like Object.prototype members (constructor, toString)', async () => {
    const credentials = stack.enclaves.credentials.issue(parentSession());
    const url = `${heartbeatUrl()}?constructor=1&toString=2`;
    const answer = await send(await signed(credentials, BODY, url), BODY, url);
    // Past the authorizer: the function refuses the query it does not take.
    expect(answer.errorType).toBeNull();
    expect(answer.status).toBe(400);
  });
});

describe("the parents' role grants, evaluated from the synthesized stack", () => {
  /**
   * The parents' role without its grants of `actions`, and denying them outright (a policy needs one
   * statement, and the explicit deny is the other wording AWS has).
   */
  const withoutParentGrants = (actions: string[]) => (contracts: ContractsStack) => {
    const role = contracts.enclaveWorkflow.parents.role;
    const policy = role.node.findChild('DefaultPolicy') as iam.Policy;
    const cfn = policy.node.defaultChild as iam.CfnPolicy;
    const document = contracts.resolve(cfn.policyDocument) as { Statement: { Action: string | string[] }[] };
    const kept = document.Statement.filter((s) => ![s.Action].flat().some((a) => actions.includes(a)));
    if (kept.length !== document.Statement.length - actions.length)
      throw new Error(`not each of ${actions} found`);
    cfn.addPropertyOverride('PolicyDocument.Statement', [
      ...kept,
      { Effect: 'Deny', Action: actions, Resource: '*' },
    ]);
  };
  let bare: LocalEnclaves;

  beforeAll(async () => {
    bare = await startLocalEnclaves({
      iam: { edit: withoutParentGrants(['execute-api:Invoke', 's3:GetObject']) },
    });
  }, 120_000);
  afterAll(async () => bare?.close());

  it('with its grants the parent may invoke its routes and read the default image; without them it may not', async () => {
    const session = instanceSessionArn(LOCAL_PARENT_ROLE, 'i-0123456789abcdef0');
    const path = '/api/v1/enclaves/6f1c1b1e-7a51-4c55-9c0e-1a2b3c4d5e6f/attestation';
    expect(await stack.enclaves.gatewayIam.authorizeInvoke(session, 'POST', path)).toBeUndefined();
    expect(await bare.gatewayIam.authorizeInvoke(session, 'POST', path)).toMatch(
      /^User: arn:aws:sts::000000000000:assumed-role\/EnclaveParentRole\/i-0123456789abcdef0 is not authorized to perform: execute-api:Invoke on resource: \S+ with an explicit deny$/,
    );
    // Not every route: the grant names the iam routes only.
    expect(await stack.enclaves.gatewayIam.authorizeInvoke(session, 'GET', '/api/v1/contracts')).toMatch(
      /not authorized to perform: execute-api:Invoke/,
    );

    const get = async (enclaves: LocalEnclaves) => {
      const credentials = enclaves.credentials.issue(session);
      const url = new URL(`${enclaves.s3.url}/${LOCAL_ARTIFACTS.bucket}/${LOCAL_ARTIFACTS.key}`);
      const signer = new SignatureV4({
        service: 's3',
        region: LOCAL_REGION,
        credentials,
        sha256: Sha256,
        uriEscapePath: false,
      });
      const request = await signer.sign(
        new HttpRequest({
          method: 'GET',
          protocol: url.protocol,
          hostname: url.hostname,
          port: Number(url.port),
          path: url.pathname,
          headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
        }),
      );
      const { host: _host, ...headers } = request.headers;
      const res = await fetch(url, { headers });
      return { status: res.status, text: await res.text() };
    };
    expect((await get(stack.enclaves)).status).toBe(200);
    const denied = await get(bare);
    expect(denied.status).toBe(403);
    expect(denied.text).toContain('<Code>AccessDenied</Code>');
  });
});
