/**
 * `npm run bench:provisioning`: how long the local stack takes from `POST /enclaves` to a `Running` enclave
 * with a verified attestation, through the rendered state machine, and what of that is the workflow's own
 * work rather than the simulated boot:
 * - sequential: one enclave at a time, N times;
 * - concurrent: C enclaves created at once;
 * - floor: the simulated parent's boot delay, one enclave start (`nitro-cli run-enclave`: the reference
 *   responder's process, ready to answer) and one verification of a simulator document (the work no
 *   implementation of the flow could skip). What the parent's agent adds on top (IMDS, the image from S3,
 *   a heartbeat per phase, the signed submission) is the real agent's work, as on a parent.
 * Events are published right after each create (in AWS the outbox publisher's schedule adds its period).
 * The last line is machine-readable: `seq-p50-ms=<ms> seq-p95-ms=<ms> conc-p50-ms=<ms> p50/floor=<r>`.
 * Progress goes to stderr (a line per phase), the summary alone to stdout (see `bench-output.ts`).
 *
 * Environment: BENCH_SEQUENTIAL (enclaves provisioned one after the other, default 20), BENCH_CONCURRENT
 * (enclaves created at once, default 8).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startLocalStack } from '../../infra/local/local-stack.ts';
import { NitroCliSimulator } from '../../infra/local/services/nitro-enclaves/nitro-cli-simulator.ts';
import { LOCAL_DEFAULT_IMAGE } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import { ApiClient } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';
import { progress, summary } from './bench-output.ts';
import { fmt, percentile } from './statistics.ts';

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 20);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 8);
const BOOT_DELAY_MS = 50;
const step = (line: string) => progress('bench:provisioning', line);

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as Record<string, unknown> & { configuration: { image: { pcr0: string; pcr1: string; pcr2: string } } };

step(`the local stack (simulated boot ${BOOT_DELAY_MS} ms)`);
const stack = await startLocalStack({ scheduledJobs: false, enclaves: { bootDelayMs: BOOT_DELAY_MS } });
try {
  step('an Active contract with an Approved measurement set');
  const parties = await contractParties(stack.deps);
  const contractId = await parties.activeContract();
  const { pcr0, pcr1, pcr2 } = fixture.configuration.image;
  await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
  const provider = await ApiClient.as(stack, 'provider');

  /** Create → Running, in ms. */
  const provision = async (): Promise<number> => {
    const started = performance.now();
    const { body, status } = await provider.post<{ id: string }>('/enclaves', { ...fixture, contractId });
    if (status !== 201) throw new Error(`create answered ${status}`);
    await stack.publishEvents();
    for (;;) {
      const { body: enclave } = await provider.get<{ status: string; statusReason: string }>(
        `/enclaves/${body.id}`,
      );
      if (enclave.status === 'Running') return performance.now() - started;
      if (enclave.status === 'Failed') throw new Error(`enclave failed: ${enclave.statusReason}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  step('warm-up: one enclave');
  await provision(); // module loading, prepared statements, JIT
  step(`sequential: ${SEQUENTIAL} enclaves, one after the other`);
  const sequential: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) sequential.push(await provision());
  step(`concurrent: ${CONCURRENT} enclaves at once`);
  const concurrent = await Promise.all(Array.from({ length: CONCURRENT }, () => provision()));
  step('floor: 20 uncached verifications of a simulator document');

  // The floor: the boot delay plus verifying one simulator document (chain + signature, uncached).
  const nonce = new Uint8Array(32).fill(7);
  const document = await stack.enclaves.nitro.attest({
    instanceId: 'i-0123456789abcdef0',
    image: LOCAL_DEFAULT_IMAGE,
    nonce,
  });
  const policy = buildPolicy({
    measurements: [{ 0: pcr0, 1: pcr1, 2: pcr2 }],
    requireFreshness: true,
    expectedNonce: nonce,
    maxAgeMs: 60_000,
  });
  const verifications: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const verdict = verifyAttestation(document, policy, {
      trustedRoots: [stack.enclaves.nitro.rootPem],
      useCache: false,
    });
    verifications.push(performance.now() - t);
    if (!verdict.ok) throw new Error(`floor document refused: ${verdict.code}`);
  }
  // And starting an enclave: the reference responder's process, ready to answer (its NSM the simulator).
  step('floor: 10 enclave starts (nitro-cli run-enclave: the responder process)');
  const eif = join(mkdtempSync(join(tmpdir(), 'bench-eif-')), 'enclave.eif');
  writeFileSync(eif, LOCAL_DEFAULT_IMAGE.eif as string);
  const starts: number[] = [];
  for (let i = 0; i < 10; i++) {
    const cli = new NitroCliSimulator({ simulator: stack.enclaves.nitro, instanceId: 'i-0123456789abcdef0' });
    const t = performance.now();
    const run = await cli.run(
      'nitro-cli',
      ['run-enclave', '--eif-path', eif, '--cpu-count', '2', '--memory', '512', '--enclave-cid', '16'],
      30_000,
    );
    starts.push(performance.now() - t);
    await cli.terminate();
    if (run.code !== 0) throw new Error(`the floor's enclave did not start: ${run.stderr}`);
  }
  rmSync(dirname(eif), { recursive: true, force: true });
  const floor = BOOT_DELAY_MS + percentile(verifications, 50) + percentile(starts, 50);

  const seqP50 = percentile(sequential, 50);
  summary(`sequential (${SEQUENTIAL}): p50 ${fmt(seqP50)} ms, p95 ${fmt(percentile(sequential, 95))} ms`);
  summary(
    `concurrent (${CONCURRENT}): p50 ${fmt(percentile(concurrent, 50))} ms, max ${fmt(Math.max(...concurrent))} ms`,
  );
  summary(
    `floor: boot ${BOOT_DELAY_MS} ms + enclave start ${fmt(percentile(starts, 50))} ms + verification ${fmt(percentile(verifications, 50))} ms`,
  );
  summary(
    `seq-p50-ms=${fmt(seqP50)} seq-p95-ms=${fmt(percentile(sequential, 95))} conc-p50-ms=${fmt(percentile(concurrent, 50))} p50/floor=${(seqP50 / floor).toFixed(2)}`,
  );
} finally {
  await stack.close();
}
