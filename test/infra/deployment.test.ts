/**
 * What a real deployment needs from the template beyond what validators check: no OAuth grants nobody
 * uses, and physical names that let a second stage live in the same account and region.
 * Synthesized without bundling (the bundles are checked in contracts-stack.test.ts).
 */
import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContractsStack, type ContractsStackProps } from '../../infra/contracts-stack.ts';
import { projectPath } from '../../infra/project-paths.ts';
import { type CfnResource, StackTemplate } from '../support/stack-template.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] }>;

function synthStack(stage?: string, props: Partial<ContractsStackProps> = {}): ContractsStack {
  const context = (JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')) as { context: object }).context;
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  return new ContractsStack(app, stage ? `EnclaveContracts-${stage}` : 'EnclaveContracts', {
    env: { account: '000000000000', region: 'eu-central-1' },
    ...(stage ? { stage } : {}),
    ...props,
  });
}

const resourcesOf = (stack: ContractsStack) => Template.fromStack(stack).toJSON().Resources as Resources;
const synth = (stage?: string): Resources => resourcesOf(synthStack(stage));

const ofType = (resources: Resources, type: string) =>
  Object.values(resources)
    .filter((r) => r.Type === type)
    .map((r) => r.Properties);

/** Every physical name the template fixes, of the resources that have one. */
function fixedNames(resources: Resources): string[] {
  return [
    ...ofType(resources, 'AWS::RDS::DBCluster').map((p) => String(p.DBClusterIdentifier)),
    ...ofType(resources, 'AWS::KMS::Alias').map((p) => String(p.AliasName)),
    ...ofType(resources, 'AWS::Logs::LogGroup')
      .map((p) => p.LogGroupName)
      .filter((name): name is string => typeof name === 'string'),
  ].sort();
}

let main: Resources;
let stagingStack: ContractsStack;
let staging: Resources;

beforeAll(() => {
  main = synth();
  stagingStack = synthStack('staging', { firstAdminEmail: 'admin@example.com' });
  staging = resourcesOf(stagingStack);
}, 300_000);

describe('a deployable template', () => {
  it('gives the app client no OAuth grants: clients sign in with SRP and send the token', () => {
    const [client] = ofType(main, 'AWS::Cognito::UserPoolClient');
    expect(client?.AllowedOAuthFlowsUserPoolClient).toBe(false);
    expect(client?.AllowedOAuthFlows).toBeUndefined();
    expect(client?.AllowedOAuthScopes).toBeUndefined();
    expect(client?.CallbackURLs).toBeUndefined();
    expect(client?.ExplicitAuthFlows).toEqual(['ALLOW_USER_SRP_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH']);
  });

  it('names its fixed physical names after its stage, so two stages fit in one account and region', () => {
    expect(fixedNames(main)).toEqual([
      '/aws/rds/cluster/enclave-contracts-main/postgresql',
      'alias/enclave-contracts/main/platform-signing',
      'enclave-contracts-main',
    ]);
    const clash = fixedNames(staging).filter((name) => fixedNames(main).includes(name));
    expect(clash).toEqual([]);
    expect(fixedNames(staging)).toContain('enclave-contracts-staging');
  });

  it('keeps on cdk destroy what holds evidence or decrypts it, on purpose, and deletes the rest', () => {
    const kept: Record<string, number> = {};
    for (const resource of Object.values(main) as { Type: string; DeletionPolicy?: string }[]) {
      const policy = resource.DeletionPolicy ?? 'Delete';
      if (policy !== 'Delete')
        kept[`${resource.Type} ${policy}`] = (kept[`${resource.Type} ${policy}`] ?? 0) + 1;
    }
    // The database (audit trail, contracts) leaves a final snapshot; the user pool keeps who signed; log
    // groups keep the requests' audit context until their retention ends; the keys decrypt all of these.
    expect(Object.keys(kept).sort()).toEqual([
      'AWS::Cognito::UserPool Retain',
      'AWS::KMS::Key Retain',
      'AWS::Logs::LogGroup Retain',
      'AWS::RDS::DBCluster Snapshot',
    ]);
    expect(kept['AWS::RDS::DBCluster Snapshot']).toBe(1);
    expect(kept['AWS::Cognito::UserPool Retain']).toBe(1);
    const logGroups = Object.values(main).filter((r) => r.Type === 'AWS::Logs::LogGroup');
    for (const group of logGroups) expect(group.Properties.RetentionInDays).toEqual(expect.any(Number));
  });

  it('creates the first admin named by the deployment, after the migrations, with nothing but what it needs', () => {
    expect(ofType(main, 'Custom::FirstAdmin')).toEqual([]);
    const cfn = new StackTemplate(stagingStack, staging as Record<string, CfnResource>);
    const [[id, resource] = []] = cfn.ofType('Custom::FirstAdmin');
    const firstAdmin = stagingStack.firstAdmin!;
    expect(resource?.Properties).toMatchObject({
      Email: 'admin@example.com',
      UserPoolId: { Ref: cfn.logicalId(stagingStack.api.userPool) },
      Database: 'contracts',
    });
    expect(staging[id!]?.DependsOn).toContain(cfn.logicalId(stagingStack.database.migrations));
    // The secrets' first rotations wait for the first admin too (it signs in as the master user).
    for (const schedule of stagingStack.database.rotationSchedules) {
      expect(staging[cfn.logicalId(schedule)]?.DependsOn).toContain(id);
    }
    const statements = cfn.roleStatements(cfn.logicalId(firstAdmin.function.role));
    // As the master, never with the application's secret.
    const secretReads = statements.filter((s) => s.actions.includes('secretsmanager:GetSecretValue'));
    expect(secretReads.map((s) => JSON.parse(s.resource))).toEqual([
      stagingStack.resolve(stagingStack.database.masterSecret.secretArn),
    ]);
    const cognito = statements.filter((s) => s.actions.some((a) => a.startsWith('cognito-idp:')));
    expect(cognito).toHaveLength(1);
    expect([...cognito[0]!.actions].sort()).toEqual([
      'cognito-idp:AdminCreateUser',
      'cognito-idp:AdminGetUser',
    ]);
    expect(JSON.parse(cognito[0]!.resource)).toEqual({
      'Fn::GetAtt': [cfn.logicalId(stagingStack.api.userPool), 'Arn'],
    });
    const actions = new Set(statements.flatMap((s) => s.actions));
    expect([...actions].filter((a) => !/^(logs|xray|rds-data|secretsmanager|cognito-idp):/.test(a))).toEqual([
      'kms:Decrypt', // the database secret, through Secrets Manager only
    ]);
    const decrypt = statements.find((s) => s.actions.includes('kms:Decrypt'));
    expect(JSON.parse(decrypt!.resource)).toEqual({
      'Fn::GetAtt': [cfn.logicalId(stagingStack.database.secretEncryptionKey), 'Arn'],
    });
    expect(JSON.stringify(decrypt!.condition)).toContain('"kms:ViaService":"secretsmanager.');
  });

  it('refuses a first admin email that is not an address', () => {
    expect(() => synthStack('staging', { firstAdminEmail: 'admin' })).toThrow(
      /firstAdminEmail must be an email address/,
    );
  });

  it('refuses a stage that cannot be part of a name', () => {
    expect(() => synth('Prod')).toThrow(/stage must be 1-20 lowercase letters, digits or hyphens/);
  });
});
