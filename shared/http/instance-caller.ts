import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ForbiddenError, UnauthorizedError } from '../domain/errors.ts';

/**
 * The caller of an `iam` route: an enclave parent instance, authenticated by API Gateway's IAM authorizer
 * from the SigV4 signature made with its instance-profile credentials. The credentials of an instance
 * profile's role are an STS session named after the instance, so the verified caller ARN is
 * `arn:<partition>:sts::<account>:assumed-role/<role>/<instance-id>`: the instance id comes from AWS, not
 * from anything the caller wrote.
 */
export interface InstanceCaller {
  readonly kind: 'instance';
  readonly instanceId: string;
  /** The verified caller ARN (for the audit trail). */
  readonly callerArn: string;
}

const ASSUMED_ROLE =
  /^arn:aws[a-z-]*:sts::(\d{12}):assumed-role\/([\w+=,.@-]{1,64})\/(i-(?:[0-9a-f]{8}|[0-9a-f]{17}))$/;

/** Where API Gateway's IAM authorizer puts the verified caller. */
interface IamAuthorizerContext {
  readonly iam?: { readonly userArn?: unknown };
}

/**
 * The instance calling, from the IAM authorizer's context. Fails closed: no verified ARN is a 401; an ARN
 * that is not a session of `parentRoleName` (a user, another role, a role session not named after an
 * instance) is a 403.
 * @example
 * instanceCaller(event, 'EnclaveParentRole') // { kind: 'instance', instanceId: 'i-0123456789abcdef0', … }
 */
export function instanceCaller(
  event: APIGatewayProxyEventV2,
  parentRoleName: string | undefined,
): InstanceCaller {
  const authorizer = (event.requestContext as { authorizer?: IamAuthorizerContext }).authorizer;
  const arn = authorizer?.iam?.userArn;
  if (typeof arn !== 'string' || arn.length === 0 || arn.length > 2048) {
    throw new UnauthorizedError(
      'This route accepts only requests signed with an enclave parent instance role.',
      'AWS4-HMAC-SHA256',
    );
  }
  const match = ASSUMED_ROLE.exec(arn);
  if (!match || parentRoleName === undefined || match[2] !== parentRoleName) {
    throw new ForbiddenError('Only an enclave parent instance may call this route.');
  }
  return { kind: 'instance', instanceId: match[3]!, callerArn: arn };
}

/** The ARN an instance-profile session of `roleName` on `instanceId` has (the local stack's stand-in). */
export function instanceSessionArn(roleName: string, instanceId: string, accountId = '000000000000'): string {
  return `arn:aws:sts::${accountId}:assumed-role/${roleName}/${instanceId}`;
}
