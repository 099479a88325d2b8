/** The CLI as a child process (`npm run attestation` runs `tsx shared/attestation/cli.ts`). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  imageMeasurements,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { fixturesDir, measurementSetOf, prodFixture, repositoryRoot } from './nitro-fixtures.ts';

const cli = join(repositoryRoot, 'shared', 'attestation', 'cli.ts');

function run(args: string[], input?: Uint8Array) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], {
    cwd: repositoryRoot,
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const pcrFlags = Object.entries(measurementSetOf(prodFixture)).flatMap(([index, value]) => [
  '--pcr',
  `${index}=${value}`,
]);
const atItsTime = ['--at', prodFixture.facts.timestamp_iso];
const scratch = mkdtempSync(join(tmpdir(), 'attestation-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('attestation CLI', () => {
  it('exit 0 and the claims for a real document at its timestamp with its PCRs', () => {
    const { status, stdout } = run(['verify', prodFixture.path, ...pcrFlags, ...atItsTime]);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^TRUSTED/);
    expect(stdout).toContain(prodFixture.facts.module_id);
    expect(stdout).toContain(prodFixture.facts.timestamp_iso);
    expect(stdout).toContain(`${prodFixture.facts.leaf_valid_from} to ${prodFixture.facts.leaf_valid_to}`);
    expect(stdout).toContain(prodFixture.facts.pcrs['0']);
  });

  it('--json output parses, from raw CBOR on standard input too', () => {
    const { status, stdout } = run(['verify', '-', ...pcrFlags, ...atItsTime, '--json'], prodFixture.bytes);
    expect(status).toBe(0);
    const parsed = JSON.parse(stdout);
    expect(parsed).toMatchObject({ verdict: 'trusted', ok: true, matchedMeasurementSet: 0 });
    expect(parsed.claims).toMatchObject({
      moduleId: prodFixture.facts.module_id,
      timestamp: prodFixture.facts.timestamp_ms,
      leafValidFrom: prodFixture.facts.leaf_valid_from,
      leafValidTo: prodFixture.facts.leaf_valid_to,
      nonce: prodFixture.facts.nonce_hex,
      pcrs: prodFixture.facts.pcrs,
    });
  });

  it('exit 1 with expired when checked today, showing the unverified contents', () => {
    const { status, stdout } = run(['verify', prodFixture.path, ...pcrFlags]);
    expect(status).toBe(1);
    expect(stdout).toMatch(/^REJECTED \(expired\)/);
    expect(stdout).toContain('UNVERIFIED');
    const json = run(['verify', prodFixture.path, ...pcrFlags, '--json']);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ verdict: 'rejected', ok: false, code: 'expired' });
  });

  it('exit 1 on a wrong PCR, a wrong nonce, or a foreign root', () => {
    expect(run(['verify', prodFixture.path, '--pcr', `0=${'ab'.repeat(48)}`, ...atItsTime]).status).toBe(1);
    expect(run(['verify', prodFixture.path, ...pcrFlags, ...atItsTime, '--nonce', 'abcd']).status).toBe(1);
    const foreign = run([
      'verify',
      prodFixture.path,
      ...pcrFlags,
      ...atItsTime,
      '--root',
      join(repositoryRoot, 'node_modules', 'node', 'package.json'),
    ]);
    expect(foreign.status).toBe(2); // not a PEM file: a usage error
    const withRoot = run([
      'verify',
      prodFixture.path,
      ...pcrFlags,
      ...atItsTime,
      '--root',
      join(fixturesDir, 'aws-nitro-root.pem'),
    ]);
    expect(withRoot.status).toBe(0);
  });

  it.each([
    ['no arguments', []],
    ['an unknown command', ['check', prodFixture.path]],
    ['no --pcr (fail closed)', ['verify', prodFixture.path, ...atItsTime]],
    ['no document', ['verify', ...pcrFlags]],
    ['a bad --pcr', ['verify', prodFixture.path, '--pcr', '0:abc']],
    ['a PCR index out of range', ['verify', prodFixture.path, '--pcr', `32=${'ab'.repeat(48)}`]],
    ['a PCR index with a leading zero', ['verify', prodFixture.path, '--pcr', `01=${'ab'.repeat(48)}`]],
    ['a PCR index of three digits', ['verify', prodFixture.path, '--pcr', `100=${'ab'.repeat(48)}`]],
    [
      'PCR0 pinned to zero without --allow-debug',
      ['verify', prodFixture.path, '--pcr', `0=${'00'.repeat(48)}`],
    ],
    ['a bad --at', ['verify', prodFixture.path, ...pcrFlags, '--at', 'yesterday']],
    ['an odd --nonce', ['verify', prodFixture.path, ...pcrFlags, '--nonce', 'abc']],
    ['an unknown option', ['verify', prodFixture.path, ...pcrFlags, '--any-measurements']],
    ['a missing file', ['verify', join(fixturesDir, 'no-such-file.b64'), ...pcrFlags]],
  ])('exit 2 on a usage error: %s', (_, args) => {
    const { status, stderr } = run(args);
    expect(status).toBe(2);
    expect(stderr).toContain('Usage:');
  });

  describe('usage errors name the flags typed, never the library’s option names', () => {
    const LIBRARY_NAMES =
      /allowDebug|measurements\[|expectedNonce|expectedUserData|expectedPublicKey|maxAgeMs|trustedRoots/;
    const usageError = (args: string[]) => {
      const { status, stderr } = run(['verify', prodFixture.path, ...args]);
      expect(status).toBe(2);
      const sentence = stderr.split('\n')[0]!;
      expect(sentence).not.toMatch(LIBRARY_NAMES);
      return sentence;
    };

    it('PCR0 pinned to zero: --pcr 0=… and --allow-debug', () => {
      const sentence = usageError(['--pcr', `0=${'00'.repeat(48)}`]);
      expect(sentence).toContain('--pcr 0=');
      expect(sentence).toContain('add --allow-debug');
    });

    it('a PCR value that is not 48 bytes: --pcr N=<96 hex chars>', () => {
      expect(usageError(['--pcr', '4=abcd'])).toContain('--pcr 4=<96 hex chars>');
    });

    it('a PCR index out of range: --pcr N, with the range', () => {
      expect(usageError(['--pcr', `32=${'ab'.repeat(48)}`])).toContain('--pcr 32=');
    });

    it.each([
      ['--nonce', 'expectedNonce'],
      ['--user-data', 'expectedUserData'],
      ['--public-key', 'expectedPublicKey'],
    ])('%s longer than a document holds', (flag) => {
      expect(usageError([...pcrFlags, flag, 'ab'.repeat(1025)])).toContain(`${flag} is longer than`);
    });

    it('a --root file with more than one certificate', () => {
      const pem = join(fixturesDir, 'aws-nitro-root.pem');
      const two = join(scratch, 'two-roots.pem');
      writeFileSync(two, `${readFileSync(pem, 'utf8')}\n${readFileSync(pem, 'utf8')}`);
      expect(usageError([...pcrFlags, '--root', two])).toContain(`--root "${two}"`);
    });
  });

  it('a debug-mode document is refused with the flag that would accept it', async () => {
    const at = new Date('2027-05-01T08:00:00.000Z');
    const simulator = await NitroSimulator.create({ now: at });
    const document = join(scratch, 'debug.cbor');
    writeFileSync(
      document,
      await simulator.attest({ instanceId: 'i-0a1b2c3d4e5f6071a', image: { eif: 'x:1' }, debug: true }),
    );
    const root = join(scratch, 'debug-root.pem');
    writeFileSync(root, simulator.rootPem);
    const args = [
      'verify',
      document,
      '--root',
      root,
      '--at',
      at.toISOString(),
      '--pcr',
      `3=${'ab'.repeat(48)}`,
    ];
    const refused = run(args);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toMatch(/^REJECTED \(debug_mode\): .*--allow-debug/);
    expect(JSON.parse(run([...args, '--json']).stdout).message).toContain('--allow-debug');
  });

  it('a document older than --max-age-ms is refused naming that flag', () => {
    const later = new Date(prodFixture.facts.timestamp_ms + 5_000).toISOString();
    const { status, stdout } = run([
      'verify',
      prodFixture.path,
      ...pcrFlags,
      '--at',
      later,
      '--max-age-ms',
      '1',
    ]);
    expect(status).toBe(1);
    expect(stdout).toMatch(/^REJECTED \(stale\): .*--max-age-ms/);
  });

  it('exit 1 (pcr_mismatch) when --pcr pins PCR16, which a real document does not carry', () => {
    const { status, stdout } = run([
      'verify',
      prodFixture.path,
      ...pcrFlags,
      ...atItsTime,
      '--pcr',
      `16=${'00'.repeat(48)}`,
      '--json',
    ]);
    expect(status).toBe(1);
    expect(JSON.parse(stdout)).toMatchObject({ verdict: 'rejected', code: 'pcr_mismatch' });
  });

  it('exit 0 when --pcr pins PCR16 and PCR31 of a document that carries them, 1 for another value', async () => {
    const at = new Date('2027-05-01T08:00:00.000Z');
    const simulator = await NitroSimulator.create({ now: at });
    const image = { eif: 'contract-runner:3.1.0' };
    const pcr16 = 'c3'.repeat(48);
    const pcr31 = 'd4'.repeat(48);
    const document = join(scratch, 'extended.cbor');
    writeFileSync(
      document,
      await simulator.attest({ instanceId: 'i-0a1b2c3d4e5f6071a', image, pcrs: { 16: pcr16, 31: pcr31 } }),
    );
    const root = join(scratch, 'simulator-root.pem');
    writeFileSync(root, simulator.rootPem);
    const common = ['verify', document, '--root', root, '--at', at.toISOString()];
    const pcr0 = ['--pcr', `0=${imageMeasurements(image).pcr0}`];
    const trusted = run([...common, ...pcr0, '--pcr', `16=${pcr16}`, '--pcr', `31=${pcr31}`]);
    expect(trusted.status, trusted.stderr).toBe(0);
    expect(trusted.stdout).toMatch(/^TRUSTED/);
    expect(trusted.stdout).toContain(`PCR31  ${pcr31}`);
    const other = run([...common, ...pcr0, '--pcr', `31=${pcr16}`, '--json']);
    expect(other.status).toBe(1);
    expect(JSON.parse(other.stdout)).toMatchObject({ code: 'pcr_mismatch' });
  });

  it('inspect prints the unverified contents, loudly labelled', () => {
    const { status, stdout } = run(['inspect', prodFixture.path]);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^UNVERIFIED/);
    expect(stdout).toContain(prodFixture.facts.pcrs['4']);
    const json = run(['inspect', prodFixture.path, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      verdict: 'unverified',
      unverified: { moduleId: prodFixture.facts.module_id },
    });
    expect(run(['inspect', '-'], new Uint8Array([1, 2, 3])).status).toBe(1);
  });
});
