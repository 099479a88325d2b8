import { InstantSchema } from './instants.ts';
import { text } from './text.ts';
import * as z from './zod.ts';

/**
 * The terms a Training Data Provider and a Training Data Consumer agree on. Strict: unknown keys are
 * rejected and every string, list and number is bounded, so a stored contract can never grow without limit.
 */
const ShortText = z.lazy(() => text({ min: 1, max: 200 }));
const LongText = z.lazy(() => text({ min: 1, max: 2000, lines: 'multi' }));
const Identifier = z.lazy(() =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(128),
      z.regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'letters, digits and . _ : / - only'),
    ),
);
const IsoInstant = InstantSchema;

export const ENCRYPTION_LEVELS = ['Standard', 'High', 'Military'] as const;
export const OPERATIONS = ['read', 'train', 'fine-tune', 'evaluate', 'embed', 'inference'] as const;
export const FRAMEWORKS = ['GDPR', 'HIPAA', 'SOC2', 'ISO27001', 'CCPA', 'PCI-DSS', 'FedRAMP'] as const;
export const MODEL_DISTRIBUTION = ['none', 'internal', 'licensed', 'public'] as const;

export const DatasetSchema = z.lazy(() =>
  z.strictObject({
    id: Identifier,
    name: z.optional(ShortText),
    /** Where the provider keeps the data (e.g. an S3 URI); the consumer never receives raw access. */
    location: z.optional(text({ max: 2048 })),
    permissions: z.optional(
      z.array(z.enum(OPERATIONS)).check(z.minLength(1), z.maxLength(OPERATIONS.length)),
    ),
  }),
);

export const ContractTermsSchema = z.lazy(() =>
  z
    .strictObject({
      dataAccess: z.strictObject({
        datasets: z.array(DatasetSchema).check(z.minLength(1), z.maxLength(100)),
        allowedOperations: z.array(z.enum(OPERATIONS)).check(z.minLength(1), z.maxLength(OPERATIONS.length)),
      }),
      usageRestrictions: z.strictObject({
        purposes: z.array(ShortText).check(z.minLength(1), z.maxLength(50)),
        prohibitedUses: z._default(z.array(ShortText).check(z.maxLength(50)), []),
        modelDistribution: z.enum(MODEL_DISTRIBUTION),
        /** Further rules on distributing models trained on the data. */
        distributionRules: z._default(z.array(LongText).check(z.maxLength(20)), []),
      }),
      retention: z.strictObject({
        rawDataDays: z.int().check(z.minimum(0), z.maximum(3650)),
        derivedArtifactsDays: z.int().check(z.minimum(0), z.maximum(36500)),
        deleteOnTermination: z.boolean(),
      }),
      security: z.strictObject({
        encryptionLevel: z.enum(ENCRYPTION_LEVELS),
        networkIsolation: z.boolean(),
        auditLogging: z.boolean(),
        customPolicies: z._default(
          z.array(z.strictObject({ name: ShortText, statement: LongText })).check(z.maxLength(20)),
          [],
        ),
      }),
      compliance: z.strictObject({
        frameworks: z._default(z.array(z.enum(FRAMEWORKS)).check(z.maxLength(FRAMEWORKS.length)), []),
        /** AWS regions where the data may be processed, e.g. `eu-central-1`. */
        dataResidency: z
          .array(
            z.string().check(z.regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region such as eu-central-1')),
          )
          .check(z.minLength(1), z.maxLength(30)),
      }),
      pricing: z.optional(
        z.strictObject({
          model: z.enum(['fixed', 'per-epoch', 'per-gb', 'subscription']),
          /** Decimal string, never a float: money is exact. */
          amount: z.string().check(z.regex(/^\d{1,12}(\.\d{1,4})?$/, 'a decimal amount such as 1500.00')),
          currency: z.string().check(z.regex(/^[A-Z]{3}$/, 'an ISO 4217 currency code')),
        }),
      ),
      validity: z.strictObject({ start: IsoInstant, end: IsoInstant }),
    })
    .check(
      z.superRefine((terms, ctx) => {
        if (Date.parse(terms.validity.end) <= Date.parse(terms.validity.start)) {
          ctx.addIssue({
            code: 'custom',
            path: ['validity', 'end'],
            message: 'must be after validity.start',
          });
        }
        const allowed = new Set(terms.dataAccess.allowedOperations);
        terms.dataAccess.datasets.forEach((dataset, i) => {
          for (const op of dataset.permissions ?? []) {
            if (!allowed.has(op)) {
              ctx.addIssue({
                code: 'custom',
                path: ['dataAccess', 'datasets', i, 'permissions'],
                message: `${op} is not among dataAccess.allowedOperations`,
              });
            }
          }
        });
        const ids = terms.dataAccess.datasets.map((d) => d.id);
        if (new Set(ids).size !== ids.length) {
          ctx.addIssue({
            code: 'custom',
            path: ['dataAccess', 'datasets'],
            message: 'dataset ids must be unique',
          });
        }
      }),
    ),
);

export type ContractTerms = z.infer<typeof ContractTermsSchema>;
