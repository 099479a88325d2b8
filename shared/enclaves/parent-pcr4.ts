import { createHash } from 'node:crypto';
import { SHA384_PCR_BYTES } from '../attestation/constants.ts';

/**
 * PCR4 of an enclave on `instanceId`, as Nitro computes it: SHA-384(48 zero bytes ‖ instance id as ASCII).
 * A module of its own: the contract keys' policy names parents by it without the attestation library.
 * @returns lower-case hex of 48 bytes.
 */
export function pcr4ForInstanceId(instanceId: string): string {
  return createHash('sha384')
    .update(new Uint8Array(SHA384_PCR_BYTES))
    .update(instanceId, 'ascii')
    .digest('hex');
}
