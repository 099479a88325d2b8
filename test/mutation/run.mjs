#!/usr/bin/env node
// `npm run test:mutation`: mutation testing (Stryker, vitest runner, TypeScript checker) of the
// security-critical modules, each with only the tests that exercise it. A mutant is a small change to the
// module (a condition inverted, a check removed, a constant changed); a test suite that still passes with it
// has a guard no test holds. `npm run test:mutation -- --module <name>` runs one module (names below;
// `--list` prints them).
//
// It ends with one line per module and the last line
//   mutation: modules=N worst=<module> worst-score=X
// where a module's score is detected / (detected + undetected) over the mutants that compile, leaving out
// message-text mutants: a string literal of prose (it holds a space) that is no SQL, i.e. what an error or a
// refusal says rather than what it decides. Those are counted and listed apart. Each survivor is printed with
// its place and replacement, so that it can be killed by a test or argued equivalent beside the line.
//
// It takes minutes per module (the dry run, then one test run per mutant on two cores); it is not part of
// `npm test`. Reports: .mutation/<module>.json (Stryker's JSON, for its HTML viewer or a diff).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { score, textAt } from './mutation-score.mjs';

const root = join(import.meta.dirname, '..', '..');
const work = join(root, '.mutation');

const attestationTests = [
  'test/attestation/authenticate.test.ts',
  'test/attestation/certificate-constraints.test.ts',
  'test/attestation/chain-cache.test.ts',
  'test/attestation/conformance.test.ts',
  'test/attestation/local-chain.test.ts',
  'test/attestation/mutation-properties.test.ts',
  'test/attestation/pcr-range.test.ts',
  'test/attestation/policy.test.ts',
  'test/attestation/simulator-verifier.test.ts',
  'test/attestation/tampering.test.ts',
  'test/attestation/verify-guards.test.ts',
];

/** The modules, each with the tests that exercise it (fast ones: no servers, no stack). */
const MODULES = {
  'certificate-chain': { file: 'shared/attestation/certificate-chain.ts', tests: attestationTests },
  verify: { file: 'shared/attestation/verify.ts', tests: attestationTests },
  policy: { file: 'shared/attestation/policy.ts', tests: attestationTests },
  'enclave-lifecycle': {
    file: 'shared/domain/enclave-lifecycle.ts',
    tests: ['test/unit/enclave-lifecycle.test.ts'],
  },
  'contract-lifecycle': {
    file: 'shared/domain/contract-lifecycle.ts',
    tests: ['test/unit/contract-lifecycle.test.ts', 'test/unit/enclave-lifecycle.test.ts'],
  },
  'party-signatures': {
    file: 'shared/signing/party-signatures.ts',
    tests: ['test/unit/signatures.test.ts', 'test/unit/webauthn.test.ts'],
  },
  'merkle-tree': { file: 'shared/audit/merkle-tree.ts', tests: ['test/unit/merkle-tree.test.ts'] },
  'audit-chain': { file: 'shared/audit/audit-chain.ts', tests: ['test/unit/audit-chain.test.ts'] },
  'contract-key-policy': {
    file: 'shared/keys/contract-key-policy.ts',
    tests: ['test/unit/contract-key-policy.test.ts'],
  },
  'contract-evidence': {
    file: 'shared/contracts/contract-evidence.ts',
    tests: ['test/unit/contract-evidence.test.ts'],
  },
  'recipient-envelope': {
    file: 'shared/keys/recipient-envelope.ts',
    tests: ['test/unit/recipient-envelope.test.ts'],
  },
};

function parseArgs(argv) {
  const selected = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--list') {
      for (const [name, { file }] of Object.entries(MODULES)) console.log(`${name.padEnd(22)} ${file}`);
      process.exit(0);
    }
    if (argv[i] === '--module' && argv[i + 1]) {
      const name = argv[++i];
      if (!MODULES[name]) {
        console.error(`unknown module ${name}; one of: ${Object.keys(MODULES).join(', ')}`);
        process.exit(2);
      }
      selected.push(name);
      continue;
    }
    console.error('usage: npm run test:mutation [-- --module <name> ...] [-- --list]');
    process.exit(2);
  }
  return selected.length > 0 ? selected : Object.keys(MODULES);
}

function runModule(name) {
  const { file, tests } = MODULES[name];
  mkdirSync(work, { recursive: true });
  const tsconfig = join(work, `${name}.tsconfig.json`);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: relative(work, join(root, 'tsconfig.json')),
      include: [],
      files: [relative(work, join(root, file))],
    }),
  );
  const reportFile = join(work, `${name}.json`);
  rmSync(reportFile, { force: true });
  const config = join(work, `${name}.stryker.json`);
  writeFileSync(
    config,
    JSON.stringify(
      {
        testRunner: 'vitest',
        vitest: { configFile: 'test/mutation/vitest.config.ts', related: false },
        checkers: ['typescript'],
        tsconfigFile: relative(root, tsconfig),
        mutate: [file],
        coverageAnalysis: 'perTest',
        concurrency: 2,
        timeoutMS: 20_000,
        reporters: ['json', 'progress'],
        jsonReporter: { fileName: relative(root, reportFile) },
        tempDirName: '.mutation/sandbox',
        cleanTempDir: 'always',
        ignorePatterns: ['cdk.out', '.local', '.mutation', 'web/node_modules', 'coverage'],
        thresholds: { high: 95, low: 90, break: null },
      },
      null,
      2,
    ),
  );
  const stryker = join(
    dirname(createRequire(import.meta.url).resolve('@stryker-mutator/core/package.json')),
    'bin',
    'stryker.js',
  );
  const started = Date.now();
  const run = spawnSync(process.execPath, [stryker, 'run', relative(root, config)], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, MUTATION_TESTS: tests.join(',') },
  });
  if (run.status !== 0) throw new Error(`Stryker failed on ${name} (exit ${run.status})`);
  const result = score(JSON.parse(readFileSync(reportFile, 'utf8')), file);
  return { name, file, minutes: (Date.now() - started) / 60_000, ...result };
}

const selected = parseArgs(process.argv.slice(2));
const results = [];
for (const name of selected) {
  const result = runModule(name);
  results.push(result);
  const source = JSON.parse(readFileSync(join(work, `${name}.json`), 'utf8')).files[result.file].source;
  for (const mutant of result.survivors) {
    const { line, column } = mutant.location.start;
    console.log(
      `  ${mutant.status === 'Survived' ? 'survived' : 'no coverage'}: ${result.file}:${line}:${column} ${mutant.mutatorName}: ${JSON.stringify(textAt(source, mutant.location)).slice(0, 80)} -> ${JSON.stringify(mutant.replacement ?? '').slice(0, 80)}`,
    );
  }
}
for (const r of results) {
  console.log(
    `mutation: ${r.name} score=${r.score.toFixed(1)} killed=${r.killed} timeout=${r.timeout} survived=${r.survived} no-coverage=${r.noCoverage} message-text=${r.messageText} invalid=${r.invalid} minutes=${r.minutes.toFixed(1)} (${r.file})`,
  );
}
const worst = results.reduce((a, b) => (b.score < a.score ? b : a));
console.log(`mutation: modules=${results.length} worst=${worst.name} worst-score=${worst.score.toFixed(1)}`);
