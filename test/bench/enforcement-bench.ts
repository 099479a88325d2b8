/**
 * `npm run bench:enforcement`: how long suspending a contract takes to stop what runs under it, on the local
 * stack. Each run has N `Running` enclaves (attested through the rendered state machine) under one Active
 * contract; the clock starts when `POST /contracts/{id}/suspend` commits (the `occurred_at` of its
 * `ContractSuspended` outbox row, just before the answer) and stops when every one of them is `Suspended`
 * and its parent instance is `stopped` in the EC2 simulator. Not at the client's receipt of the answer: the
 * client shares the process with the stack, so a publisher round and the enforcement's database work can run
 * before the client reads the answer, which would hide them; from the commit the figure is an upper bound.
 *
 * Nothing is published by hand inside the measured interval: the stack's own outbox publisher, looking every
 * second as a deployed run does, carries the events. Each suspension waits a random part of that second
 * first, so its commit falls anywhere in the publisher's cycle (runs of a steady length would otherwise
 * meet it at the same point every time). Between runs the contract and its enclaves are resumed
 * (re-attested on their stopped parents), with events published at once to keep the setup short; that is
 * outside the measured interval.
 *
 * The phases, from timestamps observed from outside the product code (the bus's subscribers, the
 * `occurred_at` of the outbox rows the writes queue, a wrapper around the EC2 simulator's StopInstances,
 * and the simulator's own state changes), all relative to that commit:
 * - `contract event`: `ContractSuspended` reaches the bus (outbox publisher);
 * - `enclave writes`: the first and last `Suspended` enclave write (enforcement of the contract);
 * - `stop calls`: the first and last StopInstances call for one of the parents (the same enforcement run);
 * - `stopped`: the last parent reaches `stopped`, and everything is done;
 * - `enclave events`: the last `EnclaveSuspended` reaches the bus, after the measured interval: their
 *   enforcement finds the parents stopping or stopped, which the StopInstances count (one per parent, the
 *   events' enforcement included) shows.
 * The last line is machine-readable: `enforcement: n=<N> enclaves p50-ms=<ms> p99-ms=<ms>`.
 * Progress goes to stderr, the summary alone to stdout (see `bench-output.ts`).
 *
 * Environment: BENCH_RUNS (measured runs, default 20), BENCH_ENCLAVES (enclaves per contract, default 20).
 */
import { readFileSync } from 'node:fs';
import { startLocalStack } from '../../infra/local/local-stack.ts';
import type { DomainEvent } from '../../shared/audit/audited-write.ts';
import { sql } from '../../shared/database/database.ts';
import { OUTBOX_PUBLISHER_SCHEDULE } from '../../shared/events/outbox-publisher.ts';
import { ApiClient } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';
import { progress, summary } from './bench-output.ts';
import { fmt, percentile } from './statistics.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const ENCLAVES = Number(process.env.BENCH_ENCLAVES ?? 20);
const BOOT_DELAY_MS = 50;
/** A run that has not converged by then is a failure, not a slow sample. */
const RUN_TIMEOUT_MS = 30_000;
const step = (line: string) => progress('bench:enforcement', line);
/** Wall-clock ms, sub-millisecond: comparable with the database's `occurred_at`. */
const now = () => performance.timeOrigin + performance.now();

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as Record<string, unknown> & { configuration: { image: { pcr0: string; pcr1: string; pcr2: string } } };

/** One measured run: every time in ms after the suspension's commit. */
interface Sample {
  /** When the client had the answer (the in-process client may see it after the enforcement began). */
  answer: number;
  total: number;
  contractEvent: number;
  firstWrite: number;
  lastWrite: number;
  lastEnclaveEvent: number;
  firstStopCall: number;
  lastStopCall: number;
  lastStopped: number;
  stopCalls: number;
}

step(`the local stack (simulated boot ${BOOT_DELAY_MS} ms, the outbox looked at every second as deployed)`);
// Local WaitForAttestation limits that 20 re-attestations at once on a loaded machine cannot miss: the setup
// between runs is not what is measured.
const stack = await startLocalStack({
  enclaves: { bootDelayMs: BOOT_DELAY_MS, attestationTimeoutMs: 60_000, attestationHeartbeatMs: 30_000 },
});
try {
  step(`an Active contract with an Approved measurement set and ${ENCLAVES} enclaves`);
  const parties = await contractParties(stack.deps);
  const contractId = await parties.activeContract();
  const { pcr0, pcr1, pcr2 } = fixture.configuration.image;
  await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
  const provider = await ApiClient.as(stack, 'provider');

  // Observations, from outside the product code.
  let watching: Set<string> | undefined;
  const seen = { contractEvent: Number.NaN, enclaveEvents: [] as number[] };
  stack.bus.subscribe((event: DomainEvent) => {
    const at = now();
    if (event.type === 'ContractSuspended' && event.aggregateId === contractId) seen.contractEvent = at;
    if (event.type === 'EnclaveSuspended' && watching?.has(event.aggregateId)) seen.enclaveEvents.push(at);
  });
  const stopCalls: number[] = [];
  const ec2 = stack.enclaves.ec2;
  const stopInstances = ec2.stopInstances.bind(ec2);
  ec2.stopInstances = (input) => {
    if (watching) stopCalls.push(now());
    return stopInstances(input);
  };

  const enclaveIds: string[] = [];
  const created = await Promise.all(
    Array.from({ length: ENCLAVES }, () =>
      provider.post<{ id: string }>('/enclaves', { ...fixture, contractId }),
    ),
  );
  for (const { status, body } of created) {
    if (status !== 201) throw new Error(`create answered ${status}`);
    enclaveIds.push(body.id);
  }
  let started = performance.now();
  await stack.publishEvents();
  const instanceIds = await allRunning(enclaveIds);
  step(`${ENCLAVES} enclaves Running in ${fmt(performance.now() - started)} ms (created at once)`);

  /** Suspends the contract and measures until everything under it is stopped. */
  const measure = async (): Promise<Sample> => {
    watching = new Set(enclaveIds);
    seen.contractEvent = Number.NaN;
    seen.enclaveEvents = [];
    stopCalls.length = 0;
    const stopped = new Map<string, number>();
    const before = Date.now();
    const waits = instanceIds.map((id) =>
      ec2.waitForState(id, 'stopped', RUN_TIMEOUT_MS).then(() => stopped.set(id, now())),
    );
    await new Promise((resolve) => setTimeout(resolve, Math.random() * OUTBOX_PUBLISHER_SCHEDULE.pollMs));
    const suspended = await provider.post(`/contracts/${contractId}/suspend`, { reason: 'bench' });
    const answered = now();
    if (suspended.status !== 200) throw new Error(`suspend answered ${suspended.status}`);
    await Promise.all(waits);
    // The suspension's commit, and every enclave's write (each precedes its event, and its event the stop).
    const writesOf = async (type: string, ids: readonly string[]) => {
      const { rows } = await stack.deps.db.query<{ at: string | Date }>(
        `SELECT occurred_at AS at FROM outbox WHERE event_type = :type AND occurred_at >= :since
         AND aggregate_id IN (SELECT jsonb_array_elements_text(:ids)::uuid) ORDER BY occurred_at`,
        { type: sql.text(type), since: sql.timestamp(new Date(before - 1)), ids: sql.json(ids) },
      );
      return rows.map((r) => new Date(r.at).getTime());
    };
    const [t0] = await writesOf('ContractSuspended', [contractId]);
    const writes = await writesOf('EnclaveSuspended', enclaveIds);
    if (t0 === undefined || writes.length !== ENCLAVES) {
      throw new Error(`the suspension or ${ENCLAVES - writes.length} enclave writes not seen`);
    }
    const since = (at: number) => at - t0;
    const lastStopped = Math.max(...stopped.values());
    // The enclaves' own events follow (the next publisher round): their enforcement must stop nothing more.
    const deadline = performance.now() + RUN_TIMEOUT_MS;
    while (seen.enclaveEvents.length < ENCLAVES) {
      if (performance.now() > deadline) throw new Error("the enclaves' events were not published");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    await ec2.settled();
    watching = undefined;
    return {
      answer: since(answered),
      total: since(Math.max(lastStopped, writes.at(-1)!)),
      contractEvent: since(seen.contractEvent),
      firstWrite: since(writes[0]!),
      lastWrite: since(writes.at(-1)!),
      lastEnclaveEvent: since(Math.max(...seen.enclaveEvents)),
      firstStopCall: since(Math.min(...stopCalls)),
      lastStopCall: since(Math.max(...stopCalls)),
      lastStopped: since(lastStopped),
      stopCalls: stopCalls.length,
    };
  };

  /** Resumes the contract and its enclaves (re-attested on their stopped parents), until all run again. */
  const resume = async (): Promise<number> => {
    const t = performance.now();
    const contract = await provider.post(`/contracts/${contractId}/resume`, {});
    if (contract.status !== 200) throw new Error(`contract resume answered ${contract.status}`);
    const resumed = await Promise.all(enclaveIds.map((id) => provider.post(`/enclaves/${id}/resume`, {})));
    const refused = resumed.find((r) => r.status !== 200);
    if (refused) throw new Error(`enclave resume answered ${refused.status}: ${refused.text}`);
    await stack.publishEvents();
    const again = await allRunning(enclaveIds);
    if (again.join() !== instanceIds.join()) throw new Error('an enclave resumed on another parent');
    return performance.now() - t;
  };

  step('warm-up: one suspension and resume');
  await measure();
  await resume();
  step(`${RUNS} runs: suspend, measure, resume`);
  const samples: Sample[] = [];
  const resumes: number[] = [];
  started = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const sample = await measure();
    samples.push(sample);
    step(
      `run ${i + 1}: ${fmt(sample.total)} ms (answer ${fmt(sample.answer)}, contract event ${fmt(sample.contractEvent)}, writes ${fmt(sample.firstWrite)}..${fmt(sample.lastWrite)}, stop calls ${fmt(sample.firstStopCall)}..${fmt(sample.lastStopCall)} (${sample.stopCalls}), stopped ..${fmt(sample.lastStopped)}, enclave events ..${fmt(sample.lastEnclaveEvent)})`,
    );
    resumes.push(await resume());
  }
  const totalSeconds = (performance.now() - started) / 1000;

  const col = (pick: (s: Sample) => number) => samples.map(pick);
  const row = (name: string, pick: (s: Sample) => number) =>
    summary(
      `${name.padEnd(34)} p50 ${fmt(percentile(col(pick), 50)).padStart(6)} ms   p99 ${fmt(percentile(col(pick), 99)).padStart(6)} ms`,
    );
  summary(`${RUNS} runs, ${ENCLAVES} enclaves each; times after the suspension's commit:`);
  row('the suspend answer (client)', (s) => s.answer);
  row('ContractSuspended on the bus', (s) => s.contractEvent);
  row('first enclave Suspended (write)', (s) => s.firstWrite);
  row('last enclave Suspended (write)', (s) => s.lastWrite);
  row('first StopInstances call', (s) => s.firstStopCall);
  row('last StopInstances call', (s) => s.lastStopCall);
  row('last parent stopped', (s) => s.lastStopped);
  row('last EnclaveSuspended (follow-up)', (s) => s.lastEnclaveEvent);
  summary(
    `StopInstances calls per run: p50 ${percentile(
      col((s) => s.stopCalls),
      50,
    )}`,
  );
  summary(
    `setup between runs (resume ${ENCLAVES} enclaves): p50 ${fmt(percentile(resumes, 50))} ms; measured runs took ${totalSeconds.toFixed(0)} s`,
  );
  summary(
    `enforcement: n=${ENCLAVES} enclaves p50-ms=${fmt(
      percentile(
        col((s) => s.total),
        50,
      ),
    )} p99-ms=${fmt(
      percentile(
        col((s) => s.total),
        99,
      ),
    )}`,
  );

  /** Waits until every enclave is Running; returns their parents' instance ids. */
  async function allRunning(ids: readonly string[]): Promise<string[]> {
    const deadline = performance.now() + 60_000;
    const instances: string[] = [];
    for (const id of ids) {
      for (;;) {
        const { body } = await provider.get<{ status: string; statusReason: string; instanceId: string }>(
          `/enclaves/${id}`,
        );
        if (body.status === 'Running') {
          instances.push(body.instanceId);
          break;
        }
        if (body.status === 'Failed') throw new Error(`enclave failed: ${body.statusReason}`);
        if (performance.now() > deadline) throw new Error(`enclave ${id} is still ${body.status}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    return instances;
  }
} finally {
  await stack.close();
}
