import * as z from '../domain/zod.ts';

/**
 * The runtime configuration of every function, parsed once per cold start from the environment. This is
 * the only place that reads `process.env`; the CDK sets exactly these variables (see infra/constructs).
 */
const ConfigSchema = z.discriminatedUnion('DATABASE_DRIVER', [
  z.object({
    DATABASE_DRIVER: z.literal('data-api'),
    DATA_API_RESOURCE_ARN: z.string().check(z.minLength(1)),
    DATA_API_SECRET_ARN: z.string().check(z.minLength(1)),
    DATABASE_NAME: z.string().check(z.minLength(1)),
    /** Only for the local stack's Data API emulator. */
    DATA_API_ENDPOINT: z.optional(z.url()),
  }),
  z.object({ DATABASE_DRIVER: z.literal('postgres'), DATABASE_URL: z.string().check(z.minLength(1)) }),
  z.object({ DATABASE_DRIVER: z.literal('pglite'), PGLITE_DATA_DIR: z.optional(z.string()) }),
]);

/** An IAM role's ARN: partition, account, path and name. */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

const CommonSchema = z.object({
  /** `kms` in AWS; `local` only in the local stack (a node:crypto key). */
  SIGNER: z._default(z.enum(['kms', 'local']), 'kms'),
  /**
   * The platform's signing alias (`alias/...`), which names its current asymmetric ECC_NIST_P256 key; a
   * rotation moves it. A key id or ARN pins one key (no rotation then).
   */
  SIGNING_KEY_ID: z.optional(z.string()),
  /**
   * The value of the `enclave-contracts:platform-key` tag this deployment's platform keys carry (the stack's
   * name): set only for the function that rotates the platform key, which tags the keys it creates with it.
   */
  PLATFORM_KEY_TAG: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  /**
   * KMS key ARN of the credential key (symmetric): it wraps the data keys that seal the TOTP seeds. Set
   * only for the functions granted `sealSecrets` or `openSecrets`.
   */
  CREDENTIAL_KEY_ID: z.optional(z.string().check(z.minLength(1))),
  /**
   * The WebAuthn relying party of the passkey ceremonies: its id (a domain, e.g. `contracts.example.com`)
   * and the exact origins (comma-separated) whose pages may run them. Unset: no passkey ceremony runs.
   */
  WEBAUTHN_RP_ID: z.optional(z.string().check(z.minLength(1), z.maxLength(253))),
  WEBAUTHN_ORIGINS: z.optional(z.string().check(z.minLength(1))),
  /**
   * How many days an identity's credential (signing key, passkey, TOTP factor) and the platform's
   * countersigning key may be used before the rotation report counts them due. Read by that job only.
   */
  CREDENTIAL_MAX_AGE_DAYS: z._default(z.string().check(z.regex(/^[1-9][0-9]{0,4}$/)), '365'),
  PLATFORM_KEY_MAX_AGE_DAYS: z._default(z.string().check(z.regex(/^[1-9][0-9]{0,4}$/)), '365'),
  /**
   * The contracts' KMS keys: the value of their `enclave-contracts:contract-key` tag (the stack's name),
   * set for the functions granted `wrapDataKeys` or `manageContractKeys`.
   */
  CONTRACT_KEY_TAG: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  /**
   * For the function that syncs the contract keys only: the alias prefix (`alias/…/contracts/`) and the
   * IAM role ARNs their policies name: its own, the data-key route's, and the enclave parents'.
   */
  CONTRACT_KEY_ALIAS_PREFIX: z.optional(z.string().check(z.regex(/^alias\/[a-zA-Z0-9/_-]+\/$/))),
  CONTRACT_KEY_ADMIN_ROLE_ARN: z.optional(z.string().check(z.regex(ROLE_ARN))),
  CONTRACT_KEY_DATA_ROLE_ARN: z.optional(z.string().check(z.regex(ROLE_ARN))),
  PARENT_ROLE_ARN: z.optional(z.string().check(z.regex(ROLE_ARN))),
  EVENT_BUS_NAME: z.optional(z.string()),
  /** Base URI of problem `type`s. */
  PROBLEM_TYPE_BASE: z._default(z.url(), 'https://problems.enclave-contracts.dev/'),
  AWS_REGION: z.optional(z.string()),
  /**
   * The provisioning workflow's DynamoDB table (nonces and task tokens, `NONCE_TABLE`'s layout). Set only
   * for functions that use the workflow ports; its presence is what builds `Dependencies.workflow`.
   */
  WORKFLOW_TABLE_NAME: z.optional(z.string().check(z.minLength(1))),
  /**
   * The doorbell's DynamoDB table (`DOORBELL_TABLE`'s layout, shared/events/dynamodb-doorbell.ts): set for
   * every function, so that writes ring it and the scheduled jobs read it before they query Aurora.
   */
  DOORBELL_TABLE_NAME: z.optional(z.string().check(z.minLength(1))),
  /**
   * The IAM role (name, not ARN) enclave parent instances run with: the only role whose sessions the `iam`
   * routes accept. Unset or empty means no caller is accepted (fail closed).
   */
  PARENT_ROLE_NAME: z.optional(z.string()),
});

export type DatabaseConfig = z.infer<typeof ConfigSchema>;
export type RuntimeConfig = z.infer<typeof CommonSchema> & { database: DatabaseConfig };

export function parseConfig(env: Record<string, string | undefined>): RuntimeConfig {
  const database = z.parse(ConfigSchema, env);
  const common = z.parse(CommonSchema, env);
  if (common.SIGNER === 'kms' && !common.SIGNING_KEY_ID) {
    throw new Error('SIGNING_KEY_ID is required when SIGNER=kms');
  }
  return { ...common, database };
}
