import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { Observability } from '../../infra/constructs/observability.ts';

/** Who the alarm topics tell, from the deployment's context (`-c alarmEmail=…`, `-c pageEndpoint=…`). */
function subscriptionsOf(props: ConstructorParameters<typeof Observability>[2]) {
  const stack = new Stack(new App(), 'Test', { env: { account: '000000000000', region: 'eu-central-1' } });
  const observability = new Observability(stack, 'Observability', props);
  const template = Template.fromStack(stack).toJSON() as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const idOf = (topic: { node: { defaultChild?: unknown } }) =>
    stack.resolve((topic.node.defaultChild as { logicalId: string }).logicalId) as string;
  return Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::SNS::Subscription')
    .map((r) => ({
      topic:
        (r.Properties.TopicArn as { Ref: string }).Ref === idOf(observability.alarmTopic) ? 'alarms' : 'page',
      protocol: r.Properties.Protocol,
      endpoint: r.Properties.Endpoint,
    }));
}

describe('alarm topics', () => {
  it('subscribe the alarm email to every alarm and page an on-call HTTPS endpoint', () => {
    expect(
      subscriptionsOf({
        alarmEmail: 'ops@example.com',
        pageEndpoint: 'https://events.example.com/integration/1',
      }),
    ).toEqual([
      { topic: 'alarms', protocol: 'email', endpoint: 'ops@example.com' },
      { topic: 'page', protocol: 'https', endpoint: 'https://events.example.com/integration/1' },
    ]);
  });

  it('page by email when the endpoint is an address, and subscribe nobody unless told', () => {
    expect(subscriptionsOf({ pageEndpoint: 'oncall@example.com' })).toEqual([
      { topic: 'page', protocol: 'email', endpoint: 'oncall@example.com' },
    ]);
    expect(subscriptionsOf({})).toEqual([]);
  });
});
