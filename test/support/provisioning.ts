import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { LOCAL_PARENT_ROLE } from '../../infra/local/local-enclaves.ts';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../infra/local/local-stack.ts';
import { LOCAL_DEFAULT_IMAGE } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { securityRefusalChainId } from '../../shared/audit/security-refusals.ts';
import { sql } from '../../shared/database/database.ts';
import type { EnclaveView, SimulationFault } from '../../shared/domain/enclave.ts';
import { STATES } from '../../shared/enclaves/provisioning-workflow.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { ApiClient } from './api-client.ts';
import { contractParties } from './contract-parties.ts';

/** `test/fixtures/enclave-create.json`: a complete create body (the caller sets `contractId`). */
export const ENCLAVE_FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as {
  configuration: {
    image: { pcr0: string; pcr1: string; pcr2: string };
    resources: { cpuCount: number; memoryMiB: number };
  };
} & Record<string, unknown>;

export type Enclave = EnclaveView & Record<string, unknown>;

/** What the helpers act on; read when called, so a suite can fill it in `beforeAll`. */
export interface ProvisioningContext {
  readonly stack: LocalStack;
  /** A party of `contractId` (creates and reads the enclaves). */
  readonly provider: ApiClient;
  /** An Active contract whose approved measurements are the fixture image's. */
  readonly contractId: string;
}

/**
 * A local stack for provisioning suites: an Active contract whose parties approved the fixture image's
 * measurements, and its provider's client.
 */
export async function startProvisioningStack(options: LocalStackOptions): Promise<ProvisioningContext> {
  const stack = await startLocalStack(options);
  const parties = await contractParties(stack.deps);
  const contractId = await parties.activeContract();
  const { pcr0, pcr1, pcr2 } = ENCLAVE_FIXTURE.configuration.image;
  await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
  return { stack, contractId, provider: await ApiClient.as(stack, 'provider') };
}

/**
 * The local provisioning workflow as the end-to-end suites drive it: create enclaves (optionally with a
 * simulated agent fault), publish the outbox until they settle, read the EC2 simulator's inventory and the
 * executions, call the `iam` routes as a parent instance, and check that no instance is orphaned.
 */
export function provisioningHarness(context: () => ProvisioningContext) {
  const instancesOf = (enclaveId: string) =>
    context()
      .stack.enclaves.ec2.inventory()
      .filter((i) => i.tags[INSTANCE_TAGS.enclaveId] === enclaveId);

  const runsOf = (enclaveId: string) =>
    context()
      .stack.enclaves.runner()
      .executions()
      .filter((e) => e.input.enclaveId === enclaveId);

  /** An API client signing with SigV4 as the role session `callerArn` (another role's, say). */
  const asSession = (callerArn: string): ApiClient => {
    const { stack } = context();
    return ApiClient.signing(stack, stack.enclaves.credentials.issue(callerArn));
  };

  return {
    instancesOf,

    /** The enclave's newest execution. */
    executionOf(enclaveId: string) {
      const runs = runsOf(enclaveId);
      return runs[runs.length - 1]!;
    },

    async create(fault?: SimulationFault): Promise<string> {
      const { provider, contractId } = context();
      const res = await provider.post<Enclave>('/enclaves', {
        ...ENCLAVE_FIXTURE,
        contractId,
        ...(fault ? { simulation: { fault } } : {}),
      });
      expect(res.status, res.text).toBe(201);
      return res.body.id;
    },

    /** Publishes the outbox (the EventBridge rule starts the execution) and polls until one of `statuses`. */
    async settle(enclaveId: string, statuses: readonly string[], timeoutMs = 15_000): Promise<Enclave> {
      const { stack, provider } = context();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await stack.publishEvents();
        const res = await provider.get<Enclave>(`/enclaves/${enclaveId}`);
        if (statuses.includes(res.body.status)) {
          await stack.enclaves.runner().idle();
          await stack.enclaves.ec2.settled();
          return (await provider.get<Enclave>(`/enclaves/${enclaveId}`)).body;
        }
        if (Date.now() > deadline) {
          const runs = runsOf(enclaveId).map(
            (e) => `${e.status} via ${e.path.join(' > ')}${e.error ? ` (${e.error}: ${e.cause})` : ''}`,
          );
          throw new Error(
            `enclave ${enclaveId} stayed ${res.body.status}; executions: ${runs.join('; ') || 'none'}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },

    /**
     * Publishes events until the enclave's execution waits in WaitForAttestation with its task token
     * recorded for the parent (the callback routes would answer `attestation-wait-not-open` before); the
     * parent's id.
     */
    async waitUntilWaiting(enclaveId: string): Promise<string> {
      const { stack } = context();
      const deadline = Date.now() + 10_000;
      for (;;) {
        await stack.publishEvents();
        const instanceId = instancesOf(enclaveId)[0]?.instanceId;
        if (runsOf(enclaveId)[0]?.path.includes(STATES.waitForAttestation) && instanceId) {
          const wait = await stack.deps.workflow!.taskTokens.peek(enclaveId, { instanceId });
          if (typeof wait === 'object') return instanceId;
        }
        if (Date.now() > deadline) throw new Error(`enclave ${enclaveId} never waited for its attestation`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },

    /** Publishes events (the enforcement rule acts on them) until every instance of the enclave is `state`. */
    async settleInstances(enclaveId: string, state: string): Promise<void> {
      const { stack } = context();
      const deadline = Date.now() + 10_000;
      for (;;) {
        await stack.publishEvents();
        await stack.enclaves.ec2.settled();
        const instances = instancesOf(enclaveId);
        if (instances.length > 0 && instances.every((i) => i.state === state)) return;
        if (Date.now() > deadline) {
          throw new Error(
            `instances of ${enclaveId}: ${instances.map((i) => i.state).join(', ')}, not ${state}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },

    /** Every instance that is not terminated belongs to a Running enclave (or a Suspended one, stopped). */
    async assertNoOrphans(): Promise<void> {
      const { stack, provider } = context();
      await stack.enclaves.ec2.settled();
      for (const instance of stack.enclaves.ec2.inventory()) {
        if (instance.state === 'terminated') continue;
        const enclaveId = instance.tags[INSTANCE_TAGS.enclaveId]!;
        const { body } = await provider.get<Enclave>(`/enclaves/${enclaveId}`);
        const allowed =
          body.status === 'Running'
            ? ['pending', 'running']
            : body.status === 'Suspended'
              ? ['stopping', 'stopped']
              : [];
        expect(
          allowed,
          `instance ${instance.instanceId} is ${instance.state} for a ${body.status} enclave`,
        ).toContain(instance.state);
      }
    },

    /** The enclave's security refusal records (wrong instance, duplicate or late callbacks), oldest first. */
    async refusalsOf(enclaveId: string): Promise<{ code: string; action: string }[]> {
      const { rows } = await context().stack.deps.db.query<{ data: { code: string; action: string } }>(
        'SELECT data FROM audit_log WHERE entity_id = :id ORDER BY seq',
        { id: sql.uuid(securityRefusalChainId('enclave', enclaveId)) },
      );
      return rows.map((r) => r.data);
    },

    /**
     * The document the enclave's (first) parent would submit: the simulator's default image, attested with
     * the nonce the workflow tagged the parent with.
     */
    async attestAsParent(enclaveId: string): Promise<Uint8Array> {
      const parent = instancesOf(enclaveId)[0]!;
      const nonce = parent.tags[INSTANCE_TAGS.attestationNonce]!;
      return context().stack.enclaves.nitro.attest({
        instanceId: parent.instanceId,
        image: LOCAL_DEFAULT_IMAGE,
        nonce: new Uint8Array(Buffer.from(nonce, 'base64')),
      });
    },

    /**
     * An API client signing with SigV4 as `instanceId`'s instance-profile session (the `iam` routes' caller),
     * with temporary credentials from the local STS, as IMDS hands them to the instance.
     */
    async asInstance(instanceId: string): Promise<ApiClient> {
      return asSession(instanceSessionArn(LOCAL_PARENT_ROLE, instanceId));
    },

    asSession,
  };
}
