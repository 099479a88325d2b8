import { describeServiceFailure } from './aws-service-failure.ts';
import {
  INSTANCE_TAGS,
  type InstanceControl,
  type InstanceOwner,
  type InstanceStateName,
  type ParentInstance,
} from './workflow-ports.ts';

/**
 * {@link InstanceControl}'s semantics, written once over the three EC2 actions it needs in the SDK's
 * request and response shapes, so the AWS adapter (`ec2-instance-control.ts`, over `EC2Client`) and the
 * local one (`infra/local/services/ec2/simulated-instance-control.ts`, over the EC2 simulator) cannot drift apart.
 * No AWS import here: a bundle pulls in the SDK only through the adapter that uses it.
 */

/** At most this many instance ids per StopInstances/TerminateInstances call (EC2's documented limit). */
export const MAX_INSTANCE_IDS_PER_CALL = 1000;
/**
 * Values per DescribeInstances filter. EC2 refuses too many (`FilterLimitExceeded`); the limit is not
 * documented (200 is what users report), so this stays well under it.
 */
const MAX_FILTER_VALUES = 100;
/** DescribeInstances page size (EC2 allows 5..1000 when filtering). */
const DESCRIBE_PAGE_SIZE = 100;
/**
 * Pages read before giving up: an enclave has one parent instance (a few after lost launch responses),
 * so a listing this long is a runaway, reported rather than acted on partially.
 */
const MAX_DESCRIBE_PAGES = 10;
/** StopInstances attempts while instances change state under us (each after a fresh DescribeInstances). */
const MAX_STOP_ATTEMPTS = 3;
/** The states `listForEnclave` asks for: every state but `terminated`. */
const LIVE_STATES: readonly InstanceStateName[] = [
  'pending',
  'running',
  'stopping',
  'stopped',
  'shutting-down',
];
const STATE_NAMES: ReadonlySet<string> = new Set<InstanceStateName>([...LIVE_STATES, 'terminated']);

/** EC2's throttling codes (it raises them as client faults). */
const EC2_THROTTLING: ReadonlySet<string> = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
]);
const NOT_FOUND = 'InvalidInstanceID.NotFound';
const INCORRECT_STATE = 'IncorrectInstanceState';

/** An EC2 filter as DescribeInstances takes it. */
export interface Ec2Filter {
  Name: string;
  Values: string[];
}

/** The fields of a described instance this module reads. */
export interface DescribedInstance {
  readonly InstanceId?: string | undefined;
  readonly State?: { readonly Name?: string | undefined } | undefined;
  readonly Tags?:
    | readonly { readonly Key?: string | undefined; readonly Value?: string | undefined }[]
    | undefined;
}

/**
 * The EC2 actions instance control is built on, in `@aws-sdk/client-ec2`'s shapes. Errors are thrown as the
 * SDK throws them: `name` is the EC2 error code, with `$fault` and `$metadata.httpStatusCode`.
 */
export interface Ec2InstanceOperations {
  describeInstances(input: { Filters: Ec2Filter[]; MaxResults?: number; NextToken?: string }): Promise<{
    readonly Reservations?:
      | readonly { readonly Instances?: readonly DescribedInstance[] | undefined }[]
      | undefined;
    readonly NextToken?: string | undefined;
  }>;
  stopInstances(input: { InstanceIds: string[] }): Promise<unknown>;
  terminateInstances(input: { InstanceIds: string[] }): Promise<unknown>;
}

/**
 * EC2 itself failed, or refused in a way that is not one of the no-ops the port defines: never shown to
 * clients beyond a 5xx.
 */
export class InstanceControlError extends Error {
  override readonly name = 'InstanceControlError';
  /**
   * Throttled, unavailable, or instances not yet in a state the action accepts (a `pending` instance cannot
   * be stopped): the operation may succeed later (a Lambda retry, a workflow retry).
   */
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}

/**
 * {@link InstanceControl} over {@link Ec2InstanceOperations}:
 * - `listForEnclave`: DescribeInstances filtered on the enclave tag and every state but `terminated`,
 *   paginated and bounded; results are checked again for the exact tag value (defence in depth).
 * - `parentOf`: DescribeInstances filtered on the instance id: its state and the enclave its tag names, or
 *   null when EC2 does not know it (a terminated instance is forgotten after a while).
 * - `stop`: StopInstances, ≤ {@link MAX_INSTANCE_IDS_PER_CALL} ids per call. EC2 refuses the whole call when
 *   one instance cannot be stopped (`IncorrectInstanceState`) or is unknown; the states are then looked up
 *   and the call repeated for the instances still `running`. Instances already stopping, stopped, shutting
 *   down, terminated or gone need nothing; a `pending` one cannot be stopped yet, so after stopping the
 *   others the call fails as transient (the caller retries once it runs).
 * - `terminate`: TerminateInstances, ≤ {@link MAX_INSTANCE_IDS_PER_CALL} ids per call. Terminating a
 *   terminated instance is accepted by EC2; an unknown one (`InvalidInstanceID.NotFound`, also what EC2
 *   answers once a terminated instance is forgotten) fails the whole call, so the batch is then terminated
 *   one id at a time, unknown ones skipped.
 * - Throttling, 5xx and network failures throw {@link InstanceControlError} with `transient: true`; any other
 *   EC2 error throws it with `transient: false`.
 */
export class TaggedInstanceControl implements InstanceControl {
  constructor(private readonly ec2: Ec2InstanceOperations) {}

  async listForEnclave(enclaveId: string): Promise<ParentInstance[]> {
    // EC2 filter values are globs: `*` would match every enclave's instances, so only plain values pass.
    if (enclaveId === '' || enclaveId.length > 256 || /[*?\\]/.test(enclaveId)) {
      throw new TypeError('listForEnclave needs an enclave id of 1..256 characters without * ? or \\');
    }
    const described = await this.describe([
      { Name: `tag:${INSTANCE_TAGS.enclaveId}`, Values: [enclaveId] },
      { Name: 'instance-state-name', Values: [...LIVE_STATES] },
    ]);
    return described
      .filter(
        (instance) =>
          instance.state !== 'terminated' &&
          instance.tags.some((tag) => tag.Key === INSTANCE_TAGS.enclaveId && tag.Value === enclaveId),
      )
      .map(({ instanceId, state }) => ({ instanceId, state }));
  }

  async parentOf(instanceId: string): Promise<InstanceOwner | null> {
    // A filter value is a glob: only an instance id's own shape passes.
    if (!/^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$/.test(instanceId)) {
      throw new TypeError('parentOf needs an EC2 instance id (i- and 8 or 17 hex digits)');
    }
    const [instance] = (await this.describe([{ Name: 'instance-id', Values: [instanceId] }])).filter(
      (i) => i.instanceId === instanceId,
    );
    if (instance === undefined) return null;
    const tag = instance.tags.find((t) => t.Key === INSTANCE_TAGS.enclaveId)?.Value;
    return { instanceId, state: instance.state, enclaveId: tag === undefined || tag === '' ? null : tag };
  }

  async stop(instanceIds: readonly string[]): Promise<void> {
    const pending: string[] = [];
    for (const batch of batches(instanceIds, MAX_INSTANCE_IDS_PER_CALL)) {
      pending.push(...(await this.stopBatch(batch)));
    }
    if (pending.length > 0) {
      throw new InstanceControlError(
        `instances ${pending.join(', ')} are pending and cannot be stopped yet`,
        { transient: true },
      );
    }
  }

  async terminate(instanceIds: readonly string[]): Promise<void> {
    for (const batch of batches(instanceIds, MAX_INSTANCE_IDS_PER_CALL)) {
      try {
        await this.ec2.terminateInstances({ InstanceIds: batch });
      } catch (error) {
        if (code(error) !== NOT_FOUND) throw failure('TerminateInstances', error);
        if (batch.length === 1) continue;
        // Bounded by the batch; only reached when some instance of it is already forgotten by EC2.
        for (const id of batch) {
          try {
            await this.ec2.terminateInstances({ InstanceIds: [id] });
          } catch (single) {
            if (code(single) !== NOT_FOUND) throw failure('TerminateInstances', single);
          }
        }
      }
    }
  }

  /** Stops what can be stopped of `ids`; returns the ids that are still `pending`. */
  private async stopBatch(ids: string[]): Promise<string[]> {
    let toStop = ids;
    let pending: string[] = [];
    for (let attempt = 1; toStop.length > 0; attempt++) {
      try {
        await this.ec2.stopInstances({ InstanceIds: toStop });
        break;
      } catch (error) {
        const refused = code(error);
        if (refused !== INCORRECT_STATE && refused !== NOT_FOUND) throw failure('StopInstances', error);
        if (attempt >= MAX_STOP_ATTEMPTS) {
          throw new InstanceControlError('StopInstances kept refusing instances changing state', {
            cause: error,
            transient: true,
          });
        }
        const states = await this.statesOf(toStop);
        pending = toStop.filter((id) => states.get(id) === 'pending');
        toStop = toStop.filter((id) => states.get(id) === 'running');
      }
    }
    return pending;
  }

  private async statesOf(ids: readonly string[]): Promise<Map<string, InstanceStateName>> {
    const states = new Map<string, InstanceStateName>();
    for (const chunk of batches(ids, MAX_FILTER_VALUES)) {
      for (const instance of await this.describe([{ Name: 'instance-id', Values: chunk }])) {
        states.set(instance.instanceId, instance.state);
      }
    }
    return states;
  }

  private async describe(filters: Ec2Filter[]) {
    const found = new Map<string, { instanceId: string; state: InstanceStateName; tags: DescribedTag[] }>();
    let nextToken: string | undefined;
    for (let page = 0; page < MAX_DESCRIBE_PAGES; page++) {
      let output: Awaited<ReturnType<Ec2InstanceOperations['describeInstances']>>;
      try {
        output = await this.ec2.describeInstances({
          Filters: filters,
          MaxResults: DESCRIBE_PAGE_SIZE,
          ...(nextToken === undefined ? {} : { NextToken: nextToken }),
        });
      } catch (error) {
        throw failure('DescribeInstances', error);
      }
      for (const reservation of output.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const state = instance.State?.Name;
          if (typeof instance.InstanceId !== 'string' || state === undefined || !STATE_NAMES.has(state))
            continue;
          found.set(instance.InstanceId, {
            instanceId: instance.InstanceId,
            state: state as InstanceStateName,
            tags: (instance.Tags ?? []).map((tag) => ({ Key: tag.Key, Value: tag.Value })),
          });
        }
      }
      nextToken = output.NextToken || undefined;
      if (nextToken === undefined) return [...found.values()];
    }
    throw new InstanceControlError(
      `DescribeInstances returned more than ${MAX_DESCRIBE_PAGES} pages of ${DESCRIBE_PAGE_SIZE} instances`,
    );
  }
}

interface DescribedTag {
  readonly Key: string | undefined;
  readonly Value: string | undefined;
}

/** `ids` without duplicates, in slices of at most `size`. */
function batches(ids: readonly string[], size: number): string[][] {
  const unique = [...new Set(ids)];
  const result: string[][] = [];
  for (let i = 0; i < unique.length; i += size) result.push(unique.slice(i, i + size));
  return result;
}

function code(error: unknown): string {
  return describeServiceFailure(error, EC2_THROTTLING).code;
}

function failure(action: string, error: unknown): InstanceControlError {
  const { code, transient } = describeServiceFailure(error, EC2_THROTTLING);
  return new InstanceControlError(`EC2 ${action} failed (${code})`, { cause: error, transient });
}
