import type { EnclaveArtifacts } from './constructs/enclave-parents.ts';

/**
 * The enclave artifacts a deployment gives its parents, from the CDK context (`-c eifUrl=… -c eifSha256=…
 * -c agentUrl=… -c agentSha256=…`). A template without them would launch parents that download from a
 * placeholder URL and fail at boot: no enclave could ever run. So a synthesis without them is refused, unless
 * it says it is only for looking at the template (`-c placeholderArtifacts=true`, what `npm run synth` and
 * CI do), and the stack then carries a warning that it is not deployable.
 *
 * @returns the artifacts, or `undefined` for an explicit placeholder synthesis
 * @throws Error naming what is missing or malformed, and how to give it
 */
export function enclaveArtifactsFromContext(context: (key: string) => unknown): EnclaveArtifacts | undefined {
  const keys = {
    imageUrl: 'eifUrl',
    imageSha256: 'eifSha256',
    agentUrl: 'agentUrl',
    agentSha256: 'agentSha256',
  };
  const given = Object.fromEntries(
    Object.entries(keys).map(([field, key]) => [field, context(key)]),
  ) as Record<keyof EnclaveArtifacts, unknown>;
  const missing = Object.entries(keys)
    .filter(([field]) => given[field as keyof EnclaveArtifacts] === undefined)
    .map(([, key]) => key);
  if (missing.length === 4) {
    if (String(context('placeholderArtifacts')) === 'true') return undefined;
    throw new Error(
      'No enclave artifacts configured: the parents would download a placeholder and fail at boot, so no enclave could run. ' +
        'Deploy with -c eifUrl=https://… -c eifSha256=<hex> -c agentUrl=https://… -c agentSha256=<hex> ' +
        '(the default enclave image and the parent agent), or synthesize for inspection only with -c placeholderArtifacts=true.',
    );
  }
  if (missing.length > 0) {
    throw new Error(`Enclave artifacts incomplete: missing ${missing.map((k) => `-c ${k}=…`).join(', ')}.`);
  }
  const problems: string[] = [];
  for (const field of ['imageUrl', 'agentUrl'] as const) {
    const value = String(given[field]);
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:')
      problems.push(`${keys[field]} must be an https:// URL (got ${JSON.stringify(value)})`);
  }
  for (const field of ['imageSha256', 'agentSha256'] as const) {
    const value = String(given[field]);
    if (!/^[0-9a-f]{64}$/.test(value)) {
      problems.push(
        `${keys[field]} must be 64 lowercase hex digits, the SHA-256 of the file (got ${JSON.stringify(value)})`,
      );
    }
  }
  if (problems.length > 0) throw new Error(`Enclave artifacts malformed: ${problems.join('; ')}.`);
  return {
    imageUrl: String(given.imageUrl),
    imageSha256: String(given.imageSha256),
    agentUrl: String(given.agentUrl),
    agentSha256: String(given.agentSha256),
  };
}
