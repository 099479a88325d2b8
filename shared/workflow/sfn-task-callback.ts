import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { describeServiceFailure } from './aws-service-failure.ts';
import type { TaskCallback } from './workflow-ports.ts';

/** Step Functions' answers meaning the task no longer waits for this token. */
const GONE: ReadonlySet<string> = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);
/** Step Functions' throttling codes (client faults, worth retrying). */
const SFN_THROTTLING: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
]);

/** Step Functions failed to take the callback, and may take it later: never shown beyond a 5xx. */
export class TaskCallbackError extends Error {
  override readonly name = 'TaskCallbackError';
  /** Always true: the only failures wrapped are throttling, 5xx and network errors. */
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}

/** A Step Functions call: the operation and its input, answered or failed as the SDK v3 answers or fails. */
export type SfnCall = (
  operation: 'SendTaskSuccess' | 'SendTaskHeartbeat',
  input: { taskToken: string; output?: string },
) => Promise<unknown>;

/** Options of {@link SfnTaskCallback}. */
export interface SfnTaskCallbackOptions {
  /**
   * How the calls reach Step Functions. @default a {@link SignedJsonClient} for `states` in the function's
   * region: the two calls the attestation routes make, without the SFN client's module in their bundles.
   */
  readonly call?: SfnCall;
}

/**
 * {@link TaskCallback} on Step Functions: `SendTaskSuccess` with the output as JSON, `SendTaskHeartbeat`.
 * - `TaskTimedOut`, `TaskDoesNotExist`, `InvalidToken` → `'gone'` (the wait is over; nothing to retry).
 * - Throttling, 5xx and network failures → {@link TaskCallbackError} with `transient: true`.
 * - Anything else (e.g. `InvalidOutput` for an output over 256 KiB, `AccessDenied`) is rethrown as is.
 *
 * IAM: `states:SendTaskSuccess` (or `states:SendTaskHeartbeat`) on the provisioning state machine, each
 * granted only to the route that calls it.
 * @example
 * const callbacks = new SfnTaskCallback(); // module scope
 * if ((await callbacks.succeed(taken.taskToken, { instanceId })) === 'gone') logger.warn('late callback');
 */
export class SfnTaskCallback implements TaskCallback {
  private readonly send: SfnCall;

  constructor(options: SfnTaskCallbackOptions = {}) {
    if (options.call) {
      this.send = options.call;
    } else {
      const client = new SignedJsonClient({ service: 'states' });
      this.send = (operation, input) => client.call(operation, input);
    }
  }

  async succeed(taskToken: string, output: unknown): Promise<'sent' | 'gone'> {
    // `undefined` has no JSON; the task receives `null` instead of a refused call.
    const input = { taskToken, output: JSON.stringify(output) ?? 'null' };
    return this.call('SendTaskSuccess', () => this.send('SendTaskSuccess', input));
  }

  async heartbeat(taskToken: string): Promise<'sent' | 'gone'> {
    return this.call('SendTaskHeartbeat', () => this.send('SendTaskHeartbeat', { taskToken }));
  }

  private async call(operation: string, send: () => Promise<unknown>): Promise<'sent' | 'gone'> {
    try {
      await send();
      return 'sent';
    } catch (error) {
      const { code, transient } = describeServiceFailure(error, SFN_THROTTLING);
      if (GONE.has(code)) return 'gone';
      if (transient) {
        throw new TaskCallbackError(`Step Functions ${operation} failed (${code})`, {
          cause: error,
          transient: true,
        });
      }
      throw error;
    }
  }
}
