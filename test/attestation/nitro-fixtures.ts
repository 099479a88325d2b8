/**
 * The real AWS Nitro attestation documents in `test/fixtures/nitro` (public Apache-2.0 test data; see its
 * README). `NITRO_FIXTURES_DIR`, relative to the repository root, may point elsewhere.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeCbor } from '../../shared/attestation/cbor.ts';
import { parseCoseSign1 } from '../../shared/attestation/cose.ts';
import { type Encodable, fromCborValue } from './cbor-encoder.ts';

export const repositoryRoot = resolve(import.meta.dirname, '..', '..');
export const fixturesDir = resolve(repositoryRoot, process.env.NITRO_FIXTURES_DIR ?? 'test/fixtures/nitro');

/** One entry of the fixture folder's index.json. */
export interface NitroFixtureFacts {
  readonly bytes: number;
  readonly module_id: string;
  readonly digest: string;
  readonly timestamp_ms: number;
  readonly timestamp_iso: string;
  readonly leaf_valid_from: string;
  readonly leaf_valid_to: string;
  readonly cabundle_length: number;
  readonly debug_mode: boolean;
  readonly pcrs: Record<string, string>;
  readonly nonce_hex: string | null;
  readonly user_data_hex: string | null;
  readonly public_key_hex: string | null;
}

export interface NitroFixture {
  readonly name: string;
  readonly path: string;
  /** The file's text: base64 of the raw CBOR. */
  readonly base64: string;
  /** Raw CBOR of the COSE_Sign1 document. */
  readonly bytes: Uint8Array;
  readonly facts: NitroFixtureFacts;
  /** Its own timestamp, when it verifies. */
  readonly at: Date;
}

function load(): NitroFixture[] {
  const index = JSON.parse(readFileSync(join(fixturesDir, 'index.json'), 'utf8')) as Record<
    string,
    NitroFixtureFacts
  >;
  return Object.entries(index).map(([name, facts]) => {
    const path = join(fixturesDir, name);
    const base64 = readFileSync(path, 'utf8');
    return {
      name,
      path,
      base64,
      bytes: new Uint8Array(Buffer.from(base64, 'base64')),
      facts,
      at: new Date(facts.timestamp_ms),
    };
  });
}

export const fixtures: readonly NitroFixture[] = load();

/** The production-mode document (PCR0/1/2 measured). */
export const prodFixture: NitroFixture = fixtures.find((f) => !f.facts.debug_mode)!;

/** The AWS Nitro root as PEM, from the fixture folder (the library embeds its own copy). */
export const fixtureRootPem: string = readFileSync(join(fixturesDir, 'aws-nitro-root.pem'), 'utf8');

/** PCRs of index.json as a measurement set. */
export function measurementSetOf(fixture: NitroFixture): Record<number, string> {
  return Object.fromEntries(Object.entries(fixture.facts.pcrs).map(([k, v]) => [Number(k), v]));
}

/** The current instant: real documents' chains expired long ago. */
export const today = (): Date => new Date();

/** Hex of bytes, or null. */
export const hex = (bytes: Uint8Array | null): string | null =>
  bytes === null ? null : Buffer.from(bytes).toString('hex');

/** A real document taken apart: its signed parts, the decoded payload map, and its certificates. */
export interface DocumentParts {
  readonly protectedHeader: Uint8Array;
  readonly signature: Uint8Array;
  readonly payloadMap: Map<string, Encodable>;
  /** cabundle (root first). */
  readonly cabundle: readonly Uint8Array[];
  readonly leaf: Uint8Array;
}

export function documentParts(fixture: NitroFixture): DocumentParts {
  const cose = parseCoseSign1(fixture.bytes);
  if (!cose.ok) throw new Error(cose.message);
  const payloadMap = fromCborValue(decodeCbor(cose.value.payload)) as Map<string, Encodable>;
  return {
    protectedHeader: cose.value.protectedHeader,
    signature: cose.value.signature,
    payloadMap,
    cabundle: payloadMap.get('cabundle') as Uint8Array[],
    leaf: payloadMap.get('certificate') as Uint8Array,
  };
}
