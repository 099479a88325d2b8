/**
 * `npm run enclave -- decrypt` against a running local stack (its data folder's console): the command runs
 * the workload's key release of a Running enclave (the reference responder's `decrypt`, the Python an
 * enclave image carries), attesting through the enclave's NSM with a key pair of its own and asking KMS with
 * the parent's credentials. It prints the data key and exits 0 only when KMS releases it;
 * a KMS refusal (another contract's data key) or an enclave that no longer runs is exit 1 with the reason;
 * a usage error is exit 2.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_DEFAULT_IMAGE } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { projectPath } from '../../infra/project-paths.ts';
import type { ContractKeyView, WrappedDataKey } from '../../shared/keys/contract-keys.ts';
import { contractParties } from '../support/contract-parties.ts';
import { attestedDecrypt, parentKmsClient } from '../support/local-kms.ts';
import {
  type ProvisioningContext,
  provisioningHarness,
  startProvisioningStack,
} from '../support/provisioning.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'enclave-cli-'));
let context: ProvisioningContext;

beforeAll(async () => {
  context = await startProvisioningStack({
    dataDir,
    enclaves: { bootDelayMs: 20, attestationTimeoutMs: 15_000, attestationHeartbeatMs: 15_000 },
  });
});
afterAll(async () => {
  await context?.stack.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const { create, settle, instancesOf } = provisioningHarness(() => context);

/** Runs `npm run enclave -- <args>` with the stack's data folder; its exit code and output. */
function enclaveCommand(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', projectPath('infra/local/enclave-cli.ts'), ...args],
      {
        env: { ...process.env, LOCAL_DATA_DIR: dataDir },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Publishes events until `contractId`'s key admits `enclaves` enclaves; the key. */
async function keyAdmitting(contractId: string, enclaves: number): Promise<ContractKeyView> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await context.stack.publishEvents();
    const res = await context.provider.get<ContractKeyView>(`/contracts/${contractId}/key`);
    if (res.status === 200 && res.body.admits.enclaves.length === enclaves) return res.body;
    if (Date.now() > deadline) throw new Error(`the key never admitted ${enclaves}: ${res.text}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** `POST /contracts/{id}/data-keys`, saved as a provider would save it. */
async function wrappedKeyFile(
  contractId: string,
  name: string,
): Promise<{ path: string; body: WrappedDataKey }> {
  const res = await context.provider.post<WrappedDataKey>(`/contracts/${contractId}/data-keys`, {});
  expect(res.status, res.text).toBe(200);
  const path = join(dataDir, name);
  writeFileSync(path, res.text);
  return { path, body: res.body };
}

describe('npm run enclave -- decrypt', () => {
  it('prints the data key a Running enclave gets from KMS, the same the enclave itself gets', async () => {
    await keyAdmitting(context.contractId, 0);
    const { path, body } = await wrappedKeyFile(context.contractId, 'data-key.json');
    const enclaveId = await create();
    await settle(enclaveId, ['Running', 'Failed'], 30_000);
    await keyAdmitting(context.contractId, 1);

    const run = await enclaveCommand('decrypt', '--enclave', enclaveId, '--in', path);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const key = Buffer.from(run.stdout.trim(), 'base64');
    expect(key).toHaveLength(32);
    // The same data key, released to the same enclave through the test's own attested call.
    const instanceId = instancesOf(enclaveId)[0]!.instanceId;
    const { enclaves } = context.stack;
    const kms = parentKmsClient(enclaves, instanceId);
    const direct = await attestedDecrypt(
      kms,
      enclaves.nitro,
      { instanceId, image: LOCAL_DEFAULT_IMAGE },
      body.ciphertextBlob,
      context.contractId,
    );
    expect(direct.key).toEqual(key);

    // Another contract's data key: KMS refuses this enclave (its key's policy admits none of ours).
    const parties = await contractParties(context.stack.deps);
    const other = await parties.activeContract();
    await keyAdmitting(other, 0);
    const foreign = await wrappedKeyFile(other, 'foreign-key.json');
    const refused = await enclaveCommand('decrypt', '--enclave', enclaveId, '--in', foreign.path);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    // The reference responder's own words: it ran the key release and KMS refused it.
    expect(refused.stderr).toMatch(/^attestation-responder: KMS refused: AccessDeniedException/);

    // Suspended, the enclave has stopped: it has nothing to attest with.
    expect(
      (await context.provider.post(`/enclaves/${enclaveId}/suspend`, { reason: 'maintenance' })).status,
    ).toBe(200);
    await keyAdmitting(context.contractId, 0);
    const deadline = Date.now() + 15_000;
    let stopped = await enclaveCommand('decrypt', '--enclave', enclaveId, '--in', path);
    while (stopped.code === 0 && Date.now() < deadline) {
      await context.stack.publishEvents();
      stopped = await enclaveCommand('decrypt', '--enclave', enclaveId, '--in', path);
    }
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toBe('');
  });

  it('answers a usage error with exit 2', async () => {
    const missing = await enclaveCommand('decrypt', '--enclave', 'not-an-id', '--in', 'x.json');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('usage: npm run --silent enclave -- decrypt');
    expect((await enclaveCommand('encrypt')).code).toBe(2);
  });
});
