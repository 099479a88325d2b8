import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { WORKFLOW_STEPS } from '../../shared/enclaves/provisioning-workflow.ts';
import { defineRoute } from '../../shared/http/api-handler.ts';
import * as routes from '../../shared/http/routes.ts';
import { ROUTES } from '../../shared/http/routes.ts';
import {
  ADAPTERS,
  AdapterUnavailableError,
  adaptersOf,
  bundleDefines,
  restrictTo,
  unavailable,
} from '../../shared/runtime/adapters.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import type { WorkflowPorts } from '../../shared/workflow/workflow-ports.ts';

/** Dependencies whose every adapter is a distinct object, to see which ones a view keeps. */
function fullDependencies(): Dependencies {
  const workflow: WorkflowPorts = {
    nonces: { name: 'nonces' } as never,
    taskTokens: { name: 'taskTokens' } as never,
    callbacks: { name: 'callbacks' } as never,
    instances: { name: 'instances' } as never,
    parentRoleName: 'enclave-parent',
  };
  return {
    db: { name: 'db' } as never,
    signer: { name: 'signer' } as never,
    now: () => new Date(0),
    newId: () => 'id',
    region: 'eu-central-1',
    workflow,
  };
}

describe('adaptersOf', () => {
  it('maps each grant to the adapters its code uses', () => {
    expect(adaptersOf([])).toEqual([]);
    // A database writer rings the doorbell after its writes (shared/events/doorbell.ts).
    expect(adaptersOf(['database'])).toEqual(['database', 'doorbell']);
    expect(adaptersOf(['sign'])).toEqual(['signer']);
    expect(adaptersOf(['rotatePlatformKey'])).toEqual(['platformKeys']);
    expect(adaptersOf(['taskCallback'])).toEqual(['workflowTable', 'taskCallbacks']);
    expect(adaptersOf(['taskHeartbeat'])).toEqual(['workflowTable', 'taskCallbacks']);
    expect(adaptersOf(['workflowTable'])).toEqual(['workflowTable']);
    expect(adaptersOf(['terminateTaggedInstances'])).toEqual(['instances']);
    expect(adaptersOf(['controlInstances'])).toEqual(['instances']);
    // Only the scheduled jobs read the doorbell (with the DynamoDB client).
    expect(adaptersOf(['database', 'watchDoorbell'])).toEqual(['database', 'doorbell', 'doorbellWatch']);
  });

  it('gives no API route the doorbell watch (the DynamoDB client): routes only ring', () => {
    for (const route of ROUTES) expect(adaptersOf(route.grants), route.id).not.toContain('doorbellWatch');
  });

  it('lists each adapter once, in one order, whatever the grants', () => {
    expect(adaptersOf(['rotatePlatformKey', 'database', 'sign', 'database'])).toEqual([
      'database',
      'doorbell',
      'signer',
      'platformKeys',
    ]);
  });

  it('gives no API route the EC2 client, and the health and OpenAPI routes no client at all', () => {
    for (const route of ROUTES) expect(adaptersOf(route.grants), route.id).not.toContain('instances');
    const byId = new Map(ROUTES.map((r) => [r.id, adaptersOf(r.grants)]));
    expect(byId.get('getHealth')).toEqual([]);
    expect(byId.get('getOpenApi')).toEqual([]);
    expect(byId.get('activateContract')).toEqual(['database', 'doorbell', 'signer']);
    // The audit trail and the platform keys read the published keys from the database, not KMS.
    expect(byId.get('getAuditTrail')).toEqual(['database', 'doorbell']);
    expect(byId.get('listPlatformKeys')).toEqual(['database', 'doorbell']);
    expect(byId.get('rotatePlatformKey')).toEqual(['database', 'doorbell', 'platformKeys']);
    expect(byId.get('submitAttestation')).toEqual(['database', 'doorbell', 'workflowTable', 'taskCallbacks']);
  });

  it('gives the EC2 client to the one provisioning step that terminates instances', () => {
    const withInstances = WORKFLOW_STEPS.filter((s) => adaptersOf(s.grants).includes('instances'));
    expect(withInstances.map((s) => s.state)).toEqual(['Compensate']);
  });
});

describe('bundleDefines', () => {
  it('defines every adapter constant, true for the held ones only', () => {
    expect(bundleDefines(['database', 'taskCallbacks'])).toEqual({
      __BUNDLED__: 'true',
      __BUNDLED_DATABASE__: 'true',
      __BUNDLED_DOORBELL__: 'false',
      __BUNDLED_DOORBELL_WATCH__: 'false',
      __BUNDLED_SIGNER__: 'false',
      __BUNDLED_WORKFLOW_TABLE__: 'false',
      __BUNDLED_TASK_CALLBACKS__: 'true',
      __BUNDLED_INSTANCES__: 'false',
      __BUNDLED_PLATFORM_KEYS__: 'false',
      __BUNDLED_SECRETS__: 'false',
      __BUNDLED_CONTRACT_KEYS__: 'false',
    });
    expect(Object.keys(bundleDefines([]))).toHaveLength(ADAPTERS.length + 1);
  });
});

describe('unavailable', () => {
  it('throws on any use, naming the adapter', () => {
    const signer = unavailable<Dependencies['signer']>('signer');
    expect(() => signer.sign(new Uint8Array())).toThrow(AdapterUnavailableError);
    expect(() => signer.sign(new Uint8Array())).toThrow(/not built with the signer adapter/);
    try {
      void (signer as unknown as { anything: unknown }).anything;
      expect.unreachable('reading a property of an unavailable adapter must throw');
    } catch (error) {
      expect(error).toBeInstanceOf(AdapterUnavailableError);
      expect((error as AdapterUnavailableError).adapter).toBe('signer');
    }
  });

  it('is not a thenable, so it can be awaited and returned from an async function', async () => {
    const db = unavailable<object>('database');
    expect((db as { then?: unknown }).then).toBeUndefined();
    await expect((async () => db)()).resolves.toBe(db);
  });
});

describe('restrictTo', () => {
  it('keeps exactly the held adapters and the rest of the dependencies', () => {
    const deps = fullDependencies();
    const view = restrictTo(deps, ['database', 'taskCallbacks']);
    expect(view.db).toBe(deps.db);
    expect(view.workflow?.callbacks).toBe(deps.workflow?.callbacks);
    expect(view.now).toBe(deps.now);
    expect(view.newId).toBe(deps.newId);
    expect(view.region).toBe('eu-central-1');
    expect(view.workflow?.parentRoleName).toBe('enclave-parent');
    expect(() => view.signer.sign(new Uint8Array())).toThrow(/signer adapter/);
    expect(() => view.workflow?.nonces.consume('e', new Uint8Array())).toThrow(/workflowTable adapter/);
    expect(() => view.workflow?.taskTokens.peek('e')).toThrow(/workflowTable adapter/);
    expect(() => view.workflow?.instances.listForEnclave('e')).toThrow(/instances adapter/);
  });

  it('holds every adapter when given all, and the local hooks pass through', () => {
    const deps = { ...fullDependencies(), local: { name: 'local' } as never };
    const view = restrictTo(deps, ADAPTERS);
    expect(view).toEqual(deps);
    expect(view.local).toBe(deps.local);
  });

  it('adds no workflow where there is none', () => {
    const { workflow: _, ...deps } = fullDependencies();
    expect(restrictTo(deps, ADAPTERS).workflow).toBeUndefined();
    expect('workflow' in restrictTo(deps, ADAPTERS)).toBe(false);
  });
});

describe('defineRoute', () => {
  /** GET /api/v1/health as API Gateway hands it to the function (public: no grant, no adapter). */
  const health = {
    version: '2.0',
    routeKey: 'GET /api/v1/health',
    rawPath: '/api/v1/health',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: { requestId: 'request', http: { method: 'GET', path: '/api/v1/health' } },
  } as unknown as APIGatewayProxyEventV2;

  it("hands the implementation only the adapters of the route's grants, whatever was installed", async () => {
    const seen: unknown[] = [];
    const handler = defineRoute(routes.getHealth, fullDependencies(), async (_request, deps) => {
      seen.push(deps.now());
      await deps.db.query('SELECT 1'); // getHealth has no database grant
      return { status: 200, body: { status: 'ok' } };
    });
    const response = await handler(health, {} as Context);
    expect(seen).toEqual([new Date(0)]);
    expect(response.statusCode).toBe(500);
    expect(JSON.parse(response.body ?? '{}')).toMatchObject({ status: 500 });
    expect(response.body).not.toMatch(/adapter/); // the cause is logged, never told to the client
  });

  it('reads the dependencies as they are at each request, not as they were when the route was defined', async () => {
    const deps = { ...fullDependencies(), region: 'eu-central-1' };
    const regions: (string | undefined)[] = [];
    const handler = defineRoute(routes.getHealth, deps, async (_request, view) => {
      regions.push(view.region);
      return { status: 200, body: { status: 'ok' } };
    });
    await handler(health, {} as Context);
    (deps as { region: string }).region = 'eu-west-1';
    await handler(health, {} as Context);
    expect(regions).toEqual(['eu-central-1', 'eu-west-1']);
  });
});
