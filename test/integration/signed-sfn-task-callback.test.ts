/**
 * The attestation routes' Step Functions callbacks as deployed (SfnTaskCallback over SignedJsonClient, no
 * SFN client in their bundles): what reaches Step Functions (JSON 1.0, `AWSStepFunctions.<Operation>`,
 * signed for `states`, checked as the service checks it) and how its answers are read, the same as through
 * the SDK (test/unit/sfn-task-callback.test.ts).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { SfnTaskCallback, TaskCallbackError } from '../../shared/workflow/sfn-task-callback.ts';
import { type SigV4Endpoint, startSigV4Endpoint, TEST_CREDENTIALS } from '../support/sigv4-endpoint.ts';

let states: SigV4Endpoint;
const callbacks = () => {
  const client = new SignedJsonClient({
    service: 'states',
    region: 'eu-central-1',
    endpoint: states.url,
    credentials: async () => TEST_CREDENTIALS,
  });
  return new SfnTaskCallback({ call: (operation, input) => client.call(operation, input) });
};

beforeAll(async () => {
  states = await startSigV4Endpoint({ service: 'states' });
});
afterAll(() => states?.close());
beforeEach(() => states.reset());

describe('Step Functions callbacks, signed by hand', () => {
  it('sends a validly signed SendTaskSuccess with the token and the output as JSON', async () => {
    await expect(callbacks().succeed('token-1', { instanceId: 'i-0123456789abcdef0' })).resolves.toBe('sent');
    expect(states.seen).toEqual([
      {
        target: 'AWSStepFunctions.SendTaskSuccess',
        contentType: 'application/x-amz-json-1.0',
        body: { taskToken: 'token-1', output: '{"instanceId":"i-0123456789abcdef0"}' },
        signatureValid: true,
      },
    ]);
  });

  it('sends SendTaskHeartbeat with the token alone', async () => {
    await expect(callbacks().heartbeat('token-2')).resolves.toBe('sent');
    expect(states.seen[0]).toMatchObject({
      target: 'AWSStepFunctions.SendTaskHeartbeat',
      body: { taskToken: 'token-2' },
      signatureValid: true,
    });
  });

  it.each(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken'])(
    'answers gone for %s, asked once',
    async (type) => {
      states.fail({ status: 400, type });
      await expect(callbacks().succeed('token-1', {})).resolves.toBe('gone');
      expect(states.seen).toHaveLength(1);
    },
  );

  it('tries throttling again, then throws a transient TaskCallbackError', async () => {
    states.fail(...Array.from({ length: 3 }, () => ({ status: 400, type: 'ThrottlingException' })));
    const error = await callbacks()
      .heartbeat('token-2')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskCallbackError);
    expect(error).toMatchObject({ transient: true, message: expect.stringContaining('ThrottlingException') });
    expect(states.seen).toHaveLength(3);
  });

  it('rethrows any other refusal with the service code, asked once', async () => {
    states.fail({ status: 400, type: 'InvalidOutput' });
    await expect(callbacks().succeed('token-1', {})).rejects.toMatchObject({
      name: 'InvalidOutput',
      $metadata: { httpStatusCode: 400 },
    });
    expect(states.seen).toHaveLength(1);
  });
});
