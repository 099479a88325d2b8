import { readFileSync } from 'node:fs';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import type { EnclaveArtifacts } from '../../../constructs/enclave-parents.ts';
import { ContractsStack } from '../../../contracts-stack.ts';
import { projectPath } from '../../../project-paths.ts';

/**
 * The identity policies the synthesized stack gives its roles, for the local IAM stand-in to authorise the
 * local stand-ins' calls with, exactly as written in the template that deploys (no bundling: the policies are
 * the same without it, and the synth takes seconds).
 *
 * A policy names resources by CloudFormation intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Join`): each is resolved
 * to the name the local stack gives that resource ({@link LocalResourceNames}); an intrinsic the local stack
 * has no name for resolves to `unresolved:<LogicalId>.<Attribute>`, which names nothing, so a call on such a
 * resource is denied (fail closed) until the local stack names it.
 */

import { LOCAL_ACCOUNT, LOCAL_REGION } from '../local-account.ts';

export { LOCAL_ACCOUNT, LOCAL_REGION };

/**
 * What the local stack calls the stack's other resources that its stand-ins serve: the Aurora cluster the
 * Data API runs statements on, the application's credentials secret and the key that encrypts it, the
 * platform signing key, and the domain event bus. Fixed names: nothing else names them locally.
 */
export const LOCAL_AWS_RESOURCES = {
  clusterArn: `arn:aws:rds:${LOCAL_REGION}:${LOCAL_ACCOUNT}:cluster:enclave-contracts`,
  /** The application's secret (the functions'; the master's is the deployment steps' only). */
  secretArn: `arn:aws:secretsmanager:${LOCAL_REGION}:${LOCAL_ACCOUNT}:secret:enclave-contracts-application-Local0`,
  secretKeyArn: `arn:aws:kms:${LOCAL_REGION}:${LOCAL_ACCOUNT}:key/00000000-0000-4000-8000-00000000000a`,
  signingKeyArn: `arn:aws:kms:${LOCAL_REGION}:${LOCAL_ACCOUNT}:key/00000000-0000-4000-8000-00000000000b`,
  /** The key that seals the TOTP seeds. */
  credentialKeyArn: `arn:aws:kms:${LOCAL_REGION}:${LOCAL_ACCOUNT}:key/00000000-0000-4000-8000-00000000000c`,
  busArn: `arn:aws:events:${LOCAL_REGION}:${LOCAL_ACCOUNT}:event-bus/enclave-contracts`,
  /** The HTTP API's id (what `execute-api:Invoke` resources name). */
  apiId: 'local0api0',
} as const;

/** The ARN API Gateway's IAM authorizer checks `execute-api:Invoke` on for one request to the local API. */
export function executeApiArn(method: string, path: string): string {
  return `arn:aws:execute-api:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${LOCAL_AWS_RESOURCES.apiId}/$default/${method}${path}`;
}

/** A policy document as IAM reads it. */
export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[];
}

/** A principal the stand-ins act for: its role's ARN and the identity policies it holds. */
export interface LocalPrincipal {
  /** `arn:aws:iam::000000000000:role/<RoleLogicalId>` */
  readonly roleArn: string;
  /** The session ARN AWS names in a denial: `arn:aws:sts::000000000000:assumed-role/<role>/<session>`. */
  readonly sessionArn: string;
  readonly policies: readonly { readonly name: string; readonly policy: PolicyDocument }[];
}

/** What the local stack calls the stack's resources the stand-ins serve. */
export interface LocalResourceNames {
  /** The parents' launch template (the EC2 simulator's) and the version RunInstances names. */
  readonly launchTemplate: { readonly id: string; readonly version: string };
  /** The parents' subnets, in the stack's order (one per zone), and their security group. */
  readonly parentSubnetIds: readonly string[];
  readonly parentSecurityGroupId: string;
  /** The workflow table (nonces and task tokens) in the local DynamoDB. */
  readonly workflowTableName: string;
  /** The doorbell table (shared/events/doorbell.ts) in the local DynamoDB. */
  readonly doorbellTableName: string;
  /** The provisioning state machine, as the local runner names it. */
  readonly stateMachineArn: string;
  /** The deployment's default enclave image (what the parents' role may read from S3). */
  readonly enclaveArtifacts: EnclaveArtifacts;
}

/** The scheduled jobs, as the local stack runs them. */
export type LocalJobName =
  | 'publishOutbox'
  | 'expireContracts'
  | 'checkpointAudit'
  | 'reportCredentialRotation';

/** The principals whose calls the local stand-ins authorise, from the synthesized stack. */
export interface StackPrincipals {
  /** The provisioning state machine's role: its `aws-sdk:ec2:*` tasks. */
  readonly stateMachine: LocalPrincipal;
  /** The parents' role (what RunInstances passes to EC2 through the instance profile). */
  readonly parentRoleArn: string;
  /** The parents' role as a principal: what their instance-profile sessions may do (S3, execute-api). */
  readonly parent: LocalPrincipal;
  /** Each API route's function, by route id. */
  readonly routes: ReadonlyMap<string, LocalPrincipal>;
  /** Each Lambda step of the provisioning workflow, by state name. */
  readonly steps: ReadonlyMap<string, LocalPrincipal>;
  /** The function that enforces enclave and contract status changes on the parents. */
  readonly enforcement: LocalPrincipal;
  /**
   * The scheduled jobs' functions: the outbox publisher, the contract expirer, the audit checkpoints and the
   * credential rotation report.
   */
  readonly jobs: Readonly<Record<LocalJobName, LocalPrincipal>>;
  /** The workflow table's ARN, as the policies name it locally. */
  readonly workflowTableArn: string;
  /** The key policies of the keys the stand-ins serve (KMS evaluates them with the caller's policies). */
  readonly keyPolicies: {
    readonly secretKey: PolicyDocument;
    readonly signingKey: PolicyDocument;
    readonly credentialKey: PolicyDocument;
  };
  /** The contract keys: the function that syncs them, their tag value and their alias prefix. */
  readonly contractKeys: {
    readonly sync: LocalPrincipal;
    readonly tag: string;
    readonly aliasPrefix: string;
  };
  /** The platform keys: the tag value they carry and the signing alias's ARN (what KMS authorises on). */
  readonly platformKeys: { readonly tag: string; readonly aliasArn: string };
  /** Every role of the stack by its logical id (a test removes a grant through it). */
  readonly roles: ReadonlyMap<string, LocalPrincipal>;
}

/**
 * Synthesizes the stack (no bundling) and reads its roles' identity policies, resolved to local names.
 * `edit` may change the stack before the synth (a test removes one grant and shows the flow fail).
 */
export function stackPrincipals(
  names: LocalResourceNames,
  edit?: (stack: ContractsStack) => void,
): StackPrincipals {
  const context = (JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')) as { context: object }).context;
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new ContractsStack(app, 'EnclaveContracts', {
    env: { account: LOCAL_ACCOUNT, region: LOCAL_REGION },
    enclaveArtifacts: names.enclaveArtifacts,
  });
  edit?.(stack);
  const resources = Template.fromStack(stack).toJSON().Resources as Record<string, CfnResource>;
  const logicalId = (construct: IConstruct) =>
    stack.resolve(((construct.node.defaultChild ?? construct) as CfnElement).logicalId) as string;
  const parents = stack.enclaveWorkflow.parents;
  const workflow = stack.enclaveWorkflow;
  const workflowTableArn = `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${names.workflowTableName}`;
  const physical = new Map<string, string>([
    [logicalId(workflow.table), names.workflowTableName],
    [`${logicalId(workflow.table)}.Arn`, workflowTableArn],
    [logicalId(stack.doorbell.table), names.doorbellTableName],
    [
      `${logicalId(stack.doorbell.table)}.Arn`,
      `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${names.doorbellTableName}`,
    ],
    [logicalId(workflow.stateMachine), names.stateMachineArn],
    [logicalId(parents.launchTemplate), names.launchTemplate.id],
    [`${logicalId(parents.launchTemplate)}.LatestVersionNumber`, names.launchTemplate.version],
    [`${logicalId(parents.securityGroup)}.GroupId`, names.parentSecurityGroupId],
  ]);
  // The Data API's cluster (its ARN is built from the cluster's Ref, its identifier), the secret (a Ref, its
  // ARN, of the secret or of its attachment to the cluster), the keys and the bus (their Arn attribute).
  const database = stack.database;
  const secretRef = (stack.resolve(database.secret.secretArn) as { Ref?: string }).Ref;
  physical.set(logicalId(database.cluster), LOCAL_AWS_RESOURCES.clusterArn.split(':').at(-1)!);
  if (secretRef !== undefined) physical.set(secretRef, LOCAL_AWS_RESOURCES.secretArn);
  physical.set(`${logicalId(database.secretEncryptionKey)}.Arn`, LOCAL_AWS_RESOURCES.secretKeyArn);
  physical.set(`${logicalId(stack.signingKey.key)}.Arn`, LOCAL_AWS_RESOURCES.signingKeyArn);
  physical.set(`${logicalId(stack.credentialKey.key)}.Arn`, LOCAL_AWS_RESOURCES.credentialKeyArn);
  physical.set(`${logicalId(stack.events.bus)}.Arn`, LOCAL_AWS_RESOURCES.busArn);
  physical.set(logicalId(stack.api.httpApi), LOCAL_AWS_RESOURCES.apiId);
  // Each subnet is named by a Ref to the VPC's subnet resource.
  parents.subnetIds.forEach((subnetId, i) => {
    const ref = (stack.resolve(subnetId) as { Ref?: string }).Ref;
    const local = names.parentSubnetIds[i];
    if (ref !== undefined && local !== undefined) physical.set(ref, local);
  });

  const keyPolicyOf = (key: IConstruct) =>
    resolveIntrinsics(resources[logicalId(key)]!.Properties.KeyPolicy, physical) as PolicyDocument;
  const roleIds = Object.keys(resources).filter((id) => resources[id]!.Type === 'AWS::IAM::Role');
  for (const id of roleIds) physical.set(`${id}.Arn`, roleArnOf(id));
  const roles = new Map<string, LocalPrincipal>(
    roleIds.map((id) => [
      id,
      principal(
        id,
        policiesOf(id, resources).map((p) => ({
          name: p.name,
          policy: resolveIntrinsics(p.policy, physical) as PolicyDocument,
        })),
      ),
    ]),
  );
  const roleOf = (role: iam.IRole) => {
    const found = roles.get(logicalId(role));
    if (!found) throw new Error(`no role ${role.node.path} in the synthesized stack`);
    return found;
  };
  return {
    stateMachine: roleOf(workflow.stateMachine.role),
    parentRoleArn: roleArnOf(logicalId(parents.role)),
    parent: roleOf(parents.role),
    routes: new Map([...stack.api.functions].map(([id, fn]) => [id, roleOf(fn.role)])),
    steps: new Map(Object.entries(workflow.steps).map(([state, fn]) => [state, roleOf(fn.role)])),
    enforcement: roleOf(workflow.enforcement.role),
    jobs: {
      publishOutbox: roleOf(stack.events.outboxPublisher.function.role),
      expireContracts: roleOf(stack.events.contractExpirer.function.role),
      checkpointAudit: roleOf(stack.auditCheckpoints.job.function.role),
      reportCredentialRotation: roleOf(stack.credentialRotation.job.function.role),
    },
    workflowTableArn,
    roles,
    contractKeys: {
      sync: roleOf(stack.contractKeys.sync.role),
      tag: stack.contractKeys.tagValue,
      aliasPrefix: stack.contractKeys.aliasPrefix,
    },
    platformKeys: {
      tag: stack.signingKey.tagValue,
      aliasArn: `arn:aws:kms:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${stack.signingKey.aliasName}`,
    },
    keyPolicies: {
      secretKey: keyPolicyOf(database.secretEncryptionKey),
      signingKey: keyPolicyOf(stack.signingKey.key),
      credentialKey: keyPolicyOf(stack.credentialKey.key),
    },
  };
}

interface CfnResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}

function roleArnOf(logicalId: string): string {
  return `arn:aws:iam::${LOCAL_ACCOUNT}:role/${logicalId}`;
}

/** A principal of role `logicalId` holding `policies` (as the stack's roles are, or hand-made in a test). */
export function principal(logicalId: string, policies: LocalPrincipal['policies']): LocalPrincipal {
  return {
    roleArn: roleArnOf(logicalId),
    sessionArn: `arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/${logicalId}/local`,
    policies,
  };
}

/** The logical id a `Ref` or `Fn::GetAtt` points to. */
function target(value: unknown): string | undefined {
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] } | undefined;
  return v?.Ref ?? v?.['Fn::GetAtt']?.[0];
}

/** The role's identity policies: its inline ones, the AWS::IAM::Policy resources attached to it, and the stack's own managed policies it attaches. */
function policiesOf(
  roleId: string,
  resources: Record<string, CfnResource>,
): { name: string; policy: unknown }[] {
  const role = resources[roleId]!;
  const inline = (
    (role.Properties.Policies as { PolicyName: string; PolicyDocument: unknown }[] | undefined) ?? []
  ).map((p) => ({ name: p.PolicyName, policy: p.PolicyDocument }));
  const attached = Object.entries(resources)
    .filter(
      ([, r]) =>
        r.Type === 'AWS::IAM::Policy' &&
        ((r.Properties.Roles as unknown[]) ?? []).some((x) => target(x) === roleId),
    )
    .map(([id, r]) => ({ name: id, policy: r.Properties.PolicyDocument }));
  const managed = ((role.Properties.ManagedPolicyArns as unknown[] | undefined) ?? []).flatMap((arn) => {
    const id = target(arn) ?? '';
    const policy = resources[id];
    // An AWS managed policy is not in the template, so it is left out: what it would allow is denied here.
    // Only CDK's own custom resource providers attach one (AWSLambdaBasicExecutionRole), none the stand-ins serve.
    return policy?.Type === 'AWS::IAM::ManagedPolicy'
      ? [{ name: id, policy: policy.Properties.PolicyDocument }]
      : [];
  });
  return [...inline, ...attached, ...managed];
}

/** Replaces every intrinsic in a policy with the local name of what it points to. */
function resolveIntrinsics(value: unknown, physical: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, physical));
  if (typeof value !== 'object' || value === null) return value;
  const v = value as Record<string, unknown>;
  if ('Ref' in v) {
    const ref = v.Ref as string;
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': LOCAL_REGION,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': 'EnclaveContracts',
    };
    return pseudo[ref] ?? physical.get(ref) ?? `unresolved:${ref}`;
  }
  if ('Fn::GetAtt' in v) {
    const [id, attribute] = v['Fn::GetAtt'] as [string, string];
    return physical.get(`${id}.${attribute}`) ?? `unresolved:${id}.${attribute}`;
  }
  if ('Fn::Sub' in v && typeof v['Fn::Sub'] === 'string') {
    // `${AWS::Region}`-style references (CDK's asset bucket names): pseudo parameters and Refs only.
    return (v['Fn::Sub'] as string).replace(/\$\{([^}]+)\}/g, (_m, name: string) =>
      String(resolveIntrinsics({ Ref: name }, physical)),
    );
  }
  if ('Fn::Join' in v) {
    const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => String(resolveIntrinsics(p, physical))).join(separator);
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveIntrinsics(x, physical)]));
}
