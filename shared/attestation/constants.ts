/**
 * Limits of the attestation verifier. Each bound comes from the AWS Nitro Enclaves attestation document
 * specification (aws/aws-nitro-enclaves-nsm-api, `docs/attestation_process.md`) or, where AWS sets none,
 * from a generous multiple of what real hardware produces, so hostile input is refused before it costs much.
 */

/**
 * Largest document accepted, in bytes of raw CBOR. Real documents are about 4.5 KiB; the largest one the
 * AWS schema allows (1 KiB leaf, a 16-certificate bundle, three 1 KiB optional fields, 32 PCRs of 64 bytes)
 * is under 24 KiB, so 64 KiB refuses a hostile blob before it is even decoded.
 */
export const MAX_DOCUMENT_BYTES = 64 * 1024;

/** Deepest CBOR nesting accepted (a document nests 3 levels; tags count as a level). */
export const MAX_CBOR_DEPTH = 16;

/** Most items in one CBOR array or map (a document has at most 32 PCRs and a handful of certificates). */
export const MAX_CBOR_ITEMS = 1024;

/** The one COSE algorithm a Nitro document uses: ECDSA with SHA-384 on P-384 (RFC 9053, ES384). */
export const COSE_ALG_ES384 = -35;

/** COSE tag of a COSE_Sign1 structure (RFC 9052 §4.2), optional around a Nitro document. */
export const COSE_SIGN1_TAG = 18;

/** Raw r‖s of a P-384 signature: two 48-byte integers. */
export const ES384_SIGNATURE_BYTES = 96;

/** PCR value size for the only digest Nitro documents use, SHA-384. */
export const SHA384_PCR_BYTES = 48;

/** The document may hold PCR0 … PCR31 (AWS schema: `index = 0..31`), at most 32 of them. */
export const MAX_DOCUMENT_PCR_INDEX = 31;

/**
 * A policy may pin any register a document may carry, PCR0 … PCR31. Real documents carry PCR0–PCR15;
 * PCR16–PCR31 are the registers an enclave may extend itself through the NSM (`ExtendPCR`), which some
 * deployments use to measure what they load after boot. A pinned register that the document does not carry
 * never matches (fail closed: `pcr_mismatch`), so pinning PCR16 is refused by a 16-register document.
 */
export const MAX_POLICY_PCR_INDEX = MAX_DOCUMENT_PCR_INDEX;

/** AWS schema: `cert = bstr .size (1..1024)`, for the leaf and each bundle entry. */
export const MAX_CERTIFICATE_BYTES = 1024;

/** Most certificates in `cabundle` (AWS sends 4; the schema sets no bound, 16 is generous). */
export const MAX_CABUNDLE_LENGTH = 16;

/** AWS schema: `user_data = bstr .size (0..1024)`, shared by `public_key`, `user_data` and `nonce`. */
export const MAX_USER_FIELD_BYTES = 1024;

/** AWS documents no bound on `module_id`; real ones are 39 characters (`<instance-id>-enc<16 hex>`). */
export const MAX_MODULE_ID_LENGTH = 255;

/**
 * How far a document's timestamp may lie after the verification instant before it is refused as coming
 * from the future: the NSM and the verifier have separate clocks, five minutes absorbs ordinary skew.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Entries kept by the default chain cache (each of the two maps: parsed certificates, verified links). */
export const DEFAULT_CHAIN_CACHE_ENTRIES = 1024;
