import type { EnclaveArtifacts } from './constructs/enclave-parents.ts';

/**
 * The default enclave image a deployment gives its parents, from the CDK context (`-c eifUrl=… -c eifSha256=…`):
 * an `s3://bucket/key` object or an `https://` URL, and its SHA-256. (The parent agent is part of the stack.)
 * A template without them would launch parents that fetch a placeholder and fail: no enclave without an
 * image of its own could run. So a synthesis without them is refused, unless it says it is only for looking
 * at the template (`-c placeholderArtifacts=true`, what `npm run synth` and CI do), and the stack then carries
 * a warning that it is not deployable.
 *
 * @returns the artifacts, or `undefined` for an explicit placeholder synthesis
 * @throws Error naming what is missing or malformed, and how to give it
 */
export function enclaveArtifactsFromContext(context: (key: string) => unknown): EnclaveArtifacts | undefined {
  const imageUrl = context('eifUrl');
  const imageSha256 = context('eifSha256');
  if (imageUrl === undefined && imageSha256 === undefined) {
    if (String(context('placeholderArtifacts')) === 'true') return undefined;
    throw new Error(
      'No default enclave image configured: the parents would fetch a placeholder and fail, so no enclave without an image of its own could run. ' +
        'Deploy with -c eifUrl=s3://bucket/key (or https://…) -c eifSha256=<hex>, ' +
        'or synthesize for inspection only with -c placeholderArtifacts=true.',
    );
  }
  const missing = [
    imageUrl === undefined ? 'eifUrl' : undefined,
    imageSha256 === undefined ? 'eifSha256' : undefined,
  ]
    .filter(Boolean)
    .map((k) => `-c ${k}=…`);
  if (missing.length > 0) throw new Error(`Enclave artifacts incomplete: missing ${missing.join(', ')}.`);
  const problems: string[] = [];
  const url = String(imageUrl);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const s3Object = parsed?.protocol === 's3:' && parsed.hostname !== '' && parsed.pathname.length > 1;
  if (!(parsed?.protocol === 'https:' || s3Object) || /[\s'"\\]/.test(url)) {
    problems.push(`eifUrl must be an s3://bucket/key or https:// URL (got ${JSON.stringify(url)})`);
  }
  if (!/^[0-9a-f]{64}$/.test(String(imageSha256))) {
    problems.push(
      `eifSha256 must be 64 lowercase hex digits, the SHA-256 of the file (got ${JSON.stringify(String(imageSha256))})`,
    );
  }
  if (problems.length > 0) throw new Error(`Enclave artifacts malformed: ${problems.join('; ')}.`);
  return { imageUrl: url, imageSha256: String(imageSha256) };
}
