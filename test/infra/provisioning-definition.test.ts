/**
 * The local stack runs the provisioning definition that `renderProvisioningDefinition` renders; AWS runs the
 * one the ContractsStack synthesizes. Both come from `buildProvisioningDefinition`, and this proves they
 * agree: the same states, each with the same transitions (Next, Default, Choices[].Next, Catch[].Next) and
 * the same parameters. Only the ARNs and ids differ (fake in the local one).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContractsStack } from '../../infra/contracts-stack.ts';
import {
  LOCAL_LAUNCH_TEMPLATE,
  localStepFunctionArn,
  renderProvisioningDefinition,
} from '../../infra/local/services/stepfunctions/provisioning-definition.ts';
import { projectPath } from '../../infra/project-paths.ts';
import { STATES, WORKFLOW_STEPS } from '../../shared/enclaves/provisioning-workflow.ts';

interface State {
  readonly Type: string;
  readonly Next?: string;
  readonly Default?: string;
  readonly Choices?: readonly { readonly Next: string }[];
  readonly Catch?: readonly { readonly ErrorEquals: readonly string[]; readonly Next: string }[];
  readonly Resource?: string;
  readonly Parameters?: Record<string, unknown>;
  readonly End?: boolean;
}
interface Definition {
  readonly StartAt: string;
  readonly States: Record<string, State>;
}

/** Each state's transitions: where it goes next, by what (`Next`, `Default`, `Choice[i]`, `Catch[<errors>]`). */
function graphOf(definition: Definition): Record<string, Record<string, string>> {
  return Object.fromEntries(
    Object.entries(definition.States).map(([name, s]) => {
      const edges: Record<string, string> = {};
      if (s.Next) edges.Next = s.Next;
      if (s.Default) edges.Default = s.Default;
      s.Choices?.forEach((c, i) => {
        edges[`Choice[${i}]`] = c.Next;
      });
      for (const c of s.Catch ?? []) edges[`Catch[${c.ErrorEquals.join(',')}]`] = c.Next;
      return [name, edges];
    }),
  );
}

/** The definition with every ARN and id blanked out, for comparing the rest. */
function withoutIdentifiers(definition: Definition): unknown {
  return JSON.parse(
    JSON.stringify(definition)
      .replace(/"(Resource|FunctionName|LaunchTemplateId|Version|subnetId)":"[^"]*"/g, '"$1":"…"')
      // The parents' subnets (the first one is also the first candidate's) and security group.
      .replace(
        /"(subnets|Groups)":\[([^\]]*)\]/g,
        (_, key: string, items: string) =>
          `"${key}":${JSON.stringify((JSON.parse(`[${items}]`) as unknown[]).map(() => '…'))}`,
      )
      .replace(/"Comment":"[^"]*"/g, '"Comment":"…"'),
  );
}

let local: ReturnType<typeof renderProvisioningDefinition>;
let deployed: Definition;

/**
 * The stack is built without bundling (about 6 s when run alone), synchronously: vitest can only compare the
 * time it took with this afterwards. Sized for a loaded 2-core machine running the whole suite.
 */
const SYNTH_TIMEOUT_MS = 300_000;

beforeAll(() => {
  local = renderProvisioningDefinition();
  const context = JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')).context as Record<
    string,
    unknown
  >;
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new ContractsStack(app, 'EnclaveContracts', {
    env: { account: '000000000000', region: 'eu-central-1' },
  });
  const id = stack.resolve(
    (stack.enclaveWorkflow.stateMachine.node.defaultChild as CfnElement).logicalId,
  ) as string;
  const resource = Template.fromStack(stack).toJSON().Resources[id] as {
    Properties: { DefinitionString: { 'Fn::Join': [string, unknown[]] } };
  };
  const [separator, parts] = resource.Properties.DefinitionString['Fn::Join'];
  deployed = JSON.parse(
    parts
      .map((p) => (typeof p === 'string' ? p : `<${JSON.stringify(p).replace(/["{}[\]:]/g, '')}>`))
      .join(separator),
  ) as Definition;
}, SYNTH_TIMEOUT_MS);

describe('the local provisioning definition', () => {
  it('has the same states as the deployed one, all of STATES', () => {
    const localDefinition = local.definition as unknown as Definition;
    expect(Object.keys(localDefinition.States).sort()).toEqual(Object.keys(deployed.States).sort());
    expect(Object.keys(localDefinition.States).sort()).toEqual(Object.values(STATES).sort());
    expect(localDefinition.StartAt).toBe(deployed.StartAt);
  });

  it('has the same transitions per state as the deployed one', () => {
    const localGraph = graphOf(local.definition as unknown as Definition);
    const deployedGraph = graphOf(deployed);
    expect(localGraph).toEqual(deployedGraph);
    // Not vacuous: the graph has the branches that matter.
    expect(deployedGraph[STATES.launchOrRestart]).toEqual({
      Default: STATES.chooseFirstInstanceType,
      'Choice[0]': STATES.tagRestartNonce,
    });
    expect(deployedGraph[STATES.runInstances]).toEqual({
      Next: STATES.waitForAttestation,
      'Catch[States.ALL]': STATES.launchFailed,
    });
  });

  it('is valid Amazon States Language (asl-validator: every state, field and path), and a broken copy is not', () => {
    const validate = createRequire(import.meta.url)('asl-validator') as (definition: unknown) => {
      isValid: boolean;
      errorsText: () => string;
    };
    const result = validate(structuredClone(local.definition)); // it fills in defaults (QueryLanguage)
    expect(result.isValid, result.errorsText()).toBe(true);
    const broken = structuredClone(local.definition) as unknown as Definition;
    (broken.States[STATES.waitToRelaunch] as unknown as Record<string, unknown>).SecondsPath = 'not a path';
    expect(validate(broken).isValid).toBe(false);
  });

  it('is the deployed definition but for ARNs, ids and comments', () => {
    expect(withoutIdentifiers(local.definition as unknown as Definition)).toEqual(
      withoutIdentifiers(deployed),
    );
  });

  it('names each Lambda step by its fake ARN and RunInstances by the local launch template', () => {
    const states = (local.definition as unknown as Definition).States;
    for (const step of WORKFLOW_STEPS) {
      const arn = local.stepFunctionArns[step.state];
      expect(arn).toBe(localStepFunctionArn(step.state));
      const s = states[step.state]!;
      expect(s.Resource === arn || s.Parameters?.FunctionName === arn, step.state).toBe(true);
    }
    expect(states[STATES.runInstances]?.Parameters?.LaunchTemplate).toEqual({
      LaunchTemplateId: LOCAL_LAUNCH_TEMPLATE.id,
      Version: LOCAL_LAUNCH_TEMPLATE.version,
    });
    expect(states[STATES.runInstances]?.Resource).toBe('arn:aws:states:::aws-sdk:ec2:runInstances');
  });

  it('renders fast enough for the local stack to render it at start', () => {
    const started = performance.now();
    renderProvisioningDefinition();
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
