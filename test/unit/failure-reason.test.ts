import { describe, expect, it } from 'vitest';
import { failureReason } from '../../shared/enclaves/provisioning-steps.ts';
import { STEP_ERRORS, WORKFLOW_TIMING } from '../../shared/enclaves/provisioning-workflow.ts';

/**
 * What Compensate records as the enclave's `statusReason`, from the execution's state as the Catch of the
 * failed state leaves it (`$.error`, with whatever the earlier states put at `$.plan`, `$.instance`,
 * `$.submission`).
 */
const enclaveId = '11111111-1111-4111-8111-111111111111';
const plan = { contractId: '22222222-2222-4222-8222-222222222222', instanceTypes: ['m5.xlarge'] };
const instance = { instanceId: 'i-0123456789abcdef0' };
const submission = { document: 'AAAA', instanceId: instance.instanceId, receivedAt: '2026-11-25T10:00:00Z' };
const timeout = { Error: 'States.Timeout', Cause: 'Task timed out' };

describe('failureReason', () => {
  it("names the attestation for WaitForAttestation's timeout and heartbeat, telling them apart", () => {
    // The wait failed: a parent was launched and no document came.
    const atWait = { enclaveId, plan, instance };
    expect(failureReason({ ...atWait, error: timeout })).toEqual({
      code: 'attestation_timeout',
      message: expect.stringContaining(`more than ${WORKFLOW_TIMING.attestationTimeoutSeconds} seconds`),
    });
    expect(failureReason({ ...atWait, error: { Error: 'States.HeartbeatTimeout' } })).toEqual({
      code: 'attestation_timeout',
      message: expect.stringContaining(
        `no heartbeat for ${WORKFLOW_TIMING.attestationHeartbeatSeconds} seconds`,
      ),
    });
  });

  it.each([
    ['Validate', { enclaveId }],
    ['RunInstances', { enclaveId, plan }],
    ['VerifyAttestation', { enclaveId, plan, instance, submission }],
    ['Activate', { enclaveId, plan, instance, submission, verification: {} }],
  ])('does not blame the attestation when %s times out', (_state, state) => {
    const reason = failureReason({ ...state, error: timeout });
    expect(reason.code).toBe('step_timeout');
    expect(reason.message).not.toMatch(/attestation/i);
  });

  it('takes a step error cause as code: message, and a Lambda error document by its errorMessage only', () => {
    expect(
      failureReason({
        enclaveId,
        instance,
        submission,
        error: { Error: STEP_ERRORS.attestationRefused, Cause: 'pcr_mismatch: PCR0 is not approved.' },
      }),
    ).toEqual({ code: 'pcr_mismatch', message: 'PCR0 is not approved.' });
    const lambda = JSON.stringify({
      errorType: STEP_ERRORS.notProvisionable,
      errorMessage: 'contract-not-active: the contract is Suspended.',
      trace: ['at secret (/var/task/index.js:1:1)'],
    });
    const reason = failureReason({
      enclaveId,
      error: { Error: STEP_ERRORS.notProvisionable, Cause: lambda },
    });
    expect(reason).toEqual({ code: 'contract-not-active', message: 'the contract is Suspended.' });
    expect(JSON.stringify(reason)).not.toContain('/var/task');
  });

  it('falls back to the error name, bounded, and a generic sentence', () => {
    expect(failureReason({ enclaveId })).toEqual({
      code: 'unknown',
      message: 'The provisioning workflow failed.',
    });
    expect(failureReason({ enclaveId, error: { Error: 'X'.repeat(200) } }).code).toHaveLength(64);
  });

  it.each([
    [
      'InsufficientInstanceCapacity',
      'We currently do not have sufficient m5.xlarge capacity in the Availability Zone you requested (eu-central-1a). Our system will be working on provisioning additional capacity. (Service: Ec2, Status Code: 500, Request ID: 6f1c)',
    ],
    [
      'RequestLimitExceeded',
      'Request limit exceeded. Account 123456789012 has been throttled on ec2:RunInstances because it exceeded its request rate limit. (Service: Ec2, Status Code: 503, Request ID: 6f1c)',
    ],
    [
      'UnauthorizedOperation',
      'You are not authorized to perform this operation. Encoded authorization failure message: abc (Service: Ec2, Status Code: 403, Request ID: 6f1c)',
    ],
    ['InternalError', 'An internal error has occurred. (Service: Ec2, Status Code: 500, Request ID: 6f1c)'],
    ['Ec2Exception', 'Something EC2 has never said. (Service: Ec2, Status Code: 400, Request ID: 6f1c)'],
  ])(
    'names an Ec2.Ec2Exception by the code its wording says (%s), keeping the whole cause',
    (code, cause) => {
      expect(failureReason({ enclaveId, error: { Error: 'Ec2.Ec2Exception', Cause: cause } })).toEqual({
        code,
        message: cause,
      });
    },
  );
});
