/**
 * The doorbell (issue 11 §2.7) in the synthesized stack: one CMK-encrypted table, named to every function,
 * rung (UpdateItem on its one item) by every function built with the database, and read (GetItem) only by
 * the scheduled jobs. Synthesized without bundling (the bundles are checked in contracts-stack.test.ts).
 */
import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AppFunction } from '../../infra/constructs/app-function.ts';
import { ContractsStack } from '../../infra/contracts-stack.ts';
import { projectPath } from '../../infra/project-paths.ts';
import { DOORBELL_TABLE } from '../../shared/events/dynamodb-doorbell.ts';
import { type CfnResource, StackTemplate, type Statement } from '../support/stack-template.ts';

let stack: ContractsStack;
let cfn: StackTemplate;

beforeAll(() => {
  const context = (JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')) as { context: object }).context;
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  stack = new ContractsStack(app, 'EnclaveContracts', {
    env: { account: '000000000000', region: 'eu-central-1' },
  });
  cfn = new StackTemplate(stack, Template.fromStack(stack).toJSON().Resources as Record<string, CfnResource>);
}, 300_000);

function functions(): AppFunction[] {
  return [
    ...stack.api.functions.values(),
    stack.events.outboxPublisher.function,
    stack.events.contractExpirer.function,
    stack.auditCheckpoints.job.function,
    ...Object.values(stack.enclaveWorkflow.steps),
    stack.enclaveWorkflow.enforcement,
  ];
}

/** The role's statements on the doorbell table, and on its key. */
function doorbellStatements(fn: AppFunction): { table: Statement[]; key: Statement[] } {
  const statements = cfn.roleStatements(cfn.logicalId(fn.role));
  const on = (id: string) => statements.filter((s) => s.resource.includes(`"${id}"`));
  return { table: on(cfn.logicalId(stack.doorbell.table)), key: on(cfn.logicalId(stack.doorbell.key)) };
}

describe('the doorbell', () => {
  it('is one table encrypted with a rotating customer-managed key, with point-in-time recovery', () => {
    const table = cfn.resources[cfn.logicalId(stack.doorbell.table)]!.Properties;
    expect(table.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS' });
    expect(JSON.stringify(table.Replicas)).toContain(cfn.logicalId(stack.doorbell.key));
    expect(cfn.resources[cfn.logicalId(stack.doorbell.key)]!.Properties.EnableKeyRotation).toBe(true);
  });

  it('is named to every function (DOORBELL_TABLE_NAME)', () => {
    for (const fn of functions()) {
      const variables = (
        cfn.resources[cfn.logicalId(fn.function)]!.Properties.Environment as {
          Variables: Record<string, unknown>;
        }
      ).Variables;
      expect(variables.DOORBELL_TABLE_NAME, fn.node.path).toEqual({
        Ref: cfn.logicalId(stack.doorbell.table),
      });
    }
  });

  it('is rung by exactly the functions built with the database, on its one item only', () => {
    for (const fn of functions()) {
      const { table, key } = doorbellStatements(fn);
      const writes = fn.adapters.includes('database');
      expect(fn.adapters.includes('doorbell'), fn.node.path).toBe(writes);
      expect(
        table.some((s) => s.actions.includes('dynamodb:UpdateItem')),
        fn.node.path,
      ).toBe(writes);
      for (const statement of table) {
        expect(statement.condition, fn.node.path).toEqual({
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [DOORBELL_TABLE.itemKey] },
        });
        expect(statement.actions.every((a) => a === 'dynamodb:UpdateItem' || a === 'dynamodb:GetItem')).toBe(
          true,
        );
      }
      for (const statement of key) {
        expect(statement.condition, fn.node.path).toEqual({
          StringEquals: { 'kms:ViaService': 'dynamodb.eu-central-1.amazonaws.com' },
        });
      }
    }
    expect(doorbellStatements(stack.api.functions.get('getHealth')!).table).toEqual([]);
  });

  it('is read (GetItem) by the three scheduled jobs and no other function', () => {
    const jobs = [
      stack.events.outboxPublisher.function,
      stack.events.contractExpirer.function,
      stack.auditCheckpoints.job.function,
    ];
    const readers = functions().filter((fn) =>
      doorbellStatements(fn).table.some((s) => s.actions.includes('dynamodb:GetItem')),
    );
    expect(readers.map((fn) => fn.node.path).sort()).toEqual(jobs.map((fn) => fn.node.path).sort());
  });
});
