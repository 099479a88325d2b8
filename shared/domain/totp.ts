import { Secret, TOTP } from 'otpauth';

/**
 * The platform's TOTP parameters (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit seed (RFC 4226
 * §4 recommends 160 bits), what every authenticator app reads from an `otpauth://` URI.
 */
export const TOTP_PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
export const TOTP_SECRET_BYTES = 20;
/** Codes of the previous and next step are accepted too (clock drift of up to 30 s either way). */
export const TOTP_DRIFT_STEPS = 1;
/** The issuer the authenticator app shows beside the account. */
export const TOTP_ISSUER = 'Enclave Contracts';

/** A TOTP second factor as the API shows it (never its seed). */
export interface TotpCredential {
  readonly id: string;
  readonly identityId: string;
  readonly createdAt: string;
  /** Null while pending: only a confirmed credential is a second factor. */
  readonly confirmedAt: string | null;
  readonly notAfter: string | null;
  readonly revokedAt: string | null;
}

function totp(seed: Uint8Array, label: string): TOTP {
  return new TOTP({
    issuer: TOTP_ISSUER,
    label,
    ...TOTP_PARAMETERS,
    secret: new Secret({ buffer: Uint8Array.from(seed).buffer }),
  });
}

/** The `otpauth://totp/…` URI an authenticator app enrols from (it carries the seed: show it once). */
export function otpauthUri(seed: Uint8Array, label: string): string {
  return totp(seed, label).toString();
}

/** The RFC 6238 time step of `at`. */
export function totpStep(at: Date): number {
  return TOTP.counter({ period: TOTP_PARAMETERS.period, timestamp: at.getTime() });
}

/**
 * The time step whose code `code` is, within {@link TOTP_DRIFT_STEPS} of `at`, or null when it is none of
 * them (a wrong code, or one too old or too new).
 */
export function matchingStep(seed: Uint8Array, code: string, at: Date): number | null {
  const delta = totp(seed, 'verify').validate({
    token: code,
    timestamp: at.getTime(),
    window: TOTP_DRIFT_STEPS,
  });
  return delta === null ? null : totpStep(at) + delta;
}

/** The code of `step` (what an authenticator shows during it); for tests and the local walk-through. */
export function codeAt(seed: Uint8Array, at: Date): string {
  return totp(seed, 'code').generate({ timestamp: at.getTime() });
}
