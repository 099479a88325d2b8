/**
 * A local stand-in for the AWS Nitro Secure Module (NSM): it produces attestation documents in the exact
 * format real Nitro hardware emits (an untagged CBOR COSE_Sign1 with ES384, the payload's keys in the NSM's
 * order, 16 PCRs of 48 bytes (32 when asked for PCR16–31), absent optional fields as CBOR null, a raw r‖s
 * signature), signed by a locally generated P-384 chain shaped like AWS's (root → regional → zonal →
 * per-instance CA → per-enclave leaf).
 *
 * The simulator's root is NOT the AWS Nitro root: a verifier trusts these documents only when the caller
 * passes `simulator.rootPem` (or `rootDer`) as a trust anchor explicitly.
 *
 * Defects (`AttestRequest.defects`) produce documents that a correct verifier must refuse, each with a
 * known failure code (`DEFECT_FAILURE_CODES`).
 */
import 'reflect-metadata';
import { createHash, KeyObject, randomBytes, sign, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { FailureCode } from '../../../../shared/attestation/types.ts';
import { CborMap, type CborValue, encodeCbor } from './nitro-cbor.ts';

// @peculiar/x509 defaults to globalThis.crypto; pin node's webcrypto so the module works the same under
// any runner. The library's DOM `Crypto` type and node's webcrypto type differ only nominally.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** Bytes given as raw bytes or as a string (UTF-8). */
export type BytesLike = string | Uint8Array;

/** Defects a test can ask for; each makes a document that a correct verifier refuses. */
export const DEFECTS = [
  'wrong_signature',
  'expired_leaf',
  'not_yet_valid_leaf',
  'foreign_root',
  'debug_mode',
  'wrong_pcrs',
  'broken_chain',
  'non_ca_intermediate',
  'wrong_algorithm',
  'trailing_bytes',
] as const;
/** One defect a test can inject into a document. */
export type Defect = (typeof DEFECTS)[number];

/**
 * The failure code a correct verifier returns for each defect, when the document is otherwise valid, the
 * simulator's root is trusted and the policy pins the declared image's PCRs (and does not allow debug).
 */
export const DEFECT_FAILURE_CODES: Readonly<Record<Defect, FailureCode>> = {
  // COSE signature by a different P-384 key than the leaf's.
  wrong_signature: 'bad_signature',
  // Leaf window ended an hour before the document's timestamp (verify "at" that timestamp or later).
  expired_leaf: 'expired',
  // Leaf window starts an hour after the document's timestamp.
  not_yet_valid_leaf: 'not_yet_valid',
  // The whole chain descends from another root with the same subject name but another key.
  foreign_root: 'untrusted_root',
  // PCR0/1/2 and PCR8 zero, as the NSM reports for an enclave started with --debug-mode.
  debug_mode: 'debug_mode',
  // PCR0/1/2 of a different image than the one declared.
  wrong_pcrs: 'pcr_mismatch',
  // The per-instance CA names its parent as issuer but is signed by an unrelated key.
  broken_chain: 'chain_invalid',
  // The per-instance CA is correctly signed but has basicConstraints cA=false and no keyCertSign.
  non_ca_intermediate: 'chain_invalid',
  // Protected header says ES256 (-7) although the signature is ES384.
  wrong_algorithm: 'unsupported_algorithm',
  // A byte after the COSE_Sign1 array.
  trailing_bytes: 'malformed',
};

/**
 * A declared enclave image. The simulator derives PCR0/1/2 from it deterministically (see
 * `imageMeasurements`); `kernel` and `application` default to labelled parts of `eif`.
 */
export interface ImageDeclaration {
  /** The image as a whole (its bytes, or any identifying string such as "contract-runner:1.4.2"). */
  readonly eif: BytesLike;
  /** Kernel + bootstrap ramdisk (PCR1). */
  readonly kernel?: BytesLike;
  /** Application ramdisk (PCR2). */
  readonly application?: BytesLike;
}

/**
 * The image the local stack's simulated enclaves run unless told otherwise; `test/fixtures/enclave-create.json`
 * carries its measurements.
 */
export const LOCAL_DEFAULT_IMAGE: ImageDeclaration = { eif: 'enclave-contracts/training-runner:1.0.0' };

/** PCR0/1/2 of an image, lower-case hex of 48 bytes each. */
export interface ImageMeasurements {
  readonly pcr0: string;
  readonly pcr1: string;
  readonly pcr2: string;
}

/** What an enclave asks its NSM to attest, plus simulator-only knobs. */
export interface AttestRequest {
  /** The enclave's image; PCR0/1/2 are derived from it (zero when absent, unless `pcrs` sets them). */
  readonly image?: ImageDeclaration;
  /**
   * Explicit PCR values (48-byte values as bytes or hex), applied after the derived ones. Indexes 0–31;
   * setting any of PCR16–31 (the registers an enclave extends itself) makes the document carry all 32
   * registers, the rest zero, as the AWS schema allows; otherwise it carries PCR0–15, like real documents.
   */
  readonly pcrs?: Readonly<Partial<Record<number, BytesLike>>>;
  /** The parent instance id (`i-` + 8 or 17 hex digits); PCR4 and `module_id` derive from it. */
  readonly instanceId: string;
  /** 16 hex digits of the enclave (`module_id` suffix); default: one stable id per instance. */
  readonly enclaveId?: string;
  /** The parent's IAM role ARN; PCR3 = SHA-384(48 zero bytes ‖ ARN). Absent: PCR3 stays zero. */
  readonly iamRoleArn?: string;
  /** The EIF signing certificate (DER or PEM); PCR8 = SHA-384(48 zero bytes ‖ SHA-384(DER)). */
  readonly signingCertificate?: BytesLike;
  /** At most 1024 bytes each, as the NSM enforces. */
  readonly nonce?: Uint8Array;
  readonly userData?: Uint8Array;
  readonly publicKey?: Uint8Array;
  /** The document's timestamp (default: the simulator's clock). */
  readonly timestamp?: Date | number;
  /** An enclave started with --debug-mode: PCR0/1/2 and PCR8 are zero; PCR3/PCR4 stay measured. */
  readonly debug?: boolean;
  readonly defects?: readonly Defect[];
  /**
   * How absent `public_key`/`user_data`/`nonce` are encoded: `null` (what the documents in
   * test/fixtures/nitro carry) or `omit` (the keys left out, which CBOR-level readers must also accept).
   */
  readonly absentFields?: 'null' | 'omit';
  /** Override the simulator's leaf policy for this document (see `SimulatorOptions.leaf`). */
  readonly leaf?: LeafPolicy;
}

/**
 * `per-enclave` (the NSM's behaviour, and the verifier's warm path): one leaf per enclave, reused until the
 * document timestamp leaves its ~3 h window. `per-document`: a fresh leaf key and certificate every time.
 */
export type LeafPolicy = 'per-enclave' | 'per-document';

/** Options of `NitroSimulator.create`. */
export interface SimulatorOptions {
  /** CA certificates between the root and the leaf (default 3: regional, zonal, instance, like AWS). */
  readonly intermediates?: number;
  /** The clock: a fixed instant or a function (default: the system clock). Sets default timestamps. */
  readonly now?: Date | (() => Date);
  /** AWS region used in certificate names (default us-east-1). */
  readonly region?: string;
  /** Default leaf policy (default `per-enclave`). */
  readonly leaf?: LeafPolicy;
}

const PCR_BYTES = 48;
const PCR_COUNT = 16;
/** AWS schema: `index = 0..31`. */
const EXTENDED_PCR_COUNT = 32;
const MAX_OPTIONAL_FIELD_BYTES = 1024;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** AWS leaves start a few seconds before the first document and live 3 h plus those seconds. */
const LEAF_BACKDATE_MS = 3_000;
const LEAF_LIFETIME_MS = 3 * HOUR + LEAF_BACKDATE_MS;
const ECDSA_P384: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-384' };
const SHA384_SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-384' };
/** COSE protected header `{1: -35}` (alg: ES384), encoded as the NSM does: a1 01 38 22. */
const PROTECTED_ES384 = encodeCbor(new CborMap([[1, -35]]));
const PROTECTED_ES256 = encodeCbor(new CborMap([[1, -7]]));
const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();

function bytesOf(value: BytesLike): Uint8Array {
  return typeof value === 'string' ? textEncoder.encode(value) : value;
}

function sha384(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash('sha384');
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * A TPM-style extend: `SHA-384(pcr ‖ data)`. Nitro reports PCR3/PCR4 as one extend of the zero register
 * with the ASCII role ARN / instance id (checked against real documents for PCR4).
 * @param pcr the current 48-byte register value.
 * @param data what is measured into it.
 * @returns the new register value.
 */
export function extendPcr(pcr: Uint8Array, data: Uint8Array): Uint8Array {
  return sha384(pcr, data);
}

/**
 * PCR3 as AWS computes it: SHA-384(48 zero bytes ‖ the parent's IAM role ARN as ASCII).
 * @param iamRoleArn the role ARN.
 * @returns 48 bytes.
 */
export function pcr3ForRole(iamRoleArn: string): Uint8Array {
  return extendPcr(new Uint8Array(PCR_BYTES), textEncoder.encode(iamRoleArn));
}

/**
 * PCR4 as AWS computes it: SHA-384(48 zero bytes ‖ the parent instance id as ASCII).
 * @param instanceId e.g. `i-020b6af9246d90e92`.
 * @returns 48 bytes.
 */
export function pcr4ForInstance(instanceId: string): Uint8Array {
  return extendPcr(new Uint8Array(PCR_BYTES), textEncoder.encode(instanceId));
}

/**
 * PCR8 of an EIF signed with this certificate: one extend of the zero register with the SHA-384 of the
 * certificate's DER (a simulator choice: deterministic, per certificate, and 48 bytes like the real one).
 * @param certificate DER bytes, or a PEM string.
 * @returns 48 bytes.
 */
export function pcr8ForSigningCertificate(certificate: BytesLike): Uint8Array {
  const der =
    typeof certificate === 'string'
      ? new Uint8Array(new x509.X509Certificate(certificate).rawData)
      : certificate;
  return extendPcr(new Uint8Array(PCR_BYTES), sha384(der));
}

/**
 * PCR0/1/2 of a declared image. Each part is hashed (SHA-384) and extended into a zero register, like the
 * EIF builder measures sections: PCR1 = extend(0, H(kernel)), PCR2 = extend(0, H(application)),
 * PCR0 = extend(extend(extend(0, H(eif)), H(kernel)), H(application)) — the whole image, so PCR0 changes
 * whenever PCR1 or PCR2 does. `kernel`/`application` default to `eif ‖ "/kernel"` and
 * `eif ‖ "/application"`. Deterministic; not the byte-exact EIF algorithm (that needs a real EIF).
 * @param image the declared image.
 * @returns lower-case hex of the three 48-byte registers.
 */
export function imageMeasurements(image: ImageDeclaration): ImageMeasurements {
  const eif = bytesOf(image.eif);
  const kernel =
    image.kernel === undefined ? concat(eif, textEncoder.encode('/kernel')) : bytesOf(image.kernel);
  const application =
    image.application === undefined
      ? concat(eif, textEncoder.encode('/application'))
      : bytesOf(image.application);
  const zero = new Uint8Array(PCR_BYTES);
  const pcr1 = extendPcr(zero, sha384(kernel));
  const pcr2 = extendPcr(zero, sha384(application));
  const pcr0 = extendPcr(extendPcr(extendPcr(zero, sha384(eif)), sha384(kernel)), sha384(application));
  return { pcr0: toHex(pcr0), pcr1: toHex(pcr1), pcr2: toHex(pcr2) };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function pcrBytes(index: number, value: BytesLike): Uint8Array {
  const bytes =
    typeof value === 'string'
      ? /^([0-9a-fA-F]{2})*$/.test(value)
        ? new Uint8Array(Buffer.from(value, 'hex'))
        : new Uint8Array(0)
      : value;
  if (bytes.length !== PCR_BYTES)
    throw new RangeError(`PCR${index} must be ${PCR_BYTES} bytes (hex or bytes)`);
  return bytes;
}

/** A CA certificate with its key. */
interface CaNode {
  readonly name: string;
  readonly der: Uint8Array;
  readonly keys: webcrypto.CryptoKeyPair;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** A leaf with its signing key as a node KeyObject (synchronous signing on the hot path). */
interface Leaf {
  readonly der: Uint8Array;
  readonly signingKey: KeyObject;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** A root and its shared (non-instance) intermediates. */
interface Hierarchy {
  readonly root: CaNode;
  /**
   * Regional, zonal, … (all intermediates except the per-instance CA), root side first. A promise, so that
   * concurrent first calls share one generation instead of racing to publish different chains.
   */
  shared: Promise<CaNode[]> | undefined;
  /** Per-instance CAs by `${instanceId}|${variant}|${issuer hash}` (never mixed across issuers). */
  readonly instanceCas: Map<string, Promise<CaNode>>;
}

type InstanceCaVariant = 'sound' | 'broken_chain' | 'non_ca_intermediate';

function covers(node: { notBefore: number; notAfter: number }, from: number, to: number): boolean {
  return node.notBefore <= from && to <= node.notAfter;
}

/** Whole seconds (X.509 times have second precision; keeping ms would make comparisons drift). */
function seconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ECDSA_P384, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * The simulated NSM. Create with `NitroSimulator.create()`; the CA hierarchy is generated once and cached,
 * so `attest` costs one leaf (per enclave by default) plus one P-384 signature.
 */
export class NitroSimulator {
  private readonly intermediates: number;
  private readonly clock: () => Date;
  private readonly region: string;
  private readonly leafPolicy: LeafPolicy;
  private readonly trusted: Hierarchy;
  private foreign: Promise<Hierarchy> | undefined;
  private rogueKey: Promise<KeyObject> | undefined;
  private readonly enclaveIds = new Map<string, string>();
  private readonly leaves = new Map<string, Promise<Leaf>>();

  private constructor(
    options: { intermediates: number; clock: () => Date; region: string; leaf: LeafPolicy },
    trusted: Hierarchy,
  ) {
    this.intermediates = options.intermediates;
    this.clock = options.clock;
    this.region = options.region;
    this.leafPolicy = options.leaf;
    this.trusted = trusted;
  }

  /**
   * Generates the simulator's root (valid 5 years back to 25 years ahead of the clock).
   * @param options chain depth, clock, region, leaf policy.
   * @returns a ready simulator.
   */
  static async create(options: SimulatorOptions = {}): Promise<NitroSimulator> {
    const intermediates = options.intermediates ?? 3;
    if (!Number.isInteger(intermediates) || intermediates < 1 || intermediates > 8) {
      // At least the per-instance CA: the chain defects need an intermediate to break.
      throw new RangeError('intermediates must be an integer from 1 to 8');
    }
    const now = options.now;
    const clock = now === undefined ? () => new Date() : typeof now === 'function' ? now : () => now;
    const root = await NitroSimulator.createRoot(clock().getTime());
    return new NitroSimulator(
      {
        intermediates,
        region: options.region ?? 'us-east-1',
        leaf: options.leaf ?? 'per-enclave',
        clock,
      },
      { root, shared: undefined, instanceCas: new Map() },
    );
  }

  /**
   * DER of the simulator's root certificate (a trust anchor only when a caller passes it explicitly). A
   * copy, so a caller cannot alter the bytes the simulator keeps publishing.
   */
  get rootDer(): Uint8Array {
    return this.trusted.root.der.slice();
  }

  /** PEM of the simulator's root certificate. */
  get rootPem(): string {
    const base64 = Buffer.from(this.trusted.root.der).toString('base64');
    return `-----BEGIN CERTIFICATE-----\n${base64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  }

  /**
   * The PCR values (lower-case hex) a clean document for this request carries: 0/1/2 from the image, 3 from
   * the role, 4 from the instance, 8 from the signing certificate, then `request.pcrs`, then debug zeroing.
   * @param request the same fields `attest` takes (defects are ignored).
   * @returns PCR index → hex for the 16 registers (32 when `request.pcrs` sets one of PCR16–31).
   */
  expectedPcrs(request: Omit<AttestRequest, 'defects'>): Record<number, string> {
    const registers = this.registers(request, []);
    const out: Record<number, string> = {};
    registers.forEach((value, index) => {
      out[index] = toHex(value);
    });
    return out;
  }

  /**
   * Produces an attestation document: raw CBOR bytes of an untagged COSE_Sign1, as the NSM returns them.
   * @param request what to attest, and optional defects.
   * @returns the document bytes.
   */
  async attest(request: AttestRequest): Promise<Uint8Array> {
    const defects = new Set(request.defects ?? []);
    for (const defect of defects) {
      if (!(DEFECTS as readonly string[]).includes(defect)) throw new RangeError(`unknown defect ${defect}`);
    }
    if (!/^i-([0-9a-f]{8}|[0-9a-f]{17})$/.test(request.instanceId)) {
      throw new RangeError(`instanceId must look like i-0123456789abcdef0, got ${request.instanceId}`);
    }
    for (const [field, value] of [
      ['nonce', request.nonce],
      ['userData', request.userData],
      ['publicKey', request.publicKey],
    ] as const) {
      if (value !== undefined && value.length > MAX_OPTIONAL_FIELD_BYTES) {
        throw new RangeError(`${field} is limited to ${MAX_OPTIONAL_FIELD_BYTES} bytes by the NSM`);
      }
    }
    const timestamp =
      request.timestamp === undefined ? this.clock().getTime() : new Date(request.timestamp).getTime();
    if (!Number.isSafeInteger(timestamp) || timestamp < 0)
      throw new RangeError('timestamp must be a valid instant');
    const enclaveId = request.enclaveId ?? this.enclaveIdFor(request.instanceId, timestamp);
    if (!/^[0-9a-f]{16}$/.test(enclaveId)) throw new RangeError('enclaveId must be 16 lower-case hex digits');
    const moduleId = `${request.instanceId}-enc${enclaveId}`;

    const hierarchy = defects.has('foreign_root') ? await this.foreignHierarchy() : this.trusted;
    const variant: InstanceCaVariant = defects.has('broken_chain')
      ? 'broken_chain'
      : defects.has('non_ca_intermediate')
        ? 'non_ca_intermediate'
        : 'sound';
    const shared = await this.sharedIntermediates(hierarchy, timestamp);
    const instanceCa = await this.instanceCa(hierarchy, shared, request.instanceId, variant, timestamp);
    const leaf = await this.leafFor(request, defects, hierarchy, instanceCa, moduleId, enclaveId, timestamp);

    const registers = this.registers(request, [...defects]);
    const pcrs = new CborMap(registers.map((value, index) => [index, value] as const));
    const optional = (key: string, value: Uint8Array | undefined): (readonly [CborValue, CborValue])[] =>
      value !== undefined ? [[key, value]] : request.absentFields === 'omit' ? [] : [[key, null]];
    // The NSM's key order (not RFC 8949 canonical order), as seen in every real document.
    const payload = encodeCbor(
      new CborMap([
        ['module_id', moduleId],
        ['digest', 'SHA384'],
        ['timestamp', timestamp],
        ['pcrs', pcrs],
        ['certificate', leaf.der],
        ['cabundle', [hierarchy.root.der, ...shared.map((ca) => ca.der), instanceCa.der]],
        ...optional('public_key', request.publicKey),
        ...optional('user_data', request.userData),
        ...optional('nonce', request.nonce),
      ]),
    );
    const protectedHeader = defects.has('wrong_algorithm') ? PROTECTED_ES256 : PROTECTED_ES384;
    const toBeSigned = encodeCbor(['Signature1', protectedHeader, EMPTY, payload]);
    const key = defects.has('wrong_signature') ? await this.rogue() : leaf.signingKey;
    const signature = new Uint8Array(sign('sha384', toBeSigned, { key, dsaEncoding: 'ieee-p1363' }));
    // Untagged COSE_Sign1 with an empty unprotected map, like the NSM (no tag 18).
    const document = encodeCbor([protectedHeader, new CborMap([]), payload, signature]);
    return defects.has('trailing_bytes') ? concat(document, new Uint8Array([0])) : document;
  }

  private registers(request: Omit<AttestRequest, 'defects'>, defects: readonly Defect[]): Uint8Array[] {
    const extended = Object.keys(request.pcrs ?? {}).some((key) => Number(key) >= PCR_COUNT);
    const count = extended ? EXTENDED_PCR_COUNT : PCR_COUNT;
    const registers: Uint8Array[] = Array.from({ length: count }, () => new Uint8Array(PCR_BYTES));
    if (request.image !== undefined) {
      const measured = imageMeasurements(request.image);
      registers[0] = pcrBytes(0, measured.pcr0);
      registers[1] = pcrBytes(1, measured.pcr1);
      registers[2] = pcrBytes(2, measured.pcr2);
    }
    if (request.iamRoleArn !== undefined) registers[3] = pcr3ForRole(request.iamRoleArn);
    registers[4] = pcr4ForInstance(request.instanceId);
    if (request.signingCertificate !== undefined)
      registers[8] = pcr8ForSigningCertificate(request.signingCertificate);
    for (const [key, value] of Object.entries(request.pcrs ?? {})) {
      const index = Number(key);
      if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`no PCR${key}`);
      if (value !== undefined) registers[index] = pcrBytes(index, value);
    }
    if (defects.includes('wrong_pcrs')) {
      // Another image: every image register moves, as it would for a rebuilt EIF.
      const other = textEncoder.encode('an image nobody pinned');
      for (const index of [0, 1, 2]) registers[index] = extendPcr(registers[index]!, other);
    }
    if (request.debug === true || defects.includes('debug_mode')) {
      for (const index of [0, 1, 2, 8]) registers[index] = new Uint8Array(PCR_BYTES);
    }
    return registers;
  }

  /** One stable enclave id per instance, shaped like AWS's: 12 hex digits of a ms clock + 4 random. */
  private enclaveIdFor(instanceId: string, timestamp: number): string {
    let id = this.enclaveIds.get(instanceId);
    if (id === undefined) {
      id = (timestamp % 2 ** 48).toString(16).padStart(12, '0') + randomHex(2);
      this.enclaveIds.set(instanceId, id);
    }
    return id;
  }

  private static async createRoot(now: number): Promise<CaNode> {
    const keys = await newKeys();
    const name = 'C=US, O=Amazon, OU=AWS, CN=simulator.nitro-enclaves.local';
    const notBefore = seconds(now - 5 * 365 * DAY);
    const notAfter = seconds(now + 25 * 365 * DAY);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: `01${randomHex(15)}`,
      name,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      keys,
      signingAlgorithm: SHA384_SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
      ],
    });
    return { name, der: new Uint8Array(cert.rawData), keys, notBefore, notAfter };
  }

  /**
   * Issues a CA certificate. `signedBy` is normally the issuer's key; `broken_chain` passes an unrelated
   * key so the issuer *name* chains but the signature does not.
   */
  private static async issueCa(params: {
    readonly issuer: CaNode;
    readonly name: string;
    readonly notBefore: number;
    readonly notAfter: number;
    readonly pathLength: number;
    readonly instanceLevel: boolean;
    readonly isCa?: boolean;
    readonly signedBy?: webcrypto.CryptoKey;
  }): Promise<CaNode> {
    const keys = await newKeys();
    const isCa = params.isCa ?? true;
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(isCa, isCa ? params.pathLength : undefined, true),
    ];
    if (params.instanceLevel) {
      // AWS's per-instance CA carries only a critical keyCertSign key usage and no key identifiers.
      extensions.push(
        new x509.KeyUsagesExtension(
          isCa ? x509.KeyUsageFlags.keyCertSign : x509.KeyUsageFlags.digitalSignature,
          true,
        ),
      );
    } else {
      extensions.push(
        await x509.AuthorityKeyIdentifierExtension.create(params.issuer.keys.publicKey),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
      );
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: `01${randomHex(params.instanceLevel ? 19 : 15)}`,
      subject: params.name,
      issuer: params.issuer.name,
      notBefore: new Date(params.notBefore),
      notAfter: new Date(params.notAfter),
      publicKey: keys.publicKey,
      signingKey: params.signedBy ?? params.issuer.keys.privateKey,
      signingAlgorithm: SHA384_SIGNING,
      extensions,
    });
    return {
      name: params.name,
      der: new Uint8Array(cert.rawData),
      keys,
      notBefore: params.notBefore,
      notAfter: params.notAfter,
    };
  }

  /**
   * The regional/zonal intermediates, regenerated when they do not cover the document's time (a
   * simulator asked for a document far from its creation time, or running for weeks).
   */
  private async sharedIntermediates(hierarchy: Hierarchy, timestamp: number): Promise<CaNode[]> {
    const window: [number, number] = [timestamp - 6 * HOUR, timestamp + 6 * HOUR];
    const current = hierarchy.shared;
    if (current !== undefined) {
      const shared = await current;
      if (shared.every((ca) => covers(ca, ...window))) return shared;
      // Someone else started a rebuild while we waited: look at theirs first.
      if (hierarchy.shared !== current) return this.sharedIntermediates(hierarchy, timestamp);
    }
    if (!covers(hierarchy.root, ...window)) {
      throw new RangeError('timestamp outside the simulator root validity');
    }
    const rebuilt = this.issueSharedIntermediates(hierarchy.root, timestamp);
    hierarchy.shared = rebuilt;
    return rebuilt;
  }

  private async issueSharedIntermediates(root: CaNode, timestamp: number): Promise<CaNode[]> {
    const shared: CaNode[] = [];
    let issuer = root;
    for (let level = 0; level < this.intermediates - 1; level++) {
      const label = randomHex(8);
      const name =
        level === 0
          ? `C=US, O=Amazon, OU=AWS, CN=${label}.${this.region}.aws.nitro-enclaves`
          : `CN=${label}.${level === 1 ? 'zonal' : `level${level}`}.${this.region}.aws.nitro-enclaves, OU=AWS, O=Amazon, C=US, ST=WA, L=Seattle`;
      const ca = await NitroSimulator.issueCa({
        issuer,
        name,
        notBefore: seconds(timestamp - DAY),
        notAfter: seconds(timestamp + (level === 0 ? 20 : 5) * DAY),
        pathLength: this.intermediates - 1 - level,
        instanceLevel: false,
      });
      shared.push(ca);
      issuer = ca;
    }
    return shared;
  }

  private async instanceCa(
    hierarchy: Hierarchy,
    shared: CaNode[],
    instanceId: string,
    variant: InstanceCaVariant,
    timestamp: number,
  ): Promise<CaNode> {
    const issuer = shared.at(-1) ?? hierarchy.root;
    const key = `${instanceId}|${variant}|${toHex(sha384(issuer.der))}`;
    const cached = hierarchy.instanceCas.get(key);
    if (cached !== undefined) {
      const ca = await cached;
      if (covers(ca, timestamp - 5 * HOUR, timestamp + 5 * HOUR)) return ca;
    }
    const created = (async () =>
      NitroSimulator.issueCa({
        issuer,
        name: `C=US, ST=Washington, L=Seattle, O=Amazon, OU=AWS, CN=${instanceId}.${this.region}.aws.nitro-enclaves`,
        notBefore: seconds(timestamp - 12 * HOUR),
        notAfter: seconds(timestamp + DAY),
        pathLength: 0,
        instanceLevel: true,
        isCa: variant !== 'non_ca_intermediate',
        signedBy: variant === 'broken_chain' ? (await newKeys()).privateKey : undefined,
      }))();
    hierarchy.instanceCas.set(key, created);
    return created;
  }

  private async leafFor(
    request: AttestRequest,
    defects: ReadonlySet<Defect>,
    hierarchy: Hierarchy,
    instanceCa: CaNode,
    moduleId: string,
    enclaveId: string,
    timestamp: number,
  ): Promise<Leaf> {
    // Leaves with a deliberately wrong window are never cached.
    if (defects.has('expired_leaf')) {
      return this.issueLeaf(instanceCa, moduleId, enclaveId, timestamp - 4 * HOUR, timestamp - HOUR);
    }
    if (defects.has('not_yet_valid_leaf')) {
      return this.issueLeaf(instanceCa, moduleId, enclaveId, timestamp + HOUR, timestamp + 4 * HOUR);
    }
    const notBefore = seconds(timestamp - LEAF_BACKDATE_MS);
    if ((request.leaf ?? this.leafPolicy) === 'per-document') {
      return this.issueLeaf(instanceCa, moduleId, enclaveId, notBefore, notBefore + LEAF_LIFETIME_MS);
    }
    const key = `${hierarchy === this.trusted ? 'trusted' : 'foreign'}|${moduleId}|${toHex(sha384(instanceCa.der))}`;
    const cached = this.leaves.get(key);
    if (cached !== undefined) {
      const leaf = await cached;
      if (covers(leaf, timestamp, timestamp)) return leaf;
    }
    const created = this.issueLeaf(instanceCa, moduleId, enclaveId, notBefore, notBefore + LEAF_LIFETIME_MS);
    this.leaves.set(key, created);
    return created;
  }

  private async issueLeaf(
    issuer: CaNode,
    moduleId: string,
    enclaveId: string,
    notBefore: number,
    notAfter: number,
  ): Promise<Leaf> {
    const keys = await newKeys();
    const from = seconds(notBefore);
    const to = seconds(notAfter);
    const cert = await x509.X509CertificateGenerator.create({
      // AWS: the enclave id, 4 zero bytes, then the issue time in Unix seconds.
      serialNumber: `${enclaveId}00000000${Math.floor(from / 1000)
        .toString(16)
        .padStart(8, '0')}`,
      subject: `C=US, ST=Washington, L=Seattle, O=Amazon, OU=AWS, CN=${moduleId}.${this.region}.aws`,
      issuer: issuer.name,
      notBefore: new Date(from),
      notAfter: new Date(to),
      publicKey: keys.publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: SHA384_SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
          false,
        ),
      ],
    });
    return {
      der: new Uint8Array(cert.rawData),
      signingKey: KeyObject.from(keys.privateKey),
      notBefore: from,
      notAfter: to,
    };
  }

  /** Same shape and names as the published hierarchy, different keys: only the root's bytes tell. */
  private foreignHierarchy(): Promise<Hierarchy> {
    this.foreign ??= (async () => {
      const root = await NitroSimulator.createRoot(this.clock().getTime());
      return { root, shared: undefined, instanceCas: new Map() };
    })();
    return this.foreign;
  }

  private rogue(): Promise<KeyObject> {
    this.rogueKey ??= newKeys().then((keys) => KeyObject.from(keys.privateKey));
    return this.rogueKey;
  }
}
