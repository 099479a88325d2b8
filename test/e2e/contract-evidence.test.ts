import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { type EvidenceBundle, verifyEvidence } from '../../shared/contracts/contract-evidence.ts';
import { canonicalJson, sha256Hex } from '../../shared/domain/canonical-json.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { recordEvidenceFixture } from '../support/evidence-fixtures.ts';
import { verifyEvidenceOffline } from '../support/verify-evidence-offline.ts';

/**
 * A contract signed over HTTP (keys registered with their proofs, both parties' digital signatures, the
 * platform's countersignature on activation) as evidence: `GET /contracts/{id}/evidence` gives a bundle that
 * `npm run verify-evidence` checks offline, with the platform's keys pinned from `GET /platform/keys`; every
 * part of the bundle, tampered with, fails the check that covers it. `GET /contracts/{id}/signatures/
 * verification` gives the same verifier's verdicts from the server.
 */
const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let contractId: string;
let bundle: EvidenceBundle;
let platformKeys: Record<string, unknown>[];
let dir: string;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false });
  provider = await ApiClient.as(stack, 'provider');
  consumer = await ApiClient.as(stack, 'consumer');
  const keys = { provider: new PartyKey('ES384'), consumer: new PartyKey('EdDSA') };
  const kids = {
    provider: await keys.provider.register(provider, seeded.provider),
    consumer: await keys.consumer.register(consumer, seeded.consumer),
  };
  const created = await provider.post<{ id: string; signingPayload: string }>('/contracts', CREATE);
  expect(created.status, created.text).toBe(201);
  contractId = created.body.id;
  for (const [party, client] of [
    ['provider', provider],
    ['consumer', consumer],
  ] as const) {
    const signed = await client.post(`/contracts/${contractId}/sign`, {
      type: 'digital',
      kid: kids[party],
      signature: keys[party].sign(created.body.signingPayload),
    });
    expect(signed.status, signed.text).toBe(200);
  }
  const activated = await consumer.post<{ status: string }>(`/contracts/${contractId}/activate`);
  expect(activated.body.status).toBe('Active');
  // The scheduled checkpoint job's run (every 10 s with `npm start`), now.
  expect(await createCheckpoint(stack.deps)).not.toBeNull();
  const evidence = await consumer.get<EvidenceBundle>(`/contracts/${contractId}/evidence`);
  expect(evidence.status, evidence.text).toBe(200);
  bundle = evidence.body;
  platformKeys = (await ApiClient.anonymous(stack).get<{ keys: Record<string, unknown>[] }>('/platform/keys'))
    .body.keys;
  recordEvidenceFixture('digital', { bundle, platformKeys });
  dir = mkdtempSync(join(tmpdir(), 'evidence-'));
}, 120_000);
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await stack?.close();
});

/** `npm run verify-evidence` on a bundle, the platform's keys pinned unless `pin` is false. */
const verifyOffline = (evidence: unknown, pin = true) =>
  verifyEvidenceOffline(dir, evidence, pin ? platformKeys : undefined);

const pinned = () => ({ pinnedPlatformKeys: platformKeys });
/** The checks that failed on `tampered`. */
const failing = (tampered: EvidenceBundle) =>
  verifyEvidence(tampered, pinned())
    .checks.filter((c) => !c.ok)
    .map((c) => c.check);
const copy = () => structuredClone(bundle) as EvidenceBundle & Record<string, never>;

describe('the evidence of a contract signed over HTTP', () => {
  it('holds every part: content, both parties, the platform, the audit chain and its signed checkpoint', () => {
    const verdict = verifyEvidence(bundle, pinned());
    expect(verdict.checks.filter((c) => !c.ok)).toEqual([]);
    expect(verdict.checks.map((c) => c.check)).toEqual([
      'format',
      'structure',
      'content-digest',
      'platform-keys',
      'agreement',
      ...bundle.signatures.map((s) => `signature:${s.role}:${s.kid}`),
      'audit-chain',
      'audit-records-signatures',
      'audit-anchored',
    ]);
    expect(bundle.signatures.map((s) => s.role)).toEqual(['provider', 'consumer', 'platform']);
    expect(verdict.signatures.every((s) => s.valid && s.current)).toBe(true);
  });

  it('is checked offline by npm run verify-evidence, which prints each check and exits 0', () => {
    const { status, stdout } = verifyOffline(bundle);
    expect(stdout).toMatch(/^ok {3}signature:provider:/m);
    expect(stdout).toMatch(/^ok {3}audit-anchored: holds$/m);
    expect(stdout.trim().split('\n').at(-1)).toBe('evidence: valid');
    expect(status).toBe(0);
  });

  it('says when the platform keys were not pinned', () => {
    const { status, stdout } = verifyOffline(bundle, false);
    expect(status).toBe(0);
    expect(stdout).toMatch(/platform-keys: the bundle's own keys \(pin the platform's with --platform-keys/);
  });

  it('and the server gives the same verdicts', async () => {
    const res = await provider.get<{
      valid: boolean;
      signatures: { role: string; valid: boolean; current: boolean; reason: string | null }[];
    }>(`/contracts/${contractId}/signatures/verification`);
    expect(res.status).toBe(200);
    expect(res.body.valid).toBe(true);
    expect(res.body.signatures.map((s) => [s.role, s.valid, s.current, s.reason])).toEqual([
      ['provider', true, true, null],
      ['consumer', true, true, null],
      ['platform', true, true, null],
    ]);
  });

  it('is shown to auditors, and to a caller without an identity never', async () => {
    const outsider = await ApiClient.as(stack, { subject: 'local|nobody-here' });
    expect((await outsider.get(`/contracts/${contractId}/evidence`)).status).toBe(403);
    const auditor = await ApiClient.as(stack, 'auditor');
    expect((await auditor.get(`/contracts/${contractId}/evidence`)).status).toBe(200);
  });
});

describe('every part of a bundle, tampered with, fails its check', () => {
  const tampers: [string, (b: ReturnType<typeof copy>) => void, string[]][] = [
    ['the format', (b) => Object.assign(b, { format: 'enclave-contracts-evidence/0' }), ['format']],
    [
      'a term of the content',
      (b) => Object.assign(b.contract.content, { title: 'Something else' }),
      ['content-digest'],
    ],
    [
      'the content and its digest together (signatures over other content)',
      (b) => {
        Object.assign(b.contract.content, { title: 'Something else' });
        Object.assign(b.contract, {
          contentDigest: verifyEvidenceDigest(b.contract.content),
        });
      },
      ['agreement'],
    ],
    [
      'the contract id',
      (b) => Object.assign(b.contract, { id: '00000000-0000-4000-8000-000000000000' }),
      ['content-digest'],
    ],
    [
      "a party's signature",
      (b) => Object.assign(b.signatures[0]!, { signature: flip(b.signatures[0]!.signature) }),
      ['signature:provider'],
    ],
    [
      "a party's key, swapped for another",
      (b) => {
        const other = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
        Object.assign(b.signatures[0]!.key!, { jwk: other });
      },
      ['signature:provider'],
    ],
    [
      'a key revoked before the signature',
      (b) => Object.assign(b.signatures[1]!.key!, { revokedAt: '2000-01-01T00:00:00.000Z' }),
      ['signature:consumer'],
    ],
    [
      'a key retired (rotated) before the signature',
      (b) => Object.assign(b.signatures[1]!.key!, { notAfter: b.signatures[1]!.key!.createdAt }),
      ['signature:consumer'],
    ],
    [
      'a signature dated before its key existed',
      (b) => Object.assign(b.signatures[1]!, { signedAt: '2000-01-01T00:00:00.000Z' }),
      ['signature:consumer'],
    ],
    [
      "a signature claimed by the other party's identity",
      (b) => Object.assign(b.signatures[0]!, { identityId: b.contract.content.consumerId }),
      ['signature:provider'],
    ],
    [
      "the platform's countersigned payload",
      (b) => Object.assign(b.signatures[2]!, { signedPayload: `${b.signatures[2]!.signedPayload} ` }),
      ['signature:platform', 'audit-records-signatures'],
    ],
    [
      "the platform's countersignature",
      (b) => Object.assign(b.signatures[2]!, { signature: flip(b.signatures[2]!.signature) }),
      ['signature:platform'],
    ],
    [
      'a signature removed',
      (b) => (b.signatures as EvidenceBundle['signatures'][number][]).splice(1, 1),
      ['agreement', 'signature:platform'],
    ],
    [
      'an audit record',
      (b) =>
        Object.assign(b.audit.records[0]!, { data: { ...(b.audit.records[0]!.data as object), title: 'x' } }),
      ['audit-chain'],
    ],
    [
      "the audit record of a party's signature, removed",
      (b) => {
        const records = b.audit.records as EvidenceBundle['audit']['records'][number][];
        records.splice(
          records.findIndex((r) => r.action === 'sign'),
          1,
        );
      },
      ['audit-chain', 'audit-records-signatures'],
    ],
    [
      "the checkpoint's inclusion proof",
      (b) => {
        const proof = b.audit.checkpoint!.proof;
        if (proof.length === 0) Object.assign(b.audit.checkpoint!, { leafIndex: 1 });
        else proof[0] = flipHex(proof[0]!);
      },
      ['audit-anchored'],
    ],
    [
      "the checkpoint's signature",
      (b) => Object.assign(b.audit.checkpoint!, { signature: flip(b.audit.checkpoint!.signature) }),
      ['audit-anchored'],
    ],
    ['the checkpoint, removed', (b) => Object.assign(b.audit, { checkpoint: null }), ['audit-anchored']],
  ];

  it.each(tampers)('%s', (_name, tamper, expected) => {
    const tampered = copy();
    tamper(tampered);
    const failed = failing(tampered);
    for (const check of expected)
      expect(failed.some((f) => f === check || f.startsWith(`${check}:`))).toBe(true);
    expect(verifyEvidence(tampered, pinned()).valid).toBe(false);
  });

  it('pinned platform keys that are not the ones that signed fail the countersignature and the checkpoint', () => {
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const verdict = verifyEvidence(bundle, {
      pinnedPlatformKeys: platformKeys.map((k) => ({ ...k, ...stranger })),
    });
    const failed = verdict.checks.filter((c) => !c.ok).map((c) => c.check);
    expect(failed).toEqual([`signature:platform:${bundle.signatures[2]!.kid}`, 'audit-anchored']);
  });

  it('a bundle that is not one fails without throwing', () => {
    for (const junk of [null, [], { format: 'enclave-contracts-evidence/1' }, { contract: 5 }]) {
      const verdict = verifyEvidence(junk as never);
      expect(verdict.valid).toBe(false);
      expect(verdict.checks.find((c) => c.check === 'structure')?.ok).toBe(false);
    }
  });

  it('npm run verify-evidence exits 1 and names the failed check', () => {
    const tampered = copy();
    Object.assign(tampered.signatures[0]!, { signature: flip(tampered.signatures[0]!.signature) });
    const { status, stdout } = verifyOffline(tampered);
    expect(stdout).toMatch(
      /^FAIL signature:provider:\S+: the signature does not verify over its signing payload$/m,
    );
    // The countersignature covers the parties' signatures: it no longer matches either.
    expect(stdout).toMatch(/^FAIL signature:platform:\S+: the countersigned payload is not/m);
    expect(stdout.trim().split('\n').at(-1)).toBe('evidence: INVALID (2 check(s) failed)');
    expect(status).toBe(1);
  });
});

/** A base64url value with its first character changed (another valid value). */
function flip(value: string): string {
  return `${value[0] === 'A' ? 'B' : 'A'}${value.slice(1)}`;
}

function flipHex(value: string): string {
  return `${value[0] === '0' ? '1' : '0'}${value.slice(1)}`;
}

/** The digest a forger would compute for its own content (RFC 8785 canonical JSON, SHA-256). */
function verifyEvidenceDigest(content: unknown): string {
  return sha256Hex(canonicalJson(content));
}
