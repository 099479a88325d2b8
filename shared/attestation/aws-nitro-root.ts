/**
 * The AWS Nitro Enclaves root certificate, pinned. Every genuine attestation document's `cabundle` starts
 * with exactly these bytes. The fingerprint is checked when the module loads, so an edited PEM cannot ship
 * silently: importing the library fails instead of trusting something else.
 *
 * Source: https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip (valid 2019-10-28 to
 * 2049-10-28).
 */
import { createHash } from 'node:crypto';

/** SHA-256 fingerprint (of the DER) that AWS publishes for the Nitro Enclaves root, upper-case hex. */
export const AWS_NITRO_ROOT_SHA256_FINGERPRINT =
  '641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B';

/** The root certificate as PEM. */
export const AWS_NITRO_ROOT_PEM = `
-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----`.trim();

/**
 * The root certificate as DER: what `cabundle[0]` is compared with, byte for byte. The PEM's base64 body,
 * hashed against the pin without parsing it as a certificate (the pin fixes every byte; a parse at load
 * would cost every cold start of every attestation route for nothing).
 */
export const AWS_NITRO_ROOT_DER: Uint8Array = new Uint8Array(
  Buffer.from(
    AWS_NITRO_ROOT_PEM.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
    'base64',
  ),
);
if (
  createHash('sha256').update(AWS_NITRO_ROOT_DER).digest('hex').toUpperCase() !==
  AWS_NITRO_ROOT_SHA256_FINGERPRINT
) {
  throw new Error('The embedded AWS Nitro root certificate does not match its pinned SHA-256 fingerprint.');
}
