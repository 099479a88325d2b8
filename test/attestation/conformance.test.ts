/**
 * Conformance: every real AWS-produced document verifies at its own timestamp with the pinned root and a
 * policy pinning its real PCRs, with the claims index.json records; and is refused as expired today.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AWS_NITRO_ROOT_DER } from '../../shared/attestation/aws-nitro-root.ts';
import {
  AWS_NITRO_ROOT_PEM,
  AWS_NITRO_ROOT_SHA256_FINGERPRINT,
  buildPolicy,
  verifyAttestation,
} from '../../shared/attestation/index.ts';
import { fixtureRootPem, fixtures, hex, measurementSetOf, today } from './nitro-fixtures.ts';

describe('the pinned AWS Nitro root', () => {
  it('is the one of the fixture folder, with the published fingerprint', async () => {
    const { X509Certificate } = await import('node:crypto');
    expect(new X509Certificate(AWS_NITRO_ROOT_PEM).raw).toEqual(new X509Certificate(fixtureRootPem).raw);
    // The DER the documents' cabundle is compared with: the certificate's own bytes.
    expect(Buffer.from(AWS_NITRO_ROOT_DER).equals(new X509Certificate(fixtureRootPem).raw)).toBe(true);
    expect(AWS_NITRO_ROOT_SHA256_FINGERPRINT).toBe(
      '641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B',
    );
  });
});

describe('the pin', () => {
  it('refuses to load a root whose bytes differ from the pinned fingerprint (one base64 character changed)', () => {
    const source = readFileSync(
      new URL('../../shared/attestation/aws-nitro-root.ts', import.meta.url),
      'utf8',
    );
    // A character inside the key's base64, changed to another valid one: still a well-formed PEM.
    const tampered = source.replace('BPwCVOumCMHz', 'BPwCVOumCMHy');
    expect(tampered).not.toBe(source);
    const dir = mkdtempSync(join(tmpdir(), 'nitro-root-'));
    try {
      for (const [name, text] of [
        ['pinned.ts', source],
        ['tampered.ts', tampered],
      ] as const) {
        writeFileSync(join(dir, name), text);
      }
      const run = (name: string) =>
        spawnSync(process.execPath, ['--import', 'tsx', join(dir, name)], {
          cwd: new URL('../..', import.meta.url).pathname,
          encoding: 'utf8',
        });
      expect(run('pinned.ts').status).toBe(0);
      const refused = run('tampered.ts');
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('does not match its pinned SHA-256 fingerprint');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(fixtures)('real document $name', (fixture) => {
  const { facts } = fixture;
  const policy = buildPolicy({ measurements: [measurementSetOf(fixture)], allowDebug: facts.debug_mode });

  it.each([
    ['raw CBOR, cached', () => verifyAttestation(fixture.bytes, policy, { at: fixture.at })],
    [
      'raw CBOR, uncached',
      () => verifyAttestation(fixture.bytes, policy, { at: fixture.at, useCache: false }),
    ],
    ['base64', () => verifyAttestation(fixture.base64, policy, { at: fixture.at })],
  ])('verifies at its own timestamp (%s) with the claims index.json records', (_, run) => {
    const result = run();
    expect(result).toMatchObject({ ok: true, matchedMeasurementSet: 0 });
    if (!result.ok) return;
    const { claims } = result;
    expect(claims.moduleId).toBe(facts.module_id);
    expect(claims.digest).toBe(facts.digest);
    expect(claims.timestamp).toBe(facts.timestamp_ms);
    expect(new Date(claims.timestamp).toISOString()).toBe(facts.timestamp_iso);
    expect(claims.debugMode).toBe(facts.debug_mode);
    expect(claims.leafValidFrom).toBe(facts.leaf_valid_from);
    expect(claims.leafValidTo).toBe(facts.leaf_valid_to);
    expect(claims.cabundle).toHaveLength(facts.cabundle_length);
    expect(hex(claims.nonce)).toBe(facts.nonce_hex);
    expect(hex(claims.userData)).toBe(facts.user_data_hex);
    expect(hex(claims.publicKey)).toBe(facts.public_key_hex);
    for (const [index, value] of Object.entries(facts.pcrs))
      expect(claims.pcrs.get(Number(index))).toBe(value);
    expect(claims.pcrs.size).toBe(16);
  });

  it('verifies with the root passed explicitly as PEM', () => {
    expect(
      verifyAttestation(fixture.bytes, policy, { at: fixture.at, trustedRoots: [fixtureRootPem] }).ok,
    ).toBe(true);
  });

  it('verifies at the edges of its leaf validity, within the clock-skew allowance', () => {
    const from = new Date(facts.leaf_valid_from);
    const to = new Date(facts.leaf_valid_to);
    const atEdge = (at: Date) => verifyAttestation(fixture.bytes, policy, { at });
    if (facts.timestamp_ms - from.getTime() <= 5 * 60_000) expect(atEdge(from).ok).toBe(true);
    expect(atEdge(to).ok).toBe(true);
    expect(atEdge(new Date(to.getTime() + 1000))).toMatchObject({ ok: false, code: 'expired' });
    expect(atEdge(new Date(from.getTime() - 1000))).toMatchObject({ ok: false, code: 'not_yet_valid' });
  });

  it('fails with expired when checked today', () => {
    for (const useCache of [true, false]) {
      expect(verifyAttestation(fixture.bytes, policy, { at: today(), useCache })).toMatchObject({
        ok: false,
        code: 'expired',
      });
    }
    expect(verifyAttestation(fixture.bytes, policy)).toMatchObject({ ok: false, code: 'expired' });
  });

  it('is refused under the default policy of debug documents, and matched by a PCR subset', () => {
    const pcrs = measurementSetOf(fixture);
    const subset = buildPolicy({
      measurements: [{ 3: pcrs[3]!, 4: pcrs[4]! }],
      allowDebug: facts.debug_mode,
    });
    expect(verifyAttestation(fixture.bytes, subset, { at: fixture.at }).ok).toBe(true);
    if (facts.debug_mode) {
      const strict = buildPolicy({ measurements: [{ 3: pcrs[3]!, 4: pcrs[4]! }] });
      expect(verifyAttestation(fixture.bytes, strict, { at: fixture.at })).toMatchObject({
        code: 'debug_mode',
      });
    }
  });
});
