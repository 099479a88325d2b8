import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import {
  AdminCreateUserCommand,
  AdminGetUserCommand,
  CognitoIdentityProviderClient,
  UsernameExistsException,
} from '@aws-sdk/client-cognito-identity-provider';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type { DataApiDatabase } from '../../shared/database/data-api-database.ts';
import * as z from '../../shared/domain/zod.ts';
import { insertIdentity, newIdentity } from '../../shared/identities/identity-service.ts';
import { findIdentityBySubject } from '../../shared/identities/identity-store.ts';
import { unavailable } from '../../shared/runtime/adapters.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { mapStacksWhenBundled } from '../../shared/runtime/source-mapped-stacks.ts';
import { DataApiTargetSchema, openDeploymentDatabase } from './deployment-database.ts';

/**
 * The first admin of a deployment (infra/constructs/first-admin.ts), a custom resource that runs after the
 * schema migrations when the deployment names an email (`-c firstAdminEmail=…`): it creates the Cognito user
 * (Cognito emails a temporary password; the first sign-in sets a new one) and the identity with the `admin`
 * role bound to that user's `sub`, audited as the platform's own provisioning (no actor), as the local seed
 * is. From there the admin creates every other identity with `POST /identities`, binding each to the
 * `sub` of its Cognito user.
 *
 * Idempotent: a user that exists is looked up, and an identity that exists (by name or subject) is left as it
 * is, so re-running the deployment changes nothing. Delete does nothing: who administered a deployment is
 * part of its record.
 */
const PropertiesSchema = z.extend(DataApiTargetSchema, {
  UserPoolId: z.string().check(z.minLength(1)),
  Email: z.email().check(z.maxLength(320)),
});

/** The first admin identity's name (names are unique: a second deployment run finds it). */
export const FIRST_ADMIN_NAME = 'first-admin';

mapStacksWhenBundled(import.meta.url);

const logger = new Logger();
const cognito = new CognitoIdentityProviderClient({});

export interface FirstAdminResult {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly Subject: string; readonly Created: 'true' | 'false' };
}

export async function handler(event: CloudFormationCustomResourceEvent): Promise<FirstAdminResult> {
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };
  const properties = z.parse(PropertiesSchema, event.ResourceProperties);
  const subject = await cognitoUser(properties.UserPoolId, properties.Email);
  const db = openDeploymentDatabase(properties);
  try {
    // This function signs nothing: its signer refuses.
    const deps: Dependencies = {
      db,
      signer: unavailable('signer'),
      now: () => new Date(),
      newId: randomUUID,
    };
    const identity = newIdentity(deps, {
      id: randomUUID(),
      subject,
      name: FIRST_ADMIN_NAME,
      displayName: 'First admin',
      email: properties.Email,
      roles: ['admin'],
    });
    const created = (await insertIdentity(deps, null, identity)) === 'inserted';
    if (!created) await requireAdmin(db, subject, properties.Email);
    logger.info(created ? 'first admin created' : 'first admin exists', { subject, identityId: identity.id });
    return {
      PhysicalResourceId: `first-admin:${properties.Email}`,
      Data: { Subject: subject, Created: created ? 'true' : 'false' },
    };
  } finally {
    await db.close();
  }
}

/**
 * When the identity was not inserted, the user must already be an admin: otherwise the name is taken by
 * another user (the deployment named a different email before) or the user's identity lacks the role, and a
 * deployment that reported success would leave nobody able to sign in as admin.
 */
async function requireAdmin(db: DataApiDatabase, subject: string, email: string): Promise<void> {
  const existing = await findIdentityBySubject(db, subject);
  if (existing?.roles.includes('admin')) return;
  throw new Error(
    existing
      ? `The Cognito user ${email} has identity ${existing.id} without the admin role: name another email as the first admin.`
      : `An identity named ${FIRST_ADMIN_NAME} exists for another Cognito user: a deployment created the first admin before. Create further admins with POST /identities as an admin.`,
  );
}

/** The Cognito user's `sub`: created with a verified email and an emailed temporary password, or found. */
async function cognitoUser(userPoolId: string, email: string): Promise<string> {
  try {
    const { User } = await cognito.send(
      new AdminCreateUserCommand({
        UserPoolId: userPoolId,
        Username: email,
        UserAttributes: [
          { Name: 'email', Value: email },
          { Name: 'email_verified', Value: 'true' },
        ],
        DesiredDeliveryMediums: ['EMAIL'],
      }),
    );
    return subOf(User?.Attributes);
  } catch (error) {
    if (!(error instanceof UsernameExistsException)) throw error;
    const { UserAttributes } = await cognito.send(
      new AdminGetUserCommand({ UserPoolId: userPoolId, Username: email }),
    );
    return subOf(UserAttributes);
  }
}

function subOf(attributes: readonly { Name?: string; Value?: string }[] | undefined): string {
  const sub = attributes?.find((a) => a.Name === 'sub')?.Value;
  if (!sub) throw new Error('Cognito answered a user without a sub');
  return sub;
}
