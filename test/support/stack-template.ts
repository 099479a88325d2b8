import type { CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Reading a synthesized CloudFormation template in the infra suites: resources by type, what a `Ref` or
 * `Fn::GetAtt` points to, a construct's logical id, and every IAM statement a role holds.
 */

export interface CfnResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
  readonly DeletionPolicy?: string;
}

/** An IAM statement, normalized: actions as a list, the resource element as JSON (to look for ids). */
export interface Statement {
  readonly effect: string;
  readonly actions: readonly string[];
  readonly resource: string;
  readonly condition: Record<string, Record<string, unknown>> | undefined;
}

/** The logical id a `Ref` or `Fn::GetAtt` points to. */
export function target(value: unknown): string | undefined {
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string] } | undefined;
  return v?.Ref ?? v?.['Fn::GetAtt']?.[0];
}

/** The statements of a policy document. */
export function toStatements(document: unknown): Statement[] {
  return (document as { Statement: Record<string, unknown>[] }).Statement.map((s) => ({
    effect: String(s.Effect),
    actions: ([] as string[]).concat(s.Action as string | string[]),
    resource: JSON.stringify(s.Resource),
    condition: s.Condition as Statement['condition'],
  }));
}

export class StackTemplate {
  constructor(
    private readonly stack: Stack,
    readonly resources: Record<string, CfnResource>,
  ) {}

  /** The CloudFormation logical id of a construct's L1 resource. */
  logicalId(construct: IConstruct): string {
    const element = (construct.node.defaultChild ?? construct) as CfnElement;
    return this.stack.resolve(element.logicalId) as string;
  }

  ofType(type: string): [string, CfnResource][] {
    return Object.entries(this.resources).filter(([, r]) => r.Type === type);
  }

  /** Every statement of every identity policy attached to the role (default, extra and inline policies). */
  roleStatements(roleId: string): Statement[] {
    const attached = this.ofType('AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as unknown[]).some((r) => target(r) === roleId))
      .flatMap(([, p]) => toStatements(p.Properties.PolicyDocument));
    const inline = (
      (this.resources[roleId]?.Properties.Policies as { PolicyDocument: unknown }[] | undefined) ?? []
    ).flatMap((p) => toStatements(p.PolicyDocument));
    // The stack's own managed policies the role attaches (an AWS managed one is not in the template).
    const managed = (
      (this.resources[roleId]?.Properties.ManagedPolicyArns as unknown[] | undefined) ?? []
    ).flatMap((arn) => {
      const policy = this.resources[target(arn) ?? ''];
      return policy?.Type === 'AWS::IAM::ManagedPolicy' ? toStatements(policy.Properties.PolicyDocument) : [];
    });
    return [...attached, ...inline, ...managed];
  }
}
