import { runSimulation, runUnsafeSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { LOCAL_ACCOUNT, type LocalPrincipal, type PolicyDocument } from './stack-policies.ts';

/**
 * The local IAM stand-in: decides whether a principal of the synthesized stack may make a call, by evaluating
 * the identity policies the template gives its role with `@cloud-copilot/iam-simulate` (an offline IAM policy
 * evaluator: every condition operator, wildcards, explicit and implicit denials).
 *
 * A call is one or more checks, as AWS authorises it: RunInstances, for instance, is authorised on each
 * resource it touches (the instance, its volume, the network interface, the subnet, …) and on the tags and
 * the role it passes, each with the condition keys the service derives for that resource. The service's
 * stand-in derives the checks (it knows the request and its resources); this only evaluates them, and the
 * stand-in fails the call as its service would (`UnauthorizedOperation`, `AccessDeniedException`).
 */

/** One authorisation AWS makes for a call: an action on a resource, with the request's condition keys. */
export interface AuthorizationCheck {
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * Where AWS authorises the action on a resource that the Service Authorization Reference (the evaluator's
   * data) does not list for it: why. Such a check is evaluated as AWS evaluates it, without the evaluator's
   * validation of the resource type.
   */
  readonly beyondReference?: string;
  /**
   * The resource's own policy where the service evaluates one: a KMS key's key policy, without which no
   * identity policy reaches the key (a key policy that trusts the account delegates to IAM).
   */
  readonly resourcePolicy?: PolicyDocument;
}

/** A check the principal's policies do not allow. */
export interface Denial {
  readonly check: AuthorizationCheck;
  readonly principal: LocalPrincipal;
  readonly result: 'ImplicitlyDenied' | 'ExplicitlyDenied';
}

/** The first check of a call that the principal may not make, or `undefined` when all are allowed. */
export async function firstDenial(
  principal: LocalPrincipal,
  checks: readonly AuthorizationCheck[],
): Promise<Denial | undefined> {
  for (const check of checks) {
    const simulation: Simulation = {
      identityPolicies: principal.policies.map((p) => ({ name: p.name, policy: p.policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: check.resourcePolicy,
      request: {
        principal: principal.roleArn,
        action: check.action,
        resource: { resource: check.resource, accountId: LOCAL_ACCOUNT },
        contextVariables: Object.fromEntries(
          Object.entries(check.context ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : [...v]]),
        ),
      },
    } as Simulation;
    if (check.beyondReference !== undefined) {
      const result = runUnsafeSimulation(
        {
          ...simulation,
          // The unsafe engine loads a resource policy without a name, then names its findings after it
          // (and fails); the library's validated form (ValidatedPolicy, a plain value) carries the name.
          ...(check.resourcePolicy
            ? {
                resourcePolicy: {
                  __validated: true,
                  policyDocument: check.resourcePolicy,
                  metadata: { name: 'ResourcePolicy' },
                  errors: [],
                },
              }
            : {}),
        } as Simulation,
        {},
      );
      if (result !== 'Allowed') return { check, principal, result };
      continue;
    }
    const response = await runSimulation(simulation, {});
    if (response.resultType === 'error') {
      // A malformed check is a bug in the stand-in's derivation (a key the action does not take): loud.
      throw new Error(
        `the IAM stand-in could not evaluate ${check.action} on ${check.resource}: ${JSON.stringify(response.errors)}`,
      );
    }
    if (response.overallResult !== 'Allowed') {
      return { check, principal, result: response.overallResult as Denial['result'] };
    }
  }
  return undefined;
}

/** AWS's wording of a denial (the part after the service's own prefix). */
export function denialMessage(denial: Denial): string {
  const { action, resource } = denial.check;
  const why =
    denial.result === 'ExplicitlyDenied'
      ? `with an explicit deny in an identity-based policy`
      : `because no identity-based policy allows the ${action} action`;
  return `User: ${denial.principal.sessionArn} is not authorized to perform: ${action} on resource: ${resource} ${why}`;
}
