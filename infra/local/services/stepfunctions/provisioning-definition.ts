import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { WORKFLOW_STEPS } from '../../../../shared/enclaves/provisioning-workflow.ts';
import {
  buildProvisioningDefinition,
  provisioningStateMachineProps,
  type WorkflowStepState,
} from '../../../constructs/enclave-workflow.ts';

import { LOCAL_ACCOUNT, LOCAL_REGION } from '../local-account.ts';

export { LOCAL_ACCOUNT, LOCAL_REGION };

/** The launch template id and version the local definition's RunInstances names (the EC2 simulator's). */
export const LOCAL_LAUNCH_TEMPLATE = { id: 'lt-0enclaveparents000', version: '1' } as const;

/**
 * The parents' network as the local stack names it: two subnets in two zones (the EC2 simulator knows them),
 * in the order launches try them, and their security group.
 */
export const LOCAL_PARENT_NETWORK = {
  subnets: [
    { subnetId: 'subnet-0local0parents0a', availabilityZone: `${LOCAL_REGION}a` },
    { subnetId: 'subnet-0local0parents0b', availabilityZone: `${LOCAL_REGION}b` },
  ],
  securityGroupId: 'sg-0local0parents0000',
} as const;

/** The fake function ARN of a Lambda step: `arn:aws:lambda:eu-central-1:000000000000:function:<State>`. */
export function localStepFunctionArn(state: WorkflowStepState): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${state}`;
}

/** The rendered definition and the fake ARN of each Lambda step, by state name. */
export interface RenderedProvisioningDefinition {
  /** The Amazon States Language definition, as the deployed state machine has it (ARNs aside). */
  readonly definition: Record<string, unknown>;
  /**
   * The function ARN each Lambda step's state names: the `Resource` of a `payloadResponseOnly` task, the
   * `Parameters.FunctionName` of WaitForAttestation (whose Resource is `…:states:::lambda:invoke.waitForTaskToken`).
   */
  readonly stepFunctionArns: Readonly<Record<WorkflowStepState, string>>;
}

/**
 * The provisioning state machine's definition as the CDK code renders it, for the local stack to run in
 * aws-local-stepfunctions. It goes through {@link buildProvisioningDefinition}, the function the deployed
 * `EnclaveWorkflow` uses, in a throwaway `App`/`Stack` with imported functions (fixed fake ARNs, so no
 * bundling) and {@link LOCAL_LAUNCH_TEMPLATE}; the intrinsics left in the definition string are resolved
 * with the stack's fake account and region (`Ref` of anything else becomes `<LogicalId>`).
 *
 * @example
 * const { definition, stepFunctionArns } = renderProvisioningDefinition();
 * // taskResourceLocalHandlers: { [stepFunctionArns.Validate]: (input) => validate(input), ... }
 */
export function renderProvisioningDefinition(): RenderedProvisioningDefinition {
  const stack = new Stack(new App(), 'LocalProvisioning', {
    env: { account: LOCAL_ACCOUNT, region: LOCAL_REGION },
  });
  const stepFunctionArns = Object.fromEntries(
    WORKFLOW_STEPS.map((step) => [step.state, localStepFunctionArn(step.state)]),
  ) as Record<WorkflowStepState, string>;
  const steps = Object.fromEntries(
    WORKFLOW_STEPS.map((step) => [
      step.state,
      lambda.Function.fromFunctionArn(stack, `${step.state}Function`, stepFunctionArns[step.state]),
    ]),
  ) as Record<WorkflowStepState, lambda.IFunction>;
  const chain = buildProvisioningDefinition(new Construct(stack, 'Definition'), {
    steps,
    launchTemplate: LOCAL_LAUNCH_TEMPLATE,
    parentNetwork: {
      subnetIds: LOCAL_PARENT_NETWORK.subnets.map((subnet) => subnet.subnetId),
      securityGroupId: LOCAL_PARENT_NETWORK.securityGroupId,
    },
  });
  const stateMachine = new sfn.StateMachine(stack, 'StateMachine', provisioningStateMachineProps(chain));
  const rendered = stack.resolve((stateMachine.node.defaultChild as sfn.CfnStateMachine).definitionString);
  return {
    definition: JSON.parse(resolveIntrinsics(rendered)) as Record<string, unknown>,
    stepFunctionArns,
  };
}

/** Turns what `stack.resolve` leaves (Ref, Fn::GetAtt, Fn::Join) into a plain string. */
function resolveIntrinsics(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] };
  if (v.Ref !== undefined) {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': LOCAL_REGION,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    return pseudo[v.Ref] ?? `<${v.Ref}>`;
  }
  if (v['Fn::GetAtt']) {
    const [id, attribute] = v['Fn::GetAtt'];
    return `arn:aws:local:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${id}/${attribute}`;
  }
  if (v['Fn::Join']) return v['Fn::Join'][1].map(resolveIntrinsics).join(v['Fn::Join'][0]);
  throw new Error(`unexpected intrinsic in the provisioning definition: ${JSON.stringify(value)}`);
}
