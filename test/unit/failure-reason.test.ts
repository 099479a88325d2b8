import { describe, expect, it } from 'vitest';
import { failureReason } from '../../shared/enclaves/provisioning-steps.ts';
import { STEP_ERRORS, WORKFLOW_TIMING } from '../../shared/enclaves/provisioning-workflow.ts';

/** What Compensate records as the enclave's `statusReason`, from the error its Catch received. */
describe('failureReason', () => {
  it('names the attestation wait for its timeout and its heartbeat, telling them apart', () => {
    expect(failureReason({ Error: 'States.Timeout', Cause: '' }, { waiting: true })).toEqual({
      code: 'attestation_timeout',
      message: expect.stringContaining(`more than ${WORKFLOW_TIMING.attestationTimeoutSeconds} seconds`),
    });
    expect(failureReason({ Error: 'States.HeartbeatTimeout' }, { waiting: true })).toEqual({
      code: 'attestation_timeout',
      message: expect.stringContaining(
        `no heartbeat for ${WORKFLOW_TIMING.attestationHeartbeatSeconds} seconds`,
      ),
    });
  });

  it('does not blame the attestation for another step timing out (before the launch, or verifying)', () => {
    const reason = failureReason({ Error: 'States.Timeout', Cause: 'Task timed out' }, { waiting: false });
    expect(reason.code).toBe('step_timeout');
    expect(reason.message).not.toMatch(/attestation/i);
  });

  it('takes a step error cause as code: message, and a Lambda error document by its errorMessage only', () => {
    expect(
      failureReason(
        { Error: STEP_ERRORS.attestationRefused, Cause: 'pcr_mismatch: PCR0 is not approved.' },
        { waiting: false },
      ),
    ).toEqual({ code: 'pcr_mismatch', message: 'PCR0 is not approved.' });
    const lambda = JSON.stringify({
      errorType: STEP_ERRORS.notProvisionable,
      errorMessage: 'contract-not-active: the contract is Suspended.',
      trace: ['at secret (/var/task/index.js:1:1)'],
    });
    const reason = failureReason({ Error: STEP_ERRORS.notProvisionable, Cause: lambda }, { waiting: false });
    expect(reason).toEqual({ code: 'contract-not-active', message: 'the contract is Suspended.' });
    expect(JSON.stringify(reason)).not.toContain('/var/task');
  });

  it('falls back to the error name, bounded, and a generic sentence', () => {
    expect(failureReason(undefined, { waiting: false })).toEqual({
      code: 'unknown',
      message: 'The provisioning workflow failed.',
    });
    expect(failureReason({ Error: 'X'.repeat(200) }, { waiting: false }).code).toHaveLength(64);
  });
});
