import {
  InvalidOutput,
  InvalidToken,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  SFNServiceException,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SfnTaskCallback, TaskCallbackError } from '../../shared/workflow/sfn-task-callback.ts';

/**
 * The Step Functions callback adapter's contract, on the calls it makes and on how it reads Step Functions'
 * answers; the mock stands in for the service only.
 */
const sfn = mockClient(SFNClient);
afterEach(() => sfn.reset());

/** The adapter over the SDK client (what it sends through the signed client instead is shown in
 * test/integration/signed-json-client.test.ts): the mock answers as Step Functions does. */
const callback = () => {
  const client = new SFNClient({ region: 'eu-central-1' });
  return new SfnTaskCallback({
    call: (operation, input) =>
      operation === 'SendTaskSuccess'
        ? client.send(new SendTaskSuccessCommand({ taskToken: input.taskToken, output: input.output! }))
        : client.send(new SendTaskHeartbeatCommand({ taskToken: input.taskToken })),
  });
};
const metadata = (status: number) => ({ $metadata: { httpStatusCode: status } });

describe('SfnTaskCallback', () => {
  it('sends SendTaskSuccess with the token and the output as JSON, and answers sent', async () => {
    sfn.on(SendTaskSuccessCommand).resolves({});
    const result = await callback().succeed('token-1', { instanceId: 'i-0123456789abcdef0', ok: true });
    expect(result).toBe('sent');
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(1);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input).toEqual({
      taskToken: 'token-1',
      output: '{"instanceId":"i-0123456789abcdef0","ok":true}',
    });
  });

  it('sends null for an undefined output (SendTaskSuccess requires one)', async () => {
    sfn.on(SendTaskSuccessCommand).resolves({});
    await callback().succeed('token-1', undefined);
    expect(sfn.commandCalls(SendTaskSuccessCommand)[0]!.args[0].input.output).toBe('null');
  });

  it.each([
    ['TaskTimedOut', new TaskTimedOut({ message: 'Task Timed Out', ...metadata(400) })],
    ['TaskDoesNotExist', new TaskDoesNotExist({ message: 'Task does not exist', ...metadata(400) })],
    ['InvalidToken', new InvalidToken({ message: 'Invalid Token', ...metadata(400) })],
  ])('answers gone when Step Functions answers %s', async (_name, error) => {
    sfn.on(SendTaskSuccessCommand).rejects(error);
    await expect(callback().succeed('token-1', {})).resolves.toBe('gone');
  });

  it.each([
    [
      'throttling',
      new SFNServiceException({ name: 'ThrottlingException', $fault: 'client', ...metadata(400) }),
    ],
    ['a 5xx', new SFNServiceException({ name: 'ServiceUnavailable', $fault: 'server', ...metadata(503) })],
    ['no answer', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: {} })],
  ])('throws a transient TaskCallbackError on %s, keeping the cause', async (_kind, error) => {
    sfn.on(SendTaskSuccessCommand).rejects(error);
    const thrown = await callback()
      .succeed('token-1', {})
      .catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(TaskCallbackError);
    expect(thrown).toMatchObject({ name: 'TaskCallbackError', transient: true });
    expect((thrown as Error).cause).toBe(error);
  });

  it('rethrows any other refusal as Step Functions raised it', async () => {
    const error = new InvalidOutput({ message: 'Output too large', ...metadata(400) });
    sfn.on(SendTaskSuccessCommand).rejects(error);
    await expect(callback().succeed('token-1', {})).rejects.toBe(error);
  });

  it('sends SendTaskHeartbeat with the token alone, and reads its answers as SendTaskSuccess does', async () => {
    const throttled = new SFNServiceException({
      name: 'ThrottlingException',
      $fault: 'client',
      ...metadata(400),
    });
    sfn
      .on(SendTaskHeartbeatCommand)
      .resolvesOnce({})
      .rejectsOnce(new TaskTimedOut({ message: 'Task Timed Out', ...metadata(400) }))
      .rejectsOnce(throttled);
    await expect(callback().heartbeat('token-2')).resolves.toBe('sent');
    expect(sfn.commandCalls(SendTaskHeartbeatCommand)[0]!.args[0].input).toEqual({ taskToken: 'token-2' });
    expect(sfn.commandCalls(SendTaskSuccessCommand)).toHaveLength(0);

    await expect(callback().heartbeat('token-2')).resolves.toBe('gone');

    await expect(callback().heartbeat('token-2')).rejects.toMatchObject({
      name: 'TaskCallbackError',
      transient: true,
      message: expect.stringContaining('SendTaskHeartbeat'),
    });
  });
});
