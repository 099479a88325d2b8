import { SendTaskHeartbeatCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
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

/** Options of {@link SfnTaskCallback}. */
export interface SfnTaskCallbackOptions {
  /** A client built once per cold start; a default client (the function's region) is created otherwise. */
  readonly client?: SFNClient;
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
 * const callbacks = new SfnTaskCallback({ client: new SFNClient({}) }); // module scope
 * if ((await callbacks.succeed(taken.taskToken, { instanceId })) === 'gone') logger.warn('late callback');
 */
export class SfnTaskCallback implements TaskCallback {
  private readonly client: SFNClient;

  constructor(options: SfnTaskCallbackOptions = {}) {
    this.client = options.client ?? new SFNClient({});
  }

  async succeed(taskToken: string, output: unknown): Promise<'sent' | 'gone'> {
    // `undefined` has no JSON; the task receives `null` instead of a refused call.
    const command = new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) ?? 'null' });
    return this.call('SendTaskSuccess', () => this.client.send(command));
  }

  async heartbeat(taskToken: string): Promise<'sent' | 'gone'> {
    const command = new SendTaskHeartbeatCommand({ taskToken });
    return this.call('SendTaskHeartbeat', () => this.client.send(command));
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
