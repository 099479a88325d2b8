import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvidenceBundle } from '../../shared/contracts/contract-evidence.ts';

/**
 * The evidence bundles the end-to-end suites produce over HTTP (digital, biometric and MFA signatures),
 * kept in test/fixtures/evidence for the evidence verifier's unit tests and its mutation testing, which
 * cannot start a stack per mutant. The suites write them anew when EVIDENCE_FIXTURES_DIR is set:
 *   EVIDENCE_FIXTURES_DIR=test/fixtures/evidence npm test -- test/e2e/contract-evidence.test.ts \
 *     test/e2e/biometric-signatures.test.ts test/e2e/mfa-signatures.test.ts
 */
export interface EvidenceFixture {
  readonly bundle: EvidenceBundle;
  /** The platform's keys as `GET /platform/keys` published them (pinned by the checker). */
  readonly platformKeys: Record<string, unknown>[];
}

export const EVIDENCE_FIXTURES = new URL('../fixtures/evidence/', import.meta.url);

/** Writes `name`.json when EVIDENCE_FIXTURES_DIR names a folder; does nothing otherwise. */
export function recordEvidenceFixture(name: string, fixture: EvidenceFixture): void {
  const dir = process.env.EVIDENCE_FIXTURES_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
}

export function evidenceFixture(name: 'digital' | 'biometric' | 'mfa'): EvidenceFixture {
  return JSON.parse(readFileSync(new URL(`${name}.json`, EVIDENCE_FIXTURES), 'utf8')) as EvidenceFixture;
}
