/**
 * `npm run lint:asl`: validates the provisioning state machine's definition, as the CDK code renders it
 * (the same `buildProvisioningDefinition` the deployed state machine uses), against the Amazon States
 * Language with asl-validator: the schema of every state and field, and the syntax of every path.
 * Exits 1 with the validator's errors when it is not valid.
 */
import { createRequire } from 'node:module';
import { renderProvisioningDefinition } from './local/services/stepfunctions/provisioning-definition.ts';

type AslValidator = (definition: unknown) => { isValid: boolean; errorsText: (separator?: string) => string };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const { definition } = renderProvisioningDefinition();
const { isValid, errorsText } = aslValidator(definition);
const states = Object.keys((definition as { States: object }).States).length;
if (!isValid) {
  process.stderr.write(`lint:asl: the provisioning state machine is not valid ASL:\n${errorsText('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`lint:asl: the provisioning state machine (${states} states) is valid ASL\n`);
