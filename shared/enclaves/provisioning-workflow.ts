/**
 * The enclave provisioning workflow's contract: the names its states carry (what operators read in the
 * Step Functions console, and what the local run and the synthesized template must agree on), the Lambda
 * steps with their handler modules and grants, the errors the steps raise for the state machine's
 * Retry/Catch, and the shapes passed between states. The CDK construct
 * (`infra/constructs/enclave-workflow.ts`) builds the state machine from this; the local stack runs the
 * definition the construct renders.
 *
 * The flow (input `{ "enclaveId": "…" }`):
 * `Validate → Challenge → LaunchOrRestart? → (ChooseFirstInstanceType → RunInstances [refused →
 * LaunchFailed? → (no capacity: NextAvailabilityZone, then NextInstanceType | throttled: RelaunchBackoff → WaitToRelaunch) →
 * RunInstances] | TagRestartNonce → StartInstances) →
 * WaitForAttestation → VerifyAttestation → Activate → Provisioned`; any failure → `Compensate →
 * ProvisioningFailed`; a superseded execution → `Superseded` (ends quietly, compensating nothing).
 */

/** Every state's name, as the console shows it. */
export const STATES = {
  validate: 'Validate',
  challenge: 'Challenge',
  launchOrRestart: 'LaunchOrRestart',
  chooseFirstInstanceType: 'ChooseFirstInstanceType',
  runInstances: 'RunInstances',
  launchFailed: 'LaunchFailed',
  nextAvailabilityZone: 'NextAvailabilityZone',
  nextInstanceType: 'NextInstanceType',
  relaunchBackoff: 'RelaunchBackoff',
  waitToRelaunch: 'WaitToRelaunch',
  tagRestartNonce: 'TagRestartNonce',
  startInstances: 'StartInstances',
  waitForAttestation: 'WaitForAttestation',
  verifyAttestation: 'VerifyAttestation',
  activate: 'Activate',
  provisioned: 'Provisioned',
  superseded: 'Superseded',
  compensate: 'Compensate',
  provisioningFailed: 'ProvisioningFailed',
  compensationFailed: 'CompensationFailed',
} as const;
export type StateName = (typeof STATES)[keyof typeof STATES];

/** What a step's function may touch; the CDK grants exactly these (least privilege per function). */
export type StepGrant =
  /** The Aurora Data API and its secret. */
  | 'database'
  /** The workflow DynamoDB table (nonces and task tokens). */
  | 'workflowTable'
  /** ec2:DescribeInstances, and ec2:TerminateInstances only on instances tagged with an enclave id. */
  | 'terminateTaggedInstances';

export interface WorkflowStep {
  /** The state name (a Lambda task). */
  readonly state: StateName;
  /** The Lambda entry, relative to the repository root; exports `handler`. */
  readonly handler: string;
  readonly grants: readonly StepGrant[];
  readonly description: string;
}

/** The Lambda steps, in flow order. */
export const WORKFLOW_STEPS = [
  {
    state: STATES.validate,
    handler: 'functions/workflow/validate.ts',
    grants: ['database'],
    description: 'Checks the enclave against its contract and approved measurements; sizes the parent',
  },
  {
    state: STATES.challenge,
    handler: 'functions/workflow/challenge.ts',
    grants: ['workflowTable'],
    description: 'Issues the attestation nonce bound to the enclave',
  },
  {
    state: STATES.waitForAttestation,
    handler: 'functions/workflow/await-attestation.ts',
    // The database: the wait is recorded only while this execution still owns an Initializing enclave.
    grants: ['database', 'workflowTable'],
    description: 'Records the task token the attestation route completes',
  },
  {
    state: STATES.verifyAttestation,
    handler: 'functions/workflow/verify-attestation.ts',
    grants: ['database', 'workflowTable'],
    description: 'Verifies the attestation document against the approved measurements; consumes the nonce',
  },
  {
    state: STATES.activate,
    handler: 'functions/workflow/activate.ts',
    grants: ['database'],
    description: 'Marks the enclave Running with its verified attestation',
  },
  {
    state: STATES.compensate,
    handler: 'functions/workflow/compensate.ts',
    grants: ['database', 'terminateTaggedInstances'],
    description: "Terminates the enclave's instances and marks it Failed with the reason",
  },
] as const satisfies readonly WorkflowStep[];

/** Errors the steps raise (a Lambda error's `errorType` is the error's `name`). */
export const STEP_ERRORS = {
  /** Validate: the enclave may not be provisioned (contract, measurements, sizing): → Compensate. */
  notProvisionable: 'EnclaveNotProvisionable',
  /** Validate: the enclave is not Initializing or another execution owns it: → Superseded, no compensation. */
  superseded: 'ProvisioningSuperseded',
  /** VerifyAttestation: the document was refused (cause `code: message`): → Compensate. */
  attestationRefused: 'AttestationRefused',
  /** Activate: the enclave may not become Running any more (terminated, contract suspended): → Compensate. */
  activationRefused: 'ActivationRefused',
  /** Any step: a dependency was unavailable (database resuming, throttling): retried with backoff. */
  transient: 'TransientStepFailure',
} as const;

/**
 * How Step Functions' AWS SDK integration reports an EC2 error: always as `Ec2.Ec2Exception` (EC2's API model
 * declares no error shapes, so the integration's SDK has no exception per code, and the code is not in the
 * name), with EC2's message followed by `(Service: Ec2, Status Code: <status>, Request ID: <id>)` as the
 * cause, e.g. `Request limit exceeded. Account … has been throttled on ec2:RunInstances because it exceeded
 * its request rate limit. (Service: Ec2, Status Code: 503, …)` (CloudSnorkel/cdk-github-runners issue 946).
 * A Retry matches names only, so the workflow tells EC2's errors apart in a Choice on the cause: by EC2's
 * wording (the EC2 API reference's error messages) and its HTTP status.
 */
export const EC2_INTEGRATION_ERROR = 'Ec2.Ec2Exception';

/** Step Functions `StringMatches` patterns on an `Ec2.Ec2Exception`'s cause (`*` is the only wildcard). */
export const EC2_CAUSES = {
  /** InsufficientInstanceCapacity: "We currently do not have sufficient <type> capacity in the Availability Zone you requested (<az>). …" (500). */
  insufficientCapacity: 'We currently do not have sufficient * capacity*',
  /** Unsupported, for a type not offered in the zone: "Your requested instance type (<type>) is not supported in your requested Availability Zone (<az>). …" (400). */
  unsupportedInZone: 'Your requested instance type * is not supported in your requested Availability Zone*',
  /** RequestLimitExceeded, Unavailable and ServiceUnavailable: EC2 answers 503; worth a retry after a pause. */
  unavailable: '*(Service: Ec2, Status Code: 503,*',
  /** InternalError (500, as InsufficientInstanceCapacity, which is told apart by its wording first). */
  internalError: '*(Service: Ec2, Status Code: 500,*',
} as const;

/** EC2 error codes recognised by their message, to name a failure reason (the cause carries no code). */
const EC2_MESSAGES: readonly (readonly [code: string, message: RegExp])[] = [
  ['InsufficientInstanceCapacity', /^We currently do not have sufficient .* capacity/],
  ['RequestLimitExceeded', /^Request limit exceeded/],
  ['UnauthorizedOperation', /^You are not authorized to perform this operation/],
  ['InternalError', /^An internal error has occurred/],
  ['Unavailable', /^The server is overloaded/],
  [
    'Unsupported',
    /^Your requested instance type .* is not supported|^The requested configuration is currently not supported/,
  ],
];

/** The EC2 error code an `Ec2.Ec2Exception`'s cause names by its wording, or `Ec2Exception`. */
export function ec2ErrorCode(cause: string): string {
  return EC2_MESSAGES.find(([, message]) => message.test(cause))?.[0] ?? 'Ec2Exception';
}

/** Timeouts and retry figures the construct uses (seconds). */
export const WORKFLOW_TIMING = {
  /** Each Lambda step. */
  lambdaTimeoutSeconds: 60,
  /** WaitForAttestation: boot, image fetch, enclave start and the agent's submission. */
  attestationTimeoutSeconds: 900,
  /**
   * WaitForAttestation heartbeat: a wait this long without a heartbeat from the parent ends (a dead parent
   * is compensated in minutes, not at the timeout). The first heartbeat comes once the parent's user data
   * has installed its packages and the agent (well within a few minutes of the launch); then every minute
   * (`HEARTBEAT_INTERVAL_SECONDS`) until the document is in.
   */
  attestationHeartbeatSeconds: 300,
  /**
   * The nonce outlives the wait, so a late but valid submission is refused by the wait, not the nonce: it is
   * issued before the launch or restart, whose retries (a restart waits up to ~4 minutes for a stopping
   * parent) come on top of the wait's 900 s.
   */
  nonceTtlSeconds: 1500,
  /** The whole execution. */
  executionTimeoutSeconds: 1800,
  /**
   * RunInstances refused because EC2 is throttling or unavailable (503, or 500 other than capacity): the
   * launch is repeated (same ClientToken) after each of these pauses, then compensated.
   */
  relaunchBackoffSeconds: [2, 4, 8, 16, 30],
} as const;

// -----------------------------------------------------------------------------------------------------
// What flows between states (JSON)

/** The execution input. */
export interface ProvisioningInput {
  readonly enclaveId: string;
}

/** Validate's input: the enclave and the execution claiming it. */
export interface ValidateInput {
  readonly enclaveId: string;
  readonly executionArn: string;
}

/** Validate's result (`$.plan`). */
export interface PlanOutput {
  readonly contractId: string;
  /** Candidate parent types, smallest first. */
  readonly instanceTypes: readonly string[];
  /** Index of the last candidate (the Choice compares with it). */
  readonly lastInstanceTypeIndex: number;
  /** The stopped parent to restart (resume); absent for a first launch. */
  readonly restartInstanceId?: string;
  /** The enclave's vCPUs and memory (MiB) as tag values: the parent sizes its enclave allocator from them. */
  readonly enclaveCpuCount: string;
  readonly enclaveMemoryMiB: string;
  /** The enclave's EIF source (`image.source`) as tag values; empty strings when it declares none. */
  readonly imageUrl: string;
  readonly imageSha256: string;
}

/** Challenge's input and result (`$.challenge`). */
export interface ChallengeInput {
  readonly enclaveId: string;
  readonly executionArn: string;
}
export interface ChallengeOutput {
  /** Base64 of the 32-byte nonce (the instance tag's value). */
  readonly nonce: string;
  readonly expiresAt: string;
}

/** RunInstances/StartInstances result after the ResultSelector (`$.instance`). */
export interface InstanceOutput {
  readonly instanceId: string;
}

/** WaitForAttestation's Lambda input (the callback pattern's payload). */
export interface AwaitAttestationInput {
  readonly enclaveId: string;
  readonly instanceId: string;
  readonly executionArn: string;
  readonly taskToken: string;
}

/** What the attestation route sends with `SendTaskSuccess` (`$.submission`). */
export interface AttestationSubmission {
  /** Base64 of the COSE_Sign1 document as the agent posted it. */
  readonly document: string;
  readonly instanceId: string;
  readonly receivedAt: string;
}

/** VerifyAttestation's input; its result (`$.verification`) is a `VerifiedAttestation` (enclave-steps.ts). */
export interface VerifyInput {
  readonly enclaveId: string;
  /** The execution: it names the nonce's consumption, so a retried step is not a replay. */
  readonly executionArn: string;
  readonly instanceId: string;
  readonly document: string;
  readonly nonce: string;
}

/** Activate's input. */
export interface ActivateInput {
  readonly enclaveId: string;
  readonly instanceId: string;
  readonly executionArn: string;
  readonly verification: {
    readonly claims: import('./enclave-attestation.ts').AttestationClaimsSummary;
    readonly matchedMeasurementSet: { readonly id: string };
  };
}

/**
 * Compensate's input: the execution (only the owner of the enclave compensates) and the whole state at the
 * failure (`$`), with the caught error at `$.error`.
 */
export interface CompensateInput {
  readonly executionArn: string;
  readonly state: {
    readonly enclaveId: string;
    readonly instance?: InstanceOutput;
    readonly error?: { readonly Error?: string; readonly Cause?: string };
  };
}
