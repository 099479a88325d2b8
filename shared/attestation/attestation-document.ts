/**
 * The payload of a Nitro attestation document: its fields, their types and their size bounds as AWS
 * documents them (aws-nitro-enclaves-nsm-api, `docs/attestation_process.md`, §3.2.2.2 "Check content").
 *
 * Strict about what the fields mean, not about how valid CBOR encodes them:
 * - an optional field (`public_key`, `user_data`, `nonce`) that is ABSENT and one that is NULL both mean
 *   "not present": firmware generations differ (the 2022 documents send `nonce: null`);
 * - keys this verifier does not know are accepted and ignored, and known ones are type-checked. AWS may add
 *   fields to the (signed) payload; refusing them would stop every enclave the day new firmware ships, and
 *   an unknown field can never reach the claims, so ignoring it cannot widen what is trusted. Duplicate keys
 *   are refused by the decoder, so no two readers can see different values.
 */
import { type CborMapKey, type CborValue, decodeCbor } from './cbor.ts';
import {
  MAX_CABUNDLE_LENGTH,
  MAX_CERTIFICATE_BYTES,
  MAX_DOCUMENT_PCR_INDEX,
  MAX_MODULE_ID_LENGTH,
  MAX_USER_FIELD_BYTES,
  SHA384_PCR_BYTES,
} from './constants.ts';
import { cborFailure, failure, type Parsed } from './cose.ts';

/** The decoded payload, type- and bound-checked but NOT verified (no chain, no signature). */
export interface AttestationPayload {
  readonly moduleId: string;
  readonly digest: 'SHA384';
  readonly timestamp: number;
  /** PCR index → value, in ascending index order. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly certificate: Uint8Array;
  readonly cabundle: readonly Uint8Array[];
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
}

/** Decodes the payload byte string of a COSE_Sign1 and checks every field, in the AWS schema's order. */
export function parseAttestationPayload(payload: Uint8Array): Parsed<AttestationPayload> {
  let root: CborValue;
  try {
    root = decodeCbor(payload);
  } catch (error) {
    return cborFailure('The attestation payload', error);
  }
  if (root.type !== 'map') return failure('malformed', 'The attestation payload is not a CBOR map.');
  const fields = root.entries;

  const moduleId = fields.get('module_id');
  if (moduleId?.type !== 'text') return missingOrWrong(fields, 'module_id', 'a text string');
  if (moduleId.value.length === 0 || moduleId.value.length > MAX_MODULE_ID_LENGTH) {
    return failure('malformed', `The field "module_id" must hold 1 to ${MAX_MODULE_ID_LENGTH} characters.`);
  }

  const digest = fields.get('digest');
  if (digest?.type !== 'text') return missingOrWrong(fields, 'digest', 'a text string');
  if (digest.value !== 'SHA384') {
    return failure(
      'malformed',
      `The field "digest" is ${JSON.stringify(digest.value.slice(0, 16))}, not "SHA384".`,
    );
  }

  const timestamp = fields.get('timestamp');
  if (timestamp?.type !== 'integer') return missingOrWrong(fields, 'timestamp', 'an unsigned integer');
  // A bigint here means more than 2^53 - 1 ms (year 287396): no NSM clock says that.
  if (typeof timestamp.value !== 'number' || timestamp.value <= 0) {
    return failure(
      'malformed',
      'The field "timestamp" is not a positive number of milliseconds within range.',
    );
  }

  const pcrsItem = fields.get('pcrs');
  if (pcrsItem?.type !== 'map') return missingOrWrong(fields, 'pcrs', 'a map');
  const pcrs = parsePcrs(pcrsItem.entries);
  if (!pcrs.ok) return pcrs;

  const certificate = fields.get('certificate');
  if (certificate?.type !== 'bytes') return missingOrWrong(fields, 'certificate', 'a byte string');
  if (certificate.value.length === 0 || certificate.value.length > MAX_CERTIFICATE_BYTES) {
    return failure('malformed', `The field "certificate" must hold 1 to ${MAX_CERTIFICATE_BYTES} bytes.`);
  }

  const cabundleItem = fields.get('cabundle');
  if (cabundleItem?.type !== 'array') return missingOrWrong(fields, 'cabundle', 'an array');
  if (cabundleItem.items.length === 0 || cabundleItem.items.length > MAX_CABUNDLE_LENGTH) {
    return failure('malformed', `The field "cabundle" must hold 1 to ${MAX_CABUNDLE_LENGTH} certificates.`);
  }
  const cabundle: Uint8Array[] = [];
  for (const [i, item] of cabundleItem.items.entries()) {
    if (item.type !== 'bytes' || item.value.length === 0 || item.value.length > MAX_CERTIFICATE_BYTES) {
      return failure(
        'malformed',
        `cabundle[${i}] is not a byte string of 1 to ${MAX_CERTIFICATE_BYTES} bytes.`,
      );
    }
    cabundle.push(item.value);
  }

  const publicKey = optionalBytes(fields, 'public_key');
  if (!publicKey.ok) return publicKey;
  const userData = optionalBytes(fields, 'user_data');
  if (!userData.ok) return userData;
  const nonce = optionalBytes(fields, 'nonce');
  if (!nonce.ok) return nonce;

  return {
    ok: true,
    value: {
      moduleId: moduleId.value,
      digest: 'SHA384',
      timestamp: timestamp.value,
      pcrs: pcrs.value,
      certificate: certificate.value,
      cabundle,
      publicKey: publicKey.value,
      userData: userData.value,
      nonce: nonce.value,
    },
  };
}

function missingOrWrong(fields: ReadonlyMap<CborMapKey, CborValue>, name: string, type: string) {
  return fields.has(name)
    ? failure('malformed', `The field "${name}" is not ${type}.`)
    : failure('malformed', `The required field "${name}" is missing.`);
}

function parsePcrs(entries: ReadonlyMap<CborMapKey, CborValue>): Parsed<ReadonlyMap<number, Uint8Array>> {
  if (entries.size === 0 || entries.size > MAX_DOCUMENT_PCR_INDEX + 1) {
    return failure('malformed', `The field "pcrs" must hold 1 to ${MAX_DOCUMENT_PCR_INDEX + 1} registers.`);
  }
  const indices: number[] = [];
  for (const [index, value] of entries) {
    if (typeof index !== 'number' || index < 0 || index > MAX_DOCUMENT_PCR_INDEX) {
      return failure(
        'malformed',
        `The field "pcrs" has a key that is not a PCR index 0 to ${MAX_DOCUMENT_PCR_INDEX}.`,
      );
    }
    // The digest is SHA384, so every register is 48 bytes (AWS allows 32/48/64 for other digests only).
    if (value.type !== 'bytes' || value.value.length !== SHA384_PCR_BYTES) {
      return failure('malformed', `PCR${index} is not a ${SHA384_PCR_BYTES}-byte string.`);
    }
    indices.push(index);
  }
  indices.sort((a, b) => a - b);
  const pcrs = new Map<number, Uint8Array>();
  for (const index of indices) pcrs.set(index, (entries.get(index) as { value: Uint8Array }).value);
  return { ok: true, value: pcrs };
}

function optionalBytes(fields: ReadonlyMap<CborMapKey, CborValue>, name: string): Parsed<Uint8Array | null> {
  const item = fields.get(name);
  // Absent and null are the same: "not present".
  if (item === undefined || (item.type === 'simple' && item.value === null)) return { ok: true, value: null };
  if (item.type !== 'bytes')
    return failure('malformed', `The field "${name}" is neither a byte string nor null.`);
  if (item.value.length > MAX_USER_FIELD_BYTES) {
    return failure('malformed', `The field "${name}" holds more than ${MAX_USER_FIELD_BYTES} bytes.`);
  }
  return { ok: true, value: item.value };
}
